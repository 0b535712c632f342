//! `co agent-hook` (internal): what a CLI's hook runs (Claude Code's `--settings` hooks). Reads
//! the hook's JSON on stdin, records the worker's state for its supervisor and, at the end of
//! a turn, hands over unread mail (`runtime::hooks`). It never fails the CLI: whatever goes
//! wrong, it exits 0.

use std::io::Read;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::agent::AgentId;
use vermas_core::runtime::hooks;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> Result<ExitCode> {
    let mut input = Vec::new();
    // A hook's input is small; more than this is not a hook.
    let _ = std::io::stdin().take(1 << 20).read_to_end(&mut input);
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(root), Some(agent), Some(incarnation)) = (
        var("COMPANY_ROOT"),
        var("AGENT_ID"),
        var("VERMAS_INCARNATION"),
    ) else {
        return Ok(ExitCode::SUCCESS);
    };
    let Ok(agent) = AgentId::parse(&agent) else {
        return Ok(ExitCode::SUCCESS);
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match hooks::handle(
        std::path::Path::new(&root),
        &agent,
        &incarnation,
        &input,
        now,
    ) {
        Ok(Some(answer)) => println!("{answer}"),
        Ok(None) => {}
        Err(e) => eprintln!("co agent-hook: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}
