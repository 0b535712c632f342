//! `co sprint create | add | remove | list | show | close`.

use crate::ctx;
use std::process::ExitCode;
use vermas_core::Result;
use vermas_core::clock::human_age;
use vermas_core::sprint::{self, Attention, CreateSprint, Finder, SprintStatus, Summary};
use vermas_core::text::{table, truncate};
use vermas_core::workorder::Status;

/// A work order id argument: one line (an unknown id is a not-found error naming it).
fn parse_id(s: &str) -> std::result::Result<String, String> {
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err("a work order id is one word, e.g. mp-k3x9q2".into());
    }
    Ok(s.to_string())
}

#[derive(clap::Subcommand)]
pub enum Command {
    #[command(after_help = vermas_cli::examples!(
        "# A sprint for myproject's login work",
        "co sprint create login --factory myproject --goal \"users can sign in\"",
    ))]
    /// Make a sprint: a named set of work orders to watch together
    Create {
        /// [a-z0-9-]+, unique among open sprints
        name: String,
        /// The factory it is for: only its work orders (and company hq- ones) can join
        #[arg(long)]
        factory: Option<String>,
        /// One line saying what it is for
        #[arg(long)]
        goal: Option<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    #[command(after_help = vermas_cli::examples!(
        "co sprint add login mp-k3x9q2 mp-7h2d0a",
    ))]
    /// Add work orders to an open sprint (all or none)
    Add {
        /// The sprint
        name: String,
        /// Work orders to add
        #[arg(required = true, value_name = "WO", value_parser = parse_id)]
        work_orders: Vec<String>,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    #[command(after_help = vermas_cli::examples!(
        "co sprint remove login mp-7h2d0a",
    ))]
    /// Take work orders out of an open sprint (the work orders themselves are not changed)
    Remove {
        /// The sprint
        name: String,
        /// Work orders to take out
        #[arg(required = true, value_name = "WO", value_parser = parse_id)]
        work_orders: Vec<String>,
    },
    #[command(after_help = vermas_cli::examples!(
        "co sprint list",
        "# Every few minutes, as the guide's daily check",
        "watch -n 60 'co sprint list'",
        "co sprint list --all --json",
    ))]
    /// Work in progress per sprint: counts by status, what is blocked and why, what is in
    /// review, the oldest open work
    List {
        /// Closed sprints too
        #[arg(long)]
        all: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    #[command(after_help = vermas_cli::examples!(
        "co sprint show login",
        "co sprint show login --json | jq '.work_orders[] | select(.status == \"blocked\")'",
    ))]
    /// One sprint: its work orders and what needs attention
    Show {
        /// A sprint name (the open one, else the latest closed) or id
        name: String,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
    },
    #[command(after_help = vermas_cli::examples!(
        "co sprint close login",
    ))]
    /// Close a sprint; its work orders carry on as they are
    Close {
        /// The sprint
        name: String,
    },
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let c = ctx::company()?;
    let actor = ctx::actor();
    match cmd {
        Command::Create {
            name,
            factory,
            goal,
            json,
        } => {
            let s = sprint::create(
                &c,
                &CreateSprint {
                    name,
                    factory,
                    goal: goal.unwrap_or_default(),
                },
                &actor,
            )?;
            if json {
                ctx::json(&s)?;
            } else {
                println!(
                    "Created sprint {} ({}){}",
                    s.name,
                    s.id,
                    s.factory
                        .as_deref()
                        .map(|f| format!(" for {f}"))
                        .unwrap_or_default()
                );
                eprintln!("Next: co sprint add {} <work order>...", s.name);
            }
        }
        Command::Add {
            name,
            work_orders,
            json,
        } => {
            let a = sprint::add(&c, &name, &work_orders, &actor)?;
            if json {
                ctx::json(&a)?;
            } else {
                if !a.added.is_empty() {
                    println!(
                        "Added {} to sprint {} ({} work orders)",
                        a.added.join(", "),
                        a.sprint.name,
                        a.sprint.work_orders.len()
                    );
                }
                if !a.already.is_empty() {
                    eprintln!(
                        "Already in sprint {}: {}",
                        a.sprint.name,
                        a.already
                            .iter()
                            .map(|x| ctx::esc(x))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
        }
        Command::Remove { name, work_orders } => {
            let s = sprint::remove(&c, &name, &work_orders, &actor)?;
            println!(
                "Removed {} from sprint {} ({} work orders left)",
                work_orders
                    .iter()
                    .map(|x| ctx::esc(x))
                    .collect::<Vec<_>>()
                    .join(", "),
                s.name,
                s.work_orders.len()
            );
        }
        Command::List { all, json } => {
            let sprints = sprint::list(&c, all)?;
            let mut finder = Finder::new(&c)?;
            let mut sums = Vec::new();
            for s in &sprints {
                sums.push(sprint::summary(&mut finder, s)?.0);
            }
            if json {
                ctx::json(&sums)?;
            } else if sums.is_empty() {
                eprintln!(
                    "No {}sprints; make one with `co sprint create NAME`.",
                    if all { "" } else { "open " }
                );
            } else {
                print!("{}", list_table(&sums, all));
                let attention = attention_table(&sums);
                if !attention.is_empty() {
                    println!();
                    print!("{attention}");
                }
            }
        }
        Command::Show { name, json } => {
            let s = sprint::get(&c, &name)?;
            let mut finder = Finder::new(&c)?;
            let (sum, wos) = sprint::summary(&mut finder, &s)?;
            if json {
                ctx::json(&serde_json::json!({
                    "sprint": sum,
                    "work_orders": wos,
                }))?;
            } else {
                show(&sum, &wos);
            }
        }
        Command::Close { name } => {
            let (s, unfinished) = sprint::close(&c, &name, &actor)?;
            let total = s.work_orders.len();
            println!(
                "Closed sprint {} ({}): {} of {total} work orders done",
                s.name,
                s.id,
                total - unfinished.len()
            );
            if !unfinished.is_empty() {
                eprintln!(
                    "Not finished (they carry on as they are): {}",
                    unfinished.join(", ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn oldest(s: &Summary) -> String {
    match &s.oldest_open {
        Some(o) => format!("{} ({})", human_age(o.age_seconds), o.id),
        None => "-".into(),
    }
}

/// The at-a-glance table `watch -n 60 'co sprint list'` shows: one line per sprint.
fn list_table(sums: &[Summary], all: bool) -> String {
    let mut header = vec![
        "SPRINT",
        "FACTORY",
        "WORK",
        "OPEN",
        "QUEUED",
        "WORKING",
        "REVIEW",
        "REWORK",
        "BLOCKED",
        "FAILED",
        "DONE",
        "OLDEST OPEN",
    ];
    if all {
        header.insert(1, "STATE");
    }
    let rows: Vec<Vec<String>> = sums
        .iter()
        .map(|s| {
            let n = |st: &[Status]| s.count(st).to_string();
            let mut r = vec![
                s.sprint.name.clone(),
                s.sprint.factory.clone().unwrap_or_else(|| "-".into()),
                s.total.to_string(),
                n(&[Status::Open]),
                n(&[Status::Queued]),
                n(&[Status::Assigned, Status::InProgress]),
                n(&[Status::InReview]),
                n(&[Status::Rework]),
                n(&[Status::Blocked]),
                n(&[Status::Failed]),
                n(&[Status::Closed, Status::Cancelled]),
                oldest(s),
            ];
            if all {
                r.insert(
                    1,
                    match s.sprint.status {
                        SprintStatus::Open => "open",
                        SprintStatus::Closed => "closed",
                    }
                    .into(),
                );
            }
            r
        })
        .collect();
    table(&header, &rows)
}

fn attention_rows(sprint: &str, what: &str, list: &[Attention], rows: &mut Vec<Vec<String>>) {
    for a in list {
        rows.push(vec![
            sprint.to_string(),
            what.to_string(),
            a.id.clone(),
            format!("{:?}", truncate(&ctx::esc(&a.title), 40)),
            truncate(&ctx::esc(a.why.lines().next().unwrap_or_default()), 90),
        ]);
    }
}

/// What needs someone, one line each: blocked (and why), failed, in review.
fn attention_table(sums: &[Summary]) -> String {
    let mut rows = Vec::new();
    for s in sums {
        let name = &s.sprint.name;
        attention_rows(name, "blocked", &s.blocked, &mut rows);
        attention_rows(name, "failed", &s.failed, &mut rows);
        attention_rows(name, "in review", &s.in_review, &mut rows);
        for m in &s.missing {
            rows.push(vec![
                name.clone(),
                "missing".into(),
                ctx::esc(m),
                "-".into(),
                "no store of the company has it".into(),
            ]);
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    table(&["SPRINT", "NEEDS", "WORK ORDER", "TITLE", "WHY"], &rows)
}

fn show(s: &Summary, wos: &[vermas_core::workorder::WorkOrder]) {
    let sp = &s.sprint;
    println!(
        "Sprint {} ({}), {}{}, created {} ago by {}",
        sp.name,
        sp.id,
        match sp.status {
            SprintStatus::Open => "open",
            SprintStatus::Closed => "closed",
        },
        sp.factory
            .as_deref()
            .map(|f| format!(", for {f}"))
            .unwrap_or_default(),
        vermas_core::clock::age_of(&sp.created_at),
        ctx::esc(&sp.created_by)
    );
    if !sp.goal.is_empty() {
        println!("Goal: {}", ctx::esc(&sp.goal));
    }
    let counts: Vec<String> = s
        .by_status
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "{} work orders{}{}",
        s.total,
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {}", counts.join(", "))
        },
        match &s.oldest_open {
            Some(_) => format!("; oldest open {}", oldest(s)),
            None => String::new(),
        }
    );
    if !wos.is_empty() {
        let rows: Vec<Vec<String>> = wos
            .iter()
            .map(|w| {
                vec![
                    w.id.clone(),
                    w.status.to_string(),
                    format!("P{}", w.priority),
                    w.assignee
                        .as_deref()
                        .map(ctx::esc)
                        .unwrap_or_else(|| "-".into()),
                    vermas_core::clock::age_of(&w.created_at),
                    truncate(&ctx::esc(&w.title), 70),
                ]
            })
            .collect();
        println!();
        print!(
            "{}",
            table(&["ID", "STATUS", "PRI", "ASSIGNEE", "AGE", "TITLE"], &rows)
        );
    }
    let attention = attention_table(std::slice::from_ref(s));
    if !attention.is_empty() {
        println!();
        print!("{attention}");
    }
}
