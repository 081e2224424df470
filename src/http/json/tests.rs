//! Unit tests of the JSON reader and writer against jsoncpp's behaviour and error texts.

use std::collections::BTreeMap;

use super::*;

fn err(doc: &str) -> String {
    parse(doc.as_bytes()).unwrap_err().to_string()
}

#[test]
fn error_messages_match_jsoncpp() {
    assert_eq!(
        err(""),
        "* Line 1, Column 1\n  Syntax error: value, object or array expected.\n"
    );
    assert_eq!(
        err("{\"a\" 1}"),
        "* Line 1, Column 6\n  Missing ':' after object member name\n"
    );
    assert_eq!(
        err("{\"a\":1,\n\"b\":x}"),
        "* Line 2, Column 5\n  Syntax error: value, object or array expected.\n"
    );
    assert_eq!(
        err("[1 2]"),
        "* Line 1, Column 4\n  Missing ',' or ']' in array declaration\n"
    );
    assert_eq!(
        err("{\"a\":1,}"),
        "* Line 1, Column 8\n  Missing '}' or object member name\n"
    );
    assert_eq!(
        err("\"\\q\""),
        "* Line 1, Column 1\n  Bad escape sequence in string\nSee Line 1, Column 4 for detail.\n"
    );
    assert_eq!(err("--1"), "* Line 1, Column 1\n  '--1' is not a number.\n");
}

#[test]
fn lenient_like_jsoncpp() {
    assert_eq!(
        parse(b"{} trailing").unwrap(),
        JValue::Object(BTreeMap::new())
    );
    assert_eq!(parse(b"// c\n 5").unwrap(), JValue::Int(5));
    assert_eq!(parse(b"-").unwrap(), JValue::Int(0));
    assert_eq!(parse(b"007").unwrap(), JValue::Int(7));
    assert_eq!(parse(b"1e").unwrap(), JValue::Real(1.0));
    assert_eq!(parse(b"-.5").unwrap(), JValue::Real(-0.5));
    assert_eq!(parse(b"3000000000").unwrap(), JValue::UInt(3_000_000_000));
    assert_eq!(parse(b"2147483647").unwrap(), JValue::Int(2147483647));
    assert_eq!(parse(b"-3000000000").unwrap(), JValue::Int(-3_000_000_000));
    assert_eq!(
        parse(b"18446744073709551616").unwrap(),
        JValue::Real(18446744073709551616.0)
    );
    assert_eq!(parse(b"1e999").unwrap(), JValue::Real(f64::INFINITY));
    let v = parse(b"{\"a\":1,\"a\":2}").unwrap();
    assert_eq!(v.get("a"), &JValue::Int(2));
    // The empty-object test looks at the previous member's name.
    assert!(parse(b"{\"\":1,}").is_ok());
    assert_eq!(
        parse(b"\"\\ud83d\\ude00\"").unwrap(),
        JValue::Str("😀".as_bytes().to_vec())
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let doc = "[".repeat(100_000);
    assert!(parse(doc.as_bytes())
        .unwrap_err()
        .to_string()
        .contains("Exceeded stackLimit"));
}

#[test]
fn conversions() {
    assert_eq!(JValue::Real(3e9).as_int64(), Ok(i32::MIN as i64));
    assert_eq!(JValue::Real(12.7).as_int64(), Ok(12));
    assert_eq!(
        JValue::Str(b"x".to_vec()).as_int64(),
        Err("Type is not convertible to Int64")
    );
    assert_eq!(
        JValue::Int(1).as_string(),
        Err("Type is not convertible to string")
    );
    assert!(JValue::Str(b"x".to_vec()).as_bool());
    assert!(!JValue::Str(Vec::new()).as_bool());
}

#[test]
fn quoting() {
    let mut o = Vec::new();
    push_quoted(&mut o, b"a\"\\\x08\x0c\n\r\t\x01\x1f\x7f\xc3\xa9\0");
    assert_eq!(
        o,
        b"\"a\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F\x7f\xc3\xa9\\u0000\""
    );
}
