//! `co doctor`: is this company healthy? tmux and git versions, runtimes on PATH, config
//! validity, every store's integrity, orphaned assignments, stale worktrees, dead workers and
//! sessions without an assignment. `--fix` does only the safe repairs.

use crate::agent::AgentId;
use crate::assignment::Assignment;
use crate::company::Company;
use crate::error::Result;
use crate::health::{Finding, check_store};
use crate::slots::Slots;
use crate::workorder::WorkOrders;
use serde::Serialize;

/// The report.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub ok: bool,
    pub problems: Vec<Finding>,
    pub notes: Vec<Finding>,
    /// What `--fix` repaired.
    pub fixed: Vec<String>,
}

fn finding(problem: impl Into<String>) -> Finding {
    Finding {
        file: None,
        line: None,
        problem: problem.into(),
    }
}

/// Runs every check; with `fix`, applies the safe repairs first and reports what is left.
pub fn run(company: &Company, fix: bool) -> Result<Report> {
    let mut r = Report::default();
    if fix {
        r.fixed = repair(company)?;
    }
    let tmux = company.tmux();
    match tmux.check_version() {
        Ok(v) => r
            .notes
            .push(finding(format!("{v} (3.2 or newer needed): ok"))),
        Err(e) => r.problems.push(finding(e.to_string())),
    }
    match crate::effects::git::version() {
        Ok(((maj, min), text)) if (maj, min) >= (2, 20) => r
            .notes
            .push(finding(format!("{text} (2.20 or newer needed): ok"))),
        Ok((_, text)) => r.problems.push(finding(format!(
            "{text} is too old: VerMAS needs git 2.20 or newer"
        ))),
        Err(e) => r.problems.push(finding(e.to_string())),
    }
    for w in &company.config.warnings {
        r.notes.push(finding(w.clone()));
    }
    let sessions = tmux.sessions().unwrap_or_default();
    runtime_findings(company, &mut r);
    leftover_findings(company, &mut r, fix);
    let store = company.store()?;
    store_findings(&mut r, &store, ".work")?;
    for name in company.factory_names() {
        let f = match company.factory(&name) {
            Ok(f) => f,
            Err(e) => {
                r.problems.push(finding(format!("factory {name}: {e}")));
                continue;
            }
        };
        for w in &f.config.warnings {
            if !company.config.warnings.contains(w) {
                r.notes.push(finding(w.clone()));
            }
        }
        let (gname, gemail) =
            crate::actions::launch::git_identity(&AgentId::worker(&name, 0), &f.settings);
        r.notes.push(finding(format!(
            "factory {name}: agents commit as {gname} <{gemail}>, QA merges as VerMAS QA <qa@{name}.vermas>"
        )));
        let fstore = f.store()?;
        store_findings(&mut r, &fstore, &format!("{name}/.work"))?;
        let slots = fstore.load::<Slots>()?.state;
        // Assignment files that disagree with the log.
        for (path, a) in assignment_files(&f.work_dir()) {
            if let Some(why) = orphaned(company, &slots, &a) {
                r.problems.push(Finding {
                    file: Some(path.display().to_string()),
                    line: None,
                    problem: format!(
                        "orphaned assignment: {} → {} but {why} (fix: co doctor --fix, or remove the file)",
                        a.agent, a.work_order
                    ),
                });
            }
        }
        // Worktrees.
        if let Ok(wts) = crate::effects::git::worktrees(&f.git_dir()) {
            for w in &wts {
                if w.prunable {
                    r.problems.push(finding(format!(
                        "factory {name}: stale worktree {} (its directory is gone; fix: git -C {} worktree prune, or co doctor --fix)",
                        w.path.display(),
                        f.dir.display()
                    )));
                }
            }
            let workers_dir = f.dir.join("workers");
            for w in wts
                .iter()
                .filter(|w| !w.prunable && w.path.starts_with(&workers_dir))
            {
                let held = slots
                    .all()
                    .any(|s| std::path::Path::new(&s.worktree) == w.path);
                let parked = w.path.starts_with(workers_dir.join("parked"));
                if parked {
                    r.notes.push(finding(format!(
                        "factory {name}: parked worktree {} keeps unmerged work of a killed worker; it returns on the next dispatch of that work order",
                        w.path.display()
                    )));
                } else if !held {
                    r.problems.push(finding(format!(
                        "factory {name}: worktree {} ({}) belongs to no worker (fix: git -C {} worktree remove {} once its work is merged or saved)",
                        w.path.display(),
                        w.branch.as_deref().unwrap_or("detached"),
                        f.dir.display(),
                        w.path.display()
                    )));
                }
            }
        }
        // Workers whose session is gone, and sessions nobody assigned.
        for s in slots.all() {
            let agent = AgentId::worker(&name, s.slot);
            let alive = sessions.iter().any(|x| {
                x.name == agent.session() && !x.pane_dead && x.incarnation == s.incarnation
            });
            if !alive {
                r.problems.push(finding(format!(
                    "factory {name}: {agent} holds {} but its session is gone (fix: co worker spawn {name} {}, or co worker kill {name} {})",
                    s.work_order, s.slot, s.slot
                )));
            }
        }
        for x in sessions
            .iter()
            .filter(|x| x.company == company.tag() && x.role == "worker")
        {
            if let Ok(AgentId::Worker { factory, slot }) = AgentId::parse(&x.agent)
                && factory == name
                && slots
                    .get(slot)
                    .is_none_or(|s| s.incarnation != x.incarnation)
            {
                r.problems.push(finding(format!(
                    "factory {name}: session {} runs without an assignment (kill it with tmux kill-session -t {} if it is not doing anything useful)",
                    x.name, x.name
                )));
            }
        }
    }
    r.ok = r.problems.is_empty();
    Ok(r)
}

/// Each runtime the company's roles use, once: installed, its version, and the state of the
/// user's own CLI (first run done, key approved, logged in).
fn runtime_findings(company: &Company, r: &mut Report) {
    use crate::runtime::check::{Found, UserState, check, version};
    let user = UserState::of_this_process();
    let mut seen = std::collections::BTreeSet::new();
    let mut uses = vec![(company.settings.clone(), "ceo".to_string(), None)];
    for name in company.factory_names() {
        if let Ok(f) = company.factory(&name) {
            for role in ["worker", "supervisor", "qa"] {
                uses.push((f.settings.clone(), role.to_string(), Some(name.clone())));
            }
        }
    }
    for (settings, role, factory) in uses {
        let name = settings.roles.of(&role).to_string();
        if name == crate::runtime::BUILTIN || !seen.insert(name.clone()) {
            continue;
        }
        let rt = match crate::runtime::resolve(&settings, &name, &role) {
            Ok(rt) => rt,
            Err(e) => {
                let wherefrom = factory
                    .map(|f| format!("factory {f}: "))
                    .unwrap_or_default();
                let f = finding(format!("{wherefrom}{e}"));
                if role == "ceo" {
                    r.notes.push(f);
                } else {
                    r.problems.push(f);
                }
                continue;
            }
        };
        for found in check(&rt, &user, version(&rt).as_deref(), &company.root) {
            match found {
                Found::Note(n) => r.notes.push(finding(n)),
                // The CEO's runtime only matters to `co ceo`.
                Found::Problem(p) if role == "ceo" => r.notes.push(finding(format!("co ceo: {p}"))),
                Found::Problem(p) => r.problems.push(finding(p)),
            }
        }
    }
}

/// Processes that outlived their agent (daemons some CLIs start in sessions of their own):
/// a worker's incarnation that no slot holds any more. `--fix` ends them.
fn leftover_findings(company: &Company, r: &mut Report, fix: bool) {
    let root = company.root.display().to_string();
    let pids = crate::effects::process::with_env(&[("COMPANY_ROOT", &root), ("CO_ROLE", "worker")]);
    if pids.is_empty() {
        return;
    }
    let mut current = std::collections::BTreeSet::new();
    for f in company.factories().unwrap_or_default() {
        if let Ok(s) = f.store().and_then(|s| Ok(s.load::<Slots>()?.state)) {
            current.extend(s.all().map(|s| s.incarnation.clone()));
        }
    }
    let left: Vec<u32> = pids
        .into_iter()
        .filter(|p| {
            crate::effects::process::env_value(*p, "VERMAS_INCARNATION")
                .is_some_and(|i| !current.contains(&i))
        })
        .collect();
    if left.is_empty() {
        return;
    }
    let list = left
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if fix {
        crate::effects::process::end(&left, std::time::Duration::from_secs(2));
        r.fixed.push(format!(
            "ended {} process(es) left by agents that ended: {list}",
            left.len()
        ));
    } else {
        r.problems.push(finding(format!(
            "{} process(es) left by agents that ended: {list} (fix: co doctor --fix)",
            left.len()
        )));
    }
}

fn store_findings(r: &mut Report, store: &crate::store::Store, label: &str) -> Result<()> {
    let h = check_store(store)?;
    for p in h.problems {
        let mut p = p;
        if p.file.is_none() {
            p.problem = format!("{label}: {}", p.problem);
        } else if let Some(f) = &p.file {
            p.file = Some(f.replacen(".work", label, 1));
        }
        r.problems.push(p);
    }
    Ok(())
}

fn assignment_files(
    work: &std::path::Path,
) -> Vec<(std::path::PathBuf, crate::assignment::Assignment)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(work) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".assignment-")
                && let Ok(Some(a)) = crate::assignment::read(&e.path())
            {
                out.push((e.path(), a));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Why an assignment file is orphaned, if it is: the work order is done or gone, or no slot
/// holds it for that agent. The check and `--fix` use this one rule.
fn orphaned(company: &Company, slots: &Slots, a: &Assignment) -> Option<&'static str> {
    let done = company
        .store_for_work_order(&a.work_order)
        .ok()
        .and_then(|s| s.load::<WorkOrders>().ok())
        .and_then(|l| l.state.get(&a.work_order))
        .is_none_or(|w| w.status.is_done());
    if done {
        Some("the work order is done or gone")
    } else if slots
        .by_agent(&a.agent)
        .is_none_or(|s| s.work_order != a.work_order)
    {
        Some("no slot holds it")
    } else {
        None
    }
}

/// The safe repairs: assignment files no slot holds (or for finished work), `git worktree
/// prune`, and projections that do not match their log. Nothing that holds work is touched.
fn repair(company: &Company) -> Result<Vec<String>> {
    let mut fixed = Vec::new();
    let mut stores = vec![(".work".to_string(), company.store()?)];
    for f in company.factories()? {
        let fstore = f.store()?;
        let slots = fstore.load::<Slots>()?.state;
        for (path, a) in assignment_files(&f.work_dir()) {
            if orphaned(company, &slots, &a).is_some() && std::fs::remove_file(&path).is_ok() {
                fixed.push(format!("removed orphaned assignment {}", path.display()));
            }
        }
        let before = crate::effects::git::worktrees(&f.git_dir())
            .map(|w| w.iter().filter(|w| w.prunable).count())
            .unwrap_or(0);
        if before > 0 && crate::effects::git::worktree_prune(&f.git_dir()).is_ok() {
            fixed.push(format!("pruned {before} stale worktree(s) in {}", f.name));
        }
        stores.push((format!("{}/.work", f.name), fstore));
    }
    for (label, s) in stores {
        fixed.extend(
            crate::health::rebuild_mismatched(&s)?
                .into_iter()
                .map(|p| format!("rebuilt {label}/{p}")),
        );
    }
    Ok(fixed)
}
