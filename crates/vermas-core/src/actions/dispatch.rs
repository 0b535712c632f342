//! `co dispatch WO FACTORY`: give a work order to a worker (design §2–§5).
//!
//! Under the store locks (company first, then factory: one global order, so two commands never
//! wait on each other): check the work order can be dispatched (open, queued or rework, its
//! dependencies closed), take the lowest free slot, make the worktree on `vermas/<wo-id>` from
//! the target branch (or continue the branch, or bring back a parked worktree), write the
//! assignment, start `worker-<f>-slotN` with the agent environment, then write the events. For
//! a new worktree the session is started first, its agent held by [`GATE`] until the prompt
//! file (written last) exists, so tmux and git work at the same time. Any failure undoes what
//! earlier steps made. With no free slot the work order is queued.

use crate::agent::AgentId;
use crate::assignment::{self, Assignment};
use crate::company::{Company, Factory};
use crate::effects::git;
use crate::effects::tmux::{self, NudgeOutcome, SessionSpec};
use crate::error::{Error, Result};
use crate::event::{NewEvent, types};
use crate::runtime::{self, PromptMode, Runtime};
use crate::slots::{AgentEvent, AssignmentEvent, SlotAllocated, Slots, WorktreeEvent};
use crate::store::{Store, StoreError, Writer};
use crate::workorder::{self, Assigned, Status, WorkOrder, WorkOrders};
use std::path::{Path, PathBuf};

/// What `co dispatch` asks for.
#[derive(Debug, Clone)]
pub struct DispatchRequest {
    pub work_order: String,
    pub factory: String,
    pub runtime: Option<String>,
    pub no_queue: bool,
    pub actor: String,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum DispatchOutcome {
    Spawned {
        session: String,
        slot: u32,
        work_order: String,
        incarnation: String,
        attach: String,
        nudge: Option<NudgeOutcome>,
    },
    Queued {
        work_order: String,
        factory: String,
        position: usize,
        of: usize,
        busy: u32,
    },
    /// A slot was free, but work of higher priority was already queued for the factory: that
    /// work got the slot and this one is queued behind it.
    QueuedBehind {
        work_order: String,
        factory: String,
        position: usize,
        of: usize,
        /// What the queue's head got; `None` when the slot was taken meanwhile (by the
        /// supervisor serving the same queue), which is fine: the head stays first.
        ran: Option<Box<DispatchOutcome>>,
    },
}

/// What one pass of dispatch decided.
enum Step {
    Done(DispatchOutcome),
    /// Queued behind `head`, which should get the free slot.
    Behind {
        head: String,
    },
}

/// The writers of a work order's home store and of a factory store, taken in one global order.
pub struct Locked<'a> {
    home: Option<Writer<'a>>,
    pub factory: Writer<'a>,
}

impl<'a> Locked<'a> {
    /// Locks both (once when they are the same store), in path order: the company store always
    /// sorts before its factories, so every command takes the company lock first.
    pub fn take(home: &'a Store, factory: &'a Store) -> Result<Locked<'a>> {
        if home.dir() == factory.dir() {
            return Ok(Locked {
                home: None,
                factory: factory.lock()?,
            });
        }
        if home.dir() < factory.dir() {
            let h = home.lock()?;
            let f = factory.lock()?;
            Ok(Locked {
                home: Some(h),
                factory: f,
            })
        } else {
            let f = factory.lock()?;
            let h = home.lock()?;
            Ok(Locked {
                home: Some(h),
                factory: f,
            })
        }
    }

    /// The writer of the work order's home store.
    pub fn home(&mut self) -> &mut Writer<'a> {
        match self.home.as_mut() {
            Some(h) => h,
            None => &mut self.factory,
        }
    }

    /// Appends the home store's and the factory's events (one batch each; one batch in total
    /// when they are the same store).
    pub fn append(&mut self, home: Vec<NewEvent>, factory: Vec<NewEvent>) -> Result<()> {
        match self.home.as_mut() {
            Some(h) => {
                h.append(home)?;
                self.factory.append(factory)?;
            }
            None => {
                let mut all = home;
                all.extend(factory);
                self.factory.append(all)?;
            }
        }
        Ok(())
    }

    pub fn report_warnings(&mut self) {
        if let Some(h) = self.home.as_mut() {
            h.report_warnings();
        }
        self.factory.report_warnings();
    }
}

pub(crate) fn ev(ty: &str, actor: &str, data: &impl serde::Serialize) -> Result<NewEvent> {
    Ok(NewEvent::new(ty, actor, data).map_err(StoreError::from)?)
}

/// Work orders queued for a factory, from every store of the company, most urgent then oldest.
pub fn queued_for(company: &Company, factory: &str) -> Result<Vec<WorkOrder>> {
    queued_among(company, factory, &[], false)
}

/// [`queued_for`], reusing the projections of stores already loaded (`(store dir, state)`).
/// With `ready_only`, work still waiting on open dependencies (gained after it was queued) is
/// left out: it cannot take a slot, so it must not hold up the work behind it.
fn queued_among(
    company: &Company,
    factory: &str,
    loaded: &[(&Path, &WorkOrders)],
    ready_only: bool,
) -> Result<Vec<WorkOrder>> {
    let mut out = Vec::new();
    for s in company.stores_for_reading()? {
        let fresh;
        let wos = match loaded.iter().find(|(dir, _)| *dir == s.dir()) {
            Some((_, wos)) => *wos,
            None => {
                fresh = s.load::<WorkOrders>()?.state;
                &fresh
            }
        };
        out.extend(wos.all().into_iter().filter(|w| {
            w.status == Status::Queued
                && w.factory.as_deref() == Some(factory)
                && (!ready_only || workorder::open_blockers(wos, w).is_empty())
        }));
    }
    workorder::sort_by_priority_then_age(&mut out);
    Ok(out)
}

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

/// How the worktree of a dispatch came to be (so a failure can undo it).
#[derive(Debug, Clone, PartialEq)]
enum WorktreeMade {
    NewBranch,
    ExistingBranch,
    Unparked(PathBuf),
    Reused,
}

impl WorktreeMade {
    fn how(&self) -> &'static str {
        match self {
            WorktreeMade::NewBranch => "new_branch",
            WorktreeMade::ExistingBranch => "existing_branch",
            WorktreeMade::Unparked(_) => "unparked",
            WorktreeMade::Reused => "reused",
        }
    }
}

/// Moves whatever occupies a slot directory out of the way: a worktree kept from an earlier
/// worker goes to `workers/parked/<wo>`; a stray directory to `workers/stale/`. Never deletes.
fn clear_slot_dir(f: &Factory, path: &Path, keep_branch: &str) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let repo = f.git_dir();
    let wt = git::worktrees(&repo)?.into_iter().find(|w| {
        w.path == path
            || w.path.canonicalize().ok().as_deref() == path.canonicalize().ok().as_deref()
    });
    match wt {
        Some(w) if w.branch.as_deref() == Some(keep_branch) => Ok(true),
        Some(w) => {
            let name = w
                .branch
                .as_deref()
                .and_then(|b| b.strip_prefix("vermas/"))
                .map(str::to_string)
                .unwrap_or_else(|| format!("detached-{}", crate::ids::new_incarnation_id()));
            let dest = f.parked_dir(&name);
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p).map_err(|e| StoreError::io(p, e))?;
            }
            if dest.exists() {
                return Err(Error::conflict(format!(
                    "{} is in the way and {} already exists; move one of them by hand",
                    path.display(),
                    dest.display()
                )));
            }
            git::worktree_move(&repo, path, &dest)?;
            Ok(false)
        }
        None => {
            let stale = f.dir.join("workers").join("stale");
            std::fs::create_dir_all(&stale).map_err(|e| StoreError::io(&stale, e))?;
            let dest = stale.join(format!(
                "{}-{}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                chrono::Utc::now().format("%Y%m%dT%H%M%S")
            ));
            match std::fs::rename(path, &dest) {
                Ok(()) => Ok(false),
                // Gone meanwhile: nothing is in the way any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(StoreError::io(path, e).into()),
            }
        }
    }
}

/// Makes the worktree of a slot. `precreated`: the slot directory was just made empty (so the
/// session could start meanwhile) and git fills it.
fn make_worktree(
    f: &Factory,
    slot: u32,
    wo_id: &str,
    branch: &str,
    precreated: bool,
) -> Result<WorktreeMade> {
    let repo = f.git_dir();
    let path = f.slot_dir(slot);
    if !precreated && clear_slot_dir(f, &path, branch)? {
        return Ok(WorktreeMade::Reused);
    }
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| StoreError::io(p, e))?;
    }
    let parked = f.parked_dir(wo_id);
    if parked.is_dir() {
        git::worktree_move(&repo, &parked, &path)?;
        return Ok(WorktreeMade::Unparked(parked));
    }
    if git::worktree_add_branch(&repo, &path, branch, f.target_branch())? {
        Ok(WorktreeMade::NewBranch)
    } else {
        Ok(WorktreeMade::ExistingBranch)
    }
}

fn undo_worktree(f: &Factory, slot: u32, branch: &str, made: &WorktreeMade) {
    let repo = f.git_dir();
    let path = f.slot_dir(slot);
    match made {
        WorktreeMade::NewBranch => {
            let _ = git::worktree_remove(&repo, &path, true);
            let _ = git::delete_branch(&repo, branch, true);
        }
        WorktreeMade::ExistingBranch => {
            let _ = git::worktree_remove(&repo, &path, true);
        }
        WorktreeMade::Unparked(from) => {
            let _ = git::worktree_move(&repo, &path, from);
        }
        WorktreeMade::Reused => {}
    }
    let _ = git::worktree_prune(&repo);
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

/// A `slot.released` for an orphaned slot, and the re-queue of its work order (with its id).
type Reclaimed = (NewEvent, Option<(String, NewEvent)>);

/// Frees slots whose session is gone and whose assignment file was removed by hand (the
/// guide's recovery steps): `slot.released`, and the work order goes back to the queue.
fn reclaim_orphans(
    company: &Company,
    f: &Factory,
    slots: &Slots,
    actor: &str,
) -> Result<Vec<Reclaimed>> {
    let mut out = Vec::new();
    let tmux = company.tmux();
    for s in slots.all() {
        let agent = AgentId::worker(&f.name, s.slot);
        // Only a slot whose assignment file is gone can be an orphan; ask tmux about those.
        if f.assignment_path(&agent).exists() || tmux.has_session(&agent.session()) {
            continue;
        }
        let rel = ev(
            types::SLOT_RELEASED,
            actor,
            &crate::slots::SlotReleased {
                slot: s.slot,
                agent: s.agent.clone(),
                work_order: s.work_order.clone(),
                incarnation: s.incarnation.clone(),
                reason: "orphaned: session gone and assignment file removed".into(),
                worktree_kept: None,
            },
        )?;
        let requeue = match company
            .store_for_work_order(&s.work_order)
            .and_then(|st| Ok(st.load::<WorkOrders>()?.state.get(&s.work_order)))
        {
            Ok(Some(wo)) if matches!(wo.status, Status::Assigned | Status::InProgress) => Some((
                s.work_order.clone(),
                workorder::plan_transition(
                    &wo,
                    Status::Queued,
                    Some("its worker was lost (session gone, assignment removed)"),
                    Some(&f.name),
                    actor,
                )?,
            )),
            _ => None,
        };
        out.push((rel, requeue));
    }
    Ok(out)
}

fn write_deferred(deferred: Vec<(Store, NewEvent)>) -> Result<()> {
    for (store, e) in deferred {
        store.append(vec![e])?;
    }
    Ok(())
}

/// What a launch made in its slot.
type Launched = (u32, AgentId, PathBuf, PathBuf, WorktreeMade, String);

/// Makes the worktree and the assignment of one slot and starts its session. `Ok(None)` when
/// the slot's session name is taken (everything made is undone; try the next slot).
#[allow(clippy::too_many_arguments)]
fn launch_in_slot(
    company: &Company,
    f: &Factory,
    wo: &WorkOrder,
    slot: u32,
    incarnation: &str,
    attempt: u32,
    branch: &str,
    rt: &Runtime,
) -> Result<Option<Launched>> {
    let tmux = company.tmux();
    let agent = AgentId::worker(&f.name, slot);
    let worktree = f.slot_dir(slot);
    let apath = f.assignment_path(&agent);
    let the_assignment = Assignment::of_work_order(
        &agent,
        wo,
        incarnation,
        attempt,
        branch,
        &worktree.display().to_string(),
    );
    let launch = Launch {
        company,
        factory: f,
        slot,
        work_order: wo,
        incarnation,
        runtime: rt,
        worktree: &worktree,
    };
    // The usual case, a new worktree in an empty slot: create the session at once, its agent
    // held until the prompt file appears, and let git make the worktree meanwhile (tmux and
    // git are the two slow steps; they overlap). Otherwise (a parked worktree coming back, a
    // worktree already in the slot) one after the other.
    let overlap = !worktree.exists() && !f.parked_dir(&wo.id).exists();
    if !overlap && worktree.exists() && tmux.has_session(&agent.session()) {
        // A session still runs in what is in the slot (its worker reported done and has not
        // exited yet): leave its directory alone and try another slot.
        return Ok(None);
    }
    let prompt = worktree.join(".vermas").join("PROMPT.md");
    let mut pending = None;
    if overlap {
        if let Some(p) = worktree.parent() {
            std::fs::create_dir_all(p).map_err(|e| StoreError::io(p, e))?;
        }
        std::fs::create_dir(&worktree).map_err(|e| StoreError::io(&worktree, e))?;
        match tmux.spawn_session(&worker_session_spec(&launch, &prompt, true)) {
            Ok(p) => pending = Some(p),
            Err(e) => {
                let _ = std::fs::remove_dir(&worktree);
                return Err(e.into());
            }
        }
    }
    // The assignment file (written and fsynced) is written on another thread while git makes
    // the worktree; the agent needs both and starts after both.
    let fresh = std::fs::symlink_metadata(&apath).is_err();
    let (made, written) = std::thread::scope(|s| {
        let writer = fresh.then(|| s.spawn(|| assignment::write(&apath, &the_assignment)));
        let made = make_worktree(f, slot, &wo.id, branch, overlap);
        let written = match writer {
            Some(w) => w
                .join()
                .unwrap_or_else(|_| Err(Error::failure("writing the assignment panicked"))),
            None => assignment::write(&apath, &the_assignment),
        };
        (made, written)
    });
    // What a failure from here on undoes. A session is only killed once we know it is ours.
    let undo = |made: Option<&WorktreeMade>| {
        if written.is_ok() {
            let _ = assignment::remove(&apath);
        }
        match made {
            Some(m) => undo_worktree(f, slot, branch, m),
            None => {
                let _ = std::fs::remove_dir(&worktree);
            }
        }
    };
    let made = match made {
        Ok(m) => m,
        Err(e) => {
            if let Some(p) = pending
                && p.wait().is_ok()
            {
                let _ = tmux.kill_session(&agent.session(), &company.tag());
            }
            undo(None);
            return Err(e);
        }
    };
    let started = match (pending, &written) {
        (Some(p), Ok(())) => {
            // Writing the prompt releases the held agent.
            match write_worker_prompt(&worktree, wo, f, slot, attempt) {
                Ok(_) => p.wait().map(|_| agent.session()).map_err(Error::from),
                Err(e) => {
                    if p.wait().is_ok() {
                        let _ = tmux.kill_session(&agent.session(), &company.tag());
                    }
                    Err(e)
                }
            }
        }
        (Some(p), Err(_)) => {
            if p.wait().is_ok() {
                let _ = tmux.kill_session(&agent.session(), &company.tag());
            }
            undo(Some(&made));
            return Err(written
                .err()
                .unwrap_or_else(|| Error::failure("assignment not written")));
        }
        (None, Ok(())) => start_worker_session(&launch, attempt),
        (None, Err(_)) => {
            undo(Some(&made));
            return Err(written
                .err()
                .unwrap_or_else(|| Error::failure("assignment not written")));
        }
    };
    match started {
        Ok(session) => Ok(Some((slot, agent, worktree, apath, made, session))),
        Err(e) => {
            undo(Some(&made));
            if matches!(e.tmux(), Some(tmux::TmuxError::Exists(_))) {
                // The name is taken by a session that holds no slot: leave it, try another.
                return Ok(None);
            }
            // Say it plainly when the reason is a tmux older than 3.2 (no `new-session -e`).
            tmux.check_version()?;
            Err(e)
        }
    }
}

/// Dispatches a work order (see the module documentation). The factory's queue is served in
/// order: if more urgent (or equally urgent and older) work is queued, it gets the free slot
/// and this work order is queued behind it.
pub fn dispatch(company: &Company, req: &DispatchRequest) -> Result<DispatchOutcome> {
    match dispatch_step(company, req)? {
        Step::Done(o) => Ok(o),
        Step::Behind { head } => {
            let ran = match dispatch(
                company,
                &DispatchRequest {
                    work_order: head,
                    no_queue: true,
                    runtime: None,
                    ..req.clone()
                },
            ) {
                Ok(o) => Some(Box::new(o)),
                // Someone else (the supervisor) filled the slot or took the head first.
                Err(e) if e.kind() == crate::error::Kind::Conflict => None,
                Err(e) => return Err(e),
            };
            let queue = queued_for(company, &req.factory)?;
            let position = queue
                .iter()
                .position(|w| w.id == req.work_order)
                .map(|p| p + 1)
                .unwrap_or(queue.len());
            Ok(DispatchOutcome::QueuedBehind {
                work_order: req.work_order.clone(),
                factory: req.factory.clone(),
                position,
                of: queue.len(),
                ran,
            })
        }
    }
}

/// Dispatches queued work of a factory, most urgent first, while slots are free. Returns what
/// was started (the supervisor calls this on every patrol).
pub fn drain_queue(company: &Company, factory: &str, actor: &str) -> Result<Vec<DispatchOutcome>> {
    let mut out = Vec::new();
    for wo in queued_among(company, factory, &[], true)? {
        match dispatch(
            company,
            &DispatchRequest {
                work_order: wo.id.clone(),
                factory: factory.to_string(),
                runtime: None,
                no_queue: true,
                actor: actor.to_string(),
            },
        ) {
            Ok(o) => out.push(o),
            Err(e) if e.kind() == crate::error::Kind::Conflict => break,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// No slot to run in: queue the work order in the factory (or refuse, with `--no-queue`).
#[allow(clippy::too_many_arguments)]
fn wait_for_a_slot(
    company: &Company,
    f: &Factory,
    req: &DispatchRequest,
    wo: &WorkOrder,
    busy_count: u32,
    mut locked: Locked<'_>,
    mut pre_home: Vec<NewEvent>,
    pre_factory: Vec<NewEvent>,
    deferred: Vec<(Store, NewEvent)>,
) -> Result<Step> {
    let max = f.max_slots();
    if req.no_queue {
        return Err(Error::conflict(format!(
            "no free slot in {} ({busy_count} of {max} busy); not queued (--no-queue)",
            f.name
        )));
    }
    if !(wo.status == Status::Queued && wo.factory.as_deref() == Some(&f.name)) {
        let e = workorder::plan_transition(
            wo,
            Status::Queued,
            Some("no free slot"),
            Some(&f.name),
            &req.actor,
        )?;
        pre_home.push(e);
    }
    locked.append(pre_home, pre_factory)?;
    locked.report_warnings();
    drop(locked);
    write_deferred(deferred)?;
    let queue = queued_for(company, &f.name)?;
    let position = queue
        .iter()
        .position(|w| w.id == wo.id)
        .map(|p| p + 1)
        .unwrap_or(queue.len());
    Ok(Step::Done(DispatchOutcome::Queued {
        work_order: wo.id.clone(),
        factory: f.name.clone(),
        position,
        of: queue.len(),
        busy: busy_count,
    }))
}

fn dispatch_step(company: &Company, req: &DispatchRequest) -> Result<Step> {
    let f = company.factory(&req.factory)?;
    dispatch_in(company, req, &f)
}

/// The slot is chosen from the log alone: no tmux query is on this path. A session name that
/// turns out to be taken (a session nobody assigned, or someone else's) is found by
/// `new-session` itself, and the next free slot is tried. tmux's version is only asked when
/// `new-session` fails, to say clearly when it is older than 3.2.
fn dispatch_in(company: &Company, req: &DispatchRequest, f: &Factory) -> Result<Step> {
    let tmux = company.tmux();
    let runtime_name = req
        .runtime
        .clone()
        .unwrap_or_else(|| f.settings.roles.worker.clone());
    let rt = runtime::resolve(&f.settings, &runtime_name, "worker")?;
    rt.check_installed()?;

    let fstore = f.store()?;
    // Most work orders live in the factory they go to: no need to look through the others.
    let home = if crate::ids::prefix_of(&req.work_order) == Some(f.prefix()) {
        f.store()?
    } else {
        company.store_for_work_order(&req.work_order)?
    };
    let mut locked = Locked::take(&home, &fstore)?;
    let wos = home.load::<WorkOrders>()?;
    let mut wo = wos.state.get(&req.work_order).ok_or_else(|| {
        Error::not_found(format!(
            "work order {} not found",
            crate::text::escape_control(&req.work_order)
        ))
    })?;
    let slots = fstore.load::<Slots>()?.state;

    // The guide's recovery: slots whose worker is gone and whose assignment was removed.
    let mut pre_home = Vec::new();
    let mut pre_factory = Vec::new();
    let mut reclaimed: Vec<u32> = Vec::new();
    // Events for a third store are written after our locks are released (lock order).
    let mut deferred: Vec<(Store, NewEvent)> = Vec::new();
    for (rel, requeue) in reclaim_orphans(company, f, &slots, &req.actor)? {
        if let Ok(r) = serde_json::from_str::<crate::slots::SlotReleased>(rel.data.get()) {
            reclaimed.push(r.slot);
        }
        pre_factory.push(rel);
        if let Some((id, e)) = requeue {
            if id == wo.id {
                wo.status = Status::Queued;
                pre_home.push(e);
            } else if let Ok(st) = company.store_for_work_order(&id) {
                // Another work order's home: written now, outside this dispatch.
                if st.dir() == home.dir() {
                    pre_home.push(e);
                } else if st.dir() == fstore.dir() {
                    pre_factory.push(e);
                } else {
                    deferred.push((st, e));
                }
            }
        }
    }

    match wo.status {
        Status::Open | Status::Queued | Status::Rework => {}
        Status::Assigned | Status::InProgress => {
            let holder = slots
                .by_work_order(&wo.id)
                .map(|s| s.agent.clone())
                .or(wo.assignee.clone())
                .unwrap_or_else(|| "a worker".into());
            return Err(Error::conflict(format!(
                "{} is already {} by {holder}; kill that worker first (co worker kill) or wait for it",
                wo.id,
                if wo.status == Status::Assigned {
                    "assigned"
                } else {
                    "in progress"
                }
            )));
        }
        other => {
            return Err(Error::conflict(format!(
                "{} is {other} and cannot be dispatched (only open, queued or rework work can){}",
                wo.id,
                if other == Status::Closed || other == Status::Cancelled || other == Status::Failed
                {
                    format!("; reopen it with `wo update {} --status open`", wo.id)
                } else {
                    String::new()
                }
            )));
        }
    }
    let blockers = workorder::open_blockers(&wos.state, &wo);
    if !blockers.is_empty() {
        let list: Vec<String> = blockers
            .iter()
            .map(|(id, s)| {
                format!(
                    "{id} ({})",
                    s.map(|s| s.to_string()).unwrap_or("missing".into())
                )
            })
            .collect();
        return Err(Error::conflict(format!(
            "{} is waiting on {}; close those first or remove the dependency (wo dep remove)",
            wo.id,
            list.join(", ")
        )));
    }
    let max = f.max_slots();
    let busy = |n: u32| slots.is_allocated(n) && !reclaimed.contains(&n);
    let free: Vec<u32> = (0..max).filter(|n| !busy(*n)).collect();
    if free.is_empty() {
        let busy_count = (0..max).filter(|n| busy(*n)).count() as u32;
        return wait_for_a_slot(
            company,
            f,
            req,
            &wo,
            busy_count,
            locked,
            pre_home,
            pre_factory,
            deferred,
        );
    }

    // Serve the queue in order: more urgent (or as urgent and older) queued work goes first.
    let ahead = queued_among(company, &f.name, &[(home.dir(), &wos.state)], true)?
        .into_iter()
        .find(|q| q.id != wo.id && (q.priority, &q.created_at) < (wo.priority, &wo.created_at));
    if let Some(head) = ahead {
        if req.no_queue {
            return Err(Error::conflict(format!(
                "{} would wait behind {} (P{}) queued in {}; not queued (--no-queue)",
                wo.id, head.id, head.priority, f.name
            )));
        }
        if !(wo.status == Status::Queued && wo.factory.as_deref() == Some(&f.name)) {
            pre_home.push(workorder::plan_transition(
                &wo,
                Status::Queued,
                Some(&format!("waiting behind {} in the queue", head.id)),
                Some(&f.name),
                &req.actor,
            )?);
        }
        locked.append(pre_home, pre_factory)?;
        locked.report_warnings();
        drop(locked);
        write_deferred(deferred)?;
        return Ok(Step::Behind { head: head.id });
    }
    let incarnation = crate::ids::new_incarnation_id();
    let branch = format!("vermas/{}", wo.id);
    let attempt = wo.attempts + 1;
    let mut candidates = free.iter().copied();
    let (slot, agent, worktree, apath, made, session) = loop {
        let Some(slot) = candidates.next() else {
            // Every free slot's name is held by a session still running (a worker that has
            // reported done and not exited yet, or one nobody assigned): wait in the queue,
            // as when every slot is busy.
            return wait_for_a_slot(
                company,
                f,
                req,
                &wo,
                max,
                locked,
                pre_home,
                pre_factory,
                deferred,
            );
        };
        match launch_in_slot(company, f, &wo, slot, &incarnation, attempt, &branch, &rt)? {
            Some(l) => break l,
            None => continue,
        }
    };
    let events = (|| -> Result<(Vec<NewEvent>, Vec<NewEvent>)> {
        let cid = Some(incarnation.as_str());
        let mut home_events = pre_home.clone();
        home_events.push(
            workorder::plan_transition(&wo, Status::Assigned, None, Some(&f.name), &req.actor)?
                .correlated(cid),
        );
        home_events.push(
            ev(
                types::WORK_ORDER_ASSIGNED,
                &req.actor,
                &Assigned {
                    id: wo.id.clone(),
                    assignee: agent.to_string(),
                    factory: f.name.clone(),
                    slot,
                    incarnation: incarnation.clone(),
                    attempt,
                    branch: branch.clone(),
                },
            )?
            .correlated(cid),
        );
        let mut fe = pre_factory.clone();
        fe.push(
            ev(
                types::SLOT_ALLOCATED,
                &req.actor,
                &SlotAllocated {
                    slot,
                    agent: agent.to_string(),
                    work_order: wo.id.clone(),
                    incarnation: incarnation.clone(),
                    attempt,
                    branch: branch.clone(),
                    worktree: worktree.display().to_string(),
                    runtime: rt.name.clone(),
                },
            )?
            .correlated(cid),
        );
        if made != WorktreeMade::Reused {
            fe.push(
                ev(
                    types::WORKTREE_CREATED,
                    &req.actor,
                    &WorktreeEvent {
                        path: worktree.display().to_string(),
                        branch: branch.clone(),
                        work_order: wo.id.clone(),
                        slot: Some(slot),
                        how: made.how().into(),
                    },
                )?
                .correlated(cid),
            );
        }
        fe.push(
            ev(
                types::ASSIGNMENT_SET,
                &req.actor,
                &AssignmentEvent {
                    agent: agent.to_string(),
                    work_order: wo.id.clone(),
                    incarnation: incarnation.clone(),
                    attempt: Some(attempt),
                    ..Default::default()
                },
            )?
            .correlated(cid),
        );
        fe.push(
            ev(
                types::AGENT_STARTED,
                &req.actor,
                &AgentEvent {
                    agent: agent.to_string(),
                    session: session.clone(),
                    incarnation: incarnation.clone(),
                    role: Some("worker".into()),
                    runtime: Some(rt.name.clone()),
                    work_order: Some(wo.id.clone()),
                    slot: Some(slot),
                    ..Default::default()
                },
            )?
            .correlated(cid),
        );
        Ok((home_events, fe))
    })();
    let appended = events.and_then(|(h, fe)| locked.append(h, fe));
    if let Err(e) = appended {
        let _ = tmux.kill_session(&session, &company.tag());
        let _ = assignment::remove(&apath);
        undo_worktree(f, slot, &branch, &made);
        return Err(e);
    }
    locked.report_warnings();
    drop(locked);
    write_deferred(deferred)?;
    let nudge = start_nudge(company, &fstore, &rt, &agent, &req.actor);
    Ok(Step::Done(DispatchOutcome::Spawned {
        attach: tmux.attach_hint(&session),
        session,
        slot,
        work_order: wo.id.clone(),
        incarnation,
        nudge,
    }))
}
