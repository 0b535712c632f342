//! `co completions SHELL`: the completion script, made from the same definitions as `--help`.

use std::process::ExitCode;
use vermas_core::{Error, Result};

#[derive(clap::Args)]
#[command(after_help = vermas_cli::examples!(
    "# bash: load it now, or install it for every shell",
    "source <(co completions bash)",
    "co completions bash > ~/.local/share/bash-completion/completions/co",
    "# zsh (a directory on $fpath) and fish",
    "co completions zsh > ~/.zfunc/_co",
    "co completions fish > ~/.config/fish/completions/co.fish",
))]
pub struct Args {
    /// The shell to write the script for
    #[arg(value_enum)]
    shell: vermas_cli::docs::Shell,
}

pub fn run(a: Args) -> Result<ExitCode> {
    vermas_cli::docs::print_completions(vermas_cli::command::<crate::Cli>(), a.shell)
        .map_err(|e| Error::failure(format!("writing the completion script: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
