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

/// Declares every event type once: its constant and its name. [`types::ALL`] (what `wo doctor`
/// knows), the constants every writer and projection uses, and the check that docs/EVENTS.md
/// names each type all come from this one list.
macro_rules! event_types {
    ($( $(#[doc = $doc:literal])* $konst:ident = $name:literal; )*) => {
        /// The canonical event type names (design §3). One name each; no aliases are written.
        pub mod types {
            $( $(#[doc = $doc])* pub const $konst: &str = $name; )*

            /// Every type this build writes.
            pub const ALL: &[&str] = &[$($konst),*];
        }
    };
}

event_types! {
    WORK_ORDER_CREATED = "work_order.created";
    WORK_ORDER_UPDATED = "work_order.updated";
    WORK_ORDER_STATUS_CHANGED = "work_order.status_changed";
    WORK_ORDER_ASSIGNED = "work_order.assigned";
    WORK_ORDER_DEPENDENCY_ADDED = "work_order.dependency_added";
    WORK_ORDER_DEPENDENCY_REMOVED = "work_order.dependency_removed";
    WORK_ORDER_CLOSED = "work_order.closed";
    /// A person approved a branch head that changes protected paths.
    WORK_ORDER_APPROVED = "work_order.approved";
    /// `wo sync` merged changes made on two machines: the work order as the sync rule says it
    /// is (written only where the log's own order gave something else; never synced itself).
    WORK_ORDER_RECONCILED = "work_order.reconciled";
    MAIL_SENT = "mail.sent";
    MAIL_READ = "mail.read";
    MAIL_ARCHIVED = "mail.archived";
    ASSIGNMENT_SET = "assignment.set";
    ASSIGNMENT_CHECKED = "assignment.checked";
    ASSIGNMENT_CLEARED = "assignment.cleared";
    AGENT_STARTED = "agent.started";
    AGENT_WORKING = "agent.working";
    AGENT_IDLE = "agent.idle";
    AGENT_NUDGED = "agent.nudged";
    AGENT_STOPPED = "agent.stopped";
    AGENT_RESTARTED = "agent.restarted";
    AGENT_ESCALATED = "agent.escalated";
    SLOT_ALLOCATED = "slot.allocated";
    SLOT_RELEASED = "slot.released";
    WORKTREE_CREATED = "worktree.created";
    WORKTREE_REMOVED = "worktree.removed";
    QA_ENQUEUED = "qa.enqueued";
    QA_GATE_RUN = "qa.gate_run";
    QA_MERGED = "qa.merged";
    QA_MERGE_FAILED = "qa.merge_failed";
    QA_REWORK_REQUESTED = "qa.rework_requested";
    /// QA took several branches to merge and gate together.
    QA_BATCH_STARTED = "qa.batch_started";
    /// A batch's gates failed and QA tests a half of it next.
    QA_BATCH_BISECTED = "qa.batch_bisected";
    FACTORY_ADDED = "factory.added";
    COMPANY_INITIALIZED = "company.initialized";
    OPERATIONS_STARTED = "operations.started";
    OPERATIONS_STOPPED = "operations.stopped";
    PATROL_COMPLETED = "patrol.completed";
    /// A sprint was made (`co sprint create`); company store.
    SPRINT_CREATED = "sprint.created";
    /// A work order joined a sprint (`co sprint add`).
    SPRINT_WORK_ORDER_ADDED = "sprint.work_order_added";
    /// A work order left a sprint (`co sprint remove`).
    SPRINT_WORK_ORDER_REMOVED = "sprint.work_order_removed";
    /// A sprint was closed (`co sprint close`); its name is free again.
    SPRINT_CLOSED = "sprint.closed";
    /// A team workspace was made (`co team add`); factory store.
    TEAM_ADDED = "team.added";
    /// A team handed its branch to QA (`co team submit`); factory store.
    TEAM_SUBMITTED = "team.submitted";
    /// A team workspace was removed (`co team remove`); factory store.
    TEAM_REMOVED = "team.removed";
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
    fn every_event_type_is_named_once_in_the_table_and_documented() {
        let mut seen = std::collections::BTreeSet::new();
        for t in types::ALL {
            assert!(seen.insert(*t), "{t} is in the table twice");
            let (family, name) = t.split_once('.').unwrap_or_default();
            assert!(!family.is_empty() && !name.is_empty(), "{t} is family.name");
        }
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
