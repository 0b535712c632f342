//! `wo events archive`: move whole old day partitions into `events/archive/`. Nothing is ever
//! deleted, the newest partition is never moved (writers continue the sequence from it), and
//! readers read archived partitions like live ones.

use super::{Result, Store, StoreError};
use crate::fsutil;

impl Store {
    /// Moves live partitions whose day is before `before` into the archive; returns their names.
    pub fn archive_before(&self, before: chrono::NaiveDate) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let parts = self.live_partitions()?;
        let Some(newest) = parts.last().map(|p| p.name.clone()) else {
            return Ok(Vec::new());
        };
        let cutoff = before.format("%Y-%m-%d").to_string();
        let to_move: Vec<_> = parts
            .into_iter()
            .filter(|p| p.name < cutoff && p.name != newest)
            .collect();
        if to_move.is_empty() {
            return Ok(Vec::new());
        }
        let adir = self.archive_dir();
        fsutil::ensure_dir(&adir).map_err(|e| StoreError::io(&adir, e))?;
        let mut moved = Vec::new();
        for p in to_move {
            let dest = adir.join(format!("{}.jsonl", p.name));
            if std::fs::symlink_metadata(&dest).is_ok() {
                return Err(StoreError::Io {
                    path: dest,
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "already in the archive; leaving both copies for you to compare",
                    ),
                });
            }
            std::fs::rename(&p.path, &dest).map_err(|e| StoreError::io(&p.path, e))?;
            moved.push(p.name);
        }
        let edir = self.events_dir();
        fsutil::fsync_dir(&adir).map_err(|e| StoreError::io(&adir, e))?;
        fsutil::fsync_dir(&edir).map_err(|e| StoreError::io(&edir, e))?;
        Ok(moved)
    }
}
