//! `co operations start | stop | status | logs [-f] | run`.

use crate::ctx;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use vermas_core::loops::operations;
use vermas_core::{Error, Result};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Run the watchdog in the tmux session `operations` and return
    Start,
    /// Stop the watchdog and the supervisor and QA sessions (workers keep running)
    Stop,
    /// Pid, uptime, last patrol and each factory's supervisor and QA
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Show logs/operations.log
    Logs {
        /// Keep printing new lines
        #[arg(short, long)]
        follow: bool,
        /// How many lines to show first
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// The watchdog in the foreground (what `start` runs; for systemd)
    Run,
}

pub fn run(cmd: Command) -> Result<ExitCode> {
    let c = ctx::company()?;
    match cmd {
        Command::Start => {
            let s = operations::start(&c)?;
            println!(
                "Operations started (pid {}) in tmux session {}",
                s.pid, s.session
            );
            eprintln!(
                "It starts each factory's supervisor and QA. Logs: co operations logs -f; watch: {}",
                s.attach
            );
        }
        Command::Stop => {
            let s = operations::stop(&c, &ctx::actor())?;
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
                _ => println!("Operations is not running (start it with `co operations start`)"),
            }
            for (f, list) in &r.factories {
                let parts: Vec<String> = list
                    .iter()
                    .map(|h| {
                        let mut s =
                            format!("{} {}", h.session, if h.alive { "up" } else { "down" });
                        if h.restarts > 0 {
                            s.push_str(&format!(" ({} restarts)", h.restarts));
                        }
                        if h.escalated {
                            s.push_str(" ESCALATED");
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
