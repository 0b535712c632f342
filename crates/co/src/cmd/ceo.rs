//! `co ceo`: start the CEO session if needed, then attach to it.

use crate::ctx;
use std::io::IsTerminal;
use std::process::ExitCode;
use vermas_core::{Error, Result};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Start the CEO's agent (cwd ceo/) and attach to it",
    "co ceo",
    "# Start it in the background",
    "co ceo --no-attach",
))]
pub struct Args {
    /// Start it but do not attach
    #[arg(long)]
    no_attach: bool,
    /// Start it, do not attach, and print the session and whether it was started as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let (session, started) = vermas_core::prime::start_ceo(&c, &ctx::actor())?;
    let tmux = c.tmux();
    if a.json {
        ctx::json(&serde_json::json!({
            "session": session,
            "started": started,
            "attach": tmux.attach_hint(&session),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.no_attach || !std::io::stdin().is_terminal() {
        println!(
            "{} session {session}; attach with: {}",
            if started {
                "Started"
            } else {
                "Already running:"
            },
            tmux.attach_hint(&session)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let inside = std::env::var_os("TMUX").is_some();
    let status = tmux
        .command()
        .args(if inside {
            ["switch-client", "-t", "=ceo"]
        } else {
            ["attach-session", "-t", "=ceo"]
        })
        .stdin(std::process::Stdio::inherit())
        .status()
        .map_err(|e| Error::failure(format!("cannot run tmux: {e}")))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
