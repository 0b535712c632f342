//! `co`: the company. Parses arguments, calls `vermas_core`, prints.
//! `vermas_cli::parse` adds the global `--color` flag and the help styles `wo` shares.

mod cmd;
mod ctx;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use vermas_cli::Deferred;

#[derive(Parser)]
#[command(
    name = "co",
    version,
    about = "The company: factories, dispatch, workers, mail, operations",
    after_help = vermas_cli::examples!(
        "The company is $COMPANY_ROOT, else the nearest directory above holding .vermas/config.toml, else ~/company. Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 permission, 5 conflict. Colour follows --color, NO_COLOR and whether output is a terminal.";
        "# A company with one factory, its watchdog, and work for a worker",
        "co init && co factory add myproject git@github.com:org/myproject.git",
        "co operations start",
        "co dispatch mp-k3x9q2 myproject",
        "co status",
    )
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch a whole demo company work: no API key, no network, cleans up after itself
    Demo(Deferred<cmd::demo::Args>),
    /// Make a company here (or in DIR): .vermas/config.toml, .work/, ceo/, logs/
    Init(Deferred<cmd::init::Args>),
    /// Factories: add a project, list them, show one
    #[command(subcommand)]
    Factory(Deferred<cmd::factory::Command>),
    /// Effective configuration and where each value comes from
    #[command(subcommand)]
    Config(Deferred<cmd::config::Command>),
    /// Give a work order to a worker in a factory (queued when no slot is free)
    Dispatch(Deferred<cmd::dispatch::Args>),
    /// Workers: list, status, spawn, kill, done
    #[command(subcommand)]
    Worker(Deferred<cmd::worker::Command>),
    /// What this agent must do now (set and clear by hand with subcommands)
    Assignment(Deferred<cmd::assignment::Args>),
    /// Send mail to an agent (ceo, myproject/supervisor, myproject/workers/slot0, …)
    Send(Deferred<cmd::send::Args>),
    /// This agent's mail (AGENT_ID, or ceo): urgent first, then oldest
    Inbox(Deferred<cmd::inbox::Args>),
    /// Show a message and mark it read
    Read(Deferred<cmd::read::Args>),
    /// Archive a message
    Archive(Deferred<cmd::archive::Args>),
    /// Type a message into an agent's session (literally; checked that it landed)
    Nudge(Deferred<cmd::nudge::Args>),
    /// Company overview: factories, agents, slots, queues, mail
    Status(Deferred<cmd::status::Args>),
    /// Check tmux, git, runtimes, config, stores, assignments, worktrees, sessions
    Doctor(Deferred<cmd::doctor::Args>),
    /// Back up the company: config, every store (under its lock), git refs, worker worktrees
    Backup(Deferred<cmd::backup::Args>),
    /// Restore a company from `co backup`'s archive, then check it with co doctor
    Restore(Deferred<cmd::restore::Args>),
    /// Role context, assignment and unread mail, for agent hooks
    Prime(Deferred<cmd::prime::Args>),
    /// Start (or attach to) the CEO session
    Ceo(Deferred<cmd::ceo::Args>),
    /// The watchdog that keeps supervisors and QA alive
    #[command(subcommand)]
    Operations(Deferred<cmd::operations::Command>),
    /// The built-in supervisor loop of a factory
    #[command(subcommand)]
    Supervisor(Deferred<cmd::supervisor::Command>),
    /// The built-in QA merge queue of a factory
    #[command(subcommand)]
    Qa(Deferred<cmd::qa::Command>),
    /// Let QA merge a branch that changes protected paths (tests, gate scripts)
    Approve(Deferred<cmd::approve::Args>),
    /// Send a branch that changes protected paths back to a worker, with a reason
    Reject(Deferred<cmd::reject::Args>),
    /// Sprints: named sets of work orders and their progress
    #[command(subcommand)]
    Sprint(Deferred<cmd::sprint::Command>),
    /// Team workspaces: a worktree, a mail address and a tmux shell for people
    #[command(subcommand)]
    Team(Deferred<cmd::team::Command>),
    /// Print the completion script for a shell (bash, zsh, fish, …)
    Completions(Deferred<cmd::completions::Args>),
    /// Print the man page, or write one per subcommand into a directory
    Man(Deferred<cmd::man::Args>),
    /// Start an agent with its private environment (used by the sessions co starts)
    #[command(hide = true)]
    ExecAgent(Deferred<cmd::exec_agent::Args>),
    /// Record an agent's state from a CLI hook (run by Claude Code's hooks)
    #[command(hide = true)]
    AgentHook(Deferred<cmd::agent_hook::Args>),
}

fn main() -> ExitCode {
    vermas_core::effects::process::quiet_on_closed_pipe();
    let cli: Cli = vermas_cli::parse();
    let result = match cli.command {
        Command::Demo(Deferred(a)) => cmd::demo::run(a),
        Command::Init(Deferred(a)) => cmd::init::run(a),
        Command::Factory(Deferred(c)) => cmd::factory::run(c),
        Command::Config(Deferred(c)) => cmd::config::run(c),
        Command::Dispatch(Deferred(a)) => cmd::dispatch::run(a),
        Command::Worker(Deferred(c)) => cmd::worker::run(c),
        Command::Assignment(Deferred(a)) => cmd::assignment::run(a),
        Command::Send(Deferred(a)) => cmd::send::run(a),
        Command::Inbox(Deferred(a)) => cmd::inbox::run(a),
        Command::Read(Deferred(a)) => cmd::read::run(a),
        Command::Archive(Deferred(a)) => cmd::archive::run(a),
        Command::Nudge(Deferred(a)) => cmd::nudge::run(a),
        Command::Status(Deferred(a)) => cmd::status::run(a),
        Command::Doctor(Deferred(a)) => cmd::doctor::run(a),
        Command::Backup(Deferred(a)) => cmd::backup::run(a),
        Command::Restore(Deferred(a)) => cmd::restore::run(a),
        Command::Prime(Deferred(a)) => cmd::prime::run(a),
        Command::Ceo(Deferred(a)) => cmd::ceo::run(a),
        Command::Operations(Deferred(c)) => cmd::operations::run(c),
        Command::Supervisor(Deferred(c)) => cmd::supervisor::run(c),
        Command::Qa(Deferred(c)) => cmd::qa::run(c),
        Command::Approve(Deferred(a)) => cmd::approve::run(a),
        Command::Reject(Deferred(a)) => cmd::reject::run(a),
        Command::Completions(Deferred(a)) => cmd::completions::run(a),
        Command::Man(Deferred(a)) => cmd::man::run(a),
        Command::ExecAgent(Deferred(a)) => cmd::exec_agent::run(a),
        Command::AgentHook(Deferred(a)) => cmd::agent_hook::run(a),
        Command::Sprint(Deferred(c)) => cmd::sprint::run(c),
        Command::Team(Deferred(c)) => cmd::team::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            vermas_cli::color::eprint_error(&vermas_core::text::escape_control(&e.message()));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
