//! `co operations start | stop | status | logs [-f] | run`.

use crate::ctx;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use vermas_core::loops::operations;
use vermas_core::{Error, Result};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Run the watchdog in the tmux session `operations` and return
    #[command(after_help = vermas_cli::examples!(
        "# Start it; it starts each factory's supervisor and QA",
        "co operations start",
        "co operations start --json | jq .pid",
    ))]
    Start {
        /// Print the pid, the session and how to watch it as JSON
        #[arg(long)]
        json: bool,
    },
    /// Stop the watchdog and the supervisor and QA sessions (workers keep running)
    #[command(after_help = vermas_cli::examples!(
        "co operations stop",
        "# Then wait for the workers to finish",
        "co worker list --all",
    ))]
    Stop {
        /// Print what was stopped as JSON
        #[arg(long)]
        json: bool,
    },
    /// Pid, uptime, last patrol and each factory's supervisor and QA
    #[command(after_help = vermas_cli::examples!(
        "co operations status",
        "co operations status --json | jq .running",
    ))]
    Status {
        /// Print the watchdog's state and each factory's sessions as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show logs/operations.log
    #[command(after_help = vermas_cli::examples!(
        "co operations logs",
        "# Follow it, starting from the last 200 lines",
        "co operations logs -f -n 200",
    ))]
    Logs {
        /// Keep printing new lines
        #[arg(short, long)]
        follow: bool,
        /// How many lines to show first
        #[arg(short = 'n', long, value_name = "N", default_value_t = 50)]
        lines: usize,
    },
    /// The watchdog in the foreground (what `start` runs; for systemd)
    #[command(after_help = vermas_cli::examples!(
        "# In a systemd unit: ExecStart=/usr/local/bin/co operations run",
        "COMPANY_ROOT=/srv/company co operations run",
    ))]
    Run,
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let c = ctx::company()?;
    match cmd {
        Command::Start { json } => {
            let s = operations::start(&c)?;
            if json {
                ctx::json(&serde_json::json!({
                    "pid": s.pid,
                    "session": s.session,
                    "attach": s.attach,
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "Operations started (pid {}) in tmux session {}",
                s.pid, s.session
            );
            eprintln!(
                "It starts each factory's supervisor and QA. Logs: co operations logs -f; watch: {}",
                s.attach
            );
        }
        Command::Stop { json } => {
            let s = operations::stop(&c, &ctx::actor())?;
            if json {
                ctx::json(&serde_json::json!({
                    "pid": s.pid,
                    "was_running": s.pid.is_some(),
                    "forced": s.forced,
                    "sessions": s.sessions,
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
            match s.pid {
                Some(pid) => println!(
                    "Stopped operations (pid {pid}){}",
                    if s.forced {
                        " after it did not stop within 10 s"
                    } else {
                        ""
                    }
                ),
                None => println!("Operations was not running"),
            }
            if !s.sessions.is_empty() {
                println!("Stopped sessions: {}", s.sessions.join(", "));
            }
            eprintln!("Workers keep running: co worker list --all");
        }
        Command::Status { json } => {
            let r = operations::status(&c)?;
            if json {
                ctx::json(&r)?;
                return Ok(ExitCode::SUCCESS);
            }
            match (r.running, r.pid) {
                (true, Some(pid)) => println!(
                    "Operations is running: pid {pid}, up {}, last patrol {}",
                    r.uptime_seconds
                        .map(vermas_core::clock::human_age)
                        .unwrap_or("?".into()),
                    r.last_patrol
                        .as_deref()
                        .map(|t| format!("{} ago", vermas_core::clock::age_of(t)))
                        .unwrap_or("not yet".into())
                ),
                _ => println!(
                    "Operations is {} (start it with `co operations start`)",
                    vermas_cli::color::status("not running")
                ),
            }
            for (f, list) in &r.factories {
                let parts: Vec<String> = list
                    .iter()
                    .map(|h| {
                        let mut s = format!(
                            "{} {}",
                            h.session,
                            vermas_cli::color::status(if h.alive { "up" } else { "down" })
                        );
                        if h.restarts > 0 {
                            s.push_str(&format!(" ({} restarts)", h.restarts));
                        }
                        if h.escalated {
                            s.push(' ');
                            s.push_str(&vermas_cli::color::status("ESCALATED"));
                        }
                        s
                    })
                    .collect();
                println!("  {f}: {}", parts.join(", "));
            }
        }
        Command::Logs { follow, lines } => {
            let path = operations::log_path(&c);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            for l in &all[all.len().saturating_sub(lines)..] {
                println!("{l}");
            }
            if follow {
                let mut pos = text.len() as u64;
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    let Ok(mut f) = std::fs::File::open(&path) else {
                        continue;
                    };
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    if len < pos {
                        pos = 0;
                    }
                    if len > pos {
                        let mut buf = String::new();
                        f.seek(SeekFrom::Start(pos))
                            .and_then(|_| f.read_to_string(&mut buf))
                            .map_err(|e| {
                                Error::failure(format!("reading {}: {e}", path.display()))
                            })?;
                        pos = len;
                        let mut out = std::io::stdout().lock();
                        if out
                            .write_all(buf.as_bytes())
                            .and_then(|_| out.flush())
                            .is_err()
                        {
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                }
            }
        }
        Command::Run => operations::run(&c)?,
    }
    Ok(ExitCode::SUCCESS)
}
