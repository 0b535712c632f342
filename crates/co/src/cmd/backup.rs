//! `co backup [--output FILE] [--json]`: the whole company in one tar.gz (see
//! `vermas_core::backup`).

use crate::ctx;
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::backup;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Everything: config, every store, the git history, workers' unfinished work",
    "co backup",
    "co backup --output /backups/company-$(date +%F).tar.gz",
))]
pub struct Args {
    /// Where to write the archive (default: vermas-backup-<company>-<time>.tar.gz here); never
    /// overwritten
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The manifest and where the archive went, as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let output = match a.output {
        Some(o) => o,
        None => backup::default_output(&c, &ctx::cwd()?),
    };
    let r = backup::backup(&c, &output)?;
    if a.json {
        ctx::json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let m = &r.manifest;
    println!(
        "Backed up {} to {} ({} bytes)",
        ctx::esc(&m.company),
        ctx::esc(&r.output),
        r.bytes
    );
    print_stores(&m.stores);
    for f in &m.factories {
        let worktrees: Vec<&str> = f.worktrees.iter().map(|w| w.path.as_str()).collect();
        print_factory(&f.name, f.branches.len(), &f.unmerged, &worktrees);
    }
    Ok(ExitCode::SUCCESS)
}

/// What an archive holds, store by store (`co backup` and `co restore` say the same).
pub(crate) fn print_stores(stores: &[backup::StoreEntry]) {
    for s in stores {
        println!(
            "  store {}: last seq {}, {} work orders, {} messages",
            ctx::esc(&s.path),
            s.last_seq,
            s.work_orders,
            s.messages
        );
    }
}

/// One factory of an archive: its branches, those not merged, its worker worktrees.
pub(crate) fn print_factory(name: &str, branches: usize, unmerged: &[String], worktrees: &[&str]) {
    let unmerged = if unmerged.is_empty() {
        String::new()
    } else {
        format!(" (unmerged: {})", ctx::esc(&unmerged.join(", ")))
    };
    println!(
        "  factory {}: {branches} branches{unmerged}; worker worktrees: {}",
        ctx::esc(name),
        if worktrees.is_empty() {
            "none".to_string()
        } else {
            ctx::esc(&worktrees.join(", "))
        }
    );
}
