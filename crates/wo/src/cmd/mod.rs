//! One module per `wo` subcommand, plus the argument parsers they share.

pub mod blocked;
pub mod close;
pub mod create;
pub mod dep;
pub mod doctor;
pub mod events;
pub mod init;
pub mod list;
pub mod ready;
pub mod rebuild;
pub mod show;
pub mod stats;
pub mod sync;
pub mod update;

use vermas_core::workorder::{Status, WoType};

/// `--status` values, with the allowed list in the error.
pub fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!(
            "unknown status (allowed: {})",
            Status::ALL.map(|s| s.as_str()).join(", ")
        )
    })
}

/// `--type` values.
pub fn parse_type(s: &str) -> Result<WoType, String> {
    WoType::parse(s).ok_or_else(|| {
        format!(
            "unknown type (allowed: {})",
            WoType::ALL.map(|t| t.as_str()).join(", ")
        )
    })
}

/// `--older-than 30d` and similar.
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    vermas_core::clock::parse_duration(s)
        .ok_or_else(|| "expected a duration such as 90s, 15m, 1h, 7d or 2w".to_string())
}

/// `--since 1h`, `--since 7d`, `--since 2026-11-20`, `--since 2026-11-20T12:00:00Z`.
pub fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use vermas_core::clock;
    match clock::parse_since(s, chrono::Utc::now()) {
        Some(t) => Ok(t),
        // A duration too long to subtract from now (`100000000d`).
        None if clock::parse_duration(s).is_some() => Err("too far back".to_string()),
        None => Err(
            "expected a duration back from now (1h, 7d) or a time (2026-11-20, 2026-11-20T12:00:00Z)"
                .to_string(),
        ),
    }
}

/// A work order id argument: any text is accepted here (an unknown or malformed id is a
/// not-found error naming it), but it must be one line.
pub fn parse_id(s: &str) -> Result<String, String> {
    if s.chars().any(char::is_control) {
        return Err("ids contain no control characters".into());
    }
    Ok(s.to_string())
}
