//! `vermas-fake-model`: the fake model server of `vermas_tests::fake_model` as a program, for
//! running an agent CLI against it by hand.
//!
//! Usage: `vermas-fake-model --scenario FILE [--port N] [--log FILE] [--dump-dir DIR]`
//!
//! Prints its base URL (`http://127.0.0.1:PORT`) on stdout, then serves until killed.

use std::io::Write;
use std::path::PathBuf;
use vermas_tests::fake_model::{FakeModel, Options, Scenario};

fn usage(msg: &str) -> ! {
    eprintln!(
        "vermas-fake-model: {msg}\nusage: vermas-fake-model --scenario FILE [--port N] [--log FILE] [--dump-dir DIR]"
    );
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut scenario = None;
    let mut opts = Options::default();
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--scenario" => scenario = Some(PathBuf::from(value())),
            "--port" => {
                opts.port = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--port takes a number"))
            }
            "--log" => opts.log = Some(PathBuf::from(value())),
            "--dump-dir" => opts.dump_dir = Some(PathBuf::from(value())),
            "-h" | "--help" => usage("a fake model server for the agent CLIs"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let Some(path) = scenario else {
        usage("--scenario is required")
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| usage(&format!("cannot read {}: {e}", path.display())));
    let scenario = Scenario::from_json(&text).unwrap_or_else(|e| usage(&e));
    let model = FakeModel::start_with(scenario, opts).unwrap_or_else(|e| {
        eprintln!("vermas-fake-model: cannot start: {e}");
        std::process::exit(1)
    });
    println!("{}", model.base_url());
    let _ = std::io::stdout().flush();
    eprintln!(
        "vermas-fake-model: logging requests to {}",
        model.log_path().display()
    );
    loop {
        std::thread::park();
    }
}
