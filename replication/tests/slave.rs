//! The slave's per-file state machine (replication.md §2.7, §2.9; §3.4 U-SL-*,
//! §3.1 U-HDR-01).

use istatd_replication::pdu::Pdu;
use istatd_replication::slave::{
    check_discover, master_newest, DataAction, DiscoverAction, Local, Resync, SState, SlaveConfig,
    SlaveError, SlaveFiles,
};
use istatd_storage::format::{Bucket, CreateParams, Header, HEADER_SIZE};

const NAME: &str = "a/b/10s";
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

fn req(p: &Pdu) -> (i64, i64, &[u8]) {
    match p {
        Pdu::Request { from, n, name } => (*from, *n, name),
        other => panic!("not a Request: {other:?}"),
    }
}

fn buckets(times: &[i64]) -> Vec<Bucket> {
    times.iter().map(|&t| Bucket::sample(t, t as f64)).collect()
}

/// Subscribe NAME: a Discover of `h` for a file the slave holds (or not), queue it,
/// and return the first Request.
fn subscribe(s: &mut SlaveFiles, h: &Header, local: &Local, newest: i64, cap: i64) -> Pdu {
    let a = s.discover(&disc(h), local);
    let created = match a {
        DiscoverAction::Known => false,
        DiscoverAction::Create { .. } => true,
        other => panic!("unexpected {other:?}"),
    };
    s.queue(NAME, created);
    assert_eq!(s.next_queued().as_deref(), Some(NAME));
    s.subscribe(NAME, newest, h.cfg_interval as i64, cap)
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
    assert_eq!(
        s.discover(&disc(&h), &Local::Absent),
        DiscoverAction::Create { aside: false }
    );
    assert_eq!(s.counters.discover_received, 1);
    assert_eq!(s.state(NAME), Some(SState::Idle));
    s.queue(NAME, true);
    assert_eq!(s.counters.files_created, 1);
    assert_eq!(s.state(NAME), Some(SState::Queued));
    assert_eq!(s.queued(), 1);
    assert_eq!(s.next_queued().as_deref(), Some(NAME));
    let p = s.subscribe(NAME, 0, 10, h.capacity()).unwrap();
    assert_eq!(
        p,
        Pdu::Request {
            from: 0,
            n: 256,
            name: NAME.as_bytes().to_vec()
        }
    );
    assert_eq!(s.state(NAME), Some(SState::Outstanding));
    assert_eq!(s.counters.requests_sent, 1);
    // Not queued any more: no second subscribe.
    assert_eq!(s.subscribe(NAME, 0, 10, h.capacity()), None);
    assert_eq!(s.next_queued(), None);
}

#[test]
fn u_sl_01_capacity_clamp_on_a_new_file() {
    // A master far ahead of the ring: the first Request does not ask for buckets the
    // slave's ring would drop.
    let h = mh(1_000_000, 10, 10_000);
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let p = subscribe(&mut s, &h, &Local::Absent, 0, 512);
    assert_eq!(req(&p), (1_100_000 - 511 * 10, 256, NAME.as_bytes()));
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

fn apply(s: &mut SlaveFiles, times: &[i64], now: i64) -> Option<Pdu> {
    match s.data(NAME, buckets(times), 10, 0, now).expect("accepted") {
        DataAction::Apply { buckets } => {
            let n = buckets.len() as u32;
            s.applied(NAME, &buckets, Ok((n, 0)), 10, now)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn u_sl_03_follow_up() {
    let mut s = outstanding_at_35400();
    let times: Vec<i64> = (0..10).map(|i| 35_400 + 10 * i).collect();
    let p = apply(&mut s, &times, 0).expect("a follow-up");
    assert_eq!(req(&p), (35_500, 256, NAME.as_bytes()));
    assert_eq!(s.state(NAME), Some(SState::Outstanding));
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
    let a = s
        .data(NAME, buckets(&[0, i64::MAX - 5, 35_405]), 10, 0, 0)
        .expect("not fatal");
    assert_eq!(a, DataAction::Done, "no write, no follow-up");
    assert_eq!(s.state(NAME), Some(SState::Error));
    assert_eq!(s.counters.buckets_rejected, 3);
    assert_eq!(s.counters.apply_errors, 0);
    assert_eq!(s.counters.requests_sent, sent);
    assert_eq!(s.gauges().2, 1, "files in error");
    // Negative and >= 2^32 times too.
    let mut s = outstanding_at_35400();
    let a = s
        .data(NAME, buckets(&[-10, 1 << 32, i64::MIN]), 10, 0, 0)
        .unwrap();
    assert_eq!(a, DataAction::Done);
    assert_eq!(s.state(NAME), Some(SState::Error));
    // The retry asks again from the same fromTime.
    let retry = s.due_retries(30);
    assert_eq!(retry.len(), 1);
    assert_eq!(req(&retry[0]), (35_400, 256, NAME.as_bytes()));
}

#[test]
fn u_sl_07_bad_buckets_skipped_and_counted() {
    let mut s = outstanding_at_35400();
    let a = s
        .data(
            NAME,
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
    let a = s.data(NAME, buckets(&[35_405, 35_415]), 10, 5, 0).unwrap();
    assert!(matches!(a, DataAction::Apply { ref buckets } if buckets.len() == 2));
}

#[test]
fn u_sl_09_unsolicited_and_oversized() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    assert_eq!(
        s.data("no/such/10s", buckets(&[10]), 10, 0, 0),
        Err(SlaveError::Unexpected)
    );
    // Known but idle, and queued: not outstanding either.
    let h = mh(0, 10, 100);
    s.discover(&disc(&h), &good(h.clone()));
    assert_eq!(s.data(NAME, vec![], 10, 0, 0), Err(SlaveError::Unexpected));
    s.queue(NAME, false);
    assert_eq!(
        s.data(NAME, buckets(&[10]), 10, 0, 0),
        Err(SlaveError::Unexpected)
    );
    assert_eq!(SlaveError::Unexpected.text(), "Unexpected Data");

    let mut s = SlaveFiles::new(SlaveConfig {
        chunk_buckets: 2,
        ..SlaveConfig::default()
    });
    let p = subscribe(&mut s, &h, &good(h.clone()), 0, BIG_CAP);
    assert_eq!(req(&p).1, 2);
    assert_eq!(
        s.data(NAME, buckets(&[10, 20, 30]), 10, 0, 0),
        Err(SlaveError::ExceedsRequest)
    );
    assert_eq!(SlaveError::ExceedsRequest.text(), "Data exceeds request");
    // Exactly n is fine.
    assert!(s.data(NAME, buckets(&[10, 20]), 10, 0, 0).is_ok());
}

#[test]
fn u_sl_10_gone() {
    let mut s = outstanding_at_35400();
    let sent = s.counters.requests_sent;
    assert_eq!(s.data(NAME, vec![], 10, 0, 0), Ok(DataAction::Done));
    assert_eq!(s.state(NAME), Some(SState::Idle));
    assert_eq!(s.counters.files_gone, 1);
    assert_eq!(s.counters.requests_sent, sent, "no follow-up");
    // Data again now is unexpected.
    assert_eq!(s.data(NAME, vec![], 10, 0, 0), Err(SlaveError::Unexpected));
    // A later Discover subscribes it again.
    let h = mh(0, 10, 10_000);
    assert_eq!(
        s.discover(&disc(&h), &good(h.clone())),
        DiscoverAction::Known
    );
    s.queue(NAME, false);
    assert_eq!(s.state(NAME), Some(SState::Queued));
    assert_eq!(s.next_queued().as_deref(), Some(NAME));
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
            s.discover(&disc(&master), &good(local)),
            DiscoverAction::Mismatch,
            "{what}"
        );
        assert_eq!(s.counters.header_mismatch, 1);
        s.queue(NAME, false);
        assert_eq!(s.state(NAME), Some(SState::Idle), "{what}: not queued");
        assert_eq!(s.next_queued(), None);
        assert_eq!(s.gauges().3, 1, "rejected gauge");
        assert_eq!(s.counters.requests_sent, 0);
    }
    // A different capacity alone is accepted.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let mut l = master.clone();
    l.page_count = 99;
    assert_eq!(s.discover(&disc(&master), &good(l)), DiscoverAction::Known);
}

#[test]
fn u_sl_11_mismatch_while_outstanding_drains() {
    let mut s = outstanding_at_35400();
    let mut local = mh(0, 10, 10_000);
    local.fixed_count = 9;
    assert_eq!(
        s.discover(&disc(&mh(0, 10, 10_000)), &good(local)),
        DiscoverAction::Mismatch
    );
    assert_eq!(s.state(NAME), Some(SState::Draining));
    let sent = s.counters.requests_sent;
    assert_eq!(
        s.data(NAME, buckets(&[35_400]), 10, 0, 0),
        Ok(DataAction::Done)
    );
    assert_eq!(s.state(NAME), Some(SState::Idle));
    assert_eq!(s.counters.requests_sent, sent);
}

#[test]
fn u_sl_12_repeated_discover() {
    let mut s = outstanding_at_35400();
    let h = mh(0, 10, 10_000);
    let sent = s.counters.requests_sent;
    assert_eq!(
        s.discover(&disc(&h), &good(h.clone())),
        DiscoverAction::Known
    );
    s.queue(NAME, false);
    assert_eq!(s.state(NAME), Some(SState::Outstanding));
    assert_eq!(s.next_queued(), None);
    assert_eq!(s.subscribe(NAME, 36_000, 10, BIG_CAP), None);
    assert_eq!(s.counters.requests_sent, sent, "no second Request");
    // A queued file stays queued once.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    s.discover(&disc(&h), &good(h.clone()));
    s.queue(NAME, false);
    s.discover(&disc(&h), &good(h.clone()));
    s.queue(NAME, false);
    assert_eq!(s.next_queued().as_deref(), Some(NAME));
    s.subscribe(NAME, 0, 10, BIG_CAP).unwrap();
    assert_eq!(s.next_queued(), None);
}

#[test]
fn u_sl_15_apply_error_and_retries() {
    let mut s = outstanding_at_35400();
    let now = 1_000;
    let DataAction::Apply { buckets: b } = s
        .data(NAME, buckets(&[35_000, 35_400, 35_410]), 10, 0, now)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(s.applied(NAME, &b, Err(()), 10, now), None);
    assert_eq!(s.counters.apply_errors, 1);
    assert_eq!(s.state(NAME), Some(SState::Error));
    assert!(s.due_retries(now + 29).is_empty());
    let r = s.due_retries(now + 30);
    assert_eq!(r.len(), 1);
    // fromTime = min(failed Request's from 35,400, first bucket 35,000).
    assert_eq!(req(&r[0]), (35_000, 256, NAME.as_bytes()));
    assert_eq!(s.state(NAME), Some(SState::Outstanding));
    assert_eq!(s.counters.retries, 1);
    // Doubling: 60, 120, 240, 480, then 600 at most.
    let mut t = now + 30;
    for delay in [60, 120, 240, 480, 600, 600] {
        let DataAction::Apply { buckets: b } = s.data(NAME, buckets(&[35_000]), 10, 0, t).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.applied(NAME, &b, Err(()), 10, t), None);
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
    let DataAction::Apply { buckets: b } = s.data(NAME, buckets(&[35_020]), 10, 0, t).unwrap()
    else {
        panic!()
    };
    s.applied(NAME, &b, Err(()), 10, t);
    assert_eq!(s.due_retries(t + 30).len(), 1, "back to 30 s");
}

#[test]
fn u_sl_16_new_incarnation_idle() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let old = mh(0, 10, 100);
    let new = mh(1_000, 10, 50);
    assert_eq!(
        s.discover(&disc(&new), &good(old)),
        DiscoverAction::Create { aside: true }
    );
    assert_eq!(s.counters.incarnation_changed, 1);
    assert_eq!(s.counters.header_mismatch, 0);
    s.queue(NAME, true);
    assert_eq!(s.next_queued().as_deref(), Some(NAME));
    // The new file is empty: copied from 0.
    let p = s.subscribe(NAME, 0, 10, BIG_CAP).unwrap();
    assert_eq!(req(&p).0, 0);
}

#[test]
fn u_sl_16_new_incarnation_clears_rejected() {
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let mut bad = mh(0, 10, 100);
    bad.season = 77;
    s.discover(&disc(&mh(0, 10, 100)), &good(bad.clone()));
    assert_eq!(s.gauges().3, 1);
    assert_eq!(
        s.discover(&disc(&mh(1_000, 10, 100)), &good(bad)),
        DiscoverAction::Create { aside: true }
    );
    assert_eq!(s.gauges().3, 0);
    s.queue(NAME, true);
    assert_eq!(s.state(NAME), Some(SState::Queued));
}

#[test]
fn u_sl_16_new_incarnation_while_outstanding() {
    let mut s = outstanding_at_35400();
    let old = mh(0, 10, 10_000);
    let new = mh(1_000, 10, 50);
    let d = disc(&new);
    assert_eq!(s.discover(&d, &good(old.clone())), DiscoverAction::Nothing);
    assert_eq!(s.state(NAME), Some(SState::Draining));
    assert_eq!(s.counters.incarnation_changed, 1);
    let sent = s.counters.requests_sent;
    // Its Data is discarded and the pending Discover comes back.
    let a = s.data(NAME, buckets(&[35_400, 35_410]), 10, 0, 0).unwrap();
    assert_eq!(a, DataAction::Rediscover(Box::new(d)));
    assert_eq!(s.state(NAME), Some(SState::Idle));
    assert_eq!(s.counters.requests_sent, sent, "no follow-up");
    assert_eq!(s.counters.buckets_written, 0);
    // Processed again: the old file goes aside, the new one is copied from 0.
    assert_eq!(
        s.discover(&d, &good(old)),
        DiscoverAction::Create { aside: true }
    );
    s.queue(NAME, true);
    assert_eq!(s.next_queued().as_deref(), Some(NAME));
    assert_eq!(req(&s.subscribe(NAME, 0, 10, BIG_CAP).unwrap()).0, 0);
}

#[test]

fn u_sl_16_incarnation_counted_once() {
    let mut s = outstanding_at_35400();
    let old = mh(0, 10, 10_000);
    let d = disc(&mh(1_000, 10, 50));
    s.discover(&d, &good(old.clone()));
    let Ok(DataAction::Rediscover(h)) = s.data(NAME, buckets(&[35_400]), 10, 0, 0) else {
        panic!("expected Rediscover")
    };
    s.discover(&h, &good(old));
    assert_eq!(
        s.counters.incarnation_changed, 1,
        "one new incarnation (§2.9, I-26)"
    );
}

#[test]
fn u_sl_17_local_delete_while_outstanding() {
    let mut s = outstanding_at_35400();
    let sent = s.counters.requests_sent;
    s.deleted_locally(NAME);
    assert_eq!(s.state(NAME), Some(SState::Draining));
    assert_eq!(
        s.data(NAME, buckets(&[35_400, 35_410]), 10, 0, 0),
        Ok(DataAction::Done),
        "accepted, nothing written, no Unexpected Data"
    );
    assert_eq!(s.state(NAME), Some(SState::Idle));
    assert_eq!(s.counters.requests_sent, sent, "no follow-up");
    assert_eq!(s.counters.buckets_written, 0);
    // A delete of a queued file makes it idle.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 100);
    s.discover(&disc(&h), &good(h.clone()));
    s.queue(NAME, false);
    s.deleted_locally(NAME);
    assert_eq!(s.state(NAME), Some(SState::Idle));
    assert_eq!(s.next_queued(), None);
}

#[test]

fn u_sl_17_local_delete_during_the_write() {
    let mut s = outstanding_at_35400();
    let DataAction::Apply { buckets: b } = s.data(NAME, buckets(&[35_400]), 10, 0, 0).unwrap()
    else {
        panic!()
    };
    s.deleted_locally(NAME);
    assert_eq!(s.applied(NAME, &b, Ok((1, 0)), 10, 0), None, "no follow-up");
    assert_eq!(s.state(NAME), Some(SState::Idle));
}

#[test]
fn connection_reset_keeps_only_rejected() {
    let mut s = outstanding_at_35400();
    s.reset();
    assert_eq!(s.state(NAME), None);
    assert_eq!(s.gauges(), (0, 0, 0, 0, 0));
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
        let a = s.discover(b, &Local::Absent);
        assert!(matches!(a, DiscoverAction::Rejected(_)), "{what}: {a:?}");
        assert_eq!(s.counters.discover_rejected, 1, "{what}");
        assert_eq!(s.state(NAME), None, "{what}: no entry");
        assert_eq!(s.next_queued(), None);
    }
    // The limits themselves pass.
    let mut b = disc(&good);
    set_i64(&mut b, 48, 1 << 24);
    set_i64(&mut b, 40, 4096);
    set_i32(&mut b, 24, 0x7);
    assert!(check_discover(&b).is_ok());
}

// ----- replication.resync PATH (§2.14) ------------------------------------------------

fn gone_then_idle() -> SlaveFiles {
    let mut s = outstanding_at_35400();
    assert_eq!(s.data(NAME, vec![], 10, 0, 0), Ok(DataAction::Done));
    assert_eq!(s.state(NAME), Some(SState::Idle));
    s
}

#[test]
fn resync_path_requeues_an_idle_file_from_time() {
    let mut s = gone_then_idle();
    assert_eq!(s.resync("x/y/10s", None), Err("unknown file"));
    assert_eq!(s.resync(NAME, Some(100)), Ok(Resync::Queued));
    assert_eq!(s.state(NAME), Some(SState::Queued));
    assert_eq!(s.next_queued().as_deref(), Some(NAME));
    let p = s.subscribe(NAME, 36_000, 10, BIG_CAP).unwrap();
    assert_eq!(req(&p).0, 100, "min(resume point, TIME)");
}

#[test]

fn resync_path_from_applies_to_that_file_only() {
    let mut s = gone_then_idle();
    s.resync(NAME, Some(100)).unwrap();
    s.next_queued().unwrap();
    s.subscribe(NAME, 36_000, 10, BIG_CAP).unwrap();
    // Another file subscribed afterwards resumes from its own point.
    let other = "c/d/10s";
    let h = mh(0, 10, 10_000);
    assert_eq!(
        s.discover(&disc_named(&h, other), &good(&h)),
        DiscoverAction::Known
    );
    s.queue(other, false);
    assert_eq!(s.next_queued().as_deref(), Some(other));
    let p = s.subscribe(other, 36_000, 10, BIG_CAP).unwrap();
    assert_eq!(req(&p).0, 35_400, "another file is not resynced");
    // And on the next connection the file itself resumes normally.
    s.reset();
    let p = subscribe(&mut s, &h, &good(&h), 36_000, BIG_CAP);
    assert_eq!(req(&p).0, 35_400, "runtime only, for one subscription");
}

#[test]

fn resync_path_outstanding_next_request_uses_time() {
    let mut s = outstanding_at_35400();
    assert_eq!(s.resync(NAME, Some(1_000)), Ok(Resync::Flagged));
    let p = apply(&mut s, &[35_400, 35_410], 0).unwrap();
    assert_eq!(req(&p).0, 1_000);
}

#[test]
fn u_sl_15_apply_failing_when_most_writes_fail() {
    // §2.9: more than 10% of the subscribed files, and at least 100, in state error.
    let mut s = SlaveFiles::new(SlaveConfig::default());
    let h = mh(0, 10, 100);
    let names: Vec<String> = (0..1000).map(|i| format!("f/c{i}/10s")).collect();
    for n in &names {
        s.discover(&disc_named(&h, n), &Local::Absent);
        s.queue(n, true);
        let q = s.next_queued().unwrap();
        s.subscribe(&q, 0, 10, BIG_CAP).unwrap();
    }
    let fail = |s: &mut SlaveFiles, n: &str| {
        let DataAction::Apply { buckets: b } = s.data(n, buckets(&[1000]), 10, 0, 0).unwrap()
        else {
            panic!("not applied")
        };
        assert_eq!(s.applied(n, &b, Err(()), 10, 0), None);
    };
    for n in &names[..100] {
        fail(&mut s, n);
    }
    assert!(!s.apply_failing(), "100 of 1000 is not more than 10%");
    fail(&mut s, &names[100]);
    assert!(s.apply_failing(), "101 of 1000 is");
}

#[test]
fn resync_path_rechecks_a_rejected_file_against_its_kept_header() {
    let master = mh(0, 10, 10_000);
    let mut local = master.clone();
    local.fixed_count = 9;
    let mut s = SlaveFiles::new(SlaveConfig::default());
    assert_eq!(
        s.discover(&disc(&master), &good(&local)),
        DiscoverAction::Mismatch
    );
    assert!(s.is_rejected(NAME));
    // Still different: the recheck rejects it again.
    let Ok(Resync::Recheck(h)) = s.resync(NAME, Some(500)) else {
        panic!("a rejected file is rechecked")
    };
    assert_eq!(s.discover(&h, &good(&local)), DiscoverAction::Mismatch);
    assert!(s.is_rejected(NAME));
    assert_eq!(
        s.counters.discover_received, 1,
        "a recheck is no new Discover"
    );
    // The operator fixed the local file: it passes and is queued from TIME.
    let Ok(Resync::Recheck(h)) = s.resync(NAME, Some(500)) else {
        panic!("rechecked again")
    };
    assert_eq!(s.discover(&h, &good(&master)), DiscoverAction::Known);
    assert!(!s.is_rejected(NAME));
    s.queue(NAME, false);
    assert_eq!(s.next_queued().as_deref(), Some(NAME));
    let p = s.subscribe(NAME, 36_000, 10, BIG_CAP).unwrap();
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
        s.discover(&disc(&master), &good(&local)),
        DiscoverAction::Mismatch
    );
    // A second rejected file pushes the first one's header out of the table.
    let other = "c/d/10s";
    assert_eq!(
        s.discover(&disc_named(&master, other), &good(&local)),
        DiscoverAction::Mismatch
    );
    assert_eq!(
        s.resync(NAME, None),
        Err("no header; use replication.resync all")
    );
    assert!(matches!(s.resync(other, None), Ok(Resync::Recheck(_))));
}
