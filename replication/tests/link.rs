//! Handshake checks, Request checks, back-off and heartbeats (docs/replication-protocol.md,
//! "Handshake", "Master: discovery and answering", "Liveness and resume"; U-HS-01..07,
//! U-BO-01/02, U-KA-01..04 of its "Test plan").

use istatd_replication::link::{
    check_request, master_accept, slave_check_reply, Backoff, Heartbeat, Refusal, RequestKind,
    BACKOFF_MAX, MAX_PINGS,
};
use istatd_replication::pdu::{Pdu, UniqueId};

fn id(n: u8) -> UniqueId {
    UniqueId([n; 16])
}

// ----- handshake ----------------------------------------------------------------------

#[test]
fn u_hs_01_normal() {
    let (master, slave) = (id(1), id(2));
    let reply = master_accept(2, slave, master, None, true).expect("accepted");
    assert_eq!(
        reply,
        Pdu::Connect {
            version: 2,
            id: master
        }
    );
    let Pdu::Connect { version, id: got } = reply else {
        unreachable!()
    };
    assert_eq!(slave_check_reply(version, got, slave), Ok(()));
}

#[test]
fn u_hs_02_old_version() {
    for v in [0, 1] {
        let r = master_accept(v, id(2), id(1), None, true);
        assert_eq!(r, Err(Refusal::Version));
    }
    assert_eq!(Refusal::Version.text(), "Unsupported protocol version");
    assert!(Refusal::Version.is_configuration());
    // The version check comes first.
    assert_eq!(
        master_accept(1, id(1), id(1), Some(id(1)), false),
        Err(Refusal::Version)
    );
}

#[test]
fn u_hs_03_newer_version() {
    for v in [3, 7, u32::MAX] {
        assert_eq!(
            master_accept(v, id(2), id(1), None, true),
            Ok(Pdu::Connect {
                version: 2,
                id: id(1)
            }),
            "offer {v}"
        );
    }
}

#[test]
fn u_hs_04_bad_reply_version() {
    for v in [0, 1, 3, 9] {
        assert_eq!(
            slave_check_reply(v, id(1), id(2)),
            Err(Refusal::Version),
            "v{v}"
        );
    }
    assert_eq!(slave_check_reply(2, id(1), id(2)), Ok(()));
}

#[test]
fn u_hs_05_self() {
    assert_eq!(
        master_accept(2, id(1), id(1), None, true),
        Err(Refusal::SelfConnect)
    );
    assert_eq!(
        slave_check_reply(2, id(3), id(3)),
        Err(Refusal::SelfConnect)
    );
    assert_eq!(Refusal::SelfConnect.text(), "I refuse to talk to myself");
    assert!(Refusal::SelfConnect.is_configuration());
    // A configuration failure sends the back-off to the maximum.
    let mut b = Backoff::default();
    assert_eq!(b.next_base(), 3);
    b.to_max();
    assert_eq!(b.next_base(), BACKOFF_MAX);
    assert_eq!(b.next_base(), BACKOFF_MAX);
}

#[test]
fn u_hs_06_cycle() {
    let x = id(9);
    assert_eq!(
        master_accept(2, x, id(1), Some(x), true),
        Err(Refusal::Cycle)
    );
    assert_eq!(Refusal::Cycle.text(), "Replication cycle");
    assert!(Refusal::Cycle.is_configuration());
    // Self is checked before cycle.
    assert_eq!(
        master_accept(2, id(1), id(1), Some(id(1)), true),
        Err(Refusal::SelfConnect)
    );
    // Another master is fine.
    assert!(master_accept(2, id(8), id(1), Some(x), true).is_ok());
}

#[test]
fn u_hs_07_too_many() {
    assert_eq!(
        master_accept(2, id(5), id(1), None, false),
        Err(Refusal::TooMany)
    );
    assert_eq!(Refusal::TooMany.text(), "Too many replicas");
    assert!(!Refusal::TooMany.is_configuration(), "ordinary back-off");
    // Cycle is checked before the slot count.
    assert_eq!(
        master_accept(2, id(9), id(1), Some(id(9)), false),
        Err(Refusal::Cycle)
    );
}

// ----- Request checks ("Master: discovery and answering") -----------------------------

#[test]
fn check_request_rules() {
    assert_eq!(
        check_request(1_700_000_000, 0, b"").map_err(|e| e.to_string()),
        Ok(RequestKind::Ping)
    );
    assert_eq!(
        check_request(-7, 0, b"").map_err(|e| e.to_string()),
        Ok(RequestKind::Ping)
    );
    let m3 = "Malformed PDU id 3".to_string();
    assert_eq!(
        check_request(0, 0, b"a/b/10s").map_err(|e| e.to_string()),
        Err(m3.clone()),
        "n = 0 with a name"
    );
    assert_eq!(
        check_request(0, -1, b"a/b/10s").map_err(|e| e.to_string()),
        Err(m3.clone()),
        "n < 0"
    );
    assert_eq!(
        check_request(0, 5, b"").map_err(|e| e.to_string()),
        Err(m3.clone()),
        "ping with n != 0"
    );
    assert_eq!(
        check_request((1 << 32) + 100, 10, b"a/b/10s").map_err(|e| e.to_string()),
        Err(m3.clone()),
        "fromTime >= 2^32"
    );
    assert_eq!(
        check_request(1 << 32, 10, b"a/b/10s").map_err(|e| e.to_string()),
        Err(m3.clone())
    );
    assert_eq!(
        check_request(i64::MAX, 10, b"a/b/10s").map_err(|e| e.to_string()),
        Err(m3)
    );
    assert_eq!(
        check_request((1 << 32) - 1, 10, b"a/b/10s").map_err(|e| e.to_string()),
        Ok(RequestKind::File {
            from: (1 << 32) - 1,
            n: 10
        })
    );
    assert_eq!(
        check_request(-5, 5000, b"a/b/10s").map_err(|e| e.to_string()),
        Ok(RequestKind::File { from: -5, n: 5000 })
    );
    for bad in [
        &b"../x/10s"[..],
        b"../../etc/x/10s",
        b"/abs/10s",
        b"10s",
        b"a/b/..",
    ] {
        assert_eq!(
            check_request(0, 256, bad).map_err(|e| e.to_string()),
            Err("Bad file name".to_string()),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

// ----- back-off ("Liveness and resume") -----------------------------------------------

#[test]
fn u_bo_01_base_sequence() {
    let mut b = Backoff::default();
    let seq: Vec<u64> = (0..12).map(|_| b.next_base()).collect();
    assert_eq!(seq, vec![3, 6, 10, 16, 25, 39, 60, 91, 138, 180, 180, 180]);
}

#[test]
fn u_bo_01_jitter_bounds() {
    let bases = [3u64, 6, 10, 16, 25, 39, 60, 91, 138, 180, 180];
    let mut lo = Backoff::default();
    let mut hi = Backoff::default();
    let mut mid = Backoff::default();
    for &base in &bases {
        let jmax = if base < 30 { 3 } else { 15 };
        assert_eq!(Backoff::jitter_max(base), jmax);
        assert_eq!(lo.next_delay(0.0), base, "no jitter at 0.0");
        assert_eq!(hi.next_delay(0.999), base + jmax, "full jitter at 0.999");
        let d = mid.next_delay(0.5);
        assert!(d >= base && d <= base + jmax);
    }
    // Jitter is never compounded into the base: after eleven maximal draws the next
    // delay is still 180 + at most 15.
    assert_eq!(hi.next_delay(0.999), 195);
    assert_eq!(hi.next_delay(0.0), 180);
}

#[test]
fn u_bo_02_reset_only_after_30s_connected() {
    let mut b = Backoff::default();
    assert_eq!(b.next_base(), 3);
    assert_eq!(b.next_base(), 6);
    // Dies 5 s after the handshake: keeps growing.
    b.connected(100);
    b.disconnected(105);
    assert_eq!(b.next_base(), 10);
    // 29 s is not enough.
    b.connected(200);
    b.disconnected(229);
    assert_eq!(b.next_base(), 16);
    // A disconnect without a handshake does not reset.
    b.disconnected(10_000);
    assert_eq!(b.next_base(), 25);
    // 30 s connected: starts over.
    b.connected(300);
    b.disconnected(330);
    assert_eq!(b.next_base(), 3);
    assert_eq!(b.next_base(), 6);
    // The connection time is used once.
    b.disconnected(1_000);
    assert_eq!(b.next_base(), 10);
    b.reset();
    assert_eq!(b.next_base(), 3);
}

// ----- heartbeats ("Liveness and resume") ---------------------------------------------

#[test]
fn u_ka_01_ping_each_keepalive_while_nothing_received() {
    let mut hb = Heartbeat::new(0, 10, 60);
    let pings: Vec<i64> = (0..=35).filter(|&t| hb.should_ping(t)).collect();
    assert_eq!(pings, vec![10, 20, 30]);
    assert_eq!(hb.outstanding, 3);
    // Pongs take one off each.
    assert!(hb.pong());
    hb.received(36);
    assert_eq!(hb.outstanding, 2);
    // Input restarts the silence count.
    assert!(!hb.should_ping(40));
    assert!(!hb.should_ping(45));
    assert!(hb.should_ping(46));
    assert_eq!(hb.outstanding, 3);
    assert_eq!(
        Pdu::ping(46),
        Pdu::Request {
            from: 46,
            n: 0,
            name: vec![]
        }
    );
}

#[test]
fn u_ka_01_at_most_64_outstanding() {
    let mut hb = Heartbeat::new(0, 10, 1_000_000);
    let pings = (1..=2_000).filter(|&t| hb.should_ping(t)).count();
    assert_eq!(pings, MAX_PINGS as usize);
    assert_eq!(MAX_PINGS, 64);
    assert_eq!(hb.outstanding, 64);
    // One pong lets one more ping out.
    assert!(hb.pong());
    assert!(hb.should_ping(2_010));
    assert!(!hb.should_ping(2_020));
}

#[test]
fn u_ka_02_idle_timeout() {
    let hb = Heartbeat::new(0, 10, 60);
    assert!(!hb.timed_out(59));
    assert!(hb.timed_out(60));
    let mut hb = Heartbeat::new(0, 10, 60);
    hb.received(30);
    assert!(!hb.timed_out(89));
    assert!(hb.timed_out(90));
    assert_eq!(hb.idle_for(90), 60);
    // Pings sent do not count as input.
    let mut hb = Heartbeat::new(0, 10, 60);
    for t in 0..60 {
        hb.should_ping(t);
    }
    assert!(hb.timed_out(60));
}

#[test]
fn u_ka_03_paused_idle_timer() {
    let mut hb = Heartbeat::new(0, 10, 60);
    for t in 0..=300 {
        hb.paused_until(t);
        assert!(!hb.timed_out(t), "timed out at {t} while paused");
    }
    // Reading resumes: the idle timer starts from the end of the pause.
    assert!(!hb.timed_out(359));
    assert!(hb.timed_out(360));
}

#[test]
fn u_ka_03_pings_continue_while_paused() {
    // The slave keeps pinging while it has itself stopped reading, so the master, whose
    // idle timer does not pause, keeps receiving input; 300 s of pause gives a ping every
    // 10 s (30 outstanding), and the 30 pongs are then accepted.
    let mut hb = Heartbeat::new(0, 10, 60);
    let mut pings = 0;
    for t in 1..=300 {
        hb.paused_until(t);
        if hb.should_ping(t) {
            pings += 1;
        }
        assert!(!hb.timed_out(t));
    }
    assert_eq!(pings, 30);
    assert_eq!(hb.outstanding, 30);
    hb.received(301);
    for _ in 0..30 {
        assert!(hb.pong());
    }
    assert!(!hb.pong());
}

#[test]
fn u_ka_04_stray_pong() {
    let mut hb = Heartbeat::new(0, 10, 60);
    assert!(!hb.pong(), "no ping outstanding");
    assert_eq!(hb.outstanding, 0);
    assert!(hb.should_ping(10));
    assert!(hb.pong());
    assert!(!hb.pong());
}
