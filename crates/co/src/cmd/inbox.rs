//! `co inbox [--all]`: urgent first, then oldest.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::clock::age_of;
use vermas_core::mail::Messages;
use vermas_core::text::{table, truncate};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Your unread mail (a person reads the ceo mailbox; an agent its AGENT_ID's)",
    "co inbox",
    "co inbox --all --json | jq -r '.[].subject'",
))]
pub struct Args {
    /// Read messages too (not archived ones)
    #[arg(long)]
    all: bool,
    /// Print the messages as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let me = ctx::me()?;
    let (_, store) = vermas_core::mail::resolve_address(&c, &me.to_string())?;
    let msgs = store.load::<Messages>()?.state;
    let incarnation = std::env::var("VERMAS_INCARNATION").ok();
    let inbox: Vec<_> = msgs
        .inbox(&me.to_string(), a.all)
        .into_iter()
        .filter(|m| vermas_core::mail::is_for(m, incarnation.as_deref()))
        .collect();
    if a.json {
        ctx::json(&inbox)?;
    } else if inbox.is_empty() {
        eprintln!("No {}mail for {me}.", if a.all { "" } else { "unread " });
    } else {
        let rows: Vec<Vec<String>> = inbox
            .iter()
            .map(|m| {
                vec![
                    m.id.clone(),
                    m.priority.as_str().into(),
                    ctx::esc(&m.from),
                    ctx::esc(&m.kind),
                    age_of(&m.sent_at),
                    if m.read_at.is_some() { "read" } else { "new" }.into(),
                    truncate(&ctx::esc(&m.subject), 60),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["ID", "PRIORITY", "FROM", "TYPE", "AGE", "", "SUBJECT"],
                &rows
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
