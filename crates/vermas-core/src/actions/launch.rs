//! Starting an agent's session: its environment (complete, and private: it reaches the agent
//! through a 0600 file only the agent reads, never a command line), its prompt file, its tmux
//! session with our tags and a log, and the first instruction typed in for CLIs that take it
//! that way.
//!
//! Every session runs `co exec-agent ENV_FILE -- ARGV`: that reads the variables, deletes the
//! file and becomes the agent (same process), so `ps` shows no secret and the pane's process
//! is the agent.

use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::effects::tmux::{self, NudgeOutcome, SessionSpec};
use crate::error::{Error, Result};
use crate::event::{ev, types};
use crate::runtime::{self, Runtime, StartContext};
use crate::store::{Store, StoreError};
use crate::workorder::{Status, WorkOrder};
use std::path::{Path, PathBuf};

/// The `co` that runs now: what sessions run (`co exec-agent`, the built-in loops), and what
/// agents are told to call when a login shell loses PATH.
pub fn co_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("co"))
}

/// Whether this process runs as root (Claude needs `IS_SANDBOX=1` then).
#[allow(unsafe_code)]
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The git identity of an agent: the variables of `co`'s environment when set, else the
/// user's own (`~/.gitconfig`, which some CLIs hide from their commands), else the factory's
/// default (`[worker] git_name`, `git_email`): a commit never fails for want of one.
pub fn git_identity(agent: &AgentId, settings: &crate::config::Settings) -> (String, String) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let user = user_git_identity();
    let name = env("GIT_AUTHOR_NAME")
        .or_else(|| user.as_ref().map(|u| u.0.clone()))
        .unwrap_or_else(|| settings.worker.git_name.clone());
    let slot = match agent {
        AgentId::Worker { slot, .. } => format!("slot{slot}"),
        other => other.role().as_str().to_string(),
    };
    let email = env("GIT_AUTHOR_EMAIL")
        .or_else(|| user.map(|u| u.1))
        .unwrap_or_else(|| {
            settings
                .worker
                .git_email
                .replace("{slot}", &slot)
                .replace("{factory}", agent.factory().unwrap_or("company"))
        });
    (name, email)
}

/// `[user] name` and `email` from the user's global git config files, if both are there.
fn user_git_identity() -> Option<(String, String)> {
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    let (mut name, mut email) = (None, None);
    for file in [xdg.join("git").join("config"), home.join(".gitconfig")] {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let mut in_user = false;
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('[') {
                in_user = l.trim_start_matches('[').trim_end_matches(']').trim() == "user";
                continue;
            }
            if !in_user {
                continue;
            }
            if let Some((k, v)) = l.split_once('=') {
                let v = v.trim().trim_matches('"').to_string();
                match k.trim() {
                    "name" if !v.is_empty() => name = Some(v),
                    "email" if !v.is_empty() => email = Some(v),
                    _ => {}
                }
            }
        }
    }
    Some((name?, email?))
}

/// The environment of an agent (design §4): identity, where the company is, a PATH that finds
/// the same `co`/`wo` that started it, a git identity, and the variables its CLI reads
/// (provider keys and endpoints, proxies, CA bundles) passed on from `co`'s own environment;
/// `extra` (the runtime's and `[runtimes.NAME] env`) last.
pub fn agent_env(
    company: &Company,
    agent: &AgentId,
    work_order: Option<&str>,
    incarnation: &str,
    prompt_file: Option<&Path>,
    extra: &[(String, String)],
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
    let co = co_exe();
    env.push(("PATH".into(), agent_path()));
    // A login shell (some CLIs run commands in one) resets PATH: the full paths still work.
    env.push(("VERMAS_CO".into(), co.display().to_string()));
    if let Some(dir) = co.parent() {
        env.push(("VERMAS_WO".into(), dir.join("wo").display().to_string()));
    }
    for k in runtime::presets::FORWARD_ALWAYS
        .iter()
        .chain(runtime::presets::FORWARD_PROVIDERS)
    {
        if let Ok(v) = std::env::var(k) {
            env.push((k.to_string(), v));
        }
    }
    let settings = agent
        .factory()
        .and_then(|f| company.factory(f).ok())
        .map(|f| f.settings)
        .unwrap_or_else(|| company.settings.clone());
    let (name, email) = git_identity(agent, &settings);
    for k in ["GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"] {
        env.push((k.into(), name.clone()));
    }
    for k in ["GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"] {
        env.push((k.into(), email.clone()));
    }
    env.extend(extra.iter().cloned());
    env
}

/// `PATH` for an agent: this process's, with the directory of this `co` in front.
fn agent_path() -> String {
    let mut path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    if let Some(dir) = co_exe().parent().map(Path::to_path_buf)
        && !std::env::split_paths(&path).any(|p| p == dir)
    {
        path = format!("{}:{path}", dir.display());
    }
    path
}

/// Where an agent's environment waits for it: `<company>/.vermas/run/` (0700).
fn env_dir(company: &Company) -> PathBuf {
    company.root.join(".vermas").join("run")
}

/// A session's start with its environment kept off every command line.
#[derive(Debug, Clone)]
pub struct Private {
    /// `co exec-agent FILE -- ARGV`.
    pub argv: Vec<String>,
    /// What tmux is given: PATH only (tmux takes a new pane's PATH from its client; never a
    /// secret).
    pub env: Vec<(String, String)>,
    /// The 0600 file holding the agent's variables (removed by the agent when it starts).
    pub file: PathBuf,
}

/// Writes `env` to a new 0600 file (never through a symlink) and returns how to start the
/// session so that the agent reads it.
pub fn private_session(
    company: &Company,
    incarnation: &str,
    env: &[(String, String)],
    argv: Vec<String>,
) -> Result<Private> {
    let dir = env_dir(company);
    crate::fsutil::ensure_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
    let file = dir.join(format!(
        "{incarnation}-{}.env",
        crate::ids::new_incarnation_id().trim_start_matches("inc-")
    ));
    let text = serde_json::to_vec(&env).map_err(StoreError::from)?;
    {
        use std::io::Write;
        let mut f = crate::fsutil::create_new(&file).map_err(|e| StoreError::io(&file, e))?;
        f.write_all(&text).map_err(|e| StoreError::io(&file, e))?;
    }
    let mut wrapped = vec![
        co_exe().display().to_string(),
        "exec-agent".to_string(),
        file.display().to_string(),
        "--".to_string(),
    ];
    wrapped.extend(argv);
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(agent_path);
    Ok(Private {
        argv: wrapped,
        env: vec![("PATH".to_string(), path)],
        file,
    })
}

/// `co exec-agent FILE -- PROGRAM ARGS…`: reads the variables written by
/// [`private_session`], deletes the file, and becomes the program (`execve`), so the pane's
/// process is the agent. Returns only on failure.
pub fn exec_agent(file: &Path, argv: &[String]) -> Error {
    use std::os::unix::process::CommandExt;
    let read = crate::fsutil::read_no_follow(file);
    let _ = std::fs::remove_file(file);
    let env: Vec<(String, String)> = match read
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(e) => e,
        Err(e) => {
            return Error::failure(format!(
                "cannot read the agent's environment {}: {e}",
                file.display()
            ));
        }
    };
    let Some((program, args)) = argv.split_first() else {
        return Error::usage("exec-agent: no program given after --");
    };
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());
    // Found on the agent's PATH, not this process's.
    let resolved = match &path {
        Some(p) if !program.contains('/') => std::env::split_paths(p)
            .map(|d| d.join(program))
            .find(|c| crate::effects::tmux::find_program(&c.display().to_string()).is_some())
            .unwrap_or_else(|| PathBuf::from(program)),
        _ => PathBuf::from(program),
    };
    let mut cmd = std::process::Command::new(&resolved);
    cmd.arg0(program).args(args);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let e = cmd.exec();
    Error::failure(format!(
        "{program}: command not found or not runnable ({e})"
    ))
}

/// Writes a runtime's own settings files (only when they changed) and adds the patterns of
/// files it leaves in a worktree to the factory clone's `info/exclude`.
pub fn prepare_runtime(f: Option<&Factory>, start: &runtime::Start, rt: &Runtime) -> Result<()> {
    for (path, content) in &start.files {
        if std::fs::read_to_string(path).ok().as_deref() == Some(content.as_str()) {
            continue;
        }
        if let Some(dir) = path.parent() {
            crate::fsutil::ensure_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        crate::fsutil::atomic_write(path, content.as_bytes())
            .map_err(|e| StoreError::io(path, e))?;
    }
    if let Some(f) = f {
        for pattern in rt.preset.exclude {
            crate::effects::git::add_exclude(&f.git_dir(), pattern)
                .map_err(|e| StoreError::io(&f.git_dir(), e))?;
        }
    }
    Ok(())
}

/// Where VerMAS keeps a runtime's own files.
pub fn runtime_dir(company: &Company, rt: &Runtime) -> PathBuf {
    company
        .root
        .join(".vermas")
        .join("runtimes")
        .join(rt.preset.name)
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
///
/// The directory is 0700 and the file is made 0600 before tmux appends to it (the log holds
/// whatever the agent printed, keys included); a symlink in their place is refused (the
/// session then runs without a log, and stderr says why).
pub fn session_log(company: &Company, agent: &AgentId, incarnation: &str) -> Option<PathBuf> {
    let logs = company.logs_dir();
    let made = crate::fsutil::ensure_dir_all(&logs)
        .and_then(|_| crate::fsutil::ensure_dir_under(&logs, Path::new(&agent.session())))
        .and_then(|dir| {
            let file = dir.join(format!("{incarnation}.log"));
            crate::fsutil::open_append(&file).map(|_| file)
        });
    match made {
        Ok(file) => Some(file),
        Err(e) => {
            eprintln!(
                "warning: no session log for {}: {e}",
                crate::text::escape_control(&agent.session())
            );
            None
        }
    }
}

/// The session of an agent run by an agent CLI outside a worktree (the CEO, or a supervisor or
/// QA configured with one): its context from `co prime` written to `prompt`, the runtime's
/// argv in `cwd`, the agent environment (private), our tags and a log.
pub fn agent_cli_session(
    company: &Company,
    agent: &AgentId,
    rt: &Runtime,
    cwd: PathBuf,
    prompt: &Path,
    incarnation: &str,
) -> Result<SessionSpec> {
    write_prompt(prompt, &crate::prime::prime(company, agent)?)?;
    let dir = runtime_dir(company, rt);
    let start = rt.start(&StartContext {
        role: agent.role().as_str(),
        prompt_file: prompt,
        work_order: None,
        agent_id: &agent.to_string(),
        runtime_dir: &dir,
        repo: None,
        cwd: &cwd,
        root: running_as_root(),
    });
    prepare_runtime(None, &start, rt)?;
    let env = agent_env(company, agent, None, incarnation, Some(prompt), &start.env);
    let p = private_session(company, incarnation, &env, start.argv)?;
    Ok(SessionSpec {
        name: agent.session(),
        cwd,
        env: p.env,
        argv: p.argv,
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

/// A worker's session: the runtime's argv in the worktree, the agent environment (private),
/// our tags and a log of its output; and the env file it reads (removed if the session
/// never starts). With `gated`, `co exec-agent` holds the agent until its prompt file exists
/// (see [`wait_for_file`]), so the session can be created while git still makes the worktree.
/// Nothing from the work order's text is on the command line.
pub fn worker_session_spec(
    l: &Launch<'_>,
    prompt: &Path,
    gated: bool,
) -> Result<(SessionSpec, PathBuf)> {
    let agent = AgentId::worker(&l.factory.name, l.slot);
    let dir = runtime_dir(l.company, l.runtime);
    let start = l.runtime.start(&StartContext {
        role: "worker",
        prompt_file: prompt,
        work_order: Some(&l.work_order.id),
        agent_id: &agent.to_string(),
        runtime_dir: &dir,
        repo: Some(&l.factory.dir),
        cwd: l.worktree,
        root: running_as_root(),
    });
    prepare_runtime(Some(l.factory), &start, l.runtime)?;
    let env = agent_env(
        l.company,
        &agent,
        Some(&l.work_order.id),
        l.incarnation,
        Some(prompt),
        &start.env,
    );
    let Private {
        mut argv,
        env,
        file,
    } = private_session(l.company, l.incarnation, &env, start.argv)?;
    if gated {
        // `co exec-agent FILE --after PROMPT -- …`: held until the prompt file is written.
        argv.splice(3..3, ["--after".to_string(), prompt.display().to_string()]);
    }
    Ok((
        SessionSpec {
            name: agent.session(),
            cwd: l.worktree.to_path_buf(),
            env,
            argv,
            tags: session_tags(l.company, &agent, l.incarnation),
            log_file: session_log(l.company, &agent, l.incarnation),
        },
        file,
    ))
}

/// How long a held agent waits for its worktree (see [`wait_for_file`]).
pub const HOLD_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Holds an agent until its worktree is ready: waits for `path` (the prompt file, written
/// last) to exist, at most `limit`. It looks every millisecond for the first quarter second
/// (no process per look: the agent starts within a millisecond of the usual small worktree),
/// then every 20 ms (a big checkout may take seconds, and nobody waits for the last 20 ms
/// of it). Returns whether the file appeared.
pub fn wait_for_file(path: &Path, limit: std::time::Duration) -> bool {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    loop {
        if std::fs::symlink_metadata(path).is_ok() {
            return true;
        }
        let waited = start.elapsed();
        if waited >= limit {
            return false;
        }
        let step = if waited < Duration::from_millis(250) {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(20)
        };
        std::thread::sleep(step.min(limit - waited));
    }
}

/// Writes the prompt file and starts the tagged session (the worktree exists already).
pub fn start_worker_session(l: &Launch<'_>, attempt: u32) -> Result<String> {
    let prompt = write_worker_prompt(l.worktree, l.work_order, l.factory, l.slot, attempt)?;
    let (spec, file) = worker_session_spec(l, &prompt, false)?;
    if let Err(e) = l.company.tmux().new_session(&spec) {
        let _ = std::fs::remove_file(&file);
        return Err(e.into());
    }
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

/// Types the first instruction into agents whose CLI takes it that way, once the agent shows
/// its input prompt (within its runtime's start time), and records `agent.nudged`. Nothing is
/// typed into a dialog. It comes after the start is committed, so it never fails it: a nudge
/// that could not go in is reported as not delivered, and the caller says so.
pub fn start_nudge(
    company: &Company,
    store: &Store,
    runtime: &Runtime,
    agent: &AgentId,
    actor: &str,
) -> Option<NudgeOutcome> {
    if !runtime.typed_first_message() {
        return None;
    }
    let t = company.tmux();
    let session = agent.session();
    let start = std::time::Instant::now();
    while start.elapsed() < runtime.start_timeout() {
        let pane = t.capture(&session, 0).unwrap_or_default();
        let ready = match runtime.classify(&pane) {
            runtime::Screen::Ready => true,
            runtime::Screen::Dialog { .. } => break,
            // A runtime whose screen VerMAS cannot read: any output means it is up.
            runtime::Screen::Unknown => !runtime.reads_screen() && !pane.trim().is_empty(),
            runtime::Screen::Working => false,
        };
        if ready {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let text = runtime::start_message(agent.role().as_str());
    let out = crate::actions::nudge::guarded(
        &t,
        &session,
        Some(runtime),
        &text,
        crate::actions::nudge::Nudger::Loop,
    )
    .unwrap_or(NudgeOutcome::refused("no session".into()));
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

#[cfg(test)]
mod tests {
    use super::wait_for_file;
    use std::time::{Duration, Instant};

    #[test]
    fn a_held_agent_starts_once_its_prompt_appears_and_gives_up_after_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let prompt = dir.path().join("PROMPT.md");
        let t = Instant::now();
        assert!(!wait_for_file(&prompt, Duration::from_millis(300)));
        let waited = t.elapsed();
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2));
        let p = prompt.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(p, "go").unwrap();
        });
        let t = Instant::now();
        assert!(wait_for_file(&prompt, Duration::from_secs(30)));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "released when it appeared"
        );
        writer.join().unwrap();
    }
}
