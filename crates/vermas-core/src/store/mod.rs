//! The `.work` store (design §3): an append-only JSONL event log, partitioned by UTC day, a
//! `feed.jsonl` copy for `tail -f`, and projections (caches) that are rebuilt from the log.
//!
//! Writers follow one protocol ([`Writer`]): lock, pick the partition, repair a torn tail, write
//! each line with one `write_all`, `fdatasync`, copy to the feed, unlock. Readers take no lock,
//! read whole lines only and skip (and report) lines that do not parse.
//!
//! A factory's store also copies its lines to the company's `feed.jsonl`, tagged with
//! `"factory":"<name>"`, so `tail -f .work/feed.jsonl` at the company root shows the whole
//! company (see [`Writer::append`] for how the feeds are locked).

mod append;
mod archive;
mod follow;
mod log;
mod projection;

pub use append::{Writer, failpoint, tag_lines};
pub use log::{Issue, LineInfo, LogFile, ScanOutcome};
pub use projection::{Checkpoint, Loaded, Projection};

use crate::clock::{self, Clock};
use crate::error::{Classify, Kind};
use crate::fsutil;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no work order store found from {} upward; run `wo init` here (or `co init` for a company), or pass --work-dir",
        .0.display()
    )]
    NotFound(PathBuf),
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{} is a symbolic link; refusing to write through it", .0.display())]
    Symlink(PathBuf),
    #[error("{}: permission denied", .0.display())]
    PermissionDenied(PathBuf),
    #[error("{}: no space left on device; nothing was written", .0.display())]
    NoSpace(PathBuf),
    #[error(
        "{}: fsync failed ({source}); the event may not be durable and is not retried",
        path.display()
    )]
    Fsync { path: PathBuf, source: io::Error },
    #[error("event is {0} bytes; the limit for one event line is 1 MiB (1048576 bytes)")]
    LineTooLong(usize),
    #[error("a previous fsync failed in this command; refusing further writes")]
    Poisoned,
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "event {event_id} has envelope version {v}; this build reads and writes version 1 only (upgrade vermas)"
    )]
    ImportVersion { event_id: String, v: u32 },
    #[error("could not serialise an event: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Classify for StoreError {
    fn kind(&self) -> Kind {
        match self {
            StoreError::Symlink(_) | StoreError::PermissionDenied(_) => Kind::Permission,
            StoreError::LineTooLong(_) => Kind::Usage,
            _ => Kind::Failure,
        }
    }
}

impl StoreError {
    /// Wraps an I/O error with its path, naming the common cases plainly.
    pub fn io(path: &Path, e: io::Error) -> StoreError {
        let path = path.to_path_buf();
        if fsutil::is_symlink_refusal(&e) || e.to_string().contains("symbolic link") {
            return StoreError::Symlink(path);
        }
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StoreError::NoSpace(path),
            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
                StoreError::PermissionDenied(path)
            }
            _ => StoreError::Io { path, source: e },
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How a store is laid out and timed.
#[derive(Clone)]
pub struct StoreOptions {
    /// One file per UTC day under `events/` (the default) or one `events.jsonl`.
    pub partition_by_day: bool,
    pub clock: Arc<dyn Clock>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            partition_by_day: true,
            clock: clock::system(),
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("partition_by_day", &self.partition_by_day)
            .finish()
    }
}

/// A `.work` directory.
pub struct Store {
    dir: PathBuf,
    opts: StoreOptions,
    /// For a factory's store: the company feed that gets a copy of every line.
    company_feed: Option<CompanyFeed>,
}

/// The company's `feed.jsonl`, as seen from one of its factories' stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyFeed {
    /// `<root>/.work/feed.jsonl`.
    pub path: PathBuf,
    /// The factory's name, added to each copied line as `"factory"`.
    pub factory: String,
}

impl CompanyFeed {
    /// The company feed of the store at `dir` when that store is a factory's
    /// (`<root>/<factory>/.work` with `<root>/.vermas/config.toml`); the path as given is looked
    /// at first (`.work` may be a symlink to other storage), then the canonical one.
    fn of(given: &Path, canonical: &Path) -> Option<CompanyFeed> {
        let both = [given, canonical];
        let dirs = if given == canonical {
            &both[..1]
        } else {
            &both[..]
        };
        for dir in dirs {
            let Some(owner) = dir.parent() else { continue };
            if crate::context::is_company_root(owner) {
                // The company's own store.
                return None;
            }
            let Some(root) = owner.parent() else { continue };
            let Some(name) = owner.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if crate::context::is_company_root(root)
                && crate::config::is_valid_name(name)
                && !crate::company::RESERVED.contains(&name)
            {
                return Some(CompanyFeed {
                    path: root.join(".work").join("feed.jsonl"),
                    factory: name.to_string(),
                });
            }
        }
        None
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// Opens an existing store. `.work` itself may be a symlink (the guide suggests moving it
    /// to fast storage); entries inside it may not.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store> {
        let canonical = dir.canonicalize().map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::NotFound(dir.to_path_buf())
            } else {
                StoreError::io(dir, e)
            }
        })?;
        if !canonical.is_dir() {
            return Err(StoreError::NotADirectory(dir.to_path_buf()));
        }
        let given = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(dir))
                .unwrap_or_else(|_| canonical.clone())
        };
        let company_feed = CompanyFeed::of(&given, &canonical);
        Ok(Store {
            dir: canonical,
            opts,
            company_feed,
        })
    }

    /// Creates the store directory (0700) and its `events/` directory. Safe to run twice.
    pub fn init(dir: &Path, opts: StoreOptions) -> Result<Store> {
        if std::fs::symlink_metadata(dir).is_err() {
            fsutil::ensure_dir(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let store = Store::open(dir, opts)?;
        if store.opts.partition_by_day {
            let events = store.events_dir();
            fsutil::ensure_dir(&events).map_err(|e| StoreError::io(&events, e))?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn clock(&self) -> &dyn Clock {
        self.opts.clock.as_ref()
    }
    pub fn partition_by_day(&self) -> bool {
        self.opts.partition_by_day
    }
    pub fn events_dir(&self) -> PathBuf {
        self.dir.join("events")
    }
    pub fn archive_dir(&self) -> PathBuf {
        self.dir.join("events").join("archive")
    }
    pub fn single_log_path(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }
    pub fn feed_path(&self) -> PathBuf {
        self.dir.join("feed.jsonl")
    }
    /// For a factory's store, the company feed its lines are copied to.
    pub fn company_feed(&self) -> Option<&CompanyFeed> {
        self.company_feed.as_ref()
    }
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(".lock")
    }
    pub fn quarantine_dir(&self) -> PathBuf {
        self.dir.join("quarantine")
    }

    /// Appends events under the lock and returns them with their `seq`.
    pub fn append(&self, events: Vec<crate::event::NewEvent>) -> Result<Vec<crate::event::Event>> {
        let mut w = self.lock()?;
        let out = w.append(events)?;
        w.report_warnings();
        Ok(out)
    }

    /// A path relative to the store, for messages (`events/2026-11-21.jsonl`).
    pub fn display_path(&self, p: &Path) -> String {
        p.strip_prefix(&self.dir)
            .map(|r| format!(".work/{}", r.display()))
            .unwrap_or_else(|_| p.display().to_string())
    }
}

#[cfg(test)]
mod tests;
