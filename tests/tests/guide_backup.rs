//! The guide's Backup and Recovery: `co backup`, the company destroyed, `co restore`, and the
//! plain `tar` recipe docs/OPERATIONS.md gives. Real binaries, real git, a private tmux server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use vermas_tests::{World, created_id, git};

/// Every work order of a store, as `wo list --all --json` prints them.
fn list(w: &World, dir: &Path) -> serde_json::Value {
    w.sb.run_in(dir, "wo", &["list", "--all", "--json"]).json()
}

fn refs(repo: &Path) -> String {
    git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/heads",
        ],
    )
}

#[test]
fn backup_destroy_restore_brings_back_every_work_order_message_and_unmerged_branch() {
    let w = World::new("hang.sh commit", "");
    let id = w.create("Commits, then its worker is killed", &[]);
    let open = w.create("Still open", &["--priority", "1", "--label", "keep"]);
    w.wo(&["dep", "add", &id, &open]).ok();
    w.wo(&["dep", "remove", &id, &open]).ok();
    let hq = created_id(
        &w.sb
            .run_in(&w.root, "wo", &["create", "--title", "Company plan"]),
    );
    w.co(&["send", "ceo", "-s", "Status", "-m", "kept in the backup"])
        .ok();
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "committed", 20);
    w.co(&["worker", "kill", "myproject", "0"]).ok();
    w.wait_no_session("worker-myproject-slot0", 5);
    let parked = w.factory_dir().join(format!("workers/parked/{id}"));
    assert!(parked.join(format!("work-{id}.txt")).is_file());
    // Work nobody committed yet: an edit and a new file in the parked worktree.
    fs::write(parked.join("README.md"), "# sample, edited\n").unwrap();
    fs::write(parked.join("notes.txt"), "not committed yet\n").unwrap();
    let status_before = git(&parked, &["status", "--porcelain"]);
    assert!(status_before.contains("notes.txt"), "{status_before}");

    let factory_before = list(&w, &w.factory_dir());
    let company_before = list(&w, &w.root);
    let mail_before = w.co(&["inbox", "--all", "--json"]).json();
    let refs_before = refs(&w.factory_dir().join(".git"));
    assert!(refs_before.contains(&format!("refs/heads/vermas/{id}")));
    let feed_lines = fs::read_to_string(w.factory_dir().join(".work/feed.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(feed_lines > 0);

    let archive = w.sb.path().join("company.tar.gz");
    let out = w.co(&["backup", "--output", archive.to_str().unwrap(), "--json"]);
    let b = out.json();
    assert_eq!(b["manifest"]["format"], 1);
    assert_eq!(b["manifest"]["stores"].as_array().unwrap().len(), 2);
    let f = &b["manifest"]["factories"][0];
    assert_eq!(f["name"], "myproject");
    assert_eq!(f["unmerged"], serde_json::json!([format!("vermas/{id}")]));
    assert_eq!(f["worktrees"][0]["path"], format!("workers/parked/{id}"));
    let store = b["manifest"]["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == "myproject/.work")
        .unwrap()
        .clone();
    assert_eq!(store["work_orders"], 2);
    assert!(store["last_seq"].as_u64().unwrap() > 5);
    // Never overwritten.
    w.co(&["backup", "--output", archive.to_str().unwrap()])
        .fails(5);
    // Refused while the company is there: it is not empty (and a live company is named).
    let busy = w.sb.co(&["restore", archive.to_str().unwrap()]);
    assert!(busy.fails(5).contains("not empty"), "{}", busy.stderr);

    fs::remove_dir_all(&w.root).unwrap();
    let out = w.sb.co(&["restore", archive.to_str().unwrap(), "--json"]);
    let r = out.json();
    assert_eq!(r["root"], w.root.display().to_string());
    assert_eq!(r["doctor"]["ok"], true, "{}", out.stdout);
    assert_eq!(
        r["factories"][0]["unmerged"],
        serde_json::json!([format!("vermas/{id}")])
    );

    let doctor = w.co(&["doctor"]);
    assert_eq!(doctor.code, 0, "{}", doctor.stdout);
    assert_eq!(list(&w, &w.factory_dir()), factory_before);
    assert_eq!(list(&w, &w.root), company_before);
    assert!(company_before.to_string().contains(&hq));
    assert_eq!(w.co(&["inbox", "--all", "--json"]).json(), mail_before);
    assert_eq!(refs(&w.factory_dir().join(".git")), refs_before);
    assert_eq!(
        git(
            &w.factory_dir().join(".git"),
            &["remote", "get-url", "origin"]
        ),
        w.origin.display().to_string()
    );
    w.wo(&["doctor"]).ok();
    // The parked worktree is a worktree again: its branch, its commit, its uncommitted work.
    assert_eq!(
        git(&parked, &["branch", "--show-current"]),
        format!("vermas/{id}")
    );
    assert_eq!(git(&parked, &["status", "--porcelain"]), status_before);
    assert_eq!(
        fs::read_to_string(parked.join("notes.txt")).unwrap(),
        "not committed yet\n"
    );
    // The QA worktree is back at the target.
    assert_eq!(
        git(&w.factory_dir().join("qa"), &["rev-parse", "HEAD"]),
        git(&w.factory_dir().join(".git"), &["rev-parse", "main"])
    );
    // And the company works: dispatching again brings the parked work back to a worker.
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", &format!("BRANCH=vermas/{id}"), 20);
    let slot0 = w.factory_dir().join("workers/slot0");
    assert!(slot0.join(format!("work-{id}.txt")).is_file());
    assert!(slot0.join("notes.txt").is_file());
    assert!(
        w.factory_events()
            .iter()
            .any(|e| { e["event_type"] == "worktree.created" && e["data"]["how"] == "unparked" })
    );
}

#[test]
fn restore_refuses_a_running_company_a_non_empty_target_and_a_foreign_archive() {
    let w = World::new("hang.sh", "");
    let id = w.create("Keeps a worker busy", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 20);
    let archive = w.sb.path().join("b.tar.gz");
    w.co(&["backup", "-o", archive.to_str().unwrap()]).ok();
    // The company is there and its worker session is alive: named, refused, nothing touched.
    let out = w.sb.co(&["restore", archive.to_str().unwrap()]);
    let err = out.fails(5);
    assert!(err.contains("worker-myproject-slot0"), "{err}");
    assert!(w.factory_dir().join("workers/slot0").is_dir());
    // A directory with anything in it is refused.
    let full = w.sb.path().join("full");
    fs::create_dir_all(&full).unwrap();
    fs::write(full.join("x"), "x").unwrap();
    let out = w.sb.co(&[
        "restore",
        archive.to_str().unwrap(),
        "--into",
        full.to_str().unwrap(),
    ]);
    assert!(out.fails(5).contains("not empty"), "{}", out.stderr);
    assert_eq!(fs::read_dir(&full).unwrap().count(), 1);
    // A tar.gz that is not a company backup, and a missing file.
    let foreign = w.sb.path().join("foreign.tar.gz");
    git(
        w.sb.path(),
        &[
            "-C",
            w.origin.to_str().unwrap(),
            "archive",
            "--format=tar.gz",
            "-o",
            foreign.to_str().unwrap(),
            "HEAD",
        ],
    );
    let into = w.sb.path().join("new");
    let out = w.sb.co(&[
        "restore",
        foreign.to_str().unwrap(),
        "--into",
        into.to_str().unwrap(),
    ]);
    assert!(
        out.fails(1).contains("not a VerMAS backup"),
        "{}",
        out.stderr
    );
    assert!(!into.exists());
    w.sb.co(&["restore", "missing.tar.gz"]).fails(3);
    // Into an empty directory elsewhere while the original runs: a working copy of the stores.
    let copy = w.sb.path().join("copy");
    fs::create_dir_all(&copy).unwrap();
    let out = w.sb.co(&[
        "restore",
        archive.to_str().unwrap(),
        "--into",
        copy.to_str().unwrap(),
    ]);
    out.ok();
    assert_eq!(
        w.sb.run_in(&copy.join("myproject"), "wo", &["show", &id, "--json"])
            .json()["id"],
        id.as_str()
    );
    // With operations running, that is what the refusal names.
    w.start_operations();
    let out = w.sb.co(&["restore", archive.to_str().unwrap()]);
    let err = out.fails(5);
    assert!(err.contains("operations pid"), "{err}");
    assert!(err.contains("co operations stop"), "{err}");
}

/// The recipe docs/OPERATIONS.md gives for a plain tar (relative paths, so `-C` restores in
/// place), against what the guide's own command does (absolute paths stored: nothing lands
/// where `-C ~/company` points).
#[test]
fn the_documented_tar_recipe_restores_every_store_in_place() {
    let w = World::new("hang.sh", "");
    let id = w.create("Backed up by tar", &[]);
    let tgz = w.sb.path().join("stores.tgz");
    let sh = |script: &str| {
        let out =
            w.sb.command("sh")
                .args(["-c", script])
                .current_dir(w.sb.path())
                .output()
                .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let root = w.root.display().to_string();
    let t = tgz.display().to_string();
    sh(&format!(
        "cd '{root}' && tar -czf '{t}' .vermas/config.toml .work */.work"
    ));
    let before = list(&w, &w.factory_dir());
    fs::remove_dir_all(w.root.join(".work")).unwrap();
    fs::remove_dir_all(w.factory_dir().join(".work")).unwrap();
    sh(&format!("tar -xzf '{t}' -C '{root}'"));
    assert_eq!(list(&w, &w.factory_dir()), before);
    assert_eq!(w.status_of(&id), "open");
    w.wo(&["doctor"]).ok();
}
