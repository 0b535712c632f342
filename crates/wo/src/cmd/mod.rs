//! One module per `wo` subcommand, plus the argument parsers they share.

pub mod blocked;
pub mod close;
pub mod completions;
pub mod create;
pub mod dep;
pub mod doctor;
pub mod eval;
pub mod events;
pub mod init;
pub mod list;
pub mod man;
pub mod ready;
pub mod rebuild;
pub mod show;
pub mod stats;
pub mod sync;
pub mod update;

use vermas_core::workorder::{Status, WoType};

/// `--status` values: the list is in `--help`, in the error and in completions.
pub fn status_parser() -> impl clap::builder::TypedValueParser<Value = Status> {
    vermas_cli::values::choice(Status::ALL.map(Status::as_str), Status::parse)
}

/// `--type` values.
pub fn type_parser() -> impl clap::builder::TypedValueParser<Value = WoType> {
    vermas_cli::values::choice(WoType::ALL.map(WoType::as_str), WoType::parse)
}

/// `--older-than 30d` and similar. A number without a unit is refused (exit 2) with the forms
/// that work.
pub fn parse_duration(s: &str) -> Result<chrono::Duration, String> {
    use vermas_core::clock::{DURATION_FORMS, is_bare_number};
    vermas_core::clock::parse_duration(s).ok_or_else(|| {
        if is_bare_number(s) {
            format!(
                "a number needs a unit ({}d for days); accepted: {DURATION_FORMS}",
                s.trim()
            )
        } else {
            format!("expected a duration: {DURATION_FORMS}")
        }
    })
}

/// `--since 1h`, `--since 7d`, `--since 2026-11-20`, `--since 2026-11-20T12:00:00Z`.
pub fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    use vermas_core::clock::{self, DATE_FORMS, DURATION_FORMS, is_bare_number};
    match clock::parse_since(s, chrono::Utc::now()) {
        Some(t) => Ok(t),
        // A duration too long to subtract from now (`100000000d`).
        None if clock::parse_duration(s).is_some() => Err("too far back".to_string()),
        None if is_bare_number(s) => Err(format!(
            "a number needs a unit ({}d for days); accepted: {DURATION_FORMS}, or a date: {DATE_FORMS}",
            s.trim()
        )),
        None => Err(format!(
            "expected a duration back from now ({DURATION_FORMS}) or a date ({DATE_FORMS})"
        )),
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
