//! Operations (`co operations start | stop | status | logs | run`): the watchdog that keeps every
//! factory's supervisor and QA sessions alive.
//!
//! `run` is the daemon (for systemd, and what `start` runs in the tmux session `operations`). One
//! instance per company: it holds `.vermas/operations.lock` (pid and start time) for its life, so
//! a second one is refused and a `kill -9` frees it. Every patrol (timer, or a change at the
//! company root such as a new factory) it starts missing `supervisor-<f>` and `qa-<f>` sessions,
//! adopts running ones (after a restart nothing is duplicated), restarts failed ones with
//! exponential backoff and jitter, and after `max_restarts` failures within the window stops and
//! sends one ESCALATION to `ceo`. Logs go to `logs/operations.log`, one line per action.

use crate::actions::escalate::{self, Escalation};
use crate::actions::launch;
use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::control::operations as control;
use crate::control::restart::{Policy, Start};
use crate::effects::tmux::{SessionSpec, Tmux};
use crate::error::{Error, Result};
use crate::event::ev;
use crate::event::types;
use crate::loops::daemon::{self, Log, Wake};
use crate::slots::AgentEvent;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn lock_path(company: &Company) -> PathBuf {
    company.root.join(".vermas").join("operations.lock")
}
pub fn status_path(company: &Company) -> PathBuf {
    company.root.join(".vermas").join("operations.json")
}
pub fn log_path(company: &Company) -> PathBuf {
    company.logs_dir().join("operations.log")
}

/// Payload of `operations.started` / `operations.stopped`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpsEvent {
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<String>,
}

/// Health of one managed session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ManagedHealth {
    pub session: String,
    pub alive: bool,
    pub restarts: u32,
    pub recent_failures: usize,
    pub escalated: bool,
}

/// What `operations.json` says (written every patrol).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpsStatus {
    pub pid: u32,
    pub started_at: String,
    pub last_patrol: String,
    pub patrols: u64,
    pub factories: BTreeMap<String, Vec<ManagedHealth>>,
    /// Settings files that do not load (the settings from before the edit are in use).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_errors: Vec<String>,
}

/// Payload of the operations' `patrol.completed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpsPatrol {
    pub agent: String,
    pub factories: usize,
    pub started: Vec<String>,
    pub restarted: Vec<String>,
    pub escalated: Vec<String>,
    pub duration_ms: u64,
}

/// The daemon's state.
pub struct Operations {
    company: Company,
    log: Log,
    memory: control::Memory,
    status: OpsStatus,
    co: PathBuf,
    last_heartbeat: Option<Instant>,
    /// `[sync] auto_sync`: see `crate::sync::AutoSync` (runs beside the patrol, never in it).
    auto_sync: crate::sync::AutoSync,
}

/// The path of the running `co` (what supervisor and QA sessions run).
pub fn co_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("co"))
}

impl Operations {
    pub fn new(company: &Company) -> Operations {
        let mut company = company.clone();
        company.keep_last_good();
        Operations {
            log: Log::new(log_path(&company), &company.settings),
            company,
            memory: control::Memory::default(),
            status: OpsStatus {
                pid: std::process::id(),
                started_at: crate::clock::format_timestamp(chrono::Utc::now()),
                ..Default::default()
            },
            co: co_exe(),
            last_heartbeat: None,
            auto_sync: crate::sync::AutoSync::default(),
        }
    }

    /// The session of a supervisor or QA: the built-in loop of this `co`, or an agent CLI with
    /// the role's context (then also its runtime, for the start nudge).
    fn session_spec(
        &self,
        f: &Factory,
        agent: &AgentId,
        incarnation: &str,
    ) -> Result<(SessionSpec, Option<crate::runtime::Runtime>)> {
        let role = agent.role().as_str();
        let runtime = f.settings.roles.of(role);
        if runtime != crate::runtime::BUILTIN {
            let rt = crate::runtime::resolve(&f.settings, runtime, role)?;
            rt.check_installed()?;
            let cwd = if role == "qa" {
                f.qa_dir()
            } else {
                f.supervisor_dir()
            };
            // Both prompts live beside the supervisor: the QA directory is a git worktree.
            let prompt = f
                .supervisor_dir()
                .join(".vermas")
                .join(format!("{role}-PROMPT.md"));
            let spec =
                launch::agent_cli_session(&self.company, agent, &rt, cwd, &prompt, incarnation)?;
            return Ok((spec, Some(rt)));
        }
        let env = launch::agent_env(&self.company, agent, None, incarnation, None, &[]);
        let p = launch::private_session(
            &self.company,
            incarnation,
            &env,
            vec![
                self.co.display().to_string(),
                role.to_string(),
                "run".to_string(),
                f.name.clone(),
            ],
        )?;
        let spec = SessionSpec {
            name: agent.session(),
            cwd: f.dir.clone(),
            env: p.env,
            argv: p.argv,
            tags: launch::session_tags(&self.company, agent, incarnation),
            log_file: launch::session_log(&self.company, agent, incarnation),
        };
        Ok((spec, None))
    }

    /// One patrol over every factory: observe, decide, apply.
    pub fn patrol(&mut self, heartbeat: bool) -> Result<OpsPatrol> {
        let start = Instant::now();
        if let Some(c) = self.company.reloaded() {
            self.log
                .info("config.reloaded", &[("file", ".vermas/config.toml")]);
            self.company = c;
        }
        let (snap, factories) = self.observe()?;
        let actions = control::decide(&snap, &mut self.memory);
        let mut report = OpsPatrol {
            agent: "operations".into(),
            factories: factories.len(),
            ..Default::default()
        };
        for a in &actions {
            let outcome = match self.apply(a, &factories, &mut report) {
                Ok(()) => control::Outcome::Done,
                Err(e) => {
                    self.log.warn(
                        "action_failed",
                        &[("action", &format!("{a:?}")), ("error", &e.message())],
                    );
                    control::Outcome::Failed(e.message())
                }
            };
            if let control::Action::Start { factory, .. } = a
                && let Some(f) = factories.iter().find(|f| &f.name == factory)
            {
                let policy = Policy::services(&f.settings);
                self.memory
                    .learn(a, &outcome, snap.now, &policy, snap.jitter);
            }
        }
        self.write_status(&snap);
        // Auto-sync of work orders (sync.rs): starts due syncs on a side thread, logs finished ones.
        for done in self.auto_sync.tick(&self.company) {
            match done.result {
                Ok(r) => self.log.info(
                    "sync.done",
                    &[("factory", &done.factory), ("summary", &r.summary())],
                ),
                Err(e) => self
                    .log
                    .warn("sync.failed", &[("factory", &done.factory), ("error", &e)]),
            }
        }
        report.duration_ms = start.elapsed().as_millis() as u64;
        let acted = !report.started.is_empty()
            || !report.restarted.is_empty()
            || !report.escalated.is_empty();
        if acted || heartbeat {
            self.company.store()?.append(vec![ev(
                types::PATROL_COMPLETED,
                "operations",
                &report,
            )?])?;
        }
        Ok(report)
    }

    /// Every factory's supervisor and QA as tmux and their locks show them.
    fn observe(&self) -> Result<(control::Snapshot, Vec<Factory>)> {
        let sessions = self.company.tmux().sessions()?;
        let tag = self.company.tag();
        let mut factories = Vec::new();
        for name in self.company.factory_names() {
            match self.company.factory(&name) {
                Ok(f) => factories.push(f),
                Err(e) => self.log.warn(
                    "factory_unreadable",
                    &[("factory", &name), ("error", &e.message())],
                ),
            }
        }
        let mut services = Vec::new();
        for f in &factories {
            for role in [control::Role::Supervisor, control::Role::Qa] {
                let session = format!("{}-{}", role.as_str(), f.name);
                let seen = match sessions.iter().find(|s| s.name == session) {
                    Some(s) if s.company != tag => control::Seen::Foreign,
                    Some(s) if s.pane_dead => control::Seen::Exited,
                    Some(_) => control::Seen::Running,
                    None => control::Seen::Missing {
                        external: daemon::running(&role.lock_path(&f.work_dir())).is_some(),
                    },
                };
                services.push(control::ServiceObs {
                    factory: f.name.clone(),
                    role,
                    session,
                    seen,
                    restart_on_failure: f.settings.operations.restart_on_failure,
                    policy: Policy::services(&f.settings),
                });
            }
        }
        Ok((
            control::Snapshot {
                now: Instant::now(),
                jitter: crate::control::restart::jitter(),
                services,
                config_errors: self.company.config_errors(),
            },
            factories,
        ))
    }

    fn apply(
        &self,
        a: &control::Action,
        factories: &[Factory],
        report: &mut OpsPatrol,
    ) -> Result<()> {
        use control::Action;
        match a {
            Action::Adopt { session } => self.log.info("adopt", &[("session", session)]),
            Action::Foreign { session } => self.log.warn(
                "foreign_session",
                &[
                    ("session", session),
                    (
                        "why",
                        "a session with this name is not ours; not touching it",
                    ),
                ],
            ),
            Action::Clear { session } => {
                // Ours, but its program exited: clear it away before starting again.
                self.company
                    .tmux()
                    .kill_session(session, &self.company.tag())?;
            }
            Action::Died { session, delay } => self.log.warn(
                "session_died",
                &[
                    ("session", session),
                    ("restart_in_ms", &delay.as_millis().to_string()),
                ],
            ),
            Action::Start { factory, role, how } => {
                self.start_service(factories, factory, *role, *how, report)?
            }
            Action::GiveUp {
                factory,
                role,
                session,
                failures,
            } => self.give_up(factories, factory, *role, session, *failures, report)?,
            Action::Archive => self.archive_old_partitions(factories),
            Action::ConfigInvalid { error } => self.config_invalid(error)?,
        }
        Ok(())
    }

    /// Starts (or restarts) a factory's supervisor or QA session.
    fn start_service(
        &self,
        factories: &[Factory],
        name: &str,
        role: control::Role,
        how: Start,
        report: &mut OpsPatrol,
    ) -> Result<()> {
        let f = find_factory(factories, name)?;
        start_session(self, f, &service_agent(name, role), how)?;
        let session = format!("{}-{name}", role.as_str());
        if how == Start::Again {
            report.restarted.push(session);
        } else {
            report.started.push(session);
        }
        Ok(())
    }

    /// Stops restarting a session that keeps failing, and escalates.
    fn give_up(
        &self,
        factories: &[Factory],
        name: &str,
        role: control::Role,
        session: &str,
        failures: usize,
        report: &mut OpsPatrol,
    ) -> Result<()> {
        self.log.warn(
            "give_up",
            &[("session", session), ("failures", &failures.to_string())],
        );
        let f = find_factory(factories, name)?;
        escalate_service(self, &service_agent(name, role), failures, &f.settings)?;
        report.escalated.push(session.to_string());
        Ok(())
    }

    /// Tells the ceo a settings file does not load (once per error).
    fn config_invalid(&self, error: &str) -> Result<()> {
        self.log.warn("config_invalid", &[("error", error)]);
        let body = format!(
            "A settings file does not load, so the running company keeps the settings it had before the edit:\n\n{error}\n\nFix the file; the loops pick it up at their next patrol (`co config show` says which settings each one uses)."
        );
        escalate::escalate(
            &self.company,
            &Escalation {
                key: &format!("config:{error}"),
                subject: "ESCALATION a settings file is invalid",
                body: &body,
                meta: BTreeMap::new(),
            },
            "operations",
        )?;
        Ok(())
    }

    /// `[events] retention_days`: moves day partitions older than that into
    /// `.work/events/archive/` in the company store and each factory's (never deletes).
    fn archive_old_partitions(&self, factories: &[Factory]) {
        let today = chrono::Utc::now().date_naive();
        let mut stores: Vec<(Result<crate::store::Store>, u32)> = vec![(
            self.company.store(),
            self.company.settings.events.retention_days,
        )];
        for f in factories {
            stores.push((f.store(), f.settings.events.retention_days));
        }
        for (store, days) in stores {
            let cutoff = today - chrono::Duration::days(i64::from(days));
            match store.and_then(|s| Ok((s.archive_before(cutoff)?, s))) {
                Ok((moved, s)) if !moved.is_empty() => self.log.info(
                    "archived",
                    &[
                        ("store", &s.dir().display().to_string()),
                        ("partitions", &moved.join(",")),
                    ],
                ),
                Ok(_) => {}
                Err(e) => self.log.warn("archive_failed", &[("error", &e.message())]),
            }
        }
    }

    /// `operations.json`: what `co operations status` shows.
    fn write_status(&mut self, snap: &control::Snapshot) {
        let mut health: BTreeMap<String, Vec<ManagedHealth>> = BTreeMap::new();
        for obs in &snap.services {
            let m = self.memory.services.get(&obs.session);
            health
                .entry(obs.factory.clone())
                .or_default()
                .push(ManagedHealth {
                    session: obs.session.clone(),
                    alive: matches!(
                        obs.seen,
                        control::Seen::Running | control::Seen::Missing { external: true }
                    ),
                    restarts: m.map(|m| m.restarts.restarts).unwrap_or(0),
                    recent_failures: m.map(|m| m.restarts.failure_count()).unwrap_or(0),
                    escalated: m.is_some_and(|m| m.escalated),
                });
        }
        self.status.factories = health;
        self.status.patrols += 1;
        self.status.last_patrol = crate::clock::format_timestamp(chrono::Utc::now());
        self.status.config_errors = snap.config_errors.clone();
        if let Ok(text) = serde_json::to_vec_pretty(&self.status) {
            let _ = crate::fsutil::atomic_write(&status_path(&self.company), &text);
        }
    }
}

/// A factory of this patrol by name.
fn find_factory<'a>(factories: &'a [Factory], name: &str) -> Result<&'a Factory> {
    factories
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| Error::not_found(format!("factory {name} is gone")))
}

/// The agent of a factory's supervisor or QA.
fn service_agent(factory: &str, role: control::Role) -> AgentId {
    match role {
        control::Role::Supervisor => AgentId::Supervisor {
            factory: factory.to_string(),
        },
        control::Role::Qa => AgentId::Qa {
            factory: factory.to_string(),
        },
    }
}

fn start_session(ops: &Operations, f: &Factory, agent: &AgentId, how: Start) -> Result<()> {
    let incarnation = crate::ids::new_incarnation_id();
    let (spec, rt) = ops.session_spec(f, agent, &incarnation)?;
    let runtime = rt
        .as_ref()
        .map_or(crate::runtime::BUILTIN.to_string(), |rt| rt.name.clone());
    ops.company.tmux().new_session(&spec)?;
    ops.log.info(
        if how == Start::Again {
            "restart"
        } else {
            "start"
        },
        &[
            ("session", &spec.name),
            ("runtime", &runtime),
            ("incarnation", &incarnation),
        ],
    );
    let store = ops.company.store()?;
    store.append(vec![ev(
        if how == Start::Again {
            types::AGENT_RESTARTED
        } else {
            types::AGENT_STARTED
        },
        "operations",
        &AgentEvent {
            agent: agent.to_string(),
            session: spec.name.clone(),
            incarnation,
            role: Some(agent.role().as_str().to_string()),
            runtime: Some(runtime),
            ..Default::default()
        },
    )?])?;
    // An agent CLI that takes its first instruction typed in (aider, opencode) gets it now.
    if let Some(rt) = rt
        && let Some(n) = launch::start_nudge(&ops.company, &store, &rt, agent, "operations")
        && !n.delivered
    {
        ops.log
            .warn("start_nudge_not_delivered", &[("session", &spec.name)]);
    }
    Ok(())
}

/// `agent.escalated`, and one ESCALATION per service and daemon run.
fn escalate_service(
    ops: &Operations,
    agent: &AgentId,
    failures: usize,
    settings: &crate::config::Settings,
) -> Result<()> {
    let window = settings.operations.restart_window_minutes.as_secs_f64() / 60.0;
    ops.company.store()?.append(vec![ev(
        types::AGENT_ESCALATED,
        "operations",
        &AgentEvent {
            agent: agent.to_string(),
            session: agent.session(),
            reason: Some(format!(
                "{failures} failures within {window} min; restarts stopped"
            )),
            attempt: Some(failures as u32),
            ..Default::default()
        },
    )?])?;
    let mut meta = BTreeMap::new();
    meta.insert("agent".to_string(), agent.to_string());
    meta.insert("failures".to_string(), failures.to_string());
    let body = format!(
        "{} failed {failures} times within {window} minutes, so operations stopped restarting it. Look at {} and logs/operations.log, fix the cause, then run `co operations stop && co operations start`.",
        agent.session(),
        ops.company.logs_dir().join(agent.session()).display()
    );
    escalate::escalate(
        &ops.company,
        &Escalation {
            key: &format!(
                "service:{}:{}:{}",
                agent.session(),
                ops.status.pid,
                ops.status.started_at
            ),
            subject: &format!("ESCALATION {} keeps failing", agent.session()),
            body: &body,
            meta,
        },
        "operations",
    )?;
    Ok(())
}

/// `co operations run`: the daemon, in the foreground.
pub fn run(company: &Company) -> Result<()> {
    let _lock = daemon::InstanceLock::acquire(&lock_path(company), "operations")?;
    company.tmux().check_version()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let shutdown = daemon::handle_signals(tx.clone())?;
    let _watcher = daemon::watch(&[company.root.clone(), company.root.join(".vermas")], tx);
    let mut ops = Operations::new(company);
    let adopted: Vec<String> = company
        .tmux()
        .sessions()?
        .into_iter()
        .filter(|s| s.company == company.tag() && (s.role == "supervisor" || s.role == "qa"))
        .map(|s| s.name)
        .collect();
    company.store()?.append(vec![ev(
        types::OPERATIONS_STARTED,
        "operations",
        &OpsEvent {
            pid: std::process::id(),
            reason: None,
            adopted: adopted.clone(),
        },
    )?])?;
    ops.log.info(
        "started",
        &[
            ("pid", &std::process::id().to_string()),
            ("adopting", &adopted.join(",")),
        ],
    );
    let mut wake = Wake::Timer;
    loop {
        let interval = ops.company.settings.operations.patrol_interval_seconds;
        let heartbeat = wake == Wake::Timer
            && ops
                .last_heartbeat
                .is_none_or(|t| t.elapsed() >= interval.max(Duration::from_secs(60)));
        if heartbeat {
            ops.last_heartbeat = Some(Instant::now());
        }
        if let Err(e) = ops.patrol(heartbeat) {
            ops.log.warn("patrol_failed", &[("error", &e.message())]);
        }
        wake = daemon::next_wake(&rx, interval, &shutdown);
        if wake == Wake::Shutdown {
            break;
        }
    }
    ops.log
        .info("stopped", &[("pid", &std::process::id().to_string())]);
    company.store()?.append(vec![ev(
        types::OPERATIONS_STOPPED,
        "operations",
        &OpsEvent {
            pid: std::process::id(),
            reason: Some("signal".into()),
            adopted: Vec::new(),
        },
    )?])?;
    let _ = std::fs::remove_file(status_path(company));
    Ok(())
}

/// What `co operations start` did.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub pid: u32,
    pub session: String,
    pub attach: String,
}

/// `co operations start`: runs `co operations run` in the tagged session `operations`.
pub fn start(company: &Company) -> Result<Started> {
    let tmux = company.tmux();
    tmux.check_version()?;
    // One start at a time: a second `co operations start` waits here until the first one's
    // daemon holds its lock, then finds it running. Without this, the second could take the
    // first's new session for a stale one and kill it, and neither would run.
    let guard_path = company.root.join(".vermas").join("operations.start.lock");
    let guard = crate::fsutil::open_rw(&guard_path).map_err(|e| StoreError::io(&guard_path, e))?;
    guard.lock().map_err(|e| StoreError::io(&guard_path, e))?;
    if let Some(h) = daemon::running(&lock_path(company)) {
        return Err(Error::conflict(format!(
            "operations is already running (pid {} since {})",
            h.pid, h.started_at
        )));
    }
    let agent = AgentId::Operations;
    let session = agent.session();
    if let Some(s) = tmux.session(&session)? {
        if s.company != company.tag() {
            return Err(Error::conflict(format!(
                "a tmux session named {session} exists and is not this company's; stop it or use a private server ([tmux] socket)"
            )));
        }
        // Ours, but the daemon in it is not running: clear it.
        tmux.kill_session(&session, &company.tag())?;
    }
    let incarnation = crate::ids::new_incarnation_id();
    let logs = company.logs_dir().join("operations");
    std::fs::create_dir_all(&logs).map_err(|e| StoreError::io(&logs, e))?;
    let console = logs.join(format!("{incarnation}.log"));
    let env = launch::agent_env(company, &agent, None, &incarnation, None, &[]);
    let p = launch::private_session(
        company,
        &incarnation,
        &env,
        vec![
            co_exe().display().to_string(),
            "operations".into(),
            "run".into(),
        ],
    )?;
    if let Err(e) = tmux.new_session(&SessionSpec {
        name: session.clone(),
        cwd: company.root.clone(),
        env: p.env,
        argv: p.argv,
        tags: launch::session_tags(company, &agent, &incarnation),
        log_file: Some(console.clone()),
    }) {
        let _ = std::fs::remove_file(&p.file);
        return Err(e.into());
    }
    wait_for_daemon(company, &tmux, session, &console)
}

/// Waits (up to 10 s) for the daemon started in `session` to hold its lock; if its session
/// ends first, or it never does, says why with the last line of its console.
fn wait_for_daemon(
    company: &Company,
    tmux: &Tmux,
    session: String,
    console: &Path,
) -> Result<Started> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(h) = daemon::running(&lock_path(company)) {
            return Ok(Started {
                pid: h.pid,
                attach: tmux.attach_hint(&session),
                session,
            });
        }
        if Instant::now() > deadline || !tmux.has_session(&session) {
            std::thread::sleep(Duration::from_millis(100));
            let out = std::fs::read_to_string(console).unwrap_or_default();
            let last = out
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            return Err(Error::failure(format!(
                "operations did not start: {}",
                crate::text::escape_control(last.trim())
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What `co operations stop` did.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    pub pid: Option<u32>,
    pub forced: bool,
    pub sessions: Vec<String>,
}

/// `co operations stop`: ends the daemon (SIGTERM, then SIGKILL after 10 s), then the
/// supervisor and QA sessions of this company. Workers keep running.
pub fn stop(company: &Company, actor: &str) -> Result<Stopped> {
    let tmux = company.tmux();
    let holder = daemon::running(&lock_path(company));
    let mut forced = false;
    if let Some(h) = &holder {
        crate::effects::process::signal(h.pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while daemon::running(&lock_path(company)).is_some() {
            if Instant::now() > deadline {
                crate::effects::process::signal(h.pid, libc::SIGKILL);
                forced = true;
                std::thread::sleep(Duration::from_millis(200));
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        if forced {
            company.store()?.append(vec![ev(
                types::OPERATIONS_STOPPED,
                actor,
                &OpsEvent {
                    pid: h.pid,
                    reason: Some("killed by co operations stop (did not stop within 10 s)".into()),
                    adopted: Vec::new(),
                },
            )?])?;
        }
    }
    let mut stopped = Vec::new();
    for s in tmux.sessions()? {
        if s.company == company.tag()
            && (s.role == "supervisor" || s.role == "qa" || s.role == "operations")
            && tmux.kill_session(&s.name, &company.tag()).is_ok()
        {
            stopped.push(s.name);
        }
    }
    let _ = std::fs::remove_file(status_path(company));
    Ok(Stopped {
        pid: holder.map(|h| h.pid),
        forced,
        sessions: stopped,
    })
}

/// What `co operations status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub running: bool,
    pub pid: Option<u32>,
    pub started_at: Option<String>,
    pub uptime_seconds: Option<i64>,
    pub last_patrol: Option<String>,
    pub patrols: u64,
    pub factories: BTreeMap<String, Vec<ManagedHealth>>,
}

pub fn status(company: &Company) -> Result<Report> {
    let holder = daemon::running(&lock_path(company));
    let file: Option<OpsStatus> = std::fs::read(status_path(company))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let sessions = company.tmux().sessions()?;
    let mut factories = file
        .as_ref()
        .map(|f| f.factories.clone())
        .unwrap_or_default();
    // Always show the live session state, even when the daemon is down.
    for name in company.factory_names() {
        let list = factories.entry(name.clone()).or_default();
        for session in [format!("supervisor-{name}"), format!("qa-{name}")] {
            let alive = sessions
                .iter()
                .any(|s| s.name == session && s.company == company.tag() && !s.pane_dead);
            match list.iter_mut().find(|h| h.session == session) {
                Some(h) => h.alive = alive,
                None => list.push(ManagedHealth {
                    session,
                    alive,
                    ..Default::default()
                }),
            }
        }
    }
    let started = holder.as_ref().map(|h| h.started_at.clone());
    Ok(Report {
        running: holder.is_some(),
        pid: holder.as_ref().map(|h| h.pid),
        uptime_seconds: started
            .as_deref()
            .and_then(crate::clock::parse_timestamp)
            .map(|t| (chrono::Utc::now() - t).num_seconds()),
        started_at: started,
        last_patrol: file
            .as_ref()
            .filter(|_| holder.is_some())
            .map(|f| f.last_patrol.clone()),
        patrols: file.map(|f| f.patrols).unwrap_or(0),
        factories,
    })
}
