//! Issue 3 end to end: co init, factories, dispatch into real tmux sessions and git worktrees,
//! workers, assignment, mail, doctor. Real binaries, a private tmux server per test, real git.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::time::Duration;
use vermas_tests::{World, git, read_events};

fn types(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn init_is_safe_twice_and_factory_add_lays_out_the_factory() {
    let w = World::new("good.sh", "");
    let again = w.co(&["init", w.root.to_str().unwrap()]);
    assert!(again.ok().contains("already initialized"));
    let inits = types(&w.company_events())
        .iter()
        .filter(|t| *t == "company.initialized")
        .count();
    assert_eq!(inits, 1);
    for d in [".git", ".work", "workers", "qa", "supervisor", "teams"] {
        assert!(w.factory_dir().join(d).exists(), "{d}");
    }
    for d in [".vermas/config.toml", ".work", "ceo", "logs"] {
        assert!(w.root.join(d).exists(), "{d}");
    }
    assert!(types(&w.company_events()).contains(&"factory.added".to_string()));
    // git worktree list works in the factory directory, QA has its worktree.
    let wts = git(&w.factory_dir(), &["worktree", "list"]);
    assert!(wts.contains("/qa"), "{wts}");
    let list = w.co(&["factory", "list", "--json"]).json();
    assert_eq!(list[0]["name"], "myproject");
    assert_eq!(list[0]["prefix"], "mp");
    assert_eq!(list[0]["slots_total"], 5);
    let st = w.co(&["factory", "status", "myproject", "--json"]).json();
    assert_eq!(st["slots_free"].as_array().unwrap().len(), 5);
}

#[test]
fn factory_add_refuses_bad_input_and_leaves_nothing_behind() {
    let w = World::new("good.sh", "");
    let before: Vec<_> = fs::read_dir(&w.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let origin = w.origin.to_str().unwrap();
    let err = w
        .co(&["factory", "add", "My_Project", origin])
        .fails(2)
        .to_string();
    assert!(
        err.contains("[a-z0-9-]") || err.contains("lowercase"),
        "{err}"
    );
    let err = w
        .co(&["factory", "add", "myproject", origin])
        .fails(5)
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    let err = w
        .co(&["factory", "add", "other", origin, "--prefix", "mp"])
        .fails(5)
        .to_string();
    assert!(err.contains("already used by factory myproject"), "{err}");
    let err = w
        .co(&["factory", "add", "other", "/nonexistent/repo"])
        .fails(3)
        .to_string();
    assert!(err.contains("cannot clone"), "{err}");
    let err = w
        .co(&["factory", "add", "other", "https://invalid.invalid/x.git"])
        .fails(1)
        .to_string();
    assert!(err.contains("cannot clone"), "{err}");
    let err = w
        .co(&["factory", "add", "other", origin, "--branch", "nope"])
        .fails(3)
        .to_string();
    assert!(err.contains("branch \"nope\" not found"), "{err}");
    let after: Vec<_> = fs::read_dir(&w.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "nothing left behind: {after:?}");
}

#[test]
fn config_show_layers_with_origins_and_warns_about_unknown_keys() {
    let w = World::new(
        "good.sh",
        "[worker]\nmax_slots_per_factory = 2\nbogus_key = 1\n",
    );
    let out = w.co(&["config", "show", "--factory", "myproject", "--json"]);
    let v = out.json();
    assert_eq!(v["worker.max_slots_per_factory"]["value"], 2);
    assert!(
        v["worker.max_slots_per_factory"]["source"]
            .as_str()
            .unwrap()
            .contains("myproject/.work/config.toml:")
    );
    assert_eq!(v["roles.ceo.runtime"]["source"], "default");
    assert!(
        v["worker.idle_timeout_minutes"]["source"]
            .as_str()
            .unwrap()
            .contains(".vermas/config.toml:")
    );
    assert!(
        out.stderr.contains("unknown key \"worker.bogus_key\""),
        "{}",
        out.stderr
    );
    let human = w.co(&["config", "show"]);
    assert!(human.ok().contains("company.name = "));
    w.append_factory_config("[operations]\npatrol_interval_seconds = \"soon\"\n");
    let err = w
        .co(&["config", "show", "--factory", "myproject"])
        .fails(2)
        .to_string();
    assert!(
        err.contains("config.toml:") && err.contains("expected a number"),
        "{err}"
    );
}

#[test]
fn dispatch_starts_a_tagged_session_with_the_agent_environment_cwd_and_branch() {
    let w = World::new("hang.sh", "");
    let id = w.create("Fix bug X", &["--type", "bug", "--priority", "1"]);
    let out = w.co(&["dispatch", &id, "myproject"]);
    assert_eq!(
        out.ok().trim(),
        format!("Spawned worker-myproject-slot0, assigned {id}")
    );
    let screen = w.wait_pane("worker-myproject-slot0", "hanging", 10);
    assert!(
        screen.contains("AGENT_ID=myproject/workers/slot0"),
        "{screen}"
    );
    assert!(
        screen.contains("CO_ROLE=worker CO_FACTORY=myproject"),
        "{screen}"
    );
    assert!(screen.contains(&format!("WORK_ORDER_ID={id}")), "{screen}");
    let wt = w.factory_dir().join("workers/slot0");
    assert!(
        screen.contains(&format!("PWD={}", wt.display())),
        "{screen}"
    );
    assert!(screen.contains(&format!("BRANCH=vermas/{id}")), "{screen}");
    // Tagged as ours.
    let tag = w.tmux(&[
        "show-options",
        "-v",
        "-t",
        "=worker-myproject-slot0:",
        "@vermas_company",
    ]);
    assert_eq!(tag.stdout.trim(), w.root.display().to_string());
    // The prompt file is there and excluded from git.
    assert!(wt.join(".vermas/PROMPT.md").is_file());
    assert_eq!(git(&wt, &["status", "--porcelain"]), "");
    // The first check of the assignment moved it to in_progress.
    w.wait_status(&id, "in_progress", 10);
    let fe = w.factory_events();
    let t = types(&fe);
    for expected in [
        "slot.allocated",
        "worktree.created",
        "assignment.set",
        "agent.started",
        "assignment.checked",
        "agent.working",
    ] {
        assert!(t.contains(&expected.to_string()), "{expected} in {t:?}");
    }
    let checked = fe
        .iter()
        .find(|e| e["event_type"] == "assignment.checked")
        .unwrap();
    assert!(checked["data"]["response_ms"].as_u64().is_some());
    assert_eq!(checked["data"]["first"], true);
    assert_eq!(checked["actor"], "myproject/workers/slot0");
    let wo = w.wo(&["show", &id, "--json"]).json();
    assert_eq!(wo["assignee"], "myproject/workers/slot0");
    assert_eq!(wo["attempts"], 1);
    assert_eq!(wo["branch"], format!("vermas/{id}"));
    // The assignment file is where the guide says.
    let a = fs::read_to_string(
        w.factory_dir()
            .join(".work/.assignment-myproject-workers-slot0"),
    )
    .unwrap();
    assert!(a.contains(&id));
    // co worker list sees it; dispatching it again is a conflict.
    let list = w.co(&["worker", "list", "--json"]).json();
    assert_eq!(list[0]["work_order"], id.as_str());
    assert_eq!(list[0]["status"], "running");
    w.co(&["dispatch", &id, "myproject"]).fails(5);
    let st = w.co(&["worker", "status", "myproject", "0"]);
    assert!(st.ok().contains("hanging"), "{}", st.stdout);
}

#[test]
fn a_good_worker_finishes_with_worker_done() {
    let w = World::new("good.sh", "");
    let id = w.create("Add a file", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_status(&id, "in_review", 15);
    w.wait_no_session("worker-myproject-slot0", 10);
    let fe = w.factory_events();
    let done = fe
        .iter()
        .find(|e| e["event_type"] == "mail.sent" && e["data"]["type"] == "WORKER_DONE")
        .expect("WORKER_DONE mail");
    assert_eq!(done["data"]["to"], "myproject/supervisor");
    assert_eq!(done["data"]["meta"]["work_order"], id.as_str());
    assert_eq!(done["data"]["meta"]["branch"], format!("vermas/{id}"));
    assert!(done["data"]["meta"]["head"].as_str().unwrap().len() >= 40);
    assert!(
        done["data"]["meta"]["incarnation"]
            .as_str()
            .unwrap()
            .starts_with("inc-")
    );
    let t = types(&fe);
    for e in [
        "assignment.cleared",
        "slot.released",
        "agent.stopped",
        "worktree.removed",
    ] {
        assert!(t.contains(&e.to_string()), "{e}");
    }
    assert!(
        !w.factory_dir()
            .join(".work/.assignment-myproject-workers-slot0")
            .exists()
    );
    assert!(
        !w.factory_dir().join("workers/slot0").exists(),
        "the clean worktree is removed"
    );
    // Moved out of the slot, deleted, and forgotten by git: nothing left on the way out.
    let left: Vec<String> = std::fs::read_dir(w.factory_dir().join("workers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".done-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let wts = git(&w.factory_dir(), &["worktree", "list", "--porcelain"]);
    assert!(
        !wts.contains("workers/") && !wts.contains("prunable"),
        "{wts}"
    );
    // The branch keeps the work for QA.
    let log = git(
        &w.factory_dir(),
        &["log", "--oneline", &format!("vermas/{id}")],
    );
    assert!(log.contains(&format!("Do {id}")), "{log}");
    // The supervisor has mail.
    let inbox = w.co_as(
        &w.root,
        &[("AGENT_ID", "myproject/supervisor")],
        &["inbox", "--json"],
    );
    let v = inbox.json();
    assert_eq!(v[0]["type"], "WORKER_DONE");
    let st = w.co(&["status", "--json"]).json();
    assert_eq!(st["factories"][0]["unread"]["myproject/supervisor"], 1);
    assert_eq!(st["factories"][0]["slots_used"], 0);
}

#[test]
fn worker_done_refuses_a_dirty_tree_and_a_branch_without_commits() {
    let w = World::new("no-commit.sh", "");
    let id = w.create("Never commits", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    let screen = w.wait_pane("worker-myproject-slot0", "done was refused", 15);
    assert!(
        screen.contains("uncommitted changes (uncommitted-"),
        "{screen}"
    );
    assert_eq!(w.status_of(&id), "in_progress");
    // Run done by hand from the worker's identity with a clean tree and no commits.
    let wt = w.factory_dir().join("workers/slot0");
    fs::remove_file(wt.join(format!("uncommitted-{id}.txt"))).unwrap();
    let inc = w.co(&["worker", "list", "--json"]).json()[0]["incarnation"]
        .as_str()
        .unwrap()
        .to_string();
    let out = w.co_as(
        &wt,
        &[
            ("AGENT_ID", "myproject/workers/slot0"),
            ("VERMAS_INCARNATION", &inc),
        ],
        &["worker", "done"],
    );
    let err = out.fails(5);
    assert!(err.contains("no commits beyond main"), "{err}");
    // A stale incarnation is refused too.
    let out = w.co_as(
        &wt,
        &[
            ("AGENT_ID", "myproject/workers/slot0"),
            ("VERMAS_INCARNATION", "inc-stale"),
        ],
        &["worker", "done"],
    );
    assert!(out.fails(5).contains("not the current one"));
    assert_eq!(w.status_of(&id), "in_progress");
}

#[test]
fn a_session_still_holding_the_free_slots_name_queues_the_work_and_is_left_alone() {
    let w = World::new("hang.sh", "[worker]\nmax_slots_per_factory = 2\n");
    let a = w.create("a", &[]);
    w.co(&["dispatch", &a, "myproject"]).ok();
    // Slot 1 is free in the log, but a session (a worker that reported done and has not
    // exited yet, or one someone started by hand) still has its name.
    w.tmux(&[
        "new-session",
        "-d",
        "-s",
        "worker-myproject-slot1",
        "sleep",
        "600",
    ])
    .ok();
    let b = w.create("b", &[]);
    let out = w.co(&["dispatch", &b, "myproject"]);
    assert!(
        out.ok().contains(&format!("{b} queued, position 1 of 1")),
        "{}",
        out.stdout
    );
    assert_eq!(w.status_of(&b), "queued");
    assert!(w.sessions().contains(&"worker-myproject-slot1".to_string()));
    let pane = w.tmux(&[
        "list-panes",
        "-t",
        "worker-myproject-slot1",
        "-F",
        "#{pane_current_command}",
    ]);
    assert_eq!(pane.ok().trim(), "sleep");
    // Nothing was left in the slot by the attempt: no directory, no branch, no assignment.
    assert!(!w.factory_dir().join("workers").join("slot1").exists());
    w.co(&["dispatch", &b, "myproject", "--no-queue"]).fails(5);
    // Once that session is gone, the queued work goes to the slot.
    w.tmux(&["kill-session", "-t", "worker-myproject-slot1"])
        .ok();
    let out = w.co(&["dispatch", &b, "myproject"]);
    assert!(
        out.ok().contains("Spawned worker-myproject-slot1"),
        "{}",
        out.stdout
    );
}

#[test]
fn queued_work_that_gained_a_dependency_does_not_hold_up_the_queue() {
    let w = World::new("hang.sh", "[worker]\nmax_slots_per_factory = 1\n");
    let a = w.create("a", &[]);
    w.co(&["dispatch", &a, "myproject"]).ok();
    let urgent = w.create("urgent", &["--priority", "0"]);
    // Ahead of `a`, which the kill below puts back in the queue at P2.
    let later = w.create("later", &["--priority", "1"]);
    w.co(&["dispatch", &urgent, "myproject"]).ok();
    w.co(&["dispatch", &later, "myproject"]).ok();
    // The queue head now waits on work that is not done.
    let prereq = w.create("prerequisite", &[]);
    w.wo(&["dep", "add", &urgent, &prereq]).ok();
    w.co(&["worker", "kill", "myproject", "0"]).ok();
    let out = w.co(&["dispatch", &later, "myproject"]);
    assert!(
        out.ok()
            .contains(&format!("Spawned worker-myproject-slot0, assigned {later}")),
        "{}",
        out.stdout
    );
    assert_eq!(w.status_of(&urgent), "queued");
}

/// Dispatch starts `git worktree add` before it has read the work order (the index takes a
/// few milliseconds git would wait for); each way a dispatch can turn out otherwise takes that
/// worktree and its branch back before the locks go.
#[test]
fn git_started_early_is_taken_back_when_the_dispatch_turns_out_otherwise() {
    let w = World::new("hang.sh", "[worker]\nmax_slots_per_factory = 1\n");
    let f = w.factory_dir();
    let worktrees = || git(&f, &["worktree", "list", "--porcelain"]);
    let before = worktrees();
    let left = |what: &str| {
        assert!(
            !f.join("workers/slot0").exists(),
            "{what}: a slot directory"
        );
        assert!(
            !git(&f, &["branch", "--list"]).contains("vermas/"),
            "{what}: a branch"
        );
        assert_eq!(worktrees(), before, "{what}: a worktree");
        assert!(w.sessions().is_empty(), "{what}: a session");
    };
    // A well-formed id that is no work order.
    w.co(&["dispatch", "mp-zzzzzz", "myproject"]).fails(3);
    left("missing");
    // Work that is done, and work waiting on work that is not.
    let done = w.create("done", &[]);
    w.wo(&["close", &done]).ok();
    w.co(&["dispatch", &done, "myproject"]).fails(5);
    left("closed");
    let waiting = w.create("waiting", &[]);
    let prereq = w.create("prerequisite", &[]);
    w.wo(&["dep", "add", &waiting, &prereq]).ok();
    w.co(&["dispatch", &waiting, "myproject"]).fails(5);
    left("waiting");
    // The free slot goes to more urgent queued work: git started for the other is undone and
    // the slot is made again for the head of the queue.
    let a = w.create("a", &[]);
    w.co(&["dispatch", &a, "myproject"]).ok();
    let urgent = w.create("urgent", &["--priority", "0"]);
    w.co(&["dispatch", &urgent, "myproject"]).ok();
    w.co(&["worker", "kill", "myproject", "0"]).ok();
    let late = w.create("late", &[]);
    let out = w.co(&["dispatch", &late, "myproject"]);
    let text = out.ok();
    assert!(
        text.contains(&format!(
            "Spawned worker-myproject-slot0, assigned {urgent}"
        )),
        "{text}"
    );
    let branches = git(&f, &["branch", "--list"]);
    assert!(branches.contains(&format!("vermas/{urgent}")), "{branches}");
    assert!(!branches.contains(&format!("vermas/{late}")), "{branches}");
    assert_eq!(w.status_of(&late), "queued");
}

#[test]
fn a_full_factory_queues_and_the_queue_drains_in_priority_order() {
    let w = World::new("hang.sh", "[worker]\nmax_slots_per_factory = 2\n");
    let a = w.create("a", &[]);
    let b = w.create("b", &[]);
    w.co(&["dispatch", &a, "myproject"]).ok();
    w.co(&["dispatch", &b, "myproject"]).ok();
    let low = w.create("low", &["--priority", "3"]);
    let high = w.create("high", &["--priority", "0"]);
    let q1 = w.co(&["dispatch", &low, "myproject"]);
    assert!(
        q1.ok().contains(&format!("{low} queued, position 1 of 1")),
        "{}",
        q1.stdout
    );
    let q2 = w.co(&["dispatch", &high, "myproject"]);
    assert!(
        q2.ok().contains(&format!("{high} queued, position 1 of 2")),
        "{}",
        q2.stdout
    );
    assert_eq!(w.status_of(&low), "queued");
    w.co(&["dispatch", &low, "myproject", "--no-queue"])
        .fails(5);
    let st = w.co(&["factory", "status", "myproject", "--json"]).json();
    let q: Vec<&str> = st["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(q, vec![high.as_str(), low.as_str()]);
    // A slot frees up; dispatching the low one gives the slot to the more urgent one.
    w.co(&["worker", "kill", "myproject", "0"]).ok();
    let out = w.co(&["dispatch", &low, "myproject"]);
    let text = out.ok();
    assert!(
        text.contains(&format!("Spawned worker-myproject-slot0, assigned {high}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{low} queued in myproject behind more urgent work"
        )),
        "{text}"
    );
    assert_eq!(
        w.wo(&["show", &high, "--json"]).json()["assignee"],
        "myproject/workers/slot0"
    );
    // The killed one went back to the queue, ahead of `low` (older, same priority as b).
    assert_eq!(w.status_of(&a), "queued");
    w.co(&["worker", "kill", "myproject", "1"]).ok();
    let out = w.co(&["dispatch", &low, "myproject"]);
    assert!(
        out.ok().contains(&format!("assigned {a}")),
        "{}",
        out.stdout
    );
}

#[test]
fn kill_keeps_unmerged_work_and_the_next_dispatch_brings_it_back() {
    let w = World::new("hang.sh commit", "");
    let id = w.create("Commits then hangs", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "committed", 15);
    let out = w.co(&["worker", "kill", "myproject", "slot0"]);
    let text = out.ok();
    assert!(text.contains(&format!("{id} re-queued")), "{text}");
    assert!(text.contains("1 commit(s) not in main"), "{text}");
    w.wait_no_session("worker-myproject-slot0", 5);
    let parked = w.factory_dir().join(format!("workers/parked/{id}"));
    assert!(
        parked.join(format!("work-{id}.txt")).is_file(),
        "kept worktree"
    );
    assert_eq!(w.status_of(&id), "queued");
    assert!(
        w.co(&["worker", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    let released = w
        .factory_events()
        .into_iter()
        .find(|e| e["event_type"] == "slot.released")
        .unwrap();
    assert_eq!(
        released["data"]["worktree_kept"],
        parked.display().to_string()
    );
    // Dispatch again: the parked worktree returns with its commit.
    w.co(&["dispatch", &id, "myproject"]).ok();
    let wt = w.factory_dir().join("workers/slot0");
    assert!(wt.join(format!("work-{id}.txt")).is_file());
    assert!(!parked.exists());
    assert_eq!(w.wo(&["show", &id, "--json"]).json()["attempts"], 2);
    // --force removes the worktree but never the branch holding unmerged commits.
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    w.co(&["worker", "kill", "myproject", "0", "--force"]).ok();
    assert!(!wt.exists());
    assert!(
        git(
            &w.factory_dir(),
            &["branch", "--list", &format!("vermas/{id}")]
        )
        .contains(&id)
    );
    // Killing an empty slot is "not found".
    w.co(&["worker", "kill", "myproject", "3"]).fails(3);
    w.co(&["worker", "kill", "myproject", "9"]).fails(3);
}

#[test]
fn worker_spawn_restarts_a_dead_worker_with_a_new_incarnation() {
    let w = World::new("hang.sh", "");
    let id = w.create("hang", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    let inc1 = w.co(&["worker", "list", "--json"]).json()[0]["incarnation"]
        .as_str()
        .unwrap()
        .to_string();
    w.co(&["worker", "spawn", "myproject", "0"]).fails(5);
    w.tmux(&["kill-session", "-t", "=worker-myproject-slot0"]);
    let list = w
        .co(&["worker", "list", "--status", "dead", "--json"])
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = w.co(&["worker", "spawn", "myproject", "--verbose"]);
    assert!(out.ok().contains(&format!("assigned {id}")));
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    let inc2 = w.co(&["worker", "list", "--json"]).json()[0]["incarnation"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(inc1, inc2);
    assert!(types(&w.factory_events()).contains(&"agent.restarted".to_string()));
}

#[test]
fn a_missing_runtime_program_refuses_and_leaves_nothing_behind() {
    let w = World::new(
        "good.sh",
        "[runtimes.ghost]\ncommand = [\"no-such-agent-cli-xyz\", \"--go\"]\n",
    );
    let id = w.create("x", &[]);
    let before = w.factory_events().len();
    let err = w
        .co(&["dispatch", &id, "myproject", "--runtime", "ghost"])
        .fails(3)
        .to_string();
    assert!(err.contains("no-such-agent-cli-xyz"), "{err}");
    assert!(err.contains("runtimes.ghost.command"), "{err}");
    assert_eq!(w.factory_events().len(), before);
    assert_eq!(w.status_of(&id), "open");
    assert!(!w.factory_dir().join("workers/slot0").exists());
    assert!(!git(&w.factory_dir(), &["branch", "--list"]).contains("vermas/"));
    assert!(w.sessions().is_empty());
    // The default worker runtime (claude) is not installed here either: the key to change is named.
    let w2 = World::new("good.sh", "");
    w2.append_factory_config("");
    let cfg = w2.factory_dir().join(".work/config.toml");
    let text = fs::read_to_string(&cfg)
        .unwrap()
        .replace("runtime = \"scripted\"", "runtime = \"claude\"");
    fs::write(&cfg, text).unwrap();
    if vermas_core::effects::tmux::find_program("claude").is_none() {
        let id2 = w2.create("y", &[]);
        let err = w2.co(&["dispatch", &id2, "myproject"]).fails(3).to_string();
        assert!(
            err.contains("\"claude\"") && err.contains("roles.worker.runtime"),
            "{err}"
        );
    }
}

#[test]
fn hostile_titles_and_mail_are_never_executed_or_typed_as_keys() {
    let w = World::new("hang.sh", "");
    let marker = w.sb.path().join("pwned");
    let title = format!(
        "$(touch {m}) `touch {m}` C-c Enter -t other",
        m = marker.display()
    );
    let id = w.create(&title, &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    let prompt =
        fs::read_to_string(w.factory_dir().join("workers/slot0/.vermas/PROMPT.md")).unwrap();
    assert!(
        prompt.contains(&title),
        "the prompt file holds the title verbatim"
    );
    // Mail with a hostile body is stored exactly; only a fixed note (if any) is typed.
    let body = format!(
        "line1\n$(touch {m})\nC-c\nEnter\n-t other",
        m = marker.display()
    );
    w.co(&[
        "send",
        "myproject/workers/slot0",
        "-s",
        "hello `id`",
        "-m",
        &body,
    ])
    .ok();
    // A one-line nudge is typed literally: key names stay text, `-t` is not an option.
    let text = format!(
        "-t other $(touch {}) C-c Enter end-of-nudge",
        marker.display()
    );
    let n = w.co(&["nudge", "myproject/workers/slot0", &text]);
    assert!(
        n.ok().contains("Nudged myproject/workers/slot0"),
        "{}",
        n.stdout
    );
    let after = w.wait_pane("worker-myproject-slot0", "end-of-nudge", 10);
    assert!(
        after.contains("C-c Enter end-of-nudge"),
        "typed literally: {after}"
    );
    // A multi-line nudge goes to a file; its newlines are never typed.
    let n = w.co(&["nudge", "myproject/workers/slot0", "first\nsecond line C-c"]);
    assert!(n.ok().contains("Wrote the message to"), "{}", n.stdout);
    let after = w.wait_pane("worker-myproject-slot0", "read it now.", 10);
    assert!(!after.contains("second line C-c"), "{after}");
    assert!(!marker.exists(), "nothing was executed");
    assert!(
        w.sessions().contains(&"worker-myproject-slot0".to_string()),
        "C-c was not pressed"
    );
    let nudges: Vec<_> = w
        .factory_events()
        .into_iter()
        .filter(|e| e["event_type"] == "agent.nudged")
        .collect();
    assert!(
        nudges.iter().all(|e| e["data"]["delivered"] == true),
        "{nudges:?}"
    );
    let msgs = read_events(&w.factory_dir().join(".work"));
    let m = msgs
        .iter()
        .find(|e| e["event_type"] == "mail.sent")
        .unwrap();
    assert_eq!(m["data"]["body"], body.as_str());
    // Reading it shows the text, with control characters made visible.
    let id_msg = m["data"]["id"].as_str().unwrap();
    let read = w.co_as(
        &w.root,
        &[("AGENT_ID", "myproject/workers/slot0")],
        &["read", id_msg],
    );
    assert!(read.ok().contains("$(touch"));
}

#[test]
fn mail_send_inbox_read_archive_and_bad_addresses() {
    let w = World::new("good.sh", "");
    w.co(&[
        "send",
        "myproject/supervisor",
        "-s",
        "normal one",
        "-m",
        "b1",
    ])
    .ok();
    w.co(&[
        "send",
        "myproject/supervisor",
        "-s",
        "urgent one",
        "-m",
        "b2",
        "--priority",
        "urgent",
        "--type",
        "ESCALATION",
        "--meta",
        "work_order=mp-abcdef",
    ])
    .ok();
    let sup = |args: &[&str]| {
        let o = w.co_as(&w.root, &[("AGENT_ID", "myproject/supervisor")], args);
        (o.code, o.stdout)
    };
    let (_, inbox) = sup(&["inbox", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&inbox).unwrap();
    assert_eq!(v[0]["subject"], "urgent one", "urgent first");
    assert_eq!(v[0]["meta"]["work_order"], "mp-abcdef");
    assert_eq!(v[0]["from"], "ceo");
    let first = v[0]["id"].as_str().unwrap().to_string();
    let (code, text) = sup(&["read", &first]);
    assert_eq!(code, 0);
    assert!(text.contains("b2"));
    let (_, unread) = sup(&["inbox", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&unread)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, all) = sup(&["inbox", "--all", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&all)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (code, _) = sup(&["archive", &first]);
    assert_eq!(code, 0);
    let (_, all) = sup(&["inbox", "--all", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&all)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Addresses.
    w.co(&["send", "nosuch/supervisor", "-s", "x", "-m", "y"])
        .fails(3);
    w.co(&["send", "myproject/workers/slot9", "-s", "x", "-m", "y"])
        .fails(3);
    w.co(&["send", "myproject/janitor", "-s", "x", "-m", "y"])
        .fails(2);
    w.co(&["send", "ceo", "-s", "two\nlines", "-m", "y"])
        .fails(2);
    w.co(&["send", "ceo", "-s", "p", "-m", "y", "--priority", "asap"])
        .fails(2);
    w.co(&["read", "msg-nothere"]).fails(3);
    w.co(&["send", "ceo", "-s", "for the ceo", "-m", "hi"]).ok();
    let inbox = w.co(&["inbox", "--json"]).json();
    assert_eq!(inbox[0]["subject"], "for the ceo");
}

#[test]
fn doctor_finds_an_orphaned_assignment_and_a_stale_worktree_and_fix_repairs_them() {
    let w = World::new("good.sh", "");
    let healthy = w.co(&["doctor"]);
    assert_eq!(healthy.code, 0, "{}", healthy.stdout);
    // An orphaned assignment: a file for a slot no worker holds.
    fs::write(
        w.factory_dir().join(".work/.assignment-myproject-workers-slot3"),
        r#"{"agent":"myproject/workers/slot3","kind":"work_order","work_order":"mp-zzzzzz","title":"t","priority":2,"factory":"myproject","incarnation":"inc-x","attempt":1,"branch":"vermas/mp-zzzzzz","worktree":"","set_at":"2026-01-01T00:00:00.000Z"}"#,
    )
    .unwrap();
    // A stale worktree: registered, directory gone.
    let stale = w.factory_dir().join("workers/slot4");
    git(
        &w.factory_dir(),
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            stale.to_str().unwrap(),
            "main",
        ],
    );
    fs::remove_dir_all(&stale).unwrap();
    let out = w.co(&["doctor"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .contains("orphaned assignment: myproject/workers/slot3"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("stale worktree"), "{}", out.stdout);
    let fixed = w.co(&["doctor", "--fix"]);
    assert_eq!(fixed.code, 0, "{}", fixed.stdout);
    assert!(fixed.stdout.contains("fixed: removed orphaned assignment"));
    assert!(fixed.stdout.contains("fixed: pruned 1 stale worktree"));
    assert!(w.co(&["doctor", "--json"]).json()["ok"].as_bool().unwrap());
}

#[test]
fn the_guides_recovery_steps_let_dispatch_reclaim_a_lost_worker() {
    let w = World::new("hang.sh", "");
    let id = w.create("lost", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    // Emergency stop: the tmux server dies.
    w.tmux(&["kill-server"]);
    // Recovery as the guide says: look at and remove the orphaned assignment, prune, re-dispatch.
    let asg = w
        .factory_dir()
        .join(".work/.assignment-myproject-workers-slot0");
    assert!(fs::read_to_string(&asg).unwrap().contains(&id));
    fs::remove_file(&asg).unwrap();
    git(&w.factory_dir(), &["worktree", "prune"]);
    let out = w.co(&["dispatch", &id, "myproject"]);
    assert!(
        out.ok().contains(&format!("assigned {id}")),
        "{}",
        out.stdout
    );
    let released = w
        .factory_events()
        .into_iter()
        .find(|e| e["event_type"] == "slot.released")
        .unwrap();
    assert!(
        released["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("orphaned")
    );
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
}

#[test]
fn assignment_set_clear_prime_and_status() {
    let w = World::new("good.sh", "");
    let id = w.create("by hand", &[]);
    let out = w.co(&[
        "assignment",
        "set",
        "myproject/workers/slot2",
        &format!("work_order:{id}"),
    ]);
    assert!(out.ok().contains(&id));
    w.co(&["assignment", "set", "myproject/workers/slot2", "bug:x"])
        .fails(2);
    w.co(&["assignment", "set", "bogus", &format!("work_order:{id}")])
        .fails(2);
    let prime = w.co_as(
        &w.root,
        &[("AGENT_ID", "myproject/workers/slot2")],
        &["prime"],
    );
    let p = prime.ok();
    assert!(p.contains("You are a VerMAS worker"));
    assert!(p.contains(&format!("ASSIGNED: {id}")), "{p}");
    let chk = w.co_as(
        &w.root,
        &[("AGENT_ID", "myproject/workers/slot2")],
        &["assignment"],
    );
    assert!(chk.ok().starts_with(&format!("ASSIGNED: {id} \"by hand\"")));
    assert!(
        w.co(&["assignment", "clear", "myproject/workers/slot2"])
            .ok()
            .contains("Cleared")
    );
    let chk = w.co_as(
        &w.root,
        &[("AGENT_ID", "myproject/workers/slot2")],
        &["assignment"],
    );
    assert_eq!(chk.ok().trim(), "Assignment is empty");
    let st = w.co(&["status"]);
    assert!(
        st.ok()
            .contains("Factory myproject (prefix mp, target branch main)")
    );
    // co ceo without an installed claude says which key to change.
    if vermas_core::effects::tmux::find_program("claude").is_none() {
        let err = w.co(&["ceo", "--no-attach"]).fails(3).to_string();
        assert!(err.contains("roles.ceo.runtime"), "{err}");
    }
}

#[test]
fn the_default_tmux_server_is_untouched_when_a_private_socket_is_set() {
    let w = World::new("hang.sh", "");
    let id = w.create("private", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    // Every session is on the private server, none on the default one (in this sandbox's
    // TMUX_TMPDIR, so a bug could not touch a developer's real server either).
    let uid = unsafe_free_uid();
    let default_socket = w.sb.tmux_tmpdir.join(format!("tmux-{uid}")).join("default");
    assert!(
        !default_socket.exists(),
        "nothing started the default server"
    );
    let private =
        w.sb.tmux_tmpdir
            .join(format!("tmux-{uid}"))
            .join(&w.sb.socket);
    assert!(private.exists());
}

/// The numeric user id, from the tmux socket directory name convention (`id -u`).
fn unsafe_free_uid() -> String {
    let o = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn tmux_older_than_3_2_is_refused_with_a_clear_message() {
    let w = World::new("good.sh", "");
    let fake = w.sb.path().join("fakebin");
    fs::create_dir_all(&fake).unwrap();
    let tmux = fake.join("tmux");
    fs::write(
        &tmux,
        "#!/bin/sh\nif [ \"$1\" = -V ]; then echo 'tmux 3.1c'; exit 0; fi\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&tmux, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let id = w.create("x", &[]);
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let path = format!("{}:{path}", vermas_tests::bin_dir().display());
    let out = w.co_as(&w.root, &[("PATH", &path)], &["dispatch", &id, "myproject"]);
    let err = out.fails(1);
    assert!(
        err.contains("tmux 3.1c is too old: VerMAS needs tmux 3.2 or newer"),
        "{err}"
    );
    assert_eq!(w.status_of(&id), "open");
}

#[test]
fn mail_to_an_idle_agent_nudges_it_to_read_it() {
    let w = World::new("hang.sh", "");
    let id = w.create("idle worker", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    std::thread::sleep(std::time::Duration::from_millis(2300));
    let out = w.co(&[
        "send",
        "myproject/workers/slot0",
        "-s",
        "a question",
        "-m",
        "the body is never typed",
    ]);
    assert!(out.stderr.contains("was idle: nudged it"), "{}", out.stderr);
    let pane = w.wait_pane("worker-myproject-slot0", "You have new mail from ceo", 5);
    assert!(!pane.contains("the body is never typed"));
    let nudged = w
        .factory_events()
        .into_iter()
        .find(|e| e["event_type"] == "agent.nudged")
        .unwrap();
    assert_eq!(nudged["data"]["reason"], "mail");
    assert_eq!(nudged["data"]["delivered"], true);
}

#[test]
fn co_ceo_starts_the_ceo_session_in_the_ceo_directory() {
    let w = World::new("good.sh", "");
    w.edit_company_config(
        "# [runtimes.scripted]",
        "[runtimes.ceo-sim]\ncommand = [\"bash\", \"-c\", \"echo ceo-ready $AGENT_ID $PWD; sleep 300\"]\n[roles.ceo]\nruntime = \"ceo-sim\"\n# [runtimes.scripted]",
    );
    let out = w.co(&["ceo", "--no-attach"]);
    assert!(out.ok().contains("Started session ceo"), "{}", out.stdout);
    let screen = w.wait_pane("ceo", "ceo-ready", 10);
    assert!(
        screen.contains(&format!("ceo-ready ceo {}", w.root.join("ceo").display())),
        "{screen}"
    );
    assert!(w.root.join("ceo/.vermas/PROMPT.md").is_file());
    let again = w.co(&["ceo", "--no-attach"]);
    assert!(again.ok().contains("Already running"), "{}", again.stdout);
}

#[test]
fn worker_spawn_with_no_dead_worker_starts_the_head_of_the_queue() {
    let w = World::new("hang.sh", "[worker]\nmax_slots_per_factory = 1\n");
    // Nothing assigned and nothing queued: a one-line reason, exit 3.
    let none = w.co(&["worker", "spawn", "myproject", "--verbose"]);
    assert!(none.fails(3).contains("nothing queued"), "{}", none.stderr);
    let first = w.create("first", &[]);
    let urgent = w.create("urgent", &["--priority", "0"]);
    let later = w.create("later", &["--priority", "3"]);
    w.co(&["dispatch", &first, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    for id in [&later, &urgent] {
        assert!(w.co(&["dispatch", id, "myproject"]).ok().contains("queued"));
    }
    // Every slot busy and no worker dead: the head cannot start; nothing changes.
    let busy = w.co(&["worker", "spawn", "myproject"]);
    assert_eq!(busy.code, 5, "{}", busy.stderr);
    assert_eq!(w.status_of(&urgent), "queued");
    // The slot freed (its work goes back to the queue behind the urgent one): spawn starts
    // the most urgent queued work order, saying each step.
    w.co(&["worker", "kill", "myproject", "0"]).ok();
    let out = w.co(&["worker", "spawn", "myproject", "--verbose"]);
    assert!(
        out.ok().contains(&format!(
            "Spawned worker-myproject-slot0, assigned {urgent}"
        )),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("No dead worker"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{urgent} is first of 3 queued")),
        "{}",
        out.stderr
    );
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    assert_eq!(w.status_of(&urgent), "in_progress");
    assert_eq!(w.status_of(&later), "queued");
}

#[test]
fn debug_prints_the_tmux_and_git_a_command_runs_and_debug_routing_where_an_id_lives() {
    let w = World::new("hang.sh", "");
    let (a, b) = (w.create("a", &[]), w.create("b", &[]));
    let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let plain = w.co(&["dispatch", &a, "myproject"]);
    plain.ok();
    assert!(!plain.stderr.contains("debug:"), "{}", plain.stderr);
    let traced = w.co_env(&env("DEBUG", "1"), &["dispatch", &b, "myproject"]);
    assert!(
        traced.ok().contains(&format!("assigned {b}")),
        "{}",
        traced.stdout
    );
    let steps: Vec<&str> = traced
        .stderr
        .lines()
        .filter(|l| l.starts_with("debug: "))
        .collect();
    assert!(
        steps
            .iter()
            .any(|l| l.starts_with("debug: git ") && l.contains(" worktree add ")),
        "{steps:#?}"
    );
    // The session's tmux client is named by the path found on the agent's PATH.
    let program = |l: &str| l.split(' ').nth(1).unwrap_or_default().to_string();
    assert!(
        steps
            .iter()
            .any(|l| (program(l) == "tmux" || program(l).ends_with("/tmux"))
                && l.contains(" new-session ")),
        "{steps:#?}"
    );
    // LOG_LEVEL=DEBUG and the `debug` package's DEBUG='*' turn it on too; a value that cannot
    // be read is one warning, never an error.
    for (k, v) in [("LOG_LEVEL", "debug"), ("DEBUG", "*")] {
        let out = w.co_env(&env(k, v), &["worker", "list"]);
        out.ok();
        assert!(
            out.stderr.contains("debug: tmux "),
            "{k}={v}: {}",
            out.stderr
        );
    }
    let odd = w.co_env(&env("DEBUG", "maybe"), &["status"]);
    odd.ok();
    assert!(odd.stderr.contains("DEBUG=\"maybe\""), "{}", odd.stderr);
    assert!(!odd.stderr.contains("debug:"), "{}", odd.stderr);
    // DEBUG_ROUTING: where the store came from and which store holds an id.
    let mut c = w.sb.command(vermas_tests::bin("wo"));
    c.args(["show", &a])
        .current_dir(&w.root)
        .env("DEBUG_ROUTING", "1");
    let out = vermas_tests::Out::from(c.output().unwrap());
    assert!(out.ok().contains(&a));
    let routes: Vec<&str> = out.stderr.lines().collect();
    assert!(
        routes.iter().any(|l| l.starts_with("routing: store ")
            && l.contains("the nearest .work at or above the current directory")),
        "{routes:#?}"
    );
    assert!(
        routes
            .iter()
            .any(|l| l.contains(&format!("{a}: prefix \"mp\" is the store "))
                && l.contains("myproject/.work")),
        "{routes:#?}"
    );
}

/// A process ended when the test ends, however it ends.
struct Ends(std::process::Child);

impl Drop for Ends {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_supervisor_and_qa_started_by_hand_show_as_running() {
    let w = World::new("hang.sh", "");
    let st = w.co(&["factory", "status", "myproject", "--json"]).json();
    assert_eq!(st["supervisor"]["alive"], false, "{st}");
    let by_hand = |role: &str| {
        let mut c = w.sb.command(vermas_tests::bin("co"));
        c.args([role, "run", "myproject"])
            .current_dir(&w.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        Ends(c.spawn().unwrap())
    };
    let (sup, qa) = (by_hand("supervisor"), by_hand("qa"));
    let st = vermas_tests::wait_for(Duration::from_secs(15), "both running", || {
        let st = w.co(&["factory", "status", "myproject", "--json"]).json();
        (st["supervisor"]["alive"] == true && st["qa"]["alive"] == true).then_some(st)
    });
    assert_eq!(st["supervisor"]["pid"], sup.0.id(), "{st}");
    assert_eq!(st["qa"]["pid"], qa.0.id(), "{st}");
    let human = w.co(&["status"]);
    assert!(
        human
            .ok()
            .contains(&format!("pid {} outside tmux", sup.0.id())),
        "{}",
        human.stdout
    );
    drop(sup);
    let st = w.co(&["factory", "status", "myproject", "--json"]).json();
    assert_eq!(st["supervisor"]["alive"], false, "{st}");
    assert_eq!(st["qa"]["alive"], true, "{st}");
}

#[test]
fn worker_list_filters_by_factory_and_status_and_a_session_log_keeps_the_agents_output() {
    // Idle after a second with no output; stuck only after ten minutes.
    let w = World::new(
        "hang.sh",
        "[worker]\nidle_timeout_minutes = 0.02\nstuck_timeout_minutes = 10\n",
    );
    w.add_factory("second", "sd", "hang.sh", "");
    let id = w.create("hangs", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    let idle = vermas_tests::wait_for(Duration::from_secs(15), "an idle worker", || {
        let l = w
            .co(&["worker", "list", "myproject", "--status=idle", "--json"])
            .json();
        (l.as_array().unwrap().len() == 1).then_some(l)
    });
    assert_eq!(idle[0]["work_order"], id, "{idle}");
    let human = w.co(&["worker", "list", "myproject", "--status", "idle"]);
    assert!(human.ok().contains("idle"), "{}", human.stdout);
    for (args, n) in [
        (vec!["worker", "list", "second", "--json"], 0),
        (
            vec![
                "worker",
                "list",
                "myproject",
                "--status",
                "running",
                "--json",
            ],
            0,
        ),
        (vec!["worker", "list", "--all", "--json"], 1),
    ] {
        let l = w.co(&args).json();
        assert_eq!(l.as_array().unwrap().len(), n, "{args:?}: {l}");
    }
    w.co(&["worker", "list", "nosuch"]).fails(3);
    // The session's output is kept under logs/<session>/, 0600 in a 0700 directory.
    let dir = w.root.join("logs/worker-myproject-slot0");
    let log = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "log"))
        .unwrap()
        .path();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("hanging"),
        "{}",
        log.display()
    );
}

#[test]
fn a_new_company_says_how_to_add_a_factory_and_co_finds_it_through_company_root() {
    let sb = vermas_tests::Sandbox::new();
    let root = sb.path().join("acme");
    sb.co(&["init", root.to_str().unwrap()]).ok();
    let hint = "No factories yet; add one with `co factory add <name> <git-url-or-path>`.";
    assert!(sb.run_in(&root, "co", &["status"]).ok().contains(hint));
    let list = sb.run_in(&root, "co", &["factory", "list"]);
    list.ok();
    assert!(list.stderr.contains(hint), "{}", list.stderr);
    // From anywhere, COMPANY_ROOT names the company; one that is not a company is an error.
    let elsewhere = sb.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut c = sb.command(vermas_tests::bin("co"));
    c.args(["status", "--json"])
        .current_dir(&elsewhere)
        .env("COMPANY_ROOT", &root);
    let st = vermas_tests::Out::from(c.output().unwrap()).json();
    assert_eq!(
        st["root"],
        root.canonicalize().unwrap().display().to_string()
    );
    let mut c = sb.command(vermas_tests::bin("co"));
    c.args(["status"])
        .current_dir(&root)
        .env("COMPANY_ROOT", &elsewhere);
    let bad = vermas_tests::Out::from(c.output().unwrap());
    assert!(bad.fails(1).contains("is not a company"), "{}", bad.stderr);
    // Without COMPANY_ROOT and outside any company: ~/company (the sandbox's HOME).
    let home_company = sb.home.join("company");
    sb.co(&["init", home_company.to_str().unwrap()]).ok();
    let st = sb.run_in(&elsewhere, "co", &["status", "--json"]).json();
    assert_eq!(
        st["root"],
        home_company.canonicalize().unwrap().display().to_string()
    );
}

#[test]
fn doctor_refuses_a_git_older_than_2_20() {
    let w = World::new("good.sh", "");
    let fake = w.sb.path().join("oldgit");
    std::fs::create_dir_all(&fake).unwrap();
    let real = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    std::fs::write(
        fake.join("git"),
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --version ] && {{ echo 'git version 2.19.1'; exit 0; }}; done\nexec {} \"$@\"\n",
            real.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fake.join("git"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}:{}",
        fake.display(),
        vermas_tests::bin_dir().display(),
        std::env::var("PATH").unwrap()
    );
    let out = w.co_env(&[("PATH".to_string(), path)], &["doctor"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("2.19"), "{all}");
    assert!(
        all.contains("2.20"),
        "the fix names the version needed: {all}"
    );
}
