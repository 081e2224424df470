//! Agent (forwarding) mode (docs/interfaces.md §6): samples are bucketed per name into
//! 10-second slots on the shard that parsed them and forwarded every
//! `--agent-interval` seconds as 7-field lines (3-field for `*` counters) over
//! `--agentCount` connections that shard 0 keeps to the `--agent` destination. A list
//! of destinations (`--agent m:8111,s:8111`) is tried in order: when one stops taking
//! connections (a master whose stat port closed at a planned failover), the agent moves
//! to the next one.
//!
//! Port: numbers go out with `%.17g` (full precision), not `%g`; receivers accept both.

pub mod bucketizer;
pub mod forward;
pub mod links;

pub use bucketizer::AgentShard;
pub use forward::AgentForwarder;
pub use links::AgentLinks;

/// Agent settings from the options.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    /// Destinations in order of preference; empty: not an agent.
    pub targets: Vec<(String, u16)>,
    pub connections: usize,
    pub interval_secs: u64,
}

impl AgentConfig {
    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }
}

/// `--agent host:port[,host:port...]`.
pub fn parse_targets(s: &str) -> Result<Vec<(String, u16)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let p = p.trim();
            let (h, port) = p
                .rsplit_once(':')
                .ok_or_else(|| "open() destination must be host:port".to_string())?;
            let h = h.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| "open() destination must be host:port".to_string())?;
            if h.is_empty() {
                return Err("open() destination must be host:port".into());
            }
            Ok((h.to_string(), port))
        })
        .collect()
}
