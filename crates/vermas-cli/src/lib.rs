//! What `co` and `wo` share as command-line programs, so that both behave alike:
//!
//! - [`parse`]: the clap command with the global `--color WHEN` flag and the help styles,
//!   parsed from the process arguments (usage errors exit 2, as clap does);
//! - [`color`]: one decision per process, per stream, whether to colour (the flag, then
//!   `NO_COLOR`/`CLICOLOR_FORCE`, then whether the stream is a terminal), and the painting of
//!   status words and `error:`/`warning:` prefixes;
//! - [`values`]: value parsers that list their accepted values in `--help` and in errors;
//! - [`docs`]: shell completions and man pages, generated from the same clap definitions;
//! - [`examples!`]: the "Examples:" section every subcommand's help ends with.
//!
//! Nothing here knows about work orders or companies: that is `vermas-core`.

pub mod color;
mod deferred;
pub mod docs;
pub mod values;

pub use deferred::Deferred;

use std::ffi::OsString;

/// The help section of examples: a header, then each line indented by two spaces. Lines
/// starting with `#` say what the next one does. A paragraph before the examples can be given
/// first, followed by `;`.
///
/// ```
/// const EXAMPLES: &str = vermas_cli::examples!("# Every open work order", "wo list");
/// assert!(EXAMPLES.ends_with("  # Every open work order\n  wo list\n"));
/// const BOTH: &str = vermas_cli::examples!("Notes first."; "wo list");
/// assert!(BOTH.starts_with("Notes first.\n\n"));
/// ```
#[macro_export]
macro_rules! examples {
    ($before:literal; $($line:literal),+ $(,)?) => {
        concat!($before, "\n\n\x1b[1m\x1b[4mExamples:\x1b[0m\n", $("  ", $line, "\n"),+)
    };
    ($($line:literal),+ $(,)?) => {
        concat!("\x1b[1m\x1b[4mExamples:\x1b[0m\n", $("  ", $line, "\n"),+)
    };
}

/// The command a binary's `Parser` describes, with what every VerMAS command has: the global
/// `--color` flag and the help styles. Completions and man pages are made from this too.
pub fn command<P: clap::CommandFactory>() -> clap::Command {
    P::command()
        .arg(color::arg())
        .styles(color::STYLES)
        .max_term_width(100)
}

/// Parses the process arguments into `P`. Colour is decided twice: from a quick look at the
/// arguments (so clap's own help and errors follow `--color`), then from what clap parsed.
/// Usage errors print clap's message and exit 2; `--help` and `--version` exit 0.
pub fn parse<P: clap::Parser>() -> P {
    let args: Vec<OsString> = std::env::args_os().collect();
    parse_from(args)
}

/// [`parse`] from given arguments (the first is the program name).
pub fn parse_from<P: clap::Parser>(args: Vec<OsString>) -> P {
    let early = color::scan(&args);
    color::init(early);
    let cmd = command::<P>().color(early.clap());
    let mut matches = match cmd.try_get_matches_from(args) {
        Ok(m) => m,
        // A value our own parser refused (a duration without its unit): the one line that
        // says what was wrong and what works, without clap's "try --help" tail.
        Err(e) if e.kind() == clap::error::ErrorKind::ValueValidation => {
            let text = e.render().ansi().to_string();
            anstream::eprintln!("{}", text.lines().next().unwrap_or_default());
            std::process::exit(2);
        }
        Err(e) => e.exit(),
    };
    if let Ok(Some(when)) = matches.try_get_one::<color::When>(color::ARG) {
        color::init(*when);
    }
    match P::from_arg_matches_mut(&mut matches) {
        Ok(p) => p,
        Err(e) => e.format(&mut command::<P>()).exit(),
    }
}
