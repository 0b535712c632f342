//! Shell completions and man pages, made from the same clap definitions as `--help`, so they
//! never disagree with the binary that prints them. A packager runs the installed binary:
//!
//! ```sh
//! co completions bash > /usr/share/bash-completion/completions/co
//! co man --dir /usr/share/man/man1        # co.1, co-factory.1, co-factory-add.1, …
//! ```

use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, roman};
use std::io::Write;
use std::path::{Path, PathBuf};

pub use clap_complete::Shell;

/// The completion script of `cmd` for `shell`.
pub fn completions(mut cmd: Command, shell: Shell) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// One man page: its file name (`co-factory-add.1`) and its roff text.
#[derive(Debug)]
pub struct Page {
    pub file: String,
    pub text: Vec<u8>,
}

/// The man pages of `cmd`: one for it and one for every subcommand that is not hidden, at any
/// depth (`co.1`, `co-factory.1`, `co-factory-add.1`, …), parents first.
pub fn man_pages(cmd: Command) -> std::io::Result<Vec<Page>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, &mut out)?;
    Ok(out)
}

fn collect(cmd: &Command, out: &mut Vec<Page>) -> std::io::Result<()> {
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    collect_with(cmd, source.trim(), out)
}

/// Every page of the tree names the program and its version as its source (`co 0.1.0`).
fn collect_with(cmd: &Command, source: &str, out: &mut Vec<Page>) -> std::io::Result<()> {
    out.push(page(cmd, source)?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect_with(sub, source, out)?;
    }
    Ok(())
}

/// A page as clap_mangen lays it out, except the text after the options: examples are kept
/// line by line (`.nf`), not filled into one paragraph.
fn page(cmd: &Command, source: &str) -> std::io::Result<Page> {
    let man = Man::new(cmd.clone());
    let mut text = Vec::new();
    // The title line by hand: clap_mangen leaves an empty date out of `.TH`, which shifts
    // the source into the date's place. Names are `[a-z0-9-]`, versions digits and dots.
    let title = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    writeln!(text, ".TH {title} 1 \"\" \"{source}\" \"VerMAS manual\"")?;
    man.render_name_section(&mut text)?;
    man.render_synopsis_section(&mut text)?;
    man.render_description_section(&mut text)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut text)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut text)?;
    }
    if let Some(after) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        after_help(&after.to_string()).to_writer(&mut text)?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut text)?;
    }
    Ok(Page {
        file: man.get_filename(),
        text,
    })
}

/// The text after the options: prose becomes NOTES, the lines after `Examples:` EXAMPLES.
fn after_help(text: &str) -> Roff {
    let mut roff = Roff::new();
    let (prose, examples) = match text.split_once("Examples:\n") {
        Some((p, e)) => (p.trim(), Some(e)),
        None => (text.trim(), None),
    };
    if !prose.is_empty() {
        roff.control("SH", ["NOTES"]);
        for para in prose.split("\n\n") {
            roff.control("PP", [])
                .text([roman(para.replace('\n', " "))]);
        }
    }
    if let Some(examples) = examples {
        roff.control("SH", ["EXAMPLES"]).control("nf", []);
        for line in examples.lines() {
            roff.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
        }
        roff.control("fi", []);
    }
    roff
}

/// Writes every page of `cmd` into `dir` (made if missing); returns the paths written.
pub fn write_man_pages(cmd: Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for p in man_pages(cmd)? {
        let path = dir.join(&p.file);
        std::fs::write(&path, &p.text)?;
        written.push(path);
    }
    Ok(written)
}

/// What the help of `cmd` leaves out, for a test to list: an argument without a one-line
/// description, a subcommand without one, or a command that runs something (one without
/// subcommands) without examples. Hidden commands and clap's own `--help`/`--version` are not
/// looked at.
pub fn missing_help(cmd: Command) -> Vec<String> {
    let mut cmd = cmd;
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, cmd.get_name(), &mut out);
    out
}

fn walk(cmd: &Command, path: &str, out: &mut Vec<String>) {
    for a in cmd.get_arguments() {
        let id = a.get_id().as_str();
        if a.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        if a.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
            out.push(format!("{path}: argument {id} has no description"));
        }
    }
    let subs: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    if subs.is_empty() {
        let examples = cmd
            .get_after_help()
            .is_some_and(|h| h.to_string().contains("Examples:"));
        if !examples {
            out.push(format!("{path}: no examples"));
        }
    }
    for s in subs {
        let sub_path = format!("{path} {}", s.get_name());
        if s.get_about().is_none() {
            out.push(format!("{sub_path}: no description"));
        }
        walk(s, &sub_path, out);
    }
}

/// `completions SHELL`: the script on stdout.
pub fn print_completions(cmd: Command, shell: Shell) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(&completions(cmd, shell))?;
    out.flush()
}

/// `man [--dir DIR]`: the top page on stdout, or every page written into `dir` (their paths
/// on stdout, a count on stderr).
pub fn print_or_write_man(cmd: Command, dir: Option<&Path>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match dir {
        Some(dir) => {
            let written = write_man_pages(cmd, dir).map_err(|e| {
                std::io::Error::new(e.kind(), format!("writing into {}: {e}", dir.display()))
            })?;
            for p in &written {
                writeln!(out, "{}", p.display())?;
            }
            eprintln!("Wrote {} man pages to {}", written.len(), dir.display());
        }
        None => {
            if let Some(top) = man_pages(cmd)?.first() {
                out.write_all(&top.text)?;
            }
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Command {
        Command::new("tool")
            .version("1.0")
            .about("A tool")
            .after_help(crate::examples!("# Do it", "tool go --fast"))
            .subcommand(
                Command::new("go")
                    .about("Go")
                    .arg(
                        clap::Arg::new("fast")
                            .long("fast")
                            .help("Quickly")
                            .num_args(0),
                    )
                    .after_help(crate::examples!("tool go", "tool go --fast")),
            )
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn every_visible_subcommand_gets_a_page_with_its_examples_kept_as_lines() {
        let pages = man_pages(sample()).unwrap();
        let files: Vec<&str> = pages.iter().map(|p| p.file.as_str()).collect();
        assert_eq!(files, ["tool.1", "tool-go.1"]);
        let go = String::from_utf8(pages[1].text.clone()).unwrap();
        assert!(
            go.starts_with(".TH tool-go 1 \"\" \"tool 1.0\" \"VerMAS manual\"\n"),
            "{go}"
        );
        assert!(
            go.contains(".SH EXAMPLES\n.nf\ntool go\ntool go \\-\\-fast\n.fi"),
            "{go}"
        );
        assert!(!go.contains('\x1b'), "no terminal escapes in a man page");
        assert!(go.contains("Quickly"));
    }

    #[test]
    fn missing_help_names_what_is_not_described() {
        assert!(
            missing_help(sample()).is_empty(),
            "{:?}",
            missing_help(sample())
        );
        let bare =
            Command::new("t").subcommand(Command::new("x").about("X").arg(clap::Arg::new("name")));
        assert_eq!(
            missing_help(bare),
            ["t x: argument name has no description", "t x: no examples"]
        );
    }

    #[test]
    fn completions_name_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = String::from_utf8(completions(sample(), shell)).unwrap();
            assert!(text.contains("go"), "{shell}: {text}");
            assert!(text.contains("fast"), "{shell}: {text}");
        }
    }
}
