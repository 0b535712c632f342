//! The event envelope (design §3) and the canonical event type names.
//!
//! One JSON object per line, keys in this order:
//! `{"v":1,"seq":42,"event_id":"evt-…","event_type":"work_order.created","timestamp":"…",
//! "actor":"ceo","correlation_id":null,"caused_by":null,"data":{…}}`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The envelope version this build writes and reads.
pub const ENVELOPE_VERSION: u32 = 1;

/// Lines longer than this are refused at write time.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A stored event, owned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    pub seq: u64,
    pub event_id: String,
    pub event_type: String,
    pub timestamp: String,
    pub actor: String,
    pub correlation_id: Option<String>,
    pub caused_by: Option<String>,
    pub data: Box<RawValue>,
}

/// A stored event borrowed from a line of the log: no copy of the payload.
#[derive(Debug, Deserialize)]
pub struct EventRef<'a> {
    pub v: u32,
    pub seq: u64,
    #[serde(borrow)]
    pub event_id: Cow<'a, str>,
    #[serde(borrow)]
    pub event_type: Cow<'a, str>,
    #[serde(borrow)]
    pub timestamp: Cow<'a, str>,
    #[serde(borrow)]
    pub actor: Cow<'a, str>,
    #[serde(borrow, default)]
    pub correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub caused_by: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub data: &'a RawValue,
}

impl Event {
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            v: self.v,
            seq: self.seq,
            event_id: Cow::Borrowed(&self.event_id),
            event_type: Cow::Borrowed(&self.event_type),
            timestamp: Cow::Borrowed(&self.timestamp),
            actor: Cow::Borrowed(&self.actor),
            correlation_id: self.correlation_id.as_deref().map(Cow::Borrowed),
            caused_by: self.caused_by.as_deref().map(Cow::Borrowed),
            data: &self.data,
        }
    }

    /// The payload as a JSON value.
    pub fn data_value(&self) -> serde_json::Value {
        serde_json::from_str(self.data.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl EventRef<'_> {
    pub fn to_owned_event(&self) -> Event {
        Event {
            v: self.v,
            seq: self.seq,
            event_id: self.event_id.to_string(),
            event_type: self.event_type.to_string(),
            timestamp: self.timestamp.to_string(),
            actor: self.actor.to_string(),
            correlation_id: self.correlation_id.as_ref().map(|c| c.to_string()),
            caused_by: self.caused_by.as_ref().map(|c| c.to_string()),
            data: self.data.to_owned(),
        }
    }

    /// Deserialises the payload into a typed struct.
    pub fn data<'de, T: Deserialize<'de>>(&'de self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.get())
    }
}

/// An event about to be appended; the store gives it `seq`, `event_id` and `timestamp`.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: String,
    pub actor: String,
    pub correlation_id: Option<String>,
    pub caused_by: Option<String>,
    pub data: Box<RawValue>,
}

impl NewEvent {
    /// A new event with a typed payload.
    pub fn new(
        event_type: &str,
        actor: &str,
        data: &impl Serialize,
    ) -> Result<NewEvent, serde_json::Error> {
        Ok(NewEvent {
            event_type: event_type.to_string(),
            actor: actor.to_string(),
            correlation_id: None,
            caused_by: None,
            data: serde_json::value::to_raw_value(data)?,
        })
    }

    pub fn correlated(mut self, correlation_id: Option<&str>) -> Self {
        self.correlation_id = correlation_id.map(str::to_string);
        self
    }
}

/// A new event with a typed payload, as a crate error.
pub(crate) fn ev(ty: &str, actor: &str, data: &impl Serialize) -> crate::Result<NewEvent> {
    Ok(NewEvent::new(ty, actor, data).map_err(crate::store::StoreError::from)?)
}

/// The canonical event type names (design §3). One name each; no aliases are written.
pub mod types {
    pub const WORK_ORDER_CREATED: &str = "work_order.created";
    pub const WORK_ORDER_UPDATED: &str = "work_order.updated";
    pub const WORK_ORDER_STATUS_CHANGED: &str = "work_order.status_changed";
    pub const WORK_ORDER_ASSIGNED: &str = "work_order.assigned";
    pub const WORK_ORDER_DEPENDENCY_ADDED: &str = "work_order.dependency_added";
    pub const WORK_ORDER_DEPENDENCY_REMOVED: &str = "work_order.dependency_removed";
    pub const WORK_ORDER_CLOSED: &str = "work_order.closed";
    pub const MAIL_SENT: &str = "mail.sent";
    pub const MAIL_READ: &str = "mail.read";
    pub const MAIL_ARCHIVED: &str = "mail.archived";
    pub const ASSIGNMENT_SET: &str = "assignment.set";
    pub const ASSIGNMENT_CHECKED: &str = "assignment.checked";
    pub const ASSIGNMENT_CLEARED: &str = "assignment.cleared";
    pub const AGENT_STARTED: &str = "agent.started";
    pub const AGENT_WORKING: &str = "agent.working";
    pub const AGENT_IDLE: &str = "agent.idle";
    pub const AGENT_NUDGED: &str = "agent.nudged";
    pub const AGENT_STOPPED: &str = "agent.stopped";
    pub const AGENT_RESTARTED: &str = "agent.restarted";
    pub const AGENT_ESCALATED: &str = "agent.escalated";
    pub const SLOT_ALLOCATED: &str = "slot.allocated";
    pub const SLOT_RELEASED: &str = "slot.released";
    pub const WORKTREE_CREATED: &str = "worktree.created";
    pub const WORKTREE_REMOVED: &str = "worktree.removed";
    pub const QA_ENQUEUED: &str = "qa.enqueued";
    pub const QA_GATE_RUN: &str = "qa.gate_run";
    pub const QA_MERGED: &str = "qa.merged";
    pub const QA_MERGE_FAILED: &str = "qa.merge_failed";
    pub const QA_REWORK_REQUESTED: &str = "qa.rework_requested";
    pub const QA_BATCH_STARTED: &str = "qa.batch_started";
    pub const QA_BATCH_BISECTED: &str = "qa.batch_bisected";
    pub const FACTORY_ADDED: &str = "factory.added";
    pub const COMPANY_INITIALIZED: &str = "company.initialized";
    pub const OPERATIONS_STARTED: &str = "operations.started";
    pub const OPERATIONS_STOPPED: &str = "operations.stopped";
    pub const PATROL_COMPLETED: &str = "patrol.completed";

    /// Every type this build writes, for `wo doctor`; a test checks that docs/EVENTS.md names
    /// each one.
    pub const ALL: &[&str] = &[
        WORK_ORDER_CREATED,
        WORK_ORDER_UPDATED,
        WORK_ORDER_STATUS_CHANGED,
        WORK_ORDER_ASSIGNED,
        WORK_ORDER_DEPENDENCY_ADDED,
        WORK_ORDER_DEPENDENCY_REMOVED,
        WORK_ORDER_CLOSED,
        MAIL_SENT,
        MAIL_READ,
        MAIL_ARCHIVED,
        ASSIGNMENT_SET,
        ASSIGNMENT_CHECKED,
        ASSIGNMENT_CLEARED,
        AGENT_STARTED,
        AGENT_WORKING,
        AGENT_IDLE,
        AGENT_NUDGED,
        AGENT_STOPPED,
        AGENT_RESTARTED,
        AGENT_ESCALATED,
        SLOT_ALLOCATED,
        SLOT_RELEASED,
        WORKTREE_CREATED,
        WORKTREE_REMOVED,
        QA_ENQUEUED,
        QA_GATE_RUN,
        QA_MERGED,
        QA_MERGE_FAILED,
        QA_REWORK_REQUESTED,
        QA_BATCH_STARTED,
        QA_BATCH_BISECTED,
        FACTORY_ADDED,
        COMPANY_INITIALIZED,
        OPERATIONS_STARTED,
        OPERATIONS_STOPPED,
        PATROL_COMPLETED,
    ];
}

/// A one-line human summary of an event's payload: the ids and the few fields that say what
/// happened (`wo-k3x9q2 open → queued`, `ceo → mp/qa "subject"`). Text is escaped.
pub fn summary(data: &RawValue) -> String {
    let v: serde_json::Value = serde_json::from_str(data.get()).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str());
    let q = |t: &str| {
        format!(
            "{:?}",
            crate::text::truncate(&crate::text::escape_control(t), 60)
        )
    };
    let mut parts: Vec<String> = Vec::new();
    for k in ["id", "work_order", "agent", "factory", "name", "session"] {
        if let Some(x) = s(k) {
            parts.push(crate::text::escape_control(x));
        }
    }
    if let (Some(f), Some(t)) = (s("from"), s("to")) {
        parts.push(format!(
            "{} → {}",
            crate::text::escape_control(f),
            crate::text::escape_control(t)
        ));
    }
    if let Some(slot) = v.get("slot").and_then(|x| x.as_u64()) {
        parts.push(format!("slot{slot}"));
    }
    if let Some(x) = s("gate") {
        parts.push(format!("gate {}", crate::text::escape_control(x)));
    }
    if let Some(x) = v.get("passed").and_then(|x| x.as_bool()) {
        parts.push(if x { "passed".into() } else { "failed".into() });
    }
    if let Some(x) = s("title").or(s("subject")) {
        parts.push(q(x));
    }
    if let Some(x) = s("reason") {
        parts.push(format!(
            "({})",
            crate::text::truncate(&crate::text::escape_control(x), 60)
        ));
    }
    parts.join(" ")
}

/// Matches an event type against a glob with `*` (any run) and `?` (one character):
/// `work_order.*`, `*.closed`, `mail.?ent`.
///
/// Greedy with backtracking to the last `*` only (O(glob × type)): a later `*` can absorb
/// anything an earlier one could, so retrying earlier stars never finds more matches.
pub fn type_matches(glob: &str, event_type: &str) -> bool {
    let (p, s) = (glob.as_bytes(), event_type.as_bytes());
    let (mut i, mut j) = (0, 0);
    // The last `*` seen, and where in `s` its run currently ends.
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        match p.get(i) {
            Some(b'*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == b'?' || c == s[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and retry after it.
                Some((si, sj)) => {
                    star = Some((si, sj + 1));
                    i = si + 1;
                    j = sj + 1;
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(type_matches("work_order.*", "work_order.created"));
        assert!(type_matches("*.closed", "work_order.closed"));
        assert!(type_matches("*", "mail.sent"));
        assert!(type_matches("mail.?ent", "mail.sent"));
        assert!(!type_matches("mail.*", "work_order.created"));
        assert!(!type_matches("mail", "mail.sent"));
        assert!(type_matches("", ""));
        assert!(!type_matches("", "x"));
        assert!(type_matches("**", ""));
        assert!(type_matches("*a*b", "xxaxxb"));
        assert!(!type_matches("*a*b", "xxaxxbx"));
        assert!(type_matches("a*b?d", "abbbcd"));
        assert!(!type_matches("?", ""));
    }

    #[test]
    fn many_stars_match_in_linear_time() {
        // Exponential for a naive recursive matcher: this would not finish.
        let glob = format!("{}x", "*".repeat(30));
        let start = std::time::Instant::now();
        assert!(!type_matches(&glob, &"a".repeat(30)));
        assert!(type_matches(&glob, &format!("{}x", "a".repeat(29))));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn every_event_type_is_documented() {
        let doc = include_str!("../../../docs/EVENTS.md");
        for t in types::ALL {
            assert!(
                doc.contains(&format!("`{t}`")),
                "docs/EVENTS.md does not name `{t}`"
            );
        }
    }

    #[test]
    fn envelope_keys_are_in_the_documented_order() {
        let e = Event {
            v: 1,
            seq: 42,
            event_id: "evt-x".into(),
            event_type: "work_order.created".into(),
            timestamp: "2026-11-21T12:00:00.123Z".into(),
            actor: "ceo".into(),
            correlation_id: None,
            caused_by: None,
            data: serde_json::value::to_raw_value(&serde_json::json!({"id":"wo-abc123"})).unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"v":1,"seq":42,"event_id":"evt-x","event_type":"work_order.created","timestamp":"2026-11-21T12:00:00.123Z","actor":"ceo","correlation_id":null,"caused_by":null,"data":{"id":"wo-abc123"}}"#
        );
    }
}
