//! Finding the store a command works on, and what it is: a company's store, a factory's store,
//! or a standalone one made by `wo init`.
//!
//! Order: `--work-dir DIR`, else `COMPANY_ROOT` + `CO_FACTORY`, else the nearest `.work/`
//! walking up from the current directory, else `$COMPANY_ROOT/.work`.

use crate::config::{Config, Source, Value};
use crate::error::{Error, Result};
use crate::store::{Store, StoreError, StoreOptions};
use std::path::{Path, PathBuf};

/// The company config file, relative to the company root.
pub const COMPANY_CONFIG: &str = ".vermas/config.toml";
/// The work order prefix of a company-level store.
pub const COMPANY_PREFIX: &str = "hq";
/// The prefix of a standalone store when none is configured.
pub const DEFAULT_PREFIX: &str = "wo";

/// What kind of store it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Company,
    Factory(String),
    Standalone,
}

/// A located store with its effective configuration.
#[derive(Debug)]
pub struct StoreContext {
    pub store: Store,
    pub company_root: Option<PathBuf>,
    pub config: Config,
    /// Prefix for new work order ids.
    pub prefix: String,
    /// Who is acting: `AGENT_ID`, or `human` for a person at a shell.
    pub actor: String,
}

/// Environment values this module reads, injectable for tests.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub company_root: Option<PathBuf>,
    pub factory: Option<String>,
    pub agent_id: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            company_root: get("COMPANY_ROOT").map(PathBuf::from),
            factory: get("CO_FACTORY"),
            agent_id: get("AGENT_ID"),
        }
    }
}

/// Whether `dir` is a company root (holds `.vermas/config.toml`).
pub fn is_company_root(dir: &Path) -> bool {
    dir.join(COMPANY_CONFIG).is_file()
}

/// The nearest directory at or above `start` that holds a `.work` directory.
pub fn find_work_dir(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(".work"))
        .find(|w| w.is_dir())
}

/// Resolves which store to use; does not open it. With `DEBUG_ROUTING=1`, says which rule
/// decided.
pub fn resolve_work_dir(flag: Option<&Path>, cwd: &Path, env: &Env) -> Result<PathBuf> {
    let found = resolve(flag, cwd, env);
    if let Ok((w, why)) = &found {
        crate::trace::route(|| format!("store {} ({why})", w.display()));
    }
    found.map(|(w, _)| w)
}

fn resolve(flag: Option<&Path>, cwd: &Path, env: &Env) -> Result<(PathBuf, &'static str)> {
    if let Some(dir) = flag {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            cwd.join(dir)
        };
        if dir.join(".work").is_dir() {
            return Ok((dir.join(".work"), "--work-dir"));
        }
        if dir.is_dir() {
            return Ok((dir, "--work-dir"));
        }
        return Err(Error::failure(format!(
            "--work-dir {}: no such directory; run `wo init` there first",
            dir.display()
        )));
    }
    if let (Some(root), Some(f)) = (&env.company_root, &env.factory) {
        let w = root.join(f).join(".work");
        if w.is_dir() {
            return Ok((w, "COMPANY_ROOT and CO_FACTORY"));
        }
        return Err(Error::failure(format!(
            "COMPANY_ROOT={} with CO_FACTORY={f}: {} does not exist (is the factory added? try `co factory list`)",
            root.display(),
            w.display()
        )));
    }
    if let Some(w) = find_work_dir(cwd) {
        return Ok((w, "the nearest .work at or above the current directory"));
    }
    if let Some(root) = &env.company_root {
        let w = root.join(".work");
        if w.is_dir() {
            return Ok((w, "COMPANY_ROOT"));
        }
    }
    Err(StoreError::NotFound(cwd.to_path_buf()).into())
}

/// What a `.work` directory belongs to: its company root (if any) and its kind.
pub fn classify(work_dir: &Path) -> (StoreKind, Option<PathBuf>) {
    let owner = work_dir.parent().unwrap_or(work_dir);
    if is_company_root(owner) {
        return (StoreKind::Company, Some(owner.to_path_buf()));
    }
    if let Some(root) = owner.parent()
        && is_company_root(root)
        && let Some(name) = owner.file_name()
    {
        return (
            StoreKind::Factory(name.to_string_lossy().into_owned()),
            Some(root.to_path_buf()),
        );
    }
    (StoreKind::Standalone, None)
}

/// Loads the configuration layers for a store: the company file (if in a company), the
/// store's own `config.toml`, then the environment.
pub fn config_for(work_dir: &Path, company_root: Option<&Path>) -> Result<Config> {
    let mut files = Vec::new();
    if let Some(root) = company_root {
        files.push(root.join(COMPANY_CONFIG));
    }
    files.push(work_dir.join("config.toml"));
    Ok(Config::load(&files)?)
}

/// Opens the store a command should use, with its config, prefix and actor.
pub fn open(flag: Option<&Path>, cwd: &Path, env: &Env) -> Result<StoreContext> {
    let work_dir = resolve_work_dir(flag, cwd, env)?;
    open_at(&work_dir, env)
}

/// Opens a known `.work` directory.
pub fn open_at(work_dir: &Path, env: &Env) -> Result<StoreContext> {
    let (kind, company_root) = classify(work_dir);
    let mut config = config_for(work_dir, company_root.as_deref())?;
    let settings = config.settings()?;
    let configured = settings.factory.prefix.clone();
    let prefix = match &kind {
        StoreKind::Company => COMPANY_PREFIX.to_string(),
        _ => configured
            .clone()
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string()),
    };
    if configured.is_none() || kind == StoreKind::Company {
        config.set(
            "factory.prefix",
            Value::Str(prefix.clone()),
            Source::Default,
        );
    }
    let store = Store::open(
        work_dir,
        StoreOptions {
            partition_by_day: settings.events.partition_by_day,
            ..Default::default()
        },
    )?;
    Ok(StoreContext {
        store,
        company_root,
        config,
        prefix,
        actor: env.agent_id.clone().unwrap_or_else(|| "human".to_string()),
    })
}

/// `wo init`: a standalone `.work/` in `dir` with a small config. Safe to run twice.
pub fn init_standalone(dir: &Path, prefix: &str) -> Result<(PathBuf, bool)> {
    if !crate::ids::is_valid_prefix(prefix) {
        return Err(Error::usage(format!(
            "prefix {prefix:?} is not valid: a lowercase letter then up to 9 lowercase letters or digits"
        )));
    }
    let work = dir.join(".work");
    let existed = work.is_dir();
    let store = Store::init(&work, StoreOptions::default())?;
    let cfg = store.dir().join("config.toml");
    if !cfg.exists() {
        let text = format!(
            "# Work order store settings (wo init). See docs/CLI.md.\n\n[factory]\n# Prefix of new work order ids: {prefix}-k3x9q2\nprefix = \"{prefix}\"\n\n[events]\n# One event file per UTC day under .work/events/ (false: one .work/events.jsonl)\npartition_by_day = true\n"
        );
        crate::fsutil::atomic_write(&cfg, text.as_bytes()).map_err(|e| StoreError::io(&cfg, e))?;
    }
    Ok((store.dir().to_path_buf(), !existed))
}

/// The factories of a company: `(name, .work dir)` for each directory under the root that
/// holds a `.work/`, sorted by name.
pub fn factory_stores(root: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !crate::config::is_valid_name(&name) {
                continue;
            }
            let w = e.path().join(".work");
            if w.is_dir() {
                out.push((name, w));
            }
        }
    }
    out.sort();
    out
}

/// The store that owns work order ids with this prefix, within a company.
pub fn store_for_prefix(root: &Path, prefix: &str) -> Option<PathBuf> {
    if prefix == COMPANY_PREFIX {
        return Some(root.join(".work"));
    }
    for (_, w) in factory_stores(root) {
        if let Ok(s) = config_for(&w, Some(root)).and_then(|c| Ok(c.settings()?))
            && s.factory.prefix.as_deref() == Some(prefix)
        {
            return Some(w);
        }
    }
    None
}

impl StoreContext {
    /// The store that owns `id`: this one, or (inside a company) the one whose prefix the id
    /// carries. Unknown prefixes stay here, so the lookup reports "not found" with the id.
    pub fn for_id(self, id: &str) -> Result<StoreContext> {
        let Some(prefix) = crate::ids::prefix_of(id) else {
            crate::trace::route(|| format!("{id}: no prefix; looking in this store"));
            return Ok(self);
        };
        if prefix == self.prefix {
            crate::trace::route(|| format!("{id}: prefix {prefix:?} is this store's"));
            return Ok(self);
        }
        let Some(root) = self.company_root.clone() else {
            return Ok(self);
        };
        let found = store_for_prefix(&root, prefix);
        crate::trace::route(|| match &found {
            Some(w) => format!("{id}: prefix {prefix:?} is the store {}", w.display()),
            None => format!(
                "{id}: no store of {} uses the prefix {prefix:?}; looking in {}",
                root.display(),
                self.store.dir().display()
            ),
        });
        match found {
            Some(w) if w != self.store.dir() => {
                let env = Env {
                    company_root: Some(root),
                    factory: None,
                    agent_id: Some(self.actor.clone()),
                };
                let mut c = open_at(&w, &env)?;
                c.actor = self.actor;
                Ok(c)
            }
            _ => Ok(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_order() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join(".vermas")).unwrap();
        std::fs::write(root.join(COMPANY_CONFIG), "").unwrap();
        std::fs::create_dir_all(root.join(".work")).unwrap();
        std::fs::create_dir_all(root.join("mp/.work")).unwrap();
        std::fs::create_dir_all(root.join("mp/workers/slot0/src")).unwrap();
        let none = Env::default();
        // Walking up from inside a worktree finds the factory store.
        let w = resolve_work_dir(None, &root.join("mp/workers/slot0/src"), &none).unwrap();
        assert_eq!(w, root.join("mp/.work"));
        assert_eq!(classify(&w).0, StoreKind::Factory("mp".into()));
        assert_eq!(classify(&root.join(".work")).0, StoreKind::Company);
        // COMPANY_ROOT + CO_FACTORY wins over the current directory.
        let env = Env {
            company_root: Some(root.clone()),
            factory: Some("mp".into()),
            agent_id: None,
        };
        assert_eq!(
            resolve_work_dir(None, Path::new("/"), &env).unwrap(),
            root.join("mp/.work")
        );
        // --work-dir wins over everything.
        assert_eq!(
            resolve_work_dir(Some(&root), Path::new("/"), &env).unwrap(),
            root.join(".work")
        );
        // Nothing found: the message says what to do.
        let e = resolve_work_dir(None, Path::new("/"), &none).unwrap_err();
        assert!(e.to_string().contains("wo init"), "{e}");
    }
}
