//! File names on the wire (docs/replication-protocol.md, "File names"): a counter file's
//! path relative to the store root, `cpu/idle/host1/10s`. The rules keep every name inside
//! the store and out of its `.`-files, whatever a peer sends.

/// Why a name is refused.
pub fn check_name(name: &[u8]) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > crate::pdu::MAX_NAME {
        return Err("length outside 1..=255");
    }
    if name
        .iter()
        .any(|&b| !(0x21..=0x7e).contains(&b) || matches!(b, b'\\' | b':' | b'"' | b'\''))
    {
        return Err("byte outside the allowed set");
    }
    let parts: Vec<&[u8]> = name.split(|&b| b == b'/').collect();
    if parts.len() < 2 {
        return Err("no counter component");
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty component");
    }
    let (last, dirs) = parts.split_last().expect("two parts at least");
    if dirs.iter().any(|p| p.contains(&b'.')) {
        return Err("'.' in a counter component");
    }
    if *last == b"." || *last == b".." {
        return Err("'.' or '..' as the retention");
    }
    Ok(())
}

pub fn is_valid_name(name: &[u8]) -> bool {
    check_name(name).is_ok()
}

/// The wire name of a counter's retention file: the munged counter name with `.` as
/// `/` (empty components dropped, so `a..b` gives `a/b`), then the retention name. None
/// when the result is not a valid name (too long, for one).
pub fn wire_name(counter: &str, retention: &str) -> Option<String> {
    let mut s = String::with_capacity(counter.len() + retention.len() + 1);
    for part in counter.split('.').filter(|p| !p.is_empty()) {
        s.push_str(part);
        s.push('/');
    }
    s.push_str(retention);
    is_valid_name(s.as_bytes()).then_some(s)
}

/// Normalise a store-relative path (which may hold `a//b` for a C++ counter `a..b`)
/// to its wire form; None when it cannot be replicated.
pub fn normalise_path(rel: &str) -> Option<String> {
    let (dir, ret) = rel.rsplit_once('/')?;
    let counter = dir.replace('/', ".");
    wire_name(&counter, ret)
}

/// The counter key of a wire name: the path minus its last component, `/` as `.`.
pub fn counter_of(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(d, _)| d)
}

/// The counter key (dots) of a wire name.
pub fn counter_key(name: &str) -> String {
    counter_of(name).replace('/', ".")
}
