//! `co send ADDR -s SUBJECT -m BODY`.

use crate::ctx;
use std::collections::BTreeMap;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::mail::{self, MailPriority, Outgoing};

fn priority_parser() -> impl clap::builder::TypedValueParser<Value = MailPriority> {
    vermas_cli::values::choice(["urgent", "normal", "low"], |s| match s {
        "urgent" => Some(MailPriority::Urgent),
        "normal" => Some(MailPriority::Normal),
        "low" => Some(MailPriority::Low),
        _ => None,
    })
}

fn parse_meta(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| "expected KEY=VALUE".to_string())
}

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Wake a worker up",
    "co send myproject/workers/slot0 -s NUDGE -m \"Wake up\"",
    "# An urgent note to the CEO with the body from a file",
    "co send ceo -s \"Release blocked\" -m - --priority urgent < notes.txt",
    "# Typed mail with metadata, and the message id for a script",
    "co send myproject/supervisor -s Review -m \"Please look\" --type REVIEW --meta wo=mp-k3x9q2 --json",
))]
pub struct Args {
    /// The address: ceo, myproject/supervisor, myproject/qa, myproject/workers/slot0, myproject/teams/NAME
    to: String,
    /// The subject line
    #[arg(short = 's', long)]
    subject: String,
    /// The body; `-` reads standard input
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    message: String,
    /// Message type (WORKER_DONE, REWORK_REQUEST, NUDGE, …)
    #[arg(long = "type", value_name = "TYPE", default_value = "message")]
    kind: String,
    /// How soon it needs attention (urgent mail is listed first)
    #[arg(long, value_parser = priority_parser(), default_value = "normal")]
    priority: MailPriority,
    /// Extra facts as KEY=VALUE (repeat for more)
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_meta)]
    meta: Vec<(String, String)>,
    /// Print the message id, the address and whether the recipient was nudged as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let body = if a.message == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
            vermas_core::Error::usage(format!(
                "reading the body from stdin: {e} (it must be UTF-8)"
            ))
        })?;
        s
    } else {
        a.message
    };
    for (what, text) in [("subject", &a.subject), ("message", &body)] {
        for kind in vermas_core::text::mask_secrets(text).1 {
            vermas_cli::color::eprint_warning(&format!(
                "the {what} holds what looks like an {kind} API key; it is sent masked"
            ));
        }
    }
    let c = ctx::company()?;
    let from = ctx::me()?.to_string();
    let out = Outgoing {
        from: from.clone(),
        to: a.to,
        subject: a.subject,
        body,
        kind: a.kind,
        priority: a.priority,
        meta: a.meta.into_iter().collect::<BTreeMap<_, _>>(),
    };
    let (id, to) = mail::send(&c, &out, &ctx::actor())?;
    if !a.json {
        println!("Sent {id} to {to}");
    }
    let nudged = match mail::nudge_if_idle(&c, &to, &from, &id, &ctx::actor()) {
        Ok(Some(n)) if n.delivered => {
            eprintln!("{to} was idle: nudged it to read its mail");
            true
        }
        Ok(_) => false,
        Err(e) => {
            vermas_cli::color::eprint_warning(&format!(
                "could not nudge {to}: {}",
                ctx::esc(&e.to_string())
            ));
            false
        }
    };
    if a.json {
        ctx::json(&serde_json::json!({ "id": id, "to": to.to_string(), "nudged": nudged }))?;
    }
    Ok(ExitCode::SUCCESS)
}
