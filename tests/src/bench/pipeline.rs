//! The `pipeline` section: the figures of issue 4 ("Performance"), each beside a baseline
//! measured in the same run.
//!
//! 1. The pipeline's overhead: from spawning `co dispatch` to the `work_order.closed` event,
//!    for a scripted agent that commits at once (`tests/agents/good.sh`) and a gate `true`
//!    whose time (`qa.gate_run` `duration_ms`) is subtracted; one work order at a time, with
//!    `co operations start` and the default intervals. Beside it, the same git and tmux steps
//!    scripted with no coordination at all (worktree, a session that commits, merge, ref
//!    update, cleanup).
//! 2. How long after `co worker done` the supervisor reacts: `mail.sent` (WORKER_DONE) to its
//!    `qa.enqueued`, p50 and p99, beside the configured patrol interval.
//! 3. CPU and memory of an idle `co operations run`, `co supervisor run` and `co qa run` with
//!    10 workers alive (2 factories × 5 slots of `tests/agents/hang.sh`), beside the tmux
//!    server over the same window.

use super::bed::Bed;
use super::sys;
use super::{Opts, Report, Row, fmt_dur, fmt_mib, median, percentile};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use vermas_core::company::Company;

/// Sizes and windows for a full or a quick run.
struct Plan {
    work_orders: usize,
    /// How long the idle company is left alone before sampling.
    settle: Duration,
    /// How long CPU time is sampled over.
    window: Duration,
}

impl Plan {
    fn new(o: Opts) -> Plan {
        if o.quick {
            Plan {
                work_orders: 3,
                settle: Duration::from_secs(1),
                window: Duration::from_secs(5),
            }
        } else {
            Plan {
                work_orders: 20,
                settle: Duration::from_secs(5),
                window: Duration::from_secs(30),
            }
        }
    }
}

pub fn run(o: Opts, r: &mut Report) {
    sys::catch_interrupt();
    let p = Plan::new(o);
    pipeline(&p, r);
    idle(&p, r);
}

/// A gate that passes at once: the pipeline is measured, not the project's tests.
const TRUE_GATE: &str = "[[gates]]\nname = \"true\"\ncommand = \"true\"\ntimeout_seconds = 30\n";

fn ts(e: &Value) -> DateTime<Utc> {
    e["timestamp"]
        .as_str()
        .and_then(vermas_core::clock::parse_timestamp)
        .unwrap_or_else(|| panic!("event without a timestamp: {e}"))
}

/// `b - a`, never negative (event times have millisecond resolution).
fn between(a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
    (b - a).to_std().unwrap_or_default()
}

fn has_event(work: &Path, ty: &str, key: &str, id: &str) -> bool {
    vermas_tests::read_events(work)
        .iter()
        .any(|e| e["event_type"] == ty && e["data"][key] == id)
}

/// One work order through the company.
struct Sample {
    id: String,
    /// Just before `co dispatch` was spawned.
    t0: DateTime<Utc>,
    dispatch: Duration,
}

/// Creates a work order, dispatches it and waits until QA has finished with it (`qa.merged`,
/// QA's last step, after the close, the worktree and branch removal), then a moment more for
/// the supervisor to read the MERGED mail, so the next work order starts on a quiet company.
fn through_company(bed: &Bed, work: &Path, i: usize) -> Sample {
    let id = bed.create("myproject", &format!("Bench: pipeline {i}"));
    let t0 = Utc::now();
    let d = sys::run(&mut bed.co(&["dispatch", &id, "myproject"])).ok("co dispatch");
    assert!(d.stdout.starts_with("Spawned"), "{}", d.stdout);
    bed.wait_for(
        Duration::from_secs(300),
        Duration::from_millis(100),
        &format!("{id} to be merged"),
        || has_event(work, "qa.merged", "work_order", &id).then_some(()),
    );
    sys::sleep(Duration::from_millis(300));
    Sample {
        id,
        t0,
        dispatch: d.wall,
    }
}

/// The baseline: the same steps with git and tmux only. A worktree on a new branch; a session
/// in it that writes a file, commits and signals (`tmux wait-for -S`); waiting for that signal;
/// a `--no-ff` merge in a detached "QA" worktree at the target; moving the target to it; the
/// worktree and branch removed. Returns the wall time of all of it.
fn by_hand(bed: &Bed, repo: &Path, qa: &Path, i: usize) -> Duration {
    let name = format!("pipe{i}");
    let branch = format!("bench/{name}");
    let dir = bed.w().sb.path().join("baseline-wt").join(&name);
    let d = dir.display().to_string();
    let file = format!("work-{name}.txt");
    // The signal is sent whatever happens, so a failure shows up below instead of a hang.
    let script = format!(
        "printf 'work for {name}\\n' > {file} && git add -- {file} && git commit -qm 'Do {name}'; exec tmux wait-for -S {name}"
    );
    let mut env = Vec::new();
    for k in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ] {
        env.push("-e".to_string());
        env.push(format!("{k}=bench"));
    }
    let t = Instant::now();
    bed.git_ok(repo, &["worktree", "add", "-q", "-b", &branch, &d, "main"]);
    let mut new_session = vec!["new-session", "-d", "-s", &name, "-c", &d];
    new_session.extend(env.iter().map(String::as_str));
    new_session.extend(["--", "sh", "-c", &script]);
    bed.tmux_ok(&new_session);
    bed.tmux_ok(&["wait-for", &name]);
    bed.git_ok(qa, &["merge", "--no-ff", "--no-edit", "-q", &branch]);
    bed.git_ok(qa, &["update-ref", "refs/heads/main", "HEAD"]);
    bed.git_ok(repo, &["worktree", "remove", &d]);
    bed.git_ok(repo, &["branch", "-D", &branch]);
    let wall = t.elapsed();
    bed.git_ok(repo, &["cat-file", "-e", &format!("main:{file}")]);
    wall
}

/// Per work order, from the factory's events.
struct Stages {
    total: Duration,
    worker: Duration,
    reaction: Duration,
    qa: Duration,
    gates: Duration,
    gate_runs: usize,
}

fn stages(events: &[Value], s: &Sample) -> Stages {
    let find = |pred: &dyn Fn(&Value) -> bool, what: &str| -> DateTime<Utc> {
        ts(events
            .iter()
            .rev()
            .find(|e| pred(e))
            .unwrap_or_else(|| panic!("no {what} event for {}", s.id)))
    };
    let id = s.id.as_str();
    let done = find(
        &|e| {
            e["event_type"] == "mail.sent"
                && e["data"]["type"] == "WORKER_DONE"
                && e["data"]["meta"]["work_order"] == id
        },
        "WORKER_DONE mail.sent",
    );
    let enqueued = find(
        &|e| e["event_type"] == "qa.enqueued" && e["data"]["work_order"] == id,
        "qa.enqueued",
    );
    let closed = find(
        &|e| e["event_type"] == "work_order.closed" && e["data"]["id"] == id,
        "work_order.closed",
    );
    let gate_ms: Vec<u64> = events
        .iter()
        .filter(|e| e["event_type"] == "qa.gate_run" && e["data"]["work_order"] == id)
        .map(|e| e["data"]["duration_ms"].as_u64().unwrap_or(0))
        .collect();
    let gates = Duration::from_millis(gate_ms.iter().sum());
    let dispatched = s.t0 + s.dispatch;
    Stages {
        total: between(s.t0, closed).saturating_sub(gates),
        worker: between(dispatched, done),
        reaction: between(done, enqueued),
        qa: between(enqueued, closed).saturating_sub(gates),
        gates,
        gate_runs: gate_ms.len(),
    }
}

fn pipeline(p: &Plan, r: &mut Report) {
    eprintln!(
        "timing {} work orders from co dispatch to the merge, one at a time…",
        p.work_orders
    );
    let bed = Bed::new("good.sh", TRUE_GATE);
    let company = Company::open(&bed.w().root).expect("open the company");
    let f = company.factory("myproject").expect("the factory");
    let patrol = f.settings.operations.patrol_interval_seconds;
    let poll = f.settings.mail.poll_interval_seconds;
    bed.co_ok(&["operations", "start"]);
    bed.wait_sessions(
        &["supervisor-myproject".into(), "qa-myproject".into()],
        Duration::from_secs(30),
    );
    let work = bed.factory_dir("myproject").join(".work");
    // The baseline's own bare clone of the same origin (so it never moves the factory's main
    // under QA), and its "QA" worktree.
    let sb = bed.w().sb.path();
    let repo = sb.join("baseline.git");
    let qa = sb.join("baseline-qa");
    bed.git_ok(
        sb,
        &[
            "clone",
            "--bare",
            "-q",
            &bed.w().origin.display().to_string(),
            &repo.display().to_string(),
        ],
    );
    bed.git_ok(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            &qa.display().to_string(),
            "main",
        ],
    );

    let warm = 1;
    let mut samples = Vec::new();
    let mut tb = Vec::new();
    for i in 0..warm + p.work_orders {
        sys::check_interrupted();
        let (s, b) = if i % 2 == 0 {
            let s = through_company(&bed, &work, i);
            (s, by_hand(&bed, &repo, &qa, i))
        } else {
            let b = by_hand(&bed, &repo, &qa, i);
            (through_company(&bed, &work, i), b)
        };
        if i >= warm {
            samples.push(s);
            tb.push(b);
        }
    }
    let events = vermas_tests::read_events(&work);
    let st: Vec<Stages> = samples.iter().map(|s| stages(&events, s)).collect();
    let reworked = st.iter().filter(|s| s.gate_runs != 1).count();
    assert_eq!(reworked, 0, "every work order merged at the first attempt");
    let col = |f: fn(&Stages) -> Duration| -> Vec<Duration> { st.iter().map(f).collect() };
    let (total, base) = (median(&col(|s| s.total)), median(&tb));
    let n = p.work_orders;
    r.add(
        Row::new(
            format!("pipeline: co dispatch → work_order.closed, gate excluded, median of {n}"),
            fmt_dur(total),
        )
        .baseline(format!("same git+tmux steps by hand {}", fmt_dur(base)))
        .ratio(format!("{:.1}×", total.as_secs_f64() / base.as_secs_f64())),
    );
    r.add(
        Row::new(
            "  1. co dispatch (the process), median",
            fmt_dur(median(
                &samples.iter().map(|s| s.dispatch).collect::<Vec<_>>(),
            )),
        )
        .baseline("operations, supervisor and QA running"),
    );
    r.add(
        Row::new(
            "  2. agent: dispatched → WORKER_DONE mail, median",
            fmt_dur(median(&col(|s| s.worker))),
        )
        .baseline("good.sh: co assignment, wo show, commit, co worker done"),
    );
    let reaction = col(|s| s.reaction);
    let interval = format!(
        "patrol interval {} (mail poll {})",
        fmt_secs(patrol),
        fmt_secs(poll)
    );
    let share = |d: Duration| format!("{:.2} %", 100.0 * d.as_secs_f64() / patrol.as_secs_f64());
    let (p50, p99) = (percentile(&reaction, 50.0), percentile(&reaction, 99.0));
    r.add(
        Row::new(
            "  3. supervisor: WORKER_DONE → qa.enqueued, p50",
            fmt_dur(p50),
        )
        .baseline(interval.clone())
        .ratio(share(p50)),
    );
    r.add(
        Row::new(
            format!("  3. supervisor: WORKER_DONE → qa.enqueued, p99 (max of {n})"),
            fmt_dur(p99),
        )
        .baseline(interval)
        .ratio(share(p99)),
    );
    r.add(
        Row::new(
            "  4. QA: qa.enqueued → work_order.closed, gate excluded, median",
            fmt_dur(median(&col(|s| s.qa))),
        )
        .baseline("merge, gate, ref update, close"),
    );
    r.add(
        Row::new(
            "  gate `true` (qa.gate_run duration_ms, subtracted), median",
            fmt_dur(median(&col(|s| s.gates))),
        )
        .baseline("(not in the figures above)"),
    );
}

/// `60 s`, `0.3 s`.
fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// A process watched over the window.
struct Watched {
    label: String,
    pid: u32,
    ticks0: (u64, u64),
    rss_max_kib: u64,
}

fn idle(p: &Plan, r: &mut Report) {
    eprintln!(
        "measuring an idle company with 10 workers alive ({} window)…",
        fmt_dur(p.window)
    );
    let factories = ["myproject", "second"];
    let bed = Bed::new("hang.sh", "");
    bed.add_factory("second", "se", "hang.sh", "");
    bed.co_ok(&["operations", "start"]);
    for f in factories {
        for k in 0..5 {
            let id = bed.create(f, &format!("Bench: idle {k}"));
            let out = bed.co_ok(&["dispatch", &id, f]);
            assert!(out.starts_with("Spawned"), "{out}");
        }
    }
    let mut daemons: Vec<String> = Vec::new();
    for f in factories {
        daemons.push(format!("supervisor-{f}"));
        daemons.push(format!("qa-{f}"));
    }
    bed.wait_sessions(&daemons, Duration::from_secs(30));
    // Every agent has checked its assignment (hang.sh then sleeps).
    bed.wait_for(
        Duration::from_secs(60),
        Duration::from_millis(200),
        "10 workers in progress",
        || {
            factories
                .iter()
                .all(|f| {
                    vermas_tests::read_events(&bed.factory_dir(f).join(".work"))
                        .iter()
                        .filter(|e| e["event_type"] == "agent.working")
                        .count()
                        == 5
                })
                .then_some(())
        },
    );
    sys::sleep(p.settle);

    let ops: Value = serde_json::from_str(&bed.co_ok(&["operations", "status", "--json"]))
        .expect("operations status is JSON");
    let ops_pid = ops["pid"].as_u64().expect("operations pid") as u32;
    let server_pid: u32 = bed
        .tmux_ok(&["display-message", "-p", "#{pid}"])
        .trim()
        .parse()
        .expect("tmux server pid");
    let mut watched: Vec<(String, u32, &str)> =
        vec![("co operations run".into(), ops_pid, "operations run")];
    for f in factories {
        for (role, session) in [("supervisor", "supervisor"), ("qa", "qa")] {
            watched.push((
                format!("co {role} run {f}"),
                bed.pane_pid(&format!("{session}-{f}")),
                role,
            ));
        }
    }
    watched.push(("tmux server".into(), server_pid, "tmux"));
    let mut w: Vec<Watched> = watched
        .into_iter()
        .map(|(label, pid, expect)| {
            let cmd = sys::cmdline(pid);
            assert!(
                cmd.contains(expect),
                "{label}: pid {pid} runs {cmd:?}, not {expect}"
            );
            Watched {
                label,
                pid,
                ticks0: sys::cpu_ticks(pid).expect("cpu ticks"),
                rss_max_kib: 0,
            }
        })
        .collect();
    let hz = sys::clock_ticks();
    let start = Instant::now();
    while start.elapsed() < p.window {
        for x in &mut w {
            x.rss_max_kib = x
                .rss_max_kib
                .max(sys::status_kib(x.pid, "VmRSS").expect("still running"));
        }
        sys::sleep(Duration::from_secs(1).min(p.window.saturating_sub(start.elapsed())));
    }
    let secs = start.elapsed().as_secs_f64();
    let workers = bed
        .sessions()
        .iter()
        .filter(|s| s.starts_with("worker-"))
        .count();
    assert_eq!(workers, 10, "all 10 workers stayed alive");
    let pct = |ticks: u64| 100.0 * ticks as f64 / hz as f64 / secs;
    let ms = |ticks: u64| ticks * 1000 / hz;
    // (label, own ticks, children's ticks, max RSS in KiB)
    let figures: Vec<(String, u64, u64, u64)> = w
        .iter()
        .map(|x| {
            let t1 = sys::cpu_ticks(x.pid).expect("still running");
            (
                x.label.clone(),
                t1.0 - x.ticks0.0,
                t1.1 - x.ticks0.1,
                x.rss_max_kib
                    .max(sys::status_kib(x.pid, "VmRSS").unwrap_or(0)),
            )
        })
        .collect();
    let (daemon_rows, server) = figures.split_at(figures.len() - 1);
    let server = &server[0];
    let server_text = format!("tmux server {:.2} %, {}", pct(server.1), fmt_mib(server.3));
    for (label, own, children, rss) in daemon_rows {
        r.add(
            Row::new(
                format!("idle {label}: CPU of one core, max RSS"),
                format!("{:.2} %, {}", pct(*own), fmt_mib(*rss)),
            )
            .baseline(server_text.clone())
            .ratio(format!(
                "{} ms CPU, +{} ms children",
                ms(*own),
                ms(*children)
            )),
        );
    }
    let own: u64 = daemon_rows.iter().map(|x| x.1 + x.2).sum();
    let rss: u64 = daemon_rows.iter().map(|x| x.3).sum();
    r.add(
        Row::new(
            format!(
                "idle, all {} with their children, {:.0} s window",
                daemon_rows.len(),
                secs
            ),
            format!("{:.2} %, {}", pct(own), fmt_mib(rss)),
        )
        .baseline(server_text)
        .ratio(format!("{} ms CPU", ms(own))),
    );
    r.note(format!(
        "idle CPU: utime+stime (children: cutime+cstime) from /proc/<pid>/stat in ticks of {} ms, so {:.0} s resolve {:.2} % of a core",
        1000 / hz,
        secs,
        pct(1)
    ));
}
