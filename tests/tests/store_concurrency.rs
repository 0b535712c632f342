//! 8 processes × 2,000 concurrent appends to one store (issue 2): exactly 16,000 valid lines,
//! a gapless seq, each writer's events in its own order, and a projection equal to a rebuild.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use vermas_tests::{Sandbox, read_events};

const WRITERS: u32 = 8;
const EACH: u32 = 2_000;

#[test]
fn eight_processes_two_thousand_writes_each() {
    let sb = Sandbox::new();
    sb.wo(&["init"]).ok();
    let work = sb.path().join(".work");
    let writer = env!("CARGO_BIN_EXE_vermas-test-writer");
    let children: Vec<_> = (0..WRITERS)
        .map(|i| {
            sb.command(writer)
                .arg(&work)
                .arg(i.to_string())
                .arg(EACH.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let events = read_events(&work);
    let total = (WRITERS * EACH) as usize;
    assert_eq!(events.len(), total, "exactly one valid line per write");
    // Every line of every partition parsed (read_events skips bad lines, so count raw lines).
    let raw_lines: usize = std::fs::read_dir(work.join("events"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
        .sum();
    assert_eq!(raw_lines, total);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"].as_u64().unwrap(), i as u64 + 1, "gapless seq");
    }
    let mut next: HashMap<String, u32> = HashMap::new();
    for e in &events {
        let title = e["data"]["title"].as_str().unwrap();
        let (w, n) = title.split_once('-').unwrap();
        let n: u32 = n.parse().unwrap();
        let expected = next.entry(w.to_string()).or_insert(0);
        assert_eq!(n, *expected, "writer {w} events in its own order");
        *expected += 1;
    }
    assert_eq!(next.len(), WRITERS as usize);
    // Ids are unique.
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total);
    // Projection (refreshed on read) equals a rebuild; doctor agrees.
    let list = sb.wo(&["list", "--all", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), total);
    // Readers racing to build the look-up index all get the right answer.
    let wo = vermas_tests::bin("wo");
    let readers: Vec<_> = ids
        .iter()
        .step_by(total / 6)
        .map(|&id| {
            sb.command(&wo)
                .args(["show", id, "--json"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (r, &id) in readers.into_iter().zip(ids.iter().step_by(total / 6)) {
        let out = r.wait_with_output().unwrap();
        assert!(out.status.success(), "wo show {id}");
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(shown["id"], id);
    }
    let doctor = sb.wo(&["doctor", "--json"]);
    assert_eq!(doctor.json()["ok"], true, "{}", doctor.stdout);
}
