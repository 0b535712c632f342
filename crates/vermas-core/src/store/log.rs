//! Reading the log: which files make it up, in what order, and scanning them line by line.

use super::projection::Checkpoint;
use super::{Result, Store, StoreError};
use crate::event::{ENVELOPE_VERSION, EventRef, MAX_LINE_BYTES};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One file of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// `2026-11-21` for a day partition, `events` for the single-file log.
    pub name: String,
    pub path: PathBuf,
    /// In `events/archive/`.
    pub archived: bool,
}

/// A problem found while reading: an unreadable line, a seq gap, an event that did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// The file, relative to the store (`events/2026-11-21.jsonl`).
    pub file: String,
    pub line: u64,
    pub problem: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, ".work/{}:{}: {}", self.file, self.line, self.problem)
    }
}

/// Where a line sits: its file, 1-based line number, byte range and raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct LineInfo<'a> {
    pub log: &'a LogFile,
    pub line: u64,
    pub offset: u64,
    pub raw: &'a [u8],
}

/// What a scan saw.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// Just after the last event applied.
    pub end: Checkpoint,
    /// The highest `seq` applied, here or before the checkpoint the scan started from (a
    /// damaged log may apply an event whose `seq` is lower than an earlier one).
    pub max_seq: u64,
    pub issues: Vec<Issue>,
    /// Events handed to the visitor.
    pub events: u64,
    /// A log file ends without a newline (a write in progress, or a torn tail).
    pub torn_tails: Vec<String>,
}

/// The checkpoint does not describe this log (files replaced, truncated or restored).
#[derive(Debug)]
pub struct CheckpointMismatch(pub String);

pub(crate) fn is_partition_name(stem: &str) -> bool {
    chrono::NaiveDate::parse_from_str(stem, "%Y-%m-%d").is_ok() && stem.len() == 10
}

/// The `seq` and `event_id` of a line, if it is a valid event.
#[derive(Deserialize)]
struct SeqOnly<'a> {
    seq: u64,
    #[serde(borrow)]
    event_id: std::borrow::Cow<'a, str>,
}

pub(crate) fn parse_seq(line: &[u8]) -> Option<(u64, String)> {
    serde_json::from_slice::<SeqOnly>(strip_bom(line).0)
        .ok()
        .map(|s| (s.seq, s.event_id.into_owned()))
}

/// The UTF-8 byte order mark some editors put at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A line without a leading byte order mark, and whether it had one. Readers read such a line
/// (and report it); it is never written by a writer.
pub(crate) fn strip_bom(line: &[u8]) -> (&[u8], bool) {
    match line.strip_prefix(BOM) {
        Some(rest) => (rest, true),
        None => (line, false),
    }
}

/// An event id as a number: `evt-` + 25 base36 digits is a uuid v7, so the number holds the
/// millisecond it was made in its top 48 bits. `None` for an id of any other shape.
pub(crate) fn event_number(id: &str) -> Option<u128> {
    let digits = id.strip_prefix("evt-")?.as_bytes();
    if digits.len() != 25 {
        return None;
    }
    let mut n: u128 = 0;
    for &c in digits {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            _ => return None,
        };
        n = n.checked_mul(36)?.checked_add(u128::from(d))?;
    }
    Some(n)
}

/// The millisecond (since the epoch) an event id was made in.
fn event_millis(n: u128) -> u64 {
    (n >> 80) as u64
}

/// How far back in time (by the clock in the ids) a reader looks for an earlier copy of an
/// event it cannot place: ids are made under the writers' lock, so they only go back when the
/// system clock steps back, and small steps are all a healthy machine makes.
const SEARCH_SLACK_MS: u64 = 2_000;

/// The event ids a scan has applied: numbers for ids as writers make them (no string per
/// event), strings for any other. Writers make ids in time order, so nearly every number is
/// larger than all before it: those are appended to a sorted list (no hashing, no rehashing of
/// a million entries), and only the few that arrive out of order go into a hash set.
#[derive(Default)]
struct Seen {
    sorted: Vec<u128>,
    scattered: std::collections::HashSet<u128, std::hash::BuildHasherDefault<IdHasher>>,
    other: std::collections::HashSet<String>,
}

impl Seen {
    fn contains(&self, number: Option<u128>, id: &str) -> bool {
        match number {
            Some(n) => match self.sorted.last() {
                Some(&last) if n <= last => {
                    self.sorted.binary_search(&n).is_ok() || self.scattered.contains(&n)
                }
                _ => false,
            },
            None => self.other.contains(id),
        }
    }
    fn insert(&mut self, number: Option<u128>, id: &str) {
        match number {
            Some(n) => {
                if self.sorted.last().is_none_or(|&last| n > last) {
                    self.sorted.push(n);
                } else {
                    self.scattered.insert(n);
                }
            }
            None => {
                self.other.insert(id.to_string());
            }
        }
    }
}

/// Hashes an event number: its low bits are random already (uuid v7), so folding and one
/// multiply spread them.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = ((n as u64) ^ ((n >> 64) as u64)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The event id of a line as writers write it (`…"event_id":"evt-…"` near its start), without
/// parsing the line.
fn quick_event_id(line: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"event_id\":\"";
    let head = &line[..line.len().min(96)];
    let at = memchr::memmem::find(head, KEY)? + KEY.len();
    let rest = line.get(at..)?;
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// Whether an event with id `id` appears in the log before byte `upto` of file `files[fi]`,
/// looking backwards. With a `floor` (milliseconds), the search stops at the first line whose
/// id was made before it: the log is in time order apart from clock steps, so an earlier copy
/// of an event made at `floor + SEARCH_SLACK_MS` lies after that line.
fn appears_before(
    files: &[LogFile],
    fi: usize,
    upto: u64,
    id: &str,
    floor: Option<u64>,
) -> io::Result<bool> {
    const CHUNK: u64 = 256 << 10;
    let finder = memchr::memmem::Finder::new(id.as_bytes());
    for f in (0..=fi).rev() {
        let Some(lf) = files.get(f) else { continue };
        let file = match File::open(&lf.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut end = if f == fi {
            upto
        } else {
            file.metadata()?.len()
        };
        // Bytes of a line cut by the start of the chunk read before (later in the file).
        let mut carry: Vec<u8> = Vec::new();
        while end > 0 {
            let start = end.saturating_sub(CHUNK);
            let mut buf = vec![0u8; (end - start) as usize];
            file.read_exact_at(&mut buf, start)?;
            buf.extend_from_slice(&carry);
            // The first line of the chunk may start before it, unless the chunk starts the file.
            let first = if start == 0 {
                0
            } else {
                match memchr::memchr(b'\n', &buf) {
                    Some(i) => i + 1,
                    None => {
                        carry = buf;
                        end = start;
                        continue;
                    }
                }
            };
            for line in buf[first..].split(|&b| b == b'\n').rev() {
                if line.is_empty() {
                    continue;
                }
                if finder.find(line).is_some()
                    && parse_seq(line).is_some_and(|(_, found)| found == id)
                {
                    return Ok(true);
                }
                if let Some(floor) = floor
                    && let Some(n) = quick_event_id(strip_bom(line).0).and_then(event_number)
                    && event_millis(n) < floor
                {
                    return Ok(false);
                }
            }
            carry = buf[..first].to_vec();
            end = start;
        }
    }
    Ok(false)
}

/// The last valid event in the first `len` bytes of `file` (which must end in `\n`), reading
/// backwards in growing chunks.
pub(crate) fn last_event_in(file: &File, len: u64) -> io::Result<Option<(u64, String)>> {
    let mut chunk = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(chunk);
        let mut buf = vec![0u8; (len - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        // Lines fully inside the buffer: skip the first partial one unless we start at 0.
        let body: &[u8] = if start == 0 {
            &buf
        } else {
            match memchr::memchr(b'\n', &buf) {
                Some(i) => &buf[i + 1..],
                None => &[],
            }
        };
        for line in body.split(|&b| b == b'\n').rev() {
            if line.is_empty() {
                continue;
            }
            if let Some(found) = parse_seq(line) {
                return Ok(Some(found));
            }
        }
        if start == 0 {
            return Ok(None);
        }
        chunk *= 4;
    }
}

/// The seq of the first valid event of a file (to place `events.jsonl` among partitions).
fn first_seq(path: &std::path::Path) -> Option<u64> {
    let mut f = File::open(path).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = f.read(&mut buf).ok()?;
    buf[..n]
        .split(|&b| b == b'\n')
        .find_map(parse_seq)
        .map(|(s, _)| s)
}

impl Store {
    /// Every file of the log, in order: archived and live day partitions by date, and
    /// `events.jsonl` placed by its first `seq` when both layouts exist.
    pub fn log_files(&self) -> Result<Vec<LogFile>> {
        let mut parts = Vec::new();
        for (dir, archived) in [(self.archive_dir(), true), (self.events_dir(), false)] {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(&dir, e)),
            };
            for entry in rd {
                let entry = entry.map_err(|e| StoreError::io(&dir, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(stem) = name.strip_suffix(".jsonl") else {
                    continue;
                };
                if !is_partition_name(stem) {
                    continue;
                }
                let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
                if !is_file {
                    continue;
                }
                parts.push(LogFile {
                    name: stem.to_string(),
                    path: entry.path(),
                    archived,
                });
            }
        }
        // A partition both archived and live (an interrupted archive): keep the live one.
        parts.sort_by(|a, b| a.name.cmp(&b.name).then(b.archived.cmp(&a.archived)));
        parts.dedup_by(|later, earlier| {
            if later.name == earlier.name {
                // `later` is the live copy of the same day; prefer it.
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        let single = self.single_log_path();
        if single.is_file() {
            let lf = LogFile {
                name: "events".to_string(),
                path: single.clone(),
                archived: false,
            };
            let at = match first_seq(&single) {
                None => parts.len(),
                Some(s) => parts
                    .iter()
                    .position(|p| first_seq(&p.path).is_some_and(|ps| ps > s))
                    .unwrap_or(parts.len()),
            };
            parts.insert(at, lf);
        }
        Ok(parts)
    }

    /// The live day partitions (not archived), oldest first.
    pub fn live_partitions(&self) -> Result<Vec<LogFile>> {
        Ok(self
            .log_files()?
            .into_iter()
            .filter(|f| !f.archived && f.name != "events")
            .collect())
    }

    /// The store-relative path of a log file, for messages.
    pub(crate) fn relative(&self, lf: &LogFile) -> String {
        lf.path
            .strip_prefix(self.dir())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| lf.path.display().to_string())
    }

    /// Visits every event after `from`, in log order. Lines that do not parse, events already
    /// applied (an `event_id` seen before: a duplicated line), and events the visitor rejects
    /// become issues; the scan goes on. An event whose `seq` does not increase is applied when
    /// its `event_id` is new (a damaged log must never hide an acknowledged event) and
    /// reported. `since_day` skips whole partitions older than that day.
    pub fn scan(
        &self,
        from: &Checkpoint,
        since_day: Option<chrono::NaiveDate>,
        visit: &mut dyn FnMut(&EventRef<'_>, &LineInfo<'_>) -> std::result::Result<(), String>,
    ) -> Result<std::result::Result<ScanOutcome, CheckpointMismatch>> {
        let files = self.log_files()?;
        let mut out = ScanOutcome {
            end: from.clone(),
            max_seq: from.max_seq.unwrap_or(0).max(from.seq),
            ..Default::default()
        };
        let (start_index, start_offset, start_line) = match &from.log {
            None => (0, 0, 0),
            Some(name) => {
                let Some(i) = files.iter().position(|f| &f.name == name) else {
                    return Ok(Err(CheckpointMismatch(format!(
                        "log file {name} named by the checkpoint is gone"
                    ))));
                };
                if let Err(m) = verify_checkpoint(&files[i], from) {
                    return Ok(Err(m));
                }
                (i, from.offset, from.line)
            }
        };
        let mut dedup = Dedup {
            seen: Seen::default(),
            partial: from.log.is_some(),
            from: from
                .event_id
                .as_ref()
                .filter(|_| from.log.is_some())
                .map(|id| (id.clone(), event_number(id))),
        };
        let mut pruned = false;
        let mut split = Split { head: 0.5 };
        for (i, lf) in files.iter().enumerate().skip(start_index) {
            let (offset, line) = if i == start_index {
                (start_offset, start_line)
            } else {
                (0, 0)
            };
            if let Some(day) = since_day
                && lf.name != "events"
                && lf.name.as_str() < day.format("%Y-%m-%d").to_string().as_str()
            {
                pruned = true;
                dedup.partial = true;
                continue;
            }
            let rel = self.relative(lf);
            scan_file(
                (&files, i),
                &rel,
                (offset, line),
                pruned,
                (&mut out, &mut dedup),
                visit,
                &mut split,
            )
            .map_err(|e| StoreError::io(&lf.path, e))?;
            pruned = false;
        }
        out.end.max_seq = (out.max_seq > out.end.seq).then_some(out.max_seq);
        Ok(Ok(out))
    }
}

/// What a scan knows to apply each event once: the ids it applied, and, when it started from a
/// checkpoint or skipped partitions, that the lines before are not among them.
struct Dedup {
    seen: Seen,
    partial: bool,
    /// The event at the checkpoint the scan started from (its id and number).
    from: Option<(String, Option<u128>)>,
}

impl Dedup {
    /// Whether the event `id` (seq `seq`, on the line at `offset` of `files[fi]`) was applied
    /// before. An id seen in this scan was; otherwise, only when the event looks out of place
    /// (its seq does not increase, or it is older than the checkpoint's event) is the log read
    /// backwards for an earlier copy, so a healthy log costs a hash lookup per event.
    fn applied_before(
        &self,
        (files, fi): (&[LogFile], usize),
        offset: u64,
        (id, number): (&str, Option<u128>),
        seq_increases: bool,
    ) -> bool {
        if self.seen.contains(number, id) {
            return true;
        }
        if !self.partial {
            // Everything before this line was seen by this scan.
            return false;
        }
        let mut suspicious = !seq_increases;
        if let Some((from_id, from_number)) = &self.from {
            if from_id == id {
                return true;
            }
            if let (Some(n), Some(f)) = (number, from_number)
                && event_millis(n) <= event_millis(*f)
            {
                suspicious = true;
            }
        }
        if !suspicious {
            return false;
        }
        let floor = number.map(|n| event_millis(n).saturating_sub(SEARCH_SLACK_MS));
        // A log that cannot be read back is reported by the scan itself; here the event is
        // kept rather than dropped.
        appears_before(files, fi, offset, id, floor).unwrap_or(false)
    }
}

/// The line that ends at `from.offset` must be the event the checkpoint names.
pub(crate) fn verify_checkpoint(
    lf: &LogFile,
    from: &Checkpoint,
) -> std::result::Result<(), CheckpointMismatch> {
    let mismatch = |why: &str| CheckpointMismatch(format!("{}: {why}", lf.name));
    let file = File::open(&lf.path).map_err(|e| mismatch(&e.to_string()))?;
    let len = file.metadata().map_err(|e| mismatch(&e.to_string()))?.len();
    if from.offset == 0 || from.offset > len {
        return Err(mismatch("file is shorter than the checkpoint"));
    }
    // Lines are usually short: look back a little first, and further only while the start of
    // the line is not in view (up to the longest line there can be).
    let max_back = from.offset.min(MAX_LINE_BYTES as u64 + 2);
    let mut back = max_back.min(4096);
    let mut buf = Vec::new();
    let line = loop {
        buf.resize(back as usize, 0);
        file.read_exact_at(&mut buf, from.offset - back)
            .map_err(|e| mismatch(&e.to_string()))?;
        if buf.last() != Some(&b'\n') {
            return Err(mismatch("checkpoint is not at a line end"));
        }
        let body = &buf[..buf.len() - 1];
        match memchr::memrchr(b'\n', body) {
            Some(i) => break &body[i + 1..],
            None if back == max_back => break body,
            None => back = (back * 2).min(max_back),
        }
    };
    match parse_seq(line) {
        Some((seq, id)) if seq == from.seq && Some(&id) == from.event_id.as_ref() => Ok(()),
        _ => Err(mismatch("the event at the checkpoint differs")),
    }
}

const READ_CHUNK: usize = 1 << 20;
/// A chunk holding at least this many bytes of whole lines is parsed on two threads.
const PARALLEL_MIN: usize = 256 << 10;

/// One line of a chunk, parsed ahead of the in-order pass (which may run on another thread).
/// Nearly every line is an event, so boxing that variant would only add an allocation each.
#[allow(clippy::large_enum_variant)]
enum Parsed<'a> {
    Blank,
    Bad(serde_json::Error),
    Event {
        ev: EventRef<'a>,
        /// The event id as a number ([`event_number`]), worked out here, off the in-order pass.
        number: Option<u128>,
        /// The line started with a byte order mark.
        bom: bool,
    },
}

fn parse_line(raw: &[u8]) -> Parsed<'_> {
    let (body, bom) = strip_bom(raw);
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Parsed::Blank;
    }
    match serde_json::from_slice::<EventRef>(body) {
        Ok(ev) => {
            let number = event_number(&ev.event_id);
            Parsed::Event { ev, number, bom }
        }
        Err(e) => Parsed::Bad(e),
    }
}

/// Parses every line of `lines` (which ends with `\n`).
fn parse_lines(lines: &[u8]) -> Vec<(&[u8], Parsed<'_>)> {
    let mut out = Vec::with_capacity(lines.len() / 256 + 1);
    let mut pos = 0;
    while let Some(nl) = memchr::memchr(b'\n', &lines[pos..]) {
        let raw = &lines[pos..pos + nl];
        out.push((raw, parse_line(raw)));
        pos += nl + 1;
    }
    out
}

/// How far a buffer was read: `filled` bytes, of which the first `complete` are whole lines;
/// `eof` when the file ended (then `complete` is 0 and what is filled is a torn tail).
#[derive(Clone, Copy, Default)]
struct Fill {
    filled: usize,
    complete: usize,
    eof: bool,
}

/// Reads into `buf` after the `carry` bytes at its start (a line begun in the previous chunk)
/// until it holds a whole line or the file ends; grows `buf` for a line longer than it.
fn fill(file: &mut File, buf: &mut Vec<u8>, carry: usize) -> io::Result<Fill> {
    let mut filled = carry;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(Fill {
                filled,
                complete: 0,
                eof: true,
            });
        }
        let start = filled;
        filled += n;
        if let Some(i) = memchr::memrchr(b'\n', &buf[start..filled]) {
            return Ok(Fill {
                filled,
                complete: start + i + 1,
                eof: false,
            });
        }
    }
}

/// A chunk of a file read into a buffer, its whole lines parsed.
struct Chunk<'b> {
    buf: &'b [u8],
    fill: Fill,
    parsed: Vec<(&'b [u8], Parsed<'b>)>,
}

/// Which share of a chunk this thread parses (after applying the previous chunk) and which
/// the other thread parses meanwhile, learnt from how long each took on the last chunk.
struct Split {
    head: f64,
}

impl Split {
    /// Where the head of `lines` ends (after a newline), for a head of `share` of it.
    fn cut(share: f64, lines: &[u8]) -> usize {
        let at = ((lines.len() as f64 * share) as usize).min(lines.len());
        memchr::memchr(b'\n', &lines[at..]).map_or(lines.len(), |i| at + i + 1)
    }

    /// This thread applied for `apply`; the other read for `read`; parsing the head and the
    /// tail (of these sizes) took these times.
    fn learn(
        &mut self,
        apply: Duration,
        read: Duration,
        head: (Duration, usize),
        tail: (Duration, usize),
    ) {
        let parse = (head.0 + tail.0).as_secs_f64();
        if parse <= 0.0 {
            return;
        }
        // Even when read + (1 - share) * parse = apply + share * parse.
        let share = (read.as_secs_f64() + parse - apply.as_secs_f64()) / (2.0 * parse);
        self.head = (self.head + share.clamp(0.0, 0.5)) / 2.0;
    }
}

/// The in-order pass over one file's lines: numbering, issues, seq checks, the visitor.
struct Pass<'s, 'v> {
    lf: &'s LogFile,
    /// Every file of the log and this one's index (to look back for an earlier copy).
    files: (&'s [LogFile], usize),
    rel: &'s str,
    offset: u64,
    line_no: u64,
    skip_gap_check: bool,
    out: &'s mut ScanOutcome,
    dedup: &'s mut Dedup,
    visit:
        &'s mut (dyn FnMut(&EventRef<'_>, &LineInfo<'_>) -> std::result::Result<(), String> + 'v),
    /// The id of the last event applied, copied into `out.end` once per chunk (one string per
    /// chunk instead of one per event).
    end_id: Option<String>,
}

impl Pass<'_, '_> {
    fn line(&mut self, raw: &[u8], parsed: Parsed<'_>) {
        self.line_no += 1;
        let line_no = self.line_no;
        let line_offset = self.offset;
        self.offset += raw.len() as u64 + 1;
        let rel = self.rel;
        let issue = |problem: String| Issue {
            file: rel.to_string(),
            line: line_no,
            problem,
        };
        let (ev, number) = match parsed {
            Parsed::Blank => {
                self.out.issues.push(issue("empty line".to_string()));
                return;
            }
            Parsed::Bad(e) => {
                self.out
                    .issues
                    .push(issue(format!("unreadable line skipped ({e})")));
                return;
            }
            Parsed::Event { ev, number, bom } => {
                if bom {
                    self.out.issues.push(issue(
                        "UTF-8 byte order mark at the start of the line; the line is read without it"
                            .to_string(),
                    ));
                }
                (ev, number)
            }
        };
        if ev.v != ENVELOPE_VERSION {
            self.out.issues.push(issue(format!(
                "envelope version {} is not supported; line skipped",
                ev.v
            )));
            return;
        }
        let max = self.out.max_seq;
        let increases = ev.seq > max || (self.skip_gap_check && max == 0);
        let id = (ev.event_id.as_ref(), number);
        if self
            .dedup
            .applied_before(self.files, line_offset, id, increases)
        {
            self.out.issues.push(issue(format!(
                "event {} (seq {}) repeats an event_id already in the log; duplicate skipped",
                ev.event_id, ev.seq
            )));
            return;
        }
        if !increases {
            self.out.issues.push(issue(format!(
                "seq {} does not increase (the highest so far is {max}); event {} is new, so it is applied",
                ev.seq, ev.event_id
            )));
        } else if !self.skip_gap_check && ev.seq != max + 1 {
            self.out.issues.push(issue(format!(
                "seq gap: expected {}, found {}",
                max + 1,
                ev.seq
            )));
        }
        self.skip_gap_check = false;
        self.dedup.seen.insert(number, &ev.event_id);
        let info = LineInfo {
            log: self.lf,
            line: line_no,
            offset: line_offset,
            raw,
        };
        if let Err(problem) = (self.visit)(&ev, &info) {
            self.out.issues.push(issue(problem));
        }
        self.out.events += 1;
        self.out.max_seq = self.out.max_seq.max(ev.seq);
        let end = &mut self.out.end;
        end.seq = ev.seq;
        end.offset = self.offset;
        end.line = line_no;
        if end.log.as_deref() != Some(self.lf.name.as_str()) {
            end.log = Some(self.lf.name.clone());
        }
        match &mut self.end_id {
            Some(id) => {
                id.clear();
                id.push_str(&ev.event_id);
            }
            None => self.end_id = Some(ev.event_id.to_string()),
        }
    }

    /// Applies the lines of a chunk, in order.
    fn apply(&mut self, parsed: Vec<(&[u8], Parsed<'_>)>) {
        for (raw, p) in parsed {
            self.line(raw, p);
        }
        self.finish_chunk();
    }

    /// Applies `cur` while the next chunk is read into `next` and parsed. For a big buffer
    /// the other thread reads the next chunk, hands it over, and parses its tail while this one
    /// applies `cur` and then parses the head ([`Split`] keeps the two sides even).
    fn step<'n>(
        &mut self,
        cur: Chunk<'_>,
        next: &'n mut Vec<u8>,
        file: &mut File,
        split: &mut Split,
    ) -> io::Result<Chunk<'n>> {
        let carry = &cur.buf[cur.fill.complete..cur.fill.filled];
        if next.len() <= carry.len() {
            next.resize(carry.len() * 2, 0);
        }
        next[..carry.len()].copy_from_slice(carry);
        let carry = carry.len();
        let mut todo = Some(cur.parsed);
        let mut job = Some((next, file));
        if job.as_ref().is_some_and(|(n, _)| n.len() >= PARALLEL_MIN) {
            let threaded = self.step_threaded(&mut todo, &mut job, carry, split);
            if let Some(done) = threaded {
                return done;
            }
        }
        // One thread: a small file, or no thread could be started.
        if let Some(parsed) = todo.take() {
            self.apply(parsed);
        }
        let Some((next, file)) = job.take() else {
            return Err(io::Error::other("scan: the next chunk went missing"));
        };
        let fill = fill(file, next, carry)?;
        let next: &'n [u8] = next;
        Ok(Chunk {
            buf: next,
            fill,
            parsed: parse_lines(&next[..fill.complete]),
        })
    }

    /// [`Pass::step`] on two threads; `None` (with `todo` and `job` untouched) when no thread
    /// could be started.
    fn step_threaded<'n>(
        &mut self,
        todo: &mut Option<Vec<(&[u8], Parsed<'_>)>>,
        job: &mut Option<(&'n mut Vec<u8>, &mut File)>,
        carry: usize,
        split: &mut Split,
    ) -> Option<io::Result<Chunk<'n>>> {
        let share = split.head;
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(&'n [u8], Fill, usize)>(1);
            let worker = std::thread::Builder::new()
                .name("vermas-parse".into())
                .spawn_scoped(s, move || -> io::Result<_> {
                    let Some((next, file)) = job.take() else {
                        return Err(io::Error::other("scan: the next chunk went missing"));
                    };
                    let start = Instant::now();
                    let fill = fill(file, next, carry)?;
                    let read = start.elapsed();
                    let next: &'n [u8] = next;
                    let lines = &next[..fill.complete];
                    let cut = if lines.len() < PARALLEL_MIN {
                        0
                    } else {
                        Split::cut(share, lines)
                    };
                    // This side keeps going even if the other is gone (it then fails below).
                    let _ = tx.send((next, fill, cut));
                    let start = Instant::now();
                    let tail = parse_lines(&lines[cut..]);
                    Ok((tail, read, start.elapsed()))
                })
                .ok()?;
            let start = Instant::now();
            if let Some(parsed) = todo.take() {
                self.apply(parsed);
            }
            let applied = start.elapsed();
            let handed = rx.recv();
            let start = Instant::now();
            let head = handed
                .as_ref()
                .map(|(next, _, cut)| parse_lines(&next[..*cut]));
            let head_time = start.elapsed();
            let (tail, read, tail_time) = match worker
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
            {
                Ok(done) => done,
                Err(e) => return Some(Err(e)),
            };
            let (Ok((next, fill, cut)), Ok(mut parsed)) = (handed, head) else {
                return Some(Err(io::Error::other("scan: the reader thread stopped")));
            };
            split.learn(
                applied,
                read,
                (head_time, cut),
                (tail_time, fill.complete - cut),
            );
            parsed.extend(tail);
            Some(Ok(Chunk {
                buf: next,
                fill,
                parsed,
            }))
        })
    }

    /// The last chunk: what is left after its whole lines is a torn tail.
    fn finish(&mut self, last: Chunk<'_>) -> io::Result<()> {
        let torn = last.fill.filled > last.fill.complete;
        self.apply(last.parsed);
        if torn {
            self.out.torn_tails.push(self.rel.to_string());
        }
        Ok(())
    }

    fn finish_chunk(&mut self) {
        if let Some(id) = &self.end_id
            && self.out.end.event_id.as_deref() != Some(id.as_str())
        {
            self.out.end.event_id = Some(id.clone());
        }
    }
}

/// Scans one file from `(byte offset, line number)`.
fn scan_file(
    (files, fi): (&[LogFile], usize),
    rel: &str,
    (start_offset, start_line): (u64, u64),
    pruned_before: bool,
    (out, dedup): (&mut ScanOutcome, &mut Dedup),
    visit: &mut dyn FnMut(&EventRef<'_>, &LineInfo<'_>) -> std::result::Result<(), String>,
    split: &mut Split,
) -> io::Result<()> {
    let lf = &files[fi];
    let mut file = match File::open(&lf.path) {
        Ok(f) => f,
        // Archived between listing and reading: look in the archive.
        Err(e) if e.kind() == io::ErrorKind::NotFound && !lf.archived => {
            let alt = lf
                .path
                .parent()
                .map(|p| p.join("archive").join(format!("{}.jsonl", lf.name)));
            match alt {
                Some(alt) => File::open(alt)?,
                None => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(start_offset))?;
    // Sized to the file (a small file gets a small buffer), grown when one line is longer.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let size = (len.saturating_sub(start_offset) as usize).clamp(64 * 1024, READ_CHUNK);
    let mut pass = Pass {
        lf,
        files: (files, fi),
        rel,
        offset: start_offset,
        line_no: start_line,
        skip_gap_check: pruned_before,
        out,
        dedup,
        visit,
        end_id: None,
    };
    // Two buffers: one chunk is applied while the next is read and parsed into the other.
    let (mut a, mut b) = (vec![0u8; size], Vec::new());
    let start = Chunk {
        buf: &[],
        fill: Fill::default(),
        parsed: Vec::new(),
    };
    let mut cur = pass.step(start, &mut a, &mut file, split)?;
    loop {
        if cur.fill.eof {
            return pass.finish(cur);
        }
        if b.is_empty() {
            b = vec![0u8; size];
        }
        let next = pass.step(cur, &mut b, &mut file, split)?;
        if next.fill.eof {
            return pass.finish(next);
        }
        cur = pass.step(next, &mut a, &mut file, split)?;
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::store::{Store, StoreOptions};
    use std::io::Write;

    fn single_file_store(dir: &std::path::Path) -> Store {
        let opts = StoreOptions {
            partition_by_day: false,
            ..Default::default()
        };
        Store::init(&dir.join(".work"), opts).unwrap()
    }

    fn raw(store: &Store, bytes: &[u8]) {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(store.single_log_path())
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    fn ev(n: u64, pad: usize) -> NewEvent {
        let data = serde_json::json!({ "n": n, "pad": "x".repeat(pad) });
        NewEvent::new("test.event", "tester", &data).unwrap()
    }

    /// What a scan should see, worked out line by line without the scanner.
    fn expected(bytes: &[u8]) -> (Vec<(u64, u64, u64)>, Vec<u64>) {
        let (mut events, mut bad) = (Vec::new(), Vec::new());
        let (mut offset, mut line) = (0u64, 0u64);
        for l in bytes.split_inclusive(|&b| b == b'\n') {
            if l.last() != Some(&b'\n') {
                break;
            }
            line += 1;
            let body = &l[..l.len() - 1];
            match serde_json::from_slice::<EventRef>(body) {
                Ok(e) => events.push((e.seq, line, offset)),
                Err(_) => bad.push(line),
            }
            offset += l.len() as u64;
        }
        (events, bad)
    }

    #[test]
    fn big_files_are_read_in_order_across_chunks_threads_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let store = single_file_store(dir.path());
        // About 4 MB of events (several chunks, parsed on two threads), a garbage line, a
        // blank line, a line longer than a chunk, an event near the line limit, more events,
        // and a torn tail.
        for b in 0..40 {
            let batch: Vec<NewEvent> = (0..100)
                .map(|i| ev(b * 100 + i, 700 + (i as usize % 300)))
                .collect();
            store.append(batch).unwrap();
            if b == 13 {
                raw(&store, b"not json at all\n\n");
            }
            if b == 27 {
                let mut long = vec![b'{'; 3 << 20];
                long.push(b'\n');
                raw(&store, &long);
                store.append(vec![ev(99_999, 900 << 10)]).unwrap();
            }
        }
        raw(&store, br#"{"v":1,"seq":99,"event_"#);
        let bytes = fs::read(store.single_log_path()).unwrap();
        let (want_events, want_bad) = expected(&bytes);
        assert!(want_events.len() > 4000 && want_bad.len() == 3);

        let mut seen = Vec::new();
        let mut visit = |e: &EventRef<'_>, info: &LineInfo<'_>| {
            seen.push((e.seq, info.line, info.offset));
            let end = info.offset as usize + info.raw.len();
            assert_eq!(&bytes[info.offset as usize..end], info.raw);
            assert_eq!(bytes[end], b'\n');
            Ok(())
        };
        let out = store
            .scan(&Checkpoint::default(), None, &mut visit)
            .unwrap()
            .unwrap();
        assert_eq!(seen, want_events);
        let issue_lines: Vec<u64> = out.issues.iter().map(|i| i.line).collect();
        assert_eq!(issue_lines, want_bad);
        assert_eq!(out.events, want_events.len() as u64);
        assert_eq!(out.torn_tails, vec!["events.jsonl".to_string()]);
        let (last_seq, last_line, last_offset) = *want_events.last().unwrap();
        assert_eq!(out.end.seq, last_seq);
        assert_eq!(out.end.line, last_line);
        let last_raw_len = bytes[last_offset as usize..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap() as u64;
        assert_eq!(out.end.offset, last_offset + last_raw_len + 1);
        let last: EventRef =
            serde_json::from_slice(&bytes[last_offset as usize..out.end.offset as usize - 1])
                .unwrap();
        assert_eq!(out.end.event_id.as_deref(), Some(last.event_id.as_ref()));

        // From a checkpoint in the middle: exactly the rest.
        let (mid_seq, mid_line, mid_offset) = want_events[2345];
        let mid_end = mid_offset
            + bytes[mid_offset as usize..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap() as u64
            + 1;
        let mid: EventRef =
            serde_json::from_slice(&bytes[mid_offset as usize..mid_end as usize - 1]).unwrap();
        let from = Checkpoint {
            seq: mid_seq,
            event_id: Some(mid.event_id.to_string()),
            log: Some("events".to_string()),
            offset: mid_end,
            line: mid_line,
            max_seq: None,
        };
        let mut rest = Vec::new();
        let mut visit = |e: &EventRef<'_>, info: &LineInfo<'_>| {
            rest.push((e.seq, info.line, info.offset));
            Ok(())
        };
        let out2 = store.scan(&from, None, &mut visit).unwrap().unwrap();
        assert_eq!(rest, want_events[2346..]);
        assert_eq!(out2.end, out.end);
    }
}
