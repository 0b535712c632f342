//! The batching merge queue end to end: QA merges work handed in together as one batch, gated
//! once, bisects a batch that fails, takes only a conflicting branch out, and a QA killed mid
//! batch leaves the target before or after a whole group.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use vermas_tests::{World, git, wait_for};

fn events_of(w: &World, ty: &str) -> Vec<serde_json::Value> {
    w.factory_events()
        .into_iter()
        .filter(|e| e["event_type"] == ty)
        .collect()
}

/// Work orders whose workers (good.sh) write `answer-<n>.txt` with `line`.
fn answers(w: &World, lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            w.create(
                &format!("answer {i}"),
                &[
                    "--label",
                    &format!("file:answer-{i}.txt"),
                    "--label",
                    &format!("line:{line}"),
                ],
            )
        })
        .collect()
}

/// Dispatches every work order and waits until each worker has handed its work in; the
/// supervisor is not running yet, so QA later finds them all at once.
fn hand_in(w: &World, ids: &[String]) {
    for id in ids {
        w.co(&["dispatch", id, "myproject"]).ok();
    }
    for id in ids {
        w.wait_status(id, "in_review", 30);
    }
}

#[test]
fn four_branches_handed_in_together_merge_as_one_batch_with_one_gate_run() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    let ids = answers(&w, &["right", "right", "right", "right"]);
    hand_in(&w, &ids);
    w.start_operations();
    for id in &ids {
        w.wait_status(id, "closed", 40);
    }
    let batches = events_of(&w, "qa.batch_started");
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert_eq!(
        batches[0]["data"]["work_orders"].as_array().unwrap().len(),
        4
    );
    let gates = events_of(&w, "qa.gate_run");
    assert_eq!(
        gates.len(),
        4,
        "one gate run, recorded for each of the four"
    );
    let batch = batches[0]["data"]["batch"].as_str().unwrap();
    assert!(gates.iter().all(|g| g["data"]["batch"] == batch));
    // Each work order has its own merge commit, all on main.
    let merges: Vec<String> = ids
        .iter()
        .map(|id| {
            w.wo(&["show", id, "--json"]).json()["merge_commit"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut unique = merges.clone();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{merges:?}");
    // The target is the last merge of the batch (in the order QA merged them).
    let last = batches[0]["data"]["work_orders"][3].as_str().unwrap();
    let last_merge = w.wo(&["show", last, "--json"]).json()["merge_commit"].clone();
    assert_eq!(
        git(&w.factory_dir(), &["rev-parse", "main"]),
        last_merge.as_str().unwrap()
    );
    for m in &merges {
        git(
            &w.factory_dir(),
            &["merge-base", "--is-ancestor", m, "main"],
        );
    }
    // Each has its own evidence.
    for id in &ids {
        let dir = w.factory_dir().join(format!(".work/evidence/{id}/1"));
        assert!(dir.join("check.stdout").is_file(), "{}", dir.display());
        assert!(dir.join("batch.json").is_file());
    }
}

#[test]
fn a_batch_with_one_bad_branch_is_bisected_the_good_merge_and_the_bad_goes_back() {
    // One tree at a time (the side-by-side halves have their own test below).
    let w = World::new(
        "good.sh",
        &format!(
            "{}\n[qa]\nparallel_gates = 1\n[worker]\nmax_attempts = 1\n",
            World::CHECK_GATE
        ),
    )
    .fast();
    let ids = answers(&w, &["right", "right", "wrong", "right"]);
    hand_in(&w, &ids);
    w.start_operations();
    for (i, id) in ids.iter().enumerate() {
        w.wait_status(id, if i == 2 { "failed" } else { "closed" }, 60);
    }
    assert!(!events_of(&w, "qa.batch_bisected").is_empty());
    let rework = events_of(&w, "qa.rework_requested");
    assert_eq!(rework.len(), 1);
    assert_eq!(rework[0]["data"]["work_order"], ids[2].as_str());
    assert_eq!(rework[0]["data"]["gate"], "check");
    let bad = w.wo(&["show", &ids[2], "--json"]).json();
    assert!(
        bad["last_failure"].as_str().unwrap().contains("says wrong"),
        "the gate's output goes back: {bad}"
    );
    let files = git(&w.factory_dir(), &["ls-tree", "--name-only", "main"]);
    for i in [0, 1, 3] {
        assert!(files.contains(&format!("answer-{i}.txt")), "{files}");
    }
    assert!(!files.contains("answer-2.txt"));
    let gate_runs: std::collections::BTreeSet<String> = events_of(&w, "qa.gate_run")
        .iter()
        .map(|g| g["data"]["evidence"].as_str().unwrap().to_string())
        .collect();
    assert!(!gate_runs.is_empty());
}

#[test]
fn a_conflict_inside_a_batch_takes_only_that_branch_out() {
    let w = World::new(
        "good.sh",
        &format!("{}\n[worker]\nmax_attempts = 1\n", World::CHECK_GATE),
    )
    .fast();
    let a = w.create(
        "A",
        &["--label", "file:shared.txt", "--label", "line:version-A"],
    );
    let b = w.create(
        "B",
        &["--label", "file:shared.txt", "--label", "line:version-B"],
    );
    let c = w.create("C", &["--label", "file:other.txt", "--label", "line:fine"]);
    // The younger of the two conflicting branches is handed in first: QA still merges in queue
    // order (oldest first), so A lands and B goes back, whoever finished first.
    hand_in(&w, std::slice::from_ref(&b));
    hand_in(&w, &[a.clone(), c.clone()]);
    w.start_operations();
    w.wait_status(&a, "closed", 40);
    w.wait_status(&c, "closed", 40);
    w.wait_status(&b, "failed", 40);
    let conflicts = events_of(&w, "qa.merge_failed");
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["data"]["work_order"], b.as_str());
    let batches = events_of(&w, "qa.batch_started");
    assert_eq!(batches.len(), 1, "one batch");
    assert_eq!(
        batches[0]["data"]["work_orders"],
        serde_json::json!([a, b, c]),
        "merged in queue order"
    );
    assert_eq!(
        events_of(&w, "qa.gate_run").len(),
        2,
        "gated once, for the two that merged"
    );
}

#[test]
fn qa_killed_mid_batch_leaves_the_target_before_the_batch_and_merges_it_once_later() {
    let w = World::new(
        "good.sh",
        "[[gates]]\nname = \"slow\"\ncommand = \"sleep 2\"\ntimeout_seconds = 30\n",
    )
    .fast();
    let ids = answers(&w, &["right", "right", "right"]);
    hand_in(&w, &ids);
    let main_before = git(&w.factory_dir(), &["rev-parse", "main"]);
    w.start_operations();
    wait_for(Duration::from_secs(20), "the batch gate running", || {
        (!events_of(&w, "qa.batch_started").is_empty()
            && std::fs::read_to_string(w.factory_dir().join(".work/.qa.json"))
                .is_ok_and(|s| s.contains("\"gate\": \"slow\"")))
        .then_some(())
    });
    let pid = w
        .tmux(&[
            "display-message",
            "-p",
            "-t",
            "=qa-myproject:",
            "#{pane_pid}",
        ])
        .stdout
        .trim()
        .to_string();
    std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    assert_eq!(
        git(&w.factory_dir(), &["rev-parse", "main"]),
        main_before,
        "the target did not move"
    );
    for id in &ids {
        w.wait_status(id, "closed", 60);
    }
    let merges: Vec<String> = w
        .target_log()
        .into_iter()
        .filter(|s| s.starts_with("Merge"))
        .collect();
    assert_eq!(merges.len(), 3, "each merged exactly once: {merges:?}");
}

#[test]
fn with_two_parallel_gates_the_halves_of_a_failed_batch_are_gated_side_by_side() {
    let runs = tempfile::tempdir().unwrap();
    let log = runs.path().join("gate-runs");
    // The gate notes when it starts and ends (outside the tree), and holds on a little so
    // that runs side by side overlap for sure.
    let gate = format!(
        "[[gates]]\nname = \"check\"\ncommand = \"echo start $(date +%s%N) $PWD >> {0}; sleep 1; r=0; sh check.sh || r=$?; echo end $(date +%s%N) $PWD >> {0}; exit $r\"\ntimeout_seconds = 30\n[qa]\nparallel_gates = 2\n[worker]\nmax_attempts = 1\n",
        log.display()
    );
    let w = World::new("good.sh", &gate).fast();
    let ids = answers(&w, &["right", "right", "wrong", "right"]);
    hand_in(&w, &ids);
    w.start_operations();
    // co status shows the batch in progress and its gate.
    let shown = wait_for(Duration::from_secs(20), "QA's batch in co status", || {
        let text = w.co(&["status"]).stdout;
        text.contains("merging ").then_some(text)
    });
    assert!(shown.contains("gate "), "{shown}");
    for (i, id) in ids.iter().enumerate() {
        w.wait_status(id, if i == 2 { "failed" } else { "closed" }, 60);
    }
    let files = git(&w.factory_dir(), &["ls-tree", "--name-only", "main"]);
    for i in [0, 1, 3] {
        assert!(files.contains(&format!("answer-{i}.txt")), "{files}");
    }
    assert!(!files.contains("answer-2.txt"));
    // [a b c d] fails; [a b] and [c d] side by side; then [c] and [d] side by side.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut open: Vec<(String, u128)> = Vec::new();
    let mut overlapped = 0;
    let mut lanes = std::collections::BTreeSet::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let (kind, t, dir) = (parts[0], parts[1].parse::<u128>().unwrap(), parts[2]);
        lanes.insert(dir.rsplit('/').next().unwrap().to_string());
        if kind == "start" {
            if !open.is_empty() {
                overlapped += 1;
            }
            open.push((dir.to_string(), t));
        } else {
            open.retain(|(d, _)| d != dir);
        }
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with("start")).count(),
        5,
        "one batch run and two pairs: {text}"
    );
    assert_eq!(overlapped, 2, "each pair ran side by side: {text}");
    assert_eq!(
        lanes.into_iter().collect::<Vec<_>>(),
        vec!["qa".to_string(), "qa-2".to_string()]
    );
    let rework = events_of(&w, "qa.rework_requested");
    assert_eq!(rework.len(), 1, "{rework:?}");
    assert_eq!(rework[0]["data"]["work_order"], ids[2].as_str());
}
