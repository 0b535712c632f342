//! Which worker holds which slot of a factory: the `slots.jsonl` projection of the factory
//! store, built from `slot.*`, `agent.*` and `assignment.*` events (and every event's actor, to
//! know when each worker last did something).

use crate::event::{EventRef, types};
use crate::store::Projection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Payload of `slot.allocated`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotAllocated {
    pub slot: u32,
    pub agent: String,
    pub work_order: String,
    pub incarnation: String,
    pub attempt: u32,
    pub branch: String,
    pub worktree: String,
    pub runtime: String,
}

/// Payload of `slot.released`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotReleased {
    pub slot: u32,
    pub agent: String,
    pub work_order: String,
    pub incarnation: String,
    pub reason: String,
    /// Where the worktree was kept, when it was (a kill with unmerged work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree_kept: Option<String>,
}

/// Payload of `agent.started`, `agent.restarted`, `agent.stopped`, `agent.working`,
/// `agent.idle`, `agent.escalated`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentEvent {
    pub agent: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub incarnation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Restart attempt / failure count where it applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
}

/// Payload of `agent.nudged`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nudged {
    pub agent: String,
    pub session: String,
    pub delivered: bool,
    pub enters: u32,
    /// The first 200 characters of what was typed.
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Payload of `assignment.set`, `assignment.checked`, `assignment.cleared`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AssignmentEvent {
    pub agent: String,
    pub work_order: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub incarnation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Payload of `worktree.created` / `worktree.removed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorktreeEvent {
    pub path: String,
    pub branch: String,
    pub work_order: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    /// created: new_branch, existing_branch, unparked, reused; removed: why.
    pub how: String,
}

/// One occupied slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub slot: u32,
    pub agent: String,
    pub work_order: String,
    pub incarnation: String,
    pub attempt: u32,
    pub branch: String,
    pub worktree: String,
    pub runtime: String,
    pub allocated_at: String,
    /// The last `agent.started` for this slot.
    pub started_at: String,
    /// How many times the agent was started again in this slot.
    pub restarts: u32,
    /// The last `assignment.set` (response time is measured from here).
    pub assigned_at: String,
    pub checked_at: Option<String>,
    /// The last event whose actor is this agent.
    pub last_event_at: Option<String>,
    /// The last nudge typed into it.
    pub nudged_at: Option<String>,
}

/// The occupied slots of a factory.
#[derive(Debug, Default, Clone)]
pub struct Slots {
    slots: BTreeMap<u32, Slot>,
}

impl Slots {
    pub fn get(&self, slot: u32) -> Option<&Slot> {
        self.slots.get(&slot)
    }
    pub fn is_allocated(&self, slot: u32) -> bool {
        self.slots.contains_key(&slot)
    }
    pub fn all(&self) -> impl Iterator<Item = &Slot> {
        self.slots.values()
    }
    pub fn len(&self) -> usize {
        self.slots.len()
    }
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    pub fn by_work_order(&self, wo: &str) -> Option<&Slot> {
        self.slots.values().find(|s| s.work_order == wo)
    }
    pub fn by_agent(&self, agent: &str) -> Option<&Slot> {
        self.slots.values().find(|s| s.agent == agent)
    }
    fn by_agent_mut(&mut self, agent: &str) -> Option<&mut Slot> {
        self.slots.values_mut().find(|s| s.agent == agent)
    }
}

impl Projection for Slots {
    const NAME: &'static str = "slots";
    const VERSION: u32 = 1;

    fn wants(_event_type: &str) -> bool {
        true
    }

    fn apply(&mut self, ev: &EventRef<'_>) -> Result<(), String> {
        let ts = ev.timestamp.to_string();
        if let Some(s) = self.by_agent_mut(&ev.actor) {
            s.last_event_at = Some(ts.clone());
        }
        let bad = |e: serde_json::Error| format!("{} payload unreadable ({e})", ev.event_type);
        match ev.event_type.as_ref() {
            types::SLOT_ALLOCATED => {
                let a: SlotAllocated = ev.data().map_err(bad)?;
                self.slots.insert(
                    a.slot,
                    Slot {
                        slot: a.slot,
                        agent: a.agent,
                        work_order: a.work_order,
                        incarnation: a.incarnation,
                        attempt: a.attempt,
                        branch: a.branch,
                        worktree: a.worktree,
                        runtime: a.runtime,
                        allocated_at: ts.clone(),
                        started_at: ts.clone(),
                        restarts: 0,
                        assigned_at: ts,
                        checked_at: None,
                        last_event_at: None,
                        nudged_at: None,
                    },
                );
            }
            types::SLOT_RELEASED => {
                let r: SlotReleased = ev.data().map_err(bad)?;
                if self
                    .slots
                    .get(&r.slot)
                    .is_some_and(|s| s.incarnation == r.incarnation || r.incarnation.is_empty())
                {
                    self.slots.remove(&r.slot);
                }
            }
            types::AGENT_STARTED | types::AGENT_RESTARTED => {
                let a: AgentEvent = ev.data().map_err(bad)?;
                if let Some(s) = self.by_agent_mut(&a.agent)
                    && !a.incarnation.is_empty()
                    && s.incarnation != a.incarnation
                {
                    s.incarnation = a.incarnation;
                    s.started_at = ts;
                    s.restarts += 1;
                    s.checked_at = None;
                    s.nudged_at = None;
                }
            }
            types::ASSIGNMENT_SET => {
                let a: AssignmentEvent = ev.data().map_err(bad)?;
                if let Some(s) = self.by_agent_mut(&a.agent) {
                    s.assigned_at = ts;
                }
            }
            types::ASSIGNMENT_CHECKED => {
                let a: AssignmentEvent = ev.data().map_err(bad)?;
                if let Some(s) = self.by_agent_mut(&a.agent) {
                    s.checked_at = Some(ts);
                }
            }
            types::AGENT_NUDGED => {
                let n: Nudged = ev.data().map_err(bad)?;
                if let Some(s) = self.by_agent_mut(&n.agent) {
                    s.nudged_at = Some(ts);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn load_record(&mut self, line: &[u8]) -> Result<(), String> {
        let s: Slot = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        self.slots.insert(s.slot, s);
        Ok(())
    }

    fn record_count(&self) -> usize {
        self.slots.len()
    }

    fn write_records(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        for s in self.slots.values() {
            serde_json::to_writer(&mut *out, s)?;
            out.push(b'\n');
        }
        Ok(())
    }
}
