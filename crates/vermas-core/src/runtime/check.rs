//! What `co doctor` checks about each runtime in use, before a worker meets it: the program and
//! its version, and the state of the user's own CLI that only the user can change (a first
//! run not done, an API key not approved, no login). Reads the user's files; never writes
//! them. Each problem says how to fix it.

use super::Runtime;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One thing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Fine, or worth knowing.
    Note(String),
    /// A worker will not get far: the fix is in the text.
    Problem(String),
}

/// Where the user's CLI state is: their home and environment (tests pass their own).
#[derive(Debug, Clone)]
pub struct UserState {
    pub home: PathBuf,
    pub env: Vec<(String, String)>,
    pub root: bool,
}

impl UserState {
    pub fn of_this_process() -> UserState {
        UserState {
            home: std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/")),
            env: std::env::vars().collect(),
            root: crate::actions::launch::running_as_root(),
        }
    }
    fn var(&self, k: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// `PROGRAM --version`, first line, within a few seconds.
pub fn version(rt: &Runtime) -> Option<String> {
    if rt.preset.version_args.is_empty() {
        return None;
    }
    let program = crate::effects::tmux::find_program(&rt.argv[0])?;
    let mut child = std::process::Command::new(program)
        .args(rt.preset.version_args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

fn json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The checks of one runtime for one user, given its program's version (`None`: it did not
/// answer) and the company root.
pub fn check(rt: &Runtime, user: &UserState, version: Option<&str>, company: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let program = &rt.argv[0];
    match (crate::effects::tmux::find_program(program), version) {
        (None, _) => {
            out.push(Found::Problem(format!(
                "runtime {}: {program} is not on PATH; install it or change {}",
                rt.name, rt.config_key
            )));
            return out;
        }
        (Some(p), Some(v)) => out.push(Found::Note(format!(
            "runtime {}: {} ({v})",
            rt.name,
            p.display()
        ))),
        (Some(p), None) => out.push(Found::Note(format!(
            "runtime {}: {} (no version printed)",
            rt.name,
            p.display()
        ))),
    }
    match rt.preset.name {
        "claude" => claude(rt, user, &mut out),
        "codex" => codex(rt, user, &mut out),
        "gemini" => gemini(rt, user, company, &mut out),
        _ => {}
    }
    out
}

fn claude(rt: &Runtime, user: &UserState, out: &mut Vec<Found>) {
    let name = &rt.name;
    if user.root {
        out.push(Found::Note(format!(
            "runtime {name}: running as root: VerMAS sets IS_SANDBOX=1 so claude accepts --dangerously-skip-permissions"
        )));
    }
    let dir = user
        .var("CLAUDE_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| user.home.clone());
    let file = dir.join(".claude.json");
    let state = json(&file);
    if !state
        .as_ref()
        .is_some_and(|s| s["hasCompletedOnboarding"] == true)
    {
        out.push(Found::Problem(format!(
            "runtime {name}: claude's first-run setup is not done ({} has no hasCompletedOnboarding): run `claude` once by hand and finish it, or every worker stops at its first screen",
            file.display()
        )));
    }
    if let Some(key) = user.var("ANTHROPIC_API_KEY") {
        let tail: String = key
            .chars()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let listed = |which: &str| {
            state.as_ref().is_some_and(|s| {
                s["customApiKeyResponses"][which]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|k| k.as_str() == Some(tail.as_str())))
            })
        };
        if listed("rejected") {
            out.push(Found::Problem(format!(
                "runtime {name}: claude was told not to use this ANTHROPIC_API_KEY (in {}: customApiKeyResponses.rejected): run `claude` once and approve it",
                file.display()
            )));
        } else if !listed("approved") {
            out.push(Found::Problem(format!(
                "runtime {name}: claude has not approved this ANTHROPIC_API_KEY yet, so each worker would stop at \"Detected a custom API key\": run `claude` once with the key set and answer Yes"
            )));
        }
    }
    out.push(Found::Note(format!(
        "runtime {name}: folder trust and the bypass-permissions warning are skipped by VerMAS's own flags (nothing is written to {})",
        file.display()
    )));
}

fn codex(rt: &Runtime, user: &UserState, out: &mut Vec<Found>) {
    let home = user
        .var("CODEX_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| user.home.join(".codex"));
    let auth = home.join("auth.json");
    if !auth.is_file() {
        out.push(Found::Problem(format!(
            "runtime {}: codex is not logged in ({} is missing), so each worker would stop at its sign-in screen: run `codex login` (or `codex login --with-api-key`)",
            rt.name,
            auth.display()
        )));
    }
    out.push(Found::Note(format!(
        "runtime {}: project trust is given for each run on codex's command line, and commands run without a login shell (co stays on PATH)",
        rt.name
    )));
}

fn gemini(rt: &Runtime, user: &UserState, company: &Path, out: &mut Vec<Found>) {
    let settings = user.home.join(".gemini").join("settings.json");
    let chosen = json(&settings).and_then(|s| {
        s["security"]["auth"]["selectedType"]
            .as_str()
            .map(str::to_string)
    });
    let key = user.var("GEMINI_API_KEY").or(user.var("GOOGLE_API_KEY"));
    match (chosen, key) {
        (Some(t), _) => out.push(Found::Note(format!(
            "runtime {}: gemini signs in with {t} ({})",
            rt.name,
            settings.display()
        ))),
        (None, Some(_)) => out.push(Found::Note(format!(
            "runtime {}: gemini uses GEMINI_API_KEY (VerMAS's defaults choose the API key for it)",
            rt.name
        ))),
        (None, None) => out.push(Found::Problem(format!(
            "runtime {}: gemini has no way to sign in: set GEMINI_API_KEY, or run `gemini` once and sign in",
            rt.name
        ))),
    }
    // Gemini ignores settings files under a directory others may write to.
    if let Some(bad) = world_writable_parent(company) {
        out.push(Found::Problem(format!(
            "runtime {}: gemini ignores VerMAS's settings files under {} (writable by others): move the company elsewhere",
            rt.name,
            bad.display()
        )));
    }
}

fn world_writable_parent(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors()
        .find(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o022 != 0))
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(home: &Path, env: &[(&str, &str)]) -> UserState {
        UserState {
            home: home.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            root: false,
        }
    }

    fn problems(f: &[Found]) -> Vec<&str> {
        f.iter()
            .filter_map(|x| match x {
                Found::Problem(p) => Some(p.as_str()),
                _ => None,
            })
            .collect()
    }

    fn runtime(name: &str) -> Runtime {
        let mut rt =
            super::super::resolve(&crate::config::Settings::defaults(), name, "worker").unwrap();
        // `sh` stands for the CLI: these checks are about the user's state, not the program.
        rt.argv[0] = "sh".into();
        rt
    }

    #[test]
    fn claude_needs_its_first_run_done_and_the_api_key_approved() {
        let d = tempfile::tempdir().unwrap();
        let rt = runtime("claude");
        let key = (
            "ANTHROPIC_API_KEY",
            "sk-ant-0123456789abcdefghijklmnopqrstuv",
        );
        let p = check(
            &rt,
            &user(d.path(), &[key]),
            Some("2.1.197"),
            Path::new("/c"),
        );
        let p = problems(&p);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("run `claude` once"));
        assert!(p[1].contains("has not approved this ANTHROPIC_API_KEY"));
        std::fs::write(
            d.path().join(".claude.json"),
            r#"{"hasCompletedOnboarding": true, "customApiKeyResponses": {"approved": ["ghijklmnopqrstuv"], "rejected": []}}"#,
        )
        .unwrap();
        // The approval is the key's last 20 characters.
        std::fs::write(
            d.path().join(".claude.json"),
            r#"{"hasCompletedOnboarding": true, "customApiKeyResponses": {"approved": ["cdefghijklmnopqrstuv"], "rejected": []}}"#,
        )
        .unwrap();
        let f = check(&rt, &user(d.path(), &[key]), None, Path::new("/c"));
        assert!(problems(&f).is_empty(), "{f:?}");
        std::fs::write(
            d.path().join(".claude.json"),
            r#"{"hasCompletedOnboarding": true, "customApiKeyResponses": {"approved": [], "rejected": ["cdefghijklmnopqrstuv"]}}"#,
        )
        .unwrap();
        let f = check(&rt, &user(d.path(), &[key]), None, Path::new("/c"));
        assert!(problems(&f)[0].contains("rejected"), "{f:?}");
    }

    #[test]
    fn codex_needs_a_login_and_gemini_a_way_to_sign_in() {
        let d = tempfile::tempdir().unwrap();
        let f = check(
            &runtime("codex"),
            &user(d.path(), &[]),
            None,
            Path::new("/c"),
        );
        assert!(problems(&f)[0].contains("codex login"), "{f:?}");
        std::fs::create_dir_all(d.path().join(".codex")).unwrap();
        std::fs::write(d.path().join(".codex/auth.json"), "{}").unwrap();
        assert!(
            problems(&check(
                &runtime("codex"),
                &user(d.path(), &[]),
                None,
                Path::new("/c")
            ))
            .is_empty()
        );
        let g = check(&runtime("gemini"), &user(d.path(), &[]), None, d.path());
        assert!(
            problems(&g).iter().any(|p| p.contains("GEMINI_API_KEY")),
            "{g:?}"
        );
        let g = check(
            &runtime("gemini"),
            &user(d.path(), &[("GEMINI_API_KEY", "k")]),
            None,
            d.path(),
        );
        assert!(!problems(&g).iter().any(|p| p.contains("sign in")), "{g:?}");
    }

    #[test]
    fn a_program_not_installed_is_the_first_problem() {
        let mut rt = runtime("claude");
        rt.argv[0] = "definitely-not-installed-xyz".into();
        let f = check(
            &rt,
            &user(Path::new("/nonexistent"), &[]),
            None,
            Path::new("/c"),
        );
        assert_eq!(f.len(), 1);
        assert!(problems(&f)[0].contains("not on PATH"));
    }
}
