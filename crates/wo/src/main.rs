//! `wo`: work orders and the event log. Parses arguments, calls `vermas_core`, prints.
//! `vermas_cli::parse` adds the global `--color` flag and the help styles `co` shares.

mod cmd;
mod ctx;
mod print;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_cli::Deferred;

#[derive(Parser)]
#[command(
    name = "wo",
    version,
    about = "Work orders: create, track and inspect them, and the event log behind them",
    after_help = vermas_cli::examples!(
        "The store is --work-dir DIR, else $COMPANY_ROOT/$CO_FACTORY/.work, else the nearest .work/ above the current directory, else $COMPANY_ROOT/.work. At a company's root, list, stats and events cover every store of the company (--factory NAME narrows); writes go to the company's store. Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 permission, 5 conflict.";
        "# Create work, see it, close it",
        "wo create --title \"Fix bug X\" --type bug --priority 1",
        "wo list",
        "wo show mp-k3x9q2",
        "wo close mp-k3x9q2 --reason \"merged\"",
    )
)]
struct Cli {
    /// The .work directory to use (or a directory that holds one)
    #[arg(long, global = true, value_name = "DIR", display_order = 999)]
    work_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a standalone .work/ store in the current directory
    Init(Deferred<cmd::init::Args>),
    /// Create a work order
    Create(Deferred<cmd::create::Args>),
    /// List work orders (open work by default)
    List(Deferred<cmd::list::Args>),
    /// Show one work order: record, dependencies, children and recent history
    Show(Deferred<cmd::show::Args>),
    /// Change fields or the status of a work order
    Update(Deferred<cmd::update::Args>),
    /// Close work orders
    Close(Deferred<cmd::close::Args>),
    /// Open work orders whose blockers are all closed
    Ready(Deferred<cmd::ready::Args>),
    /// Work orders waiting on something: open blockers, or status blocked
    Blocked(Deferred<cmd::blocked::Args>),
    /// Dependencies between work orders
    #[command(subcommand)]
    Dep(Deferred<cmd::dep::Command>),
    /// Counts by status, type and priority, plus store health
    Stats(Deferred<cmd::stats::Args>),
    /// The event log: list, tail, replay, stats, archive
    #[command(subcommand)]
    Events(Deferred<cmd::events::Command>),
    /// Rebuild every projection (work orders, messages, sprints…) from the log
    RebuildProjections(Deferred<cmd::rebuild::Args>),
    /// Check the log line by line, seq continuity, projections and references
    Doctor(Deferred<cmd::doctor::Args>),
    /// How well the company works: first-try merges, rework, lead time, gates
    #[command(subcommand)]
    Eval(Deferred<cmd::eval::Command>),
    /// Print the completion script for a shell (bash, zsh, fish, …)
    Completions(Deferred<cmd::completions::Args>),
    /// Print the man page, or write one per subcommand into a directory
    Man(Deferred<cmd::man::Args>),
    /// Share this factory's work orders through its git remote (the [sync] branch)
    Sync(Deferred<cmd::sync::Args>),
}

fn main() -> ExitCode {
    vermas_core::effects::process::quiet_on_closed_pipe();
    let cli: Cli = vermas_cli::parse();
    let g = ctx::Global {
        work_dir: cli.work_dir,
    };
    let result = match cli.command {
        Command::Init(Deferred(a)) => cmd::init::run(&g, a),
        Command::Create(Deferred(a)) => cmd::create::run(&g, a),
        Command::List(Deferred(a)) => cmd::list::run(&g, a),
        Command::Show(Deferred(a)) => cmd::show::run(&g, a),
        Command::Update(Deferred(a)) => cmd::update::run(&g, a),
        Command::Close(Deferred(a)) => cmd::close::run(&g, a),
        Command::Ready(Deferred(a)) => cmd::ready::run(&g, a),
        Command::Blocked(Deferred(a)) => cmd::blocked::run(&g, a),
        Command::Dep(Deferred(c)) => cmd::dep::run(&g, c),
        Command::Stats(Deferred(a)) => cmd::stats::run(&g, a),
        Command::Events(Deferred(c)) => cmd::events::run(&g, c),
        Command::RebuildProjections(Deferred(a)) => cmd::rebuild::run(&g, a),
        Command::Doctor(Deferred(a)) => cmd::doctor::run(&g, a),
        Command::Eval(Deferred(c)) => cmd::eval::run(&g, c),
        Command::Completions(Deferred(a)) => cmd::completions::run(a),
        Command::Man(Deferred(a)) => cmd::man::run(a),
        Command::Sync(Deferred(a)) => cmd::sync::run(&g, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            vermas_cli::color::eprint_error(&vermas_core::text::escape_control(&e.message()));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
