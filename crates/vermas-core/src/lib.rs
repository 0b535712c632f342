//! VerMAS core: everything `co` and `wo` do, as a library. The binaries parse arguments, call
//! in here and print.
//!
//! - [`store`]: the `.work` event log, feed and projections (design §3)
//! - [`workorder`]: work orders, their state machine and projection
//! - [`mail`]: messages between agents and people
//! - [`event`], [`ids`], [`clock`], [`error`], [`fsutil`], [`text`]: the shared vocabulary

pub mod clock;
pub mod config;
pub mod context;
pub mod error;
pub mod event;
pub mod fsutil;
pub mod health;
pub mod ids;
pub mod mail;
pub mod runtime;
pub mod store;
pub mod text;
pub mod workorder;

pub use error::{Error, Kind, Result};
