//! Projections: caches of state derived from the log (`work_orders.jsonl`, `messages.jsonl`).
//!
//! The first line of a projection file is a header naming the `seq` it covers and where that
//! event ends in the log (file, byte offset, line). A reader loads the file and applies the
//! events after that point, so a write never rewrites a projection and a read is never stale.
//! A header that does not match the log means the file is rebuilt from the log, never trusted.
//! Files are replaced atomically; a rebuild of the same log gives byte-identical files.

use super::log::Issue;
use super::{Result, Store, StoreError};
use crate::event::EventRef;
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::PathBuf;

/// The point in the log a projection covers: just after event `seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub event_id: Option<String>,
    /// Log file name (`2026-11-21` or `events`); `None` before the first event.
    pub log: Option<String>,
    /// Byte offset just after the event's line.
    pub offset: u64,
    /// The event's 1-based line number in that file.
    pub line: u64,
    /// The highest `seq` in the log up to here, when it is above `seq` (only in a damaged log,
    /// where an event with a lower `seq` came later and was applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_seq: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    projection: String,
    version: u32,
    #[serde(flatten)]
    checkpoint: Checkpoint,
    /// How many records follow, and a checksum of their bytes ([`records_checksum`]): a file
    /// cut short, edited or missing a record is rebuilt, never served.
    records: u64,
    checksum: String,
    /// Problems met while building it, so every reader keeps reporting them.
    issues: Vec<Issue>,
}

/// Fletcher-style sums over the record bytes as 64-bit words (each multiplied by an odd
/// constant first), in four lanes (word `i` goes to lane `i % 4`, so the four running sums do
/// not wait on each other): `a` sums a lane's words, `b` sums its running `a`, so a changed,
/// missing or moved byte changes the result. Cheap enough to check on every load, and two
/// halves combine, so a big file is summed on two threads.
#[derive(Clone, Copy, Default)]
struct Sums {
    a: [u64; 4],
    b: [u64; 4],
    /// 32-byte blocks summed (each lane saw one word of each).
    blocks: u64,
}

const SUM_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

impl Sums {
    fn of(bytes: &[u8]) -> Sums {
        let mut s = Sums::default();
        let block = |chunk: &[u8], s: &mut Sums| {
            for (lane, w) in chunk.chunks_exact(8).enumerate() {
                let mut x = [0u8; 8];
                x.copy_from_slice(w);
                s.a[lane] = s.a[lane].wrapping_add(u64::from_le_bytes(x).wrapping_mul(SUM_MUL));
                s.b[lane] = s.b[lane].wrapping_add(s.a[lane]);
            }
            s.blocks += 1;
        };
        let mut chunks = bytes.chunks_exact(32);
        for c in &mut chunks {
            block(c, &mut s);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 32];
            last[..rest.len()].copy_from_slice(rest);
            block(&last, &mut s);
        }
        s
    }

    /// The sums of `self`'s bytes followed by `then`'s (`self` a whole number of blocks).
    fn then(self, then: Sums) -> Sums {
        let mut out = Sums {
            blocks: self.blocks + then.blocks,
            ..Sums::default()
        };
        for l in 0..4 {
            out.a[l] = self.a[l].wrapping_add(then.a[l]);
            out.b[l] = self.b[l]
                .wrapping_add(then.b[l])
                .wrapping_add(then.blocks.wrapping_mul(self.a[l]));
        }
        out
    }
}

/// The checksum of a projection's record bytes, as the header writes it (16 hex digits).
fn records_checksum(bytes: &[u8]) -> String {
    const SPLIT_MIN: usize = 4 << 20;
    let sums = if bytes.len() >= SPLIT_MIN {
        let mid = bytes.len() / 2 / 32 * 32;
        let (x, y) = bytes.split_at(mid);
        std::thread::scope(|s| {
            let other = std::thread::Builder::new()
                .name("checksum".into())
                .spawn_scoped(s, || Sums::of(y));
            let first = Sums::of(x);
            let second = match other {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => Sums::of(y),
            };
            first.then(second)
        })
    } else {
        Sums::of(bytes)
    };
    let len = bytes.len() as u64;
    let mut h = len.wrapping_mul(SUM_MUL);
    for l in 0..4 {
        h = (h ^ sums.a[l]).wrapping_mul(SUM_MUL).rotate_left(23);
        h = (h ^ sums.b[l]).wrapping_mul(SUM_MUL).rotate_left(23);
    }
    format!("{h:016x}")
}

/// A state derived from events.
pub trait Projection: Default {
    /// File stem: `work_orders` → `work_orders.jsonl`.
    const NAME: &'static str;
    /// Bumped when the record format changes; an older file is rebuilt.
    const VERSION: u32;
    /// Whether this projection needs events of this type at all.
    fn wants(event_type: &str) -> bool;
    /// Applies one event; `Err` describes why it could not apply (it becomes an issue).
    fn apply(&mut self, ev: &EventRef<'_>) -> std::result::Result<(), String>;
    /// Loads one record line of the file.
    fn load_record(&mut self, line: &[u8]) -> std::result::Result<(), String>;
    /// Loads every record of the file: `bytes` is the whole file and the records start at
    /// `start`. `Err((line number, why))` names the first record that failed. The default
    /// hands each non-empty line to [`Projection::load_record`]; a projection that keeps raw
    /// lines can keep the buffer instead of copying each line out of it.
    fn load_records(
        &mut self,
        bytes: Vec<u8>,
        start: usize,
    ) -> std::result::Result<(), (usize, String)> {
        let records = bytes.get(start..).unwrap_or_default();
        for (i, line) in records.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            self.load_record(line).map_err(|e| (i + 2, e))?;
        }
        Ok(())
    }
    /// Writes every record, one per line, deterministically.
    fn write_records(&self, out: &mut Vec<u8>) -> std::result::Result<(), serde_json::Error>;
    /// How many records [`Projection::write_records`] writes.
    fn record_count(&self) -> usize;
}

/// A projection brought up to date with the log.
#[derive(Debug)]
pub struct Loaded<P> {
    pub state: P,
    pub checkpoint: Checkpoint,
    pub issues: Vec<Issue>,
    /// Events applied on top of the file (0 when the file was current).
    pub caught_up: u64,
    /// Why the file was rebuilt from the log instead of used, if it was.
    pub rebuilt: Option<String>,
}

impl<P: Projection> Loaded<P> {
    /// Applies the events appended since this state's checkpoint, so a long-running process
    /// can keep a projection in memory and pay only for what is new instead of loading it
    /// again. A log that no longer matches the checkpoint (files replaced or restored) means a
    /// rebuild, as on load. Returns how many events were applied.
    pub fn refresh(&mut self, store: &Store) -> Result<u64> {
        let from = self.checkpoint.clone();
        let state = &mut self.state;
        let mut apply = |ev: &EventRef<'_>, _: &super::LineInfo<'_>| {
            if P::wants(&ev.event_type) {
                state.apply(ev)
            } else {
                Ok(())
            }
        };
        match store.scan(&from, None, &mut apply)? {
            Ok(o) => {
                self.checkpoint = o.end;
                push_issues(&mut self.issues, o.issues);
                self.caught_up += o.events;
                Ok(o.events)
            }
            Err(mismatch) => {
                *self = store.rebuild::<P>()?;
                self.rebuilt = Some(mismatch.0);
                Ok(self.caught_up)
            }
        }
    }
}

/// A reader rewrites a projection file when it had to apply this many events on top of it.
const REFRESH_AFTER_EVENTS: u64 = 256;
/// Cap on the issues kept in a header (the count of problems is what matters past that).
const MAX_KEPT_ISSUES: usize = 1000;

fn push_issues(into: &mut Vec<Issue>, new: Vec<Issue>) {
    for i in new {
        if into.len() >= MAX_KEPT_ISSUES {
            break;
        }
        if !into.contains(&i) {
            into.push(i);
        }
    }
}

impl Store {
    pub fn projection_path<P: Projection>(&self) -> PathBuf {
        self.dir().join(format!("{}.jsonl", P::NAME))
    }

    /// Loads a projection, applies newer events, and refreshes the file when it lagged far
    /// (or was missing or mismatched). Readers take no lock.
    pub fn load<P: Projection>(&self) -> Result<Loaded<P>> {
        match self.load_file::<P>()? {
            Ok(l) => {
                if l.caught_up >= REFRESH_AFTER_EVENTS {
                    self.refresh(&l);
                }
                Ok(l)
            }
            Err(why) => {
                let mut l = self.rebuild::<P>()?;
                l.rebuilt = Some(why);
                self.refresh(&l);
                Ok(l)
            }
        }
    }

    /// Loads the projection file and applies newer events, without falling back to a rebuild:
    /// `Ok(Err(why))` says why the file cannot be used (`wo doctor` reports it).
    pub fn load_file<P: Projection>(&self) -> Result<std::result::Result<Loaded<P>, String>> {
        let path = self.projection_path::<P>();
        let bytes = match read_whole(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err("missing".into())),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let (mut state, checkpoint, mut issues) = match read_file::<P>(bytes) {
            Ok(x) => x,
            Err(why) => return Ok(Err(why)),
        };
        let mut apply = |ev: &EventRef<'_>, _: &super::LineInfo<'_>| {
            if P::wants(&ev.event_type) {
                state.apply(ev)
            } else {
                Ok(())
            }
        };
        let outcome = match self.scan(&checkpoint, None, &mut apply)? {
            Ok(o) => o,
            Err(mismatch) => return Ok(Err(mismatch.0)),
        };
        push_issues(&mut issues, outcome.issues);
        Ok(Ok(Loaded {
            state,
            checkpoint: outcome.end,
            issues,
            caught_up: outcome.events,
            rebuilt: None,
        }))
    }

    /// Builds a projection from the whole log (does not write it).
    pub fn rebuild<P: Projection>(&self) -> Result<Loaded<P>> {
        let mut state = P::default();
        let mut apply = |ev: &EventRef<'_>, _: &super::LineInfo<'_>| {
            if P::wants(&ev.event_type) {
                state.apply(ev)
            } else {
                Ok(())
            }
        };
        let outcome = self.scan_all(&mut apply)?;
        let mut issues = Vec::new();
        push_issues(&mut issues, outcome.issues);
        Ok(Loaded {
            state,
            checkpoint: outcome.end,
            issues,
            caught_up: outcome.events,
            rebuilt: Some("rebuilt".to_string()),
        })
    }

    /// Builds two projections in one pass over the whole log (`wo rebuild-projections`), and
    /// shows every event to `also` as well (the id index). Each projection gets exactly what
    /// [`Store::rebuild`] of it alone would give: the same state, checkpoint and issues.
    pub fn rebuild_pair<P: Projection, Q: Projection>(
        &self,
        also: &mut dyn FnMut(&EventRef<'_>),
    ) -> Result<(Loaded<P>, Loaded<Q>)> {
        // The scan keeps one list of issues; a line where either projection had a problem gets
        // this marker there, and the problems themselves wait here, in order.
        const MARK: &str = "\0rebuild_pair\0";
        let mut p = P::default();
        let mut q = Q::default();
        let mut marked: Vec<(Option<String>, Option<String>)> = Vec::new();
        let mut apply = |ev: &EventRef<'_>, _: &super::LineInfo<'_>| {
            also(ev);
            let a = if P::wants(&ev.event_type) {
                p.apply(ev).err()
            } else {
                None
            };
            let b = if Q::wants(&ev.event_type) {
                q.apply(ev).err()
            } else {
                None
            };
            if a.is_none() && b.is_none() {
                return Ok(());
            }
            marked.push((a, b));
            Err(MARK.to_string())
        };
        let outcome = self.scan_all(&mut apply)?;
        let (mut p_all, mut q_all) = (Vec::new(), Vec::new());
        let mut marked = marked.into_iter();
        for issue in outcome.issues {
            if issue.problem == MARK {
                let (a, b) = marked.next().unwrap_or_default();
                if let Some(problem) = a {
                    p_all.push(Issue {
                        problem,
                        ..issue.clone()
                    });
                }
                if let Some(problem) = b {
                    q_all.push(Issue { problem, ..issue });
                }
            } else {
                p_all.push(issue.clone());
                q_all.push(issue);
            }
        }
        let (mut p_issues, mut q_issues) = (Vec::new(), Vec::new());
        push_issues(&mut p_issues, p_all);
        push_issues(&mut q_issues, q_all);
        let checkpoint = outcome.end;
        Ok((
            Loaded {
                state: p,
                checkpoint: checkpoint.clone(),
                issues: p_issues,
                caught_up: outcome.events,
                rebuilt: Some("rebuilt".to_string()),
            },
            Loaded {
                state: q,
                checkpoint,
                issues: q_issues,
                caught_up: outcome.events,
                rebuilt: Some("rebuilt".to_string()),
            },
        ))
    }

    /// Scans the whole log; a checkpoint mismatch cannot happen from the start, but is an
    /// error if it does.
    fn scan_all(
        &self,
        visit: &mut dyn FnMut(
            &EventRef<'_>,
            &super::LineInfo<'_>,
        ) -> std::result::Result<(), String>,
    ) -> Result<super::ScanOutcome> {
        match self.scan(&Checkpoint::default(), None, visit)? {
            Ok(o) => Ok(o),
            Err(m) => Err(StoreError::Io {
                path: self.dir().to_path_buf(),
                source: io::Error::other(m.0),
            }),
        }
    }

    /// The exact bytes of a projection file for this state.
    pub fn render<P: Projection>(&self, l: &Loaded<P>) -> Result<Vec<u8>> {
        let mut header = Header {
            projection: P::NAME.to_string(),
            version: P::VERSION,
            checkpoint: l.checkpoint.clone(),
            records: l.state.record_count() as u64,
            checksum: "0".repeat(16),
            issues: l.issues.clone(),
        };
        // The header goes first but sums what follows: written with a placeholder of the
        // same width, then again in place.
        let mut out = serde_json::to_vec(&header)?;
        out.push(b'\n');
        let start = out.len();
        l.state.write_records(&mut out)?;
        header.checksum = records_checksum(&out[start..]);
        let mut line = serde_json::to_vec(&header)?;
        line.push(b'\n');
        if line.len() != start {
            return Err(StoreError::Serialize(serde::ser::Error::custom(
                "projection header changed width",
            )));
        }
        out[..start].copy_from_slice(&line);
        Ok(out)
    }

    /// Whether two loaded projections hold the same state at the same point of the log (the
    /// issues each reader met are not compared).
    pub fn same_state<P: Projection>(&self, a: &Loaded<P>, b: &Loaded<P>) -> Result<bool> {
        if a.checkpoint.seq != b.checkpoint.seq || a.checkpoint.event_id != b.checkpoint.event_id {
            return Ok(false);
        }
        let (mut x, mut y) = (Vec::new(), Vec::new());
        a.state.write_records(&mut x)?;
        b.state.write_records(&mut y)?;
        Ok(x == y)
    }

    /// Writes a projection file atomically, then removes what crashed writes left behind.
    pub fn save<P: Projection>(&self, l: &Loaded<P>) -> Result<()> {
        let bytes = self.render(l)?;
        let path = self.projection_path::<P>();
        fsutil::atomic_write(&path, &bytes).map_err(|e| StoreError::io(&path, e))?;
        self.remove_stale_temp_files();
        Ok(())
    }

    /// The temporary files of projection writes whose process is gone (a rebuild killed
    /// before its rename): never read as projections (their names differ), but they hold the
    /// disk. Returns their names.
    pub fn stale_temp_files(&self) -> Vec<std::path::PathBuf> {
        let Ok(rd) = std::fs::read_dir(self.dir()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // `.work_orders.jsonl.tmp-<pid>-<random>` (fsutil::atomic_write).
            let Some(rest) = name
                .strip_prefix('.')
                .and_then(|n| n.split_once(".jsonl.tmp-"))
                .map(|(_, rest)| rest)
            else {
                continue;
            };
            let pid = rest.split('-').next().unwrap_or_default();
            let alive = !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && std::path::Path::new("/proc").join(pid).exists();
            if !alive {
                out.push(e.path());
            }
        }
        out.sort();
        out
    }

    /// Removes [`Store::stale_temp_files`]; returns how many were removed.
    pub fn remove_stale_temp_files(&self) -> usize {
        self.stale_temp_files()
            .into_iter()
            .filter(|p| std::fs::remove_file(p).is_ok())
            .count()
    }

    /// Best-effort refresh by a reader: a reader that cannot write (permissions, a full disk)
    /// still has its answer; the next reader will try again.
    fn refresh<P: Projection>(&self, l: &Loaded<P>) {
        let _ = self.save(l);
    }
}

type FileState<P> = (P, Checkpoint, Vec<Issue>);

/// Reads a whole file; a big one as two halves on two threads. For a projection in the page
/// cache most of the cost is the page faults of the fresh buffer, and those split well.
fn read_whole(path: &std::path::Path) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    const SPLIT_MIN: usize = 8 << 20;
    let file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    if len < SPLIT_MIN {
        return std::fs::read(path);
    }
    let mut buf = vec![0u8; len];
    let (first, second) = buf.split_at_mut(len / 2);
    let mid = first.len() as u64;
    let (file, first_ref) = (&file, &mut *first);
    let threaded = std::thread::scope(|s| {
        let other = std::thread::Builder::new()
            .name("read-half".into())
            .spawn_scoped(s, move || file.read_exact_at(second, mid))
            .ok()?;
        let mine = file.read_exact_at(first_ref, 0);
        let theirs = other
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        Some(mine.and(theirs))
    });
    let read = match threaded {
        Some(r) => r,
        None => file.read_exact_at(&mut buf, 0),
    };
    // Projections are replaced, never changed in place, so the size holds; if it did not,
    // read the plain way.
    let mut probe = [0u8; 1];
    match read {
        Ok(()) if file.read_at(&mut probe, len as u64)? == 0 => Ok(buf),
        Ok(()) => std::fs::read(path),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => std::fs::read(path),
        Err(e) => Err(e),
    }
}

fn read_file<P: Projection>(bytes: Vec<u8>) -> std::result::Result<FileState<P>, String> {
    let header_end = memchr::memchr(b'\n', &bytes).unwrap_or(bytes.len());
    let header: Header = serde_json::from_slice(&bytes[..header_end])
        .map_err(|e| format!("unreadable header ({e})"))?;
    if header.projection != P::NAME {
        return Err(format!("header names projection {}", header.projection));
    }
    if header.version != P::VERSION {
        return Err(format!(
            "format version {} (this build uses {})",
            header.version,
            P::VERSION
        ));
    }
    if bytes.last() != Some(&b'\n') {
        return Err("file does not end with a newline".to_string());
    }
    let start = (header_end + 1).min(bytes.len());
    if records_checksum(&bytes[start..]) != header.checksum {
        return Err("its records do not match the checksum in its header (cut short, edited or a record missing)".to_string());
    }
    let mut state = P::default();
    state
        .load_records(bytes, start)
        .map_err(|(line, e)| format!("record on line {line} unreadable ({e})"))?;
    if state.record_count() as u64 != header.records {
        return Err(format!(
            "it holds {} records where its header says {}",
            state.record_count(),
            header.records
        ));
    }
    Ok((state, header.checkpoint, header.issues))
}

#[cfg(test)]
mod checksum_tests {
    use super::{Sums, records_checksum};

    #[test]
    fn halves_sum_as_the_whole_and_every_change_shows() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cut in [0, 32, 64, 4096, 9984] {
            let (x, y) = bytes.split_at(cut);
            let whole = Sums::of(&bytes);
            let parts = Sums::of(x).then(Sums::of(y));
            assert_eq!(
                (whole.a, whole.b, whole.blocks),
                (parts.a, parts.b, parts.blocks)
            );
        }
        let sum = records_checksum(&bytes);
        let mut flipped = bytes.clone();
        flipped[5000] ^= 1;
        let mut swapped = bytes.clone();
        swapped.swap(100, 200);
        for other in [&flipped[..], &swapped[..], &bytes[..9999], &bytes[32..]] {
            assert_ne!(records_checksum(other), sum);
        }
        // Big enough for two threads: the same sum as one pass.
        let big: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 253) as u8).collect();
        let one = Sums::of(&big);
        let expected = {
            let len = big.len() as u64;
            let mut h = len.wrapping_mul(super::SUM_MUL);
            for l in 0..4 {
                h = (h ^ one.a[l]).wrapping_mul(super::SUM_MUL).rotate_left(23);
                h = (h ^ one.b[l]).wrapping_mul(super::SUM_MUL).rotate_left(23);
            }
            format!("{h:016x}")
        };
        assert_eq!(records_checksum(&big), expected);
    }
}

#[cfg(test)]
mod pair_tests {
    use crate::event::{NewEvent, types};
    use crate::mail::{MailPriority, Marked, Messages, Sent};
    use crate::store::{Store, StoreOptions};
    use crate::workorder::{Created, Updated, WoType, WorkOrders};
    use std::io::Write;

    #[test]
    fn one_pass_for_two_projections_gives_what_two_rebuilds_give() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(&dir.path().join(".work"), StoreOptions::default()).unwrap();
        let created = |n: u32| {
            NewEvent::new(
                types::WORK_ORDER_CREATED,
                "tester",
                &Created {
                    id: format!("wo-{n:06}"),
                    title: format!("work {n}"),
                    kind: WoType::Task,
                    priority: (n % 5) as u8,
                    description: "d\nescription".into(),
                    labels: vec!["x".into()],
                    parent: None,
                },
            )
            .unwrap()
        };
        let sent = |n: u32| {
            NewEvent::new(
                types::MAIL_SENT,
                "a/workers/slot1",
                &Sent {
                    id: format!("msg-{n:010}"),
                    from: "a/workers/slot1".into(),
                    to: "a/qa".into(),
                    subject: "s".into(),
                    body: "b".into(),
                    kind: "note".into(),
                    priority: MailPriority::Normal,
                    meta: Default::default(),
                },
            )
            .unwrap()
        };
        let mut events = Vec::new();
        for n in 0..50 {
            events.push(created(n));
            events.push(sent(n));
        }
        // Problems for each projection, and for both on one line.
        events.push(created(7));
        events.push(
            NewEvent::new(
                types::WORK_ORDER_UPDATED,
                "tester",
                &Updated {
                    id: "wo-nope".into(),
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        events.push(sent(3));
        let marked = Marked {
            id: "msg-unknown".into(),
        };
        events.push(NewEvent::new(types::MAIL_READ, "a/qa", &marked).unwrap());
        store.append(events).unwrap();
        let part = store.live_partitions().unwrap().pop().unwrap().path;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .unwrap();
        f.write_all(b"garbage\n").unwrap();
        drop(f);
        store.append(vec![created(100), sent(100)]).unwrap();

        let mut seen = 0;
        let (wos, msgs) = store
            .rebuild_pair::<WorkOrders, Messages>(&mut |_| seen += 1)
            .unwrap();
        assert_eq!(seen, 106);
        let wos2 = store.rebuild::<WorkOrders>().unwrap();
        let msgs2 = store.rebuild::<Messages>().unwrap();
        assert_eq!(wos.issues.len(), 3, "{:?}", wos.issues);
        assert_eq!(msgs.issues.len(), 3, "{:?}", msgs.issues);
        assert_eq!(wos.issues, wos2.issues);
        assert_eq!(msgs.issues, msgs2.issues);
        assert_eq!(store.render(&wos).unwrap(), store.render(&wos2).unwrap());
        assert_eq!(store.render(&msgs).unwrap(), store.render(&msgs2).unwrap());
        assert_eq!(
            (wos.caught_up, &wos.rebuilt),
            (wos2.caught_up, &wos2.rebuilt)
        );
    }
}
