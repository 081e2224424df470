//! The slave's per-file state machine (docs/replication-protocol.md, "State machines",
//! "Slave: Discover, Requests and Data"; U-SL-*, U-HDR-01 of its "Test plan").
//!
//! The core addresses files by their slot in the local store; these tests play the
//! driver with a fixed store: NAME in slot 0, OTHER in slot 1.

use istatd_replication::pdu::Pdu;
use istatd_replication::slave::{
    check_discover, master_newest, DataAction, DiscoverAction, Local, Req, Resync, SState,
    SlaveConfig, SlaveError, SlaveFiles,
};
use istatd_storage::format::{Bucket, CreateParams, Header, HEADER_SIZE};

const NAME: &str = "a/b/10s";
const SLOT: u32 = 0;
const OTHER: &str = "c/d/10s";
const OTHER_SLOT: u32 = 1;
/// A slot the store does not hold.
const NO_SLOT: u32 = 7;
const BIG_CAP: i64 = 1 << 30;

fn mh(create: i64, interval: i32, last_bucket: i64) -> Header {
    let mut h = Header::new_file(&CreateParams {
        interval,
        page_count: 4,
        flags: 0,
        zero_time: create,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: format!("/master/store/{NAME}"),
    });
    h.last_bucket = last_bucket;
    h.last_time = create + last_bucket * interval as i64;
    h
}

fn good(h: impl std::borrow::Borrow<Header>) -> Local {
    Local::Good(Box::new(h.borrow().clone()))
}

fn disc_named(h: &Header, name: &str) -> [u8; HEADER_SIZE] {
    match Pdu::discover(h, name) {
        Pdu::Discover(b) => *b,
        _ => unreachable!(),
    }
}

fn disc(h: &Header) -> [u8; HEADER_SIZE] {
    disc_named(h, NAME)
}

/// The slot the driver passes with `local`: the file's when it holds a good one.
fn slot_if_good(local: &Local, slot: u32) -> Option<u32> {
    matches!(local, Local::Good(_)).then_some(slot)
}

/// A new Discover for NAME (slot 0 when the store holds a good file).
fn discover(s: &mut SlaveFiles, d: &[u8; HEADER_SIZE], local: &Local) -> DiscoverAction {
    s.discover(d, local, slot_if_good(local, SLOT), false)
}

/// A Discover the driver runs again (Rediscover, take_pending, a resync recheck): not
/// counted as a new one.
fn rediscover(s: &mut SlaveFiles, d: &[u8; HEADER_SIZE], local: &Local) -> DiscoverAction {
    s.discover(d, local, slot_if_good(local, SLOT), true)
}

/// What the driver does after `Create`: the old file (if `aside`) goes aside and its
/// slot is forgotten, the new one is made from the Discover's header in `slot`, the
/// Discover runs again against it (Known), and the file is queued.
fn create(s: &mut SlaveFiles, d: &[u8; HEADER_SIZE], aside: Option<u32>, slot: u32) {
    if let Some(old) = aside {
        s.forget(old);
    }
    let new = Local::Good(Box::new(Header::parse_raw(&d[..])));
    assert_eq!(
        s.discover(d, &new, Some(slot), true),
        DiscoverAction::Known,
        "the new file is known"
    );
    s.queue(slot, true);
}

/// (fromTime, numBuckets, file) of a Request.
fn req(r: &Req) -> (i64, i64, u32) {
    (r.from, r.n, r.slot)
}

fn buckets(times: &[i64]) -> Vec<Bucket> {
    times.iter().map(|&t| Bucket::sample(t, t as f64)).collect()
}

/// A Data for NAME while the store holds it (slot 0).
fn data(
    s: &mut SlaveFiles,
    b: Vec<Bucket>,
    interval: i64,
    zero: i64,
    now: i64,
) -> Result<DataAction, SlaveError> {
    s.data(Some(SLOT), NAME.as_bytes(), b, interval, zero, now)
}

/// A Data for NAME once the store no longer holds it.
fn data_deleted(s: &mut SlaveFiles, b: Vec<Bucket>) -> Result<DataAction, SlaveError> {
    s.data(None, NAME.as_bytes(), b, 10, 0, 0)
}

/// Subscribe NAME: a Discover of `h` for a file the slave holds (or not), queue it
/// (creating it first when asked to, in slot 0), and return the first Request.
fn subscribe(s: &mut SlaveFiles, h: &Header, local: &Local, newest: i64, cap: i64) -> Req {
    let d = disc(h);
    match discover(s, &d, local) {
        DiscoverAction::Known => s.queue(SLOT, false),
        DiscoverAction::Create { aside } => create(s, &d, aside.then_some(SLOT), SLOT),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(s.next_queued(), Some(SLOT));
    s.subscribe(SLOT, newest, h.cfg_interval as i64, cap)
        .expect("a first Request")
}

fn from_of(cfg: SlaveConfig, h: &Header, newest: i64, cap: i64) -> i64 {
    let mut s = SlaveFiles::new(cfg);
    let local = good(h.clone());
    req(&subscribe(&mut s, h, &local, newest, cap)).0
}

// ----- discovery and subscription -----------------------------------------------------

#[test]
fn u_sl_01_create_and_first_request() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 100);
    let d = disc(&h);
    assert_eq!(
        discover(&mut s, &d, &Local::Absent),
        DiscoverAction::Create { aside: false }
    );
    assert_eq!(s.counters.discover_received, 1);
    assert_eq!(s.state(SLOT), None, "no local file, no slot yet");
    // The driver creates the file (slot 0) and runs the Discover again against it.
    let new = good(Header::parse_raw(&d[..]));
    assert_eq!(
        s.discover(&d, &new, Some(SLOT), true),
        DiscoverAction::Known
    );
    assert_eq!(
        s.counters.discover_received, 1,
        "the redo is no new Discover"
    );
    assert_eq!(s.state(SLOT), Some(SState::Idle));
    s.queue(SLOT, true);
    assert_eq!(s.counters.files_created, 1);
    assert_eq!(s.state(SLOT), Some(SState::Queued));
    assert_eq!(s.queued(), 1);
    assert_eq!(s.next_queued(), Some(SLOT));
    let p = s.subscribe(SLOT, 0, 10, h.capacity()).unwrap();
    assert_eq!(
        p,
        Req {
            slot: SLOT,
            from: 0,
            n: 256,
        }
    );
    assert_eq!(s.state(SLOT), Some(SState::Outstanding));
    assert_eq!(s.counters.requests_sent, 1);
    // Not queued any more: no second subscribe.
    assert_eq!(s.subscribe(SLOT, 0, 10, h.capacity()), None);
    assert_eq!(s.next_queued(), None);
}

/// A queued file the driver could not subscribe now comes back from the queue; once
/// subscribed, a stale requeue does nothing.
#[test]
fn requeued_file_is_subscribed_later() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 100);
    create(&mut s, &disc(&h), None, SLOT);
    assert_eq!(s.next_queued(), Some(SLOT));
    assert_eq!(s.next_queued(), None);
    s.requeue(SLOT);
    assert_eq!(s.next_queued(), Some(SLOT));
    s.subscribe(SLOT, 0, 10, h.capacity()).unwrap();
    s.requeue(SLOT);
    assert_eq!(s.next_queued(), None);
    assert_eq!(s.state(SLOT), Some(SState::Outstanding));
}

/// A node that stops being a slave frees its per-file state but keeps its counters;
/// a later link sees the file as new.
#[test]
fn release_frees_per_file_state_and_keeps_counters() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 100);
    let d = disc(&h);
    create(&mut s, &d, None, SLOT);
    s.subscribe(SLOT, 0, 10, h.capacity()).unwrap();
    assert!(s.state_bytes() > 0);
    assert_eq!(s.state(SLOT), Some(SState::Outstanding));
    s.release();
    assert_eq!(s.state_bytes(), 0);
    assert_eq!(s.state(SLOT), None);
    assert_eq!(s.queued(), 0);
    assert_eq!(s.counters.requests_sent, 1, "counters survive");
    assert_eq!(s.counters.files_created, 1);
    assert_eq!(discover(&mut s, &d, &good(&h)), DiscoverAction::Known);
    assert_eq!(s.state(SLOT), Some(SState::Idle));
}

#[test]
fn u_sl_01_capacity_clamp_on_a_new_file() {
    // A master far ahead of the ring: the first Request does not ask for buckets the
    // slave's ring would drop.
    let h = mh(1_000_000, 10, 10_000);
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let p = subscribe(&mut s, &h, &Local::Absent, 0, 512);
    assert_eq!(req(&p), (1_100_000 - 511 * 10, 256, SLOT));
}

#[test]
fn u_sl_02_resume_points() {
    let cfg = SlaveConfig::default;
    // L = 36,000, 10 s, overlap 600: 35,400.
    assert_eq!(from_of(cfg(), &mh(0, 10, 10_000), 36_000, BIG_CAP), 35_400);
    // 1 h interval: k = 1, 32,400.
    assert_eq!(from_of(cfg(), &mh(0, 3600, 100), 36_000, BIG_CAP), 32_400);
    // The master's newest is 30,000: min(L, M) - overlap.
    assert_eq!(from_of(cfg(), &mh(0, 10, 3_000), 36_000, BIG_CAP), 29_400);
    // An empty file: 0.
    assert_eq!(from_of(cfg(), &mh(0, 10, 10_000), 0, BIG_CAP), 0);
    // R = 20,000 in force.
    let r = SlaveConfig {
        resume_from: Some(20_000),
        ..SlaveConfig::default()
    };
    assert_eq!(
        from_of(r.clone(), &mh(0, 10, 10_000), 36_000, BIG_CAP),
        20_000
    );
    // R above the resume point does not raise it.
    let r2 = SlaveConfig {
        resume_from: Some(50_000),
        ..SlaveConfig::default()
    };
    assert_eq!(from_of(r2, &mh(0, 10, 10_000), 36_000, BIG_CAP), 35_400);
    // The capacity clamp: M = 100,000, 100 slots: from >= 100,000 - 99 * 10.
    assert_eq!(from_of(cfg(), &mh(0, 10, 10_000), 36_000, 100), 99_010);
    assert_eq!(from_of(r, &mh(0, 10, 10_000), 36_000, 100), 99_010);
    // A small overlap saturates at 0.
    assert_eq!(from_of(cfg(), &mh(0, 10, 10_000), 300, BIG_CAP), 0);
}

#[test]
fn u_sl_02_master_newest_from_create_time_and_last_bucket() {
    let mut h = mh(1_000, 10, 2_900);
    h.last_time = 999_999_990; // never used
    assert_eq!(master_newest(&h), 1_000 + 29_000);
    // The subscribe clamp uses it: L = 36,000 > M = 30,000.
    assert_eq!(from_of(SlaveConfig::default(), &h, 36_000, BIG_CAP), 29_400);
    // last_bucket 0: the create time (last_time stays 0 then).
    let mut h0 = mh(50_000, 10, 0);
    h0.last_time = 0;
    assert_eq!(master_newest(&h0), 50_000);
    assert_eq!(
        from_of(SlaveConfig::default(), &h0, 60_000, BIG_CAP),
        49_400
    );
}

// ----- Data ---------------------------------------------------------------------------

fn outstanding_at_35400() -> SlaveFiles {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 10_000);
    let p = subscribe(&mut s, &h, &good(h.clone()), 36_000, BIG_CAP);
    assert_eq!(req(&p).0, 35_400);
    s
}

fn apply(s: &mut SlaveFiles, times: &[i64], now: i64) -> Option<Req> {
    match data(s, buckets(times), 10, 0, now).expect("accepted") {
        DataAction::Apply { buckets } => {
            let n = buckets.len() as u32;
            s.applied(SLOT, &buckets, Ok((n, 0)), 10, now)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn u_sl_03_follow_up() {
    let mut s = outstanding_at_35400();
    let times: Vec<i64> = (0..10).map(|i| 35_400 + 10 * i).collect();
    let p = apply(&mut s, &times, 0).expect("a follow-up");
    assert_eq!(req(&p), (35_500, 256, SLOT));
    assert_eq!(s.state(SLOT), Some(SState::Outstanding));
    assert_eq!(s.counters.buckets_written, 10);
    // A resend ending below F keeps F.
    let p = apply(&mut s, &[30_000, 30_010, 30_020], 0).unwrap();
    assert_eq!(req(&p).0, 35_500);
    // Data reaching past F moves it.
    let p = apply(&mut s, &[35_300, 36_000], 0).unwrap();
    assert_eq!(req(&p).0, 36_010);
    assert_eq!(s.counters.requests_sent, 4);
}

#[test]
fn u_sl_03_all_rejected_goes_to_error() {
    let mut s = outstanding_at_35400();
    let sent = s.counters.requests_sent;
    let a = data(&mut s, buckets(&[0, i64::MAX - 5, 35_405]), 10, 0, 0).expect("not fatal");
    assert_eq!(a, DataAction::Done, "no write, no follow-up");
    assert_eq!(s.state(SLOT), Some(SState::Error));
    assert_eq!(s.counters.buckets_rejected, 3);
    assert_eq!(s.counters.apply_errors, 0);
    assert_eq!(s.counters.requests_sent, sent);
    assert_eq!(s.gauges().2, 1, "files in error");
    // Negative and >= 2^32 times too.
    let mut s = outstanding_at_35400();
    let a = data(&mut s, buckets(&[-10, 1 << 32, i64::MIN]), 10, 0, 0).unwrap();
    assert_eq!(a, DataAction::Done);
    assert_eq!(s.state(SLOT), Some(SState::Error));
    // The retry asks again from the same fromTime.
    let retry = s.due_retries(30);
    assert_eq!(retry.len(), 1);
    assert_eq!(req(&retry[0]), (35_400, 256, SLOT));
}

#[test]
fn u_sl_07_bad_buckets_skipped_and_counted() {
    let mut s = outstanding_at_35400();
    let a = data(
        &mut s,
        buckets(&[35_400, 35_405, 35_410, 35_410, 35_390, 35_420]),
        10,
        0,
        0,
    )
    .unwrap();
    let DataAction::Apply { buckets: kept } = a else {
        panic!("expected Apply, got {a:?}")
    };
    assert_eq!(
        kept.iter().map(|b| b.time).collect::<Vec<_>>(),
        vec![35_400, 35_410, 35_420]
    );
    assert_eq!(s.counters.buckets_rejected, 3);
    assert_eq!(s.counters.buckets_received, 6);
    // Alignment is relative to the local zero time.
    let mut s = outstanding_at_35400();
    let a = data(&mut s, buckets(&[35_405, 35_415]), 10, 5, 0).unwrap();
    assert!(matches!(a, DataAction::Apply { ref buckets } if buckets.len() == 2));
}

#[test]
fn u_sl_09_unsolicited_and_oversized() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    // No local file of that name (and none deleted while its Request was out).
    assert_eq!(
        s.data(None, b"no/such/10s", buckets(&[10]), 10, 0, 0),
        Err(SlaveError::Unexpected)
    );
    // A slot the core holds nothing for is no file either.
    assert_eq!(
        s.data(Some(NO_SLOT), b"no/such/10s", buckets(&[10]), 10, 0, 0),
        Err(SlaveError::Unexpected)
    );
    // Known but idle, and queued: not outstanding either.
    let h = mh(0, 10, 100);
    discover(&mut s, &disc(&h), &good(h.clone()));
    assert_eq!(data(&mut s, vec![], 10, 0, 0), Err(SlaveError::Unexpected));
    s.queue(SLOT, false);
    assert_eq!(
        data(&mut s, buckets(&[10]), 10, 0, 0),
        Err(SlaveError::Unexpected)
    );
    assert_eq!(SlaveError::Unexpected.text(), "Unexpected Data");

    let cfg = SlaveConfig {
        chunk_buckets: 2,
        ..SlaveConfig::default()
    };
    let mut s = SlaveFiles::new(cfg.clone());
    let p = subscribe(&mut s, &h, &good(h.clone()), 0, BIG_CAP);
    assert_eq!(req(&p).1, 2);
    assert_eq!(
        data(&mut s, buckets(&[10, 20, 30]), 10, 0, 0),
        Err(SlaveError::ExceedsRequest)
    );
    assert_eq!(SlaveError::ExceedsRequest.text(), "Data exceeds request");
    // Exactly n is fine.
    assert!(data(&mut s, buckets(&[10, 20]), 10, 0, 0).is_ok());
    // The same holds for the answer to a file deleted here while it was outstanding.
    let mut s = SlaveFiles::new(cfg);
    subscribe(&mut s, &h, &good(h.clone()), 0, BIG_CAP);
    s.deleted_locally(SLOT, NAME.as_bytes());
    assert_eq!(
        data_deleted(&mut s, buckets(&[10, 20, 30])),
        Err(SlaveError::ExceedsRequest)
    );
}

#[test]
fn u_sl_10_gone() {
    let mut s = outstanding_at_35400();
    let sent = s.counters.requests_sent;
    assert_eq!(data(&mut s, vec![], 10, 0, 0), Ok(DataAction::Done));
    assert_eq!(s.state(SLOT), Some(SState::Idle));
    assert_eq!(s.counters.files_gone, 1);
    assert_eq!(s.counters.requests_sent, sent, "no follow-up");
    // Data again now is unexpected.
    assert_eq!(data(&mut s, vec![], 10, 0, 0), Err(SlaveError::Unexpected));
    // A later Discover subscribes it again.
    let h = mh(0, 10, 10_000);
    assert_eq!(
        discover(&mut s, &disc(&h), &good(h.clone())),
        DiscoverAction::Known
    );
    s.queue(SLOT, false);
    assert_eq!(s.state(SLOT), Some(SState::Queued));
    assert_eq!(s.next_queued(), Some(SLOT));
}

#[test]
fn u_sl_11_mismatch() {
    let master = mh(0, 10, 100);
    let mut variants = Vec::new();
    let mut l = mh(0, 300, 10);
    l.last_bucket = 3;
    variants.push(("interval", l));
    let mut l = master.clone();
    l.lambda = 0.5;
    variants.push(("lambda", l));
    let mut l = master.clone();
    l.season = 3600;
    variants.push(("season", l));
    let mut l = master.clone();
    l.fixed_count = 3;
    variants.push(("fixed_count", l));
    let mut l = master.clone();
    l.flags = 0x2;
    variants.push(("flags", l));
    for (what, local) in variants {
        let mut s = SlaveFiles::new(SlaveConfig::default());
        assert_eq!(
            discover(&mut s, &disc(&master), &good(local)),
            DiscoverAction::Mismatch,
            "{what}"
        );
        assert_eq!(s.counters.header_mismatch, 1);
        s.queue(SLOT, false);
        assert_eq!(s.state(SLOT), Some(SState::Idle), "{what}: not queued");
        assert_eq!(s.next_queued(), None);
        assert_eq!(s.gauges().3, 1, "rejected gauge");
        assert_eq!(s.counters.requests_sent, 0);
    }
    // A different capacity alone is accepted.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let mut l = master.clone();
    l.page_count = 99;
    assert_eq!(
        discover(&mut s, &disc(&master), &good(l)),
        DiscoverAction::Known
    );
}

#[test]
fn u_sl_11_mismatch_while_outstanding_drains() {
    let mut s = outstanding_at_35400();
    let mut local = mh(0, 10, 10_000);
    local.fixed_count = 9;
    assert_eq!(
        discover(&mut s, &disc(&mh(0, 10, 10_000)), &good(local)),
        DiscoverAction::Mismatch
    );
    assert_eq!(s.state(SLOT), Some(SState::Draining));
    let sent = s.counters.requests_sent;
    assert_eq!(
        data(&mut s, buckets(&[35_400]), 10, 0, 0),
        Ok(DataAction::Done)
    );
    assert_eq!(s.state(SLOT), Some(SState::Idle));
    assert_eq!(s.counters.requests_sent, sent);
}

#[test]
fn u_sl_12_repeated_discover() {
    let mut s = outstanding_at_35400();
    let h = mh(0, 10, 10_000);
    let sent = s.counters.requests_sent;
    assert_eq!(
        discover(&mut s, &disc(&h), &good(h.clone())),
        DiscoverAction::Known
    );
    s.queue(SLOT, false);
    assert_eq!(s.state(SLOT), Some(SState::Outstanding));
    assert_eq!(s.next_queued(), None);
    assert_eq!(s.subscribe(SLOT, 36_000, 10, BIG_CAP), None);
    assert_eq!(s.counters.requests_sent, sent, "no second Request");
    // A queued file stays queued once.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    discover(&mut s, &disc(&h), &good(h.clone()));
    s.queue(SLOT, false);
    discover(&mut s, &disc(&h), &good(h.clone()));
    s.queue(SLOT, false);
    assert_eq!(s.next_queued(), Some(SLOT));
    s.subscribe(SLOT, 0, 10, BIG_CAP).unwrap();
    assert_eq!(s.next_queued(), None);
}

#[test]
fn u_sl_15_apply_error_and_retries() {
    let mut s = outstanding_at_35400();
    let now = 1_000;
    let DataAction::Apply { buckets: b } =
        data(&mut s, buckets(&[35_000, 35_400, 35_410]), 10, 0, now).unwrap()
    else {
        panic!()
    };
    assert_eq!(s.applied(SLOT, &b, Err(()), 10, now), None);
    assert_eq!(s.counters.apply_errors, 1);
    assert_eq!(s.state(SLOT), Some(SState::Error));
    assert!(s.due_retries(now + 29).is_empty());
    let r = s.due_retries(now + 30);
    assert_eq!(r.len(), 1);
    // fromTime = min(failed Request's from 35,400, first bucket 35,000).
    assert_eq!(req(&r[0]), (35_000, 256, SLOT));
    assert_eq!(s.state(SLOT), Some(SState::Outstanding));
    assert_eq!(s.counters.retries, 1);
    // Doubling: 60, 120, 240, 480, then 600 at most.
    let mut t = now + 30;
    for delay in [60, 120, 240, 480, 600, 600] {
        let DataAction::Apply { buckets: b } = data(&mut s, buckets(&[35_000]), 10, 0, t).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.applied(SLOT, &b, Err(()), 10, t), None);
        assert!(
            s.due_retries(t + delay - 1).is_empty(),
            "not before {delay} s"
        );
        let r = s.due_retries(t + delay);
        assert_eq!(r.len(), 1, "after {delay} s");
        assert_eq!(req(&r[0]).0, 35_000);
        t += delay;
    }
    // A success resets the delay.
    let p = apply(&mut s, &[35_000, 35_010], t).unwrap();
    assert_eq!(req(&p).0, 35_020);
    let DataAction::Apply { buckets: b } = data(&mut s, buckets(&[35_020]), 10, 0, t).unwrap()
    else {
        panic!()
    };
    s.applied(SLOT, &b, Err(()), 10, t);
    assert_eq!(s.due_retries(t + 30).len(), 1, "back to 30 s");
}

#[test]
fn u_sl_16_new_incarnation_idle() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let old = mh(0, 10, 100);
    let new = mh(1_000, 10, 50);
    let d = disc(&new);
    assert_eq!(
        discover(&mut s, &d, &good(old)),
        DiscoverAction::Create { aside: true }
    );
    assert_eq!(s.counters.incarnation_changed, 1);
    assert_eq!(s.counters.header_mismatch, 0);
    // The old file goes aside; the new one takes its slot back.
    create(&mut s, &d, Some(SLOT), SLOT);
    assert_eq!(s.counters.incarnation_changed, 1, "counted once");
    assert_eq!(s.next_queued(), Some(SLOT));
    // The new file is empty: copied from 0.
    let p = s.subscribe(SLOT, 0, 10, BIG_CAP).unwrap();
    assert_eq!(req(&p).0, 0);
}

#[test]
fn u_sl_16_new_incarnation_clears_rejected() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let mut bad = mh(0, 10, 100);
    bad.season = 77;
    discover(&mut s, &disc(&mh(0, 10, 100)), &good(bad.clone()));
    assert_eq!(s.gauges().3, 1);
    let d = disc(&mh(1_000, 10, 100));
    assert_eq!(
        discover(&mut s, &d, &good(bad)),
        DiscoverAction::Create { aside: true }
    );
    assert_eq!(s.gauges().3, 0);
    create(&mut s, &d, Some(SLOT), SLOT);
    assert_eq!(s.state(SLOT), Some(SState::Queued));
}

#[test]
fn u_sl_16_new_incarnation_while_outstanding() {
    let mut s = outstanding_at_35400();
    let old = mh(0, 10, 10_000);
    let new = mh(1_000, 10, 50);
    let d = disc(&new);
    assert_eq!(
        discover(&mut s, &d, &good(old.clone())),
        DiscoverAction::Nothing
    );
    assert_eq!(s.state(SLOT), Some(SState::Draining));
    assert_eq!(s.counters.incarnation_changed, 1);
    let sent = s.counters.requests_sent;
    // Its Data is discarded and the pending Discover comes back.
    let a = data(&mut s, buckets(&[35_400, 35_410]), 10, 0, 0).unwrap();
    assert_eq!(a, DataAction::Rediscover(Box::new(d)));
    assert_eq!(s.state(SLOT), Some(SState::Idle));
    assert_eq!(s.counters.requests_sent, sent, "no follow-up");
    assert_eq!(s.counters.buckets_written, 0);
    // Processed again: the old file goes aside, the new one is copied from 0 (here
    // it gets another slot).
    assert_eq!(
        rediscover(&mut s, &d, &good(old)),
        DiscoverAction::Create { aside: true }
    );
    create(&mut s, &d, Some(SLOT), OTHER_SLOT);
    assert_eq!(s.state(SLOT), None, "the old file's slot is forgotten");
    assert_eq!(s.next_queued(), Some(OTHER_SLOT));
    assert_eq!(
        req(&s.subscribe(OTHER_SLOT, 0, 10, BIG_CAP).unwrap()),
        (0, 256, OTHER_SLOT)
    );
}

#[test]
fn u_sl_16_incarnation_counted_once() {
    let mut s = outstanding_at_35400();
    let old = mh(0, 10, 10_000);
    let d = disc(&mh(1_000, 10, 50));
    discover(&mut s, &d, &good(old.clone()));
    let Ok(DataAction::Rediscover(h)) = data(&mut s, buckets(&[35_400]), 10, 0, 0) else {
        panic!("expected Rediscover")
    };
    rediscover(&mut s, &h, &good(old));
    assert_eq!(
        s.counters.incarnation_changed, 1,
        "one new incarnation (§2.9, I-26)"
    );
}

// A local delete: the store forgets the file's slot, and so does the core. The old
// assertions that the file is then idle are checked by what idle means: a Data for
// it is unexpected and a Discover creates it again.

#[test]
fn u_sl_17_local_delete_while_outstanding() {
    let mut s = outstanding_at_35400();
    let sent = s.counters.requests_sent;
    s.deleted_locally(SLOT, NAME.as_bytes());
    assert_eq!(s.state(SLOT), None, "the slot is forgotten");
    // Draining: its answer is awaited by name.
    assert_eq!(
        data_deleted(&mut s, buckets(&[35_400, 35_410])),
        Ok(DataAction::Done),
        "accepted, nothing written, no Unexpected Data"
    );
    assert_eq!(s.counters.requests_sent, sent, "no follow-up");
    assert_eq!(s.counters.buckets_written, 0);
    // Idle now.
    assert_eq!(
        data_deleted(&mut s, buckets(&[35_420])),
        Err(SlaveError::Unexpected)
    );
    let h = mh(0, 10, 10_000);
    assert_eq!(
        discover(&mut s, &disc(&h), &Local::Absent),
        DiscoverAction::Create { aside: false }
    );
    // A delete of a queued file makes it idle.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 100);
    discover(&mut s, &disc(&h), &good(h.clone()));
    s.queue(SLOT, false);
    s.deleted_locally(SLOT, NAME.as_bytes());
    assert_eq!(s.state(SLOT), None, "the slot is forgotten");
    assert_eq!(s.next_queued(), None);
    assert_eq!(
        data_deleted(&mut s, buckets(&[10])),
        Err(SlaveError::Unexpected)
    );
    assert_eq!(
        discover(&mut s, &disc(&h), &Local::Absent),
        DiscoverAction::Create { aside: false }
    );
}

#[test]
fn u_sl_17_discover_after_a_local_delete_waits_for_the_answer() {
    // The master announces the file again before answering its Request: the Discover
    // waits for that answer (as one does for a draining file), then creates it.
    let mut s = outstanding_at_35400();
    s.deleted_locally(SLOT, NAME.as_bytes());
    let h = mh(0, 10, 10_000);
    let d = disc(&h);
    assert_eq!(
        discover(&mut s, &d, &Local::Absent),
        DiscoverAction::Nothing
    );
    assert_eq!(
        data_deleted(&mut s, buckets(&[35_400])),
        Ok(DataAction::Rediscover(Box::new(d)))
    );
    assert_eq!(
        rediscover(&mut s, &d, &Local::Absent),
        DiscoverAction::Create { aside: false }
    );
    assert_eq!(s.counters.discover_received, 2);
    create(&mut s, &d, None, SLOT);
    assert_eq!(s.next_queued(), Some(SLOT));
}

#[test]
fn u_sl_17_local_delete_during_the_write() {
    let mut s = outstanding_at_35400();
    let DataAction::Apply { buckets: b } = data(&mut s, buckets(&[35_400]), 10, 0, 0).unwrap()
    else {
        panic!()
    };
    s.deleted_locally(SLOT, NAME.as_bytes());
    assert_eq!(s.applied(SLOT, &b, Ok((1, 0)), 10, 0), None, "no follow-up");
    assert_eq!(s.state(SLOT), None, "the slot is forgotten");
    // Idle: its answer is in, so nothing more is awaited.
    assert_eq!(
        data_deleted(&mut s, buckets(&[35_410])),
        Err(SlaveError::Unexpected)
    );
    let h = mh(0, 10, 10_000);
    assert_eq!(
        discover(&mut s, &disc(&h), &Local::Absent),
        DiscoverAction::Create { aside: false }
    );
}

#[test]
fn connection_reset_makes_every_file_idle() {
    let mut s = outstanding_at_35400();
    s.reset();
    assert_eq!(s.state(SLOT), Some(SState::Idle));
    assert_eq!(s.gauges(), (0, 0, 0, 0, 0));
    assert_eq!(
        data(&mut s, buckets(&[35_400]), 10, 0, 0),
        Err(SlaveError::Unexpected)
    );
    assert_eq!(s.next_queued(), None);
    // A rejected file stays rejected.
    let master = mh(0, 10, 100);
    let mut local = master.clone();
    local.season = 5;
    assert_eq!(
        discover(&mut s, &disc(&master), &good(local)),
        DiscoverAction::Mismatch
    );
    s.reset();
    assert!(s.is_rejected(SLOT));
    assert_eq!(s.gauges(), (0, 0, 0, 1, 0));
}

#[test]
fn state_is_twelve_bytes_a_file() {
    // 16 bytes budgeted ("Memory"): one dense 12-byte entry per local file, no names.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 100);
    for slot in 0..1000u32 {
        let d = disc_named(&h, &format!("f/c{slot}/10s"));
        assert_eq!(
            s.discover(&d, &good(&h), Some(slot), false),
            DiscoverAction::Known
        );
    }
    assert_eq!(s.state_bytes(), 12_000);
    // A moved-aside file's slot is forgotten.
    s.forget(10);
    assert_eq!(s.state(10), None);
    assert_eq!(s.state(11), Some(SState::Idle));
}

// ----- U-HDR-01: Discover header checks (skips, not fatal) ----------------------------

#[test]
fn check_discover_rejections() {
    let good = mh(1_000, 10, 100);
    assert!(check_discover(&disc(&good)).is_ok());

    let set_i32 = |b: &mut [u8; HEADER_SIZE], at: usize, v: i32| {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes())
    };
    let set_i64 = |b: &mut [u8; HEADER_SIZE], at: usize, v: i64| {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes())
    };
    let mut cases: Vec<(&str, [u8; HEADER_SIZE])> = Vec::new();
    let mut b = disc(&good);
    b[3] ^= 0x20;
    cases.push(("bad magic", b));
    let mut b = disc(&good);
    set_i32(&mut b, 20, 0);
    cases.push(("interval 0", b));
    let mut b = disc(&good);
    set_i32(&mut b, 20, -10);
    cases.push(("interval -10", b));
    let mut b = disc(&good);
    set_i32(&mut b, 24, 0x8);
    cases.push(("flags 0x8", b));
    let mut b = disc(&good);
    set_i64(&mut b, 40, 100);
    cases.push(("page_size 100", b));
    let mut b = disc(&good);
    set_i64(&mut b, 40, 4096 + 32);
    cases.push(("page_size not a multiple of 512", b));
    let mut b = disc(&good);
    set_i64(&mut b, 48, 1);
    cases.push(("page_count 1", b));
    let mut b = disc(&good);
    set_i64(&mut b, 48, (1 << 24) + 1);
    cases.push(("page_count 2^24 + 1", b));
    let mut b = disc(&good);
    set_i64(&mut b, 112, 1_005);
    cases.push(("create time not aligned", b));
    let mut b = disc(&good);
    set_i64(&mut b, 112, -10);
    cases.push(("negative create time", b));
    let mut b = disc(&good);
    set_i64(&mut b, 112, 1 << 32);
    cases.push(("create time 2^32", b));
    cases.push(("bad name ..", disc_named(&good, "../x/10s")));
    cases.push(("bad name abs", disc_named(&good, "/abs/10s")));
    cases.push(("empty name", disc_named(&good, "")));
    cases.push(("one component", disc_named(&good, "10s")));

    for (what, b) in &cases {
        assert!(check_discover(b).is_err(), "{what}");
        let mut s = SlaveFiles::new(SlaveConfig::default());
        let a = discover(&mut s, b, &Local::Absent);
        assert!(matches!(a, DiscoverAction::Rejected(_)), "{what}: {a:?}");
        assert_eq!(s.counters.discover_rejected, 1, "{what}");
        assert_eq!(s.state(SLOT), None, "{what}: no entry");
        assert_eq!(s.next_queued(), None);
    }
    // The limits themselves pass.
    let mut b = disc(&good);
    set_i64(&mut b, 48, 1 << 24);
    set_i64(&mut b, 40, 4096);
    set_i32(&mut b, 24, 0x7);
    assert!(check_discover(&b).is_ok());
}

// ----- replication.resync PATH ("Operator command rules") -----------------------------

fn gone_then_idle() -> SlaveFiles {
    let mut s = outstanding_at_35400();
    assert_eq!(data(&mut s, vec![], 10, 0, 0), Ok(DataAction::Done));
    assert_eq!(s.state(SLOT), Some(SState::Idle));
    s
}

#[test]
fn resync_path_requeues_an_idle_file_from_time() {
    let mut s = gone_then_idle();
    assert_eq!(s.resync(NO_SLOT, None), Err("unknown file"));
    assert_eq!(s.resync(SLOT, Some(100)), Ok(Resync::Queued));
    assert_eq!(s.state(SLOT), Some(SState::Queued));
    assert_eq!(s.next_queued(), Some(SLOT));
    let p = s.subscribe(SLOT, 36_000, 10, BIG_CAP).unwrap();
    assert_eq!(req(&p).0, 100, "min(resume point, TIME)");
}

#[test]
fn resync_path_from_applies_to_that_file_only() {
    let mut s = gone_then_idle();
    s.resync(SLOT, Some(100)).unwrap();
    s.next_queued().unwrap();
    s.subscribe(SLOT, 36_000, 10, BIG_CAP).unwrap();
    // Another file subscribed afterwards resumes from its own point.
    let h = mh(0, 10, 10_000);
    assert_eq!(
        s.discover(&disc_named(&h, OTHER), &good(&h), Some(OTHER_SLOT), false),
        DiscoverAction::Known
    );
    s.queue(OTHER_SLOT, false);
    assert_eq!(s.next_queued(), Some(OTHER_SLOT));
    let p = s.subscribe(OTHER_SLOT, 36_000, 10, BIG_CAP).unwrap();
    assert_eq!(req(&p).0, 35_400, "another file is not resynced");
    // And on the next connection the file itself resumes normally.
    s.reset();
    let p = subscribe(&mut s, &h, &good(&h), 36_000, BIG_CAP);
    assert_eq!(req(&p).0, 35_400, "runtime only, for one subscription");
}

#[test]
fn resync_path_outstanding_next_request_uses_time() {
    let mut s = outstanding_at_35400();
    assert_eq!(s.resync(SLOT, Some(1_000)), Ok(Resync::Flagged));
    let p = apply(&mut s, &[35_400, 35_410], 0).unwrap();
    assert_eq!(req(&p).0, 1_000);
}

#[test]
fn u_sl_15_apply_failing_when_most_writes_fail() {
    // "Apply errors": more than 10% of the subscribed files, and at least 100, in state
    // error.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 100);
    // The store holds file i in slot i.
    let names: Vec<String> = (0..1000).map(|i| format!("f/c{i}/10s")).collect();
    for (slot, n) in names.iter().enumerate() {
        let d = disc_named(&h, n);
        assert_eq!(
            s.discover(&d, &Local::Absent, None, false),
            DiscoverAction::Create { aside: false }
        );
        create(&mut s, &d, None, slot as u32);
        let q = s.next_queued().unwrap();
        assert_eq!(q, slot as u32);
        s.subscribe(q, 0, 10, BIG_CAP).unwrap();
    }
    let fail = |s: &mut SlaveFiles, slot: usize| {
        let DataAction::Apply { buckets: b } = s
            .data(
                Some(slot as u32),
                names[slot].as_bytes(),
                buckets(&[1000]),
                10,
                0,
                0,
            )
            .unwrap()
        else {
            panic!("not applied")
        };
        assert_eq!(s.applied(slot as u32, &b, Err(()), 10, 0), None);
    };
    for slot in 0..100 {
        fail(&mut s, slot);
    }
    assert!(!s.apply_failing(), "100 of 1000 is not more than 10%");
    fail(&mut s, 100);
    assert!(s.apply_failing(), "101 of 1000 is");
}

#[test]
fn resync_path_rechecks_a_rejected_file_against_its_kept_header() {
    let master = mh(0, 10, 10_000);
    let mut local = master.clone();
    local.fixed_count = 9;
    let mut s = SlaveFiles::new(SlaveConfig::default());
    assert_eq!(
        discover(&mut s, &disc(&master), &good(&local)),
        DiscoverAction::Mismatch
    );
    assert!(s.is_rejected(SLOT));
    // Still different: the recheck rejects it again.
    let Ok(Resync::Recheck(h)) = s.resync(SLOT, Some(500)) else {
        panic!("a rejected file is rechecked")
    };
    assert_eq!(
        rediscover(&mut s, &h, &good(&local)),
        DiscoverAction::Mismatch
    );
    assert!(s.is_rejected(SLOT));
    assert_eq!(
        s.counters.discover_received, 1,
        "a recheck is no new Discover"
    );
    // The operator fixed the local file: it passes and is queued from TIME.
    let Ok(Resync::Recheck(h)) = s.resync(SLOT, Some(500)) else {
        panic!("rechecked again")
    };
    assert_eq!(
        rediscover(&mut s, &h, &good(&master)),
        DiscoverAction::Known
    );
    assert!(!s.is_rejected(SLOT));
    s.queue(SLOT, false);
    assert_eq!(s.next_queued(), Some(SLOT));
    let p = s.subscribe(SLOT, 36_000, 10, BIG_CAP).unwrap();
    assert_eq!(req(&p).0, 500);
}

#[test]
fn resync_of_a_rejected_file_whose_header_was_dropped_asks_for_resync_all() {
    let master = mh(0, 10, 10_000);
    let mut local = master.clone();
    local.season = 7;
    let mut s = SlaveFiles::new(SlaveConfig {
        rejected_headers: 1,
        ..SlaveConfig::default()
    });
    assert_eq!(
        discover(&mut s, &disc(&master), &good(&local)),
        DiscoverAction::Mismatch
    );
    // A second rejected file pushes the first one's header out of the table.
    assert_eq!(
        s.discover(
            &disc_named(&master, OTHER),
            &good(&local),
            Some(OTHER_SLOT),
            false
        ),
        DiscoverAction::Mismatch
    );
    assert_eq!(
        s.resync(SLOT, None),
        Err("no header; use replication.resync all")
    );
    assert!(matches!(s.resync(OTHER_SLOT, None), Ok(Resync::Recheck(_))));
}
