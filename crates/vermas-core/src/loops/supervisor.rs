//! The supervisor (`co supervisor run FACTORY`): keeps one factory's workers moving.
//!
//! Every patrol (and at once when a store changes):
//! - `WORKER_DONE` → the branch exists, has commits beyond the target, the work order is in
//!   review and the message's incarnation is the work order's current one (a stale message
//!   never acts on a newer worker) → `READY_FOR_QA` to `<f>/qa`;
//! - workers: idle past `idle_timeout_minutes` → one nudge per idle spell; stuck past
//!   `stuck_timeout_minutes` → killed (worktree and branch kept) and re-queued; a dead session
//!   that still has an assignment → restarted with backoff, and given up (re-queued) when it
//!   keeps dying;
//! - rework and queued work is dispatched as slots free up (priority, then age); after
//!   `[worker] max_attempts` it becomes `failed` and the CEO gets one `ESCALATION`;
//! - `patrol.completed` with what it checked and did.

use crate::actions::dispatch::{self, DispatchOutcome, DispatchRequest, ev};
use crate::actions::worker::{self, WorkerStatus};
use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::effects::git;
use crate::error::Result;
use crate::event::types;
use crate::loops::daemon::{self, Backoff, Log, Wake};
use crate::mail::{self, MailPriority, Message, Messages, Outgoing};
use crate::slots::{AgentEvent, Slots};
use crate::workorder::{self, Status, WorkOrder, WorkOrders};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Payload of `patrol.completed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PatrolReport {
    pub agent: String,
    pub checked_workers: usize,
    pub mail: usize,
    pub ready_for_qa: Vec<String>,
    pub ignored: Vec<String>,
    pub nudged: Vec<String>,
    pub killed: Vec<String>,
    pub restarted: Vec<String>,
    pub dispatched: Vec<String>,
    pub failed: Vec<String>,
    pub duration_ms: u64,
}

impl PatrolReport {
    fn did_something(&self) -> bool {
        self.mail > 0
            || !self.nudged.is_empty()
            || !self.killed.is_empty()
            || !self.restarted.is_empty()
            || !self.dispatched.is_empty()
            || !self.failed.is_empty()
    }
}

/// A running supervisor.
pub struct Supervisor<'a> {
    company: &'a Company,
    name: String,
    actor: String,
    log: Log,
    /// Restart backoff per (slot, work order).
    respawn: HashMap<(u32, String), (Backoff, bool)>,
    last_heartbeat: Option<Instant>,
}

impl<'a> Supervisor<'a> {
    pub fn new(company: &'a Company, factory: &str) -> Result<Supervisor<'a>> {
        let f = company.factory(factory)?;
        Ok(Supervisor {
            company,
            name: f.name.clone(),
            actor: AgentId::Supervisor {
                factory: f.name.clone(),
            }
            .to_string(),
            log: Log::new(
                company
                    .logs_dir()
                    .join(format!("supervisor-{}.log", f.name)),
                &f.settings,
            ),
            respawn: HashMap::new(),
            last_heartbeat: None,
        })
    }

    /// One patrol. `heartbeat` forces a `patrol.completed` even when nothing happened.
    pub fn patrol(&mut self, heartbeat: bool) -> Result<PatrolReport> {
        let start = Instant::now();
        let f = self.company.factory(&self.name)?;
        let mut r = PatrolReport {
            agent: self.actor.clone(),
            ..Default::default()
        };
        self.handle_mail(&f, &mut r)?;
        self.check_workers(&f, &mut r)?;
        self.schedule(&f, &mut r)?;
        r.duration_ms = start.elapsed().as_millis() as u64;
        if r.did_something() || heartbeat {
            f.store()?
                .append(vec![ev(types::PATROL_COMPLETED, &self.actor, &r)?])?;
        }
        Ok(r)
    }

    fn handle_mail(&mut self, f: &Factory, r: &mut PatrolReport) -> Result<()> {
        let store = f.store()?;
        let inbox: Vec<Message> = store
            .load::<Messages>()?
            .state
            .inbox(&self.actor, false)
            .into_iter()
            .cloned()
            .collect();
        for m in inbox {
            r.mail += 1;
            match m.kind.as_str() {
                "WORKER_DONE" => self.worker_done(f, &m, r)?,
                "REWORK_REQUEST" => {
                    // The work order is in `rework` already (QA moved it); scheduling sends it
                    // back to a worker with the failure attached.
                    self.log.info(
                        "supervisor.rework_requested",
                        &[(
                            "work_order",
                            m.meta.get("work_order").map(String::as_str).unwrap_or(""),
                        )],
                    );
                }
                other => {
                    self.log.info(
                        "supervisor.mail",
                        &[("type", other), ("from", &m.from), ("id", &m.id)],
                    );
                }
            }
            mail::mark(&store, &m.id, false, &self.actor)?;
        }
        Ok(())
    }

    fn worker_done(&mut self, f: &Factory, m: &Message, r: &mut PatrolReport) -> Result<()> {
        let get = |k: &str| m.meta.get(k).cloned().unwrap_or_default();
        let (wo_id, branch, incarnation) = (get("work_order"), get("branch"), get("incarnation"));
        let ignore = |s: &mut Self, r: &mut PatrolReport, why: String| {
            s.log.warn(
                "supervisor.ignored_done",
                &[("work_order", &wo_id), ("why", &why)],
            );
            r.ignored.push(format!("{wo_id}: {why}"));
        };
        let home = match self.company.store_for_work_order(&wo_id) {
            Ok(h) => h,
            Err(e) => {
                ignore(self, r, e.message().to_string());
                return Ok(());
            }
        };
        let Some(wo) = home.load::<WorkOrders>()?.state.get(&wo_id) else {
            ignore(self, r, "unknown work order".into());
            return Ok(());
        };
        if wo.incarnation.as_deref() != Some(incarnation.as_str()) {
            ignore(
                self,
                r,
                format!(
                    "stale: sent by {incarnation}, but the work order belongs to {}",
                    wo.incarnation.as_deref().unwrap_or("nobody")
                ),
            );
            return Ok(());
        }
        if wo.status != Status::InReview {
            ignore(self, r, format!("it is {}, not in review", wo.status));
            return Ok(());
        }
        let repo = f.git_dir();
        let problem = if !git::branch_exists(&repo, &branch) {
            Some(format!("branch {branch} does not exist"))
        } else if git::commits_ahead(&repo, f.target_branch(), &branch).unwrap_or(0) == 0 {
            Some(format!(
                "{branch} has no commits beyond {}",
                f.target_branch()
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            let e = workorder::plan_transition(&wo, Status::Rework, Some(&p), None, &self.actor)?;
            home.append(vec![e])?;
            ignore(self, r, p);
            return Ok(());
        }
        let mut meta = m.meta.clone();
        meta.insert("attempt".into(), wo.attempts.to_string());
        let qa = AgentId::Qa {
            factory: f.name.clone(),
        };
        mail::send(
            self.company,
            &Outgoing {
                from: self.actor.clone(),
                to: qa.to_string(),
                subject: format!("READY_FOR_QA {wo_id}"),
                body: format!(
                    "{wo_id} on {branch} passed the supervisor's checks; merge it if the gates pass."
                ),
                kind: "READY_FOR_QA".into(),
                priority: crate::loops::qa::mail_priority(wo.priority),
                meta,
            },
            &self.actor,
        )?;
        f.store()?.append(vec![ev(
            types::QA_ENQUEUED,
            &self.actor,
            &crate::loops::qa::QaEvent {
                work_order: wo_id.clone(),
                branch: branch.clone(),
                head: m.meta.get("head").cloned(),
                priority: Some(crate::loops::qa::mail_priority(wo.priority)),
                ..Default::default()
            },
        )?])?;
        self.log.info(
            "supervisor.ready_for_qa",
            &[("work_order", &wo_id), ("branch", &branch)],
        );
        r.ready_for_qa.push(wo_id);
        Ok(())
    }

    fn check_workers(&mut self, f: &Factory, r: &mut PatrolReport) -> Result<()> {
        let tmux = self.company.tmux();
        let sessions = tmux.sessions()?;
        let slots = f.store()?.load::<Slots>()?.state;
        let now = chrono::Utc::now().timestamp();
        let mono = Instant::now();
        let live_keys: Vec<(u32, String)> = slots
            .all()
            .map(|s| (s.slot, s.work_order.clone()))
            .collect();
        self.respawn.retain(|k, _| live_keys.contains(k));
        for slot in slots.all() {
            r.checked_workers += 1;
            let agent = AgentId::worker(&f.name, slot.slot);
            let sess = sessions.iter().find(|s| s.name == agent.session());
            let (status, idle) = worker::classify(f, slot, sess, now);
            let key = (slot.slot, slot.work_order.clone());
            match status {
                WorkerStatus::Dead => {
                    let entry = self
                        .respawn
                        .entry(key)
                        .or_insert_with(|| (Backoff::from_settings(&f.settings), false));
                    if !entry.1 {
                        match entry.0.failed(mono) {
                            Some(delay) => {
                                entry.1 = true;
                                self.log.info(
                                    "supervisor.worker_dead",
                                    &[
                                        ("agent", &agent.to_string()),
                                        ("restart_in_ms", &delay.as_millis().to_string()),
                                    ],
                                );
                            }
                            None => {
                                let why = format!(
                                    "agent keeps exiting ({} restarts within {} min)",
                                    entry.0.failure_count(),
                                    f.settings.operations.restart_window_minutes.as_secs_f64()
                                        / 60.0
                                );
                                self.log.warn(
                                    "supervisor.give_up_worker",
                                    &[("agent", &agent.to_string()), ("why", &why)],
                                );
                                if self.kill(f, slot, &why)? {
                                    r.killed.push(format!("{agent}: {why}"));
                                }
                                continue;
                            }
                        }
                    }
                    if entry.1 && entry.0.may_start(mono) {
                        entry.1 = false;
                        entry.0.started(mono);
                        let which = worker::WorkerRef {
                            slot: slot.slot,
                            incarnation: Some(&slot.incarnation),
                        };
                        match worker::spawn(self.company, f, Some(which), &self.actor) {
                            Ok(s) => {
                                self.log.info(
                                    "supervisor.respawned",
                                    &[
                                        ("agent", &agent.to_string()),
                                        ("incarnation", &s.incarnation),
                                    ],
                                );
                                r.restarted.push(agent.to_string());
                            }
                            Err(e) => {
                                self.log.warn(
                                    "supervisor.respawn_failed",
                                    &[("agent", &agent.to_string()), ("error", &e.message())],
                                );
                            }
                        }
                    }
                }
                WorkerStatus::Stuck => {
                    let why = format!("stuck: no activity for {}", crate::clock::human_age(idle));
                    self.log.warn(
                        "supervisor.kill_stuck",
                        &[
                            ("agent", &agent.to_string()),
                            ("work_order", &slot.work_order),
                            ("idle_s", &idle.to_string()),
                        ],
                    );
                    if self.kill(f, slot, &why)? {
                        r.killed.push(format!("{agent}: {why}"));
                    }
                }
                WorkerStatus::Idle => {
                    if let Some(e) = self.respawn.get_mut(&key) {
                        e.0.alive(mono);
                    }
                    let nudged_since = slot
                        .nudged_at
                        .as_deref()
                        .and_then(crate::clock::parse_timestamp)
                        .map(|t| t.timestamp())
                        .is_some_and(|t| t >= worker::last_activity(slot, sess));
                    if nudged_since {
                        continue;
                    }
                    let text = "You have been idle for a while. Run `co assignment` and carry on with your work order, or `co worker done` if it is finished and committed.";
                    let out = match tmux.nudge(&agent.session(), text) {
                        Ok(o) => o,
                        Err(e) => {
                            // The session may have ended between listing and typing.
                            self.log.warn(
                                "supervisor.nudge_failed",
                                &[("agent", &agent.to_string()), ("error", &e.to_string())],
                            );
                            continue;
                        }
                    };
                    let store = f.store()?;
                    store.append(vec![ev(
                        types::AGENT_IDLE,
                        &self.actor,
                        &AgentEvent {
                            agent: agent.to_string(),
                            session: agent.session(),
                            incarnation: slot.incarnation.clone(),
                            work_order: Some(slot.work_order.clone()),
                            slot: Some(slot.slot),
                            reason: Some(format!("idle for {}", crate::clock::human_age(idle))),
                            ..Default::default()
                        },
                    )?])?;
                    dispatch::record_nudge(&store, &self.actor, &agent, &out, text, Some("idle"))?;
                    self.log.info(
                        "supervisor.nudged_idle",
                        &[("agent", &agent.to_string()), ("idle_s", &idle.to_string())],
                    );
                    r.nudged.push(agent.to_string());
                }
                WorkerStatus::Running => {
                    if let Some(e) = self.respawn.get_mut(&key) {
                        e.0.alive(mono);
                    }
                }
            }
        }
        Ok(())
    }

    /// Rework and queued work of this factory: fail what used up its attempts, dispatch the
    /// rest while slots are free (priority, then age).
    fn schedule(&mut self, f: &Factory, r: &mut PatrolReport) -> Result<()> {
        let max = f.settings.worker.max_attempts;
        let mut candidates = work_for(self.company, &f.name, &[Status::Rework, Status::Queued])?;
        workorder::sort_by_priority_then_age(&mut candidates);
        let slots = f.store()?.load::<Slots>()?.state;
        for wo in candidates {
            if slots.by_work_order(&wo.id).is_some() {
                continue;
            }
            if wo.attempts >= max {
                self.fail(f, &wo, max)?;
                r.failed.push(wo.id.clone());
                continue;
            }
            if wo.status == Status::Rework {
                match dispatch::dispatch(
                    self.company,
                    &DispatchRequest {
                        work_order: wo.id.clone(),
                        factory: f.name.clone(),
                        runtime: None,
                        no_queue: false,
                        actor: self.actor.clone(),
                    },
                ) {
                    Ok(o) => note_dispatch(&o, r),
                    Err(e) => self.log.warn(
                        "supervisor.dispatch_failed",
                        &[("work_order", &wo.id), ("error", &e.message())],
                    ),
                }
            }
        }
        match dispatch::drain_queue(self.company, &f.name, &self.actor) {
            Ok(list) => list.iter().for_each(|o| note_dispatch(o, r)),
            Err(e) => self
                .log
                .warn("supervisor.drain_failed", &[("error", &e.message())]),
        }
        Ok(())
    }

    /// Kills the worker this patrol looked at (keeping unmerged work) and re-queues its work
    /// order with the attempt counted. `false` when that worker has finished or been replaced
    /// meanwhile: the slot's new holder is left alone.
    fn kill(&self, f: &Factory, slot: &crate::slots::Slot, why: &str) -> Result<bool> {
        let which = worker::WorkerRef {
            slot: slot.slot,
            incarnation: Some(&slot.incarnation),
        };
        match worker::kill(self.company, f, which, false, why, true, &self.actor) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::error::Kind::Conflict => {
                self.log.info(
                    "supervisor.kill_skipped",
                    &[("slot", &slot.slot.to_string()), ("why", &e.message())],
                );
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn fail(&mut self, f: &Factory, wo: &WorkOrder, max: u32) -> Result<()> {
        let last = wo
            .last_failure
            .clone()
            .unwrap_or_else(|| "no failure recorded".into());
        let reason = format!(
            "gave up after {} attempt(s) (max_attempts = {max}); last failure: {last}",
            wo.attempts
        );
        let home = self.company.store_for_work_order(&wo.id)?;
        let e = workorder::plan_transition(wo, Status::Failed, Some(&reason), None, &self.actor)?;
        // The escalation goes out before the work order is marked failed: were the supervisor
        // to die between the two, the next patrol fails it again, finds this mail, and does
        // not send a second one. The other order could lose the escalation for good.
        let attempts = wo.attempts.to_string();
        let already = self
            .company
            .store()?
            .load::<crate::mail::Messages>()?
            .state
            .all()
            .iter()
            .any(|m| {
                m.to == "ceo"
                    && m.kind == "ESCALATION"
                    && m.meta.get("work_order") == Some(&wo.id)
                    && m.meta.get("attempts") == Some(&attempts)
            });
        if !already {
            let mut meta = BTreeMap::new();
            meta.insert("work_order".to_string(), wo.id.clone());
            meta.insert("factory".to_string(), f.name.clone());
            meta.insert("attempts".to_string(), attempts);
            mail::send(
                self.company,
                &Outgoing {
                    from: self.actor.clone(),
                    to: "ceo".into(),
                    subject: format!("ESCALATION {} failed after {} attempts", wo.id, wo.attempts),
                    body: format!(
                        "{} \"{}\" failed in {}.\n\n{reason}\n\nDecide: rewrite or split it (wo update), then `wo update {} --status open` and dispatch it again.",
                        wo.id, wo.title, f.name, wo.id
                    ),
                    kind: "ESCALATION".into(),
                    priority: MailPriority::Urgent,
                    meta,
                },
                &self.actor,
            )?;
        }
        home.append(vec![e])?;
        self.log.warn(
            "supervisor.failed",
            &[
                ("work_order", &wo.id),
                ("attempts", &wo.attempts.to_string()),
            ],
        );
        Ok(())
    }
}

fn note_dispatch(o: &DispatchOutcome, r: &mut PatrolReport) {
    match o {
        DispatchOutcome::Spawned { work_order, .. } => r.dispatched.push(work_order.clone()),
        DispatchOutcome::QueuedBehind { ran: Some(ran), .. } => note_dispatch(ran, r),
        DispatchOutcome::QueuedBehind { ran: None, .. } => {}
        DispatchOutcome::Queued { .. } => {}
    }
}

/// Work orders of any store in the company that are in one of `statuses` for this factory.
pub fn work_for(company: &Company, factory: &str, statuses: &[Status]) -> Result<Vec<WorkOrder>> {
    let mut out = Vec::new();
    let mut stores = vec![company.store()?];
    for f in company.factories()? {
        stores.push(f.store()?);
    }
    for s in &stores {
        out.extend(
            s.load::<WorkOrders>()?
                .state
                .all()
                .into_iter()
                .filter(|w| statuses.contains(&w.status) && w.factory.as_deref() == Some(factory)),
        );
    }
    Ok(out)
}

/// `co supervisor run FACTORY`: the patrol loop, until SIGTERM/SIGINT/SIGHUP.
pub fn run(company: &Company, factory: &str) -> Result<()> {
    let f = company.factory(factory)?;
    let _lock = daemon::InstanceLock::acquire(
        &f.work_dir().join(".supervisor.lock"),
        &format!("the supervisor of {factory}"),
    )?;
    let (tx, rx) = std::sync::mpsc::channel();
    let shutdown = daemon::handle_signals(tx.clone())?;
    let _watcher = daemon::watch(
        &[
            f.work_dir().join("events"),
            f.work_dir(),
            company.root.join(".work").join("events"),
            company.root.join(".work"),
        ],
        tx,
    );
    let mut s = Supervisor::new(company, factory)?;
    s.log.info(
        "supervisor.started",
        &[
            ("factory", factory),
            ("pid", &std::process::id().to_string()),
        ],
    );
    let mut wake = Wake::Timer;
    loop {
        let interval = company
            .factory(factory)
            .map(|f| crate::loops::qa::patrol_interval(&f))
            .unwrap_or(Duration::from_secs(10));
        let heartbeat = wake == Wake::Timer
            && s.last_heartbeat
                .is_none_or(|t| t.elapsed() >= interval.max(Duration::from_secs(60)));
        if heartbeat {
            s.last_heartbeat = Some(Instant::now());
        }
        if let Err(e) = s.patrol(heartbeat) {
            s.log
                .warn("supervisor.patrol_failed", &[("error", &e.message())]);
        }
        wake = daemon::next_wake(&rx, interval, &shutdown);
        if wake == Wake::Shutdown {
            break;
        }
    }
    s.log.info("supervisor.stopped", &[("factory", factory)]);
    Ok(())
}
