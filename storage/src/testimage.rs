//! A reference file-image writer for tests: a counter file built in memory by the
//! minimal writer of docs/file-format.md ("Where a bucket goes", "Bucket arithmetic"),
//! without the store, so that queries and replication can be checked against images whose
//! content is known.
//!
//! Built for the crate's own tests and, with the `test-fixtures` feature, for other
//! crates' tests.

use crate::format::{self, Bucket, CreateParams, Header, BUCKET_SIZE};

/// A new file's header: no lambda, season, fixed count or unit.
pub fn header(interval: i32, page_count: i64, flags: i32, zero_time: i64, name: &str) -> Header {
    Header::new_file(&CreateParams {
        interval,
        page_count,
        flags,
        zero_time,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: name.into(),
    })
}

/// How [`Image::put`] stores a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Gauge files: merge into the bucket.
    Merge,
    /// Event counters' finest file: replace the bucket.
    Replace,
}

/// A whole counter file in memory: its header, and its bytes (the bucket pages after
/// the header page; the header itself is not written into them).
pub struct Image {
    pub header: Header,
    pub bytes: Vec<u8>,
}

impl Image {
    /// An empty file whose zero time is `zero` rounded down to the interval.
    pub fn new(interval: i32, page_count: i64, flags: i32, zero: i64, fixed_count: i64) -> Image {
        let zero = zero - zero.rem_euclid(interval as i64);
        let mut header = header(interval, page_count, flags, zero, "test");
        header.fixed_count = fixed_count;
        let bytes = vec![0u8; header.file_len() as usize];
        Image { header, bytes }
    }

    /// Write a bucket at its time's index: the window moves forward to it, a slot left
    /// from an earlier lap is cleared first, and an index older than the window is
    /// dropped.
    pub fn put(&mut self, b: Bucket, mode: PutMode) {
        let h = &mut self.header;
        let iv = h.cfg_interval as i64;
        let ix = format::bucket_index(b.time, h.file_create_time, iv);
        let bt = format::bucket_time(b.time, iv);
        let c = h.capacity();
        if ix > h.last_bucket {
            h.last_bucket = ix;
            h.last_time = bt;
            if h.first_bucket + c <= h.last_bucket {
                h.first_bucket = h.last_bucket - c + 1;
            }
        }
        if ix <= h.last_bucket - c {
            return;
        }
        if ix < h.first_bucket {
            h.first_bucket = ix;
        }
        let off = format::slot_offset(format::slot_of(ix, c), h.page_size) as usize;
        let slot = &mut self.bytes[off..off + BUCKET_SIZE];
        let mut cur = Bucket::from_bytes(slot);
        if cur.time != bt {
            cur = Bucket::EMPTY;
        }
        match mode {
            PutMode::Merge => cur.merge(&Bucket { time: bt, ..b }),
            PutMode::Replace => cur = Bucket { time: bt, ..b },
        }
        cur.write_to(slot);
    }
}
