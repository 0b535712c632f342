//! `wo sync [--all-factories] [--json]`: shares a factory's work orders through its git remote
//! (`[sync] branch` of `origin`); see `vermas_core::sync`.

use crate::ctx::Global;
use std::process::ExitCode;
use vermas_core::company::Company;
use vermas_core::context::{Env, StoreKind, classify, resolve_work_dir};
use vermas_core::sync::{SyncError, sync_factory};
use vermas_core::{Error, Result};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# In a factory: share its work orders through its origin's work-sync branch",
    "wo sync",
    "# From the company root: every factory",
    "wo sync --all-factories --json",
))]
pub struct Args {
    /// Sync every factory of the company, not only the one this store belongs to
    #[arg(long)]
    all_factories: bool,
    /// One JSON report per factory synced (an array)
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let c = g.open()?;
    // Classified by where it was found, not where it points: `.work` may be a link to faster
    // storage, as the guide suggests.
    let cwd = std::env::current_dir()
        .map_err(|e| Error::failure(format!("cannot read the current directory: {e}")))?;
    let found = resolve_work_dir(g.work_dir.as_deref(), &cwd, &Env::from_process())?;
    let (kind, root) = classify(&found);
    let not_a_factory = || SyncError::NotAFactory {
        store: c.store.dir().display().to_string(),
    };
    let root = root.ok_or_else(not_a_factory)?;
    let company = Company::open(&root)?;
    let names = match kind {
        _ if a.all_factories => company.factory_names(),
        StoreKind::Factory(name) => vec![name],
        _ => return Err(not_a_factory().into()),
    };
    if names.is_empty() {
        eprintln!("No factories to sync; add one with `co factory add NAME URL`.");
    }
    let mut reports = Vec::new();
    let mut failed: Option<Error> = None;
    for name in names {
        match sync_factory(&company, &name) {
            Ok(r) => {
                for w in &r.warnings {
                    eprintln!("warning: {name}: {}", vermas_core::text::escape_control(w));
                }
                if !a.json {
                    println!("{name}: {}", r.summary());
                }
                reports.push(r);
            }
            Err(e) => {
                eprintln!(
                    "error: {name}: {}",
                    vermas_core::text::escape_control(&e.message())
                );
                failed.get_or_insert(e);
            }
        }
    }
    if a.json {
        let s = serde_json::to_string_pretty(&reports)
            .map_err(|e| Error::failure(format!("cannot serialise output: {e}")))?;
        println!("{s}");
    }
    Ok(match failed {
        Some(e) => ExitCode::from(e.exit_code() as u8),
        None => ExitCode::SUCCESS,
    })
}
