//! `co demo`: the whole company on this machine in one command, with no API key and no network.
//!
//! It makes a throwaway company with a factory `demo` cloned from a small sample project (a
//! shell library with a real test suite and three missing pieces), writes a work order per
//! piece, configures a built-in scripted worker (embedded in the binary; it gets one piece wrong
//! first so the gates send it back), starts operations on a private tmux server, dispatches,
//! and prints one line per step until every work order is merged or failed. Then it stops
//! everything and removes the directory unless `--keep`.

use crate::company::{AddFactory, Company};
use crate::error::{Error, Result};
use crate::event::{EventRef, types};
use crate::loops::daemon::Shutdown;
use crate::store::{Checkpoint, LineInfo, StoreError};
use crate::workorder::{self, CreateRequest, Status, WoType, WorkOrders};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const AGENT: &str = include_str!("../../../templates/demo/agent.sh");
const PROJECT: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../../templates/demo/project/README.md"),
    ),
    (
        "lib/shout.sh",
        include_str!("../../../templates/demo/project/lib/shout.sh"),
    ),
    (
        "test/run.sh",
        include_str!("../../../templates/demo/project/test/run.sh"),
    ),
];

/// The missing pieces: (piece, title, description).
const PIECES: &[(&str, &str, &str)] = &[
    (
        "reverse",
        "Implement reverse in lib/reverse.sh",
        "reverse TEXT prints TEXT backwards: `reverse abc` prints `cba`, `reverse ''` prints an empty line. The checks are in test/run.sh.",
    ),
    (
        "words",
        "Implement count_words in lib/words.sh",
        "count_words TEXT prints how many blank-separated words TEXT has (`count_words 'one two  three'` prints 3, an empty text 0). Do not expand globs.",
    ),
    (
        "palindrome",
        "Implement is_palindrome in lib/palindrome.sh",
        "is_palindrome TEXT prints yes when TEXT reads the same backwards, ignoring case (`Racecar` is one), else no.",
    ),
];

/// What `co demo` was asked.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: Option<PathBuf>,
    pub workers: u32,
    pub keep: bool,
    pub timeout: Duration,
}

/// How it went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoSummary {
    pub dir: PathBuf,
    pub socket: String,
    pub total: usize,
    pub merged: usize,
    pub failed: usize,
    pub rework_rounds: usize,
    pub elapsed_ms: u64,
    pub kept: bool,
    pub timed_out: bool,
    pub interrupted: bool,
}

impl DemoSummary {
    pub fn success(&self) -> bool {
        self.merged == self.total && !self.timed_out && !self.interrupted
    }
}

fn io(p: &Path, e: std::io::Error) -> Error {
    StoreError::io(p, e).into()
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let mut c = crate::effects::git::command(dir);
    c.args([
        "-c",
        "user.name=VerMAS demo",
        "-c",
        "user.email=demo@vermas.invalid",
        "-c",
        "init.defaultBranch=main",
    ]);
    let out = c
        .args(args)
        .output()
        .map_err(|e| Error::failure(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::failure(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Where the demo lives: a new directory (refusing a non-empty one).
fn demo_dir(opts: &DemoOptions) -> Result<PathBuf> {
    let dir = match &opts.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "vermas-demo-{}-{}",
            std::process::id(),
            &crate::ids::new_incarnation_id()[4..]
        )),
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::usage(format!(
            "--dir {} exists and is not empty; give a new or empty directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    dir.canonicalize().map_err(|e| io(&dir, e))
}

/// Sets everything up; returns the company and the work order ids with their piece names.
/// The demo company, always on its own tmux server: a `VERMAS_TMUX_SOCKET` inherited from
/// the caller (an agent of another company runs `co demo`) must not put the demo on that
/// company's server, nor have the cleanup kill it. The processes the demo starts get the demo
/// socket through the agent environment.
fn open_demo(dir: &Path, socket: &str) -> Result<Company> {
    let mut company = Company::open(dir)?;
    let origin = crate::config::Source::File {
        path: company.root.join(crate::context::COMPANY_CONFIG),
        line: 0,
    };
    company.set(
        "tmux.socket",
        crate::config::Value::Str(socket.into()),
        origin,
    )?;
    Ok(company)
}

fn setup(dir: &Path, socket: &str, workers: u32) -> Result<(Company, Vec<(String, String)>)> {
    let sample = dir.join("sample");
    for (path, text) in PROJECT {
        let p = sample.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    git(&sample, &["init", "-q", "-b", "main"])?;
    git(&sample, &["add", "."])?;
    git(
        &sample,
        &["commit", "-q", "-m", "textkit: shout, and a test suite"],
    )?;

    let (company, _) = Company::init(dir, "demo")?;
    let agent = dir.join(".vermas").join("demo-agent.sh");
    std::fs::write(&agent, AGENT).map_err(|e| io(&agent, e))?;
    let cfg_path = dir.join(crate::context::COMPANY_CONFIG);
    let mut cfg = std::fs::read_to_string(&cfg_path).map_err(|e| io(&cfg_path, e))?;
    cfg = cfg
        .replace(
            "patrol_interval_seconds = 60",
            "patrol_interval_seconds = 1",
        )
        .replace(
            "restart_backoff_initial_seconds = 2",
            "restart_backoff_initial_seconds = 1",
        )
        .replace(
            "max_slots_per_factory = 5",
            &format!("max_slots_per_factory = {workers}"),
        );
    cfg.push_str(&format!(
        "\n# Added by co demo: a private tmux server and the built-in scripted worker.\n[tmux]\nsocket = \"{socket}\"\n\n[runtimes.demo]\ncommand = [\"bash\", {:?}]\nprompt = \"file\"\n\n[roles.worker]\nruntime = \"demo\"\n",
        agent.display().to_string()
    ));
    crate::fsutil::atomic_write(&cfg_path, cfg.as_bytes()).map_err(|e| io(&cfg_path, e))?;
    let company = open_demo(&company.root, socket)?;
    let f = company.add_factory(
        &AddFactory {
            name: "demo".into(),
            source: sample.display().to_string(),
            prefix: Some("dm".into()),
            branch: Some("main".into()),
        },
        "demo",
    )?;
    // A throwaway repository gets its own identity, so commits work on any machine.
    git(&f.git_dir(), &["config", "user.name", "VerMAS demo worker"])?;
    git(
        &f.git_dir(),
        &["config", "user.email", "worker@vermas.invalid"],
    )?;
    let fcfg = f.work_dir().join("config.toml");
    let mut text = std::fs::read_to_string(&fcfg).map_err(|e| io(&fcfg, e))?;
    text.push_str(
        "\n# Added by co demo: the project's test suite is the gate.\n[[gates]]\nname = \"test\"\ncommand = \"bash test/run.sh\"\ntimeout_seconds = 60\n",
    );
    crate::fsutil::atomic_write(&fcfg, text.as_bytes()).map_err(|e| io(&fcfg, e))?;
    let f = company.factory("demo")?;
    let store = f.store()?;
    let mut ids = Vec::new();
    for (piece, title, description) in PIECES {
        let mut w = store.lock()?;
        let evs = workorder::create(
            &mut w,
            f.prefix(),
            "demo",
            CreateRequest {
                title: title.to_string(),
                kind: WoType::Feature,
                priority: 2,
                description: description.to_string(),
                labels: vec![format!("piece:{piece}")],
                parent: None,
            },
        )?;
        let id = evs
            .first()
            .and_then(|e| e.data_value()["id"].as_str().map(str::to_string))
            .unwrap_or_default();
        ids.push((id, piece.to_string()));
    }
    Ok((company, ids))
}

/// The line of a failure reason worth showing: the first failing check, else the first line.
fn reason_line(reason: &str) -> String {
    let line = reason
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .or_else(|| reason.lines().next())
        .unwrap_or_default();
    crate::text::truncate(&crate::text::escape_control(line), 80)
}

/// One progress line for an event of the demo factory, if it is a step worth showing.
/// `attempts` remembers the attempt each work order was last dispatched with, so a restart of
/// the same attempt reads as one.
fn step(
    ev: &EventRef<'_>,
    pieces: &BTreeMap<String, String>,
    attempts: &mut BTreeMap<String, u64>,
) -> Option<String> {
    let d: serde_json::Value = serde_json::from_str(ev.data.get()).ok()?;
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let wo = [s("id"), s("work_order")]
        .into_iter()
        .find(|x| pieces.contains_key(*x))
        .or_else(|| {
            d.get("meta")
                .and_then(|m| m.get("work_order"))
                .and_then(|v| v.as_str())
                .filter(|x| pieces.contains_key(*x))
        })?
        .to_string();
    let piece = pieces.get(&wo).map(String::as_str).unwrap_or("");
    let what = match ev.event_type.as_ref() {
        types::WORK_ORDER_ASSIGNED => {
            let attempt = d.get("attempt").and_then(|v| v.as_u64()).unwrap_or(1);
            let session = s("assignee").replace("demo/workers/", "worker-demo-");
            if attempts.insert(wo.clone(), attempt) == Some(attempt) {
                format!("restarted   → {session} (its agent exited)")
            } else {
                format!("dispatched  → {session} (attempt {attempt})")
            }
        }
        types::AGENT_WORKING => "working".to_string(),
        types::MAIL_SENT if s("type") == "WORKER_DONE" => {
            "done        branch committed, handed to the supervisor".to_string()
        }
        types::QA_ENQUEUED => "review      queued for QA".to_string(),
        types::QA_GATE_RUN => format!(
            "gates       {} {} in {:.1}s",
            s("gate"),
            if d.get("passed").and_then(|v| v.as_bool()) == Some(true) {
                "passed"
            } else {
                "FAILED"
            },
            d.get("duration_ms").and_then(|v| v.as_u64()).unwrap_or(0) as f64 / 1000.0
        ),
        types::MAIL_SENT if s("type") == "REWORK_REQUEST" => {
            format!(
                "rework      sent back to a worker: {}",
                reason_line(s("body"))
            )
        }
        types::WORK_ORDER_CLOSED if !s("merge_commit").is_empty() => format!(
            "merged      into main as {}",
            &s("merge_commit")[..s("merge_commit").len().min(10)]
        ),
        types::WORK_ORDER_STATUS_CHANGED if s("to") == "failed" => {
            format!("FAILED      {}", reason_line(s("reason")))
        }
        types::WORK_ORDER_STATUS_CHANGED if s("to") == "queued" && s("from") == "open" => {
            "queued      waiting for a free worker".to_string()
        }
        _ => return None,
    };
    Some(format!("{wo}  {piece:<10}  {what}"))
}

/// Runs the demo; `say` prints a line. Always cleans up (unless `keep`), even on failure.
pub fn run(
    opts: &DemoOptions,
    shutdown: &Shutdown,
    say: &mut dyn FnMut(&str),
) -> Result<DemoSummary> {
    let started = Instant::now();
    crate::effects::tmux::Tmux::from_setting(None).check_version()?;
    let dir = demo_dir(opts)?;
    let socket = format!("vermas-demo-{}", std::process::id());
    let mut summary = DemoSummary {
        dir: dir.clone(),
        socket: socket.clone(),
        total: PIECES.len(),
        merged: 0,
        failed: 0,
        rework_rounds: 0,
        elapsed_ms: 0,
        kept: opts.keep,
        timed_out: false,
        interrupted: false,
    };
    let mut socket_file = None;
    let result = drive(
        opts,
        shutdown,
        say,
        &dir,
        &socket,
        &mut summary,
        &mut socket_file,
    );
    // Clean up whatever happened.
    if !opts.keep {
        if let Ok(company) = open_demo(&dir, &socket) {
            let _ = crate::loops::operations::stop(&company, "demo");
        }
        crate::effects::tmux::Tmux::from_setting(Some(&socket)).kill_server();
        let _ = std::fs::remove_dir_all(&dir);
        // The server may have exited by itself (no sessions left); its socket file stays.
        if let Some(p) = socket_file {
            let _ = std::fs::remove_file(p);
        }
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    result.map(|_| summary)
}

fn drive(
    opts: &DemoOptions,
    shutdown: &Shutdown,
    say: &mut dyn FnMut(&str),
    dir: &Path,
    socket: &str,
    summary: &mut DemoSummary,
    socket_file: &mut Option<PathBuf>,
) -> Result<()> {
    let t0 = Instant::now();
    say(&format!(
        "Setting up a demo company in {} (private tmux server {socket})",
        dir.display()
    ));
    let (company, ids) = setup(dir, socket, opts.workers.max(1))?;
    let pieces: BTreeMap<String, String> = ids.iter().cloned().collect();
    let f = company.factory("demo")?;
    let store = f.store()?;
    let mut at = match store.scan(&Checkpoint::default(), None, &mut |_, _| Ok(()))? {
        Ok(o) => o.end,
        Err(_) => Checkpoint::default(),
    };
    say(&format!(
        "Factory demo: {} work orders for the missing pieces of a small shell library; {} worker(s); gate: bash test/run.sh",
        ids.len(),
        opts.workers.max(1)
    ));
    say("Look inside while it runs (another terminal):");
    say(&format!("  tmux -L {socket} attach -t worker-demo-slot0"));
    say(&format!(
        "  tail -f {}/demo/.work/feed.jsonl | jq",
        dir.display()
    ));
    let ops = crate::loops::operations::start(&company)?;
    *socket_file = company.tmux().socket_path();
    say(&format!(
        "Operations started (pid {}): it runs the supervisor and QA of the factory",
        ops.pid
    ));
    for (id, _) in &ids {
        crate::actions::dispatch::dispatch(
            &company,
            &crate::actions::dispatch::DispatchRequest {
                work_order: id.clone(),
                factory: "demo".into(),
                runtime: None,
                no_queue: false,
                actor: "demo".into(),
            },
        )?;
    }
    let deadline = Instant::now() + opts.timeout;
    let mut attempts = BTreeMap::new();
    loop {
        let mut lines = Vec::new();
        let mut visit = |ev: &EventRef<'_>, _: &LineInfo<'_>| {
            if ev.event_type == types::QA_REWORK_REQUESTED {
                summary.rework_rounds += 1;
            }
            if let Some(l) = step(ev, &pieces, &mut attempts) {
                lines.push(l);
            }
            Ok(())
        };
        if let Ok(out) = store.scan(&at, None, &mut visit)? {
            at = out.end;
        }
        for l in lines {
            say(&format!("{:>6.1}s  {l}", t0.elapsed().as_secs_f64()));
        }
        let wos = store.load::<WorkOrders>()?.state;
        let statuses: Vec<Status> = ids
            .iter()
            .filter_map(|(id, _)| wos.get(id).map(|w| w.status))
            .collect();
        summary.merged = statuses.iter().filter(|s| **s == Status::Closed).count();
        summary.failed = statuses.iter().filter(|s| **s == Status::Failed).count();
        if summary.merged + summary.failed == ids.len() {
            break;
        }
        if shutdown.requested() {
            summary.interrupted = true;
            say("Interrupted; cleaning up");
            break;
        }
        if Instant::now() > deadline {
            summary.timed_out = true;
            say(&format!(
                "Gave up waiting after {}s; look at {}/logs",
                opts.timeout.as_secs(),
                dir.display()
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    Ok(())
}
