//! `co approve WO`: let QA merge a branch that changes protected paths (after the gates).

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  co approve mp-k3x9q2     # after reading: git -C myproject diff main...vermas/mp-k3x9q2"
)]
pub struct Args {
    /// The work order waiting in needs_approval
    work_order: String,
    /// Print what was done as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let d = vermas_core::actions::approval::approve(&c, &a.work_order, &ctx::actor())?;
    if a.json {
        ctx::json(&d)?;
    } else {
        println!(
            "Approved {} at {} (changes {}); QA merges it once the gates pass",
            d.work_order,
            &d.head[..d.head.len().min(12)],
            ctx::esc(&d.paths.join(", "))
        );
    }
    Ok(ExitCode::SUCCESS)
}
