//! `wo stats`: counts by status, type and priority, and a quick store health summary.

use crate::ctx::{self, Global};
use crate::print;
use std::collections::BTreeMap;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::workorder::Status;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let c = g.open()?;
    let wos = ctx::work_orders(&c)?;
    let mut by_status: BTreeMap<String, u64> = Status::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_priority: BTreeMap<String, u64> = BTreeMap::new();
    let all = wos.state.all();
    for w in &all {
        *by_status.entry(w.status.to_string()).or_default() += 1;
        *by_type.entry(w.kind.to_string()).or_default() += 1;
        *by_priority.entry(format!("P{}", w.priority)).or_default() += 1;
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
    if a.json {
        print::json(&serde_json::json!({
            "total": all.len(),
            "open": all.iter().filter(|w| !w.status.is_done()).count(),
            "by_status": by_status,
            "by_type": by_type,
            "by_priority": by_priority,
            "store": {
                "path": c.store.dir(),
                "last_seq": wos.checkpoint.seq,
                "log_files": files.len(),
                "archived_files": files.iter().filter(|f| f.archived).count(),
                "log_bytes": bytes,
                "problems": wos.issues.len(),
                "quarantined_fragments": quarantined,
                "healthy": healthy,
            }
        }))?;
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
        "Work orders: {} ({} open)",
        all.len(),
        all.iter().filter(|w| !w.status.is_done()).count()
    );
    println!("  by status:   {}", join(&by_status));
    println!("  by type:     {}", join(&by_type));
    println!("  by priority: {}", join(&by_priority));
    println!(
        "Store: {} — {} events, {} log file(s), {} KiB",
        c.store.dir().display(),
        wos.checkpoint.seq,
        files.len(),
        bytes.div_ceil(1024)
    );
    if healthy {
        println!("  health: ok");
    } else {
        println!(
            "  health: {} problem(s) in the log, {} quarantined fragment(s); run `wo doctor`",
            wos.issues.len(),
            quarantined
        );
    }
    Ok(ExitCode::SUCCESS)
}
