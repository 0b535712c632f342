//! Issue 5: the operations guide's flows end to end, a load run, and `co demo`.
//! Real binaries, real tmux on private sockets, real git, the scripted agents of tests/agents/.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::time::Duration;
use vermas_tests::{Sandbox, World, git, read_events, wait_for};

#[test]
fn the_guides_flow_from_init_to_a_merge_with_an_attachable_worker() {
    // init → factory add → operations start → wo create → dispatch → attach → merged.
    let w = World::new("question.sh", World::CHECK_GATE).fast();
    w.start_operations();
    let id = w.create("Fix bug X", &["--type", "bug", "--priority", "1"]);
    let out = w.co(&["dispatch", &id, "myproject"]);
    assert_eq!(
        out.ok().trim(),
        format!("Spawned worker-myproject-slot0, assigned {id}")
    );
    // A person attaches to the worker's session (here from a viewer session) and sees the agent.
    let socket = w.sb.socket.clone();
    w.tmux(&[
        "new-session",
        "-d",
        "-s",
        "viewer",
        "-x",
        "200",
        "-y",
        "50",
        "--",
        "env",
        "-u",
        "TMUX",
        "tmux",
        "-L",
        &socket,
        "attach",
        "-t",
        "=worker-myproject-slot0",
    ]);
    let viewer = w.wait_pane("viewer", &format!("Proceed with {id}? [y/n]"), 15);
    assert!(viewer.contains(&format!("ASSIGNED: {id}")), "{viewer}");
    let pane = w.pane("worker-myproject-slot0");
    assert!(
        pane.contains("Proceed with"),
        "capture-pane shows the agent: {pane}"
    );
    // Answer its question; it finishes; QA merges.
    w.co(&["nudge", "myproject/workers/slot0", "y"]).ok();
    w.wait_status(&id, "closed", 30);
    let log = w.target_log();
    assert!(log[0].starts_with(&format!("Merge vermas/{id}")), "{log:?}");
    // co status and wo stats agree.
    let st = w.co(&["status", "--json"]).json();
    let stats = w.wo(&["stats", "--json"]).json();
    assert_eq!(
        st["factories"][0]["work_orders"]["closed"],
        stats["by_status"]["closed"]
    );
    assert_eq!(stats["by_status"]["closed"], 1);
    assert_eq!(st["factories"][0]["slots_used"], 0);
    assert!(
        w.co(&["worker", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    w.tmux(&["kill-session", "-t", "=viewer"]);
}

#[test]
fn the_guides_recovery_after_an_emergency_stop() {
    let w = World::new("question.sh", World::CHECK_GATE).fast();
    w.start_operations();
    let id = w.create("interrupted work", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "Proceed with", 15);
    // Emergency stop.
    w.tmux(&["kill-server"]);
    // Recovering from failure, as the guide says.
    let fdir = w.factory_dir();
    let orphans: Vec<_> = fs::read_dir(fdir.join(".work"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".assignment-"))
        .collect();
    assert_eq!(orphans.len(), 1);
    let text = fs::read_to_string(orphans[0].path()).unwrap();
    assert!(text.contains(&id));
    let doctor = w.co(&["doctor"]);
    assert_eq!(doctor.code, 1, "{}", doctor.stdout);
    fs::remove_file(orphans[0].path()).unwrap();
    git(&fdir, &["worktree", "prune"]);
    w.start_operations();
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "Proceed with", 15);
    w.co(&["nudge", "myproject/workers/slot0", "y"]).ok();
    w.wait_status(&id, "closed", 30);
    let doctor = w.co(&["doctor"]);
    assert_eq!(doctor.code, 0, "{}", doctor.stdout);
}

#[test]
fn rebuild_projections_while_the_company_runs() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    w.start_operations();
    let ids: Vec<String> = (0..6)
        .map(|i| w.create(&format!("task {i}"), &[]))
        .collect();
    for id in &ids {
        w.co(&["dispatch", id, "myproject"]).ok();
    }
    // Delete the projections mid-run and rebuild them.
    let work = w.factory_dir().join(".work");
    for p in ["work_orders.jsonl", "messages.jsonl", "slots.jsonl"] {
        let _ = fs::remove_file(work.join(p));
    }
    w.wo(&["rebuild-projections"]).ok();
    for id in &ids {
        w.wait_status(id, "closed", 60);
    }
    w.wo(&["doctor"]).ok();
    // Byte-identical to a fresh rebuild of the final log.
    w.co(&["operations", "stop"]).ok();
    w.wo(&["rebuild-projections"]).ok();
    let a = fs::read(work.join("work_orders.jsonl")).unwrap();
    fs::remove_file(work.join("work_orders.jsonl")).unwrap();
    w.wo(&["rebuild-projections"]).ok();
    assert_eq!(fs::read(work.join("work_orders.jsonl")).unwrap(), a);
}

#[test]
fn load_run_thirty_work_orders_over_two_factories_with_a_mix_of_agents() {
    let extra = format!(
        "{}\n[worker]\nmax_slots_per_factory = 3\nidle_timeout_minutes = 0.01\nstuck_timeout_minutes = 0.03\nmax_attempts = 2\n",
        World::CHECK_GATE
    );
    let w = World::new("mixed.sh", &extra).fast();
    w.add_factory("second", "sc", "mixed.sh", &extra);
    w.start_operations();
    let mix = [
        "good",
        "good",
        "good",
        "good",
        "good",
        "good",
        "good",
        "good",
        "wrong-then-right",
        "wrong-then-right",
        "hang",
        "crash",
        "question",
        "no-commit",
        "good",
    ];
    let mut all: Vec<(String, &str, &str)> = Vec::new();
    for (i, agent) in mix.iter().enumerate() {
        for factory in ["myproject", "second"] {
            let label = format!("agent:{agent}");
            let out = w.wo_in(
                factory,
                &[
                    "create",
                    "--title",
                    &format!("{agent} {i}"),
                    "--label",
                    &label,
                ],
            );
            let id = vermas_tests::created_id(&out);
            all.push((id, factory, agent));
        }
    }
    assert_eq!(all.len(), 30);
    for (id, factory, _) in &all {
        w.co(&["dispatch", id, factory]).ok();
    }
    let done = |s: &str| s == "closed" || s == "failed";
    let mut answered = BTreeSet::new();
    wait_for(Duration::from_secs(240), "every work order to end", || {
        // A worker waiting at a question is left to a person (never nudged, never killed):
        // here the person answers it.
        for wk in w
            .co(&["worker", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
        {
            if wk["status"] == "blocked" && wk["blocked"] == "y/n" {
                let agent = wk["agent"].as_str().unwrap().to_string();
                if answered.insert((agent.clone(), wk["incarnation"].to_string())) {
                    w.co(&["nudge", &agent, "y"]);
                }
            }
        }
        all.iter()
            .all(|(id, f, _)| {
                let s = w.wo_in(f, &["show", id, "--json"]).json()["status"]
                    .as_str()
                    .unwrap()
                    .to_string();
                done(&s)
            })
            .then_some(())
    });
    let mut outcome: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (id, f, agent) in &all {
        let wo = w.wo_in(f, &["show", id, "--json"]).json();
        let status = wo["status"].as_str().unwrap().to_string();
        if status == "failed" {
            assert!(
                wo["last_failure"].as_str().is_some_and(|r| !r.is_empty()),
                "{id} failed without a reason"
            );
        } else {
            assert!(
                wo["merge_commit"].is_string(),
                "{id} closed without a merge commit"
            );
        }
        outcome.entry(agent).or_default().insert(status);
    }
    for good in ["good", "wrong-then-right", "question"] {
        assert_eq!(
            outcome[good],
            BTreeSet::from(["closed".to_string()]),
            "{good}"
        );
    }
    for bad in ["hang", "crash", "no-commit"] {
        assert_eq!(
            outcome[bad],
            BTreeSet::from(["failed".to_string()]),
            "{bad}"
        );
    }
    // No change merged twice: every merge commit on each target names a distinct work order.
    for f in ["myproject", "second"] {
        let merges: Vec<String> = git(&w.root.join(f), &["log", "--merges", "--format=%s", "main"])
            .lines()
            .map(str::to_string)
            .collect();
        let ids: BTreeSet<String> = merges
            .iter()
            .map(|m| m.split(' ').nth(1).unwrap().to_string())
            .collect();
        assert_eq!(ids.len(), merges.len(), "merged twice: {merges:?}");
        let closed = all
            .iter()
            .filter(|(id, ff, _)| {
                *ff == f && w.wo_in(f, &["show", id, "--json"]).json()["status"] == "closed"
            })
            .count();
        assert_eq!(merges.len(), closed);
    }
    // Nothing lost: every created work order is in the projection and the log.
    let created: usize = ["myproject", "second"]
        .iter()
        .map(|f| {
            read_events(&w.root.join(f).join(".work"))
                .iter()
                .filter(|e| e["event_type"] == "work_order.created")
                .count()
        })
        .sum();
    assert_eq!(created, 30);
    w.co(&["operations", "stop"]).ok();
    wait_for(Duration::from_secs(10), "workers to be gone", || {
        w.co(&["worker", "list", "--all", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    });
    for f in ["myproject", "second"] {
        let d = w.wo_in(f, &["doctor"]);
        assert_eq!(d.code, 0, "wo doctor in {f}: {}", d.stdout);
    }
    let d = w.co(&["doctor"]);
    assert_eq!(d.code, 0, "co doctor: {}", d.stdout);
}

#[test]
fn the_demo_merges_everything_with_one_rework_and_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let dir = sb.path().join("demo-company");
    // The caller's own company server (VERMAS_TMUX_SOCKET names it): the demo must neither run
    // on it nor kill it.
    sb.tmux(&["new-session", "-d", "-s", "mine", "sleep", "600"])
        .ok();
    let out = sb
        .command(vermas_tests::bin("co"))
        .args(["demo", "--dir", dir.to_str().unwrap(), "--workers", "2"])
        .env("VERMAS_DEMO_PACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("3 of 3 work orders merged, 0 failed, 1 rework round(s)"),
        "{stdout}"
    );
    for step in ["dispatched", "working", "done", "gates", "rework", "merged"] {
        assert!(stdout.contains(step), "{step} in {stdout}");
    }
    assert!(stdout.contains("attach -t worker-demo-slot0"));
    assert!(stdout.contains("/demo/.work/feed.jsonl | jq"));
    assert!(!dir.exists(), "the demo directory is removed");
    let sockets: Vec<_> = fs::read_dir(&sb.tmux_tmpdir)
        .unwrap()
        .flatten()
        .flat_map(|d| fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vermas-demo-"))
        .collect();
    assert!(sockets.is_empty(), "no tmux server left: {sockets:?}");
    assert_eq!(
        sb.tmux(&["list-sessions", "-F", "#{session_name}"])
            .ok()
            .trim(),
        "mine",
        "the caller's server is untouched and held none of the demo's sessions"
    );
    // A non-empty --dir is refused.
    let busy = sb.path().join("busy");
    fs::create_dir_all(&busy).unwrap();
    fs::write(busy.join("x"), "x").unwrap();
    let out = sb.co(&["demo", "--dir", busy.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn the_demo_keeps_everything_with_keep() {
    let sb = Sandbox::new();
    let dir = sb.path().join("kept");
    let out = sb
        .command(vermas_tests::bin("co"))
        .args([
            "demo",
            "--dir",
            dir.to_str().unwrap(),
            "--workers",
            "3",
            "--keep",
        ])
        .env("VERMAS_DEMO_PACE", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(dir.join("demo/.work/feed.jsonl").is_file());
    let log = git(&dir.join("demo"), &["log", "--format=%s", "main"]);
    assert_eq!(
        log.lines().filter(|l| l.starts_with("Merge")).count(),
        3,
        "{log}"
    );
    // Clean up what --keep kept.
    let socket = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            l.split("tmux -L ")
                .nth(1)
                .map(|r| r.split(' ').next().unwrap().to_string())
        })
        .unwrap();
    // Everything ran on the demo's own server, none of it on the caller's.
    let demo = sb
        .command("tmux")
        .args(["-L", &socket, "has-session", "-t", "=operations"])
        .status()
        .unwrap();
    assert!(demo.success(), "operations runs on {socket}");
    assert_ne!(sb.tmux(&["has-session", "-t", "=operations"]).code, 0);
    let _ = sb.run_in(&dir, "co", &["operations", "stop"]);
    let _ = sb
        .command("tmux")
        .args(["-L", &socket, "kill-server"])
        .status();
}

#[test]
fn the_ceo_writes_company_work_orders_and_dispatches_them_into_a_factory() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    w.start_operations();
    // At the company root (the CEO's store) ids are hq-…
    let out = w.sb.run_in(
        &w.root.join("ceo"),
        "wo",
        &["create", "--title", "Company-wide task", "--priority", "1"],
    );
    let id = vermas_tests::created_id(&out);
    assert!(id.starts_with("hq-"), "{id}");
    w.co(&["dispatch", &id, "myproject"]).ok();
    wait_for(Duration::from_secs(30), "the hq work order merged", || {
        (w.sb.run_in(&w.root, "wo", &["show", &id, "--json"]).json()["status"] == "closed")
            .then_some(())
    });
    // Its state lives in the company store; the factory store has the slot and QA events
    // (written just after, in the factory store's own append).
    let company = read_events(&w.root.join(".work"));
    assert!(
        company
            .iter()
            .any(|e| e["event_type"] == "work_order.closed" && e["data"]["id"] == id.as_str())
    );
    let factory = wait_for(
        Duration::from_secs(10),
        "qa.merged in the factory store",
        || {
            let f = w.factory_events();
            f.iter()
                .any(|e| e["event_type"] == "qa.merged" && e["data"]["work_order"] == id.as_str())
                .then_some(f)
        },
    );
    assert!(
        !factory
            .iter()
            .any(|e| e["event_type"] == "work_order.created")
    );
    // From the factory directory, the id routes to the company store.
    let shown = w.wo(&["show", &id, "--json"]).json();
    assert_eq!(shown["status"], "closed");
    assert!(w.target_log()[0].contains(&id));
}
