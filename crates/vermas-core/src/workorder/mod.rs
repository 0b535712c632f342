//! Work orders: the record, its status machine (design §3), the events that change it, and the
//! projection `work_orders.jsonl`.

mod active;
mod id_index;
mod index;
mod ops;
mod projection;

pub use active::{Active, Views, WithIndex};
pub use id_index::IdIndex;
pub use index::{INDEX_FILE, Index, IndexError};
pub use ops::*;
pub use projection::WorkOrders;

/// Where work orders are read from for point look-ups: anything that finds one by id.
pub trait Source {
    /// The work order `id`, if there is one.
    fn find(&self, id: &str) -> crate::Result<Option<WorkOrder>>;
}

impl Source for WorkOrders {
    fn find(&self, id: &str) -> crate::Result<Option<WorkOrder>> {
        Ok(self.get(id))
    }
}

impl Source for Index {
    fn find(&self, id: &str) -> crate::Result<Option<WorkOrder>> {
        Ok(self.get(id)?)
    }
}

/// The work orders of a store for commands that touch a few of them: the SQLite index
/// ([`Index`]) when it can be opened, else the whole projection (a store the index cannot be
/// written in, say), with the same answers either way.
pub enum Lookup {
    Index(Index),
    Loaded(crate::store::Loaded<WorkOrders>),
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Index(i) => i.fmt(f),
            Lookup::Loaded(_) => f.write_str("Lookup::Loaded"),
        }
    }
}

impl Lookup {
    /// Opens the index of `store` (brought up to date with the log), falling back to loading
    /// the projection when the index cannot be used.
    pub fn open(store: &crate::store::Store) -> crate::Result<Lookup> {
        match Index::open(store) {
            Ok(i) => Ok(Lookup::Index(i)),
            Err(_) => Ok(Lookup::Loaded(store.load::<WorkOrders>()?)),
        }
    }

    /// Problems met in the log (to warn about, as a projection load does).
    pub fn issues(&self) -> &[crate::store::Issue] {
        match self {
            Lookup::Index(i) => i.issues(),
            Lookup::Loaded(l) => &l.issues,
        }
    }

    /// One work order.
    pub fn get(&self, id: &str) -> crate::Result<Option<WorkOrder>> {
        self.find(id)
    }

    /// The work orders that depend on `id`, in creation order.
    pub fn dependents(&self, id: &str) -> crate::Result<Vec<String>> {
        match self {
            Lookup::Index(i) => Ok(i.dependents(id)?),
            Lookup::Loaded(l) => Ok(l
                .state
                .all()
                .into_iter()
                .filter(|w| w.depends_on.iter().any(|d| d == id))
                .map(|w| w.id)
                .collect()),
        }
    }

    /// The children of `id`, in creation order.
    pub fn children(&self, id: &str) -> crate::Result<Vec<String>> {
        match self {
            Lookup::Index(i) => Ok(i.children(id)?),
            Lookup::Loaded(l) => Ok(l
                .state
                .all()
                .into_iter()
                .filter(|w| w.parent.as_deref() == Some(id))
                .map(|w| w.id)
                .collect()),
        }
    }

    /// The work orders queued for `factory`, most urgent first, then oldest.
    pub fn queued(&self, factory: &str) -> crate::Result<Vec<WorkOrder>> {
        match self {
            Lookup::Index(i) => Ok(i.queued(factory)?),
            Lookup::Loaded(l) => {
                let mut out: Vec<WorkOrder> = l
                    .state
                    .all()
                    .into_iter()
                    .filter(|w| w.status == Status::Queued && w.factory.as_deref() == Some(factory))
                    .collect();
                sort_by_priority_then_age(&mut out);
                Ok(out)
            }
        }
    }

    /// The last `limit` events about `wo`, oldest first.
    pub fn history(
        &self,
        store: &crate::store::Store,
        wo: &WorkOrder,
        limit: usize,
    ) -> crate::Result<Vec<crate::event::Event>> {
        if let Lookup::Index(i) = self
            && let Ok(h) = i.history(&wo.id, limit)
        {
            return Ok(h);
        }
        let mut all = history(store, wo)?;
        let skip = all.len().saturating_sub(limit);
        all.drain(..skip);
        Ok(all)
    }
}

impl Source for Lookup {
    fn find(&self, id: &str) -> crate::Result<Option<WorkOrder>> {
        match self {
            Lookup::Index(i) => i.find(id),
            Lookup::Loaded(l) => Ok(l.state.get(id)),
        }
    }
}

/// The work orders of `store` queued for `factory` (what a dispatch takes), most urgent first:
/// a query of the index, not a load of every work order.
pub fn queued_in(store: &crate::store::Store, factory: &str) -> crate::Result<Vec<WorkOrder>> {
    Lookup::open(store)?.queued(factory)
}

/// One work order by id, reading only what it needs (the index), not the whole projection.
pub fn lookup(store: &crate::store::Store, id: &str) -> crate::Result<Option<WorkOrder>> {
    Lookup::open(store)?.get(id)
}

/// The events about one work order, oldest first (scanning from the day it was created).
pub fn history(
    store: &crate::store::Store,
    wo: &WorkOrder,
) -> Result<Vec<crate::event::Event>, crate::store::StoreError> {
    let since = crate::clock::parse_timestamp(&wo.created_at).map(|t| t.date_naive());
    let needle = format!("\"{}\"", wo.id);
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    #[derive(Deserialize)]
    struct About {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        work_order: Option<String>,
    }
    let mut out = Vec::new();
    let mut visit = |ev: &crate::event::EventRef<'_>, info: &crate::store::LineInfo<'_>| {
        if finder.find(info.raw).is_some()
            && let Ok(a) = ev.data::<About>()
            && (a.id.as_deref() == Some(&wo.id) || a.work_order.as_deref() == Some(&wo.id))
        {
            out.push(ev.to_owned_event());
        }
        Ok(())
    };
    store
        .scan(&crate::store::Checkpoint::default(), since, &mut visit)?
        .ok();
    Ok(out)
}

use crate::error::{Classify, Kind};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Errors of work order operations.
#[derive(Debug, thiserror::Error)]
pub enum WorkOrderError {
    #[error("work order {0} not found")]
    NotFound(String),
    #[error("{id}: illegal transition {from} → {to}{hint}")]
    IllegalTransition {
        id: String,
        from: Status,
        to: Status,
        hint: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
}

impl Classify for WorkOrderError {
    fn kind(&self) -> Kind {
        match self {
            WorkOrderError::NotFound(_) => Kind::NotFound,
            WorkOrderError::IllegalTransition { .. } | WorkOrderError::Conflict(_) => {
                Kind::Conflict
            }
            WorkOrderError::Invalid(_) => Kind::Usage,
        }
    }
}

/// Where a work order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    Queued,
    Assigned,
    InProgress,
    InReview,
    /// Its branch changes protected paths (tests, gate scripts): it waits for a person's
    /// `co approve` or `co reject`.
    NeedsApproval,
    Rework,
    Blocked,
    Closed,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Open,
        Status::Queued,
        Status::Assigned,
        Status::InProgress,
        Status::InReview,
        Status::NeedsApproval,
        Status::Rework,
        Status::Blocked,
        Status::Closed,
        Status::Failed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Queued => "queued",
            Status::Assigned => "assigned",
            Status::InProgress => "in_progress",
            Status::InReview => "in_review",
            Status::NeedsApproval => "needs_approval",
            Status::Rework => "rework",
            Status::Blocked => "blocked",
            Status::Closed => "closed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Closed and cancelled work is done; everything else is open work (failed work needs a
    /// person, so it stays visible).
    pub fn is_done(self) -> bool {
        matches!(self, Status::Closed | Status::Cancelled)
    }

    /// The statuses this one may move to. The main path is
    /// open → queued → assigned → in_progress → in_review → closed; rework goes back to a
    /// worker, blocked waits for a person, failed gave up, cancelled and closed can be reopened.
    pub fn next(self) -> &'static [Status] {
        use Status::*;
        match self {
            Open => &[Queued, Assigned, InProgress, Blocked, Closed, Cancelled],
            Queued => &[Open, Assigned, Blocked, Failed, Closed, Cancelled],
            Assigned => &[
                InProgress, InReview, Queued, Open, Rework, Blocked, Failed, Closed, Cancelled,
            ],
            InProgress => &[
                InReview, Queued, Open, Rework, Blocked, Failed, Closed, Cancelled,
            ],
            InReview => &[
                Closed,
                Rework,
                NeedsApproval,
                Queued,
                Blocked,
                Failed,
                Cancelled,
            ],
            NeedsApproval => &[InReview, Rework, Blocked, Failed, Closed, Cancelled],
            Rework => &[
                Assigned, Queued, InProgress, Open, Blocked, Failed, Closed, Cancelled,
            ],
            Blocked => &[Open, Queued, InReview, Rework, Failed, Closed, Cancelled],
            Failed => &[Open, Queued, Closed, Cancelled],
            Closed => &[Open],
            Cancelled => &[Open],
        }
    }

    pub fn can_move_to(self, to: Status) -> bool {
        self.next().contains(&to)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of work it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WoType {
    Task,
    Bug,
    Feature,
    Epic,
    Chore,
}

impl WoType {
    pub const ALL: [WoType; 5] = [
        WoType::Task,
        WoType::Bug,
        WoType::Feature,
        WoType::Epic,
        WoType::Chore,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            WoType::Task => "task",
            WoType::Bug => "bug",
            WoType::Feature => "feature",
            WoType::Epic => "epic",
            WoType::Chore => "chore",
        }
    }
    pub fn parse(s: &str) -> Option<WoType> {
        WoType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for WoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One work order as the projection holds it. `id` must stay the first field: the projection
/// reads ids straight from the line without parsing the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: WoType,
    pub priority: u8,
    pub status: Status,
    pub description: String,
    pub labels: Vec<String>,
    pub parent: Option<String>,
    /// Work orders this one needs (`wo dep add A B` puts B here on A).
    pub depends_on: Vec<String>,
    pub assignee: Option<String>,
    /// The factory it is queued for or dispatched to.
    pub factory: Option<String>,
    /// How many times it has been dispatched.
    pub attempts: u32,
    pub incarnation: Option<String>,
    pub branch: Option<String>,
    pub merge_commit: Option<String>,
    pub close_reason: Option<String>,
    /// Why it was last sent back, blocked or failed.
    pub last_failure: Option<String>,
    /// The branch head a person approved although it changes protected paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_head: Option<String>,
    /// Children created so far (the next child is `<id>.<children+1>`).
    pub children: u32,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    pub status_changed_at: String,
    pub closed_at: Option<String>,
    /// The last event that changed it: a position in this store's log, so the one field that
    /// differs between two stores that `wo sync` keeps equal (absent in a
    /// `work_order.reconciled` payload).
    #[serde(default)]
    pub seq: u64,
}

/// Payload of `work_order.created`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Created {
    pub id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub kind: WoType,
    pub priority: u8,
    pub description: String,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub parent: Option<String>,
}

/// Payload of `work_order.updated`: only the fields that changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Updated {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<WoType>,
    /// An empty string clears the assignee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_labels: Vec<String>,
}

impl Updated {
    /// The fields this update changes, in a fixed order (`wo update` prints them).
    pub fn changed_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.priority.is_some() {
            out.push("priority");
        }
        if self.title.is_some() {
            out.push("title");
        }
        if self.description.is_some() {
            out.push("description");
        }
        if self.kind.is_some() {
            out.push("type");
        }
        if self.assignee.is_some() {
            out.push("assignee");
        }
        if !self.add_labels.is_empty() || !self.remove_labels.is_empty() {
            out.push("labels");
        }
        out
    }
}

/// Payload of `work_order.status_changed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusChanged {
    pub id: String,
    pub from: Status,
    pub to: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `queued`: the factory whose queue it joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory: Option<String>,
}

/// Payload of `work_order.assigned`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assigned {
    pub id: String,
    pub assignee: String,
    pub factory: String,
    pub slot: u32,
    pub incarnation: String,
    pub attempt: u32,
    pub branch: String,
}

/// Payload of `work_order.dependency_added` / `dependency_removed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dependency {
    pub id: String,
    pub depends_on: String,
}

/// Payload of `work_order.approved`: a person let this head of its branch change protected
/// paths.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approved {
    pub id: String,
    pub head: String,
    pub paths: Vec<String>,
}

/// Payload of `work_order.closed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Closed {
    pub id: String,
    pub from: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit: Option<String>,
}

/// Payload of `work_order.reconciled`: the whole record (without `seq`) that the sync rule
/// gives for work order `id` once every store's events about it are known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reconciled {
    pub id: String,
    pub record: WorkOrder,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wo(id: &str, priority: u8, created_at: &str) -> WorkOrder {
        serde_json::from_value(serde_json::json!({
            "id": id, "title": id, "type": "task", "priority": priority, "status": "queued",
            "description": "", "labels": [], "parent": null, "depends_on": [],
            "assignee": null, "factory": "f", "attempts": 0, "incarnation": null,
            "branch": null, "merge_commit": null, "close_reason": null, "last_failure": null,
            "children": 0, "created_by": "t", "created_at": created_at,
            "updated_at": created_at, "status_changed_at": created_at, "closed_at": null
        }))
        .unwrap()
    }

    #[test]
    fn work_is_served_most_urgent_first_then_oldest_and_ties_keep_their_order() {
        // (id, priority, created_at), given in the order they arrived → the order served.
        type Given<'a> = &'a [(&'a str, u8, &'a str)];
        let table: [(Given, &[&str]); 3] = [
            (
                &[
                    ("b", 2, "2026-01-02T00:00:00Z"),
                    ("a", 2, "2026-01-01T00:00:00Z"),
                ],
                &["a", "b"],
            ),
            (
                &[
                    ("old", 3, "2026-01-01T00:00:00Z"),
                    ("urgent", 0, "2026-01-09T00:00:00Z"),
                ],
                &["urgent", "old"],
            ),
            (
                &[
                    ("x", 1, "2026-01-01T00:00:00Z"),
                    ("y", 1, "2026-01-01T00:00:00Z"),
                ],
                &["x", "y"],
            ),
        ];
        for (given, served) in table {
            let mut list: Vec<WorkOrder> = given.iter().map(|(i, p, c)| wo(i, *p, c)).collect();
            sort_by_priority_then_age(&mut list);
            let ids: Vec<&str> = list.iter().map(|w| w.id.as_str()).collect();
            assert_eq!(ids, served, "{given:?}");
        }
    }

    #[test]
    fn the_main_path_is_legal_and_closed_only_reopens() {
        use Status::*;
        let path = [Open, Queued, Assigned, InProgress, InReview, Closed];
        for w in path.windows(2) {
            assert!(w[0].can_move_to(w[1]), "{} → {}", w[0], w[1]);
        }
        assert_eq!(Closed.next(), &[Open]);
        assert!(!Closed.can_move_to(InReview));
        assert!(!Open.can_move_to(Open));
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert!(!s.can_move_to(s), "{s} → itself");
        }
    }
}
