//! `wo list`: open work by default, sorted by priority then age.

use crate::ctx::{self, Global};
use crate::print;
use std::io::Write;
use std::process::ExitCode;
use vermas_core::clock::parse_timestamp;
use vermas_core::workorder::{Status, WoType, WorkOrder};
use vermas_core::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Only these statuses (comma-separated or repeated)
    #[arg(long, value_parser = super::parse_status, value_delimiter = ',')]
    status: Vec<Status>,
    /// Only these types
    #[arg(long = "type", value_name = "TYPE", value_parser = super::parse_type, value_delimiter = ',')]
    kind: Vec<WoType>,
    /// Only this priority (0-4)
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=4))]
    priority: Option<u8>,
    /// Only work assigned to this agent
    #[arg(long)]
    assignee: Option<String>,
    /// Only work carrying this label (repeat: all of them)
    #[arg(long)]
    label: Vec<String>,
    /// Only work created longer ago than this (30d, 12h)
    #[arg(long, value_parser = super::parse_duration)]
    older_than: Option<chrono::Duration>,
    /// Include closed and cancelled work
    #[arg(long)]
    all: bool,
    /// JSON array, one record per line
    #[arg(long)]
    json: bool,
}

impl Args {
    fn keep(&self, w: &WorkOrder, now: chrono::DateTime<chrono::Utc>) -> bool {
        if self.status.is_empty() {
            if !self.all && w.status.is_done() {
                return false;
            }
        } else if !self.status.contains(&w.status) {
            return false;
        }
        if !self.kind.is_empty() && !self.kind.contains(&w.kind) {
            return false;
        }
        if self.priority.is_some_and(|p| p != w.priority) {
            return false;
        }
        if let Some(a) = &self.assignee
            && w.assignee.as_ref() != Some(a)
        {
            return false;
        }
        if !self.label.iter().all(|l| w.labels.contains(l)) {
            return false;
        }
        if let Some(d) = self.older_than {
            match parse_timestamp(&w.created_at) {
                Some(t) if now - t > d => {}
                _ => return false,
            }
        }
        true
    }
}

/// Writes `[` + lines + `]` with one compact record per line.
pub fn write_json_lines(lines: &[&[u8]]) -> Result<()> {
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out.lock());
    let io = |e: std::io::Error| Error::failure(format!("writing output: {e}"));
    out.write_all(b"[").map_err(io)?;
    for (i, l) in lines.iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })
            .map_err(io)?;
        out.write_all(l).map_err(io)?;
    }
    out.write_all(if lines.is_empty() { b"]\n" } else { b"\n]\n" })
        .map_err(io)?;
    out.flush().map_err(io)
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let c = g.open()?;
    let wos = ctx::work_orders(&c)?;
    let now = chrono::Utc::now();
    let mut kept: Vec<(u8, String, Vec<u8>, Option<WorkOrder>)> = Vec::new();
    wos.state.for_each_json(|raw, w| {
        if a.keep(w, now) {
            kept.push((
                w.priority,
                w.created_at.clone(),
                raw.to_vec(),
                (!a.json).then(|| w.clone()),
            ));
        }
    });
    kept.sort_by(|x, y| x.0.cmp(&y.0).then_with(|| x.1.cmp(&y.1)));
    if a.json {
        let lines: Vec<&[u8]> = kept.iter().map(|k| k.2.as_slice()).collect();
        write_json_lines(&lines)?;
    } else if kept.is_empty() {
        eprintln!("No work orders match.");
    } else {
        let list: Vec<WorkOrder> = kept.into_iter().filter_map(|k| k.3).collect();
        print!("{}", print::work_order_table(&list));
    }
    Ok(ExitCode::SUCCESS)
}
