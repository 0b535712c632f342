//! Issue 10 end to end: faults a tester found, each with the test that shows it is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use vermas_tests::{Sandbox, World, git, wait_for};

fn events_of(w: &World, ty: &str) -> Vec<serde_json::Value> {
    w.factory_events()
        .into_iter()
        .filter(|e| e["event_type"] == ty)
        .collect()
}

/// Every file named `name` under `dir`.
fn find(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_name() == name {
            out.push(p.clone());
        }
        if p.is_dir() && !p.is_symlink() {
            out.extend(find(&p, name));
        }
    }
    out
}

#[test]
fn a_company_path_with_tmux_formats_runs_nothing_and_nudges_keep_a_trailing_semicolon() {
    let sb = Sandbox::new();
    let root = sb.path().join("acme#(touch pwned)#{session_name};");
    sb.co(&["init", root.to_str().unwrap()]).ok();
    let out = sb.run_in(&root, "co", &["operations", "start"]);
    assert!(out.ok().contains("Operations started"), "{}", out.stdout);
    let st = sb
        .run_in(&root, "co", &["operations", "status", "--json"])
        .json();
    assert_eq!(st["running"], true);
    std::thread::sleep(Duration::from_millis(500));
    sb.run_in(&root, "co", &["operations", "stop"]).ok();
    assert!(find(sb.path(), "pwned").is_empty(), "a format was run");
    assert!(find(&std::env::current_dir().unwrap(), "pwned").is_empty());
    // The operations console log is where it belongs, under the odd root.
    assert!(root.join("logs").join("operations").is_dir());

    // A nudge whose text ends in `;` arrives with it.
    let w = World::new("hang.sh", "");
    let id = w.create("hangs", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    w.co(&["nudge", "myproject/workers/slot0", "ls;"]).ok();
    w.wait_pane("worker-myproject-slot0", "ls;", 5);
}

#[test]
fn a_worktree_deleted_by_hand_does_not_wedge_its_slot() {
    let w = World::new("hang.sh", "[worker]\nmax_slots_per_factory = 1\n");
    let id = w.create("its worktree goes", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    std::fs::remove_dir_all(w.factory_dir().join("workers/slot0")).unwrap();
    w.co(&["worker", "kill", "myproject", "0"]).ok();
    assert_eq!(w.status_of(&id), "queued");
    // The slot takes work again: the dangling worktree registration is pruned.
    let out = w.co(&["dispatch", &id, "myproject"]);
    assert!(
        out.ok().contains("Spawned worker-myproject-slot0"),
        "{}",
        out.stdout
    );
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
}

#[test]
fn a_machine_without_a_git_identity_still_commits_and_merges() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    assert!(!w.sb.home.join(".gitconfig").exists());
    let bare = |args: &[&str]| {
        let mut c = w.sb.command(vermas_tests::bin("co"));
        for k in [
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_COMMITTER_NAME",
            "GIT_COMMITTER_EMAIL",
        ] {
            c.env_remove(k);
        }
        // No system config either.
        c.env("GIT_CONFIG_NOSYSTEM", "1");
        let out = c.args(args).current_dir(&w.root).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    bare(&["operations", "start"]);
    let id = w.create("no identity anywhere", &[]);
    bare(&["dispatch", &id, "myproject"]);
    w.wait_status(&id, "closed", 30);
    let fdir = w.factory_dir();
    let merge = git(&fdir, &["log", "-1", "--format=%cn <%ce>", "main"]);
    assert_eq!(
        merge, "VerMAS QA <qa@myproject.vermas>",
        "QA merges as itself"
    );
    let work = git(&fdir, &["log", "-1", "--format=%an <%ae>", "main^2"]);
    assert_eq!(
        work, "VerMAS worker <slot0@myproject.vermas>",
        "the worker's default"
    );
    assert!(events_of(&w, "qa.merged").len() == 1);
}

#[test]
fn a_factory_added_while_operations_runs_gets_a_working_qa() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    w.start_operations();
    let dir = w.add_factory("second", "sc", "good.sh", World::CHECK_GATE);
    wait_for(
        Duration::from_secs(15),
        "the new factory's QA and supervisor",
        || {
            let s = w.sessions();
            (s.contains(&"qa-second".to_string()) && s.contains(&"supervisor-second".to_string()))
                .then_some(())
        },
    );
    let id = w.wo_in("second", &["create", "--title", "in the new factory"]);
    let id = vermas_tests::created_id(&id);
    w.co(&["dispatch", &id, "second"]).ok();
    wait_for(Duration::from_secs(30), "merged in the new factory", || {
        let s = w.wo_in("second", &["show", &id, "--json"]).json()["status"].clone();
        (s == "closed").then_some(())
    });
    assert!(dir.join("qa").is_dir());
}

#[test]
fn an_api_key_in_a_title_or_mail_is_stored_masked_and_the_command_says_so() {
    let w = World::new("hang.sh", "");
    let key = "sk-ant-api03-Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1";
    let out = w.wo(&["create", "--title", &format!("use {key} for the tests")]);
    assert!(out.stderr.contains("Anthropic API key"), "{}", out.stderr);
    let id = vermas_tests::created_id(&out);
    let title = w.wo(&["show", &id, "--json"]).json()["title"].clone();
    assert_eq!(title, "use sk-ant-…[masked] for the tests");
    let out = w.co(&[
        "send",
        "ceo",
        "-s",
        "credentials",
        "-m",
        &format!("AWS AKIAIOSFODNN7EXAMPLE and {key}"),
    ]);
    assert!(out.stderr.contains("AWS API key"), "{}", out.stderr);
    // Nowhere in any log.
    for dir in [w.root.join(".work"), w.factory_dir().join(".work")] {
        for f in find(&dir, "feed.jsonl") {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(!text.contains(key) && !text.contains("AKIAIOSFODNN7EXAMPLE"));
        }
    }
}

#[test]
fn hostile_invisible_characters_are_shown_escaped() {
    let w = World::new("hang.sh", "");
    let title = "fix\u{202E}gnp.exe\u{200B} now";
    let id = vermas_tests::created_id(&w.wo(&["create", "--title", title]));
    let shown = w.wo(&["show", &id]).ok().to_string();
    assert!(shown.contains("\\u{202e}"), "{shown}");
    assert!(!shown.contains('\u{202E}') && !shown.contains('\u{200B}'));
    let listed = w.wo(&["list"]).ok().to_string();
    assert!(!listed.contains('\u{202E}'), "{listed}");
    assert_eq!(
        w.wo(&["show", &id, "--json"]).json()["title"],
        title,
        "stored exactly"
    );
}

#[test]
fn a_reader_that_closes_the_pipe_early_ends_the_command_quietly() {
    let w = World::new("hang.sh", "");
    // More than a pipe holds (64 KiB), so wo is still writing when the reader goes.
    let body = "x".repeat(2000);
    for i in 0..60 {
        w.wo(&[
            "create",
            "--title",
            &format!("work order {i}"),
            "--description",
            &body,
        ]);
    }
    let mut child =
        w.sb.command(vermas_tests::bin("wo"))
            .args(["list", "--json"])
            .current_dir(w.factory_dir())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "no panic");
}

#[test]
fn mail_sent_to_a_slot_is_for_the_worker_there_then_not_the_next_one() {
    let w = World::new("hang.sh", "");
    let first = w.create("first", &[]);
    w.co(&["dispatch", &first, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    let old = w
        .co(&["worker", "status", "myproject", "0", "--json"])
        .json();
    let old_inc = old["incarnation"].as_str().unwrap().to_string();
    w.co(&[
        "send",
        "myproject/workers/slot0",
        "-s",
        "for the first worker",
        "-m",
        "hi",
    ])
    .ok();
    w.co(&["worker", "kill", "myproject", "0", "--force"]).ok();
    let second = w.create("second", &[]);
    w.co(&["dispatch", &second, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    let new = w
        .co(&["worker", "status", "myproject", "0", "--json"])
        .json();
    let new_inc = new["incarnation"].as_str().unwrap().to_string();
    assert_ne!(old_inc, new_inc);
    let inbox = |inc: &str| {
        w.co_as(
            &w.factory_dir(),
            &[
                ("AGENT_ID", "myproject/workers/slot0"),
                ("VERMAS_INCARNATION", inc),
            ],
            &["inbox", "--json"],
        )
        .json()
    };
    assert_eq!(
        inbox(&new_inc).as_array().unwrap().len(),
        0,
        "the next worker"
    );
    let theirs = inbox(&old_inc);
    assert_eq!(theirs[0]["subject"], "for the first worker", "{theirs}");
}

fn is_empty_dir(dir: &std::path::Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn a_session_log_or_evidence_directory_planted_as_a_symlink_is_never_written_through() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    let outside = w.sb.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(w.root.join("logs")).unwrap();
    std::os::unix::fs::symlink(&outside, w.root.join("logs/worker-myproject-slot0")).unwrap();
    std::os::unix::fs::symlink(&outside, w.factory_dir().join(".work/evidence")).unwrap();
    let before = w.target_log();
    w.start_operations();
    let id = w.create("planted links", &[]);
    // The worker starts without a log, and says why.
    let out = w.co(&["dispatch", &id, "myproject"]);
    out.ok();
    assert!(out.stderr.contains("no session log"), "{}", out.stderr);
    // QA cannot keep its evidence: the work order is blocked with the reason, not merged.
    w.wait_status(&id, "blocked", 60);
    let shown = w.wo(&["show", &id, "--json"]).json();
    assert!(
        shown.to_string().contains("evidence"),
        "the reason names the evidence directory: {shown}"
    );
    assert_eq!(w.target_log(), before, "nothing merged");
    assert!(is_empty_dir(&outside), "written through a link");
    let escalations = w
        .company_events()
        .into_iter()
        .filter(|e| {
            e["event_type"] == "mail.sent"
                && e["data"]["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains("ESCALATION"))
                && e.to_string().contains(&id)
        })
        .count();
    assert_eq!(escalations, 1, "one escalation for the blocked work order");
}

#[test]
fn a_worktree_prompt_directory_replaced_by_a_symlink_is_refused_at_the_next_start() {
    let w = World::new("hang.sh", "");
    let id = w.create("hangs", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    w.tmux(&["kill-session", "-t", "=worker-myproject-slot0"]);
    // What a branch could commit: `.vermas` as a link to somewhere else.
    let outside = w.sb.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let dot = w.factory_dir().join("workers/slot0/.vermas");
    std::fs::remove_dir_all(&dot).unwrap();
    std::os::unix::fs::symlink(&outside, &dot).unwrap();
    let out = w.co(&["worker", "spawn", "myproject", "0"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(out.stderr.contains(".vermas"), "{}", out.stderr);
    assert!(is_empty_dir(&outside), "written through a link");
}
