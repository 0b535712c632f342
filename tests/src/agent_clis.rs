//! The real agent CLIs for the tests: where `tests/agent-clis/install.sh` put them (pinned
//! versions, cached), one at a time (they are heavy and the machine has 2 cores), and the user
//! states (`tests/agent-clis/homes/`) a CLI home can start from.
//!
//! A CLI that is not installed (registry unreachable, `VERMAS_AGENT_CLIS=skip`) makes its test
//! print `SKIPPED: <cli>: <why>` and pass; with `VERMAS_AGENT_CLIS=require` (CI) it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

static SERIAL: Mutex<()> = Mutex::new(());

/// One CLI test at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The installer's bin directory, or why there is none.
pub fn bin_dir() -> &'static Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        if std::env::var("VERMAS_AGENT_CLIS").is_ok_and(|v| v == "skip") {
            return Err("VERMAS_AGENT_CLIS=skip".into());
        }
        if let Some(dir) = std::env::var_os("VERMAS_AGENT_CLIS_BIN") {
            let dir = PathBuf::from(dir);
            return if dir.is_dir() {
                Ok(dir)
            } else {
                Err(format!(
                    "VERMAS_AGENT_CLIS_BIN={} is not a directory",
                    dir.display()
                ))
            };
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("agent-clis/install.sh");
        eprintln!(
            "agent CLIs: running {} (set VERMAS_AGENT_CLIS_BIN to skip this)",
            script.display()
        );
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !stderr.trim().is_empty() {
            eprintln!("{stderr}");
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().last().map(str::trim) {
            Some(dir) if out.status.success() && Path::new(dir).is_dir() => Ok(PathBuf::from(dir)),
            _ => Err(format!("the installer failed: {}", stderr.trim())),
        }
    })
}

/// The program of `cli`, or `None` after saying loudly why its test is skipped (a failure
/// under `VERMAS_AGENT_CLIS=require`).
pub fn cli_or_skip(cli: &str) -> Option<PathBuf> {
    let why = match bin_dir() {
        Err(why) => format!("no agent CLIs ({why})"),
        Ok(dir) => {
            let p = dir.join(cli);
            if p.exists() {
                return Some(p);
            }
            format!(
                "not installed in {} (see the installer's SKIPPED lines)",
                dir.display()
            )
        }
    };
    if std::env::var("VERMAS_AGENT_CLIS").is_ok_and(|v| v == "require") {
        panic!("{cli}: {why}, and VERMAS_AGENT_CLIS=require");
    }
    eprintln!("SKIPPED: {cli}: {why}");
    None
}

/// Copies a user-state fixture (`tests/agent-clis/homes/<name>`) into `home`.
pub fn copy_home(name: &str, home: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("agent-clis/homes")
        .join(name);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(home)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "copying {}", src.display());
}

/// A directory for files a CLI must trust (Gemini CLI skips a settings file when any parent
/// directory is writable by others, as /tmp is): `base` (the target's tmp directory) when no
/// parent of it is, else `~/.cache/vermas/test-dirs`, so the suite works wherever it is cloned.
pub fn trusted_dir(base: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let open = |d: &Path| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o022 != 0);
    if !base.ancestors().any(open) {
        return base.to_path_buf();
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    let dir = home.join(".cache").join("vermas").join("test-dirs");
    std::fs::create_dir_all(&dir).expect("create ~/.cache/vermas/test-dirs");
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    dir
}
