//! The `dispatch` section: the figures of issue 3 ("Performance"), each beside a baseline
//! measured in the same run.
//!
//! 1. `co dispatch` of a work order into a free slot, beside `git worktree add` + `tmux
//!    new-session` of the same bare clone on the same tmux server, sample by sample;
//! 2. 20 dispatches into 4 factories × 5 slots: the total, beside 20 of those baseline pairs,
//!    and the peak memory of one `co dispatch` (its own `VmHWM`, polled while it runs, in a
//!    round of its own) beside the baseline's git and tmux processes measured the same way.
//!
//! The worker runtime is `sleep 100000` ([`INSTANT_RUNTIME`]), so no agent's start time is in
//! the figures. Between samples the slot is freed with `co worker kill`, untimed: it ends the
//! session, removes the worktree and the branch (no commits on it), frees the slot and queues
//! the work order again, so the next sample dispatches the same work order from the same state
//! (after a warm-up that moves it from `open` to that state).

use super::bed::{Bed, INSTANT_RUNTIME};
use super::sys::{self, Ran};
use super::{Opts, Report, Row, Verdict, fmt_dur, fmt_mib, median};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Samples and rounds for a full or a quick run.
struct Plan {
    warm: usize,
    reps: usize,
    /// Rounds of the 20 dispatches (each beside a round of 20 baseline pairs).
    rounds: usize,
}

impl Plan {
    fn new(o: Opts) -> Plan {
        if o.quick {
            Plan {
                warm: 1,
                reps: 5,
                rounds: 1,
            }
        } else {
            Plan {
                warm: 3,
                reps: 31,
                rounds: 5,
            }
        }
    }
}

pub fn run(o: Opts, r: &mut Report) {
    sys::catch_interrupt();
    let p = Plan::new(o);
    one_slot(&p, r);
    twenty(&p, r);
}

/// A company whose factories' workers run [`INSTANT_RUNTIME`].
fn instant_bed(extra_factories: &[(&str, &str)]) -> Bed {
    let bed = Bed::new("hang.sh", INSTANT_RUNTIME);
    bed.use_worker_runtime("myproject", "bench");
    for (name, prefix) in extra_factories {
        bed.add_factory(name, prefix, "hang.sh", INSTANT_RUNTIME);
        bed.use_worker_runtime(name, "bench");
    }
    keep_server(&bed);
    bed
}

/// tmux ends its server with its last session: one session that stays keeps the same server
/// up for every sample (as operations, supervisor and QA do in a running company).
pub fn keep_server(bed: &Bed) {
    bed.tmux_ok(&[
        "new-session",
        "-d",
        "-s",
        "bench-keep",
        "--",
        "sleep",
        "100000",
    ]);
}

/// `co dispatch ID FACTORY [--runtime R]`, checked: it must have spawned a worker (not queued
/// it).
pub fn co_dispatch(bed: &Bed, id: &str, factory: &str, runtime: Option<&str>, polled: bool) -> Ran {
    let mut args = vec!["dispatch", id, factory];
    if let Some(rt) = runtime {
        args.extend(["--runtime", rt]);
    }
    let mut c = bed.co(&args);
    let ran = if polled {
        sys::run_polled(&mut c)
    } else {
        sys::run(&mut c)
    }
    .ok(&format!("co dispatch {id} {factory}"));
    assert!(
        ran.stdout.starts_with("Spawned worker-"),
        "co dispatch {id} {factory} did not spawn a worker: {}",
        ran.stdout
    );
    ran
}

pub fn co_kill(bed: &Bed, factory: &str, slot: u32) {
    bed.co_ok(&["worker", "kill", factory, &slot.to_string()]);
}

/// The baseline: a worktree on a new branch from `main` of the same bare clone, and a tmux
/// session in it on the same server, as two processes.
pub struct Pair {
    pub worktree: Ran,
    pub session: Ran,
}

impl Pair {
    pub fn wall(&self) -> Duration {
        self.worktree.wall + self.session.wall
    }
}

pub fn baseline(bed: &Bed, repo: &Path, dir: &Path, name: &str, polled: bool) -> Pair {
    let d = dir.display().to_string();
    let branch = format!("bench/{name}");
    let run = if polled { sys::run_polled } else { sys::run };
    let worktree = run(&mut bed.git(repo, &["worktree", "add", "-b", &branch, &d, "main"]))
        .ok("git worktree add");
    let session = run(&mut bed.tmux(&[
        "new-session",
        "-d",
        "-s",
        name,
        "-c",
        &d,
        "--",
        "sleep",
        "1000",
    ]))
    .ok("tmux new-session");
    Pair { worktree, session }
}

pub fn undo_baseline(bed: &Bed, repo: &Path, dir: &Path, name: &str) {
    bed.tmux_ok(&["kill-session", "-t", &format!("={name}")]);
    bed.git_ok(
        repo,
        &["worktree", "remove", "--force", &dir.display().to_string()],
    );
    bed.git_ok(repo, &["branch", "-D", &format!("bench/{name}")]);
}

/// Samples of `co dispatch` into a free slot and of the baseline pair beside it.
#[derive(Debug, Default)]
pub struct FreeSlot {
    pub co: Vec<Duration>,
    /// `git worktree add` + `tmux new-session`, and each alone.
    pub pair: Vec<Duration>,
    pub worktree: Vec<Duration>,
    pub session: Vec<Duration>,
}

impl FreeSlot {
    /// Median of `co dispatch` over median of the pair.
    pub fn ratio(&self) -> f64 {
        median(&self.co).as_secs_f64() / median(&self.pair).as_secs_f64()
    }
}

/// `co dispatch` of the work order `id` into slot 0 of `factory` (free, and freed again after
/// each sample with `co worker kill`, untimed), alternating with the baseline pair in the same
/// bare clone; the first `warm` samples of each are dropped.
pub fn free_slot(
    bed: &Bed,
    factory: &str,
    id: &str,
    runtime: Option<&str>,
    warm: usize,
    reps: usize,
) -> FreeSlot {
    let repo = bed.factory_dir(factory).join(".git");
    let base = bed.w().sb.path().join("baseline");
    let mut out = FreeSlot::default();
    for i in 0..warm + reps {
        sys::check_interrupted();
        let name = format!("base{i}");
        let dir = base.join(&name);
        // Alternate which goes first, so neither always follows the other's cleanup.
        let (c, b) = if i % 2 == 0 {
            let c = co_dispatch(bed, id, factory, runtime, false);
            (c, baseline(bed, &repo, &dir, &name, false))
        } else {
            let b = baseline(bed, &repo, &dir, &name, false);
            (co_dispatch(bed, id, factory, runtime, false), b)
        };
        co_kill(bed, factory, 0);
        undo_baseline(bed, &repo, &dir, &name);
        if i >= warm {
            out.co.push(c.wall);
            out.pair.push(b.wall());
            out.worktree.push(b.worktree.wall);
            out.session.push(b.session.wall);
        }
    }
    out
}

fn one_slot(p: &Plan, r: &mut Report) {
    eprintln!("timing co dispatch into a free slot, beside git worktree add + tmux new-session…");
    let bed = instant_bed(&[]);
    let id = bed.create("myproject", "Bench: dispatch me");
    let s = free_slot(&bed, "myproject", &id, None, p.warm, p.reps);
    let (c, b) = (median(&s.co), median(&s.pair));
    let x = s.ratio();
    r.add(
        Row::new(
            format!(
                "co dispatch (free slot, agent `sleep`), median of {}",
                p.reps
            ),
            fmt_dur(c),
        )
        .baseline(format!("worktree add + new-session {}", fmt_dur(b)))
        .ratio(format!("{x:.2}×"))
        .target("≤ 1.3× baseline", Verdict::of(x <= 1.3)),
    );
    r.add(
        Row::new(
            "  baseline: git worktree add -b, median",
            fmt_dur(median(&s.worktree)),
        )
        .baseline("(in the same loop)"),
    );
    r.add(
        Row::new(
            "  baseline: tmux new-session -d, median",
            fmt_dur(median(&s.session)),
        )
        .baseline("(in the same loop)"),
    );
}

fn twenty(p: &Plan, r: &mut Report) {
    eprintln!("timing 20 dispatches into 4 factories × 5 slots…");
    let factories = ["myproject", "factory2", "factory3", "factory4"];
    let bed = instant_bed(&[("factory2", "fb"), ("factory3", "fc"), ("factory4", "fd")]);
    let slots: u32 = 5;
    // Round-robin over the factories; within a factory, oldest first, which is also the
    // order its queue serves them once `co worker kill` has queued them again.
    let mut orders: Vec<(&str, String)> = Vec::new();
    for k in 0..slots {
        for f in factories {
            orders.push((f, bed.create(f, &format!("Bench: burst {k}"))));
        }
    }
    let base = bed.w().sb.path().join("baseline");
    let repos: Vec<PathBuf> = factories
        .iter()
        .map(|f| bed.factory_dir(f).join(".git"))
        .collect();
    let kill_all = || {
        for f in factories {
            for s in 0..slots {
                co_kill(&bed, f, s);
            }
        }
    };
    let co_round = |polled: bool| -> (Duration, Vec<Ran>) {
        let t = Instant::now();
        let runs: Vec<Ran> = orders
            .iter()
            .map(|(f, id)| co_dispatch(&bed, id, f, None, polled))
            .collect();
        let total = t.elapsed();
        kill_all();
        (total, runs)
    };
    let base_round = |round: usize, polled: bool| -> (Duration, Vec<Pair>) {
        let names: Vec<(usize, String)> = (0..orders.len())
            .map(|k| (k % factories.len(), format!("burst{round}-{k}")))
            .collect();
        let t = Instant::now();
        let pairs: Vec<Pair> = names
            .iter()
            .map(|(fi, name)| baseline(&bed, &repos[*fi], &base.join(name), name, polled))
            .collect();
        let total = t.elapsed();
        for (fi, name) in &names {
            undo_baseline(&bed, &repos[*fi], &base.join(name), name);
        }
        (total, pairs)
    };

    // Warm-up: every work order goes from open to the queued state the timed rounds start in.
    co_round(false);
    let (mut tc, mut tb) = (Vec::new(), Vec::new());
    let mut each = Vec::new();
    for round in 0..p.rounds {
        sys::check_interrupted();
        let ((c, runs), (b, _)) = if round % 2 == 0 {
            let c = co_round(false);
            (c, base_round(round, false))
        } else {
            let b = base_round(round, false);
            (co_round(false), b)
        };
        tc.push(c);
        tb.push(b);
        each.extend(runs.iter().map(|x| x.wall));
    }
    // One more round of each, polling every process's own VmHWM (not timed: polling costs
    // CPU).
    let (_, polled) = co_round(true);
    let (_, pairs) = base_round(p.rounds, true);
    let hwm = |runs: &mut dyn Iterator<Item = &Ran>| -> Vec<u64> {
        runs.map(|x| x.hwm_kib.expect("every process was seen running"))
            .collect()
    };
    let hwm_co = hwm(&mut polled.iter());
    let hwm_git = hwm(&mut pairs.iter().map(|x| &x.worktree));
    let hwm_tmux = hwm(&mut pairs.iter().map(|x| &x.session));

    let (c, b) = (median(&tc), median(&tb));
    r.add(
        Row::new(
            format!(
                "20 × co dispatch (4 factories × 5 slots), total, median of {}",
                p.rounds
            ),
            fmt_dur(c),
        )
        .baseline(format!("20 × worktree add + new-session {}", fmt_dur(b)))
        .ratio(format!("{:.2}×", c.as_secs_f64() / b.as_secs_f64())),
    );
    r.add(
        Row::new(
            "  one co dispatch in those rounds, median",
            fmt_dur(median(&each)),
        )
        .baseline(format!(
            "slowest {}",
            fmt_dur(each.iter().copied().max().unwrap_or_default())
        )),
    );
    let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    r.add(
        Row::new(
            "peak RSS of one co dispatch (its VmHWM), max of 20",
            fmt_mib(max(&hwm_co)),
        )
        .baseline(format!(
            "git worktree add {}, tmux new-session {}",
            fmt_mib(max(&hwm_git)),
            fmt_mib(max(&hwm_tmux))
        ))
        .ratio(format!(
            "{:.2}× git's",
            max(&hwm_co) as f64 / max(&hwm_git).max(1) as f64
        )),
    );
}
