//! How errors become exit codes, and keep their cause until a decision needs it.
//!
//! Every module has its own `thiserror` type and says which [`Kind`] it is; the binaries turn the
//! kind into the exit code of design §7. [`Error`] gathers them so a command can use `?` across
//! modules *without flattening them*: a loop that must tell "this session name is taken" from
//! any other conflict asks [`Error::tmux`] for the [`TmuxError`] itself, never the kind.

use crate::actions::worker::WorkerError;
use crate::backup::BackupError;
use crate::config::ConfigError;
use crate::control::dispatch::Refusal;
use crate::effects::git::GitError;
use crate::effects::tmux::TmuxError;
use crate::mail::MailError;
use crate::sprint::SprintError;
use crate::store::StoreError;
use crate::sync::SyncError;
use crate::team::TeamError;
use crate::workorder::{IndexError, WorkOrderError};
use std::fmt;

/// What sort of failure an error is; decides the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something went wrong (I/O, a child process, a corrupt file): exit 1.
    Failure,
    /// The user asked for something malformed: exit 2.
    Usage,
    /// An id, factory, agent or file the user named does not exist: exit 3.
    NotFound,
    /// The operating system refused (permissions, a symlink where a file belongs): exit 4.
    Permission,
    /// The request conflicts with the current state (illegal transition, no free slot,
    /// already running): exit 5.
    Conflict,
}

impl Kind {
    /// The process exit code for this kind of error.
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Failure => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::Permission => 4,
            Kind::Conflict => 5,
        }
    }
}

/// Implemented by each module's error type: which kind of failure it is.
pub trait Classify: fmt::Display {
    fn kind(&self) -> Kind;
}

/// The error every command-level function returns: a module's own error, kept whole, or a
/// message with its kind (from code that decides something is wrong), optionally behind
/// context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tmux(#[from] TmuxError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    WorkOrder(#[from] WorkOrderError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Sprint(#[from] SprintError),
    #[error(transparent)]
    Team(#[from] TeamError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("{message}")]
    Plain { kind: Kind, message: String },
    #[error("{context}: {source}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error::Plain {
            kind,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, message)
    }
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(Kind::Failure, message)
    }
    pub fn permission(message: impl Into<String>) -> Self {
        Self::new(Kind::Permission, message)
    }

    pub fn kind(&self) -> Kind {
        match self {
            Error::Tmux(e) => e.kind(),
            Error::Git(e) => e.kind(),
            Error::Store(e) => e.kind(),
            Error::Config(e) => e.kind(),
            Error::WorkOrder(e) => e.kind(),
            Error::Index(e) => e.kind(),
            Error::Mail(e) => e.kind(),
            Error::Worker(e) => e.kind(),
            Error::Refused(e) => e.kind(),
            Error::Sprint(e) => e.kind(),
            Error::Team(e) => e.kind(),
            Error::Sync(e) => e.kind(),
            Error::Backup(e) => e.kind(),
            Error::Plain { kind, .. } => *kind,
            Error::Context { source, .. } => source.kind(),
        }
    }

    /// The whole message, context first.
    pub fn message(&self) -> String {
        self.to_string()
    }

    pub fn exit_code(&self) -> i32 {
        self.kind().exit_code()
    }

    /// The same error with more context in front: `context: message`.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error::Context {
            context: context.to_string(),
            source: Box::new(self),
        }
    }

    /// The error under any context.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            e => e,
        }
    }

    /// The tmux error this is, if it is one.
    pub fn tmux(&self) -> Option<&TmuxError> {
        match self.root() {
            Error::Tmux(e) => Some(e),
            _ => None,
        }
    }

    /// The git error this is, if it is one.
    pub fn git(&self) -> Option<&GitError> {
        match self.root() {
            Error::Git(e) => Some(e),
            _ => None,
        }
    }

    /// The store error this is, if it is one.
    pub fn store(&self) -> Option<&StoreError> {
        match self.root() {
            Error::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// The crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_survives_context_and_sets_the_exit_code() {
        let e = Error::from(TmuxError::Exists("worker-mp-slot0".into())).context("dispatch");
        assert!(matches!(e.tmux(), Some(TmuxError::Exists(n)) if n == "worker-mp-slot0"));
        assert_eq!(e.exit_code(), 5);
        assert_eq!(
            e.to_string(),
            "dispatch: session worker-mp-slot0 already exists"
        );
        assert!(e.git().is_none());
        assert_eq!(Error::usage("bad").exit_code(), 2);
    }
}
