//! `co worker list | status | spawn | kill | done`.

use crate::ctx;
use std::io::Write;
use std::process::ExitCode;
use vermas_cli::color;
use vermas_core::actions::worker::{self, Identity, WorkerRef, WorkerStatus};
use vermas_core::agent::AgentId;
use vermas_core::clock::human_age;
use vermas_core::text::{escape_control_multiline, table_painted};
use vermas_core::{Error, Result};

fn worker_status_parser() -> impl clap::builder::TypedValueParser<Value = WorkerStatus> {
    vermas_cli::values::choice(
        ["running", "idle", "stuck", "dead", "blocked"],
        WorkerStatus::parse,
    )
}

/// `0` and `slot0` both name slot 0.
fn parse_slot(s: &str) -> std::result::Result<u32, String> {
    s.strip_prefix("slot")
        .unwrap_or(s)
        .parse()
        .map_err(|_| "expected a slot number such as 0 or slot0".to_string())
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Workers of a factory (or all factories), with status and idle time
    #[command(after_help = vermas_cli::examples!(
        "# Workers of the factory you are in (at the company root: every factory)",
        "co worker list",
        "# Idle workers everywhere",
        "co worker list --all --status idle",
        "co worker list myproject --json",
    ))]
    List {
        /// Only this factory's workers (default: the factory you are in, else every factory)
        factory: Option<String>,
        /// Every factory, even inside one
        #[arg(long)]
        all: bool,
        /// Only workers in this state
        #[arg(long, value_parser = worker_status_parser())]
        status: Option<WorkerStatus>,
        /// Print the workers as JSON
        #[arg(long)]
        json: bool,
    },
    /// One worker in detail, with the end of its screen
    #[command(after_help = vermas_cli::examples!(
        "co worker status myproject slot0",
        "co worker status myproject 0 --json | jq -r .screen",
    ))]
    Status {
        /// The factory's name
        factory: String,
        /// The worker's slot: 0 or slot0
        #[arg(value_parser = parse_slot)]
        slot: u32,
        /// Print the worker, with its screen, as JSON
        #[arg(long)]
        json: bool,
    },
    /// Start a worker by hand: a dead one again, else the head of the factory's queue
    #[command(after_help = vermas_cli::examples!(
        "# Restart the dead worker in slot 0",
        "co worker spawn myproject slot0",
        "# A dead worker of myproject, else the next queued work order, saying each step",
        "co worker spawn myproject --verbose",
    ))]
    Spawn {
        /// The factory's name
        factory: String,
        /// The worker's slot: 0 or slot0 (default: the first dead worker, else a free slot for
        /// the head of the queue)
        #[arg(value_parser = parse_slot)]
        slot: Option<u32>,
        /// Say what it does
        #[arg(long)]
        verbose: bool,
        /// Print the new session and incarnation as JSON
        #[arg(long)]
        json: bool,
    },
    /// End a worker: frees the slot, re-queues its work, keeps unmerged work
    #[command(after_help = vermas_cli::examples!(
        "# Stop a stuck worker; unmerged work is parked and comes back on the next dispatch",
        "co worker kill myproject slot0",
        "# Remove its worktree too (the branch keeps its commits)",
        "co worker kill myproject 0 --force",
    ))]
    Kill {
        /// The factory's name
        factory: String,
        /// The worker's slot: 0 or slot0
        #[arg(value_parser = parse_slot)]
        slot: u32,
        /// Remove the worktree even with uncommitted or unmerged work (its branch is kept)
        #[arg(long)]
        force: bool,
        /// Print what was done as JSON
        #[arg(long)]
        json: bool,
    },
    /// Run by a worker when its work is committed: hands it to QA and ends the session
    #[command(after_help = vermas_cli::examples!(
        "# In a worker's session, after committing",
        "git commit -am \"Fix the bug\" && co worker done",
    ))]
    Done {
        /// Print what was handed over as JSON (before the session ends)
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let c = ctx::company()?;
    match cmd {
        Command::List {
            factory,
            all,
            status,
            json,
        } => {
            let fs = ctx::factories(&c, factory.as_deref(), all)?;
            let mut list = worker::list(&c, &fs)?;
            if let Some(s) = status {
                list.retain(|w| w.status == s);
            }
            if json {
                ctx::json(&list)?;
            } else if list.is_empty() {
                eprintln!("No workers.");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|w| {
                        vec![
                            w.factory.clone(),
                            format!("slot{}", w.slot),
                            w.work_order.clone(),
                            w.status.as_str().into(),
                            human_age(w.idle_seconds),
                            w.attempt.to_string(),
                            w.session.clone(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table_painted(
                        &[
                            "FACTORY",
                            "SLOT",
                            "WORK ORDER",
                            "STATUS",
                            "IDLE",
                            "ATTEMPT",
                            "SESSION"
                        ],
                        &rows,
                        color::status_cells(&[3]),
                    )
                );
            }
        }
        Command::Status {
            factory,
            slot,
            json,
        } => {
            let f = c.factory(&factory)?;
            let list = worker::list(&c, std::slice::from_ref(&f))?;
            let w = list.into_iter().find(|w| w.slot == slot).ok_or_else(|| {
                Error::not_found(format!("{factory}/workers/slot{slot} has no worker"))
            })?;
            let screen = c.tmux().capture(&w.session, 0).unwrap_or_default();
            if json {
                let mut v = serde_json::to_value(&w).map_err(|e| Error::failure(e.to_string()))?;
                v["screen"] = serde_json::Value::String(screen);
                ctx::json(&v)?;
                return Ok(ExitCode::SUCCESS);
            }
            println!("{} ({})", w.agent, w.session);
            println!("  work order: {} (attempt {})", w.work_order, w.attempt);
            println!(
                "  status:     {} (idle {})",
                color::status(w.status.as_str()),
                human_age(w.idle_seconds)
            );
            println!("  runtime:    {}", w.runtime);
            println!("  started:    {}", w.started_at);
            println!("  worktree:   {} on {}", w.worktree, w.branch);
            println!("  attach:     {}", c.tmux().attach_hint(&w.session));
            let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
            if !lines.is_empty() {
                println!("  screen (last lines):");
                for l in &lines[lines.len().saturating_sub(10)..] {
                    println!("    {}", escape_control_multiline(l));
                }
            }
        }
        Command::Spawn {
            factory,
            slot,
            verbose,
            json,
        } => {
            let f = c.factory(&factory)?;
            let say = |line: String| {
                if verbose {
                    eprintln!("{line}");
                }
            };
            say(format!(
                "Looking for a worker of {factory} to restart{}",
                slot.map(|s| format!(" in slot{s}")).unwrap_or_default()
            ));
            let slot = match slot {
                Some(s) => s,
                None => match worker::first_dead(&c, &f)? {
                    Some(s) => {
                        say(format!("slot{s} has an assignment and no live session"));
                        s
                    }
                    None => return spawn_queued(&c, &factory, json, &say),
                },
            };
            let r = worker::spawn(&c, &f, Some(WorkerRef::slot(slot)), &ctx::actor())?;
            if verbose {
                eprintln!("New incarnation {} in {}", r.incarnation, r.session);
            }
            if json {
                ctx::json(&r)?;
            } else {
                println!("Spawned {}, assigned {}", r.session, r.work_order);
            }
            if r.nudge.as_ref().is_some_and(|n| !n.delivered) {
                color::eprint_warning(&format!(
                    "the start message could not be seen landing in {}; check it with: {}",
                    r.session, r.attach
                ));
            }
            if !json {
                eprintln!("Watch it: {}", r.attach);
            }
        }
        Command::Kill {
            factory,
            slot,
            force,
            json,
        } => {
            let f = c.factory(&factory)?;
            let r = worker::kill(
                &c,
                &f,
                WorkerRef::slot(slot),
                worker::KillOptions {
                    worktree: if force {
                        worker::Worktree::Remove
                    } else {
                        worker::Worktree::KeepUnmerged
                    },
                    requeue: worker::Requeue::Yes,
                    reason: "killed by hand",
                    actor: &ctx::actor(),
                },
            )?;
            if json {
                ctx::json(&r)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut msg = format!(
                "Killed {}{}",
                r.session,
                if r.session_killed {
                    ""
                } else {
                    " (its session was already gone)"
                }
            );
            if r.requeued {
                msg.push_str(&format!("; {} re-queued in {factory}", r.work_order));
            }
            if r.leftovers > 0 {
                msg.push_str(&format!(
                    "; ended {} process(es) it had left outside its session",
                    r.leftovers
                ));
            }
            println!("{msg}");
            if let Some(k) = &r.worktree_kept {
                println!(
                    "Kept its worktree at {k} ({}); it comes back on the next dispatch of {}",
                    r.kept_because.join(", "),
                    r.work_order
                );
            } else if force && !r.kept_because.is_empty() {
                println!(
                    "Removed its worktree ({}); the branch keeps its commits",
                    r.kept_because.join(", ")
                );
            }
        }
        Command::Done { json } => {
            let me = Identity::from_env()?;
            if !matches!(me.agent, AgentId::Worker { .. }) {
                return Err(Error::usage(format!(
                    "`co worker done` is run by a worker; AGENT_ID is {}",
                    me.agent
                )));
            }
            let r = worker::done(&c, &me, &ctx::actor())?;
            if json {
                ctx::json(&r)?;
                let _ = std::io::stdout().flush();
                worker::end_own_session(&c, &me);
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "Done: {} is in review. {} sent to {} (branch {} at {}, {} commit(s)). Ending session {}.",
                r.work_order,
                r.message,
                r.supervisor,
                r.branch,
                &r.head[..r.head.len().min(12)],
                r.commits,
                r.session
            );
            let _ = std::io::stdout().flush();
            worker::end_own_session(&c, &me);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `co worker spawn F` with no dead worker: the head of the factory's queue goes to a free
/// slot (as the supervisor would start it on its next patrol), or a one-line reason why not.
fn spawn_queued(
    c: &vermas_core::company::Company,
    factory: &str,
    json: bool,
    say: &dyn Fn(String),
) -> Result<ExitCode> {
    use vermas_core::actions::dispatch::{self, DispatchRequest};
    say(format!("No dead worker in {factory}; looking at its queue"));
    let queued = dispatch::queued_for(c, factory)?;
    let Some(head) = queued.first() else {
        return Err(Error::not_found(format!(
            "no dead worker of {factory} and nothing queued for it; give it work with `co dispatch <id> {factory}`"
        )));
    };
    say(format!(
        "{} is first of {} queued (priority {}); starting it in a free slot",
        head.id,
        queued.len(),
        head.priority
    ));
    let out = dispatch::dispatch(
        c,
        &DispatchRequest {
            work_order: head.id.clone(),
            factory: factory.to_string(),
            runtime: None,
            no_queue: true,
            actor: ctx::actor(),
        },
    )?;
    if json {
        ctx::json(&super::dispatch::to_json(&out))?;
    } else {
        super::dispatch::print(&out);
    }
    Ok(ExitCode::SUCCESS)
}
