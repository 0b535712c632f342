//! `co status` and `co factory status`: factories, agents and their sessions, slots, queues,
//! unread mail, work order counts.

use crate::actions::worker::{self, WorkerView};
use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::control::operations::Role;
use crate::effects::tmux::SessionInfo;
use crate::error::Result;
use crate::mail::Messages;
use crate::workorder::WorkOrders;
use serde::Serialize;
use std::collections::BTreeMap;

/// A long-running agent's session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionState {
    pub session: String,
    pub alive: bool,
    /// Seconds since it started, when alive.
    pub uptime_seconds: Option<i64>,
    /// Running outside its tmux session (started by hand, as the guide's "manual service
    /// start"): the process that holds its lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

fn session_state(sessions: &[SessionInfo], company: &Company, name: &str) -> SessionState {
    let now = chrono::Utc::now().timestamp();
    let s = sessions
        .iter()
        .find(|s| s.name == name && s.company == company.tag() && !s.pane_dead);
    SessionState {
        session: name.to_string(),
        alive: s.is_some(),
        uptime_seconds: s.map(|s| now - s.created),
        pid: None,
    }
}

/// A daemon's state: its session, else the process holding its instance lock (`lock`), so a
/// supervisor, QA or operations daemon started by hand in a terminal shows as running.
fn daemon_state(
    sessions: &[SessionInfo],
    company: &Company,
    name: &str,
    lock: &std::path::Path,
) -> SessionState {
    let mut s = session_state(sessions, company, name);
    if !s.alive
        && let Some(h) = crate::loops::daemon::running(lock)
    {
        s.alive = true;
        s.pid = Some(h.pid);
        s.uptime_seconds = crate::clock::parse_timestamp(&h.started_at)
            .map(|t| (chrono::Utc::now() - t).num_seconds().max(0));
    }
    s
}

/// A queued work order.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    pub id: String,
    pub priority: u8,
    pub title: String,
}

/// One factory.
#[derive(Debug, Clone, Serialize)]
pub struct FactoryStatus {
    pub name: String,
    pub prefix: String,
    pub target_branch: String,
    pub supervisor: SessionState,
    pub qa: SessionState,
    /// What QA is merging and gating now (from `.work/.qa.json`, while its session runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qa_progress: Option<crate::loops::qa::Progress>,
    pub slots_total: u32,
    pub slots_used: u32,
    pub slots_free: Vec<u32>,
    pub workers: Vec<WorkerView>,
    pub queue: Vec<Queued>,
    pub work_orders: BTreeMap<String, usize>,
    /// Unread mail per address in this factory.
    pub unread: BTreeMap<String, usize>,
}

/// The whole company.
#[derive(Debug, Clone, Serialize)]
pub struct CompanyStatus {
    pub name: String,
    pub root: String,
    pub tmux: String,
    pub operations: SessionState,
    pub ceo: SessionState,
    pub ceo_unread: usize,
    pub work_orders: BTreeMap<String, usize>,
    pub factories: Vec<FactoryStatus>,
}

fn counts(store: &crate::store::Store) -> Result<BTreeMap<String, usize>> {
    let mut m = BTreeMap::new();
    for w in store.load::<WorkOrders>()?.state.all() {
        *m.entry(w.status.to_string()).or_default() += 1;
    }
    Ok(m)
}

pub fn factory_status(
    company: &Company,
    f: &Factory,
    sessions: &[SessionInfo],
) -> Result<FactoryStatus> {
    let store = f.store()?;
    let workers = worker::list(company, std::slice::from_ref(f))?;
    let used: Vec<u32> = workers.iter().map(|w| w.slot).collect();
    let slots_free: Vec<u32> = (0..f.max_slots())
        .filter(|n| {
            !used.contains(n)
                && !sessions
                    .iter()
                    .any(|s| s.name == AgentId::worker(&f.name, *n).session())
        })
        .collect();
    let queue = crate::actions::dispatch::queued_for(company, &f.name)?
        .into_iter()
        .map(|w| Queued {
            id: w.id,
            priority: w.priority,
            title: w.title,
        })
        .collect();
    let msgs = store.load::<Messages>()?.state;
    let mut unread = BTreeMap::new();
    for m in msgs.all() {
        if m.read_at.is_none() && m.archived_at.is_none() {
            *unread.entry(m.to.clone()).or_default() += 1;
        }
    }
    let qa = daemon_state(
        sessions,
        company,
        &format!("qa-{}", f.name),
        &Role::Qa.lock_path(&f.work_dir()),
    );
    let qa_progress = qa
        .alive
        .then(|| crate::fsutil::read_no_follow(&f.work_dir().join(".qa.json")).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice::<crate::loops::qa::QaStatus>(&b).ok())
        .and_then(|s| s.progress);
    Ok(FactoryStatus {
        name: f.name.clone(),
        prefix: f.prefix().to_string(),
        target_branch: f.target_branch().to_string(),
        supervisor: daemon_state(
            sessions,
            company,
            &format!("supervisor-{}", f.name),
            &Role::Supervisor.lock_path(&f.work_dir()),
        ),
        qa,
        qa_progress,
        slots_total: f.max_slots(),
        slots_used: f.max_slots() - slots_free.len() as u32,
        slots_free,
        workers,
        queue,
        work_orders: counts(&store)?,
        unread,
    })
}

pub fn company_status(company: &Company) -> Result<CompanyStatus> {
    let tmux = company.tmux();
    let sessions = tmux.sessions()?;
    let store = company.store()?;
    let mut factories = Vec::new();
    for f in company.factories()? {
        factories.push(factory_status(company, &f, &sessions)?);
    }
    Ok(CompanyStatus {
        name: company.name().to_string(),
        root: company.root.display().to_string(),
        tmux: match tmux.socket_setting() {
            Some(s) => format!("private server {s}"),
            None => "default server".to_string(),
        },
        operations: daemon_state(
            &sessions,
            company,
            "operations",
            &crate::loops::operations::lock_path(company),
        ),
        ceo: session_state(&sessions, company, "ceo"),
        ceo_unread: store.load::<Messages>()?.state.unread_count("ceo"),
        work_orders: counts(&store)?,
        factories,
    })
}
