//! `co backup` and `co restore`: a whole company in one `tar.gz`, and back.
//!
//! The archive's paths are relative to the company root and laid out as the company is, so
//! `tar -xzf backup.tar.gz -C DIR` alone already puts back the config and every store:
//!
//! ```text
//! .vermas/config.toml                       the company config
//! .work/…                                   the company store
//! <f>/.work/…                               each factory's store (its config.toml inside)
//! .vermas-backup/git/<f>.bundle             `git bundle create --all` of <f>/.git: every branch,
//!                                           unmerged worker branches vermas/* included
//! .vermas-backup/git/<f>/config, info/exclude   the clone's settings (origin's URL, exclusions)
//! .vermas-backup/worktrees/<f>/workers/…    each worker worktree's files, uncommitted work
//!                                           included (slot<N>/ and parked/<wo>/)
//! .vermas-backup/manifest.json              what, when, versions, each store's last seq (last)
//! ```
//!
//! Each store is copied while its writers' lock is held, so no event is half written and the
//! projections beside the log match it; the stores come first and the git refs after them, so
//! a restored branch is never behind what its store says (git ahead of the log is what a crash
//! between a merge and its event leaves, and QA handles that). Left out: the lock files, the
//! SQLite index `work_orders.db` (a cache, rebuilt on the next look-up), `feed.jsonl` (a copy
//! of the log for `tail -f`) and temporary files. Worker worktrees are captured as files
//! (`git ls-files --cached --others --exclude-standard`, plus `.vermas/`): tracked, modified and
//! untracked files, not ignored build output; `co restore` makes each a worktree of the
//! restored clone again on its branch, with the same changes uncommitted.

use crate::company::Company;
use crate::error::{Classify, Error, Kind, Result};
use crate::fsutil;
use crate::mail::Messages;
use crate::store::{Store, StoreError};
use crate::workorder::WorkOrders;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// The archive layout version this build writes and reads.
pub const FORMAT: u32 = 1;
/// What in the archive is not laid out in place.
const META: &str = ".vermas-backup";
const MANIFEST: &str = ".vermas-backup/manifest.json";
const COMPANY_CONFIG: &str = ".vermas/config.toml";

/// Errors of backup and restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{} already exists; choose another --output or move it away", .0.display())]
    OutputExists(PathBuf),
    #[error(
        "--output {} is inside the store {}; write the backup outside every .work directory",
        .output.display(), .store.display()
    )]
    OutputInStore { output: PathBuf, store: PathBuf },
    #[error("{}: not a VerMAS backup ({why})", .path.display())]
    NotABackup { path: PathBuf, why: String },
    #[error("{}: entry {entry:?} {why}; nothing was restored", .path.display())]
    Unsafe {
        path: PathBuf,
        entry: String,
        why: String,
    },
    #[error(
        "{}: backup format {found} is newer than this co reads ({FORMAT}); restore it with a newer vermas",
        .path.display()
    )]
    Format { path: PathBuf, found: u32 },
    #[error(
        "the company at {} is running (operations pid {pid}); stop it first with `co operations stop`",
        .root.display()
    )]
    Running { root: PathBuf, pid: u32 },
    #[error(
        "the company at {} still has tmux sessions ({sessions}); end them first (`co operations stop`, `co worker kill`)",
        .root.display()
    )]
    Sessions { root: PathBuf, sessions: String },
    #[error(
        "{} is not empty; restore into a new or empty directory with --into DIR, or move it away first",
        .0.display()
    )]
    NotEmpty(PathBuf),
}

impl Classify for BackupError {
    fn kind(&self) -> Kind {
        match self {
            BackupError::OutputExists(_)
            | BackupError::Running { .. }
            | BackupError::Sessions { .. }
            | BackupError::NotEmpty(_) => Kind::Conflict,
            BackupError::OutputInStore { .. } => Kind::Usage,
            BackupError::NotABackup { .. }
            | BackupError::Unsafe { .. }
            | BackupError::Format { .. } => Kind::Failure,
        }
    }
}

/// `.vermas-backup/manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: String,
    pub vermas_version: String,
    pub git_version: String,
    /// The company's name and the root it was backed up from (where `co restore` puts it back
    /// unless told `--into`).
    pub company: String,
    pub root: String,
    pub stores: Vec<StoreEntry>,
    pub factories: Vec<FactoryEntry>,
}

/// One store as it was copied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoreEntry {
    /// Relative to the root: `.work`, `myproject/.work`.
    pub path: String,
    pub last_seq: u64,
    pub last_event: Option<String>,
    pub files: usize,
    pub bytes: u64,
    pub work_orders: usize,
    pub messages: usize,
}

/// One factory's git repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FactoryEntry {
    pub name: String,
    /// The branch the clone's HEAD names (origin's default branch).
    pub head: Option<String>,
    pub target_branch: String,
    pub remote: Option<String>,
    pub bundle: String,
    /// Every branch (`refs/heads/*`).
    pub branches: Vec<String>,
    /// Worker branches with commits the target does not have.
    pub unmerged: Vec<String>,
    pub worktrees: Vec<WorktreeEntry>,
}

/// A worker worktree captured as files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorktreeEntry {
    /// Relative to the factory: `workers/parked/mp-k3x9q2`, `workers/slot0`.
    pub path: String,
    pub branch: Option<String>,
    pub head: Option<String>,
    pub files: usize,
}

/// What `co backup` wrote.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub output: String,
    pub bytes: u64,
    pub manifest: Manifest,
}

fn io_err(path: &Path, e: io::Error) -> Error {
    StoreError::io(path, e).into()
}

/// `vermas-backup-<company>-<time>.tar.gz` in `dir`.
pub fn default_output(company: &Company, dir: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    dir.join(format!("vermas-backup-{}-{stamp}.tar.gz", company.name()))
}

/// The files of a directory tree, relative to it, sorted; symbolic links are listed as such
/// and never followed.
fn walk(base: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let dir = base.join(&rel);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&dir, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| io_err(&dir, e))?;
            let r = rel.join(entry.file_name());
            let m = fs::symlink_metadata(entry.path()).map_err(|e| io_err(&entry.path(), e))?;
            if m.is_dir() {
                todo.push(r);
            } else {
                out.push((r, m));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Files of a store that are not worth keeping: locks (held by processes, not data), caches a
/// reader rebuilds, the feed (a copy of the log) and temporary files.
fn skipped_in_store(rel: &Path) -> bool {
    let mut comps = rel.components();
    let (Some(first), None) = (comps.next(), comps.next()) else {
        return false;
    };
    let name = first.as_os_str().to_string_lossy();
    matches!(
        name.as_ref(),
        ".lock"
            | ".sync.lock"
            | ".supervisor.lock"
            | ".qa.lock"
            | ".supervisor.json"
            | ".qa.json"
            | "feed.jsonl"
            | "work_orders.db"
            | "work_orders.db-wal"
            | "work_orders.db-shm"
            | "work_orders.db-journal"
    ) || (name.starts_with('.') && name.contains(".tmp-"))
}

fn archive_name(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The archive being written.
struct Out {
    tar: tar::Builder<flate2::write::GzEncoder<File>>,
    path: PathBuf,
}

impl Out {
    fn header(meta: Option<&fs::Metadata>, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(meta.map_or(mode, |m| m.mode() & 0o7777));
        h.set_mtime(meta.map_or(0, |m| m.mtime().max(0) as u64));
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    fn file(&mut self, name: &str, src: &Path) -> Result<u64> {
        let f = File::open(src).map_err(|e| io_err(src, e))?;
        let m = f.metadata().map_err(|e| io_err(src, e))?;
        let mut h = Out::header(Some(&m), m.len(), 0o600);
        self.tar
            .append_data(&mut h, name, f.take(m.len()))
            .map_err(|e| io_err(&self.path, e))?;
        Ok(m.len())
    }

    fn bytes(&mut self, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
        let mut h = Out::header(None, bytes.len() as u64, mode);
        h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
        self.tar
            .append_data(&mut h, name, bytes)
            .map_err(|e| io_err(&self.path, e))
    }

    fn symlink(&mut self, name: &str, target: &Path) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        self.tar
            .append_link(&mut h, name, target)
            .map_err(|e| io_err(&self.path, e))
    }
}

/// `co backup`: writes the archive to `output` (a new file; never overwritten).
pub fn backup(company: &Company, output: &Path) -> Result<BackupReport> {
    let output = if output.is_absolute() {
        output.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::failure(format!("cannot read the current directory: {e}")))?
            .join(output)
    };
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = dir
        .canonicalize()
        .map_err(|e| Error::not_found(format!("--output {}: {e}", output.display())))?;
    let name = output
        .file_name()
        .ok_or_else(|| Error::usage(format!("--output {} names no file", output.display())))?;
    let output = dir.join(name);
    if fs::symlink_metadata(&output).is_ok() {
        return Err(BackupError::OutputExists(output).into());
    }
    // Named by where they are in the company (`.work` may be a link to other storage).
    let mut stores = vec![(".work".to_string(), company.store()?)];
    for name in company.factory_names() {
        let dir = company.root.join(&name).join(".work");
        stores.push((
            format!("{name}/.work"),
            Store::open(&dir, company.store_options())?,
        ));
    }
    for (_, s) in &stores {
        if dir.starts_with(s.dir()) {
            return Err(BackupError::OutputInStore {
                output,
                store: s.dir().to_path_buf(),
            }
            .into());
        }
    }
    let token = crate::ids::new_incarnation_id();
    let tmp = dir.join(format!(".{}.tmp-{token}", name.to_string_lossy()));
    let scratch = dir.join(format!(".vermas-backup-{token}"));
    let result = (|| -> Result<Manifest> {
        fsutil::ensure_dir(&scratch).map_err(|e| io_err(&scratch, e))?;
        let file = fsutil::create_new(&tmp).map_err(|e| io_err(&tmp, e))?;
        let mut out = Out {
            tar: tar::Builder::new(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            )),
            path: tmp.clone(),
        };
        let manifest = write_archive(company, &stores, &mut out, &scratch)?;
        let gz = out.tar.into_inner().map_err(|e| io_err(&tmp, e))?;
        let file = gz.finish().map_err(|e| io_err(&tmp, e))?;
        file.sync_all().map_err(|e| io_err(&tmp, e))?;
        // A link never replaces an existing file (a rename would).
        fs::hard_link(&tmp, &output).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                BackupError::OutputExists(output.clone()).into()
            } else {
                io_err(&output, e)
            }
        })?;
        let _ = fsutil::fsync_dir(&dir);
        Ok(manifest)
    })();
    let _ = fs::remove_file(&tmp);
    let _ = fs::remove_dir_all(&scratch);
    let manifest = result?;
    let bytes = fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        output: output.display().to_string(),
        bytes,
        manifest,
    })
}

fn write_archive(
    company: &Company,
    stores: &[(String, Store)],
    out: &mut Out,
    scratch: &Path,
) -> Result<Manifest> {
    let root = &company.root;
    out.file(COMPANY_CONFIG, &root.join(COMPANY_CONFIG))?;
    let mut entries = Vec::new();
    for (prefix, s) in stores {
        entries.push(copy_store(s, prefix, out)?);
    }
    let mut factories = Vec::new();
    for name in company.factory_names() {
        factories.push(copy_git(company, &name, out, scratch)?);
    }
    let manifest = Manifest {
        format: FORMAT,
        created_at: crate::clock::format_timestamp(chrono::Utc::now()),
        vermas_version: env!("CARGO_PKG_VERSION").to_string(),
        git_version: crate::effects::git::version()
            .map(|(_, t)| t)
            .unwrap_or_default(),
        company: company.name().to_string(),
        root: root.display().to_string(),
        stores: entries,
        factories,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(StoreError::from)?;
    out.bytes(MANIFEST, &json, 0o600)?;
    Ok(manifest)
}

/// Copies one store while holding its writers' lock.
fn copy_store(store: &Store, prefix: &str, out: &mut Out) -> Result<StoreEntry> {
    let _held = store.lock()?;
    // The projections brought to the end of the log give its last event (and the counts).
    let wos = store.load::<WorkOrders>()?;
    let msgs = store.load::<Messages>()?;
    let mut entry = StoreEntry {
        path: prefix.to_string(),
        last_seq: wos.checkpoint.seq,
        last_event: wos.checkpoint.event_id.clone(),
        files: 0,
        bytes: 0,
        work_orders: wos.state.len(),
        messages: msgs.state.len(),
    };
    for (rel, m) in walk(store.dir())? {
        if skipped_in_store(&rel) || !m.is_file() {
            continue;
        }
        let name = format!("{prefix}/{}", archive_name(&rel));
        entry.bytes += out.file(&name, &store.dir().join(&rel))?;
        entry.files += 1;
    }
    Ok(entry)
}

/// A factory's clone as a bundle plus its settings, and its worker worktrees as files.
fn copy_git(company: &Company, name: &str, out: &mut Out, scratch: &Path) -> Result<FactoryEntry> {
    use crate::effects::git;
    let fdir = company.root.join(name);
    let repo = fdir.join(".git");
    let head = git::head_branch(&repo);
    let target = company
        .factory(name)
        .map(|f| f.target_branch().to_string())
        .ok()
        .or_else(|| head.clone())
        .unwrap_or_else(|| "main".to_string());
    let bundle = scratch.join(format!("{name}.bundle"));
    git::run(
        &repo,
        &[
            "bundle",
            "create",
            "--quiet",
            &bundle.display().to_string(),
            "--all",
        ],
    )?;
    let bundle_name = format!("{META}/git/{name}.bundle");
    out.file(&bundle_name, &bundle)?;
    let _ = fs::remove_file(&bundle);
    for rel in ["config", "info/exclude"] {
        let p = repo.join(rel);
        if p.is_file() {
            out.file(&format!("{META}/git/{name}/{rel}"), &p)?;
        }
    }
    let branches: Vec<String> = git::run(
        &repo,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    )?
    .lines()
    .map(str::to_string)
    .collect();
    let unmerged = branches
        .iter()
        .filter(|b| b.starts_with("vermas/"))
        .filter(|b| git::commits_ahead(&repo, &target, b).is_ok_and(|n| n > 0))
        .cloned()
        .collect();
    let mut worktrees = Vec::new();
    let workers = fdir.join("workers");
    for wt in git::worktrees(&repo)? {
        if wt.prunable || !wt.path.starts_with(&workers) || !wt.path.is_dir() {
            continue;
        }
        let rel = wt
            .path
            .strip_prefix(&fdir)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let base = format!("{META}/worktrees/{name}/{}", archive_name(&rel));
        let listed = git::run(
            &wt.path,
            &[
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
        )?;
        let mut files: Vec<PathBuf> = listed
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        // The prompt files a worker reads are excluded from git but are the worker's.
        files.extend(
            walk(&wt.path.join(".vermas"))?
                .into_iter()
                .map(|(r, _)| Path::new(".vermas").join(r)),
        );
        files.sort();
        files.dedup();
        let mut n = 0;
        for f in files {
            let src = wt.path.join(&f);
            let Ok(m) = fs::symlink_metadata(&src) else {
                // Deleted in the worktree: restored as deleted.
                continue;
            };
            let name = format!("{base}/{}", archive_name(&f));
            if m.file_type().is_symlink() {
                let target = fs::read_link(&src).map_err(|e| io_err(&src, e))?;
                out.symlink(&name, &target)?;
            } else if m.is_file() {
                out.file(&name, &src)?;
            } else {
                continue;
            }
            n += 1;
        }
        worktrees.push(WorktreeEntry {
            path: archive_name(&rel),
            branch: wt.branch.clone(),
            head: wt.head.clone(),
            files: n,
        });
    }
    Ok(FactoryEntry {
        name: name.to_string(),
        head,
        target_branch: target,
        remote: git::remote_url(&repo, "origin"),
        bundle: bundle_name,
        branches,
        unmerged,
        worktrees,
    })
}

/// What `co restore` put back.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub root: String,
    pub archive: String,
    pub backed_up_at: String,
    pub stores: Vec<StoreEntry>,
    pub factories: Vec<RestoredFactory>,
    pub doctor: crate::doctor::Report,
}

/// One factory as restored.
#[derive(Debug, Serialize)]
pub struct RestoredFactory {
    pub name: String,
    pub branches: usize,
    pub unmerged: Vec<String>,
    pub worktrees: Vec<String>,
}

fn open_archive(path: &Path) -> Result<tar::Archive<flate2::read::GzDecoder<File>>> {
    let f = File::open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            Error::not_found(format!("{}: no such file", path.display()))
        } else {
            io_err(path, e)
        }
    })?;
    Ok(tar::Archive::new(flate2::read::GzDecoder::new(f)))
}

fn not_a_backup(path: &Path, why: impl std::fmt::Display) -> Error {
    BackupError::NotABackup {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
    .into()
}

/// Reads the manifest (one pass over the archive).
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let mut ar = open_archive(path)?;
    let entries = ar.entries().map_err(|e| not_a_backup(path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_a_backup(path, e))?;
        let name = entry.path().map_err(|e| not_a_backup(path, e))?;
        if archive_name(&name) != MANIFEST {
            continue;
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| not_a_backup(path, e))?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| not_a_backup(path, format!("{MANIFEST}: {e}")))?;
        if m.format > FORMAT {
            return Err(BackupError::Format {
                path: path.to_path_buf(),
                found: m.format,
            }
            .into());
        }
        return Ok(m);
    }
    Err(not_a_backup(path, format!("it has no {MANIFEST}")))
}

/// Refuses a target that holds anything, naming a running company first.
fn check_target(target: &Path) -> Result<()> {
    let m = match fs::symlink_metadata(target) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(target, e)),
    };
    if m.file_type().is_symlink() {
        return Err(StoreError::Symlink(target.to_path_buf()).into());
    }
    if crate::context::is_company_root(target) {
        let lock = target.join(".vermas").join("operations.lock");
        if let Some(h) = crate::loops::daemon::running(&lock) {
            return Err(BackupError::Running {
                root: target.to_path_buf(),
                pid: h.pid,
            }
            .into());
        }
        if let Ok(c) = Company::open(target) {
            let tag = c.tag();
            let live: Vec<String> = c
                .tmux()
                .sessions()
                .unwrap_or_default()
                .into_iter()
                .filter(|s| s.company == tag)
                .map(|s| s.name)
                .collect();
            if !live.is_empty() {
                return Err(BackupError::Sessions {
                    root: target.to_path_buf(),
                    sessions: live.join(", "),
                }
                .into());
            }
        }
    }
    let empty = m.is_dir()
        && fs::read_dir(target)
            .map_err(|e| io_err(target, e))?
            .next()
            .is_none();
    if !empty {
        return Err(BackupError::NotEmpty(target.to_path_buf()).into());
    }
    Ok(())
}

/// Whether an archive path may be restored, and whether it may be a symbolic link: the
/// company config, stores, and the backup's own directory; nothing absolute or with `..`.
fn allowed(name: &Path, factories: &[String]) -> std::result::Result<bool, String> {
    let mut parts = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return Err("is absolute or climbs out with `..`".into()),
        }
    }
    match parts.as_slice() {
        [a, b] if a == ".vermas" && b == "config.toml" => Ok(false),
        [a, ..] if a == ".work" && parts.len() > 1 => Ok(false),
        [f, w, ..] if w == ".work" && parts.len() > 2 && factories.contains(f) => Ok(false),
        [m, w, ..] if m == META && w == "worktrees" => Ok(true),
        [m, ..] if m == META && parts.len() > 1 => Ok(false),
        _ => Err("is not part of a company backup".into()),
    }
}

/// Extracts the archive under `dest` (which must be empty): regular files and, inside captured
/// worktrees, symbolic links; directories are made 0700 and never through a link.
fn extract(path: &Path, dest: &Path, factories: &[String]) -> Result<()> {
    let unsafe_entry = |entry: &str, why: &str| -> Error {
        BackupError::Unsafe {
            path: path.to_path_buf(),
            entry: entry.to_string(),
            why: why.to_string(),
        }
        .into()
    };
    let mut ar = open_archive(path)?;
    for entry in ar.entries().map_err(|e| not_a_backup(path, e))? {
        let mut entry = entry.map_err(|e| not_a_backup(path, e))?;
        let name = entry
            .path()
            .map_err(|e| not_a_backup(path, e))?
            .into_owned();
        let shown = name.display().to_string();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        let may_link = allowed(&name, factories).map_err(|why| unsafe_entry(&shown, &why))?;
        let rel: PathBuf = name
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir =
            fsutil::ensure_dir_under(dest, parent).map_err(|e| io_err(&dest.join(parent), e))?;
        let Some(file_name) = rel.file_name() else {
            continue;
        };
        let target = dir.join(file_name);
        if kind.is_symlink() {
            if !may_link {
                return Err(unsafe_entry(
                    &shown,
                    "is a symbolic link outside a worktree",
                ));
            }
            let to = entry
                .link_name()
                .map_err(|e| not_a_backup(path, e))?
                .ok_or_else(|| unsafe_entry(&shown, "is a link without a target"))?;
            std::os::unix::fs::symlink(&to, &target).map_err(|e| io_err(&target, e))?;
            continue;
        }
        if !kind.is_file() {
            return Err(unsafe_entry(&shown, "is neither a file nor a directory"));
        }
        let mode = entry.header().mode().unwrap_or(0o600) & 0o777;
        let mut f = fsutil::create_new(&target).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                unsafe_entry(&shown, "appears twice")
            } else {
                io_err(&target, e)
            }
        })?;
        io::copy(&mut entry, &mut f).map_err(|e| io_err(&target, e))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(&target, e))?;
    }
    Ok(())
}

/// `co restore`: puts the company of `archive` back at `into`, or where it was backed up
/// from. The target must be new or empty; a company still running there is refused by name.
pub fn restore(archive: &Path, into: Option<&Path>) -> Result<RestoreReport> {
    let manifest = read_manifest(archive)?;
    let target = match into {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) => std::env::current_dir()
            .map_err(|e| Error::failure(format!("cannot read the current directory: {e}")))?
            .join(p),
        None => PathBuf::from(&manifest.root),
    };
    let target: PathBuf = target.components().collect();
    check_target(&target)?;
    let parent = target
        .parent()
        .ok_or_else(|| Error::usage(format!("cannot restore into {}", target.display())))?;
    fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
    let name = target
        .file_name()
        .ok_or_else(|| Error::usage(format!("cannot restore into {}", target.display())))?;
    let staging = parent.join(format!(
        ".{}.restoring-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    let factories: Vec<String> = manifest.factories.iter().map(|f| f.name.clone()).collect();
    let staged = (|| -> Result<()> {
        fsutil::ensure_dir(&staging).map_err(|e| io_err(&staging, e))?;
        extract(archive, &staging, &factories)?;
        if !staging.join(COMPANY_CONFIG).is_file() {
            return Err(not_a_backup(archive, format!("it has no {COMPANY_CONFIG}")));
        }
        for s in &manifest.stores {
            if !staging.join(&s.path).is_dir() {
                return Err(not_a_backup(
                    archive,
                    format!("the store {} is missing", s.path),
                ));
            }
        }
        for f in &manifest.factories {
            restore_clone(&staging, archive, f)?;
        }
        for d in ["ceo", "logs"] {
            fsutil::ensure_dir(&staging.join(d)).map_err(|e| io_err(&staging.join(d), e))?;
        }
        Ok(())
    })();
    if let Err(e) = staged {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    // A rename replaces an empty directory and nothing else.
    if let Err(e) = fs::rename(&staging, &target) {
        let _ = fs::remove_dir_all(&staging);
        return Err(io_err(&target, e));
    }
    // What `co init` and `co factory add` make with the user's umask (stores stay 0700).
    for d in std::iter::once(target.clone())
        .chain(["ceo", "logs"].iter().map(|d| target.join(d)))
        .chain(manifest.factories.iter().map(|f| target.join(&f.name)))
    {
        let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o755));
    }
    let partly = |e: Error| {
        e.context(format!(
            "the company at {} is partly restored (remove it and run `co restore` again)",
            target.display()
        ))
    };
    let mut restored = Vec::new();
    for f in &manifest.factories {
        restored.push(restore_worktrees(&target, f).map_err(partly)?);
    }
    let _ = fs::remove_dir_all(target.join(META));
    let company = Company::open(&target).map_err(partly)?;
    let mut stores = Vec::new();
    for want in &manifest.stores {
        let store = Store::open(&target.join(&want.path), company.store_options())?;
        let wos = store.load::<WorkOrders>()?;
        let msgs = store.load::<Messages>()?;
        let got = StoreEntry {
            path: want.path.clone(),
            last_seq: wos.checkpoint.seq,
            last_event: wos.checkpoint.event_id.clone(),
            files: want.files,
            bytes: want.bytes,
            work_orders: wos.state.len(),
            messages: msgs.state.len(),
        };
        if got != *want {
            return Err(partly(Error::failure(format!(
                "{} does not match the backup's manifest (last seq {} of {}, {} of {} work orders, {} of {} messages)",
                want.path,
                got.last_seq,
                want.last_seq,
                got.work_orders,
                want.work_orders,
                got.messages,
                want.messages
            ))));
        }
        stores.push(got);
    }
    let doctor = crate::doctor::run(&company, false)?;
    Ok(RestoreReport {
        root: target.display().to_string(),
        archive: archive.display().to_string(),
        backed_up_at: manifest.created_at,
        stores,
        factories: restored,
        doctor,
    })
}

/// The factory's bare clone again, from its bundle: every ref, its settings, its HEAD, and
/// the directories `co factory add` makes.
fn restore_clone(staging: &Path, archive: &Path, f: &FactoryEntry) -> Result<()> {
    use crate::effects::git;
    let fdir = staging.join(&f.name);
    let repo = fdir.join(".git");
    let bundle = staging.join(&f.bundle);
    if !bundle.is_file() {
        return Err(not_a_backup(archive, format!("{} is missing", f.bundle)));
    }
    git::run_no_hooks(
        staging,
        &["init", "--quiet", "--bare", &repo.display().to_string()],
    )?;
    git::run_no_hooks(
        &repo,
        &[
            "fetch",
            "--quiet",
            "--update-head-ok",
            &bundle.display().to_string(),
            "+refs/*:refs/*",
        ],
    )?;
    let saved = staging.join(META).join("git").join(&f.name);
    for rel in ["config", "info/exclude"] {
        let from = saved.join(rel);
        if from.is_file() {
            let bytes = fs::read(&from).map_err(|e| io_err(&from, e))?;
            let to = repo.join(rel);
            if let Some(p) = to.parent() {
                fs::create_dir_all(p).map_err(|e| io_err(p, e))?;
            }
            fs::write(&to, bytes).map_err(|e| io_err(&to, e))?;
        }
    }
    git::add_exclude(&repo, "/.vermas/").map_err(|e| io_err(&repo, e))?;
    if let Some(h) = &f.head {
        git::run(&repo, &["symbolic-ref", "HEAD", &format!("refs/heads/{h}")])?;
    }
    for d in ["workers", "qa", "supervisor", "teams"] {
        fs::create_dir_all(fdir.join(d)).map_err(|e| io_err(&fdir.join(d), e))?;
    }
    Ok(())
}

/// The QA worktree and every captured worker worktree, registered with the restored clone at
/// their final paths, with their files (uncommitted changes stay uncommitted).
fn restore_worktrees(root: &Path, f: &FactoryEntry) -> Result<RestoredFactory> {
    use crate::effects::git;
    let fdir = root.join(&f.name);
    let repo = fdir.join(".git");
    let qa = fdir.join("qa");
    let _ = fs::remove_dir(&qa);
    git::worktree_add_detached(&repo, &qa, &f.target_branch)?;
    let mut worktrees = Vec::new();
    for wt in &f.worktrees {
        let path = fdir.join(&wt.path);
        let saved = root
            .join(META)
            .join("worktrees")
            .join(&f.name)
            .join(&wt.path);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).map_err(|e| io_err(p, e))?;
        }
        let _ = fs::remove_dir(&path);
        let p = path.display().to_string();
        match (&wt.branch, &wt.head) {
            (Some(b), _) if git::branch_exists(&repo, b) => git::run_no_hooks(
                &repo,
                &["worktree", "add", "--quiet", "--no-checkout", &p, b],
            )?,
            (_, Some(h)) => git::run_no_hooks(
                &repo,
                &[
                    "worktree",
                    "add",
                    "--quiet",
                    "--no-checkout",
                    "--detach",
                    &p,
                    h,
                ],
            )?,
            _ => continue,
        };
        if saved.is_dir() {
            let rd = fs::read_dir(&saved).map_err(|e| io_err(&saved, e))?;
            for e in rd {
                let e = e.map_err(|e| io_err(&saved, e))?;
                let to = path.join(e.file_name());
                fs::rename(e.path(), &to).map_err(|err| io_err(&to, err))?;
            }
        }
        // The index follows HEAD; the files as they were show as the changes they were.
        git::run_no_hooks(&path, &["reset", "--quiet"])?;
        worktrees.push(wt.path.clone());
    }
    let branches = git::run(
        &repo,
        &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
    )?;
    let unmerged = branches
        .lines()
        .filter(|b| b.starts_with("vermas/"))
        .filter(|b| git::commits_ahead(&repo, &f.target_branch, b).is_ok_and(|n| n > 0))
        .map(str::to_string)
        .collect();
    Ok(RestoredFactory {
        name: f.name.clone(),
        branches: branches.lines().count(),
        unmerged,
        worktrees,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_company_paths_are_restored() {
        let fs = vec!["myproject".to_string()];
        let ok = |p: &str| allowed(Path::new(p), &fs);
        assert_eq!(ok(".vermas/config.toml"), Ok(false));
        assert_eq!(ok(".work/events/2026-11-21.jsonl"), Ok(false));
        assert_eq!(ok("myproject/.work/config.toml"), Ok(false));
        assert_eq!(ok(".vermas-backup/manifest.json"), Ok(false));
        assert_eq!(
            ok(".vermas-backup/worktrees/myproject/workers/slot0/a"),
            Ok(true)
        );
        for bad in [
            "/etc/passwd",
            "../x",
            ".work/../../x",
            "other/.work/x",
            ".vermas/operations.lock",
            "myproject/src/main.rs",
            ".work",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn locks_caches_and_temporary_files_are_left_out() {
        for p in [
            ".lock",
            "feed.jsonl",
            "work_orders.db",
            "work_orders.db-wal",
            ".work_orders.jsonl.tmp-1-x",
        ] {
            assert!(skipped_in_store(Path::new(p)), "{p}");
        }
        for p in [
            "events/2026-11-21.jsonl",
            "work_orders.jsonl",
            ".assignment-mp-workers-slot0",
            "store.id",
            "evidence/mp-x/1/check.json",
        ] {
            assert!(!skipped_in_store(Path::new(p)), "{p}");
        }
    }
}
