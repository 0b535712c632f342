//! The real agent CLIs (Claude Code, Codex, Gemini CLI, OpenCode, Aider), each started the way a
//! VerMAS preset would start it: detached in a private tmux server, in a git worktree, with a
//! CLI home in the state a user has after their first login, pointed at the fake model server
//! on 127.0.0.1, and left alone (no key is ever pressed). Each test waits until the stub `co`
//! has logged `co worker done` and the commit exists, kills the session and checks that no
//! process of the CLI is left. docs/AGENT-CLIS.md explains every flag, variable and file.
//!
//! The CLIs come from `tests/agent-clis/install.sh` (pinned versions, cached): their bin
//! directory is `$VERMAS_AGENT_CLIS_BIN`, or the installer is run once. A CLI that is not
//! installed (registry unreachable, `VERMAS_AGENT_CLIS=skip`) makes its test print
//! `SKIPPED: <cli>: <why>` and pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use vermas_tests::fake_model::{FakeModel, Scenario};
use vermas_tests::{Sandbox, git, pids_with_env};

use vermas_tests::agent_clis::{bin_dir as clis_bin, cli_or_skip, serial};

/// A directory VerMAS owns for a CLI's settings. Gemini CLI ignores a system settings file
/// whose parent directories are writable by others (/tmp is), so this lives under the target
/// directory (or `~/.cache/vermas/test-dirs` when the checkout itself is under /tmp), not in
/// the sandbox.
struct OwnedDir(PathBuf);

impl OwnedDir {
    fn new(name: &str) -> OwnedDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = vermas_tests::agent_clis::trusted_dir(Path::new(env!("CARGO_TARGET_TMPDIR")))
            .join(format!("agent-cli-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        OwnedDir(p)
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The worker's scenario: check the assignment, write and commit a file (Aider: the same file
/// as an edit; Aider commits it itself), hand in.
fn worker_scenario() -> Scenario {
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

/// The identity the recipes give git through the environment (never the user's config).
const AUTHOR: &str = "VerMAS Worker";
const EMAIL: &str = "worker@vermas.invalid";

/// One CLI run: the sandbox, a factory clone with a worker worktree, the stub `co`, the fake
/// model, and the tmux session.
struct Run {
    cli: &'static str,
    sb: Sandbox,
    factory: PathBuf,
    wt: PathBuf,
    owned: OwnedDir,
    co_log: PathBuf,
    stub_bin: PathBuf,
    model: FakeModel,
    marker: String,
    session: String,
}

impl Run {
    fn new(cli: &'static str, home_fixture: Option<&str>, scenario: Scenario) -> Run {
        let sb = Sandbox::new();
        let factory = sb.path().join("factory");
        std::fs::create_dir_all(&factory).unwrap();
        git(&factory, &["init", "-q", "-b", "main"]);
        std::fs::write(factory.join("README.md"), "# sample\n").unwrap();
        git(&factory, &["add", "."]);
        git(&factory, &["commit", "-qm", "initial"]);
        let wt = sb.path().join("worktrees").join("slot0");
        git(
            &factory,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "vermas/wo-test01",
                wt.to_str().unwrap(),
            ],
        );
        // What VerMAS puts in every worktree: .vermas/ (excluded from git) with the role
        // prompt and the start message.
        std::fs::OpenOptions::new()
            .append(true)
            .open(factory.join(".git/info/exclude"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b".vermas/\n"))
            .unwrap();
        std::fs::create_dir_all(wt.join(".vermas")).unwrap();
        std::fs::write(wt.join(".vermas/PROMPT.md"), worker_prompt()).unwrap();
        std::fs::write(wt.join(".vermas/START.md"), start_message()).unwrap();

        let stub_bin = sb.path().join("stub-bin");
        std::fs::create_dir_all(&stub_bin).unwrap();
        let co_log = sb.path().join("co.log");
        std::fs::write(
            stub_bin.join("co"),
            format!(
                "#!/bin/sh\n# Stub of co for the agent CLI tests: logs its arguments.\nprintf '%s\\n' \"$*\" >> '{}'\ncase \"$1\" in\n  assignment) echo 'ASSIGNED: wo-test01 Add hello.txt (attempt 1)' ;;\n  worker) echo 'Work order wo-test01 handed to QA' ;;\n  *) echo \"co stub: $*\" ;;\nesac\n",
                co_log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            stub_bin.join("co"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();

        if let Some(fixture) = home_fixture {
            let src = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("agent-clis/homes")
                .join(fixture);
            let ok = Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", src.display()))
                .arg(&sb.home)
                .status()
                .unwrap()
                .success();
            assert!(ok, "copying {}", src.display());
        }
        let model = FakeModel::start(scenario).unwrap();
        let marker = format!("{cli}-{}", sb.socket);
        Run {
            cli,
            owned: OwnedDir::new(cli),
            sb,
            factory,
            wt,
            co_log,
            stub_bin,
            model,
            marker,
            session: format!("worker-{cli}"),
        }
    }

    /// Starts `argv` detached in the sandbox's tmux server with exactly `env` (plus HOME,
    /// PATH, TERM, LANG, the git identity and a marker to find its processes): nothing of the
    /// developer's environment (their API keys, CLI homes) leaks in, and nothing but the
    /// command is on tmux's argv.
    fn start(&self, argv: &[String], env: &[(String, String)]) -> Instant {
        let path = format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            self.stub_bin.display(),
            clis_bin().as_ref().unwrap().display()
        );
        let tmp = self.sb.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut c = Command::new("tmux");
        c.env_clear()
            .env("HOME", &self.sb.home)
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .env("USER", "root")
            .env("SHELL", "/bin/bash")
            .env("TMUX_TMPDIR", &self.sb.tmux_tmpdir)
            // The CLIs' own temporary files (claude-0/, gemini-shell-*, codex-daemon-0/,
            // opencode/) go into the sandbox, not /tmp.
            .env("TMPDIR", &tmp)
            .env("VERMAS_TMUX_SOCKET", &self.sb.socket)
            .env("VERMAS_AGENT_CLI_TEST", &self.marker)
            .env("GIT_AUTHOR_NAME", AUTHOR)
            .env("GIT_AUTHOR_EMAIL", EMAIL)
            .env("GIT_COMMITTER_NAME", AUTHOR)
            .env("GIT_COMMITTER_EMAIL", EMAIL);
        for (k, v) in env {
            c.env(k, v);
        }
        c.args([
            "-L",
            &self.sb.socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
        ])
        .args(["-s", &self.session, "-x", "160", "-y", "50", "-c"])
        .arg(&self.wt)
        .arg("--")
        .args(argv)
        .stdin(Stdio::null());
        let started = Instant::now();
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        started
    }

    fn screen(&self) -> String {
        self.sb
            .tmux(&[
                "capture-pane",
                "-p",
                "-J",
                "-t",
                &format!("={}:", self.session),
            ])
            .stdout
    }

    fn co_calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.co_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn commits(&self) -> Vec<String> {
        git(&self.wt, &["log", "--format=%an <%ae>|%s", "main..HEAD"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits for `co worker done` and the commit; returns the seconds from `started`.
    fn wait_done(&self, started: Instant, secs: u64) -> f64 {
        loop {
            let done = self.co_calls().iter().any(|c| c == "worker done");
            if done && !self.commits().is_empty() {
                return started.elapsed().as_secs_f64();
            }
            if started.elapsed() > Duration::from_secs(secs) {
                let reqs: Vec<String> = self
                    .model
                    .requests()
                    .iter()
                    .map(|r| r.json.to_string())
                    .collect();
                panic!(
                    "{}: no `co worker done` and commit within {secs}s\nco calls: {:?}\ncommits: {:?}\nrequests:\n{}\nscreen:\n{}",
                    self.cli,
                    self.co_calls(),
                    self.commits(),
                    reqs.join("\n"),
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the session as VerMAS does (`kill-session`), then reports and kills every
    /// process of the run that is still alive a few seconds later; returns what was left.
    fn kill_and_reap(&self) -> Vec<String> {
        self.sb
            .tmux(&["kill-session", "-t", &format!("={}", self.session)]);
        let entry = format!("VERMAS_AGENT_CLI_TEST={}", self.marker);
        let alive = || {
            pids_with_env(&entry)
                .into_iter()
                .filter(|p| {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                    let stat =
                        std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                    // Not tmux itself (its server may take a moment to exit), not a zombie.
                    !comm.starts_with("tmux")
                        && !stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z'))
                })
                .collect::<Vec<u32>>()
        };
        let start = Instant::now();
        while !alive().is_empty() && start.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut left = Vec::new();
        for pid in alive() {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let f: Vec<&str> = stat.rsplit(") ").next().unwrap_or("").split(' ').collect();
            left.push(format!(
                "pid {pid} pgid {} sid {}: {}",
                f.get(2).unwrap_or(&"?"),
                f.get(3).unwrap_or(&"?"),
                cmd.trim()
            ));
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        if !left.is_empty() {
            eprintln!(
                "LEFTOVER: {}: {} process(es) survived kill-session and were killed:\n  {}",
                self.cli,
                left.len(),
                left.join("\n  ")
            );
        }
        left
    }

    /// The common checks after a run: the scenario's commands in order, the commit by the
    /// environment's identity, a clean worktree, the fake model's log.
    fn check(&self, secs: f64, tool_steps: bool) {
        let calls = self.co_calls();
        assert_eq!(
            calls.first().map(String::as_str),
            Some("assignment"),
            "{calls:?}"
        );
        assert_eq!(
            calls.last().map(String::as_str),
            Some("worker done"),
            "{calls:?}"
        );
        let commits = self.commits();
        assert_eq!(commits.len(), 1, "{commits:?}");
        assert!(
            commits[0].starts_with(&format!("{AUTHOR} <{EMAIL}>")),
            "the commit's author comes from GIT_AUTHOR_*: {commits:?}"
        );
        assert_eq!(
            std::fs::read_to_string(self.wt.join("hello.txt")).unwrap(),
            "hello from the agent\n"
        );
        let dirty = git(
            &self.wt,
            &["status", "--porcelain", "--untracked-files=all"],
        );
        assert!(
            dirty.is_empty(),
            "{}: the worktree is not clean:\n{dirty}",
            self.cli
        );
        let reqs = self.model.requests();
        let answered: Vec<(String, Option<usize>)> = reqs
            .iter()
            .filter(|r| r.answer == "tool" || r.answer == "edit" || r.answer == "final")
            .map(|r| (r.answer.clone(), r.step))
            .collect();
        if tool_steps {
            let steps: Vec<Option<usize>> = answered
                .iter()
                .filter(|(a, _)| a == "tool")
                .map(|(_, s)| *s)
                .collect();
            assert_eq!(steps, vec![Some(0), Some(1), Some(2)], "{answered:?}");
        }
        assert!(
            reqs.iter().all(|r| r.status != 404 || r.method == "GET"),
            "unexpected routes: {:?}",
            reqs.iter()
                .filter(|r| r.status == 404)
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        eprintln!(
            "TIMING: {}: start to `co worker done` and commit: {secs:.1} s ({} requests: {})",
            self.cli,
            reqs.len(),
            reqs.iter()
                .map(|r| format!("{} {}", r.answer, r.path))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn worker_prompt() -> &'static str {
    include_str!("../../profiles/worker/CLAUDE.md")
}

fn start_message() -> &'static str {
    "You are a VerMAS worker. Read .vermas/PROMPT.md for your role and assignment, then run `co assignment` and start at once without asking for confirmation."
}

fn s(v: &str) -> String {
    v.to_string()
}

fn kv(k: &str, v: impl AsRef<str>) -> (String, String) {
    (k.to_string(), v.as_ref().to_string())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
}

/// The TOML string for a `-c key=value` override.
fn toml_str(v: &str) -> String {
    serde_json::to_string(v).unwrap()
}

/// Aider cannot run `co` itself (`--yes-always` answers no to shell commands), so a fixed
/// wrapper does: `co assignment` into the message, Aider one-shot (`--message-file`: one
/// exchange, edits applied and committed, then it exits), then `co worker done`.
const AIDER_WRAPPER: &str = r#"set -e
{ cat .vermas/START.md; printf '\n\n$ co assignment\n'; co assignment; } > .vermas/aider-message.md
"$@" --message-file .vermas/aider-message.md
exec co worker done"#;

/// The variants tested: a CLI name, or `claude-oauth` (Claude Code logged in with an account
/// instead of an API key).
const VARIANTS: &[&str] = &[
    "claude",
    "claude-oauth",
    "codex",
    "gemini",
    "opencode",
    "aider",
];

/// How a variant is started and checked.
struct Recipe {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    /// Seconds allowed from start to `co worker done` and the commit.
    deadline: u64,
    /// (api, shell tool) the CLI's requests must show; `None` for Aider (no tools).
    shell_tool: Option<(&'static str, &'static str)>,
    /// Typed (then Enter) to leave the CLI; `None` when it exits by itself.
    exit_command: Option<&'static str>,
}

fn program_of(variant: &str) -> &str {
    variant.split('-').next().unwrap_or(variant)
}

/// The user's home state the variant starts from (tests/agent-clis/homes/).
fn home_fixture(variant: &str) -> Option<&'static str> {
    match variant {
        "claude" => Some("claude-api-key"),
        "claude-oauth" => Some("claude-oauth"),
        "codex" => Some("codex-api-key"),
        "gemini" => Some("gemini-api-key"),
        _ => None,
    }
}

/// The recipe of a variant for this run: argv, environment, and the VerMAS-owned files it
/// needs (written here: settings under `run.owned`, git excludes in the factory's clone).
/// Items marked "test only" point the CLI at the fake model; the rest is what a preset needs.
fn recipe(variant: &str, run: &Run, program: &Path) -> Recipe {
    let url = run.model.base_url();
    let program = program.display().to_string();
    match variant {
        // Claude Code: first instruction as the positional argument, role prompt with
        // --append-system-prompt; the folder-trust dialog is skipped by
        // CLAUDE_CODE_SANDBOXED=1 and the bypass-permissions warning by --settings (both
        // VerMAS's, not the user's files).
        "claude" | "claude-oauth" => {
            let argv = vec![
                program,
                s("--dangerously-skip-permissions"),
                s("--settings"),
                s(r#"{"skipDangerousModePermissionPrompt":true}"#),
                s("--append-system-prompt"),
                s(worker_prompt()),
                s(start_message()),
            ];
            let mut env = vec![
                kv("ANTHROPIC_BASE_URL", &url), // test only
                kv("CLAUDE_CODE_SANDBOXED", "1"),
                kv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
                kv("DISABLE_AUTOUPDATER", "1"),
                kv("DISABLE_TELEMETRY", "1"),
                kv("DISABLE_ERROR_REPORTING", "1"),
            ];
            if variant == "claude" {
                // The user's key, approved in the home fixture (its last 20 characters).
                env.push(kv(
                    "ANTHROPIC_API_KEY",
                    "sk-ant-vermas-fake-0123456789abcdefghij",
                ));
            }
            if is_root() {
                env.push(kv("IS_SANDBOX", "1"));
            }
            Recipe {
                argv,
                env,
                deadline: 50,
                shell_tool: Some(("anthropic", "Bash")),
                exit_command: Some("/exit"),
            }
        }
        "codex" => {
            let factory = run.factory.canonicalize().unwrap();
            let provider = format!(
                "model_providers.vermasfake={{name=\"VerMAS fake model\", base_url={}, wire_api=\"responses\", env_key=\"VERMAS_FAKE_MODEL_KEY\"}}",
                toml_str(&format!("{url}/v1"))
            );
            let argv = vec![
                program,
                // No app-server daemon: its processes would outlive the session.
                s("--no-daemon"),
                s("--dangerously-bypass-approvals-and-sandbox"),
                // Trust for the repository root of the worktree (the factory's clone) skips
                // "Trust this folder?" without writing the user's config.toml. Only the
                // inline-table form works (`-c projects."<dir>".trust_level=…` does not).
                s("-c"),
                format!(
                    "projects={{{}={{trust_level=\"trusted\"}}}}",
                    toml_str(&factory.display().to_string())
                ),
                // Otherwise commands run through `bash -lc`: /etc/profile resets PATH.
                s("-c"),
                s("allow_login_shell=false"),
                s("-c"),
                s("check_for_update_on_startup=false"),
                s("-c"),
                s("analytics.enabled=false"),
                s("-c"),
                format!("developer_instructions={}", toml_str(worker_prompt())),
                // Test only: the fake model as a provider of its own (no WebSocket attempts;
                // classic tools, where the default model of this version gets "code mode").
                s("-c"),
                s("model_provider=\"vermasfake\""),
                s("-c"),
                provider,
                s("-m"),
                s("fake-model"),
                s(start_message()),
            ];
            Recipe {
                argv,
                env: vec![kv("VERMAS_FAKE_MODEL_KEY", "sk-vermas-fake")], // test only
                deadline: 50,
                shell_tool: Some(("responses", "exec_command")),
                exit_command: Some("/quit"),
            }
        }
        "gemini" | "gemini-blank" => {
            // VerMAS's own settings files: system settings override the user's (updates,
            // usage statistics, telemetry); system defaults only fill what the user has not
            // chosen (the auth type of a user who never saw the auth dialog).
            let settings = run.owned.0.join("gemini-system-settings.json");
            std::fs::write(
                &settings,
                r#"{"general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
 "privacy": {"usageStatisticsEnabled": false},
 "telemetry": {"enabled": false}}
"#,
            )
            .unwrap();
            let defaults = run.owned.0.join("gemini-system-defaults.json");
            std::fs::write(
                &defaults,
                r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}}"#,
            )
            .unwrap();
            Recipe {
                argv: vec![
                    program,
                    s("--approval-mode"),
                    s("yolo"),
                    s("-i"),
                    s(start_message()),
                ],
                env: vec![
                    kv("GEMINI_API_KEY", "vermas-fake-gemini-key"),
                    kv("GOOGLE_GEMINI_BASE_URL", &url), // test only
                    kv("GEMINI_CLI_TRUST_WORKSPACE", "true"),
                    // One process instead of a parent that relaunches itself: that pair
                    // survives kill-session (and SIGTERM); the single process does not.
                    kv("GEMINI_CLI_NO_RELAUNCH", "true"),
                    kv(
                        "GEMINI_CLI_SYSTEM_SETTINGS_PATH",
                        settings.display().to_string(),
                    ),
                    kv(
                        "GEMINI_CLI_SYSTEM_DEFAULTS_PATH",
                        defaults.display().to_string(),
                    ),
                ],
                deadline: 50,
                shell_tool: Some(("gemini", "run_shell_command")),
                exit_command: Some("/quit"),
            }
        }
        "opencode" => {
            let config = run.owned.0.join("opencode.json");
            let cfg = serde_json::json!({
                "$schema": "https://opencode.ai/config.json",
                "autoupdate": false,
                "share": "disabled",
                "snapshot": false,
                "permission": {"bash": "allow", "edit": "allow", "webfetch": "allow",
                               "external_directory": "allow"},
                "instructions": [".vermas/PROMPT.md"],
                // Test only: the fake model as a provider.
                "provider": {"vermasfake": {
                    "npm": "@ai-sdk/openai-compatible",
                    "name": "VerMAS fake model",
                    "options": {"baseURL": format!("{url}/v1"), "apiKey": "vermas-fake"},
                    "models": {"fake-model": {"name": "Fake model", "tool_call": true}}}},
                "model": "vermasfake/fake-model",
                "small_model": "vermasfake/fake-model"
            });
            std::fs::write(&config, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
            Recipe {
                argv: vec![
                    program,
                    // Test only: no plugins fetched from the network.
                    s("--pure"),
                    s("--prompt"),
                    s(start_message()),
                ],
                env: vec![
                    kv("OPENCODE_CONFIG", config.display().to_string()),
                    kv("OPENCODE_DISABLE_AUTOUPDATE", "true"),
                    kv("OPENCODE_DISABLE_SHARE", "true"),
                    kv("OPENCODE_DISABLE_MODELS_FETCH", "true"), // test only
                    kv("OPENCODE_DISABLE_LSP_DOWNLOAD", "true"),
                ],
                // OpenCode is CPU-bound at start (a bun binary, ~20 CPU-seconds before its
                // first request): 25-45 s on an idle 2-core machine, more when it is shared.
                deadline: 90,
                shell_tool: Some(("chat", "bash")),
                exit_command: Some("/exit"),
            }
        }
        "aider" => {
            // Aider's own files (.aider.tags.cache.v4/ of its repo map) stay out of git status.
            std::fs::OpenOptions::new()
                .append(true)
                .open(run.factory.join(".git/info/exclude"))
                .and_then(|mut f| std::io::Write::write_all(&mut f, b".aider*\n"))
                .unwrap();
            let argv = vec![
                s("sh"),
                s("-c"),
                s(AIDER_WRAPPER),
                s("vermas-aider"),
                program,
                s("--yes-always"),
                s("--auto-commits"),
                s("--no-gitignore"),
                s("--analytics-disable"),
                s("--no-check-update"),
                s("--no-show-release-notes"),
                s("--no-suggest-shell-commands"),
                s("--no-detect-urls"),
                s("--no-restore-chat-history"),
                s("--chat-history-file"),
                s(".vermas/aider.chat.history.md"),
                s("--input-history-file"),
                s(".vermas/aider.input.history"),
                s("--read"),
                s(".vermas/PROMPT.md"),
                // Test only: the fake model (unknown to Aider's model list), in the edit
                // format Aider uses for most real models.
                s("--model"),
                s("openai/fake-model"),
                s("--edit-format"),
                s("diff"),
                s("--no-show-model-warnings"),
            ];
            Recipe {
                argv,
                env: vec![
                    kv("OPENAI_API_KEY", "vermas-fake"),
                    kv("OPENAI_API_BASE", format!("{url}/v1")), // test only
                    kv("LITELLM_LOCAL_MODEL_COST_MAP", "True"),
                ],
                deadline: 50,
                shell_tool: None,
                exit_command: None,
            }
        }
        other => panic!("no recipe for {other}"),
    }
}

/// Runs one variant's recipe from start to `co worker done`, then checks everything.
fn run_recipe(variant: &'static str) {
    let cli = program_of(variant);
    let Some(program) = cli_or_skip(cli) else {
        return;
    };
    let _serial = serial();
    let run = Run::new(variant, home_fixture(variant), worker_scenario());
    let r = recipe(variant, &run, &program);
    let started = run.start(&r.argv, &r.env);
    let secs = run.wait_done(started, r.deadline);
    run.check(secs, r.shell_tool.is_some());
    let reqs = run.model.requests();
    match r.shell_tool {
        Some((api, tool)) => assert!(
            reqs.iter()
                .any(|q| q.api == api && q.shell_tool.as_deref() == Some(tool)),
            "{variant}: requests to the {api} API offering the shell tool {tool}"
        ),
        None => assert!(
            reqs.iter()
                .any(|q| q.api == "chat" && q.answer == "edit" && q.step == Some(0)),
            "{variant}: Aider got the edit: {:?}",
            reqs.iter().map(|q| q.json.to_string()).collect::<Vec<_>>()
        ),
    }
    let left = run.kill_and_reap();
    assert!(left.is_empty(), "{variant} left processes: {left:?}");
}

#[test]
fn claude_with_an_approved_api_key() {
    run_recipe("claude");
}

#[test]
fn claude_logged_in_with_an_account() {
    run_recipe("claude-oauth");
}

#[test]
fn codex() {
    run_recipe("codex");
}

#[test]
fn gemini() {
    run_recipe("gemini");
}

#[test]
fn gemini_never_run_before() {
    run_recipe("gemini-blank");
}

#[test]
fn opencode() {
    run_recipe("opencode");
}

#[test]
fn aider() {
    run_recipe("aider");
}

/// Not a test: refreshes tests/fixtures/screens/<cli>/{working,tool-running,ready-after-turn,
/// exited}.txt (and `.raw.txt`, captured without -J) with each recipe playing a slow
/// scenario. Run it after bumping a version in tests/agent-clis/versions.txt:
/// `cargo test -p vermas-tests --test agent_cli_recipes -- --ignored capture_screens`
/// (`VERMAS_CAPTURE_ONLY=codex` limits it to one CLI).
#[test]
#[ignore]
fn capture_screens() {
    let only = std::env::var("VERMAS_CAPTURE_ONLY").ok();
    for variant in VARIANTS.iter().filter(|v| !v.contains('-')) {
        if only.as_deref().is_some_and(|o| o != *variant) {
            continue;
        }
        let Some(program) = cli_or_skip(variant) else {
            continue;
        };
        let _serial = serial();
        capture_one(variant, &program);
    }
}

fn capture_one(variant: &'static str, program: &Path) {
    let scenario = Scenario::from_json(
        r#"{"steps": [
            {"shell": "co assignment", "text": "Checking my assignment, slowly.", "slow_seconds": 5},
            {"shell": "sleep 6; echo tool finished"},
            {"shell": "printf 'hello from the agent\\n' > hello.txt && git add hello.txt && git commit -m 'Add hello.txt'",
             "edit": {"path": "hello.txt", "content": "hello from the agent\n"}, "slow_seconds": 5},
            {"shell": "co worker done"}],
          "final": "All done."}"#,
    )
    .unwrap();
    let run = Run::new(variant, home_fixture(variant), scenario);
    let r = recipe(variant, &run, program);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/screens")
        .join(variant);
    std::fs::create_dir_all(&dir).unwrap();
    let target = format!("={}:", run.session);
    let save = |state: &str| {
        let joined = run
            .sb
            .tmux(&["capture-pane", "-p", "-J", "-t", &target])
            .stdout;
        let raw = run.sb.tmux(&["capture-pane", "-p", "-t", &target]).stdout;
        std::fs::write(dir.join(format!("{state}.txt")), joined).unwrap();
        std::fs::write(dir.join(format!("{state}.raw.txt")), raw).unwrap();
        eprintln!("captured {variant}/{state}");
    };
    let started = run.start(&r.argv, &r.env);
    // Keep the pane (and its last screen) when the CLI exits.
    run.sb.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
    let answered = |step: usize| {
        run.model
            .requests()
            .iter()
            .any(|q| (q.answer == "tool" || q.answer == "edit") && q.step == Some(step))
    };
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !f() {
            assert!(
                t.elapsed() < Duration::from_secs(r.deadline),
                "{variant}: no {what}; screen:\n{}",
                run.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // The slow first answer streams filler for 5 s.
    wait("request", &|| {
        !run.model
            .requests()
            .iter()
            .all(|q| q.answer != "tool" && q.answer != "edit")
    });
    std::thread::sleep(Duration::from_millis(2500));
    save("working");
    if r.shell_tool.is_some() {
        wait("second step", &|| answered(1));
        std::thread::sleep(Duration::from_millis(2500));
        save("tool-running");
    }
    run.wait_done(started, r.deadline + 30);
    std::thread::sleep(Duration::from_millis(2000));
    save("ready-after-turn");
    if let Some(cmd) = r.exit_command {
        run.sb.tmux(&["send-keys", "-t", &target, "-l", cmd]);
        std::thread::sleep(Duration::from_millis(500));
        run.sb.tmux(&["send-keys", "-t", &target, "Enter"]);
        std::thread::sleep(Duration::from_millis(4000));
    }
    save("exited");
    run.kill_and_reap();
}
