//! Value parsers that tell the accepted values: `--help` shows `[possible values: …]`, a bad
//! value is a usage error (exit 2) that lists them, and completions offer them.

use clap::builder::{PossibleValuesParser, TypedValueParser};

/// One of a fixed set of names, parsed into `T` by `parse` (which accepts exactly `names`).
///
/// ```
/// # use clap::Parser;
/// #[derive(Parser)]
/// struct Cli {
///     #[arg(long, value_parser = vermas_cli::values::choice(["low", "high"], |s| Some(s.len())))]
///     level: usize,
/// }
/// assert_eq!(Cli::try_parse_from(["x", "--level", "high"]).map(|c| c.level).ok(), Some(4));
/// assert!(Cli::try_parse_from(["x", "--level", "mid"]).is_err());
/// ```
pub fn choice<T, const N: usize>(
    names: [&'static str; N],
    parse: fn(&str) -> Option<T>,
) -> impl TypedValueParser<Value = T>
where
    T: Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names).try_map(move |s: String| {
        parse(&s).ok_or_else(|| format!("{s:?} is not one of: {}", names.join(", ")))
    })
}
