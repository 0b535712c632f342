//! `wo man [--dir DIR]`: man pages, made from the same definitions as `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use vermas_core::{Error, Result};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# Read it now",
    "wo man | man -l -",
    "# Install wo.1 and one page per subcommand (wo-list.1, wo-events-tail.1, …)",
    "wo man --dir /usr/local/share/man/man1",
))]
pub struct Args {
    /// Write wo.1 and a page for every subcommand into DIR (made if missing) instead of
    /// printing wo.1
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    vermas_cli::docs::print_or_write_man(vermas_cli::command::<crate::Cli>(), a.dir.as_deref())
        .map_err(|e| Error::failure(format!("man pages: {e}")))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    /// Every argument of every `wo` command has a one-line description, and every command
    /// that runs something ends its help with examples.
    #[test]
    fn every_argument_is_described_and_every_command_has_examples() {
        let missing = vermas_cli::docs::missing_help(vermas_cli::command::<crate::Cli>());
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}
