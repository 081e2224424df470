//! The binary formats graphite-web's cluster nodes exchange (`format=pickle` and
//! `format=msgpack` with `local=1`, docs/graphite.md "Cluster nodes"): a small value
//! model and its two encodings.
//!
//! Only what graphite-web 1.1.10's `RemoteFinder` and `RemoteReader` read is needed:
//! lists of string-keyed dicts holding strings, integers, floats, booleans, `None` and
//! pairs. The pickle is protocol 2 without memo entries (nothing is shared, so the
//! unpickler needs none), and names no class, which graphite-web's safe unpickler would
//! have to allow.

/// A value as graphite-web's Python side sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A Python tuple of two (graphite-web reads intervals as pairs).
    Pair(Box<Wire>, Box<Wire>),
    List(Vec<Wire>),
    /// A dict with string keys, in this order.
    Dict(Vec<(&'static str, Wire)>),
}

impl Wire {
    /// Pickle protocol 2.
    pub fn to_pickle(&self) -> Vec<u8> {
        let mut out = vec![0x80, 2];
        self.pickle_into(&mut out);
        out.push(b'.');
        out
    }

    fn pickle_into(&self, out: &mut Vec<u8>) {
        match self {
            Wire::None => out.push(b'N'),
            Wire::Bool(true) => out.push(0x88),
            Wire::Bool(false) => out.push(0x89),
            Wire::Int(i) => match i32::try_from(*i) {
                Ok(small) => {
                    out.push(b'J');
                    out.extend_from_slice(&small.to_le_bytes());
                }
                Err(_) => {
                    // LONG1: little-endian two's complement, 8 bytes is always enough.
                    out.push(0x8a);
                    out.push(8);
                    out.extend_from_slice(&i.to_le_bytes());
                }
            },
            Wire::Float(f) => {
                out.push(b'G');
                out.extend_from_slice(&f.to_be_bytes());
            }
            Wire::Str(s) => pickle_str(s, out),
            Wire::Pair(a, b) => {
                a.pickle_into(out);
                b.pickle_into(out);
                out.push(0x86);
            }
            Wire::List(items) => {
                out.push(b']');
                // One APPENDS per 1,000 items, as Python batches them.
                for chunk in items.chunks(1000) {
                    out.push(b'(');
                    for v in chunk {
                        v.pickle_into(out);
                    }
                    out.push(b'e');
                }
            }
            Wire::Dict(items) => {
                out.push(b'}');
                if !items.is_empty() {
                    out.push(b'(');
                    for (k, v) in items {
                        pickle_str(k, out);
                        v.pickle_into(out);
                    }
                    out.push(b'u');
                }
            }
        }
    }

    /// MessagePack, strings as `str` (graphite-web packs with `use_bin_type=True`).
    pub fn to_msgpack(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.msgpack_into(&mut out);
        out
    }

    fn msgpack_into(&self, out: &mut Vec<u8>) {
        match self {
            Wire::None => out.push(0xc0),
            Wire::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Wire::Int(i) => {
                if (0..=0x7f).contains(i) {
                    out.push(*i as u8);
                } else if (-32..0).contains(i) {
                    out.push(*i as i8 as u8);
                } else if let Ok(v) = i32::try_from(*i) {
                    out.push(0xd2);
                    out.extend_from_slice(&v.to_be_bytes());
                } else {
                    out.push(0xd3);
                    out.extend_from_slice(&i.to_be_bytes());
                }
            }
            Wire::Float(f) => {
                out.push(0xcb);
                out.extend_from_slice(&f.to_be_bytes());
            }
            Wire::Str(s) => msgpack_str(s, out),
            Wire::Pair(a, b) => {
                out.push(0x92);
                a.msgpack_into(out);
                b.msgpack_into(out);
            }
            Wire::List(items) => {
                msgpack_len(items.len(), 0x90, 0xdc, out);
                for v in items {
                    v.msgpack_into(out);
                }
            }
            Wire::Dict(items) => {
                msgpack_len(items.len(), 0x80, 0xde, out);
                for (k, v) in items {
                    msgpack_str(k, out);
                    v.msgpack_into(out);
                }
            }
        }
    }
}

fn pickle_str(s: &str, out: &mut Vec<u8>) {
    // BINUNICODE: a u32 length, so a name over 4 GiB cannot occur (HTTP bodies are far
    // smaller); saturate rather than wrap all the same.
    out.push(b'X');
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

fn msgpack_str(s: &str, out: &mut Vec<u8>) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n < 256 {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else if n < 65536 {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n.min(u32::MAX as usize) as u32).to_be_bytes());
    }
    out.extend_from_slice(&s.as_bytes()[..n.min(u32::MAX as usize)]);
}

/// A list's or map's header: fix form (`fix | n`) below 16, else 16 or 32 bits.
fn msgpack_len(n: usize, fix: u8, wide16: u8, out: &mut Vec<u8>) {
    if n < 16 {
        out.push(fix | n as u8);
    } else if n < 65536 {
        out.push(wide16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(wide16 + 1);
        out.extend_from_slice(&(n.min(u32::MAX as usize) as u32).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Wire {
        Wire::List(vec![Wire::Dict(vec![
            ("path", Wire::Str("a.b".into())),
            ("is_leaf", Wire::Bool(true)),
            (
                "intervals",
                Wire::List(vec![Wire::Pair(
                    Box::new(Wire::Int(0)),
                    Box::new(Wire::Int(1_700_000_000)),
                )]),
            ),
            ("v", Wire::List(vec![Wire::Float(1.5), Wire::None])),
            ("big", Wire::Int(1 << 40)),
        ])])
    }

    #[test]
    fn pickle_bytes_are_protocol_2_without_memo() {
        // Checked with Python 3.11: pickle.loads(bytes) ==
        // [{'path': 'a.b', 'is_leaf': True, 'intervals': [(0, 1700000000)],
        //   'v': [1.5, None], 'big': 1099511627776}]
        let want: Vec<u8> = [
            &b"\x80\x02](}(X\x04\x00\x00\x00pathX\x03\x00\x00\x00a.b"[..],
            b"X\x07\x00\x00\x00is_leaf\x88",
            b"X\t\x00\x00\x00intervals](J\x00\x00\x00\x00J\x00\xf1Se\x86e",
            b"X\x01\x00\x00\x00v](G?\xf8\x00\x00\x00\x00\x00\x00Ne",
            b"X\x03\x00\x00\x00big\x8a\x08\x00\x00\x00\x00\x00\x01\x00\x00",
            b"ue.",
        ]
        .concat();
        assert_eq!(sample().to_pickle(), want);
    }

    #[test]
    fn msgpack_bytes_follow_the_spec() {
        let want: Vec<u8> = [
            &b"\x91\x85\xa4path\xa3a.b\xa7is_leaf\xc3"[..],
            b"\xa9intervals\x91\x92\x00\xd2\x65\x53\xf1\x00",
            b"\xa1v\x92\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00\xc0",
            b"\xa3big\xd3\x00\x00\x01\x00\x00\x00\x00\x00",
        ]
        .concat();
        assert_eq!(sample().to_msgpack(), want);
        assert_eq!(Wire::Int(-5).to_msgpack(), vec![0xfb]);
        assert_eq!(
            Wire::List(vec![Wire::None; 16]).to_msgpack()[..3],
            [0xdc, 0, 16]
        );
    }
}
