//! `co read ID`: show a message and mark it read.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::mail;
use vermas_core::text::escape_control_multiline;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "co read msg-7hd2k4",
    "# The body alone",
    "co read msg-7hd2k4 --json | jq -r .body",
))]
pub struct Args {
    /// The message id (from `co inbox`)
    id: String,
    /// Print the message as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let me = ctx::me()?;
    let (store, m) = mail::find(&c, &me, &a.id)?;
    mail::mark(&store, &m.id, false, &ctx::actor())?;
    if a.json {
        ctx::json(&m)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}  [{}] {}", m.id, m.priority.as_str(), ctx::esc(&m.kind));
    println!("From:    {}", ctx::esc(&m.from));
    println!("To:      {}", ctx::esc(&m.to));
    println!("Sent:    {}", m.sent_at);
    println!("Subject: {}", ctx::esc(&m.subject));
    for (k, v) in &m.meta {
        println!("  {}: {}", ctx::esc(k), ctx::esc(v));
    }
    println!();
    println!("{}", escape_control_multiline(&m.body));
    Ok(ExitCode::SUCCESS)
}
