//! Tests of the file tools: output text against the reference tools', import rules and
//! messages.

use super::*;
use crate::format::{CreateParams, FLAG_TRAILING, PAGE_SIZE};

fn new_file(interval: i32, flags: i32, fixed_count: i64) -> Vec<u8> {
    let h = Header::new_file(&CreateParams {
        interval,
        page_count: 2,
        flags,
        zero_time: 1600000000,
        lambda: 0.0,
        season: 0,
        fixed_count,
        unit: String::new(),
        name: "store/x/10s".into(),
    });
    let mut v = vec![0u8; PAGE_SIZE * 3];
    v[..HEADER_SIZE].copy_from_slice(&h.to_bytes());
    v
}

fn hdr(b: &[u8]) -> Header {
    Header::parse_raw(b)
}

#[test]
fn dump_str_escapes_like_the_reference() {
    let data = [
        b'a', b'"', b'\\', b'\n', b'\r', 0, 0xf5, 127, b' ', b'~', 31, 9,
    ];
    assert_eq!(
        dump_str("x", &data),
        "x=\"a\\\"\\\\\\n\\r\\000\\365\\177 ~\\037\\011\"\n"
    );
    assert_eq!(
        dump_str("magic", &MAGIC),
        "magic=\"istatd 4.0\\n\\000\\365\\024\\007\\000\"\n"
    );
    let unit = dump_str("unit", &[0u8; 64]);
    assert_eq!(unit.matches("\\000").count(), 64);
}

#[test]
fn full_rows_use_the_reference_widths() {
    let mut s = String::new();
    push_full_row(&mut s, true, 0, &Bucket::sample(1600000000, 113.64));
    assert_eq!(
        s,
        " 1       0    1600000000      113.64       12914      113.64      113.64       1\n"
    );
    let mut s = String::new();
    push_full_row(&mut s, false, 511, &Bucket::EMPTY);
    assert_eq!(
        s,
        " 0     511             0           0           0           0           0       0\n"
    );
    let mut s = String::new();
    let b = Bucket {
        time: 5,
        sum: 1234567.0,
        sum_sq: 1.5e20,
        min: -0.000123,
        max: 2.0,
        count: 7,
    };
    push_full_row(&mut s, false, 3, &b);
    assert_eq!(
        s,
        " 0       3             5 1.23457e+06     1.5e+20   -0.000123           2       7\n"
    );
}

#[test]
fn full_dump_layout_and_validity() {
    let mut f = new_file(10, FLAG_COLLATED, 0);
    let mut input = String::new();
    for k in -2..3i64 {
        let _ = writeln!(
            input,
            "{} {} {} {} {} 1",
            1600000000 + 10 * k,
            k,
            k * k,
            k,
            k
        );
    }
    import(&mut f, &input, false).unwrap();
    let (out, err, ok) = dump_full(&f, false);
    assert!(ok, "{err}");
    assert_eq!(err, "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1 + 18 + 1 + 512);
    assert_eq!(lines[0], "# Header: Name=Value");
    assert_eq!(lines[1], "magic=\"istatd 4.0\\n\\000\\365\\024\\007\\000\"");
    assert_eq!(lines[2], "hdr_size=464");
    assert_eq!(lines[3], "cfg_interval=10");
    assert_eq!(lines[12], "last_time=\"2020-09-13T12:27:00Z\"");
    assert_eq!(lines[13], "cumulative_sum=0");
    assert_eq!(lines[14], "cumulative_sum_sq=10");
    assert_eq!(lines[15], "cumulative_count=5");
    assert_eq!(lines[18], "flags=1");
    assert_eq!(lines[19], "# Valid Bucket Time Sum SumSq Min Max Cnt");
    assert_eq!(
        lines[20],
        " 1       0    1600000000           0           0           0           0       1"
    );
    assert_eq!(
        lines[22],
        " 1       2    1600000020           2           4           2           2       1"
    );
    assert_eq!(
        lines[23],
        " 0       3             0           0           0           0           0       0"
    );
    assert_eq!(
        lines[20 + 510],
        " 0     510    1599999980          -2           4          -2          -2       1"
    );
}

#[test]
fn full_dump_header_checks() {
    let good = new_file(10, 0, 0);
    let (_, err, ok) = dump_full(&good[..4000], false);
    assert_eq!(
        (err.as_str(), ok),
        ("file size 4000 is too short.\n", false)
    );

    let mut bad = good.clone();
    bad[3] = b'X';
    bad[20..24].copy_from_slice(&0i32.to_le_bytes());
    bad[48..56].copy_from_slice(&9i64.to_le_bytes());
    let (out, err, ok) = dump_full(&bad, false);
    assert_eq!(
        (out.as_str(), err.as_str(), ok),
        ("", "header magic is wrong -- not an istat file\n", false)
    );
    let (out, err, ok) = dump_full(&bad, true);
    assert!(ok);
    assert_eq!(
        err,
        "header magic is wrong -- not an istat file\n\
         page count 9 is larger than the file.\nassuming page count of 2\n\
         Retention interval 0 is out of bounds!\nassuming header size 3600\n"
    );
    assert!(out.contains("\ncfg_interval=3600\n"));
    assert!(out.contains("\npage_count=2\n"));

    let mut bad = good.clone();
    bad[32..36].copy_from_slice(&9i32.to_le_bytes());
    bad[40..48].copy_from_slice(&5000i64.to_le_bytes());
    bad[16..20].copy_from_slice(&100i32.to_le_bytes());
    let (_, err, ok) = dump_full(&bad, true);
    assert!(ok);
    assert_eq!(
        err,
        "bad file version 9; wanted 1-8\nassuming file version 8\n\
         page size 5000 is not an appropriate power of 2.\nassuming page size of 8192.\n\
         Header size 100 is too small; expected 440\nassuming header size 440\n"
    );
}

#[test]
fn info_output_and_errors() {
    let mut f = new_file(10, FLAG_COUNTER_AGGREGATE, 30);
    f[OFF_UNIT..OFF_UNIT + 3].copy_from_slice(b"ms\0");
    let s = info("p/10s", &f).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "p/10s:");
    assert_eq!(lines[4], "                        unit= ms");
    assert_eq!(
        lines[9],
        "                   last_time= 1970-01-01T00:00:00Z (0)"
    );
    assert_eq!(lines[17], "                 fixed_count= 30");
    assert_eq!(lines[18], "                       flags= 0x4");
    assert_eq!(lines[19], "                  bucketsize= 32");
    assert_eq!(lines.len(), 20);
    assert_eq!(
        info("p", &f[..100]).map_err(|e| e.to_string()),
        Err("p: file too short (100 bytes)".into())
    );
    let mut b = f.clone();
    b[0] = 0;
    assert_eq!(
        info("p", &b).map_err(|e| e.to_string()),
        Err("p: bad magic value (not a counter file)".into())
    );
    b = f.clone();
    b[32..36].copy_from_slice(&12i32.to_le_bytes());
    assert_eq!(
        info("p", &b).map_err(|e| e.to_string()),
        Err("p: version 12 cannot be read by version 8 tools.".into())
    );
    // info does not validate the length or anything else
    assert!(info("p", &f[..HEADER_SIZE]).is_ok());
}

#[test]
fn dump_csv_ranges() {
    let mut f = new_file(10, 0, 0);
    assert_eq!(
        dump_csv(&f).unwrap(),
        "DATE,SUM,SUMSQ,MIN,MAX,COUNT,AVG,SDEV\n"
    );
    import(
        &mut f,
        "1599999960 1 1 1 1 1\n1600000000 113.64 12914.0498 113.64 113.64 1\n",
        false,
    )
    .unwrap();
    assert_eq!(
        dump_csv(&f).unwrap(),
        "DATE,SUM,SUMSQ,MIN,MAX,COUNT,AVG,SDEV\n\
         \"2020-09-13T12:26:00Z\",1,1,1,1,1,1,0\n\
         \"2020-09-13T12:26:40Z\",113.64,12914,113.64,113.64,1,113.64,0\n"
    );
    // first > last: only the header line
    let mut g = f.clone();
    g[56..64].copy_from_slice(&5i64.to_le_bytes());
    assert_eq!(dump_csv(&g).unwrap().lines().count(), 1);
    // corrupt: more than one lap claimed, bounded to C rows at most
    let mut g = f.clone();
    g[56..64].copy_from_slice(&(-100000i64).to_le_bytes());
    assert_eq!(dump_csv(&g).unwrap().lines().count(), 3);
    // invalid file: an error, never a panic
    assert_eq!(
        dump_csv(&f[..9000]),
        Err(ToolError::Format(FormatError::LengthMismatch {
            expected: 24576,
            actual: 9000
        }))
    );
    assert!(dump_csv(&f[..10]).is_err());
}

#[test]
fn import_ring_rules_and_messages() {
    let mut f = new_file(10, 0, 0);
    let input = "1600000005 2 4 2 2 1\n\
                 bogus line\n\
                 \n\
                 1 2 3 4 5 6 7\n\
                 1600000000 x 1 1 1 1\n\
                 1600005120 3 9 3 3 1\r\n\
                 1600005120 3 9 3 3 1\n\
                 1599999990 5 25 5 5 1";
    let rep = import(&mut f, input, false).unwrap();
    assert_eq!(
        rep.stderr,
        "Need exactly 6 arguments, but got 2:\nbogus line\n\
         Need exactly 6 arguments, but got 7:\n1 2 3 4 5 6 7\n\
         Cannot parse line:\n1600000000 x 1 1 1 1\n\
         Need exactly 6 arguments, but got 7:\n1600005120 3 9 3 3 1\r\n"
    );
    // index 512 pushes first_bucket to 1; then index -1 is refused (<= 512 - 512)
    assert_eq!((rep.applied, rep.refused, rep.bad_lines), (2, 1, 4));
    let h = hdr(&f);
    assert_eq!(
        (h.first_bucket, h.last_bucket, h.last_time),
        (1, 512, 1600005120)
    );
    assert_eq!(
        (h.cumulative_sum, h.cumulative_sum_sq, h.cumulative_count),
        (5.0, 13.0, 2)
    );
    // index 512 shares slot 0 with index 0: the stale slot was zeroed, then replaced
    let b = bucket_at_slot(&f, &h, 0);
    assert_eq!((b.time, b.sum, b.count), (1600005120, 3.0, 1));
    assert_eq!(dump_csv(&f).unwrap().lines().count(), 2);
}

#[test]
fn import_modes() {
    let line_a = "1600000010 2 4 2 2 1\n";
    let line_b = "1600000013 3 9 3 3 2\n";
    // OVERWRITE: replaced verbatim, including the unaligned time
    let mut f = new_file(10, 0, 0);
    import(&mut f, &format!("{line_a}{line_b}"), false).unwrap();
    let h = hdr(&f);
    let b = bucket_at_slot(&f, &h, 1);
    assert_eq!((b.time, b.sum, b.count), (1600000013, 3.0, 2));
    // index 1 > last_bucket 0: last_time is the bucket time
    assert_eq!((h.last_bucket, h.last_time), (1, 1600000010));
    // FILL_EMPTY on a plain file: merged, stamped with the bucket time
    let mut f = new_file(10, 0, 0);
    import(&mut f, &format!("{line_a}{line_b}"), true).unwrap();
    let h = hdr(&f);
    let b = bucket_at_slot(&f, &h, 1);
    assert_eq!(
        (b.time, b.sum, b.sum_sq, b.min, b.max, b.count),
        (1600000010, 5.0, 13.0, 2.0, 3.0, 3)
    );
    assert_eq!(h.cumulative_count, 3);
    // FILL_EMPTY on an aggregate file: count forced to fixed_count after the merge
    let mut f = new_file(10, FLAG_COUNTER_AGGREGATE, 30);
    import(&mut f, &format!("{line_a}{line_b}"), true).unwrap();
    let b = bucket_at_slot(&f, &hdr(&f), 1);
    assert_eq!((b.sum, b.count), (5.0, 30));
    // COLLATED: always replaced
    let mut f = new_file(10, FLAG_COLLATED, 0);
    import(&mut f, &format!("{line_a}{line_b}"), true).unwrap();
    let b = bucket_at_slot(&f, &hdr(&f), 1);
    assert_eq!((b.time, b.sum, b.count), (1600000013, 3.0, 2));
    // TRAILING: applied like a normal file
    let mut f = new_file(10, FLAG_TRAILING, 0);
    import(&mut f, line_a, false).unwrap();
    assert_eq!(bucket_at_slot(&f, &hdr(&f), 1).sum, 2.0);
}

#[test]
fn import_cumulative_uses_f32_getters() {
    let mut f = new_file(10, 0, 0);
    import(&mut f, "1600000000 113.64 1 1 1 1\n", false).unwrap();
    assert_eq!(hdr(&f).cumulative_sum, 113.64f32 as f64);
    assert_eq!(bucket_at_slot(&f, &hdr(&f), 0).sum, 113.64);
}

#[test]
fn import_of_nothing_leaves_the_file_unchanged() {
    let mut f = new_file(10, 0, 0);
    import(&mut f, "1600000000 1 1 1 1 1\n", false).unwrap();
    let before = f.clone();
    let rep = import(&mut f, "", false).unwrap();
    assert_eq!(rep, ImportReport::default());
    assert_eq!(f, before);
    let mut bad = f.clone();
    bad[0] = b'x';
    assert_eq!(
        import(&mut bad, "", false),
        Err(ToolError::Format(FormatError::BadMagic))
    );
}

#[test]
fn round_trip_dump_import_dump() {
    // Values whose 6-digit text is exact, so the CSV round trip is lossless.
    let mut src = new_file(10, 0, 0);
    let mut input = String::new();
    for k in -4..300i64 {
        let v = (k % 17) as f64 * 0.25 - 1.5;
        let c = (k % 3) + 1;
        let _ = writeln!(
            input,
            "{} {} {} {} {} {}",
            1600000000 + 10 * k,
            v * c as f64,
            v * v * c as f64,
            v - 1.0,
            v + 1.0,
            c
        );
    }
    let rep = import(&mut src, &input, false).unwrap();
    assert_eq!(rep.applied, 304);
    let d1 = dump_csv(&src).unwrap();
    assert_eq!(d1.lines().count(), 305);
    let mut dst = new_file(10, 0, 0);
    let rep = import(&mut dst, &d1, false).unwrap();
    assert_eq!((rep.applied, rep.bad_lines), (304, 0));
    assert_eq!(dump_csv(&dst).unwrap(), d1);
    // The bucket pages are identical, and so are the ring fields of the header.
    assert_eq!(src[PAGE_SIZE..], dst[PAGE_SIZE..]);
    let (a, b) = (hdr(&src), hdr(&dst));
    assert_eq!(
        (a.first_bucket, a.last_bucket, a.last_time),
        (b.first_bucket, b.last_bucket, b.last_time)
    );
    // A bad CSV row is reported, not applied
    let rep = import(
        &mut dst,
        "DATE,SUM,SUMSQ,MIN,MAX,COUNT,AVG,SDEV\r\n\"nope\",1,1,1,1,1,1,0\n",
        false,
    )
    .unwrap();
    assert_eq!(
        rep.stderr,
        "Cannot parse CSV line:\n\"nope\",1,1,1,1,1,1,0\n"
    );
}
