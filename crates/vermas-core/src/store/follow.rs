//! Reading the end of the log and following it as it grows (`wo events tail`).

use super::{Checkpoint, LineInfo, Result, Store};
use crate::event::{Event, EventRef};
use std::sync::mpsc;
use std::time::Duration;

/// How often a follower re-reads when no file-change notification arrives (or notifications
/// are unavailable).
const SLOW_POLL: Duration = Duration::from_secs(2);

impl Store {
    /// The last `n` events and the checkpoint after them. Reads the newest partitions only,
    /// going further back until it has `n` events.
    pub fn tail(&self, n: usize) -> Result<(Vec<Event>, Checkpoint)> {
        let files = self.log_files()?;
        let days: Vec<chrono::NaiveDate> = files
            .iter()
            .filter_map(|f| chrono::NaiveDate::parse_from_str(&f.name, "%Y-%m-%d").ok())
            .collect();
        let mut starts: Vec<Option<chrono::NaiveDate>> =
            days.iter().rev().map(|d| Some(*d)).collect();
        if starts.is_empty() || files.iter().any(|f| f.name == "events") {
            starts = vec![None];
        } else {
            starts.push(None);
        }
        for since in starts {
            let mut ring: std::collections::VecDeque<Event> = std::collections::VecDeque::new();
            let mut visit = |ev: &EventRef<'_>, _: &LineInfo<'_>| {
                if n > 0 {
                    if ring.len() == n {
                        ring.pop_front();
                    }
                    ring.push_back(ev.to_owned_event());
                }
                Ok(())
            };
            let out = self.scan(&Checkpoint::default(), since, &mut visit)?;
            let Ok(out) = out else { continue };
            if ring.len() >= n || since.is_none() {
                return Ok((ring.into_iter().collect(), out.end));
            }
        }
        Ok((Vec::new(), Checkpoint::default()))
    }

    /// Calls `on_event` for every event after `from`, forever (until `on_event` returns
    /// false). Wakes on file-system notifications (`notify`), with a slow poll as fallback.
    pub fn follow(
        &self,
        from: Checkpoint,
        on_event: &mut dyn FnMut(&EventRef<'_>, &LineInfo<'_>) -> bool,
    ) -> Result<()> {
        use notify::Watcher;
        let (tx, rx) = mpsc::channel::<()>();
        let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.send(());
        });
        let mut _keep = None;
        if let Ok(mut w) = watcher {
            let mut ok = false;
            for dir in [self.events_dir(), self.dir().to_path_buf()] {
                if dir.is_dir() && w.watch(&dir, notify::RecursiveMode::NonRecursive).is_ok() {
                    ok = true;
                }
            }
            if ok {
                _keep = Some(w);
            }
        }
        let mut at = from;
        loop {
            let mut keep_going = true;
            let mut visit = |ev: &EventRef<'_>, info: &LineInfo<'_>| {
                if keep_going && !on_event(ev, info) {
                    keep_going = false;
                }
                Ok(())
            };
            match self.scan(&at, None, &mut visit)? {
                Ok(out) => at = out.end,
                // The file under the checkpoint changed (archived, replaced): start again
                // after the last seq seen, from the beginning of the log.
                Err(_) => {
                    let seq = at.seq;
                    let mut skip = |ev: &EventRef<'_>, info: &LineInfo<'_>| {
                        if ev.seq > seq && keep_going && !on_event(ev, info) {
                            keep_going = false;
                        }
                        Ok(())
                    };
                    if let Ok(out) = self.scan(&Checkpoint::default(), None, &mut skip)? {
                        at = out.end;
                    }
                }
            }
            if !keep_going {
                return Ok(());
            }
            let _ = rx.recv_timeout(SLOW_POLL);
            // Coalesce a burst of notifications into one re-read.
            while rx.try_recv().is_ok() {}
        }
    }
}
