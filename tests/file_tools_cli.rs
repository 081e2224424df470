//! The `istatd file ...` command line on golden files: output, stderr, exit codes, and
//! that nothing but `import` writes (docs/file-format.md, "File tools").

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use istatd_storage::format::{Bucket, Header, BUCKET_SIZE, HEADER_SIZE};

fn golden(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .join("shared/golden/basic/files")
        .join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("SKIP: golden file {} not found; test not run", p.display());
        None
    }
}

fn istatd(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_istatd"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run istatd");
    let mut pipe = child.stdin.take().unwrap();
    // The tool may exit before reading its input (an error): a broken pipe is fine.
    let _ = pipe.write_all(stdin.unwrap_or_default());
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let d =
            std::env::temp_dir().join(format!("istatd-cli-{tag}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn copy(&self, src: &Path, name: &str) -> PathBuf {
        let p = self.0.join(name);
        fs::copy(src, &p).unwrap();
        let mut perm = fs::metadata(&p).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        fs::set_permissions(&p, perm).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn dump_and_info() {
    let Some(bin) = golden("logins.10s.bin") else {
        return;
    };
    let o = istatd(&["file", "dump", s(&bin)], None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        text(&o.stdout),
        fs::read_to_string(bin.with_extension("dump")).unwrap()
    );
    assert!(o.stderr.is_empty());

    // Several paths: output in order, exit status = number of failures.
    let missing = bin.with_file_name("no-such-file.bin");
    let o = istatd(&["file", "info", s(&bin), s(&missing), s(&bin)], None);
    assert_eq!(o.status.code(), Some(1));
    let golden_info = fs::read_to_string(bin.with_extension("info")).unwrap();
    let body = &golden_info[golden_info.find('\n').unwrap() + 1..];
    let one = format!("{}:\n{body}", s(&bin));
    assert_eq!(text(&o.stdout), format!("{one}{one}"));
    assert_eq!(
        text(&o.stderr),
        format!("{}: No such file or directory\n", s(&missing))
    );
}

#[test]
fn full_dump() {
    let Some(bin) = golden("web.latency.server1.10s.bin") else {
        return;
    };
    let o = istatd(&["file", "dump", "--full", s(&bin)], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty());
    let out = text(&o.stdout);
    assert!(out.starts_with("# Header: Name=Value\n"));
    let page_count = Header::parse_raw(&fs::read(&bin).unwrap()).page_count as usize;
    // header title, 18 fields, the bucket title, then one row per slot
    assert_eq!(out.lines().count(), 1 + 18 + 1 + page_count * 256);
    assert!(out.contains("\nlast_time=\"2020-09-13T13:09:40Z\"\n"));
    assert!(out.contains(
        "\n 1       0    1600000000      113.64       12914      113.64      113.64       1\n"
    ));
    let forced = istatd(&["file", "dump", "--full", "--force", s(&bin)], None);
    assert_eq!(forced.stdout, o.stdout);

    // --force needs --full; usage errors exit 1 with the reference's usage text
    let o = istatd(&["file", "dump", "--force", s(&bin)], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).starts_with("usage: istatd_filedump [--full [--force]] filename\n"));
}

#[test]
fn truncated_file_is_refused_and_left_alone() {
    let Some(bin) = golden("web.latency.server1.10s.bin") else {
        return;
    };
    let dir = TempDir::new("trunc");
    let p = dir.copy(&bin, "short.bin");
    let mut bytes = fs::read(&p).unwrap();
    bytes.truncate(10000);
    fs::write(&p, &bytes).unwrap();
    let path = s(&p);

    let o = istatd(&["file", "dump", path], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert_eq!(text(&o.stderr), format!("Cannot open: {path}\n"));

    let o = istatd(&["file", "dump", "--full", path], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!("page count 2 is larger than the file.\nCannot open: {path}\n")
    );
    let o = istatd(&["file", "dump", "--full", "--force", path], None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        text(&o.stderr),
        "page count 2 is larger than the file.\nassuming page count of 0\n"
    );
    assert_eq!(text(&o.stdout).lines().count(), 20);

    // info reads only the header
    let o = istatd(&["file", "info", path], None);
    assert_eq!(o.status.code(), Some(0));

    let o = istatd(&["file", "import", path], Some(b"1600000000 1 1 1 1 1\n"));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!(
            "Exception: file length 10000 differs from the header's 24576: {path}; for {path}\n"
        )
    );

    let tiny = dir.0.join("tiny.bin");
    fs::write(&tiny, &bytes[..100]).unwrap();
    let o = istatd(&["file", "info", s(&tiny)], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!("{}: file too short (100 bytes)\n", s(&tiny))
    );
    let o = istatd(&["file", "dump", "--full", s(&tiny)], None);
    assert_eq!(
        text(&o.stderr),
        format!("file size 100 is too short.\nCannot open: {}\n", s(&tiny))
    );

    assert_eq!(fs::read(&p).unwrap(), bytes, "no tool changed the file");
}

/// The golden file with every bucket and the ring/cumulative header fields cleared.
fn emptied(bytes: &[u8]) -> Vec<u8> {
    let mut e = bytes.to_vec();
    let mut h = Header::parse_raw(&e);
    (h.first_bucket, h.last_bucket, h.last_time) = (0, 0, 0);
    (h.cumulative_sum, h.cumulative_sum_sq, h.cumulative_count) = (0.0, 0.0, 0);
    e[..HEADER_SIZE].copy_from_slice(&h.to_bytes());
    let page = h.page_size as usize;
    e[page..].fill(0);
    e
}

#[test]
fn import_round_trips() {
    let Some(bin) = golden("web.latency.server1.10s.bin") else {
        return;
    };
    let original = fs::read(&bin).unwrap();
    let dir = TempDir::new("import");
    let h = Header::parse_raw(&original);

    // Lossless: `time sum sumSq min max count` lines with shortest round-trip numbers.
    // Every bucket of this file holds one sample, so even the cumulative fields match.
    let mut lines = String::new();
    let c = h.capacity();
    for i in h.first_bucket..=h.last_bucket {
        let off = h.page_size as usize + i.rem_euclid(c) as usize * BUCKET_SIZE;
        let b = Bucket::from_bytes(&original[off..off + BUCKET_SIZE]);
        if b.time > 0 {
            lines += &format!(
                "{} {:?} {:?} {:?} {:?} {}\n",
                b.time, b.sum, b.sum_sq, b.min, b.max, b.count
            );
        }
    }
    lines += "not a bucket\n";
    let p = dir.0.join("lines.bin");
    fs::write(&p, emptied(&original)).unwrap();
    let o = istatd(&["file", "import", s(&p)], Some(lines.as_bytes()));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr),
        "Need exactly 6 arguments, but got 3:\nnot a bucket\n"
    );
    assert_eq!(
        fs::read(&p).unwrap(),
        original,
        "import rebuilt the file byte for byte"
    );

    // The CSV of `file dump` (6 significant digits): SUM..COUNT survive the round trip.
    let dump = istatd(&["file", "dump", s(&bin)], None);
    let q = dir.0.join("csv.bin");
    fs::write(&q, emptied(&original)).unwrap();
    let o = istatd(
        &["file", "import", "--stat-file", s(&q)],
        Some(&dump.stdout),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stderr.is_empty());
    let again = istatd(&["file", "dump", s(&q)], None);
    let cols = |out: &[u8]| -> Vec<String> {
        text(out)
            .lines()
            .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(cols(&again.stdout), cols(&dump.stdout));
    assert_eq!(cols(&dump.stdout).len(), 201);

    // --fill-empty merges into non-empty buckets: importing the lines again doubles them.
    let o = istatd(
        &["file", "import", s(&p), "--fill-empty"],
        Some(lines.as_bytes()),
    );
    assert_eq!(o.status.code(), Some(0));
    let bytes = fs::read(&p).unwrap();
    let first = Bucket::from_bytes(&bytes[8192..8192 + BUCKET_SIZE]);
    assert_eq!(
        (first.time, first.count, first.sum),
        (1600000000, 2, 113.64 * 2.0)
    );
    assert_eq!(Header::parse_raw(&bytes).cumulative_count, 400);
}

#[test]
fn an_unknown_daemon_option_is_a_usage_error() {
    // Anything but `file ...` is the daemon's command line (the reference's options).
    let o = istatd(&["--no-such-option"], None);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("Command line error near --no-such-option"),
        "{err}"
    );
    assert!(
        err.contains("--stat-port"),
        "usage lists the options: {err}"
    );
}
