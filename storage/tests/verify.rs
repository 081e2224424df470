//! Replica equality (docs/replication-protocol.md, "Replica equality and residual risks")
//! between two stores: `istatd_storage::verify` on small stores written with the storage
//! crate's own writers.

use std::fs;
use std::path::{Path, PathBuf};

use istatd_storage::format::{
    Bucket, CreateParams, Header, FLAG_COLLATED, HEADER_SIZE, OFF_NAME, PAGE_SIZE,
};
use istatd_storage::statfile::{FileState, ImageSlots};
use istatd_storage::verify::{self, compare_images, Finding, Report};

const Z: i64 = 1_600_000_000;

fn params(interval: i32, zero: i64, page_count: i64) -> CreateParams {
    CreateParams {
        interval,
        page_count,
        flags: 0,
        zero_time: zero,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: "store/x/10s".into(),
    }
}

/// A counter file image holding `buckets`, written by the storage crate's replicated
/// put (`put_buckets_overwrite`), header included.
fn file_with(p: &CreateParams, buckets: &[Bucket]) -> Vec<u8> {
    let mut st = FileState::new_created(Header::new_file(p));
    let mut img = vec![0u8; PAGE_SIZE * (p.page_count as usize + 1)];
    let mut slots = ImageSlots {
        image: &mut img,
        page_size: PAGE_SIZE as i64,
    };
    let r = st.put_overwrite(&mut slots, buckets);
    assert_eq!(
        r.written as usize,
        buckets.len(),
        "test buckets all written"
    );
    st.absorb_overlay(&mut slots);
    img[..HEADER_SIZE].copy_from_slice(&st.header.to_bytes());
    img
}

/// Gauge buckets at indices `ixs` of a file with interval `i` and zero time `Z`.
fn gauges(i: i64, ixs: impl IntoIterator<Item = i64>) -> Vec<Bucket> {
    ixs.into_iter()
        .map(|k| Bucket::sample(Z + i * k, k as f64 * 1.5 + 0.25))
        .collect()
}

fn file(buckets: &[Bucket]) -> Vec<u8> {
    file_with(&params(10, Z, 2), buckets)
}

/// Change one header field in place (bytes as `format.rs` lays them out).
fn patch(img: &mut [u8], off: usize, bytes: &[u8]) {
    img[off..off + bytes.len()].copy_from_slice(bytes);
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let d =
            std::env::temp_dir().join(format!("istatd-verify-{tag}-{}-{n}", std::process::id()));
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
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Two stores holding the same files.
fn twin_stores(tag: &str, files: &[(&str, Vec<u8>)]) -> (TempDir, TempDir) {
    let a = TempDir::new(&format!("{tag}-a"));
    let b = TempDir::new(&format!("{tag}-b"));
    for (rel, bytes) in files {
        a.put(rel, bytes);
        b.put(rel, bytes);
    }
    (a, b)
}

fn run_verify(a: &TempDir, b: &TempDir) -> Report {
    verify::verify_stores(a.path(), b.path()).expect("both stores readable")
}

fn sample_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("web/latency/10s", file(&gauges(10, 0..300))),
        (
            "web/latency/5m",
            file_with(&params(300, Z, 2), &gauges(300, [0, 1, 2, 5, 9])),
        ),
        (
            "logins/10s",
            file_with(
                &CreateParams {
                    flags: FLAG_COLLATED,
                    ..params(10, Z, 2)
                },
                &gauges(10, 0..40),
            ),
        ),
    ]
}

#[test]
fn identical_copies_have_no_differences() {
    let (a, b) = twin_stores("same", &sample_files());
    let r = run_verify(&a, &b);
    assert_eq!(r.findings, vec![]);
    assert!(r.is_identical(false) && r.is_identical(true));
    assert_eq!(
        r.summary(),
        "verify: 3 files compared, 0 differing files, 0 differing buckets, 0 missing, 0 extra, 0 errors"
    );
}

#[test]
fn one_changed_bucket_is_exactly_one_difference_with_its_time() {
    let master = gauges(10, 0..300);
    let mut slave = master.clone();
    slave[123].sum += 1.0;
    let a = file(&master);
    let b = file(&slave);
    let d = compare_images(&a, &b).unwrap();
    assert!(d.header.is_empty());
    assert_eq!(d.compared_buckets, 300);
    assert_eq!(d.differing_buckets, 1);
    let first = d.first.unwrap();
    assert_eq!(first.time, Z + 1230);
    assert_eq!(first.master, master[123]);
    assert_eq!(first.slave, Some(slave[123]));

    // A change in a single f32 field (bit level) is a difference too.
    let mut slave2 = master.clone();
    slave2[7].sum_sq = f32::from_bits(slave2[7].sum_sq.to_bits() ^ 1);
    let d = compare_images(&a, &file(&slave2)).unwrap();
    assert_eq!((d.differing_buckets, d.first.unwrap().time), (1, Z + 70));

    // Through the store: one differing file, one differing bucket, and its line.
    let (sa, sb) = twin_stores("one", &sample_files());
    sa.put("web/latency/10s", &a);
    sb.put("web/latency/10s", &b);
    let r = run_verify(&sa, &sb);
    assert_eq!((r.differing_files, r.differing_buckets), (1, 1));
    assert!(!r.is_identical(false));
    assert_eq!(
        r.lines(100),
        vec![format!(
            "differs web/latency/10s: 1 buckets (first at {}: master {} slave {})",
            Z + 1230,
            verify::bucket_summary(&master[123]),
            verify::bucket_summary(&slave[123]),
        )]
    );
    assert_eq!(
        r.summary(),
        "verify: 3 files compared, 1 differing files, 1 differing buckets, 0 missing, 0 extra, 0 errors"
    );
}

#[test]
fn slave_buckets_where_the_master_has_none_are_not_compared() {
    // The master has a gap at index 50; the slave holds a valid bucket there, and also
    // valid buckets older than anything the master has (within both windows).
    let master = gauges(10, (10..300).filter(|&k| k != 50));
    let slave = gauges(10, 0..300);
    let d = compare_images(&file(&master), &file(&slave)).unwrap();
    assert_eq!((d.compared_buckets, d.differing_buckets), (289, 0));
    assert!(d.is_identical());
    // The other way round, the gap is on the slave: one differing bucket, shown missing.
    let d = compare_images(&file(&slave), &file(&master)).unwrap();
    let first = d.first.unwrap();
    assert_eq!(d.differing_buckets, 11);
    assert_eq!((first.time, first.slave), (Z, None));
}

#[test]
fn not_compared_header_fields_and_capacity_do_not_matter() {
    let buckets = gauges(10, 0..300);
    let a = file(&buckets);
    // Bigger ring, other name and unit, other cumulative fields, other first_bucket.
    let mut b = file_with(
        &CreateParams {
            name: "another/name".into(),
            unit: "ms".into(),
            ..params(10, Z, 4)
        },
        &buckets,
    );
    patch(&mut b, 80, &123.5f64.to_le_bytes());
    patch(&mut b, 96, &77i64.to_le_bytes());
    patch(&mut b, 56, &(-3i64).to_le_bytes());
    patch(&mut b, OFF_NAME, b"zzz\0");
    assert_ne!(
        Header::parse_raw(&a).capacity(),
        Header::parse_raw(&b).capacity()
    );
    let d = compare_images(&a, &b).unwrap();
    assert_eq!(
        d,
        verify::FileDiff {
            compared_buckets: 300,
            ..Default::default()
        }
    );
}

#[test]
fn master_buckets_older_than_the_slave_window_are_not_counted() {
    // Master: 4 pages (1024 slots) holding indices 0..800. Slave: 2 pages (512 slots)
    // holding what its ring keeps, indices 288..800.
    let all = gauges(10, 0..800);
    let a = file_with(&params(10, Z, 4), &all);
    let b = file_with(&params(10, Z, 2), &all);
    let bh = Header::parse_raw(&b);
    assert_eq!(bh.last_bucket - bh.capacity() + 1, 288);
    let d = compare_images(&a, &b).unwrap();
    assert_eq!((d.compared_buckets, d.differing_buckets), (512, 0));

    // Inside the slave's window a lost bucket still counts.
    let mut lost = all.clone();
    lost.remove(400);
    let d = compare_images(&a, &file_with(&params(10, Z, 2), &lost)).unwrap();
    assert_eq!((d.differing_buckets, d.first.unwrap().time), (1, Z + 4000));
}

#[test]
fn a_slave_behind_the_master_differs_by_the_buckets_it_lacks() {
    let master = gauges(10, 0..300);
    let slave = gauges(10, 0..290);
    let d = compare_images(&file(&master), &file(&slave)).unwrap();
    assert_eq!(d.differing_buckets, 10);
    assert_eq!(d.first.unwrap().time, Z + 2900);
    // A smaller ring behind the master: its window is taken at the master's newest time.
    let master = gauges(10, 0..800);
    let a = file_with(&params(10, Z, 4), &master);
    let b = file_with(&params(10, Z, 2), &gauges(10, 0..700));
    let d = compare_images(&a, &b).unwrap();
    assert_eq!((d.compared_buckets, d.differing_buckets), (512, 100));
    assert_eq!(d.first.unwrap().time, Z + 7000);
}

#[test]
fn stale_slave_slot_where_the_master_has_a_valid_bucket_differs() {
    // Capacity 512: index 522 shares slot 10 with index 10. The slave's slot 10 still
    // holds index 10's bucket from the previous lap; the master holds index 522.
    let master = gauges(10, [522, 600]);
    let slave = gauges(10, [10, 600]);
    let a = file(&master);
    let b = file(&slave);
    // The slave's slot really holds the old lap's bytes.
    let off = PAGE_SIZE + 10 * 32;
    assert_eq!(Bucket::from_bytes(&b[off..off + 32]), slave[0]);
    let d = compare_images(&a, &b).unwrap();
    assert_eq!(d.differing_buckets, 1);
    let first = d.first.unwrap();
    assert_eq!((first.time, first.slave), (Z + 5220, None));

    let (sa, sb) = twin_stores("stale", &[]);
    sa.put("x/10s", &a);
    sb.put("x/10s", &b);
    let r = run_verify(&sa, &sb);
    assert_eq!(
        r.lines(10),
        vec![format!(
            "differs x/10s: 1 buckets (first at {}: master {} slave missing)",
            Z + 5220,
            verify::bucket_summary(&master[0])
        )]
    );
}

#[test]
fn header_field_differences_are_reported() {
    let buckets = gauges(10, 0..20);
    let a = file(&buckets);
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "cfg_interval",
            file_with(&params(60, Z, 2), &gauges(60, 0..3)),
            "10",
            "60",
        ),
        (
            "file_create_time",
            file_with(&params(10, Z - 100, 2), &gauges(10, 0..20)),
            "1600000000",
            "1599999900",
        ),
        (
            "flags",
            file_with(
                &CreateParams {
                    flags: FLAG_COLLATED,
                    ..params(10, Z, 2)
                },
                &buckets,
            ),
            "0",
            "1",
        ),
        (
            "lambda",
            file_with(
                &CreateParams {
                    lambda: 0.5,
                    ..params(10, Z, 2)
                },
                &buckets,
            ),
            "0",
            "0.5",
        ),
        (
            "season",
            file_with(
                &CreateParams {
                    season: 86400,
                    ..params(10, Z, 2)
                },
                &buckets,
            ),
            "0",
            "86400",
        ),
        (
            "fixed_count",
            file_with(
                &CreateParams {
                    fixed_count: 30,
                    ..params(10, Z, 2)
                },
                &buckets,
            ),
            "0",
            "30",
        ),
    ];
    for (field, b, mv, sv) in cases {
        let d = compare_images(&a, &b).unwrap();
        assert_eq!(d.header.len(), 1, "{field}: {:?}", d.header);
        assert_eq!(
            (
                d.header[0].field,
                d.header[0].master.as_str(),
                d.header[0].slave.as_str()
            ),
            (field, mv, sv)
        );
        assert!(!d.is_identical());
        let (sa, sb) = twin_stores("hdr", &[]);
        sa.put("c/10s", &a);
        sb.put("c/10s", &b);
        let r = run_verify(&sa, &sb);
        assert_eq!(
            r.lines(10),
            vec![format!(
                "differs c/10s: header {field} master {mv} slave {sv}"
            )]
        );
        assert_eq!(r.differing_files, 1);
        assert!(!r.is_identical(false));
    }
    // The same buckets in a file created 100 s earlier still line up in time: only the
    // header differs.
    let b = file_with(&params(10, Z - 100, 2), &buckets);
    let d = compare_images(&a, &b).unwrap();
    assert_eq!((d.header.len(), d.differing_buckets), (1, 0));
}

#[test]
fn missing_and_extra_files() {
    let (a, b) = twin_stores("missing", &sample_files());
    fs::remove_file(b.path().join("web/latency/5m")).unwrap();
    b.put("only/in/slave/10s", &file(&gauges(10, 0..3)));
    let r = run_verify(&a, &b);
    assert_eq!(
        r.findings,
        vec![
            Finding::Extra {
                path: "only/in/slave/10s".into()
            },
            Finding::Missing {
                path: "web/latency/5m".into(),
                buckets: 5
            },
        ]
    );
    assert_eq!(
        r.lines(100),
        vec!["extra only/in/slave/10s", "missing web/latency/5m"]
    );
    assert_eq!(
        r.summary(),
        "verify: 3 files compared, 0 differing files, 5 differing buckets, 1 missing, 1 extra, 0 errors"
    );
    assert!(!r.is_identical(false));

    // An extra file alone is identical, unless strict.
    let (a, b) = twin_stores("extra", &sample_files());
    b.put("only/in/slave/10s", &file(&gauges(10, 0..3)));
    let r = run_verify(&a, &b);
    assert_eq!((r.extra, r.files_compared), (1, 3));
    assert!(r.is_identical(false));
    assert!(!r.is_identical(true));
}

#[test]
fn files_refused_by_validation_are_errors() {
    let (a, b) = twin_stores("bad", &sample_files());
    // Truncated on the slave; bad magic on the master.
    let p = b.path().join("web/latency/10s");
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    let mut m = fs::read(a.path().join("logins/10s")).unwrap();
    m[0] = b'X';
    a.put("logins/10s", &m);
    let r = run_verify(&a, &b);
    assert_eq!(
        r.lines(100),
        vec![
            "error logins/10s: master: not an istat file (bad magic)".to_string(),
            format!(
                "error web/latency/10s: slave: file length {} differs from the header's {}",
                bytes.len() - 100,
                bytes.len()
            ),
        ]
    );
    assert_eq!((r.errors, r.differing_files, r.files_compared), (2, 0, 3));
    assert!(!r.is_identical(false));
}

#[test]
fn dot_names_and_root_files_are_not_part_of_a_store() {
    let (a, b) = twin_stores("dots", &sample_files());
    b.put(".replication_of", b"master:18031\n");
    b.put(".tmp/x/10s", &file(&gauges(10, 0..3)));
    b.put("web/.partial", b"junk");
    a.put("README", b"not a counter");
    let r = run_verify(&a, &b);
    assert_eq!(r.findings, vec![]);
    assert_eq!(r.files_compared, 3);
    assert!(r.is_identical(true));
}

#[test]
fn an_unreadable_store_root_is_an_error_of_the_whole_run() {
    let a = TempDir::new("root");
    let missing = a.path().join("nope");
    let e = verify::verify_stores(a.path(), &missing)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read store") && e.contains("nope"), "{e}");
    assert!(verify::verify_stores(&missing, a.path()).is_err());
}
