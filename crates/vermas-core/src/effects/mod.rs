//! The world outside the process: tmux sessions, git repositories, processes. The loops and
//! commands reach it only through here, so the decisions in [`crate::control`] never do.
//!
//! [`Sessions`] and [`Repo`] are the seams the apply steps go through where a test must see
//! what was done and in which order (a dispatch undoing a failed launch); [`fake`] records
//! every call instead of running tmux or git.

pub mod git;
pub mod process;
pub mod tmux;

#[cfg(test)]
pub mod fake;

use std::path::Path;

/// The tmux sessions of a company.
pub trait Sessions {
    /// Kills a session only if it carries our company tag.
    fn kill(&self, name: &str, tag: &str) -> Result<(), tmux::TmuxError>;
}

impl Sessions for tmux::Tmux {
    fn kill(&self, name: &str, tag: &str) -> Result<(), tmux::TmuxError> {
        self.kill_session(name, tag)
    }
}

/// A factory's repository: the worktree operations an undo needs.
pub trait Repo {
    fn remove_worktree(&self, path: &Path) -> Result<(), git::GitError>;
    fn move_worktree(&self, from: &Path, to: &Path) -> Result<(), git::GitError>;
    fn delete_branch(&self, branch: &str) -> Result<(), git::GitError>;
    fn prune_worktrees(&self) -> Result<(), git::GitError>;
}

/// A bare repository on disk, through the git CLI.
#[derive(Debug, Clone)]
pub struct GitRepo(pub std::path::PathBuf);

impl Repo for GitRepo {
    fn remove_worktree(&self, path: &Path) -> Result<(), git::GitError> {
        git::worktree_remove(&self.0, path, true)
    }
    fn move_worktree(&self, from: &Path, to: &Path) -> Result<(), git::GitError> {
        git::worktree_move(&self.0, from, to)
    }
    fn delete_branch(&self, branch: &str) -> Result<(), git::GitError> {
        git::delete_branch(&self.0, branch, true)
    }
    fn prune_worktrees(&self) -> Result<(), git::GitError> {
        git::worktree_prune(&self.0)
    }
}
