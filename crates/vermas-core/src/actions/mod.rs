//! What commands and loops do to workers: dispatch a work order, spawn, kill and finish a
//! worker, nudge an agent. Each is one locked, journaled change to the stores and the world.

pub mod approval;
pub mod dispatch;
pub mod escalate;
pub mod launch;
pub mod locked;
pub mod nudge;
pub mod worker;
