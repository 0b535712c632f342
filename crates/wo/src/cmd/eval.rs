//! `wo eval report`: first-try merges, rework, dispatch-to-merge time, gate failures, nudges,
//! stuck kills and escalations, per factory and per runtime, from the events alone.

use crate::ctx::{self, Global};
use crate::print;
use std::process::ExitCode;
use vermas_core::eval::{self, Report, Row};
use vermas_core::store::Store;
use vermas_core::text::{escape_control, table};
use vermas_core::{Error, Result};

#[derive(clap::Subcommand)]
pub enum Command {
    #[command(after_help = vermas_cli::examples!(
        "# The weekly review",
        "wo eval report --since 7d",
        "wo eval report --since 2026-11-01 --factory myproject --json",
    ))]
    /// The report: every store of the company (or this store outside one)
    Report {
        /// Only work finished since: 90s, 15m, 1h, 7d, 2w, a date or a time (default: the
        /// whole log)
        #[arg(long, value_parser = parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only this factory
        #[arg(long)]
        factory: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

fn parse_since(s: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    eval::parse_since(s, chrono::Utc::now())
}

pub fn run(g: &Global, cmd: Command) -> Result<ExitCode> {
    let Command::Report {
        since,
        factory,
        json,
    } = cmd;
    let c = g.open()?;
    let stores: Vec<(Store, Option<String>)> = match &c.company_root {
        Some(root) => {
            let company = vermas_core::company::Company::open(root)?;
            if let Some(f) = &factory {
                // Not found (exit 3) names the factories there are.
                company.factory(f)?;
            }
            company
                .stores_for_reading()?
                .into_iter()
                .map(|s| {
                    let f = match vermas_core::context::classify(s.dir()).0 {
                        vermas_core::context::StoreKind::Factory(f) => Some(f),
                        _ => None,
                    };
                    (s, f)
                })
                .collect()
        }
        None => {
            if factory.is_some() {
                return Err(Error::usage(
                    "--factory needs a company; this store is a standalone one (wo init)",
                ));
            }
            vec![(c.store, None)]
        }
    };
    let (r, issues) = eval::run(&stores, since, factory.as_deref())?;
    ctx::warn_issues(&issues);
    if json {
        print::json(&r)?;
    } else {
        print_report(&r);
    }
    Ok(ExitCode::SUCCESS)
}

/// `42.0s`, `3m07s`, `2h05m`, `3d04h`.
fn duration(secs: Option<f64>) -> String {
    let Some(s) = secs else {
        return "-".into();
    };
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let s = s.round() as u64;
    match s {
        0..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn per(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.2}"))
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

fn row(name: &str, r: &Row) -> Vec<String> {
    vec![
        name.to_string(),
        r.finished.to_string(),
        r.merged.to_string(),
        (r.closed - r.merged).to_string(),
        r.failed.to_string(),
        format!("{}/{} {}", r.first_try, r.merged, pct(r.first_try_rate)),
        format!(
            "{} ({})",
            r.rework_rounds,
            per(r.rework_rounds_per_work_order)
        ),
        duration(r.dispatch_to_merge.median_seconds),
        duration(r.dispatch_to_merge.p90_seconds),
        per(r.nudges_per_work_order),
        per(r.stuck_kills_per_work_order),
        r.escalations.to_string(),
    ]
}

const HEADER: [&str; 12] = [
    "",
    "FINISHED",
    "MERGED",
    "CLOSED",
    "FAILED",
    "FIRST TRY",
    "REWORK (/WO)",
    "MERGE P50",
    "MERGE P90",
    "NUDGES/WO",
    "STUCK/WO",
    "ESCALATIONS",
];

fn group(title: &str, rows: &[Row], total: &Row) {
    let mut header = HEADER;
    header[0] = title;
    let mut out: Vec<Vec<String>> = rows
        .iter()
        .map(|r| row(&escape_control(r.name.as_deref().unwrap_or("-")), r))
        .collect();
    out.push(row("(all)", total));
    print!("{}", table(&header, &out));
}

fn print_report(r: &Report) {
    println!(
        "Work finished {} to {}{}, from {} store(s)",
        match &r.since {
            Some(s) => format!("from {s}"),
            None => "from the start of the log".to_string(),
        },
        r.until,
        r.factory
            .as_deref()
            .map(|f| format!(", factory {f}"))
            .unwrap_or_default(),
        r.stores.len()
    );
    println!(
        "MERGED by QA; CLOSED otherwise; FIRST TRY: merged at attempt 1 without rework; MERGE P50/P90: first dispatch to merge"
    );
    println!();
    group("FACTORY", &r.by_factory, &r.total);
    println!();
    group("RUNTIME", &r.by_runtime, &r.total);
    let mut gates = Vec::new();
    for f in &r.by_factory {
        for g in &f.gates {
            gates.push(vec![
                escape_control(f.name.as_deref().unwrap_or("-")),
                escape_control(&g.gate),
                g.runs.to_string(),
                g.failed.to_string(),
                pct(g.failure_rate),
            ]);
        }
    }
    println!();
    if gates.is_empty() {
        println!("No gate ran in this window.");
    } else {
        print!(
            "{}",
            table(
                &["FACTORY", "GATE", "RUNS", "FAILED", "FAILURE RATE"],
                &gates
            )
        );
    }
}
