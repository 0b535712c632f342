//! QA (`co qa run FACTORY`): the merge queue of a factory, one work order at a time, urgent first
//! then oldest (design §5).
//!
//! For each `READY_FOR_QA`: merge the worker's branch onto the current target in the QA worktree
//! (detached, so the target branch does not move yet); a conflict is rework naming the paths.
//! Run every gate on the merged tree with its timeout, keeping stdout, stderr, exit code and
//! duration under `.work/evidence/<wo>/<attempt>/`. All pass: move the target with a
//! compare-and-swap (`git update-ref NEW OLD`), push if configured, close the work order with
//! the merge commit, send MERGED, remove the worktree and delete the branch. Any failure: reset
//! the QA worktree and send REWORK_REQUEST with the gate's name, exit code and output tail.
//!
//! Crash safety: the target only moves after the gates pass, in one ref update; the message is
//! marked read only after the outcome is written, so a QA killed mid-merge retries it, and a
//! retry of work already on the target closes it without merging twice.

use crate::actions::dispatch::{Locked, ev};
use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::config::Gate;
use crate::effects::git::{self, MergeOutcome};
use crate::error::{Error, Result};
use crate::event::types;
use crate::loops::daemon::{self, Log, Shutdown, Wake};
use crate::mail::{self, MailPriority, Marked, Message, Messages, Sent};
use crate::slots::WorktreeEvent;
use crate::store::StoreError;
use crate::workorder::{self, Status, WorkOrder, WorkOrders};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    crate::fsutil::ensure_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
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
    let (mut exit_code, mut timed_out, mut interrupted) = (None, false, false);
    match cmd.spawn() {
        Err(e) => {
            let _ = std::fs::write(&err_path, format!("cannot run {:?}: {e}\n", argv[0]));
            exit_code = Some(127);
        }
        Ok(mut child) => loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    exit_code = status.code().or(Some(128 + 9));
                    break;
                }
                Ok(None) => {}
                Err(_) => break,
            }
            if start.elapsed() >= timeout || shutdown.requested() {
                timed_out = !shutdown.requested();
                interrupted = shutdown.requested();
                daemon::kill_group(child.id());
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
        },
    }
    let duration = start.elapsed();
    let mut tail = tail_of(&out_path, 25);
    let etail = tail_of(&err_path, 25);
    if !etail.is_empty() {
        if !tail.is_empty() {
            tail.push('\n');
        }
        tail.push_str(&etail);
    }
    let result = GateResult {
        gate: gate.name.clone(),
        argv,
        exit_code,
        timed_out,
        interrupted,
        duration,
        dir: dir.to_path_buf(),
        tail,
    };
    let json_path = dir.join(format!("{}.json", gate.name));
    let summary = serde_json::json!({
        "gate": result.gate,
        "command": result.argv,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "duration_ms": result.duration.as_millis() as u64,
        "passed": result.passed(),
    });
    let _ = crate::fsutil::atomic_write(&json_path, summary.to_string().as_bytes());
    Ok(result)
}

/// A running QA department for one factory.
pub struct Qa<'a> {
    company: &'a Company,
    name: String,
    actor: String,
    log: Log,
    shutdown: Shutdown,
}

/// What processing one message came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Processed {
    Merged(String),
    Rework(String),
    Blocked,
    Stale(String),
    Interrupted,
}

impl<'a> Qa<'a> {
    pub fn new(company: &'a Company, factory: &str, shutdown: Shutdown) -> Result<Qa<'a>> {
        let f = company.factory(factory)?;
        Ok(Qa {
            company,
            name: f.name.clone(),
            actor: AgentId::Qa {
                factory: f.name.clone(),
            }
            .to_string(),
            log: Log::new(
                company.logs_dir().join(format!("qa-{}.log", f.name)),
                &f.settings,
            ),
            shutdown,
        })
    }

    fn factory(&self) -> Result<Factory> {
        self.company.factory(&self.name)
    }

    /// Makes sure the QA worktree exists and sits clean on the target.
    pub fn prepare(&self, f: &Factory) -> Result<PathBuf> {
        let qa = f.qa_dir();
        let repo = f.git_dir();
        let registered = git::worktrees(&repo)?
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
                        "qa.stale-{}",
                        chrono::Utc::now().format("%Y%m%dT%H%M%S")
                    ));
                    std::fs::rename(&qa, &aside).map_err(|e| StoreError::io(&qa, e))?;
                }
            }
            let _ = git::worktree_prune(&repo);
            git::worktree_add_detached(&repo, &qa, f.target_branch())?;
        }
        let target = git::rev_parse(&repo, f.target_branch()).ok_or_else(|| {
            Error::failure(format!(
                "target branch {} of {} is gone",
                f.target_branch(),
                f.name
            ))
        })?;
        git::reset_to(&qa, &target)?;
        Ok(qa)
    }

    /// The READY_FOR_QA messages waiting, urgent first then oldest.
    fn queue(&self, f: &Factory) -> Result<Vec<Message>> {
        let msgs = f.store()?.load::<Messages>()?.state;
        Ok(msgs
            .inbox(&self.actor, false)
            .into_iter()
            .filter(|m| m.kind == "READY_FOR_QA")
            .cloned()
            .collect())
    }

    /// One patrol: processes the queue until it is empty (or only blocked work is left).
    pub fn patrol(&mut self) -> Result<usize> {
        let f = self.factory()?;
        let mut done = 0;
        let mut skip: Vec<String> = Vec::new();
        loop {
            if self.shutdown.requested() {
                break;
            }
            let Some(msg) = self.queue(&f)?.into_iter().find(|m| !skip.contains(&m.id)) else {
                break;
            };
            match self.process(&f, &msg) {
                Ok(Processed::Blocked) => skip.push(msg.id.clone()),
                Ok(Processed::Interrupted) => break,
                Ok(_) => done += 1,
                Err(e) => {
                    self.log
                        .warn("qa.error", &[("message", &msg.id), ("error", &e.message())]);
                    skip.push(msg.id.clone());
                }
            }
        }
        Ok(done)
    }

    fn mark_read(&self, f: &Factory, msg: &Message) -> Result<()> {
        mail::mark(&f.store()?, &msg.id, false, &self.actor).map(|_| ())
    }

    /// Processes one READY_FOR_QA message.
    pub fn process(&self, f: &Factory, msg: &Message) -> Result<Processed> {
        let Some(wo_id) = msg.meta.get("work_order").cloned() else {
            self.mark_read(f, msg)?;
            return Ok(Processed::Stale("no work_order in the message".into()));
        };
        let home = self.company.store_for_work_order(&wo_id)?;
        let Some(wo) = home.load::<WorkOrders>()?.state.get(&wo_id) else {
            self.mark_read(f, msg)?;
            return Ok(Processed::Stale(format!("{wo_id} not found")));
        };
        let stale = |why: String| -> Result<Processed> {
            self.log
                .info("qa.skip", &[("work_order", &wo_id), ("why", &why)]);
            self.mark_read(f, msg)?;
            Ok(Processed::Stale(why))
        };
        let blocked_for_gates = wo.status == Status::Blocked
            && wo
                .last_failure
                .as_deref()
                .is_some_and(|r| r.starts_with(NO_GATES));
        if wo.status != Status::InReview && !blocked_for_gates {
            return stale(format!("{wo_id} is {}, not in review", wo.status));
        }
        if let Some(inc) = msg.meta.get("incarnation")
            && wo.incarnation.as_ref() != Some(inc)
        {
            return stale(format!(
                "message from {inc}, but {wo_id} now belongs to another worker"
            ));
        }
        let gates = f.settings.gates.clone();
        if gates.is_empty() && f.settings.verification.enabled {
            if !blocked_for_gates {
                let reason = format!(
                    "{NO_GATES}: add [[gates]] (name, command, timeout_seconds) to {} and QA picks this up on its next patrol; or set [verification] enabled = false to merge unchecked",
                    f.work_dir().join("config.toml").display()
                );
                let e = workorder::plan_transition(
                    &wo,
                    Status::Blocked,
                    Some(&reason),
                    None,
                    &self.actor,
                )?;
                home.append(vec![e])?;
                self.log
                    .warn("qa.blocked", &[("work_order", &wo_id), ("why", "no gates")]);
            }
            return Ok(Processed::Blocked);
        }
        let mut wo = wo;
        if blocked_for_gates {
            let e = workorder::plan_transition(
                &wo,
                Status::InReview,
                Some("gates are configured now"),
                None,
                &self.actor,
            )?;
            home.append(vec![e])?;
            wo.status = Status::InReview;
        }
        let branch = msg
            .meta
            .get("branch")
            .cloned()
            .or(wo.branch.clone())
            .unwrap_or_else(|| format!("vermas/{wo_id}"));
        let repo = f.git_dir();
        if !git::branch_exists(&repo, &branch) {
            return self.rework(
                f,
                msg,
                &wo,
                &format!("branch {branch} does not exist"),
                None,
                &[],
            );
        }
        let attempt = wo.attempts.max(1);
        let evidence = f
            .work_dir()
            .join("evidence")
            .join(&wo_id)
            .join(attempt.to_string());
        let started = Instant::now();
        for _round in 0..3 {
            let qa = self.prepare(f)?;
            let target = f.target_branch().to_string();
            let before = git::rev_parse(&repo, &target).unwrap_or_default();
            let message = format!(
                "Merge {branch}: {} {}",
                wo_id,
                crate::text::escape_control(&wo.title)
            );
            self.log.info(
                "qa.merge",
                &[
                    ("work_order", &wo_id),
                    ("branch", &branch),
                    ("onto", &before),
                ],
            );
            match git::merge(&qa, &branch, &message)? {
                MergeOutcome::Conflicts(paths) => {
                    git::reset_to(&qa, &before)?;
                    let reason = format!(
                        "merge conflict with {target} in: {} (bring {branch} up to date with {target} and resolve them)",
                        paths.join(", ")
                    );
                    return self.rework(f, msg, &wo, &reason, None, &paths);
                }
                MergeOutcome::AlreadyMerged => {
                    // A retry after a crash past the ref update: it is on the target already.
                    let merged =
                        find_merge_commit(&repo, &branch, &target).unwrap_or(before.clone());
                    self.log.info(
                        "qa.already_merged",
                        &[("work_order", &wo_id), ("commit", &merged)],
                    );
                    return self.finish_merged(f, msg, &wo, &branch, &merged, started);
                }
                MergeOutcome::Merged(commit) => {
                    let mut results = Vec::new();
                    for g in &gates {
                        let r = run_gate(g, &qa, &evidence, &wo_id, &self.shutdown)?;
                        self.record_gate(f, &wo_id, attempt, &r)?;
                        let stop = !r.passed() && f.settings.verification.require_all_pass;
                        results.push(r);
                        if stop || self.shutdown.requested() {
                            break;
                        }
                    }
                    if results.iter().any(|r| r.interrupted) {
                        git::reset_to(&qa, &before)?;
                        return Ok(Processed::Interrupted);
                    }
                    let all = results.len() == gates.len() && results.iter().all(|r| r.passed());
                    let ok = if f.settings.verification.require_all_pass {
                        all
                    } else {
                        results.iter().any(|r| r.passed()) || gates.is_empty()
                    };
                    if !ok {
                        git::reset_to(&qa, &before)?;
                        let Some(bad) = results.iter().find(|r| !r.passed()) else {
                            return Err(Error::failure("a gate failed but none is recorded"));
                        };
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
                        let reason = format!(
                            "gate {} failed ({status}); evidence in {}\n--- output tail ---\n{}",
                            bad.gate,
                            bad.dir.display(),
                            bad.tail
                        );
                        return self.rework(f, msg, &wo, &reason, Some(bad), &[]);
                    }
                    match git::update_ref(&repo, &format!("refs/heads/{target}"), &commit, &before)
                    {
                        Ok(()) => {
                            return self.finish_merged(f, msg, &wo, &branch, &commit, started);
                        }
                        Err(e) => {
                            // The target moved under us (a push from elsewhere): merge again.
                            self.log.warn(
                                "qa.target_moved",
                                &[("work_order", &wo_id), ("error", &e.to_string())],
                            );
                            continue;
                        }
                    }
                }
            }
        }
        Err(Error::failure(format!(
            "{} kept moving while merging {wo_id}; will retry on the next patrol",
            f.target_branch()
        )))
    }

    fn record_gate(&self, f: &Factory, wo_id: &str, attempt: u32, r: &GateResult) -> Result<()> {
        self.log.info(
            "qa.gate",
            &[
                ("work_order", wo_id),
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
                work_order: wo_id.to_string(),
                attempt,
                gate: r.gate.clone(),
                command: r.argv.clone(),
                exit_code: r.exit_code,
                timed_out: r.timed_out,
                duration_ms: r.duration.as_millis() as u64,
                passed: r.passed(),
                evidence: r.dir.display().to_string(),
            },
        )?])?;
        Ok(())
    }

    fn rework(
        &self,
        f: &Factory,
        msg: &Message,
        wo: &WorkOrder,
        reason: &str,
        gate: Option<&GateResult>,
        conflicts: &[String],
    ) -> Result<Processed> {
        let home = self.company.store_for_work_order(&wo.id)?;
        let fstore = f.store()?;
        let mut locked = Locked::take(&home, &fstore)?;
        let current = home.load::<WorkOrders>()?.state.get(&wo.id);
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
        let mut fe = Vec::new();
        if !conflicts.is_empty() {
            fe.push(ev(
                types::QA_MERGE_FAILED,
                &self.actor,
                &QaEvent {
                    work_order: wo.id.clone(),
                    conflicts: conflicts.to_vec(),
                    reason: Some(reason.to_string()),
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
                ..Default::default()
            },
        )?);
        fe.push(ev(
            types::MAIL_SENT,
            &self.actor,
            &Sent {
                id: mail::unused_message_id(&fstore)?,
                from: self.actor.clone(),
                to: sup.to_string(),
                subject: format!("REWORK_REQUEST {}", wo.id),
                body: reason.to_string(),
                kind: "REWORK_REQUEST".into(),
                priority: mail_priority(wo.priority),
                meta,
            },
        )?);
        fe.push(ev(
            types::MAIL_READ,
            &self.actor,
            &Marked { id: msg.id.clone() },
        )?);
        locked.append(he, fe)?;
        locked.report_warnings();
        self.log.info(
            "qa.rework",
            &[
                ("work_order", &wo.id),
                ("reason", reason.lines().next().unwrap_or_default()),
            ],
        );
        Ok(Processed::Rework(reason.to_string()))
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_merged(
        &self,
        f: &Factory,
        msg: &Message,
        wo: &WorkOrder,
        branch: &str,
        commit: &str,
        started: Instant,
    ) -> Result<Processed> {
        let repo = f.git_dir();
        let target = f.target_branch();
        let (mut pushed, mut push_error) = (None, None);
        // Also on a retry after a crash past the ref update: the push may not have happened,
        // and pushing a target the remote already has changes nothing.
        if f.settings.factory.push {
            match git::push(&repo, "origin", target) {
                Ok(()) => pushed = Some(true),
                Err(e) => {
                    pushed = Some(false);
                    push_error = Some(e.to_string());
                    self.log.warn(
                        "qa.push_failed",
                        &[("work_order", &wo.id), ("error", &e.to_string())],
                    );
                }
            }
        }
        let home = self.company.store_for_work_order(&wo.id)?;
        let fstore = f.store()?;
        let mut locked = Locked::take(&home, &fstore)?;
        let current = home.load::<WorkOrders>()?.state.get(&wo.id);
        let mut he = Vec::new();
        if let Some(cur) = current.filter(|c| c.status != Status::Closed) {
            he.push(workorder::plan_close(
                &cur,
                Some(&format!("merged into {target} by QA")),
                Some(commit),
                &self.actor,
            )?);
        }
        let sup = AgentId::Supervisor {
            factory: f.name.clone(),
        };
        let mut meta = BTreeMap::new();
        meta.insert("work_order".to_string(), wo.id.clone());
        meta.insert("merge_commit".to_string(), commit.to_string());
        meta.insert("branch".to_string(), branch.to_string());
        let mut body = format!("{} merged into {target} as {commit}.", wo.id);
        if let Some(e) = &push_error {
            body.push_str(&format!(" Pushing {target} failed: {e}"));
        }
        let fe = vec![
            ev(
                types::QA_MERGED,
                &self.actor,
                &QaEvent {
                    work_order: wo.id.clone(),
                    branch: branch.to_string(),
                    merge_commit: Some(commit.to_string()),
                    attempt: Some(wo.attempts),
                    duration_ms: Some(started.elapsed().as_millis() as u64),
                    pushed,
                    push_error: push_error.clone(),
                    ..Default::default()
                },
            )?,
            ev(
                types::MAIL_SENT,
                &self.actor,
                &Sent {
                    id: mail::unused_message_id(&fstore)?,
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
                &Marked { id: msg.id.clone() },
            )?,
        ];
        locked.append(he, fe)?;
        locked.report_warnings();
        drop(locked);
        self.log
            .info("qa.merged", &[("work_order", &wo.id), ("commit", commit)]);
        // The branch is in the target now: its worktrees and the branch itself can go.
        let mut removed = Vec::new();
        if let Ok(wts) = git::worktrees(&repo) {
            for w in wts.iter().filter(|w| w.branch.as_deref() == Some(branch)) {
                if git::worktree_remove(&repo, &w.path, true).is_ok() {
                    removed.push(w.path.display().to_string());
                }
            }
        }
        if git::is_ancestor(&repo, branch, target) {
            let _ = git::delete_branch(&repo, branch, true);
        }
        for p in removed {
            f.store()?.append(vec![ev(
                types::WORKTREE_REMOVED,
                &self.actor,
                &WorktreeEvent {
                    path: p,
                    branch: branch.to_string(),
                    work_order: wo.id.clone(),
                    slot: None,
                    how: "merged".into(),
                },
            )?])?;
        }
        Ok(Processed::Merged(commit.to_string()))
    }
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
    let _lock =
        daemon::InstanceLock::acquire(&f.work_dir().join(".qa.lock"), &format!("QA of {factory}"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let shutdown = daemon::handle_signals(tx.clone())?;
    let _watcher = daemon::watch(&[f.work_dir().join("events"), f.work_dir()], tx);
    let mut qa = Qa::new(company, factory, shutdown.clone())?;
    qa.log.info(
        "qa.started",
        &[
            ("factory", factory),
            ("pid", &std::process::id().to_string()),
        ],
    );
    qa.prepare(&f)?;
    loop {
        if let Err(e) = qa.patrol() {
            qa.log.warn("qa.patrol_failed", &[("error", &e.message())]);
        }
        let interval = qa
            .factory()
            .map(|f| patrol_interval(&f))
            .unwrap_or(Duration::from_secs(10));
        if daemon::next_wake(&rx, interval, &shutdown) == Wake::Shutdown {
            break;
        }
    }
    qa.log.info("qa.stopped", &[("factory", factory)]);
    Ok(())
}

/// How often a factory's loops look when nothing wakes them: the patrol interval, but never
/// slower than the mail poll interval.
pub fn patrol_interval(f: &Factory) -> Duration {
    f.settings.factory_patrol_interval()
}
