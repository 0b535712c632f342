//! `co assignment [set AGENT TYPE:ID | clear AGENT]`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::actions::worker::{self, Identity};
use vermas_core::agent::AgentId;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Run by an agent (AGENT_ID set): what to do now; the first check starts the work",
    "co assignment",
    "# By hand",
    "co assignment set myproject/workers/slot0 work_order:mp-k3x9q2",
    "co assignment clear myproject/workers/slot0",
))]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Print the assignment (or what was set or cleared) as JSON
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Assign by hand: co assignment set myproject/workers/slot0 work_order:mp-k3x9q2
    #[command(after_help = vermas_cli::examples!(
        "co assignment set myproject/workers/slot0 work_order:mp-k3x9q2",
    ))]
    Set {
        /// The agent: myproject/workers/slot0, myproject/supervisor, …
        agent: String,
        /// What to assign, as TYPE:ID (work_order:mp-k3x9q2)
        target: String,
    },
    /// Remove an agent's assignment
    #[command(after_help = vermas_cli::examples!("co assignment clear myproject/workers/slot0"))]
    Clear {
        /// The agent: myproject/workers/slot0, myproject/supervisor, …
        agent: String,
    },
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
            if a.json {
                ctx::json(&asg)?;
            } else {
                println!("Assigned {} to {agent}", asg.work_order);
            }
        }
        Some(Command::Clear { agent }) => {
            let agent = AgentId::parse(&agent)?;
            let was = worker::clear_assignment(&c, &agent, &ctx::actor())?;
            if a.json {
                ctx::json(&serde_json::json!({ "agent": agent.to_string(), "was": was }))?;
                return Ok(ExitCode::SUCCESS);
            }
            match was {
                Some(asg) => println!("Cleared {agent} (was {})", asg.work_order),
                None => println!("{agent} had no assignment"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
