//! What `co` commands share: the company, who is acting, printing helpers.

use std::path::PathBuf;
use vermas_core::agent::AgentId;
use vermas_core::company::{Company, Factory};
use vermas_core::{Error, Result};

pub fn cwd() -> Result<PathBuf> {
    std::env::current_dir()
        .map_err(|e| Error::failure(format!("cannot read the current directory: {e}")))
}

/// The company, with config warnings shown once.
pub fn company() -> Result<Company> {
    let c = Company::locate(&cwd()?)?;
    for w in &c.config.warnings {
        vermas_cli::color::eprint_warning(w);
    }
    Ok(c)
}

/// Who is acting: `$AGENT_ID`, or `human`.
pub fn actor() -> String {
    std::env::var("AGENT_ID")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "human".to_string())
}

/// The mailbox of this process: `$AGENT_ID`, or `ceo` for a person.
pub fn me() -> Result<AgentId> {
    match std::env::var("AGENT_ID").ok().filter(|v| !v.is_empty()) {
        Some(id) => AgentId::parse(&id),
        None => Ok(AgentId::Ceo),
    }
}

/// The factory a command means when none is named: `$CO_FACTORY`, or the one the current
/// directory is in.
pub fn default_factory(company: &Company) -> Result<Option<String>> {
    if let Some(f) = std::env::var("CO_FACTORY").ok().filter(|v| !v.is_empty()) {
        return Ok(Some(f));
    }
    Ok(company.factory_of_path(&cwd()?.canonicalize().unwrap_or(cwd()?)))
}

/// Factories named, or the default one, or all.
pub fn factories(company: &Company, name: Option<&str>, all: bool) -> Result<Vec<Factory>> {
    match name {
        Some(n) => Ok(vec![company.factory(n)?]),
        None if all => company.factories(),
        None => match default_factory(company)? {
            Some(n) => Ok(vec![company.factory(&n)?]),
            None => company.factories(),
        },
    }
}

pub fn json(v: &impl serde::Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| Error::failure(format!("cannot serialise output: {e}")))?;
    println!("{s}");
    Ok(())
}

pub fn esc(s: &str) -> String {
    vermas_core::text::escape_control(s)
}
