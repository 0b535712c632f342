//! `co` basics that need no tmux: version, help, and the one-line errors outside a company.
//! (Having an integration test here also makes `cargo test`/`nextest` build the `co` binary
//! that the cross-binary suite in `tests/` runs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vermas_tests::Sandbox;

#[test]
fn version_and_help() {
    let sb = Sandbox::new();
    let v = sb.co(&["--version"]);
    assert!(v.ok().starts_with("co "));
    let h = sb.co(&["--help"]);
    for cmd in [
        "init",
        "factory",
        "dispatch",
        "worker",
        "operations",
        "doctor",
        "status",
    ] {
        assert!(h.stdout.contains(cmd), "{cmd} in help");
    }
}

#[test]
fn outside_a_company_the_error_says_to_run_co_init() {
    let sb = Sandbox::new();
    let err = sb.co(&["status"]).fails(1).to_string();
    assert!(err.contains("co init"), "{err}");
    assert_eq!(err.trim().lines().count(), 1);
}

#[test]
fn bad_flag_values_are_usage_errors() {
    let sb = Sandbox::new();
    sb.co(&["init"]).ok();
    let err = sb
        .co(&["send", "ceo", "-s", "x", "-m", "y", "--priority", "now"])
        .fails(2)
        .to_string();
    assert!(err.contains("urgent, normal, low"), "{err}");
    let err = sb
        .co(&["worker", "list", "--status", "sleepy"])
        .fails(2)
        .to_string();
    assert!(err.contains("running, idle, stuck, dead"), "{err}");
    sb.co(&["dispatch", "wo-abcdef", "nosuch"]).fails(3);
}
