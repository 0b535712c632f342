//! `wo doctor`: checks every line of the log, `seq` continuity, that each projection file equals
//! a fresh rebuild, and dangling references. Each problem names its file and line.

use crate::error::Result;
use crate::event::{EventRef, types};
use crate::mail::Messages;
use crate::slots::Slots;
use crate::sprint::Sprints;
use crate::store::{Checkpoint, LineInfo, Loaded, Projection, Store, StoreError};
use crate::team::Teams;
use crate::workorder::WorkOrders;
use serde::Serialize;

/// One finding: where (if a place is known) and what.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub problem: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: {}", self.problem),
            (Some(file), None) => write!(f, "{file}: {}", self.problem),
            _ => f.write_str(&self.problem),
        }
    }
}

fn at(file: impl Into<String>, line: Option<u64>, problem: impl Into<String>) -> Finding {
    Finding {
        file: Some(file.into()),
        line,
        problem: problem.into(),
    }
}

/// The result of checking a store.
#[derive(Debug, Default, Serialize)]
pub struct StoreHealth {
    pub ok: bool,
    pub store: String,
    pub problems: Vec<Finding>,
    /// Worth knowing, not wrong (a quarantined fragment, a projection not written yet).
    pub notes: Vec<Finding>,
    pub events: u64,
    pub last_seq: u64,
    pub log_files: usize,
    pub archived_files: usize,
    pub log_bytes: u64,
    pub work_orders: usize,
    pub messages: usize,
}

#[derive(Default)]
struct Fresh {
    wos: WorkOrders,
    msgs: Messages,
    slots: Slots,
    sprints: Sprints,
    teams: Teams,
}

/// Checks a store thoroughly (reads the whole log once). It holds the writers' lock while it
/// reads, so the log, the rebuild and the projection files it compares are one consistent
/// state even while agents write (they wait for the length of the scan).
pub fn check_store(store: &Store) -> Result<StoreHealth> {
    let _consistent = store.lock()?;
    let mut h = StoreHealth {
        store: store.dir().display().to_string(),
        ..Default::default()
    };
    let files = store.log_files()?;
    h.log_files = files.len();
    h.archived_files = files.iter().filter(|f| f.archived).count();
    h.log_bytes = files
        .iter()
        .filter_map(|f| std::fs::metadata(&f.path).ok())
        .map(|m| m.len())
        .sum();

    let mut rb = Fresh::default();
    // Problems of single events (a payload of the wrong shape, one a projection could not
    // apply), with the line they are on.
    let mut event_problems: Vec<Finding> = Vec::new();
    let mut unknown_types = std::collections::BTreeMap::<String, u64>::new();
    let mut visit = |ev: &EventRef<'_>, info: &LineInfo<'_>| {
        let file = format!(".work/{}", store.relative(info.log));
        let here = |problem: String| at(file.clone(), Some(info.line), problem);
        if crate::clock::parse_timestamp(&ev.timestamp).is_none() {
            return Err(format!("timestamp {:?} is not RFC 3339", ev.timestamp));
        }
        if !types::ALL.contains(&ev.event_type.as_ref()) && !ev.event_type.starts_with("verify.") {
            *unknown_types.entry(ev.event_type.to_string()).or_default() += 1;
        }
        let shape = payload_shape(ev);
        if let Err(e) = &shape {
            event_problems.push(here(format!(
                "{} payload has the wrong shape: {e}",
                ev.event_type
            )));
        }
        let mut applied = Vec::new();
        if WorkOrders::wants(&ev.event_type) {
            applied.push(rb.wos.apply(ev));
        }
        if Messages::wants(&ev.event_type) {
            applied.push(rb.msgs.apply(ev));
        }
        if Sprints::wants(&ev.event_type) {
            applied.push(rb.sprints.apply(ev));
        }
        if Teams::wants(&ev.event_type) {
            applied.push(rb.teams.apply(ev));
        }
        let _ = rb.slots.apply(ev);
        // A payload of the wrong shape is reported once, above.
        if shape.is_ok() {
            for e in applied.into_iter().filter_map(|r| r.err()) {
                event_problems.push(here(e));
            }
        }
        Ok(())
    };
    let outcome = match store.scan(&Checkpoint::default(), None, &mut visit)? {
        Ok(o) => o,
        Err(m) => {
            h.problems.push(Finding {
                file: None,
                line: None,
                problem: m.0,
            });
            return Ok(h);
        }
    };
    h.events = outcome.events;
    h.last_seq = outcome.end.seq;
    for i in &outcome.issues {
        h.problems
            .push(at(format!(".work/{}", i.file), Some(i.line), &i.problem));
    }
    for f in &outcome.torn_tails {
        h.problems.push(at(
            format!(".work/{f}"),
            None,
            "ends with a partial line (a writer died mid-write, or one is writing now); the next write moves it to .work/quarantine/",
        ));
    }
    for (ty, n) in unknown_types {
        h.notes.push(Finding {
            file: None,
            line: None,
            problem: format!("{n} event(s) of type {ty:?}, which this version does not know"),
        });
    }
    h.problems.extend(event_problems);

    let rebuilt_wos = Loaded {
        state: rb.wos,
        checkpoint: outcome.end.clone(),
        issues: Vec::new(),
        caught_up: 0,
        rebuilt: None,
    };
    let rebuilt_msgs = Loaded {
        state: rb.msgs,
        checkpoint: outcome.end.clone(),
        issues: Vec::new(),
        caught_up: 0,
        rebuilt: None,
    };
    let rebuilt_slots = Loaded {
        state: rb.slots,
        checkpoint: outcome.end.clone(),
        issues: Vec::new(),
        caught_up: 0,
        rebuilt: None,
    };
    let rebuilt_sprints = Loaded {
        state: rb.sprints,
        checkpoint: outcome.end.clone(),
        issues: Vec::new(),
        caught_up: 0,
        rebuilt: None,
    };
    let rebuilt_teams = Loaded {
        state: rb.teams,
        checkpoint: outcome.end.clone(),
        issues: Vec::new(),
        caught_up: 0,
        rebuilt: None,
    };
    compare_projection(store, &rebuilt_wos, &mut h)?;
    compare_projection(store, &rebuilt_msgs, &mut h)?;
    compare_projection(store, &rebuilt_slots, &mut h)?;
    compare_projection(store, &rebuilt_sprints, &mut h)?;
    compare_projection(store, &rebuilt_teams, &mut h)?;

    check_index(store, &rebuilt_wos, &mut h);

    // Dangling references.
    let wos = &rebuilt_wos.state;
    for wo in wos.all() {
        for d in &wo.depends_on {
            if !wos.contains(d) {
                h.problems.push(Finding {
                    file: Some(".work/work_orders.jsonl".into()),
                    line: None,
                    problem: format!("{} depends on {d}, which does not exist", wo.id),
                });
            }
        }
        if let Some(p) = &wo.parent
            && !wos.contains(p)
        {
            h.problems.push(Finding {
                file: Some(".work/work_orders.jsonl".into()),
                line: None,
                problem: format!("{} names parent {p}, which does not exist", wo.id),
            });
        }
    }
    h.work_orders = wos.len();
    h.messages = rebuilt_msgs.state.len();

    for p in store.stale_temp_files() {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        h.notes.push(at(
            format!(".work/{name}"),
            None,
            "left by a projection write that was killed before it finished; never read, removed by the next write or `wo rebuild-projections`",
        ));
    }
    if let Ok(rd) = std::fs::read_dir(store.dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("quarantine.refused-") {
                h.notes.push(at(
                    format!(".work/{name}"),
                    None,
                    "was in the quarantine's place (a symlink or a file); renamed aside by a repair, never written through; remove it when you have looked",
                ));
            }
        }
    }
    let planted = std::fs::symlink_metadata(store.quarantine_dir()).is_ok_and(|m| !m.is_dir());
    if planted {
        h.notes.push(at(
            ".work/quarantine".to_string(),
            None,
            "is not a directory (a symlink or a file); the next repair renames it aside and never writes through it",
        ));
    } else if let Ok(rd) = std::fs::read_dir(store.quarantine_dir()) {
        for e in rd.flatten() {
            h.notes.push(at(
                format!(".work/quarantine/{}", e.file_name().to_string_lossy()),
                None,
                "a torn line moved aside by a repair; kept for inspection",
            ));
        }
    }
    h.ok = h.problems.is_empty();
    Ok(h)
}

/// The work order index (`work_orders.db`) must hold what the projection holds; one that is
/// not there yet is only a note (the next look-up builds it).
fn check_index(store: &Store, rebuilt: &Loaded<WorkOrders>, h: &mut StoreHealth) {
    let file = format!(".work/{}", crate::workorder::INDEX_FILE);
    if std::fs::symlink_metadata(store.dir().join(crate::workorder::INDEX_FILE)).is_err() {
        h.notes
            .push(at(file, None, "not built yet; the next look-up builds it"));
        return;
    }
    let problem = match crate::workorder::Index::open(store) {
        Err(e) => Some(format!("cannot be used ({e})")),
        Ok(idx)
            if idx.checkpoint().seq != rebuilt.checkpoint.seq
                || idx.checkpoint().event_id != rebuilt.checkpoint.event_id =>
        {
            Some("does not cover the end of the log".to_string())
        }
        Ok(idx) => match idx.differs_from(&rebuilt.state) {
            Ok(d) => d.map(|d| format!("differs from a fresh rebuild from the log: {d}")),
            Err(e) => Some(format!("cannot be read ({e})")),
        },
    };
    if let Some(p) = problem {
        h.problems
            .push(at(file, None, format!("{p}; run `wo rebuild-projections`")));
    }
}

/// Checks a payload against what its (known) event type carries: the payload types the
/// projections read, so what they would refuse is reported here with its line. Types this
/// version does not read only need an object.
fn payload_shape(ev: &EventRef<'_>) -> std::result::Result<(), String> {
    use crate::mail::{Marked, Sent};
    use crate::slots::{
        AgentEvent, AssignmentEvent, Nudged, SlotAllocated, SlotReleased, WorktreeEvent,
    };
    use crate::workorder::{
        Assigned, Closed, Created, Dependency, Reconciled, StatusChanged, Updated,
    };
    fn shape<'a, T: serde::Deserialize<'a>>(
        ev: &'a EventRef<'_>,
    ) -> std::result::Result<(), String> {
        ev.data::<T>().map(|_| ()).map_err(|e| e.to_string())
    }
    match ev.event_type.as_ref() {
        types::WORK_ORDER_CREATED => {
            shape::<Created>(ev)?;
            // The projection stores any u8; the vocabulary is 0-4.
            let c: Created = ev.data().map_err(|e| e.to_string())?;
            if c.priority > 4 {
                return Err(format!("priority {} is out of range 0-4", c.priority));
            }
            Ok(())
        }
        types::WORK_ORDER_UPDATED => shape::<Updated>(ev),
        types::WORK_ORDER_STATUS_CHANGED => shape::<StatusChanged>(ev),
        types::WORK_ORDER_ASSIGNED => shape::<Assigned>(ev),
        types::WORK_ORDER_DEPENDENCY_ADDED | types::WORK_ORDER_DEPENDENCY_REMOVED => {
            shape::<Dependency>(ev)
        }
        types::WORK_ORDER_CLOSED => shape::<Closed>(ev),
        types::WORK_ORDER_RECONCILED => shape::<Reconciled>(ev),
        types::MAIL_SENT => shape::<Sent>(ev),
        types::MAIL_READ | types::MAIL_ARCHIVED => shape::<Marked>(ev),
        types::SLOT_ALLOCATED => shape::<SlotAllocated>(ev),
        types::SLOT_RELEASED => shape::<SlotReleased>(ev),
        types::WORKTREE_CREATED | types::WORKTREE_REMOVED => shape::<WorktreeEvent>(ev),
        types::AGENT_NUDGED => shape::<Nudged>(ev),
        types::SPRINT_CREATED => shape::<crate::sprint::SprintCreated>(ev),
        types::SPRINT_WORK_ORDER_ADDED | types::SPRINT_WORK_ORDER_REMOVED => {
            shape::<crate::sprint::SprintWorkOrder>(ev)
        }
        types::SPRINT_CLOSED => shape::<crate::sprint::SprintClosed>(ev),
        types::TEAM_ADDED => shape::<crate::team::TeamAdded>(ev),
        types::TEAM_SUBMITTED => shape::<crate::team::TeamSubmitted>(ev),
        types::TEAM_REMOVED => shape::<crate::team::TeamRemoved>(ev),
        t if t.starts_with("agent.") => shape::<AgentEvent>(ev),
        t if t.starts_with("assignment.") => shape::<AssignmentEvent>(ev),
        _ => shape::<serde_json::Map<String, serde_json::Value>>(ev)
            .map_err(|_| "data is not a JSON object".to_string()),
    }
}

fn compare_projection<P: Projection>(
    store: &Store,
    rebuilt: &Loaded<P>,
    h: &mut StoreHealth,
) -> Result<()> {
    let file = format!(".work/{}.jsonl", P::NAME);
    match store.load_file::<P>()? {
        Err(why) if why == "missing" => h.notes.push(at(
            file,
            None,
            "not written yet; it is built on the next read",
        )),
        Err(why) => {
            // Where it departs from what a rebuild writes, when the records can be compared.
            let mut want = Vec::new();
            rebuilt
                .state
                .write_records(&mut want)
                .map_err(StoreError::from)?;
            let line = std::fs::read(store.projection_path::<P>())
                .ok()
                .and_then(|bytes| {
                    let body = memchr::memchr(b'\n', &bytes).map(|i| bytes[i + 1..].to_vec())?;
                    (body != want).then(|| first_difference(&body, &want) + 1)
                });
            let problem = match line {
                Some(_) => format!(
                    "differs from a fresh rebuild from the log; it cannot be used ({why}); run `wo rebuild-projections`"
                ),
                None => format!("cannot be used ({why}); run `wo rebuild-projections`"),
            };
            h.problems.push(at(file, line, problem));
        }
        Ok(loaded) => {
            if !store.same_state(&loaded, rebuilt)? {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                loaded
                    .state
                    .write_records(&mut a)
                    .map_err(StoreError::from)?;
                rebuilt
                    .state
                    .write_records(&mut b)
                    .map_err(StoreError::from)?;
                // +1: the header is line 1.
                let line = if a == b {
                    1
                } else {
                    first_difference(&a, &b) + 1
                };
                h.problems.push(at(
                    file,
                    Some(line),
                    "differs from a fresh rebuild from the log; run `wo rebuild-projections`",
                ));
            }
        }
    }
    Ok(())
}

fn first_difference(a: &[u8], b: &[u8]) -> u64 {
    let mut line = 1;
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return line;
        }
        if *x == b'\n' {
            line += 1;
        }
    }
    line
}

/// Rebuilds every projection file whose state differs from a fresh rebuild (or cannot be
/// used); returns the file names rebuilt.
pub fn rebuild_mismatched(store: &Store) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if fix_one::<WorkOrders>(store)? {
        out.push(format!("{}.jsonl", WorkOrders::NAME));
    }
    if fix_one::<Messages>(store)? {
        out.push(format!("{}.jsonl", Messages::NAME));
    }
    if fix_one::<Slots>(store)? {
        out.push(format!("{}.jsonl", Slots::NAME));
    }
    if fix_one::<Sprints>(store)? {
        out.push(format!("{}.jsonl", Sprints::NAME));
    }
    if fix_one::<Teams>(store)? {
        out.push(format!("{}.jsonl", Teams::NAME));
    }
    let rebuilt = store.rebuild::<WorkOrders>()?;
    let index_ok = std::fs::symlink_metadata(store.dir().join(crate::workorder::INDEX_FILE))
        .is_err()
        || crate::workorder::Index::open(store)
            .ok()
            .and_then(|i| i.differs_from(&rebuilt.state).ok())
            .is_some_and(|d| d.is_none());
    if !index_ok {
        crate::workorder::Index::invalidate(store)?;
        out.push(crate::workorder::INDEX_FILE.to_string());
    }
    Ok(out)
}

fn fix_one<P: Projection>(store: &Store) -> Result<bool> {
    let rebuilt = store.rebuild::<P>()?;
    let differs = match store.load_file::<P>()? {
        Err(why) => why != "missing",
        Ok(l) => !store.same_state(&l, &rebuilt)?,
    };
    if differs {
        store.save(&rebuilt)?;
    }
    Ok(differs)
}

/// What `wo rebuild-projections` rebuilt.
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    pub work_orders: usize,
    pub messages: usize,
    pub slots: usize,
    pub sprints: usize,
    pub teams: usize,
    pub seq: u64,
}

/// Rebuilds and saves every projection of a store.
pub fn rebuild_all(store: &Store) -> Result<Rebuilt> {
    let wos = store.rebuild::<WorkOrders>()?;
    store.save(&wos)?;
    let msgs = store.rebuild::<Messages>()?;
    store.save(&msgs)?;
    let slots = store.rebuild::<Slots>()?;
    store.save(&slots)?;
    let sprints = store.rebuild::<Sprints>()?;
    store.save(&sprints)?;
    let teams = store.rebuild::<Teams>()?;
    store.save(&teams)?;
    let index = store.dir().join(crate::workorder::INDEX_FILE);
    if index.exists()
        && !crate::workorder::Index::open(store)
            .and_then(|i| i.differs_from(&wos.state))
            .is_ok_and(|d| d.is_none())
    {
        crate::workorder::Index::invalidate(store)?;
    }
    Ok(Rebuilt {
        work_orders: wos.state.len(),
        messages: msgs.state.len(),
        slots: slots.state.len(),
        sprints: sprints.state.all().len(),
        teams: teams.state.len(),
        seq: wos.checkpoint.seq,
    })
}
