//! `co reject WO --reason R`: send a branch that changes protected paths back to a worker.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  co reject mp-k3x9q2 --reason \"keep the tests; fix the code instead\""
)]
pub struct Args {
    /// The work order waiting in needs_approval
    work_order: String,
    /// What the worker must change (it reads this in its prompt)
    #[arg(long)]
    reason: String,
    /// Print what was done as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let d = vermas_core::actions::approval::reject(&c, &a.work_order, &a.reason, &ctx::actor())?;
    if a.json {
        ctx::json(&d)?;
    } else {
        println!(
            "Rejected {}: back to a worker as rework with your reason",
            d.work_order
        );
    }
    Ok(ExitCode::SUCCESS)
}
