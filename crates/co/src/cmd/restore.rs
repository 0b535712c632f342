//! `co restore FILE [--into DIR] [--json]`: a company back from `co backup`'s archive, checked
//! with `co doctor` (see `vermas_core::backup`).

use crate::ctx;
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::backup;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Back where it was backed up from (the company must not be running there)",
    "co restore /backups/company-2026-11-27.tar.gz",
    "# Somewhere else, to look at it",
    "co restore company.tar.gz --into /tmp/company-copy",
))]
pub struct Args {
    /// The archive `co backup` wrote
    file: PathBuf,
    /// Restore into this new or empty directory instead of where the company was backed up from
    #[arg(long, value_name = "DIR")]
    into: Option<PathBuf>,
    /// What was restored and the doctor's report, as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let r = backup::restore(&a.file, a.into.as_deref())?;
    if a.json {
        ctx::json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Restored {} from {} (backed up {})",
        ctx::esc(&r.root),
        ctx::esc(&r.archive),
        r.backed_up_at
    );
    super::backup::print_stores(&r.stores);
    for f in &r.factories {
        let worktrees: Vec<&str> = f.worktrees.iter().map(String::as_str).collect();
        super::backup::print_factory(&f.name, f.branches, &f.unmerged, &worktrees);
    }
    for p in &r.doctor.problems {
        println!("problem: {}", ctx::esc(&p.to_string()));
    }
    if r.doctor.ok {
        println!("co doctor: no problems found.");
    } else {
        println!(
            "co doctor: {} problem(s) found (listed above); the restore itself is complete.",
            r.doctor.problems.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
