//! `wo update`: changed fields as one `work_order.updated`, a status change checked against the
//! state machine (an illegal one is refused with exit 5 and nothing is written).

use crate::ctx::{self, Global};
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::workorder::{self, Status, UpdateRequest, WoType};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "wo update mp-k3x9q2 --priority 0 --add-label urgent",
    "# A status change follows the state machine (an illegal one exits 5)",
    "wo update mp-k3x9q2 --status blocked --reason \"waiting for the API key\"",
    "wo update mp-k3x9q2 --assignee \"\" --json",
))]
pub struct Args {
    /// The work order id (its prefix names the store that holds it)
    #[arg(value_parser = super::parse_id)]
    id: String,
    /// The new status (see docs/EVENTS.md for which moves are allowed)
    #[arg(long, value_parser = super::status_parser())]
    status: Option<Status>,
    /// Why (recorded with the status change, so it needs --status)
    #[arg(long, requires = "status")]
    reason: Option<String>,
    /// Agent or person it is assigned to (empty string clears)
    #[arg(long)]
    assignee: Option<String>,
    /// The new priority: 0 (most urgent) to 4
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=4))]
    priority: Option<u8>,
    /// The new title: one line, at most 200 characters
    #[arg(long)]
    title: Option<String>,
    /// New details; `-` reads standard input
    #[arg(long, conflicts_with = "description_file", allow_hyphen_values = true)]
    description: Option<String>,
    /// Read the new details from a file (UTF-8)
    #[arg(long, value_name = "FILE")]
    description_file: Option<PathBuf>,
    /// The new type
    #[arg(long = "type", value_name = "TYPE", value_parser = super::type_parser())]
    kind: Option<WoType>,
    /// Add a label (repeat for more)
    #[arg(long = "add-label", value_name = "L")]
    add_labels: Vec<String>,
    /// Remove a label (repeat for more)
    #[arg(long = "remove-label", value_name = "L")]
    remove_labels: Vec<String>,
    /// Print what changed as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let description = super::create::read_description(a.description, a.description_file)?;
    for (what, text) in [
        ("title", a.title.as_deref()),
        ("description", description.as_deref()),
    ] {
        for kind in vermas_core::text::mask_secrets(text.unwrap_or_default()).1 {
            vermas_cli::color::eprint_warning(&format!(
                "the {what} holds what looks like an {kind} API key; it is stored masked"
            ));
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
    if a.json {
        crate::print::json(&serde_json::json!({
            "id": wo.id,
            "status": req.status.map(|s| serde_json::json!({ "from": wo.status, "to": s })),
            "changed": updated.changed_fields(),
        }))?;
    } else {
        println!("Updated {}: {}", wo.id, changes.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
