//! The settings requests (docs/interfaces.md §3.11): `GET /?s=NAME[&sk=PATTERN]` and
//! `POST /?s=NAME` with a JSON object of scalar values.

use super::lists::normalize_pattern;
use crate::http::json::{self, push_quoted, JValue};
use crate::http::response::{Response, JSON};
use crate::http::settings::is_valid_name;
use crate::http::HttpConfig;

pub(super) async fn get_settings(cfg: &HttpConfig, name: &[u8], pattern: &[u8]) -> Response {
    if !is_valid_name(name) {
        return Response::error(400, "invalid settings name");
    }
    let name = String::from_utf8_lossy(name);
    if !cfg.settings.open(&name, false).await {
        return Response::error(404, "no such settings");
    }
    let Some(values) = cfg.settings.matching(&name, &normalize_pattern(pattern)) else {
        return Response::error(404, "no such settings");
    };
    if values.is_empty() {
        return Response::new(404, JSON, b"null\n".to_vec());
    }
    let mut out = vec![b'{'];
    for (i, (k, v)) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_quoted(&mut out, k);
        out.push(b':');
        push_quoted(&mut out, v);
    }
    out.extend_from_slice(b"}\n");
    Response::new(200, JSON, out)
}

/// `json_string` (daemon/RequestInFlight.cpp): a scalar as settings text.
fn setting_text(v: &JValue) -> Vec<u8> {
    match v {
        JValue::Bool(b) => if *b { "true" } else { "false" }.into(),
        JValue::Int(i) => i.to_string().into_bytes(),
        JValue::UInt(u) => u.to_string().into_bytes(),
        JValue::Real(r) => istatd_storage::numfmt::g17(*r).into_bytes(),
        JValue::Str(s) => s.clone(),
        _ => Vec::new(),
    }
}

pub(super) async fn set_settings(cfg: &HttpConfig, name: &[u8], body: &[u8]) -> Response {
    if !is_valid_name(name) {
        return Response::error(400, "invalid settings name");
    }
    let root = match json::parse(body) {
        Ok(v) => v,
        Err(e) => return Response::error(400, e.to_string()),
    };
    if !root.is_object_or_null() {
        return Response::error(400, "JSON settings must be key/value object");
    }
    let name = String::from_utf8_lossy(name);
    if !cfg.settings.open(&name, true).await {
        return Response::error(404, "no such settings");
    }
    if let JValue::Object(members) = &root {
        for (k, v) in members {
            // jsoncpp's isArray()/isObject() are true for null too.
            if matches!(v, JValue::Array(_) | JValue::Object(_) | JValue::Null) {
                let mut m = b"JSON setting values cannot be compound (found ".to_vec();
                m.extend_from_slice(k);
                m.push(b')');
                return Response::error(400, m);
            }
            if !cfg.settings.set(&name, k, &setting_text(v)) {
                return Response::error(404, "no such settings");
            }
        }
    }
    Response::new(200, JSON, b"{\"success\":true}".to_vec())
}
