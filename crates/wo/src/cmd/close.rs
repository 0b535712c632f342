//! `wo close ID...`: every id is checked first; if any cannot close, nothing is written.

use crate::ctx::{self, Global};
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::context::StoreContext;
use vermas_core::ids::prefix_of;
use vermas_core::workorder;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "wo close mp-k3x9q2 --reason \"merged by hand\"",
    "# Several at once, from several factories: all close, or none does",
    "wo close mp-k3x9q2 np-4fj2k1 hq-a8d3m0",
))]
pub struct Args {
    /// The work order ids (each routed by its prefix to the store that holds it)
    #[arg(required = true, value_parser = super::parse_id)]
    ids: Vec<String>,
    /// Why it is closed
    #[arg(long)]
    reason: Option<String>,
    /// Print the closed ids as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    // Each id once (`wo close X X` closes X once), in the order given.
    let mut ids: Vec<&str> = Vec::new();
    for id in &a.ids {
        if !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    // Group by owning store so ids from several factories close in one command; each prefix
    // is routed (and its store opened) once.
    let mut groups: Vec<(StoreContext, Vec<&str>)> = Vec::new();
    let mut group_of_prefix: Vec<(Option<&str>, usize)> = Vec::new();
    for &id in &ids {
        let prefix = prefix_of(id);
        let i = match group_of_prefix.iter().find(|(p, _)| *p == prefix) {
            Some(&(_, i)) => i,
            None => {
                let c = ctx::open_for(g, id)?;
                let i = match groups
                    .iter()
                    .position(|(gc, _)| gc.store.dir() == c.store.dir())
                {
                    Some(i) => i,
                    None => {
                        groups.push((c, Vec::new()));
                        groups.len() - 1
                    }
                };
                group_of_prefix.push((prefix, i));
                i
            }
        };
        groups[i].1.push(id);
    }
    // Every command takes the locks in the same order (by store directory), so two closes
    // over the same stores cannot deadlock.
    groups.sort_by(|x, y| x.0.store.dir().cmp(y.0.store.dir()));
    // Check everything before writing anything.
    let mut plans = Vec::new();
    let mut locks = Vec::new();
    for (c, ids) in &groups {
        let w = c.store.lock()?;
        let wos = ctx::lookup(c)?;
        let mut events = Vec::new();
        for id in ids {
            let wo = workorder::require(&wos, id)?;
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
    if a.json {
        crate::print::json(&serde_json::json!({ "closed": ids }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for id in &ids {
        println!("Closed {id}");
    }
    Ok(ExitCode::SUCCESS)
}
