//! Human output reviewed as snapshots (`insta`): the help texts and the main tables. Review a
//! change with `cargo insta review` (or `INSTA_UPDATE=always cargo test --test snapshots` and
//! read the diff of `tests/tests/snapshots/`).
//!
//! Output is made deterministic before it is compared: ids, ages, times, the sandbox's paths
//! and tmux socket are replaced by placeholders of the same width, so the tables keep their
//! columns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use regex::{Captures, Regex};
use std::path::Path;
use vermas_tests::{Out, Sandbox, World, bin, created_id};

/// The same text with what changes from run to run replaced, keeping every width.
fn stable(text: &str, paths: &[(&Path, &str)]) -> String {
    let mut s = text.to_string();
    for (p, name) in paths {
        s = s.replace(p.to_str().unwrap(), name);
    }
    let same_width = |re: &str, s: &str, with: &dyn Fn(&Captures<'_>) -> String| {
        Regex::new(re)
            .unwrap()
            .replace_all(s, |c: &Captures<'_>| with(c))
            .into_owned()
    };
    // Work order ids: prefix, then six random characters (and .N for children).
    s = same_width(r"\b(mp|ot|hq|wo)-[0-9a-z]{6}\b", &s, &|c| {
        format!("{}-XXXXXX", &c[1])
    });
    // Times as the store writes them.
    s = same_width(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", &s, &|_| {
        "YYYY-MM-DDTHH:MM:SS.mmmZ".into()
    });
    // Ages and idle times (`0s`, `12s`, `3m`): `N` and the unit, padded to the same width.
    s = same_width(r"\b\d+([smhd])\b", &s, &|c| {
        let width = c[0].len();
        format!("{:<width$}", format!("N{}", &c[1]))
    });
    s = same_width(r"vt\d+-\d+", &s, &|c| {
        format!("{:<w$}", "SOCKET", w = c[0].len())
    });
    // Lines whose ends were padded by a replacement keep no trailing blanks.
    s.lines().map(str::trim_end).collect::<Vec<_>>().join("\n")
}

/// Help as a person reads it in an 100-column terminal (but without colour: not a terminal).
fn help(sb: &Sandbox, program: &str, args: &[&str]) -> String {
    let mut c = sb.command(bin(program));
    c.args(args).env("COLUMNS", "100");
    for k in ["NO_COLOR", "CLICOLOR_FORCE"] {
        c.env_remove(k);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{program} {args:?}");
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn help_texts() {
    let sb = Sandbox::new();
    for (name, program, args) in [
        ("co_help", "co", vec!["--help"]),
        (
            "co_factory_add_help",
            "co",
            vec!["factory", "add", "--help"],
        ),
        ("co_dispatch_help", "co", vec!["dispatch", "--help"]),
        ("co_send_help", "co", vec!["send", "--help"]),
        (
            "co_worker_list_help",
            "co",
            vec!["worker", "list", "--help"],
        ),
        ("co_completions_help", "co", vec!["completions", "--help"]),
        ("wo_help", "wo", vec!["--help"]),
        ("wo_create_help", "wo", vec!["create", "--help"]),
        ("wo_list_help", "wo", vec!["list", "--help"]),
        (
            "wo_events_list_help",
            "wo",
            vec!["events", "list", "--help"],
        ),
        ("wo_list_short_help", "wo", vec!["list", "-h"]),
    ] {
        insta::assert_snapshot!(name, help(&sb, program, &args));
    }
}

fn ok(out: Out) -> String {
    out.ok().to_string()
}

#[test]
fn work_order_list_and_show() {
    let sb = Sandbox::new();
    sb.wo(&["init"]).ok();
    let epic = created_id(&sb.wo(&[
        "create",
        "--title",
        "Ship the parser",
        "--type",
        "epic",
        "--priority",
        "1",
    ]));
    let bug = created_id(&sb.wo(&[
        "create",
        "--title",
        "Crash on empty input",
        "--type",
        "bug",
        "--priority",
        "0",
        "--label",
        "parser",
        "--label",
        "urgent",
        "--description",
        "Steps:\n1. run it with no input\n2. it rings \x07 and dies",
    ]));
    let child = created_id(&sb.wo(&["create", "--title", "Tokenizer", "--parent", &epic]));
    let done = created_id(&sb.wo(&["create", "--title", "Old chore", "--type", "chore"]));
    sb.wo(&["dep", "add", &epic, &bug]).ok();
    sb.wo(&["update", &bug, "--status", "queued"]).ok();
    sb.wo(&[
        "update",
        &bug,
        "--status",
        "failed",
        "--reason",
        "gates failed",
    ])
    .ok();
    sb.wo(&["update", &child, "--assignee", "mp/workers/slot0"])
        .ok();
    sb.wo(&["close", &done, "--reason", "not needed"]).ok();
    let paths = [(sb.path(), "[SANDBOX]")];
    insta::assert_snapshot!("wo_list", stable(&ok(sb.wo(&["list"])), &paths));
    insta::assert_snapshot!(
        "wo_list_all",
        stable(&ok(sb.wo(&["list", "--all"])), &paths)
    );
    insta::assert_snapshot!("wo_show", stable(&ok(sb.wo(&["show", &bug])), &paths));
    insta::assert_snapshot!("wo_show_epic", stable(&ok(sb.wo(&["show", &epic])), &paths));
    insta::assert_snapshot!("wo_blocked", stable(&ok(sb.wo(&["blocked"])), &paths));
}

#[test]
fn company_views_across_stores() {
    let w = World::bare_in(Sandbox::new());
    w.co(&[
        "factory",
        "add",
        "other",
        w.origin.to_str().unwrap(),
        "--prefix",
        "ot",
    ])
    .ok();
    for (factory, title, priority) in [
        ("myproject", "Broke in myproject", "1"),
        ("other", "Broke in other", "2"),
    ] {
        let id = created_id(&w.wo_in(
            factory,
            &["create", "--title", title, "--priority", priority],
        ));
        w.wo_in(factory, &["update", &id, "--status", "queued"])
            .ok();
        w.wo_in(factory, &["update", &id, "--status", "failed"])
            .ok();
    }
    w.wo_in(
        "other",
        &["create", "--title", "Still open", "--type", "feature"],
    )
    .ok();
    w.sb.run_in(&w.root, "wo", &["create", "--title", "Plan the quarter"])
        .ok();
    let root = |args: &[&str]| ok(w.sb.run_in(&w.root, "wo", args));
    let paths = [(w.root.as_path(), "[ROOT]"), (w.sb.path(), "[SANDBOX]")];
    insta::assert_snapshot!("wo_list_company", stable(&root(&["list"]), &paths));
    insta::assert_snapshot!(
        "wo_list_company_failed",
        stable(&root(&["list", "--status=failed"]), &paths)
    );
    // The KIB column depends on the length of the sandbox's path (in factory.added).
    let stats = Regex::new(r"(?m)^(\S+ +\d+ +\d+ +\d+ +\d+ +)\d+( +)")
        .unwrap()
        .replace_all(&root(&["stats"]), "${1}K${2}")
        .into_owned();
    insta::assert_snapshot!("wo_stats_company", stable(&stats, &paths));
    insta::assert_snapshot!(
        "co_factory_list",
        stable(&ok(w.co(&["factory", "list"])), &paths)
    );
    insta::assert_snapshot!("co_status_idle", stable(&ok(w.co(&["status"])), &paths));
}

#[test]
fn a_running_worker_in_the_tables() {
    let w = World::new("hang.sh", "[worker]\nmax_slots_per_factory = 2\n");
    let first = w.create("Fix the login form", &["--type", "bug", "--priority", "1"]);
    let v = w.co(&["dispatch", &first, "myproject", "--json"]).json();
    assert_eq!(v["outcome"], "spawned");
    assert_eq!(v["session"], "worker-myproject-slot0");
    assert_eq!(v["slot"], 0);
    assert_eq!(v["work_order"], first.as_str());
    w.wait_pane("worker-myproject-slot0", "hanging", 10);
    let second = w.create("Write the docs", &[]);
    w.co(&["dispatch", &second, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot1", "hanging", 10);
    let third = w.create("Refactor", &["--priority", "3"]);
    let v = w.co(&["dispatch", &third, "myproject", "--json"]).json();
    assert_eq!(v["outcome"], "queued");
    assert_eq!(
        (v["position"].clone(), v["of"].clone()),
        (1.into(), 1.into())
    );
    w.wait_status(&first, "in_progress", 10);
    w.wait_status(&second, "in_progress", 10);
    let paths = [(w.root.as_path(), "[ROOT]"), (w.sb.path(), "[SANDBOX]")];
    insta::assert_snapshot!(
        "co_worker_list",
        stable(&ok(w.co(&["worker", "list"])), &paths)
    );
    insta::assert_snapshot!("co_status", stable(&ok(w.co(&["status"])), &paths));
    insta::assert_snapshot!("wo_list_with_workers", stable(&ok(w.wo(&["list"])), &paths));
}
