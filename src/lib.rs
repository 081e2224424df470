//! The `istatd` daemon's own modules: option parsing, the stat line protocol, the admin
//! port, and the wiring of shards, storage and listeners.

pub mod admin;
pub mod options;
pub mod statline;
