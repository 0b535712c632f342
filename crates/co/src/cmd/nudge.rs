//! `co nudge AGENT TEXT`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Args)]
pub struct Args {
    /// ceo, myproject/workers/slot0, …
    agent: String,
    /// Typed literally; newlines never press Enter; long text goes to a file
    #[arg(allow_hyphen_values = true)]
    text: String,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let n = vermas_core::actions::nudge::nudge(&c, &a.agent, &a.text, &ctx::actor())?;
    if let Some(f) = &n.file {
        println!(
            "Wrote the message to {} and pointed {} at it",
            f.display(),
            n.agent
        );
    }
    if n.outcome.delivered {
        println!("Nudged {} ({})", n.agent, n.session);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "warning: typed into {} but could not see the text land; look with: {}",
            n.session,
            c.tmux().attach_hint(&n.session)
        );
        Ok(ExitCode::FAILURE)
    }
}
