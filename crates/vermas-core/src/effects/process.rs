//! Processes: signals, and finding every process an agent started.
//!
//! Killing a tmux session signals its pane's process group only; some CLIs start daemons in
//! sessions of their own (Codex's app-server, Gemini's relaunched child) that survive it. Every
//! process an agent starts inherits its environment, and VerMAS puts the company and the
//! agent's incarnation there: those two together find all of them, whatever session or group
//! they moved to, and nothing that is not ours.

use std::path::Path;
use std::time::{Duration, Instant};

/// Sends a signal to a process.
#[allow(unsafe_code)]
pub fn signal(pid: u32, sig: i32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// A closed pipe on stdout (`co status | head -1`) ends the process quietly, as it does `cat`
/// and `grep`, instead of a panic: Rust ignores SIGPIPE by default, so each binary's `main`
/// puts it back first.
#[allow(unsafe_code)]
pub fn quiet_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Lowers the calling thread's CPU priority (nice 10), and that of the processes it starts
/// from now on: for clean-up nobody waits for, which then gives way to the loops on a busy
/// machine. Best effort.
#[allow(unsafe_code)]
pub fn lower_priority() {
    // SAFETY: setpriority(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// Kills a whole process group (gate runs start their own).
#[allow(unsafe_code)]
pub fn kill_group(pgid: u32) {
    if let Ok(p) = i32::try_from(pgid)
        && p > 0
    {
        // SAFETY: as above; a negative pid names the process group.
        unsafe {
            libc::kill(-p, libc::SIGKILL);
        }
    }
}

/// The variables of a process, when this user may read them.
fn environ(pid: u32) -> Option<Vec<u8>> {
    std::fs::read(Path::new("/proc").join(pid.to_string()).join("environ")).ok()
}

/// Whether an environment block (`K=V\0…`) holds every one of `want`.
pub fn env_holds(block: &[u8], want: &[(&str, &str)]) -> bool {
    want.iter().all(|(k, v)| {
        block.split(|b| *b == 0).any(|kv| {
            kv.len() == k.len() + 1 + v.len()
                && kv.starts_with(k.as_bytes())
                && kv[k.len()] == b'='
                && kv.ends_with(v.as_bytes())
        })
    })
}

/// A variable of a process's environment.
pub fn env_value(pid: u32, key: &str) -> Option<String> {
    let block = environ(pid)?;
    block.split(|b| *b == 0).find_map(|kv| {
        kv.strip_prefix(key.as_bytes())
            .and_then(|r| r.strip_prefix(b"="))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    })
}

/// Every process (but this one and its ancestors) whose environment holds all of `want`.
pub fn with_env(want: &[(&str, &str)]) -> Vec<u32> {
    let me = std::process::id();
    let ancestors = ancestors(me);
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me && !ancestors.contains(pid))
        .filter(|pid| environ(*pid).is_some_and(|b| env_holds(&b, want)))
        .collect()
}

/// The parent chain of a process (its parent, grandparent…).
fn ancestors(mut pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    while let Some(ppid) = parent(pid) {
        if ppid <= 1 || out.contains(&ppid) {
            break;
        }
        out.push(ppid);
        pid = ppid;
    }
    out
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn alive(pid: u32) -> bool {
    // A zombie is dead for our purpose: it waits only for its parent to reap it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

/// Ends these processes: SIGTERM, then SIGKILL for any still alive after `grace`. Returns the
/// ones that were alive to begin with.
pub fn end(pids: &[u32], grace: Duration) -> Vec<u32> {
    let live: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    for p in &live {
        signal(*p, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && live.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in live.iter().filter(|p| alive(**p)) {
        signal(*p, libc::SIGKILL);
    }
    live
}

/// Ends every process left by one agent incarnation of a company (after its session is gone).
pub fn end_incarnation(company_root: &Path, incarnation: &str) -> Vec<u32> {
    let root = company_root.display().to_string();
    let pids = with_env(&[("COMPANY_ROOT", &root), ("VERMAS_INCARNATION", incarnation)]);
    if pids.is_empty() {
        return pids;
    }
    end(&pids, Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_blocks_match_whole_variables_only() {
        let block = b"A=1\0VERMAS_INCARNATION=inc-abc\0COMPANY_ROOT=/c\0";
        assert!(env_holds(
            block,
            &[("VERMAS_INCARNATION", "inc-abc"), ("COMPANY_ROOT", "/c")]
        ));
        assert!(!env_holds(block, &[("VERMAS_INCARNATION", "inc-ab")]));
        assert!(!env_holds(block, &[("COMPANY_ROOT", "/c/d")]));
        assert!(!env_holds(block, &[("INCARNATION", "inc-abc")]));
    }

    #[test]
    fn a_child_that_left_our_process_group_is_found_and_ended() {
        let marker = format!("test-{}", std::process::id());
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "30"])
            .env("VERMAS_INCARNATION", &marker)
            .env("COMPANY_ROOT", "/nowhere")
            .spawn()
            .unwrap();
        let start = Instant::now();
        // Found once it runs `sleep`: while `setsid` execs it, its environment cannot be read.
        let sleeping = |p: &u32| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sleep")
        };
        let found = loop {
            let p = with_env(&[("VERMAS_INCARNATION", &marker)]);
            if p.iter().any(sleeping) || start.elapsed() > Duration::from_secs(5) {
                break p;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!found.is_empty());
        let ended = end_incarnation(Path::new("/nowhere"), &marker);
        assert!(!ended.is_empty());
        let _ = child.wait();
        assert!(with_env(&[("VERMAS_INCARNATION", &marker)]).is_empty());
    }
}
