//! `co nudge AGENT TEXT`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "co nudge myproject/workers/slot0 \"Run the tests before you finish\"",
    "# Long or multi-line text is written to a file the nudge points at",
    "co nudge myproject/supervisor \"$(cat plan.md)\"",
))]
pub struct Args {
    /// The agent: ceo, myproject/supervisor, myproject/qa, myproject/workers/slot0, …
    agent: String,
    /// Typed literally; newlines never press Enter; long text goes to a file
    #[arg(allow_hyphen_values = true)]
    text: String,
    /// Print the agent, its session, whether the text landed and any file as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let c = ctx::company()?;
    let n = vermas_core::actions::nudge::nudge(&c, &a.agent, &a.text, &ctx::actor())?;
    if a.json {
        ctx::json(&serde_json::json!({
            "agent": n.agent.to_string(),
            "session": n.session,
            "delivered": n.outcome.delivered,
            "file": n.file,
        }))?;
    } else if let Some(f) = &n.file {
        println!(
            "Wrote the message to {} and pointed {} at it",
            f.display(),
            n.agent
        );
    }
    if n.outcome.delivered {
        if !a.json {
            println!("Nudged {} ({})", n.agent, n.session);
        }
        Ok(ExitCode::SUCCESS)
    } else {
        vermas_cli::color::eprint_warning(&format!(
            "typed into {} but could not see the text land; look with: {}",
            n.session,
            c.tmux().attach_hint(&n.session)
        ));
        Ok(ExitCode::FAILURE)
    }
}
