//! `wo list`: open work by default, sorted by priority then age. At a company's root it lists
//! every store of the company (its own and each factory's) with a FACTORY column.

use crate::ctx::{self, Global, View};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::borrow::Cow;
use std::io::Write;
use std::process::ExitCode;
use vermas_core::clock::parse_timestamp;
use vermas_core::store::{Issue, Loaded};
use vermas_core::workorder::{Index, Status, WoType, WorkOrders};
use vermas_core::{Error, Result};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Open work, most urgent first (at the company root: every factory's too)",
    "wo list",
    "# What failed, in every factory",
    "wo list --status failed",
    "# Open bugs older than a month, as JSON",
    "wo list --type bug --older-than 30d --json",
    "# One factory's work in review or rework",
    "wo list --factory myproject --status in_review,rework",
))]
pub struct Args {
    /// Only these statuses (comma-separated or repeated)
    #[arg(long, value_parser = super::status_parser(), value_delimiter = ',')]
    status: Vec<Status>,
    /// Only these types
    #[arg(long = "type", value_name = "TYPE", value_parser = super::type_parser(), value_delimiter = ',')]
    kind: Vec<WoType>,
    /// Only this priority (0-4)
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=4))]
    priority: Option<u8>,
    /// Only work assigned to this agent
    #[arg(long)]
    assignee: Option<String>,
    /// Only work carrying this label (repeat: all of them)
    #[arg(long)]
    label: Vec<String>,
    /// Only work created longer ago than this: 90s, 15m, 1h, 7d or 2w
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    older_than: Option<chrono::Duration>,
    /// Include closed and cancelled work
    #[arg(long)]
    all: bool,
    /// Only this factory's work (at the company root every store is listed)
    #[arg(long, value_name = "NAME")]
    factory: Option<String>,
    /// JSON array, one record per line
    #[arg(long)]
    json: bool,
}

/// The fields `wo list` filters and sorts on, borrowed from a record line: parsing only these
/// (and checking that the rest of the record is there) is much cheaper than a whole record.
#[derive(Debug, Deserialize)]
struct Summary<'a> {
    status: Status,
    #[serde(rename = "type")]
    kind: WoType,
    priority: u8,
    #[serde(borrow, default)]
    assignee: Option<Cow<'a, str>>,
    #[serde(borrow)]
    labels: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    // What the table shows besides.
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    // The other fields a record must have (a line without them is not a work order and is
    // not listed, as when records were parsed whole).
    #[serde(rename = "description")]
    _description: IgnoredAny,
    #[serde(rename = "depends_on")]
    _depends_on: IgnoredAny,
    #[serde(rename = "attempts")]
    _attempts: IgnoredAny,
    #[serde(rename = "children")]
    _children: IgnoredAny,
    #[serde(rename = "created_by")]
    _created_by: IgnoredAny,
    #[serde(rename = "updated_at")]
    _updated_at: IgnoredAny,
    #[serde(rename = "status_changed_at")]
    _status_changed_at: IgnoredAny,
    #[serde(rename = "seq")]
    _seq: IgnoredAny,
}

impl Args {
    fn keep(&self, w: &Summary<'_>, now: chrono::DateTime<chrono::Utc>) -> bool {
        if self.status.is_empty() {
            if !self.all && w.status.is_done() {
                return false;
            }
        } else if !self.status.contains(&w.status) {
            return false;
        }
        if !self.kind.is_empty() && !self.kind.contains(&w.kind) {
            return false;
        }
        if self.priority.is_some_and(|p| p != w.priority) {
            return false;
        }
        if let Some(a) = &self.assignee
            && w.assignee.as_deref() != Some(a.as_str())
        {
            return false;
        }
        if !self
            .label
            .iter()
            .all(|l| w.labels.iter().any(|x| x == l.as_str()))
        {
            return false;
        }
        if let Some(d) = self.older_than {
            match parse_timestamp(&w.created_at) {
                Some(t) if now - t > d => {}
                _ => return false,
            }
        }
        true
    }
}

/// Writes `[` + lines + `]` with one compact record per line. The lines go to the kernel as
/// they are (vectored writes of up to 1,024 pieces), not copied through a buffer first.
pub fn write_json_lines(lines: &[&[u8]]) -> Result<()> {
    use std::io::IoSlice;
    let out = std::io::stdout();
    let mut out = out.lock();
    let io = |e: std::io::Error| Error::failure(format!("writing output: {e}"));
    let mut pieces: Vec<IoSlice<'_>> = Vec::with_capacity(1024);
    let mut flush = |pieces: &mut Vec<IoSlice<'_>>| -> std::io::Result<()> {
        let mut rest = &mut pieces[..];
        while !rest.is_empty() {
            match out.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        pieces.clear();
        Ok(())
    };
    pieces.push(IoSlice::new(b"["));
    for (i, l) in lines.iter().enumerate() {
        pieces.push(IoSlice::new(if i == 0 { b"\n" } else { b",\n" }));
        pieces.push(IoSlice::new(l));
        if pieces.len() >= 1024 {
            flush(&mut pieces).map_err(io)?;
        }
    }
    pieces.push(IoSlice::new(if lines.is_empty() {
        b"]\n"
    } else {
        b"\n]\n"
    }));
    flush(&mut pieces).map_err(io)?;
    out.flush().map_err(io)
}

/// One work order that passed the filters: its sort key, its line, and what the output needs
/// of it besides (`()` for JSON, which stays small: 100,000 of them are sorted; the table's row).
struct Kept<'a, R> {
    /// Which store of the view it comes from.
    part: usize,
    priority: u8,
    created_at: Cow<'a, str>,
    line: &'a [u8],
    row: R,
}

/// Filters record lines (in order), parsing only the summary of each; `row` makes what the
/// output needs of each one kept (on the filtering thread, so a long table's rows are made on
/// two threads).
fn filter<'a, R>(
    a: &Args,
    lines: &'a [Cow<'a, [u8]>],
    now: DateTime<Utc>,
    part: usize,
    row: &impl Fn(Summary<'a>) -> R,
) -> Vec<Kept<'a, R>> {
    let text = !a.json;
    let mut kept = Vec::new();
    for raw in lines {
        if let Some(w) = summary_for(raw, text)
            && a.keep(&w, now)
        {
            kept.push(Kept {
                part,
                priority: w.priority,
                created_at: w.created_at.clone(),
                line: &raw[..],
                row: row(w),
            });
        }
    }
    kept
}

/// The summary of a record line: the fast scanner for lines as `wo` writes them, serde for
/// anything else (and for records that are not work orders, `None`).
#[cfg(test)]
fn summary(raw: &[u8]) -> Option<Summary<'_>> {
    summary_for(raw, true)
}

/// [`summary`]; without `text` (JSON output) the fast scanner leaves `id` and `title` empty
/// (checked, not read: only the table shows them).
fn summary_for(raw: &[u8], text: bool) -> Option<Summary<'_>> {
    fast::summary_for(raw, text).or_else(|| serde_json::from_slice(raw).ok())
}

/// Work orders at or above this count are filtered on two threads.
const PARALLEL_MIN: usize = 4096;

/// Whether the filters can only match open work (not closed or cancelled): then the index's
/// list of open work orders holds every answer.
fn open_only(a: &Args) -> bool {
    if a.status.is_empty() {
        !a.all
    } else {
        a.status.iter().all(|s| !s.is_done())
    }
}

/// The record lines of the open work orders from the index, when there are few of them
/// (under a quarter of all): then reading them costs what they are, not the whole history.
/// `None`: read the projection (also when the index cannot be used).
fn open_from_index(c: &vermas_core::context::StoreContext) -> Option<(Vec<Vec<u8>>, Vec<Issue>)> {
    // A small projection is read whole in about the time the index takes to open.
    const SMALL: u64 = 4 << 20;
    let projection = c.store.dir().join("work_orders.jsonl");
    if std::fs::metadata(&projection).is_ok_and(|m| m.len() < SMALL) {
        return None;
    }
    let idx = Index::open(&c.store).ok()?;
    let total = idx.count().ok()?;
    let limit = total / 4 + 1;
    if idx.count_open(limit).ok()? >= limit {
        return None;
    }
    let lines = idx
        .open_records()
        .ok()?
        .into_iter()
        .map(String::into_bytes)
        .collect();
    Some((lines, idx.issues().to_vec()))
}

/// The record lines of one store: the index's open work orders, or the whole projection.
enum Records {
    Index(Vec<Vec<u8>>),
    Projection(Box<Loaded<WorkOrders>>),
}

impl Records {
    fn read(c: &vermas_core::context::StoreContext, open_only: bool) -> Result<Records> {
        if open_only && let Some((lines, issues)) = open_from_index(c) {
            ctx::warn_issues(&issues);
            return Ok(Records::Index(lines));
        }
        Ok(Records::Projection(Box::new(ctx::work_orders(c)?)))
    }

    fn lines(&self) -> Vec<Cow<'_, [u8]>> {
        match self {
            Records::Index(lines) => lines.iter().map(|l| Cow::Borrowed(&l[..])).collect(),
            Records::Projection(loaded) => loaded.state.raw_lines().collect(),
        }
    }
}

/// [`filter`] over one store's lines, on two threads when there are many; the kept work orders
/// come in pieces (in order), never copied into one vector.
fn filter_store<'a, R: Send>(
    a: &Args,
    lines: &'a [Cow<'a, [u8]>],
    now: DateTime<Utc>,
    part: usize,
    row: &(impl Fn(Summary<'a>) -> R + Sync),
    out: &mut Vec<Vec<Kept<'a, R>>>,
) {
    if lines.len() < PARALLEL_MIN {
        out.push(filter(a, lines, now, part, row));
        return;
    }
    let (first, second) = lines.split_at(lines.len() / 2);
    let (a1, a2) = both(
        || filter(a, first, now, part, row),
        || filter(a, second, now, part, row),
    );
    out.push(a1);
    out.push(a2);
}

/// The work orders of every store of the view that pass the filters, in pieces.
fn kept<'a, R: Send>(
    a: &Args,
    stores: &'a [Vec<Cow<'a, [u8]>>],
    now: DateTime<Utc>,
    row: impl Fn(Summary<'a>) -> R + Sync,
) -> Vec<Vec<Kept<'a, R>>> {
    let mut out = Vec::new();
    for (part, lines) in stores.iter().enumerate() {
        filter_store(a, lines, now, part, &row, &mut out);
    }
    out
}

pub fn run(g: &Global, a: Args) -> Result<ExitCode> {
    let view: View = g.view(a.factory.as_deref())?;
    let now = chrono::Utc::now();
    let records = view
        .parts
        .iter()
        .map(|p| Records::read(&p.ctx, open_only(&a)))
        .collect::<Result<Vec<Records>>>()?;
    let lines: Vec<Vec<Cow<'_, [u8]>>> = records.iter().map(Records::lines).collect();
    if a.json {
        let kept = kept(&a, &lines, now, |_| ());
        let lines: Vec<&[u8]> = sorted(&kept).iter().map(|k| k.line).collect();
        write_json_lines(&lines)?;
        return Ok(ExitCode::SUCCESS);
    }
    let kept = kept(&a, &lines, now, |w| table::Row::of(w, now));
    let order = sorted(&kept);
    if order.is_empty() {
        eprintln!("No work orders match.");
        return Ok(ExitCode::SUCCESS);
    }
    let labels: Option<Vec<&str>> = view
        .across
        .then(|| view.parts.iter().map(|p| p.label()).collect());
    let table = table::Table::measure(
        kept.iter().flatten(),
        labels.as_deref(),
        vermas_cli::color::stdout(),
    );
    let mut stdout = std::io::stdout().lock();
    table
        .write(&order, &mut stdout)
        .and_then(|_| stdout.flush())
        .map_err(|e| Error::failure(format!("writing output: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

/// `a` here and `b` on another thread (here too when no thread can be had).
fn both<A, B: Send>(a: impl FnOnce() -> A, b: impl Fn() -> B + Sync) -> (A, B) {
    std::thread::scope(|s| {
        let other = std::thread::Builder::new()
            .name("wo-list".into())
            .spawn_scoped(s, &b);
        let first = a();
        let second = match other {
            Ok(h) => match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(_) => b(),
        };
        (first, second)
    })
}

/// The work order table, made straight from the record lines: only the fields it shows are
/// read (borrowed, no whole record parsed). Each row is made as its work order is filtered (on
/// two threads for long lists) with its cells' widths; once sorted, a long table's lines are
/// laid out in two halves on two threads, the first half written out as it is made. The same
/// text as `print::work_order_table`.
mod table {
    use super::{Kept, PARALLEL_MIN, Summary, both};
    use chrono::{DateTime, Utc};
    use std::borrow::Cow;
    use std::io::Write;
    use vermas_core::clock::{age_parts, parse_timestamp};
    use vermas_core::text::{escape_control, is_invisible, truncate};
    use vermas_core::workorder::{Status, WoType};

    /// The columns; FACTORY only in a view across a company's stores.
    const HEADER: [&str; 8] = [
        "FACTORY", "ID", "PRI", "TYPE", "STATUS", "ASSIGNEE", "AGE", "TITLE",
    ];
    /// The column that is painted.
    const STATUS: usize = 4;
    /// The longest title shown, in characters.
    const TITLE_MAX: usize = 80;

    /// A short cell held inline, a priority (`P2`) or an age (`42s`): a `String` per row would
    /// be 100,000 allocations and frees in a long list.
    #[derive(Clone, Copy)]
    struct Short {
        buf: [u8; 22],
        len: u8,
    }

    impl Short {
        const UNKNOWN: Short = Short {
            buf: *b"?                     ",
            len: 1,
        };

        /// `before`, `n` in decimal, `after`: ASCII, two bytes besides the digits at most.
        fn number(before: &str, n: u64, after: &str) -> Short {
            let mut digits = [0u8; 20];
            let (mut i, mut n) = (digits.len(), n);
            loop {
                i -= 1;
                digits[i] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            let mut s = Short {
                buf: [0; 22],
                len: 0,
            };
            for part in [before.as_bytes(), &digits[i..], after.as_bytes()] {
                let at = usize::from(s.len);
                s.buf[at..at + part.len()].copy_from_slice(part);
                s.len += part.len() as u8;
            }
            s
        }

        /// An age as `clock::human_age` writes it (`clock::age_parts`).
        fn age(secs: i64) -> Short {
            let (n, unit) = age_parts(secs);
            Short::number("", n.unsigned_abs(), unit.encode_utf8(&mut [0; 4]))
        }

        fn as_str(&self) -> &str {
            // Only ASCII is ever written.
            std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("?")
        }
    }

    /// One row of the table, made as its work order is filtered: the cells that vary, each
    /// measured once, as its text is checked.
    pub(super) struct Row<'a> {
        id: Cow<'a, str>,
        assignee: Cow<'a, str>,
        title: Cow<'a, str>,
        /// How wide `id`, `assignee` and `title` are on screen.
        widths: [u32; 3],
        priority: Short,
        age: Short,
        kind: WoType,
        status: Status,
    }

    impl<'a> Row<'a> {
        pub(super) fn of(w: Summary<'a>, now: DateTime<Utc>) -> Row<'a> {
            let age = match stored_time(&w.created_at).or_else(|| parse_timestamp(&w.created_at)) {
                Some(t) => Short::age((now - t).num_seconds()),
                None => Short::UNKNOWN,
            };
            let (assignee, assignee_width) = match w.assignee {
                Some(a) => shown(a, None),
                None => (Cow::Borrowed("-"), 1),
            };
            let (title, title_width) = shown(w.title, Some(TITLE_MAX));
            let id_width = width(&w.id);
            Row {
                id: w.id,
                assignee,
                title,
                widths: [id_width, assignee_width, title_width].map(|n| n as u32),
                priority: Short::number("P", w.priority.into(), ""),
                age,
                kind: w.kind,
                status: w.status,
            }
        }

        /// The eight cells in column order with their widths, `factory` first.
        fn cells<'r>(&'r self, factory: (&'r str, usize)) -> [(&'r str, usize); 8] {
            let [id, assignee, title] = self.widths.map(|n| n as usize);
            let fixed = |s: &'r str| (s, s.len());
            [
                factory,
                (&self.id, id),
                fixed(self.priority.as_str()),
                fixed(self.kind.as_str()),
                fixed(self.status.as_str()),
                (&self.assignee, assignee),
                fixed(self.age.as_str()),
                (&self.title, title),
            ]
        }
    }

    /// Printable ASCII only: no control or invisible character, as wide as it is long. Read
    /// without stopping early, so the compiler checks many bytes at a time.
    fn printable_ascii(s: &str) -> bool {
        s.bytes()
            .fold(true, |ok, b| ok & (b.wrapping_sub(0x20) < 0x5f))
    }

    /// A stored string as the table shows it, and its width: as it is unless it holds a
    /// control or invisible character or is too long (nearly always as it is).
    fn shown(s: Cow<'_, str>, max: Option<usize>) -> (Cow<'_, str>, usize) {
        if printable_ascii(&s) && max.is_none_or(|m| s.len() <= m) {
            let n = s.len();
            return (s, n);
        }
        let plain = !s.chars().any(|c| c.is_control() || is_invisible(c));
        let out = match (plain, max) {
            (true, None) => s,
            (true, Some(m)) if s.chars().count() <= m => s,
            (true, Some(m)) => Cow::Owned(truncate(&s, m)),
            (false, Some(m)) => Cow::Owned(truncate(&escape_control(&s), m)),
            (false, None) => Cow::Owned(escape_control(&s)),
        };
        let n = width(&out);
        (out, n)
    }

    /// `2026-11-21T12:00:00.123Z`, the form the store writes, read without the general
    /// RFC 3339 parser (the same instant; anything else goes to that parser).
    fn stored_time(s: &str) -> Option<DateTime<Utc>> {
        let b = s.as_bytes();
        if b.len() != 24 || [b[4], b[7], b[10], b[13], b[16], b[19], b[23]] != *b"--T::.Z" {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let t = date.and_hms_milli_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?)?;
        Some(t.and_utc())
    }

    /// How wide a cell is on screen (characters; every cell is escaped, so no control ones).
    fn width(s: &str) -> usize {
        if s.is_ascii() {
            s.len()
        } else {
            s.chars().count()
        }
    }

    /// How the table is laid out: the columns' widths, each store's name and its width (in
    /// a view across a company's stores, by the part of the view it is), the paint.
    pub(super) struct Table<'l> {
        widths: [usize; 8],
        labels: Option<Vec<(&'l str, usize)>>,
        color: bool,
    }

    impl<'l> Table<'l> {
        /// The layout of these rows (in any order); with `labels` a FACTORY column comes
        /// first; with `color` the status words are painted (the columns are measured on the
        /// plain text).
        pub(super) fn measure<'k, 'a: 'k>(
            rows: impl Iterator<Item = &'k Kept<'a, Row<'a>>>,
            labels: Option<&[&'l str]>,
            color: bool,
        ) -> Table<'l> {
            let mut table = Table {
                widths: HEADER.map(width),
                labels: labels.map(|l| l.iter().map(|&l| (l, width(l))).collect()),
                color,
            };
            for k in rows {
                let cells = table.cells(k).map(|(_, w)| w);
                for (all, w) in table.widths.iter_mut().zip(cells) {
                    *all = (*all).max(w);
                }
            }
            table
        }

        /// The first column shown: without a FACTORY column the table starts at ID.
        fn first(&self) -> usize {
            if self.labels.is_some() { 0 } else { 1 }
        }

        /// A work order's cells, its store's name first.
        fn cells<'r>(&'r self, k: &'r Kept<'_, Row<'_>>) -> [(&'r str, usize); 8] {
            let factory = self
                .labels
                .as_ref()
                .and_then(|l| l.get(k.part))
                .copied()
                .unwrap_or(("", 0));
            k.row.cells(factory)
        }

        /// Writes the header and the rows in `order`. A long table is laid out in two halves
        /// on two threads; the first half is written as it is made.
        pub(super) fn write(
            &self,
            order: &[&Kept<'_, Row<'_>>],
            out: &mut impl Write,
        ) -> std::io::Result<()> {
            let mut header = String::new();
            self.line(&mut header, HEADER.map(|h| (h, width(h))), false);
            out.write_all(header.as_bytes())?;
            if order.len() < PARALLEL_MIN {
                return self.stream(order, out);
            }
            let (first, second) = order.split_at(order.len() / 2);
            let (written, rest) = both(
                || self.stream(first, out),
                || {
                    let shown: usize = self.widths[self.first()..].iter().sum();
                    let mut rest = String::with_capacity(second.len() * (shown + 16));
                    for k in second {
                        self.line(&mut rest, self.cells(k), self.color);
                    }
                    rest
                },
            );
            written?;
            out.write_all(rest.as_bytes())
        }

        /// The lines of `rows` written to `out` in pieces of about 64 KiB.
        fn stream(&self, rows: &[&Kept<'_, Row<'_>>], out: &mut impl Write) -> std::io::Result<()> {
            const PIECE: usize = 64 << 10;
            let mut buf = String::with_capacity(PIECE + 1024);
            for k in rows {
                self.line(&mut buf, self.cells(k), self.color);
                if buf.len() >= PIECE {
                    out.write_all(buf.as_bytes())?;
                    buf.clear();
                }
            }
            out.write_all(buf.as_bytes())
        }

        /// One line of the table into `out`; with `paint`, its status word in colour.
        fn line(&self, out: &mut String, cells: [(&str, usize); 8], paint: bool) {
            let start = out.len();
            // STATUS is never the last column, so trimming the line's end below never meets
            // a painted word.
            for (i, &(cell, cell_width)) in cells.iter().enumerate().skip(self.first()) {
                let style = if paint && i == STATUS {
                    vermas_cli::color::status_style(cell)
                } else {
                    None
                };
                match style {
                    Some(st) => {
                        use std::fmt::Write;
                        let _ = write!(out, "{}{cell}{}", st.render(), st.render_reset());
                    }
                    None => out.push_str(cell),
                }
                if i + 1 < cells.len() {
                    const SPACES: &str =
                        "                                                                ";
                    let mut pad = self.widths[i] - cell_width + 2;
                    while pad > 0 {
                        let n = pad.min(SPACES.len());
                        out.push_str(&SPACES[..n]);
                        pad -= n;
                    }
                }
            }
            let kept = out[start..].trim_end().len();
            out.truncate(start + kept);
            out.push('\n');
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use vermas_core::workorder::WorkOrder;

        /// The table `wo list` writes of these work orders, read from their record lines as
        /// `wo list` reads them; `factories`: one per work order.
        fn rendered(list: &[WorkOrder], factories: Option<&[&str]>, color: bool) -> String {
            let lines: Vec<Vec<u8>> = list
                .iter()
                .map(|w| serde_json::to_vec(w).unwrap())
                .collect();
            let now = Utc::now();
            let kept: Vec<Kept<'_, Row<'_>>> = lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let w = crate::cmd::list::summary(l).unwrap();
                    Kept {
                        part: i,
                        priority: w.priority,
                        created_at: w.created_at.clone(),
                        line: l,
                        row: Row::of(w, now),
                    }
                })
                .collect();
            let order: Vec<&Kept<'_, Row<'_>>> = kept.iter().collect();
            let table = Table::measure(kept.iter(), factories, color);
            let mut out = Vec::new();
            table.write(&order, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        }

        #[test]
        fn the_table_is_the_one_print_makes() {
            let mut a: WorkOrder = serde_json::from_str(r#"{"id":"wo-abc123","title":"Fix \"it\"\n\ttab ü ✓ \u001b[31m","type":"bug","priority":1,"status":"in_progress","description":"d","labels":[],"parent":null,"depends_on":[],"assignee":"f/workers/slot1","factory":"f","attempts":2,"incarnation":null,"branch":null,"merge_commit":null,"close_reason":null,"last_failure":null,"children":0,"created_by":"human","created_at":"2026-11-21T12:00:00.000Z","updated_at":"2026-11-21T12:00:00.000Z","status_changed_at":"2026-11-21T12:00:00.000Z","closed_at":null,"seq":42}"#).unwrap();
            let mut b = a.clone();
            b.id = "wo-b".into();
            b.assignee = None;
            b.title = "x".repeat(120);
            b.created_at = "not a time".into();
            // A priority outside P0-P4 (written by hand) is shown as it is.
            b.priority = 17;
            a.title.push_str("  ");
            let list = vec![a, b];
            let want = crate::print::work_order_table(&list);
            assert_eq!(rendered(&list, None, false), want);
            // Across a company's stores a FACTORY column comes first; painted, the words are
            // the same and the columns stay where they were.
            let across = rendered(&list, Some(&["myproject", "(company)"]), false);
            let first: Vec<&str> = across.lines().collect();
            assert!(first[0].starts_with("FACTORY    ID"), "{across}");
            assert!(first[2].starts_with("(company)  wo-b"), "{across}");
            let painted = rendered(&list, None, true);
            assert!(painted.contains("\x1b["), "{painted}");
            let stripped: String = {
                let mut out = String::new();
                let mut esc = false;
                for c in painted.chars() {
                    match c {
                        '\x1b' => esc = true,
                        'm' if esc => esc = false,
                        _ if esc => {}
                        c => out.push(c),
                    }
                }
                out
            };
            assert_eq!(stripped, want);
        }

        #[test]
        fn a_long_table_made_in_two_halves_is_the_one_print_makes() {
            let mut list: Vec<WorkOrder> = Vec::new();
            for i in 0..super::PARALLEL_MIN + 3 {
                let mut w: WorkOrder = serde_json::from_str(r#"{"id":"wo-abc123","title":"t","type":"task","priority":2,"status":"open","description":"","labels":[],"parent":null,"depends_on":[],"assignee":null,"factory":null,"attempts":0,"incarnation":null,"branch":null,"merge_commit":null,"close_reason":null,"last_failure":null,"children":0,"created_by":"human","created_at":"2026-11-21T12:00:00.000Z","updated_at":"2026-11-21T12:00:00.000Z","status_changed_at":"2026-11-21T12:00:00.000Z","closed_at":null,"seq":1}"#).unwrap();
                w.id = format!("wo-{i:06}");
                // The widest cells only in the second half: widths come from both.
                if i > super::PARALLEL_MIN {
                    w.title = format!("a longer title ü {i}");
                    w.assignee = Some("myproject/workers/slot12".into());
                }
                list.push(w);
            }
            assert_eq!(
                rendered(&list, None, false),
                crate::print::work_order_table(&list)
            );
        }

        #[test]
        fn an_age_reads_as_human_age_writes_it() {
            for secs in [
                -5,
                0,
                1,
                59,
                60,
                61,
                3599,
                3600,
                86_399,
                86_400,
                10_000_000,
                i64::MAX,
            ] {
                assert_eq!(
                    Short::age(secs).as_str(),
                    vermas_core::clock::human_age(secs),
                    "{secs}"
                );
            }
            assert_eq!(Short::UNKNOWN.as_str(), "?");
        }

        #[test]
        fn stored_times_read_as_the_rfc_3339_parser_reads_them() {
            for s in [
                "2026-11-21T12:00:00.123Z",
                "2024-02-29T23:59:59.999Z",
                "1970-01-01T00:00:00.000Z",
            ] {
                assert_eq!(stored_time(s), parse_timestamp(s), "{s}");
            }
            for s in [
                "2026-02-30T12:00:00.000Z",
                "2026-11-21T24:00:00.000Z",
                "2026-11-21T12:00:00.000+01:00",
                "2026-11-21 12:00:00.000Z",
                "2026-1x-21T12:00:00.000Z",
            ] {
                assert_eq!(stored_time(s), None, "{s}");
            }
        }
    }
}

/// Stable sort by priority, then creation time. Records are kept in creation order, so within
/// a priority they are usually in time order already, and only the priorities need sorting.
/// Sorts references, so the kept work orders themselves never move.
fn sorted<'k, 'a, R>(kept: &'k [Vec<Kept<'a, R>>]) -> Vec<&'k Kept<'a, R>> {
    let mut order: Vec<&Kept<'a, R>> = kept.iter().flatten().collect();
    order.sort_by_key(|k| k.priority);
    for run in order.chunk_by_mut(|x, y| x.priority == y.priority) {
        if !run.is_sorted_by(|x, y| x.created_at <= y.created_at) {
            run.sort_by(|x, y| x.created_at.cmp(&y.created_at));
        }
    }
    order
}

/// A scanner for record lines exactly as `wo` writes them: one compact JSON object of strings,
/// numbers, `null` and arrays of strings. It reads the summary fields and checks the rest the
/// way serde would (required fields present once, strings closed, escapes valid, no control
/// characters), several times faster than serde. Whenever a line is anything else (whitespace,
/// `\u` escapes, escaped summary fields, nested objects, other number forms) it answers `None`
/// and the caller parses the line with serde, so what is listed stays exactly what serde
/// accepts.
mod fast {
    use super::Summary;
    use serde::de::IgnoredAny;
    use std::borrow::Cow;
    use vermas_core::workorder::{Status, WoType};

    /// The index of the first `"`, `\` or control character at or after `i` (or `b.len()`):
    /// eight bytes at a time, as serde_json's own string scanner does.
    fn find_special(b: &[u8], mut i: usize) -> usize {
        const ONES: u64 = u64::MAX / 255;
        const HIGH: u64 = ONES << 7;
        while let Some(chunk) = b.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let w = u64::from_le_bytes(w);
            let quote = w ^ (ONES * u64::from(b'"'));
            let slash = w ^ (ONES * u64::from(b'\\'));
            let found = (quote.wrapping_sub(ONES) & !quote)
                | (slash.wrapping_sub(ONES) & !slash)
                | (w.wrapping_sub(ONES * 0x20) & !w);
            let found = found & HIGH;
            if found != 0 {
                return i + (found.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while i < b.len() && !matches!(b[i], b'"' | b'\\' | 0..0x20) {
            i += 1;
        }
        i
    }

    struct Cursor<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Cursor<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }
        fn next(&mut self) -> Option<u8> {
            let c = self.peek()?;
            self.i += 1;
            Some(c)
        }
        fn eat(&mut self, c: u8) -> Option<()> {
            (self.next()? == c).then_some(())
        }
        fn literal(&mut self, lit: &[u8]) -> Option<()> {
            let end = self.i + lit.len();
            (self.b.get(self.i..end)? == lit).then(|| self.i = end)
        }

        /// A string: its raw bytes and whether it holds escapes.
        fn string(&mut self) -> Option<(&'a [u8], bool)> {
            self.eat(b'"')?;
            let start = self.i;
            let mut escaped = false;
            loop {
                let j = find_special(self.b, self.i);
                match *self.b.get(j)? {
                    b'"' => {
                        self.i = j + 1;
                        return Some((&self.b[start..j], escaped));
                    }
                    b'\\' => match *self.b.get(j + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {
                            escaped = true;
                            self.i = j + 2;
                        }
                        _ => return None,
                    },
                    _ => return None,
                }
            }
        }

        /// A string without escapes, as bytes.
        fn raw(&mut self) -> Option<&'a [u8]> {
            match self.string()? {
                (s, false) => Some(s),
                _ => None,
            }
        }

        /// A string without escapes, as UTF-8.
        fn plain(&mut self) -> Option<&'a str> {
            match self.string()? {
                (s, false) => std::str::from_utf8(s).ok(),
                _ => None,
            }
        }

        /// Digits with no leading zero.
        fn digits(&mut self) -> Option<&'a [u8]> {
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            let d = &self.b[start..self.i];
            (!d.is_empty() && (d.len() == 1 || d[0] != b'0')).then_some(d)
        }

        fn small(&mut self) -> Option<u8> {
            std::str::from_utf8(self.digits()?).ok()?.parse().ok()
        }

        /// `[]` or an array of strings, each without escapes.
        fn plain_array(&mut self) -> Option<Vec<Cow<'a, str>>> {
            self.eat(b'[')?;
            let mut out = Vec::new();
            if self.peek()? == b']' {
                self.i += 1;
                return Some(out);
            }
            loop {
                out.push(Cow::Borrowed(self.plain()?));
                match self.next()? {
                    b',' => {}
                    b']' => return Some(out),
                    _ => return None,
                }
            }
        }

        /// Any value a record holds: a string, a plain integer, `null`, or an array of strings.
        fn skip(&mut self) -> Option<()> {
            match self.peek()? {
                b'"' => self.string().map(|_| ()),
                b'n' => self.literal(b"null"),
                b'0'..=b'9' => self.digits().map(|_| ()),
                b'[' => {
                    self.i += 1;
                    if self.peek()? == b']' {
                        self.i += 1;
                        return Some(());
                    }
                    loop {
                        self.string()?;
                        match self.next()? {
                            b',' => {}
                            b']' => return Some(()),
                            _ => return None,
                        }
                    }
                }
                _ => None,
            }
        }
    }

    /// What a key of a record is to the scanner.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Key {
        /// A field `Summary` knows: its bit (all are required but `assignee`, bit 3).
        Known(u32),
        /// A field `Summary` ignores (`serde` skips it, duplicates and all).
        Other,
    }

    /// The keys of a record in the order `wo` writes them, so that each key is usually found
    /// with one comparison.
    const KEYS: [(&[u8], Key); 24] = [
        (b"id", Key::Known(6)),
        (b"title", Key::Known(7)),
        (b"type", Key::Known(1)),
        (b"priority", Key::Known(2)),
        (b"status", Key::Known(0)),
        (b"description", Key::Known(8)),
        (b"labels", Key::Known(4)),
        (b"parent", Key::Other),
        (b"depends_on", Key::Known(9)),
        (b"assignee", Key::Known(3)),
        (b"factory", Key::Other),
        (b"attempts", Key::Known(10)),
        (b"incarnation", Key::Other),
        (b"branch", Key::Other),
        (b"merge_commit", Key::Other),
        (b"close_reason", Key::Other),
        (b"last_failure", Key::Other),
        (b"children", Key::Known(11)),
        (b"created_by", Key::Known(12)),
        (b"created_at", Key::Known(5)),
        (b"updated_at", Key::Known(13)),
        (b"status_changed_at", Key::Known(14)),
        (b"closed_at", Key::Other),
        (b"seq", Key::Known(15)),
    ];
    const REQUIRED: u32 = 0xffff & !(1 << 3);

    /// What `key` is; `next` is where in [`KEYS`] to look first (and is moved past it).
    fn key_of(key: &[u8], next: &mut usize) -> Option<Key> {
        if let Some((k, what)) = KEYS.get(*next)
            && *k == key
        {
            *next += 1;
            return Some(*what);
        }
        let i = KEYS.iter().position(|(k, _)| *k == key)?;
        *next = i + 1;
        Some(KEYS[i].1)
    }

    fn status(s: &[u8]) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str().as_bytes() == s)
    }

    fn wo_type(s: &[u8]) -> Option<WoType> {
        WoType::ALL.into_iter().find(|x| x.as_str().as_bytes() == s)
    }

    #[cfg(test)]
    pub(super) fn summary(line: &[u8]) -> Option<Summary<'_>> {
        summary_for(line, true)
    }

    pub(super) fn summary_for(line: &[u8], text: bool) -> Option<Summary<'_>> {
        let mut c = Cursor { b: line, i: 0 };
        c.eat(b'{')?;
        let mut seen = 0u32;
        let (mut status, mut kind, mut priority) = (None, None, None);
        let (mut assignee, mut labels, mut created_at) = (None, None, None);
        let (mut id, mut title) = (None, None);
        let mut next = 0;
        loop {
            let key = match c.string()? {
                (k, false) => k,
                _ => return None,
            };
            c.eat(b':')?;
            match key_of(key, &mut next) {
                Some(Key::Known(bit)) => {
                    if seen & (1 << bit) != 0 {
                        return None;
                    }
                    seen |= 1 << bit;
                    match bit {
                        0 => status = Some(self::status(c.raw()?)?),
                        1 => kind = Some(wo_type(c.raw()?)?),
                        2 => priority = Some(c.small()?),
                        3 => {
                            assignee = if c.peek()? == b'n' {
                                c.literal(b"null")?;
                                None
                            } else {
                                Some(Cow::Borrowed(c.plain()?))
                            }
                        }
                        4 => labels = Some(c.plain_array()?),
                        5 => created_at = Some(Cow::Borrowed(c.plain()?)),
                        6 | 7 if !text => {
                            c.skip()?;
                            if bit == 6 {
                                id = Some(Cow::Borrowed(""));
                            } else {
                                title = Some(Cow::Borrowed(""));
                            }
                        }
                        6 => id = Some(Cow::Borrowed(c.plain()?)),
                        7 => title = Some(Cow::Borrowed(c.plain()?)),
                        _ => c.skip()?,
                    }
                }
                Some(Key::Other) => c.skip()?,
                None => {
                    std::str::from_utf8(key).ok()?;
                    c.skip()?;
                }
            }
            match c.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        if c.i != line.len() || seen & REQUIRED != REQUIRED {
            return None;
        }
        Some(Summary {
            status: status?,
            kind: kind?,
            priority: priority?,
            assignee,
            labels: labels?,
            created_at: created_at?,
            id: id?,
            title: title?,
            _description: IgnoredAny,
            _depends_on: IgnoredAny,
            _attempts: IgnoredAny,
            _children: IgnoredAny,
            _created_by: IgnoredAny,
            _updated_at: IgnoredAny,
            _status_changed_at: IgnoredAny,
            _seq: IgnoredAny,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vermas_core::workorder::WorkOrder;

    fn same(line: &str) {
        let fast = fast::summary(line.as_bytes());
        let serde = serde_json::from_str::<Summary>(line).ok();
        if let Some(f) = &fast {
            let s = serde
                .as_ref()
                .unwrap_or_else(|| panic!("fast accepts, serde refuses: {line}"));
            assert_eq!(
                (
                    f.status,
                    f.kind,
                    f.priority,
                    &f.assignee,
                    &f.labels,
                    &f.created_at,
                    &f.id,
                    &f.title
                ),
                (
                    s.status,
                    s.kind,
                    s.priority,
                    &s.assignee,
                    &s.labels,
                    &s.created_at,
                    &s.id,
                    &s.title
                ),
                "{line}"
            );
        }
    }

    fn record(wo: &WorkOrder) -> String {
        serde_json::to_string(wo).unwrap()
    }

    fn sample() -> WorkOrder {
        serde_json::from_str(r#"{"id":"wo-abc123","title":"Fix it / é ✓","type":"bug","priority":1,"status":"in_progress","description":"line\nline \\ back / slash é ✓","labels":["ui","backend"],"parent":null,"depends_on":["wo-x"],"assignee":"f/workers/slot1","factory":"f","attempts":2,"incarnation":null,"branch":null,"merge_commit":null,"close_reason":null,"last_failure":null,"children":0,"created_by":"human","created_at":"2026-11-21T12:00:00.000Z","updated_at":"2026-11-21T12:00:00.000Z","status_changed_at":"2026-11-21T12:00:00.000Z","closed_at":null,"seq":42}"#).unwrap()
    }

    #[test]
    fn the_fast_scanner_reads_records_as_wo_writes_them() {
        let wo = sample();
        let line = record(&wo);
        let f = fast::summary(line.as_bytes()).expect("a record as written is scanned");
        assert_eq!(f.status, Status::InProgress);
        assert_eq!(f.kind, WoType::Bug);
        assert_eq!(f.priority, 1);
        assert_eq!(f.assignee.as_deref(), Some("f/workers/slot1"));
        assert_eq!(f.labels, vec!["ui", "backend"]);
        assert_eq!(f.created_at, "2026-11-21T12:00:00.000Z");
        assert_eq!((&*f.id, &*f.title), ("wo-abc123", "Fix it / é ✓"));
        same(&line);
        // A title with escapes is left to serde, which reads it exactly.
        let mut quoted = wo.clone();
        quoted.title = "Fix \"it\"\n\ttab".into();
        let line = record(&quoted);
        assert!(fast::summary(line.as_bytes()).is_none());
        assert_eq!(summary(line.as_bytes()).unwrap().title, quoted.title);
        same(&line);
        let mut none = wo.clone();
        none.assignee = None;
        none.labels.clear();
        none.description = "\u{1b}[31m $(rm -rf /) `x`".into();
        let line = record(&none);
        assert!(line.contains("\\u001b"));
        same(&line);
        assert!(
            summary(line.as_bytes()).is_some(),
            "serde reads what the scanner leaves"
        );
    }

    #[test]
    fn the_fast_scanner_accepts_nothing_serde_refuses() {
        let good = record(&sample());
        let mut cases: Vec<String> = vec![
            good.replace(r#""seq":42"#, r#""seq":042"#),
            good.replace(r#""seq":42"#, r#""seq":-1"#),
            good.replace(r#""seq":42"#, r#""seq":4.5"#),
            good.replace(r#""priority":1"#, r#""priority":300"#),
            good.replace(r#""priority":1"#, r#""priority":"1""#),
            good.replace(r#""status":"in_progress""#, r#""status":"nope""#),
            good.replace(
                r#""status":"in_progress""#,
                r#""status":"in_progr\u0065ss""#,
            ),
            good.replace(r#","seq":42"#, ""),
            good.replace(r#","labels":["ui","backend"]"#, ""),
            good.replace(r#""assignee":"f/workers/slot1","#, ""),
            good.replace(r#""parent":null"#, r#""parent":{"a":1}"#),
            good.replace(r#""parent":null"#, r#""parent":true"#),
            good.replace(r#""parent":null"#, r#""parent":nul"#),
            good.replace(r#""labels":["ui","backend"]"#, r#""labels":["ui",1]"#),
            good.replace(r#""labels":["ui","backend"]"#, r#""labels":["ui",]"#),
            good.replace(r#""title":"Fix"#, "\"title\":\"F\u{1}ix"),
            good.replace(r#""title":"Fix"#, r#""title":"F\qix"#),
            good.replace(r#""title":"Fix"#, r#""title":"F\u00e9ix"#),
            good.replace(
                r#""id":"wo-abc123","#,
                r#""id":"wo-abc123","id":"wo-abc123","#,
            ),
            good.replace(r#""factory":"f","#, r#""factory":"f","factory":"g","#),
            good.replace(r#""factory":"f","#, r#""fact\"ory":"f","#),
            format!("{good} "),
            format!("{good}x"),
            format!(" {good}"),
            good.replace(',', ", "),
            good[..good.len() - 1].to_string(),
            good[..good.len() / 2].to_string(),
            "{}".to_string(),
            "[]".to_string(),
            String::new(),
        ];
        let mut bad_utf8 = good.clone().into_bytes();
        let at = bad_utf8.windows(3).position(|w| w == b"Fix").unwrap();
        bad_utf8[at] = 0xff;
        let mut bad_key = good.clone().into_bytes();
        let at = bad_key.windows(7).position(|w| w == b"factory").unwrap();
        bad_key[at] = 0xff;
        for bytes in [bad_utf8, bad_key] {
            let fast = fast::summary(&bytes).is_some();
            let serde = serde_json::from_slice::<Summary>(&bytes).is_ok();
            assert!(!fast || serde, "fast accepts what serde refuses");
        }
        for c in cases.drain(..) {
            same(&c);
        }
    }
}
