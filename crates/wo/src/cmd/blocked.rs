//! `wo blocked`: work waiting on something: blockers not closed yet, or status `blocked`.

use crate::ctx::{self, Global};
use crate::print;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::text::{escape_control, table_painted, truncate};
use vermas_core::workorder::{self, Status};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "wo blocked",
    "wo blocked --json | jq -r '.[] | \"\\(.id) waits on \\(.waiting_on)\"'",
))]
pub struct Args {
    /// Print the blocked work orders, with what each waits on, as JSON
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Blocked {
    id: String,
    title: String,
    status: Status,
    priority: u8,
    waiting_on: Vec<String>,
    reason: Option<String>,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let c = g.open()?;
    let wos = ctx::work_orders(&c)?;
    let mut all = wos.state.all();
    workorder::sort_by_priority_then_age(&mut all);
    let list: Vec<Blocked> = all
        .into_iter()
        .filter(|w| !w.status.is_done())
        .filter_map(|w| {
            let open = workorder::open_blockers(&wos.state, &w);
            if open.is_empty() && w.status != Status::Blocked {
                return None;
            }
            Some(Blocked {
                waiting_on: open
                    .iter()
                    .map(|(id, s)| match s {
                        Some(s) => format!("{id} ({s})"),
                        None => format!("{id} (missing)"),
                    })
                    .collect(),
                reason: (w.status == Status::Blocked)
                    .then(|| w.last_failure.clone())
                    .flatten(),
                id: w.id,
                title: w.title,
                status: w.status,
                priority: w.priority,
            })
        })
        .collect();
    if a.json {
        print::json(&list)?;
    } else if list.is_empty() {
        eprintln!("Nothing is blocked.");
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|b| {
                let why = if b.waiting_on.is_empty() {
                    b.reason
                        .as_deref()
                        .map(|r| truncate(&escape_control(r), 60))
                        .unwrap_or_else(|| "status blocked".into())
                } else {
                    b.waiting_on.join(", ")
                };
                vec![
                    b.id.clone(),
                    format!("P{}", b.priority),
                    b.status.to_string(),
                    why,
                    truncate(&escape_control(&b.title), 60),
                ]
            })
            .collect();
        print!(
            "{}",
            table_painted(
                &["ID", "PRI", "STATUS", "WAITING ON", "TITLE"],
                &rows,
                vermas_cli::color::status_cells(&[2]),
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
