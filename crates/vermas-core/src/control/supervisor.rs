//! What a factory's supervisor does on one patrol, decided from a [`Snapshot`].
//!
//! - Mail: a `WORKER_DONE` whose work order is in review, from the worker that holds it now,
//!   with commits on its branch → forward it to QA; a branch that is gone or has nothing new →
//!   back to rework; anything else is ignored. Every message is marked read *after* what it
//!   caused, so a crash in between handles it again instead of losing it.
//! - Workers: at a dialog → escalate once (nothing is typed into a dialog); idle → a nudge, and
//!   again later with backoff while it stays idle; stuck → killed and re-queued (attempt +1);
//!   dead → restarted with backoff, within a budget per attempt. The same quick start-up
//!   failure twice in a row blocks the work order (a person must fix the machine or config)
//!   instead of burning its attempts.
//! - Work: out of attempts → escalate, then mark failed (that order: a crash between the two
//!   fails it again and finds the escalation already sent); rework and queued work is
//!   dispatched while slots are free, most urgent first; a dispatch that keeps failing backs
//!   off and, after a few tries, is escalated once and the work order blocked.

use super::restart::{Policy, Restarts, Start, State, Verdict};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// A dead worker that lived less than this was a start-up failure.
pub const QUICK_EXIT: Duration = Duration::from_secs(20);

/// Dispatches of one work order that fail in a row before it is blocked.
pub const MAX_DISPATCH_FAILURES: u32 = 4;

/// What the supervisor's decisions depend on, from the factory's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub idle: Duration,
    pub stuck: Duration,
    pub max_attempts: u32,
    pub restart: Policy,
}

impl Limits {
    pub fn of(s: &crate::config::Settings) -> Limits {
        Limits {
            idle: s.worker.idle_timeout_minutes,
            stuck: s.worker.stuck_timeout_minutes,
            max_attempts: s.worker.max_attempts,
            restart: Policy::worker_attempt(s),
        }
    }
}

pub use crate::runtime::Screen;

/// What becomes of a killed worker's work order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterKill {
    /// Back to the queue, with this attempt counted.
    Requeue,
    /// Left where the other actions put it (blocked, failed).
    Hold,
}

/// The worker's tmux session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Session {
    Alive {
        screen: Screen,
    },
    /// Gone, or its program exited.
    Dead,
}

/// One allocated slot and what is seen of its worker.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerObs {
    pub slot: u32,
    pub incarnation: String,
    pub work_order: String,
    pub attempt: u32,
    /// Unix seconds of its start (this incarnation).
    pub started_at: i64,
    /// Unix seconds of its last sign of life: its own events, its output (not our nudge's
    /// echo), its start.
    pub last_sign: i64,
    pub session: Session,
    /// For a dead worker: the last lines it printed, and what they mean if its runtime knows.
    pub last_output: String,
    pub hint: Option<String>,
    /// Its work order's status (`None` when it could not be read).
    pub wo_status: Option<crate::workorder::Status>,
}

impl WorkerObs {
    fn lineage(&self) -> Lineage {
        Lineage {
            slot: self.slot,
            work_order: self.work_order.clone(),
            attempt: self.attempt,
        }
    }
}

/// A `WORKER_DONE` message and what was checked about it.
#[derive(Debug, Clone, PartialEq)]
pub struct DoneObs {
    pub message: String,
    pub work_order: String,
    pub branch: String,
    /// The message's sender incarnation, and the work order's current one.
    pub sent_by: String,
    pub holder: Option<String>,
    /// `None`: the work order was not found.
    pub status: Option<crate::workorder::Status>,
    pub priority: u8,
    pub branch_exists: bool,
    pub commits_ahead: u32,
    pub target: String,
}

/// Work waiting for a worker in this factory (rework or queued), most urgent first.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingObs {
    pub work_order: String,
    pub status: crate::workorder::Status,
    pub attempts: u32,
    pub title: String,
    pub last_failure: Option<String>,
    /// A slot holds it already.
    pub held: bool,
    /// Its dependencies are closed.
    pub ready: bool,
}

/// Everything one patrol looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub factory: String,
    pub now: Instant,
    /// Unix seconds.
    pub wall: i64,
    /// 0.75–1.25, for restart delays.
    pub jitter: f64,
    pub done: Vec<DoneObs>,
    /// Other unread mail to the supervisor: `(id, type)`.
    pub other_mail: Vec<(String, String)>,
    pub workers: Vec<WorkerObs>,
    pub free_slots: u32,
    pub waiting: Vec<WaitingObs>,
}

/// One thing to do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `READY_FOR_QA` to QA and `qa.enqueued`.
    ForwardToQa {
        work_order: String,
        branch: String,
        priority: u8,
        message: String,
    },
    /// Back to rework: what was handed in cannot be merged.
    Rework {
        work_order: String,
        reason: String,
    },
    /// Logged and left alone.
    Ignore {
        message: String,
        why: String,
    },
    MarkRead {
        message: String,
    },
    /// `agent.idle`, then the nudge and `agent.nudged`.
    Nudge {
        slot: u32,
        incarnation: String,
        idle_for: Duration,
        count: u32,
    },
    /// Ends the worker (keeping unmerged work); `then` says what becomes of its work order.
    Kill {
        slot: u32,
        incarnation: String,
        reason: String,
        then: AfterKill,
    },
    /// Starts the agent again on its worktree, with a new incarnation.
    Respawn {
        slot: u32,
        incarnation: String,
    },
    /// Mail to the ceo, sent once per `key` (a crash and retry does not send it twice).
    Escalate {
        key: String,
        work_order: Option<String>,
        subject: String,
        body: String,
    },
    MarkFailed {
        work_order: String,
        reason: String,
    },
    Block {
        work_order: String,
        reason: String,
    },
    Dispatch {
        work_order: String,
    },
}

/// A worker attempt: the restart budget and the nudges belong to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Lineage {
    slot: u32,
    work_order: String,
    attempt: u32,
}

#[derive(Debug, Clone, PartialEq)]
struct Attempt {
    restarts: Restarts,
    /// Idle nudges sent since its last activity.
    idle_nudges: u32,
    /// The last quick start-up failure's output, to see the same one twice.
    quick_exit: Option<String>,
    /// Dialogs already escalated: `(incarnation, dialog)`.
    dialogs: BTreeSet<(String, String)>,
}

/// A dispatch that failed: when to try again.
#[derive(Debug, Clone, PartialEq)]
struct Retry {
    failures: u32,
    at: Instant,
}

/// What the supervisor remembers between patrols.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    attempts: BTreeMap<Lineage, Attempt>,
    dispatches: BTreeMap<String, Retry>,
}

/// How an applied action went, for [`Memory::learn`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Failed(String),
}

impl Memory {
    /// What an applied action teaches: a failed dispatch backs off.
    pub fn learn(&mut self, action: &Action, outcome: &Outcome, now: Instant) {
        if let Action::Dispatch { work_order } = action {
            match outcome {
                Outcome::Done => {
                    self.dispatches.remove(work_order);
                }
                Outcome::Failed(_) => {
                    let r = self.dispatches.entry(work_order.clone()).or_insert(Retry {
                        failures: 0,
                        at: now,
                    });
                    r.failures += 1;
                    let delay = Duration::from_secs(5)
                        .saturating_mul(1 << r.failures.min(10))
                        .min(Duration::from_secs(600));
                    r.at = now + delay;
                }
            }
        }
    }
}

/// The delay before the `n`-th idle nudge of a spell (0-based) is `idle × 2ⁿ` after the
/// previous one: nudges at idle, 3 × idle, 7 × idle… of silence.
fn nudge_due(idle: Duration, limit: Duration, count: u32) -> bool {
    let factor = (1u64 << (count.min(20) + 1)) - 1;
    idle >= limit.saturating_mul(factor as u32)
}

fn first_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// What a patrol knows of the session list an earlier patrol got from tmux.
#[derive(Debug, Clone, Copy)]
pub struct SessionsSeen {
    /// How long ago tmux was asked.
    pub age: Duration,
    /// The log names the same workers (slot and incarnation) as right after that list.
    pub same_workers: bool,
    /// Every one of those workers had its session, alive.
    pub all_alive: bool,
}

/// Whether a patrol may judge the workers by the session list of an earlier patrol instead of
/// asking tmux again (a tmux client per patrol, and the pipeline wakes the supervisor about
/// eight times per work order). Only a patrol woken by a change in the log may: one woken by
/// the timer always asks, so a worker whose session died without a word is found within a
/// patrol interval, as before. Only while the log names the same workers: one started or
/// stopped since would be judged by a list older than it (a new one would look dead). Only
/// when every worker was alive in it: one that looked dead is looked at again before anything
/// more is done about it. And only while the list is younger than `max_age`, so that a
/// company whose log never rests still asks at least once per interval.
pub fn reuse_sessions(woken_by_timer: bool, seen: Option<SessionsSeen>, max_age: Duration) -> bool {
    seen.is_some_and(|s| !woken_by_timer && s.same_workers && s.all_alive && s.age < max_age)
}

/// One patrol's decisions. Pure: the same snapshot and memory give the same actions.
pub fn decide(s: &Snapshot, mem: &mut Memory, limits: &Limits) -> Vec<Action> {
    let mut out = Vec::new();
    decide_mail(&s.done, &s.other_mail, &mut out);
    decide_workers(s, mem, limits, &mut out);
    decide_work(s, mem, limits, &mut out);
    out
}

/// What [`decide`] does with the mail alone: the loop acts on its mail before it looks at the
/// workers' sessions, so a `WORKER_DONE` reaches QA without waiting for tmux (then decides on
/// the rest with the mail already handled).
pub fn decide_mail_first(done: &[DoneObs], other_mail: &[(String, String)]) -> Vec<Action> {
    let mut out = Vec::new();
    decide_mail(done, other_mail, &mut out);
    out
}

fn decide_mail(done: &[DoneObs], other_mail: &[(String, String)], out: &mut Vec<Action>) {
    use crate::workorder::Status;
    for d in done {
        let ignore = |why: String| Action::Ignore {
            message: d.message.clone(),
            why,
        };
        let action = match d.status {
            None => ignore(format!("{} not found", d.work_order)),
            Some(_) if d.holder.as_deref() != Some(d.sent_by.as_str()) => ignore(format!(
                "stale: sent by {}, but the work order belongs to {}",
                d.sent_by,
                d.holder.as_deref().unwrap_or("nobody")
            )),
            Some(st) if st != Status::InReview => ignore(format!("it is {st}, not in review")),
            Some(_) if !d.branch_exists => Action::Rework {
                work_order: d.work_order.clone(),
                reason: format!("branch {} does not exist", d.branch),
            },
            Some(_) if d.commits_ahead == 0 => Action::Rework {
                work_order: d.work_order.clone(),
                reason: format!("{} has no commits beyond {}", d.branch, d.target),
            },
            Some(_) => Action::ForwardToQa {
                work_order: d.work_order.clone(),
                branch: d.branch.clone(),
                priority: d.priority,
                message: d.message.clone(),
            },
        };
        out.push(action);
        out.push(Action::MarkRead {
            message: d.message.clone(),
        });
    }
    for (id, _) in other_mail {
        out.push(Action::MarkRead {
            message: id.clone(),
        });
    }
}

fn decide_workers(s: &Snapshot, mem: &mut Memory, limits: &Limits, out: &mut Vec<Action>) {
    use crate::workorder::Status;
    let live: BTreeSet<Lineage> = s.workers.iter().map(WorkerObs::lineage).collect();
    mem.attempts.retain(|k, _| live.contains(k));
    for w in &s.workers {
        // A person cancelled (or closed, or gave up on) the work: its worker stops.
        if let Some(st @ (Status::Cancelled | Status::Closed | Status::Failed)) = w.wo_status {
            out.push(Action::Kill {
                slot: w.slot,
                incarnation: w.incarnation.clone(),
                reason: format!("its work order is {st}"),
                then: AfterKill::Hold,
            });
            continue;
        }
        let a = mem.attempts.entry(w.lineage()).or_insert_with(|| Attempt {
            restarts: Restarts::running(s.now),
            idle_nudges: 0,
            quick_exit: None,
            dialogs: BTreeSet::new(),
        });
        match &w.session {
            Session::Dead => dead(s, w, a, limits, out),
            Session::Alive { screen } => alive(s, w, a, screen, limits, out),
        }
    }
}

fn dead(s: &Snapshot, w: &WorkerObs, a: &mut Attempt, limits: &Limits, out: &mut Vec<Action>) {
    match a.restarts.state {
        State::Waiting { .. } => {
            if a.restarts.due(s.now) {
                a.restarts.started(s.now, Start::Again);
                out.push(Action::Respawn {
                    slot: w.slot,
                    incarnation: w.incarnation.clone(),
                });
            }
            return;
        }
        // Given up already: the kill is under way (or failed and is retried here).
        State::GaveUp => {
            out.push(Action::Kill {
                slot: w.slot,
                incarnation: w.incarnation.clone(),
                reason: "agent keeps exiting".into(),
                then: AfterKill::Requeue,
            });
            return;
        }
        State::Running { .. } => {}
    }
    let lived = Duration::from_secs(s.wall.saturating_sub(w.started_at).max(0) as u64);
    let output = first_lines(&w.last_output, 8);
    let quick = lived < QUICK_EXIT;
    if quick && !output.is_empty() && a.quick_exit.as_deref() == Some(output.as_str()) {
        // The same start-up failure twice: a restart will not help; a person must.
        block_start_failure(w, lived, &output, out);
        a.restarts.state = State::GaveUp;
        return;
    }
    a.quick_exit = quick.then_some(output);
    match a.restarts.died(s.now, &limits.restart, s.jitter) {
        Verdict::RestartIn(_) => {
            if a.restarts.due(s.now) {
                a.restarts.started(s.now, Start::Again);
                out.push(Action::Respawn {
                    slot: w.slot,
                    incarnation: w.incarnation.clone(),
                });
            }
        }
        Verdict::GiveUp => out.push(Action::Kill {
            slot: w.slot,
            incarnation: w.incarnation.clone(),
            reason: format!(
                "agent keeps exiting ({} deaths in attempt {})",
                a.restarts.failure_count(),
                w.attempt
            ),
            then: AfterKill::Requeue,
        }),
    }
}

/// An agent that exits at its start with the same output twice: escalate (first), stop the
/// worker and block its work order with the reason and what to do.
fn block_start_failure(w: &WorkerObs, lived: Duration, output: &str, out: &mut Vec<Action>) {
    let mut reason = format!(
        "the agent exits at start with the same error each time: {}",
        output.lines().last().unwrap_or_default()
    );
    if let Some(h) = &w.hint {
        reason.push_str(&format!(" ({h})"));
    }
    out.push(Action::Escalate {
        key: format!("start-failure:{}:{}", w.work_order, w.attempt),
        work_order: Some(w.work_order.clone()),
        subject: format!(
            "ESCALATION {} blocked: its agent cannot start",
            w.work_order
        ),
        body: format!(
            "The worker of {} (slot {}, attempt {}) exited within {}s of its start twice, with the same output:\n\n{output}\n\n{}Fix the cause, then `wo update {} --status open` and dispatch it again.",
            w.work_order,
            w.slot,
            w.attempt,
            lived.as_secs(),
            w.hint
                .as_deref()
                .map(|h| format!("What to do: {h}\n\n"))
                .unwrap_or_default(),
            w.work_order
        ),
    });
    out.push(Action::Kill {
        slot: w.slot,
        incarnation: w.incarnation.clone(),
        reason: reason.clone(),
        then: AfterKill::Hold,
    });
    out.push(Action::Block {
        work_order: w.work_order.clone(),
        reason,
    });
}

fn alive(
    s: &Snapshot,
    w: &WorkerObs,
    a: &mut Attempt,
    screen: &Screen,
    limits: &Limits,
    out: &mut Vec<Action>,
) {
    a.restarts.alive(s.now, &limits.restart);
    if let Screen::Dialog { name, text } = screen {
        // Nothing is typed into a dialog; a person decides, once told.
        if a.dialogs.insert((w.incarnation.clone(), name.clone())) {
            out.push(Action::Escalate {
                key: format!("dialog:{}:{}:{name}", w.work_order, w.incarnation),
                work_order: Some(w.work_order.clone()),
                subject: format!(
                    "ESCALATION worker slot{} of {} is blocked at a dialog: {name}",
                    w.slot, s.factory
                ),
                body: format!(
                    "The agent working on {} waits at its \"{name}\" dialog, which VerMAS does not answer for you. Attach with `tmux attach -t worker-{}-slot{}` and answer it (or fix the setting behind it), then the supervisor carries on.\n\nThe screen:\n\n{text}",
                    w.work_order, s.factory, w.slot
                ),
            });
        }
        return;
    }
    let idle = Duration::from_secs(s.wall.saturating_sub(w.last_sign).max(0) as u64);
    if idle < limits.idle {
        a.idle_nudges = 0;
        return;
    }
    if idle >= limits.stuck {
        out.push(Action::Kill {
            slot: w.slot,
            incarnation: w.incarnation.clone(),
            reason: format!(
                "stuck: no activity for {}",
                crate::clock::human_age(idle.as_secs() as i64)
            ),
            then: AfterKill::Requeue,
        });
        return;
    }
    // A busy agent is left alone; one at its prompt (or of unknown screen) is nudged.
    if *screen != Screen::Working && nudge_due(idle, limits.idle, a.idle_nudges) {
        a.idle_nudges += 1;
        out.push(Action::Nudge {
            slot: w.slot,
            incarnation: w.incarnation.clone(),
            idle_for: idle,
            count: a.idle_nudges,
        });
    }
}

fn decide_work(s: &Snapshot, mem: &mut Memory, limits: &Limits, out: &mut Vec<Action>) {
    let waiting: BTreeSet<&str> = s.waiting.iter().map(|w| w.work_order.as_str()).collect();
    mem.dispatches.retain(|k, _| waiting.contains(k.as_str()));
    let mut free = s.free_slots;
    // Work the kills and blocks of this patrol took away is not dispatched in the same one.
    let touched: BTreeSet<String> = out
        .iter()
        .filter_map(|a| match a {
            Action::Block { work_order, .. } => Some(work_order.clone()),
            _ => None,
        })
        .collect();
    for w in &s.waiting {
        if w.held || touched.contains(&w.work_order) {
            continue;
        }
        if w.attempts >= limits.max_attempts {
            give_up(s, w, limits, out);
            continue;
        }
        if free == 0 || !w.ready {
            continue;
        }
        match mem.dispatches.get(&w.work_order) {
            Some(r) if r.failures >= MAX_DISPATCH_FAILURES => {
                block_undispatchable(s, w, r.failures, out);
                mem.dispatches.remove(&w.work_order);
            }
            Some(r) if s.now < r.at => {}
            _ => {
                free -= 1;
                out.push(Action::Dispatch {
                    work_order: w.work_order.clone(),
                });
            }
        }
    }
}

/// Work that used all its attempts: escalate (first), then mark it failed.
fn give_up(s: &Snapshot, w: &WaitingObs, limits: &Limits, out: &mut Vec<Action>) {
    let last = w.last_failure.as_deref().unwrap_or("no failure recorded");
    let reason = format!(
        "gave up after {} attempt(s) (max_attempts = {}); last failure: {last}",
        w.attempts, limits.max_attempts
    );
    out.push(Action::Escalate {
        key: format!("failed:{}:{}", w.work_order, w.attempts),
        work_order: Some(w.work_order.clone()),
        subject: format!(
            "ESCALATION {} failed after {} attempts",
            w.work_order, w.attempts
        ),
        body: format!(
            "{} \"{}\" failed in {}.\n\n{reason}\n\nDecide: rewrite or split it (wo update), then `wo update {} --status open` and dispatch it again.",
            w.work_order, w.title, s.factory, w.work_order
        ),
    });
    out.push(Action::MarkFailed {
        work_order: w.work_order.clone(),
        reason,
    });
}

/// Work whose dispatch keeps failing: escalate (first), then block it with the reason.
fn block_undispatchable(s: &Snapshot, w: &WaitingObs, failures: u32, out: &mut Vec<Action>) {
    let reason = format!(
        "dispatch failed {failures} times in a row; see logs/supervisor-{}.log",
        s.factory
    );
    out.push(Action::Escalate {
        key: format!("dispatch:{}:{}", w.work_order, w.attempts),
        work_order: Some(w.work_order.clone()),
        subject: format!(
            "ESCALATION {} cannot be dispatched in {}",
            w.work_order, s.factory
        ),
        body: format!(
            "{}: {reason}. Fix the cause (`co doctor --fix` repairs worktrees), then `wo update {} --status queued` or dispatch it again.",
            w.work_order, w.work_order
        ),
    });
    out.push(Action::Block {
        work_order: w.work_order.clone(),
        reason,
    });
}

/// What a worker's screen and last sign of life mean once its hooks are heard (CLIs that call
/// them: `runtime::hooks`). A dialog on the screen always wins. A hook that says a prompt was
/// submitted or a tool runs is work from its time on, even on a screen that has not changed
/// (a long tool call prints nothing); a turn that ended (`Stop`) is an agent at its prompt from
/// that moment, whatever spinner the screen last showed. A notification that it waits for the
/// user is not a sign of life (Claude sends one after a minute at its prompt).
pub fn with_hook(
    screen: Screen,
    last_sign: i64,
    hook: Option<&crate::runtime::hooks::AgentState>,
) -> (Screen, i64) {
    use crate::runtime::hooks::HookState;
    let Some(h) = hook else {
        return (screen, last_sign);
    };
    if matches!(screen, Screen::Dialog { .. }) {
        return (screen, last_sign);
    }
    match h.state {
        HookState::Working => (Screen::Working, last_sign.max(h.at)),
        HookState::Idle => (Screen::Ready, last_sign.max(h.at)),
        HookState::Waiting => (Screen::Ready, last_sign),
    }
}

#[cfg(test)]
mod tests;
