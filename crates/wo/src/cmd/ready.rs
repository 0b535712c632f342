//! `wo ready`: open work orders whose blockers are all closed, by priority then age.

use crate::ctx::{self, Global};
use crate::print;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::workorder::{self, WorkOrder};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "wo ready",
    "# Dispatch the most urgent ready work order",
    "co dispatch \"$(wo ready --json | jq -r '.[0].id')\" myproject",
))]
pub struct Args {
    /// Print the ready work orders as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let c = g.open()?;
    let wos = ctx::work_orders(&c)?;
    let mut ready: Vec<WorkOrder> = wos
        .state
        .all()
        .into_iter()
        .filter(|w| workorder::is_ready(&wos.state, w))
        .collect();
    workorder::sort_by_priority_then_age(&mut ready);
    if a.json {
        print::json(&ready)?;
    } else if ready.is_empty() {
        eprintln!("Nothing is ready.");
    } else {
        print!("{}", print::work_order_table(&ready));
    }
    Ok(ExitCode::SUCCESS)
}
