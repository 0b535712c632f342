//! The decisions, as pure functions: from a snapshot of the world, the settings, the loop's own
//! state and `now` to a list of actions. Nothing here touches tmux, git, the store or the clock,
//! so every branch is covered by table tests.

pub mod dispatch;
pub mod operations;
pub mod qa;
pub mod restart;
pub mod supervisor;
