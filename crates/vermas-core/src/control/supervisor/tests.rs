//! Table tests of the supervisor's decisions: no tmux, no git, no clock.

use super::*;
use crate::workorder::Status;

const S: fn(u64) -> Duration = Duration::from_secs;
const T0: i64 = 1_800_000_000;

fn limits() -> Limits {
    Limits {
        idle: S(300),
        stuck: S(900),
        max_attempts: 3,
        restart: Policy {
            initial: S(2),
            max: S(300),
            max_failures: 3,
            stable_after: S(120),
            budget: super::super::restart::Budget::Total,
        },
    }
}

struct World {
    now: Instant,
    snap: Snapshot,
    mem: Memory,
}

impl World {
    fn new() -> World {
        let now = Instant::now();
        World {
            now,
            snap: Snapshot {
                factory: "mp".into(),
                now,
                wall: T0,
                jitter: 1.0,
                done: vec![],
                other_mail: vec![],
                workers: vec![],
                free_slots: 0,
                waiting: vec![],
            },
            mem: Memory::default(),
        }
    }
    /// Moves the clocks on by `secs`.
    fn later(&mut self, secs: u64) -> &mut Self {
        self.snap.now = self.now + S(secs);
        self.snap.wall = T0 + secs as i64;
        self
    }
    fn decide(&mut self) -> Vec<Action> {
        decide(&self.snap, &mut self.mem, &limits())
    }
}

fn worker(slot: u32, session: Session, last_sign: i64) -> WorkerObs {
    WorkerObs {
        slot,
        incarnation: format!("inc-{slot}"),
        work_order: format!("mp-{slot}"),
        attempt: 1,
        started_at: T0 - 3600,
        last_sign,
        session,
        last_output: String::new(),
        hint: None,
        wo_status: Some(Status::InProgress),
    }
}

fn alive(screen: Screen) -> Session {
    Session::Alive { screen }
}

fn done(status: Option<Status>, holder: Option<&str>, exists: bool, ahead: u32) -> DoneObs {
    DoneObs {
        message: "msg-1".into(),
        work_order: "mp-a".into(),
        branch: "vermas/mp-a".into(),
        sent_by: "inc-a".into(),
        holder: holder.map(str::to_string),
        status,
        priority: 1,
        branch_exists: exists,
        commits_ahead: ahead,
        target: "main".into(),
    }
}

fn waiting(id: &str, status: Status, attempts: u32) -> WaitingObs {
    WaitingObs {
        work_order: id.into(),
        status,
        attempts,
        title: "t".into(),
        last_failure: Some("gate test failed".into()),
        held: false,
        ready: true,
    }
}

#[test]
fn worker_done_is_forwarded_only_when_it_is_current_in_review_and_has_commits() {
    let read = Action::MarkRead {
        message: "msg-1".into(),
    };
    let ignore = |why: &str| Action::Ignore {
        message: "msg-1".into(),
        why: why.into(),
    };
    let rework = |reason: &str| Action::Rework {
        work_order: "mp-a".into(),
        reason: reason.into(),
    };
    let table = [
        (
            done(Some(Status::InReview), Some("inc-a"), true, 2),
            Action::ForwardToQa {
                work_order: "mp-a".into(),
                branch: "vermas/mp-a".into(),
                priority: 1,
                message: "msg-1".into(),
            },
        ),
        (done(None, None, true, 2), ignore("mp-a not found")),
        (
            done(Some(Status::InReview), Some("inc-b"), true, 2),
            ignore("stale: sent by inc-a, but the work order belongs to inc-b"),
        ),
        (
            done(Some(Status::Closed), Some("inc-a"), true, 2),
            ignore("it is closed, not in review"),
        ),
        (
            done(Some(Status::InReview), Some("inc-a"), false, 0),
            rework("branch vermas/mp-a does not exist"),
        ),
        (
            done(Some(Status::InReview), Some("inc-a"), true, 0),
            rework("vermas/mp-a has no commits beyond main"),
        ),
    ];
    for (obs, want) in table {
        let mut w = World::new();
        w.snap.done = vec![obs.clone()];
        assert_eq!(w.decide(), vec![want, read.clone()], "{obs:?}");
    }
}

#[test]
fn other_mail_is_marked_read() {
    let mut w = World::new();
    w.snap.other_mail = vec![("msg-9".into(), "MERGED".into())];
    assert_eq!(
        w.decide(),
        vec![Action::MarkRead {
            message: "msg-9".into()
        }]
    );
}

#[test]
fn a_worker_whose_work_order_was_cancelled_is_stopped_and_its_work_kept() {
    for st in [Status::Cancelled, Status::Closed, Status::Failed] {
        let mut w = World::new();
        w.snap.workers = vec![WorkerObs {
            wo_status: Some(st),
            ..worker(0, alive(Screen::Working), T0)
        }];
        assert_eq!(
            w.decide(),
            vec![Action::Kill {
                slot: 0,
                incarnation: "inc-0".into(),
                reason: format!("its work order is {st}"),
                then: AfterKill::Hold,
            }]
        );
    }
}

#[test]
fn a_running_worker_is_left_alone() {
    let mut w = World::new();
    w.snap.workers = vec![worker(0, alive(Screen::Unknown), T0 - 10)];
    assert!(w.decide().is_empty());
}

#[test]
fn idle_is_nudged_at_the_threshold_and_again_with_backoff_while_it_stays_idle() {
    let mut w = World::new();
    w.snap.workers = vec![worker(0, alive(Screen::Ready), T0)];
    let mut l = limits();
    l.stuck = S(10_000);
    // (seconds of silence, the nudge this patrol sends, if any): at idle, 3 × idle, 7 × idle.
    let table: [(u64, Option<u32>); 9] = [
        (299, None),
        (300, Some(1)),
        (400, None),
        (899, None),
        (900, Some(2)),
        (1000, None),
        (2099, None),
        (2100, Some(3)),
        (2200, None),
    ];
    for (secs, want) in table {
        w.later(secs);
        let got: Vec<u32> = decide(&w.snap, &mut w.mem, &l)
            .into_iter()
            .filter_map(|a| match a {
                Action::Nudge { count, .. } => Some(count),
                _ => None,
            })
            .collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "at {secs}s");
    }
    // Activity ends the spell: the next one starts from the first nudge again.
    w.snap.workers[0].last_sign = T0 + 2200;
    w.later(2300);
    assert!(decide(&w.snap, &mut w.mem, &l).is_empty());
    w.later(2500);
    assert!(matches!(
        decide(&w.snap, &mut w.mem, &l).as_slice(),
        [Action::Nudge { count: 1, .. }]
    ));
}

#[test]
fn a_busy_agent_is_never_nudged_but_a_silent_one_is_killed_when_stuck() {
    let mut w = World::new();
    w.snap.workers = vec![worker(0, alive(Screen::Working), T0)];
    w.later(600);
    assert!(w.decide().is_empty(), "working: no nudge");
    w.later(900);
    assert_eq!(
        w.decide(),
        vec![Action::Kill {
            slot: 0,
            incarnation: "inc-0".into(),
            reason: "stuck: no activity for 15m".into(),
            then: AfterKill::Requeue,
        }]
    );
}

#[test]
fn a_dialog_is_escalated_once_and_nothing_is_typed_or_killed() {
    let mut w = World::new();
    let screen = Screen::Dialog {
        name: "trust".into(),
        text: "Do you trust the files in this folder?".into(),
    };
    w.snap.workers = vec![worker(0, alive(screen), T0)];
    w.later(5);
    let first = w.decide();
    assert_eq!(first.len(), 1, "{first:?}");
    match &first[0] {
        Action::Escalate { key, body, .. } => {
            assert_eq!(key, "dialog:mp-0:inc-0:trust");
            assert!(body.contains("Do you trust the files"), "{body}");
        }
        a => panic!("{a:?}"),
    }
    for secs in [600, 5000] {
        w.later(secs);
        assert!(w.decide().is_empty(), "at {secs}s: no nudge, no kill");
    }
}

#[test]
fn a_dead_worker_restarts_with_backoff_and_a_new_attempt_has_its_own_budget() {
    let mut w = World::new();
    w.snap.workers = vec![worker(0, Session::Dead, T0)];
    let respawn = vec![Action::Respawn {
        slot: 0,
        incarnation: "inc-0".into(),
    }];
    assert!(w.decide().is_empty(), "waits out the first delay (2 s)");
    w.later(2);
    assert_eq!(w.decide(), respawn);
    // It died again right away (the respawn's new incarnation, also dead).
    w.snap.workers[0].incarnation = "inc-0b".into();
    w.later(3);
    assert!(w.decide().is_empty(), "4 s this time");
    w.later(7);
    assert_eq!(
        w.decide(),
        vec![Action::Respawn {
            slot: 0,
            incarnation: "inc-0b".into()
        }]
    );
    w.later(8);
    match w.decide().as_slice() {
        [
            Action::Kill {
                reason,
                then: AfterKill::Requeue,
                ..
            },
        ] => {
            assert!(reason.contains("3 deaths in attempt 1"), "{reason}")
        }
        other => panic!("the third death spends the budget: {other:?}"),
    }
    // The next attempt starts with a fresh budget.
    w.snap.workers = vec![WorkerObs {
        attempt: 2,
        incarnation: "inc-2".into(),
        ..worker(0, Session::Dead, T0)
    }];
    w.later(9);
    assert!(w.decide().is_empty());
    w.later(11);
    assert_eq!(
        w.decide(),
        vec![Action::Respawn {
            slot: 0,
            incarnation: "inc-2".into()
        }]
    );
}

#[test]
fn the_same_start_up_failure_twice_blocks_the_work_order_after_escalating() {
    let mut w = World::new();
    let mut obs = worker(0, Session::Dead, T0);
    obs.started_at = T0 - 1;
    obs.last_output = "Error: --dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n".into();
    obs.hint = Some("run as a normal user or set IS_SANDBOX=1 in [runtimes.claude] env".into());
    w.snap.workers = vec![obs.clone()];
    assert!(w.decide().is_empty(), "the first time it is restarted");
    w.later(2);
    assert!(matches!(w.decide().as_slice(), [Action::Respawn { .. }]));
    obs.started_at = T0 + 2;
    obs.incarnation = "inc-0b".into();
    w.snap.workers = vec![obs];
    w.later(3);
    let acts = w.decide();
    assert_eq!(acts.len(), 3, "{acts:?}");
    assert!(
        matches!(&acts[0], Action::Escalate { key, body, .. } if key == "start-failure:mp-0:1" && body.contains("IS_SANDBOX=1")),
        "escalated first: {acts:?}"
    );
    assert!(matches!(
        &acts[1],
        Action::Kill {
            then: AfterKill::Hold,
            ..
        }
    ));
    assert!(
        matches!(&acts[2], Action::Block { work_order, reason } if work_order == "mp-0" && reason.contains("root/sudo")),
        "{acts:?}"
    );
}

#[test]
fn different_quick_exits_are_restarted_not_blocked() {
    let mut w = World::new();
    let mut obs = worker(0, Session::Dead, T0);
    obs.started_at = T0;
    obs.last_output = "error A".into();
    w.snap.workers = vec![obs.clone()];
    w.later(1);
    w.decide();
    w.later(3);
    assert!(matches!(w.decide().as_slice(), [Action::Respawn { .. }]));
    obs.last_output = "error B".into();
    obs.incarnation = "inc-x".into();
    w.snap.workers = vec![obs];
    w.later(4);
    assert!(
        w.decide().is_empty(),
        "a different error waits for its restart"
    );
}

#[test]
fn work_out_of_attempts_is_escalated_then_failed_and_rework_and_queued_work_fill_free_slots() {
    let mut w = World::new();
    w.snap.free_slots = 2;
    w.snap.waiting = vec![
        waiting("mp-x", Status::Rework, 3),
        waiting("mp-a", Status::Rework, 1),
        WaitingObs {
            ready: false,
            ..waiting("mp-dep", Status::Queued, 0)
        },
        WaitingObs {
            held: true,
            ..waiting("mp-held", Status::Queued, 0)
        },
        waiting("mp-b", Status::Queued, 0),
        waiting("mp-c", Status::Queued, 0),
    ];
    let acts = w.decide();
    assert!(
        matches!(&acts[0], Action::Escalate { key, .. } if key == "failed:mp-x:3"),
        "{acts:?}"
    );
    assert!(
        matches!(&acts[1], Action::MarkFailed { work_order, reason } if work_order == "mp-x" && reason.contains("gate test failed"))
    );
    assert_eq!(
        acts[2..].to_vec(),
        vec![
            Action::Dispatch {
                work_order: "mp-a".into()
            },
            Action::Dispatch {
                work_order: "mp-b".into()
            },
        ],
        "two free slots: the two most urgent ready ones"
    );
}

#[test]
fn a_dispatch_that_keeps_failing_backs_off_then_blocks_once() {
    let mut w = World::new();
    w.snap.free_slots = 1;
    w.snap.waiting = vec![waiting("mp-a", Status::Queued, 0)];
    let dispatch = Action::Dispatch {
        work_order: "mp-a".into(),
    };
    let mut attempts = 0;
    let mut t = 0;
    let mut blocked = None;
    while t < 10_000 {
        w.later(t);
        for a in w.decide() {
            match &a {
                Action::Dispatch { .. } => {
                    attempts += 1;
                    w.mem.learn(
                        &a,
                        &Outcome::Failed("missing but already registered worktree".into()),
                        w.snap.now,
                    );
                }
                Action::Block { .. } => blocked = Some(t),
                _ => {}
            }
        }
        if blocked.is_some() {
            break;
        }
        t += 1;
    }
    assert_eq!(attempts, MAX_DISPATCH_FAILURES, "not 1,300 a minute");
    assert!(
        blocked.is_some_and(|t| t > 60),
        "backed off first: {blocked:?}"
    );
    // One success clears the record.
    let mut w = World::new();
    w.snap.free_slots = 1;
    w.snap.waiting = vec![waiting("mp-a", Status::Queued, 0)];
    w.mem.learn(&dispatch, &Outcome::Failed("x".into()), w.now);
    assert!(w.decide().is_empty(), "waiting out the backoff");
    w.mem.learn(&dispatch, &Outcome::Done, w.now);
    assert_eq!(w.decide(), vec![dispatch]);
}

#[test]
fn hooks_say_when_an_agent_works_and_when_its_turn_ended() {
    use crate::runtime::hooks::{AgentState, HookState};
    let hook = |state, at| AgentState {
        incarnation: "inc-a".into(),
        state,
        event: String::new(),
        at,
        handed_over: vec![],
    };
    let dialog = Screen::Dialog {
        name: "trust".into(),
        text: String::new(),
    };
    let table = [
        // (screen, last sign, hook) → (screen, last sign)
        (Screen::Unknown, 100, None, (Screen::Unknown, 100)),
        // A tool running for minutes with nothing printed is work.
        (
            Screen::Ready,
            100,
            Some(hook(HookState::Working, 400)),
            (Screen::Working, 400),
        ),
        // A turn that ended is the prompt, from its end, whatever spinner was last drawn.
        (
            Screen::Working,
            100,
            Some(hook(HookState::Idle, 300)),
            (Screen::Ready, 300),
        ),
        (
            Screen::Working,
            500,
            Some(hook(HookState::Idle, 300)),
            (Screen::Ready, 500),
        ),
        // Waiting for the user is not a sign of life.
        (
            Screen::Unknown,
            100,
            Some(hook(HookState::Waiting, 900)),
            (Screen::Ready, 100),
        ),
        // A dialog on the screen wins.
        (
            dialog.clone(),
            100,
            Some(hook(HookState::Working, 400)),
            (dialog.clone(), 100),
        ),
    ];
    for (screen, last, h, want) in table {
        assert_eq!(
            with_hook(screen.clone(), last, h.as_ref()),
            want,
            "{screen:?} {h:?}"
        );
    }
}

#[test]
fn acting_on_the_mail_first_makes_the_same_decisions_as_one_look() {
    // The loop acts on its mail, then decides the rest with the mail handled: together that is
    // exactly what one decision over everything gives, in the same order.
    let mut w = World::new();
    w.snap.done = vec![done(Some(Status::InReview), Some("inc-a"), true, 2)];
    w.snap.other_mail = vec![("msg-9".into(), "MERGED".into())];
    w.snap.free_slots = 1;
    w.snap.waiting = vec![waiting("mp-q", Status::Queued, 0)];
    let all = w.decide();
    let first = decide_mail_first(&w.snap.done, &w.snap.other_mail);
    assert!(matches!(first[0], Action::ForwardToQa { .. }), "{first:?}");
    assert_eq!(first.len(), 3, "{first:?}");
    let mut rest = World::new();
    rest.snap.free_slots = 1;
    rest.snap.waiting = w.snap.waiting.clone();
    let then = rest.decide();
    assert!(!then.is_empty());
    assert_eq!([first, then].concat(), all);
}

#[test]
fn a_change_patrol_reuses_the_session_list_only_for_the_same_live_workers() {
    let max = S(10);
    let seen = |age: u64, same_workers, all_alive| {
        Some(SessionsSeen {
            age: S(age),
            same_workers,
            all_alive,
        })
    };
    // (woken by the timer, what was seen, reuse)
    let table = [
        (false, seen(1, true, true), true),
        (true, seen(1, true, true), false),
        (false, seen(1, false, true), false),
        (false, seen(1, true, false), false),
        (false, seen(10, true, true), false),
        (false, None, false),
    ];
    for (timer, seen, want) in table {
        assert_eq!(reuse_sessions(timer, seen, max), want, "{timer} {seen:?}");
    }
}
