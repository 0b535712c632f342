use super::*;
use crate::clock::OffsetClock;
use crate::event::NewEvent;
use crate::mail::Messages;
use crate::workorder::{self, CreateRequest, Status, WoType, WorkOrders};
use std::fs;
use std::os::unix::fs::symlink;

fn store_in(dir: &Path) -> Store {
    Store::init(&dir.join(".work"), StoreOptions::default()).unwrap()
}

fn ev(n: u64) -> NewEvent {
    NewEvent::new("test.event", "tester", &serde_json::json!({ "n": n })).unwrap()
}

fn all_events(store: &Store) -> (Vec<u64>, Vec<Issue>) {
    let mut seqs = Vec::new();
    let mut visit = |e: &crate::event::EventRef<'_>, _: &LineInfo<'_>| {
        seqs.push(e.seq);
        Ok(())
    };
    let out = store
        .scan(&Checkpoint::default(), None, &mut visit)
        .unwrap()
        .unwrap();
    (seqs, out.issues)
}

fn create(store: &Store, title: &str) -> String {
    let mut w = store.lock().unwrap();
    let evs = workorder::create(
        &mut w,
        "wo",
        "tester",
        CreateRequest {
            title: title.into(),
            kind: WoType::Task,
            priority: 2,
            description: String::new(),
            labels: vec![],
            parent: None,
        },
    )
    .unwrap();
    let data = evs[0].data_value();
    data["id"].as_str().unwrap().to_string()
}

#[test]
fn appends_get_gapless_seq_and_go_to_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    for i in 0..5 {
        store.append(vec![ev(i), ev(i + 100)]).unwrap();
    }
    let (seqs, issues) = all_events(&store);
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    assert!(issues.is_empty());
    let feed = fs::read_to_string(store.feed_path()).unwrap();
    assert_eq!(feed.lines().count(), 10);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let part = store.events_dir().join(format!("{today}.jsonl"));
    assert_eq!(fs::read_to_string(part).unwrap(), feed);
}

#[test]
fn single_file_layout_when_not_partitioned() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init(
        &dir.path().join(".work"),
        StoreOptions {
            partition_by_day: false,
            ..Default::default()
        },
    )
    .unwrap();
    store.append(vec![ev(1)]).unwrap();
    assert!(store.single_log_path().is_file());
    assert!(!store.events_dir().exists());
    // Switching to partitions later continues the sequence.
    let store2 = Store::open(store.dir(), StoreOptions::default()).unwrap();
    store2.append(vec![ev(2)]).unwrap();
    assert_eq!(all_events(&store2).0, vec![1, 2]);
}

#[test]
fn torn_tail_is_quarantined_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.append(vec![ev(1), ev(2)]).unwrap();
    let part = store.live_partitions().unwrap().pop().unwrap().path;
    let fragment = br#"{"v":1,"seq":3,"event_id":"evt-torn","event_ty"#;
    let mut f = fs::OpenOptions::new().append(true).open(&part).unwrap();
    std::io::Write::write_all(&mut f, fragment).unwrap();
    drop(f);
    let mut w = store.lock().unwrap();
    w.append(vec![ev(3)]).unwrap();
    assert!(
        w.warnings.iter().any(|m| m.contains("torn")),
        "{:?}",
        w.warnings
    );
    drop(w);
    let (seqs, issues) = all_events(&store);
    assert_eq!(seqs, vec![1, 2, 3]);
    assert!(issues.is_empty(), "{issues:?}");
    let q: Vec<_> = fs::read_dir(store.quarantine_dir()).unwrap().collect();
    assert_eq!(q.len(), 1);
    let qbytes = fs::read(q[0].as_ref().unwrap().path()).unwrap();
    assert_eq!(qbytes, fragment);
}

#[test]
fn a_symlinked_quarantine_is_not_written_through_and_does_not_block_writes() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.append(vec![ev(1)]).unwrap();
    std::os::unix::fs::symlink(outside.path(), store.quarantine_dir()).unwrap();
    let part = store.live_partitions().unwrap().pop().unwrap().path;
    let mut f = fs::OpenOptions::new().append(true).open(&part).unwrap();
    std::io::Write::write_all(&mut f, br#"{"v":1,"seq":2,"event_"#).unwrap();
    drop(f);
    let mut w = store.lock().unwrap();
    w.append(vec![ev(2)]).unwrap();
    assert!(
        w.warnings.iter().any(|m| m.contains("renamed it")),
        "{:?}",
        w.warnings
    );
    drop(w);
    assert_eq!(all_events(&store).0, vec![1, 2]);
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
    let q = fs::symlink_metadata(store.quarantine_dir()).unwrap();
    assert!(q.is_dir() && !q.file_type().is_symlink());
    assert_eq!(fs::read_dir(store.quarantine_dir()).unwrap().count(), 1);
}

#[test]
fn garbage_line_is_skipped_and_reported_and_neighbours_apply() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let a = create(&store, "first");
    let part = store.live_partitions().unwrap().pop().unwrap().path;
    let mut f = fs::OpenOptions::new().append(true).open(&part).unwrap();
    std::io::Write::write_all(&mut f, b"this is not json\n").unwrap();
    drop(f);
    let b = create(&store, "second");
    let (seqs, issues) = all_events(&store);
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].line, 2);
    assert!(issues[0].problem.contains("unreadable"));
    let wos = store.load::<WorkOrders>().unwrap();
    assert!(wos.state.contains(&a) && wos.state.contains(&b));
    assert_eq!(wos.issues.len(), 1, "the projection keeps reporting it");
    // Reported again after a refresh from the file.
    store.save(&wos).unwrap();
    let again = store.load::<WorkOrders>().unwrap();
    assert_eq!(again.issues, wos.issues);
}

#[test]
fn a_clock_two_days_behind_never_writes_into_an_older_partition() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.append(vec![ev(1)]).unwrap();
    let behind = Store::open(
        store.dir(),
        StoreOptions {
            partition_by_day: true,
            clock: std::sync::Arc::new(OffsetClock(chrono::Duration::days(-2))),
        },
    )
    .unwrap();
    behind.append(vec![ev(2)]).unwrap();
    let parts = store.live_partitions().unwrap();
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert_eq!(all_events(&store).0, vec![1, 2]);
    // A clock ahead starts a newer partition; going back afterwards stays there.
    let ahead = Store::open(
        store.dir(),
        StoreOptions {
            partition_by_day: true,
            clock: std::sync::Arc::new(OffsetClock(chrono::Duration::days(3))),
        },
    )
    .unwrap();
    ahead.append(vec![ev(3)]).unwrap();
    store.append(vec![ev(4)]).unwrap();
    let parts = store.live_partitions().unwrap();
    assert_eq!(parts.len(), 2);
    let newest = fs::read_to_string(&parts[1].path).unwrap();
    assert_eq!(newest.lines().count(), 2);
    assert_eq!(all_events(&store).0, vec![1, 2, 3, 4]);
}

#[test]
fn symlinked_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.append(vec![ev(1)]).unwrap();
    let part = store.live_partitions().unwrap().pop().unwrap().path;
    let elsewhere = dir.path().join("elsewhere.jsonl");
    fs::rename(&part, &elsewhere).unwrap();
    symlink(&elsewhere, &part).unwrap();
    let err = store.append(vec![ev(2)]).unwrap_err();
    assert!(matches!(err, StoreError::Symlink(_)), "{err}");
    assert!(err.to_string().contains("symbolic link"));
    assert_eq!(fs::read_to_string(&elsewhere).unwrap().lines().count(), 1);
    fs::remove_file(&part).unwrap();
    fs::rename(&elsewhere, &part).unwrap();

    // The lock file.
    fs::remove_file(store.lock_path()).unwrap();
    symlink(dir.path().join("lock-target"), store.lock_path()).unwrap();
    assert!(matches!(
        store.append(vec![ev(2)]).unwrap_err(),
        StoreError::Symlink(_)
    ));
    fs::remove_file(store.lock_path()).unwrap();

    // The events directory.
    let events = store.events_dir();
    let moved = dir.path().join("events-moved");
    fs::rename(&events, &moved).unwrap();
    symlink(&moved, &events).unwrap();
    let err = store.append(vec![ev(2)]).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
}

#[test]
fn dot_work_itself_may_be_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("fast").join(".work");
    fs::create_dir_all(&real).unwrap();
    symlink(&real, dir.path().join(".work")).unwrap();
    let store = Store::open(&dir.path().join(".work"), StoreOptions::default()).unwrap();
    store.append(vec![ev(1)]).unwrap();
    assert_eq!(all_events(&store).0, vec![1]);
}

#[test]
fn lines_over_one_mebibyte_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let big = "x".repeat(1 << 20);
    let err = store
        .append(vec![
            ev(1),
            NewEvent::new("test.big", "t", &serde_json::json!({ "s": big })).unwrap(),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::LineTooLong(_)));
    assert!(all_events(&store).0.is_empty());
}

#[test]
fn projection_catches_up_and_matches_a_rebuild_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(create(&store, &format!("wo {i}")));
    }
    let l = store.load::<WorkOrders>().unwrap();
    store.save(&l).unwrap();
    // More events after the saved file: a read applies them.
    let wo = l.state.get(&ids[3]).unwrap();
    let ev = workorder::plan_transition(&wo, Status::Cancelled, Some("dup"), None, "t").unwrap();
    store.append(vec![ev]).unwrap();
    let l2 = store.load::<WorkOrders>().unwrap();
    assert_eq!(l2.caught_up, 1);
    assert!(l2.rebuilt.is_none());
    assert_eq!(l2.state.get(&ids[3]).unwrap().status, Status::Cancelled);
    let rebuilt = store.rebuild::<WorkOrders>().unwrap();
    assert_eq!(
        store.render(&l2).unwrap(),
        store.render(&rebuilt).unwrap(),
        "caught-up projection equals a fresh rebuild"
    );
    let m = store.rebuild::<Messages>().unwrap();
    assert!(m.state.is_empty());
}

#[test]
fn a_projection_that_does_not_match_the_log_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    create(&store, "a");
    let l = store.load::<WorkOrders>().unwrap();
    store.save(&l).unwrap();
    // Replace the log with a different history of the same length.
    let part = store.live_partitions().unwrap().pop().unwrap().path;
    fs::remove_file(&part).unwrap();
    fs::remove_file(store.dir().join("work_orders.ids")).unwrap();
    let b = create(&store, "b");
    let l2 = store.load::<WorkOrders>().unwrap();
    assert!(l2.rebuilt.is_some());
    assert_eq!(l2.state.len(), 1);
    assert!(l2.state.contains(&b));
}

#[test]
fn archive_moves_old_partitions_and_reads_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(".work");
    let days_ago = |d: i64| {
        Store::open(
            &root,
            StoreOptions {
                partition_by_day: true,
                clock: std::sync::Arc::new(OffsetClock(chrono::Duration::days(-d))),
            },
        )
        .unwrap()
    };
    Store::init(&root, StoreOptions::default()).unwrap();
    // A store that started ten days ago, then today's write.
    days_ago(10).append(vec![ev(1)]).unwrap();
    let store = Store::open(&root, StoreOptions::default()).unwrap();
    let parts = store.live_partitions().unwrap();
    assert_eq!(parts.len(), 1);
    store.append(vec![ev(2)]).unwrap();
    let parts = store.live_partitions().unwrap();
    assert_eq!(parts.len(), 2);
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(7)).date_naive();
    let moved = store.archive_before(cutoff).unwrap();
    assert_eq!(moved.len(), 1);
    assert!(
        store
            .archive_dir()
            .join(format!("{}.jsonl", moved[0]))
            .is_file()
    );
    assert_eq!(all_events(&store).0, vec![1, 2]);
    store.append(vec![ev(3)]).unwrap();
    assert_eq!(all_events(&store).0, vec![1, 2, 3]);
    // The newest partition is never archived.
    let far = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
    assert!(store.archive_before(far).unwrap().is_empty());
}

#[test]
fn many_creates_never_reuse_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut seen = std::collections::HashSet::new();
    for i in 0..300 {
        assert!(seen.insert(create(&store, &format!("t{i}"))));
    }
    // The id index survives being deleted (rebuilt from the log).
    fs::remove_file(store.dir().join("work_orders.ids")).unwrap();
    let id = create(&store, "after");
    assert!(seen.insert(id));
    assert_eq!(store.load::<WorkOrders>().unwrap().state.len(), 301);
}

// --- A damaged log never hides acknowledged work (issue: fault injection) -------------------

fn partition(store: &Store) -> std::path::PathBuf {
    store.live_partitions().unwrap().pop().unwrap().path
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
}

fn lines_of(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The ids a fresh rebuild and a load (from whatever file is there) both see, and the issues.
fn visible(store: &Store) -> (Vec<String>, Vec<String>) {
    let rebuilt = store.rebuild::<WorkOrders>().unwrap();
    let loaded = store.load::<WorkOrders>().unwrap();
    let a: Vec<String> = rebuilt.state.ids().map(str::to_string).collect();
    let b: Vec<String> = loaded.state.ids().map(str::to_string).collect();
    assert_eq!(a, b, "a load sees what a rebuild sees");
    (a, rebuilt.issues.iter().map(|i| i.to_string()).collect())
}

#[test]
fn a_line_duplicated_at_the_end_never_hides_the_next_create() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let a = create(&store, "a");
    let b = create(&store, "b");
    // Readers have a projection covering both.
    store.save(&store.load::<WorkOrders>().unwrap()).unwrap();
    let part = partition(&store);
    let first = lines_of(&part)[0].clone();
    append_raw(&part, format!("{first}\n").as_bytes());
    let c = create(&store, "c");
    let (ids, issues) = visible(&store);
    assert_eq!(ids, vec![a, b, c.clone()]);
    assert!(
        issues
            .iter()
            .any(|i| i.contains(":3:") && i.contains("duplicate skipped")),
        "{issues:?}"
    );
    // The writer continued after the highest seq (2), not after the duplicate's (1).
    let (seqs, _) = all_events(&store);
    assert_eq!(seqs, vec![1, 2, 3]);
    let mut w = store.lock().unwrap();
    assert_eq!(w.last_seq().unwrap(), 3);
}

#[test]
fn a_last_line_with_a_lower_seq_never_hides_the_next_create() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    for i in 0..5 {
        create(&store, &format!("w{i}"));
    }
    let part = partition(&store);
    // An event from elsewhere with seq 2 (a new event_id): it is new, so it is applied.
    let data = serde_json::json!({"id":"wo-stray1","title":"restored","type":"task","priority":1,"description":"","labels":[],"parent":null});
    let line = serde_json::json!({"v":1,"seq":2,"event_id":crate::ids::new_event_id(),"event_type":"work_order.created","timestamp":"2026-01-01T00:00:00.000Z","actor":"restored","correlation_id":null,"caused_by":null,"data":data});
    append_raw(&part, format!("{line}\n").as_bytes());
    // A writer whose note is gone must still find the highest seq.
    fs::write(store.lock_path(), b"").unwrap();
    let after = create(&store, "after");
    let (seqs, issues) = all_events(&store);
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5, 2, 6],
        "the writer never reuses a seq"
    );
    assert!(
        issues
            .iter()
            .any(|i| i.line == 6 && i.problem.contains("does not increase")),
        "{issues:?}"
    );
    let (ids, _) = visible(&store);
    assert!(
        ids.contains(&after) && ids.contains(&"wo-stray1".to_string()),
        "{ids:?}"
    );
    assert_eq!(ids.len(), 7);
}

#[test]
fn an_event_id_reused_under_a_new_seq_is_applied_once_by_every_reader() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let a = create(&store, "a");
    let wo = store.load::<WorkOrders>().unwrap().state.get(&a).unwrap();
    let queue = workorder::plan_transition(&wo, Status::Queued, None, None, "t").unwrap();
    store.append(vec![queue]).unwrap();
    // A projection saved here (checkpoint at the move to queued).
    store.save(&store.load::<WorkOrders>().unwrap()).unwrap();
    let wo = store.load::<WorkOrders>().unwrap().state.get(&a).unwrap();
    let assign = workorder::plan_transition(&wo, Status::Assigned, None, None, "t").unwrap();
    store.append(vec![assign]).unwrap();
    let part = partition(&store);
    // The move to queued again, under a new seq: replaying it would put the work order back
    // in the queue.
    let queued_line = lines_of(&part)[1].replace("\"seq\":2", "\"seq\":4");
    append_raw(&part, format!("{queued_line}\n").as_bytes());
    let b = create(&store, "b");
    let loaded = store.load::<WorkOrders>().unwrap();
    let rebuilt = store.rebuild::<WorkOrders>().unwrap();
    for l in [&loaded, &rebuilt] {
        assert_eq!(l.state.get(&a).unwrap().status, Status::Assigned);
        assert!(l.state.contains(&b));
    }
    assert!(
        rebuilt
            .issues
            .iter()
            .any(|i| i.line == 4 && i.problem.contains("repeats an event_id")),
        "{:?}",
        rebuilt.issues
    );
    assert_eq!(
        store.render(&loaded).unwrap(),
        store.render(&rebuilt).unwrap()
    );
    let (seqs, _) = all_events(&store);
    assert_eq!(
        seqs,
        vec![1, 2, 3, 5],
        "the writer went past the copy's seq 4"
    );
}

#[test]
fn a_byte_order_mark_does_not_lose_line_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let a = create(&store, "a");
    let part = partition(&store);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(fs::read(&part).unwrap());
    fs::write(&part, bytes).unwrap();
    let b = create(&store, "b");
    let (ids, issues) = visible(&store);
    assert_eq!(ids, vec![a, b]);
    assert!(
        issues
            .iter()
            .any(|i| i.contains(":1:") && i.contains("byte order mark")),
        "{issues:?}"
    );
    assert_eq!(all_events(&store).0, vec![1, 2]);
}

#[test]
fn garbage_and_duplicates_before_a_checkpoint_keep_loads_equal_to_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(create(&store, &format!("w{i}")));
    }
    let part = partition(&store);
    let lines = lines_of(&part);
    append_raw(
        &part,
        format!("garbage\n{}\n{}\n", lines[9], lines[3]).as_bytes(),
    );
    // A reader saves a projection past the damage, more work is written, a reader loads.
    store.save(&store.load::<WorkOrders>().unwrap()).unwrap();
    for i in 10..15 {
        ids.push(create(&store, &format!("w{i}")));
    }
    append_raw(&part, format!("{}\n", lines[5]).as_bytes());
    ids.push(create(&store, "last"));
    let (seen, issues) = visible(&store);
    assert_eq!(seen, ids);
    assert_eq!(issues.len(), 4, "{issues:?}");
    let (seqs, _) = all_events(&store);
    assert_eq!(seqs, (1..=16).collect::<Vec<u64>>());
}

// --- A damaged projection is never served ---------------------------------------------------

/// A store with work orders, messages and a slot, every projection saved.
fn store_with_projections(dir: &Path) -> Store {
    let store = store_in(dir);
    for i in 0..6 {
        create(&store, &format!("w{i}"));
    }
    let mut events = Vec::new();
    for n in 0..4 {
        events.push(
            NewEvent::new(
                crate::event::types::MAIL_SENT,
                "f/workers/slot1",
                &crate::mail::Sent {
                    id: format!("msg-{n:010}"),
                    from: "f/workers/slot1".into(),
                    to: "f/qa".into(),
                    subject: "s".into(),
                    body: "b".into(),
                    kind: "message".into(),
                    priority: crate::mail::MailPriority::Normal,
                    meta: Default::default(),
                },
            )
            .unwrap(),
        );
    }
    for slot in 0..3 {
        events.push(
            NewEvent::new(
                crate::event::types::SLOT_ALLOCATED,
                "f/supervisor",
                &crate::slots::SlotAllocated {
                    slot,
                    agent: format!("f/workers/slot{slot}"),
                    work_order: "wo-x".into(),
                    incarnation: format!("inc-{slot}"),
                    attempt: 1,
                    branch: "b".into(),
                    worktree: "w".into(),
                    runtime: "r".into(),
                },
            )
            .unwrap(),
        );
    }
    store.append(events).unwrap();
    store.save(&store.rebuild::<WorkOrders>().unwrap()).unwrap();
    store.save(&store.rebuild::<Messages>().unwrap()).unwrap();
    store
        .save(&store.rebuild::<crate::slots::Slots>().unwrap())
        .unwrap();
    store
}

/// Damages: cut after line 2, only the header, a changed value inside a record, a record gone.
fn damages(bytes: &[u8], from: &str, to: &str) -> Vec<(&'static str, Vec<u8>)> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let join = |ls: &[&str]| ls.iter().map(|l| format!("{l}\n")).collect::<String>();
    let mut without = lines.clone();
    without.remove(2);
    assert!(text.contains(from), "{from} in {text}");
    vec![
        ("truncated at a line", join(&lines[..2]).into_bytes()),
        ("header only", join(&lines[..1]).into_bytes()),
        ("a value flipped", text.replacen(from, to, 1).into_bytes()),
        ("a record deleted", join(&without).into_bytes()),
    ]
}

fn check_damages<P: Projection>(store: &Store, from: &str, to: &str) {
    let path = store.projection_path::<P>();
    let good = fs::read(&path).unwrap();
    let want = store.render(&store.rebuild::<P>().unwrap()).unwrap();
    assert_eq!(good, want);
    for (what, bad) in damages(&good, from, to) {
        fs::write(&path, &bad).unwrap();
        let l = store.load::<P>().unwrap();
        assert!(l.rebuilt.is_some(), "{}: {what} was served", P::NAME);
        assert_eq!(store.render(&l).unwrap(), want, "{}: {what}", P::NAME);
        assert_eq!(
            fs::read(&path).unwrap(),
            want,
            "{}: {what} rewritten",
            P::NAME
        );
        // `wo doctor`'s view of the damaged file: it cannot be used.
        fs::write(&path, &bad).unwrap();
        assert!(store.load_file::<P>().unwrap().is_err(), "{what}");
    }
    fs::write(&path, &good).unwrap();
    assert!(
        store.load::<P>().unwrap().rebuilt.is_none(),
        "a good file is used"
    );
}

#[test]
fn a_damaged_projection_is_rebuilt_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_projections(dir.path());
    check_damages::<WorkOrders>(&store, "\"status\":\"open\"", "\"status\":\"closed\"");
    check_damages::<Messages>(&store, "\"subject\":\"s\"", "\"subject\":\"t\"");
    check_damages::<crate::slots::Slots>(&store, "\"attempt\":1", "\"attempt\":2");
}

#[test]
fn temp_files_of_crashed_rebuilds_are_removed_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_projections(dir.path());
    let good = fs::read(store.projection_path::<WorkOrders>()).unwrap();
    // A rebuild killed before its rename (pid 0 never runs a process here) left a half file.
    let stale = store.dir().join(".work_orders.jsonl.tmp-999999999-inc-x");
    fs::write(&stale, &good[..good.len() / 2]).unwrap();
    let mine = store
        .dir()
        .join(format!(".messages.jsonl.tmp-{}-inc-y", std::process::id()));
    fs::write(&mine, b"in progress").unwrap();
    assert_eq!(store.stale_temp_files(), vec![stale.clone()]);
    let l = store.load::<WorkOrders>().unwrap();
    assert!(l.rebuilt.is_none());
    assert_eq!(l.state.len(), 6);
    store.save(&l).unwrap();
    assert!(!stale.exists(), "removed by the next save");
    assert!(mine.exists(), "a live process's temp file is left alone");
}

/// A company root with its store and a factory store `mp` beside it.
fn company_with_factory(dir: &Path) -> (Store, Store) {
    fs::create_dir_all(dir.join(".vermas")).unwrap();
    fs::write(dir.join(".vermas/config.toml"), "").unwrap();
    let company = Store::init(&dir.join(".work"), StoreOptions::default()).unwrap();
    fs::create_dir_all(dir.join("mp")).unwrap();
    let factory = Store::init(&dir.join("mp/.work"), StoreOptions::default()).unwrap();
    (company, factory)
}

#[test]
fn a_factorys_lines_reach_the_company_feed_tagged_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (company, factory) = company_with_factory(dir.path());
    assert_eq!(company.company_feed(), None, "the company's own store");
    assert_eq!(
        factory.company_feed().map(|f| f.factory.as_str()),
        Some("mp")
    );
    company.append(vec![ev(1)]).unwrap();
    factory.append(vec![ev(2), ev(3)]).unwrap();
    company.append(vec![ev(4)]).unwrap();
    // The factory's own feed is unchanged: its lines exactly as in its log.
    let own = fs::read_to_string(factory.feed_path()).unwrap();
    let (seqs, _) = all_events(&factory);
    assert_eq!(seqs, vec![1, 2]);
    assert!(!own.contains("\"factory\""), "{own}");
    // The company feed: every line of both, in the order written; the factory's tagged.
    let feed = fs::read_to_string(company.feed_path()).unwrap();
    let lines: Vec<serde_json::Value> = feed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(u64, Option<&str>, u64)> = lines
        .iter()
        .map(|v| {
            (
                v["data"]["n"].as_u64().unwrap(),
                v["factory"].as_str(),
                v["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, None, 1),
            (2, Some("mp"), 1),
            (3, Some("mp"), 2),
            (4, None, 2)
        ]
    );
    // The tag is the last key; everything before it is the line as stored.
    let stored = own.lines().next().unwrap();
    let copied = feed.lines().nth(1).unwrap();
    assert_eq!(
        copied,
        format!("{},\"factory\":\"mp\"}}", &stored[..stored.len() - 1])
    );
}

#[test]
fn a_torn_company_feed_is_repaired_by_the_next_factory_write() {
    let dir = tempfile::tempdir().unwrap();
    let (company, factory) = company_with_factory(dir.path());
    company.append(vec![ev(1)]).unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(company.feed_path())
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":1,\"seq\":").unwrap();
    factory.append(vec![ev(2)]).unwrap();
    let feed = fs::read_to_string(company.feed_path()).unwrap();
    assert_eq!(feed.lines().count(), 2, "{feed}");
    for l in feed.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
}

#[test]
fn factories_and_the_company_writing_at_once_leave_whole_lines_in_the_company_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (company, factory) = company_with_factory(dir.path());
    fs::create_dir_all(dir.path().join("np")).unwrap();
    let other = Store::init(&dir.path().join("np/.work"), StoreOptions::default()).unwrap();
    std::thread::scope(|s| {
        for store in [&company, &factory, &other] {
            s.spawn(move || {
                for i in 0..40 {
                    store.append(vec![ev(i), ev(i + 1000)]).unwrap();
                }
            });
        }
    });
    let feed = fs::read_to_string(company.feed_path()).unwrap();
    let mut per_store: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for l in feed.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let who = v["factory"].as_str().unwrap_or("company").to_string();
        per_store
            .entry(who)
            .or_default()
            .push(v["seq"].as_u64().unwrap());
    }
    for (who, seqs) in &per_store {
        assert_eq!(seqs, &(1..=80).collect::<Vec<_>>(), "{who}: in seq order");
    }
    assert_eq!(per_store.len(), 3);
}

#[test]
fn a_store_outside_a_company_has_no_company_feed() {
    let dir = tempfile::tempdir().unwrap();
    // A reserved directory and a standalone store are not factories.
    fs::create_dir_all(dir.path().join(".vermas")).unwrap();
    fs::write(dir.path().join(".vermas/config.toml"), "").unwrap();
    fs::create_dir_all(dir.path().join("ceo")).unwrap();
    let ceo = Store::init(&dir.path().join("ceo/.work"), StoreOptions::default()).unwrap();
    assert_eq!(ceo.company_feed(), None);
    let elsewhere = tempfile::tempdir().unwrap();
    assert_eq!(store_in(elsewhere.path()).company_feed(), None);
}

#[test]
fn imported_events_are_resequenced_keep_their_identity_and_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("a")).unwrap();
    fs::create_dir_all(dir.path().join("b")).unwrap();
    let a = store_in(&dir.path().join("a"));
    let b = store_in(&dir.path().join("b"));
    let id = create(&a, "made on a");
    b.append(vec![ev(1), ev(2)]).unwrap();
    // A reader of b caught up before the import starts from a checkpoint after it.
    let before = b.load::<WorkOrders>().unwrap();
    assert_eq!(before.state.len(), 0);
    b.save(&before).unwrap();
    let mut from_a = Vec::new();
    let mut visit = |e: &crate::event::EventRef<'_>, _: &LineInfo<'_>| {
        from_a.push(e.to_owned_event());
        Ok(())
    };
    a.scan(&Checkpoint::default(), None, &mut visit)
        .unwrap()
        .unwrap();
    let mut w = b.lock().unwrap();
    let got = w.import(from_a.clone()).unwrap();
    drop(w);
    assert_eq!(got.len(), from_a.len());
    for (imported, original) in got.iter().zip(&from_a) {
        assert_eq!(imported.event_id, original.event_id);
        assert_eq!(imported.timestamp, original.timestamp);
        assert_eq!(imported.data.get(), original.data.get());
    }
    let (seqs, issues) = all_events(&b);
    assert_eq!(seqs, (1..=2 + from_a.len() as u64).collect::<Vec<_>>());
    assert!(issues.is_empty(), "{issues:?}");
    // The old checkpoint, a fresh rebuild and a refresh all see the work order once.
    let loaded = b.load::<WorkOrders>().unwrap();
    assert_eq!(loaded.state.get(&id).unwrap().title, "made on a");
    assert!(loaded.issues.is_empty(), "{:?}", loaded.issues);
    let rebuilt = b.rebuild::<WorkOrders>().unwrap();
    assert!(b.same_state(&loaded, &rebuilt).unwrap());
    // Importing the same events again is a copy under new seqs: every reader skips it.
    b.lock().unwrap().import(from_a).unwrap();
    let again = b.rebuild::<WorkOrders>().unwrap();
    assert_eq!(again.state.len(), 1);
    assert!(!again.issues.is_empty(), "the copy is reported");
}

#[test]
fn an_import_of_an_unknown_envelope_version_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = store_in(dir.path());
    let mut e = a.append(vec![ev(1)]).unwrap().remove(0);
    e.v = 2;
    e.event_id = crate::ids::new_event_id();
    let err = a.lock().unwrap().import(vec![e]).unwrap_err();
    assert!(err.to_string().contains("envelope version 2"), "{err}");
    assert_eq!(all_events(&a).0, vec![1]);
}
