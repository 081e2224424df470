//! Property tests of the stat line protocol (src/statline.rs): arbitrary bytes through
//! the TCP splitter, the UDP splitter and the parser never panic, the splitter's buffer
//! stays within its limit, and the lines do not depend on how the stream was chunked.

use istatd::statline::{
    parse_line, split_datagram, BadReason, Frame, LineOutcome, LineSplitter, ParsedBatch,
    MAX_LINE_LEN,
};
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Line(Vec<u8>),
    TooLong,
}

/// Split `stream` into chunks at the given cut points (taken modulo the length).
fn chunks<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| {
            if stream.is_empty() {
                0
            } else {
                c % stream.len()
            }
        })
        .collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| &stream[w[0]..w[1]]).collect()
}

/// Feed the chunks, checking the buffer bound after each, and parse every line.
fn run(limit: usize, parts: &[&[u8]]) -> (Vec<Out>, usize) {
    let mut s = LineSplitter::with_limit(limit);
    let mut out = Vec::new();
    let mut batch = ParsedBatch::new();
    for p in parts {
        s.push(p, |f| match f {
            Frame::Line(l) => {
                assert!(l.len() <= limit);
                assert!(!l.contains(&b'\n'));
                batch.clear();
                check_parse(l, &mut batch);
                out.push(Out::Line(l.to_vec()));
            }
            Frame::Bad(r) => {
                assert_eq!(r, BadReason::LineTooLong);
                out.push(Out::TooLong);
            }
        });
        assert!(s.pending_len() <= limit, "buffered {}", s.pending_len());
        assert!(
            s.buffer_capacity() <= limit,
            "capacity {}",
            s.buffer_capacity()
        );
    }
    (out, s.pending_len())
}

/// The reference framing without a limit, then the port's limit applied per line.
fn model(limit: usize, stream: &[u8]) -> (Vec<Out>, usize) {
    let mut out = Vec::new();
    let mut rest = stream;
    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
        let line = &rest[..i];
        out.push(if line.len() > limit {
            Out::TooLong
        } else {
            Out::Line(line.to_vec())
        });
        rest = &rest[i + 1..];
    }
    (out, if rest.len() > limit { 0 } else { rest.len() })
}

fn check_parse(line: &[u8], batch: &mut ParsedBatch) {
    let before = batch.len();
    let o = parse_line(line, 1_000_000, batch);
    match o {
        LineOutcome::Samples { added, .. } => {
            assert!(added >= 1);
            assert_eq!(batch.len(), before + added as usize);
            for r in batch.iter().skip(before) {
                assert!(!r.key.is_empty());
                assert!(r.key.bytes().all(|b| (0x21..=0x7e).contains(&b)));
                assert!(!r.key.bytes().any(|b| b.is_ascii_uppercase()));
                assert!(!r.key.starts_with('.') && !r.key.ends_with('.'));
                assert!(!r.key.contains(".."));
                assert_eq!(r.event, r.name.first() == Some(&b'*'));
                assert_eq!(r.name.len(), r.key.len() + usize::from(r.event));
            }
        }
        LineOutcome::Bad { count, .. } => {
            assert!(count >= 1);
            assert_eq!(batch.len(), before);
        }
        _ => assert_eq!(batch.len(), before),
    }
}

/// Bytes biased towards the protocol's interesting characters.
fn stat_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        3 => Just(b'\n'),
        2 => Just(b' '),
        1 => Just(b'\r'),
        1 => Just(b'^'),
        1 => Just(b'*'),
        1 => Just(b'.'),
        1 => Just(b'#'),
        2 => prop::sample::select(b"0123456789eE+-.nafiNAFI".to_vec()),
        2 => prop::sample::select(b"abcXYZ".to_vec()),
    ];
    prop::collection::vec(byte, 0..max)
}

/// `len` pseudo-random bytes (xorshift from `seed`) with about one LF per `lf_every`.
fn noise(seed: u64, len: usize, lf_every: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % lf_every {
                0 => b'\n',
                _ => (x >> 32) as u8,
            }
        })
        .collect()
}

/// Like [`stat_bytes`] but generated from a seed: cheap for long streams (proptest
/// cannot shrink these, but a failure is reproducible from its seed).
fn biased(seed: u64, len: usize) -> Vec<u8> {
    const INTERESTING: &[u8] = b"\n\n\n  \r^*.#0123456789eE+-.nafiNAFIabcXYZ";
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = (x >> 24) as usize;
            match r % 3 {
                0 => (x >> 40) as u8,
                _ => INTERESTING[(r / 3) % INTERESTING.len()],
            }
        })
        .collect()
}

fn long_stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        stat_bytes(256),
        (any::<u64>(), 0usize..4096).prop_map(|(seed, len)| biased(seed, len)),
    ]
}

/// Plausible stat lines, so the parser's accepting paths are exercised too.
fn stat_lines() -> impl Strategy<Value = Vec<u8>> {
    let name = "\\*?[a-zA-Z.^]{1,12}";
    let num = prop_oneof![
        Just("1".to_string()),
        Just("-2.5e3".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("0x10".to_string()),
        "-?[0-9]{1,20}",
        "[0-9]{0,3}\\.[0-9]{0,3}",
    ];
    let line =
        (name, prop::collection::vec(num, 0..9), "[ \t\r]{0,2}").prop_map(|(n, fields, tail)| {
            let mut l = n.into_bytes();
            for f in fields {
                l.push(b' ');
                l.extend_from_slice(f.as_bytes());
            }
            l.extend_from_slice(tail.as_bytes());
            l.push(b'\n');
            l
        });
    prop::collection::vec(line, 0..40).prop_map(|ls| ls.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any stream, any chunking, a small limit: no panic, bounded buffer, and the
    /// lines equal the unchunked model's.
    #[test]
    fn tcp_chunking_invariant_small_limit(
        stream in long_stream(),
        cuts in prop::collection::vec(any::<usize>(), 0..64),
        cuts2 in prop::collection::vec(any::<usize>(), 0..8),
        limit in 1usize..64,
    ) {
        let a = run(limit, &chunks(&stream, &cuts));
        let b = run(limit, &chunks(&stream, &cuts2));
        let whole = run(limit, &[&stream]);
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        let c = run(limit, &bytewise);
        let m = model(limit, &stream);
        prop_assert_eq!(&a, &m);
        prop_assert_eq!(&b, &m);
        prop_assert_eq!(&whole, &m);
        prop_assert_eq!(&c, &m);
    }

    /// Streams up to 64 KiB (and lines around the default limit) with the default limit.
    #[test]
    fn tcp_chunking_invariant_default_limit(
        stream in prop_oneof![
            (any::<u64>(), 0usize..=65536, 0u32..4).prop_map(|(seed, len, d)| {
                // LF density from one in 8 bytes to one in 64 KiB.
                noise(seed, len, [8, 512, 16384, 65536][d as usize])
            }),
            (0usize..3, 65530usize..65545).prop_map(|(k, n)| {
                let mut v = Vec::new();
                for _ in 0..=k {
                    v.resize(v.len() + n, b'x');
                    v.push(b'\n');
                }
                v
            }),
        ],
        cuts in prop::collection::vec(any::<usize>(), 0..32),
    ) {
        let a = run(MAX_LINE_LEN, &chunks(&stream, &cuts));
        let sixteen_k: Vec<&[u8]> = stream.chunks(16384).collect();
        let b = run(MAX_LINE_LEN, &sixteen_k);
        let m = model(MAX_LINE_LEN, &stream);
        prop_assert_eq!(&a, &m);
        prop_assert_eq!(&b, &m);
    }

    /// Well-formed-ish stat lines: same equivalence, and the parser sees real samples.
    #[test]
    fn tcp_stat_lines(
        stream in stat_lines(),
        cuts in prop::collection::vec(any::<usize>(), 0..32),
    ) {
        let a = run(MAX_LINE_LEN, &chunks(&stream, &cuts));
        let m = model(MAX_LINE_LEN, &stream);
        prop_assert_eq!(a, m);
    }

    /// The parser on arbitrary single lines: no panic, consistent outcomes.
    #[test]
    fn parse_arbitrary(line in stat_bytes(512), now in any::<i64>()) {
        let mut batch = ParsedBatch::new();
        let _ = parse_line(&line, now, &mut batch);
        batch.clear();
        check_parse(&line, &mut batch);
    }

    /// UDP: no panic; an accepted datagram yields each LF-terminated segment of two
    /// or more bytes unchanged and in order.
    #[test]
    fn udp_arbitrary(d in prop_oneof![long_stream(), stat_lines()]) {
        match split_datagram(&d) {
            Err(_) => prop_assert!(d.len() < 5 || d.last() != Some(&b'\n') || d.len() > 65536),
            Ok(frames) => {
                let mut batch = ParsedBatch::new();
                let mut got = Vec::new();
                for f in frames {
                    match f {
                        Frame::Line(l) => {
                            prop_assert!(l.len() >= 2);
                            check_parse(l, &mut batch);
                            got.push(l.to_vec());
                        }
                        Frame::Bad(r) => prop_assert_eq!(r, BadReason::ShortSegment),
                    }
                }
                let want: Vec<Vec<u8>> = d
                    .split(|&b| b == b'\n')
                    .filter(|s| s.len() >= 2)
                    .map(<[u8]>::to_vec)
                    .collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
