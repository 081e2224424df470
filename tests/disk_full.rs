//! Disk full on the slave (issue 6, fault suite): the slave's store is a small
//! loop-mounted ext4 filesystem, filled up but for a few pages. The slave cannot create
//! most counter files: it stops applying them, says so (log, `replication.status`,
//! `replication.slave.create_errors`), keeps the link, and when space returns it
//! creates them and converges with nothing lost (`istatd verify`: 0 differing buckets).
//!
//! Needs root and a loop device (mkfs.ext4, mount -o loop); skipped with a message
//! where they are not available. Ports 19950-19959.

mod common;

use common::{converge, feed, repl_daemon, samples, tail, temp_dir, verify, LoopFs};

const RET: &str = "10s:1h,5m:1d";

#[test]
fn slave_disk_full_stops_says_so_and_resumes() {
    let md = temp_dir("dfull-m");
    let sd = temp_dir("dfull-s");
    // Mounted where the slave's store goes (the daemon's log stays outside it).
    let fs = match LoopFs::make(&sd.join("fs.img"), &sd.join("store"), 24) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!(
                "SKIPPED slave_disk_full_stops_says_so_and_resumes: no loop filesystem here ({e})"
            );
            return;
        }
    };
    // Leave room for a few files only (each counter file here is 8-12 KiB).
    let keep = 96 * 1024;
    fs.fill(keep);
    assert!(
        fs.avail_bytes() <= 2 * keep,
        "{} bytes free",
        fs.avail_bytes()
    );

    let m = repl_daemon(&md, 19950, RET, &["--replica-port", "19952"]);
    feed(&m, &samples("full", 60, 30));
    // Its log stays outside the full filesystem.
    let s = repl_daemon(&sd, 19955, RET, &["--replica-of", "127.0.0.1:19952"]);
    let slog = sd.join("istatd.log");
    // It stops applying what it cannot create, and says so.
    s.wait_for("create errors on the full disk", 60, |s| {
        s.stat("replication.slave.create_errors") > 0
            && s.stat("replication.slave.create_waiting") > 0
    });
    let status = s.admin("replication.status");
    assert!(status.contains("slave.state=connected\r\n"), "{status}");
    let waiting: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("slave.create_waiting="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(waiting > 0, "{status}");
    let text = std::fs::read_to_string(&slog).unwrap_or_default();
    assert!(
        text.contains("cannot create files") && text.contains("No space left on device"),
        "{}",
        tail(&slog)
    );
    // One line per shard, not one per file.
    assert!(
        text.matches("cannot create files").count() <= 2,
        "{}",
        tail(&slog)
    );
    m.admin("flush");
    s.admin("flush");
    let (same, report) = verify(&m, &s);
    assert!(!same, "the full slave cannot hold everything:\n{report}");

    // Space returns: the slave creates the files and converges, nothing lost.
    fs.unfill();
    feed(&m, &samples("full", 60, 1));
    let report = converge(&m, &s, 90);
    assert!(
        report.contains(" 0 differing buckets, 0 missing"),
        "{report}"
    );
    assert_eq!(s.stat("replication.slave.create_waiting"), 0);
    let text = std::fs::read_to_string(&slog).unwrap_or_default();
    assert!(
        text.contains("files can be created again"),
        "{}",
        tail(&slog)
    );
    drop(s);
    drop(m);
    drop(fs);
}
