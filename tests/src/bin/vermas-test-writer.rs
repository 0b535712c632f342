//! Test helper: appends work orders to a store as fast as it can, titled `w<writer>-<n>`, so a
//! test can run several of these at once and check the log afterwards.
//! Usage: vermas-test-writer <.work dir> <writer id> <count>
#![allow(clippy::unwrap_used, clippy::expect_used)]

use vermas_core::store::{Store, StoreOptions};
use vermas_core::workorder::{self, CreateRequest, WoType};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let writer: u32 = args[2].parse().unwrap();
    let count: u32 = args[3].parse().unwrap();
    let store = Store::open(&dir, StoreOptions::default()).unwrap();
    for n in 0..count {
        let mut w = store.lock().unwrap();
        workorder::create(
            &mut w,
            "wo",
            &format!("writer{writer}"),
            CreateRequest {
                title: format!("w{writer}-{n}"),
                kind: WoType::Task,
                priority: (n % 5) as u8,
                description: String::new(),
                labels: vec![],
                parent: None,
            },
        )
        .unwrap();
    }
}
