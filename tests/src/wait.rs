//! Waiting for conditions with deadlines, instead of sleeping and hoping.

use std::future::Future;
use std::time::{Duration, Instant};

/// A point in time after which a wait gives up.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Instant);

impl Deadline {
    pub fn after(duration: Duration) -> Self {
        Self(Instant::now() + duration)
    }

    pub fn passed(self) -> bool {
        Instant::now() >= self.0
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics naming `what` at the deadline.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Deadline::after(timeout);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            !deadline.passed(),
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
