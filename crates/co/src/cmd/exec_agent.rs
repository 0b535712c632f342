//! `co exec-agent ENV_FILE -- PROGRAM ARGS…` (internal): how every session VerMAS starts
//! becomes its agent. Reads the agent's environment from the private file, deletes it, and
//! replaces itself with the program, so no variable is ever on a command line.

use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Args)]
pub struct Args {
    /// The 0600 file holding the agent's environment (removed once read)
    env_file: PathBuf,
    /// The agent's program and its arguments
    #[arg(last = true, required = true)]
    argv: Vec<String>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    // Returns only when the program could not be started.
    let e = vermas_core::actions::launch::exec_agent(&a.env_file, &a.argv);
    eprintln!("error: {}", vermas_core::text::escape_control(&e.message()));
    Ok(ExitCode::from(127))
}
