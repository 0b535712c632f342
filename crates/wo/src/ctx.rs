//! What every command needs: the located store, its config, and the warnings to show once; and
//! for the reads that can cover a whole company (`wo list`, `wo stats`, `wo events`), the
//! stores they cover.

use std::path::PathBuf;
use vermas_core::context::{self, Env, StoreContext, StoreKind};
use vermas_core::store::{Issue, Loaded};
use vermas_core::workorder::{Lookup, WorkOrders};
use vermas_core::{Error, Result};

/// Flags that apply to every subcommand.
pub struct Global {
    pub work_dir: Option<PathBuf>,
}

impl Global {
    /// Locates and opens the store; prints config warnings to stderr.
    pub fn open(&self) -> Result<StoreContext> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::failure(format!("cannot read the current directory: {e}")))?;
        let c = context::open(self.work_dir.as_deref(), &cwd, &Env::from_process())?;
        for w in &c.config.warnings {
            vermas_cli::color::eprint_warning(w);
        }
        Ok(c)
    }
}

/// One store of a view and the factory it belongs to (`None`: the company's own store, or a
/// store outside any company).
pub struct Part {
    pub factory: Option<String>,
    pub ctx: StoreContext,
}

impl Part {
    /// How the FACTORY column names this store.
    pub fn label(&self) -> &str {
        self.factory.as_deref().unwrap_or(COMPANY_LABEL)
    }
}

/// The FACTORY column's name for the company's own store (no factory name has parentheses).
pub const COMPANY_LABEL: &str = "(company)";

/// The stores a read covers.
pub struct View {
    pub parts: Vec<Part>,
    /// Several stores of a company: output says which store each line comes from.
    pub across: bool,
}

impl Global {
    /// The stores a read covers. At a company's root (the store found is the company's own,
    /// without `--work-dir`): the company's store and every factory's, in name order. With
    /// `--factory F`: that factory's store. Anywhere else: the one store `open` finds, as
    /// before.
    pub fn view(&self, factory: Option<&str>) -> Result<View> {
        let c = self.open()?;
        let env = Env::from_process();
        let Some(root) = c.company_root.clone() else {
            if let Some(f) = factory {
                return Err(Error::usage(format!(
                    "--factory {}: {} is not in a company, so it has no factories",
                    vermas_core::text::escape_control(f),
                    c.store.dir().display()
                )));
            }
            return Ok(View {
                parts: vec![Part {
                    factory: None,
                    ctx: c,
                }],
                across: false,
            });
        };
        let kind = context::classify(c.store.dir()).0;
        if factory.is_none() && (self.work_dir.is_some() || kind != StoreKind::Company) {
            let factory = match kind {
                StoreKind::Factory(n) => Some(n),
                _ => None,
            };
            return Ok(View {
                parts: vec![Part { factory, ctx: c }],
                across: false,
            });
        }
        let factories: Vec<(String, PathBuf)> = context::factory_stores(&root)
            .into_iter()
            .filter(|(n, _)| !vermas_core::company::RESERVED.contains(&n.as_str()))
            .collect();
        if let Some(f) = factory {
            let Some((name, dir)) = factories.iter().find(|(n, _)| n == f) else {
                let known: Vec<&str> = factories.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Error::not_found(format!(
                    "--factory {}: no such factory (factories: {})",
                    vermas_core::text::escape_control(f),
                    if known.is_empty() {
                        "none yet".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            let mut ctx = context::open_at(dir, &env)?;
            ctx.actor = c.actor;
            return Ok(View {
                parts: vec![Part {
                    factory: Some(name.clone()),
                    ctx,
                }],
                across: false,
            });
        }
        let mut parts = vec![Part {
            factory: None,
            ctx: c,
        }];
        for (name, dir) in factories {
            parts.push(Part {
                factory: Some(name),
                ctx: context::open_at(&dir, &env)?,
            });
        }
        Ok(View {
            parts,
            across: true,
        })
    }
}

/// Opens the store that owns `id` (inside a company ids route by prefix).
pub fn open_for(g: &Global, id: &str) -> Result<StoreContext> {
    g.open()?.for_id(id)
}

/// Tells the user (once, on stderr) that the log has damaged or repeated lines.
pub fn warn_issues(issues: &[Issue]) {
    if let Some(first) = issues.first() {
        let more = if issues.len() > 1 {
            format!(" and {} more", issues.len() - 1)
        } else {
            String::new()
        };
        vermas_cli::color::eprint_warning(&format!(
            "the event log has problems (damaged or repeated lines): {}{more}; run `wo doctor`",
            vermas_core::text::escape_control(&first.to_string())
        ));
    }
}

/// The work order projection, up to date, with warnings shown.
pub fn work_orders(c: &StoreContext) -> Result<Loaded<WorkOrders>> {
    let l = c.store.load::<WorkOrders>()?;
    warn_issues(&l.issues);
    Ok(l)
}

/// The work orders for a command that reads a few of them (the index), with warnings shown.
pub fn lookup(c: &StoreContext) -> Result<Lookup> {
    let l = Lookup::open(&c.store)?;
    warn_issues(l.issues());
    Ok(l)
}
