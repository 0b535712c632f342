//! `wo init`: a standalone `.work/` so `wo` works in any repository.

use crate::ctx::Global;
use std::process::ExitCode;
use vermas_core::context::{DEFAULT_PREFIX, init_standalone};
use vermas_core::{Error, Result};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Work orders for the repository you are in (not part of a company)",
    "wo init",
    "wo init --prefix api",
))]
pub struct Args {
    /// Prefix of new work order ids (`wo` gives wo-k3x9q2)
    #[arg(long, default_value = DEFAULT_PREFIX)]
    prefix: String,
    /// Print the store's path and whether it was new as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let cwd = std::env::current_dir()
        .map_err(|e| Error::failure(format!("cannot read the current directory: {e}")))?;
    let dir = match &g.work_dir {
        Some(d) if d.file_name().is_some_and(|n| n == ".work") => {
            d.parent().map(|p| cwd.join(p)).unwrap_or(cwd.clone())
        }
        Some(d) => cwd.join(d),
        None => cwd,
    };
    let (path, created) = init_standalone(&dir, &a.prefix)?;
    if a.json {
        crate::print::json(&serde_json::json!({
            "store": path,
            "prefix": a.prefix,
            "created": created,
        }))?;
    } else if created {
        println!("Initialized work order store in {}", path.display());
    } else {
        println!("Work order store already exists in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
