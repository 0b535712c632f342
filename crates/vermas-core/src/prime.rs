//! `co prime`: everything an agent needs at the start of a session (for agent hooks such as a
//! session-start hook): its role prompt, where it is, its assignment and its unread mail.

use crate::agent::AgentId;
use crate::company::Company;
use crate::error::Result;
use crate::mail::Messages;
use std::fmt::Write;

pub fn prime(company: &Company, me: &AgentId) -> Result<String> {
    let role = me.role().as_str();
    let mut out = String::new();
    out.push_str(crate::runtime::role_prompt(role));
    let _ = writeln!(out, "\n---\n\n## Where you are\n");
    let _ = writeln!(out, "- Agent: {me}");
    let _ = writeln!(
        out,
        "- Company: {} ({})",
        company.name(),
        company.root.display()
    );
    let (store, assignment_path) = match me.factory() {
        Some(f) => {
            let f = company.factory(f)?;
            let _ = writeln!(
                out,
                "- Factory: {} (prefix {}, target branch {})",
                f.name,
                f.prefix(),
                f.target_branch()
            );
            (f.store()?, f.assignment_path(me))
        }
        None => (
            company.store()?,
            company
                .root
                .join(".work")
                .join(format!(".assignment-{}", me.file_key())),
        ),
    };
    let _ = writeln!(out, "\n## Assignment\n");
    match crate::assignment::read(&assignment_path)? {
        Some(a) => {
            let _ = writeln!(
                out,
                "ASSIGNED: {} \"{}\" (priority P{}, attempt {}). Start now: `wo show {}`.",
                a.work_order,
                crate::text::escape_control(&a.title),
                a.priority,
                a.attempt,
                a.work_order
            );
        }
        None => {
            let _ = writeln!(out, "Assignment is empty.");
        }
    }
    let msgs = store.load::<Messages>()?.state;
    let incarnation = std::env::var("VERMAS_INCARNATION").ok();
    let inbox: Vec<_> = msgs
        .inbox(&me.to_string(), false)
        .into_iter()
        .filter(|m| crate::mail::is_for(m, incarnation.as_deref()))
        .collect();
    let _ = writeln!(out, "\n## Unread mail ({})\n", inbox.len());
    for m in inbox {
        let _ = writeln!(
            out,
            "- {} [{}] from {}: {}",
            m.id,
            m.priority.as_str(),
            crate::text::escape_control(&m.from),
            crate::text::escape_control(&m.subject)
        );
    }
    Ok(out)
}

/// `co ceo`: starts the CEO session (cwd `<company>/ceo`) unless it runs; returns the session
/// name and whether it was started now.
pub fn start_ceo(company: &Company, actor: &str) -> Result<(String, bool)> {
    let agent = AgentId::Ceo;
    let tmux = company.tmux();
    tmux.check_version()?;
    let session = agent.session();
    if let Some(s) = tmux.session(&session)? {
        if s.company != company.tag() {
            return Err(crate::Error::permission(format!(
                "a tmux session named {session} exists and is not this company's; not touching it"
            )));
        }
        return Ok((session, false));
    }
    let rt_name = company.settings.roles.ceo.clone();
    let rt = crate::runtime::resolve(&company.settings, &rt_name, "ceo")?;
    rt.check_installed()?;
    let dir = company.root.join("ceo");
    let prompt = dir.join(".vermas").join("PROMPT.md");
    let incarnation = crate::ids::new_incarnation_id();
    tmux.new_session(&crate::actions::launch::agent_cli_session(
        company,
        &agent,
        &rt,
        dir,
        &prompt,
        &incarnation,
    )?)?;
    company.store()?.append(vec![crate::event::ev(
        crate::event::types::AGENT_STARTED,
        actor,
        &crate::slots::AgentEvent {
            agent: agent.to_string(),
            session: session.clone(),
            incarnation,
            role: Some("ceo".into()),
            runtime: Some(rt.name.clone()),
            ..Default::default()
        },
    )?])?;
    crate::actions::launch::start_nudge(company, &company.store()?, &rt, &agent, actor);
    Ok((session, true))
}
