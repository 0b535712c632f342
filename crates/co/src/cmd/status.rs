//! `co status`: the company at a glance.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::status::company_status;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "co status",
    "# Refresh every 30 seconds",
    "watch -n 30 co status",
    "co status --json | jq '.factories[] | {name, slots_used, queue: (.queue | length)}'",
))]
pub struct Args {
    /// Print the company's status as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let s = company_status(&c)?;
    if a.json {
        ctx::json(&s)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Company {} ({}) on the tmux {}",
        ctx::esc(&s.name),
        s.root,
        s.tmux
    );
    println!(
        "  operations: {}   ceo: {}   ceo unread mail: {}",
        vermas_cli::color::status(if s.operations.alive {
            "running"
        } else {
            "not running"
        }),
        vermas_cli::color::status(if s.ceo.alive {
            "running"
        } else {
            "not running"
        }),
        s.ceo_unread
    );
    let wos: Vec<String> = s
        .work_orders
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !wos.is_empty() {
        println!("  company work orders: {}", wos.join(", "));
    }
    if s.factories.is_empty() {
        println!("No factories yet; add one with `co factory add <name> <git-url-or-path>`.");
    }
    for f in &s.factories {
        println!();
        super::factory::print_factory(f);
    }
    Ok(ExitCode::SUCCESS)
}
