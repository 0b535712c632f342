//! `co`: the company. Parses arguments, calls `vermas_core`, prints.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "co",
    version,
    about = "The company: factories, dispatch, workers, operations"
)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
