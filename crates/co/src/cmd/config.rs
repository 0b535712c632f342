//! `co config show`: every effective value and where it came from.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the effective configuration (of a factory with --factory, or the one you are in)
    Show {
        #[arg(long)]
        factory: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let Command::Show { factory, json } = cmd;
    let c = ctx::company()?;
    let name = match factory {
        Some(f) => Some(f),
        None => ctx::default_factory(&c)?,
    };
    let config = match &name {
        Some(n) => {
            let f = c.factory(n)?;
            for w in &f.config.warnings {
                if !c.config.warnings.contains(w) {
                    eprintln!("warning: {w}");
                }
            }
            f.config
        }
        None => c.config.clone(),
    };
    if json {
        let m: serde_json::Map<String, serde_json::Value> = config
            .origins()
            .map(|(k, v, s)| {
                (
                    k.to_string(),
                    serde_json::json!({ "value": v, "source": s.to_string() }),
                )
            })
            .collect();
        ctx::json(&m)?;
        return Ok(ExitCode::SUCCESS);
    }
    match &name {
        Some(n) => println!("# effective configuration of factory {n}"),
        None => println!("# effective configuration of company {}", c.name()),
    }
    for (k, v, s) in config.origins() {
        println!("{k} = {}  # {s}", ctx::esc(&v.to_string()));
    }
    Ok(ExitCode::SUCCESS)
}
