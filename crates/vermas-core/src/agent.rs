//! Agent identities (design §2): who an agent is, which tmux session it runs in, where its
//! mail and assignment live.
//!
//! | address                   | session                  |
//! |---------------------------|--------------------------|
//! | `ceo`                     | `ceo`                    |
//! | `operations`              | `operations`             |
//! | `<f>/supervisor`          | `supervisor-<f>`         |
//! | `<f>/qa`                  | `qa-<f>`                 |
//! | `<f>/workers/slot<N>`     | `worker-<f>-slot<N>`     |
//! | `<f>/teams/<name>`        | `team-<f>-<name>`        |

use crate::config::is_valid_name;
use crate::error::{Error, Result};
use std::fmt;

/// A role an agent plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Ceo,
    Operations,
    Supervisor,
    Qa,
    Worker,
    Team,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ceo => "ceo",
            Role::Operations => "operations",
            Role::Supervisor => "supervisor",
            Role::Qa => "qa",
            Role::Worker => "worker",
            Role::Team => "team",
        }
    }
}

/// An agent's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AgentId {
    Ceo,
    Operations,
    Supervisor { factory: String },
    Qa { factory: String },
    Worker { factory: String, slot: u32 },
    Team { factory: String, name: String },
}

impl AgentId {
    /// Parses an address as the guide writes it. The error says what the forms are.
    pub fn parse(s: &str) -> Result<AgentId> {
        let bad = || {
            Error::usage(format!(
                "{:?} is not an agent address: use ceo, <factory>/supervisor, <factory>/qa, <factory>/workers/slot<N> or <factory>/teams/<name>",
                crate::text::escape_control(s)
            ))
        };
        match s {
            "ceo" => return Ok(AgentId::Ceo),
            "operations" => return Ok(AgentId::Operations),
            _ => {}
        }
        let parts: Vec<&str> = s.split('/').collect();
        let factory = parts.first().copied().unwrap_or_default();
        if !is_valid_name(factory) {
            return Err(bad());
        }
        let factory = factory.to_string();
        match parts.as_slice() {
            [_, "supervisor"] => Ok(AgentId::Supervisor { factory }),
            [_, "qa"] => Ok(AgentId::Qa { factory }),
            [_, "workers", slot] => {
                let n = slot
                    .strip_prefix("slot")
                    .filter(|n| {
                        !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?;
                Ok(AgentId::Worker { factory, slot: n })
            }
            [_, "teams", name] if is_valid_name(name) => Ok(AgentId::Team {
                factory,
                name: name.to_string(),
            }),
            _ => Err(bad()),
        }
    }

    pub fn worker(factory: &str, slot: u32) -> AgentId {
        AgentId::Worker {
            factory: factory.to_string(),
            slot,
        }
    }

    pub fn role(&self) -> Role {
        match self {
            AgentId::Ceo => Role::Ceo,
            AgentId::Operations => Role::Operations,
            AgentId::Supervisor { .. } => Role::Supervisor,
            AgentId::Qa { .. } => Role::Qa,
            AgentId::Worker { .. } => Role::Worker,
            AgentId::Team { .. } => Role::Team,
        }
    }

    /// The factory it belongs to (`None` for company-level agents).
    pub fn factory(&self) -> Option<&str> {
        match self {
            AgentId::Ceo | AgentId::Operations => None,
            AgentId::Supervisor { factory }
            | AgentId::Qa { factory }
            | AgentId::Worker { factory, .. }
            | AgentId::Team { factory, .. } => Some(factory),
        }
    }

    /// The tmux session name. Built only from validated names and numbers.
    pub fn session(&self) -> String {
        match self {
            AgentId::Ceo => "ceo".into(),
            AgentId::Operations => "operations".into(),
            AgentId::Supervisor { factory } => format!("supervisor-{factory}"),
            AgentId::Qa { factory } => format!("qa-{factory}"),
            AgentId::Worker { factory, slot } => format!("worker-{factory}-slot{slot}"),
            AgentId::Team { factory, name } => format!("team-{factory}-{name}"),
        }
    }

    /// `myproject-workers-slot0`: the address with `/` as `-`, for file names
    /// (`.work/.assignment-myproject-workers-slot0`).
    pub fn file_key(&self) -> String {
        self.to_string().replace('/', "-")
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentId::Ceo => f.write_str("ceo"),
            AgentId::Operations => f.write_str("operations"),
            AgentId::Supervisor { factory } => write!(f, "{factory}/supervisor"),
            AgentId::Qa { factory } => write!(f, "{factory}/qa"),
            AgentId::Worker { factory, slot } => write!(f, "{factory}/workers/slot{slot}"),
            AgentId::Team { factory, name } => write!(f, "{factory}/teams/{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for s in [
            "ceo",
            "operations",
            "myproject/supervisor",
            "myproject/qa",
            "myproject/workers/slot0",
            "my-proj/workers/slot12",
            "myproject/teams/dev",
        ] {
            assert_eq!(AgentId::parse(s).unwrap().to_string(), s);
        }
        let w = AgentId::parse("myproject/workers/slot0").unwrap();
        assert_eq!(w.session(), "worker-myproject-slot0");
        assert_eq!(w.file_key(), "myproject-workers-slot0");
        assert_eq!(w.factory(), Some("myproject"));
        for bad in [
            "",
            "CEO",
            "myproject",
            "myproject/workers/0",
            "myproject/workers/slot",
            "myproject/workers/slot-1",
            "../x/qa",
            "my project/qa",
            "myproject/qa/extra",
            "-t/qa",
        ] {
            assert!(AgentId::parse(bad).is_err(), "{bad}");
        }
    }
}
