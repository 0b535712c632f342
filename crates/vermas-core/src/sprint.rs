//! Sprints: a named set of work orders people watch together (`co sprint list` is the guide's
//! "active work" pane).
//!
//! Sprints live in the **company store** whatever factory they are for: their work orders can
//! come from several stores (`hq-` ones and a factory's own), and one store under one lock is
//! what makes "names are unique among open sprints" hold when two people create at once.
//! `--factory F` records the factory the sprint is for and keeps work orders of other factories
//! out of it. `sprints.jsonl` is the projection; a sprint's progress is read live from the work
//! orders' own stores, never copied into sprint events.

use crate::company::Company;
use crate::error::{Classify, Kind, Result};
use crate::event::{EventRef, ev, types};
use crate::store::Projection;
use crate::workorder::{Lookup, Status, WorkOrder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Errors of sprint commands.
#[derive(Debug, thiserror::Error)]
pub enum SprintError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

impl Classify for SprintError {
    fn kind(&self) -> Kind {
        match self {
            SprintError::Invalid(_) => Kind::Usage,
            SprintError::NotFound(_) => Kind::NotFound,
            SprintError::Conflict(_) => Kind::Conflict,
        }
    }
}

/// Longest goal, in characters.
pub const MAX_GOAL_CHARS: usize = 500;

/// Payload of `sprint.created`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SprintCreated {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory: Option<String>,
    #[serde(default)]
    pub goal: String,
}

/// Payload of `sprint.work_order_added` and `sprint.work_order_removed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SprintWorkOrder {
    pub id: String,
    pub name: String,
    pub work_order: String,
}

/// Payload of `sprint.closed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SprintClosed {
    pub id: String,
    pub name: String,
    /// Its work orders that were not closed or cancelled when it closed (for the record; they
    /// carry on as they are).
    #[serde(default)]
    pub unfinished: Vec<String>,
}

/// Whether a sprint is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SprintStatus {
    Open,
    Closed,
}

/// One sprint as the projection holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sprint {
    pub id: String,
    pub name: String,
    pub factory: Option<String>,
    pub goal: String,
    pub status: SprintStatus,
    /// In the order they were added.
    pub work_orders: Vec<String>,
    pub created_by: String,
    pub created_at: String,
    pub closed_at: Option<String>,
}

/// Every sprint of the company, in creation order.
#[derive(Debug, Default)]
pub struct Sprints {
    list: Vec<Sprint>,
    index: HashMap<String, usize>,
}

impl Sprints {
    pub fn all(&self) -> &[Sprint] {
        &self.list
    }
    pub fn get(&self, id: &str) -> Option<&Sprint> {
        self.index.get(id).map(|&i| &self.list[i])
    }
    /// The open sprint with this name.
    pub fn open_named(&self, name: &str) -> Option<&Sprint> {
        self.list
            .iter()
            .find(|s| s.status == SprintStatus::Open && s.name == name)
    }
    /// What a person means by `NAME`: a sprint id, else the open sprint of that name, else
    /// the most recently created closed one.
    pub fn resolve(&self, name_or_id: &str) -> Option<&Sprint> {
        self.get(name_or_id)
            .or_else(|| self.open_named(name_or_id))
            .or_else(|| self.list.iter().rev().find(|s| s.name == name_or_id))
    }
    /// The open sprint (other than `except`) holding a work order.
    pub fn open_holding(&self, work_order: &str, except: &str) -> Option<&Sprint> {
        self.list.iter().find(|s| {
            s.status == SprintStatus::Open
                && s.id != except
                && s.work_orders.iter().any(|w| w == work_order)
        })
    }
    fn get_mut(&mut self, id: &str) -> std::result::Result<&mut Sprint, String> {
        match self.index.get(id) {
            Some(&i) => Ok(&mut self.list[i]),
            None => Err(format!("event refers to unknown sprint {id}; skipped")),
        }
    }
}

impl Projection for Sprints {
    const NAME: &'static str = "sprints";
    const VERSION: u32 = 1;

    fn wants(event_type: &str) -> bool {
        event_type.starts_with("sprint.")
    }

    fn apply(&mut self, ev: &EventRef<'_>) -> std::result::Result<(), String> {
        let bad = |e: serde_json::Error| format!("{} payload unreadable ({e})", ev.event_type);
        match ev.event_type.as_ref() {
            types::SPRINT_CREATED => {
                let c: SprintCreated = ev.data().map_err(bad)?;
                if self.index.contains_key(&c.id) {
                    return Err(format!("sprint {} created twice; skipped", c.id));
                }
                self.index.insert(c.id.clone(), self.list.len());
                self.list.push(Sprint {
                    id: c.id,
                    name: c.name,
                    factory: c.factory,
                    goal: c.goal,
                    status: SprintStatus::Open,
                    work_orders: Vec::new(),
                    created_by: ev.actor.to_string(),
                    created_at: ev.timestamp.to_string(),
                    closed_at: None,
                });
            }
            types::SPRINT_WORK_ORDER_ADDED => {
                let a: SprintWorkOrder = ev.data().map_err(bad)?;
                let s = self.get_mut(&a.id)?;
                if !s.work_orders.contains(&a.work_order) {
                    s.work_orders.push(a.work_order);
                }
            }
            types::SPRINT_WORK_ORDER_REMOVED => {
                let r: SprintWorkOrder = ev.data().map_err(bad)?;
                self.get_mut(&r.id)?
                    .work_orders
                    .retain(|w| *w != r.work_order);
            }
            types::SPRINT_CLOSED => {
                let c: SprintClosed = ev.data().map_err(bad)?;
                let s = self.get_mut(&c.id)?;
                if s.status == SprintStatus::Open {
                    s.status = SprintStatus::Closed;
                    s.closed_at = Some(ev.timestamp.to_string());
                }
            }
            other => return Err(format!("unknown sprint event type {other}; skipped")),
        }
        Ok(())
    }

    fn load_record(&mut self, line: &[u8]) -> std::result::Result<(), String> {
        let s: Sprint = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        if self.index.contains_key(&s.id) {
            return Err(format!("sprint {} appears twice", s.id));
        }
        self.index.insert(s.id.clone(), self.list.len());
        self.list.push(s);
        Ok(())
    }

    fn write_records(&self, out: &mut Vec<u8>) -> std::result::Result<(), serde_json::Error> {
        for s in &self.list {
            serde_json::to_writer(&mut *out, s)?;
            out.push(b'\n');
        }
        Ok(())
    }

    fn record_count(&self) -> usize {
        self.list.len()
    }
}

/// What `co sprint create` asks for.
#[derive(Debug, Clone)]
pub struct CreateSprint {
    pub name: String,
    pub factory: Option<String>,
    pub goal: String,
}

fn invalid(m: impl Into<String>) -> crate::Error {
    SprintError::Invalid(m.into()).into()
}

/// The sprint a mutation names: it must exist and be open.
fn open_sprint<'a>(sprints: &'a Sprints, name: &str) -> Result<&'a Sprint> {
    match sprints.resolve(name) {
        Some(s) if s.status == SprintStatus::Open => Ok(s),
        Some(s) => Err(SprintError::Conflict(format!(
            "sprint {} ({}) is closed; create a new one with `co sprint create {}`",
            s.name, s.id, s.name
        ))
        .into()),
        None => Err(not_found(sprints, name)),
    }
}

fn not_found(sprints: &Sprints, name: &str) -> crate::Error {
    let open: Vec<&str> = sprints
        .all()
        .iter()
        .filter(|s| s.status == SprintStatus::Open)
        .map(|s| s.name.as_str())
        .collect();
    SprintError::NotFound(format!(
        "sprint {:?} not found (open sprints: {}); make it with `co sprint create NAME`",
        crate::text::escape_control(name),
        if open.is_empty() {
            "none".to_string()
        } else {
            open.join(", ")
        }
    ))
    .into()
}

/// `co sprint create`: one `sprint.created` in the company store.
pub fn create(company: &Company, req: &CreateSprint, actor: &str) -> Result<Sprint> {
    if !crate::config::is_valid_name(&req.name) {
        return Err(invalid(format!(
            "sprint name {:?} is not valid: use lowercase letters, digits and '-' (e.g. login-page)",
            crate::text::escape_control(&req.name)
        )));
    }
    if req.goal.chars().any(char::is_control) {
        return Err(invalid("the goal must be one line of text"));
    }
    if req.goal.chars().count() > MAX_GOAL_CHARS {
        return Err(invalid(format!(
            "the goal is longer than {MAX_GOAL_CHARS} characters; keep it to one sentence"
        )));
    }
    if let Some(f) = &req.factory {
        company.factory(f)?;
    }
    let store = company.store()?;
    let mut w = store.lock()?;
    let sprints = store.load::<Sprints>()?.state;
    if let Some(s) = sprints.open_named(&req.name) {
        return Err(SprintError::Conflict(format!(
            "an open sprint is already called {} ({}); close it first (`co sprint close {}`) or pick another name",
            s.name, s.id, s.name
        ))
        .into());
    }
    let id = loop {
        let id = crate::ids::new_sprint_id();
        if sprints.get(&id).is_none() {
            break id;
        }
    };
    let created = SprintCreated {
        id: id.clone(),
        name: req.name.clone(),
        factory: req.factory.clone(),
        goal: req.goal.clone(),
    };
    let events = w.append(vec![ev(types::SPRINT_CREATED, actor, &created)?])?;
    w.report_warnings();
    let mut one = Sprints::default();
    for e in &events {
        let _ = one.apply(&e.as_ref());
    }
    one.get(&id)
        .cloned()
        .ok_or_else(|| crate::Error::failure(format!("sprint {id} was written but not read back")))
}

/// Finds work orders anywhere in the company by their prefix, opening each store's index
/// once.
pub struct Finder<'a> {
    company: &'a Company,
    /// Prefix → the factory that owns it (`None`: the company's own `hq`).
    owners: BTreeMap<String, Option<String>>,
    lookups: HashMap<String, Lookup>,
}

impl std::fmt::Debug for Finder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finder")
            .field("owners", &self.owners)
            .finish()
    }
}

impl<'a> Finder<'a> {
    pub fn new(company: &'a Company) -> Result<Finder<'a>> {
        let mut owners = BTreeMap::new();
        owners.insert(crate::context::COMPANY_PREFIX.to_string(), None);
        for f in company.factories()? {
            owners.insert(f.prefix().to_string(), Some(f.name.clone()));
        }
        Ok(Finder {
            company,
            owners,
            lookups: HashMap::new(),
        })
    }

    /// The store a work order id lives in: `Some(None)` the company's, `Some(Some(f))` a
    /// factory's, `None` no store has its prefix.
    pub fn owner(&self, id: &str) -> Option<Option<&str>> {
        let prefix = crate::ids::prefix_of(id)?;
        self.owners.get(prefix).map(|o| o.as_deref())
    }

    /// A work order by id, from the store its prefix names.
    pub fn get(&mut self, id: &str) -> Result<Option<WorkOrder>> {
        let Some(prefix) = crate::ids::prefix_of(id).map(str::to_string) else {
            return Ok(None);
        };
        let Some(owner) = self.owners.get(&prefix).cloned() else {
            return Ok(None);
        };
        if !self.lookups.contains_key(&prefix) {
            let store = match &owner {
                None => self.company.store()?,
                Some(f) => self.company.factory(f)?.store()?,
            };
            self.lookups.insert(prefix.clone(), Lookup::open(&store)?);
        }
        match self.lookups.get(&prefix) {
            Some(l) => l.get(id),
            None => Ok(None),
        }
    }
}

/// What `co sprint add` did.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    pub sprint: Sprint,
    pub added: Vec<String>,
    /// Named but in the sprint already.
    pub already: Vec<String>,
}

/// `co sprint add NAME WO...`: every id must exist (in a store of the company, of the sprint's
/// factory when it has one) and be in no other open sprint; otherwise nothing is written.
pub fn add(company: &Company, name: &str, ids: &[String], actor: &str) -> Result<Added> {
    if ids.is_empty() {
        return Err(invalid("name at least one work order to add"));
    }
    let mut finder = Finder::new(company)?;
    let store = company.store()?;
    let mut w = store.lock()?;
    let sprints = store.load::<Sprints>()?.state;
    let s = open_sprint(&sprints, name)?.clone();
    let (mut added, mut already) = (Vec::new(), Vec::new());
    for id in ids {
        if added.contains(id) || already.contains(id) {
            continue;
        }
        if s.work_orders.contains(id) {
            already.push(id.clone());
            continue;
        }
        if finder.get(id)?.is_none() {
            return Err(SprintError::NotFound(format!(
                "work order {} not found; nothing was added (check it with `wo show {}`)",
                crate::text::escape_control(id),
                crate::text::escape_control(id)
            ))
            .into());
        }
        if let Some(f) = &s.factory
            && let Some(Some(owner)) = finder.owner(id)
            && owner != f
        {
            return Err(SprintError::Conflict(format!(
                "{id} belongs to factory {owner}, and sprint {} is for {f}; nothing was added",
                s.name
            ))
            .into());
        }
        if let Some(other) = sprints.open_holding(id, &s.id) {
            return Err(SprintError::Conflict(format!(
                "{id} is already in open sprint {}; remove it there first (`co sprint remove {} {id}`); nothing was added",
                other.name, other.name
            ))
            .into());
        }
        added.push(id.clone());
    }
    let mut events = Vec::new();
    for id in &added {
        events.push(ev(
            types::SPRINT_WORK_ORDER_ADDED,
            actor,
            &SprintWorkOrder {
                id: s.id.clone(),
                name: s.name.clone(),
                work_order: id.clone(),
            },
        )?);
    }
    let mut sprint = s;
    if !events.is_empty() {
        w.append(events)?;
        w.report_warnings();
        sprint.work_orders.extend(added.iter().cloned());
    }
    Ok(Added {
        sprint,
        added,
        already,
    })
}

/// `co sprint remove NAME WO...`: every id must be in the sprint; otherwise nothing is
/// written. The work orders themselves are not touched.
pub fn remove(company: &Company, name: &str, ids: &[String], actor: &str) -> Result<Sprint> {
    if ids.is_empty() {
        return Err(invalid("name at least one work order to remove"));
    }
    let store = company.store()?;
    let mut w = store.lock()?;
    let sprints = store.load::<Sprints>()?.state;
    let mut s = open_sprint(&sprints, name)?.clone();
    let mut events = Vec::new();
    let mut seen = Vec::new();
    for id in ids {
        if seen.contains(id) {
            continue;
        }
        if !s.work_orders.contains(id) {
            return Err(SprintError::NotFound(format!(
                "{} is not in sprint {}; nothing was removed (see `co sprint show {}`)",
                crate::text::escape_control(id),
                s.name,
                s.name
            ))
            .into());
        }
        seen.push(id.clone());
        events.push(ev(
            types::SPRINT_WORK_ORDER_REMOVED,
            actor,
            &SprintWorkOrder {
                id: s.id.clone(),
                name: s.name.clone(),
                work_order: id.clone(),
            },
        )?);
    }
    w.append(events)?;
    w.report_warnings();
    s.work_orders.retain(|x| !seen.contains(x));
    Ok(s)
}

/// `co sprint close NAME`: the sprint stops being open (its name is free again); its work
/// orders carry on. Returns the sprint and the ids that were not finished.
pub fn close(company: &Company, name: &str, actor: &str) -> Result<(Sprint, Vec<String>)> {
    let mut finder = Finder::new(company)?;
    let store = company.store()?;
    let mut w = store.lock()?;
    let sprints = store.load::<Sprints>()?.state;
    let mut s = open_sprint(&sprints, name)?.clone();
    let mut unfinished = Vec::new();
    for id in &s.work_orders {
        match finder.get(id)? {
            Some(wo) if wo.status.is_done() => {}
            _ => unfinished.push(id.clone()),
        }
    }
    let events = w.append(vec![ev(
        types::SPRINT_CLOSED,
        actor,
        &SprintClosed {
            id: s.id.clone(),
            name: s.name.clone(),
            unfinished: unfinished.clone(),
        },
    )?])?;
    w.report_warnings();
    s.status = SprintStatus::Closed;
    s.closed_at = events.first().map(|e| e.timestamp.clone());
    Ok((s, unfinished))
}

/// The sprints of the company (open ones only unless `all`).
pub fn list(company: &Company, all: bool) -> Result<Vec<Sprint>> {
    Ok(company
        .store()?
        .load::<Sprints>()?
        .state
        .all()
        .iter()
        .filter(|s| all || s.status == SprintStatus::Open)
        .cloned()
        .collect())
}

/// One sprint by name or id (open first, else the latest closed of that name).
pub fn get(company: &Company, name: &str) -> Result<Sprint> {
    let sprints = company.store()?.load::<Sprints>()?.state;
    sprints
        .resolve(name)
        .cloned()
        .ok_or_else(|| not_found(&sprints, name))
}

/// A work order that needs someone's attention, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attention {
    pub id: String,
    pub title: String,
    pub status: Status,
    /// Why: the reason it was blocked or failed, or what it waits on; for work in review,
    /// how long it has been there.
    pub why: String,
    /// When it reached its status.
    pub since: String,
}

/// The oldest open work order of a sprint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Oldest {
    pub id: String,
    pub created_at: String,
    pub age_seconds: i64,
}

/// A sprint with its work in progress.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    #[serde(flatten)]
    pub sprint: Sprint,
    pub total: usize,
    /// Every status, with zero counts too (as `wo stats` gives them).
    pub by_status: BTreeMap<String, usize>,
    /// Status `blocked` (with its reason), or open work waiting on unfinished dependencies.
    pub blocked: Vec<Attention>,
    pub failed: Vec<Attention>,
    pub in_review: Vec<Attention>,
    /// The oldest work order not closed or cancelled.
    pub oldest_open: Option<Oldest>,
    /// Ids in the sprint that no store of the company has (a store removed by hand).
    pub missing: Vec<String>,
}

impl Summary {
    /// Statuses summed: how many work orders are in any of these.
    pub fn count(&self, statuses: &[Status]) -> usize {
        statuses
            .iter()
            .map(|s| self.by_status.get(s.as_str()).copied().unwrap_or(0))
            .sum()
    }
}

/// Summarises a sprint from its work orders (`None`: not found) and the status of each
/// dependency they name. Pure, so the arithmetic is tested on its own.
pub fn summarize(
    sprint: &Sprint,
    work_orders: &[(String, Option<WorkOrder>)],
    deps: &HashMap<String, Option<Status>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Summary {
    let mut by_status: BTreeMap<String, usize> = Status::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    let (mut blocked, mut failed, mut in_review, mut missing) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut oldest: Option<(chrono::DateTime<chrono::Utc>, &WorkOrder)> = None;
    let age = |ts: &str| {
        crate::clock::parse_timestamp(ts)
            .map(|t| (now - t).num_seconds().max(0))
            .unwrap_or(0)
    };
    for (id, wo) in work_orders {
        let Some(wo) = wo else {
            missing.push(id.clone());
            continue;
        };
        *by_status.entry(wo.status.to_string()).or_default() += 1;
        let item = |why: String| Attention {
            id: wo.id.clone(),
            title: wo.title.clone(),
            status: wo.status,
            why,
            since: wo.status_changed_at.clone(),
        };
        match wo.status {
            Status::Blocked => blocked.push(item(
                wo.last_failure
                    .clone()
                    .unwrap_or_else(|| "no reason recorded".into()),
            )),
            Status::Failed => failed.push(item(
                wo.last_failure
                    .clone()
                    .unwrap_or_else(|| "no reason recorded".into()),
            )),
            Status::InReview => in_review.push(item(format!(
                "in review for {}",
                crate::clock::human_age(age(&wo.status_changed_at))
            ))),
            Status::Open | Status::Queued => {
                let waiting: Vec<String> = wo
                    .depends_on
                    .iter()
                    .filter_map(|d| match deps.get(d).copied().flatten() {
                        Some(Status::Closed) => None,
                        Some(s) => Some(format!("{d} ({s})")),
                        None => Some(format!("{d} (missing)")),
                    })
                    .collect();
                if !waiting.is_empty() {
                    blocked.push(item(format!("waits on {}", waiting.join(", "))));
                }
            }
            _ => {}
        }
        if !wo.status.is_done()
            && let Some(t) = crate::clock::parse_timestamp(&wo.created_at)
            && oldest.is_none_or(|(o, _)| t < o)
        {
            oldest = Some((t, wo));
        }
    }
    Summary {
        sprint: sprint.clone(),
        total: work_orders.len(),
        by_status,
        blocked,
        failed,
        in_review,
        oldest_open: oldest.map(|(t, wo)| Oldest {
            id: wo.id.clone(),
            created_at: wo.created_at.clone(),
            age_seconds: (now - t).num_seconds().max(0),
        }),
        missing,
    }
}

/// A sprint's summary and its work orders, read from their stores now.
pub fn summary(finder: &mut Finder<'_>, sprint: &Sprint) -> Result<(Summary, Vec<WorkOrder>)> {
    let mut wos = Vec::new();
    for id in &sprint.work_orders {
        wos.push((id.clone(), finder.get(id)?));
    }
    let mut deps = HashMap::new();
    for (_, wo) in &wos {
        let Some(wo) = wo else { continue };
        if wo.status.is_done() {
            continue;
        }
        for d in &wo.depends_on {
            if !deps.contains_key(d) {
                let st = finder.get(d)?.map(|w| w.status);
                deps.insert(d.clone(), st);
            }
        }
    }
    let s = summarize(sprint, &wos, &deps, chrono::Utc::now());
    Ok((s, wos.into_iter().filter_map(|(_, w)| w).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::store::{Store, StoreOptions};

    fn wo(id: &str, status: Status, created: &str) -> WorkOrder {
        WorkOrder {
            id: id.into(),
            title: format!("title of {id}"),
            kind: crate::workorder::WoType::Task,
            priority: 2,
            status,
            description: String::new(),
            labels: Vec::new(),
            parent: None,
            depends_on: Vec::new(),
            assignee: None,
            factory: None,
            attempts: 0,
            incarnation: None,
            branch: None,
            merge_commit: None,
            close_reason: None,
            last_failure: None,
            children: 0,
            created_by: "human".into(),
            created_at: created.into(),
            updated_at: created.into(),
            status_changed_at: created.into(),
            closed_at: None,
            approved_head: None,
            seq: 1,
        }
    }

    fn sprint(ids: &[&str]) -> Sprint {
        Sprint {
            id: "sprint-abcdefgh".into(),
            name: "s1".into(),
            factory: None,
            goal: String::new(),
            status: SprintStatus::Open,
            work_orders: ids.iter().map(|s| s.to_string()).collect(),
            created_by: "human".into(),
            created_at: "2026-11-20T00:00:00.000Z".into(),
            closed_at: None,
        }
    }

    #[test]
    fn the_summary_counts_every_status_and_says_why_work_waits() {
        let now = crate::clock::parse_timestamp("2026-11-21T12:00:00Z").unwrap();
        let mut blocked = wo("mp-000001", Status::Blocked, "2026-11-21T10:00:00.000Z");
        blocked.last_failure = Some("QA will not merge without gates".into());
        let mut waiting = wo("mp-000002", Status::Open, "2026-11-21T09:00:00.000Z");
        waiting.depends_on = vec!["mp-000001".into(), "mp-000003".into()];
        let mut review = wo("mp-000003", Status::InReview, "2026-11-21T11:00:00.000Z");
        review.status_changed_at = "2026-11-21T11:55:00.000Z".into();
        // The oldest of all is closed, so it is not the oldest open.
        let closed = wo("mp-000004", Status::Closed, "2026-11-20T00:00:00.000Z");
        let list = vec![
            ("mp-000001".to_string(), Some(blocked)),
            ("mp-000002".to_string(), Some(waiting)),
            ("mp-000003".to_string(), Some(review)),
            ("mp-000004".to_string(), Some(closed)),
            ("mp-gone00".to_string(), None),
        ];
        let deps = HashMap::from([
            ("mp-000001".to_string(), Some(Status::Blocked)),
            ("mp-000003".to_string(), Some(Status::InReview)),
        ]);
        let s = summarize(&sprint(&[]), &list, &deps, now);
        assert_eq!(s.total, 5);
        assert_eq!(s.by_status["blocked"], 1);
        assert_eq!(s.by_status["open"], 1);
        assert_eq!(s.by_status["in_review"], 1);
        assert_eq!(s.by_status["closed"], 1);
        assert_eq!(s.by_status["queued"], 0);
        assert_eq!(s.by_status.len(), Status::ALL.len());
        assert_eq!(s.missing, vec!["mp-gone00".to_string()]);
        assert_eq!(s.blocked.len(), 2);
        assert_eq!(s.blocked[0].why, "QA will not merge without gates");
        assert_eq!(
            s.blocked[1].why,
            "waits on mp-000001 (blocked), mp-000003 (in_review)"
        );
        assert_eq!(s.in_review[0].why, "in review for 5m");
        let oldest = s.oldest_open.clone().unwrap();
        assert_eq!(oldest.id, "mp-000002");
        assert_eq!(oldest.age_seconds, 3 * 3600);
        assert_eq!(s.count(&[Status::Open, Status::Blocked]), 2);
    }

    #[test]
    fn the_projection_follows_the_events_and_rebuilds_identically() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(&dir.path().join(".work"), StoreOptions::default()).unwrap();
        let e = |ty: &str, data: &serde_json::Value| NewEvent::new(ty, "human", data).unwrap();
        store
            .append(vec![
                e(
                    types::SPRINT_CREATED,
                    &serde_json::json!({"id":"sprint-a","name":"one","goal":"ship it"}),
                ),
                e(
                    types::SPRINT_WORK_ORDER_ADDED,
                    &serde_json::json!({"id":"sprint-a","name":"one","work_order":"mp-000001"}),
                ),
                e(
                    types::SPRINT_WORK_ORDER_ADDED,
                    &serde_json::json!({"id":"sprint-a","name":"one","work_order":"mp-000002"}),
                ),
                e(
                    types::SPRINT_WORK_ORDER_REMOVED,
                    &serde_json::json!({"id":"sprint-a","name":"one","work_order":"mp-000001"}),
                ),
                e(
                    types::SPRINT_CLOSED,
                    &serde_json::json!({"id":"sprint-a","name":"one"}),
                ),
                e(
                    types::SPRINT_CREATED,
                    &serde_json::json!({"id":"sprint-b","name":"one","factory":"mp"}),
                ),
                // Refers to no sprint: an issue, not a crash.
                e(
                    types::SPRINT_CLOSED,
                    &serde_json::json!({"id":"sprint-zzz","name":"x"}),
                ),
            ])
            .unwrap();
        let l = store.load::<Sprints>().unwrap();
        let s = &l.state;
        assert_eq!(s.all().len(), 2);
        let a = s.get("sprint-a").unwrap();
        assert_eq!(a.status, SprintStatus::Closed);
        assert_eq!(a.work_orders, vec!["mp-000002".to_string()]);
        assert!(a.closed_at.is_some());
        // The open one of that name wins; by id either.
        assert_eq!(s.resolve("one").unwrap().id, "sprint-b");
        assert_eq!(s.resolve("sprint-a").unwrap().id, "sprint-a");
        assert_eq!(s.open_named("one").unwrap().factory.as_deref(), Some("mp"));
        assert_eq!(l.issues.len(), 1, "{:?}", l.issues);
        // Saved, loaded back and rebuilt: the same bytes.
        store.save(&l).unwrap();
        let again = store.load::<Sprints>().unwrap();
        let rebuilt = store.rebuild::<Sprints>().unwrap();
        assert_eq!(
            store.render(&again).unwrap(),
            store.render(&rebuilt).unwrap()
        );
        assert!(store.same_state(&again, &rebuilt).unwrap());
    }
}
