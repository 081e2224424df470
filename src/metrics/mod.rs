//! The daemon's own counters: the reference's loopback counters ([`loopback`]), their
//! merge across shards ([`gather`]), and their recording into the store with the
//! host's local stats ([`recording`]).

pub mod gather;
pub mod loopback;
pub mod recording;
