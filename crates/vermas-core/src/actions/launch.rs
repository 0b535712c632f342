//! Starting an agent's session: its environment, its prompt file, its tmux session spec with
//! our tags and a log, the first instruction typed in for CLIs that take it that way.

use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::effects::tmux::{self, NudgeOutcome, SessionSpec};
use crate::error::Result;
use crate::event::{ev, types};
use crate::runtime::{self, PromptMode, Runtime};
use crate::store::{Store, StoreError};
use crate::workorder::{Status, WorkOrder};
use std::path::{Path, PathBuf};

/// Environment variables passed from the dispatching process to every agent (the tmux server
/// may have been started long ago with a different environment).
pub const FORWARD_ENV: &[&str] = &[
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
];

/// The environment of an agent (design §4): identity, where the company is, and a PATH that
/// finds the same `co`/`wo` that started it.
pub fn agent_env(
    company: &Company,
    agent: &AgentId,
    work_order: Option<&str>,
    incarnation: &str,
    prompt_file: Option<&Path>,
    extra: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("AGENT_ID".to_string(), agent.to_string()),
        ("CO_ROLE".to_string(), agent.role().as_str().to_string()),
        (
            "COMPANY_ROOT".to_string(),
            company.root.display().to_string(),
        ),
        ("VERMAS_INCARNATION".to_string(), incarnation.to_string()),
    ];
    if let Some(f) = agent.factory() {
        env.push(("CO_FACTORY".into(), f.to_string()));
    }
    if let Some(w) = work_order {
        env.push(("WORK_ORDER_ID".into(), w.to_string()));
    }
    if let Some(p) = prompt_file {
        env.push(("VERMAS_PROMPT_FILE".into(), p.display().to_string()));
    }
    if let Some(s) = company.tmux().socket_setting() {
        env.push(("VERMAS_TMUX_SOCKET".into(), s));
    }
    let mut path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let d = dir.display().to_string();
        if !std::env::split_paths(&path).any(|p| p == dir) {
            path = format!("{d}:{path}");
        }
    }
    env.push(("PATH".into(), path));
    for k in FORWARD_ENV {
        if let Ok(v) = std::env::var(k) {
            env.push((k.to_string(), v));
        }
    }
    for (k, v) in extra {
        env.push((k.clone(), v.clone()));
    }
    env
}

/// The prompt file of a worker: its role prompt and its assignment (files may hold any text;
/// nothing from a work order is ever typed or passed on a command line).
pub fn write_worker_prompt(
    worktree: &Path,
    wo: &WorkOrder,
    f: &Factory,
    slot: u32,
    attempt: u32,
) -> Result<PathBuf> {
    let mut text = String::new();
    text.push_str(runtime::role_prompt("worker"));
    text.push_str("\n---\n\n## Your assignment\n\n");
    text.push_str(&format!(
        "- Work order: {} ({}, priority P{})\n- Title: {}\n- Factory: {}, slot {slot}, attempt {attempt} of {}\n- Branch: vermas/{} (QA merges into {})\n",
        wo.id,
        wo.kind,
        wo.priority,
        wo.title,
        f.name,
        f.settings.worker.max_attempts,
        wo.id,
        f.target_branch()
    ));
    if !wo.description.is_empty() {
        text.push_str("\n### Description\n\n");
        text.push_str(&wo.description);
        text.push('\n');
    }
    if let Some(fail) = &wo.last_failure
        && wo.status == Status::Rework
    {
        text.push_str("\n### Why it came back (fix this first)\n\n```\n");
        text.push_str(fail);
        text.push_str("\n```\n");
    }
    let path = worktree.join(".vermas").join("PROMPT.md");
    write_prompt(&path, &text)?;
    Ok(path)
}

/// Writes an agent's prompt file. Its directory (`.vermas/`, which a branch could have
/// committed as a symlink) must be a real directory: nothing is written through a link. No
/// fsync: the file is written again at every start.
pub fn write_prompt(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        crate::fsutil::ensure_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    }
    crate::fsutil::atomic_write_unsynced(path, text.as_bytes())
        .map_err(|e| StoreError::io(path, e))?;
    Ok(())
}

/// `logs/<session>/<incarnation>.log`, where a session's output is kept (`None` when the
/// directory cannot be made: the session starts anyway, without a log).
pub fn session_log(company: &Company, agent: &AgentId, incarnation: &str) -> Option<PathBuf> {
    let logs = company.logs_dir().join(agent.session());
    std::fs::create_dir_all(&logs)
        .ok()
        .map(|_| logs.join(format!("{incarnation}.log")))
}

/// The session of an agent run by an agent CLI outside a worktree (the CEO, or a supervisor or
/// QA configured with one): its context from `co prime` written to `prompt`, the runtime's
/// argv in `cwd`, the agent environment, our tags and a log.
pub fn agent_cli_session(
    company: &Company,
    agent: &AgentId,
    rt: &Runtime,
    cwd: PathBuf,
    prompt: &Path,
    incarnation: &str,
) -> Result<SessionSpec> {
    write_prompt(prompt, &crate::prime::prime(company, agent)?)?;
    Ok(SessionSpec {
        name: agent.session(),
        cwd,
        env: agent_env(company, agent, None, incarnation, Some(prompt), &rt.env),
        argv: rt.start_argv(agent.role().as_str(), prompt, None, &agent.to_string()),
        tags: session_tags(company, agent, incarnation),
        log_file: session_log(company, agent, incarnation),
    })
}

/// Everything needed to start (or restart) a worker's agent in its slot.
pub struct Launch<'a> {
    pub company: &'a Company,
    pub factory: &'a Factory,
    pub slot: u32,
    pub work_order: &'a WorkOrder,
    pub incarnation: &'a str,
    pub runtime: &'a Runtime,
    pub worktree: &'a Path,
}

/// A worker's session: the runtime's argv in the worktree, the agent environment, our tags and
/// a log of its output. With `gated`, the agent is held by a tiny `sh` loop until its prompt
/// file exists (see [`GATE`]), so the session can be created while git still makes the
/// worktree. Nothing from the work order's text is on the command line.
pub fn worker_session_spec(l: &Launch<'_>, prompt: &Path, gated: bool) -> SessionSpec {
    let agent = AgentId::worker(&l.factory.name, l.slot);
    let mut argv =
        l.runtime
            .start_argv("worker", prompt, Some(&l.work_order.id), &agent.to_string());
    if gated {
        let mut wrapped = vec![
            "sh".to_string(),
            "-c".to_string(),
            GATE.to_string(),
            prompt.display().to_string(),
        ];
        wrapped.append(&mut argv);
        argv = wrapped;
    }
    SessionSpec {
        name: agent.session(),
        cwd: l.worktree.to_path_buf(),
        env: agent_env(
            l.company,
            &agent,
            Some(&l.work_order.id),
            l.incarnation,
            Some(prompt),
            &l.runtime.env,
        ),
        argv,
        tags: session_tags(l.company, &agent, l.incarnation),
        log_file: session_log(l.company, &agent, l.incarnation),
    }
}

/// Holds an agent until its worktree is ready: waits (at most a minute) for the file named by
/// `$0` (the prompt file, written last), then replaces itself with the agent (`exec "$@"`), so
/// the pane's process is the agent. A constant script: paths and the argv are arguments.
pub const GATE: &str = r#"i=0; while [ ! -e "$0" ]; do i=$((i+1)); [ "$i" -gt 6000 ] && exit 1; sleep 0.01; done; exec "$@""#;

/// Writes the prompt file and starts the tagged session (the worktree exists already).
pub fn start_worker_session(l: &Launch<'_>, attempt: u32) -> Result<String> {
    let prompt = write_worker_prompt(l.worktree, l.work_order, l.factory, l.slot, attempt)?;
    let spec = worker_session_spec(l, &prompt, false);
    l.company.tmux().new_session(&spec)?;
    Ok(spec.name)
}

/// The tags every session of ours carries.
pub fn session_tags(
    company: &Company,
    agent: &AgentId,
    incarnation: &str,
) -> Vec<(String, String)> {
    vec![
        (tmux::TAG_COMPANY.to_string(), company.tag()),
        (tmux::TAG_INCARNATION.to_string(), incarnation.to_string()),
        (tmux::TAG_AGENT.to_string(), agent.to_string()),
        (
            tmux::TAG_ROLE.to_string(),
            agent.role().as_str().to_string(),
        ),
    ]
}

/// Types the first instruction into agents whose CLI has no start-prompt argument, once the
/// agent shows it is ready (its `ready_text`, or any output), and records `agent.nudged`. It
/// comes after the start is committed, so it never fails it: a nudge tmux could not type is
/// reported as not delivered, and the caller says so.
pub fn start_nudge(
    company: &Company,
    store: &Store,
    runtime: &Runtime,
    agent: &AgentId,
    actor: &str,
) -> Option<NudgeOutcome> {
    if runtime.prompt != PromptMode::Nudge {
        return None;
    }
    let t = company.tmux();
    let session = agent.session();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(20) {
        let pane = t.capture(&session, 0).unwrap_or_default();
        let ready = match &runtime.ready_text {
            Some(r) => pane.contains(r.as_str()),
            None => !pane.trim().is_empty(),
        };
        if ready {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let text = runtime::start_message(agent.role().as_str());
    let out = t.nudge(&session, &text).unwrap_or(NudgeOutcome {
        delivered: false,
        enters: 0,
    });
    // The record is for people reading the log; a failure to write it changes nothing above.
    let _ = record_nudge(store, actor, agent, &out, &text, Some("start"));
    Some(out)
}

/// Appends `agent.nudged`.
pub fn record_nudge(
    store: &Store,
    actor: &str,
    agent: &AgentId,
    out: &NudgeOutcome,
    text: &str,
    reason: Option<&str>,
) -> Result<()> {
    let data = crate::slots::Nudged {
        agent: agent.to_string(),
        session: agent.session(),
        delivered: out.delivered,
        enters: out.enters,
        text: text.chars().take(200).collect(),
        reason: reason.map(str::to_string),
    };
    store.append(vec![ev(types::AGENT_NUDGED, actor, &data)?])?;
    Ok(())
}
