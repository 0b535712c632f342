//! [`Deferred`]: a subcommand whose arguments clap builds only when that subcommand runs.

use clap::{ArgMatches, Args, Command, Error, FromArgMatches, Subcommand};

/// A subcommand's arguments (an `Args` struct or a nested `Subcommand` enum) built by clap
/// only when that subcommand is the one given, or its help is shown, or completions and man
/// pages are made: parsing `co dispatch …` then builds `dispatch` and not the thirty others.
/// Every process of an agent's session starts with a parse (`co exec-agent`, `wo show`,
/// `co assignment`), so the whole tree cost each of them about a millisecond of CPU, and the
/// one that holds an agent while its worktree is made spends it beside git. Help, errors and
/// completions are the same.
#[derive(Debug, Clone)]
pub struct Deferred<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, Error> {
        T::from_arg_matches(matches).map(Deferred)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

impl<T: Args> Args for Deferred<T> {
    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }

    fn augment_args(cmd: Command) -> Command {
        cmd.defer(T::augment_args)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        cmd.defer(T::augment_args_for_update)
    }
}

impl<T: Subcommand> Subcommand for Deferred<T> {
    fn augment_subcommands(cmd: Command) -> Command {
        cmd.defer(T::augment_subcommands)
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        cmd.defer(T::augment_subcommands_for_update)
    }

    fn has_subcommand(name: &str) -> bool {
        T::has_subcommand(name)
    }
}

#[cfg(test)]
mod tests {
    use super::Deferred;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Cmd,
    }

    #[derive(Subcommand)]
    enum Cmd {
        /// One
        One(Deferred<OneArgs>),
        /// Nested
        #[command(subcommand)]
        Two(Deferred<TwoCmd>),
    }

    #[derive(clap::Args)]
    struct OneArgs {
        id: String,
        #[arg(long)]
        flag: bool,
    }

    #[derive(Subcommand)]
    enum TwoCmd {
        Inner { n: u32 },
    }

    #[test]
    fn arguments_are_built_only_for_the_subcommand_given_and_parse_as_before() {
        let cmd = Cli::command();
        let one = cmd.find_subcommand("one").unwrap();
        assert_eq!(one.get_arguments().count(), 0, "not built yet");
        let mut built = Cli::command();
        built.build();
        let one = built.find_subcommand("one").unwrap();
        assert!(one.get_arguments().any(|a| a.get_id() == "flag"));
        assert!(built.find_subcommand("two").unwrap().has_subcommands());
        match Cli::parse_from(["x", "one", "mp-1", "--flag"]).command {
            Cmd::One(Deferred(a)) => assert!(a.id == "mp-1" && a.flag),
            Cmd::Two(_) => panic!("parsed the wrong subcommand"),
        }
        match Cli::parse_from(["x", "two", "inner", "7"]).command {
            Cmd::Two(Deferred(TwoCmd::Inner { n })) => assert_eq!(n, 7),
            Cmd::One(_) => panic!("parsed the wrong subcommand"),
        }
        assert!(
            Cli::try_parse_from(["x", "one"]).is_err(),
            "a required argument"
        );
    }
}
