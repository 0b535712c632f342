//! Identifiers. Work orders get `<prefix>-<6 base36>` from the operating system's CSPRNG
//! (children `wo-k3x9q2.1`); events, messages and incarnations get time-ordered ids so that
//! sorting by id sorts by creation.

use uuid::Uuid;

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn base36(mut n: u128, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE36[(n % 36) as usize];
        n /= 36;
    }
    // Every byte comes from BASE36, so this is ASCII.
    String::from_utf8_lossy(&out).into_owned()
}

/// 122 bits from the OS CSPRNG (uuid v4 uses getrandom).
fn random_u128() -> u128 {
    Uuid::new_v4().as_u128()
}

/// A fresh work order id: `prefix-xxxxxx`.
pub fn new_work_order_id(prefix: &str) -> String {
    // 36^6 ≈ 2.2e9; the modulo bias over 122 random bits is far below anything observable.
    format!("{prefix}-{}", base36(random_u128() % 36u128.pow(6), 6))
}

/// A time-ordered id with a kind prefix (`evt`, `msg`, `inc`): the millisecond timestamp and
/// random bits of a uuid v7, in base36 (25 characters, so string order is time order).
fn time_ordered(kind: &str) -> String {
    format!("{kind}-{}", base36(Uuid::now_v7().as_u128(), 25))
}

pub fn new_event_id() -> String {
    time_ordered("evt")
}

/// Messages are typed by people (`co read msg-…`), so they are short: 10 random base36
/// characters after a 6-character time prefix would still be long; 10 random ones suffice
/// (3.6e15 values) and the caller retries on collision.
pub fn new_message_id() -> String {
    format!("msg-{}", base36(random_u128() % 36u128.pow(10), 10))
}

/// A store's name on the sync branch (`wo sync`): `st-` and 16 random base36 characters, so
/// two machines never pick the same one.
pub fn new_store_id() -> String {
    format!("st-{}", base36(random_u128() % 36u128.pow(16), 16))
}

/// An agent incarnation: a fresh one for every agent start.
pub fn new_incarnation_id() -> String {
    format!("inc-{}", base36(random_u128() % 36u128.pow(10), 10))
}

/// A sprint: people type sprint names, not ids, so 8 random base36 characters (2.8e12 values)
/// are plenty; the caller retries on collision.
pub fn new_sprint_id() -> String {
    format!("sprint-{}", base36(random_u128() % 36u128.pow(8), 8))
}

/// A valid work order prefix: a lowercase letter then up to 9 lowercase letters or digits.
pub fn is_valid_prefix(p: &str) -> bool {
    let b = p.as_bytes();
    !b.is_empty()
        && b.len() <= 10
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Whether `id` has the shape of a work order id (`prefix-xxxxxx` with optional `.N` parts).
pub fn is_work_order_id(id: &str) -> bool {
    let Some((prefix, rest)) = id.split_once('-') else {
        return false;
    };
    let mut parts = rest.split('.');
    let Some(base) = parts.next() else {
        return false;
    };
    is_valid_prefix(prefix)
        && base.len() == 6
        && base
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && parts.all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// The prefix of a work order id (`wo` for `wo-k3x9q2.1`).
pub fn prefix_of(id: &str) -> Option<&str> {
    id.split_once('-').map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_order_ids_have_the_documented_shape() {
        for _ in 0..1000 {
            let id = new_work_order_id("wo");
            assert!(is_work_order_id(&id), "{id}");
            assert_eq!(id.len(), 9);
        }
        assert!(is_work_order_id("wo-k3x9q2.1.12"));
        assert!(!is_work_order_id("wo-k3x9q"));
        assert!(!is_work_order_id("WO-k3x9q2"));
        assert!(!is_work_order_id("wo-k3x9q2."));
        assert!(!is_work_order_id("wo k3x9q2"));
    }

    #[test]
    fn time_ordered_ids_sort_by_creation() {
        let a = new_event_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_event_id();
        assert!(a < b, "{a} {b}");
        assert_eq!(a.len(), 4 + 25);
    }

    #[test]
    fn sprint_ids_have_their_prefix() {
        let id = new_sprint_id();
        assert!(id.starts_with("sprint-"), "{id}");
        assert_eq!(id.len(), 7 + 8);
        assert!(
            id[7..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_ne!(new_sprint_id(), new_sprint_id());
    }

    #[test]
    fn prefixes() {
        assert!(is_valid_prefix("mp"));
        assert!(is_valid_prefix("hq"));
        assert!(!is_valid_prefix("1a"));
        assert!(!is_valid_prefix("my-p"));
        assert!(!is_valid_prefix(""));
        assert_eq!(prefix_of("mp-abc123"), Some("mp"));
    }
}
