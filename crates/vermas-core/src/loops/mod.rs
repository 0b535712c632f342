//! The long-running loops: the operations watchdog, a supervisor and a QA merge queue per
//! factory. Each patrol observes the world into a snapshot, asks [`crate::control`] what to do,
//! and carries the actions out in the order given.

pub mod daemon;
pub mod operations;
pub mod qa;
pub mod supervisor;

/// A loop that runs now, and whether it uses the settings the files say.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunningLoop {
    /// `operations`, `supervisor-<f>`, `qa-<f>`.
    pub name: String,
    pub pid: u32,
    /// Settings files it could not load: it keeps the settings from before that edit.
    pub config_errors: Vec<String>,
}

/// The loops of a company that run now (those holding their lock).
pub fn running(company: &crate::company::Company) -> Vec<RunningLoop> {
    let mut out = Vec::new();
    if let Some(h) = daemon::running(&operations::lock_path(company)) {
        let errors = std::fs::read(operations::status_path(company))
            .ok()
            .and_then(|b| serde_json::from_slice::<operations::OpsStatus>(&b).ok())
            .filter(|s| s.pid == h.pid)
            .map(|s| s.config_errors)
            .unwrap_or_default();
        out.push(RunningLoop {
            name: "operations".into(),
            pid: h.pid,
            config_errors: errors,
        });
    }
    for (name, work) in crate::context::factory_stores(&company.root) {
        for role in ["supervisor", "qa"] {
            if let Some(s) = daemon::LoopStatus::read_running(
                &work.join(format!(".{role}.lock")),
                &work.join(format!(".{role}.json")),
            ) {
                out.push(RunningLoop {
                    name: format!("{role}-{name}"),
                    pid: s.pid,
                    config_errors: s.config_errors,
                });
            }
        }
    }
    out
}
