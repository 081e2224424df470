//! The daemon's clock: real time, or frozen at `--fake-time` and moved by the admin
//! `faketime` command. Shared by every shard.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static FAKE: AtomicI64 = AtomicI64::new(0);

/// Seconds since the Unix epoch, or the fake time when one is set.
pub fn now() -> i64 {
    let f = FAKE.load(Ordering::Relaxed);
    if f != 0 {
        return f;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Freeze the clock at `t` (0 = real time again).
pub fn set_fake(t: i64) {
    FAKE.store(t, Ordering::Relaxed);
}

pub fn is_fake() -> bool {
    FAKE.load(Ordering::Relaxed) != 0
}

pub fn fake_value() -> i64 {
    FAKE.load(Ordering::Relaxed)
}

/// Seconds on a monotonic clock (timeouts and back-off; never the fake time).
pub fn monotonic_secs() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs() as i64
}
