//! The replication wire format: frames, the five PDUs and their strict size rules
//! (docs/replication-protocol.md, "Frames and PDUs").
//!
//! ```text
//! frame    = type:u32le size:u32le payload[size]
//! Connect  (1) = version:u32le server_id[16]                        size = 20
//! Discover (2) = istat::Header[464], name = relative path + NULs   size = 464
//! Request  (3) = from_time:i64le num_buckets:i64le name NUL        size = 17..=272
//! Data     (4) = n:i64le bucket[32]*n name NUL                     size = 9..=65,800
//! Error    (5) = text NUL                                          size = 1..=1024
//! ```
//!
//! Version 3 (the anti-entropy scrub, opt-in on both nodes; see [`crate::scrub`]) adds:
//!
//! ```text
//! DigestRequest (6) = from:i64le ranges:u32le name NUL                   size = 14..=268
//! Digest        (7) = from:i64le n:u32le (mask:u64le hash:u64le)*n name NUL
//!                                                                 size = 14..=4,364
//! RepairRequest (8) = from:i64le num_buckets:i64le name NUL       size = 18..=272
//! RepairData    (9) = n:i64le bucket[32]*n name NUL               size = 9..=65,800
//! ```
//!
//! On a version 2 link ids 6 to 9 are unknown, exactly as the version 2 contract says.
//!
//! A name's NUL is always the last payload byte: no trailing bytes, so there is exactly
//! one valid encoding of every PDU. [`FrameDecoder`] is a pure incremental parser that
//! checks the size bounds as soon as a frame header is in, before it buffers any
//! payload, and never holds more than one partial frame.

use istatd_storage::format::{Bucket, Header, BUCKET_SIZE, HEADER_SIZE, NAME_LEN, OFF_NAME};

pub const CONNECT: u32 = 1;
pub const DISCOVER: u32 = 2;
pub const REQUEST: u32 = 3;
pub const DATA: u32 = 4;
pub const ERROR: u32 = 5;
pub const DIGEST_REQUEST: u32 = 6;
pub const DIGEST: u32 = 7;
pub const REPAIR_REQUEST: u32 = 8;
pub const REPAIR_DATA: u32 = 9;

/// Bytes of the frame header.
pub const FRAME_HEADER: usize = 8;
/// Most buckets one Data may carry.
pub const MAX_BUCKETS: usize = 2048;
/// Longest file name on the wire, without its NUL.
pub const MAX_NAME: usize = 255;
/// Largest payload of any PDU (a Data of 2,048 buckets and a 255-byte name).
pub const MAX_PAYLOAD: usize = 8 + MAX_BUCKETS * BUCKET_SIZE + MAX_NAME + 1;
/// Longest Error text with its NUL.
pub const MAX_ERROR: usize = 1024;

/// The protocol version this implementation speaks by default (it supports [2, 2]).
pub const VERSION: u32 = 2;
/// The version with the scrub's PDUs, spoken only when both nodes enable the scrub.
pub const VERSION_SCRUB: u32 = 3;
/// Most ranges one DigestRequest may ask for.
pub const MAX_RANGES: usize = 256;
/// Buckets per digest range (one bit each in a range's mask).
pub const RANGE_BUCKETS: i64 = 64;
/// Largest Digest payload.
pub const MAX_DIGEST: usize = 12 + MAX_RANGES * 16 + MAX_NAME + 1;

/// A process's identity on the wire (docs/replication-protocol.md, "Server id"): bytes 0..4
/// are the pid (u32 LE), the other 12 bytes random.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UniqueId(pub [u8; 16]);

impl UniqueId {
    /// A fresh id: OS randomness with the pid over the first four bytes. Fails when the
    /// OS random source fails (a zero random part would let two hosts with equal pids
    /// mistake each other for themselves).
    pub fn make(pid: u32) -> std::io::Result<UniqueId> {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut b)
            .map_err(std::io::Error::other)?;
        b[..4].copy_from_slice(&pid.to_le_bytes());
        Ok(UniqueId(b))
    }

    /// Lower-case hex, a `:` before bytes 4, 8 and 12, every byte zero-padded (35
    /// characters).
    pub fn str(&self) -> String {
        let mut s = String::with_capacity(35);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 && i % 4 == 0 {
                s.push(':');
            }
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

impl std::fmt::Debug for UniqueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.str())
    }
}

/// One decoded PDU.
#[derive(Debug, Clone, PartialEq)]
pub enum Pdu {
    Connect {
        version: u32,
        id: UniqueId,
    },
    /// The sender's header bytes, with `name` holding the relative path.
    Discover(Box<[u8; HEADER_SIZE]>),
    /// "Send valid buckets of `name` from `from` on, at most `n`". Empty name and n = 0:
    /// a heartbeat ping.
    Request {
        from: i64,
        n: i64,
        name: Vec<u8>,
    },
    /// Buckets in answer to a Request. No buckets and a name: "no such file"; no buckets
    /// and no name: a pong.
    Data {
        buckets: Vec<Bucket>,
        name: Vec<u8>,
    },
    Error(Vec<u8>),
    /// v3: "send digests of `ranges` ranges of [`RANGE_BUCKETS`] slots of `name` from
    /// `from` on".
    DigestRequest {
        from: i64,
        ranges: u32,
        name: Vec<u8>,
    },
    /// v3: the answer; no ranges means "no such file".
    Digest {
        from: i64,
        ranges: Vec<RangeDigest>,
        name: Vec<u8>,
    },
    /// v3: "send valid buckets of `name` in [from, from + n slots)".
    RepairRequest {
        from: i64,
        n: i64,
        name: Vec<u8>,
    },
    /// v3: the answer to a RepairRequest (no buckets: the master holds none there).
    RepairData {
        buckets: Vec<Bucket>,
        name: Vec<u8>,
    },
}

/// One range's digest: bit i of `mask` set when the sender holds a valid bucket at
/// slot i of the range, and a hash of those buckets' 32 bytes in time order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RangeDigest {
    pub mask: u64,
    pub hash: u64,
}

impl Pdu {
    pub fn id(&self) -> u32 {
        match self {
            Pdu::Connect { .. } => CONNECT,
            Pdu::Discover(_) => DISCOVER,
            Pdu::Request { .. } => REQUEST,
            Pdu::Data { .. } => DATA,
            Pdu::Error(_) => ERROR,
            Pdu::DigestRequest { .. } => DIGEST_REQUEST,
            Pdu::Digest { .. } => DIGEST,
            Pdu::RepairRequest { .. } => REPAIR_REQUEST,
            Pdu::RepairData { .. } => REPAIR_DATA,
        }
    }

    /// A heartbeat ping (the time is informational).
    pub fn ping(now: i64) -> Pdu {
        Pdu::Request {
            from: now,
            n: 0,
            name: Vec::new(),
        }
    }

    pub fn pong() -> Pdu {
        Pdu::Data {
            buckets: Vec::new(),
            name: Vec::new(),
        }
    }

    pub fn error(text: &str) -> Pdu {
        Pdu::Error(text.as_bytes().to_vec())
    }

    /// A Discover built from a header, `name` replaced by the relative path.
    pub fn discover(header: &Header, rel: &str) -> Pdu {
        let mut b = header.to_bytes();
        b[OFF_NAME..OFF_NAME + NAME_LEN].fill(0);
        let n = rel.len().min(NAME_LEN - 1);
        b[OFF_NAME..OFF_NAME + n].copy_from_slice(&rel.as_bytes()[..n]);
        Pdu::Discover(Box::new(b))
    }

    /// Payload length of the encoding.
    pub fn payload_len(&self) -> usize {
        match self {
            Pdu::Connect { .. } => 20,
            Pdu::Discover(_) => HEADER_SIZE,
            Pdu::Request { name, .. } => 16 + name.len() + 1,
            Pdu::Data { buckets, name } => 8 + buckets.len() * BUCKET_SIZE + name.len() + 1,
            Pdu::Error(t) => t.len() + 1,
            Pdu::DigestRequest { name, .. } => 12 + name.len() + 1,
            Pdu::Digest { ranges, name, .. } => 12 + ranges.len() * 16 + name.len() + 1,
            Pdu::RepairRequest { name, .. } => 16 + name.len() + 1,
            Pdu::RepairData { buckets, name } => 8 + buckets.len() * BUCKET_SIZE + name.len() + 1,
        }
    }

    /// Append the whole frame (header included) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(FRAME_HEADER + self.payload_len());
        out.extend_from_slice(&self.id().to_le_bytes());
        out.extend_from_slice(&(self.payload_len() as u32).to_le_bytes());
        match self {
            Pdu::Connect { version, id } => {
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&id.0);
            }
            Pdu::Discover(h) => out.extend_from_slice(&h[..]),
            Pdu::Request { from, n, name } | Pdu::RepairRequest { from, n, name } => {
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&n.to_le_bytes());
                out.extend_from_slice(name);
                out.push(0);
            }
            Pdu::DigestRequest { from, ranges, name } => {
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&ranges.to_le_bytes());
                out.extend_from_slice(name);
                out.push(0);
            }
            Pdu::Digest { from, ranges, name } => {
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
                for r in ranges {
                    out.extend_from_slice(&r.mask.to_le_bytes());
                    out.extend_from_slice(&r.hash.to_le_bytes());
                }
                out.extend_from_slice(name);
                out.push(0);
            }
            Pdu::Data { buckets, name } | Pdu::RepairData { buckets, name } => {
                out.extend_from_slice(&(buckets.len() as i64).to_le_bytes());
                for b in buckets {
                    out.extend_from_slice(&b.to_bytes());
                }
                out.extend_from_slice(name);
                out.push(0);
            }
            Pdu::Error(t) => {
                out.extend_from_slice(t);
                out.push(0);
            }
        }
    }

    pub fn to_frame(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

/// A fatal protocol violation; its text is what goes into the Error PDU
/// (docs/replication-protocol.md, "Errors").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    TooLarge,
    Malformed(u32),
    /// An id unknown on the link: outside 1..=5 on version 2, 1..=9 on version 3 (the
    /// state is filled in by whoever knows it).
    Unhandled(u32),
}

impl ProtocolError {
    /// The exact error text, `state` naming where an unknown id was met.
    pub fn text(&self, state: &str) -> String {
        match self {
            ProtocolError::TooLarge => "PDU too large".into(),
            ProtocolError::Malformed(id) => format!("Malformed PDU id {id}"),
            ProtocolError::Unhandled(id) => format!("Unhandled PDU id {id} in {state}"),
        }
    }
}

/// The payload size range allowed for a PDU id on a version 2 link, or None for an
/// unknown id.
pub fn size_range(id: u32) -> Option<(usize, usize)> {
    size_range_in(id, VERSION)
}

/// The payload size range allowed for a PDU id on a link of `version`.
pub fn size_range_in(id: u32, version: u32) -> Option<(usize, usize)> {
    match id {
        CONNECT => Some((20, 20)),
        DISCOVER => Some((HEADER_SIZE, HEADER_SIZE)),
        REQUEST => Some((17, 16 + MAX_NAME + 1)),
        DATA => Some((9, MAX_PAYLOAD)),
        ERROR => Some((1, MAX_ERROR)),
        DIGEST_REQUEST if version >= VERSION_SCRUB => Some((14, 12 + MAX_NAME + 1)),
        DIGEST if version >= VERSION_SCRUB => Some((14, MAX_DIGEST)),
        REPAIR_REQUEST if version >= VERSION_SCRUB => Some((18, 16 + MAX_NAME + 1)),
        REPAIR_DATA if version >= VERSION_SCRUB => Some((9, MAX_PAYLOAD)),
        _ => None,
    }
}

/// A name field ending the payload: the last byte must be its only NUL.
fn name_at(p: &[u8], at: usize, id: u32) -> Result<Vec<u8>, ProtocolError> {
    let field = p.get(at..).ok_or(ProtocolError::Malformed(id))?;
    match field.iter().position(|&b| b == 0) {
        Some(i) if i + 1 == field.len() && i <= MAX_NAME => Ok(field[..i].to_vec()),
        _ => Err(ProtocolError::Malformed(id)),
    }
}

/// Decode one complete payload of a known version 2 id (sizes already within range).
pub fn decode_payload(id: u32, p: &[u8]) -> Result<Pdu, ProtocolError> {
    decode_payload_in(id, p, VERSION)
}

/// Buckets then a name: the layout of Data and RepairData.
fn buckets_and_name(id: u32, p: &[u8]) -> Result<(Vec<Bucket>, Vec<u8>), ProtocolError> {
    let n = i64::from_le_bytes(p[0..8].try_into().expect("8 bytes"));
    if !(0..=MAX_BUCKETS as i64).contains(&n) {
        return Err(ProtocolError::Malformed(id));
    }
    let end = 8 + n as usize * BUCKET_SIZE;
    if p.len() <= end {
        return Err(ProtocolError::Malformed(id));
    }
    let buckets = p[8..end]
        .chunks_exact(BUCKET_SIZE)
        .map(Bucket::from_bytes)
        .collect();
    Ok((buckets, name_at(p, end, id)?))
}

/// Decode one complete payload of an id known on a link of `version`.
pub fn decode_payload_in(id: u32, p: &[u8], version: u32) -> Result<Pdu, ProtocolError> {
    let (lo, hi) = size_range_in(id, version).ok_or(ProtocolError::Unhandled(id))?;
    if p.len() > hi {
        return Err(ProtocolError::TooLarge);
    }
    if p.len() < lo {
        return Err(ProtocolError::Malformed(id));
    }
    let i64_at = |o: usize| i64::from_le_bytes(p[o..o + 8].try_into().expect("8 bytes"));
    match id {
        CONNECT => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&p[4..20]);
            Ok(Pdu::Connect {
                version: u32::from_le_bytes(p[0..4].try_into().expect("4 bytes")),
                id: UniqueId(b),
            })
        }
        DISCOVER => {
            if !p[OFF_NAME..OFF_NAME + NAME_LEN].contains(&0) {
                return Err(ProtocolError::Malformed(id));
            }
            let mut b = Box::new([0u8; HEADER_SIZE]);
            b.copy_from_slice(p);
            Ok(Pdu::Discover(b))
        }
        REQUEST => Ok(Pdu::Request {
            from: i64_at(0),
            n: i64_at(8),
            name: name_at(p, 16, id)?,
        }),
        DATA => {
            let (buckets, name) = buckets_and_name(id, p)?;
            Ok(Pdu::Data { buckets, name })
        }
        REPAIR_DATA => {
            let (buckets, name) = buckets_and_name(id, p)?;
            Ok(Pdu::RepairData { buckets, name })
        }
        DIGEST_REQUEST => Ok(Pdu::DigestRequest {
            from: i64_at(0),
            ranges: u32::from_le_bytes(p[8..12].try_into().expect("4 bytes")),
            name: name_at(p, 12, id)?,
        }),
        DIGEST => {
            let n = u32::from_le_bytes(p[8..12].try_into().expect("4 bytes")) as usize;
            if n > MAX_RANGES || p.len() <= 12 + n * 16 {
                return Err(ProtocolError::Malformed(id));
            }
            let ranges = p[12..12 + n * 16]
                .chunks_exact(16)
                .map(|c| RangeDigest {
                    mask: u64::from_le_bytes(c[0..8].try_into().expect("8 bytes")),
                    hash: u64::from_le_bytes(c[8..16].try_into().expect("8 bytes")),
                })
                .collect();
            Ok(Pdu::Digest {
                from: i64_at(0),
                ranges,
                name: name_at(p, 12 + n * 16, id)?,
            })
        }
        REPAIR_REQUEST => Ok(Pdu::RepairRequest {
            from: i64_at(0),
            n: i64_at(8),
            name: name_at(p, 16, id)?,
        }),
        ERROR => {
            if p.iter().position(|&b| b == 0) != Some(p.len() - 1) {
                return Err(ProtocolError::Malformed(id));
            }
            Ok(Pdu::Error(p[..p.len() - 1].to_vec()))
        }
        _ => Err(ProtocolError::Unhandled(id)),
    }
}

/// Incremental frame decoder: bytes in, whole PDUs or one error out. After an error it
/// yields nothing more (the connection is to be closed).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    head: [u8; FRAME_HEADER],
    head_len: usize,
    /// (id, size) of the frame whose payload is being collected.
    current: Option<(u32, usize)>,
    payload: Vec<u8>,
    failed: bool,
    /// The link's negotiated version above 2 (0 until set: version 2).
    version: u32,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// The version negotiated on the link: which ids are known from now on.
    pub fn set_version(&mut self, version: u32) {
        self.version = version;
    }

    fn version(&self) -> u32 {
        self.version.max(VERSION)
    }

    /// Bytes held for a partial frame.
    pub fn buffered(&self) -> usize {
        self.head_len + self.payload.len()
    }

    /// Capacity of the payload buffer (for tests of the size check).
    pub fn payload_capacity(&self) -> usize {
        self.payload.capacity()
    }

    /// Feed bytes; every complete PDU goes to `out`, in order. Stops at the first error
    /// and returns it; bytes after it are ignored. Returns how many bytes were consumed.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<Pdu>) -> Result<usize, ProtocolError> {
        if self.failed {
            return Err(ProtocolError::Malformed(0));
        }
        let total = input.len();
        while !input.is_empty() {
            if self.current.is_none() {
                let take = (FRAME_HEADER - self.head_len).min(input.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&input[..take]);
                self.head_len += take;
                input = &input[take..];
                if self.head_len < FRAME_HEADER {
                    break;
                }
                let id = u32::from_le_bytes(self.head[0..4].try_into().expect("4 bytes"));
                let size =
                    u32::from_le_bytes(self.head[4..8].try_into().expect("4 bytes")) as usize;
                self.head_len = 0;
                let Some((lo, hi)) = size_range_in(id, self.version()) else {
                    self.failed = true;
                    return Err(ProtocolError::Unhandled(id));
                };
                if size > hi {
                    self.failed = true;
                    return Err(ProtocolError::TooLarge);
                }
                if size < lo {
                    self.failed = true;
                    return Err(ProtocolError::Malformed(id));
                }
                self.current = Some((id, size));
                self.payload.clear();
                self.payload.reserve(size);
            }
            let (id, size) = self.current.expect("a frame in progress");
            let take = (size - self.payload.len()).min(input.len());
            self.payload.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.payload.len() < size {
                break;
            }
            self.current = None;
            match decode_payload_in(id, &self.payload, self.version()) {
                Ok(p) => out.push(p),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
            if self.payload.capacity() > 2 * MAX_PAYLOAD {
                self.payload = Vec::new();
            }
            self.payload.clear();
        }
        Ok(total - input.len())
    }
}

/// Read only the frame-level split of a byte stream (type, payload), without the
/// per-type checks: the port of the reference's PduReaderActor test (U-FR-02,
/// docs/replication-protocol.md, "Test plan").
#[derive(Debug, Default)]
pub struct RawFrames {
    buf: Vec<u8>,
}

impl RawFrames {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one is buffered.
    pub fn next_frame(&mut self) -> Option<(u32, Vec<u8>)> {
        if self.buf.len() < FRAME_HEADER {
            return None;
        }
        let id = u32::from_le_bytes(self.buf[0..4].try_into().ok()?);
        let size = u32::from_le_bytes(self.buf[4..8].try_into().ok()?) as usize;
        if size > MAX_PAYLOAD || self.buf.len() < FRAME_HEADER + size {
            return None;
        }
        let payload = self.buf[FRAME_HEADER..FRAME_HEADER + size].to_vec();
        self.buf.drain(..FRAME_HEADER + size);
        Some((id, payload))
    }
}

/// The relative path in a Discover header (up to its first NUL).
pub fn discover_name(h: &[u8; HEADER_SIZE]) -> &[u8] {
    let f = &h[OFF_NAME..OFF_NAME + NAME_LEN];
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    &f[..end]
}

/// Escape non-printable bytes of a received Error text for logging.
pub fn escape_text(t: &[u8]) -> String {
    let mut s = String::new();
    for &b in t.iter().take(MAX_ERROR - 1) {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}
