//! The built-in runtimes as data: how each agent CLI is started so it works unattended, and how
//! its screen reads. Every flag, variable and file here is VerMAS's own (on the command line,
//! in the agent's environment, or under `<company>/.vermas/runtimes/<name>/`): none edits the
//! user's own CLI settings. The facts behind each line are in docs/AGENT-CLIS.md, measured with
//! the real CLIs (tests/tests/agent_cli_recipes.rs).
//!
//! Adding a runtime is one [`Preset`] in [`PRESETS`] (and its row in README.md's table).
//!
//! Placeholders in `args`, `env` and `files`: `{prompt_file}`, `{work_order}`, `{agent_id}`,
//! `{runtime_dir}` (VerMAS's files for this runtime), `{role_prompt_toml}` (the role prompt as
//! a TOML string), `{trusted_projects_toml}` (the factory's repository and the worktree as a
//! TOML inline table of trusted projects, for Codex).

use std::time::Duration;

/// How the first instruction reaches the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstMessage {
    /// The last argument.
    Positional,
    /// After this flag.
    Flag(&'static str),
    /// Typed in once the agent shows its input prompt.
    Typed,
    /// The preset's wrapper gives it (Aider: a message file).
    Wrapper,
    /// Nothing: the agent reads `$VERMAS_PROMPT_FILE` or runs `co assignment` itself.
    None,
}

/// How the role prompt reaches the agent (besides `.vermas/PROMPT.md`, which every agent has
/// and its start message names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemPrompt {
    /// This flag, followed by the role prompt's text.
    Flag(&'static str),
    /// Already in `args` or the preset's files (a placeholder, or a config naming the file).
    InArgs,
    /// Only through the start message naming `.vermas/PROMPT.md`.
    StartMessage,
}

/// A named dialog: every one of `all` appears on its screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialogPattern {
    pub name: &'static str,
    pub all: &'static [&'static str],
}

/// How a CLI's screen reads (see [`super::screen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screens {
    pub dialogs: &'static [DialogPattern],
    /// Any of these: it is working (thinking, running a tool, streaming).
    pub working: &'static [&'static str],
    /// Any of these (and not working): it waits at its input prompt.
    pub ready: &'static [&'static str],
    /// Lines holding any of these change by themselves (spinners, elapsed-seconds counters):
    /// they are left out when telling whether the screen changed.
    pub volatile: &'static [&'static str],
}

impl Screens {
    pub const NONE: Screens = Screens {
        dialogs: &[],
        working: &[],
        ready: &[],
        volatile: &[],
    };
}

/// A built-in runtime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    /// The program (found on PATH).
    pub program: &'static str,
    pub args: &'static [&'static str],
    pub first_message: FirstMessage,
    pub system_prompt: SystemPrompt,
    /// Set in the agent's environment.
    pub env: &'static [(&'static str, &'static str)],
    /// Set only when VerMAS runs as root.
    pub root_env: &'static [(&'static str, &'static str)],
    /// Variables the CLI reads that are passed on from the environment of `co` when set
    /// (provider keys and endpoints; proxies and CA bundles are passed to every agent).
    pub forward: &'static [&'static str],
    /// VerMAS's own files for this runtime, written under `{runtime_dir}`: `(name, content)`.
    pub files: &'static [(&'static str, &'static str)],
    /// A fixed `sh -c` script the agent runs inside (its argv after the script's `$0`).
    pub wrapper: Option<&'static str>,
    /// Patterns added to the factory clone's `info/exclude` (files the CLI leaves in a
    /// worktree).
    pub exclude: &'static [&'static str],
    /// How long it may take to show its first screen.
    pub start_timeout: Duration,
    /// Arguments that print its version (for `co doctor`).
    pub version_args: &'static [&'static str],
    pub screens: Screens,
}

/// Aider cannot run shell commands unattended (`--yes-always` answers no to them), so it runs
/// one-shot inside this wrapper: `co assignment` (which also marks the work in progress) goes
/// into the message with the start instruction, Aider applies and commits its edits, then the
/// wrapper hands the work in. Constant text: the paths and argv are arguments.
pub const AIDER_WRAPPER: &str = r#"set -e
mkdir -p .vermas
{ cat "$VERMAS_PROMPT_FILE"; printf '\n\n$ co assignment\n'; co assignment; } > .vermas/aider-message.md
"$@" --message-file .vermas/aider-message.md
exec co worker done"#;

/// Every agent gets these from the environment of `co` when set: who and where it is, and how
/// it reaches the network (proxies, CA bundles).
pub const FORWARD_ALWAYS: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "all_proxy",
    "no_proxy",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "GIT_SSH_COMMAND",
    "SSH_AUTH_SOCK",
];

/// Provider variables of every preset: a custom runtime (`command = [...]`) gets them all.
pub const FORWARD_PROVIDERS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_API_BASE",
    "OPENAI_ORG_ID",
    "CODEX_HOME",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "OPENROUTER_API_KEY",
    "DEEPSEEK_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "AIDER_MODEL",
    "AIDER_EDIT_FORMAT",
    "OPENCODE_CONFIG_DIR",
];

const CLAUDE: Preset = Preset {
    name: "claude",
    program: "claude",
    args: &[
        "--dangerously-skip-permissions",
        // Skips the bypass-permissions warning, and reports its state through hooks, without
        // touching ~/.claude/settings.json.
        "--settings",
        super::hooks::CLAUDE_SETTINGS,
    ],
    first_message: FirstMessage::Positional,
    system_prompt: SystemPrompt::Flag("--append-system-prompt"),
    env: &[
        // Trusts the worktree for this process only; saves nothing to ~/.claude.json.
        ("CLAUDE_CODE_SANDBOXED", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
        ("DISABLE_TELEMETRY", "1"),
        ("DISABLE_ERROR_REPORTING", "1"),
    ],
    // Claude refuses --dangerously-skip-permissions as root unless told it is sandboxed.
    root_env: &[("IS_SANDBOX", "1")],
    forward: &[],
    files: &[],
    wrapper: None,
    exclude: &[],
    start_timeout: Duration::from_secs(30),
    version_args: &["--version"],
    screens: Screens {
        dialogs: &[
            DialogPattern {
                name: "trust",
                all: &["Yes, I trust this folder"],
            },
            DialogPattern {
                name: "api-key",
                all: &[
                    "Detected a custom API key",
                    "Do you want to use this API key?",
                ],
            },
            DialogPattern {
                name: "bypass",
                all: &["Bypass Permissions mode", "Yes, I accept"],
            },
            DialogPattern {
                name: "login",
                all: &["Select login method"],
            },
            DialogPattern {
                name: "theme",
                all: &["Choose the text style"],
            },
            DialogPattern {
                name: "onboarding",
                all: &["Unable to connect to Anthropic services"],
            },
        ],
        working: &["esc to interrupt"],
        ready: &["bypass permissions on", "? for shortcuts"],
        volatile: &["esc to interrupt", "tokens)"],
    },
};

const CODEX: Preset = Preset {
    name: "codex",
    program: "codex",
    args: &[
        // No app-server daemons: they would outlive the session.
        "--no-daemon",
        "--dangerously-bypass-approvals-and-sandbox",
        // Trust for this run only (the inline-table form; the dotted one does not work).
        "-c",
        "projects={trusted_projects_toml}",
        // Commands run with this PATH, not a login shell's (where `co` is not found).
        "-c",
        "allow_login_shell=false",
        "-c",
        "check_for_update_on_startup=false",
        "-c",
        "analytics.enabled=false",
        "-c",
        "developer_instructions={role_prompt_toml}",
    ],
    first_message: FirstMessage::Positional,
    system_prompt: SystemPrompt::InArgs,
    env: &[],
    root_env: &[],
    forward: &[],
    files: &[],
    wrapper: None,
    exclude: &[],
    start_timeout: Duration::from_secs(30),
    version_args: &["--version"],
    screens: Screens {
        dialogs: &[
            DialogPattern {
                name: "trust",
                all: &["Trust this folder?", "Trust and continue"],
            },
            DialogPattern {
                name: "login",
                all: &["Sign in with ChatGPT"],
            },
        ],
        working: &["esc to interrupt"],
        ready: &["Ask Codex to do anything", "? for shortcuts"],
        volatile: &["esc to interrupt", "Reconnecting..."],
    },
};

const GEMINI: Preset = Preset {
    name: "gemini",
    program: "gemini",
    args: &["--approval-mode", "yolo"],
    first_message: FirstMessage::Flag("-i"),
    system_prompt: SystemPrompt::StartMessage,
    env: &[
        ("GEMINI_CLI_TRUST_WORKSPACE", "true"),
        // One process, which exits with its session (the relaunched pair survives it).
        ("GEMINI_CLI_NO_RELAUNCH", "true"),
        (
            "GEMINI_CLI_SYSTEM_SETTINGS_PATH",
            "{runtime_dir}/system-settings.json",
        ),
        (
            "GEMINI_CLI_SYSTEM_DEFAULTS_PATH",
            "{runtime_dir}/system-defaults.json",
        ),
    ],
    root_env: &[],
    forward: &[],
    files: &[
        // Overrides the user's settings: no updates, statistics or telemetry from workers.
        (
            "system-settings.json",
            r#"{"general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false}, "privacy": {"usageStatisticsEnabled": false}, "telemetry": {"enabled": false}}"#,
        ),
        // Only where the user has chosen nothing: an API key user never sees the auth dialog,
        // a user signed in with Google keeps that.
        (
            "system-defaults.json",
            r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}}"#,
        ),
    ],
    wrapper: None,
    exclude: &[],
    start_timeout: Duration::from_secs(40),
    version_args: &["--version"],
    screens: Screens {
        dialogs: &[
            DialogPattern {
                name: "trust",
                all: &["Do you trust the files in this folder?"],
            },
            DialogPattern {
                name: "auth",
                all: &["How would you like to authenticate"],
            },
            DialogPattern {
                name: "api-key",
                all: &["Enter Gemini API Key"],
            },
            DialogPattern {
                name: "auth",
                all: &["Waiting for authentication"],
            },
        ],
        working: &["esc to cancel"],
        ready: &["Type your message"],
        volatile: &["esc to cancel"],
    },
};

const OPENCODE: Preset = Preset {
    name: "opencode",
    program: "opencode",
    args: &[],
    first_message: FirstMessage::Flag("--prompt"),
    system_prompt: SystemPrompt::InArgs,
    env: &[
        ("OPENCODE_CONFIG", "{runtime_dir}/opencode.json"),
        ("OPENCODE_DISABLE_AUTOUPDATE", "true"),
        ("OPENCODE_DISABLE_SHARE", "true"),
        ("OPENCODE_DISABLE_LSP_DOWNLOAD", "true"),
    ],
    root_env: &[],
    forward: &[],
    files: &[(
        "opencode.json",
        r#"{"$schema": "https://opencode.ai/config.json", "autoupdate": false, "share": "disabled", "snapshot": false, "permission": {"bash": "allow", "edit": "allow", "webfetch": "allow", "external_directory": "allow"}, "instructions": [".vermas/PROMPT.md"]}"#,
    )],
    wrapper: None,
    exclude: &[],
    // A bun binary that spends ~20 CPU-seconds starting on a small machine.
    start_timeout: Duration::from_secs(120),
    version_args: &["--version"],
    screens: Screens {
        dialogs: &[DialogPattern {
            name: "permission",
            all: &["Permission required"],
        }],
        working: &["esc interrupt"],
        ready: &["ctrl+p commands"],
        volatile: &["esc interrupt", "⬝"],
    },
};

const AIDER: Preset = Preset {
    name: "aider",
    program: "aider",
    args: &[
        "--yes-always",
        "--auto-commits",
        "--no-gitignore",
        "--analytics-disable",
        "--no-check-update",
        "--no-show-release-notes",
        "--no-suggest-shell-commands",
        "--no-detect-urls",
        "--no-restore-chat-history",
        "--chat-history-file",
        ".vermas/aider.chat.history.md",
        "--input-history-file",
        ".vermas/aider.input.history",
        "--read",
        "{prompt_file}",
    ],
    first_message: FirstMessage::Wrapper,
    system_prompt: SystemPrompt::InArgs,
    env: &[("LITELLM_LOCAL_MODEL_COST_MAP", "True")],
    root_env: &[],
    forward: &[],
    files: &[],
    wrapper: Some(AIDER_WRAPPER),
    exclude: &[".aider*"],
    start_timeout: Duration::from_secs(60),
    version_args: &["--version"],
    // Its questions end in `(Y)es/(N)o … [Yes]:`, which the question check on the last line
    // recognises; answered ones stay in the scrollback above.
    screens: Screens {
        dialogs: &[],
        working: &[],
        ready: &[],
        volatile: &[],
    },
};

const COMMAND: Preset = Preset {
    name: "command",
    program: "",
    args: &[],
    first_message: FirstMessage::None,
    system_prompt: SystemPrompt::StartMessage,
    env: &[],
    root_env: &[],
    forward: &[],
    files: &[],
    wrapper: None,
    exclude: &[],
    start_timeout: Duration::from_secs(20),
    version_args: &[],
    screens: Screens::NONE,
};

/// Every built-in runtime.
pub const PRESETS: &[Preset] = &[CLAUDE, CODEX, GEMINI, AIDER, OPENCODE, COMMAND];

/// A preset by name.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}
