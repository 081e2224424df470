//! The counter list `GET /?q=` (docs/interfaces.md §3.7, patterns §3.8) and the agent list
//! `GET /?a=` (§3.9).

use std::collections::{BTreeMap, HashMap};

use istatd_storage::numfmt::iso8601;

use crate::http::backend::{AgentInfo, Backend, CounterInfo};
use crate::http::json::push_quoted;
use crate::http::response::{Response, JSON};
use crate::http::settings::latin1;

/// A pattern with every run of wildcards collapsed (`**`, `*?`, `?*` → `*`; `??` → `?`):
/// the same language (§3.8), and matching cost bounded by the name's length.
pub fn normalize_pattern(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'*' || p[i] == b'?' {
            let mut star = false;
            while i < p.len() && (p[i] == b'*' || p[i] == b'?') {
                star |= p[i] == b'*';
                i += 1;
            }
            out.push(if star { b'*' } else { b'?' });
        } else {
            out.push(p[i]);
            i += 1;
        }
    }
    out
}

/// `KeyMatch`: every key plus its dot-prefixes; (is_leaf, type) per name.
pub fn key_universe(counters: &[CounterInfo]) -> HashMap<String, (bool, u8)> {
    let mut m: HashMap<String, (bool, u8)> = HashMap::with_capacity(counters.len() * 2);
    for c in counters {
        if m.contains_key(&c.name) {
            continue;
        }
        m.insert(c.name.clone(), (true, if c.is_event { 1 } else { 0 }));
        let mut prev = c.name.as_str();
        while let Some(pos) = prev.rfind('.') {
            prev = &prev[..pos];
            match m.get_mut(prev) {
                None => {
                    m.insert(prev.to_string(), (false, 2));
                }
                Some(e) => {
                    *e = (false, 2);
                    break;
                }
            }
        }
    }
    m
}

pub(super) async fn list_counters(pattern: &[u8], backend: &dyn Backend) -> Response {
    let counters = backend.counters().await;
    let universe = key_universe(&counters);
    let pat = latin1(&normalize_pattern(pattern));
    let mut names: Vec<(&String, &(bool, u8))> = Vec::new();
    for (i, e) in universe.iter().enumerate() {
        if i % 4096 == 4095 {
            glommio::yield_if_needed().await;
        }
        if crate::pattern::pattern_match(&pat, &latin1(e.0.as_bytes())) {
            names.push(e);
        }
    }
    names.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(120 + names.len() * 48);
    out.extend_from_slice(
        b"{\"type_mapping\":{\"0\":\"gauge\",\"1\":\"counter\",\"2\":\"aggregate\"},\"pattern\":",
    );
    // Port (§9 item 11): JSON escaping instead of js_quote.
    push_quoted(&mut out, pattern);
    out.extend_from_slice(b",\"matching_names\":[");
    for (i, (name, (leaf, ty))) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(if *leaf {
            b"{\"is_leaf\":true,\"type\":"
        } else {
            b"{\"is_leaf\":false,\"type\":"
        });
        out.push(b'0' + ty);
        out.extend_from_slice(b",\"name\":");
        push_quoted(&mut out, name.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Response::new(200, JSON, out)
}

/// One agent record: meta keys (with `_peer`, and `blacklisted` when set), then
/// `_online`, `_connected`, `_idle`.
pub fn push_agent(out: &mut Vec<u8>, a: &AgentInfo, now: i64) {
    let mut keys: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
    keys.insert(b"_peer", a.peer.as_bytes());
    for (k, v) in &a.keys {
        keys.insert(k.as_bytes(), v.as_bytes());
    }
    if a.blacklisted {
        keys.insert(b"blacklisted", b"true");
    }
    out.push(b'{');
    for (k, v) in keys {
        push_quoted(out, k);
        out.push(b':');
        push_quoted(out, v);
        out.push(b',');
    }
    let connected = a.connected;
    out.extend_from_slice(
        format!(
            "\"_online\":{},\"_connected\":\"{}\",\"_idle\":{}}}",
            a.online,
            iso8601(connected),
            now - a.last_seen
        )
        .as_bytes(),
    );
}

pub(super) async fn list_agents(backend: &dyn Backend) -> Response {
    let agents = backend.agents().await;
    let now = backend.now();
    let mut out = format!("{{\"count\":{},\"agents\":[", agents.len()).into_bytes();
    for (i, a) in agents.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_agent(&mut out, a, now);
    }
    out.extend_from_slice(b"]}");
    Response::new(200, JSON, out)
}
