//! `co dispatch WO FACTORY`: give a work order to a worker (design §2–§5).
//!
//! Under the store locks (company first, then factory: one global order, so two commands never
//! wait on each other) it reads the work order and the slots, lets orphaned slots go, and asks
//! [`control::plan`] what to do: refuse, queue, let more urgent queued work have the slot, or
//! launch. A launch takes the lowest free slot, makes the worktree on `vermas/<wo-id>` from the
//! target branch (or continues the branch, or brings back a parked worktree), writes the
//! assignment, starts `worker-<f>-slotN` with the agent environment, then writes the events.
//! For a new worktree git starts making it first and the session is started meanwhile, its
//! agent held by `co exec-agent --after` ([`wait_for_file`](crate::actions::launch::wait_for_file))
//! until the prompt file (written last) exists, so tmux and git work at the same time. Every step is written to a
//! [`Journal`]; a failure undoes exactly what the journal holds, newest first.

use crate::actions::launch::{
    Launch, start_nudge, start_worker_session, worker_session_spec, write_worker_prompt,
};
use crate::actions::locked::Locked;
use crate::agent::AgentId;
use crate::assignment::{self, Assignment};
use crate::company::{Company, Factory};
use crate::control::dispatch::{self as control, Plan, QueueReason, Refusal};
use crate::effects::tmux::{NudgeOutcome, PendingSession, Tmux, TmuxError};
use crate::effects::{GitRepo, Repo, Sessions, git};
use crate::error::{Error, Result};
use crate::event::{NewEvent, ev, types};
use crate::runtime::{self, Runtime};
use crate::slots::{AgentEvent, AssignmentEvent, SlotAllocated, Slots, WorktreeEvent};
use crate::store::{Store, StoreError};
use crate::workorder::{self, Assigned, Status, WorkOrder};
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

/// Whether an error is dispatch refusing (exit 5: taken, waiting, no slot, behind), rather
/// than something failing.
pub fn refusal(e: &Error) -> Option<&Refusal> {
    match e.root() {
        Error::Refused(r) => Some(r),
        _ => None,
    }
}

/// Work orders queued for a factory, from every store of the company, most urgent then oldest.
pub fn queued_for(company: &Company, factory: &str) -> Result<Vec<WorkOrder>> {
    queued_among(company, factory, &[], false)
}

/// [`queued_for`], reusing the look-ups of stores already opened (`(store dir, look-up)`).
/// Each store answers from its index (what is queued), not from every work order it has.
/// With `ready_only`, work still waiting on open dependencies (gained after it was queued) is
/// left out: it cannot take a slot, so it must not hold up the work behind it.
fn queued_among(
    company: &Company,
    factory: &str,
    opened: &[(&Path, &workorder::Lookup)],
    ready_only: bool,
) -> Result<Vec<WorkOrder>> {
    let mut out = Vec::new();
    for s in company.stores_for_reading()? {
        let fresh;
        let wos = match opened.iter().find(|(dir, _)| *dir == s.dir()) {
            Some((_, wos)) => *wos,
            None => {
                fresh = workorder::Lookup::open(&s)?;
                &fresh
            }
        };
        for w in wos.queued(factory)? {
            if !ready_only || workorder::open_blockers_in(wos, &w)?.is_empty() {
                out.push(w);
            }
        }
    }
    workorder::sort_by_priority_then_age(&mut out);
    Ok(out)
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

/// Makes the worktree of a slot that holds one already, or to which a parked worktree comes
/// back (a new worktree in an empty slot is an [`InFlight`]).
fn make_worktree(f: &Factory, slot: u32, wo_id: &str, branch: &str) -> Result<WorktreeMade> {
    let repo = f.git_dir();
    let path = f.slot_dir(slot);
    if clear_slot_dir(f, &path, branch)? {
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
    add_worktree(&repo, &path, branch, f.target_branch())
}

/// `git worktree add` of `branch` at `path`: a new branch from `target`, or the branch as it
/// is when it exists.
fn add_worktree(repo: &Path, path: &Path, branch: &str, target: &str) -> Result<WorktreeMade> {
    let added = match git::worktree_add_branch(repo, path, branch, target) {
        // A worktree deleted by hand (`rm -rf`) is still registered: forget it and add again.
        Err(e) if e.to_string().contains("already registered") => {
            git::worktree_prune(repo)?;
            git::worktree_add_branch(repo, path, branch, target)?
        }
        r => r?,
    };
    Ok(if added {
        WorktreeMade::NewBranch
    } else {
        WorktreeMade::ExistingBranch
    })
}

/// `git worktree add` into an empty slot directory, running on a thread of its own so that the
/// slow step of a launch overlaps everything else. Dropped before [`InFlight::finish`], it
/// waits for git and takes back what git made, so no way out of a dispatch leaves a half-made
/// worktree or git still running.
struct InFlight {
    slot: u32,
    dir: PathBuf,
    repo: PathBuf,
    branch: String,
    git: Option<std::thread::JoinHandle<Result<WorktreeMade>>>,
}

impl InFlight {
    /// Makes the slot directory (it must not exist) and starts git filling it.
    fn start(f: &Factory, slot: u32, branch: &str) -> Result<InFlight> {
        let dir = f.slot_dir(slot);
        if let Some(p) = dir.parent() {
            std::fs::create_dir_all(p).map_err(|e| StoreError::io(p, e))?;
        }
        std::fs::create_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let (repo, target) = (f.git_dir(), f.target_branch().to_string());
        let (r, d, b) = (repo.clone(), dir.clone(), branch.to_string());
        let git = std::thread::Builder::new()
            .name("git worktree add".into())
            .spawn(move || add_worktree(&r, &d, &b, &target));
        match git {
            Ok(git) => Ok(InFlight {
                slot,
                dir,
                repo,
                branch: branch.to_string(),
                git: Some(git),
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(Error::failure(format!(
                    "could not start a thread for git: {e}"
                )))
            }
        }
    }

    /// Waits for git. The slot directory is the caller's from here on (in its journal).
    fn finish(mut self) -> Result<WorktreeMade> {
        self.wait()
    }

    fn wait(&mut self) -> Result<WorktreeMade> {
        match self.git.take() {
            Some(git) => git
                .join()
                .unwrap_or_else(|_| Err(Error::failure("making the worktree panicked"))),
            None => Err(Error::failure("git was waited for already")),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.git.is_none() {
            return;
        }
        if let Ok(how) = self.wait() {
            undo_worktree(&GitRepo(self.repo.clone()), &self.dir, &self.branch, &how);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Starts git before the work order and the queue are read, in the slot the plan gives first
/// when the work order can go ([`control::likely_slot`]), if the launch there is a new branch
/// in an empty slot: reading the index takes a few milliseconds that git would otherwise wait
/// for. A plan that turns out otherwise (refused, queued, another slot) drops it, which takes
/// the worktree back. `None` when anything says the guess would be wasted.
fn start_early(f: &Factory, work_order: &str, slots: &Slots) -> Option<InFlight> {
    if !crate::ids::is_work_order_id(work_order) || slots.by_work_order(work_order).is_some() {
        return None;
    }
    let held = slots.all().map(|s| s.slot).collect();
    let slot = control::likely_slot(f.max_slots(), &held)?;
    let branch = format!("vermas/{work_order}");
    let occupied = |p: &Path| std::fs::symlink_metadata(p).is_ok();
    if occupied(&f.slot_dir(slot))
        || occupied(&f.parked_dir(work_order))
        || git::branch_commit(&f.git_dir(), &branch).is_some()
    {
        return None;
    }
    InFlight::start(f, slot, &branch).ok()
}

/// Takes back a worktree a failed launch made at `path`: a new branch goes with it, an
/// existing branch stays, a parked worktree goes back where it was parked.
fn undo_worktree(repo: &dyn Repo, path: &Path, branch: &str, made: &WorktreeMade) {
    match made {
        WorktreeMade::NewBranch => {
            let _ = repo.remove_worktree(path);
            let _ = repo.delete_branch(branch);
        }
        WorktreeMade::ExistingBranch => {
            let _ = repo.remove_worktree(path);
        }
        WorktreeMade::Unparked(from) => {
            let _ = repo.move_worktree(path, from);
        }
        WorktreeMade::Reused => {}
    }
    let _ = repo.prune_worktrees();
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
        let assigned = f.assignment_path(&agent).exists();
        if assigned
            || !control::orphaned(control::SlotSeen {
                assignment_file: assigned,
                session: tmux.has_session(&agent.session()),
            })
        {
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
            .and_then(|st| workorder::lookup(&st, &s.work_order))
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

/// One thing a launch made, so a failure can undo it.
#[derive(Debug)]
enum Made {
    /// The empty slot directory, made so the session could start while git fills it.
    SlotDir(PathBuf),
    /// The agent's private environment, read (and removed) by the agent when it starts.
    EnvFile(PathBuf),
    Assignment(PathBuf),
    Worktree {
        path: PathBuf,
        how: WorktreeMade,
    },
    Session(String),
}

/// What a launch made, in order. [`Journal::undo`] takes it back newest first; a journal that
/// is kept (the events are written) is simply dropped.
#[derive(Debug, Default)]
struct Journal {
    made: Vec<Made>,
}

impl Journal {
    fn push(&mut self, m: Made) {
        self.made.push(m);
    }

    /// The assignment file and the worktree, each when it was made.
    fn made_both(
        &mut self,
        assignment: PathBuf,
        worktree: &Path,
        made: &Result<WorktreeMade>,
        written: &Result<()>,
    ) {
        if written.is_ok() {
            self.push(Made::Assignment(assignment));
        }
        if let Ok(how) = made {
            self.push(Made::Worktree {
                path: worktree.to_path_buf(),
                how: how.clone(),
            });
        }
    }

    /// Undoes everything, newest first. A session is killed only if it carries our tag.
    fn undo(self, sessions: &dyn Sessions, tag: &str, repo: &dyn Repo, branch: &str) {
        for m in self.made.into_iter().rev() {
            match m {
                Made::Session(name) => {
                    let _ = sessions.kill(&name, tag);
                }
                Made::Assignment(p) => {
                    let _ = assignment::remove(&p);
                }
                Made::Worktree { path, how } => undo_worktree(repo, &path, branch, &how),
                Made::SlotDir(p) => {
                    let _ = std::fs::remove_dir(&p);
                }
                Made::EnvFile(p) => {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }

    /// [`Journal::undo`] against the company's tmux and the factory's repository.
    fn undo_in(self, company: &Company, f: &Factory, branch: &str) {
        self.undo(
            &company.tmux(),
            &company.tag(),
            &GitRepo(f.git_dir()),
            branch,
        );
    }

    fn session(&self) -> Option<&str> {
        self.made.iter().find_map(|m| match m {
            Made::Session(s) => Some(s.as_str()),
            _ => None,
        })
    }

    fn worktree(&self) -> Option<&WorktreeMade> {
        self.made.iter().find_map(|m| match m {
            Made::Worktree { how, .. } => Some(how),
            _ => None,
        })
    }
}

/// How a launch in one slot went.
enum Slot {
    Launched,
    /// The slot's session name is held by a session that is not in the slots (a worker that
    /// reported done and has not exited yet, or one nobody assigned): try the next slot.
    NameTaken,
}

/// What a launch needs beyond the slot.
struct Start<'a> {
    company: &'a Company,
    f: &'a Factory,
    wo: &'a WorkOrder,
    incarnation: &'a str,
    attempt: u32,
    branch: &'a str,
    rt: &'a Runtime,
}

/// How a launch orders its two slow steps, tmux and git.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// A new worktree in an empty slot: the session starts at once, its agent held until the
    /// prompt file appears, while git makes the worktree.
    Overlapped,
    /// A parked worktree coming back, or a worktree already in the slot: one after the other.
    InTurn,
}

/// Makes the worktree and the assignment of one slot and starts its session, writing each step
/// to `journal` (the caller undoes it on failure).
fn launch_in_slot(
    s: &Start<'_>,
    slot: u32,
    early: Option<InFlight>,
    journal: &mut Journal,
) -> Result<Slot> {
    let (company, f, wo) = (s.company, s.f, s.wo);
    let tmux = company.tmux();
    let agent = AgentId::worker(&f.name, slot);
    let worktree = f.slot_dir(slot);
    let the_assignment = Assignment::of_work_order(
        &agent,
        wo,
        s.incarnation,
        s.attempt,
        s.branch,
        &worktree.display().to_string(),
    );
    let launch = Launch {
        company,
        factory: f,
        slot,
        work_order: wo,
        incarnation: s.incarnation,
        runtime: s.rt,
        worktree: &worktree,
    };
    // The usual case, a new worktree in an empty slot (git may have started already),
    // overlaps tmux and git (the two slow steps); anything else goes one after the other.
    let order = if early.is_some() || (!worktree.exists() && !f.parked_dir(&wo.id).exists()) {
        Order::Overlapped
    } else {
        Order::InTurn
    };
    if order == Order::InTurn && worktree.exists() && tmux.has_session(&agent.session()) {
        // A session still runs in what is in the slot: leave its directory alone.
        return Ok(Slot::NameTaken);
    }
    let (pending, made, written) = match order {
        Order::Overlapped => {
            let (pending, made, written) =
                overlapped_launch(s, &launch, &tmux, &the_assignment, early, journal)?;
            (Some(pending), made, written)
        }
        Order::InTurn => {
            let (made, written) = make_worktree_and_assignment(s, slot, &the_assignment, journal);
            (None, made, written)
        }
    };
    // A held session must be known before anything can fail, so a failure kills it.
    if let Some(p) = pending {
        match p.wait() {
            Ok(()) => journal.push(Made::Session(agent.session())),
            Err(TmuxError::Exists(_)) => return Ok(Slot::NameTaken),
            Err(e) => {
                // Say it plainly when the reason is a tmux older than 3.2.
                tmux.check_version()?;
                return Err(e.into());
            }
        }
    }
    made?;
    written?;
    start_agent(&launch, s.attempt, &tmux, journal)
}

/// A new worktree in an empty slot: git (the slow step) fills the empty slot directory on a
/// thread (started here, or `early`) while this one writes the agent's environment, starts
/// its session (the agent held until the prompt file appears) and writes the assignment.
/// Everything made goes to `journal`; `Err` only when git could not be started.
fn overlapped_launch(
    s: &Start<'_>,
    launch: &Launch<'_>,
    tmux: &Tmux,
    the_assignment: &Assignment,
    early: Option<InFlight>,
    journal: &mut Journal,
) -> Result<(PendingSession, Result<WorktreeMade>, Result<()>)> {
    let (f, worktree) = (s.f, launch.worktree);
    let git = match early {
        Some(git) => git,
        None => InFlight::start(f, launch.slot, s.branch)?,
    };
    journal.push(Made::SlotDir(worktree.to_path_buf()));
    let apath = f.assignment_path(&AgentId::worker(&f.name, launch.slot));
    let session = start_held_session(launch, tmux, journal);
    let written = assignment::write(&apath, the_assignment);
    let made = git.finish();
    journal.made_both(apath, worktree, &made, &written);
    Ok((session?, made, written))
}

/// Starts the session in the (empty) slot directory, its agent held until the prompt file
/// appears.
fn start_held_session(
    launch: &Launch<'_>,
    tmux: &Tmux,
    journal: &mut Journal,
) -> Result<PendingSession> {
    let prompt = launch.worktree.join(".vermas").join("PROMPT.md");
    let (spec, env_file) = worker_session_spec(launch, &prompt, true)?;
    journal.push(Made::EnvFile(env_file));
    Ok(tmux.spawn_session(&spec)?)
}

/// Makes the worktree (one already in the slot, or a parked one brought back) while another
/// thread writes (and fsyncs) the assignment file: the agent needs both and starts after both.
/// What was made goes to `journal`.
fn make_worktree_and_assignment(
    s: &Start<'_>,
    slot: u32,
    the_assignment: &Assignment,
    journal: &mut Journal,
) -> (Result<WorktreeMade>, Result<()>) {
    let f = s.f;
    let worktree = f.slot_dir(slot);
    let apath = f.assignment_path(&AgentId::worker(&f.name, slot));
    let fresh = std::fs::symlink_metadata(&apath).is_err();
    let (made, written) = std::thread::scope(|sc| {
        let writer = fresh.then(|| sc.spawn(|| assignment::write(&apath, the_assignment)));
        let made = make_worktree(f, slot, &s.wo.id, s.branch);
        let written = match writer {
            Some(w) => w
                .join()
                .unwrap_or_else(|_| Err(Error::failure("writing the assignment panicked"))),
            None => assignment::write(&apath, the_assignment),
        };
        (made, written)
    });
    journal.made_both(apath, &worktree, &made, &written);
    (made, written)
}

/// Starts the agent once its worktree and assignment are there: writing the prompt releases a
/// held agent; otherwise its session starts now.
fn start_agent(
    launch: &Launch<'_>,
    attempt: u32,
    tmux: &Tmux,
    journal: &mut Journal,
) -> Result<Slot> {
    if journal.session().is_some() {
        write_worker_prompt(
            launch.worktree,
            launch.work_order,
            launch.factory,
            launch.slot,
            attempt,
        )?;
        return Ok(Slot::Launched);
    }
    match start_worker_session(launch, attempt) {
        Ok(name) => journal.push(Made::Session(name)),
        Err(e) if matches!(e.tmux(), Some(TmuxError::Exists(_))) => {
            return Ok(Slot::NameTaken);
        }
        Err(e) => {
            tmux.check_version()?;
            return Err(e);
        }
    }
    Ok(Slot::Launched)
}

/// Dispatches a work order (see the module documentation). The factory's queue is served in
/// order: if more urgent (or equally urgent and older) work is queued, it gets the free slot
/// and this work order is queued behind it.
pub fn dispatch(company: &Company, req: &DispatchRequest) -> Result<DispatchOutcome> {
    let f = company.factory(&req.factory)?;
    match dispatch_in(company, &f, req)? {
        Step::Done(o) => Ok(o),
        Step::Behind { head } => {
            let ran = match dispatch_in(
                company,
                &f,
                &DispatchRequest {
                    work_order: head,
                    no_queue: true,
                    runtime: None,
                    ..req.clone()
                },
            ) {
                Ok(Step::Done(o)) => Some(Box::new(o)),
                Ok(Step::Behind { .. }) => None,
                // Someone else (the supervisor) filled the slot or took the head first.
                Err(e) if refusal(&e).is_some() => None,
                Err(e) => return Err(e),
            };
            let (position, of) = place_in_queue(company, &f.name, &req.work_order)?;
            Ok(DispatchOutcome::QueuedBehind {
                work_order: req.work_order.clone(),
                factory: req.factory.clone(),
                position,
                of,
                ran,
            })
        }
    }
}

/// Where a work order is in its factory's queue: (position from 1, length).
fn place_in_queue(company: &Company, factory: &str, id: &str) -> Result<(usize, usize)> {
    let queue = queued_for(company, factory)?;
    let position = queue
        .iter()
        .position(|w| w.id == id)
        .map(|p| p + 1)
        .unwrap_or(queue.len());
    Ok((position, queue.len()))
}

/// What one pass of dispatch did.
enum Step {
    Done(DispatchOutcome),
    /// Queued behind `head`, which should get the free slot.
    Behind {
        head: String,
    },
}

/// The slot is chosen from the log alone: no tmux query is on this path. A session name that
/// turns out to be taken is found by `new-session` itself, and the next free slot is tried.
fn dispatch_in(company: &Company, f: &Factory, req: &DispatchRequest) -> Result<Step> {
    let home = home_store(company, f, &req.work_order)?;
    std::thread::scope(|sc| {
        // The other stores, asked only whether work is queued ahead, are opened (each index
        // brought to the end of its log) while the home store is locked and read. The factory's
        // own store is read under its lock, as the home store is.
        let others = sc.spawn(|| other_lookups(company, &[home.dir(), &f.work_dir()]));
        dispatch_locked(company, f, req, &home, others)
    })
}

/// The look-ups of every store of the company but those in `except`.
fn other_lookups(company: &Company, except: &[&Path]) -> Result<Vec<(PathBuf, workorder::Lookup)>> {
    let mut out = Vec::new();
    for s in company.stores_for_reading()? {
        if !except.contains(&s.dir()) {
            out.push((s.dir().to_path_buf(), workorder::Lookup::open(&s)?));
        }
    }
    Ok(out)
}

type Others<'s> = std::thread::ScopedJoinHandle<'s, Result<Vec<(PathBuf, workorder::Lookup)>>>;

fn dispatch_locked(
    company: &Company,
    f: &Factory,
    req: &DispatchRequest,
    home: &Store,
    others: Others<'_>,
) -> Result<Step> {
    let rt = worker_runtime(f, req)?;
    let fstore = f.store()?;
    let locked = Locked::take(home, &fstore)?;
    let slots = fstore.load::<Slots>()?.state;
    // Declared after `locked`, so that any early return takes it back before the locks go.
    let early = start_early(f, &req.work_order, &slots);
    // Under the lock the index is brought to the end of the log: this is the current state.
    let wos = workorder::Lookup::open(home)?;
    let mut wo = existing(&wos, &req.work_order)?;
    let stores = Stores {
        company,
        home,
        factory: &fstore,
    };
    let (mut pending, reclaimed) = reclaim(&stores, f, &slots, &mut wo, &req.actor)?;
    let others = others
        .join()
        .map_err(|_| Error::failure("opening the company's stores panicked"))??;
    let mut opened: Vec<(&Path, &workorder::Lookup)> = vec![(home.dir(), &wos)];
    opened.extend(others.iter().map(|(d, l)| (d.as_path(), l)));
    let obs = observe(&stores, f, req, &opened, &wo, &slots, &reclaimed)?;
    let (attempt, candidates) = match control::plan(&obs) {
        Plan::Refuse(r) => return Err(r.into()),
        Plan::Queue {
            reason,
            move_to_queue,
        } => {
            if move_to_queue {
                let why = reason.to_string();
                pending.home.push(to_queue(&wo, f, &why, &req.actor)?);
            }
            // Git's early start is taken back while the locks are still held.
            drop(early);
            pending.write(locked)?;
            return match reason {
                QueueReason::Behind { head } => Ok(Step::Behind { head }),
                QueueReason::NoFreeSlot { busy, .. } => queued(company, f, &wo.id, busy),
            };
        }
        Plan::Launch { slots, attempt } => (attempt, slots),
    };
    let incarnation = crate::ids::new_incarnation_id();
    let branch = format!("vermas/{}", wo.id);
    let start = Start {
        company,
        f,
        wo: &wo,
        incarnation: &incarnation,
        attempt,
        branch: &branch,
        rt: &rt,
    };
    let Some((slot, journal)) = launch_in_first_free(&start, candidates, early)? else {
        return queue_as_no_free_slot(&start, req, locked, pending);
    };
    let launched = Launched {
        start: &start,
        slot,
        agent: AgentId::worker(&f.name, slot),
        actor: &req.actor,
    };
    launched.record(journal, locked, pending)?;
    let nudge = start_nudge(company, &fstore, &rt, &launched.agent, &req.actor);
    let session = launched.agent.session();
    Ok(Step::Done(DispatchOutcome::Spawned {
        attach: company.tmux().attach_hint(&session),
        session,
        slot,
        work_order: wo.id.clone(),
        incarnation,
        nudge,
    }))
}

/// The worker runtime asked for (or the factory's), checked to be installed.
fn worker_runtime(f: &Factory, req: &DispatchRequest) -> Result<Runtime> {
    let runtime_name = req
        .runtime
        .clone()
        .unwrap_or_else(|| f.settings.roles.worker.clone());
    let rt = runtime::resolve(&f.settings, &runtime_name, "worker")?;
    rt.check_installed()?;
    Ok(rt)
}

/// The work order `id`, which must exist.
fn existing(wos: &workorder::Lookup, id: &str) -> Result<WorkOrder> {
    wos.get(id)?.ok_or_else(|| {
        Error::not_found(format!(
            "work order {} not found",
            crate::text::escape_control(id)
        ))
    })
}

/// The store a work order lives in. Most live in the factory they go to: no need to look
/// through the others.
fn home_store(company: &Company, f: &Factory, work_order: &str) -> Result<Store> {
    if crate::ids::prefix_of(work_order) == Some(f.prefix()) {
        f.store()
    } else {
        company.store_for_work_order(work_order)
    }
}

/// The move of `wo` to the queue of `f`.
fn to_queue(wo: &WorkOrder, f: &Factory, reason: &str, actor: &str) -> Result<NewEvent> {
    workorder::plan_transition(wo, Status::Queued, Some(reason), Some(&f.name), actor)
}

/// The stores a dispatch reads and writes: the company's, the work order's home store, and the
/// factory's.
struct Stores<'a> {
    company: &'a Company,
    home: &'a Store,
    factory: &'a Store,
}

/// Events gathered under the lock before the launch: written with the launch's own, or alone
/// when the work order is queued.
#[derive(Default)]
struct Pending {
    home: Vec<NewEvent>,
    factory: Vec<NewEvent>,
    /// For a third store: written after our locks are released (lock order).
    deferred: Vec<(Store, NewEvent)>,
}

impl Pending {
    /// Appends the events, releases the locks, then writes the deferred ones.
    fn write(self, mut locked: Locked<'_>) -> Result<()> {
        locked.append(self.home, self.factory)?;
        release(locked, self.deferred)
    }
}

/// Releases the locks (after their warnings), then writes the events for other stores.
fn release(mut locked: Locked<'_>, deferred: Vec<(Store, NewEvent)>) -> Result<()> {
    locked.report_warnings();
    drop(locked);
    write_deferred(deferred)
}

/// The guide's recovery: lets slots go whose worker is gone and whose assignment was removed,
/// re-queueing their work orders (`wo` too, when it is one of them). Returns the events and the
/// slots freed.
fn reclaim(
    stores: &Stores<'_>,
    f: &Factory,
    slots: &Slots,
    wo: &mut WorkOrder,
    actor: &str,
) -> Result<(Pending, Vec<u32>)> {
    let company = stores.company;
    let mut pending = Pending::default();
    let mut reclaimed: Vec<u32> = Vec::new();
    for (rel, requeue) in reclaim_orphans(company, f, slots, actor)? {
        if let Ok(r) = serde_json::from_str::<crate::slots::SlotReleased>(rel.data.get()) {
            reclaimed.push(r.slot);
        }
        pending.factory.push(rel);
        if let Some((id, e)) = requeue {
            if id == wo.id {
                wo.status = Status::Queued;
                wo.factory = Some(f.name.clone());
                pending.home.push(e);
            } else if let Ok(st) = company.store_for_work_order(&id) {
                if st.dir() == stores.home.dir() {
                    pending.home.push(e);
                } else if st.dir() == stores.factory.dir() {
                    pending.factory.push(e);
                } else {
                    pending.deferred.push((st, e));
                }
            }
        }
    }
    Ok((pending, reclaimed))
}

/// What [`control::plan`] decides on, read under the lock.
fn observe(
    stores: &Stores<'_>,
    f: &Factory,
    req: &DispatchRequest,
    opened: &[(&Path, &workorder::Lookup)],
    wo: &WorkOrder,
    slots: &Slots,
    reclaimed: &[u32],
) -> Result<control::Obs> {
    Ok(control::Obs {
        work_order: control::WorkOrderObs {
            id: wo.id.clone(),
            status: wo.status,
            queued_in: (wo.status == Status::Queued)
                .then(|| wo.factory.clone())
                .flatten(),
            attempts: wo.attempts,
            holder: slots
                .by_work_order(&wo.id)
                .map(|s| s.agent.clone())
                .or(wo.assignee.clone()),
            blockers: workorder::open_blockers_in(home_lookup(stores, opened)?, wo)?,
        },
        factory: f.name.clone(),
        max_slots: f.max_slots(),
        busy: slots
            .all()
            .map(|s| s.slot)
            .filter(|n| !reclaimed.contains(n))
            .collect(),
        ahead: queued_among(stores.company, &f.name, opened, true)?
            .into_iter()
            .find(|q| q.id != wo.id && workorder::queue_order(q, wo).is_lt())
            .map(|q| (q.id, q.priority)),
        no_queue: req.no_queue,
    })
}

/// The look-up of the home store among those opened.
fn home_lookup<'a>(
    stores: &Stores<'_>,
    opened: &[(&Path, &'a workorder::Lookup)],
) -> Result<&'a workorder::Lookup> {
    opened
        .iter()
        .find(|(dir, _)| *dir == stores.home.dir())
        .map(|(_, l)| *l)
        .ok_or_else(|| Error::failure("the work order's own store was not opened"))
}

/// The outcome of queueing a work order in `f` while `busy` slots are held.
fn queued(company: &Company, f: &Factory, work_order: &str, busy: u32) -> Result<Step> {
    let (position, of) = place_in_queue(company, &f.name, work_order)?;
    Ok(Step::Done(DispatchOutcome::Queued {
        work_order: work_order.to_string(),
        factory: f.name.clone(),
        position,
        of,
        busy,
    }))
}

/// Tries the candidate slots in turn; the first launched is kept with its journal, each
/// other's journal is undone. `None` when every slot's session name was taken. Git started
/// `early` in the first candidate is used there; anywhere else it is taken back.
fn launch_in_first_free(
    start: &Start<'_>,
    candidates: Vec<u32>,
    early: Option<InFlight>,
) -> Result<Option<(u32, Journal)>> {
    let (company, f, branch) = (start.company, start.f, start.branch);
    let mut early = early.filter(|git| candidates.first() == Some(&git.slot));
    for slot in candidates {
        let mut journal = Journal::default();
        match launch_in_slot(start, slot, early.take(), &mut journal) {
            Ok(Slot::Launched) => return Ok(Some((slot, journal))),
            Ok(Slot::NameTaken) => journal.undo_in(company, f, branch),
            Err(e) => {
                journal.undo_in(company, f, branch);
                return Err(e);
            }
        }
    }
    Ok(None)
}

/// Every free slot's name is held by a session still running: wait in the queue, as when
/// every slot is busy.
fn queue_as_no_free_slot(
    start: &Start<'_>,
    req: &DispatchRequest,
    locked: Locked<'_>,
    mut pending: Pending,
) -> Result<Step> {
    let (f, wo) = (start.f, start.wo);
    if req.no_queue {
        return Err(Refusal::NoFreeSlot {
            factory: f.name.clone(),
            busy: f.max_slots(),
            max: f.max_slots(),
        }
        .into());
    }
    if !(wo.status == Status::Queued && wo.factory.as_deref() == Some(f.name.as_str())) {
        pending
            .home
            .push(to_queue(wo, f, "no free slot", &req.actor)?);
    }
    pending.write(locked)?;
    queued(start.company, f, &wo.id, f.max_slots())
}

/// A worker launched in a slot, whose events are still to be written.
struct Launched<'a> {
    start: &'a Start<'a>,
    slot: u32,
    agent: AgentId,
    actor: &'a str,
}

impl Launched<'_> {
    /// Writes the launch's events after the pending ones; if that fails, the launch is undone
    /// (still under the lock).
    fn record(&self, journal: Journal, mut locked: Locked<'_>, pending: Pending) -> Result<()> {
        let how = journal.worktree().cloned();
        let events = self.home_events(pending.home).and_then(|home| {
            let factory = self.factory_events(pending.factory, how.as_ref())?;
            Ok((home, factory))
        });
        if let Err(e) = events.and_then(|(h, fe)| locked.append(h, fe)) {
            journal.undo_in(self.start.company, self.start.f, self.start.branch);
            return Err(e);
        }
        release(locked, pending.deferred)
    }

    /// An event of this launch, correlated by its incarnation.
    fn event(&self, ty: &str, data: &impl serde::Serialize) -> Result<NewEvent> {
        Ok(ev(ty, self.actor, data)?.correlated(Some(self.start.incarnation)))
    }

    /// The work order's events: assigned (its status, then who has it).
    fn home_events(&self, mut home: Vec<NewEvent>) -> Result<Vec<NewEvent>> {
        let s = self.start;
        home.push(
            workorder::plan_transition(s.wo, Status::Assigned, None, Some(&s.f.name), self.actor)?
                .correlated(Some(s.incarnation)),
        );
        home.push(self.event(
            types::WORK_ORDER_ASSIGNED,
            &Assigned {
                id: s.wo.id.clone(),
                assignee: self.agent.to_string(),
                factory: s.f.name.clone(),
                slot: self.slot,
                incarnation: s.incarnation.to_string(),
                attempt: s.attempt,
                branch: s.branch.to_string(),
            },
        )?);
        Ok(home)
    }

    /// The factory's events: the slot, the worktree (unless reused), the assignment, the agent.
    fn factory_events(
        &self,
        mut fe: Vec<NewEvent>,
        how: Option<&WorktreeMade>,
    ) -> Result<Vec<NewEvent>> {
        let (s, slot) = (self.start, self.slot);
        let (agent, incarnation) = (self.agent.to_string(), s.incarnation.to_string());
        let worktree = s.f.slot_dir(slot).display().to_string();
        fe.push(self.event(
            types::SLOT_ALLOCATED,
            &SlotAllocated {
                slot,
                agent: agent.clone(),
                work_order: s.wo.id.clone(),
                incarnation: incarnation.clone(),
                attempt: s.attempt,
                branch: s.branch.to_string(),
                worktree: worktree.clone(),
                runtime: s.rt.name.clone(),
            },
        )?);
        if let Some(how) = how.filter(|h| **h != WorktreeMade::Reused) {
            fe.push(self.event(
                types::WORKTREE_CREATED,
                &WorktreeEvent {
                    path: worktree,
                    branch: s.branch.to_string(),
                    work_order: s.wo.id.clone(),
                    slot: Some(slot),
                    how: how.how().into(),
                },
            )?);
        }
        fe.push(self.event(
            types::ASSIGNMENT_SET,
            &AssignmentEvent {
                agent: agent.clone(),
                work_order: s.wo.id.clone(),
                incarnation: incarnation.clone(),
                attempt: Some(s.attempt),
                ..Default::default()
            },
        )?);
        fe.push(self.event(
            types::AGENT_STARTED,
            &AgentEvent {
                agent,
                session: self.agent.session(),
                incarnation,
                role: Some("worker".into()),
                runtime: Some(s.rt.name.clone()),
                work_order: Some(s.wo.id.clone()),
                slot: Some(slot),
                ..Default::default()
            },
        )?);
        Ok(fe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::fake::{FakeRepo, FakeSessions};

    /// The steps of a launch in the order it makes them, for a new branch in an empty slot.
    fn steps(dir: &Path) -> Vec<Made> {
        vec![
            Made::SlotDir(dir.join("slot0")),
            Made::Assignment(dir.join(".assignment-mp-workers-slot0")),
            Made::Worktree {
                path: dir.join("slot0"),
                how: WorktreeMade::NewBranch,
            },
            Made::Session("worker-mp-slot0".into()),
        ]
    }

    #[test]
    fn a_launch_failing_after_each_step_undoes_exactly_what_it_made_newest_first() {
        let d = tempfile::tempdir().unwrap();
        let slot = d.path().join("slot0").display().to_string();
        // (steps made before the failure, the tmux and git calls its undo makes)
        let table: Vec<(usize, Vec<String>)> = vec![
            (0, vec![]),
            (1, vec![]),
            (2, vec![]),
            (
                3,
                vec![
                    format!("remove {slot}"),
                    "delete vermas/mp-a".into(),
                    "prune".into(),
                ],
            ),
            (
                4,
                vec![
                    "kill worker-mp-slot0".into(),
                    format!("remove {slot}"),
                    "delete vermas/mp-a".into(),
                    "prune".into(),
                ],
            ),
        ];
        for (made, want) in table {
            std::fs::create_dir_all(d.path().join("slot0")).unwrap();
            let apath = d.path().join(".assignment-mp-workers-slot0");
            std::fs::write(&apath, "{}").unwrap();
            let mut j = Journal::default();
            for m in steps(d.path()).into_iter().take(made) {
                j.push(m);
            }
            let (sessions, repo) = (FakeSessions::default(), FakeRepo::default());
            j.undo(&sessions, "tag", &repo, "vermas/mp-a");
            let mut calls = sessions.calls.list();
            calls.extend(repo.calls.list());
            assert_eq!(calls, want, "after {made} step(s)");
            assert_eq!(
                apath.exists(),
                made < 2,
                "the assignment file goes when it was made ({made})"
            );
            assert_eq!(
                d.path().join("slot0").exists(),
                made == 0,
                "the slot directory goes when it was made ({made})"
            );
        }
    }

    #[test]
    fn undoing_a_worktree_keeps_an_existing_branch_and_parks_an_unparked_one_again() {
        let p = Path::new("/f/workers/slot1");
        let table = [
            (
                WorktreeMade::ExistingBranch,
                vec!["remove /f/workers/slot1", "prune"],
            ),
            (
                WorktreeMade::Unparked("/f/workers/parked/mp-a".into()),
                vec!["move /f/workers/slot1 /f/workers/parked/mp-a", "prune"],
            ),
            (WorktreeMade::Reused, vec!["prune"]),
        ];
        for (how, want) in table {
            let repo = FakeRepo::default();
            undo_worktree(&repo, p, "vermas/mp-a", &how);
            assert_eq!(repo.calls.list(), want, "{how:?}");
        }
    }
}
