//! Validated changes to work orders: each function checks a request against the current state
//! and returns the events to append, or an error that says what was wrong (nothing is written).

use super::{
    Closed, Created, Dependency, IdIndex, Source, Status, StatusChanged, Updated, WoType,
    WorkOrder, WorkOrderError, WorkOrders,
};
use crate::error::Result;
use crate::event::{Event, NewEvent, types};
use crate::ids;
use crate::store::Writer;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Largest description, in bytes (an event line must stay under 1 MiB).
pub const MAX_DESCRIPTION_BYTES: usize = 512 * 1024;
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

fn invalid(msg: impl Into<String>) -> WorkOrderError {
    WorkOrderError::Invalid(msg.into())
}

pub fn validate_title(t: &str) -> Result<(), WorkOrderError> {
    if t.trim().is_empty() {
        return Err(invalid("title is empty; give one with --title"));
    }
    if t.contains(['\n', '\r']) {
        return Err(invalid(
            "title must be one line; put details in --description",
        ));
    }
    let n = t.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(invalid(format!(
            "title is {n} characters; the limit is {MAX_TITLE_CHARS} (put details in --description)"
        )));
    }
    Ok(())
}

pub fn validate_description(d: &str) -> Result<(), WorkOrderError> {
    if d.len() > MAX_DESCRIPTION_BYTES {
        return Err(invalid(format!(
            "description is {} bytes; the limit is {MAX_DESCRIPTION_BYTES}",
            d.len()
        )));
    }
    Ok(())
}

pub fn validate_label(l: &str) -> Result<(), WorkOrderError> {
    let n = l.chars().count();
    if n == 0
        || n > MAX_LABEL_CHARS
        || l.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
    {
        return Err(invalid(format!(
            "label {l:?} is not valid: 1 to {MAX_LABEL_CHARS} characters, no spaces, commas or control characters"
        )));
    }
    Ok(())
}

/// What `wo create` asks for.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub title: String,
    pub kind: WoType,
    pub priority: u8,
    pub description: String,
    pub labels: Vec<String>,
    pub parent: Option<String>,
}

/// Creates a work order under the writer's lock: a fresh collision-checked id (or the parent's
/// next child id), one `work_order.created` event.
pub fn create(
    w: &mut Writer<'_>,
    prefix: &str,
    actor: &str,
    mut req: CreateRequest,
) -> Result<Vec<Event>> {
    // A key pasted into a title or description would stay in the log for good.
    req.title = crate::text::mask_secrets(&req.title).0;
    req.description = crate::text::mask_secrets(&req.description).0;
    validate_title(&req.title)?;
    validate_description(&req.description)?;
    if req.priority > 4 {
        return Err(invalid(format!("priority {} is out of range 0-4", req.priority)).into());
    }
    let mut labels = Vec::new();
    for l in &req.labels {
        validate_label(l)?;
        if !labels.contains(l) {
            labels.push(l.clone());
        }
    }
    let mut index = IdIndex::open_or_warn(w);
    let id = match &req.parent {
        Some(parent) => {
            let wos = super::Lookup::open(w.store())?;
            let p = wos
                .get(parent)?
                .ok_or_else(|| WorkOrderError::NotFound(parent.clone()))?;
            let mut n = p.children + 1;
            while wos.get(&format!("{parent}.{n}"))?.is_some() {
                n += 1;
            }
            format!("{parent}.{n}")
        }
        None => {
            let mut exact: Option<super::Lookup> = None;
            loop {
                let id = ids::new_work_order_id(prefix);
                let free = match &index {
                    Some(i) => !i.maybe_taken(&id)?,
                    None => false,
                };
                if free {
                    break id;
                }
                // A set bit (or no index): the exact check, by a look-up.
                if exact.is_none() {
                    exact = Some(super::Lookup::open(w.store())?);
                }
                if let Some(l) = &exact
                    && l.get(&id)?.is_none()
                {
                    break id;
                }
            }
        }
    };
    let ev = NewEvent::new(
        types::WORK_ORDER_CREATED,
        actor,
        &Created {
            id: id.clone(),
            title: req.title,
            kind: req.kind,
            priority: req.priority,
            description: req.description,
            labels,
            parent: req.parent,
        },
    )
    .map_err(crate::store::StoreError::from)?;
    let events = w.append(vec![ev])?;
    // The event is durable: from here on nothing may turn the create into a failure (a retry
    // would create it twice). The id index is a cache; when it cannot record the id, it is
    // marked for a rebuild and the user is told.
    if let Some(index) = &mut index
        && let Err(e) = index.record(&id, w)
    {
        index.invalidate();
        w.warnings.push(format!(
            "{id} was created, but the id index .work/work_orders.ids could not record it ({e}); it will be rebuilt from the log"
        ));
    }
    Ok(events)
}

/// What `wo update` asks for (every field optional).
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub title: Option<String>,
    pub priority: Option<u8>,
    pub description: Option<String>,
    pub kind: Option<WoType>,
    pub assignee: Option<String>,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
    pub status: Option<Status>,
    pub reason: Option<String>,
}

/// Events for `wo update`: one `work_order.updated` with the changed fields, then a status
/// change if one was asked for. An illegal transition refuses the whole update. Also returns
/// the `work_order.updated` payload, so the caller can say what changed (nothing but the status
/// when it lists no field).
pub fn plan_update(
    wo: &WorkOrder,
    req: &UpdateRequest,
    actor: &str,
) -> Result<(Vec<NewEvent>, Updated)> {
    let mut u = Updated {
        id: wo.id.clone(),
        ..Default::default()
    };
    if let Some(t) = &req.title {
        let t = crate::text::mask_secrets(t).0;
        validate_title(&t)?;
        if t != wo.title {
            u.title = Some(t);
        }
    }
    if let Some(d) = &req.description {
        let d = crate::text::mask_secrets(d).0;
        validate_description(&d)?;
        if d != wo.description {
            u.description = Some(d);
        }
    }
    if let Some(p) = req.priority {
        if p > 4 {
            return Err(invalid(format!("priority {p} is out of range 0-4")).into());
        }
        if p != wo.priority {
            u.priority = Some(p);
        }
    }
    if let Some(k) = req.kind
        && k != wo.kind
    {
        u.kind = Some(k);
    }
    if let Some(a) = &req.assignee
        && Some(a) != wo.assignee.as_ref()
        && !(a.is_empty() && wo.assignee.is_none())
    {
        if a.chars().any(char::is_control) {
            return Err(invalid("assignee must not contain control characters").into());
        }
        u.assignee = Some(a.clone());
    }
    for l in &req.add_labels {
        validate_label(l)?;
        if !wo.labels.contains(l) && !u.add_labels.contains(l) {
            u.add_labels.push(l.clone());
        }
    }
    for l in &req.remove_labels {
        if wo.labels.contains(l) && !u.remove_labels.contains(l) {
            u.remove_labels.push(l.clone());
        }
    }
    let mut events = Vec::new();
    let changed = !u.changed_fields().is_empty();
    let status_event = match req.status {
        Some(to) => Some(plan_transition(wo, to, req.reason.as_deref(), None, actor)?),
        None => None,
    };
    if changed {
        events.push(
            NewEvent::new(types::WORK_ORDER_UPDATED, actor, &u)
                .map_err(crate::store::StoreError::from)?,
        );
    }
    events.extend(status_event);
    if events.is_empty() {
        return Err(invalid(format!(
            "nothing to change on {}: every value given is already set",
            wo.id
        ))
        .into());
    }
    Ok((events, u))
}

/// A status change, checked against the state machine. Moving to `closed` writes
/// `work_order.closed`.
pub fn plan_transition(
    wo: &WorkOrder,
    to: Status,
    reason: Option<&str>,
    factory: Option<&str>,
    actor: &str,
) -> Result<NewEvent> {
    if !wo.status.can_move_to(to) {
        let allowed: Vec<&str> = wo.status.next().iter().map(|s| s.as_str()).collect();
        let hint = if wo.status == to {
            format!(" (it is already {to})")
        } else {
            format!(" (from {} it can go to: {})", wo.status, allowed.join(", "))
        };
        return Err(WorkOrderError::IllegalTransition {
            id: wo.id.clone(),
            from: wo.status,
            to,
            hint,
        }
        .into());
    }
    let ev = if to == Status::Closed {
        NewEvent::new(
            types::WORK_ORDER_CLOSED,
            actor,
            &Closed {
                id: wo.id.clone(),
                from: wo.status,
                reason: reason.map(str::to_string),
                merge_commit: None,
            },
        )
    } else {
        NewEvent::new(
            types::WORK_ORDER_STATUS_CHANGED,
            actor,
            &StatusChanged {
                id: wo.id.clone(),
                from: wo.status,
                to,
                reason: reason.map(str::to_string),
                factory: factory.map(str::to_string),
            },
        )
    };
    Ok(ev.map_err(crate::store::StoreError::from)?)
}

/// `wo close`: a closed event with an optional reason and merge commit.
pub fn plan_close(
    wo: &WorkOrder,
    reason: Option<&str>,
    merge_commit: Option<&str>,
    actor: &str,
) -> Result<NewEvent> {
    if !wo.status.can_move_to(Status::Closed) {
        return plan_transition(wo, Status::Closed, reason, None, actor);
    }
    Ok(NewEvent::new(
        types::WORK_ORDER_CLOSED,
        actor,
        &Closed {
            id: wo.id.clone(),
            from: wo.status,
            reason: reason.map(str::to_string),
            merge_commit: merge_commit.map(str::to_string),
        },
    )
    .map_err(crate::store::StoreError::from)?)
}

/// A work order, or a not-found error naming it (from the projection or an index).
pub fn require(wos: &impl Source, id: &str) -> Result<WorkOrder> {
    wos.find(id)?
        .ok_or_else(|| WorkOrderError::NotFound(id.to_string()).into())
}

/// A path of dependencies from `from` to `to`, if one exists.
fn dependency_path(wos: &impl Source, from: &str, to: &str) -> Result<Option<Vec<String>>> {
    let mut stack = vec![(from.to_string(), vec![from.to_string()])];
    let mut seen = std::collections::HashSet::new();
    while let Some((id, path)) = stack.pop() {
        if id == to {
            return Ok(Some(path));
        }
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some(wo) = wos.find(&id)? {
            for d in wo.depends_on {
                let mut p = path.clone();
                p.push(d.clone());
                stack.push((d, p));
            }
        }
    }
    Ok(None)
}

/// `wo dep add A B`: A needs B. Refuses self-dependencies and cycles.
pub fn plan_dep_add(wos: &impl Source, a: &str, b: &str, actor: &str) -> Result<NewEvent> {
    let wa = require(wos, a)?;
    require(wos, b)?;
    if a == b {
        return Err(WorkOrderError::Conflict(format!("{a} cannot depend on itself")).into());
    }
    if wa.depends_on.iter().any(|d| d == b) {
        return Err(WorkOrderError::Conflict(format!("{a} already depends on {b}")).into());
    }
    if let Some(path) = dependency_path(wos, b, a)? {
        return Err(WorkOrderError::Conflict(format!(
            "refused: {a} → {b} would make a cycle ({} → {a})",
            path.join(" → ")
        ))
        .into());
    }
    Ok(NewEvent::new(
        types::WORK_ORDER_DEPENDENCY_ADDED,
        actor,
        &Dependency {
            id: a.to_string(),
            depends_on: b.to_string(),
        },
    )
    .map_err(crate::store::StoreError::from)?)
}

/// `wo dep remove A B`.
pub fn plan_dep_remove(wos: &impl Source, a: &str, b: &str, actor: &str) -> Result<NewEvent> {
    let wa = require(wos, a)?;
    if !wa.depends_on.iter().any(|d| d == b) {
        return Err(WorkOrderError::NotFound(format!("dependency {a} → {b}")).into());
    }
    Ok(NewEvent::new(
        types::WORK_ORDER_DEPENDENCY_REMOVED,
        actor,
        &Dependency {
            id: a.to_string(),
            depends_on: b.to_string(),
        },
    )
    .map_err(crate::store::StoreError::from)?)
}

/// The dependencies of `wo` that are not closed yet, with their status (`None`: unknown id).
pub fn open_blockers(wos: &WorkOrders, wo: &WorkOrder) -> Vec<(String, Option<Status>)> {
    wo.depends_on
        .iter()
        .filter_map(|d| match wos.get(d) {
            Some(b) if b.status == Status::Closed => None,
            Some(b) => Some((d.clone(), Some(b.status))),
            None => Some((d.clone(), None)),
        })
        .collect()
}

/// [`open_blockers`] from any source of work orders (the index, a daemon's view): only the
/// dependencies are read.
pub fn open_blockers_in(
    src: &impl Source,
    wo: &WorkOrder,
) -> crate::Result<Vec<(String, Option<Status>)>> {
    let mut out = Vec::new();
    for d in &wo.depends_on {
        match src.find(d)? {
            Some(b) if b.status == Status::Closed => {}
            Some(b) => out.push((d.clone(), Some(b.status))),
            None => out.push((d.clone(), None)),
        }
    }
    Ok(out)
}

/// Open and every blocker closed.
pub fn is_ready(wos: &WorkOrders, wo: &WorkOrder) -> bool {
    wo.status == Status::Open && open_blockers(wos, wo).is_empty()
}

/// The order work is served in, everywhere (a factory's queue, `wo ready`, the members of a
/// QA batch): priority first (0 is most urgent), then the oldest.
pub fn queue_order(a: &WorkOrder, b: &WorkOrder) -> std::cmp::Ordering {
    a.priority
        .cmp(&b.priority)
        .then_with(|| a.created_at.cmp(&b.created_at))
}

/// Sorts in [`queue_order`] (stable: equal keys keep their order).
pub fn sort_by_priority_then_age(list: &mut [WorkOrder]) {
    list.sort_by(queue_order);
}
