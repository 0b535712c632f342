//! `co prime`: role context, assignment and unread mail for agent hooks.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# In an agent's session hook (prints markdown for the agent to read)",
    "co prime",
))]
pub struct Args {}

pub fn run(_a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    print!("{}", vermas_core::prime::prime(&c, &ctx::me()?)?);
    Ok(ExitCode::SUCCESS)
}
