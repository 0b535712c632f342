//! QA (`co qa run FACTORY`): the merge queue of a factory (design §5), in batches.
//!
//! Each patrol triages the `READY_FOR_QA` mail ([`control::triage`]), then takes the ready work,
//! urgent first then oldest, up to `[qa] batch_max` at a time: merges each branch onto the
//! target in the QA worktree (detached, so the target branch does not move yet) with QA's own
//! git identity; a conflict sends only that branch back, naming the paths. Every gate runs once
//! on the merged tree with its timeout, its stdout, stderr, exit code and duration kept under
//! `.work/evidence/<wo>/<attempt>/` for each work order of the batch. All pass: the target moves
//! to the last merge commit with a compare-and-swap (`git update-ref NEW OLD`), is pushed if
//! configured, and each work order is closed with its own merge commit, `MERGED` sent, its
//! worktree and branch removed. A failure is bisected ([`control::Bisection`]) until the
//! branches that fail are found; they go back as rework with the gate's output, the rest merge.
//!
//! Crash safety: the target only moves after the gates pass, in one ref update per group; a
//! message is marked read only after its outcome is written, so a QA killed mid-batch leaves
//! the target before or after that group, retries the rest, and closes work already on the
//! target without merging it twice.

use crate::actions::escalate::{self, Escalation};
use crate::actions::locked::Locked;
use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::config::Gate;
use crate::control::qa as control;
use crate::effects::git::{self, MergeOutcome};
use crate::error::{Error, Result};
use crate::event::types;
use crate::event::{NewEvent, ev};
use crate::loops::daemon::{self, Log, Shutdown, Wake};
use crate::mail::{self, MailPriority, Marked, Message, Messages, Sent};
use crate::slots::{Slots, WorktreeEvent};
use crate::store::{Store, StoreError};
use crate::workorder::{self, Status, WorkOrder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a work order is blocked when the factory has no gates.
pub const NO_GATES: &str = "QA will not merge without gates";

/// Payload of `qa.gate_run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateRun {
    pub work_order: String,
    pub attempt: u32,
    pub gate: String,
    pub command: Vec<String>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub passed: bool,
    pub evidence: String,
    /// The batch this gate run was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// Payload of `qa.enqueued`, `qa.merged`, `qa.merge_failed`, `qa.rework_requested`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QaEvent {
    pub work_order: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub branch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<MailPriority>,
    /// The batch it was merged or sent back in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
}

/// The mail priority of a work order's QA request: P0–P1 urgent, P2 normal, P3–P4 low.
pub fn mail_priority(priority: u8) -> MailPriority {
    match priority {
        0 | 1 => MailPriority::Urgent,
        2 => MailPriority::Normal,
        _ => MailPriority::Low,
    }
}

/// The result of one gate.
#[derive(Debug, Clone)]
pub struct GateResult {
    pub gate: String,
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub interrupted: bool,
    pub duration: Duration,
    pub dir: PathBuf,
    pub tail: String,
}

impl GateResult {
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.interrupted
    }
}

/// The last `lines` lines of a file (at most 4 KiB of it).
fn tail_of(path: &Path, lines: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = bytes.len().saturating_sub(4096);
    let text = String::from_utf8_lossy(&bytes[start..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs one gate in `cwd` with its timeout; output goes to files in `dir`. The gate runs in its
/// own process group so a timeout (or QA being stopped) kills everything it started.
pub fn run_gate(
    gate: &Gate,
    cwd: &Path,
    dir: &Path,
    work_order: &str,
    shutdown: &Shutdown,
) -> Result<GateResult> {
    crate::fsutil::ensure_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    let out_path = dir.join(format!("{}.stdout", gate.name));
    let err_path = dir.join(format!("{}.stderr", gate.name));
    let open = |p: &Path| {
        let _ = std::fs::remove_file(p);
        crate::fsutil::create_new(p).map_err(|e| StoreError::io(p, e))
    };
    let out = open(&out_path)?;
    let err = open(&err_path)?;
    let argv = gate.command.argv();
    let start = Instant::now();
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .env("VERMAS_GATE", &gate.name)
        .env("VERMAS_WORK_ORDER", work_order);
    for k in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_COMMON_DIR",
    ] {
        cmd.env_remove(k);
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let timeout = Duration::from_secs_f64(gate.timeout_seconds);
    crate::trace::running(&cmd);
    let ended = match cmd.spawn() {
        Err(e) => {
            let _ = std::fs::write(&err_path, format!("cannot run {:?}: {e}\n", argv[0]));
            Ended {
                exit_code: Some(127),
                timed_out: false,
                interrupted: false,
            }
        }
        Ok(child) => wait_gate(child, start, timeout, shutdown),
    };
    let duration = start.elapsed();
    let result = GateResult {
        gate: gate.name.clone(),
        argv,
        exit_code: ended.exit_code,
        timed_out: ended.timed_out,
        interrupted: ended.interrupted,
        duration,
        dir: dir.to_path_buf(),
        tail: output_tail(&out_path, &err_path),
    };
    write_gate_summary(dir, &result);
    Ok(result)
}

/// How a gate's process ended.
struct Ended {
    exit_code: Option<i32>,
    timed_out: bool,
    interrupted: bool,
}

/// Polls a gate's process until it exits; past its timeout (or when QA is stopped) its whole
/// process group is killed.
fn wait_gate(
    mut child: std::process::Child,
    start: Instant,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Ended {
    let mut ended = Ended {
        exit_code: None,
        timed_out: false,
        interrupted: false,
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                ended.exit_code = status.code().or(Some(128 + 9));
                break;
            }
            Ok(None) => {}
            Err(_) => break,
        }
        if start.elapsed() >= timeout || shutdown.requested() {
            ended.timed_out = !shutdown.requested();
            ended.interrupted = shutdown.requested();
            crate::effects::process::kill_group(child.id());
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        let pause = if start.elapsed() < Duration::from_secs(1) {
            5
        } else {
            50
        };
        std::thread::sleep(Duration::from_millis(pause));
    }
    ended
}

/// The last lines of a gate's stdout, then of its stderr.
fn output_tail(out_path: &Path, err_path: &Path) -> String {
    let mut tail = tail_of(out_path, 25);
    let etail = tail_of(err_path, 25);
    if !etail.is_empty() {
        if !tail.is_empty() {
            tail.push('\n');
        }
        tail.push_str(&etail);
    }
    tail
}

/// `<gate>.json` next to its output: what ran and how it ended.
fn write_gate_summary(dir: &Path, result: &GateResult) {
    let json_path = dir.join(format!("{}.json", result.gate));
    let summary = serde_json::json!({
        "gate": result.gate,
        "command": result.argv,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "duration_ms": result.duration.as_millis() as u64,
        "passed": result.passed(),
    });
    let _ = crate::fsutil::atomic_write(&json_path, summary.to_string().as_bytes());
}

/// A `READY_FOR_QA` being triaged: its work order (`None`: gone) and the branch to merge.
struct QaRequest {
    msg: Message,
    work_order: String,
    wo: Option<WorkOrder>,
    branch: String,
    /// The branch's commit (`None`: there is no such branch).
    head: Option<String>,
}

/// A `READY_FOR_QA` that triage found ready: the message and its work order.
#[derive(Debug, Clone)]
struct Candidate {
    msg: Message,
    wo: WorkOrder,
    branch: String,
    /// The branch's commit when triage looked.
    head: String,
    /// The paths its branch changes (kept with its evidence).
    changed: Vec<String>,
}

impl Candidate {
    fn new(msg: Message, wo: WorkOrder, branch: String, head: Option<String>) -> Candidate {
        Candidate {
            msg,
            wo,
            branch,
            head: head.unwrap_or_default(),
            changed: Vec::new(),
        }
    }

    fn attempt(&self) -> u32 {
        self.wo.attempts.max(1)
    }
    /// `.work/evidence/<wo>/<attempt>`.
    fn evidence(&self, f: &Factory) -> PathBuf {
        f.work_dir().join(self.evidence_rel())
    }
    fn evidence_rel(&self) -> PathBuf {
        Path::new("evidence")
            .join(&self.wo.id)
            .join(self.attempt().to_string())
    }
}

/// Payload of `qa.batch_started` and `qa.batch_bisected`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BatchEvent {
    pub batch: String,
    /// The batch, or (bisected) the half tested next.
    pub work_orders: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Bisected: the group whose gates failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

/// What a running QA shows of its work (`.work/.qa.json`, for `co status`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub batch: String,
    pub work_orders: Vec<String>,
    /// The gate running now, and since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    pub since: String,
}

/// `.work/.qa.json`: the loop's status and what it is doing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QaStatus {
    #[serde(flatten)]
    pub status: daemon::LoopStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// A running QA department for one factory.
pub struct Qa {
    company: Company,
    name: String,
    actor: String,
    log: Log,
    shutdown: Shutdown,
    memory: control::Memory,
    status: QaStatus,
    /// The open work of every store, kept between patrols (the work orders in review are
    /// read from it, not from an index opened for each).
    views: workorder::Views,
    /// Each QA worktree known to sit clean on a commit (QA reset it there and ran nothing in
    /// it since): preparing it on that commit again costs no git process.
    clean: BTreeMap<PathBuf, String>,
}

/// How testing one group of a batch went.
enum Tested {
    /// Nothing of the group was left to gate (conflicts, already merged, errors).
    Empty,
    Passed,
    Failed(String, FailedGate),
    /// The target moved under it: merge again.
    TargetMoved,
    Interrupted,
}

impl Qa {
    pub fn new(company: &Company, factory: &str, shutdown: Shutdown) -> Result<Qa> {
        let mut company = company.clone();
        company.keep_last_good();
        let f = company.factory(factory)?;
        Ok(Qa {
            actor: AgentId::Qa {
                factory: f.name.clone(),
            }
            .to_string(),
            log: Log::new(
                company.logs_dir().join(format!("qa-{}.log", f.name)),
                &f.settings,
            ),
            name: f.name,
            company,
            shutdown,
            memory: control::Memory::default(),
            views: workorder::Views::default(),
            clean: BTreeMap::new(),
            status: QaStatus {
                status: daemon::LoopStatus::new(),
                progress: None,
            },
        })
    }

    fn factory(&self) -> Result<Factory> {
        self.company.factory(&self.name)
    }

    /// Makes sure a QA worktree exists and sits clean on the target: lane 0 is `<f>/qa`, lane
    /// 1 (the second of two halves gated side by side) `<f>/qa-2`.
    /// Returns the worktree and the target commit it was put on: the base the group merged
    /// there must land on.
    pub fn prepare(&mut self, f: &Factory, lane: usize) -> Result<(PathBuf, String)> {
        let qa = f.qa_lane_dir(lane);
        let repo = f.git_dir();
        let registered = git::is_linked_worktree(&repo, &qa)
            || git::worktrees(&repo)?
                .iter()
                .any(|w| w.path == qa || w.path.canonicalize().ok() == qa.canonicalize().ok());
        if !registered {
            if qa.exists() {
                let empty = std::fs::read_dir(&qa)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if empty {
                    let _ = std::fs::remove_dir(&qa);
                } else {
                    let aside = f.dir.join(format!(
                        "{}.stale-{}",
                        qa.file_name().unwrap_or_default().to_string_lossy(),
                        chrono::Utc::now().format("%Y%m%dT%H%M%S")
                    ));
                    std::fs::rename(&qa, &aside).map_err(|e| StoreError::io(&qa, e))?;
                }
            }
            let _ = git::worktree_prune(&repo);
            git::worktree_add_detached(&repo, &qa, f.target_branch())?;
        }
        let target = self.target_rev(f)?;
        let clean = self.clean.get(&qa) == Some(&target)
            && git::detached_head(&qa).as_ref() == Some(&target);
        if !clean {
            self.reset_lane(&qa, &target)?;
        }
        Ok((qa, target))
    }

    /// Puts a QA worktree back on `rev` ([`git::reset_to`]) and remembers it is clean there.
    fn reset_lane(&mut self, lane: &Path, rev: &str) -> Result<()> {
        self.clean.remove(lane);
        git::reset_to(lane, rev)?;
        self.clean.insert(lane.to_path_buf(), rev.to_string());
        Ok(())
    }

    fn target_rev(&self, f: &Factory) -> Result<String> {
        git::branch_commit(&f.git_dir(), f.target_branch()).ok_or_else(|| {
            Error::failure(format!(
                "target branch {} of {} is gone",
                f.target_branch(),
                f.name
            ))
        })
    }

    fn write_status(&mut self, f: &Factory) {
        self.status.status.last_patrol = crate::clock::format_timestamp(chrono::Utc::now());
        self.status.status.config_errors = self.company.config_errors();
        if let Ok(text) = serde_json::to_vec_pretty(&self.status) {
            let _ = crate::fsutil::atomic_write_unsynced(&f.work_dir().join(".qa.json"), &text);
        }
    }

    fn progress(&mut self, f: &Factory, p: Option<Progress>) {
        self.status.progress = p;
        self.write_status(f);
    }

    /// One patrol: triage what is handed in, then merge the ready work in batches until none
    /// is left. Returns how many work orders were merged or sent back.
    pub fn patrol(&mut self) -> Result<usize> {
        if let Some(c) = self.company.reloaded() {
            self.log
                .info("config.reloaded", &[("file", ".vermas/config.toml")]);
            self.company = c;
        }
        let f = self.factory()?;
        self.write_status(&f);
        let mut done = 0;
        let mut skip: Vec<String> = Vec::new();
        loop {
            if self.shutdown.requested() {
                break;
            }
            let mut ready = self.triage_queue(&f, &mut skip, Vec::new())?;
            if ready.is_empty() {
                break;
            }
            // Work handed in together is merged together: while more is still arriving (the
            // newest came less than a moment ago, or the supervisor has yet to forward some)
            // and the batch has room, wait for it.
            let waiting = std::time::Instant::now();
            while waiting.elapsed() < control::SETTLE_MAX && !self.shutdown.requested() {
                let handed_in = self.handed_in(&f)?;
                // Workers still holding a slot (one that is done has given its slot back).
                let working = f.store()?.load::<Slots>()?.state.all().count();
                // Looked at after the hand-ins: one forwarded since is in the queue now.
                ready = self.triage_queue(&f, &mut skip, ready)?;
                let queued: Vec<&str> = ready.iter().map(|c| c.wo.id.as_str()).collect();
                let handed_in = control::on_the_way(handed_in, &queued);
                let Some(wait) = control::settle_wait(
                    ready.iter().map(|c| c.msg.sent_at.as_str()),
                    handed_in.iter().map(String::as_str),
                    ready.len(),
                    f.settings.qa.batch_max as usize,
                    working,
                    chrono::Utc::now(),
                ) else {
                    break;
                };
                std::thread::sleep(wait);
            }
            // Queue order, not the order the hand-ins happened to arrive in: most urgent, then
            // the oldest work order (of two that conflict, the younger goes back).
            ready.sort_by(|a, b| workorder::queue_order(&a.wo, &b.wo));
            let batch: Vec<Candidate> = ready
                .into_iter()
                .take(f.settings.qa.batch_max as usize)
                .collect();
            let ids: Vec<String> = batch.iter().map(|c| c.msg.id.clone()).collect();
            let members: Vec<String> = batch.iter().map(|c| c.wo.id.clone()).collect();
            match self.run_batch(&f, batch) {
                Ok(n) => done += n,
                Err(e) => {
                    self.log.warn("qa.batch_failed", &[("error", &e.message())]);
                    // Left unread, and each member's error counted: the next tries back off
                    // (this loop's own events wake it at once), and one that keeps failing is
                    // blocked with the reason and escalated.
                    skip.extend(ids);
                    for wo in &members {
                        self.memory.error(wo, &e.message(), Instant::now());
                    }
                }
            }
            self.progress(&f, None);
        }
        Ok(done)
    }

    /// Each `WORKER_DONE` the supervisor has not read yet: work on its way here, unless it is
    /// queued already ([`control::on_the_way`]).
    fn handed_in(&self, f: &Factory) -> Result<Vec<control::HandIn>> {
        let supervisor = AgentId::Supervisor {
            factory: f.name.clone(),
        }
        .to_string();
        Ok(f.store()?
            .load::<Messages>()?
            .state
            .inbox(&supervisor, false)
            .into_iter()
            .filter(|m| m.kind == "WORKER_DONE")
            .map(|m| control::HandIn {
                sent_at: m.sent_at.clone(),
                work_order: m.meta.get("work_order").cloned(),
            })
            .collect())
    }

    /// Looks at every `READY_FOR_QA`: acts on the stale, the blocked and the broken ones and
    /// returns the ready ones, urgent first then oldest. Those in `known` (found ready a
    /// moment ago, while waiting for more to arrive) are not looked at again.
    fn triage_queue(
        &mut self,
        f: &Factory,
        skip: &mut Vec<String>,
        known: Vec<Candidate>,
    ) -> Result<Vec<Candidate>> {
        let mut known: BTreeMap<String, Candidate> =
            known.into_iter().map(|c| (c.msg.id.clone(), c)).collect();
        let fstore = f.store()?;
        let queue: Vec<Message> = fstore
            .load::<Messages>()?
            .state
            .inbox(&self.actor, false)
            .into_iter()
            .filter(|m| m.kind == "READY_FOR_QA" && !skip.contains(&m.id))
            .cloned()
            .collect();
        let repo = f.git_dir();
        if queue.iter().any(|m| !known.contains_key(&m.id)) {
            self.views.refresh(&self.company.stores_for_reading()?)?;
        }
        let mut ready = Vec::new();
        for msg in queue {
            if let Some(c) = known.remove(&msg.id) {
                ready.push(c);
                continue;
            }
            let wo_id = msg.meta.get("work_order").cloned().unwrap_or_default();
            // A store that cannot be read now (a config file being written) is not a work
            // order that is gone: look again on the next patrol.
            let wo = match self.read_work_order(&wo_id) {
                Ok(wo) => wo,
                Err(e) => {
                    self.log.warn(
                        "qa.unreadable",
                        &[("work_order", &wo_id), ("error", &e.message())],
                    );
                    skip.push(msg.id.clone());
                    continue;
                }
            };
            let branch = msg
                .meta
                .get("branch")
                .cloned()
                .or(wo.as_ref().and_then(|w| w.branch.clone()))
                .unwrap_or_else(|| format!("vermas/{wo_id}"));
            let req = QaRequest {
                msg,
                work_order: wo_id.clone(),
                wo,
                head: git::branch_commit(&repo, &branch),
                branch,
            };
            let t = self.triage(f, &req);
            if let Err(e) = self.act_on(f, &fstore, t, req, skip, &mut ready) {
                self.log.warn(
                    "qa.error",
                    &[("work_order", &wo_id), ("error", &e.message())],
                );
                self.memory.error(&wo_id, &e.message(), Instant::now());
            }
        }
        Ok(ready)
    }

    /// A work order from its home store; `None` when it (or its id) is missing.
    fn read_work_order(&self, wo_id: &str) -> Result<Option<WorkOrder>> {
        match self
            .company
            .store_for_work_order(wo_id)
            .and_then(|h| self.views.find(&h, wo_id))
        {
            Ok(wo) => Ok(wo),
            Err(e) if wo_id.is_empty() || e.kind() == crate::error::Kind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What [`control::triage`] says of one request.
    fn triage(&self, f: &Factory, req: &QaRequest) -> control::Triage {
        let wo = req.wo.as_ref();
        let obs = control::ReadyObs {
            message: req.msg.id.clone(),
            work_order: req.work_order.clone(),
            branch_exists: req.head.is_some(),
            branch: req.branch.clone(),
            status: wo.map(|w| w.status),
            blocked_for_gates: wo.is_some_and(|w| {
                w.status == Status::Blocked
                    && w.last_failure
                        .as_deref()
                        .is_some_and(|r| r.starts_with(NO_GATES))
            }),
            sent_by: req.msg.meta.get("incarnation").cloned(),
            holder: wo.and_then(|w| w.incarnation.clone()),
        };
        let rules = control::Rules {
            has_gates: !f.settings.gates.is_empty(),
            verification: f.settings.verification.enabled,
        };
        control::triage(&obs, rules, &self.memory, Instant::now())
    }

    /// Carries out what triage said; a ready request goes to `ready`, one to look at again on
    /// a later patrol to `skip`.
    fn act_on(
        &mut self,
        f: &Factory,
        fstore: &Store,
        t: control::Triage,
        req: QaRequest,
        skip: &mut Vec<String>,
        ready: &mut Vec<Candidate>,
    ) -> Result<()> {
        let QaRequest {
            msg,
            work_order: wo_id,
            wo,
            branch,
            head,
        } = req;
        match (t, wo) {
            (control::Triage::Stale(why), _) | (control::Triage::Rework(why), None) => {
                self.log
                    .info("qa.skip", &[("work_order", &wo_id), ("why", &why)]);
                mail::mark(fstore, &msg.id, false, &self.actor).map(|_| ())
            }
            (control::Triage::NoGates { block }, Some(wo)) => {
                skip.push(msg.id.clone());
                if block {
                    self.block_without_gates(f, &wo, &wo_id)
                } else {
                    Ok(())
                }
            }
            (control::Triage::Backoff, _) => {
                skip.push(msg.id.clone());
                Ok(())
            }
            (control::Triage::GiveUp(why), Some(wo)) => {
                skip.push(msg.id.clone());
                self.give_up(f, &msg, &wo, &why)
            }
            (control::Triage::Rework(why), Some(wo)) => {
                let c = Candidate::new(msg, wo, branch, head);
                self.rework(f, &c, &why, None, &[], None)
            }
            (control::Triage::Unblock, Some(mut wo)) => {
                let r = self.transition(&wo, Status::InReview, "gates are configured now");
                wo.status = Status::InReview;
                self.guard(f, Candidate::new(msg, wo, branch, head), ready)
                    .and(r)
            }
            (control::Triage::Ready, Some(wo)) => {
                self.guard(f, Candidate::new(msg, wo, branch, head), ready)
            }
            (_, None) => Ok(()),
        }
    }

    /// Blocks work QA cannot check: the factory has no gates.
    fn block_without_gates(&self, f: &Factory, wo: &WorkOrder, wo_id: &str) -> Result<()> {
        let reason = format!(
            "{NO_GATES}: add [[gates]] (name, command, timeout_seconds) to {} and QA picks this up on its next patrol; or set [verification] enabled = false to merge unchecked",
            f.work_dir().join("config.toml").display()
        );
        self.log
            .warn("qa.blocked", &[("work_order", wo_id), ("why", "no gates")]);
        self.transition(wo, Status::Blocked, &reason)
    }

    /// Lets a ready branch into the merge queue unless it changes protected paths (the gates'
    /// own scripts, `[verification] protected`) without a person's approval of this head:
    /// then it waits in `needs_approval`, the ceo is asked once, and its message is read
    /// (`co approve` hands it in again).
    fn guard(&mut self, f: &Factory, mut c: Candidate, ready: &mut Vec<Candidate>) -> Result<()> {
        let repo = f.git_dir();
        let target = f.target_branch();
        let scripts = control::gate_script_candidates(&f.settings.gates);
        // Two git processes that do not depend on each other, side by side.
        let (changed, gate_files) = std::thread::scope(|sc| {
            let gate_files = sc.spawn(|| git::files_in_tree(&repo, target, &scripts));
            let changed = git::changed_paths(&repo, target, &c.branch);
            (changed, gate_files.join().unwrap_or_default())
        });
        c.changed = changed?;
        let head = c.head.clone();
        let protected =
            control::protected_changes(&c.changed, &f.settings.verification.protected, &gate_files);
        if !control::needs_approval(&protected, c.wo.approved_head.as_deref(), &head) {
            ready.push(c);
            return Ok(());
        }
        let list = protected.join(", ");
        let reason = format!(
            "changes protected paths ({list}): waiting for a person's `co approve {}` (or `co reject {} --reason …`)",
            c.wo.id, c.wo.id
        );
        let mut meta = BTreeMap::new();
        meta.insert("work_order".to_string(), c.wo.id.clone());
        meta.insert("factory".to_string(), f.name.clone());
        meta.insert("head".to_string(), head.clone());
        let body = format!(
            "{} \"{}\" in {} changes paths that decide whether its work is right:\n\n{}\n\nLook at them (git -C {} diff {}...{}), then `co approve {}` to let QA merge it after the gates, or `co reject {} --reason \"…\"` to send it back.",
            c.wo.id,
            c.wo.title,
            f.name,
            protected
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n"),
            f.dir.display(),
            target,
            c.branch,
            c.wo.id,
            c.wo.id
        );
        escalate::escalate(
            &self.company,
            &Escalation {
                key: &format!("approval:{}:{head}", c.wo.id),
                subject: &format!("APPROVAL NEEDED {} changes protected paths", c.wo.id),
                body: &body,
                meta,
            },
            &self.actor,
        )?;
        self.transition(&c.wo, Status::NeedsApproval, &reason)?;
        mail::mark(&f.store()?, &c.msg.id, false, &self.actor)?;
        self.log.warn(
            "qa.needs_approval",
            &[("work_order", &c.wo.id), ("paths", &list)],
        );
        Ok(())
    }

    /// Errors again and again on one work order: blocked with the reason, escalated once, the
    /// message marked read (a person decides; `wo update ID --status in_review` hands it in
    /// again).
    fn give_up(&mut self, f: &Factory, msg: &Message, wo: &WorkOrder, why: &str) -> Result<()> {
        let mut meta = BTreeMap::new();
        meta.insert("work_order".to_string(), wo.id.clone());
        meta.insert("factory".to_string(), f.name.clone());
        let body = format!(
            "QA cannot merge {} \"{}\" in {}: {why}\n\nSee logs/qa-{}.log. Fix the cause, then `wo update {} --status in_review` and hand it in again (or dispatch it).",
            wo.id, wo.title, f.name, f.name, wo.id
        );
        escalate::escalate(
            &self.company,
            &Escalation {
                key: &format!("qa-error:{}:{}", wo.id, wo.attempts),
                subject: &format!("ESCALATION QA cannot merge {}", wo.id),
                body: &body,
                meta,
            },
            &self.actor,
        )?;
        self.transition(wo, Status::Blocked, why)?;
        mail::mark(&f.store()?, &msg.id, false, &self.actor)?;
        self.memory.settled(&wo.id);
        self.log
            .warn("qa.gave_up", &[("work_order", &wo.id), ("why", why)]);
        Ok(())
    }

    /// Moves a work order to `to` in its home store, unless it moved on meanwhile.
    fn transition(&self, wo: &WorkOrder, to: Status, reason: &str) -> Result<()> {
        let home = self.company.store_for_work_order(&wo.id)?;
        let mut w = home.lock()?;
        // One work order from the index (brought to the end of the log under the lock).
        let Some(cur) = workorder::lookup(&home, &wo.id)? else {
            return Ok(());
        };
        if cur.status == to || cur.status != wo.status {
            return Ok(());
        }
        w.append(vec![workorder::plan_transition(
            &cur,
            to,
            Some(reason),
            None,
            &self.actor,
        )?])?;
        w.report_warnings();
        Ok(())
    }

    /// Merges a batch: the whole of it gated once, bisected when it fails. Returns how many
    /// work orders it settled.
    fn run_batch(&mut self, f: &Factory, batch: Vec<Candidate>) -> Result<usize> {
        let id = crate::ids::new_incarnation_id().replacen("inc-", "batch-", 1);
        let base = self.target_rev(f)?;
        let wos: Vec<String> = batch.iter().map(|c| c.wo.id.clone()).collect();
        f.store()?.append(vec![ev(
            types::QA_BATCH_STARTED,
            &self.actor,
            &BatchEvent {
                batch: id.clone(),
                work_orders: wos.clone(),
                target: Some(f.target_branch().to_string()),
                base: Some(base),
                failed: Vec::new(),
            },
        )?])?;
        self.log.info(
            "qa.batch",
            &[("batch", &id), ("work_orders", &wos.join(","))],
        );
        let parallel = f.settings.qa.parallel_gates as usize;
        let mut run = BatchRun {
            by_id: batch.into_iter().map(|c| (c.wo.id.clone(), c)).collect(),
            bisect: control::Bisection::with_parallel(wos, parallel),
            id,
            settled: 0,
            moves: 0,
            tests: 0,
            gate_of: BTreeMap::new(),
        };
        loop {
            if self.shutdown.requested() {
                break;
            }
            let flow = match run.bisect.step() {
                control::Step::Done => break,
                control::Step::Rework {
                    work_order,
                    failure,
                } => {
                    if let Some(c) = run.by_id.get(&work_order) {
                        let gate = run.gate_of.get(&failure);
                        self.rework(f, c, &failure, gate, &[], Some(&run.id))?;
                        run.settled += 1;
                    }
                    ControlFlow::Continue(())
                }
                control::Step::TestPair(left, right) => {
                    self.batch_pair(f, &mut run, left, right)?
                }
                control::Step::Test(group) => self.batch_group(f, &mut run, group)?,
            };
            if flow.is_break() {
                break;
            }
        }
        Ok(run.settled)
    }

    /// Gates both halves of a failed group side by side; breaks when interrupted.
    fn batch_pair(
        &mut self,
        f: &Factory,
        run: &mut BatchRun,
        left: Vec<String>,
        right: Vec<String>,
    ) -> Result<ControlFlow<()>> {
        let ids = [&left, &right];
        let halves = ids.map(|g| {
            g.iter()
                .filter_map(|w| run.by_id.get(w))
                .collect::<Vec<&Candidate>>()
        });
        let test = run.tests + 1;
        run.tests += 2;
        let halves = [halves[0].as_slice(), halves[1].as_slice()];
        let id = &run.id;
        match self.test_pair(f, id, test, halves, &mut run.bisect, &mut run.settled)? {
            PairTested::Done {
                left: rl,
                right: rr,
                failures,
            } => {
                for (text, gate) in failures {
                    run.gate_of.insert(text, gate);
                }
                for (group, r) in [(&left, &rl), (&right, &rr)] {
                    if let control::PairResult::Failed(_) = r
                        && group.len() > 1
                    {
                        self.bisected(f, &run.id, group)?;
                    }
                }
                run.bisect.pair_tested(rl, rr);
            }
            PairTested::TargetMoved => target_moved(f, &mut run.moves, &[left, right].concat())?,
            PairTested::Interrupted => return Ok(ControlFlow::Break(())),
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Gates one group of the batch; breaks when interrupted.
    fn batch_group(
        &mut self,
        f: &Factory,
        run: &mut BatchRun,
        group: Vec<String>,
    ) -> Result<ControlFlow<()>> {
        run.tests += 1;
        let members: Vec<&Candidate> = group.iter().filter_map(|w| run.by_id.get(w)).collect();
        let (id, test) = (&run.id, run.tests);
        match self.test_group(f, id, test, &members, &mut run.bisect, &mut run.settled)? {
            Tested::Empty => {}
            Tested::Passed => {
                run.bisect.passed();
                run.settled += members.len();
            }
            Tested::Failed(failure, gate) => {
                run.gate_of.insert(failure.clone(), gate);
                if group.len() > 1 {
                    self.bisected(f, &run.id, &group)?;
                }
                run.bisect.failed(failure);
            }
            Tested::TargetMoved => target_moved(f, &mut run.moves, &group)?,
            Tested::Interrupted => return Ok(ControlFlow::Break(())),
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Records that a group's gates failed and it is split in halves.
    fn bisected(&self, f: &Factory, batch: &str, group: &[String]) -> Result<()> {
        let half = group.len() / 2;
        f.store()?.append(vec![ev(
            types::QA_BATCH_BISECTED,
            &self.actor,
            &BatchEvent {
                batch: batch.to_string(),
                work_orders: group[..half].to_vec(),
                failed: group.to_vec(),
                ..Default::default()
            },
        )?])?;
        self.log.info(
            "qa.bisect",
            &[("batch", batch), ("failed", &group.join(","))],
        );
        Ok(())
    }

    /// Merges a group onto the target in the QA worktree, gates the result and, when it
    /// passes, moves the target to it (compare-and-swap) and closes every member.
    #[allow(clippy::too_many_arguments)]
    fn test_group(
        &mut self,
        f: &Factory,
        batch: &str,
        test: u32,
        members: &[&Candidate],
        bisect: &mut control::Bisection,
        settled: &mut usize,
    ) -> Result<Tested> {
        let (lane, before) = self.prepare(f, 0)?;
        let at = (lane.as_path(), before);
        let Some(g) = self.merge_group(f, batch, test, at, members, bisect, settled)? else {
            return Ok(Tested::Empty);
        };
        let gates = f.settings.gates.clone();
        let shutdown = self.shutdown.clone();
        let wos = g.work_orders();
        let gated = gate_tree(
            &gates,
            &g,
            f.settings.verification.require_all_pass,
            &shutdown,
            |gate| {
                self.progress(
                    f,
                    Some(Progress {
                        batch: batch.to_string(),
                        work_orders: wos.clone(),
                        gate: Some(gate.to_string()),
                        since: crate::clock::format_timestamp(chrono::Utc::now()),
                    }),
                )
            },
        )?;
        self.settle_group(f, batch, &g, &gated, true)
    }

    /// The two halves of a failed group, each merged onto the same target in its own worktree
    /// and gated at the same time; the first that passes lands.
    #[allow(clippy::too_many_arguments)]
    fn test_pair(
        &mut self,
        f: &Factory,
        batch: &str,
        test: u32,
        halves: [&[&Candidate]; 2],
        bisect: &mut control::Bisection,
        settled: &mut usize,
    ) -> Result<PairTested> {
        let mut merged: [Option<MergedGroup<'_>>; 2] = [None, None];
        for (lane, members) in halves.iter().enumerate() {
            let (dir, before) = self.prepare(f, lane)?;
            let t = test + lane as u32;
            let at = (dir.as_path(), before);
            merged[lane] = self.merge_group(f, batch, t, at, members, bisect, settled)?;
        }
        let wos: Vec<String> = merged
            .iter()
            .flatten()
            .flat_map(|g| g.work_orders())
            .collect();
        self.progress(
            f,
            Some(Progress {
                batch: batch.to_string(),
                work_orders: wos,
                gate: Some("every gate, two halves side by side".into()),
                since: crate::clock::format_timestamp(chrono::Utc::now()),
            }),
        );
        let [gl, gr] = gate_side_by_side(f, &merged, &self.shutdown);
        let (gl, gr) = (gl.transpose()?, gr.transpose()?);
        let (Some(rl), Some(rr)) = (pair_result(&gl), pair_result(&gr)) else {
            for g in merged.iter().flatten() {
                self.reset_lane(&g.lane, &g.before)?;
            }
            return Ok(PairTested::Interrupted);
        };
        let lands = control::lands(&rl, &rr);
        let sides = [control::Side::Left, control::Side::Right];
        let gated = [gl, gr];
        let mut failures = Vec::new();
        // The halves that do not land first (their gate evidence kept, their worktree reset),
        // then the one that does.
        let mut order = [0usize, 1];
        if lands == Some(control::Side::Left) {
            order = [1, 0];
        }
        for i in order {
            let (Some(g), Some(gated)) = (&merged[i], &gated[i]) else {
                continue;
            };
            match self.settle_group(f, batch, g, gated, lands == Some(sides[i]))? {
                Tested::Failed(text, gate) => failures.push((text, gate)),
                Tested::TargetMoved => return Ok(PairTested::TargetMoved),
                Tested::Interrupted => return Ok(PairTested::Interrupted),
                Tested::Passed if lands == Some(sides[i]) => *settled += g.merged.len(),
                Tested::Passed | Tested::Empty => {}
            }
        }
        Ok(PairTested::Done {
            left: rl,
            right: rr,
            failures,
        })
    }

    /// Merges `members` one after the other onto the target commit `before` in the worktree
    /// `lane` (which [`Qa::prepare`] put there). A branch that conflicts goes back as rework,
    /// one already on the target is closed, one that errs waits for the next patrol; the
    /// rest are returned, ready for the gates.
    #[allow(clippy::too_many_arguments)]
    fn merge_group<'a>(
        &mut self,
        f: &Factory,
        batch: &str,
        test: u32,
        (lane, before): (&Path, String),
        members: &[&'a Candidate],
        bisect: &mut control::Bisection,
        settled: &mut usize,
    ) -> Result<Option<MergedGroup<'a>>> {
        let repo = f.git_dir();
        let who = git::Identity::qa(&f.name);
        // Merges and gates run in it from here on.
        self.clean.remove(lane);
        let mut merged: Vec<(&Candidate, String)> = Vec::new();
        for c in members {
            // The lane's head: the target, then each merge made on it.
            let head = merged.last().map_or(before.clone(), |(_, m)| m.clone());
            self.log.info(
                "qa.merge",
                &[
                    ("work_order", &c.wo.id),
                    ("branch", &c.branch),
                    ("onto", &head),
                ],
            );
            let (result, commit, conflicts) = merge_branch(&repo, lane, c, &head, &before, &who);
            match control::after_merge(&result, &c.branch, f.target_branch()) {
                control::AfterMerge::Gate => merged.push((c, commit)),
                control::AfterMerge::Rework(reason) => {
                    git::reset_to(lane, &head)?;
                    bisect.remove(&c.wo.id);
                    self.rework(f, c, &reason, None, &conflicts, Some(batch))?;
                    *settled += 1;
                }
                control::AfterMerge::CloseMerged => {
                    // A retry after a crash past the ref update: it is on the target already.
                    let commit = find_merge_commit(&repo, &c.branch, f.target_branch())
                        .unwrap_or_else(|| before.clone());
                    self.log.info(
                        "qa.already_merged",
                        &[("work_order", &c.wo.id), ("commit", &commit)],
                    );
                    bisect.remove(&c.wo.id);
                    self.finish_merged(f, c, &commit, Some(batch), None)?;
                    *settled += 1;
                }
                control::AfterMerge::Error(e) => {
                    git::reset_to(lane, &head)?;
                    bisect.remove(&c.wo.id);
                    self.log
                        .warn("qa.merge_error", &[("work_order", &c.wo.id), ("error", &e)]);
                    self.memory.error(&c.wo.id, &e, Instant::now());
                }
            }
        }
        if merged.is_empty() {
            return Ok(None);
        }
        let dir = evidence_dir(f, batch, test, &merged)?;
        Ok(Some(MergedGroup {
            lane: lane.to_path_buf(),
            before,
            merged,
            dir,
        }))
    }

    /// After a group's gates: its gate events and evidence written; then, when it passed and
    /// `land`, the target moved to it (compare-and-swap) and every member closed, otherwise
    /// its worktree reset.
    fn settle_group(
        &mut self,
        f: &Factory,
        batch: &str,
        g: &MergedGroup<'_>,
        gated: &Gated,
        land: bool,
    ) -> Result<Tested> {
        let wos = g.work_orders();
        for r in &gated.results {
            for (c, _) in &g.merged {
                self.record_gate(f, c, r, batch)?;
            }
        }
        if g.merged.len() > 1 {
            for (c, _) in &g.merged {
                if let Ok(to) = crate::fsutil::ensure_dir_under(&f.work_dir(), &c.evidence_rel()) {
                    link_evidence(&g.dir, &to, batch, &wos);
                }
            }
        }
        match &gated.verdict {
            control::Verdict::Interrupted | control::Verdict::Continue => {
                self.reset_lane(&g.lane, &g.before)?;
                Ok(Tested::Interrupted)
            }
            control::Verdict::Fail(i) => {
                self.reset_lane(&g.lane, &g.before)?;
                let (text, gate) = failure_of(&gated.results[*i]);
                Ok(Tested::Failed(text, gate))
            }
            control::Verdict::Pass if !land => {
                self.reset_lane(&g.lane, &g.before)?;
                Ok(Tested::Passed)
            }
            control::Verdict::Pass => {
                let Some((_, last)) = g.merged.last() else {
                    return Ok(Tested::Empty);
                };
                let target = format!("refs/heads/{}", f.target_branch());
                if let Err(e) = git::update_ref(&f.git_dir(), &target, last, &g.before) {
                    // The target moved under us (a push from elsewhere): merge again.
                    self.log
                        .warn("qa.target_moved", &[("error", &e.to_string())]);
                    return Ok(Tested::TargetMoved);
                }
                let push = self.push(f);
                for (c, commit) in &g.merged {
                    self.finish_merged(f, c, commit, Some(batch), push.as_ref())?;
                    self.memory.settled(&c.wo.id);
                }
                // Left clean on the new target now, so the next batch starts merging at once.
                self.reset_lane(&g.lane, last)?;
                Ok(Tested::Passed)
            }
        }
    }

    /// Pushes the target when `[factory] push = true`: `(pushed, error)`.
    fn push(&self, f: &Factory) -> Option<(bool, Option<String>)> {
        if !f.settings.factory.push {
            return None;
        }
        Some(match git::push(&f.git_dir(), "origin", f.target_branch()) {
            Ok(()) => (true, None),
            Err(e) => {
                self.log
                    .warn("qa.push_failed", &[("error", &e.to_string())]);
                (false, Some(e.to_string()))
            }
        })
    }

    fn record_gate(&self, f: &Factory, c: &Candidate, r: &GateResult, batch: &str) -> Result<()> {
        self.log.info(
            "qa.gate",
            &[
                ("work_order", &c.wo.id),
                ("gate", &r.gate),
                ("passed", if r.passed() { "true" } else { "false" }),
                (
                    "exit_code",
                    &r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                ),
                ("ms", &r.duration.as_millis().to_string()),
            ],
        );
        f.store()?.append(vec![ev(
            types::QA_GATE_RUN,
            &self.actor,
            &GateRun {
                work_order: c.wo.id.clone(),
                attempt: c.attempt(),
                gate: r.gate.clone(),
                command: r.argv.clone(),
                exit_code: r.exit_code,
                timed_out: r.timed_out,
                duration_ms: r.duration.as_millis() as u64,
                passed: r.passed(),
                evidence: c.evidence(f).display().to_string(),
                batch: Some(batch.to_string()),
            },
        )?])?;
        Ok(())
    }

    /// Sends a work order back: `rework` with the reason, `REWORK_REQUEST` to the supervisor,
    /// the message marked read last (one batch of events per store).
    fn rework(
        &mut self,
        f: &Factory,
        c: &Candidate,
        reason: &str,
        gate: Option<&FailedGate>,
        conflicts: &[String],
        batch: Option<&str>,
    ) -> Result<()> {
        let wo = &c.wo;
        let home = self.company.store_for_work_order(&wo.id)?;
        let fstore = f.store()?;
        let mut locked = Locked::take(&home, &fstore)?;
        let current = workorder::lookup(&home, &wo.id)?;
        let mut he = Vec::new();
        if let Some(cur) = current.filter(|c| c.status == Status::InReview) {
            he.push(workorder::plan_transition(
                &cur,
                Status::Rework,
                Some(reason),
                None,
                &self.actor,
            )?);
        }
        let mut fe = self.rework_events(wo, reason, gate, conflicts, batch)?;
        fe.push(self.rework_request(f, &fstore, wo, reason, gate)?);
        fe.push(ev(
            types::MAIL_READ,
            &self.actor,
            &Marked {
                id: c.msg.id.clone(),
            },
        )?);
        locked.append(he, fe)?;
        locked.report_warnings();
        self.memory.settled(&wo.id);
        self.log.info(
            "qa.rework",
            &[
                ("work_order", &wo.id),
                ("reason", reason.lines().next().unwrap_or_default()),
            ],
        );
        Ok(())
    }

    /// `qa.merge_failed` (when it conflicts), then `qa.rework_requested`.
    fn rework_events(
        &self,
        wo: &WorkOrder,
        reason: &str,
        gate: Option<&FailedGate>,
        conflicts: &[String],
        batch: Option<&str>,
    ) -> Result<Vec<NewEvent>> {
        let mut fe = Vec::new();
        if !conflicts.is_empty() {
            fe.push(ev(
                types::QA_MERGE_FAILED,
                &self.actor,
                &QaEvent {
                    work_order: wo.id.clone(),
                    conflicts: conflicts.to_vec(),
                    reason: Some(reason.to_string()),
                    batch: batch.map(str::to_string),
                    ..Default::default()
                },
            )?);
        }
        fe.push(ev(
            types::QA_REWORK_REQUESTED,
            &self.actor,
            &QaEvent {
                work_order: wo.id.clone(),
                attempt: Some(wo.attempts),
                gate: gate.map(|g| g.gate.clone()),
                exit_code: gate.and_then(|g| g.exit_code),
                timed_out: gate.map(|g| g.timed_out),
                conflicts: conflicts.to_vec(),
                reason: Some(reason.lines().next().unwrap_or_default().to_string()),
                batch: batch.map(str::to_string),
                ..Default::default()
            },
        )?);
        Ok(fe)
    }

    /// The `REWORK_REQUEST` to the supervisor, naming the failed gate if any.
    fn rework_request(
        &self,
        f: &Factory,
        fstore: &Store,
        wo: &WorkOrder,
        reason: &str,
        gate: Option<&FailedGate>,
    ) -> Result<NewEvent> {
        let sup = AgentId::Supervisor {
            factory: f.name.clone(),
        };
        let mut meta = BTreeMap::new();
        meta.insert("work_order".to_string(), wo.id.clone());
        meta.insert("attempt".to_string(), wo.attempts.to_string());
        if let Some(g) = gate {
            meta.insert("gate".to_string(), g.gate.clone());
            meta.insert(
                "exit_code".to_string(),
                g.exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "none".into()),
            );
            meta.insert("timed_out".to_string(), g.timed_out.to_string());
        }
        ev(
            types::MAIL_SENT,
            &self.actor,
            &Sent {
                id: mail::unused_message_id(fstore)?,
                from: self.actor.clone(),
                to: sup.to_string(),
                subject: format!("REWORK_REQUEST {}", wo.id),
                body: reason.to_string(),
                kind: "REWORK_REQUEST".into(),
                priority: mail_priority(wo.priority),
                meta,
            },
        )
    }

    /// Closes a merged work order: `qa.merged`, `work_order.closed` with its merge commit,
    /// `MERGED` to the supervisor, the message marked read; then its worktrees and branch go.
    fn finish_merged(
        &self,
        f: &Factory,
        c: &Candidate,
        commit: &str,
        batch: Option<&str>,
        push: Option<&(bool, Option<String>)>,
    ) -> Result<()> {
        let wo = &c.wo;
        let target = f.target_branch();
        let home = self.company.store_for_work_order(&wo.id)?;
        let fstore = f.store()?;
        let mut locked = Locked::take(&home, &fstore)?;
        let current = workorder::lookup(&home, &wo.id)?;
        let mut he = Vec::new();
        if let Some(cur) = current.filter(|c| c.status != Status::Closed) {
            he.push(workorder::plan_close(
                &cur,
                Some(&format!("merged into {target} by QA")),
                Some(commit),
                &self.actor,
            )?);
        }
        let fe = self.merged_events(f, &fstore, c, commit, batch, push)?;
        locked.append(he, fe)?;
        locked.report_warnings();
        drop(locked);
        self.log
            .info("qa.merged", &[("work_order", &wo.id), ("commit", commit)]);
        self.remove_merged_branch(f, c)
    }

    /// `qa.merged`, `MERGED` to the supervisor (saying when the push failed), and the message
    /// marked read.
    fn merged_events(
        &self,
        f: &Factory,
        fstore: &Store,
        c: &Candidate,
        commit: &str,
        batch: Option<&str>,
        push: Option<&(bool, Option<String>)>,
    ) -> Result<Vec<NewEvent>> {
        let (wo, target) = (&c.wo, f.target_branch());
        let sup = AgentId::Supervisor {
            factory: f.name.clone(),
        };
        let mut meta = BTreeMap::new();
        meta.insert("work_order".to_string(), wo.id.clone());
        meta.insert("merge_commit".to_string(), commit.to_string());
        meta.insert("branch".to_string(), c.branch.clone());
        let push_error = push.and_then(|(_, e)| e.clone());
        let mut body = format!("{} merged into {target} as {commit}.", wo.id);
        if let Some(e) = &push_error {
            body.push_str(&format!(" Pushing {target} failed: {e}"));
        }
        Ok(vec![
            ev(
                types::QA_MERGED,
                &self.actor,
                &QaEvent {
                    work_order: wo.id.clone(),
                    branch: c.branch.clone(),
                    merge_commit: Some(commit.to_string()),
                    attempt: Some(wo.attempts),
                    pushed: push.map(|(p, _)| *p),
                    push_error,
                    batch: batch.map(str::to_string),
                    ..Default::default()
                },
            )?,
            ev(
                types::MAIL_SENT,
                &self.actor,
                &Sent {
                    id: mail::unused_message_id(fstore)?,
                    from: self.actor.clone(),
                    to: sup.to_string(),
                    subject: format!("MERGED {}", wo.id),
                    body,
                    kind: "MERGED".into(),
                    priority: MailPriority::Normal,
                    meta,
                },
            )?,
            ev(
                types::MAIL_READ,
                &self.actor,
                &Marked {
                    id: c.msg.id.clone(),
                },
            )?,
        ])
    }

    /// The branch is in the target now: its worktrees and the branch itself can go.
    fn remove_merged_branch(&self, f: &Factory, c: &Candidate) -> Result<()> {
        let repo = f.git_dir();
        let mut removed = Vec::new();
        if git::may_have_checked_out(&repo, &c.branch)
            && let Ok(wts) = git::worktrees(&repo)
        {
            for w in wts
                .iter()
                .filter(|w| w.branch.as_deref() == Some(c.branch.as_str()))
            {
                if w.prunable {
                    // Its directory is gone already (a worker that is done deletes its own):
                    // git only has to forget it.
                    let _ = git::worktree_prune(&repo);
                } else if git::worktree_remove(&repo, &w.path, true).is_ok() {
                    removed.push(w.path.display().to_string());
                }
            }
        }
        if git::is_ancestor(&repo, &c.branch, f.target_branch()) {
            let _ = git::delete_branch(&repo, &c.branch, true);
        }
        for p in removed {
            f.store()?.append(vec![ev(
                types::WORKTREE_REMOVED,
                &self.actor,
                &WorktreeEvent {
                    path: p,
                    branch: c.branch.clone(),
                    work_order: c.wo.id.clone(),
                    slot: None,
                    how: "merged".into(),
                },
            )?])?;
        }
        Ok(())
    }
}

/// A batch being merged: its candidates, and what testing and bisecting it found so far.
struct BatchRun {
    id: String,
    by_id: BTreeMap<String, Candidate>,
    bisect: control::Bisection,
    settled: usize,
    /// How often the target moved under a test.
    moves: u32,
    tests: u32,
    /// The gate behind each failure text, for the rework that names it.
    gate_of: BTreeMap<String, FailedGate>,
}

/// The target moved under a test: merge again, unless it keeps moving (then the batch waits
/// for the next patrol).
fn target_moved(f: &Factory, moves: &mut u32, merging: &[String]) -> Result<()> {
    match control::after_ref_update(true, *moves) {
        control::AfterRefUpdate::Later => Err(Error::failure(format!(
            "{} kept moving while merging {}; will retry on the next patrol",
            f.target_branch(),
            merging.join(", ")
        ))),
        _ => {
            *moves += 1;
            Ok(())
        }
    }
}

/// Gates the merged halves at the same time, each on its own thread.
fn gate_side_by_side(
    f: &Factory,
    merged: &[Option<MergedGroup<'_>>; 2],
    shutdown: &Shutdown,
) -> [Option<Result<Gated>>; 2] {
    let gates = f.settings.gates.clone();
    let all = f.settings.verification.require_all_pass;
    std::thread::scope(|sc| {
        let runs = merged.each_ref().map(|g| {
            g.as_ref()
                .map(|g| sc.spawn(|| gate_tree(&gates, g, all, shutdown, |_| {})))
        });
        runs.map(|r| {
            r.map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::failure("a gate run panicked")))
            })
        })
    })
}

/// How a half went (`None`: interrupted before its gates decided).
fn pair_result(g: &Option<Gated>) -> Option<control::PairResult> {
    match g {
        None => Some(control::PairResult::Empty),
        Some(g) => match &g.verdict {
            control::Verdict::Pass => Some(control::PairResult::Passed),
            control::Verdict::Fail(i) => {
                Some(control::PairResult::Failed(failure_of(&g.results[*i]).0))
            }
            _ => None,
        },
    }
}

/// Merges a candidate's branch onto `head` in `lane`: what happened, the commit the lane is
/// at, and the conflicting paths.
fn merge_branch(
    repo: &Path,
    lane: &Path,
    c: &Candidate,
    head: &str,
    before: &str,
    who: &git::Identity,
) -> (control::Merged, String, Vec<String>) {
    let message = format!(
        "Merge {}: {} {}",
        c.branch,
        c.wo.id,
        crate::text::escape_control(&c.wo.title)
    );
    match git::merge(lane, head, &c.branch, &message, who) {
        Ok(MergeOutcome::Merged(commit)) => (control::Merged::Commit, commit, vec![]),
        Ok(MergeOutcome::Conflicts(paths)) => (
            control::Merged::Conflicts(paths.clone()),
            head.to_string(),
            paths,
        ),
        Ok(MergeOutcome::AlreadyMerged) => (
            control::Merged::NothingNew {
                on_target: git::is_ancestor(repo, &c.branch, before),
            },
            head.to_string(),
            vec![],
        ),
        Err(e) => (
            control::Merged::Error(e.to_string()),
            head.to_string(),
            vec![],
        ),
    }
}

/// Where a merged group's gate output goes: its one member's evidence, or the batch's test
/// directory. Each member's evidence also names the paths it changed.
fn evidence_dir(
    f: &Factory,
    batch: &str,
    test: u32,
    merged: &[(&Candidate, String)],
) -> Result<PathBuf> {
    let rel = if merged.len() == 1 {
        merged[0].0.evidence_rel()
    } else {
        Path::new("evidence")
            .join("batches")
            .join(batch)
            .join(test.to_string())
    };
    // Every level below .work is a real directory: a symlink planted there is refused.
    let dir = crate::fsutil::ensure_dir_under(&f.work_dir(), &rel)
        .map_err(|e| StoreError::io(&f.work_dir().join(&rel), e))?;
    for (c, _) in merged {
        if let Ok(d) = crate::fsutil::ensure_dir_under(&f.work_dir(), &c.evidence_rel()) {
            let mut text = c.changed.join("\n");
            text.push('\n');
            let _ = crate::fsutil::atomic_write(&d.join("changed-paths.txt"), text.as_bytes());
        }
    }
    Ok(dir)
}

/// The gate a rework names.
/// A group merged onto the target in one QA worktree, ready for its gates.
struct MergedGroup<'a> {
    /// The worktree it is merged in, and the target it was merged onto.
    lane: PathBuf,
    before: String,
    /// Each member and its merge commit, in order.
    merged: Vec<(&'a Candidate, String)>,
    /// Where the gates' output goes.
    dir: PathBuf,
}

impl MergedGroup<'_> {
    fn work_orders(&self) -> Vec<String> {
        self.merged.iter().map(|(c, _)| c.wo.id.clone()).collect()
    }
}

/// What a group's gates said.
struct Gated {
    results: Vec<GateResult>,
    verdict: control::Verdict,
}

/// How a pair of halves went.
enum PairTested {
    Done {
        left: control::PairResult,
        right: control::PairResult,
        /// The failures, for the rework that names their gate.
        failures: Vec<(String, FailedGate)>,
    },
    TargetMoved,
    Interrupted,
}

/// Runs a merged group's gates in its worktree, in order, until [`control::verdict`] decides;
/// `started` is told each gate's name as it starts. Touches nothing but the gates' own files,
/// so two can run at once.
fn gate_tree(
    gates: &[crate::config::Gate],
    g: &MergedGroup<'_>,
    require_all_pass: bool,
    shutdown: &Shutdown,
    mut started: impl FnMut(&str),
) -> Result<Gated> {
    let label = g.work_orders().join(",");
    let mut results: Vec<GateResult> = Vec::new();
    let mut outcomes = Vec::new();
    let verdict = loop {
        match control::verdict(&outcomes, gates.len(), require_all_pass) {
            control::Verdict::Continue => {}
            v => break v,
        }
        let gate = &gates[results.len()];
        started(&gate.name);
        let r = run_gate(gate, &g.lane, &g.dir, &label, shutdown)?;
        outcomes.push(control::GateOutcome {
            passed: r.passed(),
            interrupted: r.interrupted,
        });
        results.push(r);
    };
    Ok(Gated { results, verdict })
}

/// The rework text of a failed gate, and the gate.
fn failure_of(bad: &GateResult) -> (String, FailedGate) {
    let status = if bad.timed_out {
        format!("timed out after {:.0}s", bad.duration.as_secs_f64())
    } else {
        format!(
            "exit code {}",
            bad.exit_code
                .map(|c| c.to_string())
                .unwrap_or("none".into())
        )
    };
    (
        format!(
            "gate {} failed ({status}); evidence in {}\n--- output tail ---\n{}",
            bad.gate,
            bad.dir.display(),
            bad.tail
        ),
        FailedGate {
            gate: bad.gate.clone(),
            exit_code: bad.exit_code,
            timed_out: bad.timed_out,
        },
    )
}

struct FailedGate {
    gate: String,
    exit_code: Option<i32>,
    timed_out: bool,
}

/// Gives a member of a batch its own evidence: the batch's gate files linked (or copied) into
/// `evidence/<wo>/<attempt>/`, with `batch.json` naming the batch and its members.
fn link_evidence(from: &Path, to: &Path, batch: &str, members: &[String]) {
    if let Ok(rd) = std::fs::read_dir(from) {
        for e in rd.flatten() {
            let dest = to.join(e.file_name());
            let _ = std::fs::remove_file(&dest);
            if std::fs::hard_link(e.path(), &dest).is_err() {
                let _ = std::fs::copy(e.path(), &dest);
            }
        }
    }
    let info = serde_json::json!({ "batch": batch, "work_orders": members, "gates_in": from.display().to_string() });
    let _ = crate::fsutil::atomic_write(&to.join("batch.json"), info.to_string().as_bytes());
}

/// The merge commit on `target` that brought `branch` in (the first merge on the ancestry path).
fn find_merge_commit(repo: &Path, branch: &str, target: &str) -> Option<String> {
    let out = git::run(
        repo,
        &[
            "rev-list",
            "--merges",
            "--ancestry-path",
            "--reverse",
            &format!("{branch}..{target}"),
        ],
    )
    .ok()?;
    out.lines().next().map(str::to_string)
}

/// `co qa run FACTORY`: the QA loop, until SIGTERM/SIGINT/SIGHUP.
pub fn run(company: &Company, factory: &str) -> Result<()> {
    let f = company.factory(factory)?;
    let _lock = daemon::InstanceLock::acquire(
        &crate::control::operations::Role::Qa.lock_path(&f.work_dir()),
        &format!("QA of {factory}"),
    )?;
    let (tx, rx) = std::sync::mpsc::channel();
    let shutdown = daemon::handle_signals(tx.clone())?;
    let _watcher = daemon::watch(
        &[
            f.work_dir().join("events"),
            f.work_dir(),
            company.root.join(".vermas"),
        ],
        tx,
    );
    let mut qa = Qa::new(company, factory, shutdown.clone())?;
    qa.log.info(
        "qa.started",
        &[
            ("factory", factory),
            ("pid", &std::process::id().to_string()),
        ],
    );
    qa.prepare(&f, 0)?;
    loop {
        if let Err(e) = qa.patrol() {
            qa.log.warn("qa.patrol_failed", &[("error", &e.message())]);
        }
        let interval = qa
            .factory()
            .map(|f| f.settings.factory_patrol_interval())
            .unwrap_or(Duration::from_secs(10));
        if daemon::next_wake(&rx, interval, &shutdown) == Wake::Shutdown {
            break;
        }
    }
    qa.log.info("qa.stopped", &[("factory", factory)]);
    Ok(())
}
