//! `co team add | list | remove | submit`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::agent::AgentId;
use vermas_core::team::{self, AddTeam, Submit};
use vermas_core::text::{table, truncate};
use vermas_core::{Error, Result};

#[derive(clap::Subcommand)]
pub enum Command {
    #[command(after_help = vermas_cli::examples!(
        "# A workspace for people on myproject: worktree, mail address, tmux shell",
        "co team add dev --factory myproject",
        "tmux attach -t team-myproject-dev",
    ))]
    /// Make a team workspace: worktree <f>/teams/NAME, mail address <f>/teams/NAME, tmux
    /// session team-<f>-NAME (a shell; no agent runs there)
    Add {
        /// [a-z0-9-]+
        name: String,
        /// The factory it works in
        #[arg(long)]
        factory: String,
        /// The branch to work on (default team/NAME, made from the target branch)
        #[arg(long)]
        branch: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    #[command(after_help = vermas_cli::examples!(
        "co team list",
        "co team list --factory myproject --json",
    ))]
    /// Every team: branch, commits not yet merged, session, mail, last submission
    List {
        /// Only this factory's teams
        #[arg(long)]
        factory: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    #[command(after_help = vermas_cli::examples!(
        "co team remove dev --factory myproject",
        "# Its branch has work not merged yet: remove the workspace, keep the branch",
        "co team remove dev --factory myproject --force",
    ))]
    /// Remove a team workspace (refuses unmerged commits unless --force, which keeps the
    /// branch; refuses uncommitted changes always)
    Remove {
        /// The team
        name: String,
        /// The factory it works in
        #[arg(long)]
        factory: String,
        /// Remove the workspace even though its branch has commits not in the target; the
        /// branch is kept
        #[arg(long)]
        force: bool,
    },
    #[command(after_help = vermas_cli::examples!(
        "# Inside the team's session",
        "co team submit",
        "co team submit dev --factory myproject --title \"Login page\" --priority 1",
    ))]
    /// Hand the team branch's commits to QA, which merges them only when the gates pass
    Submit {
        /// The team (default: this session's, from AGENT_ID)
        name: Option<String>,
        /// The factory (default: this session's)
        #[arg(long)]
        factory: Option<String>,
        /// Title of the work order made for it (default: from the last commit)
        #[arg(long)]
        title: Option<String>,
        /// 0 (most urgent) to 4
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=4))]
        priority: u8,
        /// Hand in this work order (open, in progress or rework) instead of making one
        #[arg(long, value_name = "ID")]
        work_order: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
}

/// The team a command means: the one named, else the team of this session (`AGENT_ID`).
fn which(name: Option<String>, factory: Option<String>) -> Result<(String, String)> {
    let me = std::env::var("AGENT_ID")
        .ok()
        .and_then(|a| AgentId::parse(&a).ok());
    let (my_factory, my_name) = match me {
        Some(AgentId::Team { factory, name }) => (Some(factory), Some(name)),
        _ => (None, None),
    };
    match (name.or(my_name), factory.or(my_factory)) {
        (Some(n), Some(f)) => Ok((n, f)),
        _ => Err(Error::usage(
            "name the team and its factory: co team submit NAME --factory F (or run it in the team's session)",
        )),
    }
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let c = ctx::company()?;
    let actor = ctx::actor();
    match cmd {
        Command::Add {
            name,
            factory,
            branch,
            json,
        } => {
            let t = team::add(
                &c,
                &AddTeam {
                    name,
                    factory,
                    branch,
                },
                &actor,
            )?;
            let attach = c.tmux().attach_hint(&t.session);
            if json {
                ctx::json(&serde_json::json!({
                    "team": t,
                    "address": t.address().to_string(),
                    "attach": attach,
                }))?;
            } else {
                println!(
                    "Added team {} to {}: worktree {} on {}{}, session {}",
                    t.name,
                    t.factory,
                    t.path,
                    t.branch,
                    if t.created_branch { " (new)" } else { "" },
                    t.session
                );
                eprintln!(
                    "Attach: {attach}; mail: co send {} -s SUBJECT -m BODY; hand work to QA: co team submit {} --factory {}",
                    t.address(),
                    t.name,
                    t.factory
                );
            }
        }
        Command::List { factory, json } => {
            let teams = team::list(&c, factory.as_deref())?;
            if json {
                ctx::json(&teams)?;
            } else if teams.is_empty() {
                eprintln!("No teams; add one with `co team add NAME --factory F`.");
            } else {
                let rows: Vec<Vec<String>> = teams
                    .iter()
                    .map(|v| {
                        let last = match &v.last_submission {
                            Some(s) => {
                                let mut x = format!(
                                    "{} {}",
                                    s.work_order,
                                    s.status.map(|s| s.as_str()).unwrap_or("missing")
                                );
                                if let Some(why) = &s.last_failure {
                                    x.push_str(&format!(
                                        ": {}",
                                        truncate(&ctx::esc(why.lines().next().unwrap_or("")), 60)
                                    ));
                                }
                                x
                            }
                            None => "-".into(),
                        };
                        vec![
                            v.team.factory.clone(),
                            v.team.name.clone(),
                            ctx::esc(&v.team.branch),
                            v.ahead.map_or("gone".into(), |n| n.to_string()),
                            v.uncommitted.map_or("gone".into(), |n| n.to_string()),
                            if v.session_alive { "up" } else { "down" }.into(),
                            v.unread_mail.to_string(),
                            last,
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
                        &[
                            "FACTORY",
                            "TEAM",
                            "BRANCH",
                            "AHEAD",
                            "CHANGED",
                            "SESSION",
                            "UNREAD",
                            "LAST SUBMISSION"
                        ],
                        &rows
                    )
                );
            }
        }
        Command::Remove {
            name,
            factory,
            force,
        } => {
            let r = team::remove(&c, &name, &factory, force, &actor)?;
            println!(
                "Removed team {} of {}; {}",
                r.name,
                r.factory,
                if r.branch_kept {
                    if r.unmerged_commits > 0 {
                        format!(
                            "branch {} kept ({} commit(s) not in the target)",
                            ctx::esc(&r.branch),
                            r.unmerged_commits
                        )
                    } else {
                        format!("branch {} kept", ctx::esc(&r.branch))
                    }
                } else {
                    format!("branch {} deleted (merged)", ctx::esc(&r.branch))
                }
            );
            for n in &r.notes {
                eprintln!("note: {}", ctx::esc(n));
            }
        }
        Command::Submit {
            name,
            factory,
            title,
            priority,
            work_order,
            json,
        } => {
            let (name, factory) = which(name, factory)?;
            let s = team::submit(
                &c,
                &Submit {
                    name,
                    factory,
                    title,
                    priority,
                    work_order,
                },
                &actor,
            )?;
            if json {
                ctx::json(&s)?;
            } else {
                println!(
                    "Submitted {} {:?} to QA: {} at {} ({} commit(s) from {}){}",
                    s.work_order,
                    truncate(&ctx::esc(&s.title), 60),
                    s.branch,
                    &s.head[..s.head.len().min(12)],
                    s.commits,
                    ctx::esc(&s.source_branch),
                    if s.resubmitted { ", again" } else { "" }
                );
                eprintln!(
                    "QA merges it when the gates pass; follow it with `wo show {}` or `co team list`",
                    s.work_order
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
