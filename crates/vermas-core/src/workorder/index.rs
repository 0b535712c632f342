//! `.work/work_orders.db`: an SQLite index of the work orders, so a point look-up (`wo show`,
//! `wo update`, a dispatch of one work order) and the list of open or queued work cost what
//! they read, not the size of the history.
//!
//! It is a cache like the projections, never a source of truth: it records the log position
//! it covers (the same checkpoint as a projection header), every opener verifies that position
//! against the log and applies the events after it (with the projection's own code, so a
//! record here is byte for byte the line `work_orders.jsonl` holds), and an index that does not
//! match the log, has another schema or cannot be read is rebuilt from the log. A rebuild runs
//! inside one transaction, so a killed one leaves the previous index (and its checkpoint).
//!
//! Tables: `wo` (one row per work order: its creation number, id, status, factory, parent,
//! priority, creation time and the record line; the open ones again, records included, in an
//! index in the order `wo list` shows them, so listing open work reads only those), `dep` (which work order needs which), `ev`
//! (where in the log each event about a work order is, for its history) and `meta` (the
//! checkpoint and the issues met while building).

use super::{WorkOrder, WorkOrders};
use crate::error::{Classify, Kind};
use crate::event::{Event, EventRef, types};
use crate::fsutil;
use crate::store::{Checkpoint, Issue, LineInfo, Projection, Store, StoreError};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// The file name of the index inside `.work`.
pub const INDEX_FILE: &str = "work_orders.db";
/// Bumped when the tables change; an index of another schema is rebuilt.
const SCHEMA: &str = "3";
/// Cap on the issues kept (as in a projection header).
const MAX_KEPT_ISSUES: usize = 1000;
/// The WAL is kept between commands (see [`Index::open_once`]); one larger than this when a
/// connection closes is checkpointed and truncated, so openers never read much of it.
const WAL_TRUNCATE_BYTES: u64 = 512 << 10;

/// Errors of the index. Callers that can read the projection instead do so.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("work order index {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("work order index {}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
}

impl Classify for IndexError {
    fn kind(&self) -> Kind {
        match self {
            IndexError::Store(e) => e.kind(),
            _ => Kind::Failure,
        }
    }
}

type Result<T, E = IndexError> = std::result::Result<T, E>;

/// The open index, up to date with the log when [`Index::open`] returned it.
pub struct Index {
    conn: Connection,
    path: PathBuf,
    checkpoint: Checkpoint,
    issues: Vec<Issue>,
    /// Log file name → path, for reading history lines.
    logs: HashMap<String, PathBuf>,
}

impl Drop for Index {
    /// Truncates the WAL once it is large (see [`Index::open_once`]; the first build of a big
    /// index writes all of it there), so later commands do not read it to recover it. Best
    /// effort: a WAL busy in another process is left for a later close.
    fn drop(&mut self) {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_TRUNCATE_BYTES) {
            // Never hold a command up for long behind another process's transaction.
            let _ = self
                .conn
                .busy_timeout(std::time::Duration::from_millis(200));
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("path", &self.path).finish()
    }
}

/// `id` of every `work_order.*` payload, `parent` of a create, `work_order` of any other event.
#[derive(serde::Deserialize)]
struct About<'a> {
    #[serde(borrow, default)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    parent: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    work_order: Option<std::borrow::Cow<'a, str>>,
}

const DONE: &str = "('closed','cancelled')";

fn tables_sql() -> &'static str {
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS wo(n INTEGER PRIMARY KEY, id TEXT NOT NULL,
         status TEXT NOT NULL, factory TEXT, parent TEXT, priority INTEGER NOT NULL,
         created_at TEXT NOT NULL, record TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS dep(a TEXT NOT NULL, b TEXT NOT NULL, PRIMARY KEY(a, b))
         WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS ev(wo TEXT NOT NULL, log TEXT NOT NULL, off INTEGER NOT NULL);"
}

/// The indexes, made after the rows when the whole index is built (sorting once is much
/// faster than inserting a million keys one by one into a B-tree).
fn indexes_sql() -> String {
    format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS wo_id ON wo(id);
         CREATE INDEX IF NOT EXISTS wo_open ON wo(priority, created_at, n, record)
             WHERE status NOT IN {DONE};
         CREATE INDEX IF NOT EXISTS wo_open_n ON wo(n) WHERE status NOT IN {DONE};
         CREATE INDEX IF NOT EXISTS wo_queued ON wo(factory, priority, created_at, n)
             WHERE status = 'queued';
         CREATE INDEX IF NOT EXISTS wo_parent ON wo(parent, n) WHERE parent IS NOT NULL;
         CREATE INDEX IF NOT EXISTS dep_b ON dep(b);
         CREATE INDEX IF NOT EXISTS ev_wo ON ev(wo);"
    )
}

impl Index {
    /// Opens the index of `store` and brings it up to the end of the log (building it the
    /// first time, or when it does not match the log). A file SQLite finds damaged is removed
    /// and built again.
    pub fn open(store: &Store) -> Result<Index> {
        match Index::open_once(store) {
            Err(IndexError::Sqlite { source, .. })
                if matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
                ) =>
            {
                let path = store.dir().join(INDEX_FILE);
                for suffix in ["", "-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{suffix}", path.display()));
                    match std::fs::remove_file(&p) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::io(&p, e).into()),
                    }
                }
                Index::open_once(store)
            }
            other => other,
        }
    }

    fn open_once(store: &Store) -> Result<Index> {
        let path = store.dir().join(INDEX_FILE);
        let sql = |e| IndexError::Sqlite {
            path: path.clone(),
            source: e,
        };
        // Created here, 0600 and not through a symlink; SQLite's -wal and -shm files take
        // the database's mode.
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(StoreError::Symlink(path).into());
            }
            Ok(_) => {}
            Err(_) => {
                fsutil::open_rw(&path).map_err(|e| StoreError::io(&path, e))?;
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        // Most connections are a command's, open for milliseconds. Closing the last one
        // would checkpoint (two fsyncs) and delete the WAL, and the next command's first
        // write would create it again (a directory fsync and a header fsync). The WAL stays
        // instead, and grows: the first opener of a WAL no process has open rebuilds its
        // index from the file, forgetting what was checkpointed, so SQLite never starts it
        // over. `Drop` checkpoints and truncates it once it passes WAL_TRUNCATE_BYTES (every
        // few dozen writing commands), which bounds what an opener reads.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(sql)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(sql)?;
        if mode != "wal" {
            return Err(IndexError::Invalid {
                path,
                what: format!("journal mode {mode}"),
            });
        }
        // A cache: losing the last transactions in a power cut only means applying them again.
        // Pages are read through a memory map (no copy, no system call per page), all of the
        // file up to SQLite's own limit (2 GB): at 1M work orders the index is about 950 MB,
        // and the open work orders' records lie at its end.
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536; PRAGMA mmap_size=2147418112;",
        )
        .map_err(sql)?;
        let logs = store
            .log_files()?
            .into_iter()
            .map(|f| (f.name, f.path))
            .collect();
        let mut idx = Index {
            conn,
            path,
            checkpoint: Checkpoint::default(),
            issues: Vec::new(),
            logs,
        };
        idx.sync(store)?;
        Ok(idx)
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> IndexError + '_ {
        |e| IndexError::Sqlite {
            path: self.path.clone(),
            source: e,
        }
    }

    /// Reads the stored checkpoint and issues; `None` when the index is new or of another
    /// schema.
    fn read_meta(conn: &Connection) -> rusqlite::Result<Option<(Checkpoint, Vec<Issue>)>> {
        let has_meta: bool = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='meta'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has_meta {
            return Ok(None);
        }
        let get = |k: &str| -> rusqlite::Result<Option<String>> {
            conn.query_row("SELECT v FROM meta WHERE k=?1", [k], |r| r.get(0))
                .optional()
        };
        if get("schema")?.as_deref() != Some(SCHEMA) {
            return Ok(None);
        }
        let (Some(cp), Some(issues)) = (get("checkpoint")?, get("issues")?) else {
            return Ok(None);
        };
        match (serde_json::from_str(&cp), serde_json::from_str(&issues)) {
            (Ok(cp), Ok(issues)) => Ok(Some((cp, issues))),
            _ => Ok(None),
        }
    }

    /// Whether the log ends exactly where `cp` is (nothing appended, nothing torn).
    fn at_end(&self, cp: &Checkpoint) -> bool {
        let Some(name) = &cp.log else {
            return self.logs.is_empty();
        };
        let Some(last) = self.logs.keys().max_by(|a, b| log_order(a, b)) else {
            return false;
        };
        last == name
            && self
                .logs
                .get(name)
                .and_then(|p| std::fs::metadata(p).ok())
                .is_some_and(|m| m.len() == cp.offset)
    }

    /// Brings the index up to the end of the log.
    fn sync(&mut self, store: &Store) -> Result<()> {
        // The usual case, without a write transaction: the index covers the whole log.
        if let Some((cp, issues)) = Index::read_meta(&self.conn).map_err(self.sql())?
            && self.at_end(&cp)
            && store.scan(&cp, None, &mut |_, _| Ok(()))?.is_ok()
        {
            self.checkpoint = cp;
            self.issues = issues;
            return Ok(());
        }
        let path = self.path.clone();
        let sql = |e| IndexError::Sqlite {
            path: path.clone(),
            source: e,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        // Read again under the write lock: another process may have caught up meanwhile.
        let meta = Index::read_meta(&tx).map_err(sql)?;
        let (mut cp, mut issues, fresh) = match meta {
            Some((cp, issues)) => (cp, issues, false),
            None => (Checkpoint::default(), Vec::new(), true),
        };
        let mut fresh = fresh;
        let mut outcome = None;
        for attempt in 0..2 {
            if fresh {
                for t in ["ev", "dep", "wo", "meta"] {
                    tx.execute_batch(&format!("DROP TABLE IF EXISTS {t}"))
                        .map_err(sql)?;
                }
                tx.execute_batch(tables_sql()).map_err(sql)?;
                cp = Checkpoint::default();
                issues.clear();
            }
            let mut apply = Apply::new(&tx, fresh);
            let mut visit = |ev: &EventRef<'_>, info: &LineInfo<'_>| apply.event(ev, info);
            match store.scan(&cp, None, &mut visit)? {
                Ok(o) => {
                    apply.flush().map_err(sql)?;
                    if let Some(e) = apply.failed.take() {
                        return Err(sql(e));
                    }
                    tx.execute_batch(&indexes_sql()).map_err(sql)?;
                    outcome = Some(o);
                    break;
                }
                // The log is not the one the index was built from: build it again.
                Err(_) if attempt == 0 => fresh = true,
                Err(m) => {
                    return Err(IndexError::Invalid {
                        path: path.clone(),
                        what: m.0,
                    });
                }
            }
        }
        let Some(o) = outcome else {
            return Err(IndexError::Invalid {
                path,
                what: "could not be brought up to date".into(),
            });
        };
        for i in o.issues {
            if issues.len() >= MAX_KEPT_ISSUES {
                break;
            }
            if !issues.contains(&i) {
                issues.push(i);
            }
        }
        let put = |k: &str, v: String| {
            tx.execute(
                "INSERT INTO meta(k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                params![k, v],
            )
        };
        let cp_json = serde_json::to_string(&o.end).map_err(StoreError::from)?;
        let issues_json = serde_json::to_string(&issues).map_err(StoreError::from)?;
        put("schema", SCHEMA.to_string()).map_err(sql)?;
        put("checkpoint", cp_json).map_err(sql)?;
        put("issues", issues_json).map_err(sql)?;
        tx.commit().map_err(sql)?;
        self.checkpoint = o.end;
        self.issues = issues;
        Ok(())
    }

    /// Makes the next opener build the index again from the log (`wo rebuild-projections`):
    /// its checkpoint is removed inside a transaction, so processes that have it open are
    /// never left with a file removed under them. Nothing to do when there is no index.
    pub fn invalidate(store: &Store) -> Result<()> {
        let path = store.dir().join(INDEX_FILE);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(());
        }
        let sql = |e| IndexError::Sqlite {
            path: path.clone(),
            source: e,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        conn.execute_batch("BEGIN IMMEDIATE; DROP TABLE IF EXISTS meta; COMMIT;")
            .map_err(sql)
    }

    /// The first difference between the index and `rebuilt` (a fresh rebuild of the log at the
    /// index's checkpoint), for `wo doctor`; `None` when they hold the same work orders.
    pub fn differs_from(&self, rebuilt: &WorkOrders) -> Result<Option<String>> {
        let mut n = 0u64;
        for line in rebuilt.raw_lines() {
            n += 1;
            let Some(wo) = serde_json::from_slice::<WorkOrder>(&line).ok() else {
                continue;
            };
            match self.record(&wo.id)? {
                Some(r) if r.as_bytes() == &line[..] => {}
                Some(_) => return Ok(Some(format!("the record of {} differs", wo.id))),
                None => return Ok(Some(format!("{} is missing", wo.id))),
            }
        }
        let have = self.count()?;
        Ok((have != n).then(|| format!("it holds {have} work orders where the log has {n}")))
    }

    /// Problems met in the log while building the index (as a projection reports them).
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// The log position the index covers.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// One work order's record line, as `work_orders.jsonl` holds it.
    pub fn record(&self, id: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT record FROM wo WHERE id=?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(self.sql())
    }

    /// One work order.
    pub fn get(&self, id: &str) -> Result<Option<WorkOrder>> {
        match self.record(id)? {
            None => Ok(None),
            Some(line) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| IndexError::Invalid {
                    path: self.path.clone(),
                    what: format!("record of {id} unreadable ({e})"),
                }),
        }
    }

    fn ids(&self, sql: &str, arg: &str) -> Result<Vec<String>> {
        let mut s = self.conn.prepare_cached(sql).map_err(self.sql())?;
        let rows = s
            .query_map([arg], |r| r.get::<_, String>(0))
            .map_err(self.sql())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.sql())
    }

    /// The work orders that depend on `id` (`wo dep add X id`), in creation order.
    pub fn dependents(&self, id: &str) -> Result<Vec<String>> {
        self.ids(
            "SELECT d.a FROM dep d JOIN wo w ON w.id = d.a WHERE d.b=?1 ORDER BY w.n",
            id,
        )
    }

    /// The children of `id` (created with `--parent id`), in creation order.
    pub fn children(&self, id: &str) -> Result<Vec<String>> {
        self.ids("SELECT id FROM wo WHERE parent=?1 ORDER BY n", id)
    }

    fn records(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<String>> {
        let mut s = self.conn.prepare_cached(sql).map_err(self.sql())?;
        let rows = s
            .query_map(args, |r| r.get::<_, String>(0))
            .map_err(self.sql())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.sql())
    }

    /// The record lines of the work orders not closed or cancelled, in creation order, and the
    /// log position they describe, read in one transaction: another process may bring the
    /// index further at any time, and a reader that goes on from this position must not apply
    /// an event twice.
    pub fn open_snapshot(&self) -> Result<(Checkpoint, Vec<String>)> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        let cp: String = tx
            .query_row("SELECT v FROM meta WHERE k='checkpoint'", [], |r| r.get(0))
            .map_err(self.sql())?;
        let cp: Checkpoint = serde_json::from_str(&cp).map_err(|e| IndexError::Invalid {
            path: self.path.clone(),
            what: format!("checkpoint unreadable ({e})"),
        })?;
        let lines = {
            let mut s = tx
                .prepare_cached(&format!(
                    "SELECT record FROM wo INDEXED BY wo_open_n WHERE status NOT IN {DONE} ORDER BY n"
                ))
                .map_err(self.sql())?;
            let rows = s
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(self.sql())?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(self.sql())?
        };
        tx.finish().map_err(self.sql())?;
        Ok((cp, lines))
    }

    /// The record lines of the work orders not closed or cancelled, most urgent first, then
    /// oldest (the order `wo list` shows).
    pub fn open_records(&self) -> Result<Vec<String>> {
        self.records(
            &format!(
                "SELECT record FROM wo WHERE status NOT IN {DONE} ORDER BY priority, created_at, n"
            ),
            [],
        )
    }

    /// How many work orders are open, counting at most `limit`.
    pub fn count_open(&self, limit: u64) -> Result<u64> {
        self.conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT n FROM wo INDEXED BY wo_open_n WHERE status NOT IN {DONE} LIMIT ?1)"
                ),
                [limit as i64],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(self.sql())
    }

    /// How many work orders the store has.
    pub fn count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT coalesce(max(n) + 1, 0) FROM wo", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(self.sql())
    }

    /// The work orders queued for `factory`, most urgent first, then oldest: what a dispatch
    /// for that factory takes from this store.
    pub fn queued(&self, factory: &str) -> Result<Vec<WorkOrder>> {
        let lines = self.records(
            "SELECT record FROM wo WHERE status='queued' AND factory=?1 ORDER BY priority, created_at, n",
            [factory],
        )?;
        lines
            .iter()
            .map(|l| {
                serde_json::from_str(l).map_err(|e| IndexError::Invalid {
                    path: self.path.clone(),
                    what: format!("record unreadable ({e})"),
                })
            })
            .collect()
    }

    /// The last `limit` events about `id` (its own events and any naming it as `work_order`),
    /// oldest first, read from the log at the positions the index keeps.
    pub fn history(&self, id: &str, limit: usize) -> Result<Vec<Event>> {
        let mut s = self
            .conn
            .prepare_cached("SELECT log, off FROM ev WHERE wo=?1 ORDER BY rowid DESC LIMIT ?2")
            .map_err(self.sql())?;
        let rows = s
            .query_map(params![id, limit as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(self.sql())?;
        let places = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.sql())?;
        let mut files: HashMap<&str, std::fs::File> = HashMap::new();
        let mut out = Vec::with_capacity(places.len());
        for (log, off) in places.iter().rev() {
            let stale = || IndexError::Invalid {
                path: self.path.clone(),
                what: format!("history of {id}: no event at {log}:{off}"),
            };
            if !files.contains_key(log.as_str()) {
                let p = self.logs.get(log).ok_or_else(stale)?;
                let f = std::fs::File::open(p).map_err(|e| StoreError::io(p, e))?;
                files.insert(log, f);
            }
            let f = files.get(log.as_str()).ok_or_else(stale)?;
            let line =
                read_line_at(f, u64::try_from(*off).unwrap_or(u64::MAX)).map_err(|_| stale())?;
            let body = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line);
            let ev: Event = serde_json::from_slice(body).map_err(|_| stale())?;
            out.push(ev);
        }
        Ok(out)
    }
}

/// Log files in log order by name: day partitions sort as text, `events` (the single file)
/// last.
fn log_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a == "events", a).cmp(&(b == "events", b))
}

/// The line that starts at `off` (without its newline).
fn read_line_at(f: &std::fs::File, off: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut have = 0;
    loop {
        let n = f.read_at(&mut buf[have..], off + have as u64)?;
        if let Some(i) = memchr::memchr(b'\n', &buf[have..have + n]) {
            buf.truncate(have + i);
            return Ok(buf);
        }
        if n == 0 || have + n > crate::event::MAX_LINE_BYTES + 2 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// Applies events to the index inside a transaction: the work orders they touch are loaded
/// into a small [`WorkOrders`] (the projection's own code applies the events), and written
/// back at the end.
struct Apply<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    /// The index was empty: nothing to load, everything to insert.
    fresh: bool,
    state: WorkOrders,
    /// Ids looked up in the index already (found or not).
    looked: HashSet<String>,
    /// The ids already in the index when loaded (updated, not inserted).
    existing: HashSet<String>,
    failed: Option<rusqlite::Error>,
}

impl<'t> Apply<'t> {
    fn new(tx: &'t rusqlite::Transaction<'t>, fresh: bool) -> Apply<'t> {
        Apply {
            tx,
            fresh,
            state: WorkOrders::default(),
            looked: HashSet::new(),
            existing: HashSet::new(),
            failed: None,
        }
    }

    fn load(&mut self, id: &str) -> rusqlite::Result<()> {
        if self.fresh || self.looked.contains(id) {
            return Ok(());
        }
        self.looked.insert(id.to_string());
        let line: Option<String> = self
            .tx
            .prepare_cached("SELECT record FROM wo WHERE id=?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        if let Some(line) = line
            && self.state.load_record(line.as_bytes()).is_ok()
        {
            self.existing.insert(id.to_string());
        }
        Ok(())
    }

    fn event(&mut self, ev: &EventRef<'_>, info: &LineInfo<'_>) -> Result<(), String> {
        if self.failed.is_some() {
            return Ok(());
        }
        let Ok(about) = ev.data::<About>() else {
            // Not an object: the projection reports it when it is a work order event.
            return if WorkOrders::wants(&ev.event_type) {
                self.state.apply(ev)
            } else {
                Ok(())
            };
        };
        let is_wo = WorkOrders::wants(&ev.event_type);
        let mut keys: Vec<&str> = Vec::with_capacity(2);
        if is_wo && let Some(id) = about.id.as_deref() {
            keys.push(id);
        }
        if let Some(w) = about.work_order.as_deref()
            && !keys.contains(&w)
        {
            keys.push(w);
        }
        let r = (|| -> rusqlite::Result<()> {
            for k in &keys {
                self.tx
                    .prepare_cached("INSERT INTO ev(wo, log, off) VALUES (?1, ?2, ?3)")?
                    .execute(params![k, info.log.name, info.offset as i64])?;
            }
            if is_wo {
                if let Some(id) = about.id.as_deref() {
                    self.load(id)?;
                }
                if ev.event_type == types::WORK_ORDER_CREATED
                    && let Some(p) = about.parent.as_deref()
                {
                    self.load(p)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.failed = Some(e);
            return Ok(());
        }
        if is_wo { self.state.apply(ev) } else { Ok(()) }
    }

    /// Writes every work order touched back to the index.
    fn flush(&mut self) -> rusqlite::Result<()> {
        if self.failed.is_some() {
            return Ok(());
        }
        let mut next: i64 =
            self.tx
                .query_row("SELECT coalesce(max(n) + 1, 0) FROM wo", [], |r| r.get(0))?;
        let mut update = self.tx.prepare_cached(
            "UPDATE wo SET status=?2, factory=?3, parent=?4, priority=?5, created_at=?6, record=?7 WHERE id=?1",
        )?;
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO wo(n, id, status, factory, parent, priority, created_at, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut del_deps = self.tx.prepare_cached("DELETE FROM dep WHERE a=?1")?;
        let mut add_dep = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO dep(a, b) VALUES (?1, ?2)")?;
        let mut result = Ok(());
        self.state.for_each_json(|raw, wo| {
            if result.is_err() {
                return;
            }
            let record = String::from_utf8_lossy(raw);
            let r = (|| -> rusqlite::Result<()> {
                let status = wo.status.as_str();
                if self.existing.contains(&wo.id) {
                    update.execute(params![
                        wo.id,
                        status,
                        wo.factory,
                        wo.parent,
                        wo.priority,
                        wo.created_at,
                        record
                    ])?;
                    del_deps.execute([&wo.id])?;
                } else {
                    insert.execute(params![
                        next,
                        wo.id,
                        status,
                        wo.factory,
                        wo.parent,
                        wo.priority,
                        wo.created_at,
                        record
                    ])?;
                    next += 1;
                }
                for d in &wo.depends_on {
                    add_dep.execute([&wo.id, d])?;
                }
                Ok(())
            })();
            if let Err(e) = r {
                result = Err(e);
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;
    use crate::workorder::{self, CreateRequest, Lookup, Status, WoType};

    fn store_in(dir: &std::path::Path) -> Store {
        Store::init(&dir.join(".work"), StoreOptions::default()).unwrap()
    }

    fn create(store: &Store, title: &str, parent: Option<&str>) -> String {
        let mut w = store.lock().unwrap();
        let evs = workorder::create(
            &mut w,
            "wo",
            "tester",
            CreateRequest {
                title: title.into(),
                kind: WoType::Task,
                priority: (title.len() % 5) as u8,
                description: "d".into(),
                labels: vec![],
                parent: parent.map(str::to_string),
            },
        )
        .unwrap();
        evs[0].data_value()["id"].as_str().unwrap().to_string()
    }

    fn apply(store: &Store, ev: crate::event::NewEvent) {
        store.append(vec![ev]).unwrap();
    }

    fn wo(store: &Store, id: &str) -> WorkOrder {
        store
            .rebuild::<WorkOrders>()
            .unwrap()
            .state
            .get(id)
            .unwrap()
    }

    /// Every record of the index is the projection's line, byte for byte, and nothing more.
    fn same_as_projection(store: &Store, idx: &Index) {
        let p = store.rebuild::<WorkOrders>().unwrap();
        for line in p.state.raw_lines() {
            let id = serde_json::from_slice::<WorkOrder>(&line).unwrap().id;
            assert_eq!(
                idx.record(&id).unwrap().as_deref().map(str::as_bytes),
                Some(&line[..]),
                "{id}"
            );
        }
        assert_eq!(idx.count().unwrap(), p.state.len() as u64);
        assert_eq!(idx.issues(), &p.issues[..]);
    }

    #[test]
    fn the_index_answers_as_the_projection_and_follows_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let a = create(&store, "a", None);
        let b = create(&store, "bb", None);
        let c1 = create(&store, "child", Some(&a));
        let idx = Index::open(&store).unwrap();
        same_as_projection(&store, &idx);
        assert_eq!(idx.children(&a).unwrap(), vec![c1.clone()]);
        drop(idx);
        // More events after it was built: the next open applies them.
        let dep =
            workorder::plan_dep_add(&store.rebuild::<WorkOrders>().unwrap().state, &b, &a, "t")
                .unwrap();
        apply(&store, dep);
        let q = workorder::plan_transition(&wo(&store, &b), Status::Queued, None, Some("f1"), "t")
            .unwrap();
        apply(&store, q);
        let closed = workorder::plan_close(&wo(&store, &c1), Some("done"), None, "t").unwrap();
        apply(&store, closed);
        let c2 = create(&store, "child two", Some(&a));
        let idx = Index::open(&store).unwrap();
        same_as_projection(&store, &idx);
        assert_eq!(idx.dependents(&a).unwrap(), vec![b.clone()]);
        assert_eq!(idx.children(&a).unwrap(), vec![c1.clone(), c2.clone()]);
        assert_eq!(
            idx.queued("f1")
                .unwrap()
                .iter()
                .map(|w| w.id.clone())
                .collect::<Vec<_>>(),
            vec![b.clone()]
        );
        assert!(idx.queued("f2").unwrap().is_empty());
        let open: Vec<String> = idx
            .open_records()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str::<WorkOrder>(l).unwrap().id)
            .collect();
        assert!(!open.contains(&c1) && open.contains(&a) && open.len() == 3);
        // History: the events about b, from the log, in order.
        let h = idx.history(&b, 10).unwrap();
        let types: Vec<&str> = h.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "work_order.created",
                "work_order.dependency_added",
                "work_order.status_changed"
            ]
        );
        assert_eq!(
            idx.history(&b, 1).unwrap()[0].event_type,
            "work_order.status_changed"
        );
        let full = workorder::history(&store, &wo(&store, &b)).unwrap();
        assert_eq!(
            full.iter().map(|e| &e.event_id).collect::<Vec<_>>(),
            h.iter().map(|e| &e.event_id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_wal_stays_between_commands_and_is_truncated_once_large() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let wal = dir.path().join(".work").join(format!("{INDEX_FILE}-wal"));
        create(&store, "a", None);
        drop(Index::open(&store).unwrap());
        // Kept by the close (the next command does not make it again), and small.
        let kept = std::fs::metadata(&wal).expect("the WAL is kept").len();
        assert!(kept <= WAL_TRUNCATE_BYTES, "{kept}");
        // A catch-up bigger than the bound (as the first build of a big index is).
        let mut w = store.lock().unwrap();
        for i in 0..400 {
            let req = CreateRequest {
                title: format!("work order {i}"),
                kind: WoType::Task,
                priority: 2,
                description: "x".repeat(2000),
                labels: vec![],
                parent: None,
            };
            workorder::create(&mut w, "wo", "tester", req).unwrap();
        }
        drop(w);
        let idx = Index::open(&store).unwrap();
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(
            grown > WAL_TRUNCATE_BYTES,
            "the test must grow the WAL: {grown}"
        );
        drop(idx);
        let after = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert!(after <= WAL_TRUNCATE_BYTES, "{after}");
        // Nothing was lost to the truncation.
        same_as_projection(&store, &Index::open(&store).unwrap());
    }

    #[test]
    fn an_index_that_does_not_match_the_log_or_is_damaged_is_built_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        create(&store, "a", None);
        drop(Index::open(&store).unwrap());
        // The log replaced by another history.
        std::fs::remove_file(store.live_partitions().unwrap().pop().unwrap().path).unwrap();
        std::fs::remove_file(store.dir().join("work_orders.ids")).unwrap();
        let b = create(&store, "b", None);
        let idx = Index::open(&store).unwrap();
        same_as_projection(&store, &idx);
        assert_eq!(idx.count().unwrap(), 1);
        assert!(idx.get(&b).unwrap().is_some());
        drop(idx);
        // Garbage in place of the database.
        let path = store.dir().join(INDEX_FILE);
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let idx = Index::open(&store).unwrap();
        same_as_projection(&store, &idx);
        drop(idx);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A symlink in its place is refused; the look-up falls back to the projection.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere.db"), &path).unwrap();
        assert!(Index::open(&store).is_err());
        assert!(!dir.path().join("elsewhere.db").exists());
        let l = Lookup::open(&store).unwrap();
        assert!(matches!(l, Lookup::Loaded(_)));
        assert!(l.get(&b).unwrap().is_some());
    }

    #[test]
    fn a_damaged_log_gives_the_index_what_it_gives_the_projection() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let a = create(&store, "a", None);
        drop(Index::open(&store).unwrap());
        let q =
            workorder::plan_transition(&wo(&store, &a), Status::Queued, None, None, "t").unwrap();
        apply(&store, q);
        let part = store.live_partitions().unwrap().pop().unwrap().path;
        let text = std::fs::read_to_string(&part).unwrap();
        let first = text.lines().next().unwrap().to_string();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .unwrap();
        std::io::Write::write_all(&mut f, format!("garbage\n{first}\n").as_bytes()).unwrap();
        drop(f);
        let b = create(&store, "b", None);
        let idx = Index::open(&store).unwrap();
        same_as_projection(&store, &idx);
        assert!(idx.get(&b).unwrap().is_some());
        assert_eq!(idx.get(&a).unwrap().unwrap().status, Status::Queued);
    }

    #[test]
    fn a_loaded_projection_refreshes_with_only_the_new_events() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        create(&store, "a", None);
        let mut l = store.load::<WorkOrders>().unwrap();
        assert_eq!(l.refresh(&store).unwrap(), 0);
        let b = create(&store, "b", None);
        assert_eq!(l.refresh(&store).unwrap(), 1);
        assert!(l.state.contains(&b));
        let fresh = store.rebuild::<WorkOrders>().unwrap();
        assert!(store.same_state(&l, &fresh).unwrap());
    }
}

#[cfg(test)]
mod doctor_tests {
    use super::*;
    use crate::store::StoreOptions;
    use crate::workorder::{self, CreateRequest, WoType};

    #[test]
    fn doctor_reports_a_damaged_index_and_a_rebuild_resets_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init(&dir.path().join(".work"), StoreOptions::default()).unwrap();
        let mut ids = Vec::new();
        for t in ["a", "b"] {
            let mut w = store.lock().unwrap();
            let evs = workorder::create(
                &mut w,
                "wo",
                "t",
                CreateRequest {
                    title: t.into(),
                    kind: WoType::Task,
                    priority: 2,
                    description: String::new(),
                    labels: vec![],
                    parent: None,
                },
            )
            .unwrap();
            ids.push(evs[0].data_value()["id"].as_str().unwrap().to_string());
        }
        crate::health::rebuild_all(&store).unwrap();
        drop(Index::open(&store).unwrap());
        assert!(crate::health::check_store(&store).unwrap().ok);
        // A record flipped inside the database.
        let conn = Connection::open(store.dir().join(INDEX_FILE)).unwrap();
        conn.execute(
            "UPDATE wo SET record = replace(record, '\"open\"', '\"closed\"'), status='closed' WHERE id=?1",
            [&ids[1]],
        )
        .unwrap();
        drop(conn);
        let h = crate::health::check_store(&store).unwrap();
        assert!(!h.ok);
        let p = h
            .problems
            .iter()
            .find(|p| p.file.as_deref() == Some(".work/work_orders.db"))
            .unwrap_or_else(|| panic!("{:?}", h.problems));
        assert!(p.problem.contains(&ids[1]), "{}", p.problem);
        // `wo rebuild-projections` (and `co doctor --fix`) make the next look-up build it again.
        let fixed = crate::health::rebuild_mismatched(&store).unwrap();
        assert_eq!(fixed, vec![INDEX_FILE.to_string()]);
        let idx = Index::open(&store).unwrap();
        assert_eq!(
            idx.get(&ids[1]).unwrap().unwrap().status,
            crate::workorder::Status::Open
        );
        drop(idx);
        assert!(crate::health::check_store(&store).unwrap().ok);
    }
}
