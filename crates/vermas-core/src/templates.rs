//! The config files `co init` and `co factory add` write, compiled in from `templates/`.

/// `<company>/.vermas/config.toml`; `{name}` is replaced.
pub const COMPANY_CONFIG: &str = include_str!("../../../templates/company-config.toml");
/// `<factory>/.work/config.toml`; `{name}`, `{prefix}`, `{branch}`, `{push}` are replaced.
pub const FACTORY_CONFIG: &str = include_str!("../../../templates/factory-config.toml");
