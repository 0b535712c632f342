//! `wo show`: the record, its dependencies, children and recent history.

use crate::ctx::{self, Global};
use crate::print::{self, Related};
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::event::Event;
use vermas_core::text::{escape_control, escape_control_multiline};
use vermas_core::workorder::{self, WorkOrder};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "wo show mp-k3x9q2",
    "# With its whole recent history",
    "wo show mp-k3x9q2 --history 100",
    "wo show mp-k3x9q2 --json | jq -r .status",
))]
pub struct Args {
    /// The work order id (its prefix names the store that holds it)
    #[arg(value_parser = super::parse_id)]
    id: String,
    /// How many recent events to show
    #[arg(long, value_name = "N", default_value_t = 20)]
    history: usize,
    /// Print the record, its relations and history as JSON
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    work_order: &'a WorkOrder,
    blockers: Vec<Related>,
    blocks: Vec<Related>,
    children_list: Vec<Related>,
    history: &'a [Event],
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let c = ctx::open_for(g, &a.id)?;
    // Point look-ups in the index: what this costs follows the work order, not the store.
    let wos = ctx::lookup(&c)?;
    let wo = workorder::require(&wos, &a.id)?;
    let related = |ids: &[String]| -> Result<Vec<Related>> {
        ids.iter().map(|d| Related::of(&wos, d)).collect()
    };
    let blockers = related(&wo.depends_on)?;
    let blocks = related(&wos.dependents(&wo.id)?)?;
    let children = related(&wos.children(&wo.id)?)?;
    let history = wos.history(&c.store, &wo, a.history)?;
    if a.json {
        return print::json(&Shown {
            work_order: &wo,
            blockers,
            blocks,
            children_list: children,
            history: &history,
        })
        .map(|_| ExitCode::SUCCESS);
    }
    let dash = |o: &Option<String>| {
        o.as_deref()
            .map(escape_control)
            .unwrap_or_else(|| "-".into())
    };
    println!("{}  {}", wo.id, escape_control(&wo.title));
    println!(
        "  status:     {}",
        vermas_cli::color::status(wo.status.as_str())
    );
    println!("  type:       {}    priority: P{}", wo.kind, wo.priority);
    if !wo.labels.is_empty() {
        println!(
            "  labels:     {}",
            wo.labels
                .iter()
                .map(|l| escape_control(l))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("  assignee:   {}", dash(&wo.assignee));
    if wo.factory.is_some() || wo.attempts > 0 {
        println!(
            "  factory:    {}    attempts: {}",
            dash(&wo.factory),
            wo.attempts
        );
    }
    if let Some(b) = &wo.branch {
        println!("  branch:     {}", escape_control(b));
    }
    if let Some(p) = &wo.parent {
        println!("  parent:     {}", Related::of(&wos, p)?.line());
    }
    println!(
        "  created:    {} by {}",
        escape_control(&wo.created_at),
        escape_control(&wo.created_by)
    );
    println!("  updated:    {}", escape_control(&wo.updated_at));
    if let Some(t) = &wo.closed_at {
        println!(
            "  closed:     {} ({})",
            escape_control(t),
            dash(&wo.close_reason)
        );
    }
    if let Some(m) = &wo.merge_commit {
        println!("  merged as:  {}", escape_control(m));
    }
    if let Some(f) = &wo.last_failure {
        println!("  last failure:");
        for l in escape_control_multiline(f).lines() {
            println!("    {l}");
        }
    }
    for (label, list) in [
        ("depends on", &blockers),
        ("blocks", &blocks),
        ("children", &children),
    ] {
        if !list.is_empty() {
            println!("  {label}:");
            for r in list {
                println!("    {}", r.line());
            }
        }
    }
    if !wo.description.is_empty() {
        println!("  description:");
        for l in escape_control_multiline(&wo.description).lines() {
            println!("    {l}");
        }
    }
    if !history.is_empty() {
        println!("  history:");
        for e in &history {
            println!(
                "    #{} {} {} by {}",
                e.seq,
                escape_control(&e.timestamp),
                escape_control(&e.event_type),
                escape_control(&e.actor)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
