//! `co send ADDR -s SUBJECT -m BODY`.

use crate::ctx;
use std::collections::BTreeMap;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::mail::{self, MailPriority, Outgoing};

fn parse_priority(s: &str) -> std::result::Result<MailPriority, String> {
    match s {
        "urgent" => Ok(MailPriority::Urgent),
        "normal" => Ok(MailPriority::Normal),
        "low" => Ok(MailPriority::Low),
        _ => Err("unknown priority (allowed: urgent, normal, low)".into()),
    }
}

fn parse_meta(s: &str) -> std::result::Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| "expected KEY=VALUE".to_string())
}

#[derive(clap::Args)]
pub struct Args {
    /// ceo, myproject/supervisor, myproject/qa, myproject/workers/slot0, myproject/teams/NAME
    to: String,
    #[arg(short = 's', long)]
    subject: String,
    /// The body; `-` reads standard input
    #[arg(short = 'm', long, allow_hyphen_values = true)]
    message: String,
    /// Message type (WORKER_DONE, REWORK_REQUEST, NUDGE, …)
    #[arg(long = "type", default_value = "message")]
    kind: String,
    #[arg(long, value_parser = parse_priority, default_value = "normal")]
    priority: MailPriority,
    /// KEY=VALUE (repeat)
    #[arg(long, value_parser = parse_meta)]
    meta: Vec<(String, String)>,
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
            eprintln!(
                "warning: the {what} holds what looks like an {kind} API key; it is sent masked"
            );
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
    println!("Sent {id} to {to}");
    match mail::nudge_if_idle(&c, &to, &from, &id, &ctx::actor()) {
        Ok(Some(n)) if n.delivered => eprintln!("{to} was idle: nudged it to read its mail"),
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not nudge {to}: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}
