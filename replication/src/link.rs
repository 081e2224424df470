//! The link between a slave and its master, apart from files (docs/replication-protocol.md,
//! "Handshake", "Liveness and resume"): handshake checks, heartbeats and idle timeouts, the
//! reconnect back-off, and which PDUs each state accepts. Times are seconds from any clock
//! the caller chooses (the tests use a fake one).

use crate::name::is_valid_name;
use crate::pdu::{Pdu, ProtocolError, UniqueId, VERSION};

/// Oldest protocol version this node speaks.
pub const MIN_VERSION: u32 = 2;
/// Handshake timeout, seconds.
pub const HANDSHAKE_TIMEOUT: i64 = 10;
/// Most pings outstanding before the slave stops pinging.
pub const MAX_PINGS: u32 = 64;

/// Why a master refuses a slave's Connect; the Error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Version,
    SelfConnect,
    Cycle,
    TooMany,
}

impl Refusal {
    pub fn text(self) -> &'static str {
        match self {
            Refusal::Version => "Unsupported protocol version",
            Refusal::SelfConnect => "I refuse to talk to myself",
            Refusal::Cycle => "Replication cycle",
            Refusal::TooMany => "Too many replicas",
        }
    }

    /// Configuration failures: the slave backs off to the maximum at once.
    pub fn is_configuration(self) -> bool {
        matches!(
            self,
            Refusal::Version | Refusal::SelfConnect | Refusal::Cycle
        )
    }
}

/// The master's checks of a Connect, in order (docs/replication-protocol.md, "Handshake").
/// `own_master` is this node's own master's id when it is itself a slave; `slots_free`
/// whether one more slave fits. Returns the reply Connect.
pub fn master_accept(
    version: u32,
    peer: UniqueId,
    own: UniqueId,
    own_master: Option<UniqueId>,
    slots_free: bool,
) -> Result<Pdu, Refusal> {
    master_accept_upto(VERSION, version, peer, own, own_master, slots_free)
}

/// [`master_accept`] on a node that speaks versions up to `max` (3 with the scrub).
pub fn master_accept_upto(
    max: u32,
    version: u32,
    peer: UniqueId,
    own: UniqueId,
    own_master: Option<UniqueId>,
    slots_free: bool,
) -> Result<Pdu, Refusal> {
    if version < MIN_VERSION {
        return Err(Refusal::Version);
    }
    if peer == own {
        return Err(Refusal::SelfConnect);
    }
    if own_master == Some(peer) {
        return Err(Refusal::Cycle);
    }
    if !slots_free {
        return Err(Refusal::TooMany);
    }
    Ok(Pdu::Connect {
        version: version.min(max.max(VERSION)),
        id: own,
    })
}

/// The slave's check of the master's reply Connect.
pub fn slave_check_reply(version: u32, peer: UniqueId, own: UniqueId) -> Result<(), Refusal> {
    slave_check_reply_upto(VERSION, version, peer, own)
}

/// [`slave_check_reply`] on a slave that offered `max` (3 with the scrub).
pub fn slave_check_reply_upto(
    max: u32,
    version: u32,
    peer: UniqueId,
    own: UniqueId,
) -> Result<(), Refusal> {
    if !(MIN_VERSION..=max.max(VERSION)).contains(&version) {
        return Err(Refusal::Version);
    }
    if peer == own {
        return Err(Refusal::SelfConnect);
    }
    Ok(())
}

/// What a checked Request means to the master's shard 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    Ping,
    File { from: i64, n: i64 },
}

/// A request the master refuses (docs/replication-protocol.md,
/// "Master: discovery and answering"): fatal for the link; its text is the Error the master
/// sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// Fields out of range for the PDU of this id.
    Malformed(u32),
    /// The name is not a valid wire name.
    BadName,
}

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRequest::Malformed(id) => f.write_str(&ProtocolError::Malformed(*id).text("")),
            BadRequest::BadName => f.write_str("Bad file name"),
        }
    }
}

impl std::error::Error for BadRequest {}

/// A fatal problem with a Request (docs/replication-protocol.md,
/// "Master: discovery and answering").
pub fn check_request(from: i64, n: i64, name: &[u8]) -> Result<RequestKind, BadRequest> {
    if from >= 1 << 32 {
        return Err(BadRequest::Malformed(3));
    }
    if name.is_empty() {
        if n != 0 {
            return Err(BadRequest::Malformed(3));
        }
        return Ok(RequestKind::Ping);
    }
    if n < 1 {
        return Err(BadRequest::Malformed(3));
    }
    if !is_valid_name(name) {
        return Err(BadRequest::BadName);
    }
    Ok(RequestKind::File { from, n })
}

/// The state names used in `Unhandled PDU id <n> in <state>`.
pub const START: &str = "start";
pub const CONNECTED: &str = "connected";

/// Liveness of one link end (docs/replication-protocol.md, "Liveness and resume"): when to
/// ping, when to give up.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    pub keepalive: i64,
    pub timeout: i64,
    /// Last input received: silence since then makes the slave ping.
    last_rx: i64,
    /// Base of the idle timer: the last input, or the end of a local pause.
    idle_from: i64,
    last_ping: i64,
    pub outstanding: u32,
}

impl Heartbeat {
    pub fn new(now: i64, keepalive: i64, timeout: i64) -> Heartbeat {
        Heartbeat {
            keepalive: keepalive.max(1),
            timeout: timeout.max(2),
            last_rx: now,
            idle_from: now,
            last_ping: now,
            outstanding: 0,
        }
    }

    /// Input arrived.
    pub fn received(&mut self, now: i64) {
        self.last_rx = now;
        self.idle_from = self.idle_from.max(now);
    }

    /// The local side stopped reading until `now`: the idle timer does not run meanwhile.
    /// Pings go on ("Liveness and resume"): they are due on silence received, which a pause
    /// does not end.
    pub fn paused_until(&mut self, now: i64) {
        self.idle_from = self.idle_from.max(now);
    }

    /// Whether the slave should ping now (nothing received for a keepalive interval,
    /// repeated each interval, at most [`MAX_PINGS`] outstanding).
    pub fn should_ping(&mut self, now: i64) -> bool {
        if self.outstanding >= MAX_PINGS {
            return false;
        }
        if now - self.last_rx >= self.keepalive && now - self.last_ping >= self.keepalive {
            self.last_ping = now;
            self.outstanding += 1;
            return true;
        }
        false
    }

    /// A pong: false when none was outstanding (a fatal `Unexpected Data`).
    pub fn pong(&mut self) -> bool {
        if self.outstanding == 0 {
            return false;
        }
        self.outstanding -= 1;
        true
    }

    pub fn timed_out(&self, now: i64) -> bool {
        now - self.idle_from >= self.timeout
    }

    pub fn idle_for(&self, now: i64) -> i64 {
        now - self.idle_from
    }
}

/// The slave's reconnect delays (docs/replication-protocol.md, "Liveness and resume"): the
/// C++ curve 3, 6, 10, 16, 25, 39, 60, 91, 138, 180 …, jitter drawn fresh and never
/// compounded, reset after 30 s connected.
#[derive(Debug, Clone)]
pub struct Backoff {
    prev: u64,
    connected_at: Option<i64>,
    /// Longest base delay ([`BACKOFF_MAX`] unless set lower).
    max: u64,
}

/// Longest base delay, seconds.
pub const BACKOFF_MAX: u64 = 180;
/// Time in `connected` after which the back-off starts over.
pub const BACKOFF_RESET_AFTER: i64 = 30;

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            prev: 1,
            connected_at: None,
            max: BACKOFF_MAX,
        }
    }
}

impl Backoff {
    /// A back-off whose longest base delay is `max` seconds (at most [`BACKOFF_MAX`]).
    pub fn with_max(max: u64) -> Backoff {
        Backoff {
            max: max.clamp(1, BACKOFF_MAX),
            ..Backoff::default()
        }
    }

    /// The next base delay (and advance).
    pub fn next_base(&mut self) -> u64 {
        let next = (((self.prev + 1) * 3) / 2).min(self.max);
        self.prev = next;
        next
    }

    /// Jitter range for a base delay: [0, 3] below 30 s, [0, 15] from 30 s.
    pub fn jitter_max(base: u64) -> u64 {
        if base < 30 {
            3
        } else {
            15
        }
    }

    /// The next delay with jitter drawn from `rand01` in [0, 1).
    pub fn next_delay(&mut self, rand01: f64) -> u64 {
        let base = self.next_base();
        // A maximum set below the spec's keeps the jitter below the base, too.
        let jitter = if self.max < BACKOFF_MAX {
            Self::jitter_max(base).min(base / 2)
        } else {
            Self::jitter_max(base)
        };
        base + (rand01 * (jitter + 1) as f64) as u64
    }

    /// A configuration failure: straight to the maximum.
    pub fn to_max(&mut self) {
        self.prev = self.max;
    }

    pub fn connected(&mut self, now: i64) {
        self.connected_at = Some(now);
    }

    /// The link ended at `now`: the base starts over only after 30 s connected.
    pub fn disconnected(&mut self, now: i64) {
        if let Some(t) = self.connected_at.take() {
            if now - t >= BACKOFF_RESET_AFTER {
                self.prev = 1;
            }
        }
    }

    pub fn reset(&mut self) {
        self.prev = 1;
        self.connected_at = None;
    }
}
