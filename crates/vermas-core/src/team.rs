//! Team workspaces (`co team add|list|remove|submit`): a place in a factory where people work
//! by hand beside the agents.
//!
//! A team `dev` of factory `f` is a git worktree at `<f>/teams/dev` on its own branch
//! (`team/dev` unless `--branch` names another), the mail address `f/teams/dev` (mail reaches
//! it because the directory exists), and a tmux session `team-f-dev` running the person's
//! shell in the worktree, tagged like our other sessions, with `AGENT_ID=f/teams/dev` so
//! `co inbox` and `co send` there act as the team. No agent ever runs in it, and nothing is
//! ever typed into it.
//!
//! **How a team's work reaches the target: through QA, like every merge.** `co team submit`
//! takes the commits of the team branch that are not in the target, points a snapshot branch
//! `vermas/<wo>` at the branch head, and hands that to QA (`READY_FOR_QA` to `f/qa`, as the
//! supervisor does after a worker's `WORKER_DONE`) for a work order in review: a new one, the
//! team's last submission when QA sent it back, or one named with `--work-order`. QA merges
//! and gates the snapshot and deletes only it afterwards; the team's worktree and branch stay.
//! The snapshot also means what QA gates is exactly what was submitted, whatever the team
//! commits meanwhile. Work that fails the gates goes to `rework` with the failure attached
//! (`wo show`, `co team list`); the team fixes it and submits again. No worker picks it up:
//! the work order was never dispatched to the factory, so the supervisor leaves it alone.

use crate::actions::launch;
use crate::actions::locked::Locked;
use crate::agent::AgentId;
use crate::company::{Company, Factory};
use crate::effects::git;
use crate::effects::tmux::SessionSpec;
use crate::error::{Classify, Kind, Result};
use crate::event::{EventRef, ev, types};
use crate::mail::{Messages, Sent};
use crate::store::{Projection, StoreError};
use crate::workorder::{self, CreateRequest, Status, WoType, WorkOrder, WorkOrders};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors of team commands.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

impl Classify for TeamError {
    fn kind(&self) -> Kind {
        match self {
            TeamError::Invalid(_) => Kind::Usage,
            TeamError::NotFound(_) => Kind::NotFound,
            TeamError::Conflict(_) => Kind::Conflict,
        }
    }
}

fn conflict(m: impl Into<String>) -> crate::Error {
    TeamError::Conflict(m.into()).into()
}

/// Payload of `team.added`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamAdded {
    pub name: String,
    pub factory: String,
    pub branch: String,
    /// Whether `co team add` made the branch (from the target); only then may removing the
    /// team delete it, and only when it is merged.
    pub created_branch: bool,
    pub path: String,
    pub session: String,
    pub incarnation: String,
}

/// Payload of `team.submitted`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamSubmitted {
    pub name: String,
    pub factory: String,
    pub work_order: String,
    /// The snapshot branch QA merges (`vermas/<work_order>`).
    pub branch: String,
    /// The team branch it was taken from.
    pub source_branch: String,
    pub head: String,
    /// Commits of the team branch not in the target.
    pub commits: u32,
    /// The same work order handed in again after QA sent it back.
    #[serde(default)]
    pub resubmitted: bool,
}

/// Payload of `team.removed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamRemoved {
    pub name: String,
    pub factory: String,
    pub branch: String,
    /// The branch is still there (it has commits not in the target, or the team did not make
    /// it).
    pub branch_kept: bool,
    /// Its commits not in the target when it was removed.
    #[serde(default)]
    pub unmerged_commits: u32,
}

/// One team as the projection holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub name: String,
    pub factory: String,
    pub branch: String,
    pub created_branch: bool,
    pub path: String,
    pub session: String,
    pub incarnation: String,
    pub added_by: String,
    pub added_at: String,
    /// Every work order it handed to QA, oldest first.
    pub submissions: Vec<String>,
    pub last_submitted_at: Option<String>,
}

impl Team {
    pub fn address(&self) -> AgentId {
        AgentId::Team {
            factory: self.factory.clone(),
            name: self.name.clone(),
        }
    }
}

/// The teams of a factory (`teams.jsonl`), by name.
#[derive(Debug, Default)]
pub struct Teams {
    teams: BTreeMap<String, Team>,
}

impl Teams {
    pub fn get(&self, name: &str) -> Option<&Team> {
        self.teams.get(name)
    }
    pub fn all(&self) -> impl Iterator<Item = &Team> {
        self.teams.values()
    }
    pub fn len(&self) -> usize {
        self.teams.len()
    }
    pub fn is_empty(&self) -> bool {
        self.teams.is_empty()
    }
}

impl Projection for Teams {
    const NAME: &'static str = "teams";
    const VERSION: u32 = 1;

    fn wants(event_type: &str) -> bool {
        event_type.starts_with("team.")
    }

    fn apply(&mut self, ev: &EventRef<'_>) -> std::result::Result<(), String> {
        let bad = |e: serde_json::Error| format!("{} payload unreadable ({e})", ev.event_type);
        match ev.event_type.as_ref() {
            types::TEAM_ADDED => {
                let a: TeamAdded = ev.data().map_err(bad)?;
                if self.teams.contains_key(&a.name) {
                    return Err(format!("team {} added twice; skipped", a.name));
                }
                self.teams.insert(
                    a.name.clone(),
                    Team {
                        name: a.name,
                        factory: a.factory,
                        branch: a.branch,
                        created_branch: a.created_branch,
                        path: a.path,
                        session: a.session,
                        incarnation: a.incarnation,
                        added_by: ev.actor.to_string(),
                        added_at: ev.timestamp.to_string(),
                        submissions: Vec::new(),
                        last_submitted_at: None,
                    },
                );
            }
            types::TEAM_SUBMITTED => {
                let s: TeamSubmitted = ev.data().map_err(bad)?;
                let t = self
                    .teams
                    .get_mut(&s.name)
                    .ok_or_else(|| format!("event refers to unknown team {}; skipped", s.name))?;
                if !t.submissions.contains(&s.work_order) {
                    t.submissions.push(s.work_order);
                }
                t.last_submitted_at = Some(ev.timestamp.to_string());
            }
            types::TEAM_REMOVED => {
                let r: TeamRemoved = ev.data().map_err(bad)?;
                if self.teams.remove(&r.name).is_none() {
                    return Err(format!("event removes unknown team {}; skipped", r.name));
                }
            }
            other => return Err(format!("unknown team event type {other}; skipped")),
        }
        Ok(())
    }

    fn load_record(&mut self, line: &[u8]) -> std::result::Result<(), String> {
        let t: Team = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        if self.teams.contains_key(&t.name) {
            return Err(format!("team {} appears twice", t.name));
        }
        self.teams.insert(t.name.clone(), t);
        Ok(())
    }

    fn write_records(&self, out: &mut Vec<u8>) -> std::result::Result<(), serde_json::Error> {
        for t in self.teams.values() {
            serde_json::to_writer(&mut *out, t)?;
            out.push(b'\n');
        }
        Ok(())
    }

    fn record_count(&self) -> usize {
        self.teams.len()
    }
}

fn team_dir(f: &Factory, name: &str) -> PathBuf {
    f.dir.join("teams").join(name)
}

fn validate_name(name: &str) -> Result<()> {
    if !crate::config::is_valid_name(name) {
        return Err(TeamError::Invalid(format!(
            "team name {:?} is not valid: use lowercase letters, digits and '-' (e.g. dev)",
            crate::text::escape_control(name)
        ))
        .into());
    }
    Ok(())
}

fn not_found(teams: &Teams, f: &Factory, name: &str) -> crate::Error {
    let names: Vec<&str> = teams.all().map(|t| t.name.as_str()).collect();
    TeamError::NotFound(format!(
        "factory {} has no team {:?} (teams: {}); add it with `co team add {} --factory {}`",
        f.name,
        crate::text::escape_control(name),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        },
        if crate::config::is_valid_name(name) {
            name
        } else {
            "NAME"
        },
        f.name
    ))
    .into()
}

/// What `co team add` asks for.
#[derive(Debug, Clone)]
pub struct AddTeam {
    pub name: String,
    pub factory: String,
    /// The branch to work on; default `team/<name>`, made from the target when missing.
    pub branch: Option<String>,
}

/// The shell a team session runs: `$SHELL` when it is an absolute path to a program, else
/// `/bin/sh`.
fn shell() -> String {
    std::env::var("SHELL")
        .ok()
        .filter(|s| s.starts_with('/') && Path::new(s).is_file())
        .unwrap_or_else(|| "/bin/sh".to_string())
}

/// `co team add`: the worktree, the session, then `team.added`; any failure undoes what was
/// made (a branch it made is deleted only while it has no commits of its own).
pub fn add(company: &Company, req: &AddTeam, actor: &str) -> Result<Team> {
    validate_name(&req.name)?;
    let f = company.factory(&req.factory)?;
    let target = f.target_branch().to_string();
    let branch = req
        .branch
        .clone()
        .unwrap_or_else(|| format!("team/{}", req.name));
    if !crate::config::is_valid_branch(&branch) {
        return Err(TeamError::Invalid(format!(
            "{:?} is not a valid branch name",
            crate::text::escape_control(&branch)
        ))
        .into());
    }
    if branch == target {
        return Err(TeamError::Invalid(format!(
            "--branch {branch} is the target branch, which only QA moves; work on a branch of your own (default team/{})",
            req.name
        ))
        .into());
    }
    if branch.starts_with("vermas/") {
        return Err(TeamError::Invalid(format!(
            "--branch {branch}: vermas/ branches belong to workers and QA; choose another"
        ))
        .into());
    }
    let tmux = company.tmux();
    tmux.check_version()?;
    let teams_dir = f.dir.join("teams");
    crate::fsutil::ensure_dir(&teams_dir).map_err(|e| StoreError::io(&teams_dir, e))?;
    let path = team_dir(&f, &req.name);
    let store = f.store()?;
    let mut w = store.lock()?;
    let teams = store.load::<Teams>()?.state;
    if let Some(t) = teams.get(&req.name) {
        return Err(conflict(format!(
            "team {} already exists in {} (worktree {}, session {}); attach with `{}`",
            t.name,
            f.name,
            t.path,
            t.session,
            tmux.attach_hint(&t.session)
        )));
    }
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(conflict(format!(
            "{} already exists and is not a team; move it away or choose another name",
            path.display()
        )));
    }
    let repo = f.git_dir();
    let created_branch = git::worktree_add_branch(&repo, &path, &branch, &target).map_err(|e| {
        crate::Error::from(e).context(format!("making the worktree {}", path.display()))
    })?;
    let undo_git = || {
        let _ = git::worktree_remove(&repo, &path, true);
        if created_branch {
            let _ = git::delete_branch(&repo, &branch, true);
        }
    };
    let agent = AgentId::Team {
        factory: f.name.clone(),
        name: req.name.clone(),
    };
    let incarnation = crate::ids::new_incarnation_id();
    let started = (|| -> Result<()> {
        let env = launch::agent_env(company, &agent, None, &incarnation, None, &[]);
        let p = launch::private_session(company, &incarnation, &env, vec![shell()])?;
        let spec = SessionSpec {
            name: agent.session(),
            cwd: path.clone(),
            env: p.env,
            argv: p.argv,
            tags: launch::session_tags(company, &agent, &incarnation),
            // A person's shell: what they type is theirs, not a log of ours.
            log_file: None,
        };
        if let Err(e) = tmux.new_session(&spec) {
            let _ = std::fs::remove_file(&p.file);
            return Err(crate::Error::from(e).context(format!(
                "starting the session {} (a session of that name may be left from before: `{}`)",
                spec.name,
                tmux.attach_hint(&spec.name)
            )));
        }
        Ok(())
    })();
    if let Err(e) = started {
        undo_git();
        return Err(e);
    }
    let added = TeamAdded {
        name: req.name.clone(),
        factory: f.name.clone(),
        branch: branch.clone(),
        created_branch,
        path: path.display().to_string(),
        session: agent.session(),
        incarnation,
    };
    let written = ev(types::TEAM_ADDED, actor, &added).and_then(|e| Ok(w.append(vec![e])?));
    let events = match written {
        Ok(e) => e,
        Err(e) => {
            let _ = tmux.kill_session(&agent.session(), &company.tag());
            undo_git();
            return Err(e);
        }
    };
    w.report_warnings();
    let mut one = Teams::default();
    for e in &events {
        let _ = one.apply(&e.as_ref());
    }
    one.get(&req.name)
        .cloned()
        .ok_or_else(|| crate::Error::failure("the team was written but not read back"))
}

/// One team as `co team list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TeamView {
    #[serde(flatten)]
    pub team: Team,
    pub address: String,
    pub attach: String,
    /// Its session runs.
    pub session_alive: bool,
    /// Commits on its branch not in the target (`None`: the branch is gone).
    pub ahead: Option<u32>,
    /// Files changed and not committed in its worktree (`None`: the worktree is gone).
    pub uncommitted: Option<usize>,
    pub unread_mail: usize,
    /// Its last submission and that work order's status now (and why, when it came back).
    pub last_submission: Option<SubmissionView>,
}

/// A submission as it stands.
#[derive(Debug, Clone, Serialize)]
pub struct SubmissionView {
    pub work_order: String,
    pub status: Option<Status>,
    pub last_failure: Option<String>,
}

/// `co team list`: every team of the factory (or of every factory).
pub fn list(company: &Company, factory: Option<&str>) -> Result<Vec<TeamView>> {
    let factories = match factory {
        Some(f) => vec![company.factory(f)?],
        None => company.factories()?,
    };
    let tmux = company.tmux();
    let sessions = tmux.sessions().unwrap_or_default();
    let mut out = Vec::new();
    for f in factories {
        let store = f.store()?;
        let teams = store.load::<Teams>()?.state;
        if teams.is_empty() {
            continue;
        }
        let mail = store.load::<Messages>()?.state;
        let repo = f.git_dir();
        for t in teams.all() {
            let ahead = git::branch_exists(&repo, &t.branch)
                .then(|| git::commits_ahead(&repo, f.target_branch(), &t.branch).ok())
                .flatten();
            let path = Path::new(&t.path);
            let uncommitted = path
                .is_dir()
                .then(|| git::dirty_paths(path).ok().map(|d| d.len()))
                .flatten();
            let last_submission = match t.submissions.last() {
                Some(id) => {
                    let wo = company
                        .store_for_work_order(id)
                        .and_then(|s| workorder::lookup(&s, id))
                        .ok()
                        .flatten();
                    Some(SubmissionView {
                        work_order: id.clone(),
                        status: wo.as_ref().map(|w| w.status),
                        last_failure: wo
                            .filter(|w| matches!(w.status, Status::Rework | Status::Blocked))
                            .and_then(|w| w.last_failure),
                    })
                }
                None => None,
            };
            out.push(TeamView {
                address: t.address().to_string(),
                attach: tmux.attach_hint(&t.session),
                session_alive: sessions
                    .iter()
                    .any(|s| s.name == t.session && s.company == company.tag() && !s.pane_dead),
                ahead,
                uncommitted,
                unread_mail: mail.unread_count(&t.address().to_string()),
                last_submission,
                team: t.clone(),
            });
        }
    }
    Ok(out)
}

/// What `co team remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub name: String,
    pub factory: String,
    pub branch: String,
    pub branch_kept: bool,
    pub unmerged_commits: u32,
    /// Things left as they were, and why (a session of that name that is not ours).
    pub notes: Vec<String>,
}

/// `co team remove`: ends the session, removes the worktree and, when the team made it and
/// it is merged, the branch. Refuses uncommitted changes always, and commits not in the
/// target unless `force` (which keeps the branch): no unmerged work is ever deleted.
pub fn remove(
    company: &Company,
    name: &str,
    factory: &str,
    force: bool,
    actor: &str,
) -> Result<Removed> {
    validate_name(name)?;
    let f = company.factory(factory)?;
    let store = f.store()?;
    let mut w = store.lock()?;
    let teams = store.load::<Teams>()?.state;
    let t = teams
        .get(name)
        .cloned()
        .ok_or_else(|| not_found(&teams, &f, name))?;
    let repo = f.git_dir();
    let target = f.target_branch();
    let path = PathBuf::from(&t.path);
    if path.is_dir() {
        let dirty = git::dirty_paths(&path)?;
        if !dirty.is_empty() {
            let shown: Vec<String> = dirty
                .iter()
                .take(5)
                .map(|p| crate::text::escape_control(p))
                .collect();
            return Err(conflict(format!(
                "{} has uncommitted changes ({}{}); commit them (`--force` then keeps the branch) or discard them; nothing was removed",
                t.path,
                shown.join(", "),
                if dirty.len() > 5 { ", …" } else { "" }
            )));
        }
    }
    let exists = git::branch_exists(&repo, &t.branch);
    let ahead = if exists {
        git::commits_ahead(&repo, target, &t.branch)?
    } else {
        0
    };
    if ahead > 0 && !force {
        return Err(conflict(format!(
            "branch {} has {ahead} commit(s) not in {target}; submit them (`co team submit {name} --factory {}`) or pass --force to remove the workspace and keep the branch; nothing was removed",
            t.branch, f.name
        )));
    }
    let mut notes = Vec::new();
    let tmux = company.tmux();
    match tmux.kill_session(&t.session, &company.tag()) {
        Ok(()) => {}
        Err(crate::effects::tmux::TmuxError::NoSession(_)) => {}
        Err(crate::effects::tmux::TmuxError::NotOurs(s)) => notes.push(format!(
            "session {s} was not started by this company; left running"
        )),
        Err(e) => return Err(e.into()),
    }
    if path.is_dir() {
        // Clean (checked above): git refuses anything else, and so do we.
        git::worktree_remove(&repo, &path, false)?;
    } else {
        git::worktree_prune(&repo)?;
    }
    let deleted = exists
        && t.created_branch
        && ahead == 0
        && git::is_ancestor(&repo, &t.branch, target)
        && git::delete_branch(&repo, &t.branch, true).is_ok();
    let removed = TeamRemoved {
        name: t.name.clone(),
        factory: f.name.clone(),
        branch: t.branch.clone(),
        branch_kept: exists && !deleted,
        unmerged_commits: ahead,
    };
    w.append(vec![ev(types::TEAM_REMOVED, actor, &removed)?])?;
    w.report_warnings();
    Ok(Removed {
        name: removed.name,
        factory: removed.factory,
        branch: removed.branch,
        branch_kept: removed.branch_kept,
        unmerged_commits: ahead,
        notes,
    })
}

/// What `co team submit` asks for.
#[derive(Debug, Clone)]
pub struct Submit {
    pub name: String,
    pub factory: String,
    /// Title of a new work order (default: from the head commit's subject).
    pub title: Option<String>,
    pub priority: u8,
    /// Hand in this work order instead of making one.
    pub work_order: Option<String>,
}

/// What `co team submit` did.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    pub work_order: String,
    pub title: String,
    pub created: bool,
    pub resubmitted: bool,
    pub branch: String,
    pub source_branch: String,
    pub head: String,
    pub commits: u32,
    pub message: String,
}

/// One line of text from git for a title: control characters become spaces.
fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::text::truncate(flat.trim(), max)
}

/// The statuses a work order passes through to reach `in_review` from where it is.
fn path_to_review(from: Status) -> Option<&'static [Status]> {
    match from {
        Status::Open | Status::Rework => Some(&[Status::InProgress, Status::InReview]),
        Status::InProgress => Some(&[Status::InReview]),
        _ => None,
    }
}

/// `co team submit`: hands the team branch's commits to QA for a work order in review (see
/// the module doc). Refuses uncommitted changes, a branch with nothing new, and a submission
/// still waiting for QA.
pub fn submit(company: &Company, req: &Submit, actor: &str) -> Result<Submitted> {
    validate_name(&req.name)?;
    if req.priority > 4 {
        return Err(
            TeamError::Invalid(format!("priority {} is out of range 0-4", req.priority)).into(),
        );
    }
    let f = company.factory(&req.factory)?;
    let fstore = f.store()?;
    let repo = f.git_dir();
    let target = f.target_branch().to_string();
    // The home store of the work order: the one named, else the factory's own.
    let home = match &req.work_order {
        Some(id) => company.store_for_work_order(id)?,
        None => f.store()?,
    };
    let mut locked = Locked::take(&home, &fstore)?;
    let teams = fstore.load::<Teams>()?.state;
    let t = teams
        .get(&req.name)
        .cloned()
        .ok_or_else(|| not_found(&teams, &f, &req.name))?;
    let path = PathBuf::from(&t.path);
    if !path.is_dir() {
        return Err(TeamError::NotFound(format!(
            "the worktree {} of team {} is gone; `co team remove {} --factory {}` and add it again",
            t.path, t.name, t.name, f.name
        ))
        .into());
    }
    let dirty = git::dirty_paths(&path)?;
    if !dirty.is_empty() {
        return Err(conflict(format!(
            "{} has uncommitted changes ({} file(s), e.g. {}); commit them first (only commits are submitted); nothing was submitted",
            t.path,
            dirty.len(),
            crate::text::escape_control(&dirty[0])
        )));
    }
    let head = git::rev_parse(&repo, &format!("refs/heads/{}", t.branch)).ok_or_else(|| {
        TeamError::NotFound(format!(
            "branch {} of team {} does not exist",
            t.branch, t.name
        ))
    })?;
    let commits = git::commits_ahead(&repo, &target, &t.branch)?;
    if commits == 0 {
        return Err(conflict(format!(
            "nothing to submit: {} has no commits that are not in {target}",
            t.branch
        )));
    }
    let me = t.address().to_string();
    let wos = home.load::<WorkOrders>()?.state;
    // Which work order: the one named, else the team's last one when QA sent it back.
    let existing: Option<WorkOrder> = match &req.work_order {
        Some(id) => Some(workorder::require(&wos, id)?),
        None => match t.submissions.last().and_then(|id| wos.get(id)) {
            Some(last) if last.status == Status::Rework => Some(last),
            Some(last) if last.status == Status::InReview => {
                return Err(conflict(format!(
                    "{} from this team's last submission is still waiting for QA; wait for it to merge or come back (`wo show {}`)",
                    last.id, last.id
                )));
            }
            // Blocked (QA has no gates, or a person must decide): handing the same commits in
            // again as new work would only make a second copy of it.
            Some(last) if last.status == Status::Blocked => {
                return Err(conflict(format!(
                    "{} from this team's last submission is blocked ({}); see `wo show {}`",
                    last.id,
                    crate::text::escape_control(
                        last.last_failure
                            .as_deref()
                            .and_then(|r| r.lines().next())
                            .unwrap_or("no reason recorded")
                    ),
                    last.id
                )));
            }
            _ => None,
        },
    };
    if let Some(wo) = &existing {
        let prefix = crate::ids::prefix_of(&wo.id).unwrap_or_default();
        if prefix != f.prefix() && prefix != crate::context::COMPANY_PREFIX {
            return Err(conflict(format!(
                "{} belongs to another factory; a team of {} hands in {}'s own work or the company's (hq-)",
                wo.id, f.name, f.name
            )));
        }
        if path_to_review(wo.status).is_none() {
            return Err(conflict(format!(
                "{} is {}; a team hands in work that is open, in progress or sent back (rework)",
                wo.id, wo.status
            )));
        }
        if let Some(fac) = &wo.factory {
            return Err(conflict(format!(
                "{} was dispatched to workers in {fac}; a team hands in only work no worker has had",
                wo.id
            )));
        }
        if let Some(a) = wo.assignee.as_deref().filter(|a| *a != me) {
            return Err(conflict(format!(
                "{} is assigned to {}; `wo update {} --assignee {me}` first if the team takes it over",
                wo.id,
                crate::text::escape_control(a),
                wo.id
            )));
        }
    }
    let subject = git::run(&repo, &["log", "-1", "--format=%s", &head]).unwrap_or_default();
    let title = match &req.title {
        Some(t) => t.clone(),
        None => one_line(&format!("team {}: {subject}", t.name), 200),
    };
    let log = git::run(
        &repo,
        &[
            "log",
            "--format=%h %s",
            "-n",
            "50",
            &format!("{target}..{head}"),
        ],
    )
    .unwrap_or_default();
    let description = format!(
        "Handed in by team {} of {} from branch {} at {head} ({commits} commit(s) not in {target}):\n\n{}\n",
        t.name, f.name, t.branch, log
    );
    let (mut wo, created) = match existing {
        Some(wo) => (wo, false),
        None => {
            let events = workorder::create(
                locked.home(),
                f.prefix(),
                actor,
                CreateRequest {
                    title: title.clone(),
                    kind: WoType::Task,
                    priority: req.priority,
                    description,
                    labels: vec![format!("team:{}", t.name)],
                    parent: None,
                },
            )?;
            let mut one = WorkOrders::default();
            for e in &events {
                let _ = one.apply(&e.as_ref());
            }
            let wo = one.all().into_iter().next().ok_or_else(|| {
                crate::Error::failure("the work order was written but not read back")
            })?;
            (wo, true)
        }
    };
    let resubmitted = !created && t.submissions.contains(&wo.id);
    let snapshot = format!("vermas/{}", wo.id);
    if let Err(e) = git::run(
        &repo,
        &[
            "update-ref",
            "-m",
            "vermas team submit",
            &format!("refs/heads/{snapshot}"),
            &head,
        ],
    ) {
        if created {
            // Nothing reached QA: the new work order must not sit open as if it were work.
            let why = format!("team submit failed before reaching QA: {e}");
            if let Ok(c) =
                workorder::plan_transition(&wo, Status::Cancelled, Some(&why), None, actor)
            {
                let _ = locked.home().append(vec![c]);
            }
        }
        return Err(crate::Error::from(e).context(format!("making the branch {snapshot}")));
    }
    let reason = format!("team {} submitted {}", t.name, &head[..head.len().min(12)]);
    let mut he = Vec::new();
    if wo.assignee.as_deref() != Some(me.as_str()) {
        he.push(ev(
            types::WORK_ORDER_UPDATED,
            actor,
            &workorder::Updated {
                id: wo.id.clone(),
                assignee: Some(me.clone()),
                ..Default::default()
            },
        )?);
    }
    for to in path_to_review(wo.status).unwrap_or_default() {
        he.push(workorder::plan_transition(
            &wo,
            *to,
            Some(&reason),
            None,
            actor,
        )?);
        wo.status = *to;
    }
    let qa = AgentId::Qa {
        factory: f.name.clone(),
    };
    let priority = crate::loops::qa::mail_priority(wo.priority);
    let message = crate::mail::unused_message_id(&fstore)?;
    let mut meta = BTreeMap::new();
    meta.insert("work_order".to_string(), wo.id.clone());
    meta.insert("branch".to_string(), snapshot.clone());
    meta.insert("head".to_string(), head.clone());
    meta.insert("team".to_string(), t.name.clone());
    let fe = vec![
        ev(
            types::TEAM_SUBMITTED,
            actor,
            &TeamSubmitted {
                name: t.name.clone(),
                factory: f.name.clone(),
                work_order: wo.id.clone(),
                branch: snapshot.clone(),
                source_branch: t.branch.clone(),
                head: head.clone(),
                commits,
                resubmitted,
            },
        )?,
        ev(
            types::MAIL_SENT,
            actor,
            &Sent {
                id: message.clone(),
                from: me.clone(),
                to: qa.to_string(),
                subject: format!("READY_FOR_QA {}", wo.id),
                body: format!(
                    "{} on {snapshot} ({commits} commit(s) from {} of team {}); merge it if the gates pass.",
                    wo.id, t.branch, t.name
                ),
                kind: "READY_FOR_QA".into(),
                priority,
                meta,
            },
        )?,
        ev(
            types::QA_ENQUEUED,
            actor,
            &crate::loops::qa::QaEvent {
                work_order: wo.id.clone(),
                branch: snapshot.clone(),
                head: Some(head.clone()),
                priority: Some(priority),
                ..Default::default()
            },
        )?,
    ];
    locked.append(he, fe)?;
    locked.report_warnings();
    drop(locked);
    // QA as an agent CLI is told it has mail; the built-in QA wakes on the store change.
    let _ = crate::mail::nudge_if_idle(company, &qa, &me, &message, actor);
    Ok(Submitted {
        work_order: wo.id,
        title: wo.title,
        created,
        resubmitted,
        branch: snapshot,
        source_branch: t.branch,
        head,
        commits,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::store::{Store, StoreOptions};

    #[test]
    fn the_projection_tracks_teams_and_their_submissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(&dir.path().join(".work"), StoreOptions::default()).unwrap();
        let added = |name: &str| {
            NewEvent::new(
                types::TEAM_ADDED,
                "human",
                &TeamAdded {
                    name: name.into(),
                    factory: "mp".into(),
                    branch: format!("team/{name}"),
                    created_branch: true,
                    path: format!("/c/mp/teams/{name}"),
                    session: format!("team-mp-{name}"),
                    incarnation: "inc-1".into(),
                },
            )
            .unwrap()
        };
        let submitted = |wo: &str| {
            NewEvent::new(
                types::TEAM_SUBMITTED,
                "mp/teams/dev",
                &TeamSubmitted {
                    name: "dev".into(),
                    factory: "mp".into(),
                    work_order: wo.into(),
                    branch: format!("vermas/{wo}"),
                    source_branch: "team/dev".into(),
                    head: "abc".into(),
                    commits: 1,
                    resubmitted: false,
                },
            )
            .unwrap()
        };
        let removed = |name: &str| {
            NewEvent::new(
                types::TEAM_REMOVED,
                "human",
                &TeamRemoved {
                    name: name.into(),
                    factory: "mp".into(),
                    branch: format!("team/{name}"),
                    branch_kept: false,
                    unmerged_commits: 0,
                },
            )
            .unwrap()
        };
        store
            .append(vec![
                added("dev"),
                added("ops"),
                submitted("mp-000001"),
                submitted("mp-000001"),
                submitted("mp-000002"),
                removed("ops"),
                // Problems are issues, not crashes: a second add, an unknown removal.
                added("dev"),
                removed("ghost"),
            ])
            .unwrap();
        let l = store.load::<Teams>().unwrap();
        assert_eq!(l.state.len(), 1);
        let dev = l.state.get("dev").unwrap();
        assert_eq!(dev.submissions, vec!["mp-000001", "mp-000002"]);
        assert!(dev.last_submitted_at.is_some());
        assert_eq!(dev.address().to_string(), "mp/teams/dev");
        assert!(l.state.get("ops").is_none());
        assert_eq!(l.issues.len(), 2, "{:?}", l.issues);
        store.save(&l).unwrap();
        let again = store.load::<Teams>().unwrap();
        let rebuilt = store.rebuild::<Teams>().unwrap();
        assert_eq!(
            store.render(&again).unwrap(),
            store.render(&rebuilt).unwrap()
        );
        // A team added again after its removal is a new team.
        store.append(vec![added("ops")]).unwrap();
        assert!(store.load::<Teams>().unwrap().state.get("ops").is_some());
    }

    #[test]
    fn work_reaches_review_by_legal_moves_only() {
        for from in Status::ALL {
            if let Some(path) = path_to_review(from) {
                let mut at = from;
                for to in path {
                    assert!(at.can_move_to(*to), "{at} → {to}");
                    at = *to;
                }
                assert_eq!(at, Status::InReview);
            }
        }
        assert!(path_to_review(Status::Closed).is_none());
        assert!(path_to_review(Status::InReview).is_none());
        assert_eq!(one_line("a\nb\tc", 200), "a b c");
    }
}
