//! `wo events list | tail | replay | stats | archive`.

use crate::ctx::{self, Global};
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
    List {
        /// Event type glob: work_order.*, *.closed
        #[arg(long = "type", value_name = "GLOB")]
        kind: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        /// 1h, 7d, 2026-11-20 or an RFC 3339 time
        #[arg(long, value_parser = super::parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only the most recent N matching events
        #[arg(long)]
        limit: Option<usize>,
        /// A JSON array
        #[arg(long, conflicts_with = "jsonl")]
        json: bool,
        /// One event per line, exactly as stored
        #[arg(long)]
        jsonl: bool,
    },
    /// The last N events, then new ones as they are written
    Tail {
        #[arg(short = 'n', long = "lines", default_value_t = 10)]
        n: usize,
        /// One event per line, exactly as stored
        #[arg(long)]
        jsonl: bool,
    },
    /// Every event of one work order, with its status after each
    Replay {
        #[arg(value_parser = super::parse_id)]
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Event volume by type and actor
    Stats {
        #[arg(long, value_parser = super::parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long)]
        json: bool,
    },
    /// Move whole day partitions older than this into .work/events/archive/ (never deletes)
    Archive {
        #[arg(long, value_parser = super::parse_duration)]
        older_than: chrono::Duration,
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

pub fn run(g: &Global, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::List {
            kind,
            actor,
            since,
            limit,
            json,
            jsonl,
        } => {
            let c = g.open()?;
            let mut picked: Vec<Vec<u8>> = Vec::new();
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
                let line = if json || jsonl {
                    info.raw.to_vec()
                } else {
                    human(ev).into_bytes()
                };
                picked.push(line);
                if let Some(n) = limit
                    && picked.len() > n.saturating_mul(2).max(1024)
                {
                    let cut = picked.len() - n;
                    picked.drain(..cut);
                }
                Ok(())
            };
            let out = c
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
            if json {
                let lines: Vec<&[u8]> = picked.iter().map(Vec::as_slice).collect();
                super::list::write_json_lines(&lines)?;
            } else {
                let stdout = std::io::stdout();
                let mut o = std::io::BufWriter::new(stdout.lock());
                for l in &picked {
                    o.write_all(l).map_err(io)?;
                    o.write_all(b"\n").map_err(io)?;
                }
                o.flush().map_err(io)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail { n, jsonl } => {
            let c = g.open()?;
            let (last, at) = c.store.tail(n)?;
            let print_line = |ev: &EventRef<'_>, raw: Option<&[u8]>| -> bool {
                let stdout = std::io::stdout();
                let mut o = stdout.lock();
                let r = if jsonl {
                    match raw {
                        Some(r) => o.write_all(r).and_then(|_| o.write_all(b"\n")),
                        None => serde_json::to_writer(&mut o, &ev.to_owned_event())
                            .map_err(std::io::Error::other)
                            .and_then(|_| o.write_all(b"\n")),
                    }
                } else {
                    writeln!(o, "{}", human(ev))
                };
                // A closed pipe (`| head`) ends the command quietly.
                r.and_then(|_| o.flush()).is_ok()
            };
            for ev in &last {
                if !print_line(&ev.as_ref(), None) {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            c.store
                .follow(at, &mut |ev, info| print_line(ev, Some(info.raw)))?;
            Ok(ExitCode::SUCCESS)
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
        Command::Stats { since, json } => {
            let c = g.open()?;
            let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
            let mut by_actor: BTreeMap<String, u64> = BTreeMap::new();
            let (mut first, mut last): (Option<String>, Option<String>) = (None, None);
            let mut total = 0u64;
            let mut visit = |ev: &EventRef<'_>, _: &LineInfo<'_>| {
                if since.is_some_and(|s| {
                    vermas_core::clock::parse_timestamp(&ev.timestamp).is_none_or(|t| t < s)
                }) {
                    return Ok(());
                }
                total += 1;
                *by_type.entry(ev.event_type.to_string()).or_default() += 1;
                *by_actor.entry(ev.actor.to_string()).or_default() += 1;
                if first.is_none() {
                    first = Some(ev.timestamp.to_string());
                }
                last = Some(ev.timestamp.to_string());
                Ok(())
            };
            let out = c
                .store
                .scan(
                    &Checkpoint::default(),
                    since.map(|s| s.date_naive()),
                    &mut visit,
                )?
                .map_err(|m| Error::failure(m.0))?;
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
                print::json(&serde_json::json!({
                    "events": total,
                    "since": since.map(vermas_core::clock::format_timestamp),
                    "first": first,
                    "last": last,
                    "per_hour": (per_hour * 10.0).round() / 10.0,
                    "by_type": by_type,
                    "by_actor": by_actor,
                    "unreadable_lines": out.issues.len(),
                }))?;
            } else {
                let window = since
                    .map(|s| format!(" since {}", vermas_core::clock::format_timestamp(s)))
                    .unwrap_or_default();
                println!("{total} events{window} ({per_hour:.1}/hour)");
                if let (Some(f), Some(l)) = (&first, &last) {
                    println!("  first {}, last {}", escape_control(f), escape_control(l));
                }
                println!("  by type:");
                for (k, v) in &by_type {
                    println!("    {v:>8}  {}", escape_control(k));
                }
                println!("  by actor:");
                for (k, v) in &by_actor {
                    println!("    {v:>8}  {}", escape_control(k));
                }
                if !out.issues.is_empty() {
                    println!("  unreadable or inconsistent lines: {}", out.issues.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Archive { older_than } => {
            let c = g.open()?;
            if !c.store.partition_by_day() && c.store.live_partitions()?.is_empty() {
                eprintln!(
                    "Nothing to archive: the log is one file ([events] partition_by_day = false)."
                );
                return Ok(ExitCode::SUCCESS);
            }
            let cutoff = chrono::Utc::now()
                .checked_sub_signed(older_than)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "--older-than {}d is too far back",
                        older_than.num_days()
                    ))
                })?
                .date_naive();
            let moved = c.store.archive_before(cutoff)?;
            if moved.is_empty() {
                eprintln!(
                    "Nothing to archive: no partition is older than {cutoff} (the newest partition always stays live)."
                );
            }
            for m in moved {
                println!("Archived {m} → .work/events/archive/{m}.jsonl");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
