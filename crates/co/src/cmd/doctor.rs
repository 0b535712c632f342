//! `co doctor [--fix]`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "co doctor",
    "# Do the safe repairs, then check again",
    "co doctor --fix && co doctor",
    "co doctor --json | jq '.problems'",
))]
pub struct Args {
    /// Do the safe repairs: orphaned assignment files, `git worktree prune`, projections
    #[arg(long)]
    fix: bool,
    /// Print the checks, problems and repairs as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let r = vermas_core::doctor::run(&c, a.fix)?;
    if a.json {
        ctx::json(&r)?;
    } else {
        use vermas_cli::color::label;
        for f in &r.fixed {
            println!("{} {}", label("fixed:"), ctx::esc(f));
        }
        for n in &r.notes {
            println!("{} {}", label("note:"), ctx::esc(&n.to_string()));
        }
        for p in &r.problems {
            println!("{} {}", label("problem:"), ctx::esc(&p.to_string()));
        }
        if r.ok {
            println!("No problems found.");
        } else {
            println!(
                "{} problem(s) found.{}",
                r.problems.len(),
                if a.fix {
                    ""
                } else {
                    " `co doctor --fix` does the safe repairs."
                }
            );
        }
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
