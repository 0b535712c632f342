//! Runtimes (design §6): how an agent CLI is started, and how its screen reads.
//!
//! A runtime is a built-in [`presets::Preset`] (claude, codex, gemini, aider, opencode), a
//! `[runtimes.NAME]` table on top of one (`preset = "claude"`, or named after it), or any
//! command (`command = [...]`). [`Runtime::start`] turns it into the argv, environment and
//! files of one start; [`Runtime::classify`] reads its screen ([`screen`]).
//!
//! The role prompt always goes to `.vermas/PROMPT.md` in the worktree (excluded from git) and,
//! where the CLI has a way, into its system prompt. The first instruction only names files:
//! nothing from a work order is ever on a command line.

pub mod check;
pub mod hooks;
pub mod presets;
pub mod screen;

pub use crate::config::PromptMode;
use crate::config::Settings;
use crate::error::{Error, Result};
use presets::{FirstMessage, Preset, SystemPrompt};
pub use screen::Screen;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The built-in presets.
pub const PRESET_NAMES: &[&str] = &["claude", "codex", "gemini", "aider", "opencode", "command"];

/// The runtime name that means "the built-in loop" (supervisor and QA).
pub const BUILTIN: &str = "builtin";

/// A resolved runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    pub name: String,
    /// The preset it builds on (`command` for a runtime of its own).
    pub preset: &'static Preset,
    /// The program and its arguments (a configured `command` replaces the preset's).
    pub argv: Vec<String>,
    /// `[runtimes.NAME] args`: added after the argv (a model, a provider…).
    pub extra_args: Vec<String>,
    pub first_message: FirstMessage,
    pub system_prompt: SystemPrompt,
    /// `[runtimes.NAME] ready_text`: its input prompt, for a runtime with no screen patterns.
    pub ready_text: Option<String>,
    /// `[runtimes.NAME] env`.
    pub env: BTreeMap<String, String>,
    /// Which config key to change to fix it (for error messages).
    pub config_key: String,
}

/// What one start of a runtime needs to know.
#[derive(Debug, Clone)]
pub struct StartContext<'a> {
    pub role: &'a str,
    pub prompt_file: &'a Path,
    pub work_order: Option<&'a str>,
    pub agent_id: &'a str,
    /// Where VerMAS keeps this runtime's own files (`<company>/.vermas/runtimes/<name>`).
    pub runtime_dir: &'a Path,
    /// The repository the agent works in (a factory's clone) and its working directory.
    pub repo: Option<&'a Path>,
    pub cwd: &'a Path,
    /// VerMAS runs as root.
    pub root: bool,
}

/// One start: what to run, with which variables, after writing which files.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `(path, content)`: VerMAS's own settings files for this runtime.
    pub files: Vec<(PathBuf, String)>,
}

/// The role prompt compiled into the binary.
pub fn role_prompt(role: &str) -> &'static str {
    match role {
        "worker" => include_str!("../../../../profiles/worker/CLAUDE.md"),
        "supervisor" => include_str!("../../../../profiles/supervisor/CLAUDE.md"),
        "qa" => include_str!("../../../../profiles/qa/CLAUDE.md"),
        "ceo" => include_str!("../../../../profiles/ceo/CLAUDE.md"),
        _ => "",
    }
}

/// The first instruction typed or passed to an agent. It names files, never work order text.
pub fn start_message(role: &str) -> String {
    match role {
        "worker" => "You are a VerMAS worker. Read .vermas/PROMPT.md for your role and assignment, then run `co assignment` and start at once without asking for confirmation.".into(),
        "ceo" => "You are the CEO of this VerMAS company. Read .vermas/PROMPT.md, then run `co status` and `co inbox`.".into(),
        other => format!("You are the VerMAS {other}. Read .vermas/PROMPT.md and start your patrol."),
    }
}

/// Resolves a runtime by name: a `[runtimes.NAME]` table (optionally on a preset), or a preset.
pub fn resolve(settings: &Settings, name: &str, role: &str) -> Result<Runtime> {
    let table = settings.runtimes.get(name);
    let preset_name = table
        .and_then(|t| t.preset.clone())
        .unwrap_or_else(|| name.to_string());
    let preset = match (presets::preset(&preset_name), table) {
        (Some(p), _) => p,
        (None, Some(_)) => presets::preset("command").unwrap_or(&presets::PRESETS[0]),
        (None, None) => {
            return Err(Error::usage(format!(
                "unknown runtime {name:?} for role {role}: use one of {} or define [runtimes.{name}] with command = [...] (config key roles.{role}.runtime)",
                PRESET_NAMES.join(", ")
            )));
        }
    };
    let command = table.and_then(|t| t.command.clone());
    let config_key = if command.is_some() {
        format!("runtimes.{name}.command")
    } else {
        format!("roles.{role}.runtime")
    };
    let argv: Vec<String> = command.unwrap_or_else(|| {
        std::iter::once(preset.program)
            .chain(preset.args.iter().copied())
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect()
    });
    if argv.is_empty() {
        return Err(Error::usage(format!(
            "runtime {name:?} has no command: set [runtimes.{name}] command = [\"program\", \"arg\"…]"
        )));
    }
    let first_message = match table.and_then(|t| t.prompt) {
        None => preset.first_message,
        Some(PromptMode::Argument) => match preset.first_message {
            FirstMessage::Flag(f) => FirstMessage::Flag(f),
            _ => FirstMessage::Positional,
        },
        Some(PromptMode::Nudge) => FirstMessage::Typed,
        Some(PromptMode::File) => FirstMessage::None,
    };
    let system_prompt = match table.and_then(|t| t.system_prompt_flag.clone()) {
        // A flag from the config lives for the whole run: leak it once per process.
        Some(f) => SystemPrompt::Flag(Box::leak(f.into_boxed_str())),
        None => preset.system_prompt,
    };
    Ok(Runtime {
        name: name.to_string(),
        preset,
        argv,
        extra_args: table.map(|t| t.args.clone()).unwrap_or_default(),
        first_message,
        system_prompt,
        ready_text: table.and_then(|t| t.ready_text.clone()),
        env: table.map(|t| t.env.clone()).unwrap_or_default(),
        config_key,
    })
}

/// A string as a TOML basic string (quotes and escapes), for `-c key=value` arguments.
pub fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What a start-up failure means, from the last lines an agent printed, when it is a failure
/// we know: the fix, in one sentence.
pub fn diagnose(output: &str) -> Option<&'static str> {
    const KNOWN: &[(&str, &str)] = &[
        (
            "cannot be used with root/sudo privileges",
            "claude refuses --dangerously-skip-permissions as root: run as a normal user or set IS_SANDBOX=1 in [runtimes.claude] env",
        ),
        (
            "command not found",
            "the agent's program is not on the PATH of its session: install it or give its full path in [runtimes.NAME] command",
        ),
        (
            "Invalid API key",
            "the model provider refused the API key: check the key in the environment of `co` (or [runtimes.NAME] env)",
        ),
    ];
    KNOWN
        .iter()
        .find(|(pattern, _)| output.contains(pattern))
        .map(|(_, fix)| *fix)
}

impl Runtime {
    /// The program must be runnable; the error names it and the key to change.
    pub fn check_installed(&self) -> Result<()> {
        let program = &self.argv[0];
        if crate::effects::tmux::find_program(program).is_none() {
            return Err(Error::not_found(format!(
                "runtime {:?} needs {program:?}, which is not on PATH; install it or change {}",
                self.name, self.config_key
            )));
        }
        Ok(())
    }

    /// Whether this runtime's first instruction is typed in once it is up.
    pub fn typed_first_message(&self) -> bool {
        self.first_message == FirstMessage::Typed
    }

    /// How long it may take to show its first screen.
    pub fn start_timeout(&self) -> std::time::Duration {
        self.preset.start_timeout
    }

    /// Reads its screen: the preset's patterns, or a configured `ready_text`.
    pub fn classify(&self, text: &str) -> Screen {
        let s = screen::classify(&self.preset.screens, text);
        match (&s, &self.ready_text) {
            (Screen::Unknown, Some(r)) if text.contains(r.as_str()) => Screen::Ready,
            _ => s,
        }
    }

    /// Whether its screen can be read at all (a preset with patterns, or a `ready_text`).
    pub fn reads_screen(&self) -> bool {
        !self.preset.screens.ready.is_empty() || self.ready_text.is_some()
    }

    /// The argv, environment and files of one start: placeholders filled, the system prompt
    /// and first message added as the runtime takes them, the preset's wrapper around it.
    pub fn start(&self, ctx: &StartContext<'_>) -> Start {
        let fill = |a: &str| -> String {
            let mut out = a
                .replace("{prompt_file}", &ctx.prompt_file.display().to_string())
                .replace("{work_order}", ctx.work_order.unwrap_or(""))
                .replace("{agent_id}", ctx.agent_id)
                .replace("{runtime_dir}", &ctx.runtime_dir.display().to_string());
            if out.contains("{role_prompt_toml}") {
                out = out.replace("{role_prompt_toml}", &toml_string(role_prompt(ctx.role)));
            }
            if out.contains("{trusted_projects_toml}") {
                let mut dirs: Vec<&Path> = ctx.repo.into_iter().collect();
                dirs.push(ctx.cwd);
                let table = dirs
                    .iter()
                    .map(|d| {
                        format!(
                            "{}={{trust_level=\"trusted\"}}",
                            toml_string(&d.display().to_string())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",");
                out = out.replace("{trusted_projects_toml}", &format!("{{{table}}}"));
            }
            out
        };
        let mut argv: Vec<String> = self.argv.iter().map(|a| fill(a)).collect();
        argv.extend(self.extra_args.iter().map(|a| fill(a)));
        if let SystemPrompt::Flag(flag) = self.system_prompt {
            argv.push(flag.to_string());
            argv.push(role_prompt(ctx.role).to_string());
        }
        match self.first_message {
            FirstMessage::Positional => argv.push(start_message(ctx.role)),
            FirstMessage::Flag(flag) => {
                argv.push(flag.to_string());
                argv.push(start_message(ctx.role));
            }
            FirstMessage::Typed | FirstMessage::Wrapper | FirstMessage::None => {}
        }
        if let Some(script) = self.preset.wrapper {
            let mut wrapped = vec![
                "sh".to_string(),
                "-c".to_string(),
                script.to_string(),
                format!("vermas-{}", self.preset.name),
            ];
            wrapped.append(&mut argv);
            argv = wrapped;
        }
        let mut env: Vec<(String, String)> = self
            .preset
            .env
            .iter()
            .chain(if ctx.root { self.preset.root_env } else { &[] })
            .map(|(k, v)| (k.to_string(), fill(v)))
            .collect();
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let files = self
            .preset
            .files
            .iter()
            .map(|(name, content)| (ctx.runtime_dir.join(name), fill(content)))
            .collect();
        Start { argv, env, files }
    }

    /// The old name for [`Runtime::start`]'s argv, for callers that need nothing else.
    pub fn start_argv(
        &self,
        role: &str,
        prompt_file: &Path,
        work_order: Option<&str>,
        agent_id: &str,
    ) -> Vec<String> {
        let dir = prompt_file.parent().unwrap_or(Path::new("."));
        self.start(&StartContext {
            role,
            prompt_file,
            work_order,
            agent_id,
            runtime_dir: dir,
            repo: None,
            cwd: dir,
            root: false,
        })
        .argv
    }
}

#[cfg(test)]
mod tests;
