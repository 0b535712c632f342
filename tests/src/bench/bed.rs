//! The company the `co` sections measure in: the test suite's `World` (a private tmux server on
//! its own socket, a temporary HOME and company root, a factory `myproject` cloned from a tiny
//! repository, workers running a scripted agent from `tests/agents/`), run with the release
//! binaries next to the bench, and torn down completely when dropped, including on a panic or a
//! Ctrl-C (see [`super::sys::catch_interrupt`]).

use super::sys::{self, Ran};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use vermas_tests::World;

/// `[runtimes.bench]`: a worker "agent" that starts at once and does nothing, so a dispatch is
/// timed without any agent's own start time.
pub const INSTANT_RUNTIME: &str = "[runtimes.bench]\ncommand = [\"sleep\", \"100000\"]\n";

/// Torn down by the `World`'s sandbox: its tmux server, every process it started, its directory.
pub struct Bed {
    w: World,
}

impl Bed {
    /// A company with the factory `myproject` whose workers run `agent` (a script of
    /// `tests/agents/`); `extra` is appended to the factory's config.
    pub fn new(agent: &str, extra: &str) -> Bed {
        Bed {
            w: World::new(agent, extra),
        }
    }

    pub fn w(&self) -> &World {
        &self.w
    }

    /// Another factory from the same origin (prefix `prefix`), workers running `agent`.
    pub fn add_factory(&self, name: &str, prefix: &str, agent: &str, extra: &str) -> PathBuf {
        self.w().add_factory(name, prefix, agent, extra)
    }

    pub fn factory_dir(&self, name: &str) -> PathBuf {
        self.w().root.join(name)
    }

    /// Makes the factory's workers run the runtime `name` instead of the scripted agent.
    pub fn use_worker_runtime(&self, factory: &str, name: &str) {
        let p = self.factory_dir(factory).join(".work/config.toml");
        let cfg = std::fs::read_to_string(&p).expect("read the factory config");
        let from = "[roles.worker]\nruntime = \"scripted\"";
        assert!(cfg.contains(from), "{} has no {from:?}", p.display());
        std::fs::write(
            &p,
            cfg.replacen(from, &format!("[roles.worker]\nruntime = \"{name}\""), 1),
        )
        .expect("write the factory config");
    }

    /// A command with the sandbox's environment (HOME, tmux socket, git identity), in the
    /// company root.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = self.w().sb.command(program);
        c.current_dir(&self.w().root);
        c
    }

    /// `co ARGS` (the release binary next to the bench) in the company root.
    pub fn co(&self, args: &[&str]) -> Command {
        let mut c = self.command(super::bin("co"));
        c.args(args);
        c
    }

    /// `co ARGS`, checked; returns its stdout.
    #[track_caller]
    pub fn co_ok(&self, args: &[&str]) -> String {
        sys::run(&mut self.co(args))
            .ok(&format!("co {}", args.join(" ")))
            .stdout
    }

    /// `tmux -L <the sandbox's socket> ARGS`.
    pub fn tmux(&self, args: &[&str]) -> Command {
        let mut c = self.command("tmux");
        c.arg("-L").arg(&self.w().sb.socket).args(args);
        c
    }

    #[track_caller]
    pub fn tmux_ok(&self, args: &[&str]) -> String {
        sys::run(&mut self.tmux(args))
            .ok(&format!("tmux {}", args.join(" ")))
            .stdout
    }

    /// `git -C DIR ARGS`.
    pub fn git(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = self.command("git");
        c.arg("-C").arg(dir).args(args);
        c
    }

    #[track_caller]
    pub fn git_ok(&self, dir: &Path, args: &[&str]) -> Ran {
        sys::run(&mut self.git(dir, args)).ok(&format!("git {}", args.join(" ")))
    }

    /// `wo create` in a factory; returns the id.
    pub fn create(&self, factory: &str, title: &str) -> String {
        let out = self.w().wo_in(factory, &["create", "--title", title]);
        vermas_tests::created_id(&out)
    }

    pub fn sessions(&self) -> Vec<String> {
        self.w().sessions()
    }

    /// The pid of the process a session runs (its pane's).
    pub fn pane_pid(&self, session: &str) -> u32 {
        let out = self.tmux_ok(&[
            "display-message",
            "-p",
            "-t",
            &format!("={session}:"),
            "#{pane_pid}",
        ]);
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no pane pid for {session}: {out:?}"))
    }

    /// Polls `f` every `every` until it returns `Some`; panics with `what` after `limit`.
    #[track_caller]
    pub fn wait_for<T>(
        &self,
        limit: Duration,
        every: Duration,
        what: &str,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            sys::check_interrupted();
            if let Some(v) = f() {
                return v;
            }
            assert!(
                start.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}"
            );
            std::thread::sleep(every);
        }
    }

    /// Waits until every named session exists.
    pub fn wait_sessions(&self, names: &[String], limit: Duration) {
        self.wait_for(
            limit,
            Duration::from_millis(100),
            &format!("sessions {names:?}"),
            || {
                let s = self.sessions();
                names.iter().all(|n| s.contains(n)).then_some(())
            },
        );
    }
}
