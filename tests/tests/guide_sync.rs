//! The guide's `wo sync --all-factories` and `[sync]`: two companies (two machines) with the
//! same factory, sharing a bare remote, converge on the same work orders.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use vermas_tests::{Out, Sandbox, created_id, git};

/// A bare repository both machines clone their factory from.
fn shared_remote(sb: &Sandbox) -> PathBuf {
    let src = sb.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    std::fs::write(src.join("README.md"), "# shared\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-qm", "initial"]);
    let remote = sb.path().join("remote.git");
    git(
        sb.path(),
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().unwrap(),
            remote.to_str().unwrap(),
        ],
    );
    remote
}

/// A company at `sb/<name>` with the factory `myproject` (prefix `mp`) cloned from `remote`;
/// returns the factory's directory.
fn machine(sb: &Sandbox, name: &str, remote: &Path) -> PathBuf {
    let root = sb.path().join(name);
    sb.co(&["init", root.to_str().unwrap()]).ok();
    sb.run_in(
        &root,
        "co",
        &[
            "factory",
            "add",
            "myproject",
            remote.to_str().unwrap(),
            "--prefix",
            "mp",
        ],
    )
    .ok();
    root.canonicalize().unwrap().join("myproject")
}

fn wo(sb: &Sandbox, dir: &Path, args: &[&str]) -> Out {
    sb.run_in(dir, "wo", args)
}

fn sync(sb: &Sandbox, dir: &Path) -> serde_json::Value {
    let out = wo(sb, dir, &["sync", "--json"]);
    out.ok();
    out.json()[0].clone()
}

/// `wo list --all --json` without `seq`, the one field that is a position in the local log.
fn state(sb: &Sandbox, dir: &Path) -> serde_json::Value {
    let mut v = wo(sb, dir, &["list", "--all", "--json"]).json();
    for r in v.as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("seq");
    }
    v
}

#[test]
fn work_orders_made_on_one_machine_reach_the_other_and_concurrent_edits_converge() {
    let sb = Sandbox::new();
    let remote = shared_remote(&sb);
    let a = machine(&sb, "a", &remote);
    let b = machine(&sb, "b", &remote);

    let id = created_id(&wo(
        &sb,
        &a,
        &["create", "--title", "Shared plan", "--label", "x"],
    ));
    let ra = sync(&sb, &a);
    assert_eq!(ra["exported"], 1, "{ra}");
    assert_eq!(ra["pushed"], true);
    let rb = sync(&sb, &b);
    assert_eq!(rb["imported"], 1, "{rb}");
    assert_eq!(rb["exported"], 0, "imported events are not exported again");
    assert_eq!(
        wo(&sb, &b, &["show", &id, "--json"]).json()["title"],
        "Shared plan"
    );
    assert_eq!(state(&sb, &a), state(&sb, &b));

    // Both edit the same work order before syncing; B's changes come later.
    wo(
        &sb,
        &a,
        &[
            "update",
            &id,
            "--title",
            "Title from A",
            "--status",
            "blocked",
            "--reason",
            "needs A",
        ],
    )
    .ok();
    wo(&sb, &a, &["update", &id, "--priority", "4"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(20));
    wo(
        &sb,
        &b,
        &["update", &id, "--title", "Title from B", "--add-label", "b"],
    )
    .ok();
    wo(&sb, &b, &["update", &id, "--status", "in_progress"]).ok();
    let only_b = created_id(&wo(&sb, &b, &["create", "--title", "Made on B"]));

    sync(&sb, &a);
    let rb = sync(&sb, &b);
    assert!(rb["imported"].as_u64().unwrap() >= 2, "{rb}");
    assert_eq!(rb["reconciled"], serde_json::json!([id]), "{rb}");
    let ra = sync(&sb, &a);
    assert_eq!(ra["exported"], 0, "{ra}");
    assert!(ra["imported"].as_u64().unwrap() >= 3, "{ra}");

    let (sa, sb_) = (state(&sb, &a), state(&sb, &b));
    assert_eq!(sa, sb_, "both machines hold the same work orders");
    let w = wo(&sb, &a, &["show", &id, "--json"]).json();
    // The later change wins each field; fields only one side changed keep that change.
    assert_eq!(w["title"], "Title from B");
    assert_eq!(w["status"], "in_progress");
    assert_eq!(w["priority"], 4);
    assert_eq!(w["labels"], serde_json::json!(["x", "b"]));
    assert_eq!(
        wo(&sb, &a, &["show", &only_b, "--json"]).json()["title"],
        "Made on B"
    );
    // Nothing more to do, and both stores are healthy.
    for dir in [&a, &b] {
        let r = sync(&sb, dir);
        assert_eq!(
            (r["exported"].as_u64(), r["imported"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(r["reconciled"], serde_json::json!([]));
        wo(&sb, dir, &["doctor"]).ok();
    }
    assert_eq!(state(&sb, &a), state(&sb, &b));
    // The branch holds one file per store, each appended by its own store only.
    let files = git(&remote, &["ls-tree", "--name-only", "-r", "work-sync"]);
    let files: Vec<&str> = files.lines().collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for f in files {
        assert!(f.starts_with("stores/st-") && f.ends_with(".jsonl"), "{f}");
    }
    let id_a = std::fs::read_to_string(a.join(".work/store.id")).unwrap();
    let own = git(
        &remote,
        &["show", &format!("work-sync:stores/{}.jsonl", id_a.trim())],
    );
    assert!(own.lines().all(|l| !l.contains("Title from B")), "{own}");
}

#[test]
fn sync_all_factories_from_the_company_root_and_what_is_refused() {
    let sb = Sandbox::new();
    let remote = shared_remote(&sb);
    let a = machine(&sb, "a", &remote);
    let root = a.parent().unwrap().to_path_buf();
    created_id(&wo(&sb, &a, &["create", "--title", "First"]));
    let out = wo(&sb, &root, &["sync", "--all-factories", "--json"]);
    let reports = out.json();
    assert_eq!(reports.as_array().unwrap().len(), 1, "{}", out.stdout);
    assert_eq!(reports[0]["factory"], "myproject");
    assert_eq!(reports[0]["exported"], 1);
    let human = wo(&sb, &a, &["sync"]);
    assert!(
        human.ok().starts_with("myproject: exported 0, imported 0"),
        "{}",
        human.stdout
    );
    // The company store has no git remote to sync through.
    let err = wo(&sb, &root, &["sync"]).fails(2).to_string();
    assert!(err.contains("--all-factories"), "{err}");
    // A remote that cannot be reached: exit 1, saying so, and the store is untouched.
    git(
        &a.join(".git"),
        &[
            "remote",
            "set-url",
            "origin",
            sb.path().join("gone.git").to_str().unwrap(),
        ],
    );
    let before = state(&sb, &a);
    let err = wo(&sb, &a, &["sync"]).fails(1).to_string();
    assert!(err.contains("fetch"), "{err}");
    assert_eq!(state(&sb, &a), before);
}

#[test]
fn a_machine_restored_from_an_old_backup_gets_its_own_later_events_back() {
    let sb = Sandbox::new();
    let remote = shared_remote(&sb);
    let a = machine(&sb, "a", &remote);
    let root = a.parent().unwrap().to_path_buf();
    let first = created_id(&wo(&sb, &a, &["create", "--title", "Before the backup"]));
    sync(&sb, &a);
    let archive = sb.path().join("a.tar.gz");
    sb.run_in(&root, "co", &["backup", "-o", archive.to_str().unwrap()])
        .ok();
    let later = created_id(&wo(&sb, &a, &["create", "--title", "After the backup"]));
    sync(&sb, &a);
    std::fs::remove_dir_all(&root).unwrap();
    sb.co(&["restore", archive.to_str().unwrap()]).ok();
    assert_eq!(wo(&sb, &a, &["show", &later]).code, 3, "not in the backup");
    let r = sync(&sb, &a);
    assert_eq!(r["imported"], 1, "{r}");
    assert_eq!(
        wo(&sb, &a, &["show", &later, "--json"]).json()["title"],
        "After the backup"
    );
    assert_eq!(
        wo(&sb, &a, &["show", &first, "--json"]).json()["title"],
        "Before the backup"
    );
    wo(&sb, &a, &["doctor"]).ok();
}
