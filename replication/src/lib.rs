//! Master/slave replication for istatd (docs/replication-protocol.md).
//!
//! This crate owns the wire format ([`pdu`], [`name`]), the link rules ([`link`]:
//! handshake, heartbeats, back-off) and the per-shard file state of each role
//! ([`master`], [`slave`]), and the anti-entropy scrub ([`scrub`]). Every piece is sans I/O: the daemon's shards feed it
//! events and carry out what it returns (socket writes, storage reads and writes), so
//! the protocol is tested here with fakes and a fake clock. It never touches files or
//! sockets itself.

mod dense;
pub mod link;
pub mod master;
pub mod name;
pub mod pdu;
pub mod scrub;
pub mod slave;
