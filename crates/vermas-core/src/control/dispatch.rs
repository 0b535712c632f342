//! What `co dispatch` decides, before it touches git or tmux: refuse (and why), queue (and
//! where), let more urgent queued work go first, or launch in one of the free slots.

use crate::workorder::Status;
use std::collections::BTreeSet;
use std::fmt;

/// The work order as its home store says, under the lock.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkOrderObs {
    pub id: String,
    pub status: Status,
    /// The factory whose queue it is in, when queued.
    pub queued_in: Option<String>,
    pub attempts: u32,
    /// Who holds it when assigned or in progress.
    pub holder: Option<String>,
    /// Dependencies not closed yet: `(id, status)` (`None`: missing).
    pub blockers: Vec<(String, Option<Status>)>,
}

/// Everything dispatch decides on.
#[derive(Debug, Clone, PartialEq)]
pub struct Obs {
    pub work_order: WorkOrderObs,
    pub factory: String,
    pub max_slots: u32,
    /// Slots held by a worker (orphans already let go).
    pub busy: BTreeSet<u32>,
    /// More urgent (or as urgent and older) ready work queued for this factory: `(id,
    /// priority)`.
    pub ahead: Option<(String, u8)>,
    /// `--no-queue`: refuse instead of queueing.
    pub no_queue: bool,
}

/// Why a dispatch is refused (exit 5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{id} is already {} by {holder}; kill that worker first (co worker kill) or wait for it",
        if *.status == Status::Assigned { "assigned" } else { "in progress" }
    )]
    Taken {
        id: String,
        status: Status,
        holder: String,
    },
    #[error(
        "{id} is {status} and cannot be dispatched (only open, queued or rework work can){}",
        if matches!(.status, Status::Closed | Status::Cancelled | Status::Failed) {
            format!("; reopen it with `wo update {id} --status open`")
        } else {
            String::new()
        }
    )]
    NotDispatchable { id: String, status: Status },
    #[error("{id} is waiting on {}; close those first or remove the dependency (wo dep remove)", list_blockers(.blockers))]
    WaitingOn {
        id: String,
        blockers: Vec<(String, Option<Status>)>,
    },
    #[error("no free slot in {factory} ({busy} of {max} busy); not queued (--no-queue)")]
    NoFreeSlot {
        factory: String,
        busy: u32,
        max: u32,
    },
    #[error(
        "{id} would wait behind {head} (P{priority}) queued in {factory}; not queued (--no-queue)"
    )]
    Behind {
        id: String,
        head: String,
        priority: u8,
        factory: String,
    },
}

fn list_blockers(b: &[(String, Option<Status>)]) -> String {
    b.iter()
        .map(|(id, s)| {
            format!(
                "{id} ({})",
                s.map(|s| s.to_string()).unwrap_or("missing".into())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl crate::error::Classify for Refusal {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Conflict
    }
}

/// Why work is queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueReason {
    /// Every slot is held (`busy` of `max`).
    NoFreeSlot { busy: u32, max: u32 },
    /// A slot is free, but `head` was queued first (or is more urgent): it gets the slot.
    Behind { head: String },
}

impl fmt::Display for QueueReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueReason::NoFreeSlot { .. } => f.write_str("no free slot"),
            QueueReason::Behind { head } => write!(f, "waiting behind {head} in the queue"),
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Refuse(Refusal),
    /// Queue it (`move_to_queue`: it is not in this factory's queue yet).
    Queue {
        reason: QueueReason,
        move_to_queue: bool,
    },
    /// Start a worker in the first of these slots whose session name is free.
    Launch {
        slots: Vec<u32>,
        attempt: u32,
    },
}

/// Decides a dispatch.
pub fn plan(o: &Obs) -> Plan {
    let wo = &o.work_order;
    match wo.status {
        Status::Open | Status::Queued | Status::Rework => {}
        Status::Assigned | Status::InProgress => {
            return Plan::Refuse(Refusal::Taken {
                id: wo.id.clone(),
                status: wo.status,
                holder: wo.holder.clone().unwrap_or_else(|| "a worker".into()),
            });
        }
        status => {
            return Plan::Refuse(Refusal::NotDispatchable {
                id: wo.id.clone(),
                status,
            });
        }
    }
    if !wo.blockers.is_empty() {
        return Plan::Refuse(Refusal::WaitingOn {
            id: wo.id.clone(),
            blockers: wo.blockers.clone(),
        });
    }
    let move_to_queue =
        !(wo.status == Status::Queued && wo.queued_in.as_deref() == Some(o.factory.as_str()));
    let free: Vec<u32> = free_slots(o.max_slots, &o.busy).collect();
    if free.is_empty() {
        let busy = o.busy.len() as u32;
        if o.no_queue {
            return Plan::Refuse(Refusal::NoFreeSlot {
                factory: o.factory.clone(),
                busy,
                max: o.max_slots,
            });
        }
        return Plan::Queue {
            reason: QueueReason::NoFreeSlot {
                busy,
                max: o.max_slots,
            },
            move_to_queue,
        };
    }
    if let Some((head, priority)) = &o.ahead {
        if o.no_queue {
            return Plan::Refuse(Refusal::Behind {
                id: wo.id.clone(),
                head: head.clone(),
                priority: *priority,
                factory: o.factory.clone(),
            });
        }
        return Plan::Queue {
            reason: QueueReason::Behind { head: head.clone() },
            move_to_queue,
        };
    }
    Plan::Launch {
        slots: free,
        attempt: wo.attempts + 1,
    }
}

/// The slots no worker holds, lowest first: the order a launch tries them in.
fn free_slots(max_slots: u32, busy: &BTreeSet<u32>) -> impl Iterator<Item = u32> + '_ {
    (0..max_slots).filter(|n| !busy.contains(n))
}

/// The slot a launch will most likely get, known before the work order is read: the lowest
/// one no worker holds, which [`plan`] gives first when the work order can go (unless an
/// orphaned slot below it is let go meanwhile). Dispatch starts git there early.
pub fn likely_slot(max_slots: u32, held: &BTreeSet<u32>) -> Option<u32> {
    free_slots(max_slots, held).next()
}

/// A slot whose worker is gone for good: its session is gone and its assignment file was
/// removed by hand (the guide's recovery steps). Dispatch lets it go and re-queues its work.
pub fn orphaned(seen: SlotSeen) -> bool {
    !seen.assignment_file && !seen.session
}

/// What is left of a slot's worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotSeen {
    /// Its `.assignment-<agent>` file exists.
    pub assignment_file: bool,
    /// A session of its name exists.
    pub session: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(status: Status) -> Obs {
        Obs {
            work_order: WorkOrderObs {
                id: "mp-a".into(),
                status,
                queued_in: None,
                attempts: 0,
                holder: None,
                blockers: vec![],
            },
            factory: "mp".into(),
            max_slots: 2,
            busy: BTreeSet::new(),
            ahead: None,
            no_queue: false,
        }
    }

    #[test]
    fn a_free_slot_launches_with_the_next_attempt() {
        let mut o = obs(Status::Rework);
        o.work_order.attempts = 1;
        o.busy = [0].into();
        assert_eq!(
            plan(&o),
            Plan::Launch {
                slots: vec![1],
                attempt: 2
            }
        );
        assert_eq!(
            plan(&obs(Status::Open)),
            Plan::Launch {
                slots: vec![0, 1],
                attempt: 1
            },
            "the lowest free slot first, the others if its name is taken"
        );
    }

    #[test]
    fn busy_slots_queue_and_no_queue_refuses() {
        let mut o = obs(Status::Open);
        o.busy = [0, 1].into();
        assert_eq!(
            plan(&o),
            Plan::Queue {
                reason: QueueReason::NoFreeSlot { busy: 2, max: 2 },
                move_to_queue: true
            }
        );
        o.work_order.status = Status::Queued;
        o.work_order.queued_in = Some("mp".into());
        assert_eq!(
            plan(&o),
            Plan::Queue {
                reason: QueueReason::NoFreeSlot { busy: 2, max: 2 },
                move_to_queue: false
            },
            "already in this queue: stays where it is"
        );
        o.no_queue = true;
        assert_eq!(
            plan(&o).clone(),
            Plan::Refuse(Refusal::NoFreeSlot {
                factory: "mp".into(),
                busy: 2,
                max: 2
            })
        );
        assert_eq!(
            Refusal::NoFreeSlot {
                factory: "mp".into(),
                busy: 2,
                max: 2
            }
            .to_string(),
            "no free slot in mp (2 of 2 busy); not queued (--no-queue)"
        );
    }

    #[test]
    fn more_urgent_queued_work_goes_first() {
        let mut o = obs(Status::Open);
        o.ahead = Some(("mp-urgent".into(), 0));
        assert_eq!(
            plan(&o),
            Plan::Queue {
                reason: QueueReason::Behind {
                    head: "mp-urgent".into()
                },
                move_to_queue: true
            }
        );
        o.no_queue = true;
        assert!(matches!(plan(&o), Plan::Refuse(Refusal::Behind { .. })));
    }

    #[test]
    fn what_cannot_be_dispatched_is_refused_with_the_way_out() {
        let table = [
            (
                Status::Assigned,
                "already assigned by a worker; kill that worker first",
            ),
            (Status::InProgress, "already in progress by a worker"),
            (
                Status::Closed,
                "reopen it with `wo update mp-a --status open`",
            ),
            (
                Status::InReview,
                "mp-a is in_review and cannot be dispatched",
            ),
        ];
        for (status, text) in table {
            match plan(&obs(status)) {
                Plan::Refuse(r) => assert!(r.to_string().contains(text), "{status}: {r}"),
                p => panic!("{status}: {p:?}"),
            }
        }
        let mut o = obs(Status::Open);
        o.work_order.blockers = vec![("mp-b".into(), Some(Status::Open)), ("mp-x".into(), None)];
        match plan(&o) {
            Plan::Refuse(r) => assert_eq!(
                r.to_string(),
                "mp-a is waiting on mp-b (open), mp-x (missing); close those first or remove the dependency (wo dep remove)"
            ),
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn the_likely_slot_is_the_first_a_launch_gets() {
        // (max slots, held, likely slot)
        let table: [(u32, &[u32], Option<u32>); 5] = [
            (4, &[], Some(0)),
            (4, &[0, 1], Some(2)),
            (4, &[0, 2], Some(1)),
            (2, &[0, 1], None),
            (0, &[], None),
        ];
        for (max, held, want) in table {
            let held: BTreeSet<u32> = held.iter().copied().collect();
            assert_eq!(likely_slot(max, &held), want, "{max} slots, {held:?} held");
            let mut o = obs(Status::Open);
            (o.max_slots, o.busy) = (max, held.clone());
            let first = match plan(&o) {
                Plan::Launch { slots, .. } => slots.first().copied(),
                _ => None,
            };
            assert_eq!(first, want, "the plan agrees: {max} slots, {held:?} held");
        }
    }

    #[test]
    fn only_a_slot_with_no_session_and_no_assignment_file_is_an_orphan() {
        let seen = |assignment_file, session| SlotSeen {
            assignment_file,
            session,
        };
        assert!(orphaned(seen(false, false)));
        assert!(
            !orphaned(seen(true, false)),
            "a dead worker with its assignment: respawn"
        );
        assert!(!orphaned(seen(false, true)), "its session still runs");
    }
}
