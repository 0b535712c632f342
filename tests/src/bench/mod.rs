//! Shared pieces of `vermas-bench`: timing and medians, spawning the built binaries, the
//! machine description and the result table. Each section (`store.rs`, `dispatch.rs`,
//! `pipeline.rs`, `scale.rs`) measures its figures and adds rows to a [`Report`];
//! `vermas-bench all` runs every section. `bed.rs` is the company the `co` sections measure
//! in, `sys.rs` what they read from the kernel (/proc) and the Ctrl-C that cleans up.

pub mod bed;
pub mod dispatch;
pub mod fill;
pub mod pipeline;
pub mod queue;
pub mod scale;
pub mod store;
pub mod sys;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Options every section understands.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// Smaller sizes and fewer repetitions: a smoke run, not figures to record.
    pub quick: bool,
}

/// The median of some samples (the mean of the two middle ones for an even count).
pub fn median(samples: &[Duration]) -> Duration {
    assert!(!samples.is_empty(), "median of no samples");
    let mut v = samples.to_vec();
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// The `p`-th percentile (0–100) by nearest rank: the smallest sample with at least `p` % of
/// the samples at or below it (so p99 of 20 samples is the largest).
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    assert!(!samples.is_empty(), "percentile of no samples");
    let mut v = samples.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// Wall time of one call.
pub fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// `812 µs`, `2.13 ms`, `1.52 s`.
pub fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

/// `7.9 MiB` from KiB.
pub fn fmt_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `1,234,567`.
pub fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `10k`, `100k`, `1M` for table labels.
pub fn fmt_size(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The directory holding `vermas-bench` and the binaries built with it (target/release).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("cannot find the bench executable");
    let mut dir = exe
        .parent()
        .expect("the bench executable has no directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// A built workspace binary next to this one; exits with a clear message when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    if !p.is_file() {
        eprintln!(
            "error: {} is not built; run `cargo build --release --workspace` first",
            p.display()
        );
        std::process::exit(1);
    }
    p
}

/// A command with none of the developer's store-locating environment, stdin closed and output
/// discarded (a caller that wants the output sets it again).
pub fn command(program: impl AsRef<std::ffi::OsStr>, cwd: &Path) -> Command {
    let mut c = Command::new(program);
    for k in vermas_tests::LOCAL_ENV {
        c.env_remove(k);
    }
    c.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Runs a command to completion and panics with its stderr when it fails.
#[track_caller]
pub fn run_ok(c: &mut Command) {
    let out = c.output().expect("cannot spawn");
    if !out.status.success() {
        panic!(
            "{:?} failed ({}):\n{}",
            c,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A temporary directory for one measurement, removed on drop.
pub fn tempdir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("vermas-bench-{label}-"))
        .tempdir()
        .expect("cannot make a temporary directory")
}

/// What the machine is, for the record (docs/PERFORMANCE.md).
pub fn machine() -> Vec<(&'static str, String)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = read("/proc/meminfo");
    let ram = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
    let tmp = std::env::temp_dir();
    let fs = filesystem_of(&tmp);
    let version = |program: &str, arg: &str| {
        Command::new(program)
            .arg(arg)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|| "not found".into())
    };
    vec![
        ("nproc", nproc),
        ("cpu", cpu),
        ("ram", ram),
        ("kernel", kernel),
        ("temp dir", format!("{} ({fs})", tmp.display())),
        ("binaries", bin_dir().display().to_string()),
        ("tmux", version("tmux", "-V")),
        ("git", version("git", "--version")),
    ]
}

/// `ext4 on /dev/vda mounted at /`: the mount with the longest mount point that holds `dir`.
pub fn filesystem_of(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for l in mounts.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        // Mount points escape spaces as \040.
        let point = f[1].replace("\\040", " ");
        if dir.starts_with(&point) && best.as_ref().is_none_or(|(n, _)| point.len() >= *n) {
            best = Some((
                point.len(),
                format!("{} on {} mounted at {point}", f[2], f[0]),
            ));
        }
    }
    best.map(|b| b.1).unwrap_or_else(|| "unknown".into())
}

/// Whether a figure met its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// A figure with no target (a baseline, a floor).
    Info,
    Skipped,
    /// A `--quick` run: sizes are too small for the targets to mean anything.
    Quick,
}

impl Verdict {
    pub fn of(ok: bool) -> Verdict {
        if ok { Verdict::Pass } else { Verdict::Fail }
    }
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Info => "-",
            Verdict::Skipped => "SKIP",
            Verdict::Quick => "(quick)",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub value: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Row {
    pub fn new(figure: impl Into<String>, value: impl Into<String>) -> Row {
        Row {
            figure: figure.into(),
            value: value.into(),
            baseline: String::new(),
            ratio: String::new(),
            target: String::new(),
            verdict: Verdict::Info,
        }
    }
    pub fn baseline(mut self, b: impl Into<String>) -> Row {
        self.baseline = b.into();
        self
    }
    pub fn ratio(mut self, r: impl Into<String>) -> Row {
        self.ratio = r.into();
        self
    }
    pub fn target(mut self, t: impl Into<String>, v: Verdict) -> Row {
        self.target = t.into();
        self.verdict = v;
        self
    }
}

/// The rows of a run, printed as one table at the end (and as they come, for patience).
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// A `--quick` run: targets are shown but not judged.
    pub quick: bool,
}

impl Report {
    pub fn add(&mut self, mut row: Row) {
        if self.quick && matches!(row.verdict, Verdict::Pass | Verdict::Fail) {
            row.verdict = Verdict::Quick;
        }
        eprintln!(
            "  {}: {}{}",
            row.figure,
            row.value,
            if row.baseline.is_empty() {
                String::new()
            } else {
                format!(" (baseline {})", row.baseline)
            }
        );
        self.rows.push(row);
    }

    pub fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        eprintln!("  note: {n}");
        self.notes.push(n);
    }

    pub fn render(&self) -> String {
        let head = ["figure", "value", "baseline", "ratio", "target", "result"];
        let cells: Vec<[&str; 6]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.figure.as_str(),
                    r.value.as_str(),
                    r.baseline.as_str(),
                    r.ratio.as_str(),
                    r.target.as_str(),
                    r.verdict.as_str(),
                ]
            })
            .collect();
        let mut width = head.map(|h| h.chars().count());
        for c in &cells {
            for (w, s) in width.iter_mut().zip(c) {
                *w = (*w).max(s.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |c: &[&str; 6]| {
            let mut l = String::new();
            for (i, (s, w)) in c.iter().zip(width).enumerate() {
                if i + 1 == c.len() {
                    l.push_str(s);
                } else {
                    let _ = write!(l, "{s:<w$}  ");
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&head);
        for c in &cells {
            line(c);
        }
        let pass = self.rows.iter().filter(|r| r.verdict == Verdict::Pass);
        let fail = self.rows.iter().filter(|r| r.verdict == Verdict::Fail);
        if self.quick {
            let _ = writeln!(out, "\ntargets: not judged in a --quick run");
        } else {
            let _ = writeln!(
                out,
                "\ntargets: {} met, {} missed",
                pass.count(),
                fail.count()
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}
