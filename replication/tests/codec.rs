//! Codec and framing (U-PDU-01..03, U-FR-01..07, Z-01 of docs/replication-protocol.md,
//! "Test plan").

use istatd_replication::pdu::{
    FrameDecoder, Pdu, ProtocolError, RawFrames, UniqueId, MAX_PAYLOAD, VERSION,
};
use istatd_storage::format::{Bucket, CreateParams, Header, HEADER_SIZE};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// Decode a whole byte string in one feed; Ok only when it holds no partial frame.
fn decode_all(bytes: &[u8]) -> Result<Vec<Pdu>, ProtocolError> {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    let used = d.feed(bytes, &mut out)?;
    assert_eq!(used, bytes.len());
    assert_eq!(d.buffered(), 0, "a partial frame is left over");
    Ok(out)
}

/// The error of a frame (header + payload) fed at once.
fn frame_error(id: u32, payload: &[u8]) -> ProtocolError {
    let mut f = Vec::new();
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    let e = d.feed(&f, &mut out).expect_err("the frame must be refused");
    assert!(out.is_empty(), "no PDU before the error");
    e
}

fn frame(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

fn golden_id() -> UniqueId {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&12345u32.to_le_bytes());
    for (i, x) in b[4..].iter_mut().enumerate() {
        *x = (i as u8) * 0x11;
    }
    UniqueId(b)
}

fn header() -> Header {
    let mut h = Header::new_file(&CreateParams {
        interval: 10,
        page_count: 4,
        flags: 0x1,
        zero_time: 1_000_000,
        lambda: 0.5,
        season: 86_400,
        fixed_count: 7,
        unit: "ms".into(),
        name: "/var/store/some/name/10s".into(),
    });
    h.last_bucket = 100;
    h.last_time = 1_001_000;
    h
}

// ----- U-PDU-01: golden frames of Appendix A ------------------------------------------

fn goldens() -> Vec<(&'static str, Pdu, Vec<u8>)> {
    vec![
        (
            "connect",
            Pdu::Connect {
                version: 2,
                id: golden_id(),
            },
            hex("01 00 00 00 14 00 00 00 02 00 00 00 39 30 00 00
                 00 11 22 33 44 55 66 77 88 99 aa bb"),
        ),
        (
            "request",
            Pdu::Request {
                from: 1_000_000,
                n: 256,
                name: b"some/name/10s".to_vec(),
            },
            hex("03 00 00 00 1e 00 00 00 40 42 0f 00 00 00 00 00
                 00 01 00 00 00 00 00 00 73 6f 6d 65 2f 6e 61 6d
                 65 2f 31 30 73 00"),
        ),
        (
            "ping",
            Pdu::ping(1_700_000_000),
            hex("03 00 00 00 11 00 00 00 00 f1 53 65 00 00 00 00
                 00 00 00 00 00 00 00 00 00"),
        ),
        (
            "data",
            Pdu::Data {
                buckets: vec![Bucket {
                    time: 1_000_000,
                    sum: 3.0,
                    min: 1.0,
                    max: 2.0,
                    count: 2,
                    sum_sq: 5.0,
                }],
                name: b"some/name/10s".to_vec(),
            },
            hex("04 00 00 00 36 00 00 00 01 00 00 00 00 00 00 00
                 40 42 0f 00 00 00 00 00 00 00 00 00 00 00 08 40
                 00 00 80 3f 00 00 00 40 02 00 00 00 00 00 a0 40
                 73 6f 6d 65 2f 6e 61 6d 65 2f 31 30 73 00"),
        ),
        (
            "pong",
            Pdu::pong(),
            hex("04 00 00 00 09 00 00 00 00 00 00 00 00 00 00 00 00"),
        ),
        (
            "error",
            Pdu::error("I refuse to talk to myself"),
            hex("05 00 00 00 1b 00 00 00 49 20 72 65 66 75 73 65
                 20 74 6f 20 74 61 6c 6b 20 74 6f 20 6d 79 73 65
                 6c 66 00"),
        ),
    ]
}

#[test]
fn u_pdu_01_golden_frames_encode_exactly() {
    for (what, pdu, bytes) in goldens() {
        assert_eq!(pdu.to_frame(), bytes, "{what}: encoding");
        assert_eq!(pdu.payload_len() + 8, bytes.len(), "{what}: payload_len");
    }
    // Lengths stated by Appendix A.
    let lens: Vec<usize> = goldens().iter().map(|g| g.2.len()).collect();
    assert_eq!(lens, vec![28, 38, 25, 62, 17, 35]);
}

#[test]
fn u_pdu_01_golden_frames_decode_to_the_same_pdu() {
    for (what, pdu, bytes) in goldens() {
        let got = decode_all(&bytes).unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(got, vec![pdu], "{what}: decoding");
    }
}

#[test]
fn u_pdu_01_golden_discover_frame() {
    let h = header();
    let pdu = Pdu::discover(&h, "some/name/10s");
    let f = pdu.to_frame();
    assert_eq!(f.len(), 8 + 464);
    assert_eq!(&f[..8], &hex("02 00 00 00 d0 01 00 00")[..]);
    let mut want = h.to_bytes();
    want[184..440].fill(0);
    want[184..184 + 13].copy_from_slice(b"some/name/10s");
    assert_eq!(
        &f[8..],
        &want[..],
        "header with the relative name, zero padded"
    );
    assert_eq!(decode_all(&f).unwrap(), vec![pdu]);
}

#[test]
fn u_pdu_01_version_constant() {
    assert_eq!(VERSION, 2);
}

// ----- U-PDU-02: layout offsets -------------------------------------------------------

#[test]
fn u_pdu_02_connect_server_id_at_4() {
    let id = UniqueId([
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae,
        0xaf,
    ]);
    let f = Pdu::Connect {
        version: 0x0403_0201,
        id,
    }
    .to_frame();
    let p = &f[8..];
    assert_eq!(p.len(), 20);
    assert_eq!(&p[0..4], &[1, 2, 3, 4]);
    assert_eq!(&p[4..20], &id.0);
}

#[test]
fn u_pdu_02_request_fields() {
    let f = Pdu::Request {
        from: 0x0102_0304_0506_0708,
        n: 0x1112_1314_1516_1718,
        name: b"a/b/10s".to_vec(),
    }
    .to_frame();
    let p = &f[8..];
    assert_eq!(&p[0..8], &0x0102_0304_0506_0708i64.to_le_bytes());
    assert_eq!(&p[8..16], &0x1112_1314_1516_1718i64.to_le_bytes());
    assert_eq!(&p[16..], b"a/b/10s\0");
}

#[test]
fn u_pdu_02_data_buckets_and_name() {
    let b = |t: i64| Bucket {
        time: t,
        sum: t as f64 + 0.5,
        min: -1.5,
        max: 9.25,
        count: 0x0a0b_0c0d,
        sum_sq: 123.0,
    };
    let buckets: Vec<Bucket> = (1..=3).map(|i| b(i * 10)).collect();
    let f = Pdu::Data {
        buckets: buckets.clone(),
        name: b"x/y/5m".to_vec(),
    }
    .to_frame();
    let p = &f[8..];
    assert_eq!(&p[0..8], &3i64.to_le_bytes());
    for (i, bk) in buckets.iter().enumerate() {
        let at = 8 + 32 * i;
        let raw = &p[at..at + 32];
        assert_eq!(&raw[0..8], &bk.time.to_le_bytes(), "time at 0");
        assert_eq!(&raw[8..16], &bk.sum.to_le_bytes(), "sum at 8");
        assert_eq!(&raw[16..20], &bk.min.to_le_bytes(), "min at 16");
        assert_eq!(&raw[20..24], &bk.max.to_le_bytes(), "max at 20");
        assert_eq!(&raw[24..28], &0x0a0b_0c0di32.to_le_bytes(), "count at 24");
        assert_eq!(&raw[28..32], &123.0f32.to_le_bytes(), "sumSq at 28");
    }
    assert_eq!(&p[8 + 32 * 3..], b"x/y/5m\0", "name at 8 + 32n");
}

#[test]
fn u_pdu_02_header_offsets() {
    let mut h = header();
    h.cfg_interval = 0x1122_3344;
    h.fixed_count = 0x0102_0304_0506_0708;
    h.file_create_time = 0x7766_5544;
    let b = h.to_bytes();
    assert_eq!(b.len(), HEADER_SIZE);
    assert_eq!(&b[0..16], b"istatd 4.0\n\0\xf5\x14\x07\x00", "magic at 0");
    assert_eq!(&b[16..20], &464i32.to_le_bytes(), "hdr_size at 16");
    assert_eq!(
        &b[20..24],
        &0x1122_3344i32.to_le_bytes(),
        "cfg_interval at 20"
    );
    assert_eq!(&b[24..28], &1i32.to_le_bytes(), "flags at 24");
    assert_eq!(&b[36..40], &[0, 0, 0, 0], "padding 36..40 zero");
    assert_eq!(&b[40..48], &8192i64.to_le_bytes(), "page_size at 40");
    assert_eq!(&b[48..56], &4i64.to_le_bytes(), "page_count at 48");
    assert_eq!(&b[64..72], &100i64.to_le_bytes(), "last_bucket at 64");
    assert_eq!(&b[72..80], &1_001_000i64.to_le_bytes(), "last_time at 72");
    assert_eq!(
        &b[112..120],
        &0x7766_5544i64.to_le_bytes(),
        "file_create_time at 112"
    );
    assert_eq!(&b[120..123], b"ms\0", "unit at 120");
    assert_eq!(
        &b[184..184 + 24],
        b"/var/store/some/name/10s",
        "name at 184"
    );
    assert_eq!(b[184 + 24], 0);
    assert_eq!(&b[440..448], &0.5f64.to_le_bytes(), "lambda at 440");
    assert_eq!(&b[448..456], &86_400u64.to_le_bytes(), "season at 448");
    assert_eq!(
        &b[456..464],
        &0x0102_0304_0506_0708i64.to_le_bytes(),
        "fixed_count at 456"
    );
}

// ----- U-PDU-03: property round trip --------------------------------------------------

fn name_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..=max)
}

fn bucket() -> impl Strategy<Value = Bucket> {
    prop_oneof![
        proptest::array::uniform32(any::<u8>()).prop_map(|b| Bucket::from_bytes(&b)),
        // NaN payloads with odd bits in every float field.
        (any::<i64>(), any::<u32>(), any::<u32>()).prop_map(|(t, a, c)| Bucket {
            time: t,
            sum: f64::from_bits(0x7ff0_0000_0000_0001 | (a as u64) << 12),
            min: f32::from_bits(0x7f80_0001 | (a & 0x003f_fffe)),
            max: f32::from_bits(0xff80_0001 | (c & 0x003f_fffe)),
            count: c as i32,
            sum_sq: f32::from_bits(0x7fc0_0000 | (c & 0x3f_ffff)),
        }),
    ]
}

fn pdu() -> impl Strategy<Value = Pdu> {
    prop_oneof![
        (any::<u32>(), any::<[u8; 16]>()).prop_map(|(version, id)| Pdu::Connect {
            version,
            id: UniqueId(id),
        }),
        (
            proptest::collection::vec(any::<u8>(), HEADER_SIZE),
            0usize..256
        )
            .prop_map(|(mut b, nul)| {
                b[184 + nul] = 0;
                let mut a = [0u8; HEADER_SIZE];
                a.copy_from_slice(&b);
                Pdu::Discover(Box::new(a))
            }),
        (any::<i64>(), any::<i64>(), name_bytes(255)).prop_map(|(from, n, name)| Pdu::Request {
            from,
            n,
            name
        }),
        (proptest::collection::vec(bucket(), 0..40), name_bytes(255))
            .prop_map(|(buckets, name)| Pdu::Data { buckets, name }),
        name_bytes(1023).prop_map(Pdu::Error),
    ]
}

proptest! {
    #[test]
    fn u_pdu_03_round_trip(p in pdu()) {
        let bytes = p.to_frame();
        prop_assert_eq!(bytes.len(), 8 + p.payload_len());
        let got = decode_all(&bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(got.len(), 1);
        // Compare encodings, not values: NaN != NaN, but the bits must survive.
        prop_assert_eq!(got[0].to_frame(), bytes);
        prop_assert_eq!(got[0].id(), p.id());
    }
}

#[test]
fn u_pdu_03_largest_data_round_trips() {
    let buckets: Vec<Bucket> = (0..2048)
        .map(|i| Bucket {
            time: i,
            sum: f64::from_bits(0x7ff8_dead_beef_0000 | i as u64),
            min: f32::from_bits(0x7fa0_0000 | i as u32),
            max: f32::NAN,
            count: -1,
            sum_sq: -0.0,
        })
        .collect();
    let p = Pdu::Data {
        buckets,
        name: vec![b'a'; 255],
    };
    let bytes = p.to_frame();
    assert_eq!(bytes.len() - 8, MAX_PAYLOAD);
    assert_eq!(MAX_PAYLOAD, 65_800);
    let got = decode_all(&bytes).unwrap();
    assert_eq!(got[0].to_frame(), bytes);
}

// ----- U-FR-01: split everywhere ------------------------------------------------------

fn mixed_stream() -> (Vec<Pdu>, Vec<u8>) {
    let pdus = vec![
        Pdu::Connect {
            version: 2,
            id: golden_id(),
        },
        Pdu::discover(&header(), "some/name/10s"),
        Pdu::Request {
            from: 1_000_000,
            n: 256,
            name: b"some/name/10s".to_vec(),
        },
        Pdu::ping(5),
        Pdu::Data {
            buckets: (0..5).map(|i| Bucket::sample(i * 10, i as f64)).collect(),
            name: b"some/name/10s".to_vec(),
        },
        Pdu::pong(),
        Pdu::Data {
            buckets: Vec::new(),
            name: b"gone/file/1h".to_vec(),
        },
        Pdu::error("Timeout"),
    ];
    let mut bytes = Vec::new();
    for p in &pdus {
        p.encode(&mut bytes);
    }
    (pdus, bytes)
}

#[test]
fn u_fr_01_one_byte_at_a_time() {
    let (pdus, bytes) = mixed_stream();
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    let mut ends = Vec::new();
    let mut pos = 0;
    for p in &pdus {
        pos += p.payload_len() + 8;
        ends.push(pos);
    }
    for (i, b) in bytes.iter().enumerate() {
        let before = out.len();
        assert_eq!(d.feed(std::slice::from_ref(b), &mut out).unwrap(), 1);
        // A PDU comes out exactly when its last byte goes in, never earlier.
        let completes = ends.contains(&(i + 1));
        assert_eq!(out.len(), before + completes as usize, "after byte {i}");
    }
    assert_eq!(out, pdus);
    assert_eq!(d.buffered(), 0);
}

#[test]
fn u_fr_01_every_cut_point() {
    let (pdus, bytes) = mixed_stream();
    for cut in 0..=bytes.len() {
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        d.feed(&bytes[..cut], &mut out).unwrap();
        let first = out.len();
        d.feed(&bytes[cut..], &mut out).unwrap();
        assert_eq!(out, pdus, "cut at {cut}");
        assert!(first <= pdus.len());
        assert_eq!(d.buffered(), 0);
    }
    // Two cuts, coarser steps.
    for a in (0..=bytes.len()).step_by(7) {
        for b in (a..=bytes.len()).step_by(13) {
            let mut d = FrameDecoder::new();
            let mut out = Vec::new();
            d.feed(&bytes[..a], &mut out).unwrap();
            d.feed(&bytes[a..b], &mut out).unwrap();
            d.feed(&bytes[b..], &mut out).unwrap();
            assert_eq!(out, pdus, "cuts at {a}, {b}");
        }
    }
}

// ----- U-FR-02: port of test_PduReaderActor -------------------------------------------

#[test]
fn u_fr_02_raw_frames() {
    let a = hex("03 00 00 00 02 00 00 00 10 20");
    let b = hex("04 00 00 00 00 00 00 00");
    let mut all = a.clone();
    all.extend_from_slice(&b);
    assert_eq!(all.len(), 18);

    let mut r = RawFrames::default();
    r.feed(&a);
    assert_eq!(r.next_frame(), Some((3, vec![0x10, 0x20])));
    assert_eq!(r.next_frame(), None);

    let mut r = RawFrames::default();
    r.feed(&all[..7]);
    assert_eq!(r.next_frame(), None, "7 bytes: none");
    r.feed(&all[7..9]);
    assert_eq!(r.next_frame(), None, "9 bytes: none");
    r.feed(&all[9..11]);
    assert_eq!(r.next_frame(), Some((3, vec![0x10, 0x20])), "11 bytes: A");
    assert_eq!(r.next_frame(), None, "B not yet");
    r.feed(&all[11..]);
    assert_eq!(r.next_frame(), Some((4, vec![])), "B with size 0");
    assert_eq!(r.next_frame(), None);

    // A disconnect with a partial frame held gives no frame.
    let mut r = RawFrames::default();
    r.feed(&all[..14]);
    assert_eq!(r.next_frame(), Some((3, vec![0x10, 0x20])));
    assert_eq!(r.next_frame(), None);
    drop(r);

    // The type-level decoder refuses (4, size 0).
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    let e = d.feed(&all, &mut out).unwrap_err();
    assert_eq!(out.len(), 0, "(3, [10 20]) is itself a Request too short");
    assert_eq!(e, ProtocolError::Malformed(3));
    let e = frame_error(4, &[]);
    assert_eq!(e.text("connected"), "Malformed PDU id 4");
}

// ----- U-FR-03: several frames per read -----------------------------------------------

#[test]
fn u_fr_03_three_and_a_half_frames() {
    let p: Vec<Pdu> = (0..4)
        .map(|i| Pdu::Request {
            from: i,
            n: 1,
            name: format!("a/b/{i}s").into_bytes(),
        })
        .collect();
    let mut bytes = Vec::new();
    for x in &p {
        x.encode(&mut bytes);
    }
    let fourth = p[3].payload_len() + 8;
    let split = bytes.len() - fourth / 2;
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    d.feed(&bytes[..split], &mut out).unwrap();
    assert_eq!(out, p[..3].to_vec());
    assert!(
        d.buffered() > 0 && d.buffered() < fourth,
        "the half frame is held"
    );
    d.feed(&bytes[split..], &mut out).unwrap();
    assert_eq!(out, p);
}

// ----- U-FR-04: oversize refused at header time ---------------------------------------

#[test]
fn u_fr_04_too_large_after_the_header() {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    let head = frame(4, &[])[..4].to_vec();
    let mut h = head.clone();
    h.extend_from_slice(&65_801u32.to_le_bytes());
    assert_eq!(d.feed(&h[..7], &mut out), Ok(7), "7 bytes: still waiting");
    assert_eq!(d.payload_capacity(), 0);
    let e = d.feed(&h[7..8], &mut out).unwrap_err();
    assert_eq!(e, ProtocolError::TooLarge);
    assert_eq!(e.text("connected"), "PDU too large");
    assert_eq!(d.payload_capacity(), 0, "no payload buffer allocated");
    assert!(out.is_empty());
    // The decoder stays failed.
    assert!(d.feed(&[0u8; 16], &mut out).is_err());
    assert!(out.is_empty());

    // A 4 GiB claim is refused the same way.
    let mut d = FrameDecoder::new();
    let mut h = head;
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(d.feed(&h, &mut out), Err(ProtocolError::TooLarge));
    assert_eq!(d.payload_capacity(), 0);

    // The largest legal size is accepted at header time.
    let mut d = FrameDecoder::new();
    let h = frame(4, &[])[..4]
        .iter()
        .copied()
        .chain(65_800u32.to_le_bytes())
        .collect::<Vec<u8>>();
    assert_eq!(d.feed(&h, &mut out), Ok(8));
}

// ----- U-FR-05: per-type sizes --------------------------------------------------------

fn header_error(id: u32, size: u32) -> ProtocolError {
    let mut f = Vec::new();
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(&size.to_le_bytes());
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    d.feed(&f, &mut out).expect_err("refused at header time")
}

#[test]
fn u_fr_05_per_type_sizes() {
    let cases: &[(u32, u32, &str)] = &[
        (1, 19, "Malformed PDU id 1"),
        (1, 21, "PDU too large"),
        (2, 463, "Malformed PDU id 2"),
        (2, 465, "PDU too large"),
        (3, 16, "Malformed PDU id 3"),
        (3, 273, "PDU too large"),
        (4, 8, "Malformed PDU id 4"),
        (4, 65_801, "PDU too large"),
        (5, 0, "Malformed PDU id 5"),
        (5, 1025, "PDU too large"),
    ];
    for &(id, size, text) in cases {
        let e = header_error(id, size);
        assert_eq!(e.text("connected"), text, "id {id} size {size}");
    }
    // The bounds themselves are accepted at header time.
    for (id, size) in [
        (1, 20),
        (2, 464),
        (3, 17),
        (3, 272),
        (4, 9),
        (4, 65_800),
        (5, 1),
        (5, 1024),
    ] {
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        let mut f = Vec::new();
        f.extend_from_slice(&(id as u32).to_le_bytes());
        f.extend_from_slice(&(size as u32).to_le_bytes());
        assert_eq!(d.feed(&f, &mut out), Ok(8), "id {id} size {size}");
    }
}

// ----- U-FR-06: unknown ids -----------------------------------------------------------

#[test]
fn u_fr_06_unknown_ids() {
    for id in [0u32, 6, 7, 0xFFFF_FFFF] {
        // Refused at the header, whatever the size (even a huge one).
        for size in [0u32, 20, u32::MAX] {
            let e = header_error(id, size);
            assert_eq!(e, ProtocolError::Unhandled(id));
            assert_eq!(e.text("start"), format!("Unhandled PDU id {id} in start"));
            assert_eq!(
                e.text("connected"),
                format!("Unhandled PDU id {id} in connected")
            );
        }
    }
}

// ----- U-FR-07: strings and counts ----------------------------------------------------

fn request_payload(from: i64, n: i64, tail: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&from.to_le_bytes());
    p.extend_from_slice(&n.to_le_bytes());
    p.extend_from_slice(tail);
    p
}

fn data_payload(n: i64, buckets: usize, tail: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&n.to_le_bytes());
    for i in 0..buckets {
        p.extend_from_slice(&Bucket::sample(10 * (i as i64 + 1), 1.0).to_bytes());
    }
    p.extend_from_slice(tail);
    p
}

#[test]
fn u_fr_07_request_strings() {
    let m3 = ProtocolError::Malformed(3);
    assert_eq!(
        frame_error(3, &request_payload(1, 1, b"a/b/10s")),
        m3,
        "no NUL"
    );
    assert_eq!(
        frame_error(3, &request_payload(1, 1, b"a/b\0/10s\0")),
        m3,
        "NUL then bytes"
    );
    assert_eq!(
        frame_error(3, &request_payload(1, 1, b"a/b/10s\0x")),
        m3,
        "trailing byte"
    );
    assert_eq!(
        frame_error(3, &request_payload(1, 1, b"a/b/10s\0\0")),
        m3,
        "two NULs"
    );
    assert_eq!(m3.text("connected"), "Malformed PDU id 3");
    // The well-formed ones decode.
    let ok = decode_all(&frame(3, &request_payload(1, 1, b"a/b/10s\0"))).unwrap();
    assert_eq!(
        ok,
        vec![Pdu::Request {
            from: 1,
            n: 1,
            name: b"a/b/10s".to_vec()
        }]
    );
    let longest = request_payload(1, 1, &[b"x".repeat(255), vec![0]].concat());
    assert_eq!(longest.len(), 272);
    assert_eq!(decode_all(&frame(3, &longest)).unwrap().len(), 1);
}

#[test]
fn u_fr_07_data_counts_and_strings() {
    let m4 = ProtocolError::Malformed(4);
    assert_eq!(frame_error(4, &data_payload(-1, 0, b"\0")), m4, "n = -1");
    // n = 2049 with a size that matches it exactly.
    let p = data_payload(2049, 2049, b"a/b/10s\0");
    assert!(p.len() <= 65_800);
    assert_eq!(frame_error(4, &p), m4, "n = 2049");
    assert_eq!(
        frame_error(4, &data_payload(2, 1, b"a/b/10s\0")),
        m4,
        "n above the size"
    );
    assert_eq!(
        frame_error(4, &data_payload(0, 1, b"a/b/10s\0")),
        m4,
        "n below the size"
    );
    assert_eq!(
        frame_error(4, &data_payload(1, 1, b"a/b/10s")),
        m4,
        "no NUL"
    );
    assert_eq!(
        frame_error(4, &data_payload(1, 1, b"a\0b\0")),
        m4,
        "NUL inside the name"
    );
    assert_eq!(
        frame_error(4, &data_payload(i64::MAX, 0, b"\0")),
        m4,
        "n = i64::MAX"
    );
    assert_eq!(
        frame_error(4, &data_payload(i64::MIN, 0, b"\0")),
        m4,
        "n = i64::MIN"
    );
    assert_eq!(m4.text("connected"), "Malformed PDU id 4");
    // n = 2048 is the most allowed.
    let p = data_payload(2048, 2048, b"a/b/10s\0");
    assert_eq!(decode_all(&frame(4, &p)).unwrap().len(), 1);
}

#[test]
fn u_fr_07_error_strings() {
    let m5 = ProtocolError::Malformed(5);
    assert_eq!(frame_error(5, b"Timeout"), m5, "no NUL");
    assert_eq!(frame_error(5, b"Time\0out\0"), m5, "NUL inside");
    assert_eq!(m5.text("start"), "Malformed PDU id 5");
    assert_eq!(
        decode_all(&frame(5, b"\0")).unwrap(),
        vec![Pdu::Error(Vec::new())]
    );
}

#[test]
fn u_hdr_01_discover_name_without_nul_is_malformed() {
    let mut h = header().to_bytes();
    h[184..440].fill(b'a');
    let e = frame_error(2, &h);
    assert_eq!(e, ProtocolError::Malformed(2));
    assert_eq!(e.text("connected"), "Malformed PDU id 2");
    // A NUL at the last byte of the field is enough.
    h[439] = 0;
    assert_eq!(decode_all(&frame(2, &h)).unwrap().len(), 1);
}

// ----- Z-01: arbitrary bytes, arbitrary chunkings -------------------------------------

/// Feed `bytes` cut at `cuts` (positions, any order); stop at the first error.
fn run_chunked(bytes: &[u8], cuts: &[usize]) -> (Vec<Pdu>, Option<ProtocolError>, usize) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    points.dedup();
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    for w in points.windows(2) {
        let r = d.feed(&bytes[w[0]..w[1]], &mut out);
        assert!(
            d.buffered() <= 8 + MAX_PAYLOAD,
            "buffered {} bytes",
            d.buffered()
        );
        assert!(d.payload_capacity() <= 2 * (8 + MAX_PAYLOAD));
        if let Err(e) = r {
            return (out, Some(e), d.buffered());
        }
    }
    (out, None, d.buffered())
}

fn frames_ish() -> impl Strategy<Value = Vec<u8>> {
    // Mostly plausible headers (ids 0..=6, small sizes) so that the decoder gets past
    // the header, mixed with raw noise and whole valid frames.
    let piece = prop_oneof![
        (
            0u32..7,
            0u32..80,
            proptest::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(id, size, body)| {
                let mut v = Vec::new();
                v.extend_from_slice(&id.to_le_bytes());
                v.extend_from_slice(&size.to_le_bytes());
                v.extend_from_slice(&body);
                v
            }),
        proptest::collection::vec(any::<u8>(), 0..40),
        pdu().prop_map(|p| p.to_frame()),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

fn first_frame_result(bytes: &[u8]) -> (Vec<Pdu>, Option<ProtocolError>, usize) {
    let mut d = FrameDecoder::new();
    let mut out = Vec::new();
    match d.feed(bytes, &mut out) {
        Ok(_) => (out, None, d.buffered()),
        Err(e) => (out, Some(e), d.buffered()),
    }
}

fn same(
    a: &(Vec<Pdu>, Option<ProtocolError>, usize),
    b: &(Vec<Pdu>, Option<ProtocolError>, usize),
) -> bool {
    // Compare PDUs by encoding (NaN buckets are never == themselves).
    let enc = |v: &Vec<Pdu>| v.iter().map(|p| p.to_frame()).collect::<Vec<_>>();
    enc(&a.0) == enc(&b.0) && a.1 == b.1 && (a.1.is_some() || a.2 == b.2)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn z_01_arbitrary_bytes_any_chunking(
        bytes in frames_ish(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = first_frame_result(&bytes);
        let chunked = run_chunked(&bytes, &cuts);
        prop_assert!(same(&whole, &chunked), "whole {:?} chunked {:?}", whole, chunked);
        // One byte at a time.
        let all: Vec<usize> = (0..bytes.len()).collect();
        let bytewise = run_chunked(&bytes, &all);
        prop_assert!(same(&whole, &bytewise));
    }

    #[test]
    fn z_01_pure_noise(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                       cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let whole = first_frame_result(&bytes);
        let chunked = run_chunked(&bytes, &cuts);
        prop_assert!(same(&whole, &chunked));
    }
}
