//! What a person at a shell meets: completions and man pages from the same definitions as
//! `--help`, colour that follows `--color`, `NO_COLOR` and pipes, durations that need a unit,
//! `--json` on the commands that print something, `file://` factories, reads across a
//! company's stores and the company feed. No tmux server is started here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use vermas_tests::{Out, Sandbox, World, bin, created_id};

/// The visible subcommands of a binary, from its own help.
fn subcommands(sb: &Sandbox, program: &str) -> Vec<String> {
    let help = sb.run_in(sb.path(), program, &["--help"]);
    help.ok()
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description that wraps goes on lines indented further: not a subcommand.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

/// Whether a program is installed (to check a script's syntax with its shell).
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    let sb = Sandbox::new();
    for program in ["co", "wo"] {
        let subs = subcommands(&sb, program);
        assert!(subs.len() > 10, "{program}: {subs:?}");
        for shell in ["bash", "zsh", "fish"] {
            let out = sb.run_in(sb.path(), program, &["completions", shell]);
            let script = out.ok();
            assert!(script.len() > 1000, "{program} {shell}: {script}");
            for sub in &subs {
                assert!(
                    script.contains(sub.as_str()),
                    "{program} {shell} names {sub}"
                );
            }
            // The script is valid for its shell (where that shell is installed).
            if have(shell) {
                let file = sb.path().join(format!("{program}.{shell}"));
                fs::write(&file, script).unwrap();
                let check = Command::new(shell).arg("-n").arg(&file).output().unwrap();
                assert!(
                    check.status.success(),
                    "{shell} -n {program}: {}",
                    String::from_utf8_lossy(&check.stderr)
                );
            }
        }
        // The flags of a subcommand and the values of an option are offered too.
        let bash = sb.run_in(sb.path(), program, &["completions", "bash"]);
        assert!(bash.stdout.contains("--color"), "{program}");
        if program == "wo" {
            assert!(
                bash.stdout.contains("in_progress"),
                "wo list --status values"
            );
        }
    }
    let err = sb.co(&["completions", "tcsh"]).fails(2).to_string();
    assert!(
        err.contains("bash") && err.contains("zsh") && err.contains("fish"),
        "{err}"
    );
}

#[test]
fn bash_completes_a_subcommand_from_its_start() {
    let sb = Sandbox::new();
    let script = sb.path().join("co.bash");
    fs::write(&script, sb.co(&["completions", "bash"]).ok()).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(co factory ''); COMP_CWORD=2; _co co '' factory; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&out.stdout);
    for w in ["add", "list", "status"] {
        assert!(words.split_whitespace().any(|x| x == w), "{w} in {words}");
    }
}

#[test]
fn man_pages_render_one_per_subcommand() {
    let sb = Sandbox::new();
    for program in ["co", "wo"] {
        let dir = sb.path().join(format!("man-{program}"));
        let out = sb.run_in(sb.path(), program, &["man", "--dir", dir.to_str().unwrap()]);
        let written: Vec<&str> = out.ok().lines().collect();
        assert!(out.stderr.contains("Wrote"), "{}", out.stderr);
        let top = dir.join(format!("{program}.1"));
        assert!(written.contains(&top.to_str().unwrap()), "{written:?}");
        for sub in subcommands(&sb, program) {
            assert!(
                dir.join(format!("{program}-{sub}.1")).is_file(),
                "{program}-{sub}.1"
            );
        }
        // Nested subcommands get their own page; the hidden one gets none.
        let nested = if program == "co" {
            "co-factory-add.1"
        } else {
            "wo-events-tail.1"
        };
        let page = fs::read_to_string(dir.join(nested)).unwrap();
        assert!(page.starts_with(".TH "), "{page}");
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH EXAMPLES"] {
            assert!(page.contains(section), "{nested}: {section}");
        }
        assert!(!page.contains('\x1b'), "no terminal escapes in {nested}");
        assert!(!dir.join("co-exec-agent.1").exists());
        // The page renders, without a warning, where groff is installed.
        if have("groff") {
            for entry in fs::read_dir(&dir).unwrap().flatten() {
                let r = Command::new("groff")
                    .args(["-k", "-man", "-Tutf8", "-ww", "-P-cbou"])
                    .arg(entry.path())
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&r.stderr);
                assert!(
                    r.status.success() && stderr.is_empty(),
                    "{}: {stderr}",
                    entry.path().display()
                );
                let text = String::from_utf8_lossy(&r.stdout);
                assert!(text.contains("NAME"), "{}", entry.path().display());
            }
        }
        // Without --dir the top page goes to stdout.
        let page = sb.run_in(sb.path(), program, &["man"]);
        assert!(
            page.ok().starts_with(&format!(".TH {program} 1 ")),
            "{}",
            page.stdout
        );
    }
}

/// `wo` with more variables, in `cwd`.
fn wo_env(sb: &Sandbox, cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut c = sb.command(bin("wo"));
    c.args(args).current_dir(cwd);
    for k in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE"] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn colour_follows_the_flag_no_color_and_the_terminal() {
    let sb = Sandbox::new();
    sb.wo(&["init"]).ok();
    let id = created_id(&sb.wo(&["create", "--title", "x"]));
    sb.wo(&["update", &id, "--status", "blocked"]).ok();
    let esc = |s: &str| s.contains('\x1b');
    let p = sb.path();
    // A pipe is not a terminal: no colour by default.
    let plain = wo_env(&sb, p, &[], &["list"]);
    assert!(!esc(plain.ok()), "{:?}", plain.stdout);
    // --color always colours the status word, and the table stays aligned.
    let always = wo_env(&sb, p, &[], &["--color", "always", "list"]);
    assert!(esc(always.ok()), "{:?}", always.stdout);
    assert!(
        always.stdout.contains("\x1b[33mblocked\x1b[0m"),
        "{:?}",
        always.stdout
    );
    let stripped = always.stdout.replace("\x1b[33m", "").replace("\x1b[0m", "");
    assert_eq!(stripped, plain.stdout);
    // The flag goes anywhere on the line.
    assert!(esc(wo_env(&sb, p, &[], &["list", "--color=always"]).ok()));
    // NO_COLOR turns auto off even where colour is forced by CLICOLOR_FORCE ...
    let no = wo_env(
        &sb,
        p,
        &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")],
        &["list"],
    );
    assert!(!esc(no.ok()), "{:?}", no.stdout);
    // ... but an explicit --color always wins over it, and never over CLICOLOR_FORCE.
    let flag = wo_env(&sb, p, &[("NO_COLOR", "1")], &["--color", "always", "list"]);
    assert!(esc(flag.ok()));
    let forced = wo_env(&sb, p, &[("CLICOLOR_FORCE", "1")], &["list"]);
    assert!(esc(forced.ok()));
    let never = wo_env(
        &sb,
        p,
        &[("CLICOLOR_FORCE", "1")],
        &["--color", "never", "list"],
    );
    assert!(!esc(never.ok()));
    // The error prefix on stderr, and JSON never.
    let err = wo_env(&sb, p, &[], &["--color", "always", "show", "wo-zzzzzz"]);
    assert!(err.fails(3).starts_with("\x1b["), "{:?}", err.stderr);
    assert!(err.stderr.contains("error:"));
    let plain_err = wo_env(&sb, p, &[], &["show", "wo-zzzzzz"]);
    assert!(plain_err.fails(3).starts_with("error: "));
    let json = wo_env(&sb, p, &[], &["--color", "always", "list", "--json"]);
    assert!(!esc(json.ok()));
    // A bad value is a usage error that lists the good ones.
    let bad = wo_env(&sb, p, &[], &["--color", "sometimes", "list"]);
    let e = bad.fails(2).to_string();
    assert!(
        e.contains("auto") && e.contains("always") && e.contains("never"),
        "{e}"
    );
}

#[test]
fn colour_on_a_terminal_and_not_into_a_pipe() {
    // `script` gives the command a terminal; skip where it is missing.
    if !have("script") {
        eprintln!("SKIPPED: script(1) is not installed");
        return;
    }
    let sb = Sandbox::new();
    sb.wo(&["init"]).ok();
    let id = created_id(&sb.wo(&["create", "--title", "x"]));
    sb.wo(&["update", &id, "--status", "blocked"]).ok();
    let run = |extra: &str| {
        let mut c = sb.command("script");
        c.args(["-qec"])
            .arg(format!("{} list{extra}", bin("wo").display()))
            .arg("/dev/null")
            .env("TERM", "xterm-256color");
        for k in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE"] {
            c.env_remove(k);
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    };
    assert!(
        run("").contains("\x1b[33mblocked"),
        "a terminal is coloured"
    );
    assert!(!run(" | cat").contains('\x1b'), "a pipe is not");
}

#[test]
fn durations_need_a_unit_and_say_which_forms_work() {
    let sb = Sandbox::new();
    sb.wo(&["init"]).ok();
    let id = created_id(&sb.wo(&["create", "--title", "old enough"]));
    for args in [
        vec!["list", "--older-than=7"],
        vec!["list", "--older-than", "30"],
        vec!["events", "archive", "--older-than", "7"],
        vec!["events", "list", "--since=7"],
        vec!["events", "stats", "--since", "24"],
    ] {
        let err = sb.wo(&args).fails(2).to_string();
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains("needs a unit"), "{args:?}: {err}");
        assert!(err.contains("90s, 15m, 1h, 7d, 2w"), "{args:?}: {err}");
        if args.contains(&"events") && !args.contains(&"archive") {
            assert!(err.contains("2026-11-20"), "--since takes a date: {err}");
        }
    }
    let err = sb
        .wo(&["list", "--older-than", "soon"])
        .fails(2)
        .to_string();
    assert!(err.contains("90s, 15m, 1h, 7d, 2w"), "{err}");
    // --older-than keeps working with a unit.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ids = |args: &[&str]| -> Vec<String> {
        sb.wo(args)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&["list", "--older-than", "1s", "--json"]), vec![id]);
    assert!(ids(&["list", "--older-than=1d", "--json"]).is_empty());
    sb.wo(&["events", "list", "--since", "1h"]).ok();
    sb.wo(&["events", "list", "--since", "2026-01-01"]).ok();
}

#[test]
fn factory_add_takes_a_file_url_and_says_whether_qa_pushes() {
    let w = World::bare_in(Sandbox::new());
    let url = format!("file://{}", w.origin.display());
    let out = w.co(&["factory", "add", "web", &url, "--prefix", "wb"]);
    assert!(
        out.ok().contains("Added factory web (prefix wb"),
        "{}",
        out.stdout
    );
    // What it does before the clone, how long it took, and whether merges are pushed.
    assert!(out.stderr.contains("Cloning "), "{}", out.stderr);
    assert!(out.stderr.contains("Cloned in "), "{}", out.stderr);
    assert!(
        out.stderr.contains("QA will not push merges of main")
            && out.stderr.contains("push = false in web/.work/config.toml"),
        "{}",
        out.stderr
    );
    assert!(w.root.join("web/.git/HEAD").is_file());
    assert!(w.root.join("web/qa/README.md").is_file(), "QA's worktree");
    let cfg = fs::read_to_string(w.root.join("web/.work/config.toml")).unwrap();
    assert!(cfg.contains("push = false"), "{cfg}");
    // file://localhost/ and %-escapes are the same path.
    let spaced = w.sb.path().join("my origin");
    fs::rename(&w.origin, &spaced).unwrap();
    let url = format!("file://localhost{}", spaced.display()).replace(' ', "%20");
    let out = w.co(&["factory", "add", "api", &url, "--json"]);
    let v = out.json();
    assert_eq!(v["name"], "api");
    assert_eq!(v["push"], false);
    assert_eq!(v["source"], url.as_str());
    assert_eq!(v["target_branch"], "main");
    // A missing path is not found; another host is a usage error; neither leaves anything.
    let missing = format!("file://{}/nope", w.sb.path().display());
    let err = w
        .co(&["factory", "add", "gone", &missing])
        .fails(3)
        .to_string();
    assert!(err.contains("does not exist"), "{err}");
    let err = w
        .co(&["factory", "add", "far", "file://server/srv/repo"])
        .fails(2)
        .to_string();
    assert!(err.contains("absolute path"), "{err}");
    assert!(!w.root.join("gone").exists() && !w.root.join("far").exists());
    let leftovers: Vec<_> = fs::read_dir(&w.root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".adding-"))
        .collect();
    assert!(leftovers.is_empty());
}

/// A company with `myproject` (mp) and `other` (ot), a failed work order in each, an open one
/// in `other` and one of the company's own.
fn two_factories() -> (World, [String; 4]) {
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
    let failed = |factory: &str, title: &str| {
        let id = created_id(&w.wo_in(factory, &["create", "--title", title]));
        w.wo_in(factory, &["update", &id, "--status", "queued"])
            .ok();
        w.wo_in(factory, &["update", &id, "--status", "failed"])
            .ok();
        id
    };
    let mp = failed("myproject", "broke in mp");
    let ot = failed("other", "broke in other");
    let open = created_id(&w.wo_in("other", &["create", "--title", "still open"]));
    let hq = created_id(
        &w.sb
            .run_in(&w.root, "wo", &["create", "--title", "company work"]),
    );
    (w, [mp, ot, open, hq])
}

fn ids(out: &Out) -> Vec<String> {
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn at_the_company_root_reads_cover_every_store() {
    let (w, [mp, ot, open, hq]) = two_factories();
    let root = |args: &[&str]| w.sb.run_in(&w.root, "wo", args);
    assert!(
        hq.starts_with("hq-"),
        "a write at the root goes to the company store: {hq}"
    );
    // The failed work of both factories, with a FACTORY column.
    let failed = root(&["list", "--status=failed"]);
    let lines: Vec<&str> = failed.ok().lines().collect();
    assert!(lines[0].starts_with("FACTORY "), "{}", failed.stdout);
    assert_eq!(lines.len(), 3, "{}", failed.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("myproject ") && l.contains(&mp))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("other ") && l.contains(&ot))
    );
    let mut all = ids(&root(&["list", "--json"]));
    all.sort();
    let mut want = vec![mp.clone(), ot.clone(), open.clone(), hq.clone()];
    want.sort();
    assert_eq!(all, want);
    let company = root(&["list"]);
    assert!(
        company
            .stdout
            .lines()
            .any(|l| l.starts_with("(company) ") && l.contains(&hq)),
        "{}",
        company.stdout
    );
    // --factory narrows; inside a factory a read stays on its store, as before.
    let mut other = ids(&root(&["list", "--factory", "other", "--json"]));
    other.sort();
    let mut want = vec![ot.clone(), open.clone()];
    want.sort();
    assert_eq!(other, want);
    assert_eq!(ids(&w.wo(&["list", "--json"])), vec![mp.clone()]);
    assert!(!w.wo(&["list"]).ok().contains("FACTORY"));
    assert_eq!(
        ids(&w.wo(&["list", "--factory", "other", "--status", "failed", "--json"])),
        vec![ot.clone()]
    );
    let err = root(&["list", "--factory", "nope"]).fails(3).to_string();
    assert!(err.contains("myproject, other"), "{err}");
    // --work-dir names one store exactly.
    assert_eq!(
        ids(&root(&["--work-dir", ".work", "list", "--json"])),
        vec![hq.clone()]
    );
    // Stats: the sums and one line per store.
    let st = root(&["stats", "--json"]).json();
    assert_eq!(st["total"], 4);
    assert_eq!(st["by_status"]["failed"], 2);
    let stores = st["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 3);
    assert_eq!(stores[0]["factory"], serde_json::Value::Null);
    assert_eq!(stores[1]["factory"], "myproject");
    assert_eq!(stores[2]["total"], 2);
    let human = root(&["stats"]);
    assert!(human.ok().contains("in 3 stores"), "{}", human.stdout);
    assert!(human.stdout.contains("FACTORY"), "{}", human.stdout);
    assert_eq!(w.wo(&["stats", "--json"]).json()["total"], 1);
    // Events: every store's, merged by time, a factory's tagged.
    let evs = root(&["events", "list", "--json"]).json();
    let evs = evs.as_array().unwrap();
    let created: Vec<(&str, &str)> = evs
        .iter()
        .filter(|e| e["event_type"] == "work_order.created")
        .map(|e| {
            (
                e["factory"].as_str().unwrap_or("-"),
                e["data"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        created,
        vec![
            ("myproject", mp.as_str()),
            ("other", ot.as_str()),
            ("other", open.as_str()),
            ("-", hq.as_str())
        ]
    );
    let times: Vec<&str> = evs
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.is_sorted(), "{times:?}");
    let human = root(&["events", "list", "--type", "work_order.created"]);
    assert!(
        human
            .ok()
            .lines()
            .any(|l| l.starts_with("other ") && l.contains(&open)),
        "{}",
        human.stdout
    );
    let only = root(&["events", "list", "--factory", "myproject", "--jsonl"]);
    assert_eq!(only.ok().lines().count(), 3);
    assert!(
        !only.stdout.contains("\"factory\""),
        "one store: lines as stored"
    );
    let vol = root(&["events", "stats", "--json"]).json();
    assert_eq!(vol["by_factory"]["myproject"], 3);
    assert_eq!(vol["by_factory"]["(company)"], 4, "{vol}");
    // A write at the root about a factory's work order goes to that factory's store.
    root(&["update", &open, "--priority", "0"]).ok();
    assert_eq!(
        w.wo_in("other", &["show", &open, "--json"]).json()["priority"],
        0
    );
    root(&["close", &hq]).ok();
    assert_eq!(
        root(&["--work-dir", ".work", "show", &hq, "--json"]).json()["status"],
        "closed"
    );
}

#[test]
fn events_tail_at_the_root_follows_every_store() {
    use std::io::BufRead;
    let (w, _) = two_factories();
    let mut child =
        w.sb.command(bin("wo"))
            .args(["events", "tail", "-n", "2", "--jsonl"])
            .current_dir(&w.root)
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
    let wait = || rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    // The last two of all stores: the open one in `other`, then the company's.
    let first: serde_json::Value = serde_json::from_str(&wait()).unwrap();
    let second: serde_json::Value = serde_json::from_str(&wait()).unwrap();
    assert_eq!(first["factory"], "other");
    assert!(second.get("factory").is_none(), "{second}");
    let id = created_id(&w.wo(&["create", "--title", "later"]));
    let next: serde_json::Value = serde_json::from_str(&wait()).unwrap();
    assert_eq!(next["factory"], "myproject");
    assert_eq!(next["data"]["id"], id.as_str());
    let hq = created_id(&w.sb.run_in(&w.root, "wo", &["create", "--title", "top"]));
    let next: serde_json::Value = serde_json::from_str(&wait()).unwrap();
    assert_eq!(next["data"]["id"], hq.as_str());
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn the_company_feed_shows_a_factorys_events() {
    let w = World::bare_in(Sandbox::new());
    let feed = w.root.join(".work/feed.jsonl");
    let id = w.create("made in the factory", &[]);
    let last: serde_json::Value =
        serde_json::from_str(fs::read_to_string(&feed).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(last["event_type"], "work_order.created");
    assert_eq!(last["factory"], "myproject");
    assert_eq!(last["data"]["id"], id.as_str());
    // The factory's own feed has the line as stored (no tag), and the company's own events
    // are untagged in the company feed.
    let own = fs::read_to_string(w.factory_dir().join(".work/feed.jsonl")).unwrap();
    let own_last: serde_json::Value = serde_json::from_str(own.lines().last().unwrap()).unwrap();
    assert!(own_last.get("factory").is_none());
    assert_eq!(own_last["event_id"], last["event_id"]);
    let hq = created_id(
        &w.sb
            .run_in(&w.root, "wo", &["create", "--title", "company's"]),
    );
    let text = fs::read_to_string(&feed).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["data"]["id"], hq.as_str());
    assert!(last.get("factory").is_none());
    // factory.added (company) and the factory's first event are both there, in order.
    let types: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            format!(
                "{}:{}",
                v["factory"].as_str().unwrap_or("company"),
                v["event_type"].as_str().unwrap()
            )
        })
        .collect();
    let added = types
        .iter()
        .position(|t| t == "company:factory.added")
        .unwrap();
    let created = types
        .iter()
        .position(|t| t == "myproject:work_order.created")
        .unwrap();
    assert!(added < created, "{types:?}");
}

#[test]
fn every_command_that_prints_something_has_json() {
    let w = World::bare_in(Sandbox::new());
    let co = |args: &[&str]| w.co(args);
    // Company and mail.
    let v = co(&["init", "--json"]).json();
    assert_eq!(v["created"], false);
    assert_eq!(v["root"], w.root.to_str().unwrap());
    let v = co(&["send", "ceo", "-s", "hello", "-m", "body", "--json"]).json();
    let msg = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["to"], "ceo");
    assert_eq!(v["nudged"], false);
    let v = co(&["archive", &msg, "--json"]).json();
    assert_eq!(
        (v["archived"].clone(), v["already"].clone()),
        (true.into(), false.into())
    );
    let v = co(&[
        "factory",
        "add",
        "third",
        w.origin.to_str().unwrap(),
        "--json",
    ])
    .json();
    assert_eq!(v["prefix"], "th");
    let id = w.create("assign me", &[]);
    let v = co(&[
        "assignment",
        "set",
        "myproject/workers/slot0",
        &format!("work_order:{id}"),
        "--json",
    ])
    .json();
    assert_eq!(v["work_order"], id.as_str());
    let v = co(&["assignment", "clear", "myproject/workers/slot0", "--json"]).json();
    assert_eq!(v["was"]["work_order"], id.as_str());
    // Work orders.
    let wo = |args: &[&str]| w.wo(args);
    let other = w.create("other", &[]);
    let v = wo(&[
        "update",
        &id,
        "--status",
        "blocked",
        "--priority",
        "0",
        "--json",
    ])
    .json();
    assert_eq!(v["status"]["from"], "open");
    assert_eq!(v["status"]["to"], "blocked");
    assert_eq!(v["changed"], serde_json::json!(["priority"]));
    let v = wo(&["dep", "add", &id, &other, "--json"]).json();
    assert_eq!(v["depends_on"], other.as_str());
    let v = wo(&["dep", "remove", &id, &other, "--json"]).json();
    assert_eq!(v["removed"], true);
    let v = wo(&["close", &id, &other, "--json"]).json();
    assert_eq!(v["closed"], serde_json::json!([id, other]));
    let v = wo(&["rebuild-projections", "--json"]).json();
    assert_eq!(v["work_orders"], 2);
    let v = wo(&["events", "archive", "--older-than", "7d", "--json"]).json();
    assert_eq!(v["stores"][0]["archived"], serde_json::json!([]));
    let plain = w.sb.path().join("plain");
    fs::create_dir_all(&plain).unwrap();
    let v = w.sb.run_in(&plain, "wo", &["init", "--json"]).json();
    assert_eq!(v["created"], true);
    assert_eq!(v["prefix"], "wo");
}
