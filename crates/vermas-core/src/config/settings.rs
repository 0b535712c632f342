//! Typed settings: every key in one declaration, read once from the layered [`Config`].
//!
//! [`settings!`] declares each section's struct and, from the same lines, the key table
//! [`KEYS`] that validates files, fills in defaults and feeds `co config show`. Code reads
//! `factory.settings.worker.max_attempts`, never a string: a key that is read but not declared
//! does not compile, and a key that is declared has one type, one default and one doc.

use super::{Config, ConfigError, Gate, KeySpec, Ty, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a key's TOML value becomes a Rust value. The validation itself ([`Ty`]) happened when
/// the file was read, so reading never fails for a value that got into a [`Config`].
pub trait Setting {
    type Out;
    const TY: Ty;
    /// `None` when the value is missing or of another type (a key with no default).
    fn read(v: Option<&Value>) -> Option<Self::Out>;
}

/// `true` or `false`.
pub struct Flag;
impl Setting for Flag {
    type Out = bool;
    const TY: Ty = Ty::Bool;
    fn read(v: Option<&Value>) -> Option<bool> {
        match v? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// A number of seconds greater than zero (decimals allowed: tests use `0.2`).
pub struct Seconds;
impl Setting for Seconds {
    type Out = Duration;
    const TY: Ty = Ty::Positive;
    fn read(v: Option<&Value>) -> Option<Duration> {
        number(v).map(|n| Duration::from_secs_f64(n.max(0.001)))
    }
}

/// A number of minutes greater than zero.
pub struct Minutes;
impl Setting for Minutes {
    type Out = Duration;
    const TY: Ty = Ty::Positive;
    fn read(v: Option<&Value>) -> Option<Duration> {
        number(v).map(|n| Duration::from_secs_f64((n * 60.0).max(0.001)))
    }
}

/// A whole number of at least 1.
pub struct Count;
impl Setting for Count {
    type Out = u32;
    const TY: Ty = Ty::Count;
    fn read(v: Option<&Value>) -> Option<u32> {
        match v? {
            Value::Int(i) => Some(u32::try_from(*i).unwrap_or(u32::MAX).max(1)),
            _ => None,
        }
    }
}

/// A string.
pub struct Text;
impl Setting for Text {
    type Out = String;
    const TY: Ty = Ty::Str;
    fn read(v: Option<&Value>) -> Option<String> {
        match v? {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// A string that may be unset.
pub struct MaybeText;
impl Setting for MaybeText {
    type Out = Option<String>;
    const TY: Ty = Ty::Str;
    fn read(v: Option<&Value>) -> Option<Option<String>> {
        Some(Text::read(v))
    }
}

/// A list of strings.
pub struct Strings;
impl Setting for Strings {
    type Out = Vec<String>;
    const TY: Ty = Ty::List;
    fn read(v: Option<&Value>) -> Option<Vec<String>> {
        match v {
            Some(Value::List(l)) => Some(l.clone()),
            _ => Some(Vec::new()),
        }
    }
}

/// A git branch name.
pub struct Branch;
impl Setting for Branch {
    type Out = String;
    const TY: Ty = Ty::Branch;
    fn read(v: Option<&Value>) -> Option<String> {
        Text::read(v)
    }
}

/// A work order id prefix, unset unless configured.
pub struct Prefix;
impl Setting for Prefix {
    type Out = Option<String>;
    const TY: Ty = Ty::Prefix;
    fn read(v: Option<&Value>) -> Option<Option<String>> {
        Some(Text::read(v))
    }
}

/// A factory name, unset unless configured.
pub struct Name;
impl Setting for Name {
    type Out = Option<String>;
    const TY: Ty = Ty::Name;
    fn read(v: Option<&Value>) -> Option<Option<String>> {
        Some(Text::read(v))
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const NAMES: &'static [&'static str] = &["ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.to_ascii_uppercase().as_str() {
            "ERROR" => LogLevel::Error,
            "WARN" | "WARNING" => LogLevel::Warn,
            "INFO" => LogLevel::Info,
            "DEBUG" => LogLevel::Debug,
            "TRACE" => LogLevel::Trace,
            _ => return None,
        })
    }
}

impl Setting for LogLevel {
    type Out = LogLevel;
    const TY: Ty = Ty::Choice(LogLevel::NAMES);
    fn read(v: Option<&Value>) -> Option<LogLevel> {
        Text::read(v).and_then(|s| LogLevel::parse(&s))
    }
}

/// Declares the settings sections and the key table from one list: for each key its Rust
/// name (the TOML key), how it is read, its default (TOML text, or `None`) and its doc.
macro_rules! settings {
    ($(
        $(#[doc = $sdoc:literal])*
        $section:ident: $Section:ident {
            $( $field:ident: $kind:ty = $default:expr, $doc:literal; )*
        }
    )*) => {
        $(
            $(#[doc = $sdoc])*
            #[derive(Debug, Clone, PartialEq)]
            pub struct $Section {
                $( #[doc = $doc] pub $field: <$kind as Setting>::Out, )*
            }

            impl $Section {
                fn read(c: &Config) -> Result<$Section, ConfigError> {
                    Ok($Section {
                        $( $field: <$kind as Setting>::read(
                            c.get(concat!(stringify!($section), ".", stringify!($field))),
                        )
                        .ok_or_else(|| missing(concat!(stringify!($section), ".", stringify!($field))))?, )*
                    })
                }
            }
        )*

        /// Every fixed key, generated from the same declaration as the settings structs.
        /// Keys under `runtimes.<name>.` and `roles.<role>.` are in [`super::RUNTIME_KEYS`]
        /// and [`super::ROLE_KEYS`].
        pub const KEYS: &[KeySpec] = &[
            $( $( KeySpec {
                key: concat!(stringify!($section), ".", stringify!($field)),
                ty: <$kind as Setting>::TY,
                default: $default,
                doc: $doc,
            }, )* )*
            KeySpec {
                key: "gates",
                ty: Ty::Gates,
                default: None,
                doc: "checks QA runs on the merged tree: name, command, timeout_seconds",
            },
        ];

        /// The sections of fixed keys.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Sections {
            $( pub $section: $Section, )*
        }

        impl Sections {
            fn read(c: &Config) -> Result<Sections, ConfigError> {
                Ok(Sections { $( $section: $Section::read(c)?, )* })
            }
        }
    };
}

fn missing(key: &str) -> ConfigError {
    ConfigError::Unreadable {
        file: "built-in defaults".into(),
        message: format!("{key} has no value (a key without a default must be optional)"),
    }
}

settings! {
    /// `[company]`
    company: CompanySettings {
        name: Text = Some("\"my-company\""), "company name, shown by co status";
        root: MaybeText = None, "company root (from COMPANY_ROOT or the directory holding .vermas/)";
    }
    /// This process's identity.
    agent: AgentSettings {
        id: MaybeText = None, "this process's agent identity (AGENT_ID)";
    }
    /// `[operations]`: the watchdog and the patrols.
    operations: OperationsSettings {
        patrol_interval_seconds: Seconds = Some("60"), "how often operations, supervisors and QA patrol";
        restart_on_failure: Flag = Some("true"), "restart supervisor and QA sessions that die";
        restart_backoff_initial_seconds: Seconds = Some("2"), "first restart delay; doubles after each failure";
        restart_backoff_max_seconds: Seconds = Some("300"), "longest restart delay";
        max_restarts: Count = Some("5"), "failures within the window before escalating to the CEO";
        restart_window_minutes: Minutes = Some("10"), "window in which failures are counted";
        stable_after_seconds: Seconds = Some("120"), "a session alive this long resets its backoff";
    }
    /// `[worker]`
    worker: WorkerSettings {
        max_slots_per_factory: Count = Some("5"), "workers that may run at once in one factory";
        idle_timeout_minutes: Minutes = Some("5"), "no activity this long: the supervisor nudges";
        stuck_timeout_minutes: Minutes = Some("15"), "no activity this long: the supervisor kills and re-queues";
        max_attempts: Count = Some("3"), "dispatches before a work order is marked failed";
        git_name: Text = Some("\"VerMAS worker\""), "the git author of agents when neither the environment nor ~/.gitconfig names one";
        git_email: Text = Some("\"{slot}@{factory}.vermas\""), "their email ({slot} and {factory} are filled in)";
    }
    /// `[mail]`
    mail: MailSettings {
        poll_interval_seconds: Seconds = Some("10"), "how often built-in loops look for mail when no change is seen";
    }
    /// `[events]`
    events: EventsSettings {
        partition_by_day: Flag = Some("true"), "one event file per UTC day under .work/events/";
        retention_days: Count = Some("30"), "day partitions older than this are archived on patrol (moved to .work/events/archive/, never deleted)";
    }
    /// `[tmux]`
    tmux: TmuxSettings {
        socket: MaybeText = None, "private tmux server name (-L) or socket path (-S); unset: the default server";
    }
    /// `[log]`
    log: LogSettings {
        level: LogLevel = Some("\"INFO\""), "logging verbosity (LOG_LEVEL)";
        debug: Flag = Some("false"), "debug mode (DEBUG)";
    }
    /// `[factory]`
    factory: FactorySettings {
        name: Name = None, "factory name";
        prefix: Prefix = None, "work order id prefix of this store";
        target_branch: Branch = Some("\"main\""), "branch QA merges into";
        push: Flag = Some("false"), "push the target branch to origin after each merge";
    }
    /// `[verification]`
    verification: VerificationSettings {
        enabled: Flag = Some("true"), "QA merges only after gates pass; with no gates nothing auto-merges";
        objective_only: Flag = Some("false"), "QA decides from the gates alone (no LLM reviewer exists yet, so false is the same)";
        require_all_pass: Flag = Some("true"), "every gate must pass (false: at least one)";
        protected: Strings = Some("[]"), "paths a branch may change only with a person's approval (globs: tests/**, ci/*.sh); the gates' own scripts always are";
    }
    /// `[qa]`: the merge queue.
    qa: QaSettings {
        batch_max: Count = Some("8"), "branches QA merges and gates together; a failing batch is bisected";
        parallel_gates: Count = Some("2"), "gate runs side by side while a failed batch is bisected (each in its own worktree, qa/ and qa-2/): one bad branch among 8 costs 4 gate times wherever it is; 1 gates one tree at a time (4 or 5)";
    }
    /// `[sync]`
    sync: SyncSettings {
        branch: Branch = Some("\"work-sync\""), "branch for syncing work orders between machines";
        auto_sync: Flag = Some("true"), "sync work orders automatically";
    }
}

/// How the first instruction reaches an agent (`[runtimes.NAME] prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptMode {
    /// The start message is the last argument (or follows the preset's prompt flag).
    Argument,
    /// The start message is typed in once the agent shows its input prompt.
    Nudge,
    /// Nothing is passed: the agent reads `$VERMAS_PROMPT_FILE` or runs `co assignment`.
    File,
}

impl PromptMode {
    pub const NAMES: &'static [&'static str] = &["argument", "file", "nudge", "none"];
    pub fn parse(s: &str) -> Option<PromptMode> {
        match s {
            "argument" => Some(PromptMode::Argument),
            "nudge" => Some(PromptMode::Nudge),
            "file" | "none" => Some(PromptMode::File),
            _ => None,
        }
    }
}

/// A `[runtimes.NAME]` table as configured (the preset it names fills in the rest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeTable {
    pub preset: Option<String>,
    pub command: Option<Vec<String>>,
    /// Added after the argv.
    pub args: Vec<String>,
    pub prompt: Option<PromptMode>,
    pub system_prompt_flag: Option<String>,
    pub ready_text: Option<String>,
    pub env: BTreeMap<String, String>,
}

/// Which runtime each role uses (`[roles.ROLE] runtime`).
#[derive(Debug, Clone, PartialEq)]
pub struct Roles {
    pub worker: String,
    pub supervisor: String,
    pub qa: String,
    pub ceo: String,
}

impl Roles {
    /// The runtime of a role by its name (`worker`, `supervisor`, `qa`, `ceo`).
    pub fn of(&self, role: &str) -> &str {
        match role {
            "supervisor" => &self.supervisor,
            "qa" => &self.qa,
            "ceo" => &self.ceo,
            _ => &self.worker,
        }
    }
}

/// Everything the configuration says, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub company: CompanySettings,
    pub agent: AgentSettings,
    pub operations: OperationsSettings,
    pub worker: WorkerSettings,
    pub mail: MailSettings,
    pub events: EventsSettings,
    pub tmux: TmuxSettings,
    pub log: LogSettings,
    pub factory: FactorySettings,
    pub verification: VerificationSettings,
    pub qa: QaSettings,
    pub sync: SyncSettings,
    pub gates: Vec<Gate>,
    pub roles: Roles,
    pub runtimes: BTreeMap<String, RuntimeTable>,
}

impl Settings {
    /// Reads the typed settings from a merged configuration.
    pub fn from_config(c: &Config) -> Result<Settings, ConfigError> {
        let s = Sections::read(c)?;
        let role = |r: &str| {
            c.get(&format!("roles.{r}.runtime"))
                .and_then(|v| Text::read(Some(v)))
                .unwrap_or_else(|| super::default_runtime(r).to_string())
        };
        let mut runtimes = BTreeMap::new();
        for name in c.runtime_names() {
            let key = |k: &str| c.get(&format!("runtimes.{name}.{k}"));
            runtimes.insert(
                name.clone(),
                RuntimeTable {
                    preset: Text::read(key("preset")),
                    command: match key("command") {
                        Some(Value::List(l)) => Some(l.clone()),
                        _ => None,
                    },
                    args: match key("args") {
                        Some(Value::List(l)) => l.clone(),
                        _ => Vec::new(),
                    },
                    prompt: Text::read(key("prompt")).and_then(|p| PromptMode::parse(&p)),
                    system_prompt_flag: Text::read(key("system_prompt_flag")),
                    ready_text: Text::read(key("ready_text")),
                    env: match key("env") {
                        Some(Value::Map(m)) => m.clone(),
                        _ => BTreeMap::new(),
                    },
                },
            );
        }
        Ok(Settings {
            company: s.company,
            agent: s.agent,
            operations: s.operations,
            worker: s.worker,
            mail: s.mail,
            events: s.events,
            tmux: s.tmux,
            log: s.log,
            factory: s.factory,
            verification: s.verification,
            qa: s.qa,
            sync: s.sync,
            gates: match c.get("gates") {
                Some(Value::Gates(g)) => g.clone(),
                _ => Vec::new(),
            },
            roles: Roles {
                worker: role("worker"),
                supervisor: role("supervisor"),
                qa: role("qa"),
                ceo: role("ceo"),
            },
            runtimes,
        })
    }

    /// The built-in defaults.
    pub fn defaults() -> Settings {
        // The defaults are declared above and validated by a test; reading them cannot fail.
        Settings::from_config(&Config::defaults()).unwrap_or_else(|e| panic!("defaults: {e}"))
    }

    /// How often a factory's loops look when nothing wakes them: the patrol interval, but
    /// never slower than the mail poll interval.
    pub fn factory_patrol_interval(&self) -> Duration {
        self.operations
            .patrol_interval_seconds
            .min(self.mail.poll_interval_seconds)
    }

    /// Whether DEBUG lines are written.
    pub fn debug_logging(&self) -> bool {
        self.log.debug || self.log.level >= LogLevel::Debug
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_declared_default_reads_and_matches_the_guide() {
        let s = Settings::defaults();
        assert_eq!(
            s.operations.patrol_interval_seconds,
            Duration::from_secs(60)
        );
        assert!(s.operations.restart_on_failure);
        assert_eq!(s.worker.max_slots_per_factory, 5);
        assert_eq!(s.worker.idle_timeout_minutes, Duration::from_secs(300));
        assert_eq!(s.worker.stuck_timeout_minutes, Duration::from_secs(900));
        assert_eq!(s.worker.max_attempts, 3);
        assert_eq!(s.mail.poll_interval_seconds, Duration::from_secs(10));
        assert!(s.events.partition_by_day);
        assert_eq!(s.events.retention_days, 30);
        assert_eq!(s.roles.worker, "claude");
        assert_eq!(s.roles.supervisor, "builtin");
        assert_eq!(s.factory.target_branch, "main");
        assert_eq!(s.factory.prefix, None);
        assert_eq!(s.log.level, LogLevel::Info);
        assert!(s.gates.is_empty());
        assert_eq!(s.factory_patrol_interval(), Duration::from_secs(10));
        // Every key with a default has a parsable one.
        for k in KEYS {
            if let Some(d) = k.default {
                assert!(
                    super::super::parse_default(k.ty, d).is_some(),
                    "{}: bad default {d}",
                    k.key
                );
            }
        }
    }

    #[test]
    fn files_and_runtime_tables_become_typed_values() {
        let mut c = Config::defaults();
        c.merge_str(
            Path::new("c.toml"),
            "[worker]\nidle_timeout_minutes = 0.05\nmax_attempts = 2\n[log]\nlevel = \"DEBUG\"\n[runtimes.scripted]\ncommand = [\"bash\", \"a.sh\"]\nprompt = \"nudge\"\nenv = { A = \"1\" }\n[roles.worker]\nruntime = \"scripted\"\n",
        )
        .unwrap();
        let s = Settings::from_config(&c).unwrap();
        assert_eq!(s.worker.idle_timeout_minutes, Duration::from_secs(3));
        assert_eq!(s.worker.max_attempts, 2);
        assert!(s.debug_logging());
        assert_eq!(s.roles.of("worker"), "scripted");
        let rt = &s.runtimes["scripted"];
        assert_eq!(
            rt.command.as_deref(),
            Some(&["bash".to_string(), "a.sh".to_string()][..])
        );
        assert_eq!(rt.prompt, Some(PromptMode::Nudge));
        assert_eq!(rt.env["A"], "1");
    }
}
