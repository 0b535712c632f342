//! `co exec-agent ENV_FILE [--after FILE] -- PROGRAM ARGS…` (internal): how every session VerMAS starts
//! becomes its agent. Reads the agent's environment from the private file, deletes it, and
//! replaces itself with the program, so no variable is ever on a command line.

use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The 0600 file holding the agent's environment (removed once read)
    env_file: PathBuf,
    /// Wait until this file exists first (the prompt file: the worktree is ready); give up
    /// after a minute
    #[arg(long, value_name = "FILE")]
    after: Option<PathBuf>,
    /// The agent's program and its arguments
    #[arg(last = true, required = true)]
    argv: Vec<String>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    use vermas_core::actions::launch;
    if let Some(p) = &a.after
        && !launch::wait_for_file(p, launch::HOLD_LIMIT)
    {
        let _ = std::fs::remove_file(&a.env_file);
        eprintln!(
            "error: {} did not appear within {} s; not starting the agent",
            vermas_core::text::escape_control(&p.display().to_string()),
            launch::HOLD_LIMIT.as_secs()
        );
        return Ok(ExitCode::from(1));
    }
    // Returns only when the program could not be started.
    let e = vermas_core::actions::launch::exec_agent(&a.env_file, &a.argv);
    eprintln!("error: {}", vermas_core::text::escape_control(&e.message()));
    Ok(ExitCode::from(127))
}
