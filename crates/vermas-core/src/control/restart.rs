//! When to start again something that died: exponential backoff with jitter, and a budget.
//!
//! One [`Restarts`] follows one thing that should be running (a supervisor or QA session, or
//! one attempt of a worker). Every death is a failure; the delay before the next start doubles
//! with each failure in a row (a run longer than `stable_after` starts the row again); and
//! the budget says when to stop: `max_failures` within a sliding window (services, which
//! should run for months), or in total (one worker attempt, which must end some day: an agent
//! that always lives just past `stable_after` still runs out).

use std::time::{Duration, Instant};

/// How failures are forgiven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// At most `max_failures` within this long (older failures are forgotten).
    Window(Duration),
    /// At most `max_failures` in all.
    Total,
}

/// The restart policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub initial: Duration,
    pub max: Duration,
    pub max_failures: u32,
    pub stable_after: Duration,
    pub budget: Budget,
}

impl Policy {
    /// From `[operations]`: the policy of supervisor and QA sessions (a sliding window).
    pub fn services(s: &crate::config::Settings) -> Policy {
        let o = &s.operations;
        Policy {
            initial: o.restart_backoff_initial_seconds,
            max: o.restart_backoff_max_seconds,
            max_failures: o.max_restarts,
            stable_after: o.stable_after_seconds,
            budget: Budget::Window(o.restart_window_minutes),
        }
    }

    /// The policy of one worker attempt: the same delays, a total budget.
    pub fn worker_attempt(s: &crate::config::Settings) -> Policy {
        Policy {
            budget: Budget::Total,
            ..Policy::services(s)
        }
    }

    /// The delay after the `streak`-th failure in a row (1-based), before jitter.
    fn delay(&self, streak: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << streak.saturating_sub(1).min(16))
            .min(self.max)
    }
}

/// Where one restartable thing stands.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Started at `since` (or first seen running then).
    Running { since: Instant },
    /// Dead; may start again from `at`.
    Waiting { at: Instant },
    /// Out of budget: no more starts.
    GaveUp,
}

/// A first start, or a restart (counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    First,
    Again,
}

/// What to do about a death.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Start again after this delay.
    RestartIn(Duration),
    /// The budget is spent: stop, and say so once.
    GiveUp,
}

/// The restart history of one thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Restarts {
    pub state: State,
    /// When each counted failure happened.
    failures: Vec<Instant>,
    /// Failures in a row (no stable run between them): sets the delay.
    streak: u32,
    /// Starts made by us (not counting the first).
    pub restarts: u32,
}

impl Restarts {
    /// Something seen running (adopted, or just started) at `now`.
    pub fn running(now: Instant) -> Restarts {
        Restarts {
            state: State::Running { since: now },
            failures: Vec::new(),
            streak: 0,
            restarts: 0,
        }
    }

    /// Something that should run but does not yet: it may start at once.
    pub fn waiting(now: Instant) -> Restarts {
        Restarts {
            state: State::Waiting { at: now },
            ..Restarts::running(now)
        }
    }

    /// Failures the budget still counts at `now`.
    pub fn failure_count(&self) -> usize {
        self.failures.len()
    }

    pub fn gave_up(&self) -> bool {
        self.state == State::GaveUp
    }

    /// It was seen alive at `now`: a long enough run ends the streak of quick deaths.
    pub fn alive(&mut self, now: Instant, policy: &Policy) {
        if let State::Running { since } = self.state
            && now.saturating_duration_since(since) >= policy.stable_after
        {
            self.streak = 0;
        }
    }

    /// It died (or a start failed) at `now`. `jitter` in 0.75–1.25 spreads restarts.
    pub fn died(&mut self, now: Instant, policy: &Policy, jitter: f64) -> Verdict {
        if self.state == State::GaveUp {
            return Verdict::GiveUp;
        }
        if let State::Running { since } = self.state
            && now.saturating_duration_since(since) >= policy.stable_after
        {
            self.streak = 0;
        }
        self.failures.push(now);
        if let Budget::Window(w) = policy.budget {
            self.failures
                .retain(|t| now.saturating_duration_since(*t) <= w);
        }
        if self.failures.len() as u32 >= policy.max_failures {
            self.state = State::GaveUp;
            return Verdict::GiveUp;
        }
        self.streak += 1;
        let delay = policy
            .delay(self.streak)
            .mul_f64(jitter.clamp(0.75, 1.25))
            .min(policy.max);
        self.state = State::Waiting { at: now + delay };
        Verdict::RestartIn(delay)
    }

    /// Whether a start is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        matches!(self.state, State::Waiting { at } if now >= at)
    }

    /// We started it at `now`, for the first time or again.
    pub fn started(&mut self, now: Instant, start: Start) {
        if start == Start::Again {
            self.restarts += 1;
        }
        self.state = State::Running { since: now };
    }
}

/// A jitter factor in 0.75–1.25 from the system clock's nanoseconds (the loops pass it into
/// the decisions; the decisions never read a clock).
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    0.75 + f64::from(nanos % 1000) / 2000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(budget: Budget) -> Policy {
        Policy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(10),
            max_failures: 4,
            stable_after: Duration::from_secs(30),
            budget,
        }
    }
    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn delays_double_with_each_failure_in_a_row_and_are_capped() {
        let p = policy(Budget::Window(S(600)));
        let t0 = Instant::now();
        let mut r = Restarts::running(t0);
        let mut got = Vec::new();
        for i in 0..3 {
            let now = t0 + S(i);
            match r.died(now, &p, 1.0) {
                Verdict::RestartIn(d) => got.push(d),
                v => panic!("{v:?}"),
            }
            assert!(!r.due(now));
            r.started(now + S(20), Start::Again);
        }
        assert_eq!(got, vec![S(1), S(2), S(4)]);
        assert_eq!(r.restarts, 3);
        assert_eq!(
            r.died(t0 + S(4), &p, 1.0),
            Verdict::GiveUp,
            "the 4th in the window"
        );
        assert!(r.gave_up());
        assert!(!r.due(t0 + S(10_000)), "no start after giving up");
        let mut r = Restarts::running(t0);
        for _ in 0..3 {
            r.died(t0, &p, 1.0);
        }
        let mut capped = r.clone();
        capped.failures.clear();
        capped.streak = 20;
        assert_eq!(capped.died(t0, &p, 1.25), Verdict::RestartIn(S(10)));
    }

    #[test]
    fn jitter_spreads_the_delay_and_is_clamped() {
        let p = policy(Budget::Total);
        let t0 = Instant::now();
        let mut a = Restarts::running(t0);
        assert_eq!(
            a.died(t0, &p, 0.75),
            Verdict::RestartIn(Duration::from_millis(750))
        );
        let mut b = Restarts::running(t0);
        assert_eq!(
            b.died(t0, &p, 9.0),
            Verdict::RestartIn(Duration::from_millis(1250))
        );
    }

    #[test]
    fn a_window_forgets_old_failures_so_a_service_lives_for_months() {
        let p = policy(Budget::Window(S(600)));
        let t0 = Instant::now();
        let mut r = Restarts::running(t0);
        for day in 0..30u64 {
            let now = t0 + S(86_400 * day);
            assert!(
                matches!(r.died(now, &p, 1.0), Verdict::RestartIn(_)),
                "day {day}"
            );
            r.started(now + S(2), Start::Again);
        }
        assert_eq!(r.failure_count(), 1);
    }

    #[test]
    fn a_total_budget_ends_an_agent_that_always_lives_just_past_stable() {
        let p = policy(Budget::Total);
        let t0 = Instant::now();
        let mut r = Restarts::running(t0);
        let mut now = t0;
        let mut starts = 0;
        loop {
            now += S(31);
            r.alive(now, &p);
            match r.died(now, &p, 1.0) {
                Verdict::RestartIn(d) => {
                    assert_eq!(d, S(1), "a stable run restarts the streak");
                    now += d;
                    assert!(r.due(now));
                    r.started(now, Start::Again);
                    starts += 1;
                }
                Verdict::GiveUp => break,
            }
        }
        assert_eq!(starts, 3, "max_failures = 4 deaths in all");
    }

    #[test]
    fn a_thing_that_never_started_may_start_at_once() {
        let t0 = Instant::now();
        let r = Restarts::waiting(t0);
        assert!(r.due(t0));
        assert_eq!(r.failure_count(), 0);
    }
}
