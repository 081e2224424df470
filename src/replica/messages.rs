//! The two message enums between the coordinator (shard 0) and the owning shards, one
//! per direction.

use istatd_replication::pdu::RangeDigest;
use istatd_storage::format::{Bucket, HEADER_SIZE};

/// A late mark: a file's wire path, its lowest late bucket time, when it was marked.
pub type Mark = (Box<str>, u32, u32);

/// Coordinator to the shard owning the files concerned.
#[derive(Debug)]
pub enum ToOwner {
    /// Master: a slave connection opened / closed.
    MasterOpen(u64),
    MasterClose(u64),
    /// Master: a file Request (checked) of connection `conn`.
    Request {
        conn: u64,
        name: Vec<u8>,
        from: i64,
        n: i64,
    },
    /// Master (v3): a checked DigestRequest / RepairRequest.
    DigestRequest {
        conn: u64,
        name: Vec<u8>,
        from: i64,
        ranges: u32,
    },
    RepairRequest {
        conn: u64,
        name: Vec<u8>,
        from: i64,
        n: i64,
    },
    /// Master: bytes of this shard's frames that left connection `conn`'s send queue;
    /// the shard may queue that much more.
    Credit {
        conn: u64,
        bytes: usize,
    },
    /// Master: `replication.suspend|resume master`.
    MasterSuspended(bool),
    /// Slave: the link to the master of generation `gen` is up with `version` (every
    /// file state starts over), or down (`gen` 0).
    SlaveLink {
        gen: u64,
        version: u32,
    },
    Discover(u64, Box<[u8; HEADER_SIZE]>),
    Data {
        gen: u64,
        name: Vec<u8>,
        buckets: Vec<Bucket>,
    },
    /// Slave (v3): a Digest / RepairData.
    Digest {
        gen: u64,
        name: Vec<u8>,
        from: i64,
        ranges: Vec<RangeDigest>,
    },
    RepairData {
        gen: u64,
        name: Vec<u8>,
        buckets: Vec<Bucket>,
    },
    /// Storage replica mode on or off (`replication.of`, promotion).
    ReplicaMode(bool),
    /// The resume time R for subscriptions from now on.
    SetResume(Option<i64>),
    /// `replication.resync all,from=T`: T for every subscription of the next link only.
    ResyncNextLink(Option<i64>),
}

impl ToOwner {
    /// The file a PDU of the slave link is for (Discover, Data, Digest, RepairData).
    pub fn file_pdu_name(&self) -> Option<&[u8]> {
        match self {
            ToOwner::Discover(_, h) => Some(istatd_replication::pdu::discover_name(h)),
            ToOwner::Data { name, .. }
            | ToOwner::Digest { name, .. }
            | ToOwner::RepairData { name, .. } => Some(name),
            _ => None,
        }
    }

    /// A message for the master side (it never meets the slave link's file PDUs).
    pub fn is_master_side(&self) -> bool {
        matches!(
            self,
            ToOwner::MasterOpen(_)
                | ToOwner::MasterClose(_)
                | ToOwner::Request { .. }
                | ToOwner::DigestRequest { .. }
                | ToOwner::RepairRequest { .. }
                | ToOwner::Credit { .. }
                | ToOwner::MasterSuspended(_)
        )
    }
}

/// An owning shard to the coordinator.
#[derive(Debug)]
pub enum ToCoordinator {
    /// Master: encoded frames for connection `conn`, from shard `shard`, and how many
    /// of the connection's Requests this shard has answered since its last message.
    MasterOut {
        conn: u64,
        shard: usize,
        frames: Vec<u8>,
        answered: u32,
    },
    /// Slave: encoded Requests for the link of generation `gen`, and how many file PDUs
    /// of that link this shard has applied since its last message.
    SlaveOut {
        gen: u64,
        frames: Vec<u8>,
        applied: u32,
    },
    /// Slave: the master broke the protocol; close the link with this text.
    SlaveFatal { gen: u64, text: &'static str },
    /// Master: a shard's current late marks (for `.replication_late`).
    LateMarks { shard: usize, marks: Vec<Mark> },
}
