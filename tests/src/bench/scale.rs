//! The `scale` section: issue 11's "every command and every patrol costs what changed, not
//! what exists". One company per size, its factory's own store holding a long history (0, 10k,
//! 100k and 1M work orders written as `__fill DIR history N` writes them: 1,000 of them open,
//! the rest closed), reused for every figure at that size, each beside a baseline measured in
//! the same run:
//!
//! 1. `co dispatch` into a free slot (agent `sleep`), beside `git worktree add` + `tmux
//!    new-session` ([`super::dispatch::free_slot`]), with no daemon running;
//! 2. with `co operations start`: work orders from `co dispatch` to `work_order.closed` (gate
//!    `true` excluded), beside the same git and tmux steps by hand
//!    ([`super::pipeline::through`]), and the supervisor's reaction to `co worker done`;
//! 3. operations, supervisor and QA idle with 60 live workers (agent `sleep`): CPU and RSS over
//!    a window ([`super::pipeline::watch`]);
//! 4. `wo show` of the oldest work order and `co assignment` as one of those workers, beside
//!    the same commands in the empty store of the same run.

use super::bed::{Bed, INSTANT_RUNTIME};
use super::dispatch::{FreeSlot, free_slot, keep_server};
use super::fill::{self, Amount, Mix};
use super::pipeline::{self, TRUE_GATE, Tail, Through};
use super::sys;
use super::{
    Opts, Report, Row, Verdict, bin, fmt_count, fmt_dur, fmt_mib, fmt_size, median, percentile,
    time,
};
use std::time::{Duration, Instant};

/// Sizes and repetitions for a full or a quick run.
struct Plan {
    sizes: Vec<u64>,
    dispatch_warm: usize,
    dispatch_reps: usize,
    /// Work orders through the pipeline (after one warm-up).
    pipeline: usize,
    /// Live workers while the daemons idle.
    workers: usize,
    settle: Duration,
    window: Duration,
    lookup_reps: usize,
}

impl Plan {
    fn new(o: Opts) -> Plan {
        if o.quick {
            Plan {
                sizes: vec![0, 10_000],
                dispatch_warm: 1,
                dispatch_reps: 5,
                pipeline: 3,
                workers: 10,
                settle: Duration::from_secs(1),
                window: Duration::from_secs(5),
                lookup_reps: 5,
            }
        } else {
            Plan {
                sizes: vec![0, 10_000, 100_000, 1_000_000],
                dispatch_warm: 3,
                dispatch_reps: 21,
                pipeline: 10,
                workers: 60,
                settle: Duration::from_secs(5),
                window: Duration::from_secs(30),
                lookup_reps: 21,
            }
        }
    }
}

/// The targets of issue 11.
const DISPATCH_MAX: f64 = 1.3;
const PIPELINE_MAX: f64 = 2.0;
const IDLE_CPU_MAX_PCT: f64 = 1.0;
const IDLE_RSS_MAX_KIB: u64 = 50 * 1024;
const LOOKUP_MAX: Duration = Duration::from_millis(20);
const REACTION_MAX: Duration = Duration::from_millis(50);
/// The size at which the idle, look-up and reaction targets are set.
const TARGET_SIZE: u64 = 1_000_000;

/// The figures of the empty store, the baselines of the same figures at larger sizes.
#[derive(Default)]
struct Empty {
    show: Option<Duration>,
    assignment: Option<Duration>,
    idle: Option<String>,
}

pub fn run(o: Opts, r: &mut Report) {
    sys::catch_interrupt();
    let mut p = Plan::new(o);
    // `VERMAS_BENCH_SIZES=0,100000` runs only those sizes.
    if let Ok(sizes) = std::env::var("VERMAS_BENCH_SIZES") {
        p.sizes = sizes
            .split(',')
            .map(|n| {
                n.trim().parse().unwrap_or_else(|_| {
                    eprintln!("error: VERMAS_BENCH_SIZES: {n:?} is not a number (e.g. 0,100000)");
                    std::process::exit(2)
                })
            })
            .collect();
    }
    let mut empty = Empty::default();
    for &n in &p.sizes {
        let t = Instant::now();
        one_size(&p, n, r, &mut empty);
        r.note(format!(
            "scale: {} work orders took {}",
            fmt_size(n),
            fmt_dur(t.elapsed())
        ));
    }
}

/// `label (N work orders)`.
fn at(label: &str, n: u64) -> String {
    format!("{label} ({} work orders)", fmt_size(n))
}

fn one_size(p: &Plan, n: u64, r: &mut Report, empty: &mut Empty) {
    eprintln!(
        "scale: a company whose factory holds {} work orders…",
        fmt_count(n)
    );
    let extra = format!(
        "{TRUE_GATE}\n{INSTANT_RUNTIME}\n[worker]\nmax_slots_per_factory = {}\n",
        p.workers + 4
    );
    let bed = Bed::new("good.sh", &extra);
    keep_server(&bed);
    let fdir = bed.factory_dir("myproject");
    let work = fdir.join(".work");
    let wo = |args: &[&str]| {
        let mut c = bed.command(bin("wo"));
        c.current_dir(&fdir).args(args);
        c
    };
    let oldest = if n > 0 {
        fill_store(&bed, n, r);
        Some(fill::wo_id(1))
    } else {
        None
    };

    // 1. co dispatch, no daemon running.
    eprintln!("  timing co dispatch into a free slot…");
    let id = bed.create("myproject", "Bench: dispatch me");
    let s = free_slot(
        &bed,
        "myproject",
        &id,
        Some("bench"),
        p.dispatch_warm,
        p.dispatch_reps,
    );
    dispatch_row(&s, n, p.dispatch_reps, r);
    // The samples leave that work order queued again (`co worker kill`); out of the way, so
    // the running company's supervisor does not start it ahead of the pipeline's work.
    bed.w()
        .wo_in("myproject", &["update", &id, "--status", "cancelled"])
        .ok();

    // 2. Through the running company.
    bed.co_ok(&["operations", "start"]);
    bed.wait_sessions(
        &["supervisor-myproject".into(), "qa-myproject".into()],
        Duration::from_secs(120),
    );
    let mut tail = Tail::from_end(&work);
    eprintln!(
        "  timing {} work orders from co dispatch to the merge…",
        p.pipeline
    );
    let t = pipeline::through(&bed, &mut tail, 1, p.pipeline);
    pipeline_rows(&t, n, r);
    // The oldest work order of the empty store is the pipeline's first (closed) one.
    let oldest = oldest.unwrap_or_else(|| t.samples[0].id.clone());

    // 3. Idle, with live workers.
    eprintln!("  starting {} workers (agent `sleep`)…", p.workers);
    let mut workers = Vec::new();
    for k in 0..p.workers {
        let id = bed.create("myproject", &format!("Bench: idle {k}"));
        super::dispatch::co_dispatch(&bed, &id, "myproject", Some("bench"), false);
        workers.push(id);
    }
    let names: Vec<String> = (0..p.workers)
        .map(|k| format!("worker-myproject-slot{k}"))
        .collect();
    bed.wait_sessions(&names, Duration::from_secs(120));
    sys::sleep(p.settle);
    tail.poll();
    let before = tail.events.len();
    eprintln!(
        "  measuring the idle daemons ({} window)…",
        fmt_dur(p.window)
    );
    let procs = pipeline::daemons(&bed, &["myproject"]);
    let w = pipeline::watch(&procs, p.window);
    tail.poll();
    let during = tail.events.len() - before;
    let alive = bed
        .sessions()
        .iter()
        .filter(|s| s.starts_with("worker-"))
        .count();
    assert_eq!(alive, p.workers, "every worker stayed alive");
    idle_row(&w, n, p.workers, during, r, empty);

    // 4. Look-ups, as an agent makes them.
    eprintln!("  timing wo show and co assignment…");
    let (slot, incarnation) = assigned(&tail, &workers[0]);
    let worktree = fdir.join("workers").join(format!("slot{slot}"));
    let agent = format!("myproject/workers/slot{slot}");
    let assignment = || {
        let mut c = bed.co(&["assignment"]);
        c.current_dir(&worktree)
            .env("AGENT_ID", &agent)
            .env("VERMAS_INCARNATION", &incarnation);
        time(|| {
            let out = sys::run(&mut c).ok("co assignment");
            assert!(out.stdout.starts_with("ASSIGNED:"), "{}", out.stdout);
        })
    };
    let show = || time(|| drop(sys::run(&mut wo(&["show", &oldest])).ok("wo show")));
    let spawn = || time(|| drop(sys::run(&mut bed.command("/bin/true")).ok("/bin/true")));
    for _ in 0..2 {
        show();
        assignment();
    }
    let (mut ts, mut ta, mut tt) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..p.lookup_reps {
        sys::check_interrupted();
        ts.push(show());
        ta.push(assignment());
        tt.push(spawn());
    }
    let floor = median(&tt);
    lookup_row(
        "wo show of the oldest work order",
        median(&ts),
        &mut empty.show,
        floor,
        n,
        p.lookup_reps,
        r,
    );
    lookup_row(
        "co assignment (a worker's)",
        median(&ta),
        &mut empty.assignment,
        floor,
        n,
        p.lookup_reps,
        r,
    );
    eprintln!("  cleaning up…");
}

/// Writes the history into the factory's store, rebuilds its projections and builds the work
/// order index (the first `wo show`), timing each step.
fn fill_store(bed: &Bed, n: u64, r: &mut Report) {
    let fdir = bed.factory_dir("myproject");
    let work = fdir.join(".work");
    let every = (n / super::store::LOOKUP_OPEN).max(1);
    eprintln!(
        "  writing a history of {} work orders ({} open)…",
        fmt_count(n),
        fmt_count(n.div_ceil(every))
    );
    let t = Instant::now();
    let f = fill::fill(&work, Mix::History(every), Amount::WorkOrders(n), 30, n);
    let filled = t.elapsed();
    let wo = |args: &[&str]| {
        let mut c = bed.command(bin("wo"));
        c.current_dir(&fdir).args(args);
        sys::run(&mut c).ok(&format!("wo {}", args.join(" ")))
    };
    eprintln!("  wo rebuild-projections…");
    let rebuilt = wo(&["rebuild-projections"]).wall;
    eprintln!("  building the work order index (the first wo show)…");
    let indexed = wo(&["show", &fill::wo_id(1)]).wall;
    r.add(
        Row::new(
            format!("  setup {}: history written", fmt_size(n)),
            fmt_dur(filled),
        )
        .baseline(format!(
            "{} events, {:.0} MB",
            fmt_count(f.events),
            f.log_bytes as f64 / 1e6
        )),
    );
    r.add(
        Row::new(
            format!("  setup {}: wo rebuild-projections", fmt_size(n)),
            fmt_dur(rebuilt),
        )
        .baseline(format!(
            "then the index (first wo show) {}",
            fmt_dur(indexed)
        )),
    );
}

fn dispatch_row(s: &FreeSlot, n: u64, reps: usize, r: &mut Report) {
    let (c, b) = (median(&s.co), median(&s.pair));
    let x = s.ratio();
    r.add(
        Row::new(
            format!(
                "{}, median of {reps}",
                at("co dispatch, free slot, agent `sleep`", n)
            ),
            fmt_dur(c),
        )
        .baseline(format!("worktree add + new-session {}", fmt_dur(b)))
        .ratio(format!("{x:.2}×"))
        .target(
            format!("≤ {DISPATCH_MAX}× baseline"),
            Verdict::of(x <= DISPATCH_MAX),
        ),
    );
}

fn pipeline_rows(t: &Through, n: u64, r: &mut Report) {
    let col = |f: fn(&pipeline::Stages) -> Duration| -> Vec<Duration> {
        t.stages.iter().map(f).collect()
    };
    let (total, base) = (median(&col(|s| s.total)), median(&t.by_hand));
    let x = total.as_secs_f64() / base.as_secs_f64();
    r.add(
        Row::new(
            format!(
                "{}, median of {}",
                at("dispatch → work_order.closed, gate excluded", n),
                t.stages.len()
            ),
            fmt_dur(total),
        )
        .baseline(format!("same git+tmux steps by hand {}", fmt_dur(base)))
        .ratio(format!("{x:.2}×"))
        .target(
            format!("≤ {PIPELINE_MAX}× baseline"),
            Verdict::of(x <= PIPELINE_MAX),
        ),
    );
    r.add(
        Row::new(
            "  of which the agent (dispatched → WORKER_DONE), median",
            fmt_dur(median(&col(|s| s.worker))),
        )
        .baseline(format!(
            "QA (qa.enqueued → closed, gate excluded) {}",
            fmt_dur(median(&col(|s| s.qa)))
        )),
    );
    let reaction = col(|s| s.reaction);
    let p50 = median(&reaction);
    let mut row = Row::new(
        format!(
            "{}, median of {}",
            at("  supervisor: WORKER_DONE → qa.enqueued", n),
            reaction.len()
        ),
        fmt_dur(p50),
    )
    .baseline(format!("max {}", fmt_dur(percentile(&reaction, 100.0))));
    if n == TARGET_SIZE {
        row = row.target(
            format!("< {}", fmt_dur(REACTION_MAX)),
            Verdict::of(p50 < REACTION_MAX),
        );
    }
    r.add(row);
}

fn idle_row(
    w: &pipeline::Window,
    n: u64,
    workers: usize,
    events: usize,
    r: &mut Report,
    empty: &mut Empty,
) {
    let (daemons, server) = w.usage.split_at(w.usage.len() - 1);
    let server = &server[0];
    let ticks: u64 = daemons.iter().map(|u| u.own + u.children).sum();
    let rss: u64 = daemons.iter().map(|u| u.rss_kib).sum();
    let (pct, value) = (
        w.pct(ticks),
        format!("{:.2} %, {}", w.pct(ticks), fmt_mib(rss)),
    );
    let each: Vec<String> = daemons
        .iter()
        .map(|u| {
            let name = u.label.split_whitespace().nth(1).unwrap_or("?");
            format!(
                "{name} {} ms {}",
                w.ms(u.own + u.children),
                fmt_mib(u.rss_kib)
            )
        })
        .collect();
    let baseline = match &empty.idle {
        Some(e) if n > 0 => format!("empty store {e}"),
        _ => format!(
            "tmux server {:.2} %, {}",
            w.pct(server.own),
            fmt_mib(server.rss_kib)
        ),
    };
    let mut row = Row::new(
        format!(
            "{}, CPU of one core, RSS, {:.0} s",
            at(
                &format!("idle operations+supervisor+QA, {workers} workers"),
                n
            ),
            w.secs
        ),
        value.clone(),
    )
    .baseline(baseline)
    .ratio(format!("{}; {events} events", each.join(", ")));
    if n == TARGET_SIZE {
        row = row.target(
            format!("< {IDLE_CPU_MAX_PCT} %, < {}", fmt_mib(IDLE_RSS_MAX_KIB)),
            Verdict::of(pct < IDLE_CPU_MAX_PCT && rss < IDLE_RSS_MAX_KIB),
        );
    }
    r.add(row);
    if n == 0 {
        empty.idle = Some(value);
        r.note(w.note());
    }
}

fn lookup_row(
    what: &str,
    value: Duration,
    empty: &mut Option<Duration>,
    floor: Duration,
    n: u64,
    reps: usize,
    r: &mut Report,
) {
    let mut row = Row::new(
        format!("{}, median of {reps}", at(&format!("  {what}"), n)),
        fmt_dur(value),
    );
    row = match *empty {
        Some(e) if n > 0 => row
            .baseline(format!("empty store {}", fmt_dur(e)))
            .ratio(format!(
                "{:.2}× empty",
                value.as_secs_f64() / e.as_secs_f64()
            )),
        _ => row
            .baseline(format!("spawn /bin/true {}", fmt_dur(floor)))
            .ratio(format!(
                "{:.1}× spawn",
                value.as_secs_f64() / floor.as_secs_f64()
            )),
    };
    if n == TARGET_SIZE {
        row = row.target(
            format!("< {}", fmt_dur(LOOKUP_MAX)),
            Verdict::of(value < LOOKUP_MAX),
        );
    }
    if n == 0 {
        *empty = Some(value);
    }
    r.add(row);
}

/// The slot and incarnation a work order was assigned to (its `work_order.assigned`).
fn assigned(tail: &Tail, id: &str) -> (u64, String) {
    let e = tail
        .events
        .iter()
        .rev()
        .find(|e| e["event_type"] == "work_order.assigned" && e["data"]["id"] == id)
        .unwrap_or_else(|| panic!("no work_order.assigned for {id}"));
    (
        e["data"]["slot"].as_u64().expect("slot"),
        e["data"]["incarnation"]
            .as_str()
            .expect("incarnation")
            .to_string(),
    )
}
