//! `co factory add | list | status`.

use crate::ctx;
use std::io::IsTerminal;
use std::process::ExitCode;
use vermas_cli::color;
use vermas_core::Result;
use vermas_core::company::{AddFactory, AddStep, CloneProgress};
use vermas_core::status;
use vermas_core::text::{table_painted, truncate};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Clone a project into a new factory
    #[command(after_help = vermas_cli::examples!(
        "# From a remote: QA pushes each merge back to origin",
        "co factory add myproject git@github.com:org/myproject.git",
        "# From a local repository (a path or a file:// URL): merges stay local",
        "co factory add tools ~/src/tools --prefix tl",
        "co factory add tools file:///srv/git/tools.git --branch develop",
    ))]
    Add {
        /// The factory's name: lowercase letters, digits and '-' (it becomes the directory)
        name: String,
        /// Where to clone from: a git URL (ssh, https, git, file://) or a local path
        url_or_path: String,
        /// Work order id prefix (default: from the name, e.g. myproject → my)
        #[arg(long)]
        prefix: Option<String>,
        /// The branch QA merges into (default: the repository's default branch)
        #[arg(long)]
        branch: Option<String>,
        /// Print the new factory as JSON (on stdout; progress still goes to stderr)
        #[arg(long)]
        json: bool,
    },
    /// Every factory with its slots and queue
    #[command(after_help = vermas_cli::examples!(
        "co factory list",
        "# Factories whose QA is down",
        "co factory list --json | jq -r '.[] | select(.qa.alive | not) | .name'",
    ))]
    List {
        /// Print every factory's status as JSON
        #[arg(long)]
        json: bool,
    },
    /// Sessions, slots used and free, queue, unread mail
    #[command(after_help = vermas_cli::examples!(
        "co factory status myproject",
        "co factory status myproject --json | jq .queue",
    ))]
    Status {
        /// The factory's name (see `co factory list`)
        name: String,
        /// Print the factory's status as JSON
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
            json,
        } => {
            // git's own progress when someone watches; else a line before and after.
            let terminal = std::io::stderr().is_terminal();
            let progress = if terminal {
                CloneProgress::Stderr
            } else {
                CloneProgress::Quiet
            };
            let mut on_step = |step: AddStep<'_>| match step {
                AddStep::Cloning { source, factory } => {
                    eprintln!("Cloning {} into {factory}/.git …", ctx::esc(source))
                }
                AddStep::Cloned { elapsed } => {
                    eprintln!("Cloned in {:.1}s", elapsed.as_secs_f64())
                }
            };
            let f = c.add_factory_with(
                &AddFactory {
                    name,
                    source: url_or_path.clone(),
                    prefix,
                    branch,
                },
                &ctx::actor(),
                progress,
                &mut on_step,
            )?;
            let config = f.work_dir().join("config.toml");
            let shown_config = config
                .strip_prefix(&c.root)
                .unwrap_or(&config)
                .display()
                .to_string();
            let push = f.settings.factory.push;
            if json {
                ctx::json(&serde_json::json!({
                    "name": f.name,
                    "prefix": f.prefix(),
                    "target_branch": f.target_branch(),
                    "source": url_or_path,
                    "dir": f.dir,
                    "config": config,
                    "push": push,
                }))?;
            } else {
                println!(
                    "Added factory {} (prefix {}, target branch {}) from {}",
                    f.name,
                    f.prefix(),
                    f.target_branch(),
                    ctx::esc(&url_or_path)
                );
            }
            if push {
                eprintln!(
                    "QA will push merges of {} to origin (push = true in {shown_config})",
                    f.target_branch()
                );
            } else {
                eprintln!(
                    "QA will not push merges of {}: they stay in {}/.git (push = false in {shown_config}; origin is a local repository)",
                    f.target_branch(),
                    f.name
                );
            }
            eprintln!(
                "Next: configure gates in {shown_config}, then `co operations start` and `co dispatch <id> {}`",
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
                    table_painted(
                        &[
                            "NAME",
                            "PREFIX",
                            "TARGET",
                            "SLOTS",
                            "QUEUE",
                            "SUPERVISOR",
                            "QA"
                        ],
                        &rows,
                        color::status_cells(&[5, 6]),
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
    let outside = s
        .pid
        .map(|p| format!(", pid {p} outside tmux"))
        .unwrap_or_default();
    match s.uptime_seconds {
        Some(u) if s.alive => format!(
            "{} (up {}{outside})",
            color::status("running"),
            vermas_core::clock::human_age(u)
        ),
        _ if s.alive => format!("{}{outside}", color::status("running")),
        _ => color::status("not running"),
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
            color::status(w.status.as_str()),
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
