//! The anti-entropy scrub (protocol version 3): its PDUs, the version negotiation that
//! keeps version 2 the default, the range digests against the replica-equality rule,
//! and one shard's scrub state machine.

use istatd_replication::link::{master_accept, master_accept_upto, slave_check_reply_upto};
use istatd_replication::pdu::{
    FrameDecoder, Pdu, ProtocolError, RangeDigest, UniqueId, MAX_RANGES, RANGE_BUCKETS, VERSION,
    VERSION_SCRUB,
};
use istatd_replication::scrub::{
    check_digest_request, check_repair_request, differing, digests, ScrubConfig, ScrubError,
    ScrubState, Scrubber,
};
use istatd_storage::format::Bucket;
use proptest::prelude::*;

fn id(n: u8) -> UniqueId {
    UniqueId([n; 16])
}

fn b(t: i64, v: f64) -> Bucket {
    Bucket {
        time: t,
        sum: v,
        min: v as f32,
        max: v as f32,
        count: 1,
        sum_sq: (v * v) as f32,
    }
}

fn decode(version: u32, bytes: &[u8]) -> Result<Vec<Pdu>, ProtocolError> {
    let mut d = FrameDecoder::new();
    d.set_version(version);
    let mut out = Vec::new();
    d.feed(bytes, &mut out)?;
    Ok(out)
}

fn scrub_pdus() -> Vec<Pdu> {
    vec![
        Pdu::DigestRequest {
            from: 1_600_000_000,
            ranges: 256,
            name: b"a/b/10s".to_vec(),
        },
        Pdu::Digest {
            from: 1_600_000_000,
            ranges: vec![
                RangeDigest {
                    mask: u64::MAX,
                    hash: 7,
                },
                RangeDigest { mask: 0, hash: 0 },
            ],
            name: b"a/b/10s".to_vec(),
        },
        Pdu::Digest {
            from: 5,
            ranges: Vec::new(),
            name: b"x/5m".to_vec(),
        },
        Pdu::RepairRequest {
            from: 1_600_000_640,
            n: 64,
            name: b"a/b/10s".to_vec(),
        },
        Pdu::RepairData {
            buckets: vec![b(1_600_000_640, 1.5), b(1_600_000_650, 2.0)],
            name: b"a/b/10s".to_vec(),
        },
    ]
}

#[test]
fn v3_pdus_round_trip_and_are_unknown_on_version_2() {
    for p in scrub_pdus() {
        let f = p.to_frame();
        assert_eq!(f.len(), 8 + p.payload_len());
        assert_eq!(decode(VERSION_SCRUB, &f), Ok(vec![p.clone()]), "{p:?}");
        // On a version 2 link the id is unknown, refused at the frame header.
        assert_eq!(
            decode(VERSION, &f[..8]),
            Err(ProtocolError::Unhandled(p.id())),
            "{p:?}"
        );
    }
}

#[test]
fn v3_size_rules() {
    // A Digest claiming more ranges than the payload holds, or more than 256.
    let mut f = Pdu::Digest {
        from: 1,
        ranges: vec![RangeDigest::default(); 2],
        name: b"a/10s".to_vec(),
    }
    .to_frame();
    f[16..20].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(decode(3, &f), Err(ProtocolError::Malformed(7)));
    f[16..20].copy_from_slice(&(MAX_RANGES as u32 + 1).to_le_bytes());
    assert_eq!(decode(3, &f), Err(ProtocolError::Malformed(7)));
    // Too large at header time, before any payload is buffered.
    let mut big = Vec::new();
    big.extend_from_slice(&6u32.to_le_bytes());
    big.extend_from_slice(&1000u32.to_le_bytes());
    assert_eq!(decode(3, &big), Err(ProtocolError::TooLarge));
    // A name without its NUL.
    let mut f = Pdu::DigestRequest {
        from: 1,
        ranges: 1,
        name: b"a/10s".to_vec(),
    }
    .to_frame();
    let last = f.len() - 1;
    f[last] = b'x';
    assert_eq!(decode(3, &f), Err(ProtocolError::Malformed(6)));
}

#[test]
fn version_3_only_when_both_speak_it() {
    // The default node stays a version 2 node (U-HS-03 unchanged).
    let reply = master_accept(3, id(2), id(1), None, true).unwrap();
    assert_eq!(
        reply,
        Pdu::Connect {
            version: 2,
            id: id(1)
        }
    );
    // A scrub-enabled master answers a scrub-enabled slave with 3, an old slave with 2.
    for (offer, want) in [(3, 3), (2, 2), (9, 3)] {
        let reply = master_accept_upto(VERSION_SCRUB, offer, id(2), id(1), None, true).unwrap();
        assert_eq!(
            reply,
            Pdu::Connect {
                version: want,
                id: id(1)
            }
        );
    }
    // A scrub-enabled slave accepts 2 or 3; a plain one refuses 3.
    assert!(slave_check_reply_upto(3, 3, id(1), id(2)).is_ok());
    assert!(slave_check_reply_upto(3, 2, id(1), id(2)).is_ok());
    assert!(slave_check_reply_upto(3, 4, id(1), id(2)).is_err());
    assert!(slave_check_reply_upto(2, 3, id(1), id(2)).is_err());
}

#[test]
fn request_checks() {
    assert_eq!(
        check_digest_request(100, 1, b"a/10s").map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(
        check_digest_request(100, 256, b"a/10s").map_err(|e| e.to_string()),
        Ok(())
    );
    for (from, ranges) in [(100, 0), (100, 257), (-1, 1), (1 << 32, 1)] {
        assert_eq!(
            check_digest_request(from, ranges, b"a/10s").map_err(|e| e.to_string()),
            Err("Malformed PDU id 6".to_string())
        );
    }
    assert_eq!(
        check_digest_request(1, 1, b"../10s").map_err(|e| e.to_string()),
        Err("Bad file name".to_string())
    );
    assert_eq!(
        check_repair_request(100, 64, b"a/10s").map_err(|e| e.to_string()),
        Ok(())
    );
    for (from, n) in [(100, 0), (100, 2049), (-5, 1)] {
        assert_eq!(
            check_repair_request(from, n, b"a/10s").map_err(|e| e.to_string()),
            Err("Malformed PDU id 8".to_string())
        );
    }
    assert_eq!(
        check_repair_request(1, 1, b"").map_err(|e| e.to_string()),
        Err("Bad file name".to_string())
    );
}

/// Replica equality of one range, computed directly (docs/replication-protocol.md,
/// "Replica equality and residual risks"): every master bucket has an identical slave
/// bucket; slave-only buckets do not count.
fn range_equal(master: &[Bucket], slave: &[Bucket], lo: i64, hi: i64) -> bool {
    master
        .iter()
        .filter(|m| m.time >= lo && m.time < hi)
        .all(|m| slave.iter().any(|s| s.time == m.time && s == m))
}

proptest! {
    /// The digest comparison finds exactly the ranges that break replica equality.
    #[test]
    fn differing_is_replica_inequality(
        master_slots in proptest::collection::btree_map(0i64..400, 0u8..4, 0..120),
        edits in proptest::collection::vec((0i64..400, 0u8..3), 0..20),
    ) {
        let iv = 10i64;
        let from = 1_000_000i64;
        let master: Vec<Bucket> = master_slots
            .iter()
            .map(|(s, v)| b(from + s * iv, f64::from(*v)))
            .collect();
        let mut slave = master.clone();
        for (s, kind) in edits {
            let t = from + s * iv;
            match kind {
                // Lose a bucket.
                0 => slave.retain(|x| x.time != t),
                // Change (or add) one.
                1 => {
                    slave.retain(|x| x.time != t);
                    slave.push(b(t, 99.0));
                }
                // A slave-only bucket, where the master has none (not a difference).
                _ => {
                    if !master.iter().any(|m| m.time == t) {
                        slave.retain(|x| x.time != t);
                        slave.push(b(t, 5.0));
                    }
                }
            }
        }
        slave.sort_by_key(|x| x.time);
        let ranges = 7usize;
        let remote = digests(from, iv, ranges, &master);
        let diff = differing(from, iv, &remote, &slave);
        let span = RANGE_BUCKETS * iv;
        let want: Vec<usize> = (0..ranges)
            .filter(|&r| {
                let lo = from + r as i64 * span;
                !range_equal(&master, &slave, lo, lo + span)
            })
            .collect();
        prop_assert_eq!(diff, want);
    }
}

#[test]
fn digests_ignore_off_grid_and_out_of_range_buckets() {
    let iv = 10;
    let from = 1000;
    let d = digests(
        from,
        iv,
        1,
        &[b(995, 1.0), b(1005, 1.0), b(1000 + 64 * 10, 1.0)],
    );
    assert_eq!(d, vec![RangeDigest::default()]);
    let d = digests(from, iv, 2, &[b(1000, 1.0), b(1000 + 64 * 10 + 30, 1.0)]);
    assert_eq!(d[0].mask, 1);
    assert_eq!(d[1].mask, 1 << 3);
    // Order does not matter.
    let a = digests(from, iv, 1, &[b(1000, 1.0), b(1010, 2.0)]);
    let c = digests(from, iv, 1, &[b(1010, 2.0), b(1000, 1.0)]);
    assert_eq!(a, c);
    assert_ne!(
        a[0].hash,
        digests(from, iv, 1, &[b(1000, 2.0), b(1010, 1.0)])[0].hash
    );
}

fn scrubber() -> Scrubber {
    Scrubber::new(ScrubConfig {
        overlap: 600,
        max_repairs: 4,
    })
}

/// A whole pass over two files: digests, one repair, a file the master lacks.
#[test]
fn a_pass_digests_repairs_and_ends() {
    let mut s = scrubber();
    assert_eq!(s.state(), ScrubState::Idle);
    s.start(vec!["a/10s".into(), "gone/10s".into()], 100);
    assert_eq!(s.progress(), (0, 2));
    let f = s.next_file(100).unwrap();
    assert_eq!(f, "a/10s");
    // Interval 10 s, zero 3, oldest 1003, newest 1003 + 1000 slots; the scrub stops
    // 600 s (60 slots) below the newest: 940 slots = 14 whole ranges, then one range
    // ending at the limit.
    s.begin_file(&f, Some((10, 3, 1003, 1003 + 10_000)));
    let (p, slots) = s.next_digest().unwrap();
    assert_eq!(
        p,
        Pdu::DigestRequest {
            from: 1003,
            ranges: 14,
            name: b"a/10s".to_vec()
        }
    );
    assert_eq!(slots, 14 * 64);
    // One Digest at a time.
    assert!(s.next_digest().is_none());
    // A Digest for something else is a protocol error.
    assert_eq!(
        s.digest(b"a/10s", 1013, 14),
        Err(ScrubError::UnexpectedDigest)
    );
    assert_eq!(
        s.digest(b"a/10s", 1003, 3),
        Err(ScrubError::UnexpectedDigest)
    );
    let job = s.digest(b"a/10s", 1003, 14).unwrap().unwrap();
    assert_eq!(job.from, 1003);
    assert_eq!(job.end, 1003 + 14 * 640);
    s.compared(&job, 14, &[2]);
    assert_eq!(s.counters.files_checked, 0);
    // The tail range ends at the newest minus the overlap.
    let (p, _) = s.next_digest().unwrap();
    let limit = 1003 + 10_000 - 600;
    assert_eq!(
        p,
        Pdu::DigestRequest {
            from: limit - 640,
            ranges: 1,
            name: b"a/10s".to_vec()
        }
    );
    let job = s.digest(b"a/10s", limit - 640, 1).unwrap().unwrap();
    s.compared(&job, 1, &[]);
    assert_eq!(s.counters.ranges_checked, 15);
    assert_eq!(s.counters.ranges_differing, 1);
    assert_eq!(s.counters.files_checked, 1);
    let r = s.next_repair().unwrap();
    assert_eq!(
        r,
        Pdu::RepairRequest {
            from: 1003 + 2 * 640,
            n: 64,
            name: b"a/10s".to_vec()
        }
    );
    // Next file: the master does not have it.
    assert_eq!(s.next_file(101).as_deref(), Some("gone/10s"));
    s.begin_file("gone/10s", Some((10, 0, 10, 100_000)));
    let (p, _) = s.next_digest().unwrap();
    let Pdu::DigestRequest { from, .. } = p else {
        panic!()
    };
    assert_eq!(s.digest(b"gone/10s", from, 0), Ok(None));
    assert_eq!(s.counters.files_missing, 1);
    // Files done, a repair still awaited: the pass is not over.
    assert_eq!(s.next_file(102), None);
    assert_eq!(s.state(), ScrubState::Running);
    // The repair: a bucket off the range is dropped, the others kept.
    let base = 1003 + 2 * 640;
    let got = s
        .repair_data(
            b"a/10s",
            vec![
                b(base, 1.0),
                b(base + 5, 1.0),
                b(base + 640, 1.0),
                b(base + 10, 2.0),
            ],
        )
        .unwrap();
    assert_eq!(got, vec![b(base, 1.0), b(base + 10, 2.0)]);
    assert_eq!(s.counters.buckets_rejected, 2);
    assert_eq!(s.counters.ranges_repaired, 1);
    assert_eq!(
        s.repair_data(b"a/10s", vec![]),
        Err(ScrubError::UnexpectedRepair)
    );
    assert_eq!(s.next_file(103), None);
    assert_eq!(s.state(), ScrubState::Done);
    assert_eq!(s.counters.passes_done, 1);
    assert_eq!(s.ended_at, Some(103));
}

#[test]
fn a_long_file_takes_several_digests_and_repairs_are_bounded() {
    let mut s = scrubber();
    s.start(vec!["a/10s".into()], 0);
    let f = s.next_file(0).unwrap();
    // 100,000 slots below the overlap, 256 ranges per Digest.
    s.begin_file(&f, Some((10, 0, 10, 10 + 10 * 100_060)));
    let mut froms = Vec::new();
    while let Some((Pdu::DigestRequest { from, ranges, .. }, _)) = s.next_digest() {
        froms.push((from, ranges));
        let job = s.digest(b"a/10s", from, ranges as usize).unwrap().unwrap();
        // Every range differs in the first Digest: the repairs fill up (4 at most).
        let diff: Vec<usize> = if froms.len() == 1 {
            (0..6).collect()
        } else {
            vec![]
        };
        s.compared(&job, ranges as usize, &diff);
        if froms.len() == 1 {
            assert!(s.next_digest().is_none(), "too many repairs queued");
            while s.next_repair().is_some() {}
            assert!(s.next_digest().is_none(), "too many repairs awaited");
            for _ in 0..6 {
                s.repair_data(b"a/10s", vec![]).unwrap();
            }
        }
    }
    // 1,562 whole ranges in 7 Digests, then the tail range ending at the limit.
    assert_eq!(froms.len(), 8);
    assert_eq!(froms[0], (10, 256));
    assert_eq!(froms[1], (10 + 256 * 640, 256));
    assert_eq!(froms[6].1, 1562 - 6 * 256);
    assert_eq!(froms[7], (1_000_010 - 640, 1));
    assert_eq!(s.counters.ranges_checked, 1563);
    assert_eq!(s.counters.files_checked, 1);
}

#[test]
fn link_loss_asks_again_and_stop_accepts_late_replies() {
    let mut s = scrubber();
    s.start(vec!["a/10s".into(), "b/10s".into()], 0);
    let f = s.next_file(0).unwrap();
    s.begin_file(&f, Some((10, 0, 10, 10 + 10 * 1000)));
    let (first, _) = s.next_digest().unwrap();
    s.link_lost();
    // The same Digest is asked again on the next link.
    let (again, _) = s.next_digest().unwrap();
    assert_eq!(first, again);
    let Pdu::DigestRequest { from, ranges, .. } = again else {
        panic!()
    };
    let job = s.digest(b"a/10s", from, ranges as usize).unwrap().unwrap();
    s.compared(&job, ranges as usize, &[0, 1]);
    let r1 = s.next_repair().unwrap();
    s.link_lost();
    // Repairs sent are sent again, in order.
    assert_eq!(s.next_repair(), Some(r1));
    assert!(s.next_repair().is_some());
    s.stop();
    assert_eq!(s.state(), ScrubState::Stopped);
    assert!(s.next_file(1).is_none());
    // Replies on their way are still accepted.
    assert!(s.repair_data(b"a/10s", vec![]).is_ok());
    assert!(s.repair_data(b"a/10s", vec![]).is_ok());
    assert!(s.is_quiet());
}

#[test]
fn short_or_empty_files_are_checked_without_a_digest() {
    let mut s = scrubber();
    s.start(vec!["a/10s".into(), "b/10s".into(), "c/10s".into()], 0);
    // Less than one range below the overlap.
    let f = s.next_file(0).unwrap();
    s.begin_file(&f, Some((10, 0, 10, 10 + 600 + 630)));
    assert!(s.next_digest().is_none());
    // Empty file.
    let f = s.next_file(0).unwrap();
    s.begin_file(&f, Some((10, 0, 0, 0)));
    // Gone locally.
    let f = s.next_file(0).unwrap();
    s.begin_file(&f, None);
    assert_eq!(s.next_file(1), None);
    assert_eq!(s.state(), ScrubState::Done);
    assert_eq!(s.counters.files_checked, 3);
    assert_eq!(s.counters.digests_sent, 0);
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0x21u8..0x7f, 1..255)
}

fn arb_v3_pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        (any::<i64>(), any::<u32>(), name()).prop_map(|(from, ranges, name)| Pdu::DigestRequest {
            from,
            ranges,
            name
        }),
        (
            any::<i64>(),
            proptest::collection::vec((any::<u64>(), any::<u64>()), 0..=256),
            name()
        )
            .prop_map(|(from, r, name)| Pdu::Digest {
                from,
                ranges: r
                    .into_iter()
                    .map(|(mask, hash)| RangeDigest { mask, hash })
                    .collect(),
                name
            }),
        (any::<i64>(), any::<i64>(), name()).prop_map(|(from, n, name)| Pdu::RepairRequest {
            from,
            n,
            name
        }),
        (proptest::collection::vec(any::<i64>(), 0..64), name()).prop_map(|(t, name)| {
            Pdu::RepairData {
                buckets: t.into_iter().map(|t| b(t, 1.0)).collect(),
                name,
            }
        }),
    ]
}

proptest! {
    /// Every v3 PDU survives encoding and decoding, cut anywhere.
    #[test]
    fn v3_round_trip_split_anywhere(p in arb_v3_pdu(), cut in any::<prop::sample::Index>()) {
        let f = p.to_frame();
        let at = cut.index(f.len() + 1);
        let mut d = FrameDecoder::new();
        d.set_version(VERSION_SCRUB);
        let mut out = Vec::new();
        d.feed(&f[..at], &mut out).unwrap();
        d.feed(&f[at..], &mut out).unwrap();
        prop_assert_eq!(out, vec![p]);
    }

    /// Arbitrary bytes on a v3 link: PDUs or one error, never a panic, and nothing
    /// after an error.
    #[test]
    fn v3_decoder_takes_any_bytes(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        ids in proptest::collection::vec(0u32..12, 0..4),
    ) {
        let mut d = FrameDecoder::new();
        d.set_version(VERSION_SCRUB);
        let mut out = Vec::new();
        let mut failed = false;
        for (i, c) in chunks.iter().enumerate() {
            let mut bytes = c.clone();
            // Steer some frame headers to the scrub ids.
            if let (Some(id), true) = (ids.get(i), bytes.len() >= 4) {
                bytes[..4].copy_from_slice(&id.to_le_bytes());
            }
            if failed {
                prop_assert!(d.feed(&bytes, &mut out).is_err());
            } else if d.feed(&bytes, &mut out).is_err() {
                failed = true;
            }
        }
    }
}
