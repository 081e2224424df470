//! Rates the operator sets (`--replica-read-rate`, `--replica-create-rate`,
//! `--replica-scrub-rate`), each split across the shards.

/// A token bucket refilled by elapsed time; a rate of 0 is unlimited. Tokens may go
/// below zero (a read costs what it scanned), which delays the next one.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl TokenBucket {
    pub fn new(rate: f64) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: rate,
            at: std::time::Instant::now(),
        }
    }

    /// A shard's share of a node-wide rate.
    pub fn share(rate: u64, shards: usize) -> TokenBucket {
        TokenBucket::new(rate as f64 / shards.max(1) as f64)
    }

    fn refill(&mut self) {
        let now = std::time::Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.rate.max(1.0));
    }

    /// Whether there is something to spend now.
    pub fn ready(&mut self) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        self.refill();
        self.tokens > 0.0
    }

    pub fn spend(&mut self, n: f64) {
        if self.rate > 0.0 {
            self.tokens -= n;
        }
    }
}
