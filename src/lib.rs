//! The `istatd` daemon's own modules: option parsing, the stat line protocol, the admin
//! port, and the wiring of shards, storage and listeners.

pub mod admin;
pub mod clock;
pub mod daemon;
pub mod http;
pub mod localstats;
pub mod logging;
pub mod meta;
pub mod net;
pub mod options;
pub mod prom;
pub mod run;
pub mod server;
pub mod statline;
