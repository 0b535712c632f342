//! `co init [DIR]`: the company layout. Safe to run twice.

use crate::ctx;
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::company::Company;

#[derive(clap::Args)]
pub struct Args {
    /// Where to make the company (default: the current directory)
    dir: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let dir = match a.dir {
        Some(d) => ctx::cwd()?.join(d),
        None => ctx::cwd()?,
    };
    let (c, fresh) = Company::init(&dir, &ctx::actor())?;
    if fresh {
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
