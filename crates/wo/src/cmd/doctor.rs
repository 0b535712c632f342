//! `wo doctor`: every problem with file:line; exits 1 when there is any.

use crate::ctx::Global;
use crate::print;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::health::check_store;
use vermas_core::text::escape_control;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "wo doctor",
    "# Each problem as file:line, for an editor",
    "wo doctor --json | jq -r '.problems[]'",
))]
pub struct Args {
    /// Print the checks and problems as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let c = g.open()?;
    let h = check_store(&c.store)?;
    if a.json {
        print::json(&h)?;
    } else {
        println!(
            "Store {}: {} events (seq {}), {} log file(s) ({} archived), {} work orders, {} messages",
            h.store, h.events, h.last_seq, h.log_files, h.archived_files, h.work_orders, h.messages
        );
        use vermas_cli::color::label;
        for n in &h.notes {
            println!("{} {}", label("note:"), escape_control(&n.to_string()));
        }
        for p in &h.problems {
            println!("{} {}", label("problem:"), escape_control(&p.to_string()));
        }
        if h.ok {
            println!("No problems found.");
        } else {
            println!("{} problem(s) found.", h.problems.len());
        }
    }
    Ok(if h.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
