//! `wo dep add A B` (A needs B; cycles refused), `wo dep remove A B`, `wo dep list ID`.

use crate::ctx::{self, Global};
use crate::print::{self, Related};
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::workorder;

#[derive(clap::Subcommand)]
pub enum Command {
    /// A needs B: A is not ready until B is closed
    Add {
        #[arg(value_parser = super::parse_id)]
        a: String,
        #[arg(value_parser = super::parse_id)]
        b: String,
    },
    /// Remove the dependency of A on B
    Remove {
        #[arg(value_parser = super::parse_id)]
        a: String,
        #[arg(value_parser = super::parse_id)]
        b: String,
    },
    /// What ID needs, and what needs ID
    List {
        #[arg(value_parser = super::parse_id)]
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(g: &Global, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Add { a, b } => {
            let c = ctx::open_for(g, &a)?;
            let mut w = c.store.lock()?;
            let wos = ctx::lookup(&c)?;
            let ev = workorder::plan_dep_add(&wos, &a, &b, &c.actor)?;
            w.append(vec![ev])?;
            w.report_warnings();
            println!("{a} now depends on {b}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Remove { a, b } => {
            let c = ctx::open_for(g, &a)?;
            let mut w = c.store.lock()?;
            let wos = ctx::lookup(&c)?;
            let ev = workorder::plan_dep_remove(&wos, &a, &b, &c.actor)?;
            w.append(vec![ev])?;
            w.report_warnings();
            println!("{a} no longer depends on {b}");
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
