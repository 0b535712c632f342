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

    fn record_count(&self) -> usize {
        self.list.len()
    }

    fn write_records(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        for m in &self.list {
            serde_json::to_writer(&mut *out, m)?;
            out.push(b'\n');
        }
        Ok(())
    }
}

/// A message id not used yet in this store.
pub fn unused_message_id(store: &crate::store::Store) -> crate::Result<String> {
    let msgs = store.load::<Messages>()?.state;
    loop {
        let id = crate::ids::new_message_id();
        if !msgs.contains(&id) {
            return Ok(id);
        }
    }
}

/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Largest body, in bytes.
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// What `co send` asks for.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub kind: String,
    pub priority: MailPriority,
    pub meta: BTreeMap<String, String>,
}

/// Checks an address names something that exists in this company, and returns it with the
/// store its mail lives in.
pub fn resolve_address(
    company: &crate::company::Company,
    addr: &str,
) -> crate::Result<(crate::agent::AgentId, crate::store::Store)> {
    use crate::agent::AgentId;
    let agent = AgentId::parse(addr)?;
    match &agent {
        AgentId::Ceo | AgentId::Operations => Ok((agent, company.store()?)),
        AgentId::Supervisor { factory } | AgentId::Qa { factory } => {
            let f = company.factory(factory)?;
            Ok((agent.clone(), f.store()?))
        }
        AgentId::Worker { factory, slot } => {
            let f = company.factory(factory)?;
            if *slot >= f.max_slots() {
                return Err(crate::Error::not_found(format!(
                    "{addr}: {factory} has slots 0 to {}",
                    f.max_slots() - 1
                )));
            }
            Ok((agent.clone(), f.store()?))
        }
        AgentId::Team { factory, name } => {
            let f = company.factory(factory)?;
            if !f.dir.join("teams").join(name).is_dir() {
                return Err(crate::Error::not_found(format!(
                    "{addr}: {factory} has no team {name}"
                )));
            }
            Ok((agent.clone(), f.store()?))
        }
    }
}

fn validate(out: &Outgoing) -> Result<(), MailError> {
    if out.subject.trim().is_empty() {
        return Err(MailError::Invalid(
            "subject is empty; give one with -s".into(),
        ));
    }
    if out.subject.contains(['\n', '\r']) {
        return Err(MailError::Invalid(
            "subject must be one line; put details in -m".into(),
        ));
    }
    if out.subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(MailError::Invalid(format!(
            "subject is longer than {MAX_SUBJECT_CHARS} characters"
        )));
    }
    if out.body.len() > MAX_BODY_BYTES {
        return Err(MailError::Invalid(format!(
            "body is {} bytes; the limit is {MAX_BODY_BYTES}",
            out.body.len()
        )));
    }
    let word = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    };
    if !word(&out.kind) {
        return Err(MailError::Invalid(format!(
            "type {:?} must be a word of letters, digits, '_', '-' or '.'",
            out.kind
        )));
    }
    for k in out.meta.keys() {
        if !word(k) {
            return Err(MailError::Invalid(format!(
                "meta key {k:?} must be a word of letters, digits, '_', '-' or '.'"
            )));
        }
    }
    Ok(())
}

/// The meta key naming the worker incarnation a message to a slot was sent to.
pub const TO_INCARNATION: &str = "to_incarnation";

/// Whether a message is for this incarnation of its recipient: mail sent to a worker's slot
/// belongs to the worker that held the slot then (`None`: anyone reading as that address).
pub fn is_for(m: &Message, incarnation: Option<&str>) -> bool {
    match (m.meta.get(TO_INCARNATION), incarnation) {
        (Some(to), Some(me)) => to == me,
        _ => true,
    }
}

/// Sends a message: one `mail.sent` in the recipient's store. Returns its id and recipient.
pub fn send(
    company: &crate::company::Company,
    out: &Outgoing,
    actor: &str,
) -> crate::Result<(String, crate::agent::AgentId)> {
    send_with(company, out, actor, Vec::new())
}

/// [`send`], with `then` appended in the same write after the message, to the store of the
/// recipient (one fsync, and readers never see the message without them).
pub fn send_with(
    company: &crate::company::Company,
    out: &Outgoing,
    actor: &str,
    then: Vec<crate::event::NewEvent>,
) -> crate::Result<(String, crate::agent::AgentId)> {
    validate(out)?;
    // A key pasted into mail would stay in the log for good.
    let masked = Outgoing {
        subject: crate::text::mask_secrets(&out.subject).0,
        body: crate::text::mask_secrets(&out.body).0,
        ..out.clone()
    };
    let out = &masked;
    let (to, store) = resolve_address(company, &out.to)?;
    let mut w = store.lock()?;
    let id = unused_message_id(&store)?;
    let mut meta = out.meta.clone();
    // Mail to a worker's slot is for the worker there now, not the next one to take the slot.
    if let crate::agent::AgentId::Worker { slot, .. } = &to
        && let Some(s) = store.load::<crate::slots::Slots>()?.state.get(*slot)
    {
        meta.insert(TO_INCARNATION.to_string(), s.incarnation.clone());
    }
    let sent = Sent {
        id: id.clone(),
        from: out.from.clone(),
        to: to.to_string(),
        subject: out.subject.clone(),
        body: out.body.clone(),
        kind: out.kind.clone(),
        priority: out.priority,
        meta,
    };
    let mut events = vec![crate::event::ev(types::MAIL_SENT, actor, &sent)?];
    events.extend(then);
    w.append(events)?;
    w.report_warnings();
    Ok((id, to))
}

/// Finds a message by id: in the store of `me` first, then anywhere in the company.
pub fn find(
    company: &crate::company::Company,
    me: &crate::agent::AgentId,
    id: &str,
) -> crate::Result<(crate::store::Store, Message)> {
    let mut stores = Vec::new();
    if let Some(f) = me.factory() {
        stores.push(company.factory(f)?.store()?);
    }
    stores.push(company.store()?);
    for f in company.factories()? {
        stores.push(f.store()?);
    }
    for s in stores {
        if let Some(m) = s.load::<Messages>()?.state.get(id) {
            let m = m.clone();
            return Ok((s, m));
        }
    }
    Err(MailError::NotFound(crate::text::escape_control(id)).into())
}

/// Marks a message read or archived (`mail.read` / `mail.archived`), once.
pub fn mark(
    store: &crate::store::Store,
    id: &str,
    archived: bool,
    actor: &str,
) -> crate::Result<bool> {
    let mut w = store.lock()?;
    let msgs = store.load::<Messages>()?.state;
    let m = msgs
        .get(id)
        .ok_or_else(|| MailError::NotFound(id.to_string()))?;
    let already = if archived {
        m.archived_at.is_some()
    } else {
        m.read_at.is_some()
    };
    if already {
        return Ok(false);
    }
    let ty = if archived {
        types::MAIL_ARCHIVED
    } else {
        types::MAIL_READ
    };
    w.append(vec![crate::event::ev(
        ty,
        actor,
        &Marked { id: id.to_string() },
    )?])?;
    w.report_warnings();
    Ok(true)
}

/// After mail arrives for an agent that runs an agent CLI in tmux and is idle, types a short
/// note telling it to check `co inbox` (the subject and body are never typed).
pub fn nudge_if_idle(
    company: &crate::company::Company,
    to: &crate::agent::AgentId,
    from: &str,
    msg_id: &str,
    actor: &str,
) -> crate::Result<Option<crate::effects::tmux::NudgeOutcome>> {
    // A team's session is a person's shell: nothing is ever typed into it.
    if to.role() == crate::agent::Role::Team {
        return Ok(None);
    }
    let role = to.role().as_str();
    let runtime = match to.factory() {
        Some(f) => company.factory(f)?.settings.roles.of(role).to_string(),
        None => company.settings.roles.of(role).to_string(),
    };
    if runtime == crate::runtime::BUILTIN || to.role() == crate::agent::Role::Operations {
        return Ok(None);
    }
    let tmux = company.tmux();
    let Some(s) = tmux.session(&to.session())? else {
        return Ok(None);
    };
    if s.company != company.tag() || s.pane_dead {
        return Ok(None);
    }
    let idle = chrono::Utc::now().timestamp() - s.activity;
    if idle < 2 {
        return Ok(None);
    }
    let text = format!(
        "You have new mail from {} ({}). Run `co inbox` to read it.",
        crate::text::escape_control(from),
        msg_id
    );
    let rt = crate::actions::nudge::runtime_of(company, to);
    let out = crate::actions::nudge::guarded(
        &tmux,
        &to.session(),
        rt.as_ref(),
        &text,
        crate::actions::nudge::Nudger::Loop,
    )?;
    let store = match to.factory() {
        Some(f) => company.factory(f)?.store()?,
        None => company.store()?,
    };
    crate::actions::launch::record_nudge(&store, actor, to, &out, &text, Some("mail"))?;
    Ok(Some(out))
}
