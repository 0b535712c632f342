//! What the operations watchdog does on one patrol, decided from a [`Snapshot`].
//!
//! For each factory's supervisor and QA ("services"): one running in our tagged session, or
//! holding its factory's lock (started by hand), is left alone (adopted, logged once); one
//! missing is started; one that dies is restarted with backoff and jitter, and after
//! `max_restarts` deaths within the window it is left down and the ceo gets one escalation. A
//! session of that name that is not ours is never touched. Besides: day partitions older than
//! `retention_days` are archived once an hour, and a settings file edited into something
//! invalid is escalated once (the last good settings stay in use).

use super::restart::{Policy, Restarts, Start, State, Verdict};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often old day partitions are looked for.
pub const ARCHIVE_EVERY: Duration = Duration::from_secs(3600);

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Supervisor,
    Qa,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Supervisor => "supervisor",
            Role::Qa => "qa",
        }
    }

    /// The lock a running instance of this service holds in its factory's store
    /// (`.work/.supervisor.lock`, `.work/.qa.lock`), whether tmux or a person started it.
    pub fn lock_path(self, work_dir: &std::path::Path) -> std::path::PathBuf {
        work_dir.join(format!(".{}.lock", self.as_str()))
    }
}

/// Its tmux session, as seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Ours, and its program runs.
    Running,
    /// Ours, but its program exited (the pane is dead).
    Exited,
    /// No session of that name; `external` when the factory's lock is held all the same (a
    /// `co supervisor run` started by hand).
    Missing { external: bool },
    /// A session of that name that this company did not start.
    Foreign,
}

/// One service and what is seen of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceObs {
    pub factory: String,
    pub role: Role,
    pub session: String,
    pub seen: Seen,
    pub restart_on_failure: bool,
    pub policy: Policy,
}

/// Everything one patrol looks at.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub now: Instant,
    pub jitter: f64,
    pub services: Vec<ServiceObs>,
    /// Settings files that do not load now, with why.
    pub config_errors: Vec<String>,
}

/// One thing to do, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Found running: from now on it is watched (logged once).
    Adopt { session: String },
    /// Removes our session whose program exited, before starting it again.
    Clear { session: String },
    /// Starts a factory's service: for the first time, or again after it died.
    Start {
        factory: String,
        role: Role,
        how: Start,
    },
    /// It died; it starts again after `delay`.
    Died { session: String, delay: Duration },
    /// Restarts stopped: one escalation.
    GiveUp {
        factory: String,
        role: Role,
        session: String,
        failures: usize,
    },
    /// Logged once: a session of that name is not ours and is left alone.
    Foreign { session: String },
    /// Archive day partitions older than each store's `retention_days`.
    Archive,
    /// A settings file does not load: escalated once.
    ConfigInvalid { error: String },
}

/// One service as operations remembers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub restarts: Restarts,
    /// Seen running or started by us since the daemon started.
    pub known: bool,
    pub escalated: bool,
    foreign_logged: bool,
}

/// What operations remembers between patrols.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    pub services: BTreeMap<String, Service>,
    last_archive: Option<Instant>,
    /// Config errors seen on the last patrol, and those escalated.
    config_errors: Vec<String>,
    escalated_config: Vec<String>,
}

/// How an applied start went, for [`Memory::learn`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Failed(String),
}

impl Memory {
    /// A start that failed counts as a death of that service.
    pub fn learn(
        &mut self,
        action: &Action,
        outcome: &Outcome,
        now: Instant,
        policy: &Policy,
        jitter: f64,
    ) {
        if let (Action::Start { .. }, Outcome::Failed(_)) = (action, outcome)
            && let Some(session) = session_of(action)
            && let Some(s) = self.services.get_mut(&session)
        {
            let _ = s.restarts.died(now, policy, jitter);
        }
    }
}

fn session_of(a: &Action) -> Option<String> {
    match a {
        Action::Start { factory, role, .. } => Some(format!("{}-{factory}", role.as_str())),
        _ => None,
    }
}

/// One patrol's decisions.
pub fn decide(s: &Snapshot, mem: &mut Memory) -> Vec<Action> {
    let mut out = Vec::new();
    // An error seen on two patrols in a row (not a file caught while an editor writes it) is
    // escalated once, until it goes away.
    for e in &s.config_errors {
        if mem.config_errors.contains(e) && !mem.escalated_config.contains(e) {
            mem.escalated_config.push(e.clone());
            out.push(Action::ConfigInvalid { error: e.clone() });
        }
    }
    mem.escalated_config.retain(|e| s.config_errors.contains(e));
    mem.config_errors = s.config_errors.clone();
    for obs in &s.services {
        let svc = mem
            .services
            .entry(obs.session.clone())
            .or_insert_with(|| Service {
                restarts: Restarts::waiting(s.now),
                known: false,
                escalated: false,
                foreign_logged: false,
            });
        service(s, obs, svc, &mut out);
    }
    if mem
        .last_archive
        .is_none_or(|t| s.now.saturating_duration_since(t) >= ARCHIVE_EVERY)
    {
        mem.last_archive = Some(s.now);
        out.push(Action::Archive);
    }
    out
}

fn service(s: &Snapshot, obs: &ServiceObs, svc: &mut Service, out: &mut Vec<Action>) {
    match obs.seen {
        Seen::Foreign => {
            if !svc.foreign_logged {
                svc.foreign_logged = true;
                out.push(Action::Foreign {
                    session: obs.session.clone(),
                });
            }
            return;
        }
        Seen::Running | Seen::Missing { external: true } => {
            if !svc.known || matches!(svc.restarts.state, State::Waiting { .. }) {
                if !svc.known {
                    out.push(Action::Adopt {
                        session: obs.session.clone(),
                    });
                }
                svc.known = true;
                svc.restarts.state = State::Running { since: s.now };
            }
            svc.restarts.alive(s.now, &obs.policy);
            return;
        }
        Seen::Exited => out.push(Action::Clear {
            session: obs.session.clone(),
        }),
        Seen::Missing { external: false } => {}
    }
    not_running(s, obs, svc, out);
}

/// A service that is not running: started the first time it is seen, restarted with backoff
/// after a death (with `restart_on_failure`), given up on with one escalation.
fn not_running(s: &Snapshot, obs: &ServiceObs, svc: &mut Service, out: &mut Vec<Action>) {
    let start = |how: Start| Action::Start {
        factory: obs.factory.clone(),
        role: obs.role,
        how,
    };
    if !svc.known {
        // Never seen: start it (a new factory, or the daemon's first patrol).
        svc.known = true;
        svc.restarts.started(s.now, Start::First);
        out.push(start(Start::First));
        return;
    }
    if !obs.restart_on_failure {
        return;
    }
    match svc.restarts.state {
        State::Running { .. } => match svc.restarts.died(s.now, &obs.policy, s.jitter) {
            Verdict::RestartIn(delay) => {
                out.push(Action::Died {
                    session: obs.session.clone(),
                    delay,
                });
                if svc.restarts.due(s.now) {
                    svc.restarts.started(s.now, Start::Again);
                    out.push(start(Start::Again));
                }
            }
            Verdict::GiveUp => {}
        },
        State::Waiting { .. } => {
            if svc.restarts.due(s.now) {
                svc.restarts.started(s.now, Start::Again);
                out.push(start(Start::Again));
            }
        }
        State::GaveUp => {}
    }
    if svc.restarts.gave_up() && !svc.escalated {
        svc.escalated = true;
        out.push(Action::GiveUp {
            factory: obs.factory.clone(),
            role: obs.role,
            session: obs.session.clone(),
            failures: svc.restarts.failure_count(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::restart::Budget;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn policy() -> Policy {
        Policy {
            initial: S(2),
            max: S(300),
            max_failures: 3,
            stable_after: S(120),
            budget: Budget::Window(S(600)),
        }
    }

    fn obs(seen: Seen) -> ServiceObs {
        ServiceObs {
            factory: "mp".into(),
            role: Role::Supervisor,
            session: "supervisor-mp".into(),
            seen,
            restart_on_failure: true,
            policy: policy(),
        }
    }

    struct World {
        t0: Instant,
        snap: Snapshot,
        mem: Memory,
    }

    impl World {
        fn new(seen: Seen) -> World {
            let t0 = Instant::now();
            // The archive runs on the first patrol; these tests are about services.
            let mem = Memory {
                last_archive: Some(t0),
                ..Default::default()
            };
            World {
                t0,
                snap: Snapshot {
                    now: t0,
                    jitter: 1.0,
                    services: vec![obs(seen)],
                    config_errors: vec![],
                },
                mem,
            }
        }
        fn at(&mut self, secs: u64, seen: Seen) -> Vec<Action> {
            self.snap.now = self.t0 + S(secs);
            self.snap.services[0].seen = seen;
            decide(&self.snap, &mut self.mem)
        }
    }

    const MISSING: Seen = Seen::Missing { external: false };
    fn start(how: Start) -> Action {
        Action::Start {
            factory: "mp".into(),
            role: Role::Supervisor,
            how,
        }
    }

    #[test]
    fn a_missing_service_is_started_and_a_running_one_adopted_once() {
        let mut w = World::new(MISSING);
        assert_eq!(w.at(0, MISSING), vec![start(Start::First)]);
        assert!(w.at(1, Seen::Running).is_empty(), "started by us: known");
        let mut w = World::new(Seen::Running);
        assert_eq!(
            w.at(0, Seen::Running),
            vec![Action::Adopt {
                session: "supervisor-mp".into()
            }]
        );
        assert!(w.at(1, Seen::Running).is_empty());
    }

    #[test]
    fn one_started_by_hand_holding_the_lock_is_left_alone() {
        let ext = Seen::Missing { external: true };
        let mut w = World::new(ext);
        assert_eq!(
            w.at(0, ext),
            vec![Action::Adopt {
                session: "supervisor-mp".into()
            }]
        );
        assert!(w.at(10, ext).is_empty(), "never started twice");
    }

    #[test]
    fn a_crash_restarts_after_the_backoff_and_an_exited_pane_is_cleared_first() {
        let mut w = World::new(Seen::Running);
        w.at(0, Seen::Running);
        let acts = w.at(10, Seen::Exited);
        assert_eq!(
            acts,
            vec![
                Action::Clear {
                    session: "supervisor-mp".into()
                },
                Action::Died {
                    session: "supervisor-mp".into(),
                    delay: S(2)
                }
            ]
        );
        assert!(w.at(11, MISSING).is_empty(), "waits out 2 s");
        assert_eq!(w.at(12, MISSING), vec![start(Start::Again)]);
        assert_eq!(w.mem.services["supervisor-mp"].restarts.restarts, 1);
    }

    #[test]
    fn a_crash_loop_within_the_window_gives_up_with_one_escalation() {
        let mut w = World::new(Seen::Running);
        w.at(0, Seen::Running);
        let mut t = 10;
        let mut give_ups = 0;
        let mut starts = 0;
        for _ in 0..20 {
            for a in w.at(t, MISSING) {
                match a {
                    Action::Start { .. } => {
                        starts += 1;
                        t += 1;
                        w.at(t, Seen::Running);
                    }
                    Action::GiveUp { failures, .. } => {
                        give_ups += 1;
                        assert_eq!(failures, 3);
                    }
                    _ => {}
                }
            }
            t += 10;
        }
        assert_eq!(starts, 2, "3 deaths in the window: 2 restarts, then stop");
        assert_eq!(give_ups, 1, "escalated once");
    }

    #[test]
    fn crashes_far_apart_never_give_up() {
        let mut w = World::new(Seen::Running);
        w.at(0, Seen::Running);
        for day in 1..10u64 {
            let t = day * 86_400;
            w.at(t, MISSING);
            let acts = w.at(t + 3, MISSING);
            assert_eq!(acts, vec![start(Start::Again)], "day {day}");
            w.at(t + 4, Seen::Running);
        }
    }

    #[test]
    fn a_failed_start_counts_as_a_death() {
        let mut w = World::new(MISSING);
        let p = policy();
        let mut escalations = 0;
        for i in 0..10u64 {
            for a in w.at(i * 30, MISSING) {
                match a {
                    Action::Start { .. } => w.mem.learn(
                        &a,
                        &Outcome::Failed("tmux: no server".into()),
                        w.t0 + S(i * 30),
                        &p,
                        1.0,
                    ),
                    Action::GiveUp { failures, .. } => {
                        assert_eq!(failures, 3);
                        escalations += 1;
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(
            escalations, 1,
            "three failed starts in the window: given up once"
        );
    }

    #[test]
    fn restart_on_failure_off_leaves_a_dead_service_down() {
        let mut w = World::new(Seen::Running);
        w.at(0, Seen::Running);
        w.snap.services[0].restart_on_failure = false;
        assert!(w.at(10, MISSING).is_empty());
        assert!(w.at(1000, MISSING).is_empty());
    }

    #[test]
    fn a_foreign_session_is_logged_once_and_never_touched() {
        let mut w = World::new(Seen::Foreign);
        assert_eq!(
            w.at(0, Seen::Foreign),
            vec![Action::Foreign {
                session: "supervisor-mp".into()
            }]
        );
        assert!(w.at(100, Seen::Foreign).is_empty());
    }

    #[test]
    fn a_new_factory_gets_its_services_on_the_next_patrol() {
        let mut w = World::new(Seen::Running);
        w.at(0, Seen::Running);
        w.snap.services.push(ServiceObs {
            factory: "new".into(),
            role: Role::Qa,
            session: "qa-new".into(),
            ..obs(MISSING)
        });
        let acts = w.at(5, Seen::Running);
        assert_eq!(
            acts,
            vec![Action::Start {
                factory: "new".into(),
                role: Role::Qa,
                how: Start::First
            }]
        );
    }

    #[test]
    fn old_partitions_are_archived_once_an_hour_and_a_bad_config_escalated_once() {
        let mut w = World::new(Seen::Running);
        w.mem.last_archive = None;
        w.snap.config_errors = vec!["/c/.vermas/config.toml:3: bad".into()];
        let acts = w.at(0, Seen::Running);
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, Action::ConfigInvalid { .. })),
            "seen once: maybe a half-written file"
        );
        assert!(acts.contains(&Action::Archive), "{acts:?}");
        let acts = w.at(1, Seen::Running);
        assert_eq!(
            acts,
            vec![Action::ConfigInvalid {
                error: "/c/.vermas/config.toml:3: bad".into()
            }],
            "still there on the next patrol"
        );
        let acts = w.at(60, Seen::Running);
        assert!(acts.is_empty(), "{acts:?}");
        assert_eq!(w.at(3600, Seen::Running), vec![Action::Archive]);
        // Fixed, then broken again: told again.
        w.snap.config_errors.clear();
        w.at(3601, Seen::Running);
        w.snap.config_errors = vec!["/c/.vermas/config.toml:3: bad".into()];
        assert!(w.at(3602, Seen::Running).is_empty());
        assert_eq!(
            w.at(3603, Seen::Running),
            vec![Action::ConfigInvalid {
                error: "/c/.vermas/config.toml:3: bad".into()
            }]
        );
    }
}
