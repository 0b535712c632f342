//! The supervisor (`co supervisor run FACTORY`): keeps one factory's workers moving.
//!
//! Each patrol (on a timer, and at once when a store changes) first acts on its mail
//! ([`observe_mail`], [`control::decide_mail_first`]: a `WORKER_DONE` reaches QA before tmux is
//! asked anything), then [`observe`]s the factory into a [`Snapshot`](control::Snapshot), lets
//! [`control::decide`] choose the actions (see that module for the rules) and [`apply`]s them in
//! the order given; then writes `patrol.completed` with what it checked and did.

use crate::actions::dispatch::{self, DispatchOutcome, DispatchRequest};
use crate::actions::escalate::{self, Escalation};
use crate::actions::launch;
use crate::actions::worker::{self, KillOptions, Requeue, WorkerRef, Worktree};
use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::control::supervisor::{self as control, Action, Outcome, Screen, Session};
use crate::effects::tmux::{SessionInfo, Tmux};
use crate::error::Result;
use crate::event::ev;
use crate::event::types;
use crate::loops::daemon::{self, Log, Wake};
use crate::mail::{self, Message, Messages, Outgoing};
use crate::slots::{AgentEvent, Slot, Slots};
use crate::store::Store;
use crate::workorder::Views;
use crate::workorder::{self, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalated: Vec<String>,
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
            || !self.blocked.is_empty()
            || !self.escalated.is_empty()
    }
}

/// The text of an idle nudge: it names commands, never work order text.
pub const IDLE_NUDGE: &str = "You have been idle for a while. Run `co assignment` and carry on with your work order, or `co worker done` if it is finished and committed.";

/// A running supervisor.
pub struct Supervisor {
    company: Company,
    name: String,
    actor: String,
    log: Log,
    memory: control::Memory,
    last_heartbeat: Option<Instant>,
    status: daemon::LoopStatus,
    screens: ScreenWatch,
    /// Incarnations in the slots at the last patrol; and ended ones whose leftover processes
    /// are to be looked for (now, and again a little later: daemons start late).
    incarnations: std::collections::BTreeSet<String>,
    reap: Vec<(String, Instant)>,
    views: Views,
    /// The last session list tmux gave, for the patrols that may reuse it.
    sessions: Option<SessionList>,
}

/// A session list from tmux and what the log said of the workers right after it.
#[derive(Debug)]
struct SessionList {
    at: Instant,
    /// `(slot, incarnation)` of each worker the log named.
    workers: Vec<(u32, String)>,
    sessions: Vec<SessionInfo>,
    /// Every one of those workers had its session, alive.
    all_alive: bool,
}

impl SessionList {
    fn seen(&self, workers: &[(u32, String)]) -> control::SessionsSeen {
        control::SessionsSeen {
            age: self.at.elapsed(),
            same_workers: self.workers == workers,
            all_alive: self.all_alive,
        }
    }
}

/// The workers the log names, as a session list is matched to them.
fn worker_keys(slots: &Slots) -> Vec<(u32, String)> {
    slots
        .all()
        .map(|s| (s.slot, s.incarnation.clone()))
        .collect()
}

/// What the supervisor last saw on each worker's screen (by incarnation): a worker's output is
/// a sign of life only when its screen changed apart from spinners and counters, and a dialog
/// is seen even when nothing is printed.
#[derive(Debug, Default)]
struct ScreenWatch {
    seen: BTreeMap<String, SeenScreen>,
}

#[derive(Debug, Clone)]
struct SeenScreen {
    /// `window_activity` when it was captured: unchanged means the screen is unchanged.
    activity: i64,
    looked_at: i64,
    fingerprint: u64,
    /// When the screen last changed (unix seconds).
    changed_at: i64,
    screen: Screen,
    /// Our nudge was typed since: the next change is its echo, not the agent.
    echo: bool,
}

/// Even with no output, a screen is looked at again this often (seconds).
const LOOK_AGAIN: i64 = 30;

/// How a worker's screen is read: by its runtime's patterns, or (a runtime VerMAS cannot
/// read) only for a question on its last line.
enum ScreenReader<'a> {
    Runtime(&'a crate::runtime::Runtime),
    QuestionsOnly,
}

impl ScreenReader<'_> {
    fn screens(&self) -> &crate::runtime::presets::Screens {
        match self {
            ScreenReader::Runtime(rt) => &rt.preset.screens,
            ScreenReader::QuestionsOnly => &crate::runtime::presets::Screens::NONE,
        }
    }

    fn classify(&self, text: &str) -> Screen {
        match self {
            ScreenReader::Runtime(rt) => rt.classify(text),
            ScreenReader::QuestionsOnly => {
                crate::runtime::screen::classify(&crate::runtime::presets::Screens::NONE, text)
            }
        }
    }
}

impl ScreenWatch {
    /// The screen of a live worker, as `read` classifies it, and when it last changed. A pane
    /// that printed nothing since the last look is not captured again (for
    /// [`LOOK_AGAIN`] seconds): with many workers, one tmux process per worker per patrol would
    /// be most of an idle supervisor's CPU.
    /// `captured`: the screen, when it was captured with the others
    /// ([`Tmux::capture_many`](crate::effects::tmux::Tmux::capture_many)).
    fn look(
        &mut self,
        tmux: &crate::effects::tmux::Tmux,
        session: &crate::effects::tmux::SessionInfo,
        read: &ScreenReader<'_>,
        wall: i64,
        captured: Option<&String>,
    ) -> (Screen, i64) {
        let prev = self.seen.get(&session.incarnation);
        if !self.due(session, wall)
            && let Some(p) = prev
        {
            return (p.screen.clone(), p.changed_at);
        }
        let text = match captured {
            Some(t) => t.clone(),
            None => match tmux.capture(&session.name, 0) {
                Ok(t) => t,
                Err(_) => return (Screen::Unknown, session.activity),
            },
        };
        let fingerprint = crate::runtime::screen::fingerprint(read.screens(), &text);
        let changed_at = match prev {
            Some(p) if p.fingerprint == fingerprint || p.echo => p.changed_at,
            Some(_) => session.activity.max(wall - 1).min(wall),
            None => session.activity,
        };
        let screen = read.classify(&text);
        self.seen.insert(
            session.incarnation.clone(),
            SeenScreen {
                activity: session.activity,
                looked_at: wall,
                fingerprint,
                changed_at,
                screen: screen.clone(),
                echo: false,
            },
        );
        (screen, changed_at)
    }

    /// Whether a live session's screen is to be captured now: never looked at, printed
    /// something since the last look (or in the second of it: `window_activity` counts whole
    /// seconds), or not looked at for [`LOOK_AGAIN`] seconds.
    fn due(&self, session: &crate::effects::tmux::SessionInfo, wall: i64) -> bool {
        self.seen.get(&session.incarnation).is_none_or(|p| {
            p.activity != session.activity
                || session.activity >= p.looked_at
                || wall - p.looked_at >= LOOK_AGAIN
        })
    }

    /// After our own nudge: its echo is not the agent doing something.
    fn nudged(&mut self, incarnation: &str) {
        if let Some(p) = self.seen.get_mut(incarnation) {
            p.echo = true;
        }
    }

    fn retain(&mut self, live: &[String]) {
        self.seen.retain(|k, _| live.contains(k));
    }
}

/// What a patrol saw beyond the snapshot, for the apply step.
struct Seen {
    factory: Factory,
    mail: BTreeMap<String, Message>,
    /// Every store of the company, as the patrol found them.
    stores: Vec<Store>,
}

impl Supervisor {
    pub fn new(company: &Company, factory: &str) -> Result<Supervisor> {
        let mut company = company.clone();
        company.keep_last_good();
        let f = company.factory(factory)?;
        Ok(Supervisor {
            log: Log::new(
                company
                    .logs_dir()
                    .join(format!("supervisor-{}.log", f.name)),
                &f.settings,
            ),
            actor: AgentId::Supervisor {
                factory: f.name.clone(),
            }
            .to_string(),
            name: f.name,
            company,
            memory: control::Memory::default(),
            last_heartbeat: None,
            status: daemon::LoopStatus::new(),
            screens: ScreenWatch::default(),
            incarnations: Default::default(),
            reap: Vec::new(),
            views: Views::default(),
            sessions: None,
        })
    }

    /// One patrol. `heartbeat` forces a `patrol.completed` even when nothing happened.
    /// One patrol. `woken_by_timer`: the patrol interval passed (rather than the log changing),
    /// so tmux is asked for the sessions whatever was seen before.
    pub fn patrol(&mut self, heartbeat: bool, woken_by_timer: bool) -> Result<PatrolReport> {
        let start = Instant::now();
        if let Some(c) = self.company.reloaded() {
            self.log
                .info("config.reloaded", &[("file", ".vermas/config.toml")]);
            self.company = c;
        }
        let mut r = PatrolReport {
            agent: self.actor.clone(),
            ..Default::default()
        };
        // The mail first (a WORKER_DONE goes on to QA at once), then the workers and the work.
        let ((done, other_mail), seen) = observe_mail(&self.company, &self.name, &mut self.views)?;
        r.mail = done.len() + other_mail.len();
        let first = control::decide_mail_first(&done, &other_mail);
        self.apply_all(&seen, &first, Instant::now(), &mut r);
        // Read again only when acting on the mail wrote something.
        if !first.is_empty() {
            self.views.refresh(&seen.stores)?;
        }
        let snap = observe(
            &self.company,
            &seen,
            &mut self.screens,
            &self.views,
            &mut self.sessions,
            woken_by_timer,
        )?;
        self.status.write(
            &seen.factory.work_dir().join(".supervisor.json"),
            self.company.config_errors(),
        );
        self.reap_ended(&snap);
        let limits = control::Limits::of(&seen.factory.settings);
        let actions = control::decide(&snap, &mut self.memory, &limits);
        r.checked_workers = snap.workers.len();
        self.apply_all(&seen, &actions, snap.now, &mut r);
        r.duration_ms = start.elapsed().as_millis() as u64;
        if r.did_something() || heartbeat {
            seen.factory
                .store()?
                .append(vec![ev(types::PATROL_COMPLETED, &self.actor, &r)?])?;
        }
        Ok(r)
    }

    /// Carries out actions in the order given, each failure logged, and learns from each.
    fn apply_all(&mut self, seen: &Seen, actions: &[Action], now: Instant, r: &mut PatrolReport) {
        for a in actions {
            let outcome = match self.apply(seen, a, r) {
                Ok(()) => Outcome::Done,
                Err(e) => {
                    self.log.warn(
                        "supervisor.action_failed",
                        &[("action", action_name(a)), ("error", &e.message())],
                    );
                    Outcome::Failed(e.message())
                }
            };
            self.memory.learn(a, &outcome, now);
        }
    }

    /// Carries out one action.
    fn apply(&mut self, seen: &Seen, a: &Action, r: &mut PatrolReport) -> Result<()> {
        let f = &seen.factory;
        match a {
            Action::ForwardToQa {
                work_order,
                branch,
                priority,
                message,
            } => self.forward_to_qa(seen, work_order, branch, *priority, message, r),
            Action::Rework { work_order, reason } => self.rework(work_order, reason, r),
            Action::Ignore { message, why } => {
                self.ignore(seen, message, why, r);
                Ok(())
            }
            Action::MarkRead { message } => self.mark_read(seen, message),
            Action::Nudge {
                slot,
                incarnation,
                idle_for,
                count,
            } => self.nudge_idle(f, *slot, incarnation, *idle_for, *count, r),
            Action::Kill {
                slot,
                incarnation,
                reason,
                then,
            } => {
                let requeue = match then {
                    control::AfterKill::Requeue => Requeue::AttemptFailed,
                    control::AfterKill::Hold => Requeue::No,
                };
                self.kill(f, *slot, incarnation, reason, requeue, r)
            }
            Action::Respawn { slot, incarnation } => self.respawn(f, *slot, incarnation, r),
            Action::Escalate {
                key,
                work_order,
                subject,
                body,
            } => self.escalate(f, key, work_order.as_deref(), subject, body, r),
            Action::MarkFailed { work_order, reason } => self.mark_failed(work_order, reason, r),
            Action::Block { work_order, reason } => self.block(work_order, reason, r),
            Action::Dispatch { work_order } => self.dispatch(f, work_order, r),
        }
    }

    /// Sends handed-in work that cannot be merged back to rework.
    fn rework(&self, work_order: &str, reason: &str, r: &mut PatrolReport) -> Result<()> {
        self.transition(work_order, Status::Rework, reason)?;
        self.log.warn(
            "supervisor.ignored_done",
            &[("work_order", work_order), ("why", reason)],
        );
        r.ignored.push(format!("{work_order}: {reason}"));
        Ok(())
    }

    fn mark_failed(&self, work_order: &str, reason: &str, r: &mut PatrolReport) -> Result<()> {
        self.transition(work_order, Status::Failed, reason)?;
        self.log
            .warn("supervisor.failed", &[("work_order", work_order)]);
        r.failed.push(work_order.to_string());
        Ok(())
    }

    fn block(&self, work_order: &str, reason: &str, r: &mut PatrolReport) -> Result<()> {
        self.transition(work_order, Status::Blocked, reason)?;
        self.log.warn(
            "supervisor.blocked",
            &[("work_order", work_order), ("why", reason)],
        );
        r.blocked.push(work_order.to_string());
        Ok(())
    }

    /// Gives queued work a free slot, as `co dispatch` does.
    fn dispatch(&self, f: &Factory, work_order: &str, r: &mut PatrolReport) -> Result<()> {
        let o = dispatch::dispatch(
            &self.company,
            &DispatchRequest {
                work_order: work_order.to_string(),
                factory: f.name.clone(),
                runtime: None,
                no_queue: false,
                actor: self.actor.clone(),
            },
        )?;
        note_dispatch(&o, r);
        Ok(())
    }

    /// `READY_FOR_QA` to QA (with the worker's mail meta and the attempt), then `qa.enqueued`.
    fn forward_to_qa(
        &self,
        seen: &Seen,
        work_order: &str,
        branch: &str,
        priority: u8,
        message: &str,
        r: &mut PatrolReport,
    ) -> Result<()> {
        let (company, f) = (&self.company, &seen.factory);
        let mut meta = seen
            .mail
            .get(message)
            .map(|m| m.meta.clone())
            .unwrap_or_default();
        let attempts = self
            .views
            .find(&company.store_for_work_order(work_order)?, work_order)?
            .map(|w| w.attempts)
            .unwrap_or(0);
        meta.insert("attempt".into(), attempts.to_string());
        let qa = AgentId::Qa {
            factory: f.name.clone(),
        };
        let prio = crate::loops::qa::mail_priority(priority);
        // `qa.enqueued` in the same write as the message: QA's store is the factory's.
        let enqueued = ev(
            types::QA_ENQUEUED,
            &self.actor,
            &crate::loops::qa::QaEvent {
                work_order: work_order.to_string(),
                branch: branch.to_string(),
                head: meta.get("head").cloned(),
                priority: Some(prio),
                ..Default::default()
            },
        )?;
        mail::send_with(
            company,
            &Outgoing {
                from: self.actor.clone(),
                to: qa.to_string(),
                subject: format!("READY_FOR_QA {work_order}"),
                body: format!(
                    "{work_order} on {branch} passed the supervisor's checks; merge it if the gates pass."
                ),
                kind: "READY_FOR_QA".into(),
                priority: prio,
                meta,
            },
            &self.actor,
            vec![enqueued],
        )?;
        self.log.info(
            "supervisor.ready_for_qa",
            &[("work_order", work_order), ("branch", branch)],
        );
        r.ready_for_qa.push(work_order.to_string());
        Ok(())
    }

    /// Logs a `WORKER_DONE` that is left alone, naming its work order.
    fn ignore(&self, seen: &Seen, message: &str, why: &str, r: &mut PatrolReport) {
        let wo = seen
            .mail
            .get(message)
            .and_then(|m| m.meta.get("work_order").cloned())
            .unwrap_or_default();
        self.log.warn(
            "supervisor.ignored_done",
            &[("work_order", &wo), ("why", why)],
        );
        r.ignored.push(format!("{wo}: {why}"));
    }

    /// Marks a message read (logging it unless it is a `WORKER_DONE`, logged when handled).
    fn mark_read(&self, seen: &Seen, message: &str) -> Result<()> {
        if let Some(m) = seen.mail.get(message)
            && m.kind != "WORKER_DONE"
        {
            self.log.info(
                "supervisor.mail",
                &[("type", &m.kind), ("from", &m.from), ("id", &m.id)],
            );
        }
        mail::mark(&seen.factory.store()?, message, false, &self.actor)?;
        Ok(())
    }

    /// Nudges an idle worker, then writes `agent.idle` and the nudge.
    fn nudge_idle(
        &mut self,
        f: &Factory,
        slot: u32,
        incarnation: &str,
        idle_for: Duration,
        count: u32,
        r: &mut PatrolReport,
    ) -> Result<()> {
        let agent = AgentId::worker(&f.name, slot);
        let rt = crate::actions::nudge::runtime_of(&self.company, &agent);
        let out = crate::actions::nudge::guarded(
            &self.company.tmux(),
            &agent.session(),
            rt.as_ref(),
            IDLE_NUDGE,
            crate::actions::nudge::Nudger::Loop,
        )?;
        self.screens.nudged(incarnation);
        let store = f.store()?;
        let idle = crate::clock::human_age(idle_for.as_secs() as i64);
        store.append(vec![ev(
            types::AGENT_IDLE,
            &self.actor,
            &AgentEvent {
                agent: agent.to_string(),
                session: agent.session(),
                incarnation: incarnation.to_string(),
                work_order: seen_work_order(f, slot),
                slot: Some(slot),
                reason: Some(format!("idle for {idle}")),
                ..Default::default()
            },
        )?])?;
        launch::record_nudge(&store, &self.actor, &agent, &out, IDLE_NUDGE, Some("idle"))?;
        self.log.info(
            "supervisor.nudged_idle",
            &[
                ("agent", &agent.to_string()),
                ("idle_s", &idle_for.as_secs().to_string()),
                ("nudge", &count.to_string()),
            ],
        );
        r.nudged.push(agent.to_string());
        Ok(())
    }

    /// Ends a worker, keeping unmerged work; a slot that changed hands meanwhile is left alone.
    fn kill(
        &self,
        f: &Factory,
        slot: u32,
        incarnation: &str,
        reason: &str,
        requeue: Requeue,
        r: &mut PatrolReport,
    ) -> Result<()> {
        let agent = AgentId::worker(&f.name, slot);
        self.log.warn(
            "supervisor.kill",
            &[("agent", &agent.to_string()), ("why", reason)],
        );
        let which = WorkerRef {
            slot,
            incarnation: Some(incarnation),
        };
        let opts = KillOptions {
            worktree: Worktree::KeepUnmerged,
            requeue,
            reason,
            actor: &self.actor,
        };
        match worker::kill(&self.company, f, which, opts) {
            Ok(_) => r.killed.push(format!("{agent}: {reason}")),
            // That worker finished or was replaced meanwhile: the slot's new holder is
            // left alone.
            Err(e) if worker::is_changed_hands(&e) => {
                self.log.info(
                    "supervisor.kill_skipped",
                    &[("slot", &slot.to_string()), ("why", &e.message())],
                );
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Starts a worker's agent again on its worktree.
    fn respawn(
        &self,
        f: &Factory,
        slot: u32,
        incarnation: &str,
        r: &mut PatrolReport,
    ) -> Result<()> {
        let agent = AgentId::worker(&f.name, slot);
        let which = WorkerRef {
            slot,
            incarnation: Some(incarnation),
        };
        let s = worker::spawn(&self.company, f, Some(which), &self.actor)?;
        self.log.info(
            "supervisor.respawned",
            &[
                ("agent", &agent.to_string()),
                ("incarnation", &s.incarnation),
            ],
        );
        r.restarted.push(agent.to_string());
        Ok(())
    }

    /// Mails the ceo once per `key`; a `failed:…:<attempts>` key also names the attempts.
    fn escalate(
        &self,
        f: &Factory,
        key: &str,
        work_order: Option<&str>,
        subject: &str,
        body: &str,
        r: &mut PatrolReport,
    ) -> Result<()> {
        let mut meta = BTreeMap::new();
        meta.insert("factory".to_string(), f.name.clone());
        if let Some(w) = work_order {
            meta.insert("work_order".to_string(), w.to_string());
        }
        if let Some(attempts) = key
            .strip_prefix("failed:")
            .and_then(|k| k.rsplit(':').next())
        {
            meta.insert("attempts".to_string(), attempts.to_string());
        }
        let e = Escalation {
            key,
            subject,
            body,
            meta,
        };
        if escalate::escalate(&self.company, &e, &self.actor)? {
            self.log.warn("supervisor.escalated", &[("key", key)]);
            r.escalated.push(key.to_string());
        }
        Ok(())
    }

    /// Ends the processes agents left behind when their slot was let go (done, killed,
    /// replaced): some CLIs start daemons that outlive their tmux session.
    fn reap_ended(&mut self, snap: &control::Snapshot) {
        let now: std::collections::BTreeSet<String> =
            snap.workers.iter().map(|w| w.incarnation.clone()).collect();
        for gone in self.incarnations.difference(&now) {
            self.reap.push((gone.clone(), snap.now));
            self.reap
                .push((gone.clone(), snap.now + Duration::from_secs(10)));
        }
        self.incarnations = now;
        let due: Vec<String> = self
            .reap
            .iter()
            .filter(|(_, at)| *at <= snap.now)
            .map(|(i, _)| i.clone())
            .collect();
        self.reap.retain(|(_, at)| *at > snap.now);
        for inc in due {
            let ended = crate::effects::process::end_incarnation(&self.company.root, &inc);
            if !ended.is_empty() {
                self.log.info(
                    "supervisor.ended_leftovers",
                    &[
                        ("incarnation", &inc),
                        ("processes", &ended.len().to_string()),
                    ],
                );
            }
        }
    }

    /// Moves a work order (in whichever store owns it) to `to`, unless it is there already.
    fn transition(&self, id: &str, to: Status, reason: &str) -> Result<()> {
        let home = self.company.store_for_work_order(id)?;
        let mut w = home.lock()?;
        // Under the lock, the index is brought to the end of the log: the current state.
        let Some(wo) = workorder::lookup(&home, id)? else {
            return Ok(());
        };
        if wo.status == to {
            return Ok(());
        }
        let e = workorder::plan_transition(&wo, to, Some(reason), None, &self.actor)?;
        w.append(vec![e])?;
        w.report_warnings();
        Ok(())
    }
}

/// The work order a slot holds, as the slot projection says now.
fn seen_work_order(f: &Factory, slot: u32) -> Option<String> {
    f.store()
        .ok()?
        .load::<Slots>()
        .ok()?
        .state
        .get(slot)
        .map(|s| s.work_order.clone())
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::ForwardToQa { .. } => "forward_to_qa",
        Action::Rework { .. } => "rework",
        Action::Ignore { .. } => "ignore",
        Action::MarkRead { .. } => "mark_read",
        Action::Nudge { .. } => "nudge",
        Action::Kill { .. } => "kill",
        Action::Respawn { .. } => "respawn",
        Action::Escalate { .. } => "escalate",
        Action::MarkFailed { .. } => "mark_failed",
        Action::Block { .. } => "block",
        Action::Dispatch { .. } => "dispatch",
    }
}

/// The supervisor's unread mail: the `WORKER_DONE`s checked (each with its branch and work
/// order) and the rest (`(id, kind)`).
type Unread = (Vec<control::DoneObs>, Vec<(String, String)>);

/// The supervisor's unread mail, and the factory and messages its actions need.
fn observe_mail(company: &Company, factory: &str, views: &mut Views) -> Result<(Unread, Seen)> {
    let f = company.factory(factory)?;
    let actor = AgentId::Supervisor {
        factory: f.name.clone(),
    }
    .to_string();
    let inbox: Vec<Message> = f
        .store()?
        .load::<Messages>()?
        .state
        .inbox(&actor, false)
        .into_iter()
        .cloned()
        .collect();
    // The open work of every store, as of now: after the inbox was read, so a WORKER_DONE is
    // judged against its work order as it was then or later (as a fresh load here would).
    let stores = company.stores_for_reading()?;
    views.refresh(&stores)?;
    let (done, other_mail) = split_mail(company, &f, &inbox, views);
    let mail = inbox.into_iter().map(|m| (m.id.clone(), m)).collect();
    let seen = Seen {
        factory: f,
        mail,
        stores,
    };
    Ok(((done, other_mail), seen))
}

/// Reads what the rest of a patrol decides on, once the mail is handled: the factory's
/// workers (slots and sessions) and the work waiting for it in every store of the company.
/// The sessions come from tmux, or from `list` when [`control::reuse_sessions`] allows it.
fn observe(
    company: &Company,
    seen: &Seen,
    screens: &mut ScreenWatch,
    views: &Views,
    list: &mut Option<SessionList>,
    woken_by_timer: bool,
) -> Result<control::Snapshot> {
    let (f, stores) = (&seen.factory, &seen.stores);
    let fstore = f.store()?;
    let tmux = company.tmux();
    // The slots are read before tmux is asked only when the last list might be reused.
    let reusable = match list.as_ref() {
        Some(l) if !woken_by_timer => {
            let slots = fstore.load::<Slots>()?.state;
            let seen = l.seen(&worker_keys(&slots));
            control::reuse_sessions(false, Some(seen), f.settings.factory_patrol_interval())
                .then(|| (l.sessions.clone(), slots))
        }
        _ => None,
    };
    let (sessions, slots, asked) = match reusable {
        Some((sessions, slots)) => (sessions, slots, false),
        // tmux first, then the slots it is matched to: a worker's session exists before its
        // slot is in the log, so a worker the slots name is in the list (never looks dead).
        None => {
            let sessions = tmux.sessions()?;
            (sessions, fstore.load::<Slots>()?.state, true)
        }
    };
    let wall = chrono::Utc::now().timestamp();
    screens.retain(
        &slots
            .all()
            .map(|s| s.incarnation.clone())
            .collect::<Vec<_>>(),
    );
    let sight = Sight {
        company,
        f,
        tmux: &tmux,
        sessions: &sessions,
        wall,
    };
    let mut workers = sight.workers(&slots, screens);
    for w in workers.iter_mut() {
        w.wo_status = work_order_status(company, views, &w.work_order);
    }
    if asked {
        *list = Some(SessionList {
            at: Instant::now(),
            workers: worker_keys(&slots),
            all_alive: workers
                .iter()
                .all(|w| matches!(w.session, control::Session::Alive { .. })),
            sessions,
        });
    }
    let waiting = observe_waiting(f, stores, views, &slots)?;
    Ok(control::Snapshot {
        factory: f.name.clone(),
        now: Instant::now(),
        wall,
        jitter: crate::control::restart::jitter(),
        // The mail was acted on first (`decide_mail_first`), before this look.
        done: Vec::new(),
        other_mail: Vec::new(),
        workers,
        free_slots: f.max_slots().saturating_sub(slots.len() as u32),
        waiting,
    })
}

/// The inbox split into `WORKER_DONE`s (each with its branch and work order) and other mail
/// (`(id, kind)`).
fn split_mail(
    company: &Company,
    f: &Factory,
    inbox: &[Message],
    views: &Views,
) -> (Vec<control::DoneObs>, Vec<(String, String)>) {
    let repo = f.git_dir();
    let mut done = Vec::new();
    let mut other_mail = Vec::new();
    for m in inbox {
        if m.kind != "WORKER_DONE" {
            other_mail.push((m.id.clone(), m.kind.clone()));
            continue;
        }
        let get = |k: &str| m.meta.get(k).cloned().unwrap_or_default();
        let (wo_id, branch) = (get("work_order"), get("branch"));
        // A store that cannot be read now (a config file being written) is not a work order
        // that is gone: the message waits for the next patrol.
        let wo = match company
            .store_for_work_order(&wo_id)
            .and_then(|h| views.find(&h, &wo_id))
        {
            Ok(wo) => wo,
            Err(e) if e.kind() == crate::error::Kind::NotFound => None,
            Err(_) => continue,
        };
        // One git process in the usual case: counting fails when the branch is gone.
        let full = format!("refs/heads/{branch}");
        let (branch_exists, commits_ahead) =
            match crate::effects::git::commits_ahead(&repo, f.target_branch(), &full) {
                Ok(n) => (true, n),
                Err(_) => (crate::effects::git::branch_exists(&repo, &branch), 0),
            };
        done.push(control::DoneObs {
            message: m.id.clone(),
            work_order: wo_id,
            commits_ahead,
            branch,
            branch_exists,
            sent_by: get("incarnation"),
            holder: wo.as_ref().and_then(|w| w.incarnation.clone()),
            status: wo.as_ref().map(|w| w.status),
            priority: wo.as_ref().map(|w| w.priority).unwrap_or(2),
            target: f.target_branch().to_string(),
        });
    }
    (done, other_mail)
}

/// What the workers are looked at against: their sessions, read once per patrol.
struct Sight<'a> {
    company: &'a Company,
    f: &'a Factory,
    tmux: &'a Tmux,
    sessions: &'a [SessionInfo],
    wall: i64,
}

/// A slot's runtime when VerMAS can read its screen, by runtime name (resolved once).
type ScreenRuntimes = BTreeMap<String, Option<crate::runtime::Runtime>>;

impl Sight<'_> {
    /// Each slot's worker: its session, its screen, and its last output when it is dead.
    fn workers(&self, slots: &Slots, screens: &mut ScreenWatch) -> Vec<control::WorkerObs> {
        let mut runtimes = ScreenRuntimes::new();
        // Every screen due a look, captured by one tmux process.
        let due: Vec<&str> = slots
            .all()
            .filter_map(|slot| self.live(slot))
            .filter(|s| screens.due(s, self.wall))
            .map(|s| s.name.as_str())
            .collect();
        let captured = self.tmux.capture_many(&due);
        slots
            .all()
            .map(|slot| self.worker(slot, &mut runtimes, screens, &captured))
            .collect()
    }

    /// The session of a slot's worker: `(its session, whether it is this worker's and alive)`.
    fn session(&self, slot: &Slot) -> (Option<&SessionInfo>, bool) {
        let name = AgentId::worker(&self.f.name, slot.slot).session();
        let sess = self.sessions.iter().find(|s| s.name == name);
        let alive = sess.is_some_and(|s| !s.pane_dead && s.incarnation == slot.incarnation);
        (sess, alive)
    }

    /// A slot's session when it is its worker's and alive.
    fn live(&self, slot: &Slot) -> Option<&SessionInfo> {
        match self.session(slot) {
            (s, true) => s,
            _ => None,
        }
    }

    fn worker(
        &self,
        slot: &Slot,
        runtimes: &mut ScreenRuntimes,
        screens: &mut ScreenWatch,
        captured: &BTreeMap<String, String>,
    ) -> control::WorkerObs {
        let agent = AgentId::worker(&self.f.name, slot.slot);
        let (sess, alive) = self.session(slot);
        let started_at = crate::clock::parse_timestamp(&slot.started_at)
            .map(|t| t.timestamp())
            .unwrap_or(self.wall);
        let last_output = if alive {
            String::new()
        } else {
            let log = self
                .company
                .logs_dir()
                .join(agent.session())
                .join(format!("{}.log", slot.incarnation));
            crate::text::last_lines(&tail_of_file(&log, 8192), 12)
        };
        let rt = runtimes
            .entry(slot.runtime.clone())
            .or_insert_with(|| {
                crate::runtime::resolve(&self.f.settings, &slot.runtime, "worker")
                    .ok()
                    .filter(|rt| rt.reads_screen())
            })
            .as_ref();
        let live = sess.filter(|_| alive);
        let shot = live.and_then(|s| captured.get(&s.name));
        let (screen, output_at) = self.screen(live, sess, rt, screens, shot);
        // What its hooks said (CLIs that call them), beside the screen.
        let hook = alive.then(|| worker::hook_state(self.f, slot)).flatten();
        let (screen, last_sign) =
            control::with_hook(screen, worker::last_sign(slot, output_at), hook.as_ref());
        control::WorkerObs {
            slot: slot.slot,
            incarnation: slot.incarnation.clone(),
            work_order: slot.work_order.clone(),
            attempt: slot.attempt,
            started_at,
            last_sign,
            session: if alive {
                Session::Alive { screen }
            } else {
                Session::Dead
            },
            hint: crate::runtime::diagnose(&last_output).map(str::to_string),
            last_output,
            wo_status: None,
        }
    }

    /// What a live session's screen shows, and when it last changed (for a session that is
    /// not alive: unknown, and its tmux activity).
    fn screen(
        &self,
        live: Option<&SessionInfo>,
        sess: Option<&SessionInfo>,
        rt: Option<&crate::runtime::Runtime>,
        screens: &mut ScreenWatch,
        shot: Option<&String>,
    ) -> (Screen, Option<i64>) {
        match (live, rt) {
            (Some(s), Some(rt)) => {
                let read = ScreenReader::Runtime(rt);
                let (screen, changed) = screens.look(self.tmux, s, &read, self.wall, shot);
                (screen, Some(changed))
            }
            (Some(s), None) => {
                // A screen VerMAS cannot read: only a question on its last line is known.
                let read = ScreenReader::QuestionsOnly;
                let (screen, _) = screens.look(self.tmux, s, &read, self.wall, shot);
                (screen, Some(s.activity))
            }
            (None, _) => (Screen::Unknown, sess.map(|s| s.activity)),
        }
    }
}

/// A worker's work order status: open work from the views; work that is done (a worker whose
/// work order was closed or cancelled is stopped) from its store's index.
fn work_order_status(company: &Company, views: &Views, id: &str) -> Option<Status> {
    match views.held(id) {
        Some(wo) => Some(wo.status),
        None => company
            .store_for_work_order(id)
            .and_then(|h| views.find(&h, id))
            .ok()
            .flatten()
            .map(|wo| wo.status),
    }
}

/// The work queued (or in rework) for this factory in every store, most urgent then oldest.
fn observe_waiting(
    f: &Factory,
    stores: &[Store],
    views: &Views,
    slots: &Slots,
) -> Result<Vec<control::WaitingObs>> {
    let mut found = Vec::new();
    for store in stores {
        let Some(view) = views.of(store) else {
            continue;
        };
        let src = view.with_index(store);
        for w in view.open() {
            if matches!(w.status, Status::Rework | Status::Queued)
                && w.factory.as_deref() == Some(f.name.as_str())
            {
                let ready = workorder::open_blockers_in(&src, &w)?.is_empty();
                found.push((w, ready));
            }
        }
    }
    found.sort_by(|(a, _), (b, _)| workorder::queue_order(a, b));
    Ok(found
        .into_iter()
        .map(|(w, ready)| control::WaitingObs {
            ready,
            held: slots.by_work_order(&w.id).is_some(),
            work_order: w.id,
            status: w.status,
            attempts: w.attempts,
            title: w.title,
            last_failure: w.last_failure,
        })
        .collect())
}

/// The last `max` bytes of a file (empty when it cannot be read).
fn tail_of_file(path: &std::path::Path, max: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = file.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

fn note_dispatch(o: &DispatchOutcome, r: &mut PatrolReport) {
    match o {
        DispatchOutcome::Spawned { work_order, .. } => r.dispatched.push(work_order.clone()),
        DispatchOutcome::QueuedBehind { ran: Some(ran), .. } => note_dispatch(ran, r),
        DispatchOutcome::QueuedBehind { ran: None, .. } => {}
        DispatchOutcome::Queued { .. } => {}
    }
}

/// `co supervisor run FACTORY`: the patrol loop, until SIGTERM/SIGINT/SIGHUP.
pub fn run(company: &Company, factory: &str) -> Result<()> {
    let f = company.factory(factory)?;
    let _lock = daemon::InstanceLock::acquire(
        &crate::control::operations::Role::Supervisor.lock_path(&f.work_dir()),
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
            company.root.join(".vermas"),
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
        let heartbeat = wake == Wake::Timer
            && s.last_heartbeat
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if heartbeat {
            s.last_heartbeat = Some(Instant::now());
        }
        if let Err(e) = s.patrol(heartbeat, wake == Wake::Timer) {
            s.log
                .warn("supervisor.patrol_failed", &[("error", &e.message())]);
        }
        let interval = s
            .company
            .factory(factory)
            .map(|f| f.settings.factory_patrol_interval())
            .unwrap_or(Duration::from_secs(10));
        wake = daemon::next_wake(&rx, interval, &shutdown);
        if wake == Wake::Shutdown {
            break;
        }
    }
    s.log.info("supervisor.stopped", &[("factory", factory)]);
    Ok(())
}
