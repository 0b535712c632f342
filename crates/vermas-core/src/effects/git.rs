//! git, through its command line (design §5). The CLI honours the user's ssh config,
//! credential helpers, LFS filters and merge strategy, which libgit2 does not; see
//! docs/ARCHITECTURE.md.
//!
//! Every call gets a clean environment (no inherited `GIT_DIR` and friends, no terminal
//! prompts). Daemon-side writes (QA merges, worktree management) pass `core.hooksPath=/dev/null`
//! so the repository's own hooks never run outside a worker.

use crate::error::{Classify, Kind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Errors from git.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed or not on PATH; install git 2.20 or newer")]
    Missing,
    #[error("git {args}: {message}")]
    Failed { args: String, message: String },
}

impl Classify for GitError {
    fn kind(&self) -> Kind {
        Kind::Failure
    }
}

pub type Result<T, E = GitError> = std::result::Result<T, E>;

/// Variables that would redirect git away from the directory we name.
const SCRUB: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
];

/// A git command run in `dir`.
pub fn command(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir);
    for k in SCRUB {
        c.env_remove(k);
    }
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    c
}

fn run_cmd(mut c: Command, args: &[&str]) -> Result<String> {
    c.args(args);
    crate::trace::running(&c);
    let out = c.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            GitError::Missing
        } else {
            GitError::Failed {
                args: args.join(" "),
                message: e.to_string(),
            }
        }
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("hint:"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(GitError::Failed {
            args: args.iter().take(3).copied().collect::<Vec<_>>().join(" "),
            message: if message.is_empty() {
                format!("exited with {}", out.status)
            } else {
                message
            },
        })
    }
}

/// Runs git in `dir`; stdout (trimmed) or the error with git's message.
pub fn run(dir: &Path, args: &[&str]) -> Result<String> {
    run_cmd(command(dir), args)
}

/// Runs git with hooks disabled (daemon-side writes).
pub fn run_no_hooks(dir: &Path, args: &[&str]) -> Result<String> {
    let mut c = command(dir);
    c.args(["-c", "core.hooksPath=/dev/null"]);
    run_cmd(c, args)
}

/// `git --version` as (major, minor) and text.
pub fn version() -> Result<((u32, u32), String)> {
    let text = run(Path::new("."), &["--version"])?;
    let v = text.trim_start_matches("git version ");
    let mut it = v.split('.');
    let major = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    let minor = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
    Ok(((major, minor), text))
}

/// `git clone --bare URL DEST` (no hooks, no prompts).
pub fn clone_bare(url: &str, dest: &Path) -> Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    let d = dest.display().to_string();
    run_no_hooks(parent, &["clone", "--bare", "--quiet", "--", url, &d]).map(|_| ())
}

/// The branch HEAD points at (a bare clone's HEAD is the remote's default branch).
pub fn head_branch(repo: &Path) -> Option<String> {
    run(repo, &["symbolic-ref", "--quiet", "--short", "HEAD"]).ok()
}

/// The commit a revision names, if it exists.
pub fn rev_parse(repo: &Path, rev: &str) -> Option<String> {
    run(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .ok()
    .filter(|s| !s.is_empty())
}

/// The commit `branch` of `repo` (a git directory) points at, read from its ref files (the
/// loose file, then `packed-refs`) with no process; `git rev-parse` answers when the files
/// cannot (a symbolic ref, the reftable format, a name that is not a plain branch name).
/// `None`: there is no such branch.
pub fn branch_commit(repo: &Path, branch: &str) -> Option<String> {
    match branch_commit_from_files(repo, branch) {
        Some(found) => found,
        None => rev_parse(repo, &format!("refs/heads/{branch}")),
    }
}

/// `Some(found)` when the ref files say whether `branch` is there; `None` when they cannot.
fn branch_commit_from_files(repo: &Path, branch: &str) -> Option<Option<String>> {
    let plain = branch
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        && !branch.contains("..")
        && branch
            .split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"));
    if !plain || !repo.join("refs").is_dir() || repo.join("reftable").exists() {
        return None;
    }
    let name = format!("refs/heads/{branch}");
    // Loose first, as git reads them: a loose ref is newer than its packed line.
    match std::fs::read_to_string(repo.join(&name)) {
        Ok(text) => return is_object_id(text.trim()).then(|| Some(text.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return None,
    }
    let packed = match std::fs::read_to_string(repo.join("packed-refs")) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(None),
        Err(_) => return None,
    };
    Some(packed.lines().find_map(|line| {
        let (id, r) = line.split_once(' ')?;
        (r == name && is_object_id(id)).then(|| id.to_string())
    }))
}

/// A full object id as git writes it in its files (SHA-1 or SHA-256, hexadecimal).
fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `branch` exists ([`branch_commit`]: from the ref files when they can say).
pub fn branch_exists(repo: &Path, branch: &str) -> bool {
    branch_commit(repo, branch).is_some()
}

/// Commits on `branch` not on `base`.
pub fn commits_ahead(repo: &Path, base: &str, branch: &str) -> Result<u32> {
    let n = run(repo, &["rev-list", "--count", &format!("{base}..{branch}")])?;
    Ok(n.trim().parse().unwrap_or(0))
}

/// Whether `a` is an ancestor of (or equal to) `b`.
pub fn is_ancestor(repo: &Path, a: &str, b: &str) -> bool {
    run(repo, &["merge-base", "--is-ancestor", a, b]).is_ok()
}

/// Uncommitted changes in a worktree (`git status --porcelain`), excluding ignored files.
pub fn dirty_paths(worktree: &Path) -> Result<Vec<String>> {
    let out = run(
        worktree,
        &["status", "--porcelain", "--untracked-files=all"],
    )?;
    Ok(out
        .lines()
        .filter(|l| l.len() > 3)
        .map(|l| l[3..].to_string())
        .collect())
}

/// A worktree from `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worktree {
    pub path: PathBuf,
    pub head: Option<String>,
    pub branch: Option<String>,
    pub bare: bool,
    pub prunable: bool,
}

pub fn worktrees(repo: &Path) -> Result<Vec<Worktree>> {
    let out = run(repo, &["worktree", "list", "--porcelain"])?;
    let mut list = Vec::new();
    let mut cur: Option<Worktree> = None;
    for line in out.lines().chain(std::iter::once("")) {
        if let Some(p) = line.strip_prefix("worktree ") {
            cur = Some(Worktree {
                path: PathBuf::from(p),
                head: None,
                branch: None,
                bare: false,
                prunable: false,
            });
        } else if let Some(w) = cur.as_mut() {
            if let Some(h) = line.strip_prefix("HEAD ") {
                w.head = Some(h.to_string());
            } else if let Some(b) = line.strip_prefix("branch ") {
                w.branch = Some(b.trim_start_matches("refs/heads/").to_string());
            } else if line == "bare" {
                w.bare = true;
            } else if line.starts_with("prunable") {
                w.prunable = true;
            } else if line.is_empty()
                && let Some(done) = cur.take()
            {
                list.push(done);
            }
        }
    }
    Ok(list)
}

/// A new worktree on a new branch from `start`.
pub fn worktree_add_new_branch(repo: &Path, path: &Path, branch: &str, start: &str) -> Result<()> {
    let p = path.display().to_string();
    run_no_hooks(
        repo,
        &["worktree", "add", "--quiet", "-b", branch, &p, start],
    )
    .map(|_| ())
}

/// A new worktree on `branch`, which is made from `start` when it does not exist yet. Returns
/// whether it was made. One git process in the usual case: `worktree add -b` first (git checks
/// the branch before it creates anything), and only when git answers that the branch already
/// exists, `worktree add` of that branch (what a `show-ref` first and then the right one of
/// the two would do, without the extra process).
pub fn worktree_add_branch(repo: &Path, path: &Path, branch: &str, start: &str) -> Result<bool> {
    match worktree_add_new_branch(repo, path, branch, start) {
        Ok(()) => Ok(true),
        Err(GitError::Failed { message, .. })
            if message.contains(&format!("a branch named '{branch}' already exists")) =>
        {
            worktree_add_existing(repo, path, branch).map(|_| false)
        }
        Err(e) => Err(e),
    }
}

/// A new worktree on an existing branch.
pub fn worktree_add_existing(repo: &Path, path: &Path, branch: &str) -> Result<()> {
    let p = path.display().to_string();
    run_no_hooks(repo, &["worktree", "add", "--quiet", &p, branch]).map(|_| ())
}

/// A new worktree with a detached HEAD at `rev`.
pub fn worktree_add_detached(repo: &Path, path: &Path, rev: &str) -> Result<()> {
    let p = path.display().to_string();
    run_no_hooks(repo, &["worktree", "add", "--quiet", "--detach", &p, rev]).map(|_| ())
}

pub fn worktree_remove(repo: &Path, path: &Path, force: bool) -> Result<()> {
    let p = path.display().to_string();
    let mut args = vec!["worktree", "remove"];
    if force {
        args.push("--force");
    }
    args.push(&p);
    run_no_hooks(repo, &args).map(|_| ())
}

pub fn worktree_move(repo: &Path, from: &Path, to: &Path) -> Result<()> {
    let (f, t) = (from.display().to_string(), to.display().to_string());
    run_no_hooks(repo, &["worktree", "move", &f, &t]).map(|_| ())
}

pub fn worktree_prune(repo: &Path) -> Result<()> {
    run(repo, &["worktree", "prune"]).map(|_| ())
}

/// Deletes a branch; with `force` even when unmerged (callers check first).
pub fn delete_branch(repo: &Path, branch: &str, force: bool) -> Result<()> {
    run_no_hooks(
        repo,
        &["branch", if force { "-D" } else { "-d" }, "--", branch],
    )
    .map(|_| ())
}

/// Adds a pattern to the repository's `info/exclude` (shared by all its worktrees).
pub fn add_exclude(git_dir: &Path, pattern: &str) -> std::io::Result<()> {
    let info = git_dir.join("info");
    std::fs::create_dir_all(&info)?;
    let path = info.join("exclude");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current.lines().any(|l| l.trim() == pattern) {
        return Ok(());
    }
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(pattern);
    text.push('\n');
    std::fs::write(path, text)
}

/// What merging a branch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// A merge commit (or fast-forward) at this commit.
    Merged(String),
    /// Nothing to merge: the branch is already in HEAD.
    AlreadyMerged,
    /// Conflicts in these paths (the merge was aborted).
    Conflicts(Vec<String>),
}

/// Who a commit is by: git's author and committer, set on the command so a machine without a
/// configured identity (a fresh box, a service started at boot) can still commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

impl Identity {
    /// QA's own: `VerMAS QA <qa@<factory>.vermas>`.
    pub fn qa(factory: &str) -> Identity {
        Identity {
            name: "VerMAS QA".into(),
            email: format!("qa@{factory}.vermas"),
        }
    }

    fn apply(&self, c: &mut Command) {
        c.env("GIT_AUTHOR_NAME", &self.name)
            .env("GIT_AUTHOR_EMAIL", &self.email)
            .env("GIT_COMMITTER_NAME", &self.name)
            .env("GIT_COMMITTER_EMAIL", &self.email);
    }
}

/// Merges `branch` into the worktree's HEAD with a merge commit by `who`, hooks disabled. On
/// conflict, lists the conflicting paths and aborts so the worktree is clean again.
pub fn merge(
    worktree: &Path,
    head: &str,
    branch: &str,
    message: &str,
    who: &Identity,
) -> Result<MergeOutcome> {
    let mut c = command(worktree);
    // No housekeeping child after the merge (`git maintenance run --auto`): it is on the way
    // to every close, and the workers' commits, in the same object store, run it anyway.
    c.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "maintenance.auto=false",
        "-c",
        "gc.auto=0",
    ]);
    who.apply(&mut c);
    match run_cmd(
        c,
        &["merge", "--no-ff", "--no-edit", "-m", message, "--", branch],
    ) {
        // A branch already in `head` merges as "Already up to date": no commit.
        Ok(_) => match detached_head(worktree).or_else(|| rev_parse(worktree, "HEAD")) {
            Some(after) if after != head => Ok(MergeOutcome::Merged(after)),
            _ => Ok(MergeOutcome::AlreadyMerged),
        },
        Err(e) => {
            let conflicts =
                run(worktree, &["diff", "--name-only", "--diff-filter=U"]).unwrap_or_default();
            let paths: Vec<String> = conflicts.lines().map(str::to_string).collect();
            let _ = run_no_hooks(worktree, &["merge", "--abort"]);
            if paths.is_empty() {
                Err(e)
            } else {
                Ok(MergeOutcome::Conflicts(paths))
            }
        }
    }
}

/// The private git directory of a linked worktree, from the `gitdir:` line of its `.git`
/// file (or its `.git` directory), so looking at its state costs no process.
fn worktree_git_dir(worktree: &Path) -> Option<PathBuf> {
    let dotgit = worktree.join(".git");
    if std::fs::symlink_metadata(&dotgit).ok()?.is_dir() {
        return Some(dotgit);
    }
    let text = std::fs::read_to_string(&dotgit).ok()?;
    let p = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
    Some(if p.is_absolute() { p } else { worktree.join(p) })
}

/// The commit a detached worktree is at, read from its `HEAD` file (no process); `None` when
/// it is on a branch or the file says something else.
pub fn detached_head(worktree: &Path) -> Option<String> {
    let text = std::fs::read_to_string(worktree_git_dir(worktree)?.join("HEAD")).ok()?;
    let id = text.trim();
    is_object_id(id).then(|| id.into())
}

/// Whether `path` is a linked worktree of `repo` that git knows (its `.git` file names a
/// directory under `repo/worktrees` that names it back), read from the files; `false` when
/// unsure, and the caller asks git.
pub fn is_linked_worktree(repo: &Path, path: &Path) -> bool {
    let canon = |p: &Path| p.canonicalize().ok();
    let Some(gd) = worktree_git_dir(path) else {
        return false;
    };
    let back = std::fs::read_to_string(gd.join("gitdir")).ok();
    gd.parent().and_then(canon) == canon(&repo.join("worktrees"))
        && back.is_some_and(|b| canon(Path::new(b.trim())) == canon(&path.join(".git")))
}

/// Whether a worktree of `repo` may have `branch` checked out, from the `HEAD` files of
/// `repo/worktrees/*`: `false` only when every one could be read and none names it (then
/// `git worktree list` has nothing to say about it either).
pub fn may_have_checked_out(repo: &Path, branch: &str) -> bool {
    let want = format!("ref: refs/heads/{branch}");
    // The main worktree (none in a factory's bare clone, whose HEAD still names a branch).
    if std::fs::read_to_string(repo.join("HEAD")).is_ok_and(|h| h.trim() == want) {
        return true;
    }
    let Ok(dir) = std::fs::read_dir(repo.join("worktrees")) else {
        // No linked worktree at all, or a directory we cannot read.
        return repo.join("worktrees").exists();
    };
    dir.into_iter().any(|e| {
        let Ok(e) = e else { return true };
        match std::fs::read_to_string(e.path().join("HEAD")) {
            Ok(head) => head.trim() == want,
            Err(_) => true,
        }
    })
}

/// Puts a worktree back to `rev` exactly: abort any merge, reset, remove untracked files
/// (ignored build outputs are kept so the next gate run is incremental). Steps the worktree's
/// files show are not needed are skipped (QA's worktree is detached and rarely mid-merge).
pub fn reset_to(worktree: &Path, rev: &str) -> Result<()> {
    // Unsure (files unreadable) counts as needed.
    let merging = worktree_git_dir(worktree)
        .is_none_or(|gd| std::fs::symlink_metadata(gd.join("MERGE_HEAD")).is_ok());
    if merging {
        let _ = run_no_hooks(worktree, &["merge", "--abort"]);
    }
    if detached_head(worktree).is_none() {
        run_no_hooks(
            worktree,
            &["checkout", "--quiet", "--detach", "--force", rev],
        )?;
    }
    run_no_hooks(worktree, &["reset", "--quiet", "--hard", rev])?;
    run_no_hooks(worktree, &["clean", "-fdq"]).map(|_| ())
}

/// Moves `refname` to `new` only if it is still at `old` (compare-and-swap).
pub fn update_ref(repo: &Path, refname: &str, new: &str, old: &str) -> Result<()> {
    run(
        repo,
        &["update-ref", "-m", "vermas qa merge", refname, new, old],
    )
    .map(|_| ())
}

/// The paths a branch changes since it left `base` (`git diff --name-only base...branch`).
pub fn changed_paths(repo: &Path, base: &str, branch: &str) -> Result<Vec<String>> {
    let out = run(
        repo,
        &[
            "diff",
            "--name-only",
            "--no-renames",
            &format!("{base}...{branch}"),
        ],
    )?;
    Ok(out.lines().map(str::to_string).collect())
}

/// Which of `paths` are files of the tree at `rev`.
pub fn files_in_tree(repo: &Path, rev: &str, paths: &[String]) -> Vec<String> {
    if paths.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["ls-tree", "-r", "--name-only", rev, "--"];
    args.extend(paths.iter().map(String::as_str));
    run(repo, &args)
        .map(|o| o.lines().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The URL of a remote, if configured.
pub fn remote_url(repo: &Path, remote: &str) -> Option<String> {
    run(repo, &["remote", "get-url", remote]).ok()
}

/// Pushes a branch to a remote (no hooks, no prompts).
pub fn push(repo: &Path, remote: &str, branch: &str) -> Result<()> {
    run_no_hooks(
        repo,
        &[
            "push",
            "--quiet",
            remote,
            &format!("refs/heads/{branch}:refs/heads/{branch}"),
        ],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn sh(dir: &Path, args: &[&str]) {
        let mut c = command(dir);
        c.env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@e")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@e");
        run_cmd(c, args).unwrap();
    }

    fn origin() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        sh(d.path(), &["init", "-q", "-b", "main"]);
        fs::write(d.path().join("a.txt"), "one\n").unwrap();
        sh(d.path(), &["add", "."]);
        sh(d.path(), &["commit", "-q", "-m", "init"]);
        d
    }

    /// A factory's bare clone of [`origin`]: (origin, factory dir, clone).
    fn factory_clone() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
        let o = origin();
        let f = tempfile::tempdir().unwrap();
        let repo = f.path().join(".git");
        clone_bare(&o.path().display().to_string(), &repo).unwrap();
        (o, f, repo)
    }

    #[test]
    fn bare_clone_worktrees_and_merge() {
        let (_o, f, repo) = factory_clone();
        assert_eq!(head_branch(&repo).as_deref(), Some("main"));
        add_exclude(&repo, "/.vermas/").unwrap();
        add_exclude(&repo, "/.vermas/").unwrap();
        let ex = fs::read_to_string(repo.join("info/exclude")).unwrap();
        assert_eq!(ex.matches("/.vermas/").count(), 1);
        let w = f.path().join("workers/slot0");
        assert!(worktree_add_branch(&repo, &w, "vermas/wo-a", "main").unwrap());
        assert!(branch_exists(&repo, "vermas/wo-a"));
        // An existing branch is checked out as it is, not made again.
        run(&repo, &["branch", "kept", "main"]).unwrap();
        let k = f.path().join("workers/kept");
        assert!(!worktree_add_branch(&repo, &k, "kept", "main").unwrap());
        assert_eq!(run(&k, &["branch", "--show-current"]).unwrap(), "kept");
        worktree_remove(&repo, &k, false).unwrap();
        // A branch checked out elsewhere is refused, as git refuses it.
        assert!(worktree_add_branch(&repo, &k, "vermas/wo-a", "main").is_err());
        assert!(!k.exists());
        fs::create_dir_all(w.join(".vermas")).unwrap();
        fs::write(w.join(".vermas/PROMPT.md"), "x").unwrap();
        assert!(dirty_paths(&w).unwrap().is_empty(), ".vermas is excluded");
        fs::write(w.join("a.txt"), "one\ntwo\n").unwrap();
        assert_eq!(dirty_paths(&w).unwrap(), vec!["a.txt".to_string()]);
        sh(&w, &["commit", "-qam", "two"]);
        assert_eq!(commits_ahead(&repo, "main", "vermas/wo-a").unwrap(), 1);
        // QA worktree, detached at main.
        let qa = f.path().join("qa");
        worktree_add_detached(&repo, &qa, "main").unwrap();
        let base = rev_parse(&repo, "main").unwrap();
        let out = merge(&qa, &base, "vermas/wo-a", "merge wo-a", &Identity::qa("t")).unwrap();
        let MergeOutcome::Merged(m) = out else {
            panic!("{out:?}")
        };
        assert_eq!(
            rev_parse(&repo, "main").unwrap(),
            base,
            "main has not moved yet"
        );
        update_ref(&repo, "refs/heads/main", &m, &base).unwrap();
        assert!(
            update_ref(&repo, "refs/heads/main", &base, &base).is_err(),
            "CAS refuses a stale old value"
        );
        assert_eq!(
            merge(&qa, &m, "vermas/wo-a", "again", &Identity::qa("t")).unwrap(),
            MergeOutcome::AlreadyMerged
        );
        let wts = worktrees(&repo).unwrap();
        assert!(
            wts.iter()
                .any(|t| t.branch.as_deref() == Some("vermas/wo-a"))
        );
        // Parking a worktree keeps its branch and work.
        let parked = f.path().join("workers/parked/wo-a");
        fs::create_dir_all(parked.parent().unwrap()).unwrap();
        worktree_move(&repo, &w, &parked).unwrap();
        assert!(parked.join("a.txt").is_file());
        worktree_remove(&repo, &parked, false).unwrap();
        delete_branch(&repo, "vermas/wo-a", false).unwrap();
    }

    /// A factory clone with branches `x` and `y` that both change `a.txt` (each in its own
    /// worktree), and a QA worktree detached at `main`: (origin, factory dir, clone, QA).
    fn two_conflicting_branches() -> (tempfile::TempDir, tempfile::TempDir, PathBuf, PathBuf) {
        let (o, f, repo) = factory_clone();
        for (b, text) in [("x", "ex\n"), ("y", "why\n")] {
            let w = f.path().join(b);
            worktree_add_new_branch(&repo, &w, b, "main").unwrap();
            fs::write(w.join("a.txt"), text).unwrap();
            sh(&w, &["commit", "-qam", b]);
        }
        let qa = f.path().join("qa");
        worktree_add_detached(&repo, &qa, "main").unwrap();
        (o, f, repo, qa)
    }

    #[test]
    fn a_branch_commit_is_read_from_the_ref_files_as_git_reads_it() {
        let (_o, _f, repo, _qa) = two_conflicting_branches();
        let git = |b: &str| rev_parse(&repo, &format!("refs/heads/{b}"));
        let from_files = |b: &str| branch_commit_from_files(&repo, b);
        for b in ["main", "x", "y"] {
            assert!(git(b).is_some());
            assert_eq!(from_files(b), Some(git(b)), "loose {b}");
        }
        assert_eq!(from_files("nope"), Some(None), "no such branch");
        assert_eq!(branch_commit(&repo, "nope"), None);
        // Packed (as `git gc` leaves them), then one moved again (loose over packed).
        run(&repo, &["pack-refs", "--all"]).unwrap();
        assert!(!repo.join("refs/heads/x").exists());
        assert_eq!(from_files("x"), Some(git("x")), "packed");
        run(&repo, &["update-ref", "refs/heads/x", &git("y").unwrap()]).unwrap();
        assert_eq!(from_files("x"), Some(git("y")), "loose over packed");
        // What the files cannot say is asked of git: odd names, a symbolic ref.
        assert_eq!(from_files("../HEAD"), None);
        assert_eq!(from_files("x/../y"), None);
        run(
            &repo,
            &["symbolic-ref", "refs/heads/alias", "refs/heads/main"],
        )
        .unwrap();
        assert_eq!(from_files("alias"), None);
        assert_eq!(branch_commit(&repo, "alias"), git("main"));
        // Not a git directory (a worktree): git answers.
        assert_eq!(branch_commit_from_files(&repo.join("refs"), "main"), None);
    }

    #[test]
    fn conflicts_name_the_paths_and_leave_the_tree_clean() {
        let (_o, _f, _repo, qa) = two_conflicting_branches();
        let main = rev_parse(&qa, "HEAD").unwrap();
        let MergeOutcome::Merged(m) = merge(&qa, &main, "x", "x", &Identity::qa("t")).unwrap()
        else {
            panic!()
        };
        let out = merge(&qa, &m, "y", "y", &Identity::qa("t")).unwrap();
        assert_eq!(out, MergeOutcome::Conflicts(vec!["a.txt".to_string()]));
        assert!(dirty_paths(&qa).unwrap().is_empty());
        assert_eq!(rev_parse(&qa, "HEAD").unwrap(), m);
        assert_eq!(detached_head(&qa), Some(m.clone()));
        // A branch already in HEAD merges as nothing new.
        let again = merge(&qa, &m, "x", "x", &Identity::qa("t")).unwrap();
        assert_eq!(again, MergeOutcome::AlreadyMerged);
        reset_to(&qa, "main").unwrap();
    }

    #[test]
    fn reset_to_aborts_a_half_done_merge_and_detaches_a_worktree_left_on_a_branch() {
        let (_o, f, repo, qa) = two_conflicting_branches();
        assert!(is_linked_worktree(&repo, &qa));
        assert!(!is_linked_worktree(&repo, f.path()));
        // A merge stopped at a conflict (MERGE_HEAD), with an untracked file beside it.
        sh(&qa, &["merge", "-q", "--no-edit", "x"]);
        let stopped = command(&qa)
            .args(["merge", "--no-edit", "y"])
            .output()
            .unwrap();
        assert!(!stopped.status.success());
        fs::write(qa.join("junk.txt"), "left by a gate\n").unwrap();
        reset_to(&qa, "main").unwrap();
        assert!(dirty_paths(&qa).unwrap().is_empty());
        assert_eq!(rev_parse(&qa, "HEAD"), rev_parse(&repo, "main"));
        // Someone checked a branch out in it: it is detached again, the branch untouched.
        sh(&qa, &["checkout", "-q", "-b", "z", "x"]);
        let z = rev_parse(&repo, "z").unwrap();
        reset_to(&qa, "main").unwrap();
        assert_eq!(rev_parse(&qa, "HEAD"), rev_parse(&repo, "main"));
        assert_eq!(rev_parse(&repo, "z").unwrap(), z);
        assert!(
            fs::read_to_string(worktree_git_dir(&qa).unwrap().join("HEAD"))
                .unwrap()
                .trim()
                .len()
                >= 40
        );
    }

    #[test]
    fn a_branch_checked_out_in_a_worktree_is_seen_from_the_files() {
        let (_o, f, repo) = factory_clone();
        assert!(!may_have_checked_out(&repo, "x"));
        let w = f.path().join("x");
        worktree_add_new_branch(&repo, &w, "x", "main").unwrap();
        assert!(may_have_checked_out(&repo, "x"));
        assert!(!may_have_checked_out(&repo, "y"));
        worktree_remove(&repo, &w, true).unwrap();
        assert!(!may_have_checked_out(&repo, "x"));
    }
}
