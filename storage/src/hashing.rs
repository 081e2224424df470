//! The hash maps of hot paths (page cache, file table, counters, replication state).
//!
//! The standard library's SipHash showed at 3-6 % of a replicating daemon's CPU. Keys
//! here include counter names that clients choose, so the hash must stay keyed per
//! process (no collisions an attacker can precompute): aHash with a random state is
//! both keyed and several times faster than SipHash for short keys.

/// The keyed hasher of both, for a hash kept on its own.
pub type FastState = ahash::RandomState;

pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
pub type FastSet<K> = std::collections::HashSet<K, ahash::RandomState>;
