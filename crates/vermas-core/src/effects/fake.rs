//! In-memory stand-ins for tmux and git that record every call, for tests of the apply steps
//! (in the spirit of jj's test backend and watchexec's test child).

use super::git::GitError;
use super::tmux::TmuxError;
use super::{Repo, Sessions};
use std::cell::RefCell;
use std::path::Path;

/// Every call made, in order, as text (`kill worker-mp-slot0`, `remove /w/slot0`…).
#[derive(Debug, Default)]
pub struct Calls(pub RefCell<Vec<String>>);

impl Calls {
    fn push(&self, s: String) {
        self.0.borrow_mut().push(s);
    }
    pub fn list(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Sessions that record kills.
#[derive(Debug, Default)]
pub struct FakeSessions {
    pub calls: Calls,
}

impl Sessions for FakeSessions {
    fn kill(&self, name: &str, _tag: &str) -> Result<(), TmuxError> {
        self.calls.push(format!("kill {name}"));
        Ok(())
    }
}

/// A repository that records worktree calls.
#[derive(Debug, Default)]
pub struct FakeRepo {
    pub calls: Calls,
}

impl Repo for FakeRepo {
    fn remove_worktree(&self, path: &Path) -> Result<(), GitError> {
        self.calls.push(format!("remove {}", path.display()));
        Ok(())
    }
    fn move_worktree(&self, from: &Path, to: &Path) -> Result<(), GitError> {
        self.calls
            .push(format!("move {} {}", from.display(), to.display()));
        Ok(())
    }
    fn delete_branch(&self, branch: &str) -> Result<(), GitError> {
        self.calls.push(format!("delete {branch}"));
        Ok(())
    }
    fn prune_worktrees(&self) -> Result<(), GitError> {
        self.calls.push("prune".into());
        Ok(())
    }
}
