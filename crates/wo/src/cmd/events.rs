//! `wo events list | tail | replay | stats | archive`. At a company's root `list`, `tail`,
//! `stats` and `archive` cover every store of the company: human lines start with the store's
//! factory, JSON lines of a factory's events carry `"factory"` (as in the company feed), and
//! the stores' events are merged by time, each store's in its own order.

use crate::ctx::{self, Global, Part, View};
use crate::print;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use vermas_core::event::{self, EventRef};
use vermas_core::store::{Checkpoint, LineInfo, Projection};
use vermas_core::text::escape_control;
use vermas_core::workorder::WorkOrders;
use vermas_core::{Error, Result};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Events, oldest first, filtered
    #[command(after_help = vermas_cli::examples!(
        "# What happened in the last hour (at the company root: in every store)",
        "wo events list --since 1h",
        "# Every status change of one factory, as stored",
        "wo events list --factory myproject --type 'work_order.status*' --jsonl",
        "# The 20 most recent events by one agent",
        "wo events list --actor myproject/qa --limit 20",
    ))]
    List {
        /// Event type glob: work_order.*, *.closed
        #[arg(long = "type", value_name = "GLOB")]
        kind: Option<String>,
        /// Only events recorded by this actor (human, ceo, myproject/workers/slot0, …)
        #[arg(long)]
        actor: Option<String>,
        /// Only events since: 90s, 15m, 1h, 7d, 2w back from now, or a date (2026-11-20, 2026-11-20T12:00:00Z)
        #[arg(long, value_name = "WHEN", value_parser = super::parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only the most recent N matching events
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Only this factory's events (at the company root every store is read)
        #[arg(long, value_name = "NAME")]
        factory: Option<String>,
        /// A JSON array
        #[arg(long, conflicts_with = "jsonl")]
        json: bool,
        /// One event per line, exactly as stored
        #[arg(long)]
        jsonl: bool,
    },
    /// The last N events, then new ones as they are written
    #[command(after_help = vermas_cli::examples!(
        "# Follow everything (at the company root: every store)",
        "wo events tail",
        "# Follow one factory as JSON lines, through jq",
        "wo events tail --factory myproject --jsonl | jq -c '{t: .event_type, a: .actor}'",
    ))]
    Tail {
        /// How many recent events to show before following
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
        n: usize,
        /// Only this factory's events (at the company root every store is followed)
        #[arg(long, value_name = "NAME")]
        factory: Option<String>,
        /// One event per line, exactly as stored
        #[arg(long)]
        jsonl: bool,
    },
    /// Every event of one work order, with its status after each
    #[command(after_help = vermas_cli::examples!(
        "wo events replay mp-k3x9q2",
        "wo events replay mp-k3x9q2 --json | jq '.[].status_after'",
    ))]
    Replay {
        /// The work order id (its prefix names the store that holds it)
        #[arg(value_parser = super::parse_id)]
        id: String,
        /// Print the events and statuses as JSON
        #[arg(long)]
        json: bool,
    },
    /// Event volume by type and actor
    #[command(after_help = vermas_cli::examples!(
        "# Event volume in the last hour (at the company root: every store, by factory too)",
        "wo events stats --since 1h",
        "wo events stats --since 7d --json",
    ))]
    Stats {
        /// Only events since: 90s, 15m, 1h, 7d, 2w back from now, or a date (2026-11-20, 2026-11-20T12:00:00Z)
        #[arg(long, value_name = "WHEN", value_parser = super::parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only this factory's events (at the company root every store is counted)
        #[arg(long, value_name = "NAME")]
        factory: Option<String>,
        /// Print the counts as JSON
        #[arg(long)]
        json: bool,
    },
    /// Move whole day partitions older than this into .work/events/archive/ (never deletes)
    #[command(after_help = vermas_cli::examples!(
        "# The weekly clean-up (at the company root: every store)",
        "wo events archive --older-than 7d",
        "wo events archive --older-than 30d --factory myproject",
    ))]
    Archive {
        /// How old a day partition must be: 90s, 15m, 1h, 7d or 2w (a number needs its unit)
        #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
        older_than: chrono::Duration,
        /// Only this factory's store (at the company root every store is archived)
        #[arg(long, value_name = "NAME")]
        factory: Option<String>,
        /// Print what was moved as JSON
        #[arg(long)]
        json: bool,
    },
}

fn human(ev: &EventRef<'_>) -> String {
    format!(
        "#{:<6} {}  {:<26} {:<24} {}",
        ev.seq,
        escape_control(&ev.timestamp),
        escape_control(&ev.event_type),
        escape_control(&ev.actor),
        event::summary(ev.data)
    )
}

fn io(e: std::io::Error) -> Error {
    Error::failure(format!("writing output: {e}"))
}

/// One picked event: its time (to merge stores by) and the line to print.
struct Picked {
    timestamp: String,
    line: Vec<u8>,
}

/// The events of several stores in one stream: by time, each store's events kept in their
/// own order (a store whose clock stepped back is not reordered), ties to the earlier store.
fn merge(mut per_store: Vec<Vec<Picked>>) -> Vec<Picked> {
    if per_store.len() == 1 {
        return per_store.pop().unwrap_or_default();
    }
    let total = per_store.iter().map(Vec::len).sum();
    let mut next = vec![0usize; per_store.len()];
    let mut order = Vec::with_capacity(total);
    for _ in 0..total {
        let mut best: Option<usize> = None;
        for (s, list) in per_store.iter().enumerate() {
            let Some(p) = list.get(next[s]) else { continue };
            if best.is_none_or(|b| p.timestamp < per_store[b][next[b]].timestamp) {
                best = Some(s);
            }
        }
        let Some(b) = best else { break };
        order.push((b, next[b]));
        next[b] += 1;
    }
    let mut taken: Vec<std::vec::IntoIter<Picked>> =
        per_store.into_iter().map(Vec::into_iter).collect();
    order
        .into_iter()
        .filter_map(|(s, _)| taken[s].next())
        .collect()
}

/// A line as printed from store `p` of a view: human lines start with the factory column,
/// JSON lines of a factory get `"factory"` (only in a view across stores).
fn shown_line(
    view: &View,
    p: &Part,
    width: usize,
    human_line: Option<String>,
    raw: &[u8],
) -> Vec<u8> {
    match human_line {
        Some(h) if view.across => format!("{:<width$} {h}", p.label()).into_bytes(),
        Some(h) => h.into_bytes(),
        None => match (&p.factory, view.across) {
            (Some(f), true) => {
                let mut l = vermas_core::store::tag_lines(raw, f);
                l.pop();
                l
            }
            _ => raw.to_vec(),
        },
    }
}

/// How wide the factory column of a view is.
fn label_width(view: &View) -> usize {
    view.parts
        .iter()
        .map(|p| p.label().chars().count())
        .max()
        .unwrap_or(0)
}

pub fn run(g: &Global, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::List {
            kind,
            actor,
            since,
            limit,
            factory,
            json,
            jsonl,
        } => {
            let view = g.view(factory.as_deref())?;
            let width = label_width(&view);
            let mut per_store = Vec::new();
            for p in &view.parts {
                let mut picked: Vec<Picked> = Vec::new();
                let mut visit = |ev: &EventRef<'_>, info: &LineInfo<'_>| {
                    if kind
                        .as_deref()
                        .is_some_and(|k| !event::type_matches(k, &ev.event_type))
                        || actor.as_deref().is_some_and(|a| a != ev.actor)
                        || since.is_some_and(|s| {
                            vermas_core::clock::parse_timestamp(&ev.timestamp).is_none_or(|t| t < s)
                        })
                    {
                        return Ok(());
                    }
                    let human_line = (!(json || jsonl)).then(|| human(ev));
                    picked.push(Picked {
                        timestamp: ev.timestamp.to_string(),
                        line: shown_line(&view, p, width, human_line, info.raw),
                    });
                    if let Some(n) = limit
                        && picked.len() > n.saturating_mul(2).max(1024)
                    {
                        let cut = picked.len() - n;
                        picked.drain(..cut);
                    }
                    Ok(())
                };
                let out = p
                    .ctx
                    .store
                    .scan(
                        &Checkpoint::default(),
                        since.map(|s| s.date_naive()),
                        &mut visit,
                    )?
                    .map_err(|m| Error::failure(m.0))?;
                ctx::warn_issues(&out.issues);
                if let Some(n) = limit {
                    let cut = picked.len().saturating_sub(n);
                    picked.drain(..cut);
                }
                per_store.push(picked);
            }
            let mut picked = merge(per_store);
            if let Some(n) = limit {
                let cut = picked.len().saturating_sub(n);
                picked.drain(..cut);
            }
            if json {
                let lines: Vec<&[u8]> = picked.iter().map(|p| p.line.as_slice()).collect();
                super::list::write_json_lines(&lines)?;
            } else {
                let stdout = std::io::stdout();
                let mut o = std::io::BufWriter::new(stdout.lock());
                for p in &picked {
                    o.write_all(&p.line).map_err(io)?;
                    o.write_all(b"\n").map_err(io)?;
                }
                o.flush().map_err(io)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail { n, factory, jsonl } => {
            let view = g.view(factory.as_deref())?;
            tail(view, n, jsonl)
        }
        Command::Replay { id, json } => {
            let c = ctx::open_for(g, &id)?;
            let wos = ctx::work_orders(&c)?;
            let wo = vermas_core::workorder::require(&wos.state, &id)?;
            let history = vermas_core::workorder::history(&c.store, &wo)?;
            let mut state = WorkOrders::default();
            let mut steps = Vec::new();
            for e in &history {
                let r = e.as_ref();
                let applied = if WorkOrders::wants(&r.event_type) {
                    state.apply(&r)
                } else {
                    Ok(())
                };
                let status = state.get(&id).map(|w| w.status.to_string());
                steps.push((e, status, applied.err()));
            }
            if json {
                let v: Vec<_> = steps
                    .iter()
                    .map(|(e, s, err)| serde_json::json!({ "event": e, "status_after": s, "problem": err }))
                    .collect();
                print::json(&v)?;
            } else {
                for (e, s, err) in &steps {
                    println!(
                        "{}  → {}{}",
                        human(&e.as_ref()),
                        s.as_deref().unwrap_or("-"),
                        err.as_ref().map(|x| format!("  [{x}]")).unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats {
            since,
            factory,
            json,
        } => {
            let view = g.view(factory.as_deref())?;
            let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
            let mut by_actor: BTreeMap<String, u64> = BTreeMap::new();
            let mut by_factory: BTreeMap<String, u64> = BTreeMap::new();
            let (mut first, mut last): (Option<String>, Option<String>) = (None, None);
            let mut total = 0u64;
            let mut unreadable = 0usize;
            for p in &view.parts {
                let mut here = 0u64;
                let mut visit = |ev: &EventRef<'_>, _: &LineInfo<'_>| {
                    if since.is_some_and(|s| {
                        vermas_core::clock::parse_timestamp(&ev.timestamp).is_none_or(|t| t < s)
                    }) {
                        return Ok(());
                    }
                    here += 1;
                    *by_type.entry(ev.event_type.to_string()).or_default() += 1;
                    *by_actor.entry(ev.actor.to_string()).or_default() += 1;
                    if first.as_deref().is_none_or(|f| *ev.timestamp < *f) {
                        first = Some(ev.timestamp.to_string());
                    }
                    if last.as_deref().is_none_or(|l| *ev.timestamp > *l) {
                        last = Some(ev.timestamp.to_string());
                    }
                    Ok(())
                };
                let out = p
                    .ctx
                    .store
                    .scan(
                        &Checkpoint::default(),
                        since.map(|s| s.date_naive()),
                        &mut visit,
                    )?
                    .map_err(|m| Error::failure(m.0))?;
                unreadable += out.issues.len();
                total += here;
                by_factory.insert(p.label().to_string(), here);
            }
            let span_hours = match (&first, &last) {
                (Some(a), Some(b)) => match (
                    vermas_core::clock::parse_timestamp(a),
                    vermas_core::clock::parse_timestamp(b),
                ) {
                    (Some(a), Some(b)) => ((b - a).num_seconds() as f64 / 3600.0).max(1.0 / 60.0),
                    _ => 1.0,
                },
                _ => 1.0,
            };
            let per_hour = total as f64 / span_hours;
            if json {
                let mut v = serde_json::json!({
                    "events": total,
                    "since": since.map(vermas_core::clock::format_timestamp),
                    "first": first,
                    "last": last,
                    "per_hour": (per_hour * 10.0).round() / 10.0,
                    "by_type": by_type,
                    "by_actor": by_actor,
                    "unreadable_lines": unreadable,
                });
                if view.across {
                    v["by_factory"] = serde_json::json!(by_factory);
                }
                print::json(&v)?;
            } else {
                let window = since
                    .map(|s| format!(" since {}", vermas_core::clock::format_timestamp(s)))
                    .unwrap_or_default();
                println!("{total} events{window} ({per_hour:.1}/hour)");
                if let (Some(f), Some(l)) = (&first, &last) {
                    println!("  first {}, last {}", escape_control(f), escape_control(l));
                }
                if view.across {
                    println!("  by factory:");
                    for (k, v) in &by_factory {
                        println!("    {v:>8}  {k}");
                    }
                }
                println!("  by type:");
                for (k, v) in &by_type {
                    println!("    {v:>8}  {}", escape_control(k));
                }
                println!("  by actor:");
                for (k, v) in &by_actor {
                    println!("    {v:>8}  {}", escape_control(k));
                }
                if unreadable > 0 {
                    println!("  unreadable or inconsistent lines: {unreadable}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Archive {
            older_than,
            factory,
            json,
        } => {
            let view = g.view(factory.as_deref())?;
            let cutoff = chrono::Utc::now()
                .checked_sub_signed(older_than)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "--older-than {}d is too far back",
                        older_than.num_days()
                    ))
                })?
                .date_naive();
            let mut report = Vec::new();
            for p in &view.parts {
                let c = &p.ctx;
                let whose = if view.across {
                    format!("{}: ", p.label())
                } else {
                    String::new()
                };
                if !c.store.partition_by_day() && c.store.live_partitions()?.is_empty() {
                    if !json {
                        eprintln!(
                            "{whose}Nothing to archive: the log is one file ([events] partition_by_day = false)."
                        );
                    }
                    report.push(serde_json::json!({ "factory": p.factory, "archived": [] }));
                    continue;
                }
                let moved = c.store.archive_before(cutoff)?;
                if json {
                    report.push(serde_json::json!({ "factory": p.factory, "archived": moved }));
                    continue;
                }
                if moved.is_empty() {
                    eprintln!(
                        "{whose}Nothing to archive: no partition is older than {cutoff} (the newest partition always stays live)."
                    );
                }
                for m in moved {
                    println!("{whose}Archived {m} → .work/events/archive/{m}.jsonl");
                }
            }
            if json {
                print::json(&serde_json::json!({
                    "before": cutoff.to_string(),
                    "stores": report,
                }))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `wo events tail`: the last `n` events of the view's stores, then each new one as it is
/// written. One follower thread per store; this thread prints, so lines never interleave.
fn tail(view: View, n: usize, jsonl: bool) -> Result<ExitCode> {
    let width = label_width(&view);
    let line = move |view: &View, p: &Part, ev: &EventRef<'_>, raw: Option<&[u8]>| -> Vec<u8> {
        if jsonl {
            let owned;
            let raw = match raw {
                Some(r) => r,
                None => {
                    owned = serde_json::to_vec(&ev.to_owned_event()).unwrap_or_default();
                    &owned
                }
            };
            shown_line(view, p, width, None, raw)
        } else {
            shown_line(view, p, width, Some(human(ev)), b"")
        }
    };
    let print = |l: &[u8]| -> bool {
        let stdout = std::io::stdout();
        let mut o = stdout.lock();
        // A closed pipe (`| head`) ends the command quietly.
        o.write_all(l)
            .and_then(|_| o.write_all(b"\n"))
            .and_then(|_| o.flush())
            .is_ok()
    };
    let mut per_store = Vec::new();
    let mut starts = Vec::new();
    for p in &view.parts {
        let (last, at) = p.ctx.store.tail(n)?;
        per_store.push(
            last.iter()
                .map(|ev| Picked {
                    timestamp: ev.timestamp.clone(),
                    line: line(&view, p, &ev.as_ref(), None),
                })
                .collect(),
        );
        starts.push(at);
    }
    let recent = merge(per_store);
    for p in &recent[recent.len().saturating_sub(n)..] {
        if !print(&p.line) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    if view.parts.len() == 1 {
        let (Some(p), Some(at)) = (view.parts.first(), starts.pop()) else {
            return Ok(ExitCode::SUCCESS);
        };
        p.ctx.store.follow(at, &mut |ev, info| {
            print(&line(&view, p, ev, Some(info.raw)))
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    // Several stores: each followed on its own thread, the lines sent here to print.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let view = std::sync::Arc::new(view);
    for (i, at) in starts.into_iter().enumerate() {
        let tx = tx.clone();
        let v = std::sync::Arc::clone(&view);
        let spawned = std::thread::Builder::new()
            .name(format!("tail-{i}"))
            .spawn(move || {
                let p = &v.parts[i];
                let _ = p.ctx.store.follow(at, &mut |ev, info| {
                    tx.send(line(&v, p, ev, Some(info.raw))).is_ok()
                });
            });
        if let Err(e) = spawned {
            return Err(Error::failure(format!("cannot follow a store: {e}")));
        }
    }
    drop(tx);
    for l in rx {
        if !print(&l) {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
