//! `work_orders.jsonl`: one line per work order, in creation order.
//!
//! Records are kept as raw lines until something needs them, so loading 100,000 work orders is
//! a split on newlines plus an id lookup, and unchanged records are written back byte for byte.

use super::{Created, Reconciled, Status, WorkOrder};
use crate::event::{EventRef, types};
use crate::store::Projection;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

enum Record {
    /// A record line as loaded: `file[start..end]`.
    Raw {
        start: usize,
        end: usize,
    },
    Parsed(Box<WorkOrder>),
}

/// Every work order of a store.
#[derive(Default)]
pub struct WorkOrders {
    /// The loaded `work_orders.jsonl` (raw records point into it, so loading copies nothing).
    file: Vec<u8>,
    records: Vec<Record>,
    /// Records by the hash of their id (no string per id: loading 100,000 stays cheap).
    index: Index,
    /// Ids whose hash an earlier id already has (practically never), by id.
    spill: HashMap<String, usize>,
}

/// The 64-bit hash of a work order id: Fx over 8-byte words, then the murmur3 finaliser so
/// every bit is mixed. The ids come from the store itself, so no defence against chosen
/// collisions is needed (and a collision only costs a lookup in `spill`).
fn id_hash(id: &str) -> u64 {
    let mut h = id.len() as u64;
    let mut add = |w: u64| h = (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    let mut chunks = id.as_bytes().chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        add(u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        add(u64::from_le_bytes(w));
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The hasher of `index`, whose keys are hashes already.
#[derive(Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type Index = HashMap<u64, usize, BuildHasherDefault<Prehashed>>;

/// A file this big has its records split on two threads when loaded.
const PARALLEL_MIN: usize = 4 << 20;

/// A line of the loaded file, and the hash of the id it starts with (`None`: parse it).
struct Line {
    start: usize,
    end: usize,
    id_hash: Option<u64>,
}

fn id_of<'a>(file: &'a [u8], line: &Line) -> &'a str {
    raw_id(&file[line.start..line.end]).unwrap_or_default()
}

/// The lines of `body[from..to]` (whole lines; `body` starts at `base` in the file).
fn split_lines(body: &[u8], base: usize, from: usize, to: usize) -> Vec<Line> {
    let mut out = Vec::with_capacity((to - from) / 256 + 1);
    let mut pos = from;
    while pos < to {
        let end = memchr::memchr(b'\n', &body[pos..to]).map_or(to, |i| pos + i);
        out.push(Line {
            start: base + pos,
            end: base + end,
            id_hash: raw_id(&body[pos..end]).map(id_hash),
        });
        pos = end + 1;
    }
    out
}

/// Indexes record `i` (which may not be pushed yet) under `id`; false when that id is
/// already there. Takes the fields, so `id` may borrow from `file`.
fn index_id(
    index: &mut Index,
    spill: &mut HashMap<String, usize>,
    records: &[Record],
    file: &[u8],
    id: &str,
    i: usize,
) -> bool {
    index_id_hashed(index, spill, records, file, id, id_hash(id), i)
}

/// [`index_id`] with the hash of `id` already computed.
fn index_id_hashed(
    index: &mut Index,
    spill: &mut HashMap<String, usize>,
    records: &[Record],
    file: &[u8],
    id: &str,
    hash: u64,
    i: usize,
) -> bool {
    use std::collections::hash_map::Entry;
    match index.entry(hash) {
        Entry::Vacant(v) => {
            v.insert(i);
            true
        }
        Entry::Occupied(o) => {
            if id_at(records, file, *o.get()) == id {
                return false;
            }
            match spill.entry(id.to_string()) {
                Entry::Occupied(_) => false,
                Entry::Vacant(v) => {
                    v.insert(i);
                    true
                }
            }
        }
    }
}

/// The id of record `i`.
fn id_at<'a>(records: &'a [Record], file: &'a [u8], i: usize) -> &'a str {
    match &records[i] {
        // Raw records are only kept when their line starts with the id.
        Record::Raw { start, end } => raw_id(&file[*start..*end]).unwrap_or_default(),
        Record::Parsed(wo) => &wo.id,
    }
}

impl std::fmt::Debug for WorkOrders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkOrders")
            .field("len", &self.records.len())
            .finish()
    }
}

/// The id of a record line, read without parsing the record (`{"id":"wo-…",…`).
fn raw_id(line: &[u8]) -> Option<&str> {
    let rest = line.strip_prefix(br#"{"id":""#)?;
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

fn parse(raw: &[u8]) -> Option<WorkOrder> {
    serde_json::from_slice(raw).ok()
}

/// Sets a string field, reusing its allocation.
fn set(field: &mut String, value: &str) {
    field.clear();
    field.push_str(value);
}

fn set_opt(field: &mut Option<String>, value: &str) {
    match field {
        Some(f) => set(f, value),
        None => *field = Some(value.to_string()),
    }
}

// Borrowed views of the payloads (the types in `super` own their strings); same fields, same
// defaults, so they accept and refuse exactly what those do.

#[derive(Deserialize)]
struct UpdatedRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    priority: Option<u8>,
    #[serde(default)]
    description: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<super::WoType>,
    #[serde(borrow, default)]
    assignee: Option<Cow<'a, str>>,
    #[serde(default)]
    add_labels: Vec<String>,
    #[serde(borrow, default)]
    remove_labels: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct StatusChangedRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    from: Status,
    to: Status,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    factory: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct AssignedRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    assignee: Cow<'a, str>,
    #[serde(borrow)]
    factory: Cow<'a, str>,
    #[allow(dead_code)]
    slot: u32,
    #[serde(borrow)]
    incarnation: Cow<'a, str>,
    attempt: u32,
    #[serde(borrow)]
    branch: Cow<'a, str>,
}

#[derive(Deserialize)]
struct DependencyRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    depends_on: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ClosedRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    merge_commit: Option<Cow<'a, str>>,
}

impl WorkOrders {
    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    pub fn contains(&self, id: &str) -> bool {
        self.find(id).is_some()
    }
    /// Every id, in creation order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        (0..self.records.len()).map(|i| id_at(&self.records, &self.file, i))
    }

    fn find(&self, id: &str) -> Option<usize> {
        let i = *self.index.get(&id_hash(id))?;
        if id_at(&self.records, &self.file, i) == id {
            Some(i)
        } else {
            self.spill.get(id).copied()
        }
    }

    /// A copy of one work order.
    pub fn get(&self, id: &str) -> Option<WorkOrder> {
        let i = self.find(id)?;
        match &self.records[i] {
            Record::Parsed(wo) => Some((**wo).clone()),
            Record::Raw { start, end } => parse(&self.file[*start..*end]),
        }
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut WorkOrder> {
        let i = self.find(id)?;
        let rec = &mut self.records[i];
        if let Record::Raw { start, end } = rec {
            *rec = Record::Parsed(Box::new(parse(&self.file[*start..*end])?));
        }
        match rec {
            Record::Parsed(wo) => Some(wo),
            Record::Raw { .. } => None,
        }
    }

    /// Every work order, in creation order.
    pub fn all(&self) -> Vec<WorkOrder> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Parsed(wo) => Some((**wo).clone()),
                Record::Raw { start, end } => parse(&self.file[*start..*end]),
            })
            .collect()
    }

    /// Visits every work order as its JSON line and a parsed view (for fast listing: the JSON
    /// is written out as it is stored).
    pub fn for_each_json(&self, mut f: impl FnMut(&[u8], &WorkOrder)) {
        for raw in self.raw_lines() {
            if let Some(wo) = parse(&raw) {
                f(&raw, &wo);
            }
        }
    }

    /// Every work order as its JSON line, in creation order, without parsing it: loaded records
    /// borrowed as stored, changed ones serialised (`wo list` parses only what it filters on).
    pub fn raw_lines(&self) -> impl Iterator<Item = Cow<'_, [u8]>> {
        self.records.iter().filter_map(|r| match r {
            Record::Raw { start, end } => Some(Cow::Borrowed(&self.file[*start..*end])),
            Record::Parsed(wo) => serde_json::to_vec(wo).ok().map(Cow::Owned),
        })
    }

    /// Keeps only the work orders `keep` accepts, in the same order (a view that holds some of
    /// them drops the ones it no longer needs).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&WorkOrder) -> bool) {
        let old = std::mem::take(self);
        for wo in old.all() {
            if keep(&wo) {
                self.insert(wo);
            }
        }
    }

    /// Adds a work order; an id already there now names this record (as a map insert would).
    fn insert(&mut self, wo: WorkOrder) {
        let i = self.records.len();
        if let Some(j) = self.find(&wo.id) {
            let h = id_hash(&wo.id);
            match self.index.get_mut(&h) {
                Some(slot) if *slot == j => *slot = i,
                _ => {
                    if let Some(slot) = self.spill.get_mut(&wo.id) {
                        *slot = i;
                    }
                }
            }
        } else {
            index_id(
                &mut self.index,
                &mut self.spill,
                &self.records,
                &self.file,
                &wo.id,
                i,
            );
        }
        self.records.push(Record::Parsed(Box::new(wo)));
    }

    /// One record line at `file[start..end]`: indexed by the id at its start, or parsed.
    fn load_line(&mut self, start: usize, end: usize) -> Result<(), String> {
        let line = &self.file[start..end];
        match raw_id(line) {
            Some(id) => {
                let i = self.records.len();
                let (index, spill) = (&mut self.index, &mut self.spill);
                if !index_id(index, spill, &self.records, &self.file, id, i) {
                    return Err(format!("work order {id} appears twice"));
                }
                self.records.push(Record::Raw { start, end });
                Ok(())
            }
            None => {
                let wo: WorkOrder = serde_json::from_slice(line).map_err(|e| e.to_string())?;
                self.insert(wo);
                Ok(())
            }
        }
    }
}

fn missing(id: &str) -> String {
    format!("event refers to unknown work order {id}; skipped")
}

impl Projection for WorkOrders {
    const NAME: &'static str = "work_orders";
    const VERSION: u32 = 1;

    fn wants(event_type: &str) -> bool {
        event_type.starts_with("work_order.")
    }

    fn apply(&mut self, ev: &EventRef<'_>) -> Result<(), String> {
        let ts = ev.timestamp.as_ref();
        let bad = |e: serde_json::Error| format!("{} payload unreadable ({e})", ev.event_type);
        match ev.event_type.as_ref() {
            types::WORK_ORDER_CREATED => {
                let c: Created = ev.data().map_err(bad)?;
                if self.contains(&c.id) {
                    return Err(format!(
                        "work order {} created twice; the second create is skipped",
                        c.id
                    ));
                }
                if let Some(p) = c.parent.as_deref()
                    && let Some(parent) = self.get_mut(p)
                {
                    parent.children += 1;
                }
                self.insert(WorkOrder {
                    id: c.id,
                    title: c.title,
                    kind: c.kind,
                    priority: c.priority,
                    status: Status::Open,
                    description: c.description,
                    labels: c.labels,
                    parent: c.parent,
                    depends_on: Vec::new(),
                    assignee: None,
                    factory: None,
                    attempts: 0,
                    incarnation: None,
                    branch: None,
                    merge_commit: None,
                    close_reason: None,
                    last_failure: None,
                    approved_head: None,
                    children: 0,
                    created_by: ev.actor.to_string(),
                    created_at: ts.to_string(),
                    updated_at: ts.to_string(),
                    status_changed_at: ts.to_string(),
                    closed_at: None,
                    seq: ev.seq,
                });
            }
            types::WORK_ORDER_UPDATED => {
                let u: UpdatedRef = ev.data().map_err(bad)?;
                let wo = self.get_mut(&u.id).ok_or_else(|| missing(&u.id))?;
                if let Some(t) = u.title {
                    wo.title = t;
                }
                if let Some(p) = u.priority {
                    wo.priority = p;
                }
                if let Some(d) = u.description {
                    wo.description = d;
                }
                if let Some(k) = u.kind {
                    wo.kind = k;
                }
                if let Some(a) = u.assignee {
                    wo.assignee = if a.is_empty() {
                        None
                    } else {
                        Some(a.into_owned())
                    };
                }
                for l in u.add_labels {
                    if !wo.labels.contains(&l) {
                        wo.labels.push(l);
                    }
                }
                wo.labels
                    .retain(|l| !u.remove_labels.iter().any(|r| r == l));
                set(&mut wo.updated_at, ts);
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_STATUS_CHANGED => {
                let s: StatusChangedRef = ev.data().map_err(bad)?;
                let wo = self.get_mut(&s.id).ok_or_else(|| missing(&s.id))?;
                wo.status = s.to;
                match s.to {
                    Status::Queued => {
                        if let Some(f) = s.factory {
                            wo.factory = Some(f.into_owned());
                        }
                        // Leaving a worker for the queue means the worker was lost, killed or
                        // stuck: the next worker (and a final failure) should know why.
                        if matches!(s.from, Status::Assigned | Status::InProgress)
                            && let Some(r) = s.reason
                        {
                            wo.last_failure = Some(r.into_owned());
                        }
                        wo.assignee = None;
                        wo.incarnation = None;
                    }
                    Status::Open => {
                        wo.closed_at = None;
                        wo.close_reason = None;
                        wo.assignee = None;
                        wo.incarnation = None;
                    }
                    Status::Rework | Status::Blocked | Status::Failed | Status::NeedsApproval
                        if s.reason.is_some() =>
                    {
                        wo.last_failure = s.reason.map(Cow::into_owned);
                    }
                    Status::Cancelled => wo.close_reason = s.reason.map(Cow::into_owned),
                    _ => {}
                }
                set(&mut wo.updated_at, ts);
                set(&mut wo.status_changed_at, ts);
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_ASSIGNED => {
                let a: AssignedRef = ev.data().map_err(bad)?;
                let wo = self.get_mut(&a.id).ok_or_else(|| missing(&a.id))?;
                set_opt(&mut wo.assignee, &a.assignee);
                set_opt(&mut wo.factory, &a.factory);
                set_opt(&mut wo.incarnation, &a.incarnation);
                wo.attempts = a.attempt;
                set_opt(&mut wo.branch, &a.branch);
                set(&mut wo.updated_at, ts);
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_DEPENDENCY_ADDED => {
                let d: DependencyRef = ev.data().map_err(bad)?;
                let wo = self.get_mut(&d.id).ok_or_else(|| missing(&d.id))?;
                if !wo.depends_on.iter().any(|x| x == &d.depends_on) {
                    wo.depends_on.push(d.depends_on.into_owned());
                }
                set(&mut wo.updated_at, ts);
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_DEPENDENCY_REMOVED => {
                let d: DependencyRef = ev.data().map_err(bad)?;
                let wo = self.get_mut(&d.id).ok_or_else(|| missing(&d.id))?;
                wo.depends_on.retain(|x| x != &d.depends_on);
                set(&mut wo.updated_at, ts);
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_CLOSED => {
                let c: ClosedRef = ev.data().map_err(bad)?;
                let wo = self.get_mut(&c.id).ok_or_else(|| missing(&c.id))?;
                wo.status = Status::Closed;
                wo.close_reason = c.reason.map(Cow::into_owned);
                if let Some(m) = c.merge_commit {
                    wo.merge_commit = Some(m.into_owned());
                }
                wo.assignee = None;
                set_opt(&mut wo.closed_at, ts);
                set(&mut wo.updated_at, ts);
                set(&mut wo.status_changed_at, ts);
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_APPROVED => {
                let a: super::Approved = ev.data().map_err(bad)?;
                let wo = self.get_mut(&a.id).ok_or_else(|| missing(&a.id))?;
                wo.approved_head = Some(a.head);
                set(&mut wo.updated_at, ts);
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_RECONCILED => {
                let r: Reconciled = ev.data().map_err(bad)?;
                if r.record.id != r.id {
                    return Err(format!(
                        "{} names work order {} but carries the record of {}; skipped",
                        ev.event_type, r.id, r.record.id
                    ));
                }
                let wo = self.get_mut(&r.id).ok_or_else(|| missing(&r.id))?;
                *wo = r.record;
                wo.seq = ev.seq;
            }
            other => return Err(format!("unknown work order event type {other}; skipped")),
        }
        Ok(())
    }

    fn load_record(&mut self, line: &[u8]) -> Result<(), String> {
        let start = self.file.len();
        self.file.extend_from_slice(line);
        self.load_line(start, self.file.len())
    }

    fn load_records(&mut self, bytes: Vec<u8>, start: usize) -> Result<(), (usize, String)> {
        let pos = if self.file.is_empty() {
            self.file = bytes;
            start
        } else {
            let at = self.file.len();
            self.file
                .extend_from_slice(bytes.get(start..).unwrap_or_default());
            at
        };
        // Finding the lines and hashing their ids is split over two threads for a big file;
        // indexing them stays in order, here.
        let body = self.file.get(pos..).unwrap_or_default();
        let lines = if body.len() >= PARALLEL_MIN {
            let mid = body.len() / 2;
            let cut = memchr::memchr(b'\n', &body[mid..]).map_or(body.len(), |i| mid + i + 1);
            std::thread::scope(|s| {
                let other = std::thread::Builder::new()
                    .name("load-records".into())
                    .spawn_scoped(s, || split_lines(body, pos, cut, body.len()));
                let mut lines = split_lines(body, pos, 0, cut);
                match other {
                    Ok(h) => {
                        lines.extend(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    }
                    Err(_) => lines.extend(split_lines(body, pos, cut, body.len())),
                }
                lines
            })
        } else {
            split_lines(body, pos, 0, body.len())
        };
        self.records.reserve(lines.len());
        self.index.reserve(lines.len());
        for (n, line) in lines.into_iter().enumerate() {
            if line.start == line.end {
                continue;
            }
            let line_no = n + 2;
            let i = self.records.len();
            match line.id_hash {
                Some(h) => {
                    let id = id_of(&self.file, &line);
                    let (index, spill) = (&mut self.index, &mut self.spill);
                    if !index_id_hashed(index, spill, &self.records, &self.file, id, h, i) {
                        return Err((line_no, format!("work order {id} appears twice")));
                    }
                    self.records.push(Record::Raw {
                        start: line.start,
                        end: line.end,
                    });
                }
                None => {
                    let wo: WorkOrder = serde_json::from_slice(&self.file[line.start..line.end])
                        .map_err(|e| (line_no, e.to_string()))?;
                    self.insert(wo);
                }
            }
        }
        Ok(())
    }

    fn record_count(&self) -> usize {
        self.records.len()
    }

    fn write_records(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        for r in &self.records {
            match r {
                Record::Raw { start, end } => out.extend_from_slice(&self.file[*start..*end]),
                Record::Parsed(wo) => serde_json::to_writer(&mut *out, wo)?,
            }
            out.push(b'\n');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> String {
        let wo = WorkOrder {
            id: id.to_string(),
            title: "t".into(),
            kind: super::super::WoType::Task,
            priority: 2,
            status: Status::Open,
            description: String::new(),
            labels: Vec::new(),
            parent: None,
            depends_on: Vec::new(),
            assignee: None,
            factory: None,
            attempts: 0,
            incarnation: None,
            branch: None,
            merge_commit: None,
            close_reason: None,
            last_failure: None,
            approved_head: None,
            children: 0,
            created_by: "t".into(),
            created_at: "2026-11-21T12:00:00.000Z".into(),
            updated_at: "2026-11-21T12:00:00.000Z".into(),
            status_changed_at: "2026-11-21T12:00:00.000Z".into(),
            closed_at: None,
            seq: 1,
        };
        serde_json::to_string(&wo).unwrap()
    }

    fn file(ids: &[&str]) -> Vec<u8> {
        let mut f = b"{\"header\":1}\n".to_vec();
        for id in ids {
            f.extend_from_slice(record(id).as_bytes());
            f.push(b'\n');
        }
        f
    }

    #[test]
    fn loading_keeps_the_file_and_finds_every_id() {
        let ids: Vec<String> = (0..20_000).map(|n| format!("wo-{n:06}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let bytes = file(&refs);
        let start = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut wos = WorkOrders::default();
        wos.load_records(bytes.clone(), start).unwrap();
        assert_eq!(wos.len(), ids.len());
        assert!(ids.iter().all(|id| wos.contains(id)));
        assert!(!wos.contains("wo-zzzzzz"));
        assert_eq!(wos.ids().collect::<Vec<_>>(), refs);
        assert_eq!(wos.get("wo-000123").unwrap().id, "wo-000123");
        let mut out = Vec::new();
        wos.write_records(&mut out).unwrap();
        assert_eq!(out, bytes[start..]);
        // A record loaded one line at a time lands in the same place.
        let mut one = WorkOrders::default();
        for line in bytes[start..]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            one.load_record(line).unwrap();
        }
        let mut out2 = Vec::new();
        one.write_records(&mut out2).unwrap();
        assert_eq!(out2, out);
    }

    #[test]
    fn a_duplicate_record_is_refused_with_its_line() {
        let bytes = file(&["wo-a", "wo-b", "", "wo-a"]);
        let start = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut wos = WorkOrders::default();
        let err = wos.load_records(bytes, start).unwrap_err();
        // Lines: header 1, wo-a 2, wo-b 3, blank 4, wo-a 5.
        assert_eq!(err, (5, "work order wo-a appears twice".to_string()));
    }

    #[test]
    fn colliding_hashes_still_find_both_ids() {
        let mut wos = WorkOrders::default();
        let bytes = file(&["wo-a", "wo-b"]);
        let start = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        wos.load_records(bytes, start).unwrap();
        // Pretend wo-b's hash is wo-a's: move it to the spill map as a collision would.
        let hb = id_hash("wo-b");
        let ib = wos.index.remove(&hb).unwrap();
        assert!(!wos.contains("wo-b"));
        wos.spill.insert("wo-b".into(), ib);
        let ha = id_hash("wo-a");
        wos.index.insert(hb, wos.index[&ha]);
        assert!(wos.contains("wo-a") && wos.contains("wo-b"));
        assert_eq!(wos.get("wo-b").unwrap().id, "wo-b");
    }
}
