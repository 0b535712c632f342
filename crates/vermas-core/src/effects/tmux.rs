//! tmux, through its command line with argument vectors (design §4).
//!
//! - The default server unless `VERMAS_TMUX_SOCKET` / `[tmux] socket` names a private one
//!   (a name is `-L name`, a path is `-S path`).
//! - `tmux -V` must be 3.2 or newer (`new-session -e` sets the agent's environment).
//! - Every session we create is tagged with `@vermas_company` (the company root) and
//!   `@vermas_incarnation`; only sessions carrying our company's tag are ever killed.
//! - Targets use `=name` so `worker-mp-slot1` never matches `worker-mp-slot10`.
//! - Text typed into an agent goes through `send-keys -l --`: literal, never parsed as key
//!   names or options, with newlines replaced so nothing is submitted early.

use crate::error::{Classify, Kind};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Errors from tmux.
#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    #[error(
        "tmux is not installed or not on PATH; install tmux 3.2 or newer (apt-get install tmux)"
    )]
    Missing,
    #[error("tmux {0} is too old: VerMAS needs tmux 3.2 or newer (for new-session -e)")]
    TooOld(String),
    #[error("tmux {args}: {message}")]
    Failed { args: String, message: String },
    #[error("session {0} already exists")]
    Exists(String),
    #[error("no tmux session {0}")]
    NoSession(String),
    #[error("session {0} was not started by this company; refusing to touch it")]
    NotOurs(String),
}

impl Classify for TmuxError {
    fn kind(&self) -> Kind {
        match self {
            TmuxError::Exists(_) => Kind::Conflict,
            TmuxError::NoSession(_) => Kind::NotFound,
            TmuxError::NotOurs(_) => Kind::Permission,
            _ => Kind::Failure,
        }
    }
}

pub type Result<T, E = TmuxError> = std::result::Result<T, E>;

/// The user option holding the company tag.
pub const TAG_COMPANY: &str = "@vermas_company";
pub const TAG_INCARNATION: &str = "@vermas_incarnation";
pub const TAG_AGENT: &str = "@vermas_agent";
pub const TAG_ROLE: &str = "@vermas_role";

/// Which tmux server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Socket {
    Default,
    Name(String),
    Path(PathBuf),
}

/// A handle on one tmux server.
#[derive(Debug, Clone)]
pub struct Tmux {
    socket: Socket,
}

/// A session to create.
#[derive(Debug, Clone, Default)]
pub struct SessionSpec {
    pub name: String,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    /// The program and its arguments. Never a shell string.
    pub argv: Vec<String>,
    /// User options set on the session (`@vermas_company` etc.).
    pub tags: Vec<(String, String)>,
    /// Append everything the pane prints to this file.
    pub log_file: Option<PathBuf>,
}

/// A session being created ([`Tmux::spawn_session`]).
#[derive(Debug)]
pub struct PendingSession {
    child: std::process::Child,
    name: String,
}

impl PendingSession {
    /// Waits for tmux: `Exists` when the name is taken, else its error, else the session runs.
    pub fn wait(self) -> Result<()> {
        let out = self
            .child
            .wait_with_output()
            .map_err(|e| TmuxError::Failed {
                args: "new-session".into(),
                message: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(());
        }
        let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if message.contains("duplicate session") {
            return Err(TmuxError::Exists(self.name));
        }
        Err(TmuxError::Failed {
            args: "new-session".into(),
            message,
        })
    }
}

/// What `list-sessions` says about one session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub name: String,
    pub company: String,
    pub incarnation: String,
    pub agent: String,
    pub role: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds of the last output in the session.
    pub activity: i64,
    pub pane_pid: u32,
    pub pane_dead: bool,
}

/// How a nudge went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NudgeOutcome {
    /// The text showed up in the pane (and only then was Enter pressed).
    pub delivered: bool,
    /// Enter presses it took.
    pub enters: u32,
    /// Not typed at all: what the screen showed instead of an input prompt (`blocked: trust`,
    /// `working`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl NudgeOutcome {
    /// Nothing was typed because the screen showed `what`.
    pub fn refused(what: String) -> NudgeOutcome {
        NudgeOutcome {
            delivered: false,
            enters: 0,
            refused: Some(what),
        }
    }
}

const FIELD_SEP: &str = "\u{1f}";

/// Quotes a string for `sh` (single quotes). Used only for the `pipe-pane` log path, which
/// tmux runs through a shell; paths come from the company layout, never from titles.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// One argument passed to tmux as itself. tmux reads an argument that ends in `;` as the end
/// of a command and drops the `;`, unless it ends in `\;`, which it turns into `;`; so a value
/// of ours (an argv element, an environment value, typed text) that ends in `;` gets the `\`.
pub fn literal(s: &str) -> String {
    match s.strip_suffix(';') {
        Some(head) => format!("{head}\\;"),
        None => s.to_string(),
    }
}

/// [`literal`], for the arguments tmux also expands `#{…}` formats in (the `-c` directory and
/// the `pipe-pane` command): `#` is doubled.
pub fn literal_format(s: &str) -> String {
    literal(&s.replace('#', "##"))
}

/// Replaces newlines and other control characters with spaces: typed text must never press
/// Enter (or anything else) by itself.
pub fn flatten_for_typing(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Tmux {
    pub fn new(socket: Socket) -> Tmux {
        Tmux { socket }
    }

    /// From a configured value: empty/None = default server, a value with `/` = socket path,
    /// else a socket name.
    pub fn from_setting(setting: Option<&str>) -> Tmux {
        let socket = match setting.filter(|s| !s.is_empty()) {
            None => Socket::Default,
            Some(s) if s.contains('/') => Socket::Path(PathBuf::from(s)),
            Some(s) => Socket::Name(s.to_string()),
        };
        Tmux { socket }
    }

    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// `-L name` / `-S path` for people: how to attach by hand.
    pub fn attach_hint(&self, session: &str) -> String {
        match &self.socket {
            Socket::Default => format!("tmux attach -t {session}"),
            Socket::Name(n) => format!("tmux -L {n} attach -t {session}"),
            Socket::Path(p) => format!("tmux -S {} attach -t {session}", p.display()),
        }
    }

    /// The socket setting to pass on to agents (`VERMAS_TMUX_SOCKET`), if any.
    pub fn socket_setting(&self) -> Option<String> {
        match &self.socket {
            Socket::Default => None,
            Socket::Name(n) => Some(n.clone()),
            Socket::Path(p) => Some(p.display().to_string()),
        }
    }

    /// A `tmux` command on this server.
    pub fn command(&self) -> Command {
        self.command_of(Path::new("tmux"))
    }

    /// [`Tmux::command`] running `program` (the tmux binary, by name or path).
    fn command_of(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        match &self.socket {
            Socket::Default => {}
            Socket::Name(n) => {
                c.arg("-L").arg(n);
            }
            Socket::Path(p) => {
                c.arg("-S").arg(p);
            }
        }
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let mut c = self.command();
        c.args(args);
        crate::trace::running(&c);
        let out = c.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                TmuxError::Missing
            } else {
                TmuxError::Failed {
                    args: args.join(" "),
                    message: e.to_string(),
                }
            }
        })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(TmuxError::Failed {
                args: args.first().copied().unwrap_or_default().to_string(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// `tmux -V` as (major, minor) and the raw version text.
    pub fn version(&self) -> Result<((u32, u32), String)> {
        let out = Command::new("tmux")
            .arg("-V")
            .stdin(Stdio::null())
            .output()
            .map_err(|_| TmuxError::Missing)?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok((parse_version(&text), text))
    }

    /// Refuses tmux older than 3.2 with a clear message.
    pub fn check_version(&self) -> Result<String> {
        let ((major, minor), text) = self.version()?;
        if (major, minor) < (3, 2) {
            return Err(TmuxError::TooOld(
                text.strip_prefix("tmux ").unwrap_or(&text).to_string(),
            ));
        }
        Ok(text)
    }

    /// Whether a session with exactly this name exists.
    pub fn has_session(&self, name: &str) -> bool {
        let mut c = self.command();
        c.args(["has-session", "-t", &format!("={name}")]);
        crate::trace::running(&c);
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Every session on the server with our tags (empty when no server runs).
    pub fn sessions(&self) -> Result<Vec<SessionInfo>> {
        let format = [
            "#{session_name}",
            &format!("#{{{TAG_COMPANY}}}"),
            &format!("#{{{TAG_INCARNATION}}}"),
            &format!("#{{{TAG_AGENT}}}"),
            &format!("#{{{TAG_ROLE}}}"),
            "#{session_created}",
            // Moves when the pane prints (session_activity does not, for a detached session).
            "#{window_activity}",
            "#{pane_pid}",
            "#{pane_dead}",
        ]
        .join(FIELD_SEP);
        let mut c = self.command();
        c.args(["list-sessions", "-F", &format]);
        crate::trace::running(&c);
        let out = c.output();
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(TmuxError::Missing),
            Err(e) => {
                return Err(TmuxError::Failed {
                    args: "list-sessions".into(),
                    message: e.to_string(),
                });
            }
        };
        if !out.status.success() {
            // No server running means no sessions.
            return Ok(Vec::new());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(FIELD_SEP).collect();
                (f.len() == 9).then(|| SessionInfo {
                    name: f[0].to_string(),
                    company: f[1].to_string(),
                    incarnation: f[2].to_string(),
                    agent: f[3].to_string(),
                    role: f[4].to_string(),
                    created: f[5].parse().unwrap_or(0),
                    activity: f[6].parse().unwrap_or(0),
                    pane_pid: f[7].parse().unwrap_or(0),
                    pane_dead: f[8] == "1",
                })
            })
            .collect())
    }

    /// One session's info.
    pub fn session(&self, name: &str) -> Result<Option<SessionInfo>> {
        Ok(self.sessions()?.into_iter().find(|s| s.name == name))
    }

    /// Creates a detached session running `argv` (executed directly, no shell) with the
    /// environment and tags, in one tmux invocation so a session never exists untagged.
    pub fn new_session(&self, spec: &SessionSpec) -> Result<()> {
        self.spawn_session(spec)?.wait()
    }

    /// Starts creating a session (see [`Tmux::new_session`]) and returns at once, so the caller
    /// can do other work while tmux does; [`PendingSession::wait`] gives the outcome.
    pub fn spawn_session(&self, spec: &SessionSpec) -> Result<PendingSession> {
        if spec.argv.is_empty() {
            return Err(TmuxError::Failed {
                args: "new-session".into(),
                message: "no command to run".into(),
            });
        }
        let target = format!("={}", spec.name);
        let mut args: Vec<String> = vec![
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            spec.name.clone(),
            "-x".into(),
            "200".into(),
            "-y".into(),
            "50".into(),
            "-c".into(),
            literal_format(&spec.cwd.display().to_string()),
        ];
        for (k, v) in &spec.env {
            args.push("-e".into());
            args.push(literal(&format!("{k}={v}")));
        }
        args.push("--".into());
        if spec.argv.len() == 1 {
            // tmux runs a single argument through `sh -c`; `exec` keeps it an argv (the one
            // element is a program path from config, passed as "$0").
            args.extend(["sh".into(), "-c".into(), "exec \"$0\"".into()]);
        }
        args.extend(spec.argv.iter().map(|a| literal(a)));
        for (k, v) in &spec.tags {
            args.extend([
                ";".into(),
                "set-option".into(),
                "-t".into(),
                format!("{target}:"),
                k.clone(),
                literal(v),
            ]);
        }
        if let Some(log) = &spec.log_file {
            args.extend([
                ";".into(),
                "pipe-pane".into(),
                "-o".into(),
                "-t".into(),
                format!("{target}:"),
                literal_format(&format!(
                    "exec cat >> {}",
                    shell_quote(&log.display().to_string())
                )),
            ]);
        }
        // tmux gives a new pane the PATH of the client that asked for it (not `-e PATH=`), so
        // the client gets the agent's PATH too. The client is found on that PATH here, as exec
        // would: given a bare name and a PATH of its own, std forks the whole process instead
        // of spawning, which costs this one milliseconds of page copying while git runs.
        let path = spec.env.iter().rev().find(|(k, _)| k == "PATH");
        let program = path
            .and_then(|(_, p)| find_program_in("tmux", OsStr::new(p)))
            .unwrap_or_else(|| PathBuf::from("tmux"));
        let mut cmd = self.command_of(&program);
        if let Some((_, p)) = path {
            cmd.env("PATH", p);
        }
        cmd.args(&args);
        crate::trace::running(&cmd);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    TmuxError::Missing
                } else {
                    TmuxError::Failed {
                        args: "new-session".into(),
                        message: e.to_string(),
                    }
                }
            })?;
        Ok(PendingSession {
            child,
            name: spec.name.clone(),
        })
    }

    /// Kills a session only if it carries `company` as its `@vermas_company` tag.
    pub fn kill_session(&self, name: &str, company: &str) -> Result<()> {
        let info = self
            .session(name)?
            .ok_or_else(|| TmuxError::NoSession(name.to_string()))?;
        if info.company != company {
            return Err(TmuxError::NotOurs(name.to_string()));
        }
        self.run(&["kill-session", "-t", &format!("={name}")])
            .map(|_| ())
    }

    /// The socket file of the running server (`None` when no server runs).
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.run(&["display-message", "-p", "#{socket_path}"])
            .ok()
            .map(|p| PathBuf::from(p.trim()))
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// Kills the tmux server and removes its socket file (tests and `co demo`, on their private
    /// socket only; never the default server).
    pub fn kill_server(&self) {
        if self.socket == Socket::Default {
            return;
        }
        let path = self.socket_path();
        let _ = self
            .command()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(p) = path.or(match &self.socket {
            Socket::Path(p) => Some(p.clone()),
            _ => None,
        }) {
            // tmux 3.3 leaves the socket file behind; it is ours (a private server) to remove.
            let _ = std::fs::remove_file(p);
        }
    }

    /// Types `text` literally (no key names, no options, newlines flattened).
    pub fn type_text(&self, session: &str, text: &str) -> Result<()> {
        let flat = literal(&flatten_for_typing(text));
        self.run(&[
            "send-keys",
            "-t",
            &format!("={session}:"),
            "-l",
            "--",
            &flat,
        ])
        .map(|_| ())
    }

    /// Presses Enter.
    pub fn press_enter(&self, session: &str) -> Result<()> {
        self.run(&["send-keys", "-t", &format!("={session}:"), "Enter"])
            .map(|_| ())
    }

    /// The visible pane text (plus `history` lines of scrollback).
    pub fn capture(&self, session: &str, history: u32) -> Result<String> {
        self.run(&[
            "capture-pane",
            "-p",
            "-J",
            "-t",
            &format!("={session}:"),
            "-S",
            &format!("-{history}"),
        ])
    }

    /// The visible screens of several sessions with one tmux process (`capture-pane` of each,
    /// chained with `;`, a line only this call knows between them): an idle supervisor looks
    /// at every worker's screen now and then, and one process per worker was most of its CPU.
    /// A session that cannot be captured (it ended meanwhile) is left out, and so are those
    /// after it in the same chain (tmux stops a chain at a failing command); the caller
    /// captures those on their own.
    pub fn capture_many(&self, sessions: &[&str]) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        // Not starting with `-`: tmux would read it as a flag of `display-message`.
        let marker = format!(
            "vermas-capture-{}",
            crate::ids::new_incarnation_id().trim_start_matches("inc-")
        );
        for chunk in sessions.chunks(50) {
            let mut args: Vec<String> = Vec::new();
            for name in chunk {
                if !args.is_empty() {
                    args.push(";".into());
                }
                for a in ["capture-pane", "-p", "-J", "-t"] {
                    args.push(a.into());
                }
                args.extend([format!("={name}:"), "-S".into(), "-0".into()]);
                args.extend([";".into(), "display-message".into(), "-p".into()]);
                args.push(marker.clone());
            }
            let mut c = self.command();
            c.args(&args);
            crate::trace::running(&c);
            let Ok(o) = c.output() else { continue };
            // Whatever came before a failing command is still good.
            let text = String::from_utf8_lossy(&o.stdout);
            let (mut start, mut pos, mut i) = (0, 0, 0);
            for line in text.split_inclusive('\n') {
                if line.trim_end_matches('\n') == marker {
                    if let Some(name) = chunk.get(i) {
                        out.insert(name.to_string(), text[start..pos].to_string());
                    }
                    i += 1;
                    start = pos + line.len();
                }
                pos += line.len();
            }
        }
        out
    }

    /// The line under the cursor.
    fn cursor_line(&self, session: &str) -> Result<String> {
        let y = self.run(&[
            "display-message",
            "-p",
            "-t",
            &format!("={session}:"),
            "#{cursor_y}",
        ])?;
        let y: usize = y.trim().parse().unwrap_or(0);
        let pane = self.capture(session, 0)?;
        Ok(pane.lines().nth(y).unwrap_or_default().to_string())
    }

    /// Types a message into an agent and submits it: `send-keys -l` the text, then checks with
    /// `capture-pane` that it shows (ignoring box-drawing characters and wrapping, as input
    /// boxes draw them); only then presses Enter, and again (up to three times) while the
    /// cursor line still ends with it. Text that never shows is left unsubmitted. The caller
    /// decides first whether the screen may be typed into at all.
    pub fn nudge(&self, session: &str, text: &str) -> Result<NudgeOutcome> {
        let flat = flatten_for_typing(text);
        self.type_text(session, &flat)?;
        let delivered = wait_until(Duration::from_millis(800), || {
            self.capture(session, 5)
                .map(|p| crate::runtime::screen::shows_typed(&p, &flat))
                .unwrap_or(false)
        });
        let mut out = NudgeOutcome {
            delivered,
            enters: 0,
            refused: None,
        };
        if !delivered {
            return Ok(out);
        }
        let probe: String = flat
            .chars()
            .rev()
            .take(24)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let probe = probe.trim().to_string();
        for _ in 0..3 {
            self.press_enter(session)?;
            out.enters += 1;
            std::thread::sleep(Duration::from_millis(150));
            let line = self.cursor_line(session).unwrap_or_default();
            if probe.is_empty() || !line.trim_end().ends_with(&probe) {
                break;
            }
        }
        Ok(out)
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}

/// Parses `tmux 3.3a`, `tmux 3.2`, `tmux next-3.5`, `tmux master` (newest).
pub fn parse_version(text: &str) -> (u32, u32) {
    let v = text.trim().strip_prefix("tmux ").unwrap_or(text.trim());
    let v = v.strip_prefix("next-").unwrap_or(v);
    if v == "master" {
        return (u32::MAX, 0);
    }
    let mut it = v.split('.');
    let major = it
        .next()
        .and_then(|m| {
            m.trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let minor = it
        .next()
        .map(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    (major, minor)
}

/// Whether a program can be run: a path that is an executable file, or a name found on PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    find_program_in(program, &std::env::var_os("PATH")?)
}

/// Where `program` (a bare name) is on `path`, as exec searches it.
pub fn find_program_in(program: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(program))
        .find(|p| executable(p))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("tmux 3.3a"), (3, 3));
        assert_eq!(parse_version("tmux 3.2"), (3, 2));
        assert_eq!(parse_version("tmux 3.1c"), (3, 1));
        assert_eq!(parse_version("tmux next-3.5"), (3, 5));
        assert_eq!(parse_version("tmux 2.9a"), (2, 9));
        assert!(parse_version("tmux master") > (3, 2));
    }

    #[test]
    fn typing_never_contains_control_characters() {
        assert_eq!(flatten_for_typing("a\nb\rc\x1b[0m\td"), "a b c [0m d");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    /// A private server in a temporary directory, killed when the test ends, also when an
    /// assertion fails (its socket is in the directory: a server left behind could not be
    /// reached). The directory is removed after the kill (fields drop after `drop`).
    struct Private {
        tmux: Tmux,
        dir: tempfile::TempDir,
    }
    impl Drop for Private {
        fn drop(&mut self) {
            self.tmux.kill_server();
        }
    }
    impl std::ops::Deref for Private {
        type Target = Tmux;
        fn deref(&self) -> &Tmux {
            &self.tmux
        }
    }

    fn private() -> Private {
        let dir = tempfile::tempdir().unwrap();
        let tmux = Tmux::new(Socket::Path(dir.path().join("s")));
        Private { tmux, dir }
    }

    #[test]
    fn sessions_are_tagged_and_only_ours_are_killed() {
        let t = private();
        let d = &t.dir;
        let spec = SessionSpec {
            name: "worker-mp-slot1".into(),
            cwd: d.path().to_path_buf(),
            env: vec![("AGENT_ID".into(), "mp/workers/slot1".into())],
            argv: vec!["sleep".into(), "30".into()],
            tags: vec![
                (TAG_COMPANY.into(), "/co".into()),
                (TAG_INCARNATION.into(), "inc-1".into()),
            ],
            log_file: None,
        };
        t.new_session(&spec).unwrap();
        assert!(matches!(t.new_session(&spec), Err(TmuxError::Exists(_))));
        // An untagged session of "the user".
        t.new_session(&SessionSpec {
            name: "worker-mp-slot10".into(),
            cwd: d.path().to_path_buf(),
            argv: vec!["sleep".into(), "30".into()],
            ..Default::default()
        })
        .unwrap();
        let s = t.session("worker-mp-slot1").unwrap().unwrap();
        assert_eq!(s.company, "/co");
        assert_eq!(s.incarnation, "inc-1");
        assert!(t.has_session("worker-mp-slot1"));
        assert!(!t.has_session("worker-mp-slot"));
        assert!(matches!(
            t.kill_session("worker-mp-slot10", "/co"),
            Err(TmuxError::NotOurs(_))
        ));
        assert!(matches!(
            t.kill_session("worker-mp-slot1", "/other"),
            Err(TmuxError::NotOurs(_))
        ));
        t.kill_session("worker-mp-slot1", "/co").unwrap();
        assert!(!t.has_session("worker-mp-slot1"));
        assert!(
            t.has_session("worker-mp-slot10"),
            "the prefix-similar session survives"
        );
    }

    #[test]
    fn many_screens_are_captured_by_one_process_as_each_alone() {
        let t = private();
        let d = &t.dir;
        for (name, text) in [("a", "first screen"), ("b", "vermas-capture-x"), ("c", "")] {
            t.new_session(&SessionSpec {
                name: name.into(),
                cwd: d.path().to_path_buf(),
                argv: vec!["sh".into(), "-c".into(), format!("echo '{text}'; sleep 30")],
                ..Default::default()
            })
            .unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
        // "gone" ended before the capture: it and those after it in its chain are left to
        // the caller; the ones before it are still there.
        let got = t.capture_many(&["a", "b", "c", "gone", "a"]);
        for name in ["a", "b", "c"] {
            assert_eq!(got.get(name), Some(&t.capture(name, 0).unwrap()), "{name}");
        }
        assert!(got["a"].contains("first screen"));
        assert!(got["b"].contains("vermas-capture-x"));
        assert!(!got.contains_key("gone"));
        assert!(t.capture_many(&[]).is_empty());
    }

    #[test]
    fn typed_text_is_literal_and_nudges_are_checked() {
        let t = private();
        let d = &t.dir;
        let marker = d.path().join("pwned");
        t.new_session(&SessionSpec {
            name: "agent".into(),
            cwd: d.path().to_path_buf(),
            argv: vec!["cat".into()],
            ..Default::default()
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let hostile = format!(
            "-t other $(touch {}) `id` C-c Enter\nsecond line",
            marker.display()
        );
        let out = t.nudge("agent", &hostile).unwrap();
        assert!(out.delivered, "{out:?}");
        std::thread::sleep(Duration::from_millis(200));
        let pane = t.capture("agent", 20).unwrap();
        assert!(pane.contains("C-c Enter second line"), "{pane}");
        assert!(t.has_session("agent"), "C-c was typed as text, not pressed");
        assert!(!marker.exists());
    }

    #[test]
    fn single_word_commands_are_not_run_through_a_shell_string() {
        let t = private();
        let d = &t.dir;
        let script = d.path().join("agent.sh");
        std::fs::write(&script, "#!/bin/sh\necho started-$AGENT_ID; sleep 30\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let log = d.path().join("out.log");
        t.new_session(&SessionSpec {
            name: "one".into(),
            cwd: d.path().to_path_buf(),
            env: vec![("AGENT_ID".into(), "x/qa".into())],
            argv: vec![script.display().to_string()],
            log_file: Some(log.clone()),
            ..Default::default()
        })
        .unwrap();
        assert!(wait_until(Duration::from_secs(5), || t
            .capture("one", 0)
            .map(|p| p.contains("started-x/qa"))
            .unwrap_or(false)));
        assert!(wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log)
                .map(|l| l.contains("started-x/qa"))
                .unwrap_or(false)
        }));
    }

    #[test]
    fn values_ending_in_a_semicolon_and_directories_with_a_hash_reach_the_agent_as_they_are() {
        let t = private();
        let cwd = t.dir.path().join("a#S#{pane_id};");
        std::fs::create_dir(&cwd).unwrap();
        let out = t.dir.path().join("out");
        let log = t.dir.path().join("log#S");
        t.new_session(&SessionSpec {
            name: "lit".into(),
            cwd: cwd.clone(),
            env: vec![("V".into(), "x#S;".into())],
            argv: vec![
                "sh".into(),
                "-c".into(),
                "printf '%s|%s|%s\\n' \"$(pwd)\" \"$V\" \"$1\" > \"$2\"; echo logged; cat".into(),
                "sh".into(),
                "arg;".into(),
                out.display().to_string(),
            ],
            log_file: Some(log.clone()),
            ..Default::default()
        })
        .unwrap();
        assert!(wait_until(Duration::from_secs(5), || out.exists()));
        std::thread::sleep(Duration::from_millis(100));
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(got.trim_end(), format!("{}|x#S;|arg;", cwd.display()));
        assert!(wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("logged"))
        }));
        t.type_text("lit", "typed;").unwrap();
        assert!(wait_until(Duration::from_secs(5), || t
            .capture("lit", 0)
            .is_ok_and(|p| p.contains("typed;"))));
    }
}
