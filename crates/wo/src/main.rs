//! `wo`: work orders and the event log. Parses arguments, calls `vermas_core`, prints.
//! `vermas_cli::parse` adds the global `--color` flag and the help styles `co` shares.

mod cmd;
mod ctx;
mod print;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

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
    Init(cmd::init::Args),
    /// Create a work order
    Create(cmd::create::Args),
    /// List work orders (open work by default)
    List(cmd::list::Args),
    /// Show one work order: record, dependencies, children and recent history
    Show(cmd::show::Args),
    /// Change fields or the status of a work order
    Update(cmd::update::Args),
    /// Close work orders
    Close(cmd::close::Args),
    /// Open work orders whose blockers are all closed
    Ready(cmd::ready::Args),
    /// Work orders waiting on something: open blockers, or status blocked
    Blocked(cmd::blocked::Args),
    /// Dependencies between work orders
    #[command(subcommand)]
    Dep(cmd::dep::Command),
    /// Counts by status, type and priority, plus store health
    Stats(cmd::stats::Args),
    /// The event log: list, tail, replay, stats, archive
    #[command(subcommand)]
    Events(cmd::events::Command),
    /// Rebuild every projection (work orders, messages, sprints…) from the log
    RebuildProjections(cmd::rebuild::Args),
    /// Check the log line by line, seq continuity, projections and references
    Doctor(cmd::doctor::Args),
    /// How well the company works: first-try merges, rework, lead time, gates
    #[command(subcommand)]
    Eval(cmd::eval::Command),
    /// Print the completion script for a shell (bash, zsh, fish, …)
    Completions(cmd::completions::Args),
    /// Print the man page, or write one per subcommand into a directory
    Man(cmd::man::Args),
    /// Share this factory's work orders through its git remote (the [sync] branch)
    Sync(cmd::sync::Args),
}

fn main() -> ExitCode {
    vermas_core::effects::process::quiet_on_closed_pipe();
    let cli: Cli = vermas_cli::parse();
    let g = ctx::Global {
        work_dir: cli.work_dir,
    };
    let result = match cli.command {
        Command::Init(a) => cmd::init::run(&g, a),
        Command::Create(a) => cmd::create::run(&g, a),
        Command::List(a) => cmd::list::run(&g, a),
        Command::Show(a) => cmd::show::run(&g, a),
        Command::Update(a) => cmd::update::run(&g, a),
        Command::Close(a) => cmd::close::run(&g, a),
        Command::Ready(a) => cmd::ready::run(&g, a),
        Command::Blocked(a) => cmd::blocked::run(&g, a),
        Command::Dep(c) => cmd::dep::run(&g, c),
        Command::Stats(a) => cmd::stats::run(&g, a),
        Command::Events(c) => cmd::events::run(&g, c),
        Command::RebuildProjections(a) => cmd::rebuild::run(&g, a),
        Command::Doctor(a) => cmd::doctor::run(&g, a),
        Command::Eval(c) => cmd::eval::run(&g, c),
        Command::Completions(a) => cmd::completions::run(a),
        Command::Man(a) => cmd::man::run(a),
        Command::Sync(a) => cmd::sync::run(&g, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            vermas_cli::color::eprint_error(&vermas_core::text::escape_control(&e.message()));
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
