//! The `queue` section: the merge queue of issue 11, beside the ideal of one gate time measured
//! in the same run.
//!
//! Eight workers (`tests/agents/gated.sh`) do their work order, commit, and wait; once all
//! eight wait, one file lets them hand in together (`co worker done` within ~0.1 s of each
//! other). The gate sleeps (5 s; `--quick`: 1 s) and then runs the seed repository's
//! `check.sh`, which fails for a branch whose answer says `wrong`. Timed from the first
//! `co worker done` (its `work_order.status_changed` to `in_review`) to the last work order
//! settled: every good one `work_order.closed`, the bad one `qa.rework_requested`.
//!
//! Scenarios, at the default `[qa] parallel_gates = 2`: all 8 good; one bad among 8, first,
//! fifth and last in merge order. Beside them, not judged: the bad one first and fifth gated
//! one tree at a time (`parallel_gates = 1`), where some positions need five gate runs.

use super::bed::Bed;
use super::sys;
use super::{Opts, Report, Row, Verdict, fmt_dur, median};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

const WORKERS: usize = 8;

struct Scenario {
    name: &'static str,
    /// The index (in merge order) of the bad branch, if any.
    bad: Option<usize>,
    parallel: u32,
    /// The target, in gate times (plus a fixed allowance).
    target_gates: f64,
    allowance: Duration,
    /// Judged against the target (the default settings), or shown beside them.
    judged: bool,
}

pub fn run(o: Opts, r: &mut Report) {
    sys::catch_interrupt();
    let gate = if o.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let rounds = if o.quick { 1 } else { 3 };
    let bad = |name, at, parallel, judged| Scenario {
        name,
        bad: Some(at),
        parallel,
        target_gates: 5.0,
        allowance: Duration::ZERO,
        judged,
    };
    let scenarios = [
        Scenario {
            name: "8 good branches",
            bad: None,
            parallel: 2,
            target_gates: 2.0,
            allowance: Duration::from_secs(1),
            judged: true,
        },
        bad("1 bad (first) among 8", 0, 2, true),
        bad("1 bad (5th) among 8", 4, 2, true),
        bad("1 bad (last) among 8", 7, 2, true),
        // Not the default: one tree at a time needs five gate runs for some positions.
        bad("1 bad (first) among 8, parallel_gates = 1", 0, 1, false),
        bad("1 bad (5th) among 8, parallel_gates = 1", 4, 1, false),
    ];
    // `VERMAS_BENCH_QUEUE=bad` runs only the scenarios whose name holds it.
    let only = std::env::var("VERMAS_BENCH_QUEUE").unwrap_or_default();
    for s in scenarios.iter().filter(|s| s.name.contains(&only)) {
        let mut spans = Vec::new();
        let mut gates = Vec::new();
        for round in 0..rounds {
            eprintln!("queue: {} (round {})", s.name, round + 1);
            let (span, gate_time) = once(s, gate);
            spans.push(span);
            gates.push(gate_time);
        }
        let span = median(&spans);
        let one_gate = median(&gates);
        let limit = one_gate.mul_f64(s.target_gates) + s.allowance;
        let ratio = span.as_secs_f64() / one_gate.as_secs_f64();
        let target = if s.allowance.is_zero() {
            format!("≤ {:.0} gate times", s.target_gates)
        } else {
            format!(
                "≤ {:.0} gate times + {}",
                s.target_gates,
                fmt_dur(s.allowance)
            )
        };
        r.add(
            Row::new(
                format!(
                    "merge queue: {}, first done → all settled, median of {rounds}",
                    s.name
                ),
                fmt_dur(span),
            )
            .baseline(format!("one gate run {}", fmt_dur(one_gate)))
            .ratio(format!("{ratio:.2} gate times"))
            .target(
                if s.judged {
                    target
                } else {
                    format!("({target} at the default)")
                },
                match (s.judged, span <= limit) {
                    (false, _) => Verdict::Info,
                    (true, ok) => Verdict::of(ok),
                },
            ),
        );
    }
    r.note(format!(
        "merge queue: gate = `sleep {}` then check.sh; the baseline is the median gate run (qa.gate_run duration_ms) of the same run",
        gate.as_secs()
    ));
}

fn ts(e: &Value) -> DateTime<Utc> {
    e["timestamp"]
        .as_str()
        .and_then(vermas_core::clock::parse_timestamp)
        .unwrap_or_else(|| panic!("event without a timestamp: {e}"))
}

/// One company, eight workers handing in together: the span from the first hand-in to the last
/// work order settled, and the median gate run.
fn once(s: &Scenario, gate: Duration) -> (Duration, Duration) {
    let config = format!(
        "[[gates]]\nname = \"check\"\ncommand = \"sleep {}; sh check.sh\"\ntimeout_seconds = 120\n[qa]\nparallel_gates = {}\n[worker]\nmax_slots_per_factory = {WORKERS}\nmax_attempts = 1\n",
        gate.as_secs_f64(),
        s.parallel
    );
    let bed = Bed::new("gated.sh", &config);
    let w = bed.w();
    let ids: Vec<String> = (0..WORKERS)
        .map(|i| {
            let line = if s.bad == Some(i) { "wrong" } else { "right" };
            w.create(
                &format!("answer {i}"),
                &[
                    "--label",
                    &format!("file:answer-{i}.txt"),
                    "--label",
                    &format!("line:{line}"),
                ],
            )
        })
        .collect();
    bed.co_ok(&["operations", "start"]);
    for id in &ids {
        bed.co_ok(&["dispatch", id, "myproject"]);
    }
    bed.wait_for(
        Duration::from_secs(120),
        Duration::from_millis(50),
        "every worker to have committed",
        || {
            ids.iter()
                .all(|id| w.root.join(format!("ready-{id}")).exists())
                .then_some(())
        },
    );
    std::fs::write(w.root.join("go"), b"").expect("write the go file");
    let settled = |events: &[Value], id: &str, bad: bool| -> Option<DateTime<Utc>> {
        events
            .iter()
            .find(|e| {
                if bad {
                    e["event_type"] == "qa.rework_requested" && e["data"]["work_order"] == id
                } else {
                    e["event_type"] == "work_order.closed" && e["data"]["id"] == id
                }
            })
            .map(ts)
    };
    let work = w.factory_dir().join(".work");
    let events = bed.wait_for(
        Duration::from_secs(300),
        Duration::from_millis(100),
        "every work order to be merged or sent back",
        || {
            let ev = vermas_tests::read_events(&work);
            ids.iter()
                .enumerate()
                .all(|(i, id)| settled(&ev, id, s.bad == Some(i)).is_some())
                .then_some(ev)
        },
    );
    let first_done = events
        .iter()
        .filter(|e| {
            e["event_type"] == "work_order.status_changed" && e["data"]["to"] == "in_review"
        })
        .map(ts)
        .min()
        .expect("no hand-in");
    let last = ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| settled(&events, id, s.bad == Some(i)))
        .max()
        .expect("nothing settled");
    // One qa.gate_run per member of the group gated: one run per evidence directory.
    let runs: std::collections::BTreeMap<String, Duration> = events
        .iter()
        .filter(|e| e["event_type"] == "qa.gate_run")
        .filter_map(|e| {
            Some((
                e["data"]["evidence"].as_str()?.to_string(),
                Duration::from_millis(e["data"]["duration_ms"].as_u64()?),
            ))
        })
        .collect();
    let runs: Vec<Duration> = runs.into_values().collect();
    if std::env::var_os("VERMAS_BENCH_TIMELINE").is_some() {
        // Where the time went: every event after the first hand-in, relative to it.
        for e in &events {
            let t = ts(e);
            if t >= first_done {
                eprintln!(
                    "  +{:>6} ms  {:<28} {}",
                    (t - first_done).num_milliseconds(),
                    e["event_type"].as_str().unwrap_or(""),
                    e["data"].to_string().chars().take(110).collect::<String>()
                );
            }
        }
    }
    let _ = bed.co(&["operations", "stop"]).output();
    (
        (last - first_done).to_std().unwrap_or_default(),
        median(&runs),
    )
}
