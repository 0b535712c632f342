//! How errors become exit codes.
//!
//! Every module has its own `thiserror` type; each says which [`Kind`] it is, and the binaries
//! turn the kind into the exit code of design §7. [`Error`] gathers them so a command can use `?`
//! across modules.

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

/// The error every command-level function returns.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    message: String,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
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
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
    /// The same error with more context in front: `context: message`.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error {
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Implemented by each module's error type so it converts into [`Error`] with the right kind.
pub trait Classify: fmt::Display {
    fn kind(&self) -> Kind;
}

/// The crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Lets `?` turn any module error into [`Error`].
macro_rules! classified {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for $crate::error::Error {
            fn from(e: $t) -> Self {
                $crate::error::Error::new($crate::error::Classify::kind(&e), e.to_string())
            }
        })*
    };
}
pub(crate) use classified;
