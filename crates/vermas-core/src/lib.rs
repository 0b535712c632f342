//! VerMAS core: everything `co` and `wo` do, as a library. The binaries parse arguments, call
//! in here and print.
//!
//! - [`store`]: the `.work` event log, feed and projections (design §3)
//! - [`workorder`]: work orders, their state machine and projection
//! - [`mail`]: messages between agents and people
//! - [`event`], [`ids`], [`clock`], [`error`], [`fsutil`], [`text`]: the shared vocabulary

pub mod actions;
pub mod agent;
pub mod assignment;
pub mod backup;
pub mod clock;
pub mod company;
pub mod config;
pub mod context;
pub mod control;
pub mod demo;
pub mod doctor;
pub mod effects;
pub mod error;
pub mod eval;
pub mod event;
pub mod fsutil;
pub mod health;
pub mod ids;
pub mod loops;
pub mod mail;
pub mod prime;
pub mod runtime;
pub mod slots;
pub mod sprint;
pub mod status;
pub mod store;
pub mod sync;
pub mod team;
pub mod templates;
pub mod text;
pub mod trace;
pub mod workorder;

pub use error::{Error, Kind, Result};
