//! The master's per-file state machine against a fake store (docs/replication-protocol.md,
//! "State machines", "Master: discovery and answering", "Flow control"; U-MA-* of its
//! "Test plan").

use std::collections::BTreeMap;

use istatd_replication::master::{FileKey, MState, MasterConfig, MasterFiles, Visit, INF};
use istatd_replication::pdu::Pdu;
use istatd_storage::format::{Bucket, CreateParams, Header};

const NONE: i64 = i64::MAX;
const C: u64 = 1;
const IV: i64 = 10;
const SLOT: u32 = 1;
const KEY: FileKey = (SLOT, 1);
const NAME: &str = "a/b/10s";

/// One file of the fake store: bucket slots by the time they should hold; a slot whose
/// stored time differs is stale.
#[derive(Default, Clone)]
struct FakeFile {
    slots: BTreeMap<i64, Bucket>,
}

impl FakeFile {
    fn with_range(from: i64, to: i64) -> FakeFile {
        let mut f = FakeFile::default();
        f.fill(from, to);
        f
    }

    fn fill(&mut self, from: i64, to: i64) {
        let mut t = from;
        while t <= to {
            self.put(t, t as f64);
            t += IV;
        }
    }

    fn put(&mut self, t: i64, v: f64) {
        self.slots.insert(t, Bucket::sample(t, v));
    }

    /// `read_valid_buckets`: valid buckets from start to end inclusive, ascending, at
    /// most `max` kept and `max_slots` slots scanned; also the time just past the last
    /// slot scanned.
    fn read(&self, start: i64, end: i64, max: usize, max_slots: usize) -> (Vec<Bucket>, i64) {
        let mut t = start.div_euclid(IV) * IV;
        if t < start {
            t += IV;
        }
        let mut out = Vec::new();
        let mut scanned = 0;
        while t <= end && out.len() < max && scanned < max_slots {
            if let Some(b) = self.slots.get(&t) {
                if b.time == t && b.time != 0 {
                    out.push(*b);
                }
            }
            scanned += 1;
            t += IV;
        }
        (out, t)
    }
}

fn header(path: &str) -> Header {
    let mut h = Header::new_file(&CreateParams {
        interval: IV as i32,
        page_count: 2,
        flags: 0,
        zero_time: 0,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: path.into(),
    });
    h.last_bucket = 100;
    h.last_time = 1000;
    h
}

struct Rig {
    m: MasterFiles,
    file: FakeFile,
    h: Header,
    flushed_last: i64,
    queue: usize,
    /// Reads done (start, end, max).
    reads: Vec<(i64, i64, usize)>,
}

impl Rig {
    fn new(file: FakeFile) -> Rig {
        Rig::with_cfg(file, MasterConfig::default())
    }

    fn with_cfg(file: FakeFile, cfg: MasterConfig) -> Rig {
        let mut m = MasterFiles::new(cfg);
        m.open(C);
        Rig {
            m,
            file,
            h: header("/var/store/a/b/10s"),
            flushed_last: 0,
            queue: 0,
            reads: Vec::new(),
        }
    }

    fn visit(&mut self, flushed_last: i64, dirty_low: i64, now: i64) -> Vec<(u64, Pdu)> {
        self.flushed_last = flushed_last;
        let q = self.queue;
        self.m.visit(
            Visit {
                file: KEY,
                name: Some(NAME),
                header: &self.h,
                flushed_last,
                dirty_low,
            },
            now,
            &|_| q,
        )
    }

    fn request(&mut self, from: i64, n: i64) {
        let newest = self.flushed_last;
        self.m
            .request(C, NAME.as_bytes(), from, n, Some((KEY, IV as u32, newest)));
    }

    /// Take the next ready entry, read it from the fake store, finish it.
    fn answer(&mut self, now: i64) -> Option<Pdu> {
        let job = self.m.next_read(C)?;
        assert_eq!(job.file, KEY);
        self.reads.push((job.start, job.end, job.max));
        let r = self.file.read(job.start, job.end, job.max, 2048);
        self.m.read_done(&job, IV as u32, Ok(r), now).map(data)
    }

    fn state(&self) -> (MState, u32, u32) {
        self.m.entry_state(C, SLOT).expect("an entry")
    }
}

/// The Data a driver sends for an answer's buckets.
fn data(buckets: Vec<Bucket>) -> Pdu {
    Pdu::Data {
        buckets,
        name: NAME.as_bytes().to_vec(),
    }
}

fn times(p: &Pdu) -> Vec<i64> {
    match p {
        Pdu::Data { buckets, name } => {
            assert_eq!(name, NAME.as_bytes());
            buckets.iter().map(|b| b.time).collect()
        }
        other => panic!("not a Data: {other:?}"),
    }
}

fn range(from: i64, to: i64) -> Vec<i64> {
    (from..=to).step_by(IV as usize).collect()
}

// ----- answering ----------------------------------------------------------------------

#[test]
fn u_ma_01_basic_answer() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(500, 10);
    assert_eq!(r.state().0, MState::Ready);
    let d = r.answer(0).expect("a Data");
    assert_eq!(times(&d), range(500, 590));
    if let Pdu::Data { buckets, .. } = &d {
        assert_eq!(buckets[0], Bucket::sample(500, 500.0));
    }
    assert_eq!(r.reads, vec![(500, 1000, 10)]);
    assert_eq!(r.state(), (MState::Answered, 600, INF));
    assert_eq!(r.m.counters.data_sent, 1);
    assert_eq!(r.m.counters.buckets_sent, 10);
    assert_eq!(r.m.counters.resent_buckets, 0);
    // Answered: nothing more until the next Request.
    assert!(r.m.next_read(C).is_none());
    // The follow-up continues.
    r.request(600, 10);
    assert_eq!(times(&r.answer(0).unwrap()), range(600, 690));
}

#[test]
fn u_ma_02_n_clamped_to_chunk() {
    let mut r = Rig::new(FakeFile::with_range(100, 100_000));
    r.visit(100_000, NONE, 0);
    r.request(100, 5000);
    let d = r.answer(0).unwrap();
    assert_eq!(r.reads[0].2, 256);
    assert_eq!(times(&d).len(), 256);

    let cfg = MasterConfig {
        chunk_buckets: 7,
        ..MasterConfig::default()
    };
    let mut r = Rig::with_cfg(FakeFile::with_range(100, 1000), cfg);
    r.visit(1000, NONE, 0);
    r.request(100, 2048);
    assert_eq!(times(&r.answer(0).unwrap()), range(100, 160));
}

#[test]
fn u_ma_03_stale_slots_left_out() {
    let mut f = FakeFile::with_range(100, 300);
    // Stale: the slot for 200 holds an older lap's bucket; 210 is zeroed.
    f.slots.insert(200, Bucket::sample(200 - 5120, 1.0));
    f.slots.insert(210, Bucket::EMPTY);
    let mut r = Rig::new(f);
    r.visit(300, NONE, 0);
    r.request(150, 100);
    let got = times(&r.answer(0).unwrap());
    let mut want = range(150, 300);
    want.retain(|&t| t != 200 && t != 210);
    assert_eq!(got, want);
}

#[test]
fn u_ma_03_gap_wider_than_the_scan() {
    let mut f = FakeFile::with_range(10, 1000);
    f.fill(50_000, 51_000);
    let mut r = Rig::new(f);
    r.visit(51_000, NONE, 0);
    r.request(1010, 256);
    // 2,048 empty slots from 1010: nothing sent, F moved past them, still ready.
    assert_eq!(r.answer(0), None);
    let past = 1010 + 2048 * IV;
    assert_eq!(r.state(), (MState::Ready, past as u32, INF));
    assert_eq!(r.m.counters.data_sent, 0);
    assert!(r.m.has_ready(C));
    assert_eq!(r.answer(0), None);
    assert_eq!(r.state(), (MState::Ready, (past + 2048 * IV) as u32, INF));
    // The third scan reaches the data.
    let d = r.answer(0).expect("data after the gap");
    assert_eq!(times(&d), range(50_000, 51_000));
    assert_eq!(r.reads.len(), 3);
    assert_eq!(r.reads[1].0, past);
}

#[test]
fn u_ma_03_all_gap_to_the_end_parks() {
    let mut r = Rig::new(FakeFile::with_range(10, 1000));
    r.visit(5000, NONE, 0);
    r.request(1010, 256);
    assert_eq!(
        r.answer(0),
        None,
        "never a Data with n = 0 for an existing file"
    );
    assert_eq!(r.state(), (MState::Parked, 5010, INF));
    assert!(r.m.next_read(C).is_none());
    assert_eq!(r.m.counters.data_sent, 0);
    // The same flushed_last again: still parked; F never moves backwards.
    r.visit(5000, NONE, 0);
    assert_eq!(r.state(), (MState::Parked, 5010, INF));
    // New data flushed: ready, answered from F.
    r.file.fill(5010, 5100);
    r.visit(5100, 5010, 0);
    assert_eq!(r.state().0, MState::Ready);
    assert_eq!(times(&r.answer(0).unwrap()), range(5010, 5100));
}

#[test]
fn u_ma_04_alignment() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(505, 3);
    let d = r.answer(0).unwrap();
    assert_eq!(r.reads[0].0, 500);
    assert_eq!(times(&d), vec![500, 510, 520]);
}

#[test]
fn u_ma_05_parking() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(2000, 10);
    assert_eq!(r.state(), (MState::Parked, 2000, INF));
    assert!(r.m.next_read(C).is_none());
    assert!(!r.m.has_ready(C));
    // A visit with nothing new: parked.
    r.visit(1000, NONE, 0);
    assert_eq!(r.state().0, MState::Parked);
    assert!(r.m.next_read(C).is_none());
    // Newer flushed data reaches F: ready, answered from F. (Writes below F would
    // count as late writes, step 2 of a flush visit, so the new data starts at F.)
    r.file.fill(2000, 2100);
    r.visit(2100, 2000, 0);
    assert_eq!(r.state().0, MState::Ready);
    let d = r.answer(0).unwrap();
    assert_eq!(r.reads[0], (2000, 2100, 10));
    assert_eq!(times(&d), range(2000, 2090));
}

#[test]
fn u_ma_06_unflushed_data_not_sent() {
    let mut r = Rig::new(FakeFile::with_range(100, 1500));
    r.visit(1000, NONE, 0);
    r.request(900, 256);
    let d = r.answer(0).unwrap();
    assert_eq!(times(&d), range(900, 1000));
    assert_eq!(r.state(), (MState::Answered, 1010, INF));
    r.request(1010, 256);
    assert_eq!(r.state().0, MState::Parked);
    r.visit(1500, 1010, 0);
    assert_eq!(times(&r.answer(0).unwrap()), range(1010, 1500));
}

#[test]
fn u_ma_07_late_update_after_an_answer() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(500, 10);
    assert_eq!(times(&r.answer(0).unwrap()), range(500, 590));
    // Writes to E (590, a partial bucket) and to E - 50, then a flush visit.
    r.file.put(590, 7777.0);
    r.file.put(540, 5555.0);
    r.visit(1000, 540, 0);
    assert_eq!(r.state(), (MState::Answered, 600, 540));
    // The slave's follow-up (same F) makes it ready; the answer starts at E - 50.
    r.request(600, 10);
    assert_eq!(r.state().0, MState::Ready);
    let d = r.answer(0).unwrap();
    assert_eq!(times(&d), range(540, 630));
    if let Pdu::Data { buckets, .. } = &d {
        assert_eq!(buckets[0].sum, 5555.0);
        assert_eq!(buckets[5].time, 590);
        assert_eq!(buckets[5].sum, 7777.0);
    }
    assert_eq!(r.m.counters.resent_buckets, 6);
    assert_eq!(r.state(), (MState::Answered, 640, INF));
}

#[test]
fn u_ma_08_resend_cut() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(500, 10);
    r.answer(0).unwrap();
    // A write far below F: the resend range (100..600) is longer than N.
    r.visit(1000, 100, 0);
    r.request(600, 10);
    assert_eq!(times(&r.answer(0).unwrap()), range(100, 190));
    assert_eq!(
        r.state(),
        (MState::Answered, 600, 200),
        "resend_from = E + interval"
    );
    r.request(600, 10);
    assert_eq!(times(&r.answer(0).unwrap()), range(200, 290));
    assert_eq!(r.state(), (MState::Answered, 600, 300));
    for _ in 0..30 {
        r.request(600, 10);
        if r.state().2 == INF {
            break;
        }
        r.answer(0).unwrap();
    }
    // Once the resend range is done, the answers continue from F.
    let (st, f, rf) = r.state();
    assert_eq!(rf, INF);
    assert_eq!(f, 600);
    assert_eq!(st, MState::Ready);
    assert_eq!(times(&r.answer(0).unwrap()), range(600, 690));
}

// ----- unknown and deleted files, replacing Requests -----------------------------------

#[test]
fn u_ma_09_unknown_file() {
    let mut m = MasterFiles::new(MasterConfig::default());
    m.open(C);
    m.request(C, b"no/such/10s", 0, 256, None);
    assert_eq!(m.counters.requests_unknown_file, 1);
    assert_eq!(m.gone_len(C), 1);
    assert_eq!(
        m.next_gone(C),
        Some((
            Pdu::Data {
                buckets: vec![],
                name: b"no/such/10s".to_vec()
            },
            true
        )),
        "an unknown file's answer answers a Request still in flight"
    );
    assert_eq!(m.next_gone(C), None);
    assert!(m.next_read(C).is_none());
}

#[test]
fn u_ma_09_deleted_parked_entry_is_answered_gone() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(5000, 10);
    assert_eq!(r.state().0, MState::Parked);
    r.m.deleted(KEY, NAME.as_bytes());
    assert_eq!(r.m.entry_state(C, SLOT), None);
    assert_eq!(
        r.m.next_gone(C),
        Some((
            Pdu::Data {
                buckets: vec![],
                name: NAME.as_bytes().to_vec()
            },
            false
        )),
        "a parked Request was already counted answered"
    );
    assert_eq!(r.m.next_gone(C), None);
    assert_eq!(r.m.late_marks(), 0);
}

#[test]
fn u_ma_09_deleted_while_reading() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(100, 10);
    let job = r.m.next_read(C).unwrap();
    r.m.deleted(KEY, NAME.as_bytes());
    assert_eq!(r.m.next_gone(C).map(|(p, _)| times(&p)), Some(vec![]));
    let res = r.file.read(job.start, job.end, job.max, 2048);
    assert_eq!(
        r.m.read_done(&job, IV as u32, Ok(res), 0).map(data),
        None,
        "a stale read is discarded"
    );
}

#[test]
fn u_ma_09_answered_entry_owes_nothing_on_delete() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(100, 10);
    r.answer(0).unwrap();
    r.m.deleted(KEY, NAME.as_bytes());
    assert_eq!(r.m.next_gone(C), None);
}

#[test]
fn u_ma_09_slot_reused_before_the_item_is_popped() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(100, 10);
    assert_eq!(r.state().0, MState::Ready);
    r.m.deleted(KEY, NAME.as_bytes());
    // Slot 1 is reused by file g.
    let hg = header("/var/store/g/h/10s");
    let out = r.m.visit(
        Visit {
            file: (SLOT, 2),
            name: Some("g/h/10s"),
            header: &hg,
            flushed_last: 1000,
            dirty_low: 100,
        },
        0,
        &|_| 0,
    );
    assert_eq!(out.len(), 1, "g is announced");
    assert!(
        r.m.next_read(C).is_none(),
        "no read, no Data named g without a Request"
    );
    assert_eq!(r.m.entry_state(C, SLOT), None);
    // The old entry's gone answer is for the old name.
    assert_eq!(
        r.m.next_gone(C),
        Some((
            Pdu::Data {
                buckets: vec![],
                name: NAME.as_bytes().to_vec()
            },
            false
        ))
    );
    // A Request for g works normally.
    r.m.request(C, b"g/h/10s", 100, 5, Some(((SLOT, 2), 10, 1000)));
    let job = r.m.next_read(C).unwrap();
    assert_eq!(job.file, (SLOT, 2));
}

#[test]
fn u_ma_10_replace() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(5000, 10);
    assert_eq!(r.m.counters.requests_replaced, 0);
    r.request(6000, 20);
    assert_eq!(r.m.counters.requests_replaced, 1);
    assert_eq!(r.state(), (MState::Parked, 6000, INF));
    // Replacing a ready entry counts too, and the new F is used.
    r.request(300, 5);
    assert_eq!(r.m.counters.requests_replaced, 2);
    assert_eq!(r.state().0, MState::Ready);
    assert_eq!(times(&r.answer(0).unwrap()), range(300, 340));
    // The Request after an answer is the normal follow-up, not a replacement.
    r.request(350, 5);
    assert_eq!(r.m.counters.requests_replaced, 2);
    assert_eq!(r.m.counters.requests, 4);
}

#[test]
fn u_ma_10_replace_while_reading() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(100, 10);
    let job = r.m.next_read(C).unwrap();
    r.request(700, 3);
    assert_eq!(r.m.counters.requests_replaced, 1);
    let res = r.file.read(job.start, job.end, job.max, 2048);
    assert_eq!(
        r.m.read_done(&job, IV as u32, Ok(res), 0).map(data),
        None,
        "the old read is discarded"
    );
    assert_eq!(r.state().0, MState::Ready);
    assert_eq!(times(&r.answer(0).unwrap()), vec![700, 710, 720]);
}

// ----- Discover -----------------------------------------------------------------------

fn discover_bytes(p: &Pdu) -> [u8; 464] {
    match p {
        Pdu::Discover(b) => **b,
        other => panic!("not a Discover: {other:?}"),
    }
}

#[test]
fn u_ma_12_discover_once_per_connection() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    let out = r.visit(1000, NONE, 0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, C);
    let b = discover_bytes(&out[0].1);
    let mut want = r.h.to_bytes();
    want[184..440].fill(0);
    want[184..184 + NAME.len()].copy_from_slice(NAME.as_bytes());
    assert_eq!(
        b, want,
        "the flushed header with the relative name, zero padded"
    );
    assert_eq!(&b[36..40], &[0; 4]);
    assert!(r.visit(1010, 1010, 0).is_empty());
    assert!(r.visit(1020, 1020, 0).is_empty());
    assert_eq!(r.m.counters.discover_sent, 1);

    // A second connection gets it once too; the first does not again.
    r.m.open(2);
    let out = r.visit(1030, NONE, 0);
    assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), vec![2]);
    assert!(r.visit(1040, NONE, 0).is_empty());
    // A new connection replacing the first gets it again.
    r.m.close(C);
    r.m.open(3);
    let out = r.visit(1050, NONE, 0);
    assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), vec![3]);
    assert_eq!(r.m.counters.discover_sent, 3);
}

#[test]
fn u_ma_12_recreated_file_is_announced_again() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    assert_eq!(r.visit(1000, NONE, 0).len(), 1);
    r.m.deleted(KEY, NAME.as_bytes());
    let out = r.m.visit(
        Visit {
            file: (SLOT, 2),
            name: Some(NAME),
            header: &r.h,
            flushed_last: 10,
            dirty_low: 10,
        },
        0,
        &|_| 0,
    );
    assert_eq!(out.len(), 1);
}

#[test]
fn u_ma_13_discover_deferred_above_the_mark() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.queue = 256 * 1024;
    assert!(r.visit(1000, NONE, 0).is_empty(), "at the mark: deferred");
    assert_eq!(r.m.counters.discover_deferred, 1);
    assert_eq!(r.m.counters.discover_sent, 0);
    assert!(r.m.has_owed(C));
    // Another visit while owed: no second deferral, no Discover.
    r.queue = 300 * 1024;
    assert!(r.visit(1010, NONE, 0).is_empty());
    assert_eq!(r.m.counters.discover_deferred, 1);
    // The owed FIFO gives it without a further visit.
    assert_eq!(r.m.next_owed(C), Some(KEY));
    assert_eq!(r.m.next_owed(C), None);
    assert!(!r.m.has_owed(C));
    assert_eq!(r.m.counters.discover_sent, 1);
    // Announced now: later visits send nothing.
    r.queue = 0;
    assert!(r.visit(1020, NONE, 0).is_empty());
}

#[test]
fn u_ma_13_owed_item_for_a_deleted_file_is_dropped() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.queue = 1 << 20;
    r.visit(1000, NONE, 0);
    assert!(r.m.has_owed(C));
    r.m.deleted(KEY, NAME.as_bytes());
    assert_eq!(r.m.next_owed(C), None);
}

#[test]
fn u_ma_16_suspended() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.m.suspended = true;
    assert!(
        r.visit(1000, NONE, 0).is_empty(),
        "no Discover while suspended"
    );
    r.request(500, 10);
    assert!(r.m.next_read(C).is_none(), "no read while suspended");
    // Flush visits still record late writes.
    r.visit(1000, 300, 0);
    assert_eq!(r.state(), (MState::Ready, 500, 300));
    // Resume: the owed Discover and the data (late update included) go out.
    r.m.suspended = false;
    assert_eq!(r.m.next_owed(C), Some(KEY));
    let d = r.answer(0).unwrap();
    assert_eq!(times(&d)[0], 300);
}

#[test]

fn u_ma_16_suspended_holds_owed_discover() {
    // A suspended master holds Discover and answers. The visit puts the Discover in the
    // owed FIFO; the FIFO must not hand it out while suspended either.
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.m.suspended = true;
    r.visit(1000, NONE, 0);
    assert_eq!(
        r.m.next_owed(C),
        None,
        "owed Discover handed out while suspended"
    );
}

// ----- reading state, late marks, queue, read errors, time bounds ---------------------

#[test]
fn u_ma_18_visit_while_reading_below_f() {
    let mut r = Rig::new(FakeFile::with_range(100, 1200));
    r.visit(1200, NONE, 0);
    r.request(1100, 256);
    let job = r.m.next_read(C).unwrap();
    let old = r.file.read(job.start, job.end, job.max, 2048);
    r.file.put(1050, 99.0);
    r.visit(1200, 1050, 0);
    let d =
        r.m.read_done(&job, IV as u32, Ok(old), 0)
            .map(data)
            .unwrap();
    assert_eq!(times(&d), range(1100, 1200));
    assert_eq!(r.state(), (MState::Answered, 1210, 1050));
}

#[test]

fn u_ma_18_visit_while_reading_resends() {
    // U-MA-18: a read of F = T in flight; a write to T + 100 and a flush visit happen; the
    // read returns the old bucket; the next answer resends T + 100 with the new value (a
    // visit during a read lowers read_low, and answering step 7 folds it into resend_from).
    let t = 1000;
    let mut r = Rig::new(FakeFile::with_range(t, t + 200));
    r.visit(t + 200, NONE, 0);
    r.request(t, 256);
    let job = r.m.next_read(C).unwrap();
    let old = r.file.read(job.start, job.end, job.max, 2048);
    r.file.put(t + 100, 4242.0);
    r.visit(t + 200, t + 100, 0);
    let d =
        r.m.read_done(&job, IV as u32, Ok(old), 0)
            .map(data)
            .unwrap();
    assert_eq!(times(&d), range(t, t + 200));
    assert_eq!(
        r.state(),
        (MState::Answered, (t + 210) as u32, (t + 100) as u32),
        "read_low folded into resend_from"
    );
    r.request(t + 210, 256);
    let d = r.answer(0).expect("the resend");
    assert_eq!(times(&d)[0], t + 100);
    if let Pdu::Data { buckets, .. } = &d {
        assert_eq!(buckets[0].sum, 4242.0);
    }
}

#[test]
fn u_ma_19_late_mark_seeds_a_new_connection() {
    let newest = 100_000;
    let late = newest - 7200;
    let mut f = FakeFile::with_range(newest - 1000, newest);
    f.put(late, 1.5);
    let mut m = MasterFiles::new(MasterConfig::default());
    let h = header("/var/store/a/b/10s");
    let visit = |m: &mut MasterFiles, flushed: i64, dirty: i64, now: i64| {
        m.visit(
            Visit {
                file: KEY,
                name: Some(NAME),
                header: &h,
                flushed_last: flushed,
                dirty_low: dirty,
            },
            now,
            &|_| 0,
        )
    };
    // No connection: a write 2 h below the newest and a flush visit set the mark.
    visit(&mut m, newest, late, 50);
    assert_eq!(m.late_marks(), 1);
    // A write within the margin is not late.
    visit(&mut m, newest, newest - 600, 60);
    assert_eq!(m.late_marks(), 1);
    // A new connection's first Request from newest - 600.
    m.open(7);
    m.request(
        7,
        NAME.as_bytes(),
        newest - 600,
        256,
        Some((KEY, 10, newest)),
    );
    assert_eq!(m.counters.late_seeded, 1);
    assert_eq!(
        m.entry_state(7, SLOT),
        Some((MState::Ready, (newest - 600) as u32, late as u32))
    );
    let job = m.next_read(7).unwrap();
    assert_eq!(job.start, late);
    let res = f.read(job.start, job.end, job.max, 2048);
    let d = m
        .read_done(&job, IV as u32, Ok(res), 100)
        .map(data)
        .unwrap();
    let ts = times(&d);
    assert_eq!(ts[0], late, "the late bucket comes first");
    assert_eq!(ts[1], newest - 1000);
    assert_eq!(m.counters.resent_buckets, 1 + 40);
    // A second connection is seeded as well.
    m.open(8);
    m.request(
        8,
        NAME.as_bytes(),
        newest - 600,
        256,
        Some((KEY, 10, newest)),
    );
    assert_eq!(m.counters.late_seeded, 2);
    // A Request from below the mark is not seeded.
    m.open(9);
    m.request(9, NAME.as_bytes(), late - 10, 256, Some((KEY, 10, newest)));
    assert_eq!(m.counters.late_seeded, 2);
    assert_eq!(m.entry_state(9, SLOT).unwrap().2, INF);
}

#[test]
fn u_ma_19_late_mark_expires() {
    let mut r = Rig::new(FakeFile::with_range(100, 100_000));
    r.visit(100_000, 50_000, 1_000);
    assert_eq!(r.m.late_marks(), 1);
    r.visit(100_000, NONE, 1_000 + 86_400);
    assert_eq!(r.m.late_marks(), 1, "not older than the window yet");
    r.visit(100_000, NONE, 1_000 + 86_401);
    assert_eq!(r.m.late_marks(), 0, "expired");
    r.m.open(5);
    r.m.request(5, NAME.as_bytes(), 99_400, 256, Some((KEY, 10, 100_000)));
    assert_eq!(r.m.counters.late_seeded, 0);
}

#[test]
fn u_ma_20_ready_queue_without_duplicates() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(500, 10);
    for _ in 0..100 {
        r.request(500, 10);
    }
    assert_eq!(r.m.counters.requests_replaced, 100);
    assert!(r.m.has_ready(C));
    let job = r.m.next_read(C).expect("one item");
    assert!(!r.m.has_ready(C), "exactly one queue item");
    let res = r.file.read(job.start, job.end, job.max, 2048);
    assert_eq!(
        times(
            &r.m.read_done(&job, IV as u32, Ok(res), 0)
                .map(data)
                .unwrap()
        ),
        range(500, 590)
    );
    assert!(r.m.next_read(C).is_none());
}

#[test]
fn u_ma_20_popped_item_for_a_reset_entry_is_dropped() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(500, 10);
    r.m.deleted(KEY, NAME.as_bytes());
    assert!(r.m.next_read(C).is_none());
}

#[test]
fn u_ma_21_read_errors_back_off() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(500, 10);
    let mut now = 0;
    for (k, delay) in [2i64, 4, 8, 16].into_iter().enumerate() {
        let job = r.m.next_read(C).expect("a read");
        assert_eq!(r.m.read_done(&job, IV as u32, Err(()), now), None);
        assert_eq!(r.m.counters.read_errors, k as u64 + 1);
        assert_eq!(r.state().0, MState::Ready);
        assert!(r.m.next_read(C).is_none(), "waiting {delay} s");
        r.m.wake_delayed(now + delay - 1);
        assert!(r.m.next_read(C).is_none(), "not before {delay} s");
        now += delay;
        r.m.wake_delayed(now);
    }
    // A success resets the count.
    let d = r.answer(now).unwrap();
    assert_eq!(times(&d), range(500, 590));
    r.request(600, 10);
    let job = r.m.next_read(C).unwrap();
    r.m.read_done(&job, IV as u32, Err(()), now);
    r.m.wake_delayed(now + 1);
    assert!(r.m.next_read(C).is_none());
    r.m.wake_delayed(now + 2);
    assert!(r.m.next_read(C).is_some(), "back to 2 s after a success");
}

#[test]

fn u_ma_21_parks_after_five_failures() {
    // After 5 consecutive read failures the entry parks until the next flush visit, so a
    // failing file is retried once per flush period.
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(500, 10);
    let mut now = 0;
    for delay in [2i64, 4, 8, 16] {
        let job = r.m.next_read(C).unwrap();
        r.m.read_done(&job, IV as u32, Err(()), now);
        now += delay;
        r.m.wake_delayed(now);
    }
    let job = r.m.next_read(C).unwrap();
    r.m.read_done(&job, IV as u32, Err(()), now);
    assert_eq!(r.m.counters.read_errors, 5);
    assert_eq!(r.state().0, MState::Parked, "parked after the 5th failure");
    r.m.wake_delayed(now + 1_000);
    assert!(
        r.m.next_read(C).is_none(),
        "no retry before the next flush visit"
    );
    r.visit(1000, NONE, now + 300);
    assert_eq!(r.state().0, MState::Ready);
    assert!(r.m.next_read(C).is_some());
}

#[test]
fn u_ma_24_negative_from_is_oldest() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(-5, 3);
    assert_eq!(r.state().1, 0);
    let d = r.answer(0).unwrap();
    assert_eq!(r.reads[0].0, 0);
    assert_eq!(times(&d), vec![100, 110, 120]);
    r.request(i64::MIN, 3);
    assert_eq!(r.state().1, 0);
}

#[test]
fn stall_sweep_counts_entries_waiting_two_sweeps() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.visit(1000, NONE, 0);
    r.request(500, 10);
    assert_eq!(r.m.sweep(), 0);
    assert_eq!(r.m.sweep(), 1);
    r.answer(0).unwrap();
    assert_eq!(r.m.sweep(), 0);
}

#[test]
fn u_ma_23_one_owed_discover_per_eight_data() {
    let mut m = MasterFiles::new(MasterConfig::default());
    m.open(C);
    let mut f = FakeFile::with_range(10, 10_000);
    f.put(5, 0.0);
    let headers: Vec<Header> = (0..3).map(|i| header(&format!("/s/f/{i}/10s"))).collect();
    let names: Vec<String> = (0..3).map(|i| format!("f/{i}/10s")).collect();
    // File 0 is announced; files 1 and 2 are owed (queue above the mark).
    for i in 0..3u32 {
        let q = if i == 0 { 0 } else { 1 << 20 };
        m.visit(
            Visit {
                file: (10 + i, 1),
                name: Some(&names[i as usize]),
                header: &headers[i as usize],
                flushed_last: 10_000,
                dirty_low: NONE,
            },
            0,
            &|_| q,
        );
    }
    assert_eq!(m.counters.discover_deferred, 2);
    let mut turns = Vec::new();
    for k in 1..=20 {
        m.request(
            C,
            names[0].as_bytes(),
            10 * k,
            1,
            Some(((10, 1), 10, 10_000)),
        );
        let job = m.next_read(C).unwrap();
        let res = f.read(job.start, job.end, job.max, 2048);
        assert!(m.read_done(&job, IV as u32, Ok(res), 0).map(data).is_some());
        if m.discover_turn(C) {
            turns.push(k);
            assert!(m.next_owed(C).is_some());
        }
    }
    assert_eq!(turns, vec![8, 16], "one owed Discover per 8 Data");
    assert!(!m.has_owed(C));
}

#[test]

fn names_too_long_counts_files_once() {
    let mut m = MasterFiles::new(MasterConfig::default());
    m.open(C);
    let h = header("/s/x/10s");
    for period in 0..3 {
        let out = m.visit(
            Visit {
                file: (3, 1),
                name: None,
                header: &h,
                flushed_last: 1000 + period * 300,
                dirty_low: NONE,
            },
            period * 300,
            &|_| 0,
        );
        assert!(out.is_empty(), "never announced");
    }
    assert_eq!(m.counters.names_too_long, 1, "one file, counted once");
}

#[test]
fn announce_to_one_connection_leaves_the_others_alone() {
    let mut m = MasterFiles::new(MasterConfig::default());
    m.open(1);
    m.open(2);
    let h = header("/var/store/a/b/10s");
    let v = Visit {
        file: KEY,
        name: Some(NAME),
        header: &h,
        flushed_last: 1000,
        dirty_low: NONE,
    };
    assert!(
        m.announce_to(1, v, 0, &|_| 0).is_some(),
        "told to connection 1"
    );
    assert!(m.announce_to(1, v, 0, &|_| 0).is_none(), "only once");
    // Connection 2 was not told: the next visit announces the file there, only there.
    let out = m.visit(v, 0, &|_| 0);
    assert_eq!(out.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![2]);
    assert_eq!(m.counters.discover_sent, 2);
}

#[test]
fn a_discover_that_could_not_be_built_is_owed_again() {
    let mut r = Rig::new(FakeFile::with_range(100, 1000));
    r.queue = 256 * 1024;
    assert!(r.visit(1000, NONE, 0).is_empty(), "deferred");
    assert_eq!(r.m.next_owed(C), Some(KEY));
    assert!(!r.m.has_owed(C));
    r.m.owe_again(C, KEY);
    assert!(r.m.has_owed(C));
    assert_eq!(r.m.counters.discover_sent, 0);
    assert_eq!(r.m.next_owed(C), Some(KEY));
    assert_eq!(r.m.counters.discover_sent, 1);
    // A deleted file is not owed again.
    r.m.deleted(KEY, NAME.as_bytes());
    r.m.owe_again(C, KEY);
    assert!(!r.m.has_owed(C));
}
