//! `wo rebuild-projections`: replays the log into `work_orders.jsonl`, `messages.jsonl` and the
//! id index, in one pass over the log.

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
    let (wos, msgs) = IdIndex::rebuild_alongside(&c.store, |ids| {
        let (wos, msgs) = c.store.rebuild_pair::<WorkOrders, Messages>(ids)?;
        let end = wos.checkpoint.clone();
        Ok(((wos, msgs), end))
    })?;
    eprintln!("TIMING scan {:?}", t.elapsed());
    // The two files are rendered and written (and fsynced) at the same time.
    std::thread::scope(|s| -> Result<()> {
        let other = std::thread::Builder::new()
            .name("save-messages".into())
            .spawn_scoped(s, || c.store.save(&msgs));
        match other {
            Ok(h) => {
                let saved = c.store.save(&wos);
                match h.join() {
                    Ok(r) => r?,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
                saved?;
            }
            Err(_) => {
                c.store.save(&wos)?;
                c.store.save(&msgs)?;
            }
        }
        Ok(())
    })?;
    eprintln!("TIMING saved {:?}", t.elapsed());
    println!(
        "Rebuilt work_orders.jsonl ({} work orders) and messages.jsonl ({} messages) from {} events in {:.0?}",
        wos.state.len(),
        msgs.state.len(),
        wos.checkpoint.seq,
        t.elapsed()
    );
    crate::ctx::warn_issues(&wos.issues);
    // Freeing a million events' worth of records one by one takes a third of a second; the
    // process is about to exit, which frees it all at once.
    std::mem::forget(wos);
    std::mem::forget(msgs);
    Ok(ExitCode::SUCCESS)
}
