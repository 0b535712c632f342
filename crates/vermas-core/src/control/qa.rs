//! What a factory's QA decides: which handed-in work to look at, what a batch's gates mean,
//! and how a failed batch is bisected.
//!
//! - [`triage`]: each `READY_FOR_QA` is stale (the work order moved on, or another worker holds
//!   it), waits for gates to be configured (blocked, once), is sent back (its branch is gone),
//!   waits out a backoff after errors (and after [`MAX_ERRORS`] is blocked and escalated once),
//!   or is ready.
//! - The ready ones, most urgent first, up to `[qa] batch_max`, form a batch: merged one after
//!   the other onto the target, gated once. A conflict takes only that branch out.
//! - [`Bisection`]: a batch whose gates fail is split, first half first. A half that passes is
//!   merged, and then the other half is known to fail (it is the failed tree again); a half
//!   that fails is split again; one branch known to fail goes back as rework with the gate's
//!   output. Every step moves the target once, with a compare-and-swap, or not at all.
//!   With `[qa] parallel_gates` of 2 or more, the two halves of a failed group are gated side
//!   by side, each on the same target in its own worktree: the first that passes lands.
//!   Untested groups next to each other are gated together (a batch again).
//! - [`verdict`]: with `require_all_pass` every gate must pass and the first failure ends the
//!   run; without it one passing gate is enough.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Errors in a row on one work order before it is blocked and escalated.
pub const MAX_ERRORS: u32 = 3;

/// Times a batch is merged again when the target moved under it before it is left for the
/// next patrol.
pub const MAX_TARGET_MOVES: u32 = 3;

/// How long the queue must be quiet before a batch that has room is taken: work handed in
/// together (workers finishing at the same time) then merges together.
pub const SETTLE: Duration = Duration::from_millis(500);

/// How long work handed in (`WORKER_DONE`) may wait for the supervisor to forward it before
/// a batch goes without it.
pub const FORWARD_WAIT: Duration = Duration::from_secs(10);

/// The longest QA waits, in all, for a batch to fill.
pub const SETTLE_MAX: Duration = Duration::from_secs(5);

/// A `WORKER_DONE` the supervisor has not read yet: when it was sent, and its work order.
#[derive(Debug, Clone, PartialEq)]
pub struct HandIn {
    pub sent_at: String,
    pub work_order: Option<String>,
}

/// When each hand-in still on its way to the queue was sent. One whose work order is queued
/// already has arrived: the supervisor forwards a hand-in first and marks it read after, and
/// a batch that waited for it then would wait for nothing.
pub fn on_the_way(handed_in: Vec<HandIn>, queued: &[&str]) -> Vec<String> {
    handed_in
        .into_iter()
        .filter(|h| !h.work_order.as_deref().is_some_and(|w| queued.contains(&w)))
        .map(|h| h.sent_at)
        .collect()
}

/// How long to wait before taking a batch: `None` when the batch is full, or when no more
/// work can join it soon. Work handed in (`handed_in`: the `WORKER_DONE` mail the supervisor
/// has not read yet) is waited for, each up to [`FORWARD_WAIT`]. While other workers of the
/// factory still work (`working`) or hand-ins wait to be forwarded, the queue must be quiet for
/// [`SETTLE`] after the newest `READY_FOR_QA` (`ready_sent`): work finished together merges
/// together. With nobody else working and nothing handed in, nothing is waited for: a lone
/// branch merges at once.
pub fn settle_wait<'a>(
    ready_sent: impl Iterator<Item = &'a str>,
    handed_in: impl Iterator<Item = &'a str>,
    ready: usize,
    batch_max: usize,
    working: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    if ready >= batch_max {
        return None;
    }
    let age = |t: chrono::DateTime<chrono::Utc>| (now - t).to_std().unwrap_or_default();
    let handed_in: Vec<_> = handed_in
        .filter_map(crate::clock::parse_timestamp)
        .collect();
    if handed_in.iter().any(|t| age(*t) < FORWARD_WAIT) {
        return Some(Duration::from_millis(100));
    }
    if working == 0 && handed_in.is_empty() {
        return None;
    }
    let newest = ready_sent.filter_map(crate::clock::parse_timestamp).max()?;
    (age(newest) < SETTLE).then(|| SETTLE - age(newest))
}

/// A `READY_FOR_QA` and what is seen of its work order.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyObs {
    pub message: String,
    pub work_order: String,
    pub branch: String,
    /// `None`: the work order was not found.
    pub status: Option<crate::workorder::Status>,
    /// Blocked only because QA had no gates when it looked.
    pub blocked_for_gates: bool,
    /// The message's incarnation, if it names one, and the work order's.
    pub sent_by: Option<String>,
    pub holder: Option<String>,
    pub branch_exists: bool,
}

/// What to do with one `READY_FOR_QA`.
#[derive(Debug, Clone, PartialEq)]
pub enum Triage {
    /// Nothing to merge any more: mark the message read.
    Stale(String),
    /// No gates: block it (once) and leave the message for when there are.
    NoGates {
        block: bool,
    },
    /// Gates are configured now: back to review, then like [`Triage::Ready`].
    Unblock,
    /// Its branch is gone: rework.
    Rework(String),
    /// Errors on it recently: wait.
    Backoff,
    /// Errors on it again and again: block it and escalate once.
    GiveUp(String),
    Ready,
}

/// What QA remembers between patrols: errors per work order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    errors: BTreeMap<String, Errors>,
}

#[derive(Debug, Clone, PartialEq)]
struct Errors {
    count: u32,
    retry_at: Instant,
    last: String,
}

impl Memory {
    /// An error while merging or gating a work order: it waits before the next try (5 s,
    /// 20 s, 80 s…).
    pub fn error(&mut self, work_order: &str, error: &str, now: Instant) {
        let e = self.errors.entry(work_order.to_string()).or_insert(Errors {
            count: 0,
            retry_at: now,
            last: String::new(),
        });
        e.count += 1;
        e.last = error.to_string();
        e.retry_at = now + Duration::from_secs(5).saturating_mul(1 << (2 * (e.count - 1)).min(12));
    }

    /// It was merged or sent back: its errors are forgotten.
    pub fn settled(&mut self, work_order: &str) {
        self.errors.remove(work_order);
    }
}

/// What the factory's settings say about merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// `[[gates]]` are configured.
    pub has_gates: bool,
    /// `[verification] enabled`: nothing merges unchecked.
    pub verification: bool,
}

/// Decides about one `READY_FOR_QA`.
pub fn triage(r: &ReadyObs, rules: Rules, mem: &Memory, now: Instant) -> Triage {
    use crate::workorder::Status;
    let Some(status) = r.status else {
        return Triage::Stale(format!("{} not found", r.work_order));
    };
    if status != Status::InReview && !r.blocked_for_gates {
        return Triage::Stale(format!("{} is {status}, not in review", r.work_order));
    }
    if let Some(inc) = &r.sent_by
        && r.holder.as_ref() != Some(inc)
    {
        return Triage::Stale(format!(
            "message from {inc}, but {} now belongs to another worker",
            r.work_order
        ));
    }
    if !rules.has_gates && rules.verification {
        return Triage::NoGates {
            block: !r.blocked_for_gates,
        };
    }
    if let Some(e) = mem.errors.get(&r.work_order) {
        if e.count >= MAX_ERRORS {
            return Triage::GiveUp(format!(
                "QA failed {} times on it; last error: {}",
                e.count, e.last
            ));
        }
        if now < e.retry_at {
            return Triage::Backoff;
        }
    }
    if !r.branch_exists {
        return Triage::Rework(format!("branch {} does not exist", r.branch));
    }
    if r.blocked_for_gates {
        return Triage::Unblock;
    }
    Triage::Ready
}

/// Whether `path` matches `glob`: `*` and `?` within one path segment, `**` across any
/// number of segments (`tests/**` is everything under tests/, `**/*.snap` every snapshot).
pub fn path_matches(glob: &str, path: &str) -> bool {
    fn segs(globs: &[&str], parts: &[&str]) -> bool {
        match (globs.first(), parts.first()) {
            (None, None) => true,
            (Some(&"**"), _) => {
                segs(&globs[1..], parts) || (!parts.is_empty() && segs(globs, &parts[1..]))
            }
            (Some(g), Some(p)) => {
                crate::event::type_matches(g, p) && segs(&globs[1..], &parts[1..])
            }
            _ => false,
        }
    }
    let g: Vec<&str> = glob.trim_start_matches("./").split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    segs(&g, &p)
}

/// Words of the gate commands that may name a script of the repository (`sh check.sh`,
/// `["bash", "ci/run.sh"]`): the loop keeps those that are files of the target tree, and
/// they are protected like `[verification] protected`.
pub fn gate_script_candidates(gates: &[crate::config::Gate]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for g in gates {
        let words: Vec<String> = match &g.command {
            crate::config::GateCommand::Shell(s) => s
                .split(|c: char| c.is_whitespace() || ";&|()<>`$\"'".contains(c))
                .map(str::to_string)
                .collect(),
            crate::config::GateCommand::Argv(a) => a.clone(),
        };
        for w in words {
            let w = w.trim_start_matches("./").to_string();
            if !w.is_empty() && !w.starts_with('-') && !w.starts_with('/') && !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

/// The protected paths among those a branch changes: matched by a `protected` glob, or one
/// of the gates' own scripts.
pub fn protected_changes(
    changed: &[String],
    globs: &[String],
    gate_files: &[String],
) -> Vec<String> {
    changed
        .iter()
        .filter(|p| gate_files.contains(p) || globs.iter().any(|g| path_matches(g, p)))
        .cloned()
        .collect()
}

/// Whether a branch at `head` that changes `protected` paths must wait for a person: not when
/// it changes none, nor when a person approved exactly this head.
pub fn needs_approval(protected: &[String], approved_head: Option<&str>, head: &str) -> bool {
    !protected.is_empty() && approved_head != Some(head)
}

/// How one gate run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateOutcome {
    pub passed: bool,
    /// QA was asked to stop while it ran.
    pub interrupted: bool,
}

/// How merging one branch of a group onto the QA worktree went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    /// A merge commit.
    Commit,
    /// Conflicts in these paths (the merge was aborted).
    Conflicts(Vec<String>),
    /// Nothing new: the branch is already in what is checked out; `on_target` when it is in
    /// the target itself (a QA that crashed after moving the target merges it again).
    NothingNew { on_target: bool },
    /// git failed for another reason.
    Error(String),
}

/// What becomes of that branch in this group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterMerge {
    /// Gated with the group.
    Gate,
    /// Out of the batch, back to its worker with this reason.
    Rework(String),
    /// Out of the batch: it is merged already; close it with the merge commit found.
    CloseMerged,
    /// Out of the batch for now: the error counts towards giving up on it.
    Error(String),
}

/// Decides about one branch after merging it into the group's tree.
pub fn after_merge(m: &Merged, branch: &str, target: &str) -> AfterMerge {
    match m {
        Merged::Commit | Merged::NothingNew { on_target: false } => AfterMerge::Gate,
        Merged::NothingNew { on_target: true } => AfterMerge::CloseMerged,
        Merged::Conflicts(paths) => AfterMerge::Rework(format!(
            "merge conflict with {target} in: {} (bring {branch} up to date with {target} and resolve them)",
            paths.join(", ")
        )),
        Merged::Error(e) => AfterMerge::Error(e.clone()),
    }
}

/// What to do when the compare-and-swap of the target failed (`moved`) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRefUpdate {
    /// The target moved to the group's merge: close each work order.
    Close,
    /// Someone pushed to the target meanwhile: merge the group again on the new target.
    MergeAgain,
    /// It keeps moving: leave the batch for the next patrol.
    Later,
}

/// Decides after moving the target; `moves` is how often it moved under this batch before.
pub fn after_ref_update(moved: bool, moves: u32) -> AfterRefUpdate {
    match (moved, moves) {
        (false, _) => AfterRefUpdate::Close,
        (true, m) if m < MAX_TARGET_MOVES => AfterRefUpdate::MergeAgain,
        (true, _) => AfterRefUpdate::Later,
    }
}

/// What a batch's gate runs come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Run the next gate.
    Continue,
    Pass,
    /// This gate (index) failed.
    Fail(usize),
    /// Stopped: leave the target as it was and try again later.
    Interrupted,
}

/// The verdict after the gates run so far (`results`, in order) out of `gates`.
pub fn verdict(results: &[GateOutcome], gates: usize, require_all_pass: bool) -> Verdict {
    if results.iter().any(|r| r.interrupted) {
        return Verdict::Interrupted;
    }
    let first_failure = results.iter().position(|r| !r.passed);
    if require_all_pass && let Some(i) = first_failure {
        return Verdict::Fail(i);
    }
    if results.len() < gates {
        return Verdict::Continue;
    }
    match first_failure {
        None => Verdict::Pass,
        Some(_) if !require_all_pass && results.iter().any(|r| r.passed) => Verdict::Pass,
        Some(i) => Verdict::Fail(i),
    }
}

/// What is known of a group of branches in a bisection.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    /// Not tested on the current target.
    Untested,
    /// Its tree failed, with this output.
    Fails(String),
    /// Fails if the group before it passes (together they are a tree that failed); untested
    /// if that group fails.
    FailsAfterPass(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Group {
    members: Vec<String>,
    known: Known,
}

/// The next step of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Merge these (in order) onto the target, gate them, then call [`Bisection::passed`] or
    /// [`Bisection::failed`].
    Test(Vec<String>),
    /// Merge each group onto the same target in its own worktree and gate both at once; land
    /// the one [`lands`] names, then call [`Bisection::pair_tested`].
    TestPair(Vec<String>, Vec<String>),
    /// This branch alone fails the gates: send it back with the failure.
    Rework {
        work_order: String,
        failure: String,
    },
    Done,
}

/// A batch of branches being merged, bisected when its gates fail.
#[derive(Debug, Clone, PartialEq)]
pub struct Bisection {
    groups: VecDeque<Group>,
    /// Gate runs that may go side by side (`[qa] parallel_gates`).
    parallel: usize,
}

/// How one group of a [`Step::TestPair`] went.
#[derive(Debug, Clone, PartialEq)]
pub enum PairResult {
    Passed,
    Failed(String),
    /// Nothing of it was left to gate (its branches conflicted or were merged already).
    Empty,
}

/// Which of a pair lands (moves the target): the first that passed. Only one can, as both
/// were gated on the same target; the other is judged again on the new one.
pub fn lands(left: &PairResult, right: &PairResult) -> Option<Side> {
    match (left, right) {
        (PairResult::Passed, _) => Some(Side::Left),
        (_, PairResult::Passed) => Some(Side::Right),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl Bisection {
    /// A batch, most urgent first, gated one tree at a time.
    pub fn new(members: Vec<String>) -> Bisection {
        Bisection::with_parallel(members, 1)
    }

    /// A batch whose halves may be gated `parallel` at a time (2 is what is used: a failed
    /// group has two halves).
    pub fn with_parallel(members: Vec<String>, parallel: usize) -> Bisection {
        Bisection {
            groups: VecDeque::from([Group {
                members,
                known: Known::Untested,
            }]),
            parallel,
        }
    }

    /// The two groups of a [`Step::TestPair`] were gated and the one [`lands`] named landed.
    pub fn pair_tested(&mut self, left: PairResult, right: PairResult) {
        let landed = lands(&left, &right);
        let (Some(l), Some(r)) = (self.groups.pop_front(), self.groups.pop_front()) else {
            return;
        };
        let parent = match &r.known {
            Known::FailsAfterPass(f) | Known::Fails(f) => f.clone(),
            Known::Untested => String::new(),
        };
        let judged = |g: Group, res: PairResult, after_other_landed: bool| -> Option<Group> {
            let known = match res {
                PairResult::Empty => return None,
                // Gated on the target the other now moved: with it, they are the tree that
                // failed.
                PairResult::Passed if after_other_landed => Known::Fails(parent.clone()),
                PairResult::Passed => return None,
                PairResult::Failed(f) => Known::Fails(f),
            };
            (!g.members.is_empty()).then_some(Group {
                members: g.members,
                known,
            })
        };
        let (l, r) = match landed {
            Some(Side::Left) => (None, judged(r, right, true)),
            Some(Side::Right) => (judged(l, left, false), None),
            None => (judged(l, left, false), judged(r, right, false)),
        };
        for g in [r, l].into_iter().flatten() {
            self.groups.push_front(g);
        }
    }

    /// What to do next.
    pub fn step(&mut self) -> Step {
        loop {
            let Some(g) = self.groups.front() else {
                return Step::Done;
            };
            if g.members.is_empty() {
                let known = self.groups.pop_front().map(|g| g.known);
                // An emptied group that was known to fail says nothing about the next.
                if let Some(Known::Fails(_)) = known
                    && let Some(n) = self.groups.front_mut()
                    && let Known::FailsAfterPass(_) = n.known
                {
                    n.known = Known::Untested;
                }
                continue;
            }
            match g.known.clone() {
                Known::Untested => {
                    // Untested groups side by side are one tree to gate.
                    while self.groups.len() > 1
                        && self.groups[1].known == Known::Untested
                        && let Some(next) = self.groups.remove(1)
                    {
                        self.groups[0].members.extend(next.members);
                    }
                    let g = &self.groups[0];
                    if self.parallel >= 2
                        && let Some(n) = self.groups.get(1)
                        && matches!(n.known, Known::FailsAfterPass(_))
                        && !n.members.is_empty()
                    {
                        return Step::TestPair(g.members.clone(), n.members.clone());
                    }
                    return Step::Test(g.members.clone());
                }
                Known::FailsAfterPass(_) => {
                    return Step::Test(g.members.clone());
                }
                Known::Fails(failure) if g.members.len() == 1 => {
                    let work_order = g.members[0].clone();
                    self.groups.pop_front();
                    self.after_pass_or_gone();
                    return Step::Rework {
                        work_order,
                        failure,
                    };
                }
                Known::Fails(failure) => {
                    let Some(g) = self.groups.pop_front() else {
                        return Step::Done;
                    };
                    let half = g.members.len() / 2;
                    let (left, right) = g.members.split_at(half);
                    self.groups.push_front(Group {
                        members: right.to_vec(),
                        known: Known::FailsAfterPass(failure),
                    });
                    self.groups.push_front(Group {
                        members: left.to_vec(),
                        known: Known::Untested,
                    });
                }
            }
        }
    }

    /// The group [`Step::Test`] named passed and was merged.
    pub fn passed(&mut self) {
        self.groups.pop_front();
        self.after_pass_or_gone();
    }

    /// The group [`Step::Test`] named failed, with this output.
    pub fn failed(&mut self, failure: String) {
        if let Some(g) = self.groups.front_mut() {
            g.known = Known::Fails(failure);
        }
        // Its partner was only known to fail if this one passed.
        if let Some(n) = self.groups.get_mut(1)
            && let Known::FailsAfterPass(_) = n.known
        {
            n.known = Known::Untested;
        }
    }

    /// A branch leaves the batch (a conflict, or it turned out merged already).
    pub fn remove(&mut self, work_order: &str) {
        for g in &mut self.groups {
            g.members.retain(|m| m != work_order);
        }
    }

    /// The group in front is gone after passing (or being reworked alone): a partner that
    /// failed with it fails on its own now.
    fn after_pass_or_gone(&mut self) {
        if let Some(n) = self.groups.front_mut()
            && let Known::FailsAfterPass(f) = &n.known
        {
            n.known = Known::Fails(f.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workorder::Status;

    fn ready() -> ReadyObs {
        ReadyObs {
            message: "msg-1".into(),
            work_order: "mp-a".into(),
            branch: "vermas/mp-a".into(),
            status: Some(Status::InReview),
            blocked_for_gates: false,
            sent_by: Some("inc-1".into()),
            holder: Some("inc-1".into()),
            branch_exists: true,
        }
    }

    #[test]
    fn triage_table() {
        let now = Instant::now();
        let mem = Memory::default();
        let table: Vec<(ReadyObs, bool, bool, Triage)> = vec![
            (ready(), true, true, Triage::Ready),
            (
                ReadyObs {
                    status: None,
                    ..ready()
                },
                true,
                true,
                Triage::Stale("mp-a not found".into()),
            ),
            (
                ReadyObs {
                    status: Some(Status::Closed),
                    ..ready()
                },
                true,
                true,
                Triage::Stale("mp-a is closed, not in review".into()),
            ),
            (
                ReadyObs {
                    holder: Some("inc-2".into()),
                    ..ready()
                },
                true,
                true,
                Triage::Stale("message from inc-1, but mp-a now belongs to another worker".into()),
            ),
            (ready(), false, true, Triage::NoGates { block: true }),
            (
                ReadyObs {
                    status: Some(Status::Blocked),
                    blocked_for_gates: true,
                    ..ready()
                },
                false,
                true,
                Triage::NoGates { block: false },
            ),
            (
                ReadyObs {
                    status: Some(Status::Blocked),
                    blocked_for_gates: true,
                    ..ready()
                },
                true,
                true,
                Triage::Unblock,
            ),
            (ready(), false, false, Triage::Ready),
            (
                ReadyObs {
                    branch_exists: false,
                    ..ready()
                },
                true,
                true,
                Triage::Rework("branch vermas/mp-a does not exist".into()),
            ),
        ];
        for (obs, gates, verification, want) in table {
            let rules = Rules {
                has_gates: gates,
                verification,
            };
            assert_eq!(triage(&obs, rules, &mem, now), want, "{obs:?}");
        }
    }

    #[test]
    fn a_batch_waits_for_work_still_arriving_unless_it_is_full() {
        let now = crate::clock::parse_timestamp("2026-11-27T10:00:01.000Z").unwrap();
        let fresh = ["2026-11-27T10:00:00.500Z", "2026-11-27T10:00:00.800Z"];
        let none: [&str; 0] = [];
        assert_eq!(
            settle_wait(fresh.into_iter(), none.into_iter(), 2, 8, 3, now),
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            settle_wait(fresh.into_iter(), none.into_iter(), 8, 8, 3, now),
            None,
            "full"
        );
        let old = ["2026-11-27T10:00:00.100Z"];
        assert_eq!(
            settle_wait(old.into_iter(), none.into_iter(), 1, 8, 3, now),
            None,
            "quiet for long enough"
        );
        // Work handed in that the supervisor has not forwarded yet is waited for, a while.
        let handed = ["2026-11-27T09:59:59.000Z"];
        assert_eq!(
            settle_wait(old.into_iter(), handed.into_iter(), 1, 8, 3, now),
            Some(Duration::from_millis(100))
        );
        let long_ago = ["2026-11-27T09:59:50.000Z"];
        assert_eq!(
            settle_wait(old.into_iter(), long_ago.into_iter(), 1, 8, 3, now),
            None,
            "not forever"
        );
        assert_eq!(
            settle_wait(old.into_iter(), handed.into_iter(), 8, 8, 3, now),
            None,
            "full"
        );
        // Nobody else works: nothing can join, the lone branch goes at once.
        assert_eq!(
            settle_wait(fresh.into_iter(), none.into_iter(), 2, 8, 0, now),
            None
        );
        // But work already handed in is still waited for, and while old hand-ins are being
        // forwarded the queue must be quiet first.
        assert_eq!(
            settle_wait(old.into_iter(), handed.into_iter(), 1, 8, 0, now),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            settle_wait(fresh.into_iter(), long_ago.into_iter(), 2, 8, 0, now),
            Some(Duration::from_millis(300))
        );
    }

    #[test]
    fn a_hand_in_whose_work_order_is_queued_already_is_not_waited_for() {
        let h = |t: &str, w: Option<&str>| HandIn {
            sent_at: t.into(),
            work_order: w.map(str::to_string),
        };
        // (hand-ins, queued work orders, still on the way)
        let table: Vec<(Vec<HandIn>, Vec<&str>, Vec<&str>)> = vec![
            (vec![h("t1", Some("mp-a"))], vec!["mp-a"], vec![]),
            (vec![h("t1", Some("mp-a"))], vec!["mp-b"], vec!["t1"]),
            (
                vec![h("t1", Some("mp-a")), h("t2", Some("mp-b"))],
                vec!["mp-a"],
                vec!["t2"],
            ),
            (vec![h("t1", None)], vec!["mp-a"], vec!["t1"]),
            (vec![], vec!["mp-a"], vec![]),
        ];
        for (handed_in, queued, want) in table {
            let got = on_the_way(handed_in.clone(), &queued);
            assert_eq!(got, want, "{handed_in:?} with {queued:?} queued");
        }
    }

    const ON: Rules = Rules {
        has_gates: true,
        verification: true,
    };

    #[test]
    fn errors_back_off_then_give_up_once_settled_they_are_forgotten() {
        let t0 = Instant::now();
        let mut mem = Memory::default();
        mem.error("mp-a", "Committer identity unknown", t0);
        assert_eq!(triage(&ready(), ON, &mem, t0), Triage::Backoff);
        assert_eq!(
            triage(&ready(), ON, &mem, t0 + Duration::from_secs(5)),
            Triage::Ready
        );
        mem.error("mp-a", "Committer identity unknown", t0);
        assert_eq!(
            triage(&ready(), ON, &mem, t0 + Duration::from_secs(19)),
            Triage::Backoff,
            "20 s the second time"
        );
        mem.error("mp-a", "Committer identity unknown", t0);
        match triage(&ready(), ON, &mem, t0) {
            Triage::GiveUp(why) => assert!(why.contains("3 times") && why.contains("identity")),
            t => panic!("{t:?}"),
        }
        mem.settled("mp-a");
        assert_eq!(triage(&ready(), ON, &mem, t0), Triage::Ready);
    }

    const P: GateOutcome = GateOutcome {
        passed: true,
        interrupted: false,
    };
    const F: GateOutcome = GateOutcome {
        passed: false,
        interrupted: false,
    };
    const I: GateOutcome = GateOutcome {
        passed: false,
        interrupted: true,
    };

    #[test]
    fn after_a_merge_a_branch_is_gated_sent_back_closed_or_counted_as_an_error() {
        let table = [
            (Merged::Commit, AfterMerge::Gate),
            (Merged::NothingNew { on_target: false }, AfterMerge::Gate),
            (Merged::NothingNew { on_target: true }, AfterMerge::CloseMerged),
            (
                Merged::Conflicts(vec!["a.txt".into(), "b.txt".into()]),
                AfterMerge::Rework(
                    "merge conflict with main in: a.txt, b.txt (bring vermas/mp-a up to date with main and resolve them)".into(),
                ),
            ),
            (
                Merged::Error("Committer identity unknown".into()),
                AfterMerge::Error("Committer identity unknown".into()),
            ),
        ];
        for (m, want) in table {
            assert_eq!(after_merge(&m, "vermas/mp-a", "main"), want, "{m:?}");
        }
    }

    #[test]
    fn a_target_that_moved_during_the_merge_is_merged_again_a_few_times_then_left() {
        assert_eq!(after_ref_update(false, 0), AfterRefUpdate::Close);
        assert_eq!(after_ref_update(false, 5), AfterRefUpdate::Close);
        assert_eq!(after_ref_update(true, 0), AfterRefUpdate::MergeAgain);
        assert_eq!(
            after_ref_update(true, MAX_TARGET_MOVES - 1),
            AfterRefUpdate::MergeAgain
        );
        assert_eq!(
            after_ref_update(true, MAX_TARGET_MOVES),
            AfterRefUpdate::Later
        );
    }

    #[test]
    fn protected_paths_are_globs_and_the_gates_scripts() {
        let table = [
            ("tests/**", "tests/a.rs", true),
            ("tests/**", "tests/unit/deep/b.rs", true),
            ("tests/**", "src/tests.rs", false),
            ("ci/*.sh", "ci/run.sh", true),
            ("ci/*.sh", "ci/sub/run.sh", false),
            ("**/*.snap", "a/b/c.snap", true),
            ("**/*.snap", "c.snap", true),
            ("check.sh", "check.sh", true),
            ("./check.sh", "check.sh", true),
        ];
        for (g, p, want) in table {
            assert_eq!(path_matches(g, p), want, "{g} ~ {p}");
        }
        let gates = vec![
            crate::config::Gate {
                name: "check".into(),
                command: crate::config::GateCommand::Shell("sh ./check.sh && cargo test -q".into()),
                timeout_seconds: 60.0,
            },
            crate::config::Gate {
                name: "ci".into(),
                command: crate::config::GateCommand::Argv(vec!["bash".into(), "ci/run.sh".into()]),
                timeout_seconds: 60.0,
            },
        ];
        let cands = gate_script_candidates(&gates);
        assert!(
            cands.contains(&"check.sh".to_string()) && cands.contains(&"ci/run.sh".to_string())
        );
        assert!(!cands.iter().any(|c| c.starts_with('-')), "{cands:?}");
        let changed: Vec<String> = ["src/lib.rs", "check.sh", "tests/it.rs"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            protected_changes(&changed, &["tests/**".into()], &["check.sh".into()]),
            vec!["check.sh".to_string(), "tests/it.rs".to_string()]
        );
        assert!(protected_changes(&["src/lib.rs".into()], &["tests/**".into()], &[]).is_empty());
    }

    #[test]
    fn a_change_to_protected_paths_waits_for_approval_of_exactly_that_head() {
        let p = vec!["check.sh".to_string()];
        assert!(needs_approval(&p, None, "abc"));
        assert!(!needs_approval(&p, Some("abc"), "abc"));
        assert!(
            needs_approval(&p, Some("abc"), "def"),
            "new commits need a new look"
        );
        assert!(!needs_approval(&[], None, "abc"));
    }

    #[test]
    fn verdicts_with_and_without_require_all_pass() {
        let table: &[(&[GateOutcome], usize, bool, Verdict)] = &[
            (&[], 2, true, Verdict::Continue),
            (&[P], 2, true, Verdict::Continue),
            (&[P, P], 2, true, Verdict::Pass),
            (&[F], 2, true, Verdict::Fail(0)),
            (&[P, F], 2, true, Verdict::Fail(1)),
            (&[F], 2, false, Verdict::Continue),
            (&[F, P], 2, false, Verdict::Pass),
            (&[F, F], 2, false, Verdict::Fail(0)),
            (&[P, I], 2, true, Verdict::Interrupted),
            (&[I], 1, false, Verdict::Interrupted),
        ];
        for (results, gates, all, want) in table {
            assert_eq!(
                verdict(results, *gates, *all),
                *want,
                "{results:?} all={all}"
            );
        }
    }

    /// Runs a bisection against a set of bad branches (a tree fails when it holds any) and
    /// returns the tests made, what was merged and what went back.
    fn run(members: &[&str], bad: &[&str]) -> (Vec<Vec<String>>, Vec<String>, Vec<String>) {
        let (tests, merged, rework, _) = run_parallel(members, bad, 1);
        (tests, merged, rework)
    }

    /// [`run`] with `parallel` gate runs side by side; also returns the gate times spent (a
    /// pair counts once).
    fn run_parallel(
        members: &[&str],
        bad: &[&str],
        parallel: usize,
    ) -> (Vec<Vec<String>>, Vec<String>, Vec<String>, usize) {
        let mut b =
            Bisection::with_parallel(members.iter().map(|s| s.to_string()).collect(), parallel);
        let (mut tests, mut merged, mut rework) = (Vec::new(), Vec::new(), Vec::new());
        let mut rounds = 0;
        let fails = |g: &[String]| g.iter().any(|m| bad.contains(&m.as_str()));
        loop {
            match b.step() {
                Step::TestPair(l, r) => {
                    rounds += 1;
                    tests.push(l.clone());
                    tests.push(r.clone());
                    let res = |g: &Vec<String>| {
                        if fails(g) {
                            PairResult::Failed(format!("gate failed with {g:?}"))
                        } else {
                            PairResult::Passed
                        }
                    };
                    let (lr, rr) = (res(&l), res(&r));
                    match lands(&lr, &rr) {
                        Some(Side::Left) => merged.extend(l),
                        Some(Side::Right) => merged.extend(r),
                        None => {}
                    }
                    b.pair_tested(lr, rr);
                }
                Step::Test(g) => {
                    rounds += 1;
                    tests.push(g.clone());
                    if g.iter().any(|m| bad.contains(&m.as_str())) {
                        b.failed(format!("gate failed with {g:?}"));
                    } else {
                        merged.extend(g);
                        b.passed();
                    }
                }
                Step::Rework { work_order, .. } => rework.push(work_order),
                Step::Done => break,
            }
            assert!(tests.len() < 50, "terminates");
        }
        (tests, merged, rework, rounds)
    }

    #[test]
    fn a_good_batch_is_one_gate_run() {
        let (tests, merged, rework) = run(&["a", "b", "c", "d", "e", "f", "g", "h"], &[]);
        assert_eq!(tests.len(), 1);
        assert_eq!(merged.len(), 8);
        assert!(rework.is_empty());
    }

    #[test]
    fn one_bad_branch_among_eight_is_found_and_the_seven_merge_in_order() {
        for bad in ["a", "c", "e", "h"] {
            let all = ["a", "b", "c", "d", "e", "f", "g", "h"];
            let (tests, merged, rework) = run(&all, &[bad]);
            assert_eq!(rework, vec![bad.to_string()], "bad = {bad}");
            let want: Vec<String> = all
                .iter()
                .filter(|m| **m != bad)
                .map(|s| s.to_string())
                .collect();
            assert_eq!(merged, want, "priority order kept (bad = {bad})");
            assert!(
                tests.len() <= 5,
                "bad = {bad}: {} gate runs: {tests:?}",
                tests.len()
            );
        }
        // The last one bad: its failure is inferred, never tested alone.
        let (tests, _, _) = run(&["a", "b", "c", "d", "e", "f", "g", "h"], &["h"]);
        assert_eq!(tests.len(), 4, "{tests:?}");
    }

    #[test]
    fn gated_two_at_a_time_one_bad_among_eight_costs_four_gate_times_wherever_it_is() {
        let all = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for bad in all {
            let (tests, merged, rework, rounds) = run_parallel(&all, &[bad], 2);
            assert_eq!(rework, vec![bad.to_string()], "bad = {bad}");
            let mut want: Vec<String> = all
                .iter()
                .filter(|m| **m != bad)
                .map(|s| s.to_string())
                .collect();
            let mut got = merged.clone();
            got.sort();
            want.sort();
            assert_eq!(got, want, "every good one merges (bad = {bad})");
            assert_eq!(rounds, 4, "bad = {bad}: {tests:?}");
        }
        // No bad one: one gate run, as serial.
        let (_, merged, _, rounds) = run_parallel(&all, &[], 2);
        assert_eq!((merged.len(), rounds), (8, 1));
    }

    #[test]
    fn gated_two_at_a_time_several_bad_branches_all_go_back_and_the_rest_merge() {
        for bad in [
            &["a", "b"][..],
            &["a", "h"],
            &["b", "c", "g"],
            &["a", "b", "c", "d", "e", "f", "g", "h"],
        ] {
            let all = ["a", "b", "c", "d", "e", "f", "g", "h"];
            let (_, mut merged, mut rework, rounds) = run_parallel(&all, bad, 2);
            rework.sort();
            merged.sort();
            let want_bad: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            let want_good: Vec<String> = all
                .iter()
                .filter(|m| !bad.contains(m))
                .map(|s| s.to_string())
                .collect();
            assert_eq!((rework, merged), (want_bad, want_good), "bad = {bad:?}");
            assert!(rounds <= 8, "bad = {bad:?}: {rounds} rounds");
        }
    }

    #[test]
    fn a_pair_that_both_pass_lands_the_first_and_the_second_is_known_to_fail_on_top() {
        let mut b = Bisection::with_parallel(vec!["a".into(), "b".into()], 2);
        assert_eq!(b.step(), Step::Test(vec!["a".into(), "b".into()]));
        b.failed("together".into());
        assert_eq!(b.step(), Step::TestPair(vec!["a".into()], vec!["b".into()]));
        assert_eq!(
            lands(&PairResult::Passed, &PairResult::Passed),
            Some(Side::Left)
        );
        b.pair_tested(PairResult::Passed, PairResult::Passed);
        assert_eq!(
            b.step(),
            Step::Rework {
                work_order: "b".into(),
                failure: "together".into()
            }
        );
        assert_eq!(b.step(), Step::Done);
        // A half emptied by conflicts: the other lands or fails alone.
        let mut b = Bisection::with_parallel(vec!["a".into(), "b".into()], 2);
        b.step();
        b.failed("x".into());
        b.step();
        b.pair_tested(PairResult::Empty, PairResult::Failed("b alone".into()));
        assert_eq!(
            b.step(),
            Step::Rework {
                work_order: "b".into(),
                failure: "b alone".into()
            }
        );
        assert_eq!(b.step(), Step::Done);
    }

    #[test]
    fn untested_groups_next_to_each_other_are_gated_together() {
        // a fails; b (its partner, untested once a failed) and c-d go together.
        let (tests, _, rework) = run(&["a", "b", "c", "d"], &["a"]);
        assert_eq!(rework, vec!["a".to_string()]);
        assert_eq!(
            tests.last().unwrap(),
            &vec!["b".to_string(), "c".to_string(), "d".to_string()],
            "{tests:?}"
        );
    }

    #[test]
    fn several_bad_branches_all_go_back() {
        let (_, merged, rework) = run(&["a", "b", "c", "d", "e"], &["b", "e"]);
        assert_eq!(rework, vec!["b".to_string(), "e".to_string()]);
        assert_eq!(
            merged,
            vec!["a".to_string(), "c".to_string(), "d".to_string()]
        );
        let (tests, merged, rework) = run(&["a"], &["a"]);
        assert_eq!((tests.len(), merged.len(), rework.len()), (1, 0, 1));
    }

    #[test]
    fn a_branch_taken_out_for_a_conflict_leaves_the_rest_to_finish() {
        let mut b = Bisection::new(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(
            b.step(),
            Step::Test(vec!["a".into(), "b".into(), "c".into()])
        );
        b.remove("b");
        b.passed();
        assert_eq!(b.step(), Step::Done);
        // Taken out of a half known to fail: the other half is tested, not assumed.
        let mut b = Bisection::new(vec!["a".into(), "b".into(), "c".into(), "d".into()]);
        b.step();
        b.failed("x".into());
        assert_eq!(b.step(), Step::Test(vec!["a".into(), "b".into()]));
        b.passed();
        assert_eq!(
            b.step(),
            Step::Test(vec!["c".into()]),
            "split of the failed half"
        );
        b.remove("c");
        b.remove("d");
        assert_eq!(b.step(), Step::Done);
    }
}
