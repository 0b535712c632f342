//! `co qa run FACTORY`: the built-in QA merge queue (operations runs it).

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Merge finished work whose gates pass, until stopped
    #[command(after_help = vermas_cli::examples!(
        "# What `co operations start` runs for each factory; by hand, in the foreground:",
        "co qa run myproject",
    ))]
    Run {
        /// The factory whose merge queue to run
        factory: String,
    },
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let Command::Run { factory } = cmd;
    let c = ctx::company()?;
    vermas_core::loops::qa::run(&c, &factory)?;
    Ok(ExitCode::SUCCESS)
}
