//! A long-running process's view of the work that is not done yet, kept in memory and brought
//! up to date with only the events appended since it last looked.
//!
//! The supervisor looks at every store's open work at every patrol (the work queued for its
//! factory, the work orders its workers hold). Loading the whole projection for that costs the
//! size of the history (700 MB at a million work orders) in time and memory. This view holds
//! only the work orders that are not closed or cancelled: it reads them once from the index
//! (`work_orders.db`, in one transaction with the log position they describe), then applies
//! each new event with the projection's own code, so a work order here is exactly what a full
//! load would give. A done work order is read from the index when it is asked for. Anything
//! the view cannot follow (a done work order reopened or changed, a log that no longer matches
//! its position) makes it read the open work again, so it is never stale, only reloaded.

use super::{Index, Lookup, Source, Status, WorkOrder, WorkOrders};
use crate::event::{EventRef, types};
use crate::store::{Checkpoint, LineInfo, Projection, Store};
use std::cell::RefCell;

/// Done records kept before they are dropped (a compaction parses every record held).
const DONE_KEPT: usize = 64;

/// The work orders of one store that are not done, at [`Active::checkpoint`].
pub struct Active {
    /// The open work orders, and those closed or cancelled since the last compaction.
    state: WorkOrders,
    checkpoint: Checkpoint,
    /// Close and cancel events applied since the last compaction.
    done_since: usize,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("held", &self.state.len())
            .field("seq", &self.checkpoint.seq)
            .finish()
    }
}

/// `id` of a `work_order.*` payload, and `to` of a status change.
#[derive(serde::Deserialize)]
struct Touch<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(default)]
    to: Option<Status>,
}

impl Active {
    /// The open work of `store`: from the index (it costs what is open), or, when the index
    /// cannot be used, from the projection.
    pub fn load(store: &Store) -> crate::Result<Active> {
        let snapshot = Index::open(store).and_then(|i| i.open_snapshot());
        let (state, checkpoint) = match snapshot {
            Ok((checkpoint, lines)) => {
                let mut state = WorkOrders::default();
                for l in &lines {
                    // Unique ids (the index's key), each a projection line.
                    state.load_record(l.as_bytes()).map_err(|e| {
                        crate::Error::failure(format!("work order index: a record: {e}"))
                    })?;
                }
                (state, checkpoint)
            }
            Err(_) => {
                let l = store.load::<WorkOrders>()?;
                let mut state = l.state;
                state.retain(|w| !w.status.is_done());
                (state, l.checkpoint)
            }
        };
        Ok(Active {
            state,
            checkpoint,
            done_since: 0,
        })
    }

    /// Applies the events appended since the last look; returns how many events the log had
    /// after the old position (0 when nothing changed).
    pub fn refresh(&mut self, store: &Store) -> crate::Result<u64> {
        let mut reload = false;
        let mut done = 0usize;
        let state = &mut self.state;
        let mut visit = |ev: &EventRef<'_>, _: &LineInfo<'_>| -> Result<(), String> {
            if reload || !WorkOrders::wants(&ev.event_type) {
                return Ok(());
            }
            if ev.event_type != types::WORK_ORDER_CREATED {
                match ev.data::<Touch>() {
                    // A done work order (or one the log never created): read it all again.
                    Ok(t) if !state.contains(&t.id) => {
                        reload = true;
                        return Ok(());
                    }
                    Ok(t) => {
                        if ev.event_type == types::WORK_ORDER_CLOSED
                            || t.to == Some(Status::Cancelled)
                        {
                            done += 1;
                        }
                    }
                    // An unreadable payload does not apply to a full load either.
                    Err(_) => return Ok(()),
                }
            }
            // A problem here is the projection's to report (`wo doctor`); the view skips the
            // event as a full load does.
            let _ = state.apply(ev);
            Ok(())
        };
        match store.scan(&self.checkpoint, None, &mut visit)? {
            Ok(o) if !reload => {
                self.checkpoint = o.end;
                self.done_since += done;
                if self.done_since > DONE_KEPT {
                    self.state.retain(|w| !w.status.is_done());
                    self.done_since = 0;
                }
                Ok(o.events)
            }
            // Reopened or changed done work, or a log replaced under us.
            _ => {
                let before = self.checkpoint.seq;
                *self = Active::load(store)?;
                Ok(self.checkpoint.seq.saturating_sub(before).max(1))
            }
        }
    }

    /// The log position this view describes.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// A work order the view holds (every open one; a done one only if it was done recently).
    pub fn get(&self, id: &str) -> Option<WorkOrder> {
        self.state.get(id)
    }

    /// Every work order that is not closed or cancelled, in creation order.
    pub fn open(&self) -> Vec<WorkOrder> {
        let mut all = self.state.all();
        all.retain(|w| !w.status.is_done());
        all
    }

    /// The view, with the index of `store` for the work orders it does not hold.
    pub fn with_index<'a>(&'a self, store: &'a Store) -> WithIndex<'a> {
        WithIndex {
            view: self,
            store,
            index: RefCell::new(None),
        }
    }
}

/// An [`Active`] view that reads the work orders it does not hold (done ones) from its
/// store's index, opened at the first such look-up.
pub struct WithIndex<'a> {
    view: &'a Active,
    store: &'a Store,
    index: RefCell<Option<Lookup>>,
}

impl Source for WithIndex<'_> {
    fn find(&self, id: &str) -> crate::Result<Option<WorkOrder>> {
        if let Some(w) = self.view.get(id) {
            return Ok(Some(w));
        }
        let mut index = self.index.borrow_mut();
        if index.is_none() {
            *index = Some(Lookup::open(self.store)?);
        }
        match index.as_ref() {
            Some(l) => l.get(id),
            None => Ok(None),
        }
    }
}

/// The open work of each store a loop reads (the supervisor's, QA's), kept between patrols:
/// each patrol applies only the events appended since the last one, so a patrol costs what
/// changed, not the size of the stores' history.
#[derive(Debug, Default)]
pub struct Views(std::collections::BTreeMap<std::path::PathBuf, Active>);

impl Views {
    /// Brings the view of each store up to date (a store seen for the first time is read from
    /// its index) and forgets the stores that are gone.
    pub fn refresh(&mut self, stores: &[Store]) -> crate::Result<()> {
        self.0
            .retain(|dir, _| stores.iter().any(|s| s.dir() == dir));
        for s in stores {
            match self.0.get_mut(s.dir()) {
                Some(v) => {
                    v.refresh(s)?;
                }
                None => {
                    self.0.insert(s.dir().to_path_buf(), Active::load(s)?);
                }
            }
        }
        Ok(())
    }

    /// A work order of `store` as of the last refresh: open ones from its view, a done one from
    /// its index.
    pub fn find(&self, store: &Store, id: &str) -> crate::Result<Option<WorkOrder>> {
        match self.0.get(store.dir()) {
            Some(v) => v.with_index(store).find(id),
            None => super::lookup(store, id),
        }
    }

    /// The view of one store, if it was refreshed with it.
    pub fn of(&self, store: &Store) -> Option<&Active> {
        self.0.get(store.dir())
    }

    /// A work order held by any view (every open one).
    pub fn held(&self, id: &str) -> Option<WorkOrder> {
        self.0.values().find_map(|v| v.get(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OffsetClock;
    use crate::event::NewEvent;
    use crate::store::StoreOptions;
    use crate::workorder::{self, CreateRequest, WoType};

    fn create(store: &Store, title: &str) -> String {
        let mut w = store.lock().unwrap();
        let evs = workorder::create(
            &mut w,
            "wo",
            "tester",
            CreateRequest {
                title: title.into(),
                kind: WoType::Task,
                priority: (title.len() % 5) as u8,
                description: "d".into(),
                labels: vec![],
                parent: None,
            },
        )
        .unwrap();
        evs[0].data_value()["id"].as_str().unwrap().to_string()
    }

    fn full(store: &Store) -> WorkOrders {
        store.rebuild::<WorkOrders>().unwrap().state
    }

    fn append(store: &Store, e: NewEvent) {
        store.append(vec![e]).unwrap();
    }

    fn move_to(store: &Store, id: &str, to: Status) {
        let wo = full(store).get(id).unwrap();
        let e = if to == Status::Closed {
            workorder::plan_close(&wo, Some("done"), None, "t").unwrap()
        } else {
            workorder::plan_transition(&wo, to, Some("why"), Some("f1"), "t").unwrap()
        };
        append(store, e);
    }

    /// The view holds exactly the open work orders of a full load, record for record, and
    /// answers for the done ones through the index.
    fn same_as_full(store: &Store, view: &Active) {
        let all = store.rebuild::<WorkOrders>().unwrap();
        let open: Vec<WorkOrder> = all
            .state
            .all()
            .into_iter()
            .filter(|w| !w.status.is_done())
            .collect();
        assert_eq!(view.open(), open);
        assert_eq!(view.checkpoint(), &all.checkpoint);
        let src = view.with_index(store);
        for w in all.state.all() {
            assert_eq!(src.find(&w.id).unwrap().as_ref(), Some(&w), "{}", w.id);
        }
        assert_eq!(src.find("wo-nope").unwrap(), None);
    }

    #[test]
    fn the_view_follows_creates_updates_and_closes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(&dir.path().join(".work"), StoreOptions::default()).unwrap();
        let a = create(&store, "a");
        let b = create(&store, "bb");
        let mut view = Active::load(&store).unwrap();
        same_as_full(&store, &view);
        assert_eq!(view.refresh(&store).unwrap(), 0);

        let c = create(&store, "ccc");
        let up = workorder::Updated {
            id: a.clone(),
            title: Some("a, renamed".into()),
            priority: Some(0),
            ..Default::default()
        };
        append(
            &store,
            NewEvent::new(types::WORK_ORDER_UPDATED, "t", &up).unwrap(),
        );
        move_to(&store, &b, Status::Queued);
        move_to(&store, &c, Status::Closed);
        assert!(view.refresh(&store).unwrap() >= 3);
        same_as_full(&store, &view);
        assert_eq!(view.get(&a).unwrap().priority, 0);
        assert_eq!(view.get(&b).unwrap().status, Status::Queued);
        // The closed one: still answered, from the view or the index.
        assert_eq!(
            view.with_index(&store).find(&c).unwrap().unwrap().status,
            Status::Closed
        );

        // A done work order reopened: the view reads the open work again.
        move_to(&store, &c, Status::Open);
        view.refresh(&store).unwrap();
        same_as_full(&store, &view);
        assert_eq!(view.get(&c).unwrap().status, Status::Open);

        // Many closes: the done ones are dropped, the answers stay the same.
        let many: Vec<String> = (0..DONE_KEPT + 10)
            .map(|n| create(&store, &format!("m{n}")))
            .collect();
        view.refresh(&store).unwrap();
        for id in &many {
            move_to(&store, id, Status::Closed);
        }
        view.refresh(&store).unwrap();
        same_as_full(&store, &view);
        assert!(view.state.len() < many.len(), "{}", view.state.len());
        // A new view from the index holds the same.
        same_as_full(&store, &Active::load(&store).unwrap());
    }

    #[test]
    fn the_view_survives_a_projection_rebuild_and_an_archive() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(".work");
        Store::init(&root, StoreOptions::default()).unwrap();
        // A store that started ten days ago.
        let old = Store::open(
            &root,
            StoreOptions {
                partition_by_day: true,
                clock: std::sync::Arc::new(OffsetClock(chrono::Duration::days(-10))),
            },
        )
        .unwrap();
        let a = create(&old, "a");
        let b = create(&old, "bb");
        move_to(&old, &b, Status::Closed);
        drop(old);
        let store = Store::open(&root, StoreOptions::default()).unwrap();
        let mut view = Active::load(&store).unwrap();
        same_as_full(&store, &view);

        // `wo rebuild-projections` (projections rewritten, the index told to build again).
        crate::health::rebuild_all(&store).unwrap();
        let c = create(&store, "ccc");
        view.refresh(&store).unwrap();
        same_as_full(&store, &view);

        // The old partition goes to the archive; the view goes on from where it was.
        let cutoff = (chrono::Utc::now() - chrono::Duration::days(7)).date_naive();
        assert_eq!(store.archive_before(cutoff).unwrap().len(), 1);
        move_to(&store, &a, Status::Queued);
        move_to(&store, &c, Status::Cancelled);
        view.refresh(&store).unwrap();
        same_as_full(&store, &view);
        same_as_full(&store, &Active::load(&store).unwrap());
    }

    #[test]
    fn without_an_index_the_view_comes_from_the_projection() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(&dir.path().join(".work"), StoreOptions::default()).unwrap();
        let a = create(&store, "a");
        let b = create(&store, "bb");
        move_to(&store, &b, Status::Closed);
        // A symlink where the index would be: it is refused, never written through.
        let path = store.dir().join(super::super::INDEX_FILE);
        std::os::unix::fs::symlink(dir.path().join("elsewhere.db"), &path).unwrap();
        let mut view = Active::load(&store).unwrap();
        assert_eq!(view.open().len(), 1);
        move_to(&store, &a, Status::Queued);
        view.refresh(&store).unwrap();
        assert_eq!(view.get(&a).unwrap().status, Status::Queued);
        assert_eq!(view.open(), {
            let mut all = full(&store).all();
            all.retain(|w| !w.status.is_done());
            all
        });
    }
}
