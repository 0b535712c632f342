//! `co assignment [set AGENT TYPE:ID | clear AGENT]`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::actions::worker::{self, Identity};
use vermas_core::agent::AgentId;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Assign by hand: co assignment set myproject/workers/slot0 work_order:mp-k3x9q2
    Set { agent: String, target: String },
    /// Remove an agent's assignment
    Clear { agent: String },
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    match a.command {
        None => {
            let me = Identity::from_env()?;
            let r = worker::check(&c, &me, &ctx::actor())?;
            if a.json {
                ctx::json(&r)?;
                return Ok(ExitCode::SUCCESS);
            }
            match (&r.assignment, &r.work_order) {
                (Some(asg), wo) => {
                    let title = wo.as_ref().map(|w| w.title.as_str()).unwrap_or(&asg.title);
                    let priority = wo.as_ref().map(|w| w.priority).unwrap_or(asg.priority);
                    println!(
                        "ASSIGNED: {} \"{}\" (priority P{priority}, attempt {})",
                        asg.work_order,
                        ctx::esc(title),
                        asg.attempt
                    );
                    println!(
                        "Read it with `wo show {}`; work and commit in {}; finish with `co worker done`.",
                        asg.work_order,
                        if asg.worktree.is_empty() {
                            "your worktree"
                        } else {
                            &asg.worktree
                        }
                    );
                }
                (None, _) => println!("Assignment is empty"),
            }
        }
        Some(Command::Set { agent, target }) => {
            let agent = AgentId::parse(&agent)?;
            let asg = worker::set_assignment(&c, &agent, &target, &ctx::actor())?;
            println!("Assigned {} to {agent}", asg.work_order);
        }
        Some(Command::Clear { agent }) => {
            let agent = AgentId::parse(&agent)?;
            match worker::clear_assignment(&c, &agent, &ctx::actor())? {
                Some(asg) => println!("Cleared {agent} (was {})", asg.work_order),
                None => println!("{agent} had no assignment"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
