//! The master's Discover window: Discovers that the slave has not yet answered with a
//! Request are bounded per connection; the rest wait in the owed FIFO.

use istatd_replication::master::{
    FileKey, MasterConfig, MasterFiles, Visit, DISCOVER_WINDOW_STALL_SECS,
};
use istatd_replication::pdu::Pdu;
use istatd_storage::format::{CreateParams, Header};

const C: u64 = 1;
const WINDOW: u32 = 3;

fn header() -> Header {
    Header::new_file(&CreateParams {
        interval: 10,
        page_count: 2,
        flags: 0,
        zero_time: 0,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: "x".into(),
    })
}

fn name(slot: u32) -> String {
    format!("c{slot}/10s")
}

fn key(slot: u32) -> FileKey {
    (slot, 1)
}

fn master() -> MasterFiles {
    let mut m = MasterFiles::new(MasterConfig {
        discover_window: WINDOW,
        ..MasterConfig::default()
    });
    m.open(C);
    m
}

/// A flush visit of file `slot`, with an empty send queue; the Discovers sent now.
fn visit(m: &mut MasterFiles, slot: u32) -> usize {
    let h = header();
    let n = name(slot);
    let out: Vec<(u64, Pdu)> = m.visit(
        Visit {
            file: key(slot),
            name: Some(&n),
            header: &h,
            flushed_last: 1000,
            dirty_low: i64::MAX,
        },
        0,
        &|_| 0,
    );
    out.len()
}

fn request(m: &mut MasterFiles, slot: u32) {
    m.request(C, name(slot).as_bytes(), 0, 10, Some((key(slot), 10, 1000)));
}

/// Owed Discovers the window lets go now, in order.
fn drain_owed(m: &mut MasterFiles) -> Vec<u32> {
    let mut out = Vec::new();
    while m.has_owed(C) {
        match m.next_owed(C) {
            Some((slot, _)) => out.push(slot),
            None => break,
        }
    }
    out
}

#[test]
fn discovers_beyond_the_window_are_owed() {
    let mut m = master();
    let sent: usize = (1..=5).map(|s| visit(&mut m, s)).sum();
    assert_eq!(sent, WINDOW as usize, "only a window's worth goes at once");
    assert_eq!(m.counters.discover_deferred, 2);
    assert_eq!(m.discovers_unanswered(), u64::from(WINDOW));
    assert!(!m.has_owed(C), "the window is full: nothing owed may go");
    assert_eq!(m.next_owed(C), None);
}

#[test]
fn a_first_request_for_an_announced_file_opens_one_place() {
    let mut m = master();
    for s in 1..=5 {
        visit(&mut m, s);
    }
    request(&mut m, 1);
    assert_eq!(m.discovers_unanswered(), 2);
    assert_eq!(drain_owed(&mut m), vec![4], "one place, one owed Discover");
    // A second Request for the same file (the slave's next one) opens nothing more.
    request(&mut m, 1);
    assert!(drain_owed(&mut m).is_empty());
    request(&mut m, 2);
    request(&mut m, 3);
    assert_eq!(drain_owed(&mut m), vec![5]);
    assert_eq!(
        m.discovers_unanswered(),
        2,
        "files 4 and 5 wait for Requests"
    );
}

#[test]
fn a_deleted_file_leaves_the_window() {
    let mut m = master();
    for s in 1..=4 {
        visit(&mut m, s);
    }
    m.deleted(key(2), name(2).as_bytes());
    assert_eq!(m.discovers_unanswered(), 2);
    assert_eq!(drain_owed(&mut m), vec![4]);
}

#[test]
fn a_file_requested_before_its_discover_does_not_take_a_place() {
    let mut m = master();
    // The slave's retry asks for file 1 before the master announced it.
    request(&mut m, 1);
    assert_eq!(visit(&mut m, 1), 1);
    assert_eq!(m.discovers_unanswered(), 0);
    let sent: usize = (2..=5).map(|s| visit(&mut m, s)).sum();
    assert_eq!(sent, WINDOW as usize);
}

#[test]
fn a_window_full_without_requests_reopens_after_the_stall_time() {
    let mut m = master();
    for s in 1..=5 {
        visit(&mut m, s);
    }
    m.reopen_stalled_windows(100);
    m.reopen_stalled_windows(100 + DISCOVER_WINDOW_STALL_SECS - 1);
    assert!(!m.has_owed(C), "not stalled long enough yet");
    // A Request meanwhile restarts the clock.
    request(&mut m, 1);
    assert_eq!(drain_owed(&mut m), vec![4]);
    m.reopen_stalled_windows(200);
    m.reopen_stalled_windows(200 + DISCOVER_WINDOW_STALL_SECS - 1);
    assert!(!m.has_owed(C));
    m.reopen_stalled_windows(200 + DISCOVER_WINDOW_STALL_SECS);
    assert_eq!(m.counters.discover_window_reopened, 1);
    assert_eq!(drain_owed(&mut m), vec![5]);
}

#[test]
fn an_empty_owed_fifo_never_counts_as_a_stall() {
    let mut m = master();
    for s in 1..=3 {
        visit(&mut m, s);
    }
    m.reopen_stalled_windows(100);
    m.reopen_stalled_windows(100 + 10 * DISCOVER_WINDOW_STALL_SECS);
    assert_eq!(m.counters.discover_window_reopened, 0);
    assert_eq!(m.discovers_unanswered(), u64::from(WINDOW));
}
