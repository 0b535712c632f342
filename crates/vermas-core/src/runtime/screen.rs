//! Reading an agent's screen: at its input prompt, working, at a dialog (by name), or unknown.
//!
//! Pure functions of the captured text (`tmux capture-pane -p -J`) and the runtime's patterns
//! ([`Screens`]); tested on screens captured from the real CLIs
//! (`tests/fixtures/screens/<cli>/`). Nothing is ever typed into a screen these do not call
//! [`Screen::Ready`].

use super::presets::Screens;
use std::hash::{Hash, Hasher};

/// What an agent's screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    /// Nothing recognised (a runtime without patterns, or a screen in between).
    Unknown,
    /// At its input prompt, waiting for text.
    Ready,
    /// Thinking, running a tool, printing.
    Working,
    /// A dialog or question only a person should answer: its name (`trust`, `api-key`,
    /// `bypass`, `auth`, `login`, `y/n`…) and the screen, for the escalation.
    Dialog { name: String, text: String },
}

impl Screen {
    /// `blocked: <dialog>` for people, or the state's word.
    pub fn describe(&self) -> String {
        match self {
            Screen::Unknown => "unknown".into(),
            Screen::Ready => "ready".into(),
            Screen::Working => "working".into(),
            Screen::Dialog { name, .. } => format!("blocked: {name}"),
        }
    }
}

/// Endings of a line that asks a yes/no question and waits for the answer.
const QUESTIONS: &[&str] = &[
    "[y/n]",
    "(y/n)",
    "[Y/n]",
    "[y/N]",
    "(Y/n)",
    "(y/N)",
    "[yes/no]",
    "(yes/no)",
    "(Y)es/(N)o",
];

/// Reads a screen.
pub fn classify(screens: &Screens, text: &str) -> Screen {
    let dialog = |name: &str| Screen::Dialog {
        name: name.to_string(),
        text: trimmed(text),
    };
    // When several match (an answered dialog above a new one), the one lowest on the screen.
    let shown = screens
        .dialogs
        .iter()
        .filter(|d| d.all.iter().all(|p| text.contains(p)))
        .max_by_key(|d| d.all.iter().filter_map(|p| text.rfind(p)).max());
    if let Some(d) = shown {
        return dialog(d.name);
    }
    // A question waits on the last line written (answered ones scroll up).
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    if QUESTIONS.iter().any(|q| last.contains(q)) {
        return dialog("y/n");
    }
    if screens.working.iter().any(|p| text.contains(p)) {
        return Screen::Working;
    }
    if screens.ready.iter().any(|p| text.contains(p)) {
        return Screen::Ready;
    }
    Screen::Unknown
}

/// The screen's text without blank lines at its ends and trailing spaces, for a person.
fn trimmed(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(0);
    let end = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |e| e + 1);
    lines[start..end.max(start)].join("\n")
}

/// A fingerprint of the screen that ignores what changes by itself (spinners, elapsed-seconds
/// counters: the `volatile` patterns): it changes only when the agent shows something new.
pub fn fingerprint(screens: &Screens, text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for line in text.lines() {
        if screens.volatile.iter().any(|v| line.contains(v)) {
            continue;
        }
        line.trim_end().hash(&mut h);
    }
    h.finish()
}

/// Whether typed `text` shows on the screen: box-drawing characters, borders and line breaks
/// (an input box wraps and frames what is typed) are ignored on both sides.
pub fn shows_typed(screen: &str, text: &str) -> bool {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| {
                !c.is_whitespace()
                    && !('\u{2500}'..='\u{259F}').contains(c)
                    && !matches!(c, '│' | '┃' | '╹' | '▀' | '▄')
            })
            .collect()
    };
    let want = squash(text);
    if want.is_empty() {
        return true;
    }
    // The end of the text: the start may have scrolled out of a small input box.
    let tail: String = want
        .chars()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    squash(screen).contains(&tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::presets::preset;

    fn fixture(cli: &str, name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/screens")
            .join(cli)
            .join(format!("{name}.txt"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn read(cli: &str, name: &str) -> Screen {
        let screens = preset(cli).map(|p| p.screens).unwrap_or(Screens::NONE);
        classify(&screens, &fixture(cli, name))
    }

    fn dialog(s: &Screen) -> Option<&str> {
        match s {
            Screen::Dialog { name, .. } => Some(name),
            _ => None,
        }
    }

    #[test]
    fn the_real_clis_screens_are_read_right() {
        use Screen::{Ready, Working};
        let states: &[(&str, &str, Screen)] = &[
            ("claude", "ready-startup", Ready),
            ("claude", "ready-after-turn", Ready),
            ("claude", "working", Working),
            ("claude", "tool-running", Working),
            ("claude", "model-hanging", Working),
            ("codex", "ready-startup", Ready),
            ("codex", "ready-after-turn", Ready),
            ("codex", "tool-running", Working),
            ("codex", "model-hanging", Working),
            ("gemini", "ready-startup", Ready),
            ("gemini", "ready-after-turn", Ready),
            ("gemini", "working", Working),
            ("gemini", "tool-running", Working),
            ("gemini", "model-hanging", Working),
            ("opencode", "ready-startup-first-run", Ready),
            ("opencode", "ready-after-turn", Ready),
            ("opencode", "working", Working),
            ("opencode", "tool-running", Working),
        ];
        for (cli, name, want) in states {
            assert_eq!(&read(cli, name), want, "{cli}/{name}");
        }
    }

    #[test]
    fn every_dialog_of_the_real_clis_is_named() {
        let dialogs = [
            ("claude", "trust", "trust"),
            ("claude", "api-key-approval", "api-key"),
            ("claude", "bypass-permissions-warning", "bypass"),
            ("claude", "first-run-offline", "onboarding"),
            ("codex", "trust", "trust"),
            ("codex", "login", "login"),
            ("gemini", "trust", "trust"),
            ("gemini", "auth-choice", "auth"),
            ("gemini", "api-key-entry", "api-key"),
            ("gemini", "waiting-for-auth", "auth"),
            ("opencode", "permission-ask", "permission"),
            ("aider", "gitignore-prompt", "y/n"),
            ("aider", "model-warning-prompt", "y/n"),
            ("aider", "release-notes-prompt", "y/n"),
            ("aider", "create-file-prompt", "y/n"),
            ("aider", "run-shell-command-prompt", "y/n"),
            ("aider", "run-output-prompt", "y/n"),
        ];
        for (cli, name, want) in dialogs {
            let s = read(cli, name);
            assert_eq!(dialog(&s), Some(want), "{cli}/{name}: {s:?}");
        }
        // The screen text goes into the escalation.
        match read("claude", "trust") {
            Screen::Dialog { text, .. } => assert!(text.contains("Is this a project you created")),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn answered_questions_in_the_scrollback_do_not_count() {
        // Aider's banner keeps the questions it asked and was answered (`[Yes]: n`).
        assert_eq!(dialog(&read("aider", "ready")), None);
        assert_eq!(dialog(&read("aider", "ready-after-edit")), None);
        // A scripted agent's question on its last line.
        let s = classify(
            &Screens::NONE,
            "ASSIGNED: mp-a\nProceed with mp-a? [y/n] \n\n",
        );
        assert_eq!(dialog(&s), Some("y/n"));
        assert_eq!(
            classify(&Screens::NONE, "Proceed? [y/n] y\nworking on it\n"),
            Screen::Unknown
        );
    }

    #[test]
    fn a_hung_model_does_not_look_like_new_output() {
        // Claude's spinner line changes every second; nothing else does.
        let s = preset("claude").unwrap().screens;
        let a = "● Bash(co assignment)\n✽ Sprouting… (31s · esc to interrupt)\n";
        let b = "● Bash(co assignment)\n✶ Sprouting… (32s · esc to interrupt)\n";
        assert_eq!(fingerprint(&s, a), fingerprint(&s, b));
        let c =
            "● Bash(co assignment)\n● Bash(git commit)\n✶ Sprouting… (32s · esc to interrupt)\n";
        assert_ne!(fingerprint(&s, a), fingerprint(&s, c));
    }

    #[test]
    fn typed_text_is_seen_through_an_input_box_that_wraps_and_frames_it() {
        let typed = "You have been idle for a while. Run `co assignment` and carry on with your work order.";
        let boxed = "┃  You have been idle for a while. Run `co assignment` and carry on  ┃\n┃  with your work order.                                          ┃\n╹▀▀▀▀▀▀▀";
        assert!(shows_typed(boxed, typed));
        assert!(!shows_typed("┃  nothing here ┃", typed));
    }
}
