//! `work_orders.jsonl`: one line per work order, in creation order.
//!
//! Records are kept as raw lines until something needs them, so loading 100,000 work orders is
//! a split on newlines plus an id lookup, and unchanged records are written back byte for byte.

use super::{Assigned, Closed, Created, Dependency, Status, StatusChanged, Updated, WorkOrder};
use crate::event::{EventRef, types};
use crate::store::Projection;
use std::collections::HashMap;

enum Record {
    Raw(Box<[u8]>),
    Parsed(Box<WorkOrder>),
}

/// Every work order of a store.
#[derive(Default)]
pub struct WorkOrders {
    records: Vec<Record>,
    index: HashMap<String, usize>,
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

impl WorkOrders {
    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(String::as_str)
    }

    /// A copy of one work order.
    pub fn get(&self, id: &str) -> Option<WorkOrder> {
        let i = *self.index.get(id)?;
        match &self.records[i] {
            Record::Parsed(wo) => Some((**wo).clone()),
            Record::Raw(raw) => parse(raw),
        }
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut WorkOrder> {
        let i = *self.index.get(id)?;
        let rec = &mut self.records[i];
        if let Record::Raw(raw) = rec {
            *rec = Record::Parsed(Box::new(parse(raw)?));
        }
        match rec {
            Record::Parsed(wo) => Some(wo),
            Record::Raw(_) => None,
        }
    }

    /// Every work order, in creation order.
    pub fn all(&self) -> Vec<WorkOrder> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Parsed(wo) => Some((**wo).clone()),
                Record::Raw(raw) => parse(raw),
            })
            .collect()
    }

    /// Visits every work order as its JSON line and a parsed view (for fast listing: the JSON
    /// is written out as it is stored).
    pub fn for_each_json(&self, mut f: impl FnMut(&[u8], &WorkOrder)) {
        let mut scratch = Vec::new();
        for r in &self.records {
            match r {
                Record::Raw(raw) => {
                    if let Some(wo) = parse(raw) {
                        f(raw, &wo);
                    }
                }
                Record::Parsed(wo) => {
                    scratch.clear();
                    if serde_json::to_writer(&mut scratch, wo).is_ok() {
                        f(&scratch, wo);
                    }
                }
            }
        }
    }

    fn insert(&mut self, wo: WorkOrder) {
        self.index.insert(wo.id.clone(), self.records.len());
        self.records.push(Record::Parsed(Box::new(wo)));
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
                let u: Updated = ev.data().map_err(bad)?;
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
                    wo.assignee = if a.is_empty() { None } else { Some(a) };
                }
                for l in u.add_labels {
                    if !wo.labels.contains(&l) {
                        wo.labels.push(l);
                    }
                }
                wo.labels.retain(|l| !u.remove_labels.contains(l));
                wo.updated_at = ts.to_string();
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_STATUS_CHANGED => {
                let s: StatusChanged = ev.data().map_err(bad)?;
                let wo = self.get_mut(&s.id).ok_or_else(|| missing(&s.id))?;
                wo.status = s.to;
                match s.to {
                    Status::Queued => {
                        if s.factory.is_some() {
                            wo.factory = s.factory;
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
                    Status::Rework | Status::Blocked | Status::Failed if s.reason.is_some() => {
                        wo.last_failure = s.reason;
                    }
                    Status::Cancelled => wo.close_reason = s.reason,
                    _ => {}
                }
                wo.updated_at = ts.to_string();
                wo.status_changed_at = ts.to_string();
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_ASSIGNED => {
                let a: Assigned = ev.data().map_err(bad)?;
                let wo = self.get_mut(&a.id).ok_or_else(|| missing(&a.id))?;
                wo.assignee = Some(a.assignee);
                wo.factory = Some(a.factory);
                wo.incarnation = Some(a.incarnation);
                wo.attempts = a.attempt;
                wo.branch = Some(a.branch);
                wo.updated_at = ts.to_string();
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_DEPENDENCY_ADDED => {
                let d: Dependency = ev.data().map_err(bad)?;
                let wo = self.get_mut(&d.id).ok_or_else(|| missing(&d.id))?;
                if !wo.depends_on.contains(&d.depends_on) {
                    wo.depends_on.push(d.depends_on);
                }
                wo.updated_at = ts.to_string();
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_DEPENDENCY_REMOVED => {
                let d: Dependency = ev.data().map_err(bad)?;
                let wo = self.get_mut(&d.id).ok_or_else(|| missing(&d.id))?;
                wo.depends_on.retain(|x| x != &d.depends_on);
                wo.updated_at = ts.to_string();
                wo.seq = ev.seq;
            }
            types::WORK_ORDER_CLOSED => {
                let c: Closed = ev.data().map_err(bad)?;
                let wo = self.get_mut(&c.id).ok_or_else(|| missing(&c.id))?;
                wo.status = Status::Closed;
                wo.close_reason = c.reason;
                if c.merge_commit.is_some() {
                    wo.merge_commit = c.merge_commit;
                }
                wo.assignee = None;
                wo.closed_at = Some(ts.to_string());
                wo.updated_at = ts.to_string();
                wo.status_changed_at = ts.to_string();
                wo.seq = ev.seq;
            }
            other => return Err(format!("unknown work order event type {other}; skipped")),
        }
        Ok(())
    }

    fn load_record(&mut self, line: &[u8]) -> Result<(), String> {
        match raw_id(line) {
            Some(id) => {
                if self.index.contains_key(id) {
                    return Err(format!("work order {id} appears twice"));
                }
                self.index.insert(id.to_string(), self.records.len());
                self.records.push(Record::Raw(line.into()));
                Ok(())
            }
            None => {
                let wo: WorkOrder = serde_json::from_slice(line).map_err(|e| e.to_string())?;
                self.insert(wo);
                Ok(())
            }
        }
    }

    fn write_records(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        for r in &self.records {
            match r {
                Record::Raw(raw) => out.extend_from_slice(raw),
                Record::Parsed(wo) => serde_json::to_writer(&mut *out, wo)?,
            }
            out.push(b'\n');
        }
        Ok(())
    }
}
