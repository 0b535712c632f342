//! `co`: the company. Parses arguments, calls `vermas_core`, prints.
//! `vermas_cli::parse` adds the global `--color` flag and the help styles `wo` shares.

mod cmd;
mod ctx;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    Demo(cmd::demo::Args),
    /// Make a company here (or in DIR): .vermas/config.toml, .work/, ceo/, logs/
    Init(cmd::init::Args),
    /// Factories: add a project, list them, show one
    #[command(subcommand)]
    Factory(cmd::factory::Command),
    /// Effective configuration and where each value comes from
    #[command(subcommand)]
    Config(cmd::config::Command),
    /// Give a work order to a worker in a factory (queued when no slot is free)
    Dispatch(cmd::dispatch::Args),
    /// Workers: list, status, spawn, kill, done
    #[command(subcommand)]
    Worker(cmd::worker::Command),
    /// What this agent must do now (set and clear by hand with subcommands)
    Assignment(cmd::assignment::Args),
    /// Send mail to an agent (ceo, myproject/supervisor, myproject/workers/slot0, …)
    Send(cmd::send::Args),
    /// This agent's mail (AGENT_ID, or ceo): urgent first, then oldest
    Inbox(cmd::inbox::Args),
    /// Show a message and mark it read
    Read(cmd::read::Args),
    /// Archive a message
    Archive(cmd::archive::Args),
    /// Type a message into an agent's session (literally; checked that it landed)
    Nudge(cmd::nudge::Args),
    /// Company overview: factories, agents, slots, queues, mail
    Status(cmd::status::Args),
    /// Check tmux, git, runtimes, config, stores, assignments, worktrees, sessions
    Doctor(cmd::doctor::Args),
    /// Back up the company: config, every store (under its lock), git refs, worker worktrees
    Backup(cmd::backup::Args),
    /// Restore a company from `co backup`'s archive, then check it with co doctor
    Restore(cmd::restore::Args),
    /// Role context, assignment and unread mail, for agent hooks
    Prime(cmd::prime::Args),
    /// Start (or attach to) the CEO session
    Ceo(cmd::ceo::Args),
    /// The watchdog that keeps supervisors and QA alive
    #[command(subcommand)]
    Operations(cmd::operations::Command),
    /// The built-in supervisor loop of a factory
    #[command(subcommand)]
    Supervisor(cmd::supervisor::Command),
    /// The built-in QA merge queue of a factory
    #[command(subcommand)]
    Qa(cmd::qa::Command),
    /// Let QA merge a branch that changes protected paths (tests, gate scripts)
    Approve(cmd::approve::Args),
    /// Send a branch that changes protected paths back to a worker, with a reason
    Reject(cmd::reject::Args),
    /// Sprints: named sets of work orders and their progress
    #[command(subcommand)]
    Sprint(cmd::sprint::Command),
    /// Team workspaces: a worktree, a mail address and a tmux shell for people
    #[command(subcommand)]
    Team(cmd::team::Command),
    /// Print the completion script for a shell (bash, zsh, fish, …)
    Completions(cmd::completions::Args),
    /// Print the man page, or write one per subcommand into a directory
    Man(cmd::man::Args),
    /// Start an agent with its private environment (used by the sessions co starts)
    #[command(hide = true)]
    ExecAgent(cmd::exec_agent::Args),
    /// Record an agent's state from a CLI hook (run by Claude Code's hooks)
    #[command(hide = true)]
    AgentHook(cmd::agent_hook::Args),
}

fn main() -> ExitCode {
    vermas_core::effects::process::quiet_on_closed_pipe();
    let cli: Cli = vermas_cli::parse();
    let result = match cli.command {
        Command::Demo(a) => cmd::demo::run(a),
        Command::Init(a) => cmd::init::run(a),
        Command::Factory(c) => cmd::factory::run(c),
        Command::Config(c) => cmd::config::run(c),
        Command::Dispatch(a) => cmd::dispatch::run(a),
        Command::Worker(c) => cmd::worker::run(c),
        Command::Assignment(a) => cmd::assignment::run(a),
        Command::Send(a) => cmd::send::run(a),
        Command::Inbox(a) => cmd::inbox::run(a),
        Command::Read(a) => cmd::read::run(a),
        Command::Archive(a) => cmd::archive::run(a),
        Command::Nudge(a) => cmd::nudge::run(a),
        Command::Status(a) => cmd::status::run(a),
        Command::Doctor(a) => cmd::doctor::run(a),
        Command::Backup(a) => cmd::backup::run(a),
        Command::Restore(a) => cmd::restore::run(a),
        Command::Prime(a) => cmd::prime::run(a),
        Command::Ceo(a) => cmd::ceo::run(a),
        Command::Operations(c) => cmd::operations::run(c),
        Command::Supervisor(c) => cmd::supervisor::run(c),
        Command::Qa(c) => cmd::qa::run(c),
        Command::Approve(a) => cmd::approve::run(a),
        Command::Reject(a) => cmd::reject::run(a),
        Command::Completions(a) => cmd::completions::run(a),
        Command::Man(a) => cmd::man::run(a),
        Command::ExecAgent(a) => cmd::exec_agent::run(a),
        Command::AgentHook(a) => cmd::agent_hook::run(a),
        Command::Sprint(c) => cmd::sprint::run(c),
        Command::Team(c) => cmd::team::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            vermas_cli::color::eprint_error(&vermas_core::text::escape_control(&e.message()));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
