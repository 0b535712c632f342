//! Colour on human output, decided once per process and per stream.
//!
//! `--color always|never` wins; with `auto` (the default) `NO_COLOR` turns colour off,
//! `CLICOLOR_FORCE` turns it on, and otherwise a stream is coloured only when it is a terminal
//! (anstream's rules, the ones clap follows for its own help). Stdout and stderr are decided
//! separately: `co status | less` keeps red `error:` prefixes on the terminal.
//!
//! Colour is added to text that is already escaped and laid out: a painted word has the
//! width of the plain word, so tables are aligned on the plain text and painted afterwards.
//! JSON output is never painted.

use anstyle::{AnsiColor, Effects, Style};
use std::ffi::OsString;
use std::sync::atomic::{AtomicU8, Ordering};

/// The id of the `--color` argument.
pub const ARG: &str = "color";

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum When {
    Auto,
    Always,
    Never,
}

impl When {
    /// The same choice for clap's own help and errors.
    pub fn clap(self) -> clap::ColorChoice {
        match self {
            When::Auto => clap::ColorChoice::Auto,
            When::Always => clap::ColorChoice::Always,
            When::Never => clap::ColorChoice::Never,
        }
    }
}

/// The global `--color WHEN` argument.
pub fn arg() -> clap::Arg {
    clap::Arg::new(ARG)
        .long("color")
        .value_name("WHEN")
        .value_parser(clap::builder::EnumValueParser::<When>::new())
        .default_value("auto")
        .global(true)
        .display_order(1000)
        .help("When to colour human output (auto: on a terminal, unless NO_COLOR is set)")
}

/// The help styles (clap's "styled" palette: bold, underlined headers, coloured errors).
pub const STYLES: clap::builder::Styles = clap::builder::Styles::styled();

/// The `--color` value in raw arguments, for clap's own output before parsing: the last
/// `--color X` or `--color=X` before a `--`, else `auto`.
pub fn scan(args: &[OsString]) -> When {
    let mut when = When::Auto;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let Some(a) = a.to_str() else { continue };
        if a == "--" {
            break;
        }
        let value = match a.strip_prefix("--color") {
            Some("") => it.next().and_then(|v| v.to_str()),
            Some(v) => v.strip_prefix('='),
            None => None,
        };
        when = match value {
            Some("always") => When::Always,
            Some("never") => When::Never,
            Some("auto") => When::Auto,
            _ => when,
        };
    }
    when
}

const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const DECIDED: u8 = 4;

/// Bit set: which streams are coloured, and whether that was decided.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Decides colour for stdout and stderr. Called by [`crate::parse`]; call it again to change.
pub fn init(when: When) {
    anstream::ColorChoice::write_global(match when {
        When::Auto => anstream::ColorChoice::Auto,
        When::Always => anstream::ColorChoice::Always,
        When::Never => anstream::ColorChoice::Never,
    });
    // anstream's rules for `auto`: NO_COLOR, CLICOLOR_FORCE, CLICOLOR, then a terminal
    // that supports colour.
    let never = anstream::ColorChoice::Never;
    let mut bits = DECIDED;
    if anstream::AutoStream::choice(&std::io::stdout()) != never {
        bits |= STDOUT;
    }
    if anstream::AutoStream::choice(&std::io::stderr()) != never {
        bits |= STDERR;
    }
    STATE.store(bits, Ordering::Relaxed);
}

fn on(stream: u8) -> bool {
    let bits = STATE.load(Ordering::Relaxed);
    if bits & DECIDED == 0 {
        // Not decided (a test, a library caller): never colour.
        return false;
    }
    bits & stream != 0
}

/// Whether stdout is coloured.
pub fn stdout() -> bool {
    on(STDOUT)
}

/// Whether stderr is coloured.
pub fn stderr() -> bool {
    on(STDERR)
}

/// `text` in `style` when `enabled`, else `text` as it is.
pub fn paint(enabled: bool, style: Style, text: &str) -> String {
    if !enabled || style == Style::new() {
        return text.to_string();
    }
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// How a status word looks: green when done well, red when something needs a person, yellow
/// when waiting, cyan while work moves, dimmed when cancelled; `None` for plain words.
/// Covers work order statuses, worker statuses and session states.
pub fn status_style(word: &str) -> Option<Style> {
    let c = |c: AnsiColor| Some(Style::new().fg_color(Some(c.into())));
    match word {
        "closed" | "running" | "up" | "ok" | "merged" => c(AnsiColor::Green),
        "failed" | "dead" | "down" | "stuck" | "ESCALATED" | "problems" => {
            c(AnsiColor::Red).map(|s| s.effects(Effects::BOLD))
        }
        "blocked" | "rework" | "needs_approval" | "idle" | "not running" => c(AnsiColor::Yellow),
        "queued" | "assigned" | "in_progress" => c(AnsiColor::Cyan),
        "in_review" => c(AnsiColor::Magenta),
        "cancelled" => Some(Style::new().effects(Effects::DIMMED)),
        _ => None,
    }
}

/// A status word for stdout, painted when stdout is coloured.
pub fn status(word: &str) -> String {
    match status_style(word) {
        Some(s) => paint(stdout(), s, word),
        None => word.to_string(),
    }
}

/// A table cell painter for stdout: the status columns painted, every other cell plain.
pub fn status_cells(columns: &[usize]) -> impl Fn(usize, &str) -> Option<String> + '_ {
    move |col, cell| {
        if !stdout() || !columns.contains(&col) {
            return None;
        }
        status_style(cell).map(|s| paint(true, s, cell))
    }
}

const ERROR: Style = Style::new()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)))
    .effects(Effects::BOLD);
const WARNING: Style = Style::new()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)))
    .effects(Effects::BOLD);
const NOTE: Style = Style::new()
    .fg_color(Some(anstyle::Color::Ansi(AnsiColor::Cyan)))
    .effects(Effects::BOLD);

/// `error:`, painted for stderr.
pub fn error_prefix() -> String {
    paint(stderr(), ERROR, "error:")
}

/// `warning:`, painted for stderr.
pub fn warning_prefix() -> String {
    paint(stderr(), WARNING, "warning:")
}

/// Prints `error: MESSAGE` to stderr (the message already made safe to show).
pub fn eprint_error(message: &str) {
    eprintln!("{} {message}", error_prefix());
}

/// Prints `warning: MESSAGE` to stderr.
pub fn eprint_warning(message: &str) {
    eprintln!("{} {message}", warning_prefix());
}

/// A line prefix on stdout (`problem:`, `fixed:`, `note:` of the doctors), painted.
pub fn label(word: &str) -> String {
    let style = match word {
        "problem:" => ERROR,
        "fixed:" => Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green))),
        "note:" => NOTE,
        _ => Style::new(),
    };
    paint(stdout(), style, word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_early_scan_finds_the_last_color_flag_before_a_double_dash() {
        assert_eq!(scan(&args(&["co", "status"])), When::Auto);
        assert_eq!(
            scan(&args(&["co", "--color", "always", "status"])),
            When::Always
        );
        assert_eq!(scan(&args(&["co", "status", "--color=never"])), When::Never);
        assert_eq!(
            scan(&args(&["co", "--color=never", "x", "--color", "always"])),
            When::Always
        );
        assert_eq!(scan(&args(&["co", "--", "--color=never"])), When::Auto);
        assert_eq!(scan(&args(&["co", "--color=purple"])), When::Auto);
        assert_eq!(scan(&args(&["co", "--color"])), When::Auto);
    }

    #[test]
    fn painting_keeps_the_text_and_adds_only_escapes() {
        let red = status_style("failed").unwrap_or_default();
        let p = paint(true, red, "failed");
        assert!(p.starts_with("\x1b["), "{p:?}");
        assert!(p.contains("failed") && p.ends_with("\x1b[0m"), "{p:?}");
        assert_eq!(paint(false, red, "failed"), "failed");
        assert_eq!(status_style("open"), None);
        assert_eq!(paint(true, Style::new(), "open"), "open");
    }
}
