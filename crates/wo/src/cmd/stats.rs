//! `wo stats`: counts by status, type and priority, and a quick store health summary. At a
//! company's root: the sums over every store of the company, and one line per store.

use crate::ctx::{self, Global, Part};
use crate::print;
use std::collections::BTreeMap;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::workorder::Status;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Counts and store health (at the company root: every store, and a line per store)",
    "wo stats",
    "# One factory's",
    "wo stats --factory myproject",
    "# The open count, for a script",
    "wo stats --json | jq .open",
))]
pub struct Args {
    /// Only this factory's store (at the company root every store is counted)
    #[arg(long, value_name = "NAME")]
    factory: Option<String>,
    /// Print the counts and the store health as JSON
    #[arg(long)]
    json: bool,
}

/// Counts of one store.
#[derive(Default)]
struct Counts {
    total: u64,
    open: u64,
    by_status: BTreeMap<String, u64>,
    by_type: BTreeMap<String, u64>,
    by_priority: BTreeMap<String, u64>,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.total += other.total;
        self.open += other.open;
        for (mine, theirs) in [
            (&mut self.by_status, &other.by_status),
            (&mut self.by_type, &other.by_type),
            (&mut self.by_priority, &other.by_priority),
        ] {
            for (k, v) in theirs {
                *mine.entry(k.clone()).or_default() += v;
            }
        }
    }
}

/// What `wo stats` says about one store.
struct StoreStats {
    counts: Counts,
    health: serde_json::Value,
    healthy: bool,
    last_seq: u64,
    log_files: usize,
    bytes: u64,
    problems: usize,
    quarantined: usize,
}

fn store_stats(p: &Part) -> Result<StoreStats> {
    let c = &p.ctx;
    let wos = ctx::work_orders(c)?;
    let mut counts = Counts {
        by_status: Status::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect(),
        ..Default::default()
    };
    let all = wos.state.all();
    for w in &all {
        counts.total += 1;
        if !w.status.is_done() {
            counts.open += 1;
        }
        *counts.by_status.entry(w.status.to_string()).or_default() += 1;
        *counts.by_type.entry(w.kind.to_string()).or_default() += 1;
        *counts
            .by_priority
            .entry(format!("P{}", w.priority))
            .or_default() += 1;
    }
    let files = c.store.log_files()?;
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();
    let quarantined = std::fs::read_dir(c.store.quarantine_dir())
        .map(|r| r.count())
        .unwrap_or(0);
    let healthy = wos.issues.is_empty() && quarantined == 0;
    let health = serde_json::json!({
        "path": c.store.dir(),
        "last_seq": wos.checkpoint.seq,
        "log_files": files.len(),
        "archived_files": files.iter().filter(|f| f.archived).count(),
        "log_bytes": bytes,
        "problems": wos.issues.len(),
        "quarantined_fragments": quarantined,
        "healthy": healthy,
    });
    Ok(StoreStats {
        counts,
        health,
        healthy,
        last_seq: wos.checkpoint.seq,
        log_files: files.len(),
        bytes,
        problems: wos.issues.len(),
        quarantined,
    })
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let view = g.view(a.factory.as_deref())?;
    let stats = view
        .parts
        .iter()
        .map(store_stats)
        .collect::<Result<Vec<StoreStats>>>()?;
    let mut sum = Counts::default();
    for s in &stats {
        sum.add(&s.counts);
    }
    if a.json {
        let mut v = serde_json::json!({
            "total": sum.total,
            "open": sum.open,
            "by_status": sum.by_status,
            "by_type": sum.by_type,
            "by_priority": sum.by_priority,
        });
        if view.across {
            // One entry per store: the factory (null for the company's own), its counts and
            // its health.
            let stores: Vec<serde_json::Value> = view
                .parts
                .iter()
                .zip(&stats)
                .map(|(p, s)| {
                    let mut h = s.health.clone();
                    h["factory"] = serde_json::json!(p.factory);
                    h["total"] = s.counts.total.into();
                    h["open"] = s.counts.open.into();
                    h["by_status"] = serde_json::json!(s.counts.by_status);
                    h
                })
                .collect();
            v["healthy"] = stats.iter().all(|s| s.healthy).into();
            v["stores"] = stores.into();
        } else if let Some(s) = stats.first() {
            v["store"] = s.health.clone();
        }
        print::json(&v)?;
        return Ok(ExitCode::SUCCESS);
    }
    let join = |m: &BTreeMap<String, u64>| {
        m.iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "Work orders: {} ({} open){}",
        sum.total,
        sum.open,
        if view.across {
            format!(" in {} stores", view.parts.len())
        } else {
            String::new()
        }
    );
    println!("  by status:   {}", join(&sum.by_status));
    println!("  by type:     {}", join(&sum.by_type));
    println!("  by priority: {}", join(&sum.by_priority));
    if view.across {
        let rows: Vec<Vec<String>> = view
            .parts
            .iter()
            .zip(&stats)
            .map(|(p, s)| {
                vec![
                    p.label().to_string(),
                    s.counts.total.to_string(),
                    s.counts.open.to_string(),
                    s.counts
                        .by_status
                        .get(Status::Failed.as_str())
                        .copied()
                        .unwrap_or(0)
                        .to_string(),
                    s.last_seq.to_string(),
                    s.bytes.div_ceil(1024).to_string(),
                    health_word(s).to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            vermas_core::text::table_painted(
                &[
                    "FACTORY",
                    "WORK ORDERS",
                    "OPEN",
                    "FAILED",
                    "EVENTS",
                    "KIB",
                    "HEALTH"
                ],
                &rows,
                vermas_cli::color::status_cells(&[6]),
            )
        );
        if stats.iter().any(|s| !s.healthy) {
            println!("Problems in a store: run `wo doctor` in its directory (or `co doctor`).");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(s), Some(p)) = (stats.first(), view.parts.first()) else {
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "Store: {} — {} events, {} log file(s), {} KiB",
        p.ctx.store.dir().display(),
        s.last_seq,
        s.log_files,
        s.bytes.div_ceil(1024)
    );
    if s.healthy {
        println!("  health: {}", vermas_cli::color::status("ok"));
    } else {
        println!(
            "  health: {} problem(s) in the log, {} quarantined fragment(s); run `wo doctor`",
            s.problems, s.quarantined
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn health_word(s: &StoreStats) -> &'static str {
    if s.healthy { "ok" } else { "problems" }
}
