//! Assignment files: `.work/.assignment-<agent>` says what an agent must do now. They are local
//! state beside the log (the log has `assignment.set` / `assignment.cleared`); `co doctor`
//! reports files that disagree with it, and removing one by hand (the guide's recovery step)
//! lets `co dispatch` reclaim the slot once its session is gone.

use crate::error::Result;
use crate::fsutil;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What is in an assignment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub agent: String,
    /// What is assigned: `work_order`.
    pub kind: String,
    pub work_order: String,
    pub title: String,
    pub priority: u8,
    pub factory: String,
    pub incarnation: String,
    pub attempt: u32,
    pub branch: String,
    pub worktree: String,
    /// When it was set (RFC 3339); `co assignment` measures its response time from here.
    pub set_at: String,
}

impl Assignment {
    /// A work order given to `agent` now (`set_at` is the current time).
    pub fn of_work_order(
        agent: &crate::agent::AgentId,
        wo: &crate::workorder::WorkOrder,
        incarnation: &str,
        attempt: u32,
        branch: &str,
        worktree: &str,
    ) -> Assignment {
        Assignment {
            agent: agent.to_string(),
            kind: "work_order".into(),
            work_order: wo.id.clone(),
            title: wo.title.clone(),
            priority: wo.priority,
            factory: agent.factory().unwrap_or_default().to_string(),
            incarnation: incarnation.to_string(),
            attempt,
            branch: branch.to_string(),
            worktree: worktree.to_string(),
            set_at: crate::clock::format_timestamp(chrono::Utc::now()),
        }
    }
}

/// Reads an assignment file; `None` when there is none.
pub fn read(path: &Path) -> Result<Option<Assignment>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            crate::Error::failure(format!(
                "{} is not a valid assignment file ({e}); remove it and dispatch again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e).into()),
    }
}

/// Writes it atomically, 0600, never through a symlink.
pub fn write(path: &Path, a: &Assignment) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(a).map_err(StoreError::from)?;
    bytes.push(b'\n');
    fsutil::atomic_write(path, &bytes).map_err(|e| StoreError::io(path, e).into())
}

/// Removes it (a missing file is fine).
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e).into()),
    }
}
