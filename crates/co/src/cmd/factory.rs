//! `co factory add | list | status`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::company::AddFactory;
use vermas_core::status;
use vermas_core::text::{table, truncate};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Clone a project into a new factory
    Add {
        /// [a-z0-9-]+
        name: String,
        /// A git URL or a local path
        url_or_path: String,
        /// Work order id prefix (default: from the name, e.g. myproject → my)
        #[arg(long)]
        prefix: Option<String>,
        /// The branch QA merges into (default: the repository's default branch)
        #[arg(long)]
        branch: Option<String>,
    },
    /// Every factory with its slots and queue
    List {
        #[arg(long)]
        json: bool,
    },
    /// Sessions, slots used and free, queue, unread mail
    Status {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let c = ctx::company()?;
    match cmd {
        Command::Add {
            name,
            url_or_path,
            prefix,
            branch,
        } => {
            let f = c.add_factory(
                &AddFactory {
                    name,
                    source: url_or_path.clone(),
                    prefix,
                    branch,
                },
                &ctx::actor(),
            )?;
            println!(
                "Added factory {} (prefix {}, target branch {}) from {}",
                f.name,
                f.prefix(),
                f.target_branch(),
                ctx::esc(&url_or_path)
            );
            eprintln!(
                "Next: configure gates in {}, then `co operations start` and `co dispatch <id> {}`",
                f.work_dir().join("config.toml").display(),
                f.name
            );
        }
        Command::List { json } => {
            let sessions = c.tmux().sessions()?;
            let mut all = Vec::new();
            for f in c.factories()? {
                all.push(status::factory_status(&c, &f, &sessions)?);
            }
            if json {
                ctx::json(&all)?;
            } else if all.is_empty() {
                eprintln!(
                    "No factories yet; add one with `co factory add <name> <git-url-or-path>`."
                );
            } else {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            s.prefix.clone(),
                            s.target_branch.clone(),
                            format!("{}/{}", s.slots_used, s.slots_total),
                            s.queue.len().to_string(),
                            if s.supervisor.alive { "up" } else { "down" }.into(),
                            if s.qa.alive { "up" } else { "down" }.into(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(
                        &[
                            "NAME",
                            "PREFIX",
                            "TARGET",
                            "SLOTS",
                            "QUEUE",
                            "SUPERVISOR",
                            "QA"
                        ],
                        &rows
                    )
                );
            }
        }
        Command::Status { name, json } => {
            let f = c.factory(&name)?;
            let s = status::factory_status(&c, &f, &c.tmux().sessions()?)?;
            if json {
                ctx::json(&s)?;
                return Ok(ExitCode::SUCCESS);
            }
            print_factory(&s);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn up(s: &status::SessionState) -> String {
    match s.uptime_seconds {
        Some(u) if s.alive => format!("running (up {})", vermas_core::clock::human_age(u)),
        _ => "not running".into(),
    }
}

/// The human view of one factory (also used by `co status`).
pub fn print_factory(s: &status::FactoryStatus) {
    println!(
        "Factory {} (prefix {}, target branch {})",
        s.name, s.prefix, s.target_branch
    );
    println!("  {}: {}", s.supervisor.session, up(&s.supervisor));
    println!("  {}: {}", s.qa.session, up(&s.qa));
    if let Some(p) = &s.qa_progress {
        let age = vermas_core::clock::age_of(&p.since);
        println!(
            "    merging {} ({}): {}, for {age}",
            p.work_orders.join(", "),
            p.batch,
            p.gate
                .as_deref()
                .map(|g| format!("gate {}", ctx::esc(g)))
                .unwrap_or_else(|| "merging".into()),
        );
    }
    println!(
        "  slots: {} of {} used{}",
        s.slots_used,
        s.slots_total,
        if s.slots_free.is_empty() {
            String::new()
        } else {
            format!(
                "; free: {}",
                s.slots_free
                    .iter()
                    .map(|n| format!("slot{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    for w in &s.workers {
        println!(
            "    slot{}  {}  {}  idle {}  attempt {}  ({})",
            w.slot,
            w.work_order,
            w.status.as_str(),
            vermas_core::clock::human_age(w.idle_seconds),
            w.attempt,
            w.session
        );
    }
    if !s.queue.is_empty() {
        println!("  queue ({}):", s.queue.len());
        for q in &s.queue {
            println!(
                "    {} P{} {}",
                q.id,
                q.priority,
                truncate(&ctx::esc(&q.title), 60)
            );
        }
    }
    let wos: Vec<String> = s
        .work_orders
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !wos.is_empty() {
        println!("  work orders: {}", wos.join(", "));
    }
    let unread: Vec<String> = s.unread.iter().map(|(k, v)| format!("{k} {v}")).collect();
    if !unread.is_empty() {
        println!("  unread mail: {}", unread.join(", "));
    }
}
