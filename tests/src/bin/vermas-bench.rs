//! `vermas-bench`: the performance figures of docs/PERFORMANCE.md, each printed beside a
//! baseline measured in the same run (medians and ratios: machines are noisy).
//!
//! Usage: `vermas-bench [store|dispatch|pipeline|queue|scale|all]... [--quick]`
//!
//! Build first: `cargo build --release --workspace && target/release/vermas-bench all`.
//! The bench runs the `co` and `wo` that sit next to it, in temporary directories and on
//! private tmux servers that it removes (also when a step fails or on Ctrl-C).
//! To add a section: a module under `tests/src/bench/` with `run(Opts, &mut Report)`, a name in
//! [`SECTIONS`], and a line in `run_section`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../bench/mod.rs"]
mod bench;

use bench::{Opts, Report};
use std::path::PathBuf;

/// Every section, in the order `all` runs them.
const SECTIONS: &[&str] = &["store", "dispatch", "pipeline", "queue", "scale"];

fn usage() -> ! {
    eprintln!(
        "usage: vermas-bench [{}|all] [--quick]\n\n  --quick  smaller sizes and fewer repetitions (a smoke run, not figures to record)\n\nBuild with `cargo build --release --workspace` first; the bench runs the co and wo next to it.",
        SECTIONS.join("|")
    );
    std::process::exit(2);
}

fn run_section(name: &str, o: Opts, r: &mut Report) {
    match name {
        "store" => bench::store::run(o, r),
        "dispatch" => bench::dispatch::run(o, r),
        "pipeline" => bench::pipeline::run(o, r),
        "queue" => bench::queue::run(o, r),
        "scale" => bench::scale::run(o, r),
        _ => usage(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Hidden: the writer children of the concurrency figure.
    if let Some(kind) = args.first().map(String::as_str)
        && (kind == "__writer" || kind == "__writer-wo")
    {
        let [_, work, id, count] = args.as_slice() else {
            usage()
        };
        let (work, id, count) = (
            PathBuf::from(work),
            id.parse().expect("writer id"),
            count.parse().expect("count"),
        );
        if kind == "__writer" {
            bench::store::writer_main(&work, id, count);
        } else {
            bench::store::writer_wo_main(&work, count);
        }
        return;
    }

    // Hidden: a store to profile by hand (`__fill DIR open|lifecycle N`: N work orders or N
    // events in DIR/.work, projections rebuilt).
    if args.first().is_some_and(|a| a == "__fill") {
        let [_, dir, mix, n] = args.as_slice() else {
            usage()
        };
        bench::store::fill_main(std::path::Path::new(dir), mix, n.parse().expect("count"));
        return;
    }

    let mut quick = false;
    let mut sections: Vec<&str> = Vec::new();
    for a in &args {
        match a.as_str() {
            "--quick" => quick = true,
            "-h" | "--help" => usage(),
            "all" => sections.extend(SECTIONS),
            s if SECTIONS.contains(&s) => sections.push(s),
            _ => usage(),
        }
    }
    if sections.is_empty() {
        usage();
    }
    let mut seen = std::collections::HashSet::new();
    sections.retain(|s| seen.insert(*s));
    let o = Opts { quick };

    let mut head = format!(
        "vermas-bench {}{}\n",
        sections.join(" "),
        if quick { " --quick" } else { "" }
    );
    for (k, v) in bench::machine() {
        head.push_str(&format!("{k:<9} {v}\n"));
    }
    if bench::bin_dir().ends_with("debug") {
        head.push_str(
            "warning: these are debug builds; build with --release for figures to record\n",
        );
    }
    eprintln!("{head}");

    let mut report = Report {
        quick,
        ..Default::default()
    };
    let started = std::time::Instant::now();
    for s in &sections {
        eprintln!("== {s}");
        run_section(s, o, &mut report);
    }
    if quick {
        report.note("--quick: smaller sizes; the targets are for the full sizes");
    }
    report.note(format!("ran in {}", bench::fmt_dur(started.elapsed())));
    println!("\n{head}\n{}", report.render());
}
