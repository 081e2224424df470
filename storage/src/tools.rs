//! The file tools (docs/file-format.md, "File tools"): `file dump`, `file dump --full`,
//! `file info` and `file import`, as pure functions over a whole counter file's bytes.
//!
//! Output text is byte-identical to the reference's `istatd_filedump` and
//! `istatd_fileinfo`; `import` behaves like `istatd_import` (with the port's CSV mode).
//! Nothing here does I/O: the CLI reads the file, calls these, and writes back what
//! `import` changed.
//!
//! Reference facts that the spec text does not spell out (checked in the C++ source):
//! - `--full` prints `last_time` through the `std::string` specialisation of `dumpHdr`,
//!   so it is **quoted** like the byte arrays (`last_time="2020-09-13T13:12:40Z"`).
//! - `--full` with `--force` and a bad `cfg_interval` prints `assuming header size 3600`
//!   (sic) and uses 3600.
//! - The cumulative header fields add the incoming bucket's `sum()` and `sumSq()`
//!   *getters*, i.e. the sum rounded to f32 (and ±∞ stabilised), widened back to f64.
//!   The golden `web.latency.server1.10s` header holds exactly the sum of the f32-rounded
//!   samples (23870.110011577606), not the f64 sum (23870.110000000004).

use std::fmt::{self, Write};

use crate::format::{
    bucket_time, slot_of, slot_offset, Bucket, FormatError, Header, BUCKET_SIZE, FLAG_COLLATED,
    FLAG_COUNTER_AGGREGATE, HEADER_SIZE, MAGIC, OFF_UNIT,
};
use crate::numfmt::{iso8601, parse_iso8601, push_g};

/// The header line of the CSV dump (also what switches `import` to CSV mode).
pub const CSV_HEADER: &str = "DATE,SUM,SUMSQ,MIN,MAX,COUNT,AVG,SDEV";

/// The reader version the reference tools are (`CUR_HDR_VERSION`).
const TOOL_VERSION: i32 = 8;

/// Why a tool refused a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The file failed header/length validation (docs/file-format.md, "Validation").
    Format(FormatError),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Format(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ToolError {}

impl From<FormatError> for ToolError {
    fn from(e: FormatError) -> Self {
        ToolError::Format(e)
    }
}

fn bucket_at_slot(bytes: &[u8], h: &Header, slot: i64) -> Bucket {
    let off = slot_offset(slot, h.page_size) as usize;
    Bucket::from_bytes(&bytes[off..off + BUCKET_SIZE])
}

// ---------------------------------------------------------------------------------------
// file dump (CSV)
// ---------------------------------------------------------------------------------------

/// `istatd_filedump PATH`: the CSV dump (docs/file-format.md, "File tools"). The file is
/// validated first (the port never writes); a file failing validation is an error.
pub fn dump_csv(bytes: &[u8]) -> Result<String, ToolError> {
    let h = Header::parse_checked(bytes, bytes.len() as u64)?;
    let mut out = String::with_capacity(64);
    out.push_str(CSV_HEADER);
    out.push('\n');
    if h.first_bucket > h.last_bucket {
        return Ok(out);
    }
    let c = h.capacity();
    // A corrupt header may claim more than one lap: print at most the last C indices.
    let start = h.first_bucket.max(h.last_bucket.saturating_sub(c - 1));
    for i in start..=h.last_bucket {
        let b = bucket_at_slot(bytes, &h, slot_of(i, c));
        if b.time > 0 {
            push_csv_row(&mut out, &b);
        }
    }
    Ok(out)
}

fn push_csv_row(out: &mut String, b: &Bucket) {
    out.push('"');
    out.push_str(&iso8601(b.time));
    out.push_str("\",");
    push_g(out, b.sum_f32() as f64, 6);
    out.push(',');
    push_g(out, b.sum_sq_f32() as f64, 6);
    out.push(',');
    push_g(out, b.min_f32() as f64, 6);
    out.push(',');
    push_g(out, b.max_f32() as f64, 6);
    let _ = write!(out, ",{},", b.count);
    push_g(out, b.avg() as f64, 6);
    out.push(',');
    push_g(out, b.sdev() as f64, 6);
    out.push('\n');
}

// ---------------------------------------------------------------------------------------
// file dump --full
// ---------------------------------------------------------------------------------------

/// The reference's `dump_str`: `name="..."` with every byte of `data` escaped.
pub fn dump_str(name: &str, data: &[u8]) -> String {
    let mut s = String::with_capacity(name.len() + 3 + data.len() * 2);
    s.push_str(name);
    s.push_str("=\"");
    for &c in data {
        match c {
            b'"' | b'\\' => {
                s.push('\\');
                s.push(c as char);
            }
            32..=126 => s.push(c as char),
            10 => s.push_str("\\n"),
            13 => s.push_str("\\r"),
            _ => {
                let _ = write!(s, "\\{c:03o}");
            }
        }
    }
    s.push_str("\"\n");
    s
}

/// The reference's `checkHeader` (docs/file-format.md, "File tools"), with the port's magic
/// check. Messages go to `err`; with `force` the printed defaults are assumed. Returns
/// false when the dump must stop.
fn check_header(h: &mut Header, sz: i64, force: bool, err: &mut String) -> bool {
    if h.magic != MAGIC {
        err.push_str("header magic is wrong -- not an istat file\n");
        if !force {
            return false;
        }
    }
    if h.rd_version < 1 || h.rd_version > TOOL_VERSION {
        let _ = writeln!(
            err,
            "bad file version {}; wanted 1-{TOOL_VERSION}",
            h.rd_version
        );
        if !force {
            return false;
        }
        let _ = writeln!(err, "assuming file version {TOOL_VERSION}");
        h.rd_version = TOOL_VERSION;
    }
    if h.page_size < 4096 || h.page_size > 65536 || (h.page_size & (h.page_size - 1)) != 0 {
        let _ = writeln!(
            err,
            "page size {} is not an appropriate power of 2.",
            h.page_size
        );
        if !force {
            return false;
        }
        h.page_size = 8192;
        err.push_str("assuming page size of 8192.\n");
    }
    if h.page_count < 2 || h.page_count > 1024 * 1024 * 1024 {
        let _ = writeln!(err, "page count {} is out of range.", h.page_count);
        if !force {
            return false;
        }
        h.page_count = sz / h.page_size - 1;
        let _ = writeln!(err, "assuming page count of {}", h.page_count);
    }
    if h.page_count > sz / h.page_size - 1 {
        let _ = writeln!(err, "page count {} is larger than the file.", h.page_count);
        if !force {
            return false;
        }
        h.page_count = sz / h.page_size - 1;
        let _ = writeln!(err, "assuming page count of {}", h.page_count);
    }
    // sizeof(Header4) for cr_version >= 4 (and for anything unknown), else 0.
    let hs: i32 = if (0..=3).contains(&h.cr_version) {
        0
    } else {
        440
    };
    if h.hdr_size < hs {
        let _ = writeln!(
            err,
            "Header size {} is too small; expected {hs}",
            h.hdr_size
        );
        if !force {
            return false;
        }
        let _ = writeln!(err, "assuming header size {hs}");
        h.hdr_size = hs;
    }
    if h.hdr_size as i64 > h.page_size {
        let _ = writeln!(
            err,
            "Header size {} is bigger than page size {}",
            h.hdr_size, h.page_size
        );
        if !force {
            return false;
        }
        let _ = writeln!(err, "assuming header size {hs}");
        h.hdr_size = hs;
    }
    if h.cfg_interval < 1 || h.cfg_interval > 86400 {
        let _ = writeln!(
            err,
            "Retention interval {} is out of bounds!",
            h.cfg_interval
        );
        if !force {
            return false;
        }
        // Sic: the reference says "header size" here.
        err.push_str("assuming header size 3600\n");
        h.cfg_interval = 3600;
    }
    true
}

/// The reference's `dumpHeader`: `# Header: Name=Value` and 18 `name=value` lines.
fn dump_header(out: &mut String, h: &Header) {
    out.push_str("# Header: Name=Value\n");
    out.push_str(&dump_str("magic", &h.magic));
    let _ = writeln!(out, "hdr_size={}", h.hdr_size);
    let _ = writeln!(out, "cfg_interval={}", h.cfg_interval);
    let _ = writeln!(out, "cr_version={}", h.cr_version);
    let _ = writeln!(out, "rd_version={}", h.rd_version);
    out.push_str(&dump_str("unit", &h.unit_field()));
    out.push_str(&dump_str("name", &h.name_field()));
    let _ = writeln!(out, "page_size={}", h.page_size);
    let _ = writeln!(out, "page_count={}", h.page_count);
    let _ = writeln!(out, "first_bucket={}", h.first_bucket);
    let _ = writeln!(out, "last_bucket={}", h.last_bucket);
    // A std::string: printed through dump_str, so quoted.
    out.push_str(&dump_str("last_time", iso8601(h.last_time).as_bytes()));
    out.push_str("cumulative_sum=");
    push_g(out, h.cumulative_sum, 6);
    out.push_str("\ncumulative_sum_sq=");
    push_g(out, h.cumulative_sum_sq, 6);
    out.push('\n');
    let _ = writeln!(out, "cumulative_count={}", h.cumulative_count);
    let _ = writeln!(
        out,
        "last_cumulative_clear_time={}",
        h.last_cumulative_clear_time
    );
    let _ = writeln!(out, "file_create_time={}", h.file_create_time);
    let _ = writeln!(out, "flags={}", h.flags);
}

/// One `dumpData` row: widths 2, 8, 14, 12, 12, 12, 12, 8, right aligned.
fn push_full_row(out: &mut String, valid: bool, slot: i64, b: &Bucket) {
    let _ = writeln!(
        out,
        "{:>2}{:>8}{:>14}{:>12}{:>12}{:>12}{:>12}{:>8}",
        valid as u8,
        slot,
        b.time,
        crate::numfmt::g6(b.sum_f32() as f64),
        crate::numfmt::g6(b.sum_sq_f32() as f64),
        crate::numfmt::g6(b.min_f32() as f64),
        crate::numfmt::g6(b.max_f32() as f64),
        b.count
    );
}

/// The reference's `dumpData`: every slot in file order with its validity flag.
fn dump_data(out: &mut String, err: &mut String, h: &Header, bytes: &[u8]) -> bool {
    let page_size = h.page_size; // a power of 2 in 4096..=65536 after check_header
    let bpp = page_size / BUCKET_SIZE as i64;
    let num_buckets = h.page_count.wrapping_mul(bpp);
    let last_index = h.last_bucket.checked_rem(num_buckets).unwrap_or(0);
    let interval = h.cfg_interval as i64;
    out.push_str("# Valid Bucket Time Sum SumSq Min Max Cnt\n");
    for pix in 1..=h.page_count {
        let offset = pix * page_size;
        let page = usize::try_from(offset)
            .ok()
            .and_then(|o| bytes.get(o..o.checked_add(page_size as usize)?));
        let Some(page) = page else {
            let _ = writeln!(
                err,
                "file I/O error reading bucket page size {page_size} at offset {offset}"
            );
            return false;
        };
        for bix in 0..bpp {
            let o = bix as usize * BUCKET_SIZE;
            let b = Bucket::from_bytes(&page[o..o + BUCKET_SIZE]);
            let bucket_number = (pix - 1) * bpp + bix;
            let target = h.last_time.wrapping_add(
                bucket_number
                    .wrapping_sub(last_index)
                    .wrapping_mul(interval),
            );
            let valid = b.time >= target && b.time < target.wrapping_add(interval);
            push_full_row(out, valid, bucket_number, &b);
        }
    }
    true
}

/// `istatd_filedump --full [--force]` (docs/file-format.md, "File tools"): returns (stdout,
/// stderr, ok). On failure the caller adds `Cannot open: PATH` to stderr and exits 1;
/// stdout may hold what was printed before the failure.
pub fn dump_full(bytes: &[u8], force: bool) -> (String, String, bool) {
    let mut out = String::new();
    let mut err = String::new();
    let sz = bytes.len() as i64;
    if sz < 4096 {
        let _ = writeln!(err, "file size {sz} is too short.");
        return (out, err, false);
    }
    let mut h = Header::parse_raw(bytes);
    if !check_header(&mut h, sz, force, &mut err) {
        return (out, err, false);
    }
    dump_header(&mut out, &h);
    let ok = dump_data(&mut out, &mut err, &h, bytes);
    (out, err, ok)
}

// ---------------------------------------------------------------------------------------
// file info
// ---------------------------------------------------------------------------------------

/// Why `file info` refused a file (its message follows the path on stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoRefusal {
    /// Shorter than a header (the file's length).
    TooShort(usize),
    BadMagic,
    /// A reader version newer than the tools'.
    Version(i32),
}

impl fmt::Display for InfoRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfoRefusal::TooShort(n) => write!(f, "file too short ({n} bytes)"),
            InfoRefusal::BadMagic => write!(f, "bad magic value (not a counter file)"),
            InfoRefusal::Version(v) => {
                write!(
                    f,
                    "version {v} cannot be read by version {TOOL_VERSION} tools."
                )
            }
        }
    }
}

/// `file info` failed for a path; the text is the stderr line (without its newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoError {
    pub path: String,
    pub refusal: InfoRefusal,
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.refusal)
    }
}

impl std::error::Error for InfoError {}

/// `istatd_fileinfo PATH` for one path (docs/file-format.md, "File tools"). A unit that is
/// not UTF-8 is shown lossily; [`info_bytes`] has the exact bytes.
pub fn info(path_arg: &str, bytes: &[u8]) -> Result<String, InfoError> {
    match info_report(path_arg.as_bytes(), bytes) {
        Ok(v) => Ok(String::from_utf8_lossy(&v).into_owned()),
        Err(refusal) => Err(InfoError {
            path: path_arg.to_string(),
            refusal,
        }),
    }
}

/// [`info`] on raw bytes: the path argument and the unit are copied byte for byte. `Err`
/// is the stderr line (without its newline).
pub fn info_bytes(path_arg: &[u8], bytes: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
    info_report(path_arg, bytes).map_err(|refusal| {
        let mut e = path_arg.to_vec();
        e.extend_from_slice(format!(": {refusal}").as_bytes());
        e
    })
}

/// The report of `file info`, or why the file is refused.
fn info_report(path_arg: &[u8], bytes: &[u8]) -> Result<Vec<u8>, InfoRefusal> {
    if bytes.len() < HEADER_SIZE {
        return Err(InfoRefusal::TooShort(bytes.len()));
    }
    let h = Header::parse_raw(bytes);
    if h.magic != MAGIC {
        return Err(InfoRefusal::BadMagic);
    }
    if h.rd_version > TOOL_VERSION {
        return Err(InfoRefusal::Version(h.rd_version));
    }
    // `unit` is printed as a C string: up to the first NUL, even past the field.
    let tail = &bytes[OFF_UNIT..HEADER_SIZE];
    let unit = &tail[..tail.iter().position(|&b| b == 0).unwrap_or(tail.len())];
    let time = |t: i64| format!("{} ({t})", iso8601(t));
    let mut o = String::with_capacity(800);
    let _ = writeln!(o, "                  cr_version= {}", h.cr_version);
    let _ = writeln!(o, "                  rd_version= {}", h.rd_version);
    let _ = writeln!(o, "                cfg_interval= {}", h.cfg_interval);
    o.push_str("                        unit= ");
    let split = o.len();
    let _ = writeln!(o, "\n                   page_size= {}", h.page_size);
    let _ = writeln!(o, "                  page_count= {}", h.page_count);
    let _ = writeln!(o, "                first_bucket= {}", h.first_bucket);
    let _ = writeln!(o, "                 last_bucket= {}", h.last_bucket);
    let _ = writeln!(o, "                   last_time= {}", time(h.last_time));
    o.push_str("              cumulative_sum= ");
    push_g(&mut o, h.cumulative_sum, 6);
    o.push_str("\n           cumulative_sum_sq= ");
    push_g(&mut o, h.cumulative_sum_sq, 6);
    o.push('\n');
    let _ = writeln!(o, "            cumulative_count= {}", h.cumulative_count);
    let _ = writeln!(
        o,
        "  last_cumulative_clear_time= {}",
        time(h.last_cumulative_clear_time)
    );
    let _ = writeln!(
        o,
        "            file_create_time= {}",
        time(h.file_create_time)
    );
    o.push_str("                      lambda= ");
    push_g(&mut o, h.lambda, 6);
    o.push('\n');
    let _ = writeln!(o, "                      season= {}", h.season);
    let _ = writeln!(o, "                 fixed_count= {}", h.fixed_count);
    let _ = writeln!(o, "                       flags= 0x{:x}", h.flags);
    let _ = writeln!(o, "                  bucketsize= {BUCKET_SIZE}");
    let mut v = Vec::with_capacity(path_arg.len() + o.len() + unit.len() + 2);
    v.extend_from_slice(path_arg);
    v.extend_from_slice(b":\n");
    v.extend_from_slice(&o.as_bytes()[..split]);
    v.extend_from_slice(unit);
    v.extend_from_slice(&o.as_bytes()[split..]);
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// file import
// ---------------------------------------------------------------------------------------

/// What `import` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Buckets written into the file.
    pub applied: u64,
    /// Buckets refused as older than the ring window (the reference only logs these).
    pub refused: u64,
    /// Non-empty lines that were not buckets.
    pub bad_lines: u64,
    /// What the tool prints to stderr (the reference's messages for bad lines).
    pub stderr: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Overwrite,
    FillEmpty,
}

/// C `isspace` in the C locale.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A `time sum sumSq min max count` line.
fn parse_columns(line: &str) -> Option<Bucket> {
    let mut it = line
        .split(|c: char| c.is_ascii() && c_isspace(c as u8))
        .filter(|s| !s.is_empty());
    let time: i64 = it.next()?.parse().ok()?;
    let sum: f64 = it.next()?.parse().ok()?;
    let sum_sq: f32 = it.next()?.parse().ok()?;
    let min: f32 = it.next()?.parse().ok()?;
    let max: f32 = it.next()?.parse().ok()?;
    let count: i32 = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some(Bucket {
        time,
        sum,
        min,
        max,
        count,
        sum_sq,
    })
}

/// A `"ISO",SUM,SUMSQ,MIN,MAX,COUNT[,AVG,SDEV]` row of `file dump`.
fn parse_csv_row(line: &str) -> Option<Bucket> {
    let f: Vec<&str> = line.split(',').collect();
    if !(6..=8).contains(&f.len()) {
        return None;
    }
    let date = f[0].trim().strip_prefix('"')?.strip_suffix('"')?;
    let time = parse_iso8601(date)?;
    let sum: f64 = f[1].trim().parse().ok()?;
    let sum_sq: f32 = f[2].trim().parse().ok()?;
    let min: f32 = f[3].trim().parse().ok()?;
    let max: f32 = f[4].trim().parse().ok()?;
    let count: i32 = f[5].trim().parse().ok()?;
    Some(Bucket {
        time,
        sum,
        min,
        max,
        count,
        sum_sq,
    })
}

/// `StatFile::rawUpdateBucket` with OVERWRITE or FILL_EMPTY (docs/file-format.md,
/// "Bucket arithmetic", "Where a bucket goes"), straight on the byte image. Returns false
/// when the bucket is older than the window.
///
/// Port: TRAILING files are written like any other file (the reference would go through
/// its in-memory trailing window and blend with the season-ago bucket, "Trailing window");
/// index uses floor division (S-2).
fn apply(h: &mut Header, bytes: &mut [u8], b: &Bucket, mode: Mode) -> bool {
    let interval = h.cfg_interval as i64;
    let Some(delta) = b.time.checked_sub(h.file_create_time) else {
        return false;
    };
    let ix = delta.div_euclid(interval);
    let bt = bucket_time(b.time, interval);
    let c = h.capacity();
    if ix > h.last_bucket {
        h.last_bucket = ix;
        h.last_time = bt;
        if h.first_bucket.saturating_add(c) <= h.last_bucket {
            h.first_bucket = h.last_bucket - c + 1;
        }
    }
    if ix <= h.last_bucket.saturating_sub(c) {
        return false;
    }
    if ix < h.first_bucket {
        h.first_bucket = ix;
    }
    let off = slot_offset(slot_of(ix, c), h.page_size) as usize;
    let slot = &mut bytes[off..off + BUCKET_SIZE];
    let mut cur = Bucket::from_bytes(slot);
    if cur.time != bt {
        cur = Bucket::EMPTY;
    }
    if h.flags & FLAG_COLLATED != 0 || mode == Mode::Overwrite || cur.count == 0 {
        cur = *b;
    } else {
        cur.merge(&Bucket { time: bt, ..*b });
        if h.flags & FLAG_COUNTER_AGGREGATE != 0 {
            cur.count = h.fixed_count as i32;
        }
    }
    cur.write_to(slot);
    // The reference adds the getters' values: f32-rounded and stabilised.
    h.cumulative_sum += b.sum_f32() as f64;
    h.cumulative_sum_sq += b.sum_sq_f32() as f64;
    h.cumulative_count = h.cumulative_count.wrapping_add(b.count as i64);
    true
}

/// `istatd_import` (docs/file-format.md, "File tools") on a whole file image: validates the
/// file, applies every bucket of `input` with OVERWRITE (`fill_empty`: FILL_EMPTY) and
/// writes the header back into `bytes[..464]`. The caller writes back the pages that
/// changed.
///
/// Input: lines of `time sum sumSq min max count` (exactly 6 columns, counted as the
/// reference does: number of whitespace characters + 1), or, when the first line is
/// [`CSV_HEADER`], the CSV of [`dump_csv`].
///
/// The header's `name` field is left as it is (the reference rewrites it with the path it
/// opened); an old-version header is written back upgraded, as the reference does.
pub fn import(bytes: &mut [u8], input: &str, fill_empty: bool) -> Result<ImportReport, ToolError> {
    let mut h = Header::parse_checked(bytes, bytes.len() as u64)?;
    let mode = if fill_empty {
        Mode::FillEmpty
    } else {
        Mode::Overwrite
    };
    let mut rep = ImportReport::default();
    let mut csv = false;
    let mut first = true;
    let mut rest = input;
    while !rest.is_empty() {
        // std::getline: split on '\n' only; a last line without '\n' still counts.
        let (line, next) = match rest.find('\n') {
            Some(p) => (&rest[..p], &rest[p + 1..]),
            None => (rest, ""),
        };
        rest = next;
        if first {
            first = false;
            if line.trim_end_matches('\r') == CSV_HEADER {
                csv = true;
                continue;
            }
        }
        let bucket = if csv {
            let l = line.trim_end_matches('\r');
            if l.is_empty() {
                continue;
            }
            match parse_csv_row(l) {
                Some(b) => b,
                None => {
                    let _ = write!(rep.stderr, "Cannot parse CSV line:\n{line}\n");
                    rep.bad_lines += 1;
                    continue;
                }
            }
        } else {
            let columns = line.bytes().filter(|&b| c_isspace(b)).count() + 1;
            if columns != 6 {
                if !line.is_empty() {
                    let _ = write!(
                        rep.stderr,
                        "Need exactly 6 arguments, but got {columns}:\n{line}\n"
                    );
                    rep.bad_lines += 1;
                }
                continue;
            }
            match parse_columns(line) {
                Some(b) => b,
                None => {
                    let _ = write!(rep.stderr, "Cannot parse line:\n{line}\n");
                    rep.bad_lines += 1;
                    continue;
                }
            }
        };
        if apply(&mut h, bytes, &bucket, mode) {
            rep.applied += 1;
        } else {
            rep.refused += 1;
        }
    }
    let mut hb = h.to_bytes();
    hb[36..40].copy_from_slice(&bytes[36..40]); // padding: keep whatever was there
    bytes[..HEADER_SIZE].copy_from_slice(&hb);
    Ok(rep)
}

#[cfg(test)]
mod tests;
