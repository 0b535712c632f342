//! The company on disk (design §3): `<root>/.vermas/config.toml`, the company store
//! `<root>/.work/`, `ceo/`, `logs/`, and one directory per factory:
//!
//! ```text
//! <root>/<factory>/
//!   .git/         bare clone of the project (git worktree list/prune work here)
//!   .work/        the factory store and config.toml
//!   workers/      slot<N>/ worktrees on vermas/<wo-id>; parked/<wo-id>/ kept after a kill
//!   qa/           the QA worktree (detached at the target branch)
//!   supervisor/   the supervisor's working directory
//!   teams/        person-directed worktrees
//! ```

use crate::config::{Config, Settings, is_valid_name};
use crate::context::{COMPANY_CONFIG, COMPANY_PREFIX, factory_stores};
use crate::effects::tmux::Tmux;
use crate::error::{Error, Result};
use crate::event::{NewEvent, types};
use crate::fsutil;
use crate::store::{Store, StoreError, StoreOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Directory names at the company root that are not factories.
pub const RESERVED: &[&str] = &["ceo", "logs"];

/// A company: its root, config and tmux server.
#[derive(Debug, Clone)]
pub struct Company {
    pub root: PathBuf,
    /// Defaults < company file < environment, with where each value came from.
    pub config: Config,
    /// The same, typed.
    pub settings: Settings,
    /// In a long-running loop: the last good settings, kept when a file is edited into
    /// something invalid (see [`Company::keep_last_good`]).
    last_good: Option<Arc<Mutex<LastGood>>>,
}

/// The last factory settings that loaded, and the files that fail to load now.
#[derive(Debug, Default)]
struct LastGood {
    factories: BTreeMap<String, Factory>,
    /// File → why it does not load (the settings before the edit are in use).
    errors: BTreeMap<PathBuf, String>,
    /// The company file as it was when it last loaded: (modified, length).
    company_stamp: Option<(std::time::SystemTime, u64)>,
}

fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// A factory of a company.
#[derive(Debug, Clone)]
pub struct Factory {
    pub name: String,
    pub dir: PathBuf,
    /// Defaults < company file < factory file < environment.
    pub config: Config,
    /// The same, typed.
    pub settings: Settings,
}

/// Payload of `company.initialized`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Initialized {
    pub name: String,
    pub root: String,
}

/// Payload of `factory.added`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FactoryAdded {
    pub name: String,
    pub url: String,
    pub prefix: String,
    pub target_branch: String,
    pub push: bool,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::from(StoreError::io(path, e))
}

impl Company {
    /// The company for this process: `$COMPANY_ROOT`, else the nearest directory above `cwd`
    /// holding `.vermas/config.toml`, else `~/company` if it is one.
    pub fn locate(cwd: &Path) -> Result<Company> {
        if let Some(root) = std::env::var_os("COMPANY_ROOT").filter(|v| !v.is_empty()) {
            let root = PathBuf::from(root);
            if !crate::context::is_company_root(&root) {
                return Err(Error::failure(format!(
                    "COMPANY_ROOT={} is not a company (no {COMPANY_CONFIG}); run `co init {}`",
                    root.display(),
                    root.display()
                )));
            }
            return Company::open(&root);
        }
        if let Some(root) = cwd.ancestors().find(|d| crate::context::is_company_root(d)) {
            return Company::open(root);
        }
        if let Some(home) = std::env::var_os("HOME") {
            let root = PathBuf::from(home).join("company");
            if crate::context::is_company_root(&root) {
                return Company::open(&root);
            }
        }
        Err(Error::failure(format!(
            "not inside a company (no {COMPANY_CONFIG} from {} upward, COMPANY_ROOT unset); run `co init` to make one",
            cwd.display()
        )))
    }

    pub fn open(root: &Path) -> Result<Company> {
        let root = root.canonicalize().map_err(|e| io(root, e))?;
        let config = Config::load(&[root.join(COMPANY_CONFIG)])?;
        let settings = config.settings()?;
        Ok(Company {
            root,
            config,
            settings,
            last_good: None,
        })
    }

    /// `co init`: the layout and a commented config. Safe to run twice: existing files are
    /// kept. Returns whether anything was created.
    pub fn init(dir: &Path, actor: &str) -> Result<(Company, bool)> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let root = dir.canonicalize().map_err(|e| io(dir, e))?;
        let vermas = root.join(".vermas");
        fsutil::ensure_dir(&vermas).map_err(|e| io(&vermas, e))?;
        let cfg = root.join(COMPANY_CONFIG);
        let fresh = !cfg.exists();
        if fresh {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().to_lowercase())
                .filter(|n| is_valid_name(n))
                .unwrap_or_else(|| "my-company".to_string());
            let text = crate::templates::COMPANY_CONFIG.replace("{name}", &name);
            fsutil::atomic_write(&cfg, text.as_bytes()).map_err(|e| io(&cfg, e))?;
        }
        for d in ["ceo", "logs"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        }
        let company = Company::open(&root)?;
        let store = Store::init(&root.join(".work"), company.store_options())?;
        if fresh {
            let ev = NewEvent::new(
                types::COMPANY_INITIALIZED,
                actor,
                &Initialized {
                    name: company.name().to_string(),
                    root: root.display().to_string(),
                },
            )
            .map_err(StoreError::from)?;
            store.append(vec![ev])?;
        }
        Ok((company, fresh))
    }

    /// Sets a value decided by code (the demo's private tmux server), keeping the typed
    /// settings in step.
    pub fn set(
        &mut self,
        key: &str,
        value: crate::config::Value,
        source: crate::config::Source,
    ) -> Result<()> {
        self.config.set(key, value, source);
        self.settings = self.config.settings()?;
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.settings.company.name
    }

    /// The tag put on every tmux session this company starts (its canonical root).
    pub fn tag(&self) -> String {
        self.root.display().to_string()
    }

    pub fn tmux(&self) -> Tmux {
        Tmux::from_setting(self.settings.tmux.socket.as_deref())
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            partition_by_day: self.settings.events.partition_by_day,
            ..Default::default()
        }
    }

    pub fn store(&self) -> Result<Store> {
        Ok(Store::open(&self.root.join(".work"), self.store_options())?)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Factory names, sorted.
    pub fn factory_names(&self) -> Vec<String> {
        factory_stores(&self.root)
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !RESERVED.contains(&n.as_str()))
            .collect()
    }

    pub fn factories(&self) -> Result<Vec<Factory>> {
        self.factory_names()
            .iter()
            .map(|n| self.factory(n))
            .collect()
    }

    /// Every store of the company, its own first, for reading only: unlike [`Company::factories`]
    /// no factory's config is read (reading a store does not need it; appending does).
    pub fn stores_for_reading(&self) -> Result<Vec<Store>> {
        let mut out = vec![self.store()?];
        for (name, dir) in factory_stores(&self.root) {
            if !RESERVED.contains(&name.as_str()) {
                out.push(Store::open(&dir, self.store_options())?);
            }
        }
        Ok(out)
    }

    /// A factory by name; not found (exit 3) says how to list them.
    pub fn factory(&self, name: &str) -> Result<Factory> {
        let dir = self.root.join(name);
        if !is_valid_name(name) || !dir.join(".work").is_dir() {
            let known = self.factory_names();
            return Err(Error::not_found(format!(
                "factory {:?} not found (factories: {}); add it with `co factory add {} <repo>`",
                crate::text::escape_control(name),
                if known.is_empty() {
                    "none yet".to_string()
                } else {
                    known.join(", ")
                },
                if is_valid_name(name) { name } else { "NAME" }
            )));
        }
        // The company's layers are already merged (defaults, company file, environment); add the
        // factory's file on top, then the environment again so it stays the top layer.
        let file = dir.join(".work").join("config.toml");
        let loaded = (|| -> Result<Factory> {
            let mut config = self.config.clone();
            config.merge_file(&file)?;
            config.merge_env(&|k| std::env::var(k).ok())?;
            let settings = config.settings()?;
            Ok(Factory {
                name: name.to_string(),
                dir,
                config,
                settings,
            })
        })();
        let Some(lg) = &self.last_good else {
            return loaded;
        };
        let Ok(mut lg) = lg.lock() else {
            return loaded;
        };
        // A factory's prefix is fixed when it is added: a file read without one was caught
        // half written (an editor truncating it first), not a new setting.
        let loaded = match (loaded, lg.factories.get(name)) {
            (Ok(f), Some(old))
                if f.settings.factory.prefix.is_none() && old.settings.factory.prefix.is_some() =>
            {
                Err(Error::usage(format!(
                    "{}: [factory] prefix is missing (the file may be half written)",
                    file.display()
                )))
            }
            (r, _) => r,
        };
        match loaded {
            Ok(f) => {
                lg.factories.insert(name.to_string(), f.clone());
                lg.errors.remove(&file);
                Ok(f)
            }
            Err(e) => match lg.factories.get(name).cloned() {
                Some(f) => {
                    lg.errors.insert(file, e.to_string());
                    Ok(f)
                }
                None => Err(e),
            },
        }
    }

    /// For a long-running loop: from now on a settings file edited into something invalid
    /// does not stop anything; the last settings that loaded stay in use, and
    /// [`Company::config_errors`] says which file is wrong and why.
    pub fn keep_last_good(&mut self) {
        if self.last_good.is_none() {
            let lg = LastGood {
                company_stamp: stamp(&self.root.join(COMPANY_CONFIG)),
                ..Default::default()
            };
            self.last_good = Some(Arc::new(Mutex::new(lg)));
        }
    }

    /// The company settings as the file says now, when it changed since the last look: `None`
    /// when unchanged; an invalid edit keeps the current settings (see `config_errors`).
    pub fn reloaded(&self) -> Option<Company> {
        let lg = self.last_good.as_ref()?;
        let file = self.root.join(COMPANY_CONFIG);
        let now = stamp(&file);
        let mut guard = lg.lock().ok()?;
        if guard.company_stamp == now {
            return None;
        }
        guard.company_stamp = now;
        match Company::open(&self.root) {
            Ok(mut c) => {
                guard.errors.remove(&file);
                // Factory settings are built on the company's: load them again on demand.
                guard.factories.clear();
                drop(guard);
                c.last_good = Some(Arc::clone(lg));
                Some(c)
            }
            Err(e) => {
                guard.errors.insert(file, e.to_string());
                None
            }
        }
    }

    /// Settings files that do not load now (their last good settings are in use), with why.
    pub fn config_errors(&self) -> Vec<String> {
        self.last_good
            .as_ref()
            .and_then(|lg| lg.lock().ok().map(|g| g.errors.values().cloned().collect()))
            .unwrap_or_default()
    }

    /// The factory whose directory holds `path`, if any.
    pub fn factory_of_path(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let first = rel
            .components()
            .next()?
            .as_os_str()
            .to_string_lossy()
            .into_owned();
        self.factory_names().into_iter().find(|n| *n == first)
    }

    /// The store that owns a work order id (company or a factory), by prefix.
    pub fn store_for_work_order(&self, id: &str) -> Result<Store> {
        let prefix = crate::ids::prefix_of(id).unwrap_or_default();
        if prefix == COMPANY_PREFIX {
            crate::trace::route(|| format!("{id}: prefix {prefix:?} is the company's store"));
            return self.store();
        }
        for f in self.factories()? {
            if f.prefix() == prefix {
                crate::trace::route(|| {
                    format!("{id}: prefix {prefix:?} is the store of factory {}", f.name)
                });
                return f.store();
            }
        }
        Err(Error::not_found(format!(
            "work order {} not found: no store in this company uses the prefix {:?}",
            crate::text::escape_control(id),
            crate::text::escape_control(prefix)
        )))
    }
}

impl Factory {
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join(".work")
    }
    pub fn git_dir(&self) -> PathBuf {
        self.dir.join(".git")
    }
    pub fn slot_dir(&self, slot: u32) -> PathBuf {
        self.dir.join("workers").join(format!("slot{slot}"))
    }
    pub fn parked_dir(&self, work_order: &str) -> PathBuf {
        self.dir.join("workers").join("parked").join(work_order)
    }
    pub fn qa_dir(&self) -> PathBuf {
        self.dir.join("qa")
    }
    /// QA's worktrees: `qa/`, and `qa-2/` for the second half when halves are gated side by
    /// side (`[qa] parallel_gates`).
    pub fn qa_lane_dir(&self, lane: usize) -> PathBuf {
        match lane {
            0 => self.qa_dir(),
            n => self.dir.join(format!("qa-{}", n + 1)),
        }
    }
    pub fn supervisor_dir(&self) -> PathBuf {
        self.dir.join("supervisor")
    }
    pub fn prefix(&self) -> &str {
        self.settings.factory.prefix.as_deref().unwrap_or("wo")
    }
    pub fn target_branch(&self) -> &str {
        &self.settings.factory.target_branch
    }
    pub fn max_slots(&self) -> u32 {
        self.settings.worker.max_slots_per_factory
    }
    pub fn store(&self) -> Result<Store> {
        Ok(Store::open(
            &self.work_dir(),
            StoreOptions {
                partition_by_day: self.settings.events.partition_by_day,
                ..Default::default()
            },
        )?)
    }
    /// `.work/.assignment-<agent>` for an agent of this factory.
    pub fn assignment_path(&self, agent: &crate::agent::AgentId) -> PathBuf {
        self.work_dir()
            .join(format!(".assignment-{}", agent.file_key()))
    }
}

/// Whether a clone source is a local path (not a URL or `user@host:path`).
pub fn is_local_source(src: &str) -> bool {
    if src.contains("://") {
        return src.starts_with("file://");
    }
    // scp-like `host:path` has a colon before any slash.
    match (src.find(':'), src.find('/')) {
        (Some(c), Some(s)) => c > s,
        (Some(_), None) => false,
        _ => true,
    }
}

/// The path a `file://` URL names (`file:///srv/repo`, `file://localhost/srv/repo`, with
/// `%20`-style escapes decoded); `None` for anything else. A URL with another host, or a path
/// that is not absolute, is an error that says what works.
pub fn file_url_path(src: &str) -> Option<Result<PathBuf>> {
    let rest = src.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return Some(Err(Error::usage(format!(
            "{}: a file:// URL takes an absolute path on this machine, e.g. file:///srv/repo",
            crate::text::escape_control(src)
        ))));
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    use std::os::unix::ffi::OsStringExt;
    Some(Ok(PathBuf::from(std::ffi::OsString::from_vec(out))))
}

/// The default prefix for a factory name: the initials of its dash-separated words when there
/// are several (`new-project` → `np`), else its first two letters (`myproject` → `my`).
pub fn default_prefix(name: &str) -> String {
    let words: Vec<&str> = name.split('-').filter(|w| !w.is_empty()).collect();
    let raw: String = if words.len() > 1 {
        words.iter().filter_map(|w| w.chars().next()).collect()
    } else {
        name.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(2)
            .collect()
    };
    let mut p: String = raw.chars().take(10).collect();
    if !p.starts_with(|c: char| c.is_ascii_lowercase()) {
        p.insert(0, 'f');
    }
    p
}

/// What `co factory add` asks for.
#[derive(Debug, Clone)]
pub struct AddFactory {
    pub name: String,
    pub source: String,
    pub prefix: Option<String>,
    pub branch: Option<String>,
}

/// How git's clone shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CloneProgress {
    /// Quietly (git's messages are kept for the error, if it fails).
    #[default]
    Quiet,
    /// git writes its progress straight to this process's stderr (a terminal).
    Stderr,
}

/// What `co factory add` reports while it works.
#[derive(Debug)]
pub enum AddStep<'a> {
    /// The clone starts: from where (a URL, or the absolute path of a local repository), into
    /// which factory.
    Cloning { source: &'a str, factory: &'a str },
    /// The clone is done.
    Cloned { elapsed: std::time::Duration },
}

impl Company {
    /// `co factory add`: clone into a temporary directory, lay it out, then rename it into
    /// place; any failure removes the temporary directory, so nothing is left behind.
    pub fn add_factory(&self, req: &AddFactory, actor: &str) -> Result<Factory> {
        self.add_factory_with(req, actor, CloneProgress::Quiet, &mut |_| {})
    }

    /// [`Company::add_factory`], telling `on_step` when the clone starts and ends, with git's
    /// own progress shown as `progress` says.
    pub fn add_factory_with(
        &self,
        req: &AddFactory,
        actor: &str,
        progress: CloneProgress,
        on_step: &mut dyn FnMut(AddStep<'_>),
    ) -> Result<Factory> {
        if !is_valid_name(&req.name) {
            return Err(Error::usage(format!(
                "factory name {:?} is not valid: use lowercase letters, digits and '-' (e.g. myproject)",
                crate::text::escape_control(&req.name)
            )));
        }
        if RESERVED.contains(&req.name.as_str()) {
            return Err(Error::usage(format!(
                "{:?} is reserved at the company root; choose another factory name",
                req.name
            )));
        }
        let dest = self.root.join(&req.name);
        if dest.exists() {
            return Err(Error::conflict(if dest.join(".work").is_dir() {
                format!("factory {} already exists", req.name)
            } else {
                format!(
                    "{} already exists and is not a factory; move it away or choose another name",
                    dest.display()
                )
            }));
        }
        let prefix = req
            .prefix
            .clone()
            .unwrap_or_else(|| default_prefix(&req.name));
        if !crate::ids::is_valid_prefix(&prefix) {
            return Err(Error::usage(format!(
                "prefix {prefix:?} is not valid: a lowercase letter then up to 9 lowercase letters or digits"
            )));
        }
        if prefix == COMPANY_PREFIX {
            return Err(Error::conflict(format!(
                "prefix {prefix:?} is the company's own; choose another with --prefix"
            )));
        }
        for f in self.factories()? {
            if f.prefix() == prefix {
                return Err(Error::conflict(format!(
                    "prefix {prefix:?} is already used by factory {}; choose another with --prefix",
                    f.name
                )));
            }
        }
        if let Some(b) = &req.branch
            && !crate::config::is_valid_branch(b)
        {
            return Err(Error::usage(format!("{b:?} is not a valid branch name")));
        }
        // A local path (or file:// URL) is cloned by absolute path, so origin stays valid.
        let local = is_local_source(&req.source);
        let source = if local {
            let p = match file_url_path(&req.source) {
                Some(p) => p?,
                None => PathBuf::from(&req.source),
            };
            p.canonicalize()
                .map_err(|e| {
                    let shown = crate::text::escape_control(&req.source);
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Error::not_found(format!(
                            "cannot clone {shown}: {} does not exist",
                            crate::text::escape_control(&p.display().to_string())
                        ))
                    } else {
                        Error::failure(format!("cannot clone {shown}: {e}"))
                    }
                })?
                .display()
                .to_string()
        } else {
            req.source.clone()
        };
        let tmp = self
            .root
            .join(format!(".adding-{}-{}", req.name, std::process::id()));
        let result = self.build_factory(&tmp, &source, req, &prefix, !local, progress, on_step);
        let branch = match result {
            Ok(b) => b,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        // The factory appears whole, its QA worktree in place: a running operations may start
        // its QA the moment it sees the directory.
        let made = (|| -> Result<()> {
            let _ = std::fs::remove_dir(tmp.join("qa"));
            crate::effects::git::worktree_add_detached(
                &tmp.join(".git"),
                &tmp.join("qa"),
                &branch,
            )?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&tmp, &dest) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(io(&dest, e));
        }
        let factory = self.factory(&req.name)?;
        // Moving the directory moved the QA worktree too: point git at where it is now.
        let qa = factory.qa_dir().display().to_string();
        if let Err(e) =
            crate::effects::git::run(&factory.git_dir(), &["worktree", "repair", "--", &qa])
        {
            let _ = std::fs::remove_dir_all(&dest);
            return Err(e.into());
        }
        let ev = NewEvent::new(
            types::FACTORY_ADDED,
            actor,
            &FactoryAdded {
                name: req.name.clone(),
                url: source,
                prefix,
                target_branch: branch,
                push: !local,
            },
        )
        .map_err(StoreError::from)?;
        self.store()?.append(vec![ev])?;
        Ok(factory)
    }

    #[allow(clippy::too_many_arguments)]
    fn build_factory(
        &self,
        tmp: &Path,
        source: &str,
        req: &AddFactory,
        prefix: &str,
        push: bool,
        progress: CloneProgress,
        on_step: &mut dyn FnMut(AddStep<'_>),
    ) -> Result<String> {
        std::fs::create_dir(tmp).map_err(|e| io(tmp, e))?;
        let git_dir = tmp.join(".git");
        on_step(AddStep::Cloning {
            source,
            factory: &req.name,
        });
        let started = std::time::Instant::now();
        clone_bare(source, &git_dir, progress).map_err(|e| {
            Error::failure(format!(
                "cannot clone {}: {e}",
                crate::text::escape_control(&req.source)
            ))
        })?;
        on_step(AddStep::Cloned {
            elapsed: started.elapsed(),
        });
        let branch = match &req.branch {
            Some(b) => b.clone(),
            None => {
                crate::effects::git::head_branch(&git_dir).unwrap_or_else(|| "main".to_string())
            }
        };
        if crate::effects::git::rev_parse(&git_dir, &format!("refs/heads/{branch}")).is_none() {
            let branches =
                crate::effects::git::run(&git_dir, &["branch", "--format=%(refname:short)"])
                    .unwrap_or_default()
                    .lines()
                    .collect::<Vec<_>>()
                    .join(", ");
            return Err(Error::not_found(format!(
                "branch {branch:?} not found in {} (branches: {}); pass --branch, or push an initial commit first",
                req.source,
                if branches.is_empty() {
                    "none: the repository is empty".to_string()
                } else {
                    branches
                }
            )));
        }
        crate::effects::git::add_exclude(&git_dir, "/.vermas/").map_err(|e| io(&git_dir, e))?;
        for d in ["workers", "qa", "supervisor", "teams"] {
            let p = tmp.join(d);
            std::fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
        }
        let work = tmp.join(".work");
        Store::init(&work, self.store_options())?;
        let text = crate::templates::FACTORY_CONFIG
            .replace("{name}", &req.name)
            .replace("{prefix}", prefix)
            .replace("{branch}", &branch)
            .replace("{push}", if push { "true" } else { "false" });
        let cfg = work.join("config.toml");
        fsutil::atomic_write(&cfg, text.as_bytes()).map_err(|e| io(&cfg, e))?;
        Ok(branch)
    }
}

/// `git clone --bare` into `dest`, quietly or with git's progress on our stderr.
fn clone_bare(source: &str, dest: &Path, progress: CloneProgress) -> Result<(), String> {
    use crate::effects::git;
    match progress {
        CloneProgress::Quiet => git::clone_bare(source, dest).map_err(|e| e.to_string()),
        CloneProgress::Stderr => {
            let parent = dest.parent().unwrap_or(Path::new("."));
            let mut c = git::command(parent);
            c.args([
                "-c",
                "core.hooksPath=/dev/null",
                "clone",
                "--bare",
                "--progress",
            ])
            .arg("--")
            .arg(source)
            .arg(dest);
            crate::trace::running(&c);
            let status = c
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .status()
                .map_err(|e| format!("cannot run git: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("git clone failed ({status}; its message is above)"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_and_prefixes() {
        assert!(is_local_source("/srv/repo"));
        assert!(is_local_source("../repo"));
        assert!(is_local_source("file:///srv/repo"));
        assert!(!is_local_source("git@github.com:org/repo.git"));
        assert!(!is_local_source("https://github.com/org/repo"));
        assert!(is_local_source("./we:ird"));
        assert_eq!(default_prefix("myproject"), "my");
        assert_eq!(default_prefix("new-project"), "np");
        assert_eq!(default_prefix("9lives"), "f9l");
        let path = |u: &str| file_url_path(u).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(
            path("file:///srv/repo"),
            Some(Ok(PathBuf::from("/srv/repo")))
        );
        assert_eq!(
            path("file://localhost/srv/my%20repo"),
            Some(Ok(PathBuf::from("/srv/my repo")))
        );
        assert_eq!(path("file:///a%zzb"), Some(Ok(PathBuf::from("/a%zzb"))));
        assert!(path("file://server/srv/repo").is_some_and(|r| r.is_err()));
        assert_eq!(path("/srv/repo"), None);
        assert_eq!(path("https://example.com/r"), None);
        for n in ["myproject", "a-b-c", "x", "42"] {
            assert!(crate::ids::is_valid_prefix(&default_prefix(n)), "{n}");
        }
    }
}
