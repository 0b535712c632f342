//! The presets turned into real starts: what each CLI gets on its command line and in its
//! environment (the facts of docs/AGENT-CLIS.md), with no user file touched.

use super::*;

fn cfg(src: &str) -> Settings {
    let mut c = crate::config::Config::defaults();
    c.merge_str(Path::new("c.toml"), src).unwrap();
    c.settings().unwrap()
}

fn ctx<'a>(root: bool) -> StartContext<'a> {
    StartContext {
        role: "worker",
        prompt_file: Path::new("/c/mp/workers/slot0/.vermas/PROMPT.md"),
        work_order: Some("mp-a"),
        agent_id: "mp/workers/slot0",
        runtime_dir: Path::new("/c/.vermas/runtimes/x"),
        repo: Some(Path::new("/c/mp")),
        cwd: Path::new("/c/mp/workers/slot0"),
        root,
    }
}

fn start(name: &str, root: bool) -> Start {
    resolve(&Settings::defaults(), name, "worker")
        .unwrap()
        .start(&ctx(root))
}

fn env<'a>(s: &'a Start, k: &str) -> Option<&'a str> {
    s.env
        .iter()
        .rev()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
}

#[test]
fn claude_skips_its_dialogs_with_flags_and_variables_of_ours() {
    let s = start("claude", false);
    assert_eq!(s.argv[0], "claude");
    assert!(
        s.argv
            .contains(&"--dangerously-skip-permissions".to_string())
    );
    let settings = s.argv.iter().position(|a| a == "--settings").unwrap();
    assert!(s.argv[settings + 1].contains("skipDangerousModePermissionPrompt"));
    let sp = s
        .argv
        .iter()
        .position(|a| a == "--append-system-prompt")
        .unwrap();
    assert!(s.argv[sp + 1].contains("co worker done"), "the role prompt");
    assert!(
        s.argv.last().unwrap().contains("co assignment"),
        "the start message"
    );
    assert_eq!(env(&s, "CLAUDE_CODE_SANDBOXED"), Some("1"));
    assert_eq!(env(&s, "IS_SANDBOX"), None, "only as root");
    assert_eq!(env(&start("claude", true), "IS_SANDBOX"), Some("1"));
    assert!(s.files.is_empty());
}

#[test]
fn codex_trusts_the_repository_for_this_run_and_finds_co() {
    let s = start("codex", false);
    assert!(s.argv.contains(&"--no-daemon".to_string()));
    assert!(s.argv.contains(&"allow_login_shell=false".to_string()));
    let trust = s.argv.iter().find(|a| a.starts_with("projects=")).unwrap();
    assert_eq!(
        trust,
        r#"projects={"/c/mp"={trust_level="trusted"},"/c/mp/workers/slot0"={trust_level="trusted"}}"#
    );
    let dev = s
        .argv
        .iter()
        .find(|a| a.starts_with("developer_instructions="))
        .unwrap();
    assert!(
        dev.starts_with("developer_instructions=\"") && dev.contains("\\n"),
        "a TOML string"
    );
    assert!(s.argv.last().unwrap().contains("co assignment"));
}

#[test]
fn gemini_gets_settings_files_of_ours_not_the_users() {
    let s = start("gemini", false);
    assert_eq!(&s.argv[..3], &["gemini", "--approval-mode", "yolo"]);
    assert_eq!(s.argv[s.argv.len() - 2], "-i");
    assert_eq!(env(&s, "GEMINI_CLI_TRUST_WORKSPACE"), Some("true"));
    assert_eq!(env(&s, "GEMINI_CLI_NO_RELAUNCH"), Some("true"));
    assert_eq!(
        env(&s, "GEMINI_CLI_SYSTEM_DEFAULTS_PATH"),
        Some("/c/.vermas/runtimes/x/system-defaults.json")
    );
    let files: Vec<String> = s
        .files
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert_eq!(
        files,
        vec![
            "/c/.vermas/runtimes/x/system-settings.json",
            "/c/.vermas/runtimes/x/system-defaults.json"
        ]
    );
    for (_, content) in &s.files {
        serde_json::from_str::<serde_json::Value>(content).unwrap();
    }
}

#[test]
fn opencode_takes_its_first_message_with_prompt_and_its_config_from_us() {
    let s = start("opencode", false);
    assert_eq!(s.argv[0], "opencode");
    assert_eq!(s.argv[1], "--prompt");
    assert_eq!(
        env(&s, "OPENCODE_CONFIG"),
        Some("/c/.vermas/runtimes/x/opencode.json")
    );
    let cfg: serde_json::Value = serde_json::from_str(&s.files[0].1).unwrap();
    assert_eq!(cfg["permission"]["bash"], "allow");
}

#[test]
fn aider_runs_one_shot_inside_a_wrapper_that_hands_the_work_in() {
    let s = start("aider", false);
    assert_eq!(&s.argv[..2], &["sh", "-c"]);
    assert!(s.argv[2].contains("exec co worker done"));
    assert_eq!(s.argv[3], "vermas-aider");
    assert_eq!(s.argv[4], "aider");
    assert!(s.argv.contains(&"--no-gitignore".to_string()));
    assert!(
        s.argv
            .contains(&"/c/mp/workers/slot0/.vermas/PROMPT.md".to_string()),
        "--read the prompt file"
    );
}

#[test]
fn a_configured_runtime_builds_on_its_preset_and_adds_args_and_env() {
    let c = cfg(
        "[runtimes.claude]\nargs = [\"--model\", \"opus\"]\nenv = { ANTHROPIC_BASE_URL = \"http://127.0.0.1:9\" }\n",
    );
    let s = resolve(&c, "claude", "worker").unwrap().start(&ctx(false));
    let m = s.argv.iter().position(|a| a == "--model").unwrap();
    assert_eq!(s.argv[m + 1], "opus");
    assert!(m < s.argv.len() - 2, "before the system prompt and message");
    assert_eq!(env(&s, "ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:9"));
    let c = cfg("[runtimes.mine]\npreset = \"claude\"\ncommand = [\"/opt/claude\"]\n");
    let m = resolve(&c, "mine", "worker").unwrap();
    assert_eq!(m.argv, vec!["/opt/claude"]);
    assert_eq!(m.first_message, FirstMessage::Positional);
    assert_eq!(m.config_key, "runtimes.mine.command");
}

#[test]
fn any_command_runs_as_given_with_placeholders_filled() {
    let c = cfg("[runtimes.scripted]\ncommand = [\"bash\", \"/a/agent.sh\", \"{work_order}\"]\n");
    let s = resolve(&c, "scripted", "worker").unwrap();
    assert_eq!(s.first_message, FirstMessage::None);
    assert_eq!(
        s.start(&ctx(false)).argv,
        vec!["bash", "/a/agent.sh", "mp-a"]
    );
    let c =
        cfg("[runtimes.typed]\ncommand = [\"bash\"]\nprompt = \"nudge\"\nready_text = \"$ \"\n");
    let t = resolve(&c, "typed", "worker").unwrap();
    assert!(t.typed_first_message());
    assert_eq!(t.classify("hello\n$ "), Screen::Ready);
    assert!(
        resolve(&Settings::defaults(), "command", "worker").is_err(),
        "command needs argv"
    );
    assert!(
        resolve(&Settings::defaults(), "nope", "worker")
            .unwrap_err()
            .to_string()
            .contains("roles.worker.runtime")
    );
}

#[test]
fn a_missing_program_names_itself_and_the_key() {
    let c = cfg("[runtimes.x]\ncommand = [\"definitely-not-installed-xyz\"]\n");
    let e = resolve(&c, "x", "worker")
        .unwrap()
        .check_installed()
        .unwrap_err();
    assert!(
        e.to_string().contains("definitely-not-installed-xyz"),
        "{e}"
    );
    assert!(e.to_string().contains("runtimes.x.command"), "{e}");
}

#[test]
fn toml_strings_escape_what_toml_needs() {
    assert_eq!(toml_string("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
}

#[test]
fn role_prompts_are_compiled_in() {
    assert!(role_prompt("worker").contains("co worker done"));
    assert!(role_prompt("qa").contains("gates"));
}

#[test]
fn known_start_up_failures_say_what_to_do() {
    assert!(
        diagnose("Error: --dangerously-skip-permissions cannot be used with root/sudo privileges")
            .unwrap()
            .contains("IS_SANDBOX=1")
    );
    assert_eq!(diagnose("all fine"), None);
}
