//! `co archive ID`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::mail;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let (store, m) = mail::find(&c, &ctx::me()?, &a.id)?;
    if mail::mark(&store, &m.id, true, &ctx::actor())? {
        println!("Archived {}", m.id);
    } else {
        println!("{} was already archived", m.id);
    }
    Ok(ExitCode::SUCCESS)
}
