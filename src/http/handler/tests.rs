//! Unit tests of the handlers' pure helpers: integer parameters, the key universe,
//! static file types.

use super::counter_data::lexical_int;
use super::*;
use crate::http::backend::CounterInfo;

#[test]
fn lexical_ints() {
    assert_eq!(lexical_int(b"12"), Some(12));
    assert_eq!(lexical_int(b"+12"), Some(12));
    assert_eq!(lexical_int(b"-12"), Some(-12));
    assert_eq!(lexical_int(b"-9223372036854775808"), Some(i64::MIN));
    assert_eq!(lexical_int(b"9223372036854775808"), None);
    assert_eq!(lexical_int(b""), None);
    assert_eq!(lexical_int(b"-"), None);
    assert_eq!(lexical_int(b"+-1"), None);
    assert_eq!(lexical_int(b" 1"), None);
    assert_eq!(lexical_int(b"1x"), None);
}

#[test]
fn universe_and_patterns() {
    let c = |n: &str, e| CounterInfo {
        name: n.into(),
        is_event: e,
    };
    let u = key_universe(&[c("web", false), c("web.latency.a", true), c("x", true)]);
    assert_eq!(u["web"], (false, 2));
    assert_eq!(u["web.latency"], (false, 2));
    assert_eq!(u["web.latency.a"], (true, 1));
    assert_eq!(u["x"], (true, 1));
    assert_eq!(u.len(), 4);
    assert_eq!(normalize_pattern(b"a**?b??c?*"), b"a*b?c*");
}

#[test]
fn file_types() {
    assert_eq!(
        static_file_type(b"x.json"),
        "application/javascript; charset=utf-8"
    );
    assert_eq!(static_file_type(b"index.html"), "text/html; charset=utf-8");
    assert_eq!(
        static_file_type(b"a.min.js"),
        "application/javascript; charset=utf-8"
    );
    assert_eq!(static_file_type(b"favicon.ico"), "image/x-icon");
    assert_eq!(static_file_type(b"data.bin"), "application/octet-stream");
}
