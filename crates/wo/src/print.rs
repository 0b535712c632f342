//! How work orders look on a terminal. All stored text goes through `escape_control`.

use vermas_core::clock::age_of;
use vermas_core::text::{escape_control, table_painted, truncate};
use vermas_core::workorder::{Source, WorkOrder};

/// The standard work order table.
pub fn work_order_table(list: &[WorkOrder]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|w| {
            vec![
                w.id.clone(),
                format!("P{}", w.priority),
                w.kind.to_string(),
                w.status.to_string(),
                w.assignee
                    .as_deref()
                    .map(escape_control)
                    .unwrap_or_else(|| "-".into()),
                age_of(&w.created_at),
                truncate(&escape_control(&w.title), 80),
            ]
        })
        .collect();
    table_painted(
        &["ID", "PRI", "TYPE", "STATUS", "ASSIGNEE", "AGE", "TITLE"],
        &rows,
        vermas_cli::color::status_cells(&[3]),
    )
}

/// Another work order named by one being shown (a dependency, a child): its status and title,
/// or none when the id is unknown.
#[derive(serde::Serialize)]
pub struct Related {
    pub id: String,
    pub status: Option<String>,
    pub title: Option<String>,
}

impl Related {
    pub fn of(wos: &impl Source, id: &str) -> vermas_core::Result<Related> {
        let w = wos.find(id)?;
        Ok(Related {
            id: id.to_string(),
            status: w.as_ref().map(|w| w.status.to_string()),
            title: w.map(|w| w.title),
        })
    }

    /// `wo-k3x9q2 (open) Title`, or `wo-k3x9q2 (missing) ` for an unknown id.
    pub fn line(&self) -> String {
        format!(
            "{} ({}) {}",
            escape_control(&self.id),
            self.status.as_deref().unwrap_or("missing"),
            escape_control(self.title.as_deref().unwrap_or(""))
        )
    }
}

/// Pretty JSON to stdout.
pub fn json(v: &impl serde::Serialize) -> vermas_core::Result<()> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| vermas_core::Error::failure(format!("cannot serialise output: {e}")))?;
    println!("{s}");
    Ok(())
}
