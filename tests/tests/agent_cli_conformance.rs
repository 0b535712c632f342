//! The conformance suite: each real agent CLI, run by VerMAS's built-in preset, takes a work
//! order from `co dispatch` to `closed` (merged by QA after the gates) with no key pressed,
//! against the fake model server on 127.0.0.1; and each CLI's first-run dialog leaves the
//! worker `blocked: <dialog>` with nothing typed into it and the user's answer untouched.
//!
//! Only what points the CLI at the fake model is test configuration (`[runtimes.NAME] env` and
//! `args`, the user-state homes of `tests/agent-clis/homes/`); everything that gets the CLI past
//! its dialogs is the preset's own. CLIs come from `tests/agent-clis/install.sh` (see
//! `vermas_tests::agent_clis`); one that is not installed is skipped loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};
use vermas_tests::agent_clis::{bin_dir, cli_or_skip, copy_home, serial, trusted_dir};
use vermas_tests::fake_model::{FakeModel, Scenario};
use vermas_tests::{Sandbox, World, git, pids_with_env, wait_for};

/// The worker's scenario: check the assignment, write and commit a file (Aider gets it as an
/// edit and commits it itself), hand in.
fn scenario() -> Scenario {
    Scenario::from_json(
        r#"{"steps": [
            {"shell": "co assignment", "text": "Checking my assignment."},
            {"shell": "printf 'hello from the agent\\n' > hello.txt && git add hello.txt && git commit -m 'Add hello.txt'",
             "edit": {"path": "hello.txt", "content": "hello from the agent\n"}},
            {"shell": "co worker done"}],
          "final": "All done."}"#,
    )
    .unwrap()
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
    format!("[{}]", quoted.join(", "))
}

fn toml_table(kv: &[(&str, String)]) -> String {
    let items: Vec<String> = kv
        .iter()
        .map(|(k, v)| format!("{k} = {}", serde_json::to_string(v).unwrap()))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

/// A company (under the target directory, not /tmp: Gemini ignores settings files under a
/// directory others may write to) whose workers run `cli`'s built-in preset, plus `runtime`
/// (test-only `env` and `args`), with the user's CLI home from `home`.
struct Company {
    w: World,
    env: Vec<(String, String)>,
    _model: FakeModel,
}

fn company(cli: &str, home: Option<&str>, runtime: &str, model: FakeModel) -> Company {
    let sb = Sandbox::new_in(&trusted_dir(Path::new(env!("CARGO_TARGET_TMPDIR"))));
    if let Some(h) = home {
        copy_home(h, &sb.home);
    }
    let tmp = sb.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let w = World::bare_in(sb).fast();
    w.append_factory_config(&format!(
        "\n[roles.worker]\nruntime = \"{cli}\"\n\n[runtimes.{cli}]\n{runtime}\n\n{}\n",
        World::CHECK_GATE
    ));
    let path = format!(
        "{}:{}",
        bin_dir().as_ref().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = vec![
        ("PATH".to_string(), path),
        ("TMPDIR".to_string(), tmp.display().to_string()),
    ];
    Company {
        w,
        env,
        _model: model,
    }
}

/// Dispatches one work order and waits for it to be merged; returns the time it took.
fn dispatch_to_closed(c: &Company, cli: &str, deadline: u64) -> Duration {
    let w = &c.w;
    w.co_env(&c.env, &["operations", "start"]).ok();
    let id = w.create("Add hello.txt", &[]);
    let start = Instant::now();
    let out = w.co_env(&c.env, &["dispatch", &id, "myproject"]);
    assert!(out.ok().contains("Spawned"), "{}", out.stdout);
    w.wait_status(&id, "closed", deadline);
    let took = start.elapsed();
    let file = git(&w.factory_dir(), &["show", "main:hello.txt"]);
    assert_eq!(
        file.trim(),
        "hello from the agent",
        "{cli}'s file is on main"
    );
    // Nothing of the agent is left running (the supervisor ends what its session leaves).
    let inc = w
        .factory_events()
        .into_iter()
        .find(|e| e["event_type"] == "agent.started")
        .map(|e| e["data"]["incarnation"].as_str().unwrap().to_string())
        .unwrap();
    wait_for(
        Duration::from_secs(20),
        "no process of the agent left",
        || {
            pids_with_env(&format!("VERMAS_INCARNATION={inc}"))
                .is_empty()
                .then_some(())
        },
    );
    eprintln!("{cli}: dispatch → closed in {:.1}s", took.as_secs_f64());
    took
}

#[test]
fn claude_code_takes_a_work_order_to_merged() {
    let _g = serial();
    if cli_or_skip("claude").is_none() {
        return;
    }
    let model = FakeModel::start(scenario()).unwrap();
    let runtime = format!(
        "env = {}",
        toml_table(&[
            ("ANTHROPIC_BASE_URL", model.base_url()),
            // The user's key, approved in the home fixture (its last 20 characters).
            (
                "ANTHROPIC_API_KEY",
                "sk-ant-vermas-fake-0123456789abcdefghij".into()
            ),
        ])
    );
    let c = company("claude", Some("claude-api-key"), &runtime, model);
    dispatch_to_closed(&c, "claude", 120);
    // Its hooks told the supervisor what it did: the last one recorded is from this worker.
    let state =
        c.w.factory_dir()
            .join(".work/.agents/.myproject-workers-slot0.json");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).expect("a hook ran")).unwrap();
    assert!(
        state["incarnation"].as_str().unwrap().starts_with("inc-"),
        "{state}"
    );
    assert!(
        ["working", "idle"].contains(&state["state"].as_str().unwrap()),
        "{state}"
    );
}

#[test]
fn codex_takes_a_work_order_to_merged() {
    let _g = serial();
    if cli_or_skip("codex").is_none() {
        return;
    }
    let model = FakeModel::start(scenario()).unwrap();
    let provider = format!(
        "model_providers.vermasfake={{name=\"VerMAS fake model\", base_url={}, wire_api=\"responses\", env_key=\"VERMAS_FAKE_MODEL_KEY\"}}",
        serde_json::to_string(&format!("{}/v1", model.base_url())).unwrap()
    );
    let runtime = format!(
        "args = {}\nenv = {}",
        toml_list(&[
            "-c".into(),
            "model_provider=\"vermasfake\"".into(),
            "-c".into(),
            provider,
            "-m".into(),
            "fake-model".into(),
        ]),
        toml_table(&[("VERMAS_FAKE_MODEL_KEY", "sk-vermas-fake".into())])
    );
    let c = company("codex", Some("codex-api-key"), &runtime, model);
    dispatch_to_closed(&c, "codex", 120);
}

#[test]
fn gemini_cli_takes_a_work_order_to_merged() {
    let _g = serial();
    if cli_or_skip("gemini").is_none() {
        return;
    }
    let model = FakeModel::start(scenario()).unwrap();
    let runtime = format!(
        "env = {}",
        toml_table(&[
            ("GEMINI_API_KEY", "vermas-fake-gemini-key".into()),
            ("GOOGLE_GEMINI_BASE_URL", model.base_url()),
        ])
    );
    // A home where gemini never ran: VerMAS's own settings get it past trust and auth.
    let c = company("gemini", None, &runtime, model);
    dispatch_to_closed(&c, "gemini", 120);
}

#[test]
fn opencode_takes_a_work_order_to_merged() {
    let _g = serial();
    if cli_or_skip("opencode").is_none() {
        return;
    }
    let model = FakeModel::start(scenario()).unwrap();
    // The user's own OpenCode config names the provider (here the fake model); VerMAS's
    // config adds only permissions and the role prompt.
    let sb_home_config = serde_json::json!({
        "$schema": "https://opencode.ai/config.json",
        "provider": {"vermasfake": {
            "npm": "@ai-sdk/openai-compatible",
            "name": "VerMAS fake model",
            "options": {"baseURL": format!("{}/v1", model.base_url()), "apiKey": "vermas-fake"},
            "models": {"fake-model": {"name": "Fake model", "tool_call": true}}}},
        "model": "vermasfake/fake-model",
        "small_model": "vermasfake/fake-model"
    });
    let runtime = format!(
        "args = {}\nenv = {}",
        toml_list(&["--pure".into()]),
        toml_table(&[("OPENCODE_DISABLE_MODELS_FETCH", "true".into())])
    );
    let c = company("opencode", None, &runtime, model);
    let dir = c.w.sb.home.join(".config/opencode");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("opencode.json"),
        serde_json::to_string_pretty(&sb_home_config).unwrap(),
    )
    .unwrap();
    dispatch_to_closed(&c, "opencode", 240);
}

#[test]
fn aider_takes_a_work_order_to_merged() {
    let _g = serial();
    if cli_or_skip("aider").is_none() {
        return;
    }
    let model = FakeModel::start(scenario()).unwrap();
    let runtime = format!(
        "args = {}\nenv = {}",
        toml_list(&[
            "--model".into(),
            "openai/fake-model".into(),
            "--edit-format".into(),
            "diff".into(),
            "--no-show-model-warnings".into(),
        ]),
        toml_table(&[
            ("OPENAI_API_KEY", "sk-vermas-fake".into()),
            ("OPENAI_API_BASE", format!("{}/v1", model.base_url())),
        ])
    );
    let c = company("aider", None, &runtime, model);
    dispatch_to_closed(&c, "aider", 180);
}

/// Dispatches into a CLI whose user state shows a first-run dialog: the worker is `blocked:
/// <dialog>`, nothing is typed into it, and one escalation carries its screen.
fn blocked_at(c: &Company, dialog: &str, deadline: u64) {
    let w = &c.w;
    w.co_env(&c.env, &["operations", "start"]).ok();
    let id = w.create("Add hello.txt", &[]);
    w.co_env(&c.env, &["dispatch", &id, "myproject"]).ok();
    let list = wait_for(
        Duration::from_secs(deadline),
        &format!("the worker blocked at {dialog}"),
        || {
            let l = w.co(&["worker", "list", "--json"]).json();
            (l[0]["status"] == "blocked").then_some(l)
        },
    );
    assert_eq!(list[0]["blocked"], dialog, "{list}");
    let mail = wait_for(Duration::from_secs(20), "the escalation", || {
        w.co(&["inbox", "--json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["subject"]
                    .as_str()
                    .unwrap()
                    .contains("blocked at a dialog")
            })
            .cloned()
    });
    assert!(mail["body"].as_str().unwrap().contains("The screen:"));
    let typed: Vec<_> = w
        .factory_events()
        .into_iter()
        .filter(|e| e["event_type"] == "agent.nudged" && e["data"]["delivered"] == true)
        .collect();
    assert!(typed.is_empty(), "nothing typed into the dialog: {typed:?}");
    w.co(&["operations", "stop"]).ok();
    w.co(&["worker", "kill", "myproject", "0"]).ok();
}

#[test]
fn claude_with_an_api_key_not_yet_approved_is_blocked_and_the_answer_left_to_the_user() {
    let _g = serial();
    if cli_or_skip("claude").is_none() {
        return;
    }
    let model = FakeModel::start(scenario()).unwrap();
    let runtime = format!(
        "env = {}",
        toml_table(&[
            ("ANTHROPIC_BASE_URL", model.base_url()),
            (
                "ANTHROPIC_API_KEY",
                "sk-ant-vermas-fake-not-approved-abcdef".into()
            ),
        ])
    );
    let c = company("claude", Some("claude-api-key"), &runtime, model);
    let state = c.w.sb.home.join(".claude.json");
    let before: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    blocked_at(&c, "api-key", 60);
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(
        before["customApiKeyResponses"], after["customApiKeyResponses"],
        "the user's answer about their key is theirs to give"
    );
}

#[test]
fn codex_not_logged_in_is_blocked_at_its_sign_in_screen() {
    let _g = serial();
    if cli_or_skip("codex").is_none() {
        return;
    }
    let model = FakeModel::start(scenario()).unwrap();
    let c = company("codex", None, "", model);
    blocked_at(&c, "login", 60);
    assert!(
        !c.w.sb.home.join(".codex/auth.json").exists(),
        "no login was made for the user"
    );
}

#[test]
fn gemini_with_no_way_to_sign_in_is_blocked_at_its_auth_dialog() {
    let _g = serial();
    if cli_or_skip("gemini").is_none() {
        return;
    }
    let model = FakeModel::start(scenario()).unwrap();
    // No key anywhere, and a company where VerMAS's defaults are ignored (under /tmp).
    let sb = Sandbox::new();
    let tmp = sb.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let w = World::bare_in(sb).fast();
    w.append_factory_config(&format!(
        "\n[roles.worker]\nruntime = \"gemini\"\n\n[runtimes.gemini]\nenv = {}\n\n{}\n",
        toml_table(&[("GOOGLE_GEMINI_BASE_URL", model.base_url())]),
        World::CHECK_GATE
    ));
    let path = format!(
        "{}:{}",
        bin_dir().as_ref().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let c = Company {
        w,
        env: vec![
            ("PATH".into(), path),
            ("TMPDIR".into(), tmp.display().to_string()),
        ],
        _model: model,
    };
    blocked_at(&c, "auth", 90);
    assert!(
        !c.w.sb.home.join(".gemini/settings.json").exists(),
        "no auth choice was saved for the user"
    );
}
