//! What the `co` sections read from the kernel (`/proc/<pid>/status` and `/proc/<pid>/stat`),
//! running a child to its end, and a Ctrl-C that cleans up instead of leaving tmux servers
//! behind (the one `unsafe` call, `sigaction`, is in [`catch_interrupt`]).

use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A child run to completion: its wall time, how it ended, what it printed and, when it was
/// polled ([`run_polled`]), its peak memory.
#[derive(Debug)]
pub struct Ran {
    pub wall: Duration,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// `VmHWM` of the child itself (its own peak resident set, KiB), when polled.
    ///
    /// Not `ru_maxrss` from `wait4`: Linux keeps the largest resident set a process had
    /// across its execs, and a child started with `vfork` (as std's `posix_spawn` does) starts
    /// out in its parent's memory, so its `ru_maxrss` is at least the bench's own peak (tens of
    /// MB after the store section), whatever the child does.
    pub hwm_kib: Option<u64>,
}

impl Ran {
    /// Panics with what the command printed when it failed.
    #[track_caller]
    pub fn ok(self, what: &str) -> Ran {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

fn spawn(c: &mut Command) -> std::process::Child {
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {c:?}: {e}"))
}

fn finish(child: std::process::Child, started: Instant, hwm_kib: Option<u64>) -> Ran {
    let out = child.wait_with_output().expect("wait for a child");
    Ran {
        wall: started.elapsed(),
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        hwm_kib,
    }
}

/// Runs a command (stdin closed, output captured) to its end: the wall time from just before
/// the spawn to the exit. Nothing else runs meanwhile.
pub fn run(c: &mut Command) -> Ran {
    let t = Instant::now();
    let child = spawn(c);
    finish(child, t, None)
}

/// As [`run`], and reads the child's `VmHWM` every 0.5 ms while it runs; the last value read
/// before it exits is its peak (a high-water mark only grows). The polling costs CPU, so the
/// wall time of this run is not a figure.
pub fn run_polled(c: &mut Command) -> Ran {
    let t = Instant::now();
    let child = spawn(c);
    // `spawn` returns after the exec, so this is the new program's memory, not ours.
    let mut hwm = None;
    while let Some(v) = status_kib(child.id(), "VmHWM") {
        hwm = Some(hwm.unwrap_or(0).max(v));
        std::thread::sleep(Duration::from_micros(500));
    }
    finish(child, t, hwm)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`); `None` when the process is gone or
/// a zombie (which has no memory left to report).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// CPU time of a process from `/proc/<pid>/stat`, in clock ticks: (utime + stime, cutime +
/// cstime), the second being its waited-for children's.
pub fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14–17 of stat(5) (utime, stime, cutime, cstime); `rest` starts at field 3.
    Some((f.get(11)? + f.get(12)?, f.get(13)? + f.get(14)?))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux when that is missing).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// A process's command line, arguments joined by spaces.
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on, the first Ctrl-C (or SIGTERM) only sets a flag that [`check_interrupted`]
/// turns into a panic, so the sections unwind and their companies clean up (tmux servers, temp
/// directories); a second one ends the bench at once (the handler resets itself).
#[allow(unsafe_code)]
pub fn catch_interrupt() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sigaction` is a plain C struct for which all-zero bytes are valid (empty
        // mask, no flags); we set a handler that only stores to an atomic (async-signal-safe)
        // and pass pointers to live locals. SA_RESETHAND restores the default action after the
        // first delivery; SA_RESTART keeps blocking calls (waits, reads) going.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Panics (and so cleans up, by unwinding) when Ctrl-C was pressed.
pub fn check_interrupted() {
    if INTERRUPTED.load(Ordering::SeqCst) {
        panic!("interrupted: cleaning up");
    }
}

/// Sleeps, checking for Ctrl-C every 100 ms.
pub fn sleep(d: Duration) {
    let end = Instant::now() + d;
    loop {
        check_interrupted();
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}
