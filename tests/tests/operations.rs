//! Issue 4 end to end: operations keeps supervisor and QA alive; the supervisor moves workers;
//! QA merges only when the gates pass. Real tmux on private sockets, real git, scripted agents,
//! short intervals from config.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::time::{Duration, Instant};
use vermas_tests::{World, git, wait_for};

fn events_of(w: &World, ty: &str) -> Vec<serde_json::Value> {
    w.factory_events()
        .into_iter()
        .filter(|e| e["event_type"] == ty)
        .collect()
}

fn ceo_mail(w: &World) -> Vec<serde_json::Value> {
    w.co(&["inbox", "--json"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn happy_path_merges_after_the_gates_pass_with_evidence() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    w.start_operations();
    let id = w.create("Add a file", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "closed", 30);
    let wo = w.wo(&["show", &id, "--json"]).json();
    let merge = wo["merge_commit"].as_str().unwrap().to_string();
    assert_eq!(
        git(&w.factory_dir(), &["rev-parse", "main"]),
        merge,
        "main is the merge commit"
    );
    let parents = git(
        &w.factory_dir(),
        &["rev-list", "--parents", "-n", "1", &merge],
    );
    assert_eq!(
        parents.split(' ').count(),
        3,
        "a real merge commit: {parents}"
    );
    let files = git(&w.factory_dir(), &["ls-tree", "--name-only", "main"]);
    assert!(files.contains(&format!("work-{id}.txt")), "{files}");
    let gate = events_of(&w, "qa.gate_run");
    assert_eq!(gate.len(), 1);
    assert_eq!(gate[0]["data"]["passed"], true);
    let ev_dir = w.factory_dir().join(format!(".work/evidence/{id}/1"));
    assert!(
        std::fs::read_to_string(ev_dir.join("check.stdout"))
            .unwrap()
            .contains("checks passed")
    );
    assert!(ev_dir.join("check.stderr").is_file());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev_dir.join("check.json")).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 0);
    assert!(summary["duration_ms"].as_u64().is_some());
    let merged = events_of(&w, "qa.merged");
    assert_eq!(merged[0]["data"]["merge_commit"], merge.as_str());
    // The branch and worktree are gone; the supervisor got MERGED.
    assert!(!git(&w.factory_dir(), &["branch", "--list"]).contains(&id));
    assert!(
        w.factory_events()
            .iter()
            .any(|e| e["event_type"] == "mail.sent" && e["data"]["type"] == "MERGED")
    );
    // The monitoring commands agree.
    let st = w.co(&["status", "--json"]).json();
    assert_eq!(st["operations"]["alive"], true);
    assert_eq!(st["factories"][0]["supervisor"]["alive"], true);
    assert_eq!(st["factories"][0]["qa"]["alive"], true);
    assert_eq!(st["factories"][0]["work_orders"]["closed"], 1);
    let stats = w.wo(&["stats", "--json"]).json();
    assert_eq!(stats["by_status"]["closed"], 1);
    let ops = w.co(&["operations", "status", "--json"]).json();
    assert_eq!(ops["running"], true);
    assert!(ops["last_patrol"].is_string());
    assert!(
        w.co(&["operations", "logs"])
            .ok()
            .contains("start session=supervisor-myproject")
    );
    // Stop leaves workers alone and ends operations, supervisor and QA.
    let stop = w.co(&["operations", "stop"]);
    assert!(stop.ok().contains("Stopped operations"));
    let sessions = w.sessions();
    assert!(
        !sessions
            .iter()
            .any(|s| s == "operations" || s.starts_with("supervisor-") || s.starts_with("qa-")),
        "{sessions:?}"
    );
    assert!(
        w.company_events()
            .iter()
            .any(|e| e["event_type"] == "operations.stopped")
    );
}

#[test]
fn a_failing_gate_sends_it_back_and_the_second_attempt_merges() {
    let w = World::new("wrong-then-right.sh", World::CHECK_GATE).fast();
    w.start_operations();
    let id = w.create("Answer the question", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "closed", 40);
    let gates = events_of(&w, "qa.gate_run");
    assert_eq!(gates.len(), 2);
    assert_eq!(gates[0]["data"]["passed"], false);
    assert_eq!(gates[0]["data"]["exit_code"], 1);
    assert_eq!(gates[1]["data"]["passed"], true);
    let rework = events_of(&w, "qa.rework_requested");
    assert_eq!(rework.len(), 1);
    assert_eq!(rework[0]["data"]["gate"], "check");
    let req = w
        .factory_events()
        .into_iter()
        .find(|e| e["event_type"] == "mail.sent" && e["data"]["type"] == "REWORK_REQUEST")
        .unwrap();
    assert!(
        req["data"]["body"]
            .as_str()
            .unwrap()
            .contains(&format!("answer-{id}.txt says wrong")),
        "the tail of the output"
    );
    assert_eq!(req["data"]["meta"]["exit_code"], "1");
    let wo = w.wo(&["show", &id, "--json"]).json();
    assert_eq!(wo["attempts"], 2);
    assert!(
        std::fs::read_to_string(
            w.factory_dir()
                .join(format!(".work/evidence/{id}/1/check.stdout"))
        )
        .unwrap()
        .contains("wrong")
    );
    let files = git(
        &w.factory_dir(),
        &["show", &format!("main:answer-{id}.txt")],
    );
    assert_eq!(files, "right");
    // Merged once.
    let merges: Vec<String> = w
        .target_log()
        .into_iter()
        .filter(|s| s.contains(&id) && s.starts_with("Merge"))
        .collect();
    assert_eq!(merges.len(), 1, "{merges:?}");
}

#[test]
fn two_workers_editing_the_same_lines_the_second_gets_a_conflict_rework() {
    let w = World::new(
        "good.sh",
        &format!("{}\n[worker]\nmax_attempts = 1\n", World::CHECK_GATE),
    )
    .fast();
    w.start_operations();
    let a = w.create(
        "Version A",
        &["--label", "file:shared.txt", "--label", "line:version-A"],
    );
    let b = w.create(
        "Version B",
        &["--label", "file:shared.txt", "--label", "line:version-B"],
    );
    w.co(&["dispatch", &a, "myproject"]).ok();
    w.co(&["dispatch", &b, "myproject"]).ok();
    wait_for(Duration::from_secs(40), "one merged and one failed", || {
        let (sa, sb) = (w.status_of(&a), w.status_of(&b));
        ((sa == "closed" && sb == "failed") || (sa == "failed" && sb == "closed")).then_some(())
    });
    let failed = events_of(&w, "qa.merge_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["conflicts"][0], "shared.txt");
    let loser = failed[0]["data"]["work_order"]
        .as_str()
        .unwrap()
        .to_string();
    let wo = w.wo(&["show", &loser, "--json"]).json();
    assert!(
        wo["last_failure"]
            .as_str()
            .unwrap()
            .contains("merge conflict"),
        "{wo}"
    );
    assert!(wo["last_failure"].as_str().unwrap().contains("shared.txt"));
    let esc: Vec<_> = ceo_mail(&w)
        .into_iter()
        .filter(|m| m["type"] == "ESCALATION")
        .collect();
    assert_eq!(esc.len(), 1);
}

#[test]
fn a_hanging_agent_is_nudged_killed_requeued_and_fails_after_max_attempts_with_one_escalation() {
    let w = World::new(
        "hang.sh",
        "[worker]\nidle_timeout_minutes = 0.01\nstuck_timeout_minutes = 0.04\nmax_attempts = 2\n",
    )
    .fast();
    w.start_operations();
    let id = w.create("Hangs forever", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "failed", 40);
    let nudges: Vec<_> = events_of(&w, "agent.nudged")
        .into_iter()
        .filter(|e| e["data"]["reason"] == "idle")
        .collect();
    assert!(!nudges.is_empty(), "idle workers are nudged");
    assert!(nudges.iter().all(|n| n["data"]["delivered"] == true));
    assert!(!events_of(&w, "agent.idle").is_empty());
    let stopped: Vec<_> = events_of(&w, "agent.stopped")
        .into_iter()
        .filter(|e| e["data"]["reason"].as_str().unwrap().starts_with("stuck"))
        .collect();
    assert_eq!(stopped.len(), 2, "killed once per attempt");
    let wo = w.wo(&["show", &id, "--json"]).json();
    assert_eq!(wo["attempts"], 2);
    assert!(
        wo["last_failure"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempt(s)"),
        "{wo}"
    );
    let esc: Vec<_> = ceo_mail(&w)
        .into_iter()
        .filter(|m| m["type"] == "ESCALATION")
        .collect();
    assert_eq!(esc.len(), 1, "one escalation");
    assert_eq!(esc[0]["meta"]["work_order"], id.as_str());
    // The worktree (no commits) is gone; nothing is left running for it.
    wait_for(Duration::from_secs(5), "no worker left", || {
        w.co(&["worker", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
            .then_some(())
    });
    // Stay failed: the supervisor does not pick it up again.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(w.status_of(&id), "failed");
    assert_eq!(
        ceo_mail(&w)
            .into_iter()
            .filter(|m| m["type"] == "ESCALATION")
            .count(),
        1
    );
}

/// A patrol woken by a change in the log may judge the workers by the session list of an
/// earlier one; a worker whose session dies without a word is still found while the log never
/// rests (the list is asked for again once it is a patrol interval old).
#[test]
fn a_worker_killed_silently_is_found_while_the_log_keeps_changing() {
    let w = World::new("hang.sh", "").fast();
    w.start_operations();
    let id = w.create("Hangs", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 20);
    w.tmux(&["kill-session", "-t", "=worker-myproject-slot0"])
        .ok();
    let start = std::time::Instant::now();
    let mut n = 0;
    while events_of(&w, "agent.restarted").is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the dead worker was not found while the log kept changing"
        );
        // A change every 0.1 s, more often than the 0.3 s patrol interval.
        w.create(&format!("noise {n}"), &[]);
        n += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(n >= 2, "the log changed while the supervisor looked ({n})");
}

#[test]
fn an_agent_that_exits_at_once_is_restarted_with_backoff_never_in_a_tight_loop() {
    let w = World::new("crash.sh", "[worker]\nmax_attempts = 1\n").fast();
    w.edit_company_config("max_restarts = 5", "max_restarts = 4");
    w.start_operations();
    let id = w.create("Crashes", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "failed", 40);
    let restarts: Vec<chrono::DateTime<chrono::Utc>> = events_of(&w, "agent.restarted")
        .iter()
        .map(|e| vermas_core::clock::parse_timestamp(e["timestamp"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        restarts.len(),
        3,
        "max_restarts = 4: the 4th failure gives up"
    );
    let started = vermas_core::clock::parse_timestamp(
        events_of(&w, "agent.started")[0]["timestamp"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut gaps = Vec::new();
    let mut prev = started;
    for t in &restarts {
        gaps.push((*t - prev).num_milliseconds());
        prev = *t;
    }
    // 0.2 s, 0.4 s, 0.8 s (±25% jitter), each waited out: growing, never a tight loop.
    assert!(gaps.iter().all(|g| *g >= 150), "{gaps:?}");
    assert!(gaps[2] > gaps[0], "{gaps:?}");
    let wo = w.wo(&["show", &id, "--json"]).json();
    assert!(
        wo["last_failure"]
            .as_str()
            .unwrap()
            .contains("keeps exiting"),
        "{wo}"
    );
}

#[test]
fn the_same_start_up_error_twice_blocks_the_work_order_with_the_fix_instead_of_spending_attempts() {
    let w = World::new("crash-same.sh", "[worker]\nmax_attempts = 3\n").fast();
    w.start_operations();
    let id = w.create("Cannot start", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "blocked", 30);
    let wo = w.wo(&["show", &id, "--json"]).json();
    let why = wo["last_failure"].as_str().unwrap();
    assert!(why.contains("root/sudo"), "{why}");
    assert!(
        why.contains("IS_SANDBOX=1"),
        "the fix is in the reason: {why}"
    );
    assert_eq!(wo["attempts"], 1, "no attempt spent beyond the first");
    assert_eq!(
        events_of(&w, "agent.restarted").len(),
        1,
        "restarted once, then the same error again blocks it"
    );
    let mail: Vec<_> = ceo_mail(&w)
        .into_iter()
        .filter(|m| m["subject"].as_str().unwrap().contains(&id))
        .collect();
    assert_eq!(mail.len(), 1, "one escalation: {mail:?}");
    assert!(
        mail[0]["body"]
            .as_str()
            .unwrap()
            .contains("root/sudo privileges")
    );
    // Nothing holds the slot: the next work can start.
    assert!(
        w.co(&["worker", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn supervisor_and_qa_sessions_killed_are_restarted_within_two_patrols() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    w.start_operations();
    wait_for(Duration::from_secs(10), "supervisor and qa up", || {
        let s = w.sessions();
        (s.contains(&"supervisor-myproject".into()) && s.contains(&"qa-myproject".into()))
            .then_some(())
    });
    for session in ["supervisor-myproject", "qa-myproject"] {
        w.tmux(&["kill-session", "-t", &format!("={session}")]);
        let t = Instant::now();
        wait_for(Duration::from_secs(5), &format!("{session} back"), || {
            w.sessions().contains(&session.to_string()).then_some(())
        });
        // Two patrol intervals (0.3 s each) plus the first backoff step (0.2 s ±25%).
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{session} took {:?}",
            t.elapsed()
        );
    }
    let restarted: Vec<String> = w
        .company_events()
        .iter()
        .filter(|e| e["event_type"] == "agent.restarted")
        .map(|e| e["data"]["agent"].as_str().unwrap().to_string())
        .collect();
    assert!(restarted.contains(&"myproject/supervisor".to_string()));
    assert!(restarted.contains(&"myproject/qa".to_string()));
    // And the company still works.
    let id = w.create("after the restarts", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "closed", 30);
}

#[test]
fn operations_killed_and_started_again_adopts_without_duplicates_and_a_second_start_is_refused() {
    let w = World::new("hang.sh", "").fast();
    w.start_operations();
    let err = w.co(&["operations", "start"]).fails(5).to_string();
    assert!(err.contains("already running (pid"), "{err}");
    let id = w.create("keeps a worker busy", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    wait_for(Duration::from_secs(10), "supervisor and qa up", || {
        let s = w.sessions();
        (s.contains(&"supervisor-myproject".into()) && s.contains(&"qa-myproject".into()))
            .then_some(())
    });
    let pane_pid = |s: &str| {
        w.tmux(&[
            "display-message",
            "-p",
            "-t",
            &format!("={s}:"),
            "#{pane_pid}",
        ])
        .stdout
        .trim()
        .to_string()
    };
    let before = (
        pane_pid("supervisor-myproject"),
        pane_pid("qa-myproject"),
        pane_pid("worker-myproject-slot0"),
    );
    let ops = w.co(&["operations", "status", "--json"]).json();
    let pid = ops["pid"].as_u64().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    w.wait_no_session("operations", 5);
    assert_eq!(
        w.co(&["operations", "status", "--json"]).json()["running"],
        false
    );
    w.start_operations();
    std::thread::sleep(Duration::from_millis(1200));
    let after = (
        pane_pid("supervisor-myproject"),
        pane_pid("qa-myproject"),
        pane_pid("worker-myproject-slot0"),
    );
    assert_eq!(
        before, after,
        "the running sessions were adopted, not replaced"
    );
    let sessions = w.sessions();
    for name in [
        "operations",
        "supervisor-myproject",
        "qa-myproject",
        "worker-myproject-slot0",
    ] {
        assert_eq!(
            sessions.iter().filter(|s| *s == name).count(),
            1,
            "{sessions:?}"
        );
    }
    let started = w
        .company_events()
        .into_iter()
        .rfind(|e| e["event_type"] == "operations.started")
        .unwrap();
    let adopted: Vec<&str> = started["data"]["adopted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        adopted.contains(&"supervisor-myproject") && adopted.contains(&"qa-myproject"),
        "{adopted:?}"
    );
    // A second supervisor for the same factory cannot run.
    let dup = w.co(&["supervisor", "run", "myproject"]);
    assert_eq!(dup.code, 5, "{}", dup.stderr);
    assert!(dup.stderr.contains("already running"));
}

#[test]
fn a_stale_worker_done_from_an_earlier_incarnation_is_ignored() {
    let w = World::new("hang.sh", World::CHECK_GATE).fast();
    w.start_operations();
    let id = w.create("in progress", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "in_progress", 10);
    let branch = format!("vermas/{id}");
    w.co(&[
        "send",
        "myproject/supervisor",
        "-s",
        "WORKER_DONE (stale)",
        "-m",
        "from an old worker",
        "--type",
        "WORKER_DONE",
        "--meta",
        &format!("work_order={id}"),
        "--meta",
        &format!("branch={branch}"),
        "--meta",
        "incarnation=inc-0ld0ld0ld",
    ])
    .ok();
    wait_for(Duration::from_secs(10), "the supervisor to read it", || {
        events_of(&w, "patrol.completed")
            .iter()
            .any(|e| {
                e["data"]["ignored"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x.as_str().unwrap().contains("stale")))
            })
            .then_some(())
    });
    assert_eq!(w.status_of(&id), "in_progress");
    assert!(
        events_of(&w, "qa.enqueued").is_empty(),
        "nothing went to QA"
    );
    assert!(
        !w.factory_events()
            .iter()
            .any(|e| e["data"]["type"] == "READY_FOR_QA")
    );
}

#[test]
fn a_gate_that_hangs_is_timed_out_and_sent_back() {
    let w = World::new(
        "good.sh",
        "[[gates]]\nname = \"slow\"\ncommand = \"sleep 60\"\ntimeout_seconds = 1\n\n[worker]\nmax_attempts = 1\n",
    )
    .fast();
    w.start_operations();
    let id = w.create("meets a slow gate", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "failed", 40);
    let gate = events_of(&w, "qa.gate_run");
    assert_eq!(gate[0]["data"]["timed_out"], true);
    assert_eq!(gate[0]["data"]["passed"], false);
    assert!(gate[0]["data"]["duration_ms"].as_u64().unwrap() < 10_000);
    let rr = events_of(&w, "qa.rework_requested");
    assert_eq!(rr[0]["data"]["timed_out"], true);
    let wo = w.wo(&["show", &id, "--json"]).json();
    assert!(
        wo["last_failure"].as_str().unwrap().contains("timed out"),
        "{wo}"
    );
    assert!(
        !w.target_log().iter().any(|s| s.contains(&id)),
        "never merged"
    );
}

#[test]
fn without_gates_nothing_is_merged_until_gates_are_configured() {
    let w = World::new("good.sh", "").fast();
    w.start_operations();
    let id = w.create("needs gates", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "blocked", 30);
    let wo = w.wo(&["show", &id, "--json"]).json();
    let why = wo["last_failure"].as_str().unwrap();
    assert!(
        why.contains("[[gates]]") && why.contains("config.toml"),
        "{why}"
    );
    assert_eq!(w.target_log().len(), 1, "nothing merged");
    w.append_factory_config(World::CHECK_GATE);
    w.wait_status(&id, "closed", 30);
    assert!(w.target_log()[0].contains(&id));
}

#[test]
fn qa_killed_during_a_merge_never_leaves_the_target_half_merged_and_retries() {
    let w = World::new(
        "good.sh",
        "[[gates]]\nname = \"slow\"\ncommand = \"sleep 2\"\ntimeout_seconds = 30\n",
    )
    .fast();
    w.start_operations();
    let main_before = git(&w.factory_dir(), &["rev-parse", "main"]);
    let id = w.create("merge me", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    // Wait until QA has merged in its worktree and is running the gate.
    let qa_wt = w.factory_dir().join("qa");
    wait_for(Duration::from_secs(20), "QA running the gate", || {
        let head = git(&qa_wt, &["rev-parse", "HEAD"]);
        (head != main_before).then_some(())
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
    // Operations restarts QA, which resets its worktree and merges again.
    w.wait_status(&id, "closed", 40);
    let merges: Vec<String> = w
        .target_log()
        .into_iter()
        .filter(|s| s.starts_with("Merge"))
        .collect();
    assert_eq!(merges.len(), 1, "merged exactly once: {merges:?}");
    assert!(
        w.company_events()
            .iter()
            .any(|e| e["event_type"] == "agent.restarted" && e["data"]["agent"] == "myproject/qa")
    );
}

#[test]
fn a_supervisor_that_keeps_dying_is_escalated_once_and_left_stopped() {
    let w = World::new(
        "good.sh",
        "[runtimes.broken]\ncommand = [\"sh\", \"-c\", \"echo broken; exit 3\"]\n[roles.supervisor]\nruntime = \"broken\"\n",
    )
    .fast();
    w.edit_company_config("max_restarts = 5", "max_restarts = 3");
    w.start_operations();
    wait_for(Duration::from_secs(30), "an escalation", || {
        ceo_mail(&w)
            .into_iter()
            .find(|m| m["type"] == "ESCALATION")
            .map(|_| ())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let esc: Vec<_> = ceo_mail(&w)
        .into_iter()
        .filter(|m| m["type"] == "ESCALATION")
        .collect();
    assert_eq!(esc.len(), 1, "deduplicated: {esc:?}");
    assert_eq!(esc[0]["meta"]["agent"], "myproject/supervisor");
    let ce = w.company_events();
    let restarts = ce
        .iter()
        .filter(|e| {
            e["event_type"] == "agent.restarted" && e["data"]["agent"] == "myproject/supervisor"
        })
        .count();
    assert_eq!(
        restarts, 2,
        "three failures: started once, restarted twice, then given up"
    );
    assert!(ce.iter().any(|e| e["event_type"] == "agent.escalated"));
    let st = w.co(&["operations", "status", "--json"]).json();
    let sup = st["factories"]["myproject"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["session"] == "supervisor-myproject")
        .unwrap()
        .clone();
    assert_eq!(sup["escalated"], true);
    assert!(w.co(&["operations", "status"]).ok().contains("ESCALATED"));
    // QA of the same factory is unaffected.
    assert!(w.sessions().contains(&"qa-myproject".to_string()));
}

#[test]
fn operations_picks_up_a_new_factory_without_a_restart() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    w.start_operations();
    w.add_factory("second", "sc", "good.sh", World::CHECK_GATE);
    wait_for(
        Duration::from_secs(10),
        "the new factory's sessions",
        || {
            let s = w.sessions();
            (s.contains(&"supervisor-second".into()) && s.contains(&"qa-second".into()))
                .then_some(())
        },
    );
    let id =
        vermas_tests::created_id(&w.wo_in("second", &["create", "--title", "in the new factory"]));
    w.co(&["dispatch", &id, "second"]).ok();
    wait_for(Duration::from_secs(30), "merged in the new factory", || {
        (w.wo_in("second", &["show", &id, "--json"]).json()["status"] == "closed").then_some(())
    });
}

#[test]
fn qa_pushes_the_target_when_the_factory_has_a_remote() {
    let w = World::new("good.sh", "").fast();
    // A bare remote to push to, and a factory cloned from it with push on.
    let remote = w.sb.path().join("remote.git");
    git(
        w.sb.path(),
        &[
            "clone",
            "-q",
            "--bare",
            w.origin.to_str().unwrap(),
            remote.to_str().unwrap(),
        ],
    );
    w.add_factory("pushed", "pu", "good.sh", World::CHECK_GATE);
    // Re-point the new factory at the bare remote and turn pushing on.
    let pushed = w.root.join("pushed");
    git(
        &pushed,
        &["remote", "set-url", "origin", remote.to_str().unwrap()],
    );
    let cfg = pushed.join(".work/config.toml");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("push = false", "push = true");
    fs::write(&cfg, text).unwrap();
    w.start_operations();
    let id = vermas_tests::created_id(&w.wo_in("pushed", &["create", "--title", "pushed work"]));
    w.co(&["dispatch", &id, "pushed"]).ok();
    wait_for(Duration::from_secs(30), "merged", || {
        (w.wo_in("pushed", &["show", &id, "--json"]).json()["status"] == "closed").then_some(())
    });
    let merge = w.wo_in("pushed", &["show", &id, "--json"]).json()["merge_commit"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        git(&remote, &["rev-parse", "main"]),
        merge,
        "the remote's main is the merge commit"
    );
    let merged = w.root.join("pushed/.work");
    let ev = vermas_tests::read_events(&merged)
        .into_iter()
        .find(|e| e["event_type"] == "qa.merged")
        .unwrap();
    assert_eq!(ev["data"]["pushed"], true);
}

#[test]
fn two_operations_starts_at_the_same_moment_leave_exactly_one_daemon() {
    let w = World::new("good.sh", "").fast();
    let spawn = || {
        w.sb.command(vermas_tests::bin("co"))
            .args(["operations", "start"])
            .current_dir(&w.root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let codes: Vec<i32> = [a, b]
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![0, 5],
        "one starts, the other is told it runs: {codes:?}"
    );
    let st = w.co(&["operations", "status", "--json"]).json();
    assert_eq!(st["running"], true, "{st}");
    assert_eq!(
        w.sessions().iter().filter(|s| *s == "operations").count(),
        1
    );
}

#[test]
fn editing_the_config_of_a_running_company_takes_effect_without_a_restart() {
    let w = World::new(
        "hang.sh",
        "[worker]\nidle_timeout_minutes = 10\nstuck_timeout_minutes = 20\n",
    )
    .fast();
    w.start_operations();
    let id = w.create("Hangs", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    std::thread::sleep(Duration::from_secs(2));
    let idle_nudges = |w: &World| {
        events_of(w, "agent.nudged")
            .into_iter()
            .filter(|e| e["data"]["reason"] == "idle")
            .count()
    };
    assert_eq!(idle_nudges(&w), 0, "10 minutes of idle allowed so far");
    // A new idle threshold: the running supervisor nudges at once.
    let cfg = w.factory_dir().join(".work/config.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    fs::write(
        &cfg,
        text.replace("idle_timeout_minutes = 10", "idle_timeout_minutes = 0.02")
            .replace(
                "[runtimes.scripted]\n",
                "[runtimes.scripted]\nenv = { VERMAS_TEST_MARK = \"v2\" }\n",
            ),
    )
    .unwrap();
    wait_for(Duration::from_secs(15), "an idle nudge", || {
        (idle_nudges(&w) > 0).then_some(())
    });
    // New runtime env for the next start: the supervisor restarts the worker it loses.
    w.tmux(&["kill-session", "-t", "=worker-myproject-slot0"]);
    let pid = wait_for(Duration::from_secs(15), "the worker restarted", || {
        let out = w.tmux(&[
            "list-panes",
            "-t",
            "=worker-myproject-slot0:",
            "-F",
            "#{pane_pid}",
        ]);
        (out.code == 0)
            .then(|| out.stdout.trim().parse::<u32>().ok())
            .flatten()
    });
    // The pane starts as `co exec-agent`, which reads the private environment file and then
    // becomes the agent: read the environment once the exec happened.
    let env = wait_for(Duration::from_secs(5), "the agent's environment", || {
        fs::read(format!("/proc/{pid}/environ"))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .filter(|e| e.contains("WORK_ORDER_ID="))
    });
    assert!(
        env.contains("VERMAS_TEST_MARK=v2"),
        "the new env reached the agent"
    );
    // An invalid edit keeps the last good settings and is escalated once, naming the file.
    let good = fs::read_to_string(&cfg).unwrap();
    fs::write(&cfg, format!("{good}\n[worker]\nmax_attempts = \"many\"\n")).unwrap();
    let escalations = |w: &World| -> Vec<serde_json::Value> {
        w.company_events()
            .into_iter()
            .filter(|e| {
                e["event_type"] == "mail.sent"
                    && e["data"]["subject"]
                        .as_str()
                        .unwrap()
                        .contains("settings file is invalid")
            })
            .collect()
    };
    let mail = wait_for(Duration::from_secs(15), "the config escalation", || {
        escalations(&w).into_iter().next()
    });
    let body = mail["data"]["body"].as_str().unwrap();
    assert!(body.contains(".work/config.toml:"), "file and line: {body}");
    // The loops carry on with the settings from before the edit.
    let before = events_of(&w, "patrol.completed").len();
    w.tmux(&["kill-session", "-t", "=worker-myproject-slot0"]);
    wait_for(
        Duration::from_secs(15),
        "the supervisor still at work",
        || {
            (events_of(&w, "patrol.completed").len() > before
                && w.sessions().contains(&"worker-myproject-slot0".to_string()))
            .then_some(())
        },
    );
    assert_eq!(escalations(&w).len(), 1, "escalated once");
    let shown = w.co(&["config", "show"]);
    assert!(
        shown
            .ok()
            .lines()
            .any(|l| l.starts_with("# supervisor-myproject (pid ")
                && l.contains("the settings from before this invalid edit")
                && l.contains(".work/config.toml:")),
        "{}",
        shown.stdout
    );
}

#[test]
fn a_branch_that_changes_the_gate_script_waits_for_a_persons_approval() {
    let w = World::new(
        "good.sh",
        &format!("{}\n[worker]\nmax_attempts = 2\n", World::CHECK_GATE),
    )
    .fast();
    w.start_operations();
    let main_before = git(&w.factory_dir(), &["rev-parse", "main"]);
    // The worker "fixes" the gate instead of the code.
    let id = w.create(
        "cheat",
        &["--label", "file:check.sh", "--label", "line:true"],
    );
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "needs_approval", 30);
    let wo = w.wo(&["show", &id, "--json"]).json();
    assert!(
        wo["last_failure"].as_str().unwrap().contains("check.sh"),
        "{wo}"
    );
    assert_eq!(
        git(&w.factory_dir(), &["rev-parse", "main"]),
        main_before,
        "not merged on its own"
    );
    let asks: Vec<_> = ceo_mail(&w)
        .into_iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .starts_with("APPROVAL NEEDED")
        })
        .collect();
    assert_eq!(asks.len(), 1, "{asks:?}");
    assert!(
        w.wo(&["list", "--status", "needs_approval", "--json"])
            .ok()
            .contains(&id)
    );
    // A worker cannot approve for itself.
    w.co_as(
        &w.root,
        &[("AGENT_ID", "myproject/workers/slot0")],
        &["approve", &id],
    )
    .fails(4);
    // A person can.
    w.co(&["approve", &id]).ok();
    w.wait_status(&id, "closed", 30);
    let ev = w
        .factory_dir()
        .join(format!(".work/evidence/{id}/1/changed-paths.txt"));
    assert!(
        std::fs::read_to_string(ev).unwrap().contains("check.sh"),
        "the merge's evidence names the paths it changed"
    );
}

#[test]
fn a_branch_that_changes_protected_tests_can_be_rejected_back_to_a_worker() {
    let w = World::new(
        "good.sh",
        &format!("{}\n[worker]\nmax_attempts = 3\n", World::CHECK_GATE),
    )
    .fast();
    w.start_operations();
    let id = w.create(
        "touches tests",
        &["--label", "file:tests/weak.txt", "--label", "line:assert"],
    );
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "needs_approval", 30);
    w.co(&["reject", &id]).fails(2);
    w.co(&["reject", &id, "--reason", "leave the tests alone"])
        .ok();
    // Back to a worker with the reason in its prompt; it comes back for approval again.
    wait_for(Duration::from_secs(30), "another attempt", || {
        let wo = w.wo(&["show", &id, "--json"]).json();
        (wo["attempts"] == 2).then_some(())
    });
    let wo = w.wo(&["show", &id, "--json"]).json();
    assert!(
        wo["last_failure"]
            .as_str()
            .unwrap()
            .contains("leave the tests alone"),
        "{wo}"
    );
}

#[test]
fn objective_only_merges_by_the_gates_and_retention_days_decides_what_operations_archives() {
    let w = World::new(
        "good.sh",
        &format!("{}\n[events]\nretention_days = 36500\n", World::CHECK_GATE),
    )
    .fast();
    let cfg = w.factory_dir().join(".work/config.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("objective_only = false"));
    fs::write(
        &cfg,
        text.replace("objective_only = false", "objective_only = true"),
    )
    .unwrap();
    let shown = w
        .co(&["config", "show", "--factory", "myproject", "--json"])
        .json();
    assert_eq!(
        shown["verification.objective_only"]["value"], true,
        "{shown}"
    );
    // Both stores' first day moved back to 2020: older than the company's 30 days, younger
    // than the factory's 100 years.
    let old_day = |work: &std::path::Path| {
        let events = work.join("events");
        let today = fs::read_dir(&events)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .unwrap();
        fs::rename(&today, events.join("2020-01-01.jsonl")).unwrap();
    };
    let hq =
        w.sb.run_in(
            &w.root,
            "wo",
            &["create", "--title", "company work", "--json"],
        )
        .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
    let id = w.create("objective", &[]);
    old_day(&w.root.join(".work"));
    old_day(&w.factory_dir().join(".work"));
    w.start_operations();
    let company_archive = w.root.join(".work/events/archive/2020-01-01.jsonl");
    wait_for(
        Duration::from_secs(15),
        "the company's old day archived",
        || company_archive.is_file().then_some(()),
    );
    assert!(
        w.factory_dir()
            .join(".work/events/2020-01-01.jsonl")
            .is_file(),
        "the factory keeps its day: retention_days = 36500"
    );
    // QA decides from the gates alone: good work merges.
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "closed", 30);
    // Reads still see the archived day.
    let shown = w.sb.run_in(&w.root, "wo", &["show", &hq, "--json"]).json();
    assert_eq!(shown["title"], "company work");
}

#[test]
fn an_agent_whose_hooks_say_it_works_is_left_alone_and_is_nudged_once_its_turn_ended() {
    // Without hooks, six silent seconds would be stuck (3.6 s) and killed.
    let w = World::new(
        "hooked.sh",
        "[worker]\nidle_timeout_minutes = 0.03\nstuck_timeout_minutes = 0.06\n",
    )
    .fast();
    w.start_operations();
    let id = w.create("works without printing", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    let ended = w.root.join(format!("turn-ended-{id}"));
    let ended_at: i64 = wait_for(Duration::from_secs(30), "the turn's end", || {
        fs::read_to_string(&ended)
            .ok()
            .and_then(|t| t.trim().parse().ok())
    });
    let secs = |e: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    let before: Vec<_> = w
        .factory_events()
        .into_iter()
        .filter(|e| {
            (e["event_type"] == "agent.nudged" || e["event_type"] == "agent.stopped")
                && secs(e) < ended_at
        })
        .collect();
    assert!(before.is_empty(), "left alone while it worked: {before:?}");
    // At its prompt and silent: nudged after the idle threshold.
    wait_for(
        Duration::from_secs(15),
        "an idle nudge after the turn",
        || {
            events_of(&w, "agent.nudged")
                .into_iter()
                .any(|e| e["data"]["reason"] == "idle" && secs(&e) >= ended_at)
                .then_some(())
        },
    );
}
