//! Unit tests of the stat line protocol: framing, classification, grammar, names, blacklist.

use std::ops::ControlFlow;

use istatd_storage::counter::Sample;

use super::*;

const NOW: i64 = 1_000_000;

fn lines_tcp(split: &mut LineSplitter, chunks: &[&[u8]]) -> Vec<Result<Vec<u8>, BadReason>> {
    let mut out = Vec::new();
    for c in chunks {
        split.push(c, |f| match f {
            Frame::Line(l) => out.push(Ok(l.to_vec())),
            Frame::Bad(r) => out.push(Err(r)),
        });
    }
    out
}

fn ok(s: &[u8]) -> Result<Vec<u8>, BadReason> {
    Ok(s.to_vec())
}

/// key, name, event, sample
type Rec = (String, Vec<u8>, bool, Sample);

fn parse(line: &str) -> (LineOutcome<'_>, Vec<Rec>) {
    let mut b = ParsedBatch::new();
    let o = parse_line(line.as_bytes(), NOW, &mut b);
    let recs = b
        .iter()
        .map(|r| (r.key.to_owned(), r.name.to_vec(), r.event, r.sample))
        .collect();
    (o, recs)
}

fn keys(line: &str) -> Vec<String> {
    let (o, recs) = parse(line);
    assert!(matches!(o, LineOutcome::Samples { .. }), "{line:?}: {o:?}");
    recs.into_iter().map(|r| r.0).collect()
}

fn names(line: &str) -> Vec<String> {
    let (_, recs) = parse(line);
    recs.into_iter()
        .map(|r| String::from_utf8(r.1).unwrap())
        .collect()
}

fn bad_reason(line: &[u8]) -> Option<(BadReason, u32)> {
    let mut b = ParsedBatch::new();
    match parse_line(line, NOW, &mut b) {
        LineOutcome::Bad { reason, count } => {
            assert!(b.is_empty());
            Some((reason, count))
        }
        _ => None,
    }
}

// ---- framing (docs/interfaces.md §2.2) ----

#[test]
fn tcp_lines_keep_cr_and_hold_tail() {
    let mut s = LineSplitter::new();
    // The reference's own unit test: "foo bar\r\nbaz blorg\r\n".
    assert_eq!(
        lines_tcp(&mut s, &[b"foo bar\r\nbaz blorg\r\n"]),
        vec![ok(b"foo bar\r"), ok(b"baz blorg\r")]
    );
    assert_eq!(
        lines_tcp(&mut s, &[b"a 1\nb", b" 2", b"\n", b"c 3"]),
        vec![ok(b"a 1"), ok(b"b 2")]
    );
    assert_eq!(s.pending_len(), 3);
    s.reset(); // peer closed: unterminated tail discarded
    assert_eq!(s.pending_len(), 0);
    assert_eq!(lines_tcp(&mut s, &[b"\n"]), vec![ok(b"")]);
}

#[test]
fn tcp_empty_and_cr_only_lines() {
    let mut s = LineSplitter::new();
    let got = lines_tcp(&mut s, &[b"\n\n\r\n"]);
    assert_eq!(got, vec![ok(b""), ok(b""), ok(b"\r")]);
    let mut b = ParsedBatch::new();
    assert_eq!(parse_line(b"", NOW, &mut b), LineOutcome::Empty);
    assert_eq!(bad_reason(b"\r"), Some((BadReason::BadFormat, 1)));
}

#[test]
fn tcp_line_limit() {
    let mut s = LineSplitter::with_limit(8);
    // Exactly the limit is fine; one more is dropped and counted, up to its LF.
    let got = lines_tcp(&mut s, &[b"12345678\n123456789\nok 1\n"]);
    assert_eq!(
        got,
        vec![ok(b"12345678"), Err(BadReason::LineTooLong), ok(b"ok 1")]
    );
    // Straddling chunks.
    let got = lines_tcp(&mut s, &[b"1234", b"5678", b"\n"]);
    assert_eq!(got, vec![ok(b"12345678")]);
    let got = lines_tcp(&mut s, &[b"1234", b"56789", b"abc", b"def\nx 1\n"]);
    assert_eq!(got, vec![Err(BadReason::LineTooLong), ok(b"x 1")]);
    assert!(s.pending_len() <= 8);
    // Over the limit inside a chunk while straddling, then LF in the same chunk.
    let got = lines_tcp(&mut s, &[b"12345", b"6789\n"]);
    assert_eq!(got, vec![Err(BadReason::LineTooLong)]);
    // A long unterminated tail is never buffered.
    lines_tcp(&mut s, &[&[b'x'; 100]]);
    assert!(s.is_discarding());
    assert_eq!(s.pending_len(), 0);
    assert_eq!(s.overlong_lines(), 3);
    assert!(s.buffer_capacity() <= 8);
    let got = lines_tcp(&mut s, &[b"yy\nz 1\n"]);
    assert_eq!(got, vec![Err(BadReason::LineTooLong), ok(b"z 1")]);
    assert!(!s.is_discarding());
    assert_eq!(MAX_LINE_LEN, 65536);
    assert_eq!(LineSplitter::new().limit(), 65536);
}

#[test]
fn tcp_default_limit_64k() {
    let mut s = LineSplitter::new();
    let mut ok_line = vec![b'a'; MAX_LINE_LEN];
    ok_line.push(b'\n');
    let mut long_line = vec![b'a'; MAX_LINE_LEN + 1];
    long_line.push(b'\n');
    let mut n = (0, 0);
    for chunk in ok_line.chunks(16384).chain(long_line.chunks(16384)) {
        s.push(chunk, |f| match f {
            Frame::Line(l) => {
                assert_eq!(l.len(), MAX_LINE_LEN);
                n.0 += 1
            }
            Frame::Bad(BadReason::LineTooLong) => n.1 += 1,
            Frame::Bad(_) => unreachable!(),
        });
        assert!(s.pending_len() <= MAX_LINE_LEN);
        assert!(s.buffer_capacity() <= MAX_LINE_LEN);
    }
    assert_eq!(n, (1, 1));
}

#[test]
fn tcp_try_push_break_drops_rest() {
    let mut s = LineSplitter::new();
    let mut seen = Vec::new();
    let flow = s.try_push(b"#hostname bad\nx 1\ny 2\npartial", |f| {
        seen.push(line_or_bad(&f));
        if seen.len() == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    assert!(flow.is_break());
    assert_eq!(seen, vec![b"#hostname bad".to_vec(), b"x 1".to_vec()]);
    assert_eq!(s.pending_len(), 0);
}

/// A frame's line, or `<bad>` for a bad frame.
fn line_or_bad(frame: &Frame<'_>) -> Vec<u8> {
    match frame {
        Frame::Line(l) => l.to_vec(),
        Frame::Bad(_) => b"<bad>".to_vec(),
    }
}

fn udp(d: &[u8]) -> Result<Vec<Vec<u8>>, BadDatagram> {
    split_datagram(d).map(|it| it.map(|f| line_or_bad(&f)).collect())
}

#[test]
fn udp_datagrams() {
    assert_eq!(udp(b"a 1\n"), Err(BadDatagram::TooShort)); // 4 bytes
    assert_eq!(udp(b"ab 1\n"), Ok(vec![b"ab 1".to_vec()])); // 5 bytes
    assert_eq!(udp(b"ab 12"), Err(BadDatagram::NoFinalNewline));
    assert_eq!(
        udp(b"x 1\ny 2\nlast"),
        Err(BadDatagram::NoFinalNewline),
        "an unterminated last line rejects the whole datagram"
    );
    let mut big = vec![b'a'; MAX_DATAGRAM_LEN];
    *big.last_mut().unwrap() = b'\n';
    assert_eq!(udp(&big).unwrap().len(), 1);
    big.insert(0, b'a');
    assert_eq!(udp(&big), Err(BadDatagram::TooLong));
    // Port fix 2: the spec's example handles both `x 1` and `udp.h 8`; the 1-byte
    // `y` is a bad command of its own.
    assert_eq!(
        udp(b"x 1\ny\nudp.h 8\n"),
        Ok(vec![
            b"x 1".to_vec(),
            b"<bad>".to_vec(),
            b"udp.h 8".to_vec()
        ])
    );
    // Empty and 1-byte whitespace segments are skipped; CR is kept.
    assert_eq!(
        udp(b"\n\r\n\nab 1\r\n \n#m v\n"),
        Ok(vec![b"ab 1\r".to_vec(), b"#m v".to_vec()])
    );
    let frames: Vec<_> = split_datagram(b"x 1\n@\n").unwrap().collect();
    assert_eq!(
        frames,
        vec![Frame::Line(b"x 1"), Frame::Bad(BadReason::ShortSegment)]
    );
}

// ---- classification (§2.3) ----

#[test]
fn classification() {
    let mut b = ParsedBatch::new();
    for c in [b'@', b'$', b'%', b'&', b';', b':'] {
        let line = [c, b'x', b' ', b'1'];
        assert_eq!(parse_line(&line, NOW, &mut b), LineOutcome::Reserved);
    }
    assert!(b.is_empty());
    // `*`, whitespace and `!` start counter lines.
    assert_eq!(keys("*ev 1"), vec!["ev"]);
    assert_eq!(keys("  \t lead.ws 1  \r"), vec!["lead.ws"]);
    // Events are not implemented: one field, bad format.
    assert_eq!(
        bad_reason(b"!test.event|superevent|testhost"),
        Some((BadReason::BadFormat, 1))
    );
    // `#` after whitespace is just a name.
    assert_eq!(keys(" #x 1"), vec!["#x"]);
}

// ---- meta (§2.7) ----

#[test]
fn meta_lines() {
    let mut b = ParsedBatch::new();
    let meta = |l: &'static [u8]| {
        let mut b = ParsedBatch::new();
        match parse_line(l, NOW, &mut b) {
            LineOutcome::Meta { key, value } => Some((key.to_vec(), value.to_vec())),
            _ => None,
        }
    };
    assert_eq!(
        meta(b"#hostname vm\r"),
        Some((b"hostname".to_vec(), b"vm".to_vec()))
    );
    assert_eq!(
        meta(b"#proto x 1 1\r"),
        Some((b"proto".to_vec(), b"x 1 1".to_vec()))
    );
    assert_eq!(
        meta(b"#custom meta val"),
        Some((b"custom".to_vec(), b"meta val".to_vec()))
    );
    assert_eq!(meta(b"#k "), Some((b"k".to_vec(), b"".to_vec())));
    assert_eq!(meta(b"#k\t  v  \t"), Some((b"k".to_vec(), b"v".to_vec())));
    assert_eq!(meta(b"# v"), Some((b"".to_vec(), b"v".to_vec())));
    // Leading whitespace of the key survives (the `#` shields it from trim).
    assert_eq!(meta(b"#\tk v"), Some((b"\tk".to_vec(), b"v".to_vec())));
    assert_eq!(meta(b"#a\tb c"), Some((b"a\tb".to_vec(), b"c".to_vec())));
    assert_eq!(bad_reason(b"#nometa"), Some((BadReason::BadMeta, 1)));
    assert_eq!(bad_reason(b"#nometa\r"), Some((BadReason::BadMeta, 1)));
    assert_eq!(bad_reason(b"#"), Some((BadReason::BadMeta, 1)));
    assert_eq!(bad_reason(b"#tab\tonly"), Some((BadReason::BadMeta, 1)));
    assert!(matches!(
        parse_line(b"#x y", NOW, &mut b),
        LineOutcome::Meta { .. }
    ));
    assert!(b.is_empty());
}

// ---- grammar (§2.4) ----

#[test]
fn field_count_forms() {
    let (o, r) = parse("plain.gauge 5");
    assert_eq!(
        o,
        LineOutcome::Samples {
            added: 1,
            name: b"plain.gauge",
            extra_fields: false
        }
    );
    assert_eq!(r[0].3, Sample::value(NOW, 5.0));
    assert!(!r[0].2);

    let (_, r) = parse("timed.g 995 1.5");
    assert_eq!(r[0].3, Sample::value(995, 1.5));

    let (_, r) = parse("full.g 1000 10 50 2 8 3");
    assert_eq!(
        r[0].3,
        Sample {
            time: 1000,
            sum: 10.0,
            sum_sq: 50.0,
            min: 2.0,
            max: 8.0,
            count: 3
        }
    );

    for l in ["one", "a 1 2 3", "a 1 2 3 4", "a 1 2 3 4 5", "   ", "\t\r"] {
        assert_eq!(
            bad_reason(l.as_bytes()),
            Some((BadReason::BadFormat, 1)),
            "{l:?}"
        );
    }
    // 4..6 fields: once per expanded name.
    assert_eq!(
        bad_reason(b"a^x^y^z 1 2 3"),
        Some((BadReason::BadFormat, 3))
    );
    // 8 or more fields: the first 7 are used.
    let (o, r) = parse("x 1000 10 50 2 8 3 junk more");
    assert!(matches!(
        o,
        LineOutcome::Samples {
            added: 1,
            extra_fields: true,
            ..
        }
    ));
    assert_eq!(r[0].3.count, 3);
    // Any whitespace run separates; CR LF VT FF count as whitespace.
    let (_, r) = parse("ws.g\t\x0b1000 \x0c 7\r");
    assert_eq!(r[0].3, Sample::value(1000, 7.0));
}

#[test]
fn value_syntax() {
    let v = |s: &str| parse_value(s.as_bytes());
    assert_eq!(v("1e3"), Some(1000.0));
    assert_eq!(v("+5"), Some(5.0));
    assert_eq!(v(".5"), Some(0.5));
    assert_eq!(v("5."), Some(5.0));
    assert_eq!(v("-.5e-1"), Some(-0.05));
    assert_eq!(v("1E+2"), Some(100.0));
    assert_eq!(v("007"), Some(7.0));
    assert_eq!(v("-0"), Some(-0.0));
    assert_eq!(v("inf"), Some(f64::INFINITY));
    assert_eq!(v("-Infinity"), Some(f64::NEG_INFINITY));
    assert_eq!(v("+INF"), Some(f64::INFINITY));
    for z in ["nan", "NaN", "-nan", "-NaN"] {
        assert_eq!(v(z).map(f64::to_bits), Some(0.0f64.to_bits()), "{z}");
    }
    // Other NaN spellings are NaN (boost parse_inf_nan), not 0.
    for n in ["NAN", "nAn", "+nan", "-NAN", "nan()", "nan(123)"] {
        assert!(v(n).unwrap().is_nan(), "{n}");
    }
    for bad in [
        "0x10",
        "1e",
        "1e+",
        "1e-",
        "e5",
        ".",
        "+",
        "-",
        "1.2.3",
        "1,5",
        "1e5.5",
        "1e5e5",
        " 1",
        "1 ",
        "infin",
        "infinityx",
        "nanx",
        "nan(",
        "nan(x",
        "--1",
        "+-1",
        "1e400",
        "-1e400",
        "1f",
        "½",
        "١",
    ] {
        assert_eq!(v(bad), None, "{bad:?}");
    }
    assert_eq!(v(""), Some(0.0)); // never a field; the reference's to_double("") is 0
    assert_eq!(v("1e-400"), Some(0.0)); // underflow accepted
    assert_eq!(v("1.7976931348623157e308"), Some(f64::MAX));
    assert_eq!(v("0.1"), Some(0.1));
}

#[test]
fn time_and_count_syntax() {
    let t = |s: &str| parse_time(s.as_bytes());
    assert_eq!(t("1000"), Some(1000));
    assert_eq!(t("+5"), Some(5));
    assert_eq!(t("-5"), Some(-5));
    assert_eq!(t("0005"), Some(5));
    assert_eq!(t("9223372036854775807"), Some(i64::MAX));
    assert_eq!(t("-9223372036854775808"), Some(i64::MIN));
    for bad in [
        "12.5",
        "1e3",
        "",
        "+",
        "-",
        "0x10",
        "9223372036854775808",
        "-9223372036854775809",
        " 1",
        "1a",
        "inf",
    ] {
        assert_eq!(t(bad), None, "{bad:?}");
    }
    let c = |s: &str| parse_count(s.as_bytes());
    assert_eq!(c("3"), Ok(3));
    assert_eq!(c("+3"), Ok(3));
    assert_eq!(c("18446744073709551615"), Ok(u64::MAX));
    assert_eq!(c("18446744073709551616"), Err(BadReason::BadNumber));
    assert_eq!(c("-1"), Err(BadReason::NegativeCount));
    assert_eq!(c("-0"), Ok(0));
    assert_eq!(c("1.0"), Err(BadReason::BadNumber));
    assert_eq!(c("-x"), Err(BadReason::BadNumber));

    assert_eq!(bad_reason(b"a 12.5 1"), Some((BadReason::BadNumber, 1)));
    assert_eq!(bad_reason(b"a 0x10"), Some((BadReason::BadNumber, 1)));
    assert_eq!(bad_reason(b"a x^y 1"), Some((BadReason::BadNumber, 1)));
    assert_eq!(
        bad_reason(b"a 1000 1 1 1 1 -1"),
        Some((BadReason::NegativeCount, 1))
    );
    assert_eq!(
        bad_reason(b"a 1000 1 1 1 1 1.5"),
        Some((BadReason::BadNumber, 1))
    );
    // A 7-field count of zero parses; the store rejects it (counter.rejected).
    let (_, r) = parse("a 1000 1 1 1 1 -0");
    assert_eq!(r[0].3.count, 0);
    // nan spellings in a line.
    let (_, r) = parse("a NaN");
    assert_eq!(r[0].3, Sample::value(NOW, 0.0));
}

// ---- names (§2.5) ----

#[test]
fn caret_table() {
    let table: &[(&str, &[&str])] = &[
        (
            "cpu.idle^host.a^class.b",
            &["cpu.idle.host.a", "cpu.idle.class.b"],
        ),
        (
            "test.other_counter^a^b^c",
            &[
                "test.other_counter.a",
                "test.other_counter.b",
                "test.other_counter.c",
            ],
        ),
        ("*tep^tep_die^tep_die2", &["*tep.tep_die", "*tep.tep_die2"]),
        ("^lead^x", &["lead", "x"]),
        ("caret^a^b.c^", &["caret.a", "caret.b.c", "caret"]),
        ("plain", &["plain"]),
        ("a^", &["a"]),
        // Port fix 1: empty segments are skipped.
        ("a^^b", &["a.b"]),
        ("a^b^^c", &["a.b", "a.c"]),
        ("a^^", &["a"]),
        ("^^x", &["x"]),
        ("^", &[]),
        ("^^", &[]),
        ("^a^", &["a"]),
    ];
    for (raw, want) in table {
        let got: Vec<String> = caret_expand(raw.as_bytes())
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap())
            .collect();
        assert_eq!(&got, want, "{raw}");
    }
    assert_eq!(
        keys("cpu.idle^host.a^class.b 1"),
        vec!["cpu.idle.host.a", "cpu.idle.class.b"]
    );
    assert_eq!(
        keys("caret^a^b.c^ 1"),
        vec!["caret.a", "caret.b.c", "caret"]
    );
    assert_eq!(keys("a^^b 1"), vec!["a.b"]);
    let (o, r) = parse("*tep^tep_die^tep_die2 1");
    assert!(matches!(o, LineOutcome::Samples { added: 2, .. }));
    assert_eq!(r[0].0, "tep.tep_die");
    assert_eq!(r[0].1, b"*tep.tep_die");
    assert!(r[0].2 && r[1].2);
    assert_eq!(r[1].0, "tep.tep_die2");
    // Every expanded name gets the same sample.
    assert_eq!(r[0].3, r[1].3);
}

#[test]
fn munging() {
    assert_eq!(keys("Foo.Baz 1"), vec!["foo.baz"]);
    assert_eq!(keys("weird/na:me\\x\"q 1"), vec!["weird_na_me_x_q"]);
    assert_eq!(keys("it's 1"), vec!["it_s"]);
    assert_eq!(keys("\u{e9}t\u{e9}.n 1"), vec!["__t__.n"]);
    assert_eq!(keys("a\x01b\x7fc 1"), vec!["a_b_c"]);
    assert_eq!(
        keys("x!#$%&()*+,-;<=>?@[]`{|}~ 1"),
        vec!["x!#$%&()*+,-;<=>?@[]`{|}~"]
    );
    assert_eq!(munge(b"ABC.def_\x80\xff"), "abc.def___");
    // Forwarding gets the name before munging, `*` kept.
    assert_eq!(names("*Up.Case^Host/1 1"), vec!["*Up.Case.Host/1"]);
    assert_eq!(keys("*Up.Case^Host/1 1"), vec!["up.case.host_1"]);
    // Only a leading `*` is the marker; `**a` keeps one `*` in its key.
    let (_, r) = parse("**a 1");
    assert_eq!((r[0].0.as_str(), r[0].2), ("*a", true));
    let (_, r) = parse("a^*b 1");
    assert_eq!((r[0].0.as_str(), r[0].2), ("a.*b", false));
    let (_, r) = parse("^*b 1");
    assert_eq!((r[0].0.as_str(), r[0].2), ("b", true));
    for b in 0u8..=255 {
        let m = munge_byte(b);
        assert!((0x21..=0x7e).contains(&m));
        assert!(!m.is_ascii_uppercase());
    }
}

#[test]
fn star_only_and_empty_expansions() {
    let mut b = ParsedBatch::new();
    assert_eq!(parse_line(b"* 1", NOW, &mut b), LineOutcome::NoCounter);
    assert_eq!(parse_line(b"*^ 1", NOW, &mut b), LineOutcome::NoCounter);
    assert_eq!(parse_line(b"^ 1", NOW, &mut b), LineOutcome::NoCounter);
    // The reference never parses the numbers when there is no name...
    assert_eq!(parse_line(b"^ junk", NOW, &mut b), LineOutcome::NoCounter);
    // ... nor counts 4..6-field lines then.
    assert_eq!(parse_line(b"^ 1 2 3", NOW, &mut b), LineOutcome::NoCounter);
    // ... but does for a `*` name (it reaches handle_record).
    assert_eq!(bad_reason(b"* junk"), Some((BadReason::BadNumber, 1)));
    assert_eq!(bad_reason(b"* 1 2 3"), Some((BadReason::BadFormat, 1)));
    // `*` among other names is skipped.
    assert_eq!(
        parse_line(b"^*^x 1", NOW, &mut b),
        LineOutcome::Samples {
            added: 1,
            name: b"^*^x",
            extra_fields: false
        }
    );
    assert_eq!(b.get(0).unwrap().key, "x");
    // One field is bad whatever the name.
    assert_eq!(bad_reason(b"^"), Some((BadReason::BadFormat, 1)));
}

#[test]
fn empty_dot_components_are_bad() {
    for l in [
        ".a.b 1",
        "a.b. 1",
        "a..b 1",
        "*.a 1",
        "*a. 1",
        ". 1",
        "a.^b 1",
        "a^.b 1",
        "ok^x..y 1",
        "*^a 1",
        "a^b. 1",
    ] {
        assert_eq!(
            bad_reason(l.as_bytes()),
            Some((BadReason::EmptyNameComponent, 1)),
            "{l:?}"
        );
    }
    assert_eq!(keys("a.b.c 1"), vec!["a.b.c"]);
    assert_eq!(keys("*a.b 1"), vec!["a.b"]);
}

#[test]
fn expansion_cap() {
    let mut line = vec![b'b'; 32 * 1024];
    for _ in 0..1000 {
        line.extend_from_slice(b"^x");
    }
    line.extend_from_slice(b" 1");
    assert_eq!(bad_reason(&line), Some((BadReason::ExpansionTooLarge, 1)));
    let mut line = b"base".to_vec();
    for i in 0..1000 {
        line.extend_from_slice(format!("^s{i}").as_bytes());
    }
    line.extend_from_slice(b" 1");
    let mut b = ParsedBatch::new();
    assert!(matches!(
        parse_line(&line, NOW, &mut b),
        LineOutcome::Samples { added: 1000, .. }
    ));
    assert_eq!(b.get(999).unwrap().key, "base.s999");
}

#[test]
fn batch_accumulates_and_clears() {
    let mut b = ParsedBatch::new();
    parse_line(b"a 1", NOW, &mut b);
    parse_line(b"junk", NOW, &mut b);
    parse_line(b"b^c^d 2 3", NOW, &mut b);
    parse_line(b"e 5 1 1 1 1 -1", NOW, &mut b);
    let ks: Vec<&str> = b.iter().map(|r| r.key).collect();
    assert_eq!(ks, vec!["a", "b.c", "b.d"]);
    assert_eq!(b.len(), 3);
    assert_eq!(b.key(&b.records()[1]), "b.c");
    assert_eq!(b.name(&b.records()[2]), b"b.d");
    assert_eq!(b.records()[2].sample, Sample::value(2, 3.0));
    b.clear();
    assert!(b.is_empty());
    assert!(b.get(0).is_none());
}

#[test]
fn outcome_bad_commands() {
    assert_eq!(
        LineOutcome::Bad {
            reason: BadReason::BadFormat,
            count: 3
        }
        .bad_commands(),
        3
    );
    assert_eq!(LineOutcome::Reserved.bad_commands(), 0);
    assert_eq!(BadReason::BadMeta.to_string(), "bad format meta info");
}

// ---- blacklist (§2.10) ----

#[test]
fn blacklist() {
    let bl = Blacklist::parse("Bad.Host\n\nother\r\n spaced \nlast");
    assert_eq!(bl.len(), 4);
    assert!(bl.contains("bad.host"));
    assert!(bl.contains("BAD.host"));
    assert!(bl.contains(b"last".as_slice()));
    assert!(bl.contains(String::from("other\r"))); // lines are not trimmed
    assert!(!bl.contains("other"));
    assert!(bl.contains(" spaced "));
    assert!(!bl.contains("spaced"));
    assert!(!bl.contains("bad"));
    assert!(!bl.contains(""));
    let empty = Blacklist::parse("\n\n");
    assert!(empty.is_empty());
    assert!(!empty.contains("x"));
    assert_eq!(Blacklist::parse_bytes(b"H\xc9\n").len(), 1);
    assert!(Blacklist::parse_bytes(b"H\xc9\n").contains(b"h\xc9".as_slice()));
}
