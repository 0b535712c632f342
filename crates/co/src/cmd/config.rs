//! `co config show`: every effective value and where it came from.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the effective configuration (of a factory with --factory, or the one you are in)
    #[command(after_help = vermas_cli::examples!(
        "# The company's settings, each with where it came from",
        "co config show",
        "# A factory's (company file < factory file < environment)",
        "co config show --factory myproject",
        "co config show --json | jq '.\"worker.max_slots_per_factory\"'",
    ))]
    Show {
        /// The factory whose settings to show (default: the one you are in, else the company)
        #[arg(long, value_name = "NAME")]
        factory: Option<String>,
        /// Print every key with its value and source as JSON
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
                    vermas_cli::color::eprint_warning(w);
                }
            }
            f.config
        }
        None => c.config.clone(),
    };
    let loops = vermas_core::loops::running(&c);
    if json {
        let mut m: serde_json::Map<String, serde_json::Value> = config
            .origins()
            .map(|(k, v, s)| {
                (
                    k.to_string(),
                    serde_json::json!({ "value": v, "source": s.to_string() }),
                )
            })
            .collect();
        m.insert(
            "running_loops".into(),
            serde_json::to_value(&loops).unwrap_or_default(),
        );
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
    // The loops read these files again at each patrol; say whether each one could.
    if !loops.is_empty() {
        println!("\n# running loops (they pick up edits at their next patrol)");
        for l in &loops {
            match l.config_errors.first() {
                None => println!("# {} (pid {}): these settings", l.name, l.pid),
                Some(e) => println!(
                    "# {} (pid {}): the settings from before this invalid edit: {}",
                    l.name,
                    l.pid,
                    ctx::esc(e)
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
