//! The `store` section: the figures of issue 2 ("Performance"), each beside a baseline measured
//! in the same run.
//!
//! 1. `wo create` with 0, 10k and 100k work orders, beside a bare append + `fdatasync` of an
//!    event line of the same size and the cost of spawning `/bin/true`;
//! 2. `wo list --json` over 100k work orders, beside `cat` of the projection file;
//! 3. `wo rebuild-projections` over 1M events, beside `jq -c .` and `cat` of the same files;
//! 4. 8 concurrent writer processes, beside one writer and the single-writer `fdatasync` rate;
//! 5. point look-ups and open work in a long history (1k, 100k, 1M work orders, 1,000 of them
//!    open): `wo show`, loading one work order in-process, and `wo list` (table and `--json`),
//!    beside `grep -m1` of the id.

use super::fill::{self, Amount, Mix};
use super::{
    Opts, Report, Row, Verdict, bin, command, fmt_count, fmt_dur, fmt_size, median, run_ok,
    tempdir, time,
};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use vermas_core::event::{ENVELOPE_VERSION, Event, types};
use vermas_core::store::{Store, StoreOptions};
use vermas_core::workorder::{self, CreateRequest, Created, WoType};

/// Sizes and repetitions for a full or a quick run.
struct Plan {
    create_sizes: [u64; 3],
    create_reps: usize,
    list_reps: usize,
    rebuild_events: u64,
    rebuild_reps: usize,
    writer_events: u64,
    writer_wo_events: u64,
    fsync_ops: usize,
    lookup_sizes: Vec<u64>,
    lookup_reps: usize,
}

impl Plan {
    fn new(o: Opts) -> Plan {
        if o.quick {
            Plan {
                create_sizes: [0, 1_000, 10_000],
                create_reps: 9,
                list_reps: 5,
                rebuild_events: 10_000,
                rebuild_reps: 3,
                writer_events: 40,
                writer_wo_events: 10,
                fsync_ops: 50,
                lookup_sizes: vec![1_000, 10_000],
                lookup_reps: 5,
            }
        } else {
            Plan {
                create_sizes: [0, 10_000, 100_000],
                create_reps: 31,
                list_reps: 11,
                rebuild_events: 1_000_000,
                rebuild_reps: 3,
                writer_events: 250,
                writer_wo_events: 50,
                fsync_ops: 300,
                lookup_sizes: vec![1_000, 100_000, 1_000_000],
                lookup_reps: 21,
            }
        }
    }
}

pub fn run(o: Opts, r: &mut Report) {
    let p = Plan::new(o);
    let wo = bin("wo");
    create_and_list(&p, &wo, r);
    rebuild(&p, &wo, r);
    writers(&p, &wo, r);
    lookups(&p, &wo, r);
}

/// `wo init` in `dir`; returns the `.work` path.
fn init(wo: &Path, dir: &Path) -> PathBuf {
    run_ok(command(wo, dir).arg("init"));
    dir.join(".work")
}

fn rebuild_projections(wo: &Path, dir: &Path) {
    run_ok(command(wo, dir).arg("rebuild-projections"));
}

const CREATE_TITLE: &str = "Benchmark: measure the latency of wo create 0000";
const CREATE_DESCRIPTION: &str = "Created by vermas-bench to time one `wo create`: open the store, take the lock, check the id, append one event, fdatasync, copy it to the feed.";

/// The line `wo create` appends for the bench's create, byte for byte the same size (ids and
/// times have fixed widths; `seq` is given).
fn create_line(seq: u64) -> Vec<u8> {
    let data = Created {
        id: fill::wo_id(999_999),
        title: CREATE_TITLE.to_string(),
        kind: WoType::Task,
        priority: 2,
        description: CREATE_DESCRIPTION.to_string(),
        labels: vec!["bench".to_string()],
        parent: None,
    };
    let e = Event {
        v: ENVELOPE_VERSION,
        seq,
        event_id: vermas_core::ids::new_event_id(),
        event_type: types::WORK_ORDER_CREATED.to_string(),
        timestamp: vermas_core::clock::format_timestamp(chrono::Utc::now()),
        actor: "human".to_string(),
        correlation_id: None,
        caused_by: None,
        data: serde_json::value::to_raw_value(&data).expect("payload serialises"),
    };
    let mut line = serde_json::to_vec(&e).expect("event serialises");
    line.push(b'\n');
    line
}

/// The baseline: open with `O_APPEND`, write one line, `fdatasync`, close.
fn append_fdatasync(path: &Path, line: &[u8]) -> Duration {
    time(|| {
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .expect("open the baseline file");
        f.write_all(line).expect("write the baseline line");
        f.sync_data().expect("fdatasync the baseline file");
    })
}

fn spawn_true(dir: &Path) -> Duration {
    time(|| run_ok(&mut command("/bin/true", dir)))
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.1}×", a.as_secs_f64() / b.as_secs_f64())
}

fn create_and_list(p: &Plan, wo: &Path, r: &mut Report) {
    let warm = 3;
    let mut medians = Vec::new();
    let mut spawns = Vec::new();
    let mut fsyncs = Vec::new();
    let largest = p.create_sizes[2];
    for &n in &p.create_sizes {
        let dir = tempdir("create");
        let work = init(wo, dir.path());
        if n > 0 {
            eprintln!("writing a store of {} work orders…", fmt_count(n));
            let f = fill::fill(&work, Mix::OpenWork, Amount::WorkOrders(n), 10, n);
            eprintln!(
                "  {} events, {:.1} MB in {} partitions",
                fmt_count(f.events),
                f.log_bytes as f64 / 1e6,
                f.files.len()
            );
            rebuild_projections(wo, dir.path());
        }
        if n == largest {
            list(p, wo, dir.path(), &work, n, r);
        }
        eprintln!("timing wo create with {} work orders…", fmt_count(n));
        let base_file = dir.path().join("baseline.jsonl");
        let line = create_line(n * 2);
        let (mut tc, mut tb, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..warm + p.create_reps {
            let title = format!("{}{:04}", &CREATE_TITLE[..CREATE_TITLE.len() - 4], i);
            let c = time(|| {
                run_ok(
                    command(wo, dir.path())
                        .args(["create", "--title", &title, "--type", "task"])
                        .args(["--priority", "2", "--label", "bench"])
                        .args(["--description", CREATE_DESCRIPTION]),
                )
            });
            let b = append_fdatasync(&base_file, &line);
            let s = spawn_true(dir.path());
            if i >= warm {
                tc.push(c);
                tb.push(b);
                ts.push(s);
            }
        }
        let (c, b) = (median(&tc), median(&tb));
        medians.push(c);
        fsyncs.extend(tb);
        spawns.extend(ts);
        let label = if n == 0 {
            "empty store".to_string()
        } else {
            format!("{} work orders", fmt_size(n))
        };
        r.add(
            Row::new(format!("wo create ({label}), median"), fmt_dur(c))
                .baseline(format!("append+fdatasync {}", fmt_dur(b)))
                .ratio(format!("+{}", fmt_dur(c.saturating_sub(b))))
                .target(
                    "≤ baseline + 3 ms",
                    Verdict::of(c <= b + Duration::from_millis(3)),
                ),
        );
    }
    let flat = medians[2].as_secs_f64() / medians[0].as_secs_f64();
    r.add(
        Row::new(
            format!("wo create {} ÷ empty", fmt_size(largest)),
            format!("{flat:.2}×"),
        )
        .baseline(format!(
            "{} vs {}",
            fmt_dur(medians[2]),
            fmt_dur(medians[0])
        ))
        .target("≤ 1.5×", Verdict::of(flat <= 1.5)),
    );
    r.add(
        Row::new("  floor: spawn /bin/true, median", fmt_dur(median(&spawns)))
            .baseline("(in the same loops)"),
    );
    r.add(
        Row::new(
            "  floor: append+fdatasync, median",
            fmt_dur(median(&fsyncs)),
        )
        .baseline(format!("{} B line", create_line(largest * 2).len())),
    );
}

fn list(p: &Plan, wo: &Path, dir: &Path, work: &Path, n: u64, r: &mut Report) {
    eprintln!("timing wo list --json over {} work orders…", fmt_count(n));
    let projection = work.join("work_orders.jsonl");
    // One run with its output kept: how many it lists, and that it works.
    let out = command(wo, dir)
        .args(["list", "--json"])
        .stdout(Stdio::piped())
        .output()
        .expect("spawn wo list");
    assert!(out.status.success(), "wo list --json failed");
    let listed = out
        .stdout
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        .saturating_sub(2);
    let (mut tl, mut tc, mut tt) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..p.list_reps {
        tl.push(time(|| {
            run_ok(command(wo, dir).args(["list", "--json"]));
        }));
        tc.push(time(|| {
            run_ok(command("cat", dir).arg(&projection));
        }));
        // The table people read, over the same work orders, in the same loop as its baseline.
        tt.push(time(|| run_ok(command(wo, dir).arg("list"))));
    }
    let (l, c, t) = (median(&tl), median(&tc), median(&tt));
    let table_ratio = t.as_secs_f64() / l.as_secs_f64();
    r.add(
        Row::new(
            format!(
                "wo list --json ({} work orders, {} listed), median",
                fmt_size(n),
                fmt_count(listed as u64)
            ),
            fmt_dur(l),
        )
        .baseline(format!("cat projection {}", fmt_dur(c)))
        .ratio(ratio(l, c))
        .target("≤ 100 ms", Verdict::of(l <= Duration::from_millis(100))),
    );
    r.add(
        Row::new(
            format!("wo list, table ({} work orders), median", fmt_size(n)),
            fmt_dur(t),
        )
        .baseline(format!("wo list --json {}", fmt_dur(l)))
        .ratio(format!("{table_ratio:.2}×"))
        .target("≤ 1.5× --json", Verdict::of(table_ratio <= 1.5)),
    );
}

fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn rebuild(p: &Plan, wo: &Path, r: &mut Report) {
    let n = p.rebuild_events;
    let dir = tempdir("rebuild");
    let work = init(wo, dir.path());
    eprintln!("writing a log of {} events (lifecycle mix)…", fmt_count(n));
    let f = fill::fill(&work, Mix::Lifecycle, Amount::Events(n), 30, 7);
    let mb = f.log_bytes as f64 / 1e6;
    eprintln!(
        "  {} work orders, {} messages, {mb:.1} MB ({} B/event) in {} partitions",
        fmt_count(f.work_orders),
        fmt_count(f.messages),
        f.log_bytes / f.events.max(1),
        f.files.len()
    );
    eprintln!("timing wo rebuild-projections…");
    // A first run makes the projections and warms the page cache for everyone.
    rebuild_projections(wo, dir.path());
    let mut tr = Vec::new();
    let mut tcat = Vec::new();
    for _ in 0..p.rebuild_reps {
        tr.push(time(|| rebuild_projections(wo, dir.path())));
        tcat.push(time(|| run_ok(command("cat", dir.path()).args(&f.files))));
    }
    let (t, cat) = (median(&tr), median(&tcat));
    let rate = mb / t.as_secs_f64();
    let label = format!(
        "{} events, {mb:.0} MB, {} B/event",
        fmt_size(n),
        f.log_bytes / f.events.max(1)
    );
    let jq = if have("jq") {
        eprintln!("timing jq -c . over the same files…");
        let mut tj = Vec::new();
        for _ in 0..p.rebuild_reps {
            tj.push(time(|| {
                run_ok(command("jq", dir.path()).arg("-c").arg(".").args(&f.files))
            }));
        }
        Some(median(&tj))
    } else {
        None
    };
    match jq {
        Some(j) => {
            let x = j.as_secs_f64() / t.as_secs_f64();
            r.add(
                Row::new(
                    format!("wo rebuild-projections ({label}), median"),
                    fmt_dur(t),
                )
                .baseline(format!("jq -c . {}", fmt_dur(j)))
                .ratio(format!("{x:.1}× faster"))
                .target("≥ 8× faster than jq", Verdict::of(x >= 8.0)),
            );
        }
        None => {
            r.add(
                Row::new(
                    format!("wo rebuild-projections ({label}), median"),
                    fmt_dur(t),
                )
                .baseline("jq not installed")
                .target("≥ 8× faster than jq", Verdict::Skipped),
            );
            r.note("jq is not on PATH, so the jq comparison was skipped (apt-get install jq)");
        }
    }
    r.add(
        Row::new(
            "wo rebuild-projections throughput",
            format!("{rate:.0} MB/s"),
        )
        .baseline(format!("cat {:.0} MB/s", mb / cat.as_secs_f64()))
        .ratio(ratio(t, cat))
        .target("≥ 200 MB/s", Verdict::of(rate >= 200.0)),
    );
}

/// The `seq` of the last event of a store.
fn last_seq(work: &Path) -> u64 {
    let store = Store::open(work, StoreOptions::default()).expect("open the store");
    let mut w = store.lock().expect("lock the store");
    w.last_seq().expect("read the last seq")
}

fn spawn_writers(kind: &str, work: &Path, writers: u32, count: u64) -> Vec<Child> {
    let me = std::env::current_exe().expect("the bench executable");
    (0..writers)
        .map(|i| {
            command(&me, work)
                .args([
                    kind,
                    &work.display().to_string(),
                    &i.to_string(),
                    &count.to_string(),
                ])
                .spawn()
                .expect("spawn a writer")
        })
        .collect()
}

/// Runs `writers` writer processes of `kind` at once; returns durable events per second.
fn writer_rate(kind: &str, work: &Path, writers: u32, count: u64) -> f64 {
    let before = last_seq(work);
    let t = Instant::now();
    let children = spawn_writers(kind, work, writers, count);
    for c in children {
        let out = c.wait_with_output().expect("wait for a writer");
        assert!(
            out.status.success(),
            "a writer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let secs = t.elapsed().as_secs_f64();
    let written = last_seq(work) - before;
    assert_eq!(
        written,
        u64::from(writers) * count,
        "every acknowledged event must be in the log"
    );
    written as f64 / secs
}

fn writers(p: &Plan, wo: &Path, r: &mut Report) {
    let dir = tempdir("writers");
    let work = init(wo, dir.path());
    let seed = if p.writer_events > 100 { 10_000 } else { 1_000 };
    eprintln!(
        "timing concurrent writers on a store of {} work orders…",
        fmt_count(seed)
    );
    fill::fill(&work, Mix::OpenWork, Amount::WorkOrders(seed), 3, 3);
    rebuild_projections(wo, dir.path());
    let base_file = dir.path().join("baseline.jsonl");
    let line = create_line(seed * 2);
    let t = Instant::now();
    let ops: Vec<Duration> = (0..p.fsync_ops)
        .map(|_| append_fdatasync(&base_file, &line))
        .collect();
    let loop_rate = p.fsync_ops as f64 / t.elapsed().as_secs_f64();
    let fsync_rate = 1.0 / median(&ops).as_secs_f64();
    let base = format!("fdatasync loop {fsync_rate:.0}/s");
    r.add(
        Row::new(
            "single-writer append+fdatasync loop",
            format!("{fsync_rate:.0} events/s"),
        )
        .baseline(format!(
            "1/median; {loop_rate:.0}/s over {} ops",
            p.fsync_ops
        )),
    );
    let rows = [
        (
            "1 writer, workorder::create loop",
            "__writer",
            1,
            p.writer_events,
        ),
        (
            "8 writers, workorder::create loops",
            "__writer",
            8,
            p.writer_events,
        ),
        (
            "8 writers, `wo create` process loops",
            "__writer-wo",
            8,
            p.writer_wo_events,
        ),
    ];
    for (label, kind, n, count) in rows {
        let rate = writer_rate(kind, &work, n, count);
        r.add(
            Row::new(
                format!(
                    "{label} ({} events), total",
                    fmt_count(u64::from(n) * count)
                ),
                format!("{rate:.0} events/s"),
            )
            .baseline(base.clone())
            .ratio(format!("{:.2}×", rate / fsync_rate)),
        );
    }
}

/// A writer child: `count` work orders through `workorder::create`, each under its own lock
/// (what `wo create` does, without the process start).
pub fn writer_main(work: &Path, id: u32, count: u64) {
    let store = Store::open(work, StoreOptions::default()).expect("open the store");
    for n in 0..count {
        let mut w = store.lock().expect("lock the store");
        workorder::create(
            &mut w,
            "wo",
            &format!("bench-writer{id}"),
            CreateRequest {
                title: format!("{}{:04}", &CREATE_TITLE[..CREATE_TITLE.len() - 4], n),
                kind: WoType::Task,
                priority: 2,
                description: CREATE_DESCRIPTION.to_string(),
                labels: vec!["bench".to_string()],
                parent: None,
            },
        )
        .expect("create a work order");
    }
}

/// A writer child that runs `wo create` `count` times, one process each.
pub fn writer_wo_main(work: &Path, count: u64) {
    let wo = bin("wo");
    let dir = work.parent().unwrap_or(work);
    for n in 0..count {
        let title = format!("{}{:04}", &CREATE_TITLE[..CREATE_TITLE.len() - 4], n);
        run_ok(
            command(&wo, dir)
                .args(["create", "--title", &title, "--label", "bench"])
                .args(["--description", CREATE_DESCRIPTION]),
        );
    }
}

/// `__fill DIR open|lifecycle|history N`: a store to profile by hand.
pub fn fill_main(dir: &Path, mix: &str, n: u64) {
    let wo = bin("wo");
    std::fs::create_dir_all(dir).expect("make the directory");
    let work = init(&wo, dir);
    let f = match mix {
        "open" => fill::fill(&work, Mix::OpenWork, Amount::WorkOrders(n), 10, n),
        "lifecycle" => fill::fill(&work, Mix::Lifecycle, Amount::Events(n), 30, 7),
        "history" => fill::fill(
            &work,
            Mix::History((n / LOOKUP_OPEN).max(1)),
            Amount::WorkOrders(n),
            30,
            n,
        ),
        _ => panic!("mix is open, lifecycle or history"),
    };
    rebuild_projections(&wo, dir);
    println!(
        "{}: {} events, {} work orders, {} messages, {} bytes in {} files",
        work.display(),
        f.events,
        f.work_orders,
        f.messages,
        f.log_bytes,
        f.files.len()
    );
}

/// How many work orders stay open in the look-up stores, whatever their size.
pub const LOOKUP_OPEN: u64 = 1_000;

/// Point look-ups and open work in a long history: the cost should follow what is read (one
/// work order, the open ones), not how many work orders the store has seen.
fn lookups(p: &Plan, wo: &Path, r: &mut Report) {
    // The smallest store stays until the end: the open list of each larger one is timed beside
    // its own in the same loop, so a slow minute falls on both sides.
    let mut smallest: Option<(u64, tempfile::TempDir)> = None;
    // The last store's `--json` beside the smallest's, medians from one loop.
    let mut follows: Option<(u64, Duration, Duration)> = None;
    for &n in &p.lookup_sizes {
        let dir = tempdir("lookup");
        let work = init(wo, dir.path());
        let every = (n / LOOKUP_OPEN).max(1);
        eprintln!(
            "writing a history of {} work orders ({} open)…",
            fmt_count(n),
            fmt_count(n.div_ceil(every))
        );
        let f = fill::fill(&work, Mix::History(every), Amount::WorkOrders(n), 30, n);
        eprintln!(
            "  {} events, {:.1} MB in {} partitions",
            fmt_count(f.events),
            f.log_bytes as f64 / 1e6,
            f.files.len()
        );
        rebuild_projections(wo, dir.path());
        // The oldest closed work order: its record and history are the furthest back.
        let id = fill::wo_id(1);
        let show = || time(|| run_ok(command(wo, dir.path()).args(["show", &id])));
        let grep = || {
            time(|| {
                let mut c = command("grep", dir.path());
                c.args(["-m1", "-F", &id]).args(&f.files);
                run_ok(&mut c)
            })
        };
        // Warm-up: the first reads may build caches.
        for _ in 0..2 {
            show();
        }
        let reps = p.lookup_reps;
        let (mut ts, mut tg) = (Vec::new(), Vec::new());
        let started = Instant::now();
        for i in 0..reps {
            ts.push(show());
            tg.push(grep());
            if enough(i, started) {
                break;
            }
        }
        let (s, g) = (median(&ts), median(&tg));
        let big = n >= 1_000_000;
        let mut row = Row::new(
            format!("wo show ({} work orders), median", fmt_size(n)),
            fmt_dur(s),
        )
        .baseline(format!("grep -m1 the id {}", fmt_dur(g)))
        .ratio(if s < g {
            let x = g.as_secs_f64() / s.as_secs_f64();
            if x < 10.0 {
                format!("{x:.1}× faster")
            } else {
                format!("{x:.0}× faster")
            }
        } else {
            ratio(s, g)
        });
        if big {
            row = row.target("≤ 20 ms", Verdict::of(s <= Duration::from_millis(20)));
        }
        r.add(row);

        // One work order loaded in this process, from a freshly opened store each time.
        let store = Store::open(&work, StoreOptions::default()).expect("open the store");
        load_one(&store, &id);
        let mut tl = Vec::new();
        let started = Instant::now();
        for i in 0..reps {
            tl.push(time(|| {
                let store = Store::open(&work, StoreOptions::default()).expect("open the store");
                assert!(load_one(&store, &id), "the work order is found");
            }));
            if enough(i, started) {
                break;
            }
        }
        let l1 = median(&tl);
        let mut row = Row::new(
            format!("load one work order ({} work orders), median", fmt_size(n)),
            fmt_dur(l1),
        )
        .baseline("in-process, store opened each time");
        if big {
            row = row.target("≤ 20 ms", Verdict::of(l1 <= Duration::from_millis(20)));
        }
        r.add(row);

        // `wo list` (open work, the default) as a table and as JSON.
        for _ in 0..2 {
            run_ok(command(wo, dir.path()).arg("list"));
        }
        let (mut tt, mut tj, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        let started = Instant::now();
        for i in 0..reps {
            tt.push(time(|| run_ok(command(wo, dir.path()).arg("list"))));
            tj.push(time(|| {
                run_ok(command(wo, dir.path()).args(["list", "--json"]))
            }));
            if let Some((_, small)) = &smallest {
                ts.push(time(|| {
                    run_ok(command(wo, small.path()).args(["list", "--json"]))
                }));
            }
            if enough(i, started) {
                break;
            }
        }
        let (t, j) = (median(&tt), median(&tj));
        let open = n.div_ceil(every);
        r.add(
            Row::new(
                format!(
                    "wo list, {} open of {} work orders, table, median",
                    fmt_count(open),
                    fmt_size(n)
                ),
                fmt_dur(t),
            )
            .baseline(format!("--json {}", fmt_dur(j)))
            .ratio(format!("{:.2}×", t.as_secs_f64() / j.as_secs_f64())),
        );
        match &smallest {
            Some(_) => follows = Some((n, j, median(&ts))),
            None => smallest = Some((n, dir)),
        }
    }
    if let (Some((n0, _)), Some((n1, last, first))) = (smallest, follows) {
        let x = last.as_secs_f64() / first.as_secs_f64();
        r.add(
            Row::new(
                format!(
                    "wo list --json, {} open: {} ÷ {} work orders",
                    fmt_count(LOOKUP_OPEN),
                    fmt_size(n1),
                    fmt_size(n0)
                ),
                format!("{x:.2}×"),
            )
            .baseline(format!("{} vs {}", fmt_dur(last), fmt_dur(first)))
            .target("≤ 1.5× (follows the open work)", Verdict::of(x <= 1.5)),
        );
    }
}

/// A slow figure (seconds per sample) stops after 5 samples once it has taken 30 s.
fn enough(i: usize, started: Instant) -> bool {
    i + 1 >= 5 && started.elapsed() > Duration::from_secs(30)
}

/// Loads one work order the way a command does (a point look-up); true when it was found.
fn load_one(store: &Store, id: &str) -> bool {
    workorder::lookup(store, id)
        .expect("look up the work order")
        .is_some()
}
