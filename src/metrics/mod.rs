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

/// Push `<prefix>.<name>` = value for each of the whitespace-separated `names` and its
/// value, in order.
pub fn push_named(out: &mut Vec<(String, i64)>, prefix: &str, names: &str, values: &[u64]) {
    debug_assert_eq!(names.split_whitespace().count(), values.len());
    for (k, v) in names.split_whitespace().zip(values) {
        out.push((format!("{prefix}.{k}"), *v as i64));
    }
}
