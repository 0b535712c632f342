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
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
pub const TRUE_GATE: &str =
    "[[gates]]\nname = \"true\"\ncommand = \"true\"\ntimeout_seconds = 30\n";

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

/// The events of a store as they are appended, read incrementally: polling the whole log
/// would cost seconds per look in a store of a million work orders.
pub struct Tail {
    work: PathBuf,
    /// Bytes of each log file already read (up to the last whole line).
    read: BTreeMap<PathBuf, u64>,
    pub events: Vec<Value>,
}

impl Tail {
    /// Every event of the store, from the first.
    pub fn from_start(work: &Path) -> Tail {
        let mut t = Tail {
            work: work.to_path_buf(),
            read: BTreeMap::new(),
            events: Vec::new(),
        };
        t.poll();
        t
    }

    /// Only the events appended from now on.
    pub fn from_end(work: &Path) -> Tail {
        let read = Tail::files(work)
            .into_iter()
            .map(|f| {
                let len = whole_lines_len(&f);
                (f, len)
            })
            .collect();
        Tail {
            work: work.to_path_buf(),
            read,
            events: Vec::new(),
        }
    }

    /// Live day partitions and the single-file log (old partitions are never appended to).
    fn files(work: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(work.join("events"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        let single = work.join("events.jsonl");
        if single.is_file() {
            v.push(single);
        }
        v
    }

    /// Reads what was appended since the last poll.
    pub fn poll(&mut self) {
        use std::io::{Read, Seek, SeekFrom};
        for f in Tail::files(&self.work) {
            let from = self.read.get(&f).copied().unwrap_or(0);
            let Ok(mut file) = std::fs::File::open(&f) else {
                continue;
            };
            if file.seek(SeekFrom::Start(from)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            if file.read_to_end(&mut buf).is_err() {
                continue;
            }
            // Only whole lines: a line being written is read at the next poll.
            let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in buf[..whole].split(|&b| b == b'\n') {
                if let Ok(v) = serde_json::from_slice(line) {
                    self.events.push(v);
                }
            }
            self.read.insert(f, from + whole as u64);
        }
    }

    /// Whether an event of type `ty` whose `data.key` is `id` has been appended.
    pub fn has(&mut self, ty: &str, key: &str, id: &str) -> bool {
        self.poll();
        self.events
            .iter()
            .any(|e| e["event_type"] == ty && e["data"][key] == id)
    }
}

/// The length of a file up to its last newline.
fn whole_lines_len(path: &Path) -> u64 {
    use std::os::unix::fs::FileExt;
    let Ok(f) = std::fs::File::open(path) else {
        return 0;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut end = len;
    let mut buf = vec![0u8; 4096];
    while end > 0 {
        let n = (end as usize).min(buf.len());
        if f.read_exact_at(&mut buf[..n], end - n as u64).is_err() {
            return 0;
        }
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return end - n as u64 + i as u64 + 1;
        }
        end -= n as u64;
    }
    0
}

/// One work order through the company.
pub struct Sample {
    pub id: String,
    /// Just before `co dispatch` was spawned.
    pub t0: DateTime<Utc>,
    pub dispatch: Duration,
}

/// Creates a work order, dispatches it and waits until QA has finished with it (`qa.merged`,
/// QA's last step, after the close, the worktree and branch removal), then a moment more for
/// the supervisor to read the MERGED mail, so the next work order starts on a quiet company.
fn through_company(bed: &Bed, tail: &mut Tail, i: usize) -> Sample {
    let id = bed.create("myproject", &format!("Bench: pipeline {i}"));
    let t0 = Utc::now();
    let d = sys::run(&mut bed.co(&["dispatch", &id, "myproject"])).ok("co dispatch");
    assert!(d.stdout.starts_with("Spawned"), "{}", d.stdout);
    bed.wait_for(
        Duration::from_secs(300),
        Duration::from_millis(100),
        &format!("{id} to be merged"),
        || tail.has("qa.merged", "work_order", &id).then_some(()),
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
pub struct Stages {
    /// `co dispatch` spawned → `work_order.closed`, gate time excluded.
    pub total: Duration,
    pub worker: Duration,
    /// `WORKER_DONE` mail → `qa.enqueued`.
    pub reaction: Duration,
    pub qa: Duration,
    pub gates: Duration,
    pub gate_runs: usize,
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

/// The factory's bare clone for the by-hand baseline (its own, so it never moves the factory's
/// `main` under QA) and its detached "QA" worktree.
pub struct ByHand {
    repo: PathBuf,
    qa: PathBuf,
}

impl ByHand {
    pub fn new(bed: &Bed) -> ByHand {
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
        ByHand { repo, qa }
    }
}

/// What [`through`] measured: each work order's stages, and the by-hand baseline beside each.
pub struct Through {
    pub samples: Vec<Sample>,
    pub stages: Vec<Stages>,
    pub by_hand: Vec<Duration>,
}

/// `warm + n` work orders through the running company (operations started, workers running
/// `good.sh`), one at a time, each alternating with the by-hand baseline; the first `warm`
/// are dropped. Every one must merge at its first attempt.
pub fn through(bed: &Bed, tail: &mut Tail, warm: usize, n: usize) -> Through {
    let hand = ByHand::new(bed);
    let mut samples = Vec::new();
    let mut tb = Vec::new();
    for i in 0..warm + n {
        sys::check_interrupted();
        let (s, b) = if i % 2 == 0 {
            let s = through_company(bed, tail, i);
            (s, by_hand(bed, &hand.repo, &hand.qa, i))
        } else {
            let b = by_hand(bed, &hand.repo, &hand.qa, i);
            (through_company(bed, tail, i), b)
        };
        if i >= warm {
            samples.push(s);
            tb.push(b);
        }
    }
    tail.poll();
    let stages: Vec<Stages> = samples.iter().map(|s| stages(&tail.events, s)).collect();
    let reworked = stages.iter().filter(|s| s.gate_runs != 1).count();
    assert_eq!(reworked, 0, "every work order merged at the first attempt");
    Through {
        samples,
        stages,
        by_hand: tb,
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
    let mut tail = Tail::from_start(&work);
    let Through {
        samples,
        stages: st,
        by_hand: tb,
    } = through(&bed, &mut tail, 1, p.work_orders);
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

/// What one process used over a window.
pub struct Usage {
    pub label: String,
    /// utime + stime, in clock ticks.
    pub own: u64,
    /// cutime + cstime (the git and tmux it ran and waited for), in clock ticks.
    pub children: u64,
    /// The largest `VmRSS` seen (sampled every second), KiB.
    pub rss_kib: u64,
}

/// CPU and memory of some processes over one window.
pub struct Window {
    pub usage: Vec<Usage>,
    pub secs: f64,
    /// Clock ticks per second.
    pub hz: u64,
}

impl Window {
    /// Ticks as % of one core over the window.
    pub fn pct(&self, ticks: u64) -> f64 {
        100.0 * ticks as f64 / self.hz as f64 / self.secs
    }
    pub fn ms(&self, ticks: u64) -> u64 {
        ticks * 1000 / self.hz
    }
    /// The note that says what one tick resolves.
    pub fn note(&self) -> String {
        format!(
            "idle CPU: utime+stime (children: cutime+cstime) from /proc/<pid>/stat in ticks of {} ms, so {:.0} s resolve {:.2} % of a core",
            1000 / self.hz,
            self.secs,
            self.pct(1)
        )
    }
}

/// `co operations run` (the pid `co operations status --json` reports), each factory's
/// `co supervisor run` and `co qa run` (their panes' pids), then the tmux server, last; each
/// checked against its command line.
pub fn daemons(bed: &Bed, factories: &[&str]) -> Vec<(String, u32)> {
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
    watched
        .into_iter()
        .map(|(label, pid, expect)| {
            let cmd = sys::cmdline(pid);
            assert!(
                cmd.contains(expect),
                "{label}: pid {pid} runs {cmd:?}, not {expect}"
            );
            (label, pid)
        })
        .collect()
}

/// CPU time (from `/proc/<pid>/stat` at both ends) and the largest `VmRSS` (every second) of
/// each process over `window`.
pub fn watch(procs: &[(String, u32)], window: Duration) -> Window {
    let mut w: Vec<Watched> = procs
        .iter()
        .map(|(label, pid)| Watched {
            label: label.clone(),
            pid: *pid,
            ticks0: sys::cpu_ticks(*pid).expect("cpu ticks"),
            rss_max_kib: 0,
        })
        .collect();
    let hz = sys::clock_ticks();
    let start = Instant::now();
    while start.elapsed() < window {
        for x in &mut w {
            x.rss_max_kib = x
                .rss_max_kib
                .max(sys::status_kib(x.pid, "VmRSS").expect("still running"));
        }
        sys::sleep(Duration::from_secs(1).min(window.saturating_sub(start.elapsed())));
    }
    let secs = start.elapsed().as_secs_f64();
    let usage = w
        .iter()
        .map(|x| {
            let t1 = sys::cpu_ticks(x.pid).expect("still running");
            Usage {
                label: x.label.clone(),
                own: t1.0 - x.ticks0.0,
                children: t1.1 - x.ticks0.1,
                rss_kib: x
                    .rss_max_kib
                    .max(sys::status_kib(x.pid, "VmRSS").unwrap_or(0)),
            }
        })
        .collect();
    Window { usage, secs, hz }
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
    let mut sessions: Vec<String> = Vec::new();
    for f in factories {
        sessions.push(format!("supervisor-{f}"));
        sessions.push(format!("qa-{f}"));
    }
    bed.wait_sessions(&sessions, Duration::from_secs(30));
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

    let procs = daemons(&bed, &factories);
    let w = watch(&procs, p.window);
    let workers = bed
        .sessions()
        .iter()
        .filter(|s| s.starts_with("worker-"))
        .count();
    assert_eq!(workers, 10, "all 10 workers stayed alive");
    let (daemon_rows, server) = w.usage.split_at(w.usage.len() - 1);
    let server = &server[0];
    let server_text = format!(
        "tmux server {:.2} %, {}",
        w.pct(server.own),
        fmt_mib(server.rss_kib)
    );
    for u in daemon_rows {
        r.add(
            Row::new(
                format!("idle {}: CPU of one core, max RSS", u.label),
                format!("{:.2} %, {}", w.pct(u.own), fmt_mib(u.rss_kib)),
            )
            .baseline(server_text.clone())
            .ratio(format!(
                "{} ms CPU, +{} ms children",
                w.ms(u.own),
                w.ms(u.children)
            )),
        );
    }
    let own: u64 = daemon_rows.iter().map(|u| u.own + u.children).sum();
    let rss: u64 = daemon_rows.iter().map(|u| u.rss_kib).sum();
    r.add(
        Row::new(
            format!(
                "idle, all {} with their children, {:.0} s window",
                daemon_rows.len(),
                w.secs
            ),
            format!("{:.2} %, {}", w.pct(own), fmt_mib(rss)),
        )
        .baseline(server_text)
        .ratio(format!("{} ms CPU", w.ms(own))),
    );
    r.note(w.note());
}
