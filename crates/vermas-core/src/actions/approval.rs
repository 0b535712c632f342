//! `co approve WO` and `co reject WO --reason R`: a person's decision about a branch that
//! changes protected paths (tests, gate scripts), which QA will not merge on its own.
//!
//! Approving records which head was approved (`work_order.approved`: new commits need a new
//! look), moves the work order back to review and hands it to QA again; rejecting sends it
//! back to a worker as rework with the person's reason. An agent cannot decide for itself:
//! both refuse a caller whose `AGENT_ID` is a worker.

use crate::actions::locked::Locked;
use crate::agent::AgentId;
use crate::company::Company;
use crate::effects::git;
use crate::error::{Error, Result};
use crate::event::{ev, types};
use crate::mail::{self, MailPriority, Sent};
use crate::workorder::{self, Approved, Status, WorkOrder};
use serde::Serialize;
use std::collections::BTreeMap;

/// What `co approve` / `co reject` did.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub work_order: String,
    pub factory: String,
    pub branch: String,
    pub head: String,
    /// The protected paths its branch changes.
    pub paths: Vec<String>,
    pub approved: bool,
}

/// Refuses a worker deciding about its own (or any) work.
fn person_only(actor: &str) -> Result<()> {
    if matches!(AgentId::parse(actor), Ok(AgentId::Worker { .. })) {
        return Err(Error::permission(format!(
            "{actor} is a worker: approving or rejecting protected changes is for a person or the ceo"
        )));
    }
    Ok(())
}

/// The work order, which must wait for approval, with its factory, branch, head and the
/// protected paths it changes.
fn waiting(
    company: &Company,
    id: &str,
) -> Result<(
    WorkOrder,
    crate::company::Factory,
    String,
    String,
    Vec<String>,
)> {
    let home = company.store_for_work_order(id)?;
    let wo = workorder::lookup(&home, id)?.ok_or_else(|| {
        Error::not_found(format!(
            "work order {} not found",
            crate::text::escape_control(id)
        ))
    })?;
    if wo.status != Status::NeedsApproval {
        return Err(Error::conflict(format!(
            "{} is {}, not waiting for approval (only needs_approval work is approved or rejected)",
            wo.id, wo.status
        )));
    }
    let factory = wo
        .factory
        .clone()
        .ok_or_else(|| Error::failure(format!("{} names no factory; dispatch it again", wo.id)))?;
    let f = company.factory(&factory)?;
    let branch = wo
        .branch
        .clone()
        .unwrap_or_else(|| format!("vermas/{}", wo.id));
    let repo = f.git_dir();
    let head = git::rev_parse(&repo, &branch)
        .ok_or_else(|| Error::not_found(format!("branch {branch} of {} is gone", wo.id)))?;
    let changed = git::changed_paths(&repo, f.target_branch(), &branch)?;
    let gate_files = git::files_in_tree(
        &repo,
        f.target_branch(),
        &crate::control::qa::gate_script_candidates(&f.settings.gates),
    );
    let paths = crate::control::qa::protected_changes(
        &changed,
        &f.settings.verification.protected,
        &gate_files,
    );
    Ok((wo, f, branch, head, paths))
}

/// `co approve WO`.
pub fn approve(company: &Company, id: &str, actor: &str) -> Result<Decision> {
    person_only(actor)?;
    let (wo, f, branch, head, paths) = waiting(company, id)?;
    let home = company.store_for_work_order(&wo.id)?;
    let fstore = f.store()?;
    let mut locked = Locked::take(&home, &fstore)?;
    let he = vec![
        ev(
            types::WORK_ORDER_APPROVED,
            actor,
            &Approved {
                id: wo.id.clone(),
                head: head.clone(),
                paths: paths.clone(),
            },
        )?,
        workorder::plan_transition(
            &wo,
            Status::InReview,
            Some(&format!("{actor} approved its changes to protected paths")),
            None,
            actor,
        )?,
    ];
    let mut meta = BTreeMap::new();
    meta.insert("work_order".to_string(), wo.id.clone());
    meta.insert("branch".to_string(), branch.clone());
    meta.insert("head".to_string(), head.clone());
    if let Some(inc) = &wo.incarnation {
        meta.insert("incarnation".to_string(), inc.clone());
    }
    let qa = AgentId::Qa {
        factory: f.name.clone(),
    };
    let fe = vec![ev(
        types::MAIL_SENT,
        actor,
        &Sent {
            id: mail::unused_message_id(&fstore)?,
            from: actor.to_string(),
            to: qa.to_string(),
            subject: format!("READY_FOR_QA {}", wo.id),
            body: format!(
                "{} on {branch} at {head}: its changes to protected paths are approved; merge it if the gates pass.",
                wo.id
            ),
            kind: "READY_FOR_QA".into(),
            priority: crate::loops::qa::mail_priority(wo.priority),
            meta,
        },
    )?];
    locked.append(he, fe)?;
    locked.report_warnings();
    Ok(Decision {
        work_order: wo.id,
        factory: f.name,
        branch,
        head,
        paths,
        approved: true,
    })
}

/// `co reject WO --reason R`.
pub fn reject(company: &Company, id: &str, reason: &str, actor: &str) -> Result<Decision> {
    person_only(actor)?;
    if reason.trim().is_empty() {
        return Err(Error::usage(
            "give the worker a reason: co reject WO --reason \"what to change\"",
        ));
    }
    let (wo, f, branch, head, paths) = waiting(company, id)?;
    let home = company.store_for_work_order(&wo.id)?;
    let fstore = f.store()?;
    let mut locked = Locked::take(&home, &fstore)?;
    let why = format!("{actor} rejected its changes to protected paths: {reason}");
    let he = vec![workorder::plan_transition(
        &wo,
        Status::Rework,
        Some(&why),
        None,
        actor,
    )?];
    let mut meta = BTreeMap::new();
    meta.insert("work_order".to_string(), wo.id.clone());
    let sup = AgentId::Supervisor {
        factory: f.name.clone(),
    };
    let fe = vec![ev(
        types::MAIL_SENT,
        actor,
        &Sent {
            id: mail::unused_message_id(&fstore)?,
            from: actor.to_string(),
            to: sup.to_string(),
            subject: format!("REWORK_REQUEST {}", wo.id),
            body: why,
            kind: "REWORK_REQUEST".into(),
            priority: MailPriority::Normal,
            meta,
        },
    )?];
    locked.append(he, fe)?;
    locked.report_warnings();
    Ok(Decision {
        work_order: wo.id,
        factory: f.name,
        branch,
        head,
        paths,
        approved: false,
    })
}
