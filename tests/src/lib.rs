//! Test harness for the cross-binary suite: real `co` and `wo` binaries, a private tmux server
//! per sandbox (never the user's), temporary HOME and COMPANY_ROOT, real git repositories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod agent_clis;
pub mod fake_model;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The directory holding the built `co` and `wo` (target/debug or target/release).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap().to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The path of a workspace binary; fails with a clear message when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is not built; run `cargo build --workspace` (or the README's test command)",
        p.display()
    );
    p
}

/// The `tests/agents/` directory of scripted agents.
pub fn agents_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("agents")
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
    /// Asserts a given exit code and returns stderr.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stderr
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// What a developer's shell (or an agent's session) may have set that would point a `co` or
/// `wo` run at a store, an agent or a tmux server other than the test's own: cleared in every
/// command the suite and the bench start.
pub const LOCAL_ENV: &[&str] = &[
    "COMPANY_ROOT",
    "CO_FACTORY",
    "AGENT_ID",
    "CO_ROLE",
    "WORK_ORDER_ID",
    "VERMAS_INCARNATION",
    "TMUX",
    "TMUX_PANE",
    "LOG_LEVEL",
    "DEBUG",
    "DEBUG_ROUTING",
    "VERMAS_FAILPOINT",
    "GIT_DIR",
    "GIT_WORK_TREE",
];

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A private world for one test: temp dir, HOME, tmux socket; cleaned up on drop.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub socket: String,
    pub tmux_tmpdir: PathBuf,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox::new_in(&std::env::temp_dir())
    }

    /// A sandbox under `parent` (the agent CLI tests use the target directory: Gemini CLI
    /// ignores settings files under a directory others may write to, as /tmp is).
    pub fn new_in(parent: &Path) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("vermas-test-")
            .tempdir_in(parent)
            .unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        // tmux sockets live in a short path (sun_path is 108 bytes).
        let tmux_tmpdir = dir.path().join("t");
        std::fs::create_dir_all(&tmux_tmpdir).unwrap();
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let socket = format!("vt{}-{n}", std::process::id());
        Sandbox {
            dir,
            home,
            socket,
            tmux_tmpdir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command with a clean environment: no COMPANY_ROOT, CO_FACTORY, AGENT_ID or TMUX from
    /// the developer's shell; HOME and the tmux socket are the sandbox's.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        for k in LOCAL_ENV {
            c.env_remove(k);
        }
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", bin_dir().display()))
            .env("HOME", &self.home)
            .env("VERMAS_TMUX_SOCKET", &self.socket)
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .current_dir(self.path())
            .stdin(Stdio::null());
        c
    }

    /// Runs `wo` or `co` (or any program) with arguments in `cwd`.
    pub fn run_in(&self, cwd: &Path, program: &str, args: &[&str]) -> Out {
        let prog = if program == "co" || program == "wo" {
            bin(program)
        } else {
            PathBuf::from(program)
        };
        let out = self
            .command(prog)
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap();
        Out::from(out)
    }

    pub fn wo(&self, args: &[&str]) -> Out {
        self.run_in(self.path(), "wo", args)
    }

    pub fn co(&self, args: &[&str]) -> Out {
        self.run_in(self.path(), "co", args)
    }

    /// A tmux command on the sandbox's private server.
    pub fn tmux(&self, args: &[&str]) -> Out {
        let out = self
            .command("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        Out::from(out)
    }
}

impl Drop for Sandbox {
    /// Kills the private tmux server (SIGHUP to every agent, supervisor, QA and operations in
    /// it), waits until no process of this sandbox is left (SIGKILL after 5 s), then removes
    /// the directory: a daemon still writing its last log line while the directory is removed
    /// would otherwise leave part of it behind.
    fn drop(&mut self) {
        let _ = self
            .command("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status();
        let entry = format!("VERMAS_TMUX_SOCKET={}", self.socket);
        let start = Instant::now();
        loop {
            let left = pids_with_env(&entry);
            if left.is_empty() {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                for pid in left {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
                std::thread::sleep(Duration::from_millis(200));
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for _ in 0..5 {
            match std::fs::remove_dir_all(self.dir.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                _ => break,
            }
        }
    }
}

/// Our processes whose environment holds `entry` (e.g. `VERMAS_TMUX_SOCKET=<socket>`): every
/// process a sandbox started, down to the agents in its tmux panes.
pub fn pids_with_env(entry: &str) -> Vec<u32> {
    let me = std::process::id();
    let needle = entry.as_bytes();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&c| c == 0).any(|v| v == needle))
        })
        .collect()
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
#[track_caller]
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one id in `Created work order <id>`.
pub fn created_id(out: &Out) -> String {
    out.ok()
        .trim()
        .strip_prefix("Created work order ")
        .unwrap_or_else(|| panic!("unexpected create output: {}", out.stdout))
        .to_string()
}

/// All event lines of a store, parsed, in file order.
pub fn read_events(work: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = Vec::new();
    for d in [work.join("events/archive"), work.join("events")] {
        if let Ok(rd) = std::fs::read_dir(&d) {
            let mut v: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            v.sort();
            files.extend(v);
        }
    }
    if work.join("events.jsonl").is_file() {
        files.push(work.join("events.jsonl"));
    }
    let mut out = Vec::new();
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            if let Ok(v) = serde_json::from_str(line) {
                out.push(v);
            }
        }
    }
    out
}

/// Runs git in `dir` with a test identity; panics with git's message on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A company with one factory `myproject` (prefix `mp`) cloned from a small repository, its
/// workers running one of the scripted agents of `tests/agents/`.
pub struct World {
    pub sb: Sandbox,
    pub root: PathBuf,
    pub origin: PathBuf,
}

impl World {
    /// `agent` is a script name in `tests/agents/` (with arguments after spaces, e.g.
    /// `hang.sh commit`); `factory_extra` is appended to the factory's config.toml.
    pub fn new(agent: &str, factory_extra: &str) -> World {
        let w = World::bare_in(Sandbox::new());
        let mut parts = agent.split(' ');
        let script = agents_dir().join(parts.next().unwrap());
        let mut argv = vec!["bash".to_string(), script.display().to_string()];
        argv.extend(parts.map(str::to_string));
        let argv: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
        w.append_factory_config(&format!(
            "\n[runtimes.scripted]\ncommand = [{}]\n\n[roles.worker]\nruntime = \"scripted\"\n\n{factory_extra}\n",
            argv.join(", ")
        ));
        w
    }

    /// A company with the factory `myproject` and no runtime configured (the built-in presets
    /// apply), in `sb`.
    pub fn bare_in(sb: Sandbox) -> World {
        let origin = sb.path().join("origin");
        std::fs::create_dir_all(&origin).unwrap();
        git(&origin, &["init", "-q", "-b", "main"]);
        std::fs::write(origin.join("README.md"), "# sample\n").unwrap();
        // The gate the QA tests configure: answer.txt, when present, must say `right`.
        std::fs::write(
            origin.join("check.sh"),
            "#!/bin/sh\nfor f in answer*.txt; do\n  [ -f \"$f\" ] || continue\n  test \"$(cat \"$f\")\" = right || { echo \"$f says $(cat \"$f\"), expected right\"; exit 1; }\ndone\necho checks passed\n",
        )
        .unwrap();
        git(&origin, &["add", "."]);
        git(&origin, &["commit", "-qm", "initial"]);
        let root = sb.path().join("company");
        sb.co(&["init", root.to_str().unwrap()]).ok();
        let root = root.canonicalize().unwrap();
        let w = World { sb, root, origin };
        w.co(&[
            "factory",
            "add",
            "myproject",
            w.origin.to_str().unwrap(),
            "--prefix",
            "mp",
        ])
        .ok();
        w
    }

    /// Short intervals for the autonomous loop (operations, supervisor, QA).
    pub fn fast(self) -> World {
        self.edit_company_config(
            "patrol_interval_seconds = 60",
            "patrol_interval_seconds = 0.3",
        );
        self.edit_company_config(
            "restart_backoff_initial_seconds = 2",
            "restart_backoff_initial_seconds = 0.2",
        );
        self.edit_company_config(
            "restart_backoff_max_seconds = 300",
            "restart_backoff_max_seconds = 5",
        );
        self
    }

    /// The gate `sh check.sh` (every answer*.txt must say right).
    pub const CHECK_GATE: &'static str =
        "[[gates]]\nname = \"check\"\ncommand = \"sh check.sh\"\ntimeout_seconds = 30\n";

    /// `co operations start`, checked.
    pub fn start_operations(&self) {
        let out = self.co(&["operations", "start"]);
        assert!(out.ok().contains("Operations started"), "{}", out.stdout);
    }

    /// Commits on the factory's target branch (`main`), as if merged from elsewhere.
    pub fn target_log(&self) -> Vec<String> {
        git(&self.factory_dir(), &["log", "--format=%s", "main"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Adds another factory cloned from the same origin, running `agent` (as in [`World::new`]).
    pub fn add_factory(&self, name: &str, prefix: &str, agent: &str, extra: &str) -> PathBuf {
        self.co(&[
            "factory",
            "add",
            name,
            self.origin.to_str().unwrap(),
            "--prefix",
            prefix,
        ])
        .ok();
        let dir = self.root.join(name);
        let script = agents_dir().join(agent);
        let p = dir.join(".work/config.toml");
        let mut cfg = std::fs::read_to_string(&p).unwrap();
        cfg.push_str(&format!(
            "\n[runtimes.scripted]\ncommand = [\"bash\", {:?}]\n\n[roles.worker]\nruntime = \"scripted\"\n\n{extra}\n",
            script.display().to_string()
        ));
        std::fs::write(&p, cfg).unwrap();
        dir
    }

    /// `wo` in another factory's directory.
    pub fn wo_in(&self, factory: &str, args: &[&str]) -> Out {
        self.sb.run_in(&self.root.join(factory), "wo", args)
    }

    pub fn factory_dir(&self) -> PathBuf {
        self.root.join("myproject")
    }

    pub fn append_factory_config(&self, text: &str) {
        let p = self.factory_dir().join(".work/config.toml");
        let mut cfg = std::fs::read_to_string(&p).unwrap();
        cfg.push_str(text);
        std::fs::write(&p, cfg).unwrap();
    }

    /// Replaces text in the company config (e.g. a default value).
    pub fn edit_company_config(&self, from: &str, to: &str) {
        let p = self.root.join(".vermas/config.toml");
        let cfg = std::fs::read_to_string(&p).unwrap();
        assert!(cfg.contains(from), "company config has no {from:?}");
        std::fs::write(&p, cfg.replacen(from, to, 1)).unwrap();
    }

    pub fn co(&self, args: &[&str]) -> Out {
        self.sb.run_in(&self.root, "co", args)
    }

    /// `co` at the company root with more variables (a PATH holding an agent CLI, its key).
    pub fn co_env(&self, env: &[(String, String)], args: &[&str]) -> Out {
        let mut c = self.sb.command(bin("co"));
        c.args(args).current_dir(&self.root);
        for (k, v) in env {
            c.env(k, v);
        }
        Out::from(c.output().unwrap())
    }

    /// `co` as an agent would run it: `AGENT_ID` (and any other variables) set, in `cwd`.
    pub fn co_as(&self, cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
        let mut c = self.sb.command(bin("co"));
        c.args(args).current_dir(cwd);
        for (k, v) in env {
            c.env(k, v);
        }
        Out::from(c.output().unwrap())
    }

    /// `wo` in the factory directory (the factory's store).
    pub fn wo(&self, args: &[&str]) -> Out {
        self.sb.run_in(&self.factory_dir(), "wo", args)
    }

    /// Creates a work order in the factory; returns its id.
    pub fn create(&self, title: &str, extra: &[&str]) -> String {
        let mut args = vec!["create", "--title", title];
        args.extend_from_slice(extra);
        created_id(&self.wo(&args))
    }

    pub fn status_of(&self, id: &str) -> String {
        self.wo(&["show", id, "--json"]).json()["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until the work order has `status` (panics with its history after `secs`).
    pub fn wait_status(&self, id: &str, status: &str, secs: u64) {
        let start = Instant::now();
        loop {
            let s = self.status_of(id);
            if s == status {
                return;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                let replay = self.wo(&["events", "replay", id]).stdout;
                panic!(
                    "{id} is {s}, not {status}, after {secs}s\n{replay}\n{}",
                    self.loop_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of the operations, supervisor and QA logs, for a failing test to show.
    pub fn loop_logs(&self) -> String {
        let mut out = String::new();
        let Ok(rd) = std::fs::read_dir(self.root.join("logs")) else {
            return out;
        };
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {} (last 40 lines)\n", f.display()));
            for l in &lines[lines.len().saturating_sub(40)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Events of the factory store.
    pub fn factory_events(&self) -> Vec<serde_json::Value> {
        read_events(&self.factory_dir().join(".work"))
    }

    pub fn company_events(&self) -> Vec<serde_json::Value> {
        read_events(&self.root.join(".work"))
    }

    pub fn tmux(&self, args: &[&str]) -> Out {
        self.sb.tmux(args)
    }

    pub fn sessions(&self) -> Vec<String> {
        let o = self.tmux(&["list-sessions", "-F", "#{session_name}"]);
        if o.code != 0 {
            return Vec::new();
        }
        o.stdout.lines().map(str::to_string).collect()
    }

    /// The visible text of a session.
    pub fn pane(&self, session: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", &format!("={session}:")])
            .stdout
    }

    /// Waits until a session's screen contains `text`.
    pub fn wait_pane(&self, session: &str, text: &str, secs: u64) -> String {
        let start = Instant::now();
        loop {
            let last = self.pane(session);
            if last.contains(text) {
                return last;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                panic!("{session} never showed {text:?} in {secs}s; screen:\n{last}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_no_session(&self, session: &str, secs: u64) {
        wait_for(
            Duration::from_secs(secs),
            &format!("{session} to end"),
            || (!self.sessions().iter().any(|s| s == session)).then_some(()),
        );
    }
}
