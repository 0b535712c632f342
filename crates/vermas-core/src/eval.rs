//! `wo eval report`: how well the company works, from the events alone.
//!
//! Every store of the company is read (or the one store outside a company); the figures are
//! per factory, per runtime and in total:
//!
//! - **finished in the window**: work orders closed (merged by QA, or closed by hand) or
//!   failed since `--since`. Every per-work-order figure is over these, each over its whole
//!   life: a work order merged today after a rework yesterday counts its rework.
//! - **first try**: merged at its first dispatch (attempt 1, or one team submission) and never
//!   sent back; the rate is over the merged ones.
//! - **dispatch → merge**: from its first `work_order.assigned` (a team's first
//!   `team.submitted`) to its merge (`qa.merged`, or `work_order.closed` with a merge commit,
//!   whichever is first): median and p90 (nearest rank: a time that occurred).
//! - **gates**: `qa.gate_run` events in the window, failed ones per gate.
//! - **nudges** (`agent.nudged` with reason `idle`), **stuck kills** (`agent.stopped` whose
//!   reason starts with `stuck`) and **escalations** (`mail.sent` of type `ESCALATION`) per
//!   finished work order; escalations not about a work order count in the totals only.
//!
//! A work order's runtime is the one its workers ran (`slot.allocated`); `mixed` when its
//! attempts ran different ones, `team` for a team's submission, none when it never ran.

use crate::event::{EventRef, types};
use crate::store::{Checkpoint, Issue, Store};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The forms `--since` takes, for error messages.
pub const SINCE_FORMS: &str =
    "90s, 15m, 1h, 7d, 2w, a date (2026-11-20) or a time (2026-11-20T12:00:00Z)";

/// `--since` for the report: a duration back from `now` with its unit, or a date or time. A
/// bare number is refused: `7` could mean seconds or days, and a report over the wrong window
/// looks plausible.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{t:?} has no unit; use {SINCE_FORMS}"));
    }
    match crate::clock::parse_since(t, now) {
        Some(at) => Ok(at),
        None if crate::clock::parse_duration(t).is_some() => {
            Err(format!("{t:?} reaches too far back; use {SINCE_FORMS}"))
        }
        None => Err(format!(
            "{t:?} is not a duration or a time; use {SINCE_FORMS}"
        )),
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The `p`-th percentile (0 < p ≤ 100) of sorted values by nearest rank: the smallest value
/// with at least p % of the values at or below it.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// What the log says about one work order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkOrderFacts {
    /// The factory it was dispatched to or handed in at, else the factory store it lives in.
    pub factory: Option<String>,
    pub runtimes: BTreeSet<String>,
    pub first_dispatch: Option<DateTime<Utc>>,
    /// The highest attempt a dispatch gave it (team submissions count one each).
    pub attempts: u32,
    /// Times it moved to `rework`.
    pub reworks: u32,
    pub merged_at: Option<DateTime<Utc>>,
    /// Its closes and failures (a reopened work order can have several).
    pub closed: Vec<DateTime<Utc>>,
    pub failed: Vec<DateTime<Utc>>,
    pub nudges: u32,
    pub stuck_kills: u32,
    pub escalations: u32,
}

impl WorkOrderFacts {
    /// Its runtime as reported: one name, `mixed`, or none.
    pub fn runtime(&self) -> Option<String> {
        match self.runtimes.len() {
            0 => None,
            1 => self.runtimes.iter().next().cloned(),
            _ => Some("mixed".to_string()),
        }
    }
}

/// One gate run.
#[derive(Debug, Clone, PartialEq)]
pub struct GateObs {
    pub at: DateTime<Utc>,
    pub factory: Option<String>,
    pub work_order: String,
    pub gate: String,
    pub passed: bool,
}

/// One escalation.
#[derive(Debug, Clone, PartialEq)]
pub struct EscalationObs {
    pub at: DateTime<Utc>,
    pub factory: Option<String>,
    pub work_order: Option<String>,
}

/// Facts gathered from every store, ready to be reported over any window.
#[derive(Debug, Default)]
pub struct Facts {
    pub work_orders: BTreeMap<String, WorkOrderFacts>,
    pub gates: Vec<GateObs>,
    pub escalations: Vec<EscalationObs>,
    /// The work order each worker holds now, while scanning (`agent.nudged` names only the
    /// agent).
    holders: HashMap<String, String>,
}

fn ts(ev: &EventRef<'_>) -> Option<DateTime<Utc>> {
    crate::clock::parse_timestamp(&ev.timestamp)
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

/// The factory an agent address belongs to (`mp/workers/slot0` → `mp`).
fn factory_of_agent(agent: &str) -> Option<String> {
    crate::agent::AgentId::parse(agent)
        .ok()
        .and_then(|a| a.factory().map(str::to_string))
}

const WANTED: &[&str] = &[
    types::WORK_ORDER_CREATED,
    types::WORK_ORDER_ASSIGNED,
    types::WORK_ORDER_STATUS_CHANGED,
    types::WORK_ORDER_CLOSED,
    types::SLOT_ALLOCATED,
    types::SLOT_RELEASED,
    types::QA_MERGED,
    types::QA_GATE_RUN,
    types::AGENT_NUDGED,
    types::AGENT_STOPPED,
    types::MAIL_SENT,
    types::TEAM_SUBMITTED,
];

impl Facts {
    fn wo(&mut self, id: &str) -> &mut WorkOrderFacts {
        self.work_orders.entry(id.to_string()).or_default()
    }

    /// Takes one event of a store that belongs to `store_factory` (`None`: the company's or a
    /// standalone store).
    pub fn event(&mut self, store_factory: Option<&str>, ev: &EventRef<'_>) {
        let ty = ev.event_type.as_ref();
        if !WANTED.contains(&ty) {
            return;
        }
        let (Some(at), Ok(d)) = (ts(ev), serde_json::from_str::<Value>(ev.data.get())) else {
            return;
        };
        let id = text(&d, "id");
        let work_order = text(&d, "work_order");
        match ty {
            types::WORK_ORDER_CREATED => {
                if let (Some(id), Some(f)) = (id, store_factory) {
                    let w = self.wo(&id);
                    if w.factory.is_none() {
                        w.factory = Some(f.to_string());
                    }
                }
            }
            types::WORK_ORDER_ASSIGNED => {
                let Some(id) = id else { return };
                let attempt = d.get("attempt").and_then(Value::as_u64).unwrap_or(1) as u32;
                let w = self.wo(&id);
                if let Some(f) = text(&d, "factory") {
                    w.factory = Some(f);
                }
                w.first_dispatch = Some(w.first_dispatch.map_or(at, |t| t.min(at)));
                w.attempts = w.attempts.max(attempt);
            }
            types::TEAM_SUBMITTED => {
                let Some(wo) = work_order else { return };
                let w = self.wo(&wo);
                if let Some(f) = text(&d, "factory") {
                    w.factory = Some(f);
                }
                w.runtimes.insert("team".to_string());
                w.first_dispatch = Some(w.first_dispatch.map_or(at, |t| t.min(at)));
                w.attempts += 1;
            }
            types::WORK_ORDER_STATUS_CHANGED => {
                let Some(id) = id else { return };
                match d.get("to").and_then(Value::as_str) {
                    Some("rework") => self.wo(&id).reworks += 1,
                    Some("failed") => self.wo(&id).failed.push(at),
                    _ => {}
                }
            }
            types::WORK_ORDER_CLOSED => {
                let Some(id) = id else { return };
                let merged = d.get("merge_commit").is_some_and(|m| m.is_string());
                let w = self.wo(&id);
                w.closed.push(at);
                if merged {
                    w.merged_at = Some(w.merged_at.map_or(at, |t| t.min(at)));
                }
            }
            types::QA_MERGED => {
                let Some(wo) = work_order else { return };
                let w = self.wo(&wo);
                w.merged_at = Some(w.merged_at.map_or(at, |t| t.min(at)));
            }
            types::SLOT_ALLOCATED => {
                let (Some(wo), Some(agent)) = (work_order, text(&d, "agent")) else {
                    return;
                };
                if let Some(rt) = text(&d, "runtime") {
                    self.wo(&wo).runtimes.insert(rt);
                }
                self.holders.insert(agent, wo);
            }
            types::SLOT_RELEASED => {
                if let (Some(wo), Some(agent)) = (work_order, text(&d, "agent"))
                    && self.holders.get(&agent) == Some(&wo)
                {
                    self.holders.remove(&agent);
                }
            }
            types::AGENT_NUDGED => {
                if d.get("reason").and_then(Value::as_str) == Some("idle")
                    && let Some(agent) = text(&d, "agent")
                    && let Some(wo) = self.holders.get(&agent).cloned()
                {
                    self.wo(&wo).nudges += 1;
                }
            }
            types::AGENT_STOPPED => {
                if d.get("reason")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.starts_with("stuck"))
                    && let Some(wo) = work_order
                {
                    self.wo(&wo).stuck_kills += 1;
                }
            }
            types::QA_GATE_RUN => {
                let (Some(wo), Some(gate)) = (work_order, text(&d, "gate")) else {
                    return;
                };
                self.gates.push(GateObs {
                    at,
                    factory: store_factory.map(str::to_string),
                    work_order: wo,
                    gate,
                    passed: d.get("passed").and_then(Value::as_bool).unwrap_or(false),
                });
            }
            types::MAIL_SENT => {
                if d.get("type").and_then(Value::as_str) != Some("ESCALATION") {
                    return;
                }
                let meta = d.get("meta").cloned().unwrap_or_default();
                let wo = text(&meta, "work_order");
                let factory = text(&meta, "factory")
                    .or_else(|| text(&meta, "agent").and_then(|a| factory_of_agent(&a)))
                    .or_else(|| store_factory.map(str::to_string));
                if let Some(w) = &wo {
                    self.wo(w).escalations += 1;
                }
                self.escalations.push(EscalationObs {
                    at,
                    factory,
                    work_order: wo,
                });
            }
            _ => {}
        }
    }

    /// Reads a whole store; returns the lines it could not read.
    pub fn read_store(
        &mut self,
        store: &Store,
        factory: Option<&str>,
    ) -> crate::Result<Vec<Issue>> {
        let mut visit = |ev: &EventRef<'_>, _: &crate::store::LineInfo<'_>| {
            self.event(factory, ev);
            Ok(())
        };
        match store.scan(&Checkpoint::default(), None, &mut visit)? {
            Ok(o) => Ok(o.issues),
            Err(m) => Err(crate::Error::failure(m.0)),
        }
    }
}

/// Time from dispatch to merge.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Durations {
    pub count: usize,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

/// One gate's runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GateStats {
    pub gate: String,
    pub runs: u64,
    pub failed: u64,
    pub failure_rate: Option<f64>,
}

/// The figures of one group (a factory, a runtime, or everything).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    /// The factory or runtime; `None` for work that has none (company work never dispatched,
    /// work that never ran) and for the total.
    pub name: Option<String>,
    /// Closed or failed in the window (each work order once).
    pub finished: u64,
    pub closed: u64,
    /// Closed with a merge commit.
    pub merged: u64,
    pub failed: u64,
    pub first_try: u64,
    /// first_try / merged.
    pub first_try_rate: Option<f64>,
    /// Rework rounds of the finished work orders, and per finished work order.
    pub rework_rounds: u64,
    pub rework_rounds_per_work_order: Option<f64>,
    pub dispatch_to_merge: Durations,
    pub nudges: u64,
    pub nudges_per_work_order: Option<f64>,
    pub stuck_kills: u64,
    pub stuck_kills_per_work_order: Option<f64>,
    /// ESCALATION mail sent in the window.
    pub escalations: u64,
    pub escalations_per_work_order: Option<f64>,
    /// Gate runs in the window, by gate.
    pub gates: Vec<GateStats>,
}

/// `wo eval report`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Start of the window (`None`: the whole log).
    pub since: Option<String>,
    pub until: String,
    /// Only this factory, when asked.
    pub factory: Option<String>,
    pub stores: Vec<String>,
    pub total: Row,
    pub by_factory: Vec<Row>,
    pub by_runtime: Vec<Row>,
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Accumulates one group's figures.
#[derive(Default)]
struct Acc {
    row: Row,
    durations: Vec<f64>,
    /// Escalations about one of the group's work orders, over the finished ones.
    finished_escalations: u64,
    gates: BTreeMap<String, (u64, u64)>,
}

impl Acc {
    fn work_order(&mut self, w: &WorkOrderFacts, in_window: &dyn Fn(&DateTime<Utc>) -> bool) {
        let closed = w.closed.iter().any(in_window);
        let failed = w.failed.iter().any(in_window);
        if !closed && !failed {
            return;
        }
        let r = &mut self.row;
        r.finished += 1;
        r.closed += u64::from(closed);
        r.failed += u64::from(failed);
        r.rework_rounds += u64::from(w.reworks);
        r.nudges += u64::from(w.nudges);
        r.stuck_kills += u64::from(w.stuck_kills);
        self.finished_escalations += u64::from(w.escalations);
        if let Some(m) = w.merged_at.filter(in_window) {
            r.merged += 1;
            if w.attempts <= 1 && w.reworks == 0 {
                r.first_try += 1;
            }
            if let Some(d) = w.first_dispatch {
                self.durations
                    .push(((m - d).num_milliseconds().max(0)) as f64 / 1000.0);
            }
        }
    }

    fn gate(&mut self, g: &GateObs) {
        let e = self.gates.entry(g.gate.clone()).or_default();
        e.0 += 1;
        e.1 += u64::from(!g.passed);
    }

    fn finish(mut self, name: Option<String>) -> Row {
        self.durations.sort_by(f64::total_cmp);
        let r = &mut self.row;
        r.name = name;
        r.first_try_rate = ratio(r.first_try, r.merged);
        r.rework_rounds_per_work_order = ratio(r.rework_rounds, r.finished);
        r.nudges_per_work_order = ratio(r.nudges, r.finished);
        r.stuck_kills_per_work_order = ratio(r.stuck_kills, r.finished);
        r.escalations_per_work_order = ratio(self.finished_escalations, r.finished);
        r.dispatch_to_merge = Durations {
            count: self.durations.len(),
            median_seconds: median(&self.durations),
            p90_seconds: percentile(&self.durations, 90.0),
        };
        r.gates = self
            .gates
            .into_iter()
            .map(|(gate, (runs, failed))| GateStats {
                gate,
                runs,
                failed,
                failure_rate: ratio(failed, runs),
            })
            .collect();
        self.row
    }
}

/// The report over the window from `since` (the whole log when `None`), for every factory or
/// one. Pure: the same facts give the same report.
pub fn report(
    facts: &Facts,
    since: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    factory: Option<&str>,
    stores: Vec<String>,
) -> Report {
    let in_window = |t: &DateTime<Utc>| since.is_none_or(|s| *t >= s) && *t <= until;
    let keep = |f: &Option<String>| factory.is_none_or(|want| f.as_deref() == Some(want));
    let mut total = Acc::default();
    let mut by_factory: BTreeMap<Option<String>, Acc> = BTreeMap::new();
    let mut by_runtime: BTreeMap<Option<String>, Acc> = BTreeMap::new();
    for w in facts.work_orders.values().filter(|w| keep(&w.factory)) {
        total.work_order(w, &in_window);
        by_factory
            .entry(w.factory.clone())
            .or_default()
            .work_order(w, &in_window);
        by_runtime
            .entry(w.runtime())
            .or_default()
            .work_order(w, &in_window);
    }
    let runtime_of = |wo: &str| facts.work_orders.get(wo).and_then(WorkOrderFacts::runtime);
    for g in facts
        .gates
        .iter()
        .filter(|g| in_window(&g.at) && keep(&g.factory))
    {
        total.gate(g);
        by_factory.entry(g.factory.clone()).or_default().gate(g);
        by_runtime
            .entry(runtime_of(&g.work_order))
            .or_default()
            .gate(g);
    }
    for e in facts
        .escalations
        .iter()
        .filter(|e| in_window(&e.at) && keep(&e.factory))
    {
        total.row.escalations += 1;
        by_factory
            .entry(e.factory.clone())
            .or_default()
            .row
            .escalations += 1;
        let rt = e.work_order.as_deref().and_then(runtime_of);
        by_runtime.entry(rt).or_default().row.escalations += 1;
    }
    // Groups with nothing in the window are left out (a factory idle all week shows no row).
    let rows = |m: BTreeMap<Option<String>, Acc>| -> Vec<Row> {
        m.into_iter()
            .map(|(name, acc)| acc.finish(name))
            .filter(|r| r.finished > 0 || !r.gates.is_empty() || r.escalations > 0)
            .collect()
    };
    Report {
        since: since.map(crate::clock::format_timestamp),
        until: crate::clock::format_timestamp(until),
        factory: factory.map(str::to_string),
        stores,
        total: total.finish(None),
        by_factory: rows(by_factory),
        by_runtime: rows(by_runtime),
    }
}

/// Reads every store given (`(store, its factory)`) and reports.
pub fn run(
    stores: &[(Store, Option<String>)],
    since: Option<DateTime<Utc>>,
    factory: Option<&str>,
) -> crate::Result<(Report, Vec<Issue>)> {
    let mut facts = Facts::default();
    let mut issues = Vec::new();
    for (s, f) in stores {
        issues.extend(facts.read_store(s, f.as_deref())?);
    }
    let names = stores
        .iter()
        .map(|(s, _)| s.dir().display().to_string())
        .collect();
    Ok((report(&facts, since, Utc::now(), factory, names), issues))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::store::StoreOptions;

    fn t(s: &str) -> DateTime<Utc> {
        crate::clock::parse_timestamp(s).unwrap()
    }

    #[test]
    fn median_and_p90_on_known_inputs() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[1.0, 2.0, 3.0]), Some(2.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 10.0]), Some(2.5));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 90.0), Some(9.0));
        assert_eq!(percentile(&ten, 50.0), Some(5.0));
        assert_eq!(percentile(&ten, 100.0), Some(10.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 90.0), Some(3.0));
        assert_eq!(percentile(&[7.0], 90.0), Some(7.0));
        assert_eq!(percentile(&[], 90.0), None);
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&twenty, 90.0), Some(18.0));
    }

    #[test]
    fn since_needs_a_unit_or_a_date() {
        let now = t("2026-11-21T12:00:00Z");
        assert_eq!(parse_since("7d", now), Ok(t("2026-11-14T12:00:00Z")));
        assert_eq!(parse_since("90s", now), Ok(t("2026-11-21T11:58:30Z")));
        assert_eq!(parse_since("2w", now), Ok(t("2026-11-07T12:00:00Z")));
        assert_eq!(
            parse_since("2026-11-20", now),
            Ok(t("2026-11-20T00:00:00Z"))
        );
        let e = parse_since("7", now).unwrap_err();
        assert!(
            e.contains("no unit") && e.contains("7d") && e.contains("2w"),
            "{e}"
        );
        assert!(parse_since("soon", now).unwrap_err().contains("90s"));
        assert!(parse_since("100000000d", now).is_err());
    }

    #[test]
    fn first_try_rework_and_durations_add_up() {
        let mut f = Facts::default();
        let base = t("2026-11-21T10:00:00Z");
        let secs = |s: i64| base + chrono::Duration::seconds(s);
        let merged =
            |dispatch_to_merge: i64, attempts: u32, reworks: u32, rt: &str| WorkOrderFacts {
                factory: Some("mp".into()),
                runtimes: BTreeSet::from([rt.to_string()]),
                first_dispatch: Some(base),
                attempts,
                reworks,
                merged_at: Some(secs(dispatch_to_merge)),
                closed: vec![secs(dispatch_to_merge)],
                ..Default::default()
            };
        f.work_orders
            .insert("mp-000001".into(), merged(10, 1, 0, "claude"));
        f.work_orders
            .insert("mp-000002".into(), merged(30, 2, 1, "claude"));
        f.work_orders
            .insert("mp-000003".into(), merged(20, 1, 0, "codex"));
        // Re-queued after a stuck kill: attempt 2 without a rework is not a first try.
        let mut kill = merged(40, 2, 0, "codex");
        kill.stuck_kills = 1;
        kill.nudges = 2;
        f.work_orders.insert("mp-000004".into(), kill);
        // Failed after two reworks; escalated once.
        f.work_orders.insert(
            "mp-000005".into(),
            WorkOrderFacts {
                factory: Some("mp".into()),
                runtimes: BTreeSet::from(["claude".into(), "codex".into()]),
                first_dispatch: Some(base),
                attempts: 3,
                reworks: 2,
                failed: vec![secs(50)],
                escalations: 1,
                ..Default::default()
            },
        );
        // Finished before the window: not counted.
        let mut old = merged(5, 1, 0, "claude");
        old.merged_at = Some(t("2026-11-01T00:00:00Z"));
        old.closed = vec![t("2026-11-01T00:00:00Z")];
        f.work_orders.insert("mp-000006".into(), old);
        // Another factory, filtered out below.
        let mut other = merged(5, 1, 0, "claude");
        other.factory = Some("np".into());
        f.work_orders.insert("np-000001".into(), other);
        for (i, passed) in [false, true, true, false].into_iter().enumerate() {
            f.gates.push(GateObs {
                at: secs(i as i64),
                factory: Some("mp".into()),
                work_order: "mp-000002".into(),
                gate: if i < 3 { "test" } else { "lint" }.into(),
                passed,
            });
        }
        f.escalations.push(EscalationObs {
            at: secs(50),
            factory: Some("mp".into()),
            work_order: Some("mp-000005".into()),
        });
        let r = report(
            &f,
            Some(t("2026-11-20T00:00:00Z")),
            t("2026-11-22T00:00:00Z"),
            Some("mp"),
            vec![],
        );
        let tot = &r.total;
        assert_eq!(tot.finished, 5);
        assert_eq!((tot.closed, tot.merged, tot.failed), (4, 4, 1));
        assert_eq!(tot.first_try, 2);
        assert_eq!(tot.first_try_rate, Some(0.5));
        assert_eq!(tot.rework_rounds, 3);
        assert_eq!(tot.rework_rounds_per_work_order, Some(0.6));
        assert_eq!(tot.dispatch_to_merge.count, 4);
        assert_eq!(tot.dispatch_to_merge.median_seconds, Some(25.0));
        assert_eq!(tot.dispatch_to_merge.p90_seconds, Some(40.0));
        assert_eq!((tot.nudges, tot.stuck_kills, tot.escalations), (2, 1, 1));
        assert_eq!(tot.stuck_kills_per_work_order, Some(0.2));
        assert_eq!(tot.escalations_per_work_order, Some(0.2));
        assert_eq!(
            tot.gates,
            vec![
                GateStats {
                    gate: "lint".into(),
                    runs: 1,
                    failed: 1,
                    failure_rate: Some(1.0)
                },
                GateStats {
                    gate: "test".into(),
                    runs: 3,
                    failed: 1,
                    failure_rate: Some(1.0 / 3.0)
                },
            ]
        );
        assert_eq!(r.by_factory.len(), 1);
        assert_eq!(r.by_factory[0].name.as_deref(), Some("mp"));
        let rt: BTreeMap<_, _> = r
            .by_runtime
            .iter()
            .map(|x| (x.name.clone().unwrap_or_default(), x))
            .collect();
        assert_eq!(rt["claude"].merged, 2);
        assert_eq!(rt["claude"].first_try_rate, Some(0.5));
        assert_eq!(rt["codex"].first_try, 1);
        assert_eq!(rt["mixed"].failed, 1);
        // The gates ran for a claude work order.
        assert_eq!(rt["claude"].gates.len(), 2);
        // No factory filter: the other factory's work order counts too.
        let all = report(
            &f,
            Some(t("2026-11-20T00:00:00Z")),
            t("2026-11-22T00:00:00Z"),
            None,
            vec![],
        );
        assert_eq!(all.total.finished, 6);
        assert_eq!(all.by_factory.len(), 2);
        // No window: the old one counts as well.
        let ever = report(&f, None, t("2026-11-22T00:00:00Z"), None, vec![]);
        assert_eq!(ever.total.merged, 6);
    }

    #[test]
    fn facts_come_from_the_events_of_every_store() {
        let dir = tempfile::tempdir().unwrap();
        let company = Store::init(&dir.path().join("c"), StoreOptions::default()).unwrap();
        let factory = Store::init(&dir.path().join("f"), StoreOptions::default()).unwrap();
        let e = |ty: &str, v: Value| NewEvent::new(ty, "x", &v).unwrap();
        company
            .append(vec![
                e(
                    types::WORK_ORDER_ASSIGNED,
                    serde_json::json!({"id":"hq-000001","assignee":"mp/workers/slot0","factory":"mp","slot":0,"incarnation":"inc-a","attempt":1,"branch":"vermas/hq-000001"}),
                ),
                e(
                    types::WORK_ORDER_STATUS_CHANGED,
                    serde_json::json!({"id":"hq-000001","from":"in_review","to":"rework"}),
                ),
                e(
                    types::WORK_ORDER_CLOSED,
                    serde_json::json!({"id":"hq-000001","from":"in_review","merge_commit":"abc"}),
                ),
                e(
                    types::MAIL_SENT,
                    serde_json::json!({"id":"msg-1","type":"ESCALATION","meta":{"agent":"mp/qa"}}),
                ),
            ])
            .unwrap();
        factory
            .append(vec![
                e(
                    types::SLOT_ALLOCATED,
                    serde_json::json!({"slot":0,"agent":"mp/workers/slot0","work_order":"hq-000001","runtime":"claude"}),
                ),
                e(
                    types::AGENT_NUDGED,
                    serde_json::json!({"agent":"mp/workers/slot0","reason":"idle"}),
                ),
                e(
                    types::AGENT_NUDGED,
                    serde_json::json!({"agent":"mp/workers/slot0","reason":"mail"}),
                ),
                e(
                    types::AGENT_STOPPED,
                    serde_json::json!({"agent":"mp/workers/slot0","work_order":"hq-000001","reason":"stuck: no activity for 15m"}),
                ),
                e(
                    types::SLOT_RELEASED,
                    serde_json::json!({"slot":0,"agent":"mp/workers/slot0","work_order":"hq-000001"}),
                ),
                // After the release: nobody's nudge.
                e(
                    types::AGENT_NUDGED,
                    serde_json::json!({"agent":"mp/workers/slot0","reason":"idle"}),
                ),
                e(
                    types::QA_GATE_RUN,
                    serde_json::json!({"work_order":"hq-000001","gate":"test","passed":false}),
                ),
            ])
            .unwrap();
        let (r, issues) = run(
            &[(company, None), (factory, Some("mp".to_string()))],
            None,
            None,
        )
        .unwrap();
        assert!(issues.is_empty());
        let tot = &r.total;
        assert_eq!((tot.merged, tot.rework_rounds, tot.first_try), (1, 1, 0));
        assert_eq!((tot.nudges, tot.stuck_kills, tot.escalations), (1, 1, 1));
        assert_eq!(tot.gates[0].failed, 1);
        assert_eq!(r.by_factory[0].name.as_deref(), Some("mp"));
        // The escalation about QA (no work order) is in a row of its own.
        assert_eq!(r.by_runtime.len(), 2);
        assert_eq!(r.by_runtime[0].name, None);
        assert_eq!(r.by_runtime[0].escalations, 1);
        assert_eq!(r.by_runtime[1].name.as_deref(), Some("claude"));
        assert_eq!(r.by_runtime[1].merged, 1);
        assert_eq!(r.stores.len(), 2);
    }
}
