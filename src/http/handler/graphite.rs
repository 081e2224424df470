//! Graphite's query API on the HTTP port (docs/graphite.md, "Queries"): what Grafana's
//! Graphite datasource sends. `/metrics/find` and `/metrics/expand` walk the counter
//! names, `/render` fetches each path of its targets from the owning shards and hands
//! the series to [`crate::graphite`] for the functions and the JSON; `/functions`,
//! `/version` and the tag endpoints answer what Grafana asks at "Save & test".
//!
//! Parameters come from the query string and, for a POST, from a form body alike, and
//! may repeat (`target=a&target=b`).

use std::collections::{HashMap, HashSet};

use istatd_storage::format::Bucket;
use istatd_storage::query::QueryParams;

use crate::graphite::eval::{evaluate, Fetched};
use crate::graphite::glob::PathPattern;
use crate::graphite::render::{functions_json, render_json};
use crate::graphite::series::Series;
use crate::graphite::target::{parse, paths, Expr, PathRequest};
use crate::graphite::time::parse_time;
use crate::graphite::wire::Wire;
use crate::http::backend::{Backend, CounterData, NameList};
use crate::http::json::push_quoted;
use crate::http::request::{urldecode, RawRequest};
use crate::http::response::{Response, JSON};

/// The graphite-web release whose API this follows (Grafana reads `/version`).
const GRAPHITE_VERSION: &str = "1.1.10";

/// Series one render may fetch: a wildcard over a large store must not make one request
/// read every file.
pub const MAX_SERIES: usize = 10_000;

/// Points one series may have (a year of 10 s buckets is 3.2 M).
const MAX_POINTS: i64 = 4_000_000;

/// The paths this module answers (the rest of the URL space is istatd's own).
pub fn is_graphite_path(path: &[u8]) -> bool {
    matches!(
        path,
        b"/render"
            | b"/render/"
            | b"/metrics/find"
            | b"/metrics/find/"
            | b"/metrics/expand"
            | b"/metrics/expand/"
            | b"/functions"
            | b"/functions/"
            | b"/version"
            | b"/version/"
    ) || path.starts_with(b"/tags/")
}

/// Whether a POST to `path` has a form body to read.
pub fn reads_body(path: &[u8]) -> bool {
    is_graphite_path(path)
}

/// Request parameters in order, query string first, then the form body.
struct Form(Vec<(String, String)>);

impl Form {
    fn of(query: &[u8], req: &RawRequest) -> Form {
        let mut pairs = Vec::new();
        let mut add = |s: &[u8]| {
            for piece in s.split(|&b| b == b'&') {
                if piece.is_empty() {
                    continue;
                }
                let (k, v) = match piece.iter().position(|&b| b == b'=') {
                    Some(p) => (&piece[..p], &piece[p + 1..]),
                    None => (piece, &b""[..]),
                };
                pairs.push((
                    String::from_utf8_lossy(&urldecode(k)).into_owned(),
                    String::from_utf8_lossy(&urldecode(v)).into_owned(),
                ));
            }
        };
        add(query);
        if req.method == b"POST" {
            let form = req
                .header("content-type")
                .is_none_or(|t| t.starts_with(b"application/x-www-form-urlencoded"));
            if form {
                add(trim_body(&req.body));
            }
        }
        Form(pairs)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn trim_body(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &b[..end]
}

/// An error a Grafana user reads: 400 with the message under both keys Grafana looks at.
fn bad_request(msg: &str) -> Response {
    let mut body = b"{\"error\":".to_vec();
    push_quoted(&mut body, msg.as_bytes());
    body.extend_from_slice(b",\"message\":");
    push_quoted(&mut body, msg.as_bytes());
    body.extend_from_slice(b"}\n");
    Response::new(400, JSON, body)
}

/// Answer one Graphite request (`path` is one [`is_graphite_path`] accepts).
pub async fn handle(
    req: &RawRequest,
    path: &[u8],
    query: &[u8],
    backend: &dyn Backend,
) -> Response {
    if req.method != b"GET" && req.method != b"POST" {
        return Response::error(405, "Bad method");
    }
    let form = Form::of(query, req);
    let path = path.strip_suffix(b"/").unwrap_or(path);
    match path {
        b"/render" => render(&form, backend).await,
        b"/metrics/find" => find(&form, backend).await,
        b"/metrics/expand" => expand(&form, backend).await,
        b"/functions" => {
            let mut out = Vec::new();
            functions_json(&mut out);
            Response::new(200, JSON, out)
        }
        b"/version" => Response::new(200, "text/plain", GRAPHITE_VERSION.as_bytes().to_vec()),
        // Tags are not supported: Grafana's tag editor gets empty lists.
        _ if path.starts_with(b"/tags/") => Response::new(200, JSON, b"[]".to_vec()),
        _ => Response::error(404, "No such Graphite endpoint"),
    }
}

// ----- names -------------------------------------------------------------------------

/// A path pattern as the store spells names: istatd munges names to lower case.
fn compile(pattern: &str) -> Result<PathPattern, String> {
    PathPattern::compile(&pattern.to_ascii_lowercase())
}

/// The leading segments of a pattern that hold no wildcard, with a `.` after each.
fn literal_prefix(pattern: &str) -> String {
    let mut out = String::new();
    let segments: Vec<&str> = pattern.split('.').collect();
    for seg in &segments[..segments.len().saturating_sub(1)] {
        if seg.contains(['*', '?', '[', '{']) {
            break;
        }
        out.push_str(&seg.to_ascii_lowercase());
        out.push('.');
    }
    out
}

/// The names and dot-prefixes of names with as many segments as `pattern` that match
/// it, sorted, each with whether it has children (a branch).
///
/// The names are sorted, so the names below a prefix `p` are the run starting with
/// `p.`: the walk starts at the pattern's literal leading segments and jumps over each
/// candidate's subtree, so a find costs the candidates it visits (times a binary
/// search), not the store's size.
fn matching(names: &NameList, text: &str, pattern: &PathPattern) -> Vec<(String, bool)> {
    let depth = pattern.segments().len();
    let literal = literal_prefix(text);
    let mut found: Vec<(String, bool)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut i = names.lower_bound(&literal);
    while i < names.len() {
        let name = names.get(i);
        if !name.starts_with(literal.as_str()) {
            break;
        }
        let cut = name
            .match_indices('.')
            .nth(depth.saturating_sub(1))
            .map(|(c, _)| c);
        let prefix = match cut {
            Some(c) => &name[..c],
            None if name.split('.').count() == depth => name,
            None => {
                i += 1;
                continue;
            }
        };
        let below = format!("{prefix}.");
        if !seen.contains(prefix) {
            seen.insert(prefix.to_string());
            if pattern.matches(prefix) {
                let j = names.lower_bound(&below);
                let branch = j < names.len() && names.get(j).starts_with(below.as_str());
                found.push((prefix.to_string(), branch));
            }
        }
        i = if cut.is_some() {
            // Past the subtree: the first name not below `prefix.` ('/' follows '.').
            names.lower_bound(&format!("{prefix}/"))
        } else {
            i + 1
        };
    }
    found.sort_unstable();
    found
}

/// `/metrics/find?query=`: graphite-web's `treejson` (default) or `completer` shape;
/// branches (names with children) before leaves.
async fn find(form: &Form, backend: &dyn Backend) -> Response {
    let Some(query) = form.get("query") else {
        return bad_request("missing parameter: query");
    };
    let format = form.get("format").unwrap_or("treejson");
    if !matches!(format, "treejson" | "completer" | "pickle" | "msgpack") {
        return bad_request(&format!("unsupported format for /metrics/find: {format}"));
    }
    let pattern = match compile(query) {
        Ok(p) => p,
        Err(e) => return bad_request(&format!("bad query {query:?}: {e}")),
    };
    let names = backend.names().await;
    let mut found = matching(&names, query, &pattern);
    // Branches first, each group by name (graphite-web's tree_json order).
    found.sort_by_key(|&(_, branch)| !branch);
    if format == "pickle" || format == "msgpack" {
        // graphite-web's cluster protocol: its RemoteFinder reads path, is_leaf and a
        // leaf's intervals (pairs; a counter may hold data at any time it keeps).
        let until = backend
            .now()
            .max(form.get("until").and_then(|u| u.parse().ok()).unwrap_or(0));
        let nodes = found
            .iter()
            .map(|(name, branch)| {
                let mut d = vec![
                    ("path", Wire::Str(name.to_string())),
                    ("is_leaf", Wire::Bool(!branch)),
                ];
                if !branch {
                    let all_time = Wire::Pair(Box::new(Wire::Int(0)), Box::new(Wire::Int(until)));
                    d.push(("intervals", Wire::List(vec![all_time])));
                }
                Wire::Dict(d)
            })
            .collect();
        return wire_response(format, Wire::List(nodes));
    }
    let mut out = Vec::with_capacity(64 + found.len() * 96);
    if format == "completer" {
        out.extend_from_slice(b"{\"metrics\":[");
        for (i, (name, branch)) in found.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let leaf_name = name.rsplit('.').next().unwrap_or(name);
            out.extend_from_slice(b"{\"path\":");
            let path = if *branch {
                format!("{name}.")
            } else {
                name.to_string()
            };
            push_quoted(&mut out, path.as_bytes());
            out.extend_from_slice(b",\"name\":");
            push_quoted(&mut out, leaf_name.as_bytes());
            out.extend_from_slice(if *branch {
                b",\"is_leaf\":\"0\"}"
            } else {
                b",\"is_leaf\":\"1\"}"
            });
        }
        out.extend_from_slice(b"]}\n");
        return Response::new(200, JSON, out);
    }
    out.push(b'[');
    for (i, (name, branch)) in found.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let text = name.rsplit('.').next().unwrap_or(name);
        out.extend_from_slice(b"{\"text\":");
        push_quoted(&mut out, text.as_bytes());
        out.extend_from_slice(b",\"id\":");
        push_quoted(&mut out, name.as_bytes());
        let b = u8::from(*branch);
        out.extend_from_slice(
            format!(
                ",\"leaf\":{},\"expandable\":{b},\"allowChildren\":{b},\"context\":{{}}}}",
                1 - b
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"]\n");
    Response::new(200, JSON, out)
}

/// `/metrics/expand?query=...[&leavesOnly=1]`: the matching names, sorted.
async fn expand(form: &Form, backend: &dyn Backend) -> Response {
    let leaves_only = matches!(form.get("leavesOnly"), Some("1" | "true" | "True"));
    let names = backend.names().await;
    let mut results: Vec<String> = Vec::new();
    let mut any = false;
    for query in form.all("query") {
        any = true;
        let pattern = match compile(query) {
            Ok(p) => p,
            Err(e) => return bad_request(&format!("bad query {query:?}: {e}")),
        };
        results.extend(
            matching(&names, query, &pattern)
                .into_iter()
                .filter(|&(_, branch)| !(leaves_only && branch))
                .map(|(n, _)| n),
        );
    }
    if !any {
        return bad_request("missing parameter: query");
    }
    results.sort_unstable();
    results.dedup();
    let mut out = b"{\"results\":[".to_vec();
    for (i, n) in results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_quoted(&mut out, n.as_bytes());
    }
    out.extend_from_slice(b"]}\n");
    Response::new(200, JSON, out)
}

// ----- render ------------------------------------------------------------------------

/// Which value of an istatd bucket a series shows: `name:field`, by default the average,
/// as istatd's own interface shows it (for an event counter that is events per second:
/// its buckets hold `sum / interval`, docs/file-format.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Average,
    Sum,
    Count,
    Min,
    Max,
    Sdev,
}

impl Field {
    fn parse(s: &str) -> Option<Field> {
        Some(match s {
            "avg" | "average" => Field::Average,
            "sum" => Field::Sum,
            "count" => Field::Count,
            "min" => Field::Min,
            "max" => Field::Max,
            "sdev" => Field::Sdev,
            _ => return None,
        })
    }

    fn of(self, b: &Bucket) -> Option<f64> {
        let n = f64::from(b.count);
        let v = match self {
            Field::Sum => b.sum,
            Field::Count => n,
            _ if b.count <= 0 => return None,
            Field::Average => b.sum / n,
            Field::Min => f64::from(b.min),
            Field::Max => f64::from(b.max),
            Field::Sdev => {
                let avg = b.sum / n;
                (f64::from(b.sum_sq) / n - avg * avg).max(0.0).sqrt()
            }
        };
        v.is_finite().then_some(v)
    }
}

/// A render path split into its name pattern and its field suffix (counter names never
/// hold a `:`, istatd munges it).
fn split_field(path: &str) -> Result<(&str, Option<Field>), String> {
    match path.rsplit_once(':') {
        None => Ok((path, None)),
        Some((p, f)) => Field::parse(f)
            .map(|f| (p, Some(f)))
            .ok_or_else(|| format!("unknown field :{f} (avg, sum, count, min, max, sdev)")),
    }
}

/// The series of every path request, fetched before the evaluation.
#[derive(Default)]
struct FetchedSeries(HashMap<(String, i64), Vec<Series>>);

impl Fetched for FetchedSeries {
    fn series(&self, path: &str, shift: i64) -> Vec<Series> {
        self.0
            .get(&(path.to_string(), shift))
            .cloned()
            .unwrap_or_default()
    }
}

/// A counter's query result as a Graphite series over `[result.start, result.end)`.
fn series_of(name: String, request: &str, data: &CounterData, field: Option<Field>) -> Series {
    let r = &data.result;
    let step = r.interval.max(1);
    let len = ((r.end - r.start) / step).clamp(0, MAX_POINTS) as usize;
    let mut values = vec![None; len];
    let field = field.unwrap_or(Field::Average);
    for b in &r.buckets {
        let i = (b.time - r.start).div_euclid(step);
        if let Some(v) = usize::try_from(i).ok().and_then(|i| values.get_mut(i)) {
            *v = field.of(b);
        }
    }
    let mut s = Series::new(name, r.start, step, values);
    s.path_expression = request.to_string();
    s
}

/// Fetch every path the targets name, each over the request window moved by its shift.
async fn fetch(
    requests: &[PathRequest],
    from: i64,
    until: i64,
    backend: &dyn Backend,
) -> Result<FetchedSeries, String> {
    let mut out = FetchedSeries::default();
    let mut names: Option<std::rc::Rc<NameList>> = None;
    let mut total = 0usize;
    for req in requests {
        let (pattern_text, field) = split_field(&req.path)?;
        let pattern = compile(pattern_text).map_err(|e| format!("bad path {:?}: {e}", req.path))?;
        let keys: Vec<String> = if pattern.has_wildcards() {
            if names.is_none() {
                names = Some(backend.names().await);
            }
            let all = names
                .as_ref()
                .map_or(Vec::new(), |n| matching(n, pattern_text, &pattern));
            all.into_iter().map(|(n, _)| n).collect()
        } else {
            vec![pattern_text.to_ascii_lowercase()]
        };
        total += keys.len();
        if total > MAX_SERIES {
            return Err(format!(
                "the targets match more than {MAX_SERIES} series; narrow them"
            ));
        }
        let mut list = Vec::with_capacity(keys.len());
        for key in keys {
            let params = QueryParams {
                start: from.saturating_add(req.shift),
                end: until.saturating_add(req.shift),
                max_samples: 0,
                trailing: false,
            };
            let data = match backend.query(&key, params).await {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(e) => return Err(format!("{key}: {e}")),
            };
            let name = match field {
                Some(_) => format!("{key}:{}", &req.path[pattern_text.len() + 1..]),
                None => key,
            };
            list.push(series_of(name, &req.path, &data, field));
        }
        out.0.insert((req.path.clone(), req.shift), list);
    }
    Ok(out)
}

/// `/render?target=...&from=&until=&format=json&maxDataPoints=`.
async fn render(form: &Form, backend: &dyn Backend) -> Response {
    let format = form.get("format").unwrap_or("json");
    if !matches!(format, "json" | "pickle" | "msgpack") {
        return bad_request(&format!(
            "unsupported format {format:?}: istatd renders json, pickle and msgpack"
        ));
    }
    let now = backend.now();
    let from = match parse_time(form.get("from").unwrap_or("-24h"), now) {
        Ok(t) => t,
        Err(e) => return bad_request(&format!("from: {e}")),
    };
    let until = match parse_time(form.get("until").unwrap_or("now"), now) {
        Ok(t) => t,
        Err(e) => return bad_request(&format!("until: {e}")),
    };
    if until <= from {
        return bad_request("until must be after from");
    }
    let max_points = match form.get("maxDataPoints").map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => return bad_request("maxDataPoints must be a positive integer"),
    };
    let mut exprs: Vec<Expr> = Vec::new();
    for t in form.all("target").filter(|t| !t.trim().is_empty()) {
        match parse(t) {
            Ok(e) => exprs.push(e),
            Err(e) => return bad_request(&format!("{t}: {e}")),
        }
    }
    let mut requests: Vec<PathRequest> = exprs.iter().flat_map(paths).collect();
    requests.sort_by(|a, b| (&a.path, a.shift).cmp(&(&b.path, b.shift)));
    requests.dedup();
    let data = match fetch(&requests, from, until, backend).await {
        Ok(d) => d,
        Err(e) => return bad_request(&e),
    };
    let mut series = Vec::new();
    for e in &exprs {
        match evaluate(e, &data, from, until) {
            Ok(s) => series.extend(s),
            Err(e) => return bad_request(e.message()),
        }
    }
    if format != "json" {
        return wire_response(format, Wire::List(series.iter().map(series_info).collect()));
    }
    let mut out = Vec::new();
    render_json(&series, max_points, &mut out);
    Response::new(200, JSON, out)
}

/// A series as graphite-web's `TimeSeries.getInfo()` (what its RemoteReader reads).
fn series_info(s: &Series) -> Wire {
    let values = s
        .values
        .iter()
        .map(|v| v.filter(|v| v.is_finite()).map_or(Wire::None, Wire::Float))
        .collect();
    Wire::Dict(vec![
        ("name", Wire::Str(s.name.clone())),
        ("start", Wire::Int(s.start)),
        ("end", Wire::Int(s.end)),
        ("step", Wire::Int(s.step)),
        ("values", Wire::List(values)),
        ("pathExpression", Wire::Str(s.path_expression.clone())),
        ("valuesPerPoint", Wire::Int(1)),
        (
            "consolidationFunc",
            Wire::Str(s.consolidation.name().to_string()),
        ),
        ("xFilesFactor", Wire::Float(0.0)),
    ])
}

/// A pickle or msgpack body with the content type graphite-web tells them apart by.
fn wire_response(format: &str, v: Wire) -> Response {
    if format == "msgpack" {
        Response::new(200, "application/x-msgpack", v.to_msgpack())
    } else {
        Response::new(200, "application/pickle", v.to_pickle())
    }
}

/// The parameters of a form, for tests.
#[cfg(test)]
fn form_of(query: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let req = RawRequest::default();
    let mut m = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (k, v) in Form::of(query.as_bytes(), &req).0 {
        m.entry(k).or_default().push(v);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_keep_repeated_keys_and_decode() {
        let m = form_of("target=a.b&target=sumSeries(c.*)&from=-6h&x&until=now%2B1h");
        assert_eq!(m["target"], vec!["a.b", "sumSeries(c.*)"]);
        assert_eq!(m["from"], vec!["-6h"]);
        assert_eq!(m["until"], vec!["now+1h"]);
        assert_eq!(m["x"], vec![""]);
    }

    #[test]
    fn fields_are_picked_from_the_suffix() {
        assert_eq!(split_field("a.b").unwrap(), ("a.b", None));
        assert_eq!(
            split_field("a.b:count").unwrap(),
            ("a.b", Some(Field::Count))
        );
        assert!(split_field("a.b:bogus").is_err());
        let b = Bucket {
            time: 0,
            sum: 6.0,
            min: 1.0,
            max: 3.0,
            count: 3,
            sum_sq: 14.0,
        };
        assert_eq!(Field::Average.of(&b), Some(2.0));
        assert_eq!(Field::Count.of(&b), Some(3.0));
        assert_eq!(Field::Max.of(&b), Some(3.0));
        let sdev = Field::Sdev.of(&b).unwrap();
        assert!((sdev - (14.0f64 / 3.0 - 4.0).sqrt()).abs() < 1e-12);
        let empty = Bucket { count: 0, ..b };
        assert_eq!(Field::Average.of(&empty), None);
        assert_eq!(Field::Sum.of(&Bucket { sum: 0.0, ..empty }), Some(0.0));
    }

    #[test]
    fn matching_lists_names_and_prefixes_with_their_branch_flag() {
        let names: Vec<String> = [
            "a.b.c", "a.b", "a", "a.d", "x.y", "a.e.f.g", "ab.c", "a-b.c",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let names = NameList::new(names);
        let m = |p: &str| matching(&names, p, &compile(p).unwrap());
        let v = |x: &[(&str, bool)]| {
            x.iter()
                .map(|(n, b)| (n.to_string(), *b))
                .collect::<Vec<(String, bool)>>()
        };
        assert_eq!(m("a.*"), v(&[("a.b", true), ("a.d", false), ("a.e", true)]));
        assert_eq!(m("A.{b,e}.*"), v(&[("a.b.c", false), ("a.e.f", true)]));
        assert_eq!(
            m("*"),
            v(&[("a", true), ("a-b", true), ("ab", true), ("x", true)])
        );
        assert_eq!(m("a*.c"), v(&[("a-b.c", false), ("ab.c", false)]));
        assert_eq!(m("a.b"), v(&[("a.b", true)]));
        assert_eq!(m("q.*"), v(&[]));
    }

    #[test]
    fn graphite_paths_leave_istatd_urls_alone() {
        for p in [
            "/render",
            "/metrics/find",
            "/metrics/expand/",
            "/functions",
            "/version",
            "/tags/autoComplete/tags",
        ] {
            assert!(is_graphite_path(p.as_bytes()), "{p}");
        }
        for p in ["/", "/metrics", "/render.x", "/renders", "/a.b.c", "/*"] {
            assert!(!is_graphite_path(p.as_bytes()), "{p}");
        }
    }
}
