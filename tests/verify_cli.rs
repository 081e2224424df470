//! `istatd verify [--strict] [--max-report N] STORE_A STORE_B` as a command: report
//! lines, the summary line and the exit codes (0 identical, 1 different, 2 usage error or
//! unreadable store).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use istatd_storage::format::{Bucket, CreateParams, Header, HEADER_SIZE, PAGE_SIZE};
use istatd_storage::statfile::{FileState, ImageSlots};

const Z: i64 = 1_600_000_000;

/// A 10 s counter file (512 slots) holding one gauge bucket per index in `ixs`, valued
/// `k + offset`.
fn counter_file(ixs: std::ops::Range<i64>, offset: f64) -> Vec<u8> {
    let p = CreateParams {
        interval: 10,
        page_count: 2,
        flags: 0,
        zero_time: Z,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: "c".into(),
    };
    let buckets: Vec<Bucket> = ixs
        .map(|k| Bucket::sample(Z + 10 * k, k as f64 + offset))
        .collect();
    let mut st = FileState::new_created(Header::new_file(&p));
    let mut img = vec![0u8; PAGE_SIZE * 3];
    let mut slots = ImageSlots {
        image: &mut img,
        page_size: PAGE_SIZE as i64,
    };
    st.put_overwrite(&mut slots, &buckets);
    st.absorb_overlay(&mut slots);
    img[..HEADER_SIZE].copy_from_slice(&st.header.to_bytes());
    img
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!(
            "istatd-verify-cli-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn put(&self, rel: &str, bytes: &[u8]) {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A master store with three counter files and an identical slave store.
fn stores(tag: &str) -> (TempDir, TempDir) {
    let a = TempDir::new(&format!("{tag}-a"));
    let b = TempDir::new(&format!("{tag}-b"));
    for (rel, f) in [
        ("web/latency/10s", counter_file(0..300, 0.5)),
        ("web/errors/10s", counter_file(0..40, 2.0)),
        ("logins/10s", counter_file(100..200, 0.0)),
    ] {
        a.put(rel, &f);
        b.put(rel, &f);
    }
    (a, b)
}

fn istatd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_istatd"))
        .args(args)
        .output()
        .expect("run istatd")
}

fn stdout(o: &Output) -> &str {
    std::str::from_utf8(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> &str {
    std::str::from_utf8(&o.stderr).unwrap()
}

#[test]
fn identical_stores_exit_0_with_the_summary_line() {
    let (a, b) = stores("same");
    let o = istatd(&["verify", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "verify: 3 files compared, 0 differing files, 0 differing buckets, 0 missing, 0 extra, 0 errors\n"
    );
    let o = istatd(&["verify", "--strict", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn a_differing_bucket_exits_1_and_names_the_file_and_time() {
    let (a, b) = stores("bucket");
    let mut f = counter_file(0..300, 0.5);
    // Index 42's sum, as the slave holds it.
    let off = PAGE_SIZE + 42 * 32 + 8;
    f[off..off + 8].copy_from_slice(&100.0f64.to_le_bytes());
    b.put("web/latency/10s", &f);
    let o = istatd(&["verify", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with(&format!(
            "differs web/latency/10s: 1 buckets (first at {}: master [sum=42.5 ",
            Z + 420
        )),
        "{out}"
    );
    assert!(lines[0].contains(" slave [sum=100 "), "{out}");
    assert_eq!(
        lines[1],
        "verify: 3 files compared, 1 differing files, 1 differing buckets, 0 missing, 0 extra, 0 errors"
    );
}

#[test]
fn a_header_difference_exits_1() {
    let (a, b) = stores("header");
    let mut f = counter_file(0..40, 2.0);
    f[112..120].copy_from_slice(&(Z - 10).to_le_bytes());
    b.put("web/errors/10s", &f);
    let o = istatd(&["verify", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o).lines().next(),
        Some(
            format!(
                "differs web/errors/10s: header file_create_time master {Z} slave {}",
                Z - 10
            )
            .as_str()
        )
    );
}

#[test]
fn missing_files_exit_1_and_extra_files_only_with_strict() {
    let (a, b) = stores("missing");
    fs::remove_file(b.path().join("logins/10s")).unwrap();
    let o = istatd(&["verify", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "missing logins/10s\n\
         verify: 3 files compared, 0 differing files, 100 differing buckets, 1 missing, 0 extra, 0 errors\n"
    );

    let (a, b) = stores("extra");
    b.put("new/counter/10s", &counter_file(0..5, 0.0));
    b.put(".replication_of", b"127.0.0.1:18031\n");
    let o = istatd(&["verify", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "extra new/counter/10s\n\
         verify: 3 files compared, 0 differing files, 0 differing buckets, 0 missing, 1 extra, 0 errors\n"
    );
    let o = istatd(&["verify", "--strict", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn a_bad_file_is_an_error_and_exits_1() {
    let (a, b) = stores("bad");
    b.put("web/errors/10s", b"not a counter file");
    let o = istatd(&["verify", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "error web/errors/10s: slave: file too short (18 bytes)\n\
         verify: 3 files compared, 0 differing files, 0 differing buckets, 0 missing, 0 extra, 1 errors\n"
    );
}

#[test]
fn max_report_caps_the_lines() {
    let (a, b) = stores("cap");
    for rel in ["web/latency/10s", "web/errors/10s", "logins/10s"] {
        fs::remove_file(b.path().join(rel)).unwrap();
    }
    let o = istatd(&["verify", "--max-report", "1", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "missing logins/10s\n\
         ... and 2 more\n\
         verify: 3 files compared, 0 differing files, 440 differing buckets, 3 missing, 0 extra, 0 errors\n"
    );
    let o = istatd(&["verify", "--max-report", "0", a.arg(), b.arg()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).starts_with("... and 3 more\nverify: "));
}

#[test]
fn usage_errors_and_unreadable_stores_exit_2() {
    let (a, _b) = stores("usage");
    for args in [
        vec!["verify"],
        vec!["verify", a.arg()],
        vec!["verify", a.arg(), a.arg(), a.arg()],
        vec!["verify", "--bogus", a.arg(), a.arg()],
        vec!["verify", "--max-report", "x", a.arg(), a.arg()],
    ] {
        let o = istatd(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!stderr(&o).is_empty(), "{args:?}");
        assert_eq!(stdout(&o), "", "{args:?}");
    }
    let nowhere = a.path().join("does-not-exist");
    let o = istatd(&["verify", a.arg(), nowhere.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read store") && stderr(&o).contains("does-not-exist"),
        "{}",
        stderr(&o)
    );
    let o = istatd(&["verify", nowhere.to_str().unwrap(), a.arg()]);
    assert_eq!(o.status.code(), Some(2));
    // A file where a store directory is expected.
    let file = a.path().join("web/latency/10s");
    let o = istatd(&["verify", file.to_str().unwrap(), a.arg()]);
    assert_eq!(o.status.code(), Some(2));
    // The same store against itself is identical.
    let o = istatd(&["verify", a.arg(), a.arg()]);
    assert_eq!(o.status.code(), Some(0));
    // Help is not an error.
    let o = istatd(&["verify", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("--max-report"));
}
