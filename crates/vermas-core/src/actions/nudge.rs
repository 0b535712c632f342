//! `co nudge AGENT TEXT`: type a message into an agent's session, literally, and check it landed.
//! Text longer than [`MAX_TYPED_CHARS`] goes into a file and the nudge points at it.

use crate::company::Company;
use crate::effects::tmux::NudgeOutcome;
use crate::error::{Error, Result};
use crate::store::StoreError;
use std::path::PathBuf;

/// Longer text is written to a file instead of typed.
pub const MAX_TYPED_CHARS: usize = 400;

/// What a nudge did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Nudge {
    pub agent: String,
    pub session: String,
    pub outcome: NudgeOutcome,
    /// Where the full text went, when it was too long to type.
    pub file: Option<PathBuf>,
}

pub fn nudge(company: &Company, addr: &str, text: &str, actor: &str) -> Result<Nudge> {
    if text.trim().is_empty() {
        return Err(Error::usage("nothing to type: the text is empty"));
    }
    let (agent, store) = crate::mail::resolve_address(company, addr)?;
    let tmux = company.tmux();
    let session = agent.session();
    let info = tmux.session(&session)?.ok_or_else(|| {
        Error::not_found(format!(
            "{agent} has no session {session} (is it running? see co status)"
        ))
    })?;
    if info.company != company.tag() {
        return Err(Error::permission(format!(
            "session {session} was not started by this company; not typing into it"
        )));
    }
    let mut file = None;
    let typed = if text.chars().count() > MAX_TYPED_CHARS || text.contains('\n') {
        let dir = store.dir().join("nudges");
        crate::fsutil::ensure_dir(&dir).map_err(|e| StoreError::io(&dir, e))?;
        let path = dir.join(format!(
            "{}-{}.md",
            agent.file_key(),
            chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ")
        ));
        crate::fsutil::atomic_write(&path, text.as_bytes())
            .map_err(|e| StoreError::io(&path, e))?;
        let t = format!("A message for you is in {}; read it now.", path.display());
        file = Some(path);
        t
    } else {
        text.to_string()
    };
    let outcome = tmux.nudge(&session, &typed)?;
    crate::actions::launch::record_nudge(&store, actor, &agent, &outcome, &typed, Some("manual"))?;
    Ok(Nudge {
        agent: agent.to_string(),
        session,
        outcome,
        file,
    })
}
