//! `wo create`: one `work_order.created` event.

use crate::ctx::Global;
use crate::print;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::store::Projection;
use vermas_core::workorder::{self, CreateRequest, WoType, WorkOrders};
use vermas_core::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// One line, at most 200 characters
    #[arg(long)]
    title: String,
    /// task, bug, feature, epic or chore
    #[arg(long = "type", value_name = "TYPE", value_parser = super::parse_type, default_value = "task")]
    kind: WoType,
    /// 0 (most urgent) to 4
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=4))]
    priority: u8,
    /// The details; `-` reads them from standard input
    #[arg(long, conflicts_with = "description_file", allow_hyphen_values = true)]
    description: Option<String>,
    /// Read the details from a file (UTF-8)
    #[arg(long, value_name = "FILE")]
    description_file: Option<PathBuf>,
    /// A label (repeat for more)
    #[arg(long = "label", value_name = "L")]
    labels: Vec<String>,
    /// Make it a child of this work order (its id becomes PARENT.N)
    #[arg(long, value_name = "ID", value_parser = super::parse_id)]
    parent: Option<String>,
    /// Print the created record as JSON
    #[arg(long)]
    json: bool,
}

/// The description from `--description`, `--description -` or `--description-file`.
pub fn read_description(text: Option<String>, file: Option<PathBuf>) -> Result<Option<String>> {
    let bytes = match (text, file) {
        (Some(t), _) if t == "-" => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| Error::failure(format!("reading the description from stdin: {e}")))?;
            (b, "standard input".to_string())
        }
        (Some(t), _) => return Ok(Some(t)),
        (None, Some(f)) => match std::fs::read(&f) {
            Ok(b) => (b, f.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::not_found(format!(
                    "--description-file {}: no such file",
                    f.display()
                )));
            }
            Err(e) => {
                return Err(Error::failure(format!(
                    "--description-file {}: {e}",
                    f.display()
                )));
            }
        },
        (None, None) => return Ok(None),
    };
    let (bytes, from) = bytes;
    String::from_utf8(bytes).map(Some).map_err(|e| {
        Error::usage(format!(
            "the description in {from} is not valid UTF-8 (bad byte at offset {}); work order text must be UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let description = read_description(a.description, a.description_file)?.unwrap_or_default();
    for (what, text) in [("title", &a.title), ("description", &description)] {
        for kind in vermas_core::text::mask_secrets(text).1 {
            eprintln!(
                "warning: the {what} holds what looks like an {kind} API key; it is stored masked"
            );
        }
    }
    let c = g.open()?;
    let mut w = c.store.lock()?;
    let events = workorder::create(
        &mut w,
        &c.prefix,
        &c.actor,
        CreateRequest {
            title: a.title,
            kind: a.kind,
            priority: a.priority,
            description,
            labels: a.labels,
            parent: a.parent,
        },
    )?;
    w.report_warnings();
    drop(w);
    let id = events
        .first()
        .and_then(|e| e.data_value()["id"].as_str().map(str::to_string))
        .unwrap_or_default();
    if a.json {
        // The record straight from the event just written: the create is done, and reading
        // the projection back could only add a way to fail after it.
        let mut one = WorkOrders::default();
        for e in &events {
            let _ = one.apply(&e.as_ref());
        }
        if let Some(wo) = one.get(&id) {
            print::json(&wo)?;
        }
    } else {
        println!("Created work order {id}");
    }
    Ok(ExitCode::SUCCESS)
}
