//! Master/slave replication for istatd.
//!
//! This crate will own the replication PDU codec, the handshake, and the master and
//! slave state machines of `replication.md`. It speaks PDUs and asks the storage crate
//! for buckets; it never touches files or sockets directly.
