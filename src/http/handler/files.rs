//! Static files (docs/interfaces.md §3.10): `GET /`, `/files/...`, `?f=` and the favicon,
//! read from `--files-dir` on the blocking pool, with the reference's cache headers.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::http::response::{http_date, Response, JSON};
use crate::http::HttpConfig;

/// Static files larger than this are refused with 500.
pub const MAX_STATIC_FILE: u64 = 1024 * 1024;

/// `istat::static_file_type`: the first of these substrings found anywhere in the name.
pub fn static_file_type(name: &[u8]) -> &'static str {
    const TYPES: [(&[u8], &str); 8] = [
        (b".htm", "text/html; charset=utf-8"),
        (b".css", "text/css; charset=utf-8"),
        (b".js", "application/javascript; charset=utf-8"),
        (b".jpg", "image/jpeg"),
        (b".png", "image/png"),
        (b".gif", "image/gif"),
        (b".xml", "text/xml; charset=utf-8"),
        (b".ico", "image/x-icon"),
    ];
    for (pat, ty) in TYPES {
        if name.windows(pat.len()).any(|w| w == pat) {
            return ty;
        }
    }
    "application/octet-stream"
}

enum FileRead {
    /// stat failed, or not a regular file.
    Missing,
    /// Could not be opened / read (mtime, size).
    Unreadable(i64, u64),
    TooLarge(i64, u64),
    Ok(i64, u64, Vec<u8>),
}

fn read_static(path: PathBuf) -> FileRead {
    use std::io::Read;
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        // Port: a directory (e.g. `..`) is not served.
        _ => return FileRead::Missing,
    };
    let (mtime, size) = (meta.mtime(), meta.size());
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) => return FileRead::Unreadable(mtime, size),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(size);
    if len > MAX_STATIC_FILE {
        return FileRead::TooLarge(mtime, size);
    }
    let mut data = Vec::with_capacity(len as usize);
    match (&mut f).take(MAX_STATIC_FILE + 1).read_to_end(&mut data) {
        Ok(_) if data.len() as u64 > MAX_STATIC_FILE => FileRead::TooLarge(mtime, size),
        Ok(_) => FileRead::Ok(mtime, size, data),
        Err(_) => FileRead::Unreadable(mtime, size),
    }
}

fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `RequestInFlight::serveFile`: `/` in the name becomes `.` (so no directory is ever
/// named), the file is read from the files directory.
pub(super) async fn serve_file(cfg: &HttpConfig, name: &[u8]) -> Response {
    let x: Vec<u8> = name
        .iter()
        .map(|&c| if c == b'/' { b'.' } else { c })
        .collect();
    let ctype = static_file_type(name);
    let path = cfg.files_dir.join(OsStr::from_bytes(&x));
    let read = if x.is_empty() || x.contains(&0) {
        FileRead::Missing
    } else {
        glommio::executor()
            .spawn_blocking(move || read_static(path))
            .await
    };
    let (mtime, size) = match &read {
        FileRead::Missing => return Response::new(404, JSON, Vec::new()),
        FileRead::Unreadable(m, s) | FileRead::TooLarge(m, s) | FileRead::Ok(m, s, _) => (*m, *s),
    };
    let now = real_now();
    let mut extra = BTreeMap::new();
    extra.insert("Etag", format!("{mtime}_{size}"));
    extra.insert("Date", http_date(now));
    extra.insert("Modified", http_date(mtime));
    let (expires, cache_all) = if mtime >= now - 3600 {
        (now, false)
    } else if mtime >= now - 24 * 3600 {
        (now + 60, false)
    } else {
        (now + 3600, true)
    };
    if cache_all || x.ends_with(b".png") || x.ends_with(b".min.js") {
        extra.insert("Cache-Control", "public; max-age=3600".to_string());
        extra.insert("Expires", http_date(expires));
    }
    let mut resp = match read {
        FileRead::Ok(_, _, data) => Response::new(200, ctype, data),
        FileRead::TooLarge(..) => Response::new(500, JSON, Vec::new()),
        _ => Response::new(404, JSON, Vec::new()),
    };
    resp.extra = extra;
    resp
}
