//! `co demo`: the whole company in one command, no API key, no network.

use crate::ctx;
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::demo::{self, DemoOptions};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Watch a company merge three work orders (about 10 seconds)",
    "co demo",
    "# Keep it afterwards to look around, with three workers",
    "co demo --keep --workers 3 --dir /tmp/demo",
))]
pub struct Args {
    /// Where to build the demo company (a new or empty directory; default: a temporary one)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How many workers run at once
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    workers: u32,
    /// Keep the company, its tmux server and its sessions afterwards
    #[arg(long)]
    keep: bool,
    /// Give up after this many seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 180)]
    timeout: u64,
    /// After the steps, print the summary as JSON (the steps still stream to stderr)
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let dir = match a.dir {
        Some(d) => Some(ctx::cwd()?.join(d)),
        None => None,
    };
    let (tx, _rx) = std::sync::mpsc::channel();
    let shutdown = vermas_core::loops::daemon::handle_signals(tx)?;
    let s = demo::run(
        &DemoOptions {
            dir,
            workers: a.workers,
            keep: a.keep,
            timeout: std::time::Duration::from_secs(a.timeout),
        },
        &shutdown,
        &mut |line| {
            if a.json {
                eprintln!("{line}")
            } else {
                println!("{line}")
            }
        },
    )?;
    if a.json {
        ctx::json(&s)?;
        return Ok(if s.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    println!();
    println!(
        "Summary: {} of {} work orders merged, {} failed, {} rework round(s), {:.1}s",
        s.merged,
        s.total,
        s.failed,
        s.rework_rounds,
        s.elapsed_ms as f64 / 1000.0
    );
    if s.kept {
        println!(
            "Kept in {} (tmux server {}). Look around:",
            s.dir.display(),
            s.socket
        );
        println!(
            "  cd {} && co status && git -C demo log --oneline main",
            s.dir.display()
        );
        println!("  tmux -L {} ls", s.socket);
        println!(
            "Clean up with: (cd {} && co operations stop); tmux -L {} kill-server; rm -rf {}",
            s.dir.display(),
            s.socket,
            s.dir.display()
        );
    } else {
        println!(
            "Cleaned up: the demo company, its tmux server and its directory are gone (use --keep to look around)."
        );
    }
    Ok(if s.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
