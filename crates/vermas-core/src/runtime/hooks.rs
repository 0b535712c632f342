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
    /// Messages already handed over at the end of a turn (each only once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handed_over: Vec<String>,
}

/// What a hook's JSON input says, as far as VerMAS reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct HookInput {
    pub hook_event_name: String,
    /// `Stop` only: the turn goes on because a Stop hook asked for it already.
    #[serde(default)]
    pub stop_hook_active: bool,
}

/// An unread message, as the hand-over names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unread {
    pub id: String,
    pub from: String,
    pub subject: String,
}

/// At the end of a turn (`Stop`), mail the agent has not read and was not told about yet is
/// handed over: the answer asks Claude Code to go on (`decision: block`) with a reason naming
/// the messages and how to read them. Never when the turn already goes on because of a Stop
/// hook (no loop), and each message only once. Returns the answer and the ids handed over.
pub fn hand_over(
    input: &HookInput,
    unread: &[Unread],
    told: &[String],
) -> Option<(String, Vec<String>)> {
    if input.hook_event_name != "Stop" || input.stop_hook_active {
        return None;
    }
    let new: Vec<&Unread> = unread.iter().filter(|m| !told.contains(&m.id)).collect();
    if new.is_empty() {
        return None;
    }
    let list: Vec<String> = new
        .iter()
        .map(|m| {
            format!(
                "{} from {}: \"{}\"",
                m.id,
                crate::text::escape_control(&m.from),
                crate::text::escape_control(&m.subject)
            )
        })
        .collect();
    let reason = format!(
        "You have {} unread message(s): {}. Read each with `co read <id>` (or `co inbox`), act on what it asks, then carry on with your work order.",
        new.len(),
        list.join("; ")
    );
    let answer = serde_json::json!({ "decision": "block", "reason": reason }).to_string();
    Some((answer, new.iter().map(|m| m.id.clone()).collect()))
}

/// Where a worker's state is kept: `<factory>/.work/.agents/.<file key>.json`.
pub fn state_path(work_dir: &Path, file_key: &str) -> PathBuf {
    work_dir.join(".agents").join(format!(".{file_key}.json"))
}

/// A hook's JSON input (`None` when it is not one).
pub fn parse_input(input: &[u8]) -> Option<HookInput> {
    serde_json::from_slice::<HookInput>(input).ok()
}

/// Writes a worker's state file.
pub fn record(path: &Path, s: &AgentState) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::fsutil::ensure_dir_all(dir)?;
    }
    let text = serde_json::to_vec(s).map_err(std::io::Error::other)?;
    crate::fsutil::atomic_write_unsynced(path, &text)
}

/// One hook of a worker (`co agent-hook`): records what it says in the worker's state file and,
/// at the end of a turn, hands over unread mail. Returns what to print for the CLI (the
/// hand-over's answer), if anything. `agent` and `incarnation` come from the agent's
/// environment; `at` is now (Unix seconds).
pub fn handle(
    company_root: &Path,
    agent: &crate::agent::AgentId,
    incarnation: &str,
    input: &[u8],
    at: i64,
) -> std::io::Result<Option<String>> {
    let Some(input) = parse_input(input) else {
        return Ok(None);
    };
    let Some(mut state) = state_of(&input.hook_event_name) else {
        return Ok(None);
    };
    let Some(factory) = agent.factory() else {
        return Ok(None);
    };
    let work = company_root.join(factory).join(".work");
    if !work.is_dir() {
        return Ok(None);
    }
    let path = state_path(&work, &agent.file_key());
    let mut told = read(&path, incarnation)
        .map(|s| s.handed_over)
        .unwrap_or_default();
    let mut answer = None;
    if input.hook_event_name == "Stop" {
        let unread = unread_mail(company_root, agent, incarnation);
        if let Some((text, ids)) = hand_over(&input, &unread, &told) {
            told.extend(ids);
            // The turn goes on: the agent is reading its mail.
            state = HookState::Working;
            answer = Some(text);
        }
    }
    record(
        &path,
        &AgentState {
            incarnation: incarnation.to_string(),
            state,
            event: input.hook_event_name.clone(),
            at,
            handed_over: told,
        },
    )?;
    Ok(answer)
}

/// The unread mail of a worker's incarnation in its factory's store (none when it cannot be
/// read: a hook never fails because of mail).
fn unread_mail(root: &Path, agent: &crate::agent::AgentId, incarnation: &str) -> Vec<Unread> {
    let store = crate::company::Company::open(root)
        .and_then(|c| c.factory(agent.factory().unwrap_or_default()))
        .and_then(|f| f.store());
    let Ok(store) = store else {
        return Vec::new();
    };
    let Ok(loaded) = store.load::<crate::mail::Messages>() else {
        return Vec::new();
    };
    loaded
        .state
        .inbox(&agent.to_string(), false)
        .into_iter()
        .filter(|m| crate::mail::is_for(m, Some(incarnation)))
        .map(|m| Unread {
            id: m.id.clone(),
            from: m.from.clone(),
            subject: m.subject.clone(),
        })
        .collect()
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
        let event = parse_input(input).unwrap().hook_event_name;
        let s = AgentState {
            incarnation: "inc-a".into(),
            state: state_of(&event).unwrap(),
            event,
            at: 100,
            handed_over: vec![],
        };
        record(&path, &s).unwrap();
        let s = read(&path, "inc-a").unwrap();
        assert_eq!(
            (s.state, s.at, s.event.as_str()),
            (HookState::Working, 100, "PreToolUse")
        );
        assert_eq!(read(&path, "inc-b"), None, "another worker's");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(parse_input(b"not json"), None);
    }

    #[test]
    fn unread_mail_is_handed_over_once_at_the_end_of_a_turn_never_in_a_loop() {
        let stop = HookInput {
            hook_event_name: "Stop".into(),
            stop_hook_active: false,
        };
        let mail = |id: &str| Unread {
            id: id.into(),
            from: "myproject/supervisor".into(),
            subject: "NUDGE \u{1b}[31mwake".into(),
        };
        let (answer, ids) = hand_over(&stop, &[mail("msg-a"), mail("msg-b")], &[]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["decision"], "block");
        let reason = v["reason"].as_str().unwrap();
        assert!(
            reason.contains("2 unread message(s)") && reason.contains("co read"),
            "{reason}"
        );
        assert!(!reason.contains('\u{1b}'), "escaped: {reason}");
        assert_eq!(ids, vec!["msg-a", "msg-b"]);
        // Told already: nothing more; a new one: only it.
        assert_eq!(hand_over(&stop, &[mail("msg-a")], &ids), None);
        let (_, ids2) = hand_over(&stop, &[mail("msg-a"), mail("msg-c")], &ids).unwrap();
        assert_eq!(ids2, vec!["msg-c"]);
        // Not while a Stop hook already keeps the turn going, nor for other events.
        let again = HookInput {
            stop_hook_active: true,
            ..stop.clone()
        };
        assert_eq!(hand_over(&again, &[mail("msg-d")], &[]), None);
        let tool = HookInput {
            hook_event_name: "PreToolUse".into(),
            stop_hook_active: false,
        };
        assert_eq!(hand_over(&tool, &[mail("msg-d")], &[]), None);
        assert_eq!(hand_over(&stop, &[], &[]), None);
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
