//! Wire file names and the process id (docs/replication-protocol.md, "File names",
//! "Server id"; U-NAME-01..03, U-ID-01 of its "Test plan").

use istatd_replication::name::{
    check_name, counter_key, counter_of, is_valid_name, normalise_path, wire_name,
};
use istatd_replication::pdu::UniqueId;

#[test]
fn u_name_01_valid_names() {
    for n in [
        "cpu/idle/host1/10s",
        "istatd/counter/enqueue/ret-7d",
        "A/b/5M",
        "a/10s",
        "a/b/.x",
        "~!@#$%^&*()_+=-{}[]|;<>,?`/10s",
    ] {
        assert!(is_valid_name(n.as_bytes()), "{n} should be valid");
        assert_eq!(check_name(n.as_bytes()), Ok(()));
    }
    // 255 bytes is the longest.
    let long = format!("{}/10s", "c".repeat(251));
    assert_eq!(long.len(), 255);
    assert!(is_valid_name(long.as_bytes()));
}

#[test]
fn u_name_02_bad_names() {
    let long = format!("{}/10s", "c".repeat(252));
    assert_eq!(long.len(), 256);
    let bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"10s".to_vec(),
        b"/abs/10s".to_vec(),
        b"a/../10s".to_vec(),
        b"..".to_vec(),
        b"a/./10s".to_vec(),
        b"a/b.c/10s".to_vec(),
        b"a//b/10s".to_vec(),
        b"a/b/".to_vec(),
        b"a/b/..".to_vec(),
        b"a/b/.".to_vec(),
        b"../a/10s".to_vec(),
        b".hidden/10s".to_vec(),
        b"a/b\x01/10s".to_vec(),
        b"a/b\t/10s".to_vec(),
        b"a/b c/10s".to_vec(),
        b"a/b\\c/10s".to_vec(),
        b"a/b:c/10s".to_vec(),
        b"a/b\"c/10s".to_vec(),
        b"a/b'c/10s".to_vec(),
        b"a/b\x7f/10s".to_vec(),
        b"a/b\xc3\xa9/10s".to_vec(),
        b"a/b\xff/10s".to_vec(),
        b"a/b\0/10s".to_vec(),
        long.into_bytes(),
    ];
    for n in &bad {
        assert!(
            !is_valid_name(n),
            "{:?} should be refused",
            String::from_utf8_lossy(n)
        );
        assert!(check_name(n).is_err());
    }
}

#[test]
fn u_name_03_counter_to_name() {
    assert_eq!(wire_name("a..b", "10s").as_deref(), Some("a/b/10s"));
    assert_eq!(
        wire_name("cpu.idle.host1", "10s").as_deref(),
        Some("cpu/idle/host1/10s")
    );
    assert_eq!(wire_name("x", "ret-7d").as_deref(), Some("x/ret-7d"));
    // Not replicable.
    assert_eq!(wire_name("", "10s"), None);
    assert_eq!(wire_name("a.b", ".."), None);
    assert_eq!(wire_name("a:b", "10s"), None);
    let c = "c".repeat(252);
    assert_eq!(wire_name(&c, "10s"), None, "256-byte path");
    let c = "c".repeat(251);
    assert_eq!(wire_name(&c, "10s").map(|s| s.len()), Some(255));

    // Store-relative paths.
    assert_eq!(normalise_path("a//b/10s").as_deref(), Some("a/b/10s"));
    assert_eq!(
        normalise_path("cpu/idle/host1/10s").as_deref(),
        Some("cpu/idle/host1/10s")
    );
    assert_eq!(normalise_path("10s"), None);
    assert_eq!(normalise_path("a/b/.."), None);
    assert_eq!(normalise_path(&format!("{}/10s", "d".repeat(252))), None);

    assert_eq!(counter_of("cpu/idle/host1/10s"), "cpu/idle/host1");
    assert_eq!(counter_key("cpu/idle/host1/10s"), "cpu.idle.host1");
}

#[test]
fn u_id_01_unique_id() {
    let a = UniqueId::make(12345).expect("OS randomness");
    let b = UniqueId::make(12345).expect("OS randomness");
    assert_eq!(&a.0[..4], &12345u32.to_le_bytes());
    assert_eq!(&a.0[..4], &[0x39, 0x30, 0, 0]);
    assert_ne!(a, b, "the random part differs");
    assert_ne!(&a.0[4..], &[0u8; 12], "the random part is not zero");
    let big = UniqueId::make(0xdead_beef).unwrap();
    assert_eq!(&big.0[..4], &[0xef, 0xbe, 0xad, 0xde]);

    for id in [a, b, big] {
        let s = id.str();
        assert_eq!(s.len(), 35);
        for (i, c) in s.chars().enumerate() {
            if [8, 17, 26].contains(&i) {
                assert_eq!(c, ':', "{s}");
            } else {
                assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{s}");
            }
        }
    }
    // Zero padding of every byte.
    let id = UniqueId([
        0x01, 0x02, 0x0a, 0x00, 0x00, 0x0f, 0x10, 0xff, 0, 0, 0, 0, 0xab, 0x0c, 0x0d, 0x0e,
    ]);
    assert_eq!(id.str(), "01020a00:000f10ff:00000000:ab0c0d0e");
    assert_eq!(format!("{id:?}"), id.str());
    assert_eq!(
        UniqueId::default().str(),
        "00000000:00000000:00000000:00000000"
    );
}
