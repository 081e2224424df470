//! The daemon's metrics: the Prometheus exporter and the Prometheus text of the
//! internal counters ([`prom`]), and the host's own numbers sampled for
//! `--local-stats` ([`localstats`]).

pub mod localstats;
pub mod prom;
