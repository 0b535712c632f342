//! `wo close ID...`: every id is checked first; if any cannot close, nothing is written.

use crate::ctx::{self, Global};
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::workorder::{self, WorkOrders};

#[derive(clap::Args)]
pub struct Args {
    #[arg(required = true, value_parser = super::parse_id)]
    ids: Vec<String>,
    /// Why it is closed
    #[arg(long)]
    reason: Option<String>,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    // Group by owning store so ids from several factories close in one command.
    let mut groups: Vec<(vermas_core::context::StoreContext, Vec<String>)> = Vec::new();
    for id in &a.ids {
        let c = ctx::open_for(g, id)?;
        match groups
            .iter_mut()
            .find(|(gc, _)| gc.store.dir() == c.store.dir())
        {
            Some((_, ids)) => ids.push(id.clone()),
            None => groups.push((c, vec![id.clone()])),
        }
    }
    // Check everything before writing anything.
    let mut plans = Vec::new();
    let mut locks = Vec::new();
    for (c, ids) in &groups {
        let w = c.store.lock()?;
        let wos = c.store.load::<WorkOrders>()?;
        ctx::warn_issues(&wos.issues);
        let mut events = Vec::new();
        for id in ids {
            let wo = ctx::require(&wos.state, id)?;
            events.push(workorder::plan_close(
                &wo,
                a.reason.as_deref(),
                None,
                &c.actor,
            )?);
        }
        plans.push(events);
        locks.push(w);
    }
    for (w, events) in locks.iter_mut().zip(plans) {
        w.append(events)?;
        w.report_warnings();
    }
    for id in &a.ids {
        println!("Closed {id}");
    }
    Ok(ExitCode::SUCCESS)
}
