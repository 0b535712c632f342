//! Test harness for the cross-binary suite: real `co` and `wo` binaries, a private tmux server
//! per sandbox (never the user's), temporary HOME and COMPANY_ROOT, real git repositories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    fn from(o: Output) -> Out {
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
        let dir = tempfile::Builder::new()
            .prefix("vermas-test-")
            .tempdir()
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
        for k in [
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
            "VERMAS_FAILPOINT",
            "GIT_DIR",
            "GIT_WORK_TREE",
        ] {
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
    fn drop(&mut self) {
        let _ = self
            .command("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
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
