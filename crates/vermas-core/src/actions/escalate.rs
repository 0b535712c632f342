//! Escalations: urgent mail to the ceo that something needs a person, sent once per key.
//!
//! A loop that decides to escalate may crash before it records having done so, and decides
//! again on its next patrol; the key (what is escalated: `failed:<wo>:<attempts>`,
//! `dialog:<wo>:<incarnation>:<name>`…) is kept in the message, and a key already in the
//! company store is not sent again.

use crate::company::Company;
use crate::error::Result;
use crate::mail::{self, MailPriority, Messages, Outgoing};
use std::collections::BTreeMap;

/// One escalation.
#[derive(Debug, Clone)]
pub struct Escalation<'a> {
    pub key: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    /// Extra meta (`work_order`, `factory`, `agent`…), for people and tools reading the mail.
    pub meta: BTreeMap<String, String>,
}

/// The meta key that holds an escalation's key.
pub const KEY: &str = "escalation";

/// Whether an escalation with this key was sent already.
pub fn already_sent(company: &Company, key: &str) -> Result<bool> {
    Ok(company
        .store()?
        .load::<Messages>()?
        .state
        .all()
        .iter()
        .any(|m| m.kind == "ESCALATION" && m.meta.get(KEY).map(String::as_str) == Some(key)))
}

/// Sends the escalation to the ceo unless one with the same key was sent before. Returns
/// whether it was sent now.
pub fn escalate(company: &Company, e: &Escalation<'_>, from: &str) -> Result<bool> {
    if already_sent(company, e.key)? {
        return Ok(false);
    }
    let mut meta = e.meta.clone();
    meta.insert(KEY.to_string(), e.key.to_string());
    mail::send(
        company,
        &Outgoing {
            from: from.to_string(),
            to: "ceo".into(),
            subject: crate::text::truncate(e.subject, mail::MAX_SUBJECT_CHARS),
            body: e.body.to_string(),
            kind: "ESCALATION".into(),
            priority: MailPriority::Urgent,
            meta,
        },
        from,
    )?;
    Ok(true)
}
