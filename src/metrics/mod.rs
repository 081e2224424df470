//! The daemon's own counters and metrics: the reference's loopback counters
//! ([`loopback`]), their merge across shards ([`gather`]), their recording into the
//! store with the host's numbers sampled for `--local-stats` ([`recording`],
//! [`localstats`]), and the Prometheus exporter with the Prometheus text of the
//! internal counters ([`prom`]).

pub mod gather;
pub mod localstats;
pub mod loopback;
pub mod prom;
pub mod recording;
