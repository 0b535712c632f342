//! `co supervisor run FACTORY`: the built-in supervisor loop (operations runs it).

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Patrol the factory until stopped
    #[command(after_help = vermas_cli::examples!(
        "# What `co operations start` runs for each factory; by hand, in the foreground:",
        "co supervisor run myproject",
    ))]
    Run {
        /// The factory to patrol
        factory: String,
    },
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let Command::Run { factory } = cmd;
    let c = ctx::company()?;
    vermas_core::loops::supervisor::run(&c, &factory)?;
    Ok(ExitCode::SUCCESS)
}
