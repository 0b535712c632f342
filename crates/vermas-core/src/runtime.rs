//! Runtimes (design §6): named recipes for starting an agent CLI, and the role prompts that are
//! compiled into the binary from `profiles/<role>/CLAUDE.md`.
//!
//! A runtime says which argv to run and how the first instruction reaches the agent:
//! - `argument`: appended to the argv (or after `prompt_flag`), e.g. `claude "…"`;
//! - `nudge`: typed into the agent once it is up (for CLIs without a start-prompt argument);
//! - `file`/`none`: nothing is passed; the agent reads `$VERMAS_PROMPT_FILE` itself (scripted
//!   agents do this, or run `co assignment`).
//!
//! The role prompt always goes to `.vermas/PROMPT.md` in the worktree (excluded from git) and,
//! where the CLI has one, to its system-prompt flag.

pub use crate::config::PromptMode;
use crate::config::Settings;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The built-in presets.
pub const PRESET_NAMES: &[&str] = &["claude", "codex", "gemini", "aider", "opencode", "command"];

/// The runtime name that means "the built-in loop" (supervisor and QA).
pub const BUILTIN: &str = "builtin";

/// A resolved runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    pub name: String,
    pub argv: Vec<String>,
    pub prompt: PromptMode,
    pub prompt_flag: Option<String>,
    pub system_prompt_flag: Option<String>,
    pub ready_text: Option<String>,
    pub env: BTreeMap<String, String>,
    /// Which config key to change to fix it (for error messages).
    pub config_key: String,
}

struct Preset {
    argv: &'static [&'static str],
    prompt: PromptMode,
    prompt_flag: Option<&'static str>,
    system_prompt_flag: Option<&'static str>,
    ready_text: Option<&'static str>,
}

fn preset(name: &str) -> Option<Preset> {
    Some(match name {
        "claude" => Preset {
            argv: &["claude", "--dangerously-skip-permissions"],
            prompt: PromptMode::Argument,
            prompt_flag: None,
            system_prompt_flag: Some("--append-system-prompt"),
            ready_text: None,
        },
        "codex" => Preset {
            argv: &["codex", "--dangerously-bypass-approvals-and-sandbox"],
            prompt: PromptMode::Argument,
            prompt_flag: None,
            system_prompt_flag: None,
            ready_text: None,
        },
        "gemini" => Preset {
            argv: &["gemini", "--approval-mode", "yolo"],
            prompt: PromptMode::Argument,
            prompt_flag: Some("-i"),
            system_prompt_flag: None,
            ready_text: None,
        },
        "aider" => Preset {
            argv: &["aider", "--yes-always", "--read", "{prompt_file}"],
            prompt: PromptMode::Nudge,
            prompt_flag: None,
            system_prompt_flag: None,
            ready_text: Some(">"),
        },
        "opencode" => Preset {
            argv: &["opencode"],
            prompt: PromptMode::Nudge,
            prompt_flag: None,
            system_prompt_flag: None,
            ready_text: None,
        },
        "command" => Preset {
            argv: &[],
            prompt: PromptMode::File,
            prompt_flag: None,
            system_prompt_flag: None,
            ready_text: None,
        },
        _ => return None,
    })
}

/// The role prompt compiled into the binary.
pub fn role_prompt(role: &str) -> &'static str {
    match role {
        "worker" => include_str!("../../../profiles/worker/CLAUDE.md"),
        "supervisor" => include_str!("../../../profiles/supervisor/CLAUDE.md"),
        "qa" => include_str!("../../../profiles/qa/CLAUDE.md"),
        "ceo" => include_str!("../../../profiles/ceo/CLAUDE.md"),
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
        .or_else(|| preset(name).map(|_| name.to_string()));
    let Some(p) = preset_name.as_deref().and_then(preset).or_else(|| {
        table.map(|_| Preset {
            argv: &[],
            prompt: PromptMode::File,
            prompt_flag: None,
            system_prompt_flag: None,
            ready_text: None,
        })
    }) else {
        return Err(Error::usage(format!(
            "unknown runtime {name:?} for role {role}: use one of {} or define [runtimes.{name}] with command = [...] (config key roles.{role}.runtime)",
            PRESET_NAMES.join(", ")
        )));
    };
    let command = table.and_then(|t| t.command.clone());
    let config_key = if command.is_some() {
        format!("runtimes.{name}.command")
    } else {
        format!("roles.{role}.runtime")
    };
    let argv: Vec<String> =
        command.unwrap_or_else(|| p.argv.iter().map(|s| s.to_string()).collect());
    if argv.is_empty() {
        return Err(Error::usage(format!(
            "runtime {name:?} has no command: set [runtimes.{name}] command = [\"program\", \"arg\"…]"
        )));
    }
    Ok(Runtime {
        name: name.to_string(),
        argv,
        prompt: table.and_then(|t| t.prompt).unwrap_or(p.prompt),
        prompt_flag: p.prompt_flag.map(str::to_string),
        system_prompt_flag: table
            .and_then(|t| t.system_prompt_flag.clone())
            .or(p.system_prompt_flag.map(str::to_string)),
        ready_text: table
            .and_then(|t| t.ready_text.clone())
            .or(p.ready_text.map(str::to_string)),
        env: table.map(|t| t.env.clone()).unwrap_or_default(),
        config_key,
    })
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

    /// The argv for one start: placeholders filled, the system prompt and first message added
    /// per the runtime's mechanism. `{prompt_file}`, `{work_order}` and `{agent_id}` may appear
    /// in a configured command.
    pub fn start_argv(
        &self,
        role: &str,
        prompt_file: &Path,
        work_order: Option<&str>,
        agent_id: &str,
    ) -> Vec<String> {
        let mut argv: Vec<String> = self
            .argv
            .iter()
            .map(|a| {
                a.replace("{prompt_file}", &prompt_file.display().to_string())
                    .replace("{work_order}", work_order.unwrap_or(""))
                    .replace("{agent_id}", agent_id)
            })
            .collect();
        if let Some(flag) = &self.system_prompt_flag {
            argv.push(flag.clone());
            argv.push(role_prompt(role).to_string());
        }
        if self.prompt == PromptMode::Argument {
            if let Some(flag) = &self.prompt_flag {
                argv.push(flag.clone());
            }
            argv.push(start_message(role));
        }
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(src: &str) -> Settings {
        let mut c = crate::config::Config::defaults();
        c.merge_str(Path::new("c.toml"), src).unwrap();
        c.settings().unwrap()
    }

    #[test]
    fn presets_and_configured_runtimes() {
        let c = Settings::defaults();
        let r = resolve(&c, "claude", "worker").unwrap();
        let argv = r.start_argv(
            "worker",
            Path::new("/w/.vermas/PROMPT.md"),
            Some("wo-a"),
            "f/workers/slot0",
        );
        assert_eq!(argv[0], "claude");
        assert!(argv.contains(&"--append-system-prompt".to_string()));
        assert!(argv.last().unwrap().contains("co assignment"));
        let g = resolve(&c, "gemini", "worker").unwrap().start_argv(
            "worker",
            Path::new("p"),
            None,
            "a",
        );
        assert_eq!(g[g.len() - 2], "-i");
        let a = resolve(&c, "aider", "worker").unwrap();
        assert_eq!(a.prompt, PromptMode::Nudge);
        assert!(
            a.start_argv("worker", Path::new("/p.md"), None, "x")
                .contains(&"/p.md".to_string())
        );
        assert!(
            resolve(&c, "command", "worker").is_err(),
            "command needs argv"
        );
        assert!(
            resolve(&c, "nope", "worker")
                .unwrap_err()
                .to_string()
                .contains("roles.worker.runtime")
        );

        let c =
            cfg("[runtimes.scripted]\ncommand = [\"bash\", \"/a/agent.sh\", \"{work_order}\"]\n");
        let s = resolve(&c, "scripted", "worker").unwrap();
        assert_eq!(s.prompt, PromptMode::File);
        assert_eq!(
            s.start_argv("worker", Path::new("p"), Some("wo-x"), "a"),
            vec!["bash", "/a/agent.sh", "wo-x"]
        );
        let c = cfg("[runtimes.mine]\npreset = \"claude\"\ncommand = [\"/opt/claude\"]\n");
        let m = resolve(&c, "mine", "worker").unwrap();
        assert_eq!(m.argv, vec!["/opt/claude"]);
        assert_eq!(m.prompt, PromptMode::Argument);
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
    fn role_prompts_are_compiled_in() {
        assert!(role_prompt("worker").contains("co worker done"));
        assert!(role_prompt("qa").contains("gates"));
    }
}
