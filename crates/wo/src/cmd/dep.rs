//! `wo dep add A B` (A needs B; cycles refused), `wo dep remove A B`, `wo dep list ID`.

use crate::ctx::{self, Global};
use crate::print;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::text::escape_control;
use vermas_core::workorder::{self, WorkOrders};

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

#[derive(serde::Serialize)]
struct Edge {
    id: String,
    status: Option<String>,
    title: Option<String>,
}

pub fn run(g: &Global, cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Add { a, b } => {
            let c = ctx::open_for(g, &a)?;
            let mut w = c.store.lock()?;
            let wos = c.store.load::<WorkOrders>()?;
            let ev = workorder::plan_dep_add(&wos.state, &a, &b, &c.actor)?;
            w.append(vec![ev])?;
            w.report_warnings();
            println!("{a} now depends on {b}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Remove { a, b } => {
            let c = ctx::open_for(g, &a)?;
            let mut w = c.store.lock()?;
            let wos = c.store.load::<WorkOrders>()?;
            let ev = workorder::plan_dep_remove(&wos.state, &a, &b, &c.actor)?;
            w.append(vec![ev])?;
            w.report_warnings();
            println!("{a} no longer depends on {b}");
            Ok(ExitCode::SUCCESS)
        }
        Command::List { id, json } => {
            let c = ctx::open_for(g, &id)?;
            let wos = ctx::work_orders(&c)?;
            let wo = ctx::require(&wos.state, &id)?;
            let edge = |x: &str| {
                let w = wos.state.get(x);
                Edge {
                    id: x.to_string(),
                    status: w.as_ref().map(|w| w.status.to_string()),
                    title: w.map(|w| w.title),
                }
            };
            let needs: Vec<Edge> = wo.depends_on.iter().map(|d| edge(d)).collect();
            let needed_by: Vec<Edge> = wos
                .state
                .all()
                .iter()
                .filter(|o| o.depends_on.contains(&id))
                .map(|o| edge(&o.id))
                .collect();
            if json {
                print::json(
                    &serde_json::json!({ "id": id, "depends_on": needs, "needed_by": needed_by }),
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            let show = |e: &Edge| {
                format!(
                    "  {} ({}) {}",
                    e.id,
                    e.status.as_deref().unwrap_or("missing"),
                    escape_control(e.title.as_deref().unwrap_or(""))
                )
            };
            println!("{id} depends on:");
            if needs.is_empty() {
                println!("  (nothing)");
            }
            for e in &needs {
                println!("{}", show(e));
            }
            println!("Needed by:");
            if needed_by.is_empty() {
                println!("  (nothing)");
            }
            for e in &needed_by {
                println!("{}", show(e));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
