//! The append protocol (design §3). Every writer in every process goes through [`Writer`]:
//!
//! 1. exclusive lock on `.work/.lock` (held until the `Writer` is dropped);
//! 2. partition = the later of today (UTC) and the newest existing partition, so a clock that
//!    steps back never writes into an older day;
//! 3. open with `O_APPEND | O_NOFOLLOW | O_CLOEXEC`, mode 0600; a new file gets its directory
//!    fsynced;
//! 4. a tail that does not end in `\n` (a writer died mid-line) is copied into
//!    `.work/quarantine/` and truncated back to the last newline;
//! 5. `seq` is assigned, every line serialised, the batch written with one `write_all` (a short
//!    write is truncated back), then `fdatasync`; an fsync error is fatal for the command;
//! 6. the lines are appended to `feed.jsonl`; only then does the caller report success.

use super::log::last_event_in;
use super::{Checkpoint, Result, Store, StoreError};
use crate::clock::format_timestamp;
use crate::event::{ENVELOPE_VERSION, Event, MAX_LINE_BYTES, NewEvent};
use crate::{fsutil, ids};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Holds the store lock; appends events. Dropping it releases the lock.
pub struct Writer<'s> {
    store: &'s Store,
    _lock: File,
    target: Option<Target>,
    poisoned: bool,
    /// Things the caller should tell the user (a repaired tail, a feed that could not be
    /// written). The event log itself is fine when these are present.
    pub warnings: Vec<String>,
}

struct Target {
    name: String,
    path: PathBuf,
    file: File,
    len: u64,
    /// Just after the last event of the whole log (which may be in an earlier file).
    end: Checkpoint,
}

impl Store {
    /// Takes the writers' lock (blocking) and returns a [`Writer`].
    pub fn lock(&self) -> Result<Writer<'_>> {
        let path = self.lock_path();
        let file = fsutil::open_rw(&path).map_err(|e| StoreError::io(&path, e))?;
        file.lock().map_err(|e| StoreError::io(&path, e))?;
        Ok(Writer {
            store: self,
            _lock: file,
            target: None,
            poisoned: false,
            warnings: Vec::new(),
        })
    }
}

impl<'s> Writer<'s> {
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The `seq` of the last event in the log (0 for an empty log).
    pub fn last_seq(&mut self) -> Result<u64> {
        Ok(self.target()?.end.seq)
    }

    /// Where the log ends now: the last event's seq and id, its file and the offset after it
    /// (the line number is not tracked here and is 0).
    pub fn position(&mut self) -> Result<Checkpoint> {
        Ok(self.target()?.end.clone())
    }

    /// Prints the warnings to stderr and clears them.
    pub fn report_warnings(&mut self) {
        for w in self.warnings.drain(..) {
            eprintln!("warning: {w}");
        }
    }

    fn partition_name(&self) -> Result<String> {
        if !self.store.partition_by_day() {
            return Ok("events".to_string());
        }
        let today = self.store.clock().now().format("%Y-%m-%d").to_string();
        let newest = self
            .store
            .live_partitions()?
            .into_iter()
            .map(|p| p.name)
            .max();
        Ok(match newest {
            Some(n) if n > today => n,
            _ => today,
        })
    }

    fn target(&mut self) -> Result<&mut Target> {
        if self.target.is_none() {
            let t = self.open_target()?;
            self.target = Some(t);
        }
        // Just set above when it was missing.
        self.target.as_mut().ok_or(StoreError::Poisoned)
    }

    fn open_target(&mut self) -> Result<Target> {
        let name = self.partition_name()?;
        let (dir, path) = if name == "events" {
            (self.store.dir().to_path_buf(), self.store.single_log_path())
        } else {
            let dir = self.store.events_dir();
            fsutil::ensure_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
            let p = dir.join(format!("{name}.jsonl"));
            (dir, p)
        };
        let existed = fs::symlink_metadata(&path).is_ok();
        let file = fsutil::open_append(&path).map_err(|e| StoreError::io(&path, e))?;
        if !existed {
            fsutil::fsync_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        }
        let mut len = file.metadata().map_err(|e| StoreError::io(&path, e))?.len();
        if len > 0 {
            len = self.repair_tail(&path, &file, &name, len)?;
        }
        let mut end = Checkpoint::default();
        if let Some((seq, id)) = last_event_in(&file, len).map_err(|e| StoreError::io(&path, e))? {
            end = Checkpoint {
                seq,
                event_id: Some(id),
                log: Some(name.clone()),
                offset: len,
                line: 0,
            };
        } else {
            // A new (or empty) file: the sequence continues from the rest of the log. Files are
            // in seq order, so the newest one holding an event has the last seq.
            for lf in self.store.log_files()?.into_iter().rev() {
                if lf.path == path {
                    continue;
                }
                let Ok(f) = File::open(&lf.path) else {
                    continue;
                };
                let l = f.metadata().map(|m| m.len()).unwrap_or(0);
                let complete = complete_len(&f, l).unwrap_or(0);
                if let Ok(Some((seq, id))) = last_event_in(&f, complete) {
                    end = Checkpoint {
                        seq,
                        event_id: Some(id),
                        log: Some(lf.name),
                        offset: complete,
                        line: 0,
                    };
                    break;
                }
            }
        }
        Ok(Target {
            name,
            path,
            file,
            len,
            end,
        })
    }

    /// Moves a torn tail (bytes after the last newline) into quarantine and truncates it away.
    fn repair_tail(
        &mut self,
        path: &std::path::Path,
        file: &File,
        name: &str,
        len: u64,
    ) -> Result<u64> {
        let complete = complete_len(file, len).map_err(|e| StoreError::io(path, e))?;
        if complete == len {
            return Ok(len);
        }
        let mut fragment = vec![0u8; (len - complete) as usize];
        file.read_exact_at(&mut fragment, complete)
            .map_err(|e| StoreError::io(path, e))?;
        let qdir = self.store.quarantine_dir();
        fsutil::ensure_dir(&qdir).map_err(|e| StoreError::io(&qdir, e))?;
        let stamp = self.store.clock().now().format("%Y%m%dT%H%M%S%3fZ");
        let qpath = qdir.join(format!("{name}-{complete}-{stamp}.torn"));
        let mut q = fsutil::create_new(&qpath).map_err(|e| StoreError::io(&qpath, e))?;
        q.write_all(&fragment)
            .and_then(|_| q.sync_all())
            .map_err(|e| StoreError::io(&qpath, e))?;
        fsutil::fsync_dir(&qdir).map_err(|e| StoreError::io(&qdir, e))?;
        file.set_len(complete)
            .and_then(|_| file.sync_all())
            .map_err(|e| StoreError::io(path, e))?;
        self.warnings.push(format!(
            "{} ended with a torn line ({} bytes, a writer died mid-write); moved it to {}",
            self.store.display_path(path),
            fragment.len(),
            self.store.display_path(&qpath)
        ));
        Ok(complete)
    }

    /// Appends events in one write and one `fdatasync`; returns them with `seq`, id and time.
    pub fn append(&mut self, events: Vec<NewEvent>) -> Result<Vec<Event>> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let timestamp = format_timestamp(self.store.clock().now());
        let t = self.target()?;
        let mut out = Vec::with_capacity(events.len());
        let mut buf = Vec::with_capacity(512 * events.len());
        let mut seq = t.end.seq;
        for ne in events {
            seq += 1;
            let ev = Event {
                v: ENVELOPE_VERSION,
                seq,
                event_id: ids::new_event_id(),
                event_type: ne.event_type,
                timestamp: timestamp.clone(),
                actor: ne.actor,
                correlation_id: ne.correlation_id,
                caused_by: ne.caused_by,
                data: ne.data,
            };
            let start = buf.len();
            serde_json::to_writer(&mut buf, &ev)?;
            let line_len = buf.len() - start;
            if line_len > MAX_LINE_BYTES {
                return Err(StoreError::LineTooLong(line_len));
            }
            buf.push(b'\n');
            out.push(ev);
        }
        failpoint_torn_write(&t.file, &buf);
        if let Err(e) = (&t.file).write_all(&buf) {
            // Nothing partial may stay: cut back to where this batch started.
            let _ = t.file.set_len(t.len);
            return Err(StoreError::io(&t.path, e));
        }
        if let Err(e) = t.file.sync_data() {
            let path = t.path.clone();
            self.poisoned = true;
            return Err(StoreError::Fsync { path, source: e });
        }
        t.len += buf.len() as u64;
        t.end = Checkpoint {
            seq,
            event_id: out.last().map(|e| e.event_id.clone()),
            log: Some(t.name.clone()),
            offset: t.len,
            line: 0,
        };
        self.append_feed(&buf);
        Ok(out)
    }

    /// `feed.jsonl` is a convenience copy for `tail -f`; failing to write it does not undo
    /// the (already durable) event, it only warns.
    fn append_feed(&mut self, buf: &[u8]) {
        let path = self.store.feed_path();
        let result = (|| -> std::io::Result<()> {
            let f = fsutil::open_append(&path)?;
            let len = f.metadata()?.len();
            let complete = complete_len(&f, len)?;
            if complete != len {
                f.set_len(complete)?;
            }
            (&f).write_all(buf)
        })();
        if let Err(e) = result {
            self.warnings.push(format!(
                "could not append to {}: {e} (the event log itself is intact)",
                self.store.display_path(&path)
            ));
        }
    }
}

/// The length of `file` up to and including its last newline.
fn complete_len(file: &File, len: u64) -> std::io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(64 * 1024);
        let mut buf = vec![0u8; (end - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        if let Some(i) = memchr::memrchr(b'\n', &buf) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Test failpoint (debug builds only): `VERMAS_FAILPOINT=torn-write` writes half of the batch
/// and aborts, like a writer killed mid-line.
#[cfg(debug_assertions)]
fn failpoint_torn_write(file: &File, buf: &[u8]) {
    if std::env::var_os("VERMAS_FAILPOINT").is_some_and(|v| v == "torn-write") {
        let mut f = file;
        let _ = f.write_all(&buf[..buf.len() / 2]);
        let _ = f.sync_data();
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
fn failpoint_torn_write(_file: &File, _buf: &[u8]) {}
