//! `wo rebuild-projections`: replays the log into `work_orders.jsonl`, `messages.jsonl`,
//! `slots.jsonl`, `sprints.jsonl`, `teams.jsonl` and the id index, in one pass over the log.

use crate::ctx::Global;
use std::process::ExitCode;
use std::time::Instant;
use vermas_core::Result;
use vermas_core::event::EventRef;
use vermas_core::mail::Messages;
use vermas_core::slots::Slots;
use vermas_core::sprint::Sprints;
use vermas_core::store::{Loaded, Projection};
use vermas_core::team::Teams;
use vermas_core::workorder::{IdIndex, WorkOrders};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# After restoring a backup or when `wo doctor` says a projection differs",
    "wo rebuild-projections",
    "wo rebuild-projections --json",
))]
pub struct Args {
    /// Print what was rebuilt as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let c = g.open()?;
    let t = Instant::now();
    // Which worker holds which slot, the sprints and the teams (all tiny) ride along on the
    // same pass.
    let mut slots = Slots::default();
    let mut sprints = Sprints::default();
    let mut teams = Teams::default();
    let (wos, msgs) = IdIndex::rebuild_alongside(&c.store, |ids| {
        let mut every = |ev: &EventRef<'_>| {
            ids(ev);
            let _ = slots.apply(ev);
            if Sprints::wants(&ev.event_type) {
                let _ = sprints.apply(ev);
            }
            if Teams::wants(&ev.event_type) {
                let _ = teams.apply(ev);
            }
        };
        let (wos, msgs) = c.store.rebuild_pair::<WorkOrders, Messages>(&mut every)?;
        let end = wos.checkpoint.clone();
        Ok(((wos, msgs), end))
    })?;
    c.store.save(&Loaded {
        state: slots,
        checkpoint: wos.checkpoint.clone(),
        issues: Vec::new(),
        caught_up: 0,
        rebuilt: Some("rebuilt".into()),
    })?;
    let (n_sprints, n_teams) = (sprints.all().len(), teams.len());
    save_small(&c.store, sprints, &wos.checkpoint)?;
    save_small(&c.store, teams, &wos.checkpoint)?;
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
    // The look-up index is checked against what was just rebuilt (it is caught up from the
    // log on every open, so only damage inside it can make it differ) and reset when it
    // differs: the next look-up builds it again from the log.
    if c.store
        .dir()
        .join(vermas_core::workorder::INDEX_FILE)
        .exists()
    {
        let same = vermas_core::workorder::Index::open(&c.store)
            .and_then(|i| i.differs_from(&wos.state))
            .is_ok_and(|d| d.is_none());
        if !same {
            vermas_core::workorder::Index::invalidate(&c.store)?;
        }
    }
    if a.json {
        crate::print::json(&serde_json::json!({
            "work_orders": wos.state.len(),
            "messages": msgs.state.len(),
            "sprints": n_sprints,
            "teams": n_teams,
            "events": wos.checkpoint.seq,
            "elapsed_ms": t.elapsed().as_millis() as u64,
        }))?;
    } else {
        println!(
            "Rebuilt work_orders.jsonl ({} work orders), messages.jsonl ({} messages), slots.jsonl, sprints.jsonl ({n_sprints} sprints) and teams.jsonl ({n_teams} teams) from {} events in {:.0?}",
            wos.state.len(),
            msgs.state.len(),
            wos.checkpoint.seq,
            t.elapsed()
        );
    }
    crate::ctx::warn_issues(&wos.issues);
    // Freeing a million events' worth of records one by one takes a third of a second; the
    // process is about to exit, which frees it all at once.
    std::mem::forget(wos);
    std::mem::forget(msgs);
    Ok(ExitCode::SUCCESS)
}

/// Saves a projection built on the shared pass (its issues are not kept, as for slots: the
/// work order projection reports the log's problems).
fn save_small<P: Projection>(
    store: &vermas_core::store::Store,
    state: P,
    end: &vermas_core::store::Checkpoint,
) -> Result<()> {
    Ok(store.save(&Loaded {
        state,
        checkpoint: end.clone(),
        issues: Vec::new(),
        caught_up: 0,
        rebuilt: Some("rebuilt".into()),
    })?)
}
