//! What an agent says about itself, for CLIs that call hooks (Claude Code): each hook runs
//! `co agent-hook`, which records the agent's state (working, idle at its prompt, waiting for
//! the user) with its time in a small file per worker, `.work/.agents/.<slot key>.json`. The
//! supervisor reads it beside the screen: a turn that ended (`Stop`) is idle from that moment
//! even while a spinner was the last thing printed, and a tool call (`PreToolUse`) is work
//! even when the screen has not changed for a while.
//!
//! The file is one per worker (overwritten at each hook; the incarnation in it tells an old
//! worker's from the current one's), 0600, never written through a symlink, and its name
//! starts with a dot so the loops' file watchers do not wake at every tool call. A hook never
//! fails the CLI: `co agent-hook` always exits 0.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a hook says the agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookState {
    /// A prompt was submitted or a tool is about to run.
    Working,
    /// A turn ended, or the session started: at its input prompt.
    Idle,
    /// The CLI notified that it waits for the user (a permission, or input after a while).
    Waiting,
}

/// The state a hook event means (`hook_event_name` of Claude Code's hook input).
pub fn state_of(event: &str) -> Option<HookState> {
    Some(match event {
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "PreCompact" => HookState::Working,
        "Stop" | "SessionStart" => HookState::Idle,
        "Notification" => HookState::Waiting,
        _ => return None,
    })
}

/// The last hook of one worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    pub incarnation: String,
    pub state: HookState,
    /// The hook event's name.
    pub event: String,
    /// When the hook ran (Unix seconds).
    pub at: i64,
}

/// Where a worker's state is kept: `<factory>/.work/.agents/.<file key>.json`.
pub fn state_path(work_dir: &Path, file_key: &str) -> PathBuf {
    work_dir.join(".agents").join(format!(".{file_key}.json"))
}

/// The `hook_event_name` of a hook's JSON input (`None` when it has none).
pub fn event_name(input: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Input {
        hook_event_name: String,
    }
    serde_json::from_slice::<Input>(input)
        .ok()
        .map(|i| i.hook_event_name)
}

/// Records `event` for the worker whose state file is `path`. Events that say nothing about
/// the state are ignored.
pub fn record(path: &Path, incarnation: &str, event: &str, at: i64) -> std::io::Result<()> {
    let Some(state) = state_of(event) else {
        return Ok(());
    };
    if let Some(dir) = path.parent() {
        crate::fsutil::ensure_dir_all(dir)?;
    }
    let s = AgentState {
        incarnation: incarnation.to_string(),
        state,
        event: event.to_string(),
        at,
    };
    let text = serde_json::to_vec(&s).map_err(std::io::Error::other)?;
    crate::fsutil::atomic_write_unsynced(path, &text)
}

/// The state of the worker whose file is `path`, if its current incarnation wrote it.
pub fn read(path: &Path, incarnation: &str) -> Option<AgentState> {
    let bytes = crate::fsutil::read_no_follow(path).ok()?;
    serde_json::from_slice::<AgentState>(&bytes)
        .ok()
        .filter(|s| s.incarnation == incarnation)
}

/// Claude Code's settings for a worker, given with `--settings` (nothing in the user's own
/// files): the bypass-permissions warning skipped, and the hooks that report its state. The
/// hook command finds `co` through `$VERMAS_CO`, which every agent has.
pub const CLAUDE_SETTINGS: &str = r#"{"skipDangerousModePermissionPrompt":true,"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"\"$VERMAS_CO\" agent-hook"}]}],"UserPromptSubmit":[{"hooks":[{"type":"command","command":"\"$VERMAS_CO\" agent-hook"}]}],"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"\"$VERMAS_CO\" agent-hook"}]}],"Stop":[{"hooks":[{"type":"command","command":"\"$VERMAS_CO\" agent-hook"}]}],"Notification":[{"hooks":[{"type":"command","command":"\"$VERMAS_CO\" agent-hook"}]}]}}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hook_event_means_a_state() {
        let table = [
            ("SessionStart", Some(HookState::Idle)),
            ("UserPromptSubmit", Some(HookState::Working)),
            ("PreToolUse", Some(HookState::Working)),
            ("PostToolUse", Some(HookState::Working)),
            ("Stop", Some(HookState::Idle)),
            ("Notification", Some(HookState::Waiting)),
            ("SubagentStop", None),
            ("", None),
        ];
        for (event, want) in table {
            assert_eq!(state_of(event), want, "{event}");
        }
    }

    #[test]
    fn the_last_hook_of_the_current_incarnation_is_read_back() {
        let d = tempfile::tempdir().unwrap();
        let path = state_path(d.path(), "myproject-workers-slot0");
        let input = br#"{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash"}"#;
        let event = event_name(input).unwrap();
        record(&path, "inc-a", &event, 100).unwrap();
        record(&path, "inc-a", "SubagentStop", 101).unwrap();
        let s = read(&path, "inc-a").unwrap();
        assert_eq!(
            (s.state, s.at, s.event.as_str()),
            (HookState::Working, 100, "PreToolUse")
        );
        assert_eq!(read(&path, "inc-b"), None, "another worker's");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(event_name(b"not json"), None);
    }

    #[test]
    fn the_settings_are_json_with_a_hook_for_each_state() {
        let v: serde_json::Value = serde_json::from_str(CLAUDE_SETTINGS).unwrap();
        assert_eq!(v["skipDangerousModePermissionPrompt"], true);
        for event in [
            "SessionStart",
            "UserPromptSubmit",
            "PreToolUse",
            "Stop",
            "Notification",
        ] {
            assert!(state_of(event).is_some(), "{event}");
            assert_eq!(
                v["hooks"][event][0]["hooks"][0]["command"], "\"$VERMAS_CO\" agent-hook",
                "{event}"
            );
        }
    }
}
