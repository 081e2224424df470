//! The `istatd` daemon's own modules: option parsing, the stat line protocol, the admin
//! port, and the wiring of shards, storage and listeners.

pub mod admin;
pub mod clock;
pub mod daemon;
pub mod http;
pub mod logging;
pub mod meta;
pub mod metrics;
pub mod net;
pub mod options;
pub mod run;
pub mod server;
pub mod statline;

// compat: old path, removed at merge
pub use metrics::localstats;
// compat: old path, removed at merge
pub use metrics::prom;
