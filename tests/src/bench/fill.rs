//! Filling a store fast: events are appended through the library (`Store::lock` then
//! `Writer::append` in batches of 1,000), not by spawning a process per event. A clock that the
//! generator moves spreads the events over the last few days, so the log has day partitions
//! like a store in use; the last partition is today's.
//!
//! Two mixes:
//! - [`Mix::OpenWork`]: work orders that stay open (a create; for some a queue, an assignment
//!   and a start): about 1.6 events per work order. For `wo create` and `wo list`.
//! - [`Mix::Lifecycle`]: work goes through queue, assignment, start, a mail to QA with a body,
//!   review and (mostly) close, with about 64 work orders in flight at once so their events
//!   interleave: about 9 events per work order, 250–400 bytes per event. For the rebuild.

use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use vermas_core::clock::Clock;
use vermas_core::event::{NewEvent, types};
use vermas_core::mail::{MailPriority, Marked, Sent};
use vermas_core::store::{Store, StoreOptions};
use vermas_core::workorder::{
    Assigned, Closed as ClosedPayload, Created, Status, StatusChanged, Updated, WoType,
};

/// A clock the generator sets (milliseconds since the epoch).
#[derive(Debug, Default)]
pub struct BenchClock(AtomicI64);

impl BenchClock {
    pub fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for BenchClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

/// splitmix64: deterministic, so every run writes the same kind of log.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// true with `percent` % probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "retry",
    "dispatcher",
    "queue",
    "worker",
    "merge",
    "branch",
    "timeout",
    "flaky",
    "test",
    "config",
    "parser",
    "review",
    "gate",
    "release",
    "latency",
    "cache",
    "index",
    "projection",
    "event",
    "log",
    "partition",
    "session",
    "agent",
    "supervisor",
    "report",
    "crash",
    "memory",
    "handle",
    "error",
    "message",
    "refactor",
    "endpoint",
    "schema",
    "migration",
    "deadline",
    "lock",
    "retry",
    "backoff",
    "metrics",
    "dashboard",
    "upgrade",
    "dependency",
    "build",
    "pipeline",
    "token",
    "limit",
    "cleanup",
    "docs",
    "the",
    "a",
    "in",
    "for",
    "when",
    "after",
    "with",
    "on",
    "of",
    "and",
    "to",
];

/// Words up to about `min..=max` characters.
pub fn text(rng: &mut Rng, min: usize, max: usize) -> String {
    let want = rng.range(min, max);
    let mut s = String::with_capacity(want + 16);
    while s.len() < want {
        if !s.is_empty() {
            s.push(if rng.chance(8) { '\n' } else { ' ' });
        }
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    s
}

fn title(rng: &mut Rng) -> String {
    let verbs = [
        "Fix",
        "Add",
        "Remove",
        "Speed up",
        "Document",
        "Investigate",
        "Refactor",
    ];
    let mut t = verbs[rng.below(verbs.len() as u64) as usize].to_string();
    t.push(' ');
    t.push_str(&text(rng, 15, 70).replace('\n', " "));
    t
}

fn base36(mut n: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `n`th work order id: a bijection of `n` onto 6 base36 digits (unique, scattered; random
/// ids would collide a few hundred times in a million).
pub fn wo_id(n: u64) -> String {
    const M: u64 = 36u64.pow(6);
    format!("wo-{}", base36((n % M * 1_000_003 + 4_242) % M, 6))
}

fn msg_id(n: u64) -> String {
    const M: u64 = 36u64.pow(10);
    format!("msg-{}", base36((n % M * 1_000_003 + 777) % M, 10))
}

fn hex40(rng: &mut Rng) -> String {
    format!(
        "{:016x}{:016x}{:08x}",
        rng.next(),
        rng.next(),
        rng.next() as u32
    )
}

/// Which kind of log to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    OpenWork,
    Lifecycle,
    /// A long history of finished work: every work order is created, some queued, and all
    /// but every `n`th closed (those stay open). For point look-ups and listing open work.
    History(u64),
}

impl Mix {
    /// Events per work order, on average (to spread the clock).
    fn events_per_wo(self) -> f64 {
        match self {
            Mix::OpenWork => 1.6,
            Mix::Lifecycle => 9.0,
            Mix::History(_) => 2.3,
        }
    }
}

/// How much to write.
#[derive(Debug, Clone, Copy)]
pub enum Amount {
    /// Exactly this many work orders, each life played to its end.
    WorkOrders(u64),
    /// Exactly this many events (lives still in flight at the end stay unfinished).
    Events(u64),
}

/// One work order's life, advanced one event at a time.
struct Life {
    /// Its number (the `n` of [`wo_id`]).
    n: u64,
    id: String,
    step: u32,
    factory: String,
    worker: String,
    msg: Option<String>,
    /// Moved to `queued` (the history mix closes it from there).
    queued: bool,
}

/// A new event with a typed payload (a macro: the payload bound is serde's `Serialize`, and
/// this crate does not depend on serde directly).
macro_rules! ev {
    ($t:expr, $actor:expr, $data:expr $(,)?) => {
        NewEvent::new($t, $actor, $data).expect("payload serialises")
    };
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Filled {
    pub events: u64,
    pub work_orders: u64,
    pub messages: u64,
    /// The log files, in order, and their total size.
    pub files: Vec<PathBuf>,
    pub log_bytes: u64,
}

/// The log files of a store (day partitions, oldest first) and their total size.
pub fn log_files(work: &Path) -> (Vec<PathBuf>, u64) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(work.join("events"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let bytes = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    (files, bytes)
}

/// Appends `amount` of `mix` to the store at `work` (which must exist), spread over `days` days
/// ending a minute ago.
pub fn fill(work: &Path, mix: Mix, amount: Amount, days: i64, seed: u64) -> Filled {
    let clock = Arc::new(BenchClock::default());
    let store = Store::open(
        work,
        StoreOptions {
            partition_by_day: true,
            clock: clock.clone(),
        },
    )
    .expect("open the store");
    let now = Utc::now();
    let start = now - chrono::Duration::days(days);
    let end = now - chrono::Duration::seconds(60);
    let expected = match amount {
        Amount::Events(n) => n as f64,
        Amount::WorkOrders(n) => n as f64 * mix.events_per_wo(),
    };
    let mut g = Gen {
        rng: Rng::new(seed),
        mix,
        next_wo: 0,
        next_msg: 0,
    };
    const BATCH: usize = 1000;
    const IN_FLIGHT: usize = 64;
    let mut active: Vec<Life> = Vec::new();
    let mut batch: Vec<NewEvent> = Vec::with_capacity(BATCH);
    let mut events = 0u64;
    let flush = |batch: &mut Vec<NewEvent>, events: u64| {
        if batch.is_empty() {
            return;
        }
        let frac = (events as f64 / expected).min(1.0);
        let at = start
            + chrono::Duration::milliseconds(
                ((end - start).num_milliseconds() as f64 * frac) as i64,
            );
        clock.set(at);
        // A writer keeps the partition it opened, so lock per batch to follow the clock.
        let mut w = store.lock().expect("lock the store");
        w.append(std::mem::take(batch)).expect("append a batch");
    };
    loop {
        let may_start = match amount {
            Amount::WorkOrders(n) => g.next_wo < n,
            Amount::Events(n) => events < n,
        };
        let done = match amount {
            Amount::WorkOrders(_) => !may_start && active.is_empty(),
            Amount::Events(n) => events >= n,
        };
        if done {
            break;
        }
        let e = if may_start && active.len() < IN_FLIGHT {
            let life = g.start();
            active.push(life);
            let i = active.len() - 1;
            g.step(&mut active[i])
        } else {
            let i = g.rng.below(active.len() as u64) as usize;
            g.step(&mut active[i])
        };
        match e {
            Some(e) => {
                batch.push(e);
                events += 1;
                if batch.len() == BATCH {
                    flush(&mut batch, events);
                }
            }
            None => {
                // That life is over.
                let i = active
                    .iter()
                    .position(|l| l.step == u32::MAX)
                    .expect("a finished life");
                active.swap_remove(i);
            }
        }
    }
    flush(&mut batch, events);
    let (files, log_bytes) = log_files(work);
    Filled {
        events,
        work_orders: g.next_wo,
        messages: g.next_msg,
        files,
        log_bytes,
    }
}

struct Gen {
    rng: Rng,
    mix: Mix,
    next_wo: u64,
    next_msg: u64,
}

impl Gen {
    fn start(&mut self) -> Life {
        let n = self.next_wo;
        self.next_wo += 1;
        let f = self.rng.below(4) + 1;
        let slot = self.rng.below(6) + 1;
        Life {
            n,
            id: wo_id(n),
            step: 0,
            factory: format!("factory{f}"),
            worker: format!("factory{f}/workers/slot{slot}"),
            msg: None,
            queued: false,
        }
    }

    /// The next event of this life; `None` (and `step = u32::MAX`) when it is over.
    fn step(&mut self, l: &mut Life) -> Option<NewEvent> {
        loop {
            let s = l.step;
            l.step += 1;
            let e = match self.mix {
                Mix::OpenWork => self.open_work(l, s),
                Mix::Lifecycle => self.lifecycle(l, s),
                Mix::History(every) => self.history(l, s, every),
            };
            match e {
                Step::Event(e) => return Some(e),
                Step::Skip => continue,
                Step::End => {
                    l.step = u32::MAX;
                    return None;
                }
            }
        }
    }

    fn created(&mut self, l: &Life) -> NewEvent {
        let r = &mut self.rng;
        let kinds = [WoType::Task, WoType::Bug, WoType::Feature, WoType::Chore];
        let mut labels = Vec::new();
        for _ in 0..r.below(3) {
            labels.push(
                ["backend", "ui", "infra", "docs", "urgent"][r.below(5) as usize].to_string(),
            );
        }
        labels.dedup();
        let actor = ["human", "ceo", "factory1/supervisor"][r.below(3) as usize];
        let description = if r.chance(20) {
            String::new()
        } else {
            text(r, 20, 260)
        };
        ev!(
            types::WORK_ORDER_CREATED,
            actor,
            &Created {
                id: l.id.clone(),
                title: title(r),
                kind: kinds[r.below(4) as usize],
                priority: r.below(5) as u8,
                description,
                labels,
                parent: None,
            },
        )
    }

    fn status(&self, l: &Life, from: Status, to: Status, reason: Option<String>) -> NewEvent {
        let actor = format!("{}/supervisor", l.factory);
        ev!(
            types::WORK_ORDER_STATUS_CHANGED,
            &actor,
            &StatusChanged {
                id: l.id.clone(),
                from,
                to,
                reason,
                factory: (to == Status::Queued).then(|| l.factory.clone()),
            },
        )
    }

    fn assigned(&mut self, l: &Life) -> NewEvent {
        let actor = format!("{}/supervisor", l.factory);
        let slot = l
            .worker
            .rsplit("slot")
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        ev!(
            types::WORK_ORDER_ASSIGNED,
            &actor,
            &Assigned {
                id: l.id.clone(),
                assignee: l.worker.clone(),
                factory: l.factory.clone(),
                slot,
                incarnation: format!("inc-{}", base36(self.rng.next() % 36u64.pow(10), 10)),
                attempt: 1,
                branch: format!("wo/{}", l.id),
            },
        )
    }

    fn open_work(&mut self, l: &mut Life, s: u32) -> Step {
        use Status::*;
        match s {
            0 => Step::Event(self.created(l)),
            1 if self.rng.chance(25) => Step::Event(self.status(l, Open, Queued, None)),
            2 if self.rng.chance(40) => Step::Event(self.assigned(l)),
            3 => Step::Event(self.status(l, Queued, Assigned, None)),
            4 => Step::Event(self.status(l, Assigned, InProgress, None)),
            _ => Step::End,
        }
    }

    fn history(&mut self, l: &mut Life, s: u32, every: u64) -> Step {
        use Status::*;
        match s {
            0 => Step::Event(self.created(l)),
            1 if self.rng.chance(30) => {
                l.queued = true;
                Step::Event(self.status(l, Open, Queued, None))
            }
            1 => Step::Skip,
            2 if l.n.is_multiple_of(every.max(1)) => Step::End,
            2 => {
                let actor = format!("{}/qa", l.factory);
                let c = ClosedPayload {
                    id: l.id.clone(),
                    from: if l.queued { Queued } else { Open },
                    reason: Some("done".to_string()),
                    merge_commit: None,
                };
                Step::Event(ev!(types::WORK_ORDER_CLOSED, &actor, &c))
            }
            _ => Step::End,
        }
    }

    fn lifecycle(&mut self, l: &mut Life, s: u32) -> Step {
        use Status::*;
        let r = &mut self.rng;
        match s {
            0 => Step::Event(self.created(l)),
            1 if r.chance(30) => {
                let actor = ["human", "ceo"][r.below(2) as usize];
                let u = if r.chance(50) {
                    Updated {
                        id: l.id.clone(),
                        priority: Some(r.below(5) as u8),
                        ..Default::default()
                    }
                } else {
                    Updated {
                        id: l.id.clone(),
                        add_labels: vec!["triaged".to_string()],
                        ..Default::default()
                    }
                };
                Step::Event(ev!(types::WORK_ORDER_UPDATED, actor, &u))
            }
            2 => Step::Event(self.status(l, Open, Queued, None)),
            3 => Step::Event(self.assigned(l)),
            4 => Step::Event(self.status(l, Queued, Assigned, None)),
            5 => Step::Event(self.status(l, Assigned, InProgress, None)),
            6 => {
                let id = msg_id(self.next_msg);
                self.next_msg += 1;
                l.msg = Some(id.clone());
                let r = &mut self.rng;
                let sent = Sent {
                    id,
                    from: l.worker.clone(),
                    to: format!("{}/qa", l.factory),
                    subject: format!("Ready for review: {}", l.id),
                    body: text(r, 80, 520),
                    kind: "review_request".to_string(),
                    priority: if r.chance(10) {
                        MailPriority::Urgent
                    } else {
                        MailPriority::Normal
                    },
                    meta: [("work_order".to_string(), l.id.clone())].into(),
                };
                Step::Event(ev!(types::MAIL_SENT, &l.worker, &sent))
            }
            7 if r.chance(50) => {
                let id = l.msg.clone().unwrap_or_default();
                let actor = format!("{}/qa", l.factory);
                Step::Event(ev!(types::MAIL_READ, &actor, &Marked { id }))
            }
            8 => Step::Event(self.status(l, InProgress, InReview, None)),
            9 if r.chance(85) => {
                let actor = format!("{}/qa", l.factory);
                let c = ClosedPayload {
                    id: l.id.clone(),
                    from: InReview,
                    reason: Some("merged".to_string()),
                    merge_commit: Some(hex40(r)),
                };
                Step::Event(ev!(types::WORK_ORDER_CLOSED, &actor, &c))
            }
            9 => {
                let why = format!("gate test failed: {}", text(r, 20, 80).replace('\n', " "));
                Step::Event(self.status(l, InReview, Rework, Some(why)))
            }
            // Steps 1 and 7 when their chance did not come up.
            1 | 7 => Step::Skip,
            _ => Step::End,
        }
    }
}

enum Step {
    Event(NewEvent),
    Skip,
    End,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for n in 0..200_000 {
            assert!(seen.insert(wo_id(n)));
        }
    }
}
