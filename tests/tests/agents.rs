//! Issue 9 end to end with scripted agents: the whole process tree of an agent ends with it,
//! a busy agent is left alone while an idle one is nudged (again, with backoff), no secret is
//! ever on a command line, and a question is left to a person.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::time::Duration;
use vermas_tests::{World, pids_with_env, wait_for};

fn events_of(w: &World, ty: &str) -> Vec<serde_json::Value> {
    w.factory_events()
        .into_iter()
        .filter(|e| e["event_type"] == ty)
        .collect()
}

/// The incarnation of the worker in slot 0.
fn incarnation(w: &World) -> String {
    let list = w.co(&["worker", "list", "--json"]).json();
    list[0]["incarnation"].as_str().unwrap().to_string()
}

/// The processes an incarnation started that are still alive (zombies aside).
fn alive(inc: &str) -> Vec<u32> {
    pids_with_env(&format!("VERMAS_INCARNATION={inc}"))
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .is_ok_and(|s| s.rfind(')').is_some_and(|i| !s[i + 2..].starts_with('Z')))
        })
        .collect()
}

fn wait_gone(inc: &str, secs: u64, how: &str) {
    wait_for(
        Duration::from_secs(secs),
        &format!("no process left after {how}"),
        || alive(inc).is_empty().then_some(()),
    );
}

fn started_daemons(w: &World) -> String {
    w.wait_pane("worker-myproject-slot0", "daemons started", 20);
    let inc = incarnation(w);
    // The session itself, a setsid child, a nohup child and a double-forked one.
    let n = wait_for(Duration::from_secs(5), "the agent's children", || {
        let n = alive(&inc).len();
        (n >= 4).then_some(n)
    });
    assert!(n >= 4, "{n}");
    inc
}

#[test]
fn co_worker_kill_ends_every_process_the_agent_started() {
    let w = World::new("daemons.sh hang", "");
    let id = w.create("leaves daemons", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    let inc = started_daemons(&w);
    let out = w.co(&["worker", "kill", "myproject", "0", "--json"]);
    let report = out.json();
    // At least the setsid and nohup children outlive the session kill.
    assert!(report["leftovers"].as_u64().unwrap() >= 2, "{report}");
    wait_gone(&inc, 5, "co worker kill");
}

#[test]
fn a_stuck_kill_ends_every_process_the_agent_started() {
    let w = World::new(
        "daemons.sh hang",
        "[worker]\nidle_timeout_minutes = 0.01\nstuck_timeout_minutes = 0.04\nmax_attempts = 1\n",
    )
    .fast();
    w.start_operations();
    let id = w.create("leaves daemons and hangs", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    let inc = started_daemons(&w);
    w.wait_status(&id, "failed", 30);
    wait_gone(&inc, 10, "the stuck kill");
}

#[test]
fn co_worker_done_leaves_no_process_of_the_agent_behind() {
    let w = World::new("daemons.sh done", World::CHECK_GATE).fast();
    w.start_operations();
    let id = w.create("leaves daemons and finishes", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    // Handed in: looked for in the log, as QA may have merged it already.
    wait_for(Duration::from_secs(20), "co worker done", || {
        events_of(&w, "work_order.status_changed")
            .iter()
            .any(|e| e["data"]["id"] == id.as_str() && e["data"]["to"] == "in_review")
            .then_some(())
    });
    let inc = events_of(&w, "agent.started")[0]["data"]["incarnation"]
        .as_str()
        .unwrap()
        .to_string();
    wait_gone(
        &inc,
        20,
        "co worker done (the supervisor ends what is left)",
    );
    w.wait_status(&id, "closed", 30);
}

#[test]
fn a_busy_agent_is_not_nudged_or_killed_but_an_idle_one_is_nudged_again_and_again() {
    let w = World::new(
        "busy.sh 10",
        &format!(
            "{}\n[worker]\nidle_timeout_minutes = 0.05\nstuck_timeout_minutes = 0.1\n",
            World::CHECK_GATE
        ),
    )
    .fast();
    w.start_operations();
    let id = w.create("busy for 10 s, never running co", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    // Longer than stuck_timeout (6 s) of printing without any co or wo command; idle after 3 s
    // (output arrives every 0.5 s, but tmux counts it in whole seconds and a loaded machine
    // patrols late).
    w.wait_status(&id, "closed", 40);
    let idle: Vec<_> = events_of(&w, "agent.nudged")
        .into_iter()
        .filter(|e| e["data"]["reason"] == "idle")
        .collect();
    assert!(idle.is_empty(), "a busy agent is not nudged: {idle:?}");
    assert!(events_of(&w, "agent.idle").is_empty());
    let stuck: Vec<_> = events_of(&w, "agent.stopped")
        .into_iter()
        .filter(|e| e["data"]["reason"].as_str().unwrap().starts_with("stuck"))
        .collect();
    assert!(stuck.is_empty(), "nor killed: {stuck:?}");

    // An idle agent: nudged at the threshold (1.2 s), and again (3.6 s, 8.4 s) while it stays
    // idle; stuck only at 60 s.
    let w = World::new(
        "hang.sh",
        "[worker]\nidle_timeout_minutes = 0.02\nstuck_timeout_minutes = 1\n",
    )
    .fast();
    w.start_operations();
    let id = w.create("idle", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    wait_for(Duration::from_secs(20), "a second idle nudge", || {
        let n = events_of(&w, "agent.nudged")
            .into_iter()
            .filter(|e| e["data"]["reason"] == "idle" && e["data"]["delivered"] == true)
            .count();
        (n >= 2).then_some(())
    });
    // A person's nudge does not use up the idle nudges (they are counted apart).
    w.co(&["nudge", "myproject/workers/slot0", "carry on"]).ok();
}

#[test]
fn no_secret_is_on_any_command_line_while_a_worker_runs() {
    let w = World::new("hang.sh", "");
    let secret = format!("sk-ant-vermas-test-{}", std::process::id());
    let id = w.create("holds a key", &[]);
    let out =
        w.sb.command(vermas_tests::bin("co"))
            .args(["dispatch", &id, "myproject"])
            .current_dir(&w.root)
            .env("ANTHROPIC_API_KEY", &secret)
            .output()
            .unwrap();
    assert!(out.status.success(), "{out:?}");
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(!ps.contains(&secret), "a secret on a command line:\n{ps}");
    // The agent has it.
    let inc = incarnation(&w);
    let pids = alive(&inc);
    assert!(
        pids.iter()
            .any(|p| std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|e| String::from_utf8_lossy(&e).contains(&secret))),
        "the key reached the agent's environment"
    );
    // And the file that carried it is gone.
    let run = w.root.join(".vermas/run");
    let left: Vec<_> = std::fs::read_dir(&run)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_question_is_left_to_a_person_and_shown_as_blocked() {
    let w = World::new(
        "question.sh",
        &format!(
            "{}\n[worker]\nidle_timeout_minutes = 0.05\nstuck_timeout_minutes = 0.1\n",
            World::CHECK_GATE
        ),
    )
    .fast();
    w.start_operations();
    let id = w.create("asks first", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    // (Idle after 3 s: on a loaded machine the agent may take a second to ask, and a nudge
    // before the question is typed into a plain screen, rightly.)
    w.wait_pane("worker-myproject-slot0", "[y/n]", 15);
    // Well past the stuck timeout (6 s): nothing typed, nothing killed, one escalation.
    std::thread::sleep(Duration::from_secs(8));
    let list = w.co(&["worker", "list", "--json"]).json();
    assert_eq!(list[0]["status"], "blocked", "{list}");
    assert_eq!(list[0]["blocked"], "y/n");
    assert!(
        events_of(&w, "agent.nudged")
            .iter()
            .all(|e| e["data"]["delivered"] == false),
        "nothing typed into the question"
    );
    assert!(events_of(&w, "agent.stopped").is_empty(), "not killed");
    let mail: Vec<_> = w
        .co(&["inbox", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["subject"]
                .as_str()
                .unwrap()
                .contains("blocked at a dialog")
        })
        .cloned()
        .collect();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(
        mail[0]["body"]
            .as_str()
            .unwrap()
            .contains(&format!("Proceed with {id}?"))
    );
    // The person answers.
    w.co(&["nudge", "myproject/workers/slot0", "y"]).ok();
    w.wait_status(&id, "closed", 30);
}

/// `co agent-hook` as Claude Code runs it for a worker: the hook's JSON on stdin, the worker's
/// environment.
fn hook(w: &World, incarnation: &str, input: &str) -> vermas_tests::Out {
    use std::io::Write;
    let mut c = w.sb.command(vermas_tests::bin("co"));
    c.arg("agent-hook")
        .current_dir(w.factory_dir().join("workers/slot0"))
        .env("COMPANY_ROOT", &w.root)
        .env("AGENT_ID", "myproject/workers/slot0")
        .env("VERMAS_INCARNATION", incarnation)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    vermas_tests::Out::from(child.wait_with_output().unwrap())
}

#[test]
fn unread_mail_is_handed_over_once_when_a_claude_turn_ends() {
    let w = World::new("hang.sh", "");
    let id = w.create("hangs", &[]);
    w.co(&["dispatch", &id, "myproject"]).ok();
    w.wait_pane("worker-myproject-slot0", "hanging", 15);
    let inc = w.co(&["worker", "list", "--json"]).json()[0]["incarnation"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = r#"{"session_id":"s","hook_event_name":"Stop","stop_hook_active":false}"#;
    // No mail: the turn ends (nothing printed), and the worker is at its prompt.
    let out = hook(&w, &inc, stop);
    assert_eq!((out.code, out.stdout.trim()), (0, ""), "{}", out.stderr);
    let state_file = w
        .factory_dir()
        .join(".work/.agents/.myproject-workers-slot0.json");
    let state: serde_json::Value = serde_json::from_slice(&fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["state"], "idle", "{state}");
    // Mail for it: the next turn's end asks Claude to go on and read it, once.
    let sent = w
        .co(&[
            "send",
            "myproject/workers/slot0",
            "-s",
            "Use the v2 API",
            "-m",
            "details",
            "--json",
        ])
        .json();
    let msg = sent["id"].as_str().unwrap().to_string();
    let out = hook(&w, &inc, stop);
    let answer: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(answer["decision"], "block", "{answer}");
    let reason = answer["reason"].as_str().unwrap();
    assert!(
        reason.contains(&msg) && reason.contains("Use the v2 API"),
        "{reason}"
    );
    let state: serde_json::Value = serde_json::from_slice(&fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["state"], "working", "it goes on: {state}");
    assert_eq!(hook(&w, &inc, stop).stdout.trim(), "", "each message once");
    // A Stop hook already keeping the turn going is never blocked again; input that is not a
    // hook's, change nothing and never fail the CLI.
    w.co(&["send", "myproject/workers/slot0", "-s", "more", "-m", "x"])
        .ok();
    let again = stop.replace("false", "true");
    assert_eq!(hook(&w, &inc, &again).stdout.trim(), "");
    let junk = hook(&w, &inc, "not json");
    assert_eq!((junk.code, junk.stdout.trim()), (0, ""));
}
