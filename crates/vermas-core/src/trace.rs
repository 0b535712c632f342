//! What a command does, on stderr, when a person asks for it: `DEBUG=1` (or `LOG_LEVEL=DEBUG`)
//! prints each tmux and git command before it runs; `DEBUG_ROUTING=1` prints how a command found
//! its store and the store of each work order id. Read once from the environment, like the
//! config's environment layer (a value that cannot be read counts as off; `co` and `wo` warn
//! about it there). Nothing here is written to the event log.

use std::ffi::OsStr;
use std::sync::OnceLock;

/// Whether commands print their steps (`DEBUG` on, or `LOG_LEVEL` at `DEBUG` or `TRACE`).
pub fn steps() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        steps_from(
            std::env::var("DEBUG").ok().as_deref(),
            std::env::var("LOG_LEVEL").ok().as_deref(),
        )
    })
}

/// Whether commands print their routing decisions (`DEBUG_ROUTING` on).
pub fn routing() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| flag(std::env::var("DEBUG_ROUTING").ok().as_deref()))
}

fn flag(v: Option<&str>) -> bool {
    v.and_then(crate::config::parse_env_flag).unwrap_or(false)
}

/// The decision of [`steps`], from the two variables.
pub fn steps_from(debug: Option<&str>, log_level: Option<&str>) -> bool {
    match debug.and_then(crate::config::parse_env_flag) {
        Some(on) => on,
        None => log_level
            .and_then(crate::config::LogLevel::parse)
            .is_some_and(|l| l >= crate::config::LogLevel::Debug),
    }
}

/// Prints `program args…` (quoted as a shell would need, control characters escaped) when
/// steps are on.
pub fn command<'a>(program: &str, args: impl IntoIterator<Item = &'a OsStr>) {
    if steps() {
        // A URL with a token in it, or a key a user passed as an argument, stays off the screen.
        let (line, _) = crate::text::mask_secrets(&show_command(program, args));
        eprintln!("debug: {line}");
    }
}

/// [`command`] for a command about to run (its program and arguments as built).
pub fn running(c: &std::process::Command) {
    if steps() {
        command(&c.get_program().to_string_lossy(), c.get_args());
    }
}

/// One line for a command: each word quoted when it needs it.
pub fn show_command<'a>(program: &str, args: impl IntoIterator<Item = &'a OsStr>) -> String {
    let mut line = quote(program);
    for a in args {
        line.push(' ');
        line.push_str(&quote(&a.to_string_lossy()));
    }
    line
}

/// `https://user:token@host/…` with the user part hidden.
fn hide_userinfo(word: &str) -> std::borrow::Cow<'_, str> {
    if let Some(scheme) = word.find("://") {
        let rest = &word[scheme + 3..];
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{}***{}", &word[..scheme + 3], &rest[at..]).into();
        }
    }
    word.into()
}

fn quote(word: &str) -> String {
    let word = crate::text::escape_control(&hide_userinfo(word));
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        word
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Prints a routing decision when `DEBUG_ROUTING` is on (the text is built only then).
pub fn route(what: impl FnOnce() -> String) {
    if routing() {
        eprintln!("routing: {}", crate::text::escape_control(&what()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_decides_and_log_level_counts_when_debug_says_nothing() {
        let table = [
            (None, None, false),
            (Some("1"), None, true),
            (Some("*"), None, true),
            (Some("true"), Some("ERROR"), true),
            (Some("0"), Some("DEBUG"), false),
            (None, Some("DEBUG"), true),
            (None, Some("trace"), true),
            (None, Some("INFO"), false),
            (Some("maybe"), Some("WARN"), false),
            (Some("maybe"), Some("DEBUG"), true),
            (None, Some("LOUD"), false),
        ];
        for (debug, level, on) in table {
            assert_eq!(
                steps_from(debug, level),
                on,
                "DEBUG={debug:?} LOG_LEVEL={level:?}"
            );
        }
    }

    #[test]
    fn credentials_in_a_url_are_not_printed() {
        let args = [
            "clone",
            "https://me:ghp_secret@example.com/r.git",
            "file:///a@b/c",
        ];
        assert_eq!(
            show_command("git", args.iter().map(OsStr::new)),
            "git clone 'https://***@example.com/r.git' file:///a@b/c"
        );
    }

    #[test]
    fn a_command_line_is_quoted_where_a_shell_needs_it() {
        let args = [
            "-C",
            "/tmp/my dir",
            "commit",
            "-m",
            "it's",
            "#{pane_pid}",
            "a\x1bb",
        ];
        assert_eq!(
            show_command("git", args.iter().map(OsStr::new)),
            r"git -C '/tmp/my dir' commit -m 'it'\''s' '#{pane_pid}' 'a\eb'"
        );
    }
}
