//! Mail between agents and people: `mail.sent` carries the whole message, `mail.read` and
//! `mail.archived` mark it; `messages.jsonl` is the projection. Addresses are the guide's:
//! `ceo`, `<factory>/supervisor`, `<factory>/qa`, `<factory>/workers/slotN`,
//! `<factory>/teams/<name>`.

use crate::error::{Classify, Kind};
use crate::event::{EventRef, types};
use crate::store::Projection;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Errors of mail operations.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{0}")]
    BadAddress(String),
    #[error("message {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

impl Classify for MailError {
    fn kind(&self) -> Kind {
        match self {
            MailError::NotFound(_) => Kind::NotFound,
            MailError::BadAddress(_) | MailError::Invalid(_) => Kind::Usage,
        }
    }
}
crate::error::classified!(MailError);

/// How soon a message needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MailPriority {
    Urgent,
    #[default]
    Normal,
    Low,
}

impl MailPriority {
    pub fn as_str(self) -> &'static str {
        match self {
            MailPriority::Urgent => "urgent",
            MailPriority::Normal => "normal",
            MailPriority::Low => "low",
        }
    }
}

/// Payload of `mail.sent`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    pub id: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub priority: MailPriority,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}

/// Payload of `mail.read` and `mail.archived`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marked {
    pub id: String,
}

/// One message as the projection holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub priority: MailPriority,
    pub meta: BTreeMap<String, String>,
    pub sent_at: String,
    pub read_at: Option<String>,
    pub archived_at: Option<String>,
    /// The seq of its `mail.sent`.
    pub seq: u64,
}

/// Every message of a store, in the order sent.
#[derive(Debug, Default)]
pub struct Messages {
    list: Vec<Message>,
    index: HashMap<String, usize>,
}

impl Messages {
    pub fn get(&self, id: &str) -> Option<&Message> {
        self.index.get(id).map(|&i| &self.list[i])
    }
    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }
    pub fn all(&self) -> &[Message] {
        &self.list
    }
    pub fn len(&self) -> usize {
        self.list.len()
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The inbox of `to`: not archived (and unread unless `all`), urgent first, then oldest.
    pub fn inbox(&self, to: &str, all: bool) -> Vec<&Message> {
        let mut v: Vec<&Message> = self
            .list
            .iter()
            .filter(|m| m.to == to && m.archived_at.is_none() && (all || m.read_at.is_none()))
            .collect();
        v.sort_by(|a, b| a.priority.cmp(&b.priority).then(a.seq.cmp(&b.seq)));
        v
    }

    /// Unread messages for `to`.
    pub fn unread_count(&self, to: &str) -> usize {
        self.list
            .iter()
            .filter(|m| m.to == to && m.read_at.is_none() && m.archived_at.is_none())
            .count()
    }
}

impl Projection for Messages {
    const NAME: &'static str = "messages";
    const VERSION: u32 = 1;

    fn wants(event_type: &str) -> bool {
        event_type.starts_with("mail.")
    }

    fn apply(&mut self, ev: &EventRef<'_>) -> Result<(), String> {
        let bad = |e: serde_json::Error| format!("{} payload unreadable ({e})", ev.event_type);
        match ev.event_type.as_ref() {
            types::MAIL_SENT => {
                let s: Sent = ev.data().map_err(bad)?;
                if self.contains(&s.id) {
                    return Err(format!("message {} sent twice; skipped", s.id));
                }
                self.index.insert(s.id.clone(), self.list.len());
                self.list.push(Message {
                    id: s.id,
                    from: s.from,
                    to: s.to,
                    subject: s.subject,
                    body: s.body,
                    kind: s.kind,
                    priority: s.priority,
                    meta: s.meta,
                    sent_at: ev.timestamp.to_string(),
                    read_at: None,
                    archived_at: None,
                    seq: ev.seq,
                });
            }
            types::MAIL_READ | types::MAIL_ARCHIVED => {
                let m: Marked = ev.data().map_err(bad)?;
                let i = *self
                    .index
                    .get(&m.id)
                    .ok_or_else(|| format!("event refers to unknown message {}; skipped", m.id))?;
                let msg = &mut self.list[i];
                let ts = Some(ev.timestamp.to_string());
                if ev.event_type == types::MAIL_READ {
                    if msg.read_at.is_none() {
                        msg.read_at = ts;
                    }
                } else if msg.archived_at.is_none() {
                    msg.archived_at = ts;
                }
            }
            other => return Err(format!("unknown mail event type {other}; skipped")),
        }
        Ok(())
    }

    fn load_record(&mut self, line: &[u8]) -> Result<(), String> {
        let m: Message = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        if self.contains(&m.id) {
            return Err(format!("message {} appears twice", m.id));
        }
        self.index.insert(m.id.clone(), self.list.len());
        self.list.push(m);
        Ok(())
    }

    fn write_records(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        for m in &self.list {
            serde_json::to_writer(&mut *out, m)?;
            out.push(b'\n');
        }
        Ok(())
    }
}
