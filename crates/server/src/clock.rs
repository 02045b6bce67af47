//! Wall-clock time for commands: the proposer stamps them, `core` never reads a clock.

use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_core::Timestamp;

/// Now, in milliseconds since the Unix epoch.
pub fn now() -> Timestamp {
    timestamp(SystemTime::now())
}

pub fn timestamp(time: SystemTime) -> Timestamp {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(0);
    Timestamp::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}
