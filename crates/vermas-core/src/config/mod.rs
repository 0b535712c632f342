//! Layered configuration: built-in defaults < `<company>/.vermas/config.toml` <
//! `<factory>/.work/config.toml` < environment (`COMPANY_ROOT`, `AGENT_ID`, `LOG_LEVEL`,
//! `DEBUG`, `VERMAS_TMUX_SOCKET`).
//!
//! Every key is described once in [`KEYS`] (type, default, one-line doc). Each layer is read
//! with `toml_edit` so a problem names its file and line: an unknown key warns, an invalid value
//! is an error. [`Config::origins`] says where every effective value came from
//! (`co config show`).

mod settings;

pub use settings::{KEYS, LogLevel, PromptMode, Roles, RuntimeTable, Setting, Settings};

use crate::error::{Classify, Kind};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Errors reading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Unreadable { file: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

impl Classify for ConfigError {
    fn kind(&self) -> Kind {
        Kind::Usage
    }
}

/// A configuration value after validation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<String>),
    Map(BTreeMap<String, String>),
    Gates(Vec<Gate>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(l) => write!(
                f,
                "[{}]",
                l.iter()
                    .map(|s| format!("{s:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Map(m) => write!(
                f,
                "{{ {} }}",
                m.iter()
                    .map(|(k, v)| format!("{k} = {v:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Gates(g) => write!(
                f,
                "[{}]",
                g.iter()
                    .map(|g| g.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The type (and constraint) of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Bool,
    /// A number of seconds or minutes greater than zero; integers and decimals both accepted
    /// (tests use `0.2`).
    Positive,
    /// A whole number at least 1.
    Count,
    /// A whole number at least 0.
    NonNegative,
    Str,
    /// A work order id prefix: a lowercase letter then up to 9 lowercase letters or digits.
    Prefix,
    /// A git branch name.
    Branch,
    /// A factory or company name: `[a-z0-9-]+`.
    Name,
    /// An argument vector: a non-empty list of strings.
    Argv,
    /// A list of strings (may be empty).
    List,
    /// A table of strings.
    StrMap,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// `[[gates]]`.
    Gates,
}

/// One known key.
#[derive(Debug)]
pub struct KeySpec {
    pub key: &'static str,
    pub ty: Ty,
    /// The built-in default, as TOML text (`None`: unset unless configured).
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

/// Keys of `[runtimes.<name>]`.
pub const RUNTIME_KEYS: &[KeySpec] = &[
    KeySpec {
        key: "preset",
        ty: Ty::Choice(crate::runtime::PRESET_NAMES),
        default: None,
        doc: "built-in recipe to start from",
    },
    KeySpec {
        key: "command",
        ty: Ty::Argv,
        default: None,
        doc: "the agent's argument vector",
    },
    KeySpec {
        key: "args",
        ty: Ty::List,
        default: None,
        doc: "arguments added after the preset's (a model, a provider)",
    },
    KeySpec {
        key: "prompt",
        ty: Ty::Choice(PromptMode::NAMES),
        default: None,
        doc: "how the first instruction reaches the agent: argument, file, nudge or none",
    },
    KeySpec {
        key: "system_prompt_flag",
        ty: Ty::Str,
        default: None,
        doc: "flag that takes the role prompt (e.g. --append-system-prompt)",
    },
    KeySpec {
        key: "ready_text",
        ty: Ty::Str,
        default: None,
        doc: "text on screen that shows the agent is ready for input",
    },
    KeySpec {
        key: "env",
        ty: Ty::StrMap,
        default: None,
        doc: "extra environment for the agent",
    },
];

/// Keys of `[roles.<role>]`.
pub const ROLE_KEYS: &[KeySpec] = &[KeySpec {
    key: "runtime",
    ty: Ty::Str,
    default: None,
    doc: "runtime name (a preset, a [runtimes.NAME] table, or builtin)",
}];

/// The roles and their default runtime.
pub const ROLES: &[(&str, &str)] = &[
    ("worker", "claude"),
    ("supervisor", "builtin"),
    ("qa", "builtin"),
    ("ceo", "claude"),
];

/// A QA gate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gate {
    pub name: String,
    pub command: GateCommand,
    pub timeout_seconds: f64,
}

/// A gate's command: a string runs with `sh -c` in the merged tree; a list is an argv.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum GateCommand {
    Shell(String),
    Argv(Vec<String>),
}

impl GateCommand {
    pub fn argv(&self) -> Vec<String> {
        match self {
            GateCommand::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
            GateCommand::Argv(a) => a.clone(),
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(into = "String")]
pub enum Source {
    Default,
    File { path: PathBuf, line: usize },
    Env(&'static str),
}

impl From<Source> for String {
    fn from(s: Source) -> String {
        s.to_string()
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Env(v) => write!(f, "env {v}"),
        }
    }
}

/// The effective configuration: every value with its origin.
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: BTreeMap<String, (Value, Source)>,
    /// Unknown keys and other things worth telling the user (file:line: message).
    pub warnings: Vec<String>,
}

fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn describe(item: &toml_edit::Item) -> &'static str {
    match item {
        toml_edit::Item::None => "nothing",
        toml_edit::Item::Table(_) => "a table",
        toml_edit::Item::ArrayOfTables(_) => "an array of tables",
        toml_edit::Item::Value(v) => match v {
            toml_edit::Value::String(_) => "a string",
            toml_edit::Value::Integer(_) => "an integer",
            toml_edit::Value::Float(_) => "a float",
            toml_edit::Value::Boolean(_) => "a boolean",
            toml_edit::Value::Datetime(_) => "a date",
            toml_edit::Value::Array(_) => "an array",
            toml_edit::Value::InlineTable(_) => "an inline table",
        },
    }
}

/// Checks a git branch name the way `git check-ref-format --branch` would, roughly.
pub fn is_valid_branch(b: &str) -> bool {
    !b.is_empty()
        && !b.starts_with('-')
        && !b.starts_with('/')
        && !b.ends_with('/')
        && !b.ends_with(".lock")
        && !b.ends_with('.')
        && !b.contains("..")
        && !b.contains("@{")
        && !b.contains("//")
        && !b.chars().any(|c| c.is_control() || " ~^:?*[\\".contains(c))
}

/// A factory or company name: `[a-z0-9-]+`, not starting with `-`.
pub fn is_valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && !n.starts_with('-')
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn as_number(item: &toml_edit::Item) -> Option<f64> {
    match item.as_value()? {
        toml_edit::Value::Integer(i) => Some(*i.value() as f64),
        toml_edit::Value::Float(f) => Some(*f.value()),
        _ => None,
    }
}

fn as_str_list(item: &toml_edit::Item) -> Option<Vec<String>> {
    let arr = item.as_value()?.as_array()?;
    arr.iter().map(|v| v.as_str().map(str::to_string)).collect()
}

/// Validates one item against its type; `Err` is the message (without file:line).
fn validate(ty: Ty, item: &toml_edit::Item) -> Result<Value, String> {
    let wrong = |want: &str| format!("expected {want}, found {}", describe(item));
    match ty {
        Ty::Bool => item
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| wrong("true or false")),
        Ty::Positive => match as_number(item) {
            Some(n) if n > 0.0 && n.is_finite() => Ok(if n.fract() == 0.0 {
                Value::Int(n as i64)
            } else {
                Value::Float(n)
            }),
            Some(n) => Err(format!("must be greater than 0 (found {n})")),
            None => Err(wrong("a number")),
        },
        Ty::Count | Ty::NonNegative => {
            let min = if ty == Ty::Count { 1 } else { 0 };
            match item.as_integer() {
                Some(i) if i >= min && i <= i64::from(u32::MAX) => Ok(Value::Int(i)),
                Some(i) => Err(format!(
                    "must be a whole number of at least {min} (found {i})"
                )),
                None => Err(wrong("a whole number")),
            }
        }
        Ty::Str => item
            .as_str()
            .map(|s| Value::Str(s.to_string()))
            .ok_or_else(|| wrong("a string")),
        Ty::Prefix => match item.as_str() {
            Some(s) if crate::ids::is_valid_prefix(s) => Ok(Value::Str(s.to_string())),
            Some(s) => Err(format!(
                "prefix {s:?} is not valid: a lowercase letter then up to 9 lowercase letters or digits"
            )),
            None => Err(wrong("a string")),
        },
        Ty::Branch => match item.as_str() {
            Some(s) if is_valid_branch(s) => Ok(Value::Str(s.to_string())),
            Some(s) => Err(format!("{s:?} is not a valid git branch name")),
            None => Err(wrong("a string")),
        },
        Ty::Name => match item.as_str() {
            Some(s) if is_valid_name(s) => Ok(Value::Str(s.to_string())),
            Some(s) => Err(format!(
                "name {s:?} is not valid: use lowercase letters, digits and '-'"
            )),
            None => Err(wrong("a string")),
        },
        Ty::List => as_str_list(item)
            .map(Value::List)
            .ok_or_else(|| wrong("a list of strings, e.g. [\"--model\", \"opus\"]")),
        Ty::Argv => match as_str_list(item) {
            Some(l) if !l.is_empty() && !l[0].is_empty() => Ok(Value::List(l)),
            Some(_) => Err("must name a program: a non-empty list of strings".to_string()),
            None => Err(wrong("a list of strings, e.g. [\"bash\", \"agent.sh\"]")),
        },
        Ty::StrMap => {
            let t = item
                .as_table_like()
                .ok_or_else(|| wrong("a table of strings"))?;
            let mut m = BTreeMap::new();
            for (k, v) in t.iter() {
                let s = v
                    .as_str()
                    .ok_or_else(|| format!("{k}: expected a string, found {}", describe(v)))?;
                m.insert(k.to_string(), s.to_string());
            }
            Ok(Value::Map(m))
        }
        Ty::Choice(options) => match item.as_str() {
            Some(s) if options.contains(&s) => Ok(Value::Str(s.to_string())),
            Some(s) => Err(format!("{s:?} is not one of: {}", options.join(", "))),
            None => Err(wrong(&format!("one of: {}", options.join(", ")))),
        },
        Ty::Gates => Err("gates are read separately".to_string()),
    }
}

fn parse_default(ty: Ty, text: &str) -> Option<Value> {
    let doc: toml_edit::DocumentMut = format!("v = {text}").parse().ok()?;
    validate(ty, &doc["v"]).ok()
}

impl Config {
    /// Built-in defaults only.
    pub fn defaults() -> Config {
        let mut c = Config::default();
        for k in KEYS {
            if let Some(v) = k.default.and_then(|d| parse_default(k.ty, d)) {
                c.values.insert(k.key.to_string(), (v, Source::Default));
            }
        }
        for (role, runtime) in ROLES {
            c.values.insert(
                format!("roles.{role}.runtime"),
                (Value::Str(runtime.to_string()), Source::Default),
            );
        }
        c
    }

    /// Defaults, then each file that exists (lowest first), then the environment.
    pub fn load(files: &[PathBuf]) -> Result<Config, ConfigError> {
        let mut c = Config::defaults();
        for f in files {
            c.merge_file(f)?;
        }
        c.merge_env(&|k| std::env::var(k).ok())?;
        Ok(c)
    }

    /// Merges one TOML file. A missing file is no error (that layer is simply absent).
    pub fn merge_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let src = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(ConfigError::Unreadable {
                    file: path.display().to_string(),
                    message: e.to_string(),
                });
            }
        };
        self.merge_str(path, &src)
    }

    /// Merges TOML text read from `path`.
    pub fn merge_str(&mut self, path: &Path, src: &str) -> Result<(), ConfigError> {
        let file = path.display().to_string();
        let doc = toml_edit::Document::parse(src.to_string()).map_err(|e| {
            let line = e.span().map(|s| line_of(src, s.start)).unwrap_or(1);
            ConfigError::Invalid {
                file: file.clone(),
                line,
                message: e.message().trim().to_string(),
            }
        })?;
        let root = doc.as_table();
        let at =
            |span: Option<std::ops::Range<usize>>| span.map(|s| line_of(src, s.start)).unwrap_or(1);
        let invalid = |line: usize, message: String| ConfigError::Invalid {
            file: file.clone(),
            line,
            message,
        };
        for (section, item) in root.iter() {
            let key_line = at(root.key(section).and_then(|k| k.span()));
            match section {
                "gates" => {
                    let gates = read_gates(item, src).map_err(|(line, m)| invalid(line, m))?;
                    self.values.insert(
                        "gates".into(),
                        (
                            Value::Gates(gates),
                            Source::File {
                                path: path.to_path_buf(),
                                line: key_line,
                            },
                        ),
                    );
                }
                "runtimes" | "roles" => {
                    let Some(outer) = item.as_table_like() else {
                        return Err(invalid(key_line, format!("[{section}] must be a table")));
                    };
                    let specs = if section == "runtimes" {
                        RUNTIME_KEYS
                    } else {
                        ROLE_KEYS
                    };
                    for (name, inner) in outer.iter() {
                        let Some(t) = inner.as_table_like() else {
                            return Err(invalid(
                                key_line,
                                format!("[{section}.{name}] must be a table"),
                            ));
                        };
                        if section == "roles" && !ROLES.iter().any(|(r, _)| *r == name) {
                            self.warnings.push(format!(
                                "{file}:{key_line}: unknown role {name:?} (roles are: {}); ignored",
                                ROLES.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
                            ));
                            continue;
                        }
                        let prefix = format!("{section}.{name}");
                        self.take_keys(path, src, &prefix, t, |k, _| {
                            specs.iter().find(|s| s.key == k)
                        })?;
                    }
                }
                _ => {
                    let Some(t) = item.as_table_like() else {
                        self.warnings.push(format!(
                            "{file}:{key_line}: unknown key {section:?} (ignored)"
                        ));
                        continue;
                    };
                    self.take_keys(path, src, section, t, |_, full| {
                        KEYS.iter().find(|s| s.key == full)
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Reads the keys of one table: an unknown key warns with file and line, a known one is
    /// validated (an error with file and line) and recorded with where it came from.
    fn take_keys<'k>(
        &mut self,
        path: &Path,
        src: &str,
        prefix: &str,
        t: &dyn toml_edit::TableLike,
        spec_of: impl Fn(&str, &str) -> Option<&'k KeySpec>,
    ) -> Result<(), ConfigError> {
        let file = path.display().to_string();
        for (k, v) in t.iter() {
            let span = t.key(k).and_then(|k| k.span()).or_else(|| v.span());
            let line = span.map(|s| line_of(src, s.start)).unwrap_or(1);
            let full = format!("{prefix}.{k}");
            match spec_of(k, &full) {
                None => self
                    .warnings
                    .push(format!("{file}:{line}: unknown key {full:?} (ignored)")),
                Some(spec) => {
                    let value = validate(spec.ty, v).map_err(|m| ConfigError::Invalid {
                        file: file.clone(),
                        line,
                        message: format!("{full}: {m}"),
                    })?;
                    let source = Source::File {
                        path: path.to_path_buf(),
                        line,
                    };
                    self.values.insert(full, (value, source));
                }
            }
        }
        Ok(())
    }

    /// The environment layer. `get` is `std::env::var` outside tests. A value that cannot be
    /// read (`LOG_LEVEL=LOUD`, `DEBUG=maybe`) is ignored with a warning: a variable set for
    /// some other program must never stop `co` or `wo`.
    pub fn merge_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (var, key) in [
            ("COMPANY_ROOT", "company.root"),
            ("AGENT_ID", "agent.id"),
            ("VERMAS_TMUX_SOCKET", "tmux.socket"),
        ] {
            if let Some(v) = get(var).filter(|v| !v.is_empty()) {
                self.values
                    .insert(key.into(), (Value::Str(v), Source::Env(var)));
            }
        }
        let level = get("LOG_LEVEL").filter(|v| !v.is_empty());
        let mut level_set = false;
        if let Some(v) = &level {
            match LogLevel::parse(v) {
                Some(l) => {
                    let name = serde_json::to_value(l)
                        .ok()
                        .and_then(|j| j.as_str().map(str::to_string))
                        .unwrap_or_else(|| "INFO".into());
                    self.values.insert(
                        "log.level".into(),
                        (Value::Str(name), Source::Env("LOG_LEVEL")),
                    );
                    level_set = true;
                }
                None => self.warnings.push(format!(
                    "environment variable LOG_LEVEL={v:?} is not one of {} (ignored)",
                    LogLevel::NAMES.join(", ")
                )),
            }
        }
        if let Some(v) = get("DEBUG").filter(|v| !v.is_empty()) {
            match parse_env_flag(&v) {
                Some(on) => {
                    self.values
                        .insert("log.debug".into(), (Value::Bool(on), Source::Env("DEBUG")));
                    if on && !level_set {
                        self.values.insert(
                            "log.level".into(),
                            (Value::Str("DEBUG".into()), Source::Env("DEBUG")),
                        );
                    }
                }
                None => self.warnings.push(format!(
                    "environment variable DEBUG={v:?} is not 1/0, true/false, yes/no, on/off or * (ignored)"
                )),
            }
        }
        Ok(())
    }

    /// Every effective value with its origin, sorted by key.
    pub fn origins(&self) -> impl Iterator<Item = (&str, &Value, &Source)> {
        self.values.iter().map(|(k, (v, s))| (k.as_str(), v, s))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key).map(|(v, _)| v)
    }
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.values.get(key).map(|(_, s)| s)
    }

    /// Sets a value (used for values decided by code, such as a factory's default prefix).
    pub fn set(&mut self, key: &str, value: Value, source: Source) {
        self.values.insert(key.to_string(), (value, source));
    }

    /// Names of `[runtimes.*]` tables configured.
    pub fn runtime_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .values
            .keys()
            .filter_map(|k| k.strip_prefix("runtimes."))
            .filter_map(|k| k.split_once('.').map(|(n, _)| n.to_string()))
            .collect();
        names.dedup();
        names
    }

    /// The typed settings of this configuration.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Settings::from_config(self)
    }
}

/// `DEBUG` and friends: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`, and `*` (on, as the
/// `debug` npm package reads it).
pub fn parse_env_flag(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "*" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The runtime a role uses unless configured.
pub fn default_runtime(role: &str) -> &'static str {
    ROLES
        .iter()
        .find(|(r, _)| *r == role)
        .map(|(_, rt)| *rt)
        .unwrap_or("claude")
}

fn read_gates(item: &toml_edit::Item, src: &str) -> Result<Vec<Gate>, (usize, String)> {
    let at =
        |span: Option<std::ops::Range<usize>>| span.map(|s| line_of(src, s.start)).unwrap_or(1);
    let Some(aot) = item.as_array_of_tables() else {
        return Err((
            at(item.span()),
            "gates must be written as [[gates]] tables".to_string(),
        ));
    };
    let mut out = Vec::new();
    for t in aot.iter() {
        let line = at(t.span());
        let mut name = None;
        let mut command = None;
        let mut timeout = 600.0;
        for (k, v) in t.iter() {
            let kline = at(t.key(k).and_then(|k| k.span()));
            match k {
                "name" => match v.as_str() {
                    Some(s)
                        if !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
                    {
                        name = Some(s.to_string())
                    }
                    _ => {
                        return Err((
                            kline,
                            "gates.name must be a word of letters, digits, '-', '_' or '.'".into(),
                        ));
                    }
                },
                "command" => {
                    command = Some(if let Some(s) = v.as_str() {
                        if s.trim().is_empty() {
                            return Err((kline, "gates.command is empty".into()));
                        }
                        GateCommand::Shell(s.to_string())
                    } else if let Some(l) = as_str_list(v).filter(|l| !l.is_empty()) {
                        GateCommand::Argv(l)
                    } else {
                        return Err((
                            kline,
                            format!(
                                "gates.command: expected a string (run with sh -c) or a list of strings (an argv), found {}",
                                describe(v)
                            ),
                        ));
                    })
                }
                "timeout_seconds" => match as_number(v) {
                    Some(n) if n > 0.0 && n.is_finite() => timeout = n,
                    _ => {
                        return Err((
                            kline,
                            "gates.timeout_seconds must be a number greater than 0".into(),
                        ));
                    }
                },
                other => {
                    return Err((
                        kline,
                        format!(
                            "unknown gate key {other:?} (gates take name, command, timeout_seconds)"
                        ),
                    ));
                }
            }
        }
        let name = name.ok_or((line, "a [[gates]] entry needs name".to_string()))?;
        if out.iter().any(|g: &Gate| g.name == name) {
            return Err((line, format!("two gates are named {name:?}")));
        }
        let command = command.ok_or((line, format!("gate {name:?} needs command")))?;
        out.push(Gate {
            name,
            command,
            timeout_seconds: timeout,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(src: &str) -> Result<Config, ConfigError> {
        let mut c = Config::defaults();
        c.merge_str(Path::new("/c/.vermas/config.toml"), src)?;
        Ok(c)
    }

    #[test]
    fn layers_override_and_record_their_origin() {
        let mut c = layer("[worker]\nmax_slots_per_factory = 3\n").unwrap();
        c.merge_str(
            Path::new("/c/f/.work/config.toml"),
            "[factory]\nprefix = \"mp\"\n\n[worker]\nmax_slots_per_factory = 2\n",
        )
        .unwrap();
        assert_eq!(c.settings().unwrap().worker.max_slots_per_factory, 2);
        assert_eq!(
            c.source("worker.max_slots_per_factory")
                .unwrap()
                .to_string(),
            "/c/f/.work/config.toml:5"
        );
        c.merge_env(&|k| (k == "VERMAS_TMUX_SOCKET").then(|| "priv".to_string()))
            .unwrap();
        assert_eq!(c.settings().unwrap().tmux.socket.as_deref(), Some("priv"));
        assert_eq!(
            c.source("tmux.socket").unwrap().to_string(),
            "env VERMAS_TMUX_SOCKET"
        );
    }

    #[test]
    fn unknown_keys_warn_with_file_and_line() {
        let c = layer("[worker]\n\nbogus = 1\n[nope]\nx = 2\n").unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(
            c.warnings[0].starts_with("/c/.vermas/config.toml:3: unknown key \"worker.bogus\"")
        );
        assert!(c.warnings[1].contains(":5:"));
    }

    #[test]
    fn invalid_values_are_errors_with_file_and_line() {
        let e = layer("[worker]\nmax_slots_per_factory = \"five\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/c/.vermas/config.toml:2: worker.max_slots_per_factory: expected a whole number, found a string"
        );
        let e = layer("[operations]\npatrol_interval_seconds = 0\n").unwrap_err();
        assert!(e.to_string().contains(":2:"), "{e}");
        let e = layer("[factory]\nprefix = \"My-P\"\n").unwrap_err();
        assert!(e.to_string().contains("prefix"), "{e}");
        let e = layer("[worker\n").unwrap_err();
        assert!(
            e.to_string().starts_with("/c/.vermas/config.toml:1:"),
            "{e}"
        );
        let e = layer("[runtimes.x]\ncommand = []\n").unwrap_err();
        assert!(e.to_string().contains(":2:"), "{e}");
    }

    #[test]
    fn runtimes_roles_and_gates() {
        let c = layer(
            "[runtimes.scripted]\ncommand = [\"bash\", \"/a/agent.sh\"]\n[roles.worker]\nruntime = \"scripted\"\n\n[[gates]]\nname = \"test\"\ncommand = \"cargo test\"\ntimeout_seconds = 600\n[[gates]]\nname = \"lint\"\ncommand = [\"cargo\", \"clippy\"]\n",
        )
        .unwrap();
        let s = c.settings().unwrap();
        assert_eq!(s.roles.worker, "scripted");
        assert_eq!(
            s.runtimes["scripted"].command.as_deref().unwrap(),
            &["bash".to_string(), "/a/agent.sh".to_string()]
        );
        assert_eq!(c.runtime_names(), vec!["scripted".to_string()]);
        let g = &s.gates;
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].command.argv(), vec!["sh", "-c", "cargo test"]);
        assert_eq!(g[1].command.argv(), vec!["cargo", "clippy"]);
        assert_eq!(g[1].timeout_seconds, 600.0);
        let e = layer("[[gates]]\ncommand = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("needs name"), "{e}");
    }

    #[test]
    fn fractional_intervals_for_tests() {
        let c = layer(
            "[operations]\npatrol_interval_seconds = 0.2\n[worker]\nidle_timeout_minutes = 0.05\n",
        )
        .unwrap();
        let s = c.settings().unwrap();
        assert_eq!(s.operations.patrol_interval_seconds.as_millis(), 200);
        assert_eq!(s.worker.idle_timeout_minutes.as_millis(), 3000);
    }

    #[test]
    fn unreadable_environment_values_are_ignored_with_a_warning() {
        let mut c = Config::defaults();
        c.merge_env(&|k| (k == "LOG_LEVEL").then(|| "LOUD".to_string()))
            .unwrap();
        assert_eq!(c.settings().unwrap().log.level, LogLevel::Info);
        assert!(
            c.warnings[0].contains("LOG_LEVEL=\"LOUD\""),
            "{:?}",
            c.warnings
        );
        let mut c = Config::defaults();
        c.merge_env(&|k| (k == "DEBUG").then(|| "maybe".to_string()))
            .unwrap();
        assert!(!c.settings().unwrap().log.debug);
        assert_eq!(c.warnings.len(), 1);
        for on in ["1", "true", "*", "YES"] {
            let mut c = Config::defaults();
            c.merge_env(&|k| (k == "DEBUG").then(|| on.to_string()))
                .unwrap();
            let s = c.settings().unwrap();
            assert!(s.log.debug, "{on}");
            assert_eq!(s.log.level, LogLevel::Debug);
        }
        let mut c = Config::defaults();
        c.merge_env(&|k| match k {
            "DEBUG" => Some("1".into()),
            "LOG_LEVEL" => Some("warning".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.settings().unwrap().log.level, LogLevel::Warn);
    }
}
