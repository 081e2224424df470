//! The counter file format, byte for byte (docs/file-format.md, "Layout", "Where a bucket
//! goes").
//!
//! A counter file is `page_size × (page_count + 1)` bytes: one header page, then
//! `page_count` bucket pages of 32-byte buckets. Everything is little-endian.
//!
//! Header (464 bytes, the reference's `struct Header8`):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 16 | magic `"istatd 4.0\n\0" f5 14 07 00` |
//! | 16 | 4 | hdr_size (i32, 464) |
//! | 20 | 4 | cfg_interval (i32) |
//! | 24 | 4 | flags (i32: 1 COLLATED, 2 TRAILING, 4 COUNTER_AGGREGATE) |
//! | 28 | 4 | cr_version (i32, 8) |
//! | 32 | 4 | rd_version (i32, 4) |
//! | 36 | 4 | padding |
//! | 40 | 8 | page_size (i64) |
//! | 48 | 8 | page_count (i64) |
//! | 56 | 8 | first_bucket (i64) |
//! | 64 | 8 | last_bucket (i64) |
//! | 72 | 8 | last_time (i64) |
//! | 80 | 8 | cumulative_sum (f64) |
//! | 88 | 8 | cumulative_sum_sq (f64) |
//! | 96 | 8 | cumulative_count (i64) |
//! | 104 | 8 | last_cumulative_clear_time (i64) |
//! | 112 | 8 | file_create_time (i64) |
//! | 120 | 64 | unit (char[64]) |
//! | 184 | 256 | name (char[256]) |
//! | 440 | 8 | lambda (f64) |
//! | 448 | 8 | season (u64) |
//! | 456 | 8 | fixed_count (i64) |
//!
//! Bucket (32 bytes): time i64, sum f64, min f32, max f32, count i32, sumSq f32.
//!
//! Everything here is pure: bytes in, values out.

use std::fmt;

/// The 16 magic bytes at offset 0.
pub const MAGIC: [u8; 16] = *b"istatd 4.0\n\0\xf5\x14\x07\x00";
/// `sizeof(Header8)`.
pub const HEADER_SIZE: usize = 464;
/// The version this implementation writes (`cr_version`) and can read up to.
pub const CUR_VERSION: i32 = 8;
/// The oldest reader version that can read files we write (`rd_version`).
pub const RD_VERSION: i32 = 4;
/// Page size the reference uses on x86-64 Linux: max(system page size, 8192).
pub const PAGE_SIZE: usize = 8192;
/// Bytes per bucket.
pub const BUCKET_SIZE: usize = 32;
/// Buckets per 8 KiB page.
pub const BUCKETS_PER_PAGE: usize = PAGE_SIZE / BUCKET_SIZE;

/// Event counter's finest file: buckets are replaced, never merged.
pub const FLAG_COLLATED: i32 = 0x1;
/// Trailing (lambda, moving-average) file.
pub const FLAG_TRAILING: i32 = 0x2;
/// Coarser file of an event counter: merged, with count forced to `fixed_count`.
pub const FLAG_COUNTER_AGGREGATE: i32 = 0x4;
/// Every flag a valid file may carry.
pub const FLAGS_KNOWN: i32 = 0x7;

pub const OFF_NAME: usize = 184;
pub const NAME_LEN: usize = 256;
pub const OFF_UNIT: usize = 120;
pub const UNIT_LEN: usize = 64;

/// Where a file's buckets fall in time: bucket index i covers
/// `zero + i * interval` (the header's `file_create_time` and `cfg_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub zero: i64,
    pub interval: i32,
}

impl Grid {
    pub fn of(h: &Header) -> Grid {
        Grid {
            zero: h.file_create_time,
            interval: h.cfg_interval,
        }
    }
}

/// The parsed 464-byte header.
#[derive(Clone, PartialEq)]
pub struct Header {
    pub magic: [u8; 16],
    pub hdr_size: i32,
    pub cfg_interval: i32,
    pub flags: i32,
    pub cr_version: i32,
    pub rd_version: i32,
    pub page_size: i64,
    pub page_count: i64,
    pub first_bucket: i64,
    pub last_bucket: i64,
    pub last_time: i64,
    pub cumulative_sum: f64,
    pub cumulative_sum_sq: f64,
    pub cumulative_count: i64,
    pub last_cumulative_clear_time: i64,
    pub file_create_time: i64,
    /// The unit and name fields without their trailing zero bytes (written back padded):
    /// a loaded file's name is its path, some 60 of the 256 bytes, and the daemon's files
    /// have no unit; half a million headers stay in memory.
    pub unit: Box<[u8]>,
    pub name: Box<[u8]>,
    pub lambda: f64,
    pub season: u64,
    pub fixed_count: i64,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("cfg_interval", &self.cfg_interval)
            .field("flags", &self.flags)
            .field("cr_version", &self.cr_version)
            .field("page_count", &self.page_count)
            .field("first_bucket", &self.first_bucket)
            .field("last_bucket", &self.last_bucket)
            .field("last_time", &self.last_time)
            .field("file_create_time", &self.file_create_time)
            .field("name", &c_str(&self.name))
            .finish_non_exhaustive()
    }
}

/// Bytes up to the first NUL, lossily as text.
pub fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn rd_i32(b: &[u8], off: usize) -> i32 {
    i32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn rd_i64(b: &[u8], off: usize) -> i64 {
    i64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn rd_f64(b: &[u8], off: usize) -> f64 {
    f64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}
fn rd_f32(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Why a header (or a whole file) was refused (docs/file-format.md, "Validation").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    TooShort(u64),
    BadMagic,
    VersionTooNew(i32),
    HeaderSizeChanged(i32),
    BadInterval(i32),
    BadPageSize(i64),
    BadPageCount(i64),
    BadFlags(i32),
    LengthMismatch {
        expected: u64,
        actual: u64,
    },
    /// A time or bucket index beyond ±2^40 (tens of thousands of years).
    OutOfRange(i64),
}

/// Largest magnitude accepted for header times and bucket indices.
pub const MAX_ABS_TIME: u64 = 1 << 40;

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::TooShort(n) => write!(f, "file too short ({n} bytes)"),
            FormatError::BadMagic => write!(f, "not an istat file (bad magic)"),
            FormatError::VersionTooNew(v) => write!(f, "file version is too new ({v} > 8)"),
            FormatError::HeaderSizeChanged(s) => {
                write!(
                    f,
                    "header size changed within the current version ({s} != 464)"
                )
            }
            FormatError::BadInterval(i) => write!(f, "bad bucket interval {i}"),
            FormatError::BadPageSize(p) => write!(f, "bad page size {p}"),
            FormatError::BadPageCount(p) => write!(f, "bad page count {p}"),
            FormatError::BadFlags(x) => write!(f, "unknown flags 0x{x:x}"),
            FormatError::LengthMismatch { expected, actual } => {
                write!(
                    f,
                    "file length {actual} differs from the header's {expected}"
                )
            }
            FormatError::OutOfRange(v) => write!(f, "time or bucket index {v} out of range"),
        }
    }
}

impl std::error::Error for FormatError {}

impl Header {
    /// Parse the first 464 bytes without any validation (as istatd_fileinfo does).
    /// `b` must hold at least [`HEADER_SIZE`] bytes.
    pub fn parse_raw(b: &[u8]) -> Header {
        assert!(b.len() >= HEADER_SIZE, "header needs 464 bytes");
        Header {
            magic: b[0..16].try_into().unwrap(),
            hdr_size: rd_i32(b, 16),
            cfg_interval: rd_i32(b, 20),
            flags: rd_i32(b, 24),
            cr_version: rd_i32(b, 28),
            rd_version: rd_i32(b, 32),
            page_size: rd_i64(b, 40),
            page_count: rd_i64(b, 48),
            first_bucket: rd_i64(b, 56),
            last_bucket: rd_i64(b, 64),
            last_time: rd_i64(b, 72),
            cumulative_sum: rd_f64(b, 80),
            cumulative_sum_sq: rd_f64(b, 88),
            cumulative_count: rd_i64(b, 96),
            last_cumulative_clear_time: rd_i64(b, 104),
            file_create_time: rd_i64(b, 112),
            unit: trim_zeros(&b[OFF_UNIT..OFF_UNIT + UNIT_LEN]),
            name: trim_zeros(&b[OFF_NAME..OFF_NAME + NAME_LEN]),
            lambda: rd_f64(b, 440),
            season: rd_i64(b, 448) as u64,
            fixed_count: rd_i64(b, 456),
        }
    }

    /// Parse and validate a header read from a file of `file_len` bytes, applying the
    /// in-memory upgrade of old versions (docs/file-format.md, "Validation"). Never panics.
    pub fn parse_checked(b: &[u8], file_len: u64) -> Result<Header, FormatError> {
        if b.len() < HEADER_SIZE || file_len < HEADER_SIZE as u64 {
            return Err(FormatError::TooShort(file_len.min(b.len() as u64)));
        }
        let mut h = Header::parse_raw(b);
        if h.magic != MAGIC {
            return Err(FormatError::BadMagic);
        }
        if h.rd_version > CUR_VERSION {
            return Err(FormatError::VersionTooNew(h.rd_version));
        }
        if h.cr_version == CUR_VERSION && h.hdr_size != HEADER_SIZE as i32 {
            return Err(FormatError::HeaderSizeChanged(h.hdr_size));
        }
        if h.cfg_interval < 1 {
            return Err(FormatError::BadInterval(h.cfg_interval));
        }
        if h.page_size < 4096 || h.page_size % 512 != 0 || h.page_size > (1 << 20) {
            return Err(FormatError::BadPageSize(h.page_size));
        }
        if !(2..=(1 << 24)).contains(&h.page_count) {
            return Err(FormatError::BadPageCount(h.page_count));
        }
        if h.flags & !FLAGS_KNOWN != 0 {
            return Err(FormatError::BadFlags(h.flags));
        }
        // Times and indices far outside any real clock would overflow the ring math.
        for v in [
            h.first_bucket,
            h.last_bucket,
            h.last_time,
            h.file_create_time,
        ] {
            if v.unsigned_abs() > MAX_ABS_TIME {
                return Err(FormatError::OutOfRange(v));
            }
        }
        let expected = h.page_size as u64 * (h.page_count as u64 + 1);
        if expected != file_len {
            return Err(FormatError::LengthMismatch {
                expected,
                actual: file_len,
            });
        }
        h.upgrade();
        Ok(h)
    }

    /// The in-memory upgrade of files written by older versions (docs/file-format.md,
    /// "Validation").
    fn upgrade(&mut self) {
        if self.cr_version < 5 {
            self.lambda = 0.9;
            self.season = 86400;
            self.cr_version = 5;
        }
        if self.cr_version < 7 {
            self.cr_version = 7;
        }
    }

    /// A fresh header for a new file (docs/file-format.md, "Creation").
    pub fn new_file(p: &CreateParams) -> Header {
        let name = c_field(p.name.as_bytes(), NAME_LEN);
        let unit = c_field(p.unit.as_bytes(), UNIT_LEN);
        Header {
            magic: MAGIC,
            hdr_size: HEADER_SIZE as i32,
            cfg_interval: p.interval,
            flags: p.flags,
            cr_version: CUR_VERSION,
            rd_version: RD_VERSION,
            page_size: PAGE_SIZE as i64,
            page_count: p.page_count,
            first_bucket: 0,
            last_bucket: 0,
            last_time: 0,
            cumulative_sum: 0.0,
            cumulative_sum_sq: 0.0,
            cumulative_count: 0,
            last_cumulative_clear_time: p.zero_time,
            file_create_time: p.zero_time,
            unit,
            name,
            lambda: p.lambda,
            season: p.season,
            fixed_count: p.fixed_count,
        }
    }

    /// The 464 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..16].copy_from_slice(&self.magic);
        b[16..20].copy_from_slice(&self.hdr_size.to_le_bytes());
        b[20..24].copy_from_slice(&self.cfg_interval.to_le_bytes());
        b[24..28].copy_from_slice(&self.flags.to_le_bytes());
        b[28..32].copy_from_slice(&self.cr_version.to_le_bytes());
        b[32..36].copy_from_slice(&self.rd_version.to_le_bytes());
        b[40..48].copy_from_slice(&self.page_size.to_le_bytes());
        b[48..56].copy_from_slice(&self.page_count.to_le_bytes());
        b[56..64].copy_from_slice(&self.first_bucket.to_le_bytes());
        b[64..72].copy_from_slice(&self.last_bucket.to_le_bytes());
        b[72..80].copy_from_slice(&self.last_time.to_le_bytes());
        b[80..88].copy_from_slice(&self.cumulative_sum.to_le_bytes());
        b[88..96].copy_from_slice(&self.cumulative_sum_sq.to_le_bytes());
        b[96..104].copy_from_slice(&self.cumulative_count.to_le_bytes());
        b[104..112].copy_from_slice(&self.last_cumulative_clear_time.to_le_bytes());
        b[112..120].copy_from_slice(&self.file_create_time.to_le_bytes());
        b[OFF_UNIT..OFF_UNIT + self.unit.len()].copy_from_slice(&self.unit);
        b[OFF_NAME..OFF_NAME + self.name.len()].copy_from_slice(&self.name);
        b[440..448].copy_from_slice(&self.lambda.to_le_bytes());
        b[448..456].copy_from_slice(&self.season.to_le_bytes());
        b[456..464].copy_from_slice(&self.fixed_count.to_le_bytes());
        b
    }

    /// Number of slots in the ring (`page_count × buckets per page`).
    pub fn capacity(&self) -> i64 {
        self.page_count * (self.page_size / BUCKET_SIZE as i64)
    }

    /// Total file length the header claims.
    pub fn file_len(&self) -> u64 {
        self.page_size as u64 * (self.page_count as u64 + 1)
    }

    pub fn set_name(&mut self, name: &[u8]) {
        self.name = c_field(name, NAME_LEN);
    }

    /// The unit field as stored, zero-padded.
    pub fn unit_field(&self) -> [u8; UNIT_LEN] {
        padded(&self.unit)
    }

    /// The name field as stored, zero-padded.
    pub fn name_field(&self) -> [u8; NAME_LEN] {
        padded(&self.name)
    }
}

/// A text for a field of `len` bytes: truncated to leave its terminating NUL.
fn c_field(text: &[u8], len: usize) -> Box<[u8]> {
    trim_zeros(&text[..text.len().min(len - 1)])
}

/// A field's bytes up to its last non-zero byte.
fn trim_zeros(b: &[u8]) -> Box<[u8]> {
    let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
    b[..end].into()
}

fn padded<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out[..b.len()].copy_from_slice(b);
    out
}

/// What a new file is made from (docs/file-format.md, "Creation", "Sizing a file").
#[derive(Debug, Clone, PartialEq)]
pub struct CreateParams {
    pub interval: i32,
    pub page_count: i64,
    pub flags: i32,
    pub zero_time: i64,
    pub lambda: f64,
    pub season: u64,
    pub fixed_count: i64,
    pub unit: String,
    pub name: String,
}

/// One 32-byte bucket as stored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bucket {
    pub time: i64,
    pub sum: f64,
    pub min: f32,
    pub max: f32,
    pub count: i32,
    pub sum_sq: f32,
}

/// The reference's `stabilizeFloat`, with the port's fix of −∞ (docs/file-format.md,
/// "Bucket arithmetic", S-3).
pub fn stabilize(f: f32) -> f32 {
    if f == f32::INFINITY {
        f32::MAX
    } else if f == f32::NEG_INFINITY {
        -f32::MAX
    } else {
        f
    }
}

impl Bucket {
    pub const EMPTY: Bucket = Bucket {
        time: 0,
        sum: 0.0,
        min: 0.0,
        max: 0.0,
        count: 0,
        sum_sq: 0.0,
    };

    /// A single gauge sample (docs/file-format.md, "Bucket arithmetic").
    pub fn sample(time: i64, v: f64) -> Bucket {
        Bucket {
            time,
            sum: v,
            min: v as f32,
            max: v as f32,
            count: 1,
            sum_sq: (v * v) as f32,
        }
    }

    /// An empty bucket stamped with a time (the reference's `Bucket(0,0,0,0,0,t)`).
    pub fn empty_at(time: i64) -> Bucket {
        Bucket {
            time,
            ..Bucket::EMPTY
        }
    }

    pub fn from_bytes(b: &[u8]) -> Bucket {
        Bucket {
            time: rd_i64(b, 0),
            sum: rd_f64(b, 8),
            min: rd_f32(b, 16),
            max: rd_f32(b, 20),
            count: rd_i32(b, 24),
            sum_sq: rd_f32(b, 28),
        }
    }

    pub fn to_bytes(&self) -> [u8; BUCKET_SIZE] {
        let mut b = [0u8; BUCKET_SIZE];
        self.write_to(&mut b);
        b
    }

    pub fn write_to(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.time.to_le_bytes());
        b[8..16].copy_from_slice(&self.sum.to_le_bytes());
        b[16..20].copy_from_slice(&self.min.to_le_bytes());
        b[20..24].copy_from_slice(&self.max.to_le_bytes());
        b[24..28].copy_from_slice(&self.count.to_le_bytes());
        b[28..32].copy_from_slice(&self.sum_sq.to_le_bytes());
    }

    /// `Bucket::update`: merge `o` into `self` (docs/file-format.md, "Bucket arithmetic").
    pub fn merge(&mut self, o: &Bucket) {
        if self.count == 0 {
            *self = *o;
        } else {
            self.sum += o.sum;
            self.sum_sq += o.sum_sq;
            self.min = self.min.min(o.min);
            self.max = self.max.max(o.max);
            self.count = self.count.wrapping_add(o.count);
        }
    }

    /// `Bucket::expUpdate`: blend `o` into the season-ago bucket `self`
    /// (docs/file-format.md, "Trailing window").
    pub fn exp_update(&mut self, o: &Bucket, lambda: f64) {
        if self.count == 0 {
            *self = *o;
        } else {
            let me = lambda;
            let you = 1.0 - lambda;
            self.sum = self.sum * me + o.sum * you;
            self.sum_sq = (self.sum_sq as f64 * me + o.sum_sq as f64 * you) as f32;
            self.min = (self.min as f64 * me + o.min as f64 * you) as f32;
            self.max = (self.max as f64 * me + o.max as f64 * you) as f32;
            let c = (self.count as f64 * me + o.count as f64 * you + 0.5) as i32;
            self.count = c.max(1);
            self.time = o.time;
        }
    }

    /// `Bucket::collatedUpdate`: add a per-second rate to an event bucket
    /// (docs/file-format.md, "How buckets are written").
    pub fn collated_update(&mut self, v: f64, t: i64) {
        if self.count == 0 {
            self.time = t;
        }
        self.sum += v;
        self.min = self.sum as f32;
        self.max = self.min;
        self.sum_sq = (self.sum * self.sum) as f32;
        self.count = 1;
    }

    /// Read-back getters: everything goes through f32 (docs/file-format.md, "Bucket
    /// arithmetic").
    pub fn sum_f32(&self) -> f32 {
        stabilize(self.sum as f32)
    }
    pub fn sum_sq_f32(&self) -> f32 {
        stabilize(self.sum_sq)
    }
    pub fn min_f32(&self) -> f32 {
        stabilize(self.min)
    }
    pub fn max_f32(&self) -> f32 {
        stabilize(self.max)
    }

    /// Average, computed from the stored f64 sum (docs/file-format.md,
    /// "Bucket arithmetic").
    pub fn avg(&self) -> f32 {
        let a = if self.count > 0 {
            self.sum / self.count as f64
        } else {
            0.0
        };
        stabilize(a as f32)
    }

    /// Sample standard deviation (docs/file-format.md, "Bucket arithmetic").
    pub fn sdev(&self) -> f32 {
        if self.count < 2 {
            return 0.0;
        }
        let c = self.count as f64;
        let mut d = c * self.sum_sq as f64 - self.sum * self.sum;
        if d < 0.0 {
            d = 0.0;
        }
        stabilize((d / (c * (c - 1.0))).sqrt() as f32)
    }
}

/// Slot of a bucket index in a ring of `capacity` slots (non-negative modulo).
pub fn slot_of(index: i64, capacity: i64) -> i64 {
    index.rem_euclid(capacity)
}

/// File offset of a slot.
pub fn slot_offset(slot: i64, page_size: i64) -> u64 {
    let bpp = page_size / BUCKET_SIZE as i64;
    (page_size * (1 + slot / bpp) + BUCKET_SIZE as i64 * (slot % bpp)) as u64
}

/// Bucket time of a sample time: `t − t % I` with C truncating `%` (docs/file-format.md,
/// "Where a bucket goes").
pub fn bucket_time(t: i64, interval: i64) -> i64 {
    t - t % interval
}

/// Bucket index of a time, floor division (docs/file-format.md, "Where a bucket goes",
/// Port S-2).
pub fn bucket_index(t: i64, zero: i64, interval: i64) -> i64 {
    t.saturating_sub(zero).div_euclid(interval)
}

/// Number of pages for a retention of `samples` buckets (docs/file-format.md, "Sizing a
/// file").
pub fn pages_for(samples: i64, interval: i64, season: Option<u64>) -> i64 {
    let bpp = BUCKETS_PER_PAGE as i64;
    let mut pages = (samples + bpp - 1) / bpp;
    if let Some(season) = season {
        if ((pages * bpp * interval) as u64) < season {
            pages = season as i64 / bpp / interval + 1;
        }
    }
    pages.max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_header() -> Header {
        Header::new_file(&CreateParams {
            interval: 10,
            page_count: 2,
            flags: FLAG_COLLATED,
            zero_time: 1600000000,
            lambda: 0.0,
            season: 0,
            fixed_count: 0,
            unit: String::new(),
            name: "store/logins/10s".into(),
        })
    }

    #[test]
    fn header_field_offsets() {
        let mut h = sample_header();
        h.first_bucket = -4;
        h.last_bucket = 276;
        h.last_time = 1600002760;
        h.cumulative_sum = 118.2;
        h.cumulative_sum_sq = 26.82;
        h.cumulative_count = 600;
        h.lambda = 0.5;
        h.season = 604800;
        h.fixed_count = 30;
        let b = h.to_bytes();
        assert_eq!(&b[0..16], &MAGIC);
        assert_eq!(rd_i32(&b, 16), 464);
        assert_eq!(rd_i32(&b, 20), 10);
        assert_eq!(rd_i32(&b, 24), 1);
        assert_eq!(rd_i32(&b, 28), 8);
        assert_eq!(rd_i32(&b, 32), 4);
        assert_eq!(rd_i32(&b, 36), 0);
        assert_eq!(rd_i64(&b, 40), 8192);
        assert_eq!(rd_i64(&b, 48), 2);
        assert_eq!(rd_i64(&b, 56), -4);
        assert_eq!(rd_i64(&b, 64), 276);
        assert_eq!(rd_i64(&b, 72), 1600002760);
        assert_eq!(rd_f64(&b, 80), 118.2);
        assert_eq!(rd_f64(&b, 88), 26.82);
        assert_eq!(rd_i64(&b, 96), 600);
        assert_eq!(rd_i64(&b, 104), 1600000000);
        assert_eq!(rd_i64(&b, 112), 1600000000);
        assert!(b[120..184].iter().all(|&x| x == 0));
        assert_eq!(&b[184..200], b"store/logins/10s");
        assert_eq!(b[200], 0);
        assert_eq!(rd_f64(&b, 440), 0.5);
        assert_eq!(rd_i64(&b, 448), 604800);
        assert_eq!(rd_i64(&b, 456), 30);
        assert_eq!(Header::parse_raw(&b), h);
    }

    #[test]
    fn header_validation_rejects_each_bad_field() {
        let good = sample_header().to_bytes();
        let len = 8192 * 3;
        assert!(Header::parse_checked(&good, len).is_ok());
        assert_eq!(
            Header::parse_checked(&good[..100], len),
            Err(FormatError::TooShort(100))
        );
        // Each bad field alone, written over a good header at its offset.
        let bad_fields: [(usize, &[u8], FormatError); 7] = [
            (3, b"X", FormatError::BadMagic),
            (32, &9i32.to_le_bytes(), FormatError::VersionTooNew(9)),
            (
                16,
                &460i32.to_le_bytes(),
                FormatError::HeaderSizeChanged(460),
            ),
            (20, &0i32.to_le_bytes(), FormatError::BadInterval(0)),
            (40, &1000i64.to_le_bytes(), FormatError::BadPageSize(1000)),
            (48, &1i64.to_le_bytes(), FormatError::BadPageCount(1)),
            (24, &8i32.to_le_bytes(), FormatError::BadFlags(8)),
        ];
        for (offset, field, want) in bad_fields {
            let mut b = good;
            b[offset..offset + field.len()].copy_from_slice(field);
            assert_eq!(
                Header::parse_checked(&b, len),
                Err(want),
                "field at offset {offset}"
            );
        }
        assert_eq!(
            Header::parse_checked(&good, len - 1),
            Err(FormatError::LengthMismatch {
                expected: len,
                actual: len - 1
            })
        );
    }

    #[test]
    fn old_versions_upgrade_in_memory() {
        let mut h = sample_header();
        h.cr_version = 4;
        h.hdr_size = 440;
        let h2 = Header::parse_checked(&h.to_bytes(), 8192 * 3).unwrap();
        assert_eq!((h2.cr_version, h2.lambda, h2.season), (7, 0.9, 86400));
        h.cr_version = 6;
        let h3 = Header::parse_checked(&h.to_bytes(), 8192 * 3).unwrap();
        assert_eq!((h3.cr_version, h3.lambda, h3.season), (7, 0.0, 0));
    }

    #[test]
    fn bucket_fields_and_bytes() {
        // web.latency.server1.10s slot 0 (docs/file-format.md, "Worked example").
        let b = Bucket::sample(1600000000, 113.64);
        let bytes = b.to_bytes();
        let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(
            hex,
            "00105e5f00000000295c8fc2f5685c40ae47e342ae47e3420100000033c84946"
        );
        assert_eq!(Bucket::from_bytes(&bytes), b);
        assert_eq!(b.min_f32() as f64, 113.63999938964844);
        assert_eq!(b.sum_f32(), 113.64f32);
    }

    #[test]
    fn merge_and_stats() {
        let mut a = Bucket::sample(100, 1.0);
        a.merge(&Bucket::sample(100, 3.0));
        assert_eq!(
            (a.sum, a.sum_sq, a.min, a.max, a.count),
            (4.0, 10.0, 1.0, 3.0, 2)
        );
        assert_eq!(a.avg(), 2.0);
        assert!((a.sdev() - std::f32::consts::SQRT_2).abs() < 1e-6);
        let mut e = Bucket::empty_at(50);
        e.merge(&Bucket::sample(100, 7.0));
        assert_eq!(e.time, 100, "merge into an empty bucket copies everything");
        let mut c = Bucket::empty_at(10);
        c.collated_update(0.2, 10);
        c.collated_update(0.1, 10);
        assert_eq!((c.count, c.min, c.max), (1, 0.3f32, 0.3f32));
        assert_eq!(c.sum, 0.2 + 0.1);
        let inf = Bucket::sample(1, f64::NEG_INFINITY);
        assert_eq!(inf.min_f32(), -f32::MAX);
    }

    #[test]
    fn ring_math() {
        assert_eq!(slot_of(-4, 512), 508);
        assert_eq!(slot_of(512, 512), 0);
        assert_eq!(slot_offset(0, 8192), 8192);
        assert_eq!(slot_offset(256, 8192), 16384);
        assert_eq!(slot_offset(257, 8192), 16416);
        assert_eq!(bucket_index(1599999960, 1600000000, 10), -4);
        assert_eq!(
            bucket_index(1599997000, 1600002600, 300),
            -19,
            "floor, not truncation"
        );
        assert_eq!(bucket_time(1600000013, 10), 1600000010);
        assert_eq!(pages_for(360, 10, None), 2);
        assert_eq!(pages_for(86400, 10, None), 338);
        assert_eq!(pages_for(52848, 3600, None), 207);
        assert_eq!(pages_for(2016, 300, Some(604800)), 8);
        assert_eq!(pages_for(1, 10, Some(86400 * 10)), 338);
    }
}
