//! What the long-running loops share (operations, supervisor, QA): a patrol every interval, an
//! early wake when a watched store changes (`notify`), clean shutdown on SIGTERM, SIGINT and
//! SIGHUP (tmux sends SIGHUP when a session is killed), single-instance locks, the log.
//!
//! Signals are received by a tokio runtime on a side thread, which raises a flag and wakes the
//! loop; the patrol itself is plain synchronous code, so a long gate run can check the flag.

use crate::error::{Error, Result};
use crate::store::StoreError;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// Why the loop woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The patrol interval passed.
    Timer,
    /// A watched directory changed.
    Change,
    /// A signal asked us to stop.
    Shutdown,
}

/// A flag raised by SIGTERM, SIGINT or SIGHUP.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Installs the signal handlers on a side thread; they raise the flag and wake the loop.
pub fn handle_signals(wake: Sender<Wake>) -> Result<Shutdown> {
    let flag = Shutdown::default();
    let f = flag.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("cannot start the signal handler: {e}")))?;
    let (ready_tx, ready_rx) = channel::<std::result::Result<(), String>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (mut term, mut int, mut hup) = match (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::hangup()),
                ) {
                    (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                    _ => {
                        let _ = ready_tx.send(Err("cannot install signal handlers".into()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                    _ = hup.recv() => {}
                }
                f.request();
                let _ = wake.send(Wake::Shutdown);
            });
        })
        .map_err(|e| Error::failure(format!("cannot start the signal thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(flag),
        Ok(Err(e)) => Err(Error::failure(e)),
        Err(_) => Err(Error::failure("the signal thread died")),
    }
}

/// Watches directories (non-recursively) and wakes the loop on any change. Returns the watcher,
/// which must be kept alive; `None` when notifications are unavailable (the timer still runs).
pub fn watch(dirs: &[PathBuf], wake: Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && !matches!(ev.kind, notify::EventKind::Access(_))
            && (ev.paths.is_empty() || !ev.paths.iter().all(|p| is_noise(p)))
        {
            let _ = wake.send(Wake::Change);
        }
    })
    .ok()?;
    let mut any = false;
    for d in dirs {
        if d.is_dir() && w.watch(d, notify::RecursiveMode::NonRecursive).is_ok() {
            any = true;
        }
    }
    any.then_some(w)
}

/// Files the loops and readers write for themselves (status files, locks, caches, their
/// temporary files): a change to one of them is no news. Without this filter, a loop that
/// writes its status file at every patrol wakes itself, and the others, for ever. What is news
/// is the log (day partitions, `events.jsonl`), settings (`config.toml`) and the entries of a
/// company (a factory added).
pub fn is_noise(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    // Dot files: `.supervisor.json`, `.qa.json`, `.lock`, assignments, temporary files.
    name.starts_with('.')
        || name.ends_with(".lock")
        || name == "operations.json"
        // A copy of the log: the partition's own change already woke the loop.
        || name == "feed.jsonl"
        // Caches of the log (the projections, the id index, the work order index).
        || matches!(name, "work_orders.jsonl" | "messages.jsonl" | "slots.jsonl")
        || name == "work_orders.ids"
        || name.starts_with("work_orders.db")
}

/// How long a change is given to finish touching its files before the loop looks.
const COALESCE: Duration = Duration::from_millis(3);

/// Waits for the next reason to patrol: a change (coalesced over a few milliseconds), the timer
/// or shutdown.
pub fn next_wake(rx: &Receiver<Wake>, interval: Duration, shutdown: &Shutdown) -> Wake {
    if shutdown.requested() {
        return Wake::Shutdown;
    }
    let w = match rx.recv_timeout(interval) {
        Ok(w) => w,
        Err(_) => Wake::Timer,
    };
    if w == Wake::Change {
        // A write touches several files; take them as one change. Short: every hop of the
        // pipeline (worker → supervisor → QA) waits this long once.
        std::thread::sleep(COALESCE);
        while let Ok(more) = rx.try_recv() {
            if more == Wake::Shutdown {
                return Wake::Shutdown;
            }
        }
    }
    if shutdown.requested() {
        Wake::Shutdown
    } else {
        w
    }
}

/// A held single-instance lock: a file that records pid and start time, `flock`ed for the life
/// of the process (the kernel releases it if the process dies, even by `kill -9`).
pub struct InstanceLock {
    _file: File,
    pub path: PathBuf,
}

/// What an instance lock file says.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub started_at: String,
}

impl InstanceLock {
    /// Takes the lock or says who holds it (exit 5).
    pub fn acquire(path: &Path, what: &str) -> Result<InstanceLock> {
        let file = crate::fsutil::open_rw(path).map_err(|e| StoreError::io(path, e))?;
        // [`running`] probes with a shared lock for a moment (`co operations start` polls it
        // while this daemon starts): a few short retries tell such a probe from a holder,
        // which never lets go.
        let mut tries = 0;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if tries < 10 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let who = read_holder(path)
                        .map(|h| format!(" (pid {} since {})", h.pid, h.started_at))
                        .unwrap_or_default();
                    return Err(Error::conflict(format!("{what} is already running{who}")));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(StoreError::io(path, e).into());
                }
            }
        }
        let holder = Holder {
            pid: std::process::id(),
            started_at: crate::clock::format_timestamp(chrono::Utc::now()),
        };
        let mut text = serde_json::to_vec(&holder).map_err(StoreError::from)?;
        text.push(b'\n');
        file.set_len(0)
            .and_then(|_| (&file).write_all(&text))
            .map_err(|e| StoreError::io(path, e))?;
        Ok(InstanceLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }
}

/// Who holds a lock file, if anyone does now.
pub fn running(path: &Path) -> Option<Holder> {
    let file = std::fs::File::open(path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => read_holder(path),
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// What a running supervisor or QA says about itself (`.work/.supervisor.json`,
/// `.work/.qa.json`), rewritten each patrol: `co config show` and `co status` read it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoopStatus {
    pub pid: u32,
    pub started_at: String,
    pub last_patrol: String,
    /// Settings files that do not load; the settings from before the edit are in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_errors: Vec<String>,
}

impl LoopStatus {
    pub fn new() -> LoopStatus {
        LoopStatus {
            pid: std::process::id(),
            started_at: crate::clock::format_timestamp(chrono::Utc::now()),
            ..Default::default()
        }
    }

    /// Records a patrol and writes the file (no fsync: it is rewritten every patrol).
    pub fn write(&mut self, path: &Path, config_errors: Vec<String>) {
        self.last_patrol = crate::clock::format_timestamp(chrono::Utc::now());
        self.config_errors = config_errors;
        if let Ok(text) = serde_json::to_vec_pretty(self) {
            let _ = crate::fsutil::atomic_write_unsynced(path, &text);
        }
    }

    /// The status of the loop holding `lock`, if one runs.
    pub fn read_running(lock: &Path, status: &Path) -> Option<LoopStatus> {
        let holder = running(lock)?;
        let s: Option<LoopStatus> = std::fs::read(status)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Some(s.filter(|s| s.pid == holder.pid).unwrap_or(LoopStatus {
            pid: holder.pid,
            started_at: holder.started_at,
            ..Default::default()
        }))
    }
}

/// A structured log line: `2026-11-21T12:00:00.123Z INFO action key=value …`, appended to a
/// log file (and echoed to stderr, which tmux shows in the session).
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    debug: bool,
    /// The last warning and when it was written: the same warning again within a minute is
    /// counted, not repeated (a persistent problem must not flood the log).
    last_warn: std::sync::Mutex<Option<(String, Instant, u32)>>,
}

impl Log {
    pub fn new(path: PathBuf, settings: &crate::config::Settings) -> Log {
        if let Some(p) = path.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        Log {
            path,
            debug: settings.debug_logging(),
            last_warn: std::sync::Mutex::new(None),
        }
    }

    pub fn write(&self, level: &str, action: &str, fields: &[(&str, &str)]) {
        if level == "DEBUG" && !self.debug {
            return;
        }
        let mut line = format!(
            "{} {level} {action}",
            crate::clock::format_timestamp(chrono::Utc::now())
        );
        for (k, v) in fields {
            let v = crate::text::escape_control(v);
            if v.is_empty() || v.contains([' ', '"', '=']) {
                line.push_str(&format!(" {k}={v:?}"));
            } else {
                line.push_str(&format!(" {k}={v}"));
            }
        }
        eprintln!("{line}");
        if let Ok(mut f) = crate::fsutil::open_append(&self.path) {
            let _ = writeln!(f, "{line}");
        }
    }

    pub fn info(&self, action: &str, fields: &[(&str, &str)]) {
        self.write("INFO", action, fields);
    }
    pub fn warn(&self, action: &str, fields: &[(&str, &str)]) {
        let key = format!("{action}{fields:?}");
        if let Ok(mut last) = self.last_warn.lock() {
            match last.as_mut() {
                Some((k, at, n)) if *k == key && at.elapsed() < Duration::from_secs(60) => {
                    *n += 1;
                    return;
                }
                Some((_, _, n)) if *n > 0 => {
                    let repeated = n.to_string();
                    self.write("WARN", "repeated", &[("times", &repeated)]);
                }
                _ => {}
            }
            *last = Some((key, Instant::now(), 0));
        }
        self.write("WARN", action, fields);
    }
    pub fn debug(&self, action: &str, fields: &[(&str, &str)]) {
        self.write("DEBUG", action, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_locks_say_who_holds_them() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let l = InstanceLock::acquire(&p, "operations").unwrap();
        let e = InstanceLock::acquire(&p, "operations").err().unwrap();
        assert_eq!(e.kind(), crate::Kind::Conflict);
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        assert_eq!(running(&p).unwrap().pid, std::process::id());
        drop(l);
        assert!(running(&p).is_none());
    }

    #[test]
    fn a_probe_of_the_lock_does_not_stop_the_daemon_from_taking_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        std::fs::write(&p, "").unwrap();
        // What `running` does, held a little longer than it ever is.
        let probe = std::fs::File::open(&p).unwrap();
        probe.lock_shared().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(probe);
        });
        let l = InstanceLock::acquire(&p, "operations").unwrap();
        release.join().unwrap();
        assert_eq!(running(&p).unwrap().pid, std::process::id());
        drop(l);
    }

    #[test]
    fn a_loop_is_woken_by_the_log_and_settings_not_by_status_files_and_caches() {
        let news = [
            "/c/f/.work/events/2026-11-27.jsonl",
            "/c/f/.work/events.jsonl",
            "/c/f/.work/config.toml",
            "/c/.vermas/config.toml",
            "/c/newfactory",
        ];
        for p in news {
            assert!(!is_noise(Path::new(p)), "{p}");
        }
        let noise = [
            "/c/f/.work/.supervisor.json",
            "/c/f/.work/..supervisor.json.tmp-12-inc-abc",
            "/c/f/.work/.qa.json",
            "/c/f/.work/.lock",
            "/c/.vermas/operations.json",
            "/c/.vermas/operations.lock",
            "/c/f/.work/feed.jsonl",
            "/c/f/.work/work_orders.jsonl",
            "/c/f/.work/messages.jsonl",
            "/c/f/.work/slots.jsonl",
            "/c/f/.work/work_orders.ids",
            "/c/f/.work/work_orders.db",
            "/c/f/.work/work_orders.db-wal",
            "/c/f/.work/work_orders.db-shm",
        ];
        for p in noise {
            assert!(is_noise(Path::new(p)), "{p}");
        }
    }
}
