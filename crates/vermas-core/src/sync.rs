//! `wo sync`: a factory's work orders shared through git (the guide's `[sync]` section).
//!
//! The `[sync] branch` (default `work-sync`) of the factory's remote `origin` holds one file per
//! store, `stores/<store-id>.jsonl`: the `work_order.*` events that store made, as its own log
//! has them (its `seq`), in its log order. Only the store named by a file ever appends to it,
//! so merging two versions of the branch never conflicts: for each file the longer version
//! wins, and the shorter must be its prefix. The store id is `.work/store.id`, made by the
//! first sync.
//!
//! A sync, under `.work/.sync.lock` (one sync per store at a time):
//! 1. fetches `origin`'s branch (no store lock: writers never wait on the network);
//! 2. under the writers' lock: merges it with the last local state of the branch, appends this
//!    store's new `work_order.*` events to its own file, imports every other event it lacks
//!    (re-sequenced, same `event_id`, see [`crate::store::Writer::import`]), and reconciles the
//!    work orders that changed on both sides (below);
//! 3. commits the merged files (to `refs/vermas/sync/<branch>/local` first, so nothing is lost
//!    when the push fails) and pushes; a push that loses a race starts again at 1.
//!
//! **Conflicts.** Two stores that changed the same work order between two syncs see the
//! changes in different orders in their logs. The sync rule orders every event about a work
//! order by `(timestamp, event_id)`, merging the stores' files so that each store's own order
//! is kept, and replays them: the later change wins, field by field as the projection applies
//! them (two status changes: the later one; a title set on both: the later one; labels added on
//! one and removed on the other: in that order). Where the log's order gives another record,
//! the sync appends one `work_order.reconciled` event with the record the rule gives, so every
//! store ends with the same work orders once each has synced after the other's last change.
//! Clocks should agree to within the time between two edits of one work order (NTP).

use crate::company::{Company, Factory};
use crate::error::{Classify, Error, Kind, Result};
use crate::event::{Event, EventRef, types};
use crate::fsutil;
use crate::mail::Messages;
use crate::slots::Slots;
use crate::store::{Checkpoint, LineInfo, Projection, Store, StoreError};
use crate::workorder::{IdIndex, WorkOrder, WorkOrders};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The file in `.work/` that names this store on the sync branch.
pub const STORE_ID_FILE: &str = "store.id";
/// The lock one sync of a store holds (the writers' lock is taken only for the local part).
const SYNC_LOCK: &str = ".sync.lock";
/// The remote the sync branch lives on: the one the factory was cloned from.
const REMOTE: &str = "origin";
/// Where the files live on the branch.
const DIR: &str = "stores";
/// How often operations syncs a factory with `auto_sync = true`.
pub const AUTO_SYNC_EVERY: Duration = Duration::from_secs(5 * 60);
/// Pushes lost to another machine's push before giving up.
const ATTEMPTS: u32 = 4;

/// Errors of `wo sync`.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "{store} is not a factory's store: only factories are synced (through their git remote); run `wo sync` in a factory's directory, or `wo sync --all-factories`"
    )]
    NotAFactory { store: String },
    #[error(
        "factory {factory}: its clone {} has no remote `origin` to sync through; add one with `git -C {} remote add origin URL`",
        .git.display(), .git.display()
    )]
    NoRemote { factory: String, git: PathBuf },
    #[error(
        "{path} on {branch} differs between this machine and origin: two stores use the id {id} (a copy restored from a backup while the original still syncs?); give this store a new id with `rm {}` and run `wo sync` again",
        .id_file.display()
    )]
    Diverged {
        path: String,
        branch: String,
        id: String,
        id_file: PathBuf,
    },
    #[error(
        "{} does not hold a store id (st- and 16 lowercase letters or digits); remove it and run `wo sync` again",
        .0.display()
    )]
    BadStoreId(PathBuf),
    #[error("origin's {branch} moved during each of {attempts} attempts; run `wo sync` again")]
    Raced { branch: String, attempts: u32 },
}

impl Classify for SyncError {
    fn kind(&self) -> Kind {
        match self {
            SyncError::NotAFactory { .. } => Kind::Usage,
            SyncError::NoRemote { .. } => Kind::NotFound,
            SyncError::Diverged { .. } | SyncError::Raced { .. } => Kind::Conflict,
            SyncError::BadStoreId(_) => Kind::Failure,
        }
    }
}

/// What one sync of a factory did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncReport {
    pub factory: String,
    /// This store's id (its file on the branch is `stores/<store>.jsonl`).
    pub store: String,
    pub branch: String,
    /// `origin`'s URL.
    pub remote: String,
    /// Events of this store added to its file.
    pub exported: usize,
    /// Events of other stores (or of this one, lost since a backup) appended to the log.
    pub imported: usize,
    /// Work orders whose changes on two machines were merged by the rule (a
    /// `work_order.reconciled` each).
    pub reconciled: Vec<String>,
    /// Stores with a file on the branch, this one included.
    pub stores: usize,
    /// The branch's commit after the sync.
    pub commit: Option<String>,
    /// Whether the branch on origin was moved.
    pub pushed: bool,
    /// Lines of the branch that could not be read (skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl SyncReport {
    /// One line for people and logs.
    pub fn summary(&self) -> String {
        let reconciled = if self.reconciled.is_empty() {
            String::new()
        } else {
            format!(", reconciled {}", self.reconciled.join(" "))
        };
        format!(
            "exported {}, imported {} event(s){reconciled}; {} store(s) on {} at {}",
            self.exported,
            self.imported,
            self.stores,
            self.branch,
            self.commit
                .as_deref()
                .map(|c| &c[..c.len().min(12)])
                .unwrap_or("-"),
        )
    }
}

/// The store's id, made (at random) the first time it is needed.
pub fn store_id(store: &Store) -> Result<String> {
    let path = store.dir().join(STORE_ID_FILE);
    let valid = |s: &str| {
        s.strip_prefix("st-").is_some_and(|r| {
            r.len() == 16
                && r.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
    };
    match fsutil::read_no_follow(&path) {
        Ok(bytes) => {
            let s = String::from_utf8_lossy(&bytes).trim().to_string();
            return if valid(&s) {
                Ok(s)
            } else {
                Err(SyncError::BadStoreId(path).into())
            };
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(&path, e).into()),
    }
    let id = crate::ids::new_store_id();
    let made = fsutil::create_new(&path).and_then(|mut f| {
        use std::io::Write;
        f.write_all(format!("{id}\n").as_bytes())?;
        f.sync_all()
    });
    match made {
        Ok(()) => Ok(id),
        // Another sync made it first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => store_id(store),
        Err(e) => Err(StoreError::io(&path, e).into()),
    }
}

/// The local refs of the sync branch: what this store last merged (and maybe has not pushed
/// yet), and origin's branch as last fetched.
fn local_ref(branch: &str) -> String {
    format!("refs/vermas/sync/{branch}/local")
}
fn remote_ref(branch: &str) -> String {
    format!("refs/vermas/sync/{branch}/remote")
}

/// Whether this factory has been synced here before (operations only auto-syncs those, so it
/// never creates a branch on a remote nobody asked it to write to).
pub fn has_synced(f: &Factory) -> bool {
    crate::effects::git::rev_parse(&f.git_dir(), &local_ref(&f.settings.sync.branch)).is_some()
}

/// Syncs one factory of the company (see the module documentation).
pub fn sync_factory(company: &Company, factory: &str) -> Result<SyncReport> {
    let f = company.factory(factory)?;
    let actor = crate::context::Env::from_process()
        .agent_id
        .unwrap_or_else(|| "human".to_string());
    let repo = f.git_dir();
    let remote =
        crate::effects::git::remote_url(&repo, REMOTE).ok_or_else(|| SyncError::NoRemote {
            factory: f.name.clone(),
            git: repo.clone(),
        })?;
    let store = f.store()?;
    let lock_path = store.dir().join(SYNC_LOCK);
    let lock = fsutil::open_rw(&lock_path).map_err(|e| StoreError::io(&lock_path, e))?;
    lock.lock().map_err(|e| StoreError::io(&lock_path, e))?;
    let branch = f.settings.sync.branch.clone();
    let mut report = SyncReport {
        factory: f.name.clone(),
        store: store_id(&store)?,
        branch: branch.clone(),
        remote,
        ..Default::default()
    };
    let git = Git {
        repo: &repo,
        factory: &f.name,
    };
    for _ in 0..ATTEMPTS {
        let theirs = git.fetch(&branch)?;
        let ours = crate::effects::git::rev_parse(&repo, &local_ref(&branch));
        let merged = merge_branch(&git, ours.as_deref(), theirs.as_deref(), &branch, &store)?;
        let round = merge_store(&store, &report.store, merged, &actor)?;
        report.exported += round.exported;
        report.imported += round.imported;
        report.reconciled.extend(round.reconciled);
        report.warnings.extend(round.warnings);
        report.stores = round.files.len();
        let tip = git.commit(
            &round.files,
            ours.as_deref(),
            theirs.as_deref(),
            &report.store,
        )?;
        git.set_ref(&local_ref(&branch), &tip)?;
        report.commit = Some(tip.clone());
        if theirs.as_deref() == Some(tip.as_str()) {
            return Ok(report);
        }
        let pushed = git.push(&tip, &branch).map_err(|e| {
            e.context(format!(
                "factory {}: this store's side of {branch} is merged and kept in {} until the next `wo sync` pushes it",
                f.name,
                local_ref(&branch)
            ))
        })?;
        if pushed {
            git.set_ref(&remote_ref(&branch), &tip)?;
            report.pushed = true;
            return Ok(report);
        }
    }
    Err(SyncError::Raced {
        branch,
        attempts: ATTEMPTS,
    }
    .into())
}

/// git for the sync: plumbing on the factory's bare clone, hooks off, a fixed identity.
struct Git<'a> {
    repo: &'a Path,
    factory: &'a str,
}

struct Ran {
    ok: bool,
    stdout: Vec<u8>,
    stderr: String,
}

impl Git<'_> {
    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Ran> {
        use std::io::Write;
        let mut c = crate::effects::git::command(self.repo);
        c.args(["-c", "core.hooksPath=/dev/null"])
            .args(args)
            .env("GIT_AUTHOR_NAME", "VerMAS sync")
            .env("GIT_AUTHOR_EMAIL", format!("sync@{}.vermas", self.factory))
            .env("GIT_COMMITTER_NAME", "VerMAS sync")
            .env(
                "GIT_COMMITTER_EMAIL",
                format!("sync@{}.vermas", self.factory),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let failed = |message: String| {
            Error::from(crate::effects::git::GitError::Failed {
                args: args.iter().take(3).copied().collect::<Vec<_>>().join(" "),
                message,
            })
        };
        crate::trace::running(&c);
        let mut child = c.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::from(crate::effects::git::GitError::Missing)
            } else {
                failed(e.to_string())
            }
        })?;
        if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(bytes).map_err(|e| failed(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        Ok(Ran {
            ok: out.status.success(),
            stdout: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with("hint:"))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    /// Runs git and returns stdout (trimmed), or the error with git's message.
    fn text(&self, args: &[&str], input: Option<&[u8]>) -> Result<String> {
        let r = self.run(args, input)?;
        if !r.ok {
            return Err(crate::effects::git::GitError::Failed {
                args: args.iter().take(3).copied().collect::<Vec<_>>().join(" "),
                message: r.stderr,
            }
            .into());
        }
        Ok(String::from_utf8_lossy(&r.stdout).trim().to_string())
    }

    /// Fetches origin's branch; `None` when origin has no such branch yet.
    fn fetch(&self, branch: &str) -> Result<Option<String>> {
        let spec = format!("+refs/heads/{branch}:{}", remote_ref(branch));
        let r = self.run(&["fetch", "--quiet", "--no-tags", REMOTE, &spec], None)?;
        if r.ok {
            return Ok(crate::effects::git::rev_parse(
                self.repo,
                &remote_ref(branch),
            ));
        }
        if r.stderr.contains("couldn't find remote ref") {
            return Ok(None);
        }
        Err(crate::effects::git::GitError::Failed {
            args: format!("fetch {REMOTE} {branch}"),
            message: r.stderr,
        }
        .into())
    }

    /// The store files of a commit: store id → blob.
    fn files(&self, commit: Option<&str>) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let Some(commit) = commit else {
            return Ok(out);
        };
        let listing = self.text(&["ls-tree", "-r", "--full-tree", commit], None)?;
        for line in listing.lines() {
            let Some((meta, path)) = line.split_once('\t') else {
                continue;
            };
            let Some(id) = path
                .strip_prefix(&format!("{DIR}/"))
                .and_then(|n| n.strip_suffix(".jsonl"))
            else {
                continue;
            };
            if let Some(blob) = meta.split(' ').nth(2) {
                out.insert(id.to_string(), blob.to_string());
            }
        }
        Ok(out)
    }

    fn blob(&self, sha: &str) -> Result<Vec<u8>> {
        let r = self.run(&["cat-file", "blob", sha], None)?;
        if !r.ok {
            return Err(crate::effects::git::GitError::Failed {
                args: format!("cat-file blob {sha}"),
                message: r.stderr,
            }
            .into());
        }
        Ok(r.stdout)
    }

    /// A commit holding `files` whose parents are what it merges; the one commit already
    /// holding exactly that when there is one.
    fn commit(
        &self,
        files: &BTreeMap<String, Vec<u8>>,
        ours: Option<&str>,
        theirs: Option<&str>,
        store: &str,
    ) -> Result<String> {
        let mut entries = String::new();
        for (id, bytes) in files {
            let blob = self.text(&["hash-object", "-w", "--stdin"], Some(bytes))?;
            entries.push_str(&format!("100644 blob {blob}\t{id}.jsonl\n"));
        }
        let sub = self.text(&["mktree"], Some(entries.as_bytes()))?;
        let tree = if files.is_empty() {
            self.text(&["mktree"], Some(b""))?
        } else {
            self.text(
                &["mktree"],
                Some(format!("040000 tree {sub}\t{DIR}\n").as_bytes()),
            )?
        };
        let mut parents: Vec<&str> = Vec::new();
        match (ours, theirs) {
            (Some(o), Some(t)) if o == t => parents.push(o),
            (Some(o), Some(t)) if crate::effects::git::is_ancestor(self.repo, t, o) => {
                parents.push(o)
            }
            (Some(o), Some(t)) if crate::effects::git::is_ancestor(self.repo, o, t) => {
                parents.push(t)
            }
            (o, t) => parents.extend(o.into_iter().chain(t)),
        }
        if let [only] = parents.as_slice()
            && self.text(&["rev-parse", &format!("{only}^{{tree}}")], None)? == tree
        {
            return Ok(only.to_string());
        }
        let message = format!("vermas sync: store {store}");
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message.as_str()];
        for p in &parents {
            args.push("-p");
            args.push(p);
        }
        self.text(&args, None)
    }

    fn set_ref(&self, name: &str, commit: &str) -> Result<()> {
        self.text(&["update-ref", "-m", "vermas sync", name, commit], None)
            .map(|_| ())
    }

    /// Pushes `commit` to origin's branch; false when origin moved meanwhile (fetch again).
    fn push(&self, commit: &str, branch: &str) -> Result<bool> {
        let spec = format!("{commit}:refs/heads/{branch}");
        let r = self.run(&["push", "--quiet", "--porcelain", REMOTE, &spec], None)?;
        if r.ok {
            return Ok(true);
        }
        let said = format!("{} {}", String::from_utf8_lossy(&r.stdout), r.stderr);
        if said.contains("[rejected]")
            || said.contains("non-fast-forward")
            || said.contains("fetch first")
            || said.contains("cannot lock ref")
        {
            return Ok(false);
        }
        Err(crate::effects::git::GitError::Failed {
            args: format!("push {REMOTE} {branch}"),
            message: said.trim().to_string(),
        }
        .into())
    }
}

/// The branch as this store last left it merged with origin's: for each store's file the
/// longer version, which must continue the shorter.
fn merge_branch(
    git: &Git<'_>,
    ours: Option<&str>,
    theirs: Option<&str>,
    branch: &str,
    store: &Store,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let a = git.files(ours)?;
    let b = git.files(theirs)?;
    let mut out = BTreeMap::new();
    for id in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        let bytes = match (a.get(id), b.get(id)) {
            (Some(x), Some(y)) if x != y => {
                let (x, y) = (git.blob(x)?, git.blob(y)?);
                if x.starts_with(&y) {
                    x
                } else if y.starts_with(&x) {
                    y
                } else {
                    return Err(SyncError::Diverged {
                        path: format!("{DIR}/{id}.jsonl"),
                        branch: branch.to_string(),
                        id: id.clone(),
                        id_file: store.dir().join(STORE_ID_FILE),
                    }
                    .into());
                }
            }
            (Some(x), _) | (None, Some(x)) => git.blob(x)?,
            (None, None) => continue,
        };
        out.insert(id.clone(), bytes);
    }
    Ok(out)
}

/// The ids an event is about: the work order it changes, and for a create the parent whose
/// count of children it changes.
#[derive(Deserialize)]
struct About {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parent: Option<String>,
}

fn about(ev: &Event) -> Vec<String> {
    let a: About = serde_json::from_str(ev.data.get()).unwrap_or(About {
        id: None,
        parent: None,
    });
    let mut out: Vec<String> = a.id.into_iter().collect();
    if ev.event_type == types::WORK_ORDER_CREATED
        && let Some(p) = a.parent
    {
        out.push(p);
    }
    out
}

/// Whether an event belongs on the sync branch: work order changes, not the sync's own
/// reconciliations (every store works those out for itself).
fn synced(event_type: &str) -> bool {
    WorkOrders::wants(event_type) && event_type != types::WORK_ORDER_RECONCILED
}

/// The order the sync rule replays events in: `(timestamp, event_id)`, always taking from the
/// front of a store's list, so a store's own order is kept even if its clock stepped back. An
/// event met twice (in two lists) is taken once.
fn rule_order(lists: Vec<Vec<Event>>) -> Vec<Event> {
    let mut heads: Vec<std::iter::Peekable<std::vec::IntoIter<Event>>> = lists
        .into_iter()
        .map(|l| l.into_iter().peekable())
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    loop {
        let pick = heads
            .iter_mut()
            .enumerate()
            .filter_map(|(i, h)| {
                h.peek()
                    .map(|e| ((e.timestamp.clone(), e.event_id.clone()), i))
            })
            .min()
            .map(|(_, i)| i);
        let Some(e) = pick.and_then(|i| heads[i].next()) else {
            break;
        };
        if seen.insert(e.event_id.clone()) {
            out.push(e);
        }
    }
    out
}

/// What one pass over the store did.
struct Round {
    files: BTreeMap<String, Vec<u8>>,
    exported: usize,
    imported: usize,
    reconciled: Vec<String>,
    warnings: Vec<String>,
}

/// The synced events of the log from `from` on: every id, and those this store made that are
/// not on the branch yet (in log order). Returns where the log ended.
fn scan_local(
    store: &Store,
    from: &Checkpoint,
    on_branch: &HashSet<String>,
    local_ids: &mut HashSet<String>,
    mine: &mut Vec<Event>,
) -> Result<std::result::Result<Checkpoint, String>> {
    let mut visit = |ev: &EventRef<'_>, _: &LineInfo<'_>| {
        if synced(&ev.event_type) {
            if !on_branch.contains(ev.event_id.as_ref()) {
                mine.push(ev.to_owned_event());
            }
            local_ids.insert(ev.event_id.to_string());
        }
        Ok(())
    };
    Ok(store
        .scan(from, None, &mut visit)?
        .map(|o| o.end)
        .map_err(|m| m.0))
}

/// The local part of a sync: export this store's new events to its file, import what the
/// other files hold that the log lacks, and reconcile. The log is read first without the
/// writers' lock, then only its new end under it; imports and reconciliations are written in
/// one batch, so a sync killed half way leaves either both or neither.
fn merge_store(
    store: &Store,
    me: &str,
    mut files: BTreeMap<String, Vec<u8>>,
    actor: &str,
) -> Result<Round> {
    let mut warnings = Vec::new();
    // Every file's events, in file order.
    let mut parsed: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for (id, bytes) in &files {
        let mut evs = Vec::new();
        for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Event>(line) {
                Ok(e) if synced(&e.event_type) => evs.push(e),
                Ok(e) => warnings.push(format!(
                    "{DIR}/{id}.jsonl:{}: {} is not synced; skipped",
                    n + 1,
                    e.event_type
                )),
                Err(e) => warnings.push(format!(
                    "{DIR}/{id}.jsonl:{}: not an event ({e}); skipped",
                    n + 1
                )),
            }
        }
        parsed.insert(id.clone(), evs);
    }
    let on_branch: HashSet<String> = parsed
        .values()
        .flatten()
        .map(|e| e.event_id.clone())
        .collect();
    let mut local_ids: HashSet<String> = HashSet::new();
    let mut mine: Vec<Event> = Vec::new();
    let end = scan_local(
        store,
        &Checkpoint::default(),
        &on_branch,
        &mut local_ids,
        &mut mine,
    )?;
    let mut w = store.lock()?;
    // What was appended meanwhile; a log changed under the first read is read again whole.
    let caught_up = match &end {
        Ok(end) => scan_local(store, end, &on_branch, &mut local_ids, &mut mine)?.is_ok(),
        Err(_) => false,
    };
    if !caught_up {
        local_ids.clear();
        mine.clear();
        scan_local(
            store,
            &Checkpoint::default(),
            &on_branch,
            &mut local_ids,
            &mut mine,
        )?
        .map_err(|m| Error::failure(format!("reading the log: {m}")))?;
    }
    let exported = mine.len();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    if !mine.is_empty() {
        let file = files.entry(me.to_string()).or_default();
        for e in &mine {
            serde_json::to_writer(&mut *file, e).map_err(StoreError::from)?;
            file.push(b'\n');
            touched.extend(about(e));
        }
        parsed.entry(me.to_string()).or_default().extend(mine);
    }
    // Import: every event on the branch the log lacks, in the rule's order, a change never
    // before the create of its work order. The projection sees them here first, in memory.
    let lacking: Vec<Vec<Event>> = parsed
        .values()
        .map(|evs| {
            evs.iter()
                .filter(|e| !local_ids.contains(&e.event_id))
                .cloned()
                .collect()
        })
        .collect();
    let mut now = store.load::<WorkOrders>()?.state;
    let known: HashSet<String> = now.ids().map(str::to_string).collect();
    let incoming = creates_first(rule_order(lacking), known);
    let imported = incoming.len();
    for e in &incoming {
        touched.extend(about(e));
        let _ = now.apply(&e.as_ref());
    }
    // Reconcile every work order this round changed, by the rule.
    let mut by_wo: HashMap<&str, Vec<Vec<&Event>>> = HashMap::new();
    let n = parsed.len();
    for (k, evs) in parsed.values().enumerate() {
        for e in evs {
            for id in about(e) {
                if let Some(id) = touched.get(&id) {
                    by_wo
                        .entry(id.as_str())
                        .or_insert_with(|| vec![Vec::new(); n])[k]
                        .push(e);
                }
            }
        }
    }
    let mut batch = incoming;
    let mut reconciled = Vec::new();
    let timestamp = crate::clock::format_timestamp(store.clock().now());
    for id in &touched {
        let Some(lists) = by_wo.get(id.as_str()) else {
            continue;
        };
        let lists = lists
            .iter()
            .map(|l| l.iter().map(|e| (*e).clone()).collect())
            .collect();
        let mut rule = WorkOrders::default();
        for e in rule_order(lists) {
            let _ = rule.apply(&e.as_ref());
        }
        let (Some(want), Some(have)) = (rule.get(id), now.get(id)) else {
            continue;
        };
        let want = without_seq(&want);
        if want != without_seq(&have) {
            let data = serde_json::json!({ "id": id, "record": want });
            batch.push(Event {
                v: crate::event::ENVELOPE_VERSION,
                seq: 0,
                event_id: crate::ids::new_event_id(),
                event_type: types::WORK_ORDER_RECONCILED.to_string(),
                timestamp: timestamp.clone(),
                actor: actor.to_string(),
                correlation_id: None,
                caused_by: None,
                data: serde_json::value::to_raw_value(&data).map_err(StoreError::from)?,
            });
            reconciled.push(id.clone());
        }
    }
    if !batch.is_empty() {
        w.import(batch)?;
        // Readers that start from a checkpoint before the imported events would each look back
        // in the log for earlier copies of them (their ids are older than the log's end): move
        // every cache past them now, once.
        drop(IdIndex::open_or_warn(&mut w));
        save_caches(store);
    }
    w.report_warnings();
    drop(w);
    Ok(Round {
        files,
        exported,
        imported,
        reconciled,
        warnings,
    })
}

/// Imported changes whose work order is neither in the store nor created earlier in the batch
/// wait for its create (a clock behind another machine's can put a change first).
fn creates_first(events: Vec<Event>, mut known: HashSet<String>) -> Vec<Event> {
    let mut out = Vec::with_capacity(events.len());
    let mut waiting: HashMap<String, Vec<Event>> = HashMap::new();
    for e in events {
        let id = about(&e).into_iter().next();
        match id {
            Some(id) if e.event_type == types::WORK_ORDER_CREATED => {
                known.insert(id.clone());
                out.push(e);
                out.extend(waiting.remove(&id).unwrap_or_default());
            }
            Some(id) if !known.contains(&id) => waiting.entry(id).or_default().push(e),
            _ => out.push(e),
        }
    }
    // Changes whose create never came are kept (readers report them), in their order.
    let mut rest: Vec<Event> = waiting.into_values().flatten().collect();
    rest.sort_by(|a, b| (&a.timestamp, &a.event_id).cmp(&(&b.timestamp, &b.event_id)));
    out.extend(rest);
    out
}

fn without_seq(wo: &WorkOrder) -> serde_json::Value {
    let mut v = serde_json::to_value(wo).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("seq");
    }
    v
}

/// Brings the projections and the look-up index past the end of the log (best effort: a
/// cache that cannot be written is caught up by its next reader).
fn save_caches(store: &Store) {
    fn one<P: Projection>(store: &Store) {
        if let Ok(l) = store.load::<P>() {
            let _ = store.save(&l);
        }
    }
    one::<WorkOrders>(store);
    one::<Messages>(store);
    one::<Slots>(store);
    let _ = crate::workorder::Index::open(store);
}

/// Operations' automatic sync (`[sync] auto_sync = true`): every [`AUTO_SYNC_EVERY`] per
/// factory that has been synced by hand once (looked at once per interval, so the first
/// automatic sync comes up to one interval after the first `wo sync`), on a side thread so a
/// slow remote never delays a patrol.
#[derive(Debug)]
pub struct AutoSync {
    every: Duration,
    last: BTreeMap<String, Instant>,
    running: Option<std::thread::JoinHandle<Vec<AutoSynced>>>,
}

/// How one automatic sync went.
#[derive(Debug)]
pub struct AutoSynced {
    pub factory: String,
    pub result: std::result::Result<SyncReport, String>,
}

impl Default for AutoSync {
    fn default() -> Self {
        AutoSync::every(AUTO_SYNC_EVERY)
    }
}

impl AutoSync {
    pub fn every(every: Duration) -> AutoSync {
        AutoSync {
            every,
            last: BTreeMap::new(),
            running: None,
        }
    }

    /// Called on every patrol: returns the syncs that finished since the last call and starts
    /// the ones that are due. Never waits for git.
    pub fn tick(&mut self, company: &Company) -> Vec<AutoSynced> {
        let mut done = Vec::new();
        if let Some(h) = self.running.take() {
            if h.is_finished() {
                done = h.join().unwrap_or_default();
            } else {
                self.running = Some(h);
                return done;
            }
        }
        let now = Instant::now();
        // A factory is looked at once per interval, synced or not, so a patrol every fraction
        // of a second does not ask git about every factory each time.
        let looked: Vec<String> = company
            .factory_names()
            .into_iter()
            .filter(|n| {
                self.last
                    .get(n)
                    .is_none_or(|t| now.duration_since(*t) >= self.every)
            })
            .collect();
        for n in &looked {
            self.last.insert(n.clone(), now);
        }
        let due: Vec<String> = looked
            .into_iter()
            .filter(|n| {
                company
                    .factory(n)
                    .is_ok_and(|f| f.settings.sync.auto_sync && has_synced(&f))
            })
            .collect();
        if due.is_empty() {
            return done;
        }
        let company = company.clone();
        self.running = std::thread::Builder::new()
            .name("auto-sync".into())
            .spawn(move || {
                due.into_iter()
                    .map(|factory| AutoSynced {
                        result: sync_factory(&company, &factory).map_err(|e| e.message()),
                        factory,
                    })
                    .collect()
            })
            .ok();
        done
    }

    /// Waits for a sync in progress (tests, and a clean stop).
    pub fn wait(&mut self) -> Vec<AutoSynced> {
        self.running
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::event::NewEvent;
    use crate::store::StoreOptions;
    use std::sync::{Arc, Mutex};

    /// A clock the test moves: an offset from now, in milliseconds.
    struct Moving(Mutex<i64>);
    impl Clock for Moving {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            let off = self.0.lock().map(|o| *o).unwrap_or(0);
            chrono::Utc::now() + chrono::Duration::milliseconds(off)
        }
    }

    struct Side {
        store: Store,
        id: String,
        clock: Arc<Moving>,
    }

    fn side(dir: &Path, name: &str) -> Side {
        let clock = Arc::new(Moving(Mutex::new(0)));
        let opts = StoreOptions {
            partition_by_day: true,
            clock: clock.clone(),
        };
        std::fs::create_dir_all(dir.join(name)).unwrap();
        let store = Store::init(&dir.join(name).join(".work"), opts).unwrap();
        let id = store_id(&store).unwrap();
        Side { store, id, clock }
    }

    /// One sync of `s` against the branch (the git part is a map here).
    fn exchange(s: &Side, branch: &mut BTreeMap<String, Vec<u8>>) -> Round {
        let r = merge_store(&s.store, &s.id, branch.clone(), "tester").unwrap();
        *branch = r.files.clone();
        r
    }

    fn put(s: &Side, ty: &str, data: serde_json::Value) {
        s.store
            .append(vec![NewEvent::new(ty, "tester", &data).unwrap()])
            .unwrap();
    }

    fn state(s: &Side) -> Vec<serde_json::Value> {
        let l = s.store.load::<WorkOrders>().unwrap();
        assert!(l.issues.is_empty(), "{:?}", l.issues);
        let rebuilt = s.store.rebuild::<WorkOrders>().unwrap();
        assert!(s.store.same_state(&l, &rebuilt).unwrap());
        // Records are in the order this log created them, which differs between stores.
        let mut v: Vec<serde_json::Value> = l.state.all().iter().map(without_seq).collect();
        v.sort_by_key(|r| r["id"].as_str().unwrap_or_default().to_string());
        v
    }

    /// xorshift: the same "random" edits every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn random_concurrent_edits_in_any_sync_order_converge_even_with_skewed_clocks() {
        let dir = tempfile::tempdir().unwrap();
        let sides = [
            side(dir.path(), "a"),
            side(dir.path(), "b"),
            side(dir.path(), "c"),
        ];
        let mut branch = BTreeMap::new();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let ids = ["mp-aaaaaa", "mp-bbbbbb", "mp-cccccc"];
        for (i, id) in ids.iter().enumerate() {
            put(
                &sides[i],
                types::WORK_ORDER_CREATED,
                serde_json::json!({"id": id, "title": "t", "type": "task", "priority": 2, "description": "", "labels": []}),
            );
        }
        let mut reconciled = 0;
        let statuses = [
            "open",
            "queued",
            "blocked",
            "in_progress",
            "closed",
            "rework",
        ];
        for round in 0..25 {
            for s in &sides {
                // Clocks that differ by up to a second, and sometimes step back.
                *s.clock.0.lock().unwrap() = rng.next(2000) as i64 - 1000;
                let known: Vec<&str> = ids
                    .iter()
                    .copied()
                    .filter(|id| s.store.load::<WorkOrders>().unwrap().state.contains(id))
                    .collect();
                for _ in 0..rng.next(4) {
                    let Some(id) = known.get(rng.next(known.len().max(1) as u64) as usize) else {
                        continue;
                    };
                    match rng.next(4) {
                        0 => put(
                            s,
                            types::WORK_ORDER_UPDATED,
                            serde_json::json!({"id": id, "title": format!("r{round}-{}", rng.next(100))}),
                        ),
                        1 => put(
                            s,
                            types::WORK_ORDER_UPDATED,
                            serde_json::json!({"id": id, "priority": rng.next(5), "add_labels": [format!("l{}", rng.next(3))]}),
                        ),
                        2 => put(
                            s,
                            types::WORK_ORDER_UPDATED,
                            serde_json::json!({"id": id, "remove_labels": [format!("l{}", rng.next(3))]}),
                        ),
                        _ => put(
                            s,
                            types::WORK_ORDER_STATUS_CHANGED,
                            serde_json::json!({"id": id, "from": "open", "to": statuses[rng.next(6) as usize], "reason": format!("r{round}")}),
                        ),
                    }
                }
            }
            for _ in 0..rng.next(4) {
                reconciled += exchange(&sides[rng.next(3) as usize], &mut branch)
                    .reconciled
                    .len();
            }
        }
        assert!(reconciled > 0, "the run had concurrent edits to reconcile");
        // Everyone syncs after everyone else's last change.
        for _ in 0..2 {
            for s in &sides {
                exchange(s, &mut branch);
            }
        }
        let want = state(&sides[0]);
        assert_eq!(want.len(), 3);
        for s in &sides[1..] {
            assert_eq!(state(s), want);
        }
        // Settled: another round changes nothing anywhere.
        for s in &sides {
            let r = exchange(s, &mut branch);
            assert_eq!((r.exported, r.imported), (0, 0));
            assert!(r.reconciled.is_empty());
        }
        // Each file holds only its own store's events, each once.
        let mut seen = HashSet::new();
        for bytes in branch.values() {
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let e: Event = serde_json::from_slice(line).unwrap();
                assert!(seen.insert(e.event_id), "an event is on the branch twice");
            }
        }
    }

    #[test]
    fn a_change_that_arrives_before_its_create_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            side(dir.path(), "a"),
            side(dir.path(), "b"),
            side(dir.path(), "c"),
        );
        let mut branch = BTreeMap::new();
        *a.clock.0.lock().unwrap() = 60_000;
        put(
            &a,
            types::WORK_ORDER_CREATED,
            serde_json::json!({"id": "mp-aaaaaa", "title": "t", "type": "task", "priority": 2, "description": "", "labels": []}),
        );
        exchange(&a, &mut branch);
        exchange(&b, &mut branch);
        // b's clock is a minute behind a's: its change sorts before the create.
        put(
            &b,
            types::WORK_ORDER_UPDATED,
            serde_json::json!({"id": "mp-aaaaaa", "title": "from b"}),
        );
        exchange(&b, &mut branch);
        let r = exchange(&c, &mut branch);
        assert_eq!(r.imported, 2);
        let s = state(&c);
        assert_eq!(
            s[0]["title"], "t",
            "the rule orders by time: the create is later"
        );
        exchange(&a, &mut branch);
        assert_eq!(state(&a), s);
        assert_eq!(state(&b), s);
    }

    #[test]
    fn store_ids_are_made_once_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let s = side(dir.path(), "a");
        assert_eq!(store_id(&s.store).unwrap(), s.id);
        assert!(s.id.starts_with("st-") && s.id.len() == 19);
        std::fs::write(s.store.dir().join(STORE_ID_FILE), "../../etc\n").unwrap();
        assert!(matches!(
            store_id(&s.store).unwrap_err(),
            Error::Sync(SyncError::BadStoreId(_))
        ));
    }

    #[test]
    fn the_rule_keeps_each_stores_own_order() {
        let ev = |ts: &str, id: &str| Event {
            v: 1,
            seq: 0,
            event_id: id.into(),
            event_type: types::WORK_ORDER_UPDATED.into(),
            timestamp: ts.into(),
            actor: "t".into(),
            correlation_id: None,
            caused_by: None,
            data: serde_json::value::to_raw_value(&serde_json::json!({"id": "x"})).unwrap(),
        };
        // Store one's clock stepped back between its two events.
        let one = vec![
            ev("2026-01-01T00:00:05.000Z", "e1"),
            ev("2026-01-01T00:00:01.000Z", "e2"),
        ];
        let two = vec![
            ev("2026-01-01T00:00:03.000Z", "f1"),
            ev("2026-01-01T00:00:03.000Z", "e1"),
        ];
        let order: Vec<String> = rule_order(vec![one, two])
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(order, ["f1", "e1", "e2"]);
    }
}

#[cfg(test)]
mod auto_tests {
    use super::*;
    use crate::company::AddFactory;

    fn git(dir: &Path, args: &[&str]) {
        let out = crate::effects::git::command(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@e"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }

    #[test]
    fn operations_auto_syncs_only_factories_synced_by_hand_once_and_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        git(&src, &["init", "-q", "-b", "main"]);
        std::fs::write(src.join("a"), "a").unwrap();
        git(&src, &["add", "."]);
        git(&src, &["commit", "-qm", "init"]);
        let remote = dir.path().join("remote.git");
        git(
            dir.path(),
            &[
                "clone",
                "-q",
                "--bare",
                src.to_str().unwrap(),
                remote.to_str().unwrap(),
            ],
        );
        let (company, _) = Company::init(&dir.path().join("co"), "tester").unwrap();
        for (name, prefix) in [("one", "on"), ("two", "tw")] {
            company
                .add_factory(
                    &AddFactory {
                        name: name.into(),
                        source: remote.display().to_string(),
                        prefix: Some(prefix.into()),
                        branch: None,
                    },
                    "tester",
                )
                .unwrap();
        }
        let add = |f: &str| {
            let store = company.factory(f).unwrap().store().unwrap();
            let data = serde_json::json!({"id": format!("{}-aaaaaa", &f[..2]), "title": "t", "type": "task", "priority": 2, "description": "", "labels": []});
            store
                .append(vec![
                    crate::event::NewEvent::new(types::WORK_ORDER_CREATED, "t", &data).unwrap(),
                ])
                .unwrap();
        };
        add("one");
        add("two");
        let mut auto = AutoSync::every(Duration::ZERO);
        // Nothing was ever synced by hand: operations creates no branch anywhere.
        assert!(auto.tick(&company).is_empty());
        assert!(auto.wait().is_empty());
        assert!(!has_synced(&company.factory("one").unwrap()));
        sync_factory(&company, "one").unwrap();
        sync_factory(&company, "two").unwrap();
        // `auto_sync = false` keeps a factory out even once synced by hand.
        let cfg = company.root.join("two/.work/config.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.contains("auto_sync = true"));
        std::fs::write(&cfg, text.replace("auto_sync = true", "auto_sync = false")).unwrap();
        add("one");
        assert!(auto.tick(&company).is_empty(), "started, not waited for");
        let done = auto.wait();
        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].factory, "one");
        let r = done[0].result.as_ref().unwrap();
        assert_eq!((r.exported, r.pushed), (1, true));
        // A minute's interval: not due again right away.
        let mut slow = AutoSync::every(Duration::from_secs(60));
        slow.tick(&company);
        slow.wait();
        assert!(slow.tick(&company).is_empty());
        assert!(slow.wait().is_empty());
    }
}
