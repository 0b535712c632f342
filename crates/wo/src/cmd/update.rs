//! `wo update`: changed fields as one `work_order.updated`, a status change checked against the
//! state machine (an illegal one is refused with exit 5 and nothing is written).

use crate::ctx::{self, Global};
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::workorder::{self, Status, UpdateRequest, WoType};

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_parser = super::parse_id)]
    id: String,
    #[arg(long, value_parser = super::parse_status)]
    status: Option<Status>,
    /// Why (recorded with the status change, so it needs --status)
    #[arg(long, requires = "status")]
    reason: Option<String>,
    /// Agent or person it is assigned to (empty string clears)
    #[arg(long)]
    assignee: Option<String>,
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=4))]
    priority: Option<u8>,
    #[arg(long)]
    title: Option<String>,
    /// New details; `-` reads standard input
    #[arg(long, conflicts_with = "description_file", allow_hyphen_values = true)]
    description: Option<String>,
    #[arg(long, value_name = "FILE")]
    description_file: Option<PathBuf>,
    #[arg(long = "type", value_name = "TYPE", value_parser = super::parse_type)]
    kind: Option<WoType>,
    #[arg(long = "add-label", value_name = "L")]
    add_labels: Vec<String>,
    #[arg(long = "remove-label", value_name = "L")]
    remove_labels: Vec<String>,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let description = super::create::read_description(a.description, a.description_file)?;
    for (what, text) in [
        ("title", a.title.as_deref()),
        ("description", description.as_deref()),
    ] {
        for kind in vermas_core::text::mask_secrets(text.unwrap_or_default()).1 {
            eprintln!(
                "warning: the {what} holds what looks like an {kind} API key; it is stored masked"
            );
        }
    }
    let c = ctx::open_for(g, &a.id)?;
    let mut w = c.store.lock()?;
    let wos = ctx::lookup(&c)?;
    let wo = workorder::require(&wos, &a.id)?;
    let req = UpdateRequest {
        title: a.title,
        priority: a.priority,
        description,
        kind: a.kind,
        assignee: a.assignee,
        add_labels: a.add_labels,
        remove_labels: a.remove_labels,
        status: a.status,
        reason: a.reason,
    };
    let (events, updated) = workorder::plan_update(&wo, &req, &c.actor)?;
    w.append(events)?;
    w.report_warnings();
    // What was written, not what was asked: a value that was already set is not listed.
    let mut changes = Vec::new();
    if let Some(s) = req.status {
        changes.push(format!("status {} → {s}", wo.status));
    }
    for field in updated.changed_fields() {
        match (field, updated.priority) {
            ("priority", Some(p)) => changes.push(format!("priority {} → {p}", wo.priority)),
            _ => changes.push(field.to_string()),
        }
    }
    println!("Updated {}: {}", wo.id, changes.join(", "));
    Ok(ExitCode::SUCCESS)
}
