//! `wo rebuild-projections`: replays the log into `work_orders.jsonl` and `messages.jsonl`.

use crate::ctx::Global;
use std::process::ExitCode;
use std::time::Instant;
use vermas_core::Result;
use vermas_core::mail::Messages;
use vermas_core::workorder::{IdIndex, WorkOrders};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(g: &Global, _a: Args) -> Result<ExitCode> {
    let c = g.open()?;
    let t = Instant::now();
    let wos = c.store.rebuild::<WorkOrders>()?;
    c.store.save(&wos)?;
    let msgs = c.store.rebuild::<Messages>()?;
    c.store.save(&msgs)?;
    {
        let mut w = c.store.lock()?;
        IdIndex::rebuild_now(&mut w)?;
    }
    println!(
        "Rebuilt work_orders.jsonl ({} work orders) and messages.jsonl ({} messages) from {} events in {:.0?}",
        wos.state.len(),
        msgs.state.len(),
        wos.checkpoint.seq,
        t.elapsed()
    );
    crate::ctx::warn_issues(&wos.issues);
    Ok(ExitCode::SUCCESS)
}
