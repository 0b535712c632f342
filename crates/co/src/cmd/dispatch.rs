//! `co dispatch WO FACTORY`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::actions::dispatch::{DispatchOutcome, DispatchRequest, dispatch};

#[derive(clap::Args)]
pub struct Args {
    /// The work order id
    work_order: String,
    /// The factory to work in
    factory: String,
    /// Use this runtime instead of [roles.worker] runtime
    #[arg(long)]
    runtime: Option<String>,
    /// Fail (exit 5) instead of queueing when no slot is free
    #[arg(long)]
    no_queue: bool,
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
    print(&out);
    Ok(ExitCode::SUCCESS)
}

fn print(out: &DispatchOutcome) {
    match out {
        DispatchOutcome::Spawned {
            session,
            work_order,
            attach,
            nudge,
            ..
        } => {
            println!("Spawned {session}, assigned {work_order}");
            if let Some(n) = nudge
                && !n.delivered
            {
                eprintln!(
                    "warning: the start message could not be seen landing in {session}; check it with: {attach}"
                );
            }
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
