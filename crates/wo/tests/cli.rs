//! `wo` end to end: real binary, temp stores, and the fault cases of issue 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};
use vermas_tests::{Out, Sandbox, created_id, read_events};

fn init(sb: &Sandbox) -> PathBuf {
    sb.wo(&["init"]).ok();
    sb.path().join(".work")
}

fn today_partition(work: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = fs::read_dir(work.join("events"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    v.sort();
    v.pop().unwrap()
}

fn create(sb: &Sandbox, title: &str) -> String {
    created_id(&sb.wo(&["create", "--title", title]))
}

fn event_count(work: &Path) -> usize {
    read_events(work).len()
}

#[test]
fn init_then_create_prints_an_id_and_the_feed_shows_the_event() {
    let sb = Sandbox::new();
    let out = sb.wo(&["init"]);
    assert!(out.ok().contains("Initialized work order store"));
    sb.wo(&["init"]).ok(); // safe twice
    let out = sb.wo(&[
        "create",
        "--title",
        "Fix bug X",
        "--type",
        "bug",
        "--priority",
        "1",
    ]);
    let id = created_id(&out);
    assert!(vermas_core::ids::is_work_order_id(&id), "{id}");
    let feed = fs::read_to_string(sb.path().join(".work/feed.jsonl")).unwrap();
    let ev: serde_json::Value = serde_json::from_str(feed.lines().last().unwrap()).unwrap();
    assert_eq!(ev["event_type"], "work_order.created");
    assert_eq!(ev["seq"], 1);
    assert_eq!(ev["data"]["id"], id.as_str());
    assert_eq!(ev["data"]["title"], "Fix bug X");
    assert_eq!(ev["data"]["type"], "bug");
    assert_eq!(ev["data"]["priority"], 1);
    let keys: Vec<&str> = feed
        .lines()
        .last()
        .unwrap()
        .split("\":")
        .filter_map(|s| s.rsplit("\"").next())
        .take(9)
        .collect();
    assert_eq!(
        keys,
        [
            "v",
            "seq",
            "event_id",
            "event_type",
            "timestamp",
            "actor",
            "correlation_id",
            "caused_by",
            "data"
        ]
    );
    let shown = sb.wo(&["show", &id, "--json"]).json();
    assert_eq!(shown["status"], "open");
    assert_eq!(shown["priority"], 1);
}

#[test]
fn outside_any_store_the_error_says_to_run_wo_init() {
    let sb = Sandbox::new();
    let err = sb.wo(&["list"]).fails(1).to_string();
    assert!(err.contains("wo init"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn hostile_text_is_stored_exactly_and_shown_safely() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let marker = sb.path().join("pwned");
    let title = format!(
        "$(touch {}) `touch {}` \"quoted\" 'single' \ttab \x1b[31mred\x1b[0m bell\x07 ü ✓",
        marker.display(),
        marker.display()
    );
    let description = format!(
        "line one\nline two\t$(rm -rf /)\n\x1b]0;title\x07\n{}",
        "x".repeat(10 * 1024)
    );
    let desc_file = sb.path().join("desc.txt");
    fs::write(&desc_file, &description).unwrap();
    let id = created_id(&sb.wo(&[
        "create",
        "--title",
        &title,
        "--description-file",
        desc_file.to_str().unwrap(),
        "--label",
        "needs-review",
    ]));
    assert!(!marker.exists(), "nothing is ever executed");
    let shown = sb.wo(&["show", &id, "--json"]).json();
    assert_eq!(shown["title"].as_str().unwrap(), title, "stored exactly");
    assert_eq!(shown["description"].as_str().unwrap(), description);
    for args in [
        vec!["show", id.as_str()],
        vec!["list"],
        vec!["events", "list"],
    ] {
        let out = sb.wo(&args);
        out.ok();
        assert!(
            !out.stdout.contains('\x1b') && !out.stdout.contains('\x07'),
            "{args:?} printed a raw control character:\n{}",
            out.stdout
        );
    }
    assert!(
        sb.wo(&["show", &id]).stdout.contains("\\e[31m"),
        "escapes are shown visibly"
    );
    // Refused with a clear error, nothing written.
    let before = event_count(&work);
    let err = sb
        .wo(&["create", "--title", "two\nlines"])
        .fails(2)
        .to_string();
    assert!(err.contains("one line"), "{err}");
    let err = sb
        .wo(&["create", "--title", &"x".repeat(201)])
        .fails(2)
        .to_string();
    assert!(err.contains("201 characters"), "{err}");
    let err = sb.wo(&["create", "--title", "   "]).fails(2).to_string();
    assert!(err.contains("empty"), "{err}");
    let bad = sb.path().join("bad.bin");
    fs::write(&bad, b"ok\xff\xfe not utf8").unwrap();
    let err = sb
        .wo(&[
            "create",
            "--title",
            "t",
            "--description-file",
            bad.to_str().unwrap(),
        ])
        .fails(2)
        .to_string();
    assert!(
        err.contains("not valid UTF-8") && err.contains("offset 2"),
        "{err}"
    );
    let err = sb
        .wo(&[
            "create",
            "--title",
            "t",
            "--description-file",
            "/nonexistent/file",
        ])
        .fails(3)
        .to_string();
    assert!(err.contains("no such file"), "{err}");
    assert_eq!(event_count(&work), before, "refusals write nothing");
}

#[test]
fn unknown_ids_exit_3_and_bad_flag_values_exit_2_with_the_allowed_values() {
    let sb = Sandbox::new();
    init(&sb);
    let a = create(&sb, "a");
    for args in [
        vec!["show", "wo-zzzzzz"],
        vec!["update", "wo-zzzzzz", "--priority", "1"],
        vec!["close", "wo-zzzzzz"],
        vec!["dep", "list", "wo-zzzzzz"],
        vec!["dep", "add", a.as_str(), "wo-zzzzzz"],
        vec!["events", "replay", "wo-zzzzzz"],
    ] {
        let err = sb.wo(&args).fails(3).to_string();
        assert!(err.contains("wo-zzzzzz"), "{args:?}: {err}");
    }
    let err = sb
        .wo(&["create", "--title", "t", "--priority", "9"])
        .fails(2)
        .to_string();
    assert!(err.contains("0..=4"), "{err}");
    let err = sb
        .wo(&["create", "--title", "t", "--type", "story"])
        .fails(2)
        .to_string();
    assert!(err.contains("task, bug, feature, epic, chore"), "{err}");
    let err = sb.wo(&["list", "--status", "done"]).fails(2).to_string();
    assert!(err.contains("open, queued, assigned, in_progress"), "{err}");
    let err = sb.wo(&["list", "--older-than", "3x"]).fails(2).to_string();
    assert!(err.contains("7d"), "{err}");
    let err = sb
        .wo(&["events", "list", "--since", "soon"])
        .fails(2)
        .to_string();
    assert!(err.contains("1h"), "{err}");
}

#[test]
fn an_illegal_transition_is_refused_with_exit_5_and_writes_nothing() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let a = create(&sb, "a");
    sb.wo(&["close", &a, "--reason", "done"]).ok();
    let before = event_count(&work);
    let err = sb
        .wo(&["update", &a, "--status", "in_review", "--priority", "0"])
        .fails(5)
        .to_string();
    assert!(err.contains("closed → in_review"), "{err}");
    assert!(err.contains("can go to: open"), "{err}");
    sb.wo(&["close", &a]).fails(5);
    assert_eq!(event_count(&work), before);
    // Reopening is legal.
    sb.wo(&["update", &a, "--status", "open"]).ok();
    assert_eq!(sb.wo(&["show", &a, "--json"]).json()["status"], "open");
    let err = sb.wo(&["update", &a]).fails(2).to_string();
    assert!(err.contains("nothing to change"), "{err}");
}

#[test]
fn closing_several_ids_is_all_or_nothing() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let a = create(&sb, "a");
    let b = create(&sb, "b");
    let before = event_count(&work);
    sb.wo(&["close", &a, "wo-nothere", &b]).fails(3);
    assert_eq!(event_count(&work), before);
    let out = sb.wo(&["close", &a, &b, "--reason", "batch"]);
    assert_eq!(out.ok().lines().count(), 2);
    let v = sb.wo(&["list", "--status", "closed", "--json"]).json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["close_reason"], "batch");
}

#[test]
fn list_filters_sorts_and_hides_done_work_by_default() {
    let sb = Sandbox::new();
    init(&sb);
    let low = created_id(&sb.wo(&[
        "create",
        "--title",
        "low",
        "--priority",
        "4",
        "--label",
        "x",
    ]));
    let urgent = created_id(&sb.wo(&[
        "create",
        "--title",
        "urgent",
        "--priority",
        "0",
        "--type",
        "bug",
    ]));
    let mid1 = created_id(&sb.wo(&["create", "--title", "mid1"]));
    let mid2 = created_id(&sb.wo(&["create", "--title", "mid2", "--label", "x"]));
    let done = create(&sb, "done");
    sb.wo(&["close", &done]).ok();
    let ids = |args: &[&str]| -> Vec<String> {
        sb.wo(args)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(&["list", "--json"]),
        vec![urgent.clone(), mid1.clone(), mid2.clone(), low.clone()]
    );
    assert_eq!(ids(&["list", "--all", "--json"]).len(), 5);
    assert_eq!(
        ids(&["list", "--label", "x", "--json"]),
        vec![mid2.clone(), low.clone()]
    );
    assert_eq!(
        ids(&["list", "--type", "bug", "--json"]),
        vec![urgent.clone()]
    );
    assert_eq!(
        ids(&["list", "--priority", "2", "--json"]),
        vec![mid1, mid2]
    );
    assert_eq!(ids(&["list", "--status", "closed", "--json"]), vec![done]);
    assert!(ids(&["list", "--older-than", "1d", "--json"]).is_empty());
    let human = sb.wo(&["list"]);
    assert!(human.ok().lines().next().unwrap().starts_with("ID"));
}

#[test]
fn dependencies_ready_blocked_and_cycles() {
    let sb = Sandbox::new();
    init(&sb);
    let a = create(&sb, "a");
    let b = create(&sb, "b");
    let c = create(&sb, "c");
    sb.wo(&["dep", "add", &a, &b]).ok();
    sb.wo(&["dep", "add", &b, &c]).ok();
    let err = sb.wo(&["dep", "add", &c, &a]).fails(5).to_string();
    assert!(err.contains("cycle"), "{err}");
    sb.wo(&["dep", "add", &a, &a]).fails(5);
    let ready: Vec<String> = sb
        .wo(&["ready", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ready, vec![c.clone()]);
    let blocked = sb.wo(&["blocked", "--json"]).json();
    assert_eq!(blocked.as_array().unwrap().len(), 2);
    sb.wo(&["close", &c]).ok();
    let list = sb.wo(&["dep", "list", &b, "--json"]).json();
    assert_eq!(list["depends_on"][0]["status"], "closed");
    assert_eq!(list["needed_by"][0]["id"], a.as_str());
    sb.wo(&["dep", "remove", &a, &b]).ok();
    sb.wo(&["dep", "remove", &a, &b]).fails(3);
    let ready = sb.wo(&["ready", "--json"]).json();
    assert_eq!(ready.as_array().unwrap().len(), 2);
}

#[test]
fn children_get_parent_dot_n_ids() {
    let sb = Sandbox::new();
    init(&sb);
    let p = create(&sb, "epic");
    let c1 = created_id(&sb.wo(&["create", "--title", "c1", "--parent", &p]));
    let c2 = created_id(&sb.wo(&["create", "--title", "c2", "--parent", &p]));
    assert_eq!(c1, format!("{p}.1"));
    assert_eq!(c2, format!("{p}.2"));
    let gc = created_id(&sb.wo(&["create", "--title", "gc", "--parent", &c1]));
    assert_eq!(gc, format!("{p}.1.1"));
    sb.wo(&["create", "--title", "x", "--parent", "wo-nosuch"])
        .fails(3);
    let shown = sb.wo(&["show", &p, "--json"]).json();
    assert_eq!(shown["children_list"].as_array().unwrap().len(), 2);
}

#[test]
fn rebuild_projections_gives_byte_identical_files() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(create(&sb, &format!("wo {i}")));
    }
    sb.wo(&["dep", "add", &ids[0], &ids[1]]).ok();
    sb.wo(&["update", &ids[2], "--status", "queued", "--add-label", "l"])
        .ok();
    sb.wo(&["close", &ids[3]]).ok();
    sb.wo(&["rebuild-projections"]).ok();
    let wo1 = fs::read(work.join("work_orders.jsonl")).unwrap();
    let msg1 = fs::read(work.join("messages.jsonl")).unwrap();
    fs::remove_file(work.join("work_orders.jsonl")).unwrap();
    fs::remove_file(work.join("messages.jsonl")).unwrap();
    let out = sb.wo(&["rebuild-projections"]);
    assert!(out.ok().contains("30 work orders"));
    assert_eq!(fs::read(work.join("work_orders.jsonl")).unwrap(), wo1);
    assert_eq!(fs::read(work.join("messages.jsonl")).unwrap(), msg1);
    // A projection refreshed by reads equals the rebuild too.
    sb.wo(&["doctor"]).ok();
}

#[test]
fn a_garbage_line_is_skipped_and_reported_by_readers_and_doctor() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let a = create(&sb, "a");
    let part = today_partition(&work);
    let mut f = fs::OpenOptions::new().append(true).open(&part).unwrap();
    std::io::Write::write_all(&mut f, b"{\"v\":1,\"seq\": garbage\n").unwrap();
    drop(f);
    let b = create(&sb, "b");
    let list = sb.wo(&["list", "--json"]);
    assert_eq!(
        list.json().as_array().unwrap().len(),
        2,
        "events around it apply"
    );
    assert!(
        list.stderr.contains(":2:"),
        "readers report it: {}",
        list.stderr
    );
    let doc = sb.wo(&["doctor"]);
    let name = part.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(doc.code, 1, "{}", doc.stdout);
    assert!(
        doc.stdout
            .contains(&format!("events/{name}:2: unreadable line")),
        "{}",
        doc.stdout
    );
    let j = sb.wo(&["doctor", "--json"]);
    assert_eq!(j.code, 1);
    assert_eq!(j.json()["ok"], false);
    let _ = (a, b);
}

#[test]
fn doctor_finds_a_projection_that_differs_and_a_seq_gap() {
    let sb = Sandbox::new();
    let work = init(&sb);
    create(&sb, "a");
    sb.wo(&["rebuild-projections"]).ok();
    sb.wo(&["doctor"]).ok();
    let p = work.join("work_orders.jsonl");
    let text = fs::read_to_string(&p)
        .unwrap()
        .replace("\"title\":\"a\"", "\"title\":\"z\"");
    fs::write(&p, text).unwrap();
    let doc = sb.wo(&["doctor"]);
    assert_eq!(doc.code, 1);
    assert!(
        doc.stdout
            .contains("work_orders.jsonl:2: differs from a fresh rebuild"),
        "{}",
        doc.stdout
    );
    sb.wo(&["rebuild-projections"]).ok();
    // A seq gap: drop an event line.
    create(&sb, "b");
    create(&sb, "c");
    let part = today_partition(&work);
    let lines: Vec<String> = fs::read_to_string(&part)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    fs::write(&part, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    let doc = sb.wo(&["doctor"]);
    assert_eq!(doc.code, 1);
    assert!(
        doc.stdout.contains(":2: seq gap: expected 2, found 3"),
        "{}",
        doc.stdout
    );
}

#[test]
fn a_writer_killed_mid_line_is_repaired_by_the_next_write() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the torn-write failpoint exists only in debug builds");
        return;
    }
    let sb = Sandbox::new();
    let work = init(&sb);
    let a = create(&sb, "acknowledged");
    let out = sb
        .command(vermas_tests::bin("wo"))
        .args(["create", "--title", "dies mid-write"])
        .env("VERMAS_FAILPOINT", "torn-write")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint aborts the writer");
    let part = today_partition(&work);
    assert_ne!(
        fs::read(&part).unwrap().last(),
        Some(&b'\n'),
        "a torn tail is left"
    );
    let b = sb.wo(&["create", "--title", "after"]);
    assert!(b.stderr.contains("torn line"), "{}", b.stderr);
    let b = created_id(&b);
    let bytes = fs::read(&part).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'));
    let events = read_events(&work);
    assert_eq!(events.len(), 2, "every line is valid");
    assert_eq!(
        events[0]["data"]["id"],
        a.as_str(),
        "nothing acknowledged is lost"
    );
    assert_eq!(events[1]["data"]["id"], b.as_str());
    assert_eq!(events[1]["seq"], 2);
    let q: Vec<_> = fs::read_dir(work.join("quarantine"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(q.len(), 1);
    let frag = fs::read_to_string(q[0].path()).unwrap();
    assert!(frag.starts_with("{\"v\":1,\"seq\":2"), "{frag}");
    sb.wo(&["doctor"]).ok();
}

#[test]
fn a_symlinked_events_file_or_store_entry_is_refused() {
    let sb = Sandbox::new();
    let work = init(&sb);
    create(&sb, "a");
    let part = today_partition(&work);
    let outside = sb.path().join("outside.jsonl");
    fs::rename(&part, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &part).unwrap();
    let err = sb.wo(&["create", "--title", "b"]).fails(4).to_string();
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(fs::read_to_string(&outside).unwrap().lines().count(), 1);
    fs::remove_file(&part).unwrap();
    fs::rename(&outside, &part).unwrap();
    // The feed.
    let feed = work.join("feed.jsonl");
    fs::remove_file(&feed).unwrap();
    std::os::unix::fs::symlink(sb.path().join("feed-target"), &feed).unwrap();
    let out = sb.wo(&["create", "--title", "c"]);
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert!(
        !sb.path().join("feed-target").exists(),
        "the feed symlink is not followed"
    );
    // The events directory.
    fs::remove_file(&feed).unwrap();
    let events = work.join("events");
    fs::rename(&events, sb.path().join("ev")).unwrap();
    std::os::unix::fs::symlink(sb.path().join("ev"), &events).unwrap();
    let err = sb.wo(&["create", "--title", "d"]).fails(4).to_string();
    assert!(err.contains("symbolic link"), "{err}");
}

/// Mounts a small tmpfs (needs root); returns None (and says why) when that is not possible.
fn small_tmpfs(at: &Path, size: &str) -> Option<()> {
    fs::create_dir_all(at).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .output();
    match st {
        Ok(o) if o.status.success() => Some(()),
        Ok(o) => {
            eprintln!(
                "skipped: cannot mount a tmpfs here ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: cannot run mount ({e})");
            None
        }
    }
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn disk_full_is_a_clear_error_with_no_partial_line_and_recovers() {
    let sb = Sandbox::new();
    let mnt = sb.path().join("mnt");
    if small_tmpfs(&mnt, "2m").is_none() {
        return;
    }
    let _guard = Unmount(mnt.clone());
    let run = |args: &[&str]| sb.run_in(&mnt, "wo", args);
    run(&["init"]).ok();
    created_id(&run(&["create", "--title", "before"]));
    // Fill the disk, leaving less room than one event needs.
    let filler = mnt.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1k", "count=100000"])
        .arg(format!("of={}", filler.display()))
        .output()
        .unwrap();
    let big = "y".repeat(20_000);
    let out = run(&["create", "--title", "too big", "--description", &big]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("no space left on device"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let work = mnt.join(".work");
    let part = today_partition(&work);
    let bytes = fs::read(&part).unwrap();
    assert_eq!(bytes.last(), Some(&b'\n'), "no partial line");
    assert_eq!(read_events(&work).len(), 1);
    fs::remove_file(&filler).unwrap();
    created_id(&run(&["create", "--title", "after", "--description", &big]));
    assert_eq!(read_events(&work).len(), 2);
    run(&["doctor"]).ok();
}

#[test]
fn a_single_log_file_when_partition_by_day_is_false() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let cfg = fs::read_to_string(work.join("config.toml")).unwrap();
    fs::write(
        work.join("config.toml"),
        cfg.replace("partition_by_day = true", "partition_by_day = false"),
    )
    .unwrap();
    create(&sb, "a");
    assert!(work.join("events.jsonl").is_file());
    assert_eq!(read_events(&work).len(), 1);
    let out = sb.wo(&["events", "archive", "--older-than", "7d"]);
    assert!(out.stderr.contains("one file"), "{}", out.stderr);
}

#[test]
fn archive_moves_old_partitions_and_every_read_still_works() {
    let sb = Sandbox::new();
    let work = init(&sb);
    create(&sb, "a");
    create(&sb, "b");
    // Make today's partition look 30 days old, then write today.
    let old_day = (chrono::Utc::now() - chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let part = today_partition(&work);
    fs::rename(&part, work.join("events").join(format!("{old_day}.jsonl"))).unwrap();
    create(&sb, "c");
    let out = sb.wo(&["events", "archive", "--older-than", "7d"]);
    assert!(out.ok().contains(&old_day), "{}", out.stdout);
    assert!(
        work.join(format!("events/archive/{old_day}.jsonl"))
            .is_file()
    );
    assert_eq!(
        sb.wo(&["list", "--json"]).json().as_array().unwrap().len(),
        3
    );
    let seqs: Vec<u64> = sb
        .wo(&["events", "list", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    create(&sb, "d");
    sb.wo(&["rebuild-projections"]).ok();
    sb.wo(&["doctor"]).ok();
    let again = sb.wo(&["events", "archive", "--older-than", "7d"]);
    assert!(again.stderr.contains("Nothing to archive"));
}

#[test]
fn events_list_stats_and_replay() {
    let sb = Sandbox::new();
    init(&sb);
    let a = create(&sb, "a");
    sb.wo(&["update", &a, "--status", "queued"]).ok();
    sb.wo(&["update", &a, "--status", "assigned"]).ok();
    let b = create(&sb, "b");
    let all = sb.wo(&["events", "list", "--json"]).json();
    assert_eq!(all.as_array().unwrap().len(), 4);
    let filtered = sb.wo(&["events", "list", "--type", "work_order.status*", "--jsonl"]);
    assert_eq!(filtered.ok().lines().count(), 2);
    let limited = sb.wo(&["events", "list", "--limit", "1", "--json"]).json();
    assert_eq!(limited[0]["data"]["id"], b.as_str());
    assert_eq!(
        sb.wo(&["events", "list", "--actor", "nobody", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        sb.wo(&["events", "list", "--since", "1h", "--json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let stats = sb
        .wo(&["events", "stats", "--since", "1h", "--json"])
        .json();
    assert_eq!(stats["events"], 4);
    assert_eq!(stats["by_type"]["work_order.created"], 2);
    let replay = sb.wo(&["events", "replay", &a]);
    let lines: Vec<&str> = replay.ok().lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[2].ends_with("→ assigned"), "{}", lines[2]);
    let st = sb.wo(&["stats", "--json"]).json();
    assert_eq!(st["total"], 2);
    assert_eq!(st["by_status"]["assigned"], 1);
    assert_eq!(st["store"]["healthy"], true);
}

#[test]
fn events_tail_follows_new_events() {
    use std::io::BufRead;
    let sb = Sandbox::new();
    init(&sb);
    create(&sb, "before");
    let mut child = sb
        .command(vermas_tests::bin("wo"))
        .args(["events", "tail", "-n", "1", "--jsonl"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert!(first.contains("\"before\""), "{first}");
    let id = create(&sb, "after");
    let next = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    assert!(next.contains(&id), "{next}");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn the_store_is_found_by_flag_environment_or_walking_up() {
    let sb = Sandbox::new();
    init(&sb);
    let a = create(&sb, "top");
    let deep = sb.path().join("a/b/c");
    fs::create_dir_all(&deep).unwrap();
    let out = sb.run_in(&deep, "wo", &["show", &a, "--json"]);
    assert_eq!(out.json()["id"], a.as_str());
    let elsewhere = tempfile::tempdir().unwrap();
    let work = sb.path().join(".work");
    let out = sb.run_in(
        elsewhere.path(),
        "wo",
        &["--work-dir", work.to_str().unwrap(), "list", "--json"],
    );
    assert_eq!(out.json().as_array().unwrap().len(), 1);
    let out = sb.run_in(
        elsewhere.path(),
        "wo",
        &["--work-dir", sb.path().to_str().unwrap(), "list", "--json"],
    );
    assert_eq!(out.json().as_array().unwrap().len(), 1);
    sb.run_in(
        elsewhere.path(),
        "wo",
        &["--work-dir", "/nonexistent", "list"],
    )
    .fails(1);
}

#[test]
fn outputs_are_printable_with_json_and_one_line_errors() {
    let sb = Sandbox::new();
    init(&sb);
    let out: Out = sb.wo(&["show", "wo-abcdef"]);
    assert_eq!(out.stderr.trim().lines().count(), 1);
    assert!(out.stdout.is_empty(), "errors go to stderr only");
}

fn append_line(path: &Path, line: &str) {
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()).unwrap();
}

fn raw_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_damaged_log_never_hides_an_acknowledged_create() {
    let sb = Sandbox::new();
    let work = init(&sb);
    create(&sb, "a");
    create(&sb, "b");
    sb.wo(&["list"]).ok();
    let part = today_partition(&work);
    let name = part.file_name().unwrap().to_string_lossy().into_owned();
    // A line duplicated at the end of the partition.
    let first = raw_lines(&part)[0].clone();
    append_line(&part, &first);
    let c = create(&sb, "after a duplicate");
    sb.wo(&["show", &c]).ok();
    // A last line whose seq is lower than an earlier one (a new event_id: it is applied).
    let mut low: serde_json::Value = serde_json::from_str(&raw_lines(&part)[1]).unwrap();
    low["seq"] = 1.into();
    low["event_id"] = vermas_core::ids::new_event_id().into();
    low["data"]["id"] = "wo-lowseq".into();
    append_line(&part, &low.to_string());
    let d = create(&sb, "after a lower seq");
    for id in [&c, &d, &"wo-lowseq".to_string()] {
        let shown = sb.wo(&["show", id, "--json"]);
        assert_eq!(shown.code, 0, "{id}: {}", shown.stderr);
    }
    let list = sb.wo(&["list", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 5, "{list}");
    let seqs: Vec<u64> = raw_lines(&part)
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, vec![1, 2, 1, 3, 1, 4], "no seq handed out twice");
    let doc = sb.wo(&["doctor"]);
    assert_eq!(doc.code, 1, "{}", doc.stdout);
    for want in [
        format!("events/{name}:3: event "),
        "repeats an event_id already in the log".to_string(),
        format!("events/{name}:5: seq 1 does not increase"),
    ] {
        assert!(doc.stdout.contains(&want), "{want}\n{}", doc.stdout);
    }
}

#[test]
fn a_byte_order_mark_is_read_and_reported_by_doctor() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let a = create(&sb, "first line");
    let part = today_partition(&work);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(fs::read(&part).unwrap());
    fs::write(&part, bytes).unwrap();
    // No projection yet: readers build it from the log, line 1 included.
    assert!(!work.join("work_orders.jsonl").exists());
    let b = create(&sb, "second");
    sb.wo(&["show", &a]).ok();
    let list = sb.wo(&["list", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let doc = sb.wo(&["doctor"]);
    let name = part.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(doc.code, 1, "{}", doc.stdout);
    assert!(
        doc.stdout
            .contains(&format!("events/{name}:1: UTF-8 byte order mark")),
        "{}",
        doc.stdout
    );
    let _ = b;
}

#[test]
fn doctor_names_the_line_of_a_payload_of_the_wrong_shape() {
    let sb = Sandbox::new();
    let work = init(&sb);
    create(&sb, "a");
    let part = today_partition(&work);
    let name = part.file_name().unwrap().to_string_lossy().into_owned();
    let good: serde_json::Value = serde_json::from_str(&raw_lines(&part)[0]).unwrap();
    let mut no_title = good.clone();
    no_title["seq"] = 2.into();
    no_title["event_id"] = vermas_core::ids::new_event_id().into();
    no_title["data"]["id"] = "wo-notitl".into();
    no_title["data"].as_object_mut().unwrap().remove("title");
    append_line(&part, &no_title.to_string());
    let mut string_priority = good.clone();
    string_priority["seq"] = 3.into();
    string_priority["event_id"] = vermas_core::ids::new_event_id().into();
    string_priority["data"]["id"] = "wo-strpri".into();
    string_priority["data"]["priority"] = "1".into();
    append_line(&part, &string_priority.to_string());
    // The same event again under a new seq.
    let mut reused = good.clone();
    reused["seq"] = 4.into();
    append_line(&part, &reused.to_string());
    let doc = sb.wo(&["doctor"]);
    assert_eq!(doc.code, 1, "{}", doc.stdout);
    for want in [
        format!(
            "events/{name}:2: work_order.created payload has the wrong shape: missing field `title`"
        ),
        format!(
            "events/{name}:3: work_order.created payload has the wrong shape: invalid type: string \"1\""
        ),
        format!(
            "events/{name}:4: event {}",
            good["event_id"].as_str().unwrap()
        ),
    ] {
        assert!(doc.stdout.contains(&want), "{want}\n{}", doc.stdout);
    }
    let j = sb.wo(&["doctor", "--json"]).json();
    let problems = j["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["line"] == 2 && p["file"] == format!(".work/events/{name}")),
        "{j}"
    );
}

#[test]
fn a_durable_create_whose_id_index_fails_to_sync_is_reported_as_done() {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: failpoints exist only in debug builds");
        return;
    }
    let sb = Sandbox::new();
    let work = init(&sb);
    create(&sb, "before");
    let out = sb
        .command(vermas_tests::bin("wo"))
        .args(["create", "--title", "durable", "--json"])
        .env("VERMAS_FAILPOINT", "ids-fsync")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the create happened: {stderr}");
    assert!(
        stderr.contains("warning:") && stderr.contains("work_orders.ids"),
        "{stderr}"
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = shown["id"].as_str().unwrap().to_string();
    assert_eq!(shown["title"], "durable");
    // Exactly one create of it, visible to readers; the index was marked for a rebuild.
    let creates = read_events(&work)
        .iter()
        .filter(|e| e["data"]["id"] == id.as_str())
        .count();
    assert_eq!(creates, 1);
    assert_eq!(fs::metadata(work.join("work_orders.ids")).unwrap().len(), 0);
    sb.wo(&["show", &id]).ok();
    // The next create rebuilds the index and goes on.
    let next = create(&sb, "after");
    assert_ne!(next, id);
    assert_eq!(
        fs::metadata(work.join("work_orders.ids")).unwrap().len(),
        4096 + (1 << 20)
    );
    sb.wo(&["doctor"]).ok();
}

#[test]
fn a_damaged_projection_file_is_rebuilt_by_the_next_list() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(create(&sb, &format!("w{i}")));
    }
    sb.wo(&["rebuild-projections"]).ok();
    let p = work.join("work_orders.jsonl");
    let good = fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let cut: String = lines[..5].iter().map(|l| format!("{l}\n")).collect();
    let flipped = good.replacen("\"status\":\"open\"", "\"status\":\"closed\"", 1);
    for (what, bad) in [("cut at a line", cut), ("a status flipped", flipped)] {
        fs::write(&p, bad).unwrap();
        let list = sb.wo(&["list", "--json"]).json();
        assert_eq!(list.as_array().unwrap().len(), 12, "{what}");
        assert_eq!(fs::read_to_string(&p).unwrap(), good, "{what}: rewritten");
    }
    // A killed rebuild's temp file: reported by doctor, removed by the next rebuild.
    let tmp = work.join(".work_orders.jsonl.tmp-999999999-inc-crashed");
    fs::write(&tmp, &good[..good.len() / 3]).unwrap();
    let doc = sb.wo(&["doctor"]);
    assert!(
        doc.stdout.contains(".work_orders.jsonl.tmp-999999999"),
        "{}",
        doc.stdout
    );
    sb.wo(&["rebuild-projections"]).ok();
    assert!(!tmp.exists());
}

#[test]
fn open_work_read_from_the_index_is_what_the_projection_lists() {
    let sb = Sandbox::new();
    let work = init(&sb);
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(create(&sb, &format!("w{i}")));
    }
    let mut close = vec!["close"];
    close.extend(ids[..10].iter().map(String::as_str));
    sb.wo(&close).ok();
    sb.wo(&[
        "update",
        &ids[11],
        "--priority",
        "0",
        "--assignee",
        "x/workers/slot1",
    ])
    .ok();
    let all = sb.wo(&["list", "--all", "--json"]).json();
    let open: Vec<&serde_json::Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| !["closed", "cancelled"].contains(&w["status"].as_str().unwrap()))
        .collect();
    let listed = sb.wo(&["list", "--json"]).json();
    assert!(work.join("work_orders.db").exists(), "read from the index");
    assert_eq!(listed.as_array().unwrap().iter().collect::<Vec<_>>(), open);
    assert_eq!(listed[0]["id"], ids[11].as_str(), "most urgent first");
    let table = sb.wo(&["list"]).ok().to_string();
    assert_eq!(table.lines().count(), 3, "{table}");
    let mine = sb
        .wo(&["list", "--json", "--assignee", "x/workers/slot1"])
        .json();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    // An index built again from the log gives the same answers.
    fs::remove_file(work.join("work_orders.db")).unwrap();
    let again = sb.wo(&["list", "--json"]).json();
    assert_eq!(again, listed);
    assert_eq!(sb.wo(&["list"]).ok(), table);
}
