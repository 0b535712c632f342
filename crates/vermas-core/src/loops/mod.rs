//! The long-running loops: the operations watchdog, a supervisor and a QA merge queue per
//! factory. Each patrol observes the world into a snapshot, asks [`crate::control`] what to do,
//! and carries the actions out in the order given.

pub mod daemon;
pub mod operations;
pub mod qa;
pub mod supervisor;
