//! The operations guide's sprints, teams and weekly metrics end to end: `co sprint`,
//! `co team` (a workspace people use beside the agents, whose work reaches the target only
//! through QA's gates) and `wo eval report`. Real tmux on private sockets, real git, scripted
//! agents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;
use vermas_tests::{World, git, read_events, wait_for};

fn types_in(work: &Path, prefix: &str) -> Vec<serde_json::Value> {
    read_events(work)
        .into_iter()
        .filter(|e| e["event_type"].as_str().unwrap().starts_with(prefix))
        .collect()
}

#[test]
fn a_sprint_goes_through_create_add_list_show_and_close_with_counts_matching_wo_stats() {
    let w = World::new("good.sh", "");
    let company_work = w.root.join(".work");
    let ids: Vec<String> = (0..6)
        .map(|i| w.create(&format!("Task {i}"), &[]))
        .collect();
    // Statuses as a week of work leaves them.
    w.wo(&["update", &ids[1], "--status", "in_progress"]).ok();
    w.wo(&[
        "update",
        &ids[2],
        "--status",
        "blocked",
        "--reason",
        "needs the API key",
    ])
    .ok();
    w.wo(&["close", &ids[3]]).ok();
    w.wo(&["update", &ids[4], "--status", "cancelled"]).ok();
    w.wo(&["dep", "add", &ids[5], &ids[2]]).ok();

    let made = w.co(&[
        "sprint",
        "create",
        "login-page",
        "--factory",
        "myproject",
        "--goal",
        "Ship login",
        "--json",
    ]);
    let sprint = made.json();
    let sid = sprint["id"].as_str().unwrap().to_string();
    assert!(sid.starts_with("sprint-"), "{sprint}");
    assert_eq!(sprint["status"], "open");
    assert_eq!(sprint["factory"], "myproject");

    // Bad input: one line naming the fix, and nothing written.
    let before = read_events(&company_work).len();
    let dup = w.co(&["sprint", "create", "login-page"]);
    assert!(
        dup.fails(5).contains("co sprint close login-page"),
        "{}",
        dup.stderr
    );
    let bad = w.co(&["sprint", "create", "Login Page"]);
    assert!(bad.fails(2).contains("lowercase letters"), "{}", bad.stderr);
    w.co(&["sprint", "create", "x", "--factory", "nope"])
        .fails(3);
    let mut args = vec!["sprint", "add", "login-page"];
    args.extend(ids.iter().map(String::as_str));
    args.push("mp-zzzzzz");
    let missing = w.co(&args);
    assert!(missing.fails(3).contains("mp-zzzzzz"), "{}", missing.stderr);
    w.co(&["sprint", "add", "no-such-sprint", &ids[0]]).fails(3);
    assert_eq!(
        read_events(&company_work).len(),
        before,
        "nothing was written"
    );

    let mut args = vec!["sprint", "add", "login-page"];
    args.extend(ids.iter().map(String::as_str));
    args.push("--json");
    let added = w.co(&args).json();
    assert_eq!(added["added"].as_array().unwrap().len(), 6);
    // Adding again is a no-op that says so.
    let again = w
        .co(&["sprint", "add", "login-page", &ids[0], "--json"])
        .json();
    assert_eq!(again["already"][0], ids[0].as_str());
    assert!(again["added"].as_array().unwrap().is_empty());
    // A work order is in one open sprint at a time.
    w.co(&["sprint", "create", "other"]).ok();
    let taken = w.co(&["sprint", "add", "other", &ids[0]]);
    assert!(taken.fails(5).contains("login-page"), "{}", taken.stderr);
    // A sprint for a factory takes the company's work, not another factory's.
    w.add_factory("second", "se", "good.sh", "");
    let foreign = vermas_tests::created_id(&w.wo_in("second", &["create", "--title", "Elsewhere"]));
    let refused = w.co(&["sprint", "add", "login-page", &foreign]);
    assert!(
        refused.fails(5).contains("belongs to factory second"),
        "{}",
        refused.stderr
    );
    let hq = vermas_tests::created_id(&w.sb.run_in(
        &w.root,
        "wo",
        &["create", "--title", "Company-wide"],
    ));
    w.co(&["sprint", "create", "company-wide", "--factory", "myproject"])
        .ok();
    w.co(&["sprint", "add", "company-wide", &hq, "--json"]).ok();

    // The counts are the store's counts (every work order of the factory is in the sprint).
    let list = w.co(&["sprint", "list", "--json"]).json();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "login-page")
        .unwrap()
        .clone();
    let stats = w.wo(&["stats", "--json"]).json();
    assert_eq!(row["by_status"], stats["by_status"], "{row}");
    assert_eq!(row["total"], stats["total"]);
    assert_eq!(row["blocked"].as_array().unwrap().len(), 2, "{row}");
    assert_eq!(row["blocked"][0]["why"], "needs the API key");
    assert!(
        row["blocked"][1]["why"]
            .as_str()
            .unwrap()
            .contains(&format!("waits on {} (blocked)", ids[2])),
        "{row}"
    );
    assert_eq!(row["oldest_open"]["id"], ids[0].as_str());
    // The table people watch: one line per sprint, then what needs someone.
    let table = w.co(&["sprint", "list"]).ok().to_string();
    let line = table.lines().find(|l| l.starts_with("login-page")).unwrap();
    let cells: Vec<&str> = line.split_whitespace().collect();
    // SPRINT FACTORY WORK OPEN QUEUED WORKING REVIEW REWORK BLOCKED FAILED DONE
    assert_eq!(
        &cells[..11],
        &[
            "login-page",
            "myproject",
            "6",
            "2",
            "0",
            "1",
            "0",
            "0",
            "1",
            "0",
            "2"
        ],
        "{table}"
    );
    assert!(table.contains("needs the API key"), "{table}");
    assert!(table.contains("blocked"), "{table}");

    let show = w.co(&["sprint", "show", "login-page", "--json"]).json();
    assert_eq!(show["sprint"]["goal"], "Ship login");
    assert_eq!(show["work_orders"].as_array().unwrap().len(), 6);
    let text = w.co(&["sprint", "show", "login-page"]).ok().to_string();
    assert!(
        text.contains("Goal: Ship login") && text.contains(&ids[5]),
        "{text}"
    );

    // Removing takes a work order out (all or none), without touching it.
    w.co(&["sprint", "remove", "login-page", &ids[0], "mp-zzzzzz"])
        .fails(3);
    w.co(&["sprint", "remove", "login-page", &ids[0]]).ok();
    assert_eq!(w.status_of(&ids[0]), "open");
    let show = w.co(&["sprint", "show", "login-page", "--json"]).json();
    assert_eq!(show["sprint"]["total"], 5);
    assert_eq!(show["sprint"]["by_status"]["open"], 1);

    let closed = w.co(&["sprint", "close", "login-page"]);
    assert!(
        closed.ok().contains("2 of 5 work orders done"),
        "{}",
        closed.stdout
    );
    let late = w.co(&["sprint", "add", "login-page", &ids[0]]);
    assert!(late.fails(5).contains("is closed"), "{}", late.stderr);
    let open_now = w.co(&["sprint", "list", "--json"]).json();
    assert!(
        open_now
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "login-page")
    );
    let all = w.co(&["sprint", "list", "--all", "--json"]).json();
    let old = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == sid.as_str())
        .unwrap();
    assert_eq!(old["status"], "closed");
    // Its name is free again; show by name finds the open one, by id the old one.
    w.co(&["sprint", "create", "login-page"]).ok();
    let fresh = w.co(&["sprint", "show", "login-page", "--json"]).json();
    assert_ne!(fresh["sprint"]["id"], sid.as_str());
    assert_eq!(
        w.co(&["sprint", "show", &sid, "--json"]).json()["sprint"]["status"],
        "closed"
    );

    // The events, in the company store, rebuild to the same projection.
    let kinds: Vec<String> = types_in(&company_work, "sprint.")
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_string())
        .collect();
    for t in [
        "sprint.created",
        "sprint.work_order_added",
        "sprint.work_order_removed",
        "sprint.closed",
    ] {
        assert!(kinds.iter().any(|k| k == t), "{t} in {kinds:?}");
    }
    let projection = company_work.join("sprints.jsonl");
    w.sb.run_in(&w.root, "wo", &["rebuild-projections"]).ok();
    let before = std::fs::read(&projection).unwrap();
    std::fs::remove_file(&projection).unwrap();
    w.sb.run_in(&w.root, "wo", &["rebuild-projections"]).ok();
    assert_eq!(std::fs::read(&projection).unwrap(), before);
    w.sb.run_in(&w.root, "wo", &["doctor"]).ok();
    // A damaged record is found by wo doctor and repaired by a rebuild.
    let damaged = String::from_utf8(before.clone())
        .unwrap()
        .replace("Ship login", "Ship logout");
    std::fs::write(&projection, damaged).unwrap();
    let doc = w.sb.run_in(&w.root, "wo", &["doctor"]);
    assert_eq!(doc.code, 1, "{}", doc.stdout);
    assert!(doc.stdout.contains("sprints.jsonl"), "{}", doc.stdout);
    w.sb.run_in(&w.root, "wo", &["rebuild-projections"]).ok();
    assert_eq!(std::fs::read(&projection).unwrap(), before);
}

fn pane_of(w: &World, session: &str) -> String {
    w.pane(session)
}

#[test]
fn a_team_gets_mail_shows_in_the_list_and_is_removed_only_without_unmerged_work() {
    let w = World::new("good.sh", "");
    let f = w.factory_dir();
    let added = w
        .co(&["team", "add", "dev", "--factory", "myproject", "--json"])
        .json();
    assert_eq!(added["address"], "myproject/teams/dev");
    let dir = f.join("teams/dev");
    assert!(dir.join("README.md").is_file(), "a checkout of the target");
    assert_eq!(
        git(&dir, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "team/dev"
    );
    assert_eq!(
        git(&f, &["rev-parse", "team/dev"]),
        git(&f, &["rev-parse", "main"])
    );
    // A tagged session running a shell in the worktree, as the team's agent id.
    assert!(w.sessions().contains(&"team-myproject-dev".to_string()));
    let tags = w
        .tmux(&["show-options", "-t", "=team-myproject-dev:"])
        .stdout;
    assert!(tags.contains("@vermas_role team"), "{tags}");
    assert!(tags.contains("@vermas_agent myproject/teams/dev"), "{tags}");
    assert!(
        tags.contains(&format!("@vermas_company {}", w.root.display())),
        "{tags}"
    );
    w.tmux(&[
        "send-keys",
        "-t",
        "=team-myproject-dev:",
        "echo \"me=$AGENT_ID at $(pwd)\"",
        "Enter",
    ]);
    w.wait_pane(
        "team-myproject-dev",
        &format!("me=myproject/teams/dev at {}", dir.display()),
        10,
    );
    // No agent: nothing but the shell runs there.
    let pid = w
        .tmux(&[
            "display-message",
            "-p",
            "-t",
            "=team-myproject-dev:",
            "#{pane_current_command}",
        ])
        .stdout;
    assert!(["sh", "bash", "dash", "zsh"].contains(&pid.trim()), "{pid}");
    // A second team of the same name, a bad name, the target branch: refused, nothing made.
    w.co(&["team", "add", "dev", "--factory", "myproject"])
        .fails(5);
    w.co(&["team", "add", "Dev", "--factory", "myproject"])
        .fails(2);
    w.co(&[
        "team",
        "add",
        "qa2",
        "--factory",
        "myproject",
        "--branch",
        "main",
    ])
    .fails(2);
    w.co(&["team", "add", "x", "--factory", "nope"]).fails(3);
    assert!(!f.join("teams/qa2").exists());

    // Mail reaches it; nothing is typed into the person's shell.
    std::thread::sleep(Duration::from_millis(2500));
    w.co(&[
        "send",
        "myproject/teams/dev",
        "-s",
        "Welcome",
        "-m",
        "Start with the README",
    ])
    .ok();
    let inbox = w
        .co_as(
            &dir,
            &[("AGENT_ID", "myproject/teams/dev")],
            &["inbox", "--json"],
        )
        .json();
    assert_eq!(inbox[0]["subject"], "Welcome");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !pane_of(&w, "team-myproject-dev").contains("new mail"),
        "nothing typed into a team's shell"
    );
    let list = w.co(&["team", "list", "--json"]).json();
    let t = &list[0];
    assert_eq!(t["name"], "dev");
    assert_eq!(t["session_alive"], true);
    assert_eq!(t["unread_mail"], 1);
    assert_eq!(t["ahead"], 0);
    assert!(w.co(&["team", "list"]).ok().contains("team/dev"));

    // Work not in the target keeps the workspace: refused without --force, nothing touched.
    std::fs::write(dir.join("notes.txt"), "draft\n").unwrap();
    let dirty = w.co(&["team", "remove", "dev", "--factory", "myproject", "--force"]);
    assert!(dirty.fails(5).contains("uncommitted"), "{}", dirty.stderr);
    git(&dir, &["add", "notes.txt"]);
    git(&dir, &["commit", "-qm", "Notes"]);
    // A work order the team takes on is handed to QA for it (no QA runs here: it waits).
    let task = w.create("Write the notes", &[]);
    let sub = w
        .co(&[
            "team",
            "submit",
            "dev",
            "--factory",
            "myproject",
            "--work-order",
            &task,
            "--json",
        ])
        .json();
    assert_eq!(sub["work_order"], task.as_str());
    assert_eq!(sub["created"], false);
    let wo = w.wo(&["show", &task, "--json"]).json();
    assert_eq!(wo["status"], "in_review");
    assert_eq!(wo["assignee"], "myproject/teams/dev");
    assert_eq!(
        git(&f, &["rev-parse", &format!("vermas/{task}")]),
        git(&f, &["rev-parse", "team/dev"])
    );
    let qa = w
        .co_as(&f, &[("AGENT_ID", "myproject/qa")], &["inbox", "--json"])
        .json();
    assert_eq!(qa[0]["type"], "READY_FOR_QA");
    assert_eq!(qa[0]["meta"]["branch"], format!("vermas/{task}"));
    let waiting = w.co(&["team", "submit", "dev", "--factory", "myproject"]);
    assert!(
        waiting.fails(5).contains("still waiting for QA"),
        "{}",
        waiting.stderr
    );
    let unmerged = w.co(&["team", "remove", "dev", "--factory", "myproject"]);
    assert!(
        unmerged.fails(5).contains("1 commit(s) not in main"),
        "{}",
        unmerged.stderr
    );
    assert!(dir.join("notes.txt").is_file());
    assert!(w.sessions().contains(&"team-myproject-dev".to_string()));
    // --force removes the workspace and keeps the branch with its commit.
    let forced = w.co(&["team", "remove", "dev", "--factory", "myproject", "--force"]);
    assert!(forced.ok().contains("kept"), "{}", forced.stdout);
    assert!(!dir.exists());
    w.wait_no_session("team-myproject-dev", 5);
    assert!(git(&f, &["log", "--format=%s", "team/dev"]).contains("Notes"));
    // The address is gone with it.
    w.co(&["send", "myproject/teams/dev", "-s", "x", "-m", "y"])
        .fails(3);
    assert!(
        w.co(&["team", "list", "--json"])
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A team that made nothing goes with its branch.
    w.co(&["team", "add", "ops", "--factory", "myproject"]).ok();
    w.co(&["team", "remove", "ops", "--factory", "myproject"])
        .ok();
    assert!(!git(&f, &["branch", "--list"]).contains("team/ops"));
    let removed = types_in(&f.join(".work"), "team.removed");
    assert_eq!(removed.len(), 2);
    assert_eq!(removed[0]["data"]["branch_kept"], true);
    assert_eq!(removed[0]["data"]["unmerged_commits"], 1);
    assert_eq!(removed[1]["data"]["branch_kept"], false);
    w.wo(&["doctor"]).ok();
}

#[test]
fn a_teams_work_reaches_the_target_only_through_the_gates() {
    let w = World::new("good.sh", World::CHECK_GATE).fast();
    w.start_operations();
    let f = w.factory_dir();
    w.co(&["team", "add", "dev", "--factory", "myproject"]).ok();
    let dir = f.join("teams/dev");
    w.co(&["team", "submit", "dev", "--factory", "myproject"])
        .fails(5);
    std::fs::write(dir.join("answer-team.txt"), "wrong\n").unwrap();
    git(&dir, &["add", "."]);
    git(&dir, &["commit", "-qm", "Answer the question"]);
    let main_before = git(&f, &["rev-parse", "main"]);
    // Submitted from the team's own shell environment: the team is the sender.
    let sub = w
        .co_as(
            &dir,
            &[("AGENT_ID", "myproject/teams/dev")],
            &["team", "submit", "--json"],
        )
        .json();
    let id = sub["work_order"].as_str().unwrap().to_string();
    assert_eq!(sub["created"], true);
    assert_eq!(sub["branch"], format!("vermas/{id}"));
    assert_eq!(sub["title"], "team dev: Answer the question");
    // The gate fails: back as rework, the target untouched, the reason visible to the team.
    w.wait_status(&id, "rework", 30);
    assert_eq!(git(&f, &["rev-parse", "main"]), main_before);
    let list = w.co(&["team", "list", "--json"]).json();
    let last = &list[0]["last_submission"];
    assert_eq!(last["work_order"], id.as_str());
    assert_eq!(last["status"], "rework");
    assert!(
        last["last_failure"]
            .as_str()
            .unwrap()
            .contains("says wrong"),
        "{last}"
    );
    // No worker takes the team's rework.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(w.status_of(&id), "rework");
    assert!(
        !w.factory_events()
            .iter()
            .any(|e| e["event_type"] == "slot.allocated" && e["data"]["work_order"] == id.as_str())
    );
    // Fixed and handed in again: the same work order, merged once the gate passes.
    std::fs::write(dir.join("answer-team.txt"), "right\n").unwrap();
    git(&dir, &["commit", "-qam", "Fix the answer"]);
    let again = w
        .co(&["team", "submit", "dev", "--factory", "myproject", "--json"])
        .json();
    assert_eq!(again["work_order"], id.as_str());
    assert_eq!(again["resubmitted"], true);
    w.wait_status(&id, "closed", 30);
    let wo = w.wo(&["show", &id, "--json"]).json();
    let merge = wo["merge_commit"].as_str().unwrap();
    assert_eq!(git(&f, &["rev-parse", "main"]), merge);
    assert_eq!(git(&f, &["show", "main:answer-team.txt"]), "right");
    assert_eq!(wo["labels"][0], "team:dev");
    let gates: Vec<_> = w
        .factory_events()
        .into_iter()
        .filter(|e| e["event_type"] == "qa.gate_run")
        .collect();
    assert_eq!(gates.len(), 2);
    assert_eq!(gates[0]["data"]["passed"], false);
    assert_eq!(gates[1]["data"]["passed"], true);
    // QA removed only its snapshot: the team's worktree and branch are as they were.
    let branches = git(&f, &["branch", "--list"]);
    assert!(!branches.contains(&format!("vermas/{id}")), "{branches}");
    assert!(branches.contains("team/dev"), "{branches}");
    assert!(dir.join("answer-team.txt").is_file());
    assert!(w.sessions().contains(&"team-myproject-dev".to_string()));
    let submitted = types_in(&f.join(".work"), "team.submitted");
    assert_eq!(submitted.len(), 2);
    assert_eq!(submitted[0]["actor"], "myproject/teams/dev");
    let ready: Vec<_> = w
        .factory_events()
        .into_iter()
        .filter(|e| e["event_type"] == "mail.sent" && e["data"]["type"] == "READY_FOR_QA")
        .collect();
    assert_eq!(ready[0]["data"]["from"], "myproject/teams/dev");
    assert_eq!(ready[0]["data"]["to"], "myproject/qa");
    // Merged: the workspace goes without --force, and so does the branch the team made.
    w.co(&["team", "remove", "dev", "--factory", "myproject"])
        .ok();
    assert!(!git(&f, &["branch", "--list"]).contains("team/dev"));
}

/// Seconds between two stored timestamps.
fn secs_between(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let t = |v: &serde_json::Value| {
        vermas_core::clock::parse_timestamp(v["timestamp"].as_str().unwrap()).unwrap()
    };
    (t(b) - t(a)).num_milliseconds() as f64 / 1000.0
}

#[test]
fn the_eval_report_after_a_run_with_one_rework_gives_the_right_numbers() {
    let w = World::new("wrong-then-right.sh", World::CHECK_GATE).fast();
    let other = w.add_factory("other", "ot", "good.sh", World::CHECK_GATE);
    w.start_operations();
    let id = w.create("Answer the question", &[]);
    let good = vermas_tests::created_id(&w.wo_in("other", &["create", "--title", "Easy one"]));
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.co(&["dispatch", &good, "other"]).ok();
    w.wait_status(&id, "closed", 40);
    wait_for(Duration::from_secs(40), "the other factory's merge", || {
        (w.wo_in("other", &["show", &good, "--json"]).json()["status"] == "closed").then_some(())
    });

    let r = w.co(&["operations", "stop"]);
    r.ok();
    let report = w.sb.run_in(
        &w.root,
        "wo",
        &["eval", "report", "--since", "1h", "--json"],
    );
    let j = report.json();
    let total = &j["total"];
    assert_eq!(total["finished"], 2, "{j}");
    assert_eq!(total["merged"], 2);
    assert_eq!(total["failed"], 0);
    assert_eq!(total["first_try"], 1);
    assert_eq!(total["first_try_rate"], 0.5);
    assert_eq!(total["rework_rounds"], 1);
    assert_eq!(total["rework_rounds_per_work_order"], 0.5);
    assert_eq!(total["nudges"], 0);
    assert_eq!(total["stuck_kills"], 0);
    assert_eq!(total["escalations"], 0);
    assert_eq!(total["gates"][0]["gate"], "check");
    assert_eq!(total["gates"][0]["runs"], 3);
    assert_eq!(total["gates"][0]["failed"], 1);
    assert_eq!(total["dispatch_to_merge"]["count"], 2);

    let row = |list: &serde_json::Value, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name} in {list}"))
            .clone()
    };
    let mp = row(&j["by_factory"], "myproject");
    assert_eq!(mp["first_try"], 0);
    assert_eq!(mp["first_try_rate"], 0.0);
    assert_eq!(mp["rework_rounds"], 1);
    assert_eq!(mp["gates"][0]["runs"], 2);
    assert_eq!(mp["gates"][0]["failure_rate"], 0.5);
    // Dispatch to merge is the time between the first assignment and the merge, to the ms.
    let fe = w.factory_events();
    let first = fe
        .iter()
        .find(|e| e["event_type"] == "work_order.assigned" && e["data"]["id"] == id.as_str())
        .unwrap();
    // The merge is the first of `qa.merged` and the close with its merge commit.
    let expected = fe
        .iter()
        .filter(|e| {
            (e["event_type"] == "qa.merged" && e["data"]["work_order"] == id.as_str())
                || (e["event_type"] == "work_order.closed"
                    && e["data"]["id"] == id.as_str()
                    && e["data"]["merge_commit"].is_string())
        })
        .map(|e| secs_between(first, e))
        .fold(f64::INFINITY, f64::min);
    assert!(expected > 0.0);
    assert_eq!(mp["dispatch_to_merge"]["median_seconds"], expected);
    assert_eq!(mp["dispatch_to_merge"]["p90_seconds"], expected);
    let ot = row(&j["by_factory"], "other");
    assert_eq!(ot["first_try_rate"], 1.0);
    assert_eq!(ot["rework_rounds"], 0);
    // Both ran the scripted runtime.
    let runtime = fe
        .iter()
        .find(|e| e["event_type"] == "slot.allocated")
        .unwrap()["data"]["runtime"]
        .as_str()
        .unwrap()
        .to_string();
    let rt = row(&j["by_runtime"], &runtime);
    assert_eq!(rt["merged"], 2);
    assert_eq!(rt["first_try_rate"], 0.5);

    // One factory only; the table for people; the window; bad input.
    let only =
        w.sb.run_in(
            &w.root,
            "wo",
            &["eval", "report", "--factory", "other", "--json"],
        )
        .json();
    assert_eq!(only["total"]["finished"], 1);
    assert_eq!(only["total"]["first_try_rate"], 1.0);
    let table =
        w.sb.run_in(&other, "wo", &["eval", "report", "--since", "7d"]);
    let text = table.ok();
    assert!(
        text.contains("myproject") && text.contains("other"),
        "{text}"
    );
    assert!(text.contains("1/2 50%"), "{text}");
    let future =
        w.sb.run_in(
            &w.root,
            "wo",
            &["eval", "report", "--since", "2099-01-01", "--json"],
        )
        .json();
    assert_eq!(future["total"]["finished"], 0);
    let bare =
        w.sb.run_in(&w.root, "wo", &["eval", "report", "--since", "7"]);
    let err = bare.fails(2);
    assert!(err.contains("7d") && err.contains("2w"), "{err}");
    w.sb.run_in(&w.root, "wo", &["eval", "report", "--factory", "nope"])
        .fails(3);
}
