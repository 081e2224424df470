//! JSON as the reference's bundled jsoncpp reads and writes it (lib/jsoncpp.cpp).
//!
//! Request bodies (`POST /*`, `POST /?s=`) are parsed with a port of jsoncpp's `Reader`
//! (default `Features::all()`): its error messages are part of the HTTP contract
//! (docs/interfaces.md §3.6: `* Line 1, Column 1\n  Syntax error: value, object or array
//! expected.\n`), and it accepts what the reference accepts: any root value, `//` and
//! `/* */` comments, text after the first value, leading zeros, a lone `-` (0), numbers
//! read with `sscanf("%lf")` prefix rules, later duplicate keys winning. The value model
//! keeps jsoncpp's distinction between `intValue` (negative, or at most `INT_MAX`) and
//! `uintValue` (larger positive integers), which the callers' `isInt()` tests see.
//!
//! The port adds one limit: nesting deeper than [`MAX_DEPTH`] is an error instead of a
//! stack overflow.
//!
//! The writer side is jsoncpp's string quoting (`valueToQuotedString`), used for every
//! JSON string the HTTP layer emits.
//!
//! This file holds the value model and the writer; the reader (and [`JsonError`], its
//! error) is in `reader`.

use std::collections::BTreeMap;

mod reader;

pub use reader::{parse, scan_double, JsonError};

/// Nesting limit of the reader (the reference has none and overflows its stack).
pub const MAX_DEPTH: usize = 512;

/// A parsed JSON value, with jsoncpp's value types.
#[derive(Debug, Clone, PartialEq)]
pub enum JValue {
    Null,
    /// `intValue`: negative integers and non-negative ones up to `i32::MAX`.
    Int(i64),
    /// `uintValue`: integers above `i32::MAX`.
    UInt(u64),
    Real(f64),
    /// Bytes as decoded (not necessarily UTF-8).
    Str(Vec<u8>),
    Bool(bool),
    Array(Vec<JValue>),
    /// Members in byte order of their names (jsoncpp's `std::map`).
    Object(BTreeMap<Vec<u8>, JValue>),
}

static NULL: JValue = JValue::Null;

impl JValue {
    /// `root["key"]` on an object (or null): the member, or null when absent.
    pub fn get(&self, key: &str) -> &JValue {
        match self {
            JValue::Object(m) => m.get(key.as_bytes()).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// jsoncpp `isObject()`: true for objects **and null**.
    pub fn is_object_or_null(&self) -> bool {
        matches!(self, JValue::Null | JValue::Object(_))
    }

    /// jsoncpp `asInt64()`.
    pub fn as_int64(&self) -> Result<i64, &'static str> {
        match *self {
            JValue::Null => Ok(0),
            JValue::Int(v) => Ok(v),
            JValue::UInt(v) => {
                if v <= i64::MAX as u64 {
                    Ok(v as i64)
                } else {
                    Err("unsigned integer out of Int64 range")
                }
            }
            JValue::Real(r) => {
                if r >= i64::MIN as f64 && r <= i64::MAX as f64 {
                    // The reference converts through `Int` (32 bits): out of that range
                    // x86 yields INT_MIN.
                    Ok(c_double_to_int(r) as i64)
                } else {
                    Err("Real out of Int64 range")
                }
            }
            JValue::Bool(b) => Ok(b as i64),
            _ => Err("Type is not convertible to Int64"),
        }
    }

    /// jsoncpp `asInt()`.
    pub fn as_int(&self) -> Result<i32, &'static str> {
        match *self {
            JValue::Null => Ok(0),
            JValue::Int(v) => {
                if v >= i32::MIN as i64 && v <= i32::MAX as i64 {
                    Ok(v as i32)
                } else {
                    Err("unsigned integer out of signed int range")
                }
            }
            JValue::UInt(v) => {
                if v <= i32::MAX as u64 {
                    Ok(v as i32)
                } else {
                    Err("unsigned integer out of signed int range")
                }
            }
            JValue::Real(r) => {
                if r >= i32::MIN as f64 && r <= i32::MAX as f64 {
                    Ok(r as i32)
                } else {
                    Err("Real out of signed integer range")
                }
            }
            JValue::Bool(b) => Ok(b as i32),
            _ => Err("Type is not convertible to int"),
        }
    }

    /// jsoncpp `asBool()`.
    pub fn as_bool(&self) -> bool {
        match self {
            JValue::Null => false,
            JValue::Int(v) => *v != 0,
            JValue::UInt(v) => *v != 0,
            JValue::Real(r) => *r != 0.0,
            JValue::Bool(b) => *b,
            // A C string: empty, or starting with NUL, is false.
            JValue::Str(s) => s.first().is_some_and(|&c| c != 0),
            JValue::Array(a) => !a.is_empty(),
            JValue::Object(m) => !m.is_empty(),
        }
    }

    /// jsoncpp `asString()`.
    pub fn as_string(&self) -> Result<Vec<u8>, &'static str> {
        match self {
            JValue::Null => Ok(Vec::new()),
            JValue::Str(s) => Ok(s.clone()),
            JValue::Bool(b) => Ok(if *b {
                b"true".to_vec()
            } else {
                b"false".to_vec()
            }),
            _ => Err("Type is not convertible to string"),
        }
    }
}

/// C's `(int)d` as x86-64 computes it: truncation, INT_MIN when out of range or NaN.
pub fn c_double_to_int(d: f64) -> i32 {
    if d.is_nan() || d <= i32::MIN as f64 - 1.0 || d >= i32::MAX as f64 + 1.0 {
        i32::MIN
    } else {
        d as i32
    }
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

/// Append `s` as a JSON string literal, quoted as jsoncpp's `valueToQuotedString` does:
/// `"` `\` BS FF LF CR TAB get their short escapes, other control bytes `\u00XX` (upper
/// case hex), everything else (bytes ≥ 0x80 included) as is. The reference stops at a
/// NUL byte (C string); the port escapes it as `\u0000`.
pub fn push_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x00..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

/// `Json::FastWriter().write({"error": msg})`: `{"error":"<msg>"}` and a LF.
pub fn error_body(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 13);
    out.extend_from_slice(b"{\"error\":");
    push_quoted(&mut out, msg);
    out.extend_from_slice(b"}\n");
    out
}

#[cfg(test)]
mod tests;
