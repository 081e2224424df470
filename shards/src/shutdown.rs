//! One shutdown handle, cloned into every shard and task: the signal thread requests
//! it, loops notice it, and the shards meet at a barrier before they stop consuming
//! each other's data (so nothing sent is left unread).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting task looks again (executors share no wake-up primitive).
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: AtomicBool,
    /// Shards that have stopped producing data for other shards.
    quiet: AtomicUsize,
    shards: usize,
}

impl Shutdown {
    pub fn new(shards: usize) -> Shutdown {
        Shutdown {
            inner: Arc::new(Inner {
                requested: AtomicBool::new(false),
                quiet: AtomicUsize::new(0),
                shards: shards.max(1),
            }),
        }
    }

    /// Begin a clean shutdown (signal thread, start-up failure, tests).
    pub fn request(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Resolves once a shutdown was requested.
    pub async fn requested(&self) {
        while !self.is_requested() {
            glommio::timer::sleep(POLL).await;
        }
    }

    /// Sleep for `d`, or less if a shutdown is requested meanwhile; true when it was.
    pub async fn sleep(&self, d: Duration) -> bool {
        let end = std::time::Instant::now() + d;
        loop {
            if self.is_requested() {
                return true;
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            glommio::timer::sleep(left.min(POLL)).await;
        }
    }

    /// This shard produces nothing more for other shards; resolves when every shard
    /// has said so.
    pub async fn quiesce(&self) {
        self.inner.quiet.fetch_add(1, Ordering::SeqCst);
        while self.inner.quiet.load(Ordering::SeqCst) < self.inner.shards {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }
}
