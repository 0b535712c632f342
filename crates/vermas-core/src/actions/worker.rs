//! Workers: list and status (with activity), `co worker spawn` (restart an agent on its
//! worktree and assignment), `co worker kill` (keeps unmerged work), `co worker done` (run by
//! the worker itself), and `co assignment` (what an agent must do now).

use crate::actions::launch::{self, Launch};
use crate::actions::locked::Locked;
use crate::agent::AgentId;
use crate::assignment::{self, Assignment};
use crate::clock::{format_timestamp, parse_timestamp};
use crate::company::{Company, Factory};
use crate::effects::git;
use crate::effects::tmux::SessionInfo;
use crate::error::{Error, Result};
use crate::event::ev;
use crate::event::types;
use crate::mail::{MailPriority, Sent};
use crate::runtime::{self, Screen};
use crate::slots::{AgentEvent, AssignmentEvent, Slot, SlotReleased, Slots, WorktreeEvent};
use crate::store::Store;
use crate::workorder::{self, Assigned, Status, WorkOrder};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Running,
    Idle,
    Stuck,
    Dead,
    /// At a dialog or question only a person should answer (see `blocked` for which).
    Blocked,
}

impl WorkerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Running => "running",
            WorkerStatus::Idle => "idle",
            WorkerStatus::Stuck => "stuck",
            WorkerStatus::Dead => "dead",
            WorkerStatus::Blocked => "blocked",
        }
    }
    pub fn parse(s: &str) -> Option<WorkerStatus> {
        [
            WorkerStatus::Running,
            WorkerStatus::Idle,
            WorkerStatus::Stuck,
            WorkerStatus::Dead,
            WorkerStatus::Blocked,
        ]
        .into_iter()
        .find(|w| w.as_str() == s)
    }
}

/// One worker as `co worker list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub factory: String,
    pub slot: u32,
    pub agent: String,
    pub session: String,
    pub work_order: String,
    pub incarnation: String,
    pub attempt: u32,
    pub runtime: String,
    pub status: WorkerStatus,
    /// Seconds since the last sign of activity.
    pub idle_seconds: i64,
    pub session_alive: bool,
    /// The dialog it waits at, when blocked (`trust`, `api-key`, `y/n`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    pub started_at: String,
    pub worktree: String,
    pub branch: String,
}

/// A nudge makes the pane print (the typed text echoes); output within this long after a nudge
/// is not counted as the agent's own activity.
pub const NUDGE_ECHO_SECONDS: i64 = 3;

/// The last sign of life of a worker: its own events, its start, and pane output that is not
/// just the echo of our last nudge.
pub fn last_activity(slot: &Slot, session: Option<&SessionInfo>) -> i64 {
    last_sign(slot, session.map(|s| s.activity))
}

/// [`last_activity`] with the time of the agent's last output given: `window_activity` for a
/// screen VerMAS cannot read, or when its screen last changed apart from spinners (a model
/// that hangs keeps a spinner turning).
pub fn last_sign(slot: &Slot, output_at: Option<i64>) -> i64 {
    let ts = |s: &Option<String>| {
        s.as_deref()
            .and_then(parse_timestamp)
            .map(|t| t.timestamp())
    };
    let mut last = parse_timestamp(&slot.started_at)
        .map(|t| t.timestamp())
        .unwrap_or(0);
    for t in [ts(&slot.last_event_at), ts(&slot.checked_at)]
        .into_iter()
        .flatten()
    {
        last = last.max(t);
    }
    if let Some(at) = output_at {
        let nudged = ts(&slot.nudged_at);
        let echo = nudged.is_some_and(|n| at >= n && at <= n + NUDGE_ECHO_SECONDS);
        if !echo {
            last = last.max(at);
        }
    }
    last
}

/// What the worker's hooks last said, if its current incarnation said anything
/// (`runtime::hooks`: Claude Code's).
pub fn hook_state(f: &Factory, slot: &Slot) -> Option<crate::runtime::hooks::AgentState> {
    let agent = AgentId::worker(&f.name, slot.slot);
    let path = crate::runtime::hooks::state_path(&f.work_dir(), &agent.file_key());
    crate::runtime::hooks::read(&path, &slot.incarnation)
}

/// Classifies a worker from its session, its activity and what its hooks said.
pub fn classify(
    f: &Factory,
    slot: &Slot,
    session: Option<&SessionInfo>,
    now: i64,
) -> (WorkerStatus, i64) {
    let alive = session.is_some_and(|s| !s.pane_dead && s.incarnation == slot.incarnation);
    let (_, last) = crate::control::supervisor::with_hook(
        Screen::Unknown,
        last_activity(slot, session),
        hook_state(f, slot).as_ref(),
    );
    let idle = (now - last).max(0);
    if !alive {
        return (WorkerStatus::Dead, idle);
    }
    let idle_limit = f.settings.worker.idle_timeout_minutes.as_secs_f64();
    let stuck_limit = f.settings.worker.stuck_timeout_minutes.as_secs_f64();
    let status = if idle as f64 >= stuck_limit {
        WorkerStatus::Stuck
    } else if idle as f64 >= idle_limit {
        WorkerStatus::Idle
    } else {
        WorkerStatus::Running
    };
    (status, idle)
}

/// Every allocated slot of these factories, with its status.
pub fn list(company: &Company, factories: &[Factory]) -> Result<Vec<WorkerView>> {
    let sessions = company.tmux().sessions()?;
    let now = chrono::Utc::now().timestamp();
    let mut out = Vec::new();
    for f in factories {
        let slots = f.store()?.load::<Slots>()?.state;
        for s in slots.all() {
            let agent = AgentId::worker(&f.name, s.slot);
            let sess = sessions.iter().find(|x| x.name == agent.session());
            let (mut status, idle) = classify(f, s, sess, now);
            let mut blocked = None;
            if status != WorkerStatus::Dead
                && let Ok(rt) = runtime::resolve(&f.settings, &s.runtime, "worker")
                && let Ok(pane) = company.tmux().capture(&agent.session(), 0)
                && let Screen::Dialog { name, .. } = rt.classify(&pane)
            {
                status = WorkerStatus::Blocked;
                blocked = Some(name);
            }
            out.push(WorkerView {
                factory: f.name.clone(),
                slot: s.slot,
                agent: s.agent.clone(),
                session: agent.session(),
                work_order: s.work_order.clone(),
                incarnation: s.incarnation.clone(),
                attempt: s.attempt,
                runtime: s.runtime.clone(),
                status,
                idle_seconds: idle,
                session_alive: sess.is_some_and(|x| !x.pane_dead),
                blocked,
                started_at: s.started_at.clone(),
                worktree: s.worktree.clone(),
                branch: s.branch.clone(),
            });
        }
    }
    Ok(out)
}

fn slot_of(f: &Factory, slot: u32) -> Result<Slot> {
    let slots = f.store()?.load::<Slots>()?.state;
    slots.get(slot).cloned().ok_or_else(|| {
        Error::not_found(format!(
            "{}/workers/slot{slot} has no worker (see `co worker list {}`)",
            f.name, f.name
        ))
    })
}

fn check_slot_number(f: &Factory, slot: u32) -> Result<()> {
    if slot >= f.max_slots() {
        return Err(Error::not_found(format!(
            "{} has slots 0 to {} ([worker] max_slots_per_factory = {}); there is no slot {slot}",
            f.name,
            f.max_slots() - 1,
            f.max_slots()
        )));
    }
    Ok(())
}

/// A worker by its slot; with `incarnation`, only that worker: the supervisor acts on the
/// worker it watched, never on one that took the slot since.
#[derive(Debug, Clone, Copy)]
pub struct WorkerRef<'a> {
    pub slot: u32,
    pub incarnation: Option<&'a str>,
}

impl WorkerRef<'_> {
    /// Whatever worker holds `slot` (a person at the command line).
    pub fn slot(slot: u32) -> WorkerRef<'static> {
        WorkerRef {
            slot,
            incarnation: None,
        }
    }
}

/// Why an action on a worker was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker read before the lock is not the slot's holder any more.
    #[error("{factory}/workers/slot{slot} changed hands meanwhile; nothing was changed")]
    ChangedHands { factory: String, slot: u32 },
}

impl crate::error::Classify for WorkerError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Conflict
    }
}

/// Whether an error says the slot went to another worker meanwhile (a loop acting on what it
/// saw leaves the new holder alone).
pub fn is_changed_hands(e: &Error) -> bool {
    matches!(e.root(), Error::Worker(WorkerError::ChangedHands { .. }))
}

/// Under the factory's lock: the slot must still be held by the worker read before the lock
/// (`seen`), and by the one the caller expects; otherwise a newer worker has it and nothing
/// may be done to it.
fn check_still_held(
    fstore: &Store,
    f: &Factory,
    seen: &Slot,
    expected: Option<&str>,
) -> Result<()> {
    let now = fstore.load::<Slots>()?.state;
    let held = now
        .get(seen.slot)
        .is_some_and(|s| s.incarnation == seen.incarnation)
        && expected.is_none_or(|e| e == seen.incarnation);
    if held {
        Ok(())
    } else {
        Err(WorkerError::ChangedHands {
            factory: f.name.clone(),
            slot: seen.slot,
        }
        .into())
    }
}

/// A work order as its home store says now (under the lock, this is current), read from the
/// index: one work order costs one row, not the whole history.
fn current(home: &Store, id: &str) -> Result<WorkOrder> {
    workorder::lookup(home, id)?
        .ok_or_else(|| Error::not_found(format!("work order {id} not found")))
}

fn load_wo(company: &Company, id: &str) -> Result<(Store, WorkOrder)> {
    let store = company.store_for_work_order(id)?;
    let wo = current(&store, id)?;
    Ok((store, wo))
}

/// What `co worker kill` did.
#[derive(Debug, Clone, Serialize)]
pub struct KillReport {
    pub session: String,
    pub work_order: String,
    pub session_killed: bool,
    /// Processes of the agent that had left its session, ended.
    pub leftovers: usize,
    /// Where the worktree now is, when it was kept.
    pub worktree_kept: Option<String>,
    pub worktree_removed: bool,
    pub requeued: bool,
    /// Why the worktree was kept (uncommitted changes, unmerged commits).
    pub kept_because: Vec<String>,
}

/// Why a worktree must be kept: uncommitted changes or commits not in the target.
fn unmerged_work(f: &Factory, worktree: &Path, branch: &str) -> Vec<String> {
    let mut why = Vec::new();
    if worktree.is_dir()
        && let Ok(d) = git::dirty_paths(worktree)
        && !d.is_empty()
    {
        why.push(format!("{} uncommitted change(s)", d.len()));
    }
    if let Ok(n) = git::commits_ahead(&f.git_dir(), f.target_branch(), branch)
        && n > 0
    {
        why.push(format!("{n} commit(s) not in {}", f.target_branch()));
    }
    why
}

/// What to do with a killed worker's worktree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worktree {
    /// Park it under `workers/parked/<wo>` when it holds unmerged work; remove it otherwise.
    KeepUnmerged,
    /// Remove it even with unmerged work (`co worker kill --force`); the branch stays.
    Remove,
}

/// What becomes of a killed worker's work order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Back to the queue, as it was (a person's kill).
    Yes,
    /// Back to the queue with this attempt counted as failed (stuck, keeps exiting).
    AttemptFailed,
    /// Left as it is: the caller decides (it is about to be blocked).
    No,
}

/// How to kill a worker.
#[derive(Debug, Clone, Copy)]
pub struct KillOptions<'a> {
    pub worktree: Worktree,
    pub requeue: Requeue,
    pub reason: &'a str,
    pub actor: &'a str,
}

/// Ends a worker: kills its session (ours only), keeps a worktree holding unmerged work (parked
/// under `workers/parked/<wo>`) unless told to remove it, frees the slot, re-queues the work
/// order as asked. Branches with unmerged commits are never deleted.
pub fn kill(
    company: &Company,
    f: &Factory,
    which: WorkerRef<'_>,
    opts: KillOptions<'_>,
) -> Result<KillReport> {
    let KillOptions { reason, actor, .. } = opts;
    let force = opts.worktree == Worktree::Remove;
    let slot_no = which.slot;
    check_slot_number(f, slot_no)?;
    let agent = AgentId::worker(&f.name, slot_no);
    let session = agent.session();
    let tmux = company.tmux();
    let slot = slot_of(f, slot_no)?;
    let home = company.store_for_work_order(&slot.work_order)?;
    let fstore = f.store()?;
    let mut locked = Locked::take(&home, &fstore)?;
    check_still_held(&fstore, f, &slot, which.incarnation)?;
    let wo = current(&home, &slot.work_order)?;
    let session_killed = match tmux.session(&session)? {
        Some(s) if s.company == company.tag() => {
            tmux.kill_session(&session, &company.tag())?;
            true
        }
        Some(_) => {
            return Err(Error::permission(format!(
                "session {session} was not started by this company; not killing it"
            )));
        }
        None => false,
    };
    let worktree = PathBuf::from(&slot.worktree);
    let kept_because = unmerged_work(f, &worktree, &slot.branch);
    let mut worktree_kept = None;
    let mut worktree_removed = false;
    if worktree.is_dir() {
        if kept_because.is_empty() || force {
            git::worktree_remove(&f.git_dir(), &worktree, true)?;
            worktree_removed = true;
            if kept_because.is_empty() && git::branch_exists(&f.git_dir(), &slot.branch) {
                // Nothing on it beyond the target: the branch can go too.
                let _ = git::delete_branch(&f.git_dir(), &slot.branch, false);
            }
        } else {
            let dest = f.parked_dir(&slot.work_order);
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p).map_err(|e| crate::store::StoreError::io(p, e))?;
            }
            if !dest.exists() {
                git::worktree_move(&f.git_dir(), &worktree, &dest)?;
                worktree_kept = Some(dest.display().to_string());
            } else {
                worktree_kept = Some(worktree.display().to_string());
            }
        }
    }
    assignment::remove(&f.assignment_path(&agent))?;
    let mut fe = vec![
        ev(
            types::AGENT_STOPPED,
            actor,
            &AgentEvent {
                agent: agent.to_string(),
                session: session.clone(),
                incarnation: slot.incarnation.clone(),
                work_order: Some(slot.work_order.clone()),
                slot: Some(slot_no),
                reason: Some(reason.to_string()),
                ..Default::default()
            },
        )?,
        ev(
            types::ASSIGNMENT_CLEARED,
            actor,
            &AssignmentEvent {
                agent: agent.to_string(),
                work_order: slot.work_order.clone(),
                incarnation: slot.incarnation.clone(),
                reason: Some(reason.to_string()),
                ..Default::default()
            },
        )?,
    ];
    if worktree_removed {
        fe.push(ev(
            types::WORKTREE_REMOVED,
            actor,
            &WorktreeEvent {
                path: slot.worktree.clone(),
                branch: slot.branch.clone(),
                work_order: slot.work_order.clone(),
                slot: Some(slot_no),
                how: if force && !kept_because.is_empty() {
                    "forced".into()
                } else {
                    "killed".into()
                },
            },
        )?);
    }
    fe.push(ev(
        types::SLOT_RELEASED,
        actor,
        &SlotReleased {
            slot: slot_no,
            agent: agent.to_string(),
            work_order: slot.work_order.clone(),
            incarnation: slot.incarnation.clone(),
            reason: reason.to_string(),
            worktree_kept: worktree_kept.clone(),
        },
    )?);
    let mut he = Vec::new();
    let requeued = opts.requeue != Requeue::No
        && matches!(
            wo.status,
            Status::Assigned | Status::InProgress | Status::Rework
        );
    if requeued {
        let why = if opts.requeue == Requeue::AttemptFailed {
            format!("{reason} (attempt {} failed)", slot.attempt)
        } else {
            reason.to_string()
        };
        he.push(workorder::plan_transition(
            &wo,
            Status::Queued,
            Some(&why),
            Some(&f.name),
            actor,
        )?);
    }
    locked.append(he, fe)?;
    locked.report_warnings();
    drop(locked);
    // Daemons some CLIs start in sessions of their own outlive the tmux session.
    let leftovers = crate::effects::process::end_incarnation(&company.root, &slot.incarnation);
    Ok(KillReport {
        session,
        work_order: slot.work_order,
        leftovers: leftovers.len(),
        session_killed,
        worktree_kept,
        worktree_removed,
        requeued,
        kept_because,
    })
}

/// What `co worker spawn` did.
#[derive(Debug, Clone, Serialize)]
pub struct SpawnReport {
    pub session: String,
    pub slot: u32,
    pub work_order: String,
    pub incarnation: String,
    pub attach: String,
    /// The start message, for runtimes that take it typed in.
    pub nudge: Option<crate::effects::tmux::NudgeOutcome>,
}

/// The first slot of `f` that has an assignment and no session (a dead worker), if any.
pub fn first_dead(company: &Company, f: &Factory) -> Result<Option<u32>> {
    let slots = f.store()?.load::<Slots>()?.state;
    let sessions = company.tmux().sessions()?;
    Ok(slots
        .all()
        .find(|s| {
            !sessions
                .iter()
                .any(|x| x.name == AgentId::worker(&f.name, s.slot).session())
        })
        .map(|s| s.slot))
}

/// Starts the agent again on an existing worktree and assignment (a dead worker), with a new
/// incarnation so anything the old one left behind cannot act on the new one.
pub fn spawn(
    company: &Company,
    f: &Factory,
    which: Option<WorkerRef<'_>>,
    actor: &str,
) -> Result<SpawnReport> {
    let tmux = company.tmux();
    tmux.check_version()?;
    let slots = f.store()?.load::<Slots>()?.state;
    let sessions = tmux.sessions()?;
    let slot = match which.map(|w| w.slot) {
        Some(n) => {
            check_slot_number(f, n)?;
            slots.get(n).cloned().ok_or_else(|| {
                Error::not_found(format!(
                    "{}/workers/slot{n} has no assignment to restart; dispatch work with `co dispatch <id> {}`",
                    f.name, f.name
                ))
            })?
        }
        None => slots
            .all()
            .find(|s| {
                !sessions
                    .iter()
                    .any(|x| x.name == AgentId::worker(&f.name, s.slot).session())
            })
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no worker of {} needs restarting (every assigned slot has a live session)",
                    f.name
                ))
            })?,
    };
    let agent = AgentId::worker(&f.name, slot.slot);
    let dead_session = match sessions.iter().find(|x| x.name == agent.session()) {
        Some(s) if s.company != company.tag() => {
            return Err(Error::permission(format!(
                "a session named {} exists and is not ours; not replacing it",
                agent.session()
            )));
        }
        Some(s) if !s.pane_dead => {
            return Err(Error::conflict(format!(
                "{} is already running (kill it first with `co worker kill {} {}`)",
                agent.session(),
                f.name,
                slot.slot
            )));
        }
        Some(_) => true,
        None => false,
    };
    let worktree = PathBuf::from(&slot.worktree);
    if !worktree.is_dir() {
        return Err(Error::not_found(format!(
            "the worktree {} of {} is gone; kill the worker (`co worker kill {} {}`) and dispatch again",
            slot.worktree, agent, f.name, slot.slot
        )));
    }
    let rt = runtime::resolve(&f.settings, &slot.runtime, "worker")?;
    rt.check_installed()?;
    let home = company.store_for_work_order(&slot.work_order)?;
    let fstore = f.store()?;
    let mut locked = Locked::take(&home, &fstore)?;
    check_still_held(&fstore, f, &slot, which.and_then(|w| w.incarnation))?;
    if dead_session {
        tmux.kill_session(&agent.session(), &company.tag())?;
    }
    let wo = current(&home, &slot.work_order)?;
    let incarnation = crate::ids::new_incarnation_id();
    let apath = f.assignment_path(&agent);
    let a = match assignment::read(&apath)? {
        Some(old) => Assignment {
            incarnation: incarnation.clone(),
            set_at: format_timestamp(chrono::Utc::now()),
            ..old
        },
        None => Assignment::of_work_order(
            &agent,
            &wo,
            &incarnation,
            slot.attempt,
            &slot.branch,
            &slot.worktree,
        ),
    };
    assignment::write(&apath, &a)?;
    let session = launch::start_worker_session(
        &Launch {
            company,
            factory: f,
            slot: slot.slot,
            work_order: &wo,
            incarnation: &incarnation,
            runtime: &rt,
            worktree: &worktree,
        },
        slot.attempt,
    )?;
    let he = vec![ev(
        types::WORK_ORDER_ASSIGNED,
        actor,
        &Assigned {
            id: wo.id.clone(),
            assignee: agent.to_string(),
            factory: f.name.clone(),
            slot: slot.slot,
            incarnation: incarnation.clone(),
            attempt: slot.attempt,
            branch: slot.branch.clone(),
        },
    )?];
    let fe = vec![
        ev(
            types::AGENT_RESTARTED,
            actor,
            &AgentEvent {
                agent: agent.to_string(),
                session: session.clone(),
                incarnation: incarnation.clone(),
                role: Some("worker".into()),
                runtime: Some(rt.name.clone()),
                work_order: Some(wo.id.clone()),
                slot: Some(slot.slot),
                reason: Some("respawn".into()),
                ..Default::default()
            },
        )?,
        ev(
            types::ASSIGNMENT_SET,
            actor,
            &AssignmentEvent {
                agent: agent.to_string(),
                work_order: wo.id.clone(),
                incarnation: incarnation.clone(),
                attempt: Some(slot.attempt),
                ..Default::default()
            },
        )?,
    ];
    if let Err(e) = locked.append(he, fe) {
        let _ = tmux.kill_session(&session, &company.tag());
        return Err(e);
    }
    locked.report_warnings();
    drop(locked);
    let nudge = launch::start_nudge(company, &fstore, &rt, &agent, actor);
    Ok(SpawnReport {
        nudge,
        attach: tmux.attach_hint(&session),
        session,
        slot: slot.slot,
        work_order: wo.id,
        incarnation,
    })
}

/// Who a process is, from its environment (agents get these from tmux).
#[derive(Debug, Clone)]
pub struct Identity {
    pub agent: AgentId,
    pub incarnation: Option<String>,
}

impl Identity {
    /// `AGENT_ID` (required) and `VERMAS_INCARNATION`.
    pub fn from_env() -> Result<Identity> {
        let id = std::env::var("AGENT_ID").ok().filter(|v| !v.is_empty()).ok_or_else(|| {
            Error::usage(
                "AGENT_ID is not set: this command is run by an agent inside its session (or set AGENT_ID, e.g. myproject/workers/slot0)",
            )
        })?;
        Ok(Identity {
            agent: AgentId::parse(&id)?,
            incarnation: std::env::var("VERMAS_INCARNATION")
                .ok()
                .filter(|v| !v.is_empty()),
        })
    }
}

/// What `co worker done` did.
#[derive(Debug, Clone, Serialize)]
pub struct DoneReport {
    pub work_order: String,
    pub branch: String,
    pub head: String,
    pub commits: u32,
    pub session: String,
    pub supervisor: String,
    pub message: String,
}

/// `co worker done`, run by a worker: refuses a dirty tree or a branch with no new commits;
/// then mails `WORKER_DONE` to the supervisor, moves the work order to `in_review`, clears the
/// assignment, removes the (clean, committed) worktree and frees the slot. The caller prints
/// the result and then calls [`end_own_session`]. Once the events are written the calling
/// thread runs at a lower priority (nice 10): the rest is clean-up, for a one-shot command.
pub fn done(company: &Company, me: &Identity, actor: &str) -> Result<DoneReport> {
    let AgentId::Worker {
        factory,
        slot: slot_no,
    } = &me.agent
    else {
        return Err(Error::usage(format!(
            "`co worker done` is for workers; AGENT_ID is {}",
            me.agent
        )));
    };
    let f = company.factory(factory)?;
    let slot = slot_of(&f, *slot_no)?;
    if let Some(inc) = &me.incarnation
        && inc != &slot.incarnation
    {
        return Err(Error::conflict(format!(
            "this worker ({inc}) is not the current one in {} ({}); nothing was changed",
            me.agent, slot.incarnation
        )));
    }
    let worktree = PathBuf::from(&slot.worktree);
    // Two git processes that do not depend on each other, side by side; the branch's commit
    // is read from the ref files.
    let repo = f.git_dir();
    let (dirty, commits) = std::thread::scope(|sc| {
        let commits = sc.spawn(|| git::commits_ahead(&repo, f.target_branch(), &slot.branch));
        let dirty = git::dirty_paths(&worktree);
        let commits = commits
            .join()
            .map_err(|_| Error::failure("git rev-list panicked"))
            .and_then(|r| r.map_err(Error::from));
        (dirty, commits)
    });
    let head = git::branch_commit(&repo, &slot.branch).unwrap_or_default();
    let dirty = dirty?;
    if !dirty.is_empty() {
        let shown: Vec<&str> = dirty.iter().take(5).map(String::as_str).collect();
        return Err(Error::conflict(format!(
            "refused: the worktree has uncommitted changes ({}{}); commit them (git add -A && git commit) and run `co worker done` again",
            shown.join(", "),
            if dirty.len() > 5 {
                format!(" and {} more", dirty.len() - 5)
            } else {
                String::new()
            }
        )));
    }
    let commits = commits?;
    if commits == 0 {
        return Err(Error::conflict(format!(
            "refused: {} has no commits beyond {}; commit your work first",
            slot.branch,
            f.target_branch()
        )));
    }
    let home = company.store_for_work_order(&slot.work_order)?;
    let fstore = f.store()?;
    let mut locked = Locked::take(&home, &fstore)?;
    check_still_held(&fstore, &f, &slot, None)?;
    let wo = current(&home, &slot.work_order)?;
    let supervisor = AgentId::Supervisor {
        factory: f.name.clone(),
    };
    let msg_id = crate::mail::unused_message_id(&fstore)?;
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("work_order".to_string(), wo.id.clone());
    meta.insert("branch".to_string(), slot.branch.clone());
    meta.insert("head".to_string(), head.clone());
    meta.insert("incarnation".to_string(), slot.incarnation.clone());
    meta.insert("slot".to_string(), slot_no.to_string());
    meta.insert("attempt".to_string(), slot.attempt.to_string());
    let he = vec![workorder::plan_transition(
        &wo,
        Status::InReview,
        Some(&format!(
            "{} finished: {commits} commit(s) on {}",
            me.agent, slot.branch
        )),
        None,
        actor,
    )?];
    let cid = Some(slot.incarnation.as_str());
    let fe = vec![
        ev(
            types::MAIL_SENT,
            actor,
            &Sent {
                id: msg_id,
                from: me.agent.to_string(),
                to: supervisor.to_string(),
                subject: format!("WORKER_DONE {}", wo.id),
                body: format!(
                    "{} finished {}: branch {} at {} ({commits} commit(s) beyond {}).",
                    me.agent,
                    wo.id,
                    slot.branch,
                    head,
                    f.target_branch()
                ),
                kind: "WORKER_DONE".into(),
                priority: MailPriority::Normal,
                meta,
            },
        )?
        .correlated(cid),
        ev(
            types::ASSIGNMENT_CLEARED,
            actor,
            &AssignmentEvent {
                agent: me.agent.to_string(),
                work_order: wo.id.clone(),
                incarnation: slot.incarnation.clone(),
                reason: Some("done".into()),
                ..Default::default()
            },
        )?
        .correlated(cid),
        ev(
            types::WORKTREE_REMOVED,
            actor,
            &WorktreeEvent {
                path: slot.worktree.clone(),
                branch: slot.branch.clone(),
                work_order: wo.id.clone(),
                slot: Some(*slot_no),
                how: "done".into(),
            },
        )?
        .correlated(cid),
        ev(
            types::SLOT_RELEASED,
            actor,
            &SlotReleased {
                slot: *slot_no,
                agent: me.agent.to_string(),
                work_order: wo.id.clone(),
                incarnation: slot.incarnation.clone(),
                reason: "done".into(),
                worktree_kept: None,
            },
        )?
        .correlated(cid),
        ev(
            types::AGENT_STOPPED,
            actor,
            &AgentEvent {
                agent: me.agent.to_string(),
                session: me.agent.session(),
                incarnation: slot.incarnation.clone(),
                work_order: Some(wo.id.clone()),
                slot: Some(*slot_no),
                reason: Some("done".into()),
                ..Default::default()
            },
        )?
        .correlated(cid),
    ];
    assignment::remove(&f.assignment_path(&me.agent))?;
    // Everything is committed on the branch, which stays for QA; the directory can go. It
    // leaves the slot before the slot is released and while the lock is held (one rename), so
    // the next worker of this slot never meets a half-deleted directory; it is deleted, and git
    // told, once the events are written, so QA does not wait for it.
    let gone = f
        .dir
        .join("workers")
        .join(format!(".done-{}", slot.incarnation));
    let moved = std::fs::rename(&worktree, &gone).is_ok();
    if !moved {
        let _ = git::worktree_remove(&repo, &worktree, true);
    }
    if let Err(e) = locked.append(he, fe) {
        if moved {
            let _ = std::fs::rename(&gone, &worktree);
        }
        return Err(e);
    }
    locked.report_warnings();
    drop(locked);
    // The hand-in is written: what is left (deleting the directory, pruning git's record,
    // ending the session) is nobody's wait, and gives way to the supervisor and QA.
    crate::effects::process::lower_priority();
    if moved {
        let _ = std::fs::remove_dir_all(&gone);
        let _ = git::worktree_prune(&repo);
    }
    Ok(DoneReport {
        work_order: wo.id,
        branch: slot.branch,
        head,
        commits,
        session: me.agent.session(),
        supervisor: supervisor.to_string(),
        message: "WORKER_DONE".into(),
    })
}

/// Ends the calling agent's own tmux session, if it is ours and of this incarnation.
pub fn end_own_session(company: &Company, me: &Identity) {
    let tmux = company.tmux();
    let session = me.agent.session();
    if let Ok(Some(s)) = tmux.session(&session)
        && s.company == company.tag()
        && me.incarnation.as_deref().is_none_or(|i| i == s.incarnation)
    {
        let _ = tmux.kill_session(&session, &company.tag());
    }
}

/// What `co assignment` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub assignment: Option<Assignment>,
    pub work_order: Option<WorkOrder>,
    pub first: bool,
    pub response_ms: Option<u64>,
}

fn assignment_path_of(company: &Company, agent: &AgentId) -> Result<(PathBuf, Store)> {
    match agent.factory() {
        Some(fname) => {
            let f = company.factory(fname)?;
            Ok((f.assignment_path(agent), f.store()?))
        }
        None => Ok((
            company
                .root
                .join(".work")
                .join(format!(".assignment-{}", agent.file_key())),
            company.store()?,
        )),
    }
}

/// `co assignment`: reads the assignment; records `assignment.checked` with the response time
/// from `assignment.set`; the first check moves the work order to `in_progress` and records
/// `agent.working`.
pub fn check(company: &Company, me: &Identity, actor: &str) -> Result<CheckReport> {
    let (path, astore) = assignment_path_of(company, &me.agent)?;
    let Some(a) = assignment::read(&path)? else {
        return Ok(CheckReport {
            assignment: None,
            work_order: None,
            first: false,
            response_ms: None,
        });
    };
    let home = company.store_for_work_order(&a.work_order)?;
    let mut locked = Locked::take(&home, &astore)?;
    let wo = workorder::lookup(&home, &a.work_order)?;
    let response_ms = parse_timestamp(&a.set_at)
        .map(|t| (chrono::Utc::now() - t).num_milliseconds().max(0) as u64);
    let first = wo.as_ref().is_some_and(|w| w.status == Status::Assigned);
    let mut he = Vec::new();
    let mut fe = vec![ev(
        types::ASSIGNMENT_CHECKED,
        actor,
        &AssignmentEvent {
            agent: me.agent.to_string(),
            work_order: a.work_order.clone(),
            incarnation: me
                .incarnation
                .clone()
                .unwrap_or_else(|| a.incarnation.clone()),
            response_ms,
            first: Some(first),
            ..Default::default()
        },
    )?];
    if first && let Some(w) = &wo {
        he.push(workorder::plan_transition(
            w,
            Status::InProgress,
            Some(&format!("{} started", me.agent)),
            None,
            actor,
        )?);
        fe.push(ev(
            types::AGENT_WORKING,
            actor,
            &AgentEvent {
                agent: me.agent.to_string(),
                session: me.agent.session(),
                incarnation: a.incarnation.clone(),
                work_order: Some(a.work_order.clone()),
                ..Default::default()
            },
        )?);
    }
    locked.append(he, fe)?;
    locked.report_warnings();
    Ok(CheckReport {
        assignment: Some(a),
        work_order: wo,
        first,
        response_ms,
    })
}

/// `co assignment set AGENT work_order:ID`: writes the assignment by hand.
pub fn set_assignment(
    company: &Company,
    agent: &AgentId,
    target: &str,
    actor: &str,
) -> Result<Assignment> {
    let (kind, id) = target.split_once(':').ok_or_else(|| {
        Error::usage(format!(
            "{target:?}: expected TYPE:ID, e.g. work_order:wo-k3x9q2"
        ))
    })?;
    if kind != "work_order" && kind != "wo" {
        return Err(Error::usage(format!(
            "assignment type {kind:?} is not supported (use work_order:ID)"
        )));
    }
    let (_, wo) = load_wo(company, id)?;
    let (path, store) = assignment_path_of(company, agent)?;
    let incarnation = match agent.factory() {
        Some(fname) => company
            .factory(fname)?
            .store()?
            .load::<Slots>()?
            .state
            .by_agent(&agent.to_string())
            .map(|s| s.incarnation.clone()),
        None => None,
    }
    .unwrap_or_else(crate::ids::new_incarnation_id);
    let branch = wo
        .branch
        .clone()
        .unwrap_or_else(|| format!("vermas/{}", wo.id));
    let a = Assignment::of_work_order(agent, &wo, &incarnation, wo.attempts, &branch, "");
    let mut w = store.lock()?;
    assignment::write(&path, &a)?;
    w.append(vec![ev(
        types::ASSIGNMENT_SET,
        actor,
        &AssignmentEvent {
            agent: agent.to_string(),
            work_order: wo.id,
            incarnation,
            attempt: Some(a.attempt),
            ..Default::default()
        },
    )?])?;
    w.report_warnings();
    Ok(a)
}

/// `co assignment clear AGENT`.
pub fn clear_assignment(
    company: &Company,
    agent: &AgentId,
    actor: &str,
) -> Result<Option<Assignment>> {
    let (path, store) = assignment_path_of(company, agent)?;
    let mut w = store.lock()?;
    let Some(a) = assignment::read(&path)? else {
        return Ok(None);
    };
    assignment::remove(&path)?;
    w.append(vec![ev(
        types::ASSIGNMENT_CLEARED,
        actor,
        &AssignmentEvent {
            agent: agent.to_string(),
            work_order: a.work_order.clone(),
            incarnation: a.incarnation.clone(),
            reason: Some("cleared by hand".into()),
            ..Default::default()
        },
    )?])?;
    w.report_warnings();
    Ok(Some(a))
}
