//! Typing into an agent: `co nudge AGENT TEXT`, and the nudges of the loops (idle, mail, the
//! first instruction). Text goes in only when the agent's screen allows it ([`allowed`]): the
//! loops type only into an input prompt (or the screen of a runtime VerMAS cannot read), never
//! into a dialog, a question or a busy agent; a person may answer a yes/no question this way,
//! but a dialog such as folder trust is answered by attaching, never by a nudge. Text longer
//! than [`MAX_TYPED_CHARS`] goes into a file and the nudge points at it.

use crate::agent::AgentId;
use crate::company::Company;
use crate::effects::tmux::{NudgeOutcome, Tmux};
use crate::error::{Error, Result};
use crate::runtime::{Runtime, Screen};
use crate::store::StoreError;
use std::path::PathBuf;

/// Who types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nudger {
    /// A loop (idle nudge, mail note, first instruction): only into an input prompt.
    Loop,
    /// A person (`co nudge`): also answers a yes/no question.
    Person,
}

/// Whether text may be typed into a screen read as `screen`, by `who`, for a runtime that
/// `reads_screen` (has patterns for its input prompt). `Err` says what the screen shows.
pub fn allowed(
    screen: &Screen,
    reads_screen: bool,
    who: Nudger,
) -> std::result::Result<(), String> {
    match (screen, who) {
        (Screen::Ready, _) => Ok(()),
        (Screen::Dialog { name, .. }, Nudger::Person) if name == "y/n" => Ok(()),
        (Screen::Dialog { .. }, _) => Err(screen.describe()),
        (Screen::Working, Nudger::Loop) => Err(screen.describe()),
        (Screen::Working, Nudger::Person) => Ok(()),
        // A screen VerMAS cannot read at all (any command): as before, typed in.
        (Screen::Unknown, _) if !reads_screen => Ok(()),
        (Screen::Unknown, Nudger::Person) => Ok(()),
        (Screen::Unknown, Nudger::Loop) => Err("an unrecognised screen".into()),
    }
}

/// The runtime an agent's session runs, when it is an agent CLI (not a built-in loop).
pub fn runtime_of(company: &Company, agent: &AgentId) -> Option<Runtime> {
    let role = agent.role().as_str();
    let (settings, name) = match agent.factory() {
        Some(f) => {
            let f = company.factory(f).ok()?;
            let name = match agent {
                AgentId::Worker { slot, .. } => f
                    .store()
                    .ok()?
                    .load::<crate::slots::Slots>()
                    .ok()?
                    .state
                    .get(*slot)
                    .map(|s| s.runtime.clone())
                    .unwrap_or_else(|| f.settings.roles.worker.clone()),
                _ => f.settings.roles.of(role).to_string(),
            };
            (f.settings, name)
        }
        None => (
            company.settings.clone(),
            company.settings.roles.of(role).to_string(),
        ),
    };
    if name == crate::runtime::BUILTIN {
        return None;
    }
    crate::runtime::resolve(&settings, &name, role).ok()
}

/// Reads the screen and types `text` if [`allowed`]; else types nothing and says why.
pub fn guarded(
    tmux: &Tmux,
    session: &str,
    runtime: Option<&Runtime>,
    text: &str,
    who: Nudger,
) -> Result<NudgeOutcome> {
    let pane = tmux.capture(session, 0)?;
    let (screen, reads) = match runtime {
        Some(rt) => (rt.classify(&pane), rt.reads_screen()),
        None => (
            crate::runtime::screen::classify(&crate::runtime::presets::Screens::NONE, &pane),
            false,
        ),
    };
    if let Err(what) = allowed(&screen, reads, who) {
        return Ok(NudgeOutcome::refused(what));
    }
    Ok(tmux.nudge(session, text)?)
}

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
    let runtime = runtime_of(company, &agent);
    let outcome = guarded(&tmux, &session, runtime.as_ref(), &typed, Nudger::Person)?;
    crate::actions::launch::record_nudge(&store, actor, &agent, &outcome, &typed, Some("manual"))?;
    if let Some(what) = &outcome.refused {
        return Err(Error::conflict(format!(
            "{agent} shows {what}: nothing was typed; answer it yourself (tmux attach -t {session}) or fix the setting behind it (co doctor)"
        )));
    }
    Ok(Nudge {
        agent: agent.to_string(),
        session,
        outcome,
        file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_type_only_into_an_input_prompt_and_a_person_may_answer_a_question() {
        let dialog = |name: &str| Screen::Dialog {
            name: name.into(),
            text: String::new(),
        };
        use Nudger::{Loop, Person};
        let table: Vec<(Screen, bool, Nudger, bool)> = vec![
            (Screen::Ready, true, Loop, true),
            (Screen::Working, true, Loop, false),
            (Screen::Working, true, Person, true),
            (dialog("trust"), true, Loop, false),
            (dialog("trust"), true, Person, false),
            (dialog("y/n"), false, Loop, false),
            (dialog("y/n"), false, Person, true),
            (Screen::Unknown, true, Loop, false),
            (Screen::Unknown, false, Loop, true),
            (Screen::Unknown, true, Person, true),
        ];
        for (screen, reads, who, ok) in table {
            assert_eq!(
                allowed(&screen, reads, who).is_ok(),
                ok,
                "{screen:?} reads={reads} {who:?}"
            );
        }
        assert_eq!(
            allowed(&dialog("bypass"), true, Loop),
            Err("blocked: bypass".to_string())
        );
    }
}
