//! One module per `co` subcommand.

pub mod approve;
pub mod archive;
pub mod assignment;
pub mod backup;
pub mod ceo;
pub mod config;
pub mod demo;
pub mod dispatch;
pub mod doctor;
pub mod exec_agent;
pub mod factory;
pub mod inbox;
pub mod init;
pub mod nudge;
pub mod operations;
pub mod prime;
pub mod qa;
pub mod read;
pub mod reject;
pub mod restore;
pub mod send;
pub mod status;
pub mod supervisor;
pub mod worker;
