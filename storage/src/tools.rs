//! The file tools (storage.md §7): `file dump`, `file dump --full`, `file info` and
//! `file import`, as pure functions over a whole counter file's bytes.
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
    /// The file failed header/length validation (storage.md §1.3, Port rule).
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

/// `istatd_filedump PATH`: the CSV dump (storage.md §7.1). The file is validated first
/// (the port never writes); a file failing validation is an error.
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

/// The reference's `checkHeader` (storage.md §7.2 step 2), with the port's magic check.
/// Messages go to `err`; with `force` the printed defaults are assumed. Returns false when
/// the dump must stop.
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
    out.push_str(&dump_str("unit", &h.unit));
    out.push_str(&dump_str("name", &h.name));
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

/// `istatd_filedump --full [--force]` (storage.md §7.2): returns (stdout, stderr, ok).
/// On failure the caller adds `Cannot open: PATH` to stderr and exits 1; stdout may hold
/// what was printed before the failure.
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

/// `istatd_fileinfo PATH` for one path (storage.md §7.3). `Err` is the stderr line
/// (without its newline). A unit that is not UTF-8 is shown lossily; [`info_bytes`] has
/// the exact bytes.
pub fn info(path_arg: &str, bytes: &[u8]) -> Result<String, String> {
    let lossy = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
    info_bytes(path_arg.as_bytes(), bytes)
        .map(lossy)
        .map_err(lossy)
}

/// [`info`] on raw bytes: the path argument and the unit are copied byte for byte.
pub fn info_bytes(path_arg: &[u8], bytes: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
    let fail = |msg: String| {
        let mut e = path_arg.to_vec();
        e.extend_from_slice(msg.as_bytes());
        Err(e)
    };
    if bytes.len() < HEADER_SIZE {
        return fail(format!(": file too short ({} bytes)", bytes.len()));
    }
    let h = Header::parse_raw(bytes);
    if h.magic != MAGIC {
        return fail(": bad magic value (not a counter file)".to_string());
    }
    if h.rd_version > TOOL_VERSION {
        return fail(format!(
            ": version {} cannot be read by version {TOOL_VERSION} tools.",
            h.rd_version
        ));
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

/// `StatFile::rawUpdateBucket` with OVERWRITE or FILL_EMPTY (storage.md §3.1, §2.6),
/// straight on the byte image. Returns false when the bucket is older than the window.
///
/// Port: TRAILING files are written like any other file (the reference would go through
/// its in-memory trailing window and blend with the season-ago bucket, §3.9); index uses
/// floor division (S-2).
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

/// `istatd_import` (storage.md §7.4) on a whole file image: validates the file, applies
/// every bucket of `input` with OVERWRITE (`fill_empty`: FILL_EMPTY) and writes the header
/// back into `bytes[..464]`. The caller writes back the pages that changed.
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
mod tests {
    use super::*;
    use crate::format::{CreateParams, FLAG_TRAILING, PAGE_SIZE};

    fn new_file(interval: i32, flags: i32, fixed_count: i64) -> Vec<u8> {
        let h = Header::new_file(&CreateParams {
            interval,
            page_count: 2,
            flags,
            zero_time: 1600000000,
            lambda: 0.0,
            season: 0,
            fixed_count,
            unit: String::new(),
            name: "store/x/10s".into(),
        });
        let mut v = vec![0u8; PAGE_SIZE * 3];
        v[..HEADER_SIZE].copy_from_slice(&h.to_bytes());
        v
    }

    fn hdr(b: &[u8]) -> Header {
        Header::parse_raw(b)
    }

    #[test]
    fn dump_str_escapes_like_the_reference() {
        let data = [
            b'a', b'"', b'\\', b'\n', b'\r', 0, 0xf5, 127, b' ', b'~', 31, 9,
        ];
        assert_eq!(
            dump_str("x", &data),
            "x=\"a\\\"\\\\\\n\\r\\000\\365\\177 ~\\037\\011\"\n"
        );
        assert_eq!(
            dump_str("magic", &MAGIC),
            "magic=\"istatd 4.0\\n\\000\\365\\024\\007\\000\"\n"
        );
        let unit = dump_str("unit", &[0u8; 64]);
        assert_eq!(unit.matches("\\000").count(), 64);
    }

    #[test]
    fn full_rows_use_the_reference_widths() {
        let mut s = String::new();
        push_full_row(&mut s, true, 0, &Bucket::sample(1600000000, 113.64));
        assert_eq!(
            s,
            " 1       0    1600000000      113.64       12914      113.64      113.64       1\n"
        );
        let mut s = String::new();
        push_full_row(&mut s, false, 511, &Bucket::EMPTY);
        assert_eq!(
            s,
            " 0     511             0           0           0           0           0       0\n"
        );
        let mut s = String::new();
        let b = Bucket {
            time: 5,
            sum: 1234567.0,
            sum_sq: 1.5e20,
            min: -0.000123,
            max: 2.0,
            count: 7,
        };
        push_full_row(&mut s, false, 3, &b);
        assert_eq!(
            s,
            " 0       3             5 1.23457e+06     1.5e+20   -0.000123           2       7\n"
        );
    }

    #[test]
    fn full_dump_layout_and_validity() {
        let mut f = new_file(10, FLAG_COLLATED, 0);
        let mut input = String::new();
        for k in -2..3i64 {
            let _ = writeln!(
                input,
                "{} {} {} {} {} 1",
                1600000000 + 10 * k,
                k,
                k * k,
                k,
                k
            );
        }
        import(&mut f, &input, false).unwrap();
        let (out, err, ok) = dump_full(&f, false);
        assert!(ok, "{err}");
        assert_eq!(err, "");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1 + 18 + 1 + 512);
        assert_eq!(lines[0], "# Header: Name=Value");
        assert_eq!(lines[1], "magic=\"istatd 4.0\\n\\000\\365\\024\\007\\000\"");
        assert_eq!(lines[2], "hdr_size=464");
        assert_eq!(lines[3], "cfg_interval=10");
        assert_eq!(lines[12], "last_time=\"2020-09-13T12:27:00Z\"");
        assert_eq!(lines[13], "cumulative_sum=0");
        assert_eq!(lines[14], "cumulative_sum_sq=10");
        assert_eq!(lines[15], "cumulative_count=5");
        assert_eq!(lines[18], "flags=1");
        assert_eq!(lines[19], "# Valid Bucket Time Sum SumSq Min Max Cnt");
        assert_eq!(
            lines[20],
            " 1       0    1600000000           0           0           0           0       1"
        );
        assert_eq!(
            lines[22],
            " 1       2    1600000020           2           4           2           2       1"
        );
        assert_eq!(
            lines[23],
            " 0       3             0           0           0           0           0       0"
        );
        assert_eq!(
            lines[20 + 510],
            " 0     510    1599999980          -2           4          -2          -2       1"
        );
    }

    #[test]
    fn full_dump_header_checks() {
        let good = new_file(10, 0, 0);
        let (_, err, ok) = dump_full(&good[..4000], false);
        assert_eq!(
            (err.as_str(), ok),
            ("file size 4000 is too short.\n", false)
        );

        let mut bad = good.clone();
        bad[3] = b'X';
        bad[20..24].copy_from_slice(&0i32.to_le_bytes());
        bad[48..56].copy_from_slice(&9i64.to_le_bytes());
        let (out, err, ok) = dump_full(&bad, false);
        assert_eq!(
            (out.as_str(), err.as_str(), ok),
            ("", "header magic is wrong -- not an istat file\n", false)
        );
        let (out, err, ok) = dump_full(&bad, true);
        assert!(ok);
        assert_eq!(
            err,
            "header magic is wrong -- not an istat file\n\
             page count 9 is larger than the file.\nassuming page count of 2\n\
             Retention interval 0 is out of bounds!\nassuming header size 3600\n"
        );
        assert!(out.contains("\ncfg_interval=3600\n"));
        assert!(out.contains("\npage_count=2\n"));

        let mut bad = good.clone();
        bad[32..36].copy_from_slice(&9i32.to_le_bytes());
        bad[40..48].copy_from_slice(&5000i64.to_le_bytes());
        bad[16..20].copy_from_slice(&100i32.to_le_bytes());
        let (_, err, ok) = dump_full(&bad, true);
        assert!(ok);
        assert_eq!(
            err,
            "bad file version 9; wanted 1-8\nassuming file version 8\n\
             page size 5000 is not an appropriate power of 2.\nassuming page size of 8192.\n\
             Header size 100 is too small; expected 440\nassuming header size 440\n"
        );
    }

    #[test]
    fn info_output_and_errors() {
        let mut f = new_file(10, FLAG_COUNTER_AGGREGATE, 30);
        f[OFF_UNIT..OFF_UNIT + 3].copy_from_slice(b"ms\0");
        let s = info("p/10s", &f).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "p/10s:");
        assert_eq!(lines[4], "                        unit= ms");
        assert_eq!(
            lines[9],
            "                   last_time= 1970-01-01T00:00:00Z (0)"
        );
        assert_eq!(lines[17], "                 fixed_count= 30");
        assert_eq!(lines[18], "                       flags= 0x4");
        assert_eq!(lines[19], "                  bucketsize= 32");
        assert_eq!(lines.len(), 20);
        assert_eq!(
            info("p", &f[..100]),
            Err("p: file too short (100 bytes)".into())
        );
        let mut b = f.clone();
        b[0] = 0;
        assert_eq!(
            info("p", &b),
            Err("p: bad magic value (not a counter file)".into())
        );
        b = f.clone();
        b[32..36].copy_from_slice(&12i32.to_le_bytes());
        assert_eq!(
            info("p", &b),
            Err("p: version 12 cannot be read by version 8 tools.".into())
        );
        // info does not validate the length or anything else
        assert!(info("p", &f[..HEADER_SIZE]).is_ok());
    }

    #[test]
    fn dump_csv_ranges() {
        let mut f = new_file(10, 0, 0);
        assert_eq!(
            dump_csv(&f).unwrap(),
            "DATE,SUM,SUMSQ,MIN,MAX,COUNT,AVG,SDEV\n"
        );
        import(
            &mut f,
            "1599999960 1 1 1 1 1\n1600000000 113.64 12914.0498 113.64 113.64 1\n",
            false,
        )
        .unwrap();
        assert_eq!(
            dump_csv(&f).unwrap(),
            "DATE,SUM,SUMSQ,MIN,MAX,COUNT,AVG,SDEV\n\
             \"2020-09-13T12:26:00Z\",1,1,1,1,1,1,0\n\
             \"2020-09-13T12:26:40Z\",113.64,12914,113.64,113.64,1,113.64,0\n"
        );
        // first > last: only the header line
        let mut g = f.clone();
        g[56..64].copy_from_slice(&5i64.to_le_bytes());
        assert_eq!(dump_csv(&g).unwrap().lines().count(), 1);
        // corrupt: more than one lap claimed, bounded to C rows at most
        let mut g = f.clone();
        g[56..64].copy_from_slice(&(-100000i64).to_le_bytes());
        assert_eq!(dump_csv(&g).unwrap().lines().count(), 3);
        // invalid file: an error, never a panic
        assert_eq!(
            dump_csv(&f[..9000]),
            Err(ToolError::Format(FormatError::LengthMismatch {
                expected: 24576,
                actual: 9000
            }))
        );
        assert!(dump_csv(&f[..10]).is_err());
    }

    #[test]
    fn import_ring_rules_and_messages() {
        let mut f = new_file(10, 0, 0);
        let input = "1600000005 2 4 2 2 1\n\
                     bogus line\n\
                     \n\
                     1 2 3 4 5 6 7\n\
                     1600000000 x 1 1 1 1\n\
                     1600005120 3 9 3 3 1\r\n\
                     1600005120 3 9 3 3 1\n\
                     1599999990 5 25 5 5 1";
        let rep = import(&mut f, input, false).unwrap();
        assert_eq!(
            rep.stderr,
            "Need exactly 6 arguments, but got 2:\nbogus line\n\
             Need exactly 6 arguments, but got 7:\n1 2 3 4 5 6 7\n\
             Cannot parse line:\n1600000000 x 1 1 1 1\n\
             Need exactly 6 arguments, but got 7:\n1600005120 3 9 3 3 1\r\n"
        );
        // index 512 pushes first_bucket to 1; then index -1 is refused (<= 512 - 512)
        assert_eq!((rep.applied, rep.refused, rep.bad_lines), (2, 1, 4));
        let h = hdr(&f);
        assert_eq!(
            (h.first_bucket, h.last_bucket, h.last_time),
            (1, 512, 1600005120)
        );
        assert_eq!(
            (h.cumulative_sum, h.cumulative_sum_sq, h.cumulative_count),
            (5.0, 13.0, 2)
        );
        // index 512 shares slot 0 with index 0: the stale slot was zeroed, then replaced
        let b = bucket_at_slot(&f, &h, 0);
        assert_eq!((b.time, b.sum, b.count), (1600005120, 3.0, 1));
        assert_eq!(dump_csv(&f).unwrap().lines().count(), 2);
    }

    #[test]
    fn import_modes() {
        let line_a = "1600000010 2 4 2 2 1\n";
        let line_b = "1600000013 3 9 3 3 2\n";
        // OVERWRITE: replaced verbatim, including the unaligned time
        let mut f = new_file(10, 0, 0);
        import(&mut f, &format!("{line_a}{line_b}"), false).unwrap();
        let h = hdr(&f);
        let b = bucket_at_slot(&f, &h, 1);
        assert_eq!((b.time, b.sum, b.count), (1600000013, 3.0, 2));
        // index 1 > last_bucket 0: last_time is the bucket time
        assert_eq!((h.last_bucket, h.last_time), (1, 1600000010));
        // FILL_EMPTY on a plain file: merged, stamped with the bucket time
        let mut f = new_file(10, 0, 0);
        import(&mut f, &format!("{line_a}{line_b}"), true).unwrap();
        let h = hdr(&f);
        let b = bucket_at_slot(&f, &h, 1);
        assert_eq!(
            (b.time, b.sum, b.sum_sq, b.min, b.max, b.count),
            (1600000010, 5.0, 13.0, 2.0, 3.0, 3)
        );
        assert_eq!(h.cumulative_count, 3);
        // FILL_EMPTY on an aggregate file: count forced to fixed_count after the merge
        let mut f = new_file(10, FLAG_COUNTER_AGGREGATE, 30);
        import(&mut f, &format!("{line_a}{line_b}"), true).unwrap();
        let b = bucket_at_slot(&f, &hdr(&f), 1);
        assert_eq!((b.sum, b.count), (5.0, 30));
        // COLLATED: always replaced
        let mut f = new_file(10, FLAG_COLLATED, 0);
        import(&mut f, &format!("{line_a}{line_b}"), true).unwrap();
        let b = bucket_at_slot(&f, &hdr(&f), 1);
        assert_eq!((b.time, b.sum, b.count), (1600000013, 3.0, 2));
        // TRAILING: applied like a normal file
        let mut f = new_file(10, FLAG_TRAILING, 0);
        import(&mut f, line_a, false).unwrap();
        assert_eq!(bucket_at_slot(&f, &hdr(&f), 1).sum, 2.0);
    }

    #[test]
    fn import_cumulative_uses_f32_getters() {
        let mut f = new_file(10, 0, 0);
        import(&mut f, "1600000000 113.64 1 1 1 1\n", false).unwrap();
        assert_eq!(hdr(&f).cumulative_sum, 113.64f32 as f64);
        assert_eq!(bucket_at_slot(&f, &hdr(&f), 0).sum, 113.64);
    }

    #[test]
    fn import_of_nothing_leaves_the_file_unchanged() {
        let mut f = new_file(10, 0, 0);
        import(&mut f, "1600000000 1 1 1 1 1\n", false).unwrap();
        let before = f.clone();
        let rep = import(&mut f, "", false).unwrap();
        assert_eq!(rep, ImportReport::default());
        assert_eq!(f, before);
        let mut bad = f.clone();
        bad[0] = b'x';
        assert_eq!(
            import(&mut bad, "", false),
            Err(ToolError::Format(FormatError::BadMagic))
        );
    }

    #[test]
    fn round_trip_dump_import_dump() {
        // Values whose 6-digit text is exact, so the CSV round trip is lossless.
        let mut src = new_file(10, 0, 0);
        let mut input = String::new();
        for k in -4..300i64 {
            let v = (k % 17) as f64 * 0.25 - 1.5;
            let c = (k % 3) + 1;
            let _ = writeln!(
                input,
                "{} {} {} {} {} {}",
                1600000000 + 10 * k,
                v * c as f64,
                v * v * c as f64,
                v - 1.0,
                v + 1.0,
                c
            );
        }
        let rep = import(&mut src, &input, false).unwrap();
        assert_eq!(rep.applied, 304);
        let d1 = dump_csv(&src).unwrap();
        assert_eq!(d1.lines().count(), 305);
        let mut dst = new_file(10, 0, 0);
        let rep = import(&mut dst, &d1, false).unwrap();
        assert_eq!((rep.applied, rep.bad_lines), (304, 0));
        assert_eq!(dump_csv(&dst).unwrap(), d1);
        // The bucket pages are identical, and so are the ring fields of the header.
        assert_eq!(src[PAGE_SIZE..], dst[PAGE_SIZE..]);
        let (a, b) = (hdr(&src), hdr(&dst));
        assert_eq!(
            (a.first_bucket, a.last_bucket, a.last_time),
            (b.first_bucket, b.last_bucket, b.last_time)
        );
        // A bad CSV row is reported, not applied
        let rep = import(
            &mut dst,
            "DATE,SUM,SUMSQ,MIN,MAX,COUNT,AVG,SDEV\r\n\"nope\",1,1,1,1,1,1,0\n",
            false,
        )
        .unwrap();
        assert_eq!(
            rep.stderr,
            "Cannot parse CSV line:\n\"nope\",1,1,1,1,1,1,0\n"
        );
    }
}
