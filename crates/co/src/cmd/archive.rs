//! `co archive ID`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::mail;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "co archive msg-7hd2k4",
    "# Archive everything already read",
    "co inbox --all --json | jq -r '.[] | select(.read_at) | .id' | xargs -n1 co archive",
))]
pub struct Args {
    /// The message id (from `co inbox`)
    id: String,
    /// Print the message id and whether it was archived now as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let (store, m) = mail::find(&c, &ctx::me()?, &a.id)?;
    let now = mail::mark(&store, &m.id, true, &ctx::actor())?;
    if a.json {
        ctx::json(&serde_json::json!({ "id": m.id, "archived": true, "already": !now }))?;
    } else if now {
        println!("Archived {}", m.id);
    } else {
        println!("{} was already archived", m.id);
    }
    Ok(ExitCode::SUCCESS)
}
