//! Executors and cross-shard messaging for the istatd daemon.
//!
//! This crate will own the pinned glommio executors (one per shard), the hash that
//! assigns a counter to its owning shard, and the bounded, batched channels that carry
//! samples, queries and replication traffic between shards. It knows nothing of file
//! formats or wire protocols.
