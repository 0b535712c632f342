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
//! 6. the lines are appended to `feed.jsonl`, and a factory's store appends them to the
//!    company's `feed.jsonl` too, each with `"factory":"<name>"` added; only then does the
//!    caller report success.
//!
//! The feeds are copies for `tail -f`, not the log: failing to write one only warns. The
//! company feed has writers that do not hold the company's store lock (every factory's), so
//! each feed append takes `flock` on the feed file itself for its repair-and-write. That lock
//! is a leaf: nothing else is locked while it is held, so it adds no lock order. Each store's
//! lines reach the company feed in `seq` order (its writer holds the store lock); lines of
//! different stores are in the order they were written.
//!
//! `seq` continues from the highest `seq` anywhere in the log, not from the last line: a log
//! damaged by hand (a line duplicated at the end, a restored older line) must never make a
//! writer hand out a `seq` that is already taken. Finding that maximum without reading the log
//! each time is what the writers' note is for: after every append the writer records, in the
//! lock file it already holds, the highest `seq` and where the log ended. The next writer
//! checks that note against the log (the event at its position, the sizes of the files before
//! it) and reads only what was appended after it; a note that does not match means one full
//! pass over the log.

use super::log::{LogFile, last_event_in, parse_seq, verify_checkpoint};
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
    /// The lock file; it also holds the writers' note (see the module documentation).
    lock: File,
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
    /// The highest `seq` anywhere in the log: the next event gets one more.
    max_seq: u64,
    /// How many log files come before this one and their total size, for the note.
    before: (u64, u64),
}

/// The writers' note (kept in `.work/.lock`): the highest `seq` in the log and where the log
/// ended when it was written, with the count and total size of the files before that one.
#[derive(serde::Serialize, serde::Deserialize)]
struct Note {
    max_seq: u64,
    at: Checkpoint,
    before_files: u64,
    before_bytes: u64,
}

/// The note's checksum, so a note cut short by a crash is never taken for a good one.
fn note_sum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Note {
    fn read(lock: &File) -> Option<Note> {
        let mut buf = vec![0u8; 4096];
        let n = lock.read_at(&mut buf, 0).ok()?;
        let line = &buf[..n];
        let line = &line[..memchr::memchr(b'\n', line)?];
        let tab = memchr::memrchr(b'\t', line)?;
        let (json, sum) = (&line[..tab], &line[tab + 1..]);
        let sum = u64::from_str_radix(std::str::from_utf8(sum).ok()?, 16).ok()?;
        if sum != note_sum(json) {
            return None;
        }
        serde_json::from_slice(json).ok()
    }

    fn write(&self, lock: &File) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let sum = note_sum(&line);
        line.extend_from_slice(format!("\t{sum:016x}\n").as_bytes());
        lock.write_all_at(&line, 0)
    }
}

/// The highest `seq` of the whole lines in `file[from..to]` (0 when none).
fn max_seq_in(file: &File, from: u64, to: u64) -> std::io::Result<u64> {
    const CHUNK: usize = 1 << 20;
    let mut max = 0;
    let mut pos = from;
    let mut buf = Vec::new();
    let mut carry = 0usize;
    while pos < to {
        let want = ((to - pos) as usize).min(CHUNK);
        buf.resize(carry + want, 0);
        file.read_exact_at(&mut buf[carry..], pos)?;
        pos += want as u64;
        let whole = match memchr::memrchr(b'\n', &buf) {
            Some(i) => i + 1,
            None => {
                carry = buf.len();
                continue;
            }
        };
        for line in buf[..whole].split(|&b| b == b'\n') {
            if let Some((seq, _)) = parse_seq(line) {
                max = max.max(seq);
            }
        }
        buf.drain(..whole);
        carry = buf.len();
    }
    Ok(max)
}

impl Store {
    /// Takes the writers' lock (blocking) and returns a [`Writer`].
    pub fn lock(&self) -> Result<Writer<'_>> {
        let path = self.lock_path();
        let file = fsutil::open_rw(&path).map_err(|e| StoreError::io(&path, e))?;
        file.lock().map_err(|e| StoreError::io(&path, e))?;
        Ok(Writer {
            store: self,
            lock: file,
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

    /// The highest `seq` in the log (0 for an empty log): in a healthy log, that of the last
    /// event.
    pub fn last_seq(&mut self) -> Result<u64> {
        Ok(self.target()?.max_seq)
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

    fn partition_name(&self, files: &[LogFile]) -> String {
        if !self.store.partition_by_day() {
            return "events".to_string();
        }
        let today = self.store.clock().now().format("%Y-%m-%d").to_string();
        let newest = files
            .iter()
            .filter(|f| !f.archived && f.name != "events")
            .map(|p| p.name.clone())
            .max();
        match newest {
            Some(n) if n > today => n,
            _ => today,
        }
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
        let files = self.store.log_files()?;
        let name = self.partition_name(&files);
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
        // The files before this one (this one is the newest, or new).
        let k = files
            .iter()
            .position(|f| f.name == name)
            .unwrap_or(files.len());
        let before_files = &files[..k];
        let mut before_bytes = 0;
        for f in before_files {
            before_bytes += fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
        }
        let before = (before_files.len() as u64, before_bytes);
        let mut end = Checkpoint::default();
        if let Some((seq, id)) = last_event_in(&file, len).map_err(|e| StoreError::io(&path, e))? {
            end = Checkpoint {
                seq,
                event_id: Some(id),
                log: Some(name.clone()),
                offset: len,
                ..Default::default()
            };
        } else {
            // A new (or empty) file: the sequence continues from the rest of the log. Files are
            // in seq order, so the newest one holding an event has the last seq.
            for lf in files.iter().rev() {
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
                        log: Some(lf.name.clone()),
                        offset: complete,
                        ..Default::default()
                    };
                    break;
                }
            }
        }
        let max_seq = self
            .max_seq(&files, (&name, &file, len), before)?
            .max(end.seq);
        Ok(Target {
            name,
            path,
            file,
            len,
            end,
            max_seq,
            before,
        })
    }

    /// The highest `seq` in the log: from the writers' note and what was appended after it
    /// when the note matches the log, else from a pass over every file.
    fn max_seq(
        &self,
        files: &[LogFile],
        (name, target, len): (&str, &File, u64),
        before: (u64, u64),
    ) -> Result<u64> {
        // The target's bytes count up to `len` only (a torn tail was just cut off).
        let upto = |lf: &LogFile, f: &File| -> std::io::Result<u64> {
            if lf.name == name {
                return Ok(len);
            }
            let l = f.metadata()?.len();
            complete_len(f, l)
        };
        let scan_from = |k: usize, offset: u64| -> std::io::Result<u64> {
            let mut max = 0;
            for (i, lf) in files.iter().enumerate().skip(k) {
                let owned;
                let f = if lf.name == name {
                    target
                } else {
                    owned = match File::open(&lf.path) {
                        Ok(f) => f,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    };
                    &owned
                };
                let from = if i == k { offset } else { 0 };
                max = max.max(max_seq_in(f, from, upto(lf, f)?)?);
            }
            Ok(max)
        };
        let io = |e| StoreError::io(self.store.dir(), e);
        if let Some(note) = Note::read(&self.lock)
            && let Some(log) = note.at.log.as_deref()
            && let Some(k) = files.iter().position(|f| f.name == log)
            && verify_checkpoint(&files[k], &note.at).is_ok()
        {
            let mut bytes = 0;
            for f in &files[..k] {
                bytes += fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
            }
            // The note's own file may be before the target only when the target is new.
            let unchanged = (k as u64, bytes) == (note.before_files, note.before_bytes)
                && (log == name || before.0 > k as u64);
            if unchanged {
                return Ok(note.max_seq.max(scan_from(k, note.at.offset).map_err(io)?));
            }
        }
        scan_from(0, 0).map_err(io)
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
        let stamp = self.store.clock().now().format("%Y%m%dT%H%M%S%3fZ");
        if let Err(e) = fsutil::ensure_dir(&qdir) {
            // Something planted in the quarantine's place (a symlink out of the store, a
            // file) must not stop every write: it is renamed aside (the link itself, never
            // followed) and a real directory made in its place.
            let planted = std::fs::symlink_metadata(&qdir).is_ok_and(|m| !m.is_dir());
            if !planted {
                return Err(StoreError::io(&qdir, e));
            }
            let aside = qdir.with_file_name(format!("quarantine.refused-{stamp}"));
            std::fs::rename(&qdir, &aside).map_err(|e| StoreError::io(&qdir, e))?;
            fsutil::ensure_dir(&qdir).map_err(|e| StoreError::io(&qdir, e))?;
            self.warnings.push(format!(
                "{} was not a directory (a symlink or a file); renamed it to {} and made a real one",
                self.store.display_path(&qdir),
                self.store.display_path(&aside)
            ));
        }
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
        let timestamp = format_timestamp(self.store.clock().now());
        let events = events
            .into_iter()
            .map(|ne| Event {
                v: ENVELOPE_VERSION,
                seq: 0,
                event_id: ids::new_event_id(),
                event_type: ne.event_type,
                timestamp: timestamp.clone(),
                actor: ne.actor,
                correlation_id: ne.correlation_id,
                caused_by: ne.caused_by,
                data: ne.data,
            })
            .collect();
        self.write_batch(events)
    }

    /// Appends whole events, as made elsewhere (`wo sync` imports another store's), through the
    /// same protocol as [`Writer::append`]: each gets this log's next `seq` (the log stays
    /// gapless) and keeps its `event_id`, time, actor and payload, so readers apply it once by
    /// its id wherever it was copied from. The caller leaves out events this log already has.
    pub fn import(&mut self, events: Vec<Event>) -> Result<Vec<Event>> {
        if let Some(e) = events.iter().find(|e| e.v != ENVELOPE_VERSION) {
            return Err(StoreError::ImportVersion {
                event_id: e.event_id.clone(),
                v: e.v,
            });
        }
        self.write_batch(events)
    }

    /// Steps 2-6 of the protocol for a batch: `seq` is assigned here, everything else comes
    /// with the events.
    fn write_batch(&mut self, events: Vec<Event>) -> Result<Vec<Event>> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.target()?;
        let mut out = Vec::with_capacity(events.len());
        let mut buf = Vec::with_capacity(512 * events.len());
        let mut seq = t.max_seq;
        for mut ev in events {
            seq += 1;
            ev.seq = seq;
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
            ..Default::default()
        };
        t.max_seq = seq;
        let note = Note {
            max_seq: seq,
            at: t.end.clone(),
            before_files: t.before.0,
            before_bytes: t.before.1,
        };
        // A note that is not written only costs the next writer a pass over the log.
        let _ = note.write(&self.lock);
        self.append_feed(&buf);
        self.append_company_feed(&buf);
        Ok(out)
    }

    /// `feed.jsonl` is a convenience copy for `tail -f`; failing to write it does not undo
    /// the (already durable) event, it only warns.
    fn append_feed(&mut self, buf: &[u8]) {
        let path = self.store.feed_path();
        if let Err(e) = append_to_feed(&path, buf) {
            self.warnings.push(format!(
                "could not append to {}: {e} (the event log itself is intact)",
                self.store.display_path(&path)
            ));
        }
    }

    /// A factory's lines go to the company feed too, tagged with the factory's name.
    fn append_company_feed(&mut self, buf: &[u8]) {
        let Some(feed) = self.store.company_feed() else {
            return;
        };
        let tagged = tag_lines(buf, &feed.factory);
        if let Err(e) = append_to_feed(&feed.path, &tagged) {
            self.warnings.push(format!(
                "could not append to the company feed {}: {e} (the event log itself is intact)",
                feed.path.display()
            ));
        }
    }
}

/// Appends whole lines to a feed under `flock` on the feed itself, after cutting off a torn
/// tail a killed writer left.
fn append_to_feed(path: &std::path::Path, buf: &[u8]) -> std::io::Result<()> {
    let f = fsutil::open_append(path)?;
    f.lock()?;
    let len = f.metadata()?.len();
    let complete = complete_len(&f, len)?;
    if complete != len {
        f.set_len(complete)?;
    }
    (&f).write_all(buf)
    // Dropping `f` releases the lock.
}

/// Each line of `buf` (compact JSON objects, one per line) with `"factory":"<name>"` added as
/// its last key, as the company feed shows a factory's events. `name` is a factory name
/// (`[a-z0-9-]+`), so it needs no escaping.
pub fn tag_lines(buf: &[u8], name: &str) -> Vec<u8> {
    let tag = format!(",\"factory\":\"{name}\"}}");
    let mut out = Vec::with_capacity(buf.len() + 32);
    for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match line.strip_suffix(b"}") {
            Some(body) => {
                out.extend_from_slice(body);
                out.extend_from_slice(tag.as_bytes());
            }
            None => out.extend_from_slice(line),
        }
        out.push(b'\n');
    }
    out
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

/// Whether the test failpoint `name` is set (`VERMAS_FAILPOINT=name`, or several names with
/// commas). Debug builds only: a release build never fails on purpose.
#[cfg(debug_assertions)]
pub fn failpoint(name: &str) -> bool {
    std::env::var("VERMAS_FAILPOINT").is_ok_and(|v| v.split(',').any(|f| f == name))
}

#[cfg(not(debug_assertions))]
pub fn failpoint(_name: &str) -> bool {
    false
}

/// Test failpoint (debug builds only): `VERMAS_FAILPOINT=torn-write` writes half of the batch
/// and aborts, like a writer killed mid-line.
#[cfg(debug_assertions)]
fn failpoint_torn_write(file: &File, buf: &[u8]) {
    if failpoint("torn-write") {
        let mut f = file;
        let _ = f.write_all(&buf[..buf.len() / 2]);
        let _ = f.sync_data();
        std::process::abort();
    }
}

#[cfg(not(debug_assertions))]
fn failpoint_torn_write(_file: &File, _buf: &[u8]) {}
