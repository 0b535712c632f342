//! What every command needs: the located store, its config, and the warnings to show once.

use std::path::PathBuf;
use vermas_core::context::{self, Env, StoreContext};
use vermas_core::store::{Issue, Loaded};
use vermas_core::workorder::{Lookup, WorkOrders};
use vermas_core::{Error, Result};

/// Flags that apply to every subcommand.
pub struct Global {
    pub work_dir: Option<PathBuf>,
}

impl Global {
    /// Locates and opens the store; prints config warnings to stderr.
    pub fn open(&self) -> Result<StoreContext> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::failure(format!("cannot read the current directory: {e}")))?;
        let c = context::open(self.work_dir.as_deref(), &cwd, &Env::from_process())?;
        for w in &c.config.warnings {
            eprintln!("warning: {w}");
        }
        Ok(c)
    }
}

/// Opens the store that owns `id` (inside a company ids route by prefix).
pub fn open_for(g: &Global, id: &str) -> Result<StoreContext> {
    g.open()?.for_id(id)
}

/// Tells the user (once, on stderr) that the log has damaged or repeated lines.
pub fn warn_issues(issues: &[Issue]) {
    if let Some(first) = issues.first() {
        let more = if issues.len() > 1 {
            format!(" and {} more", issues.len() - 1)
        } else {
            String::new()
        };
        eprintln!(
            "warning: the event log has problems (damaged or repeated lines): {}{more}; run `wo doctor`",
            vermas_core::text::escape_control(&first.to_string())
        );
    }
}

/// The work order projection, up to date, with warnings shown.
pub fn work_orders(c: &StoreContext) -> Result<Loaded<WorkOrders>> {
    let l = c.store.load::<WorkOrders>()?;
    warn_issues(&l.issues);
    Ok(l)
}

/// The work orders for a command that reads a few of them (the index), with warnings shown.
pub fn lookup(c: &StoreContext) -> Result<Lookup> {
    let l = Lookup::open(&c.store)?;
    warn_issues(l.issues());
    Ok(l)
}
