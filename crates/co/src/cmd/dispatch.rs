//! `co dispatch WO FACTORY`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::actions::dispatch::{DispatchOutcome, DispatchRequest, dispatch};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Give a work order to a worker in myproject (queued when every slot is busy)",
    "co dispatch mp-k3x9q2 myproject",
    "# A company work order, with another agent CLI, failing instead of queueing",
    "co dispatch hq-4fj2k1 myproject --runtime codex --no-queue",
    "# Where it went, for a script",
    "co dispatch mp-k3x9q2 myproject --json | jq -r .session",
))]
pub struct Args {
    /// The work order id (open, queued or rework; its prefix names the store that holds it)
    work_order: String,
    /// The factory to work in (see `co factory list`)
    factory: String,
    /// Use this runtime instead of [roles.worker] runtime (a preset or a [runtimes.NAME])
    #[arg(long, value_name = "NAME")]
    runtime: Option<String>,
    /// Fail (exit 5) instead of queueing when no slot is free
    #[arg(long)]
    no_queue: bool,
    /// Print what happened as JSON: `outcome` is spawned, queued or queued_behind
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let out = dispatch(
        &c,
        &DispatchRequest {
            work_order: a.work_order,
            factory: a.factory,
            runtime: a.runtime,
            no_queue: a.no_queue,
            actor: ctx::actor(),
        },
    )?;
    if a.json {
        ctx::json(&to_json(&out))?;
        warn_undelivered(&out);
    } else {
        print(&out);
    }
    Ok(ExitCode::SUCCESS)
}

/// The outcome as JSON (the same facts the human lines give).
pub(crate) fn to_json(out: &DispatchOutcome) -> serde_json::Value {
    match out {
        DispatchOutcome::Spawned {
            session,
            slot,
            work_order,
            incarnation,
            attach,
            nudge,
        } => serde_json::json!({
            "outcome": "spawned",
            "work_order": work_order,
            "session": session,
            "slot": slot,
            "incarnation": incarnation,
            "attach": attach,
            "start_message_delivered": nudge.as_ref().map(|n| n.delivered),
        }),
        DispatchOutcome::Queued {
            work_order,
            factory,
            position,
            of,
            busy,
        } => serde_json::json!({
            "outcome": "queued",
            "work_order": work_order,
            "factory": factory,
            "position": position,
            "of": of,
            "busy_slots": busy,
        }),
        DispatchOutcome::QueuedBehind {
            work_order,
            factory,
            position,
            of,
            ran,
        } => serde_json::json!({
            "outcome": "queued_behind",
            "work_order": work_order,
            "factory": factory,
            "position": position,
            "of": of,
            "ran": ran.as_deref().map(to_json),
        }),
    }
}

/// The warning a human gets when the start message was not seen landing.
fn warn_undelivered(out: &DispatchOutcome) {
    match out {
        DispatchOutcome::Spawned {
            session,
            attach,
            nudge: Some(n),
            ..
        } if !n.delivered => vermas_cli::color::eprint_warning(&format!(
            "the start message could not be seen landing in {session}; check it with: {attach}"
        )),
        DispatchOutcome::QueuedBehind { ran: Some(r), .. } => warn_undelivered(r),
        _ => {}
    }
}

pub(crate) fn print(out: &DispatchOutcome) {
    match out {
        DispatchOutcome::Spawned {
            session,
            work_order,
            attach,
            ..
        } => {
            println!("Spawned {session}, assigned {work_order}");
            warn_undelivered(out);
            eprintln!("Watch it: {attach}");
        }
        DispatchOutcome::Queued {
            work_order,
            factory,
            position,
            of,
            busy,
        } => {
            println!(
                "No free slot in {factory} ({busy} busy): {work_order} queued, position {position} of {of}"
            );
        }
        DispatchOutcome::QueuedBehind {
            work_order,
            factory,
            position,
            of,
            ran,
        } => {
            if let Some(ran) = ran {
                print(ran);
            }
            println!(
                "{work_order} queued in {factory} behind more urgent work, position {position} of {of}"
            );
        }
    }
}
