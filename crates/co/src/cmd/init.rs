//! `co init [DIR]`: the company layout. Safe to run twice.

use crate::ctx;
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::company::Company;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# A company in ~/company",
    "mkdir ~/company && cd ~/company && co init",
    "# Or name the directory (made if missing)",
    "co init ~/work/acme",
))]
pub struct Args {
    /// Where to make the company (default: the current directory)
    dir: Option<PathBuf>,
    /// Print the company's name and root, and whether it was new, as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let dir = match a.dir {
        Some(d) => ctx::cwd()?.join(d),
        None => ctx::cwd()?,
    };
    let (c, fresh) = Company::init(&dir, &ctx::actor())?;
    if a.json {
        ctx::json(&serde_json::json!({
            "name": c.name(),
            "root": c.root,
            "created": fresh,
            "config": c.root.join(".vermas/config.toml"),
        }))?;
    } else if fresh {
        println!(
            "Initialized company {} in {}",
            ctx::esc(c.name()),
            c.root.display()
        );
        eprintln!(
            "Next: co factory add <name> <git-url-or-path>, then wo create and co dispatch. Settings: {}",
            c.root.join(".vermas/config.toml").display()
        );
    } else {
        println!("Company already initialized in {}", c.root.display());
    }
    Ok(ExitCode::SUCCESS)
}
