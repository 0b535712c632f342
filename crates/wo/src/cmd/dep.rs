//! `wo dep add A B` (A needs B; cycles refused), `wo dep remove A B`, `wo dep list ID`.

use crate::ctx::{self, Global};
use crate::print::{self, Related};
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::workorder;

#[derive(clap::Subcommand)]
pub enum Command {
    /// A needs B: A is not ready until B is closed
    #[command(after_help = vermas_cli::examples!(
        "# The API needs the schema first",
        "wo dep add mp-api001 mp-schema1",
    ))]
    Add {
        /// The work order that waits
        #[arg(value_parser = super::parse_id)]
        a: String,
        /// The work order it waits for
        #[arg(value_parser = super::parse_id)]
        b: String,
        /// Print the dependency as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove the dependency of A on B
    #[command(after_help = vermas_cli::examples!("wo dep remove mp-api001 mp-schema1"))]
    Remove {
        /// The work order that waited
        #[arg(value_parser = super::parse_id)]
        a: String,
        /// The work order it no longer waits for
        #[arg(value_parser = super::parse_id)]
        b: String,
        /// Print the removed dependency as JSON
        #[arg(long)]
        json: bool,
    },
    /// What ID needs, and what needs ID
    #[command(after_help = vermas_cli::examples!(
        "wo dep list mp-api001",
        "wo dep list mp-api001 --json | jq -r '.depends_on[].id'",
    ))]
    List {
        /// The work order id
        #[arg(value_parser = super::parse_id)]
        id: String,
        /// Print both lists as JSON
        #[arg(long)]
        json: bool,
    },
}

pub fn run(g: &Global, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Add { a, b, json } => {
            let c = ctx::open_for(g, &a)?;
            let mut w = c.store.lock()?;
            let wos = ctx::lookup(&c)?;
            let ev = workorder::plan_dep_add(&wos, &a, &b, &c.actor)?;
            w.append(vec![ev])?;
            w.report_warnings();
            if json {
                print::json(&serde_json::json!({ "id": a, "depends_on": b, "added": true }))?;
            } else {
                println!("{a} now depends on {b}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Remove { a, b, json } => {
            let c = ctx::open_for(g, &a)?;
            let mut w = c.store.lock()?;
            let wos = ctx::lookup(&c)?;
            let ev = workorder::plan_dep_remove(&wos, &a, &b, &c.actor)?;
            w.append(vec![ev])?;
            w.report_warnings();
            if json {
                print::json(&serde_json::json!({ "id": a, "depends_on": b, "removed": true }))?;
            } else {
                println!("{a} no longer depends on {b}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List { id, json } => {
            let c = ctx::open_for(g, &id)?;
            let wos = ctx::lookup(&c)?;
            let wo = workorder::require(&wos, &id)?;
            let needs = wo
                .depends_on
                .iter()
                .map(|d| Related::of(&wos, d))
                .collect::<Result<Vec<Related>>>()?;
            let needed_by = wos
                .dependents(&id)?
                .iter()
                .map(|d| Related::of(&wos, d))
                .collect::<Result<Vec<Related>>>()?;
            if json {
                print::json(
                    &serde_json::json!({ "id": id, "depends_on": needs, "needed_by": needed_by }),
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            println!("{id} depends on:");
            if needs.is_empty() {
                println!("  (nothing)");
            }
            for e in &needs {
                println!("  {}", e.line());
            }
            println!("Needed by:");
            if needed_by.is_empty() {
                println!("  (nothing)");
            }
            for e in &needed_by {
                println!("  {}", e.line());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
