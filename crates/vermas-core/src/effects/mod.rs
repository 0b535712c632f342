//! The world outside the process: tmux sessions, git repositories, processes. The loops and
//! commands reach it only through here, so the decisions in [`crate::control`] never do.

pub mod git;
pub mod tmux;
