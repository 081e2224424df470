//! `istatd verify`: compare two stores by **replica equality**
//! (docs/replication-protocol.md, "Replica equality and residual risks").
//!
//! A slave file is *bucket-identical* to its master file when
//!
//! - for every bucket time `t` from the master's `oldest_kept_time` to its newest bucket
//!   time, within the slave's own window, where the master holds a **valid** bucket
//!   (docs/file-format.md, "Where a bucket goes"), the slave holds a valid bucket with the
//!   same 32 bytes;
//! - `cfg_interval`, `flags`, `file_create_time`, `lambda`, `season` and `fixed_count`
//!   are equal.
//!
//! Not compared: the cumulative fields, `name`, `unit`, stale slots, `first_bucket`,
//! `last_bucket`, `last_time`, the capacity, and slave buckets at times where the master
//! holds no valid bucket.
//!
//! Choices this module makes where the rule leaves room (each one is tested):
//!
//! - "Within the slave's own window" bounds the compared times **from below** only: a
//!   time counts when the slave's ring keeps it, i.e. when it is not older than the
//!   slave's window, with that window advanced to the master's newest time when the slave
//!   lags behind. A master bucket newer than the slave's newest bucket is therefore a
//!   differing bucket (the slave has not caught up), while a master bucket older than a
//!   smaller slave ring can hold is not counted.
//! - The master's newest bucket time is the time of its `last_bucket` (equal to
//!   `newest_bucket_time` (docs/file-format.md, "Operations for replication") whenever that
//!   index holds a bucket; unlike it, a file whose `last_bucket` is 0 still has its buckets
//!   before `file_create_time` compared).
//! - Validity, slot mapping and window clamping are [`FileState::read_valid`]'s: a slot is
//!   valid for a time when its stored time equals that time (and is not 0).
//! - A file whose header differs is reported by its first differing header field; its
//!   buckets are still compared (the rule is stated in absolute times) and counted in the
//!   totals.
//! - A file present in the master's store and absent from the slave's is *missing*, and
//!   every valid master bucket of it counts as a differing bucket. Missing files, files in
//!   error and differing files are counted separately (each file in exactly one class).
//!
//! The store is listed as the store itself lists it (`store::walk_store`): counter files
//! are the regular files in the directories below the root, and every name starting with
//! `.` is skipped at every level (so `.replication_of` and similar are not part of a
//! store; the backup tree `<store>.bak` is a sibling of the root, never inside it).
//! Unlike the store's scan, a directory that cannot be read is an error here, not a
//! silently skipped subtree.
//!
//! This is command-line code: it reads files with plain `std::fs`, one pair at a time.

use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::format::{slot_offset, Bucket, FormatError, Header, BUCKET_SIZE, HEADER_SIZE};
use crate::statfile::{FileState, Slots};

// ---------------------------------------------------------------------------------------
// One file
// ---------------------------------------------------------------------------------------

/// Why a file, a pair of files or a store could not be compared.
#[derive(Debug)]
pub enum VerifyError {
    /// A file could not be read.
    Io(io::Error),
    /// A file was refused by validation (docs/file-format.md, "Validation").
    Format(FormatError),
    /// One side of a comparison (`master` or `slave`) was refused by validation.
    Refused {
        side: &'static str,
        error: FormatError,
    },
    /// A store's root directory could not be listed.
    Store { root: PathBuf, error: io::Error },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Io(e) => write!(f, "{e}"),
            VerifyError::Format(e) => write!(f, "{e}"),
            VerifyError::Refused { side, error } => write!(f, "{side}: {error}"),
            VerifyError::Store { root, error } => {
                write!(f, "cannot read store {}: {error}", root.display())
            }
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<io::Error> for VerifyError {
    fn from(e: io::Error) -> Self {
        VerifyError::Io(e)
    }
}

impl From<FormatError> for VerifyError {
    fn from(e: FormatError) -> Self {
        VerifyError::Format(e)
    }
}

/// A whole counter file read into memory, its header validated (docs/file-format.md,
/// "Validation").
pub struct CounterFile {
    state: FileState,
    bytes: Vec<u8>,
}

/// Read-only slots over a file image (the comparison never writes).
struct ImageView<'a> {
    image: &'a [u8],
    page_size: i64,
}

impl Slots for ImageView<'_> {
    fn has(&self, _slot: i64) -> bool {
        true
    }
    fn get(&self, slot: i64) -> Bucket {
        let off = slot_offset(slot, self.page_size) as usize;
        Bucket::from_bytes(&self.image[off..off + BUCKET_SIZE])
    }
    fn put(&mut self, _slot: i64, _b: &Bucket) {
        unreachable!("verify only reads");
    }
}

impl CounterFile {
    /// Validate a whole file image; a file the storage layer refuses is an error.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<CounterFile, FormatError> {
        let header = Header::parse_checked(&bytes, bytes.len() as u64)?;
        Ok(CounterFile {
            state: FileState::new(header),
            bytes,
        })
    }

    /// Read and validate a file. The header is checked against the file's length before
    /// the rest is read, so a huge file with a bad header is not read in full.
    pub fn read(path: &Path) -> Result<CounterFile, VerifyError> {
        let mut f = File::open(path)?;
        let len = f.metadata()?.len();
        let mut head = Vec::with_capacity(HEADER_SIZE);
        (&mut f).take(HEADER_SIZE as u64).read_to_end(&mut head)?;
        Header::parse_checked(&head, len)?;
        let mut bytes = head;
        bytes.reserve(len.saturating_sub(HEADER_SIZE as u64) as usize);
        f.read_to_end(&mut bytes)?;
        // The file may have changed between the two reads: validate the whole image.
        Ok(CounterFile::from_bytes(bytes)?)
    }

    pub fn header(&self) -> &Header {
        &self.state.header
    }

    /// The file's state as the storage layer sees it (ring math, window).
    pub fn state(&self) -> &FileState {
        &self.state
    }

    /// Time of `last_bucket`: the newest time the comparison looks at.
    pub fn newest_time(&self) -> i64 {
        self.state.time_of(self.state.header.last_bucket)
    }

    /// Valid buckets from `start` to `end` inclusive, clamped to the file's window, in
    /// ascending time order (`read_valid_buckets`, docs/file-format.md, "Operations for
    /// replication").
    pub fn valid_buckets(&self, start: i64, end: i64) -> Vec<Bucket> {
        let view = ImageView {
            image: &self.bytes,
            page_size: self.state.header.page_size,
        };
        self.state
            .read_valid(&view, start, end, usize::MAX, usize::MAX)
            .0
    }

    /// Every valid bucket the rule looks at when there is no slave file to bound it:
    /// from `oldest_kept_time` to the newest bucket time.
    pub fn kept_valid_buckets(&self) -> Vec<Bucket> {
        self.valid_buckets(self.state.oldest_kept_time(), self.newest_time())
    }
}

/// A compared header field that differs, with both values as printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderDiff {
    pub field: &'static str,
    pub master: String,
    pub slave: String,
}

/// The first differing bucket of a file: the master's bucket and the slave's valid
/// bucket at the same time, `None` when the slave holds no valid bucket there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketDiff {
    pub time: i64,
    pub master: Bucket,
    pub slave: Option<Bucket>,
}

/// The comparison of one master file with one slave file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileDiff {
    /// Compared header fields that differ, in the order of the rule.
    pub header: Vec<HeaderDiff>,
    /// Valid master buckets in the compared range.
    pub compared_buckets: u64,
    /// Those the slave does not hold with the same 32 bytes.
    pub differing_buckets: u64,
    /// The oldest differing bucket.
    pub first: Option<BucketDiff>,
}

impl FileDiff {
    pub fn is_identical(&self) -> bool {
        self.header.is_empty() && self.differing_buckets == 0
    }
}

/// The header fields of the rule that differ (the in-memory header, after the upgrade of
/// old versions). Floating-point fields are compared bit for bit.
pub fn header_diffs(master: &Header, slave: &Header) -> Vec<HeaderDiff> {
    let mut out = Vec::new();
    let (m, s) = (master, slave);
    push_if_differs(&mut out, "cfg_interval", m.cfg_interval, s.cfg_interval);
    push_if_differs(&mut out, "flags", m.flags, s.flags);
    push_if_differs(
        &mut out,
        "file_create_time",
        m.file_create_time,
        s.file_create_time,
    );
    if m.lambda.to_bits() != s.lambda.to_bits() {
        let (ml, sl) = (m.lambda.to_string(), s.lambda.to_string());
        let (ml, sl) = if ml == sl {
            // Same text, different bits (NaN payloads): show the bits.
            (
                format!("{ml}(0x{:016x})", m.lambda.to_bits()),
                format!("{sl}(0x{:016x})", s.lambda.to_bits()),
            )
        } else {
            (ml, sl)
        };
        out.push(HeaderDiff {
            field: "lambda",
            master: ml,
            slave: sl,
        });
    }
    push_if_differs(&mut out, "season", m.season, s.season);
    push_if_differs(&mut out, "fixed_count", m.fixed_count, s.fixed_count);
    out
}

fn push_if_differs<T: PartialEq + ToString>(
    out: &mut Vec<HeaderDiff>,
    field: &'static str,
    master: T,
    slave: T,
) {
    if master != slave {
        out.push(HeaderDiff {
            field,
            master: master.to_string(),
            slave: slave.to_string(),
        });
    }
}

/// Compare a slave file with its master file by replica equality.
pub fn compare_files(master: &CounterFile, slave: &CounterFile) -> FileDiff {
    let header = header_diffs(master.header(), slave.header());
    let a = master.state();
    let b = slave.state();
    let end = master.newest_time();
    // The slave's window, advanced to the master's newest time when the slave lags:
    // older times are ones its ring cannot keep.
    let b_high = b.header.last_bucket.max(b.index_of(end));
    let b_low = b.time_of(b_high.saturating_sub(b.capacity() - 1));
    let start = a.oldest_kept_time().max(b_low);
    let want = master.valid_buckets(start, end);
    let have = slave.valid_buckets(start, end);
    let mut diff = FileDiff {
        header,
        compared_buckets: want.len() as u64,
        ..FileDiff::default()
    };
    let mut j = 0;
    for m in &want {
        while j < have.len() && have[j].time < m.time {
            j += 1;
        }
        let s = have.get(j).filter(|s| s.time == m.time).copied();
        if s.map(|s| s.to_bytes()) != Some(m.to_bytes()) {
            diff.differing_buckets += 1;
            diff.first.get_or_insert(BucketDiff {
                time: m.time,
                master: *m,
                slave: s,
            });
        }
    }
    diff
}

/// Compare two whole file images (master, slave); `Err` names the side that failed
/// validation.
pub fn compare_images(master: &[u8], slave: &[u8]) -> Result<FileDiff, VerifyError> {
    let read = |side, image: &[u8]| {
        CounterFile::from_bytes(image.to_vec())
            .map_err(|error| VerifyError::Refused { side, error })
    };
    Ok(compare_files(
        &read("master", master)?,
        &read("slave", slave)?,
    ))
}

/// A bucket's fields as shown in a report line.
pub fn bucket_summary(b: &Bucket) -> String {
    format!(
        "[sum={} sum_sq={} min={} max={} count={}]",
        b.sum, b.sum_sq, b.min, b.max, b.count
    )
}

// ---------------------------------------------------------------------------------------
// Stores
// ---------------------------------------------------------------------------------------

/// The counter files of a store (relative paths, sorted) and the directories below the
/// root that could not be read.
#[derive(Debug, Default)]
pub struct StoreFiles {
    pub files: Vec<PathBuf>,
    pub errors: Vec<(PathBuf, String)>,
}

/// List a store: the regular files of every directory below `root`, skipping names that
/// start with `.` (as `store::walk_store` does). `Err` only when the root itself cannot
/// be read; unreadable directories below it are listed in [`StoreFiles::errors`].
pub fn list_store(root: &Path) -> io::Result<StoreFiles> {
    let mut out = StoreFiles::default();
    // The root first, so that an unreadable root is an error of the whole listing.
    let mut stack = Vec::new();
    scan_dir(root, &PathBuf::new(), &mut stack, &mut out)?;
    while let Some(rel) = stack.pop() {
        if let Err(e) = scan_dir(&root.join(&rel), &rel, &mut stack, &mut out) {
            out.errors
                .push((rel, format!("cannot read directory: {e}")));
        }
    }
    out.files.sort();
    out.errors.sort_by(|x, y| x.0.cmp(&y.0));
    Ok(out)
}

fn scan_dir(
    dir: &Path,
    rel: &Path,
    stack: &mut Vec<PathBuf>,
    out: &mut StoreFiles,
) -> io::Result<()> {
    let at_root = rel.as_os_str().is_empty();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let name = ent.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        // Not following symbolic links, as the store's scan.
        let ft = match ent.file_type() {
            Ok(t) => t,
            Err(e) => {
                out.errors.push((rel.join(&name), e.to_string()));
                continue;
            }
        };
        if ft.is_dir() {
            stack.push(rel.join(&name));
        } else if ft.is_file() && !at_root {
            out.files.push(rel.join(&name));
        }
    }
    Ok(())
}

/// One line of a verify report.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// Present in both stores, not bucket-identical.
    Differs { path: PathBuf, diff: FileDiff },
    /// In the master's store only; `buckets` valid master buckets are missing.
    Missing { path: PathBuf, buckets: u64 },
    /// In the slave's store only (informational unless strict).
    Extra { path: PathBuf },
    /// Unreadable, or refused by validation (`message` names the side).
    Error { path: PathBuf, message: String },
}

impl Finding {
    pub fn path(&self) -> &Path {
        match self {
            Finding::Differs { path, .. }
            | Finding::Missing { path, .. }
            | Finding::Extra { path }
            | Finding::Error { path, .. } => path,
        }
    }

    /// The report line (without a newline).
    pub fn line(&self) -> String {
        let p = self.path().display();
        match self {
            Finding::Differs { diff, .. } => {
                if let Some(h) = diff.header.first() {
                    format!(
                        "differs {p}: header {} master {} slave {}",
                        h.field, h.master, h.slave
                    )
                } else {
                    let mut s = format!("differs {p}: {} buckets", diff.differing_buckets);
                    if let Some(f) = &diff.first {
                        let slave = match &f.slave {
                            Some(b) => bucket_summary(b),
                            None => "missing".to_string(),
                        };
                        let _ = write!(
                            s,
                            " (first at {}: master {} slave {slave})",
                            f.time,
                            bucket_summary(&f.master)
                        );
                    }
                    s
                }
            }
            Finding::Missing { .. } => format!("missing {p}"),
            Finding::Extra { .. } => format!("extra {p}"),
            Finding::Error { message, .. } => format!("error {p}: {message}"),
        }
    }
}

/// The result of comparing two stores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Every finding, in path order.
    pub findings: Vec<Finding>,
    /// Files of the master's store examined.
    pub files_compared: u64,
    /// Files present in both stores that are not bucket-identical.
    pub differing_files: u64,
    /// Differing buckets, including every valid bucket of the missing files.
    pub differing_buckets: u64,
    pub missing: u64,
    pub extra: u64,
    pub errors: u64,
}

impl Report {
    /// Whether the slave store is identical to the master's by the rule: no differing
    /// bucket or header, no missing file, no error; with `strict`, no extra file either.
    pub fn is_identical(&self, strict: bool) -> bool {
        self.differing_files == 0
            && self.differing_buckets == 0
            && self.missing == 0
            && self.errors == 0
            && (!strict || self.extra == 0)
    }

    /// The report lines, at most `max` of them, then `... and K more` if any were left.
    pub fn lines(&self, max: usize) -> Vec<String> {
        let mut out: Vec<String> = self.findings.iter().take(max).map(Finding::line).collect();
        if self.findings.len() > max {
            out.push(format!("... and {} more", self.findings.len() - max));
        }
        out
    }

    /// The final summary line.
    pub fn summary(&self) -> String {
        format!(
            "verify: {} files compared, {} differing files, {} differing buckets, {} missing, {} extra, {} errors",
            self.files_compared,
            self.differing_files,
            self.differing_buckets,
            self.missing,
            self.extra,
            self.errors
        )
    }

    pub fn push(&mut self, f: Finding) {
        match &f {
            Finding::Differs { diff, .. } => {
                self.differing_files += 1;
                self.differing_buckets += diff.differing_buckets;
            }
            Finding::Missing { buckets, .. } => {
                self.missing += 1;
                self.differing_buckets += buckets;
            }
            Finding::Extra { .. } => self.extra += 1,
            Finding::Error { .. } => self.errors += 1,
        }
        self.findings.push(f);
    }
}

/// Compare the store at `slave_root` with the master's store at `master_root`. `Err`
/// when either root directory cannot be read (the message names it).
pub fn verify_stores(master_root: &Path, slave_root: &Path) -> Result<Report, VerifyError> {
    verify_stores_excluding(master_root, slave_root, &[])
}

/// [`verify_stores`] leaving out the files under the given relative directories (for
/// example `istatd`, the master's own counters, which change while it runs).
pub fn verify_stores_excluding(
    master_root: &Path,
    slave_root: &Path,
    exclude: &[PathBuf],
) -> Result<Report, VerifyError> {
    let read = |root: &Path| {
        list_store(root)
            .map(|mut l| {
                l.files
                    .retain(|f| !exclude.iter().any(|x| f.starts_with(x)));
                l
            })
            .map_err(|error| VerifyError::Store {
                root: root.to_path_buf(),
                error,
            })
    };
    let a = read(master_root)?;
    let b = read(slave_root)?;
    let mut report = Report::default();
    for (side, listing) in [("master", &a), ("slave", &b)] {
        for (path, e) in &listing.errors {
            report.push(Finding::Error {
                path: path.clone(),
                message: format!("{side}: {e}"),
            });
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.files.len() || j < b.files.len() {
        let in_b = match (a.files.get(i), b.files.get(j)) {
            (Some(pa), Some(pb)) if pb < pa => {
                report.push(Finding::Extra { path: pb.clone() });
                j += 1;
                continue;
            }
            (Some(pa), Some(pb)) => pa == pb,
            (Some(_), None) => false,
            (None, Some(pb)) => {
                report.push(Finding::Extra { path: pb.clone() });
                j += 1;
                continue;
            }
            (None, None) => unreachable!(),
        };
        let path = a.files[i].clone();
        i += 1;
        if in_b {
            j += 1;
        }
        report.files_compared += 1;
        if let Some(f) = compare_one(master_root, slave_root, path, in_b) {
            report.push(f);
        }
    }
    report.findings.sort_by(|x, y| x.path().cmp(y.path()));
    Ok(report)
}

/// The finding for one master file, `None` when its slave copy is identical.
fn compare_one(
    master_root: &Path,
    slave_root: &Path,
    path: PathBuf,
    in_b: bool,
) -> Option<Finding> {
    let master = match CounterFile::read(&master_root.join(&path)) {
        Ok(f) => f,
        Err(e) => {
            return Some(Finding::Error {
                path,
                message: format!("master: {e}"),
            })
        }
    };
    if !in_b {
        let buckets = master.kept_valid_buckets().len() as u64;
        return Some(Finding::Missing { path, buckets });
    }
    let slave = match CounterFile::read(&slave_root.join(&path)) {
        Ok(f) => f,
        Err(e) => {
            return Some(Finding::Error {
                path,
                message: format!("slave: {e}"),
            })
        }
    };
    let diff = compare_files(&master, &slave);
    if diff.is_identical() {
        None
    } else {
        Some(Finding::Differs { path, diff })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::PAGE_SIZE;
    use crate::statfile::ImageSlots;
    use crate::testimage;

    fn image(interval: i32, zero: i64, buckets: &[Bucket]) -> Vec<u8> {
        let mut st = FileState::new_created(testimage::header(interval, 2, 0, zero, "t"));
        let mut img = vec![0u8; PAGE_SIZE * 3];
        let mut s = ImageSlots {
            image: &mut img,
            page_size: PAGE_SIZE as i64,
        };
        st.put_overwrite(&mut s, buckets);
        st.absorb_overlay(&mut s);
        img[..HEADER_SIZE].copy_from_slice(&st.header.to_bytes());
        img
    }

    #[test]
    fn lambda_nan_payloads_show_bits() {
        let a = Header::parse_raw(&image(10, 0, &[]));
        let mut b = a.clone();
        let mut a = a;
        a.lambda = f64::from_bits(0x7ff8_0000_0000_0001);
        b.lambda = f64::from_bits(0x7ff8_0000_0000_0002);
        let d = header_diffs(&a, &b);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].master, "NaN(0x7ff8000000000001)");
        assert_eq!(d[0].slave, "NaN(0x7ff8000000000002)");
    }

    #[test]
    fn buckets_before_zero_time_are_compared_when_last_bucket_is_zero() {
        let z = 1_600_000_000;
        let a = image(10, z, &[Bucket::sample(z - 20, 1.0)]);
        let b = image(10, z, &[Bucket::sample(z - 20, 2.0)]);
        assert_eq!(Header::parse_raw(&a).last_bucket, 0);
        let d = compare_images(&a, &b).unwrap();
        assert_eq!((d.compared_buckets, d.differing_buckets), (1, 1));
        assert_eq!(d.first.unwrap().time, z - 20);
    }

    #[test]
    fn report_lines_are_capped() {
        let mut r = Report::default();
        for k in 0..5 {
            r.push(Finding::Extra {
                path: PathBuf::from(format!("a/{k}")),
            });
        }
        assert_eq!(r.lines(2), vec!["extra a/0", "extra a/1", "... and 3 more"]);
        assert_eq!(r.lines(5).len(), 5);
        assert!(r.is_identical(false));
        assert!(!r.is_identical(true));
    }
}
