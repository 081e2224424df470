//! Malformed and hostile requests through `parse_head` / `handle` / `serve_connection`
//! get a clear 4xx (or are closed) and never panic or stall the executor; plus the
//! behaviour of the handlers outside the golden case (files, settings, compression,
//! CORS, errors).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::LocalExecutorBuilder;
use istatd::http::backend::{AgentInfo, Backend, CounterData, CounterInfo, LocalFut};
use istatd::http::{
    body_wanted, handle, head_error_response, parse_head, serve_connection, HeadError, HttpConfig,
    RawRequest, SettingsStore, MAX_HEAD,
};
use istatd::metrics::prom::PromLayout;
use istatd_storage::format::Bucket;
use istatd_storage::query::{QueryParams, QueryResult};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

struct FakeBackend {
    store: bool,
    queries: Cell<usize>,
}

impl FakeBackend {
    fn new() -> FakeBackend {
        FakeBackend {
            store: true,
            queries: Cell::new(0),
        }
    }
}

impl Backend for FakeBackend {
    fn has_store(&self) -> bool {
        self.store
    }

    fn now(&self) -> i64 {
        10_000
    }

    fn query<'a>(
        &'a self,
        key: &'a str,
        p: QueryParams,
    ) -> LocalFut<'a, Result<Option<CounterData>, String>> {
        Box::pin(async move {
            self.queries.set(self.queries.get() + 1);
            match key {
                "foo.bar" | "ev" => {
                    let mut b = Bucket::sample(p.start - p.start % 10, 0.1);
                    b.merge(&Bucket::sample(p.start - p.start % 10, 0.2));
                    let mut nan = Bucket::sample(p.start - p.start % 10 + 10, 1.0);
                    nan.min = f32::NAN;
                    Ok(Some(CounterData {
                        result: QueryResult {
                            start: p.start - p.start % 10,
                            end: p.end,
                            interval: 10,
                            buckets: vec![b, nan],
                        },
                        is_event: key == "ev",
                    }))
                }
                "broken" => Err("disk on fire".into()),
                _ => Ok(None),
            }
        })
    }

    fn counters(&self) -> LocalFut<'_, Vec<CounterInfo>> {
        Box::pin(async {
            vec![
                CounterInfo {
                    name: "foo.bar".into(),
                    is_event: false,
                },
                CounterInfo {
                    name: "it's\"odd".into(),
                    is_event: true,
                },
            ]
        })
    }

    fn metrics(&self, _exporter: bool, _layout: PromLayout) -> LocalFut<'_, Option<String>> {
        Box::pin(async { None })
    }

    fn agents(&self) -> LocalFut<'_, Vec<AgentInfo>> {
        Box::pin(async {
            let mut keys = BTreeMap::new();
            keys.insert("version".to_string(), "Bob's \"build\"".to_string());
            keys.insert("hostname".to_string(), "vm".to_string());
            vec![AgentInfo {
                peer: "127.0.0.1:4000".into(),
                online: true,
                blacklisted: true,
                keys,
                last_seen: 9_990,
                connected: 9_000,
            }]
        })
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "istatd-http-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("files")).unwrap();
    std::fs::create_dir_all(d.join("settings")).unwrap();
    d
}

fn config(dir: &Path) -> HttpConfig {
    let settings = Arc::new(SettingsStore::with_save_delay(
        dir.join("settings"),
        Duration::from_millis(50),
    ));
    HttpConfig::new(dir.join("files"), settings, false)
}

/// Run `f` inside a glommio executor.
fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    LocalExecutorBuilder::default()
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn request(raw: &[u8]) -> RawRequest {
    let (mut req, n) = parse_head(raw).expect("parses").expect("complete");
    req.body = raw[n..].to_vec();
    req
}

async fn answer(raw: &[u8], cfg: &HttpConfig, b: &dyn Backend) -> Answer {
    Answer::of(&handle(&request(raw), cfg, b).await)
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn of(resp: &[u8]) -> Answer {
        let p = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8(resp[..p].to_vec()).unwrap();
        Answer {
            status: head[9..12].parse().unwrap(),
            head,
            body: resp[p..].to_vec(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.text()))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
    }
}

fn get(url: &str) -> Vec<u8> {
    format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

fn post(url: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {url} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// ---------------------------------------------------------------------------------------
// Parsing limits
// ---------------------------------------------------------------------------------------

#[test]
fn partial_heads_ask_for_more() {
    for raw in [
        &b""[..],
        b"GET",
        b"GET / HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
    ] {
        assert_eq!(parse_head(raw), Ok(None), "{raw:?}");
    }
}

#[test]
fn over_long_heads_are_413() {
    let mut raw = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    raw.extend_from_slice(&vec![b'a'; 1 << 20]);
    assert_eq!(parse_head(&raw), Err(HeadError::TooLarge));
    raw.extend_from_slice(b"\r\n\r\n");
    assert_eq!(parse_head(&raw), Err(HeadError::TooLarge));
    let resp = Answer::of(&head_error_response(HeadError::TooLarge));
    assert_eq!(resp.status, 413);
    assert_eq!(resp.json()["error"], "Request head too large");
    // Exactly at the limit is fine.
    let mut ok = b"GET / HTTP/1.1\r\nX: ".to_vec();
    ok.resize(MAX_HEAD - 4, b'b');
    ok.extend_from_slice(b"\r\n\r\n");
    assert!(parse_head(&ok).unwrap().is_some());
}

#[test]
fn malformed_heads_are_400_with_a_json_body() {
    assert_eq!(
        parse_head(b"GET / HTTP/1.0\r\n\r\n"),
        Err(HeadError::Malformed)
    );
    assert_eq!(parse_head(b"\r\n\r\n"), Err(HeadError::Malformed));
    let resp = Answer::of(&head_error_response(HeadError::Malformed));
    assert_eq!(resp.status, 400);
    assert_eq!(resp.text(), "{\"error\":\"Malformed request\"}\n");
    assert!(resp.head.contains("Content-Length: 30\r\n"));
}

#[test]
fn odd_request_lines() {
    let dir = temp_dir("odd");
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        // Query-only URL: the path is empty.
        let a = answer(&get("?q=*"), &cfg, &b).await;
        assert_eq!(
            (a.status, a.text()),
            (400, "{\"error\":\"Malformed url\"}\n".into())
        );
        // No URL at all.
        let a = answer(b"GET\r\nHost: x\r\n\r\n", &cfg, &b).await;
        assert_eq!(a.status, 400);
        // Unknown methods, including garbage ones.
        for m in ["PUT", "HEAD", "DELETE", "\x01\x02", ""] {
            let raw = format!("{m} /foo.bar HTTP/1.1\r\nHost: x\r\n\r\n");
            let a = answer(raw.as_bytes(), &cfg, &b).await;
            assert_eq!(a.status, 405, "{m:?}");
            assert_eq!(a.text(), "{\"error\":\"Bad method\"}\n");
        }
        // No version: flagged, served anyway (reference).
        let req = request(b"GET /nosuch\r\nHost: x\r\n\r\n");
        assert!(req.no_version);
        let a = Answer::of(&handle(&req, &cfg, &b).await);
        assert_eq!(a.status, 404);
        // Header names with any bytes are munged, not refused.
        let a = answer(
            b"GET /foo.bar HTTP/1.1\r\nX \x80 Y: 1\r\n\x7f:\r\nno colon\r\n\r\n",
            &cfg,
            &b,
        )
        .await;
        assert_eq!(a.status, 200);
    });
}

// ---------------------------------------------------------------------------------------
// GET counter data
// ---------------------------------------------------------------------------------------

#[test]
fn counter_data_validation() {
    let dir = temp_dir("validation");
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        let cases: &[(&str, u16, &str)] = &[
            (
                "/foo.bar?start=%zz",
                400,
                "{\"error\":\"HTTP exception: Bad integer argument start: \u{fffd}\"}\n",
            ),
            (
                "/foo.bar?end=1x",
                400,
                "{\"error\":\"HTTP exception: Bad integer argument end: 1x\"}\n",
            ),
            (
                "/foo.bar?samples=99999999999999999999",
                400,
                "{\"error\":\"HTTP exception: Bad integer argument samples: 99999999999999999999\"}\n",
            ),
            (
                "/foo.bar?trailing=%",
                400,
                "{\"error\":\"HTTP exception: Bad integer argument trailing: %\"}\n",
            ),
            (
                "/foo.bar?start=-1&end=1200",
                400,
                "{\"error\":\"HTTP exception: Invalid start parameter\"}\n",
            ),
            (
                "/foo.bar?start=1390&end=-1",
                400,
                "{\"error\":\"HTTP exception: Invalid end parameter\"}\n",
            ),
            (
                "/foo.bar?samples=-1",
                400,
                "{\"error\":\"HTTP exception: Invalid samples parameter\"}\n",
            ),
            (
                "/foo.bar?start=1390&end=1200",
                400,
                "{\"error\":\"HTTP exception: end must be greater than start!\"}\n",
            ),
            (
                "/foo.bar?format=xml",
                400,
                "{\"error\":\"HTTP exception: unrecognized format. must be 'json' or 'csv'.\"}\n",
            ),
            (
                "/nosuch?format=xml",
                404,
                "{\"error\":\"No such counter nosuch\"}\n",
            ),
            ("/?x=1", 404, "{\"error\":\"No such counter \"}\n"),
            ("/*?x=1", 404, "{\"error\":\"No such counter *\"}\n"),
            (
                "/broken",
                400,
                "{\"error\":\"HTTP JSON exception:disk on fire\"}\n",
            ),
        ];
        for (url, status, body) in cases {
            let a = answer(&get(url), &cfg, &b).await;
            assert_eq!(a.status, *status, "{url}");
            assert_eq!(String::from_utf8_lossy(&a.body), *body, "{url}");
        }
    });
}

#[test]
fn counter_data_json_and_csv() {
    let dir = temp_dir("data");
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        // Munged lookup, defaults (now = 10000: start 9100, end 10000), NaN → null.
        let a = answer(&get("/FOO.BAR"), &cfg, &b).await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.text(),
            "{\"buckets\":[{\"data\":{\"avg\":0.15000000596046448,\"count\":2,\"max\":0.20000000298023224,\"min\":0.10000000149011612,\"sdev\":0.070710659027099609,\"sum\":0.30000001192092896,\"sumsq\":0.049999997019767761},\"time\":9100},{\"data\":{\"avg\":1,\"count\":1,\"max\":1,\"min\":null,\"sdev\":0,\"sum\":1,\"sumsq\":1},\"time\":9110}],\"end\":10000,\"interval\":10,\"start\":9100}\n"
        );
        let a = answer(&get("/foo.bar?start=1000&format=csv&count=6"), &cfg, &b).await;
        assert_eq!(a.header("Content-Type"), Some("text/csv"));
        assert_eq!(
            a.text(),
            "ISO Time,Unix Timestamp,Sample Count,Minimum,Maximum,Sum,Sum Squared,Average,Standard Deviation\r\n\
             1970-01-01T00:16:40Z,1000,2,0.1,0.2,0.3,0.05,0.15,0.0707107\r\n\
             1970-01-01T00:16:50Z,1010,1,nan,1,1,1,1,0\r\n"
        );
        // `?q=` wins over the path.
        let a = answer(&get("/foo.bar?q=nothing"), &cfg, &b).await;
        assert_eq!(a.json()["matching_names"], serde_json::json!([]));
    });
}

// ---------------------------------------------------------------------------------------
// POST /*
// ---------------------------------------------------------------------------------------

#[test]
fn multiget_errors_and_port_fixes() {
    let dir = temp_dir("multiget");
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        let cases: &[(&str, u16, &str)] = &[
            (
                "",
                400,
                "{\"error\":\"* Line 1, Column 1\\n  Syntax error: value, object or array expected.\\n\"}\n",
            ),
            (
                "{\"keys\":[\"a\"",
                400,
                "{\"error\":\"* Line 1, Column 13\\n  Missing ',' or ']' in array declaration\\n\"}\n",
            ),
            ("[1,2]", 400, "{\"error\":\"Body must be a JSON object\"}\n"),
            ("42", 400, "{\"error\":\"Body must be a JSON object\"}\n"),
            (
                "{\"start\":1001,\"stop\":1598,\"maxSamples\":2}",
                400,
                "{\"error\":\"Missing 'key' array of keys\"}\n",
            ),
            ("null", 400, "{\"error\":\"Missing 'key' array of keys\"}\n"),
            (
                "{\"start\":-1,\"keys\":[]}",
                400,
                "{\"error\":\"Invalid 'start' parameter\"}\n",
            ),
            (
                "{\"stop\":-1,\"keys\":[]}",
                400,
                "{\"error\":\"Invalid 'stop' parameter\"}\n",
            ),
            (
                "{\"start\":1598,\"stop\":1001,\"keys\":[]}",
                400,
                "{\"error\":\"Start must be before stop\"}\n",
            ),
            (
                "{\"start\":\"x\",\"keys\":[]}",
                400,
                "{\"error\":\"exception: Type is not convertible to Int64\"}\n",
            ),
            (
                "{\"maxSamples\":\"x\",\"keys\":[]}",
                400,
                "{\"error\":\"exception: Type is not convertible to int\"}\n",
            ),
            (
                "{\"keys\":[\"nosuch\",1]}",
                400,
                "{\"error\":\"exception: Type is not convertible to string\"}\n",
            ),
            ("{\"keys\":[]}", 200, "{}"),
            ("{\"keys\":[\"nosuch\"]}", 200, "{\"nosuch\":\"Not found.\"}"),
            (
                "{\"keys\":[\"a\\\"b\",\"\",\"*\"]}",
                200,
                "{\"a\\\"b\":\"Not found.\",\"\":\"Not found.\",\"*\":\"Not found.\"}",
            ),
        ];
        for (body, status, want) in cases {
            let a = answer(&post("/*", body), &cfg, &b).await;
            assert_eq!(a.status, *status, "{body}");
            assert_eq!(a.text(), *want, "{body}");
            assert!(a.head.contains("Access-Control-Allow-Origin: *\r\n"));
        }
        // Found counters: after the missing ones, once per munged key, named by the
        // later spelling, 6 significant digits, no trailing LF.
        let a = answer(
            &post(
                "/%2A",
                "{\"start\":1000,\"stop\":1600,\"keys\":[\"foo.bar\",\"x\",\"FOO.BAR\"],\"compact\":1}",
            ),
            &cfg,
            &b,
        )
        .await;
        assert_eq!(
            a.text(),
            "{\"x\":\"Not found.\",\"FOO.BAR\":{\"start\":1000,\"end\":1600,\"interval\":10,\"data\":[[1000,2,0.1,0.2,0.3,0.05,0.15,0.0707107],[1010,1,null,1,1,1,1,0]]},\"start\":1000,\"stop\":1600,\"interval\":10}"
        );
        let a = answer(
            &post(
                "/*",
                "{\"start\":1000,\"stop\":1600,\"keys\":[\"x\",\"x\",\"foo.bar\"],\"trailing\":0}",
            ),
            &cfg,
            &b,
        )
        .await;
        assert_eq!(
            a.text(),
            "{\"x\":\"Not found.\",\"x\":\"Not found.\",\"foo.bar\":{\"start\":1000,\"end\":1600,\"interval\":10,\"data\":[{\"time\":1000,\"count\":2,\"min\":0.1,\"max\":0.2,\"sum\":0.3,\"sumsq\":0.05,\"avg\":0.15,\"sdev\":0.0707107},{\"time\":1010,\"count\":1,\"min\":null,\"max\":1,\"sum\":1,\"sumsq\":1,\"avg\":1,\"sdev\":0}]},\"start\":1000,\"stop\":1600,\"interval\":10}"
        );
        // A trailing value out of int range is jsoncpp's exception.
        let a = answer(
            &post("/*", "{\"keys\":[],\"trailing\":-3000000000}"),
            &cfg,
            &b,
        )
        .await;
        assert_eq!(
            a.text(),
            "{\"error\":\"exception: unsigned integer out of signed int range\"}\n"
        );
        // A failing store.
        let a = answer(&post("/*", "{\"keys\":[\"broken\"]}"), &cfg, &b).await;
        assert_eq!(a.status, 500);
    });
}

#[test]
fn bodies_need_a_sane_content_length() {
    let dir = temp_dir("bodies");
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        let no_cl = b"POST /* HTTP/1.1\r\nHost: x\r\n\r\n{\"keys\":[]}";
        let req = request(no_cl);
        assert_eq!(body_wanted(&req, true), 0);
        let a = Answer::of(&handle(&req, &cfg, &b).await);
        assert_eq!(a.status, 400);
        assert_eq!(
            a.text(),
            "{\"error\":\"HTTP exception: Can't read body without content-length\"}\n"
        );
        for (cl, status) in [
            ("99999999999", 413),
            ("18446744073709551617", 413),
            ("-1", 400),
            ("abc", 400),
            ("", 400),
            ("100", 400),
        ] {
            let raw = format!("POST /?s=x HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n{{}}");
            let req = request(raw.as_bytes());
            assert!(body_wanted(&req, true) <= 100);
            let a = Answer::of(&handle(&req, &cfg, &b).await);
            assert_eq!(a.status, status, "Content-Length {cl:?}");
            assert!(a.json()["error"].is_string());
        }
        // A body wanted only where the dispatch reads one.
        assert_eq!(body_wanted(&request(&post("/*", "{}")), true), 2);
        assert_eq!(body_wanted(&request(&post("/*", "{}")), false), 0);
        assert_eq!(body_wanted(&request(&post("/x?s=a", "{}")), true), 2);
        assert_eq!(body_wanted(&request(&post("/other", "{}")), true), 0);
        let a = answer(&post("/other", "{}"), &cfg, &b).await;
        assert_eq!(
            (a.status, a.text()),
            (404, "{\"error\":\"No such POST target\"}\n".into())
        );
    });
}

// ---------------------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------------------

#[test]
fn counter_and_agent_lists_are_valid_json() {
    let dir = temp_dir("lists");
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        let a = answer(&get("/?q=*"), &cfg, &b).await;
        assert!(!a.body.ends_with(b"\n"));
        let v = a.json();
        assert_eq!(v["pattern"], "*");
        let names: Vec<&str> = v["matching_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["foo", "foo.bar", "it's\"odd"]);
        let a = answer(&get("/?q=%3F"), &cfg, &b).await;
        assert_eq!(a.json()["matching_names"].as_array().unwrap().len(), 2);
        // Hostile patterns: bad escapes, quotes, thousands of wildcards.
        let stars = "*%3F".repeat(5000);
        for q in ["%zz%", "%22'%5C", stars.as_str()] {
            let a = answer(&get(&format!("/?q={q}")), &cfg, &b).await;
            assert_eq!(a.status, 200);
            if q != "%zz%" {
                a.json();
            }
        }
        let a = answer(&get("/?a=whatever"), &cfg, &b).await;
        let v = a.json();
        assert_eq!(v["count"], 1);
        let ag = &v["agents"][0];
        assert_eq!(ag["version"], "Bob's \"build\"");
        assert_eq!(ag["_peer"], "127.0.0.1:4000");
        assert_eq!(ag["blacklisted"], "true");
        assert_eq!(ag["_online"], true);
        assert_eq!(ag["_idle"], 10);
    });
}

// ---------------------------------------------------------------------------------------
// Static files
// ---------------------------------------------------------------------------------------

#[test]
fn static_files_and_traversal() {
    let dir = temp_dir("files");
    std::fs::write(dir.join("secret.txt"), "top secret").unwrap();
    std::fs::write(dir.join("files/index.html"), "<html>").unwrap();
    std::fs::write(dir.join("files/graph.js"), "js()").unwrap();
    std::fs::write(dir.join("files/sub.x.png"), [137u8, 80, 78, 71]).unwrap();
    std::fs::write(dir.join("files/favicon.ico"), [0u8, 0, 1, 0]).unwrap();
    std::fs::write(dir.join("files/big.bin"), vec![0u8; 1024 * 1024 + 1]).unwrap();
    std::os::unix::fs::symlink("/", dir.join("files/root")).unwrap();
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        let a = answer(&get("/"), &cfg, &b).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.body, b"<html>");
        assert_eq!(a.header("Content-Type"), Some("text/html; charset=utf-8"));
        assert!(a.header("Etag").unwrap().ends_with("_6"));
        assert!(a.header("Date").unwrap().ends_with(" GMT"));
        assert!(a.header("Modified").is_some());
        // Changed within the hour and not .png/.min.js: no caching headers.
        assert_eq!(a.header("Cache-Control"), None);
        assert!(!a.head.contains("Access-Control"));

        let a = answer(
            b"GET /files/graph.js HTTP/1.1\r\nReferer: https://www.example.com/some/page.html\r\n\r\n",
            &cfg,
            &b,
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(
            a.header("Content-Type"),
            Some("application/javascript; charset=utf-8")
        );
        assert_eq!(
            a.header("Access-Control-Allow-Origin"),
            Some("https://www.example.com")
        );
        // `/` becomes `.`: `/files/sub/x.png` is `sub.x.png`.
        let a = answer(&get("/files/sub/x.png"), &cfg, &b).await;
        assert_eq!(
            (a.status, a.header("Content-Type")),
            (200, Some("image/png"))
        );
        assert_eq!(a.header("Cache-Control"), Some("public; max-age=3600"));
        assert!(a.header("Expires").is_some());
        let a = answer(&get("/favicon.ico"), &cfg, &b).await;
        assert_eq!(
            (a.status, a.header("Content-Type")),
            (200, Some("image/x-icon"))
        );
        let a = answer(&get("/?f=graph.js"), &cfg, &b).await;
        assert_eq!(a.status, 200);
        let a = answer(&get("/files/big.bin"), &cfg, &b).await;
        assert_eq!((a.status, a.body.len()), (500, 0));
        // The query string is part of the name.
        let a = answer(&get("/files/graph.js?x=1"), &cfg, &b).await;
        assert_eq!(a.status, 404);

        for url in [
            "/files/../secret.txt",
            "/files/../../etc/passwd",
            "/files/..",
            "/files/.",
            "/files/",
            "/files/root",
            "/files/root/etc/passwd",
            "/files/%2e%2e%2fsecret.txt",
            "/files/..%2Fsecret.txt",
            "/?f=../secret.txt",
            "/?f=/etc/passwd",
            "/?f=",
            "/?f=..",
            "/files/a%00b",
            "/files/nosuch",
        ] {
            let a = answer(&get(url), &cfg, &b).await;
            assert_eq!(a.status, 404, "{url}");
            assert!(a.body.is_empty(), "{url}");
            assert!(!a.head.contains("Content-Length"), "{url}");
        }
        let a = answer(b"GET /files/x\0y HTTP/1.1\r\nH: x\r\n\r\n", &cfg, &b).await;
        assert_eq!(a.status, 404);
    });
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

#[test]
fn settings_store_and_names() {
    let dir = temp_dir("settings");
    let sdir = dir.join("settings");
    std::fs::write(dir.join("outside.set"), "# istatd settings 1\nx=1\n").unwrap();
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        for url in [
            "/?s=../outside",
            "/?s=..%2Foutside",
            "/?s=a/b",
            "/?s=%00",
            "/?s=a%20b",
        ] {
            let a = answer(&get(url), &cfg, &b).await;
            assert_eq!(
                (a.status, a.text()),
                (400, "{\"error\":\"invalid settings name\"}\n".into()),
                "{url}"
            );
            let a = answer(&post(url, "{\"k\":\"v\"}"), &cfg, &b).await;
            assert_eq!(a.status, 400, "{url}");
        }
        let a = answer(&get("/?s=nosuch"), &cfg, &b).await;
        assert_eq!(
            (a.status, a.text()),
            (404, "{\"error\":\"no such settings\"}\n".into())
        );
        // `..` is a valid name: it is the file `...set` inside the directory.
        let a = answer(&post("/?s=..", "{\"k\":\"v\"}"), &cfg, &b).await;
        assert_eq!(a.status, 200);

        let a = answer(&post("/?s=global", "{\"test.a\":1,\"test.b\":\"some string\",\"r\":0.1,\"t\":true,\"u\":3000000000,\"bad key\":\"x\",\"q\":\"it's_50%\"}"), &cfg, &b).await;
        assert_eq!((a.status, a.text()), (200, "{\"success\":true}".into()));
        assert!(!a.head.contains("Access-Control"));
        let a = answer(&get("/?s=global"), &cfg, &b).await;
        assert_eq!(
            a.text(),
            "{\"q\":\"it's_50%\",\"r\":\"0.10000000000000001\",\"t\":\"true\",\"test.a\":\"1\",\"test.b\":\"some string\",\"u\":\"3000000000\"}\n"
        );
        let a = answer(&get("/?s=global&sk=test.*"), &cfg, &b).await;
        assert_eq!(
            a.json(),
            serde_json::json!({"test.a":"1","test.b":"some string"})
        );
        let a = answer(&get("/?s=global&sk=nomatch"), &cfg, &b).await;
        assert_eq!((a.status, a.text()), (404, "null\n".into()));

        // Errors: not JSON, not an object, compound values (earlier members stay).
        let a = answer(&post("/?s=global", "{"), &cfg, &b).await;
        assert_eq!(a.status, 400);
        assert!(a.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("* Line 1, Column 2"));
        let a = answer(&post("/?s=global", "[1]"), &cfg, &b).await;
        assert_eq!(
            a.text(),
            "{\"error\":\"JSON settings must be key/value object\"}\n"
        );
        let a = answer(
            &post("/?s=global", "{\"a.first\":\"1\",\"b\":null,\"c\":\"3\"}"),
            &cfg,
            &b,
        )
        .await;
        assert_eq!(
            a.text(),
            "{\"error\":\"JSON setting values cannot be compound (found b)\"}\n"
        );
        let a = answer(&get("/?s=global&sk=a.first"), &cfg, &b).await;
        assert_eq!(a.status, 200);
        let a = answer(&get("/?s=global&sk=c"), &cfg, &b).await;
        assert_eq!(a.status, 404);
        // An empty value deletes.
        answer(&post("/?s=global", "{\"a.first\":\"\"}"), &cfg, &b).await;
        let a = answer(&get("/?s=global&sk=a.first"), &cfg, &b).await;
        assert_eq!(a.status, 404);

        // The delayed save writes the file.
        glommio::timer::sleep(Duration::from_millis(300)).await;
        let text = std::fs::read_to_string(sdir.join("global.set")).unwrap();
        assert_eq!(
            text,
            "# istatd settings 1\nq=it\\'s\\_50\\%\nr=0.10000000000000001\nt=true\ntest.a=1\ntest.b=some string\nu=3000000000\n"
        );
        assert!(!sdir.join("global.set.tmp").exists());
        assert!(sdir.join("...set").exists());

        // flush drops cached copies: a file edited on disk is read again.
        cfg.settings.flush_all().await;
        std::fs::write(
            sdir.join("global.set"),
            "# istatd settings 1\nfrom.disk=yes\nto.disk=no\n",
        )
        .unwrap();
        cfg.settings.flush_all().await;
        let a = answer(&get("/?s=global&sk=*.disk"), &cfg, &b).await;
        assert_eq!(
            a.json(),
            serde_json::json!({"from.disk":"yes","to.disk":"no"})
        );
    });
}

#[test]
fn settings_files_load_at_start_and_refuse_huge_files() {
    let dir = temp_dir("settings-load");
    let sdir = dir.join("settings");
    std::fs::write(sdir.join("a.set"), "# istatd settings 1\nk=v\\_1 \n").unwrap();
    std::fs::write(sdir.join(".hidden.set"), "k=v\n").unwrap();
    std::fs::write(sdir.join("big.set"), vec![b'#'; 1024 * 1024 + 1]).unwrap();
    let store = SettingsStore::new(&sdir);
    assert_eq!(store.load_all_blocking().unwrap(), 1);
    run(move || async move {
        let cfg = config(&dir);
        cfg.settings.load_all_blocking().unwrap();
        let b = FakeBackend::new();
        let a = answer(&get("/?s=a"), &cfg, &b).await;
        assert_eq!(a.text(), "{\"k\":\"v_1\"}\n");
        let a = answer(&get("/?s=big"), &cfg, &b).await;
        assert_eq!(a.status, 404);
        let a = answer(&get("/?s=.hidden"), &cfg, &b).await;
        assert_eq!(a.status, 200, "not loaded at start, but opened on demand");
    });
}

// ---------------------------------------------------------------------------------------
// Framing: agent mode, OPTIONS, compression, CORS
// ---------------------------------------------------------------------------------------

#[test]
fn framing_compression_and_cors() {
    let dir = temp_dir("framing");
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        let raw = b"OPTIONS /* HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n";
        assert_eq!(
            handle(&request(raw), &cfg, &b).await,
            b"HTTP/1.1 204 (that's a status code)\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Credentials: true\r\nConnection: close\r\n\r\n"
        );
        let raw = b"POST /%2A HTTP/1.1\r\nReferer: https://www.example.com/some/page.html\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(
            handle(&request(raw), &cfg, &b).await,
            b"HTTP/1.1 400 (that's a status code)\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: https://www.example.com\r\nAccess-Control-Allow-Credentials: true\r\nContent-Length: 40\r\nConnection: close\r\n\r\n{\"error\":\"Missing 'key' array of keys\"}\n"
        );
        // A Referer with fewer than three slashes, or a folded line: `*`.
        for r in ["https:/x", "http://a\r\n b/c"] {
            let raw = format!("OPTIONS / HTTP/1.1\r\nReferer: {r}\r\n\r\n");
            let a = answer(raw.as_bytes(), &cfg, &b).await;
            assert_eq!(a.header("Access-Control-Allow-Origin"), Some("*"), "{r:?}");
        }

        let plain = answer(&get("/?q=*"), &cfg, &b).await;
        for (ae, enc) in [
            ("gzip,deflate", "gzip"),
            ("deflate", "deflate"),
            ("*", "gzip"),
        ] {
            let raw = format!("GET /?q=* HTTP/1.1\r\nAccept-Encoding: {ae}\r\n\r\n");
            let a = answer(raw.as_bytes(), &cfg, &b).await;
            assert_eq!(a.header("Content-encoding"), Some(enc));
            assert_eq!(
                a.header("Content-Length"),
                Some(a.body.len().to_string().as_str())
            );
            let mut out = Vec::new();
            if enc == "gzip" {
                flate2::read::GzDecoder::new(&a.body[..])
                    .read_to_end(&mut out)
                    .unwrap();
            } else {
                flate2::read::ZlibDecoder::new(&a.body[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            assert_eq!(out, plain.body);
        }
        // Repeated headers concatenate: "gzipdeflate" matches nothing.
        let a = answer(
            b"GET /?q=* HTTP/1.1\r\nAccept-Encoding: gzip\r\nAccept-Encoding: deflate\r\n\r\n",
            &cfg,
            &b,
        )
        .await;
        assert_eq!(a.header("Content-encoding"), None);
        // Errors after dispatch are compressed, empty bodies never.
        let a = answer(
            b"GET /nosuch HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
            &cfg,
            &b,
        )
        .await;
        assert_eq!(
            (a.status, a.header("Content-encoding")),
            (404, Some("gzip"))
        );
        let a = answer(
            b"GET /files/nosuch HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
            &cfg,
            &b,
        )
        .await;
        assert_eq!((a.status, a.header("Content-encoding")), (404, None));
        assert!(a.body.is_empty());
        // Disallowed by configuration.
        let mut cfg2 = config(&dir);
        cfg2.disallow_compressed = true;
        let a = answer(
            b"GET /?q=* HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
            &cfg2,
            &b,
        )
        .await;
        assert_eq!(a.header("Content-encoding"), None);

        // Agent mode: 503 with a JSON body, not compressed, before anything else.
        let agent = FakeBackend {
            store: false,
            queries: Cell::new(0),
        };
        for raw in [
            &get("/foo.bar")[..],
            b"OPTIONS / HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n",
            &post("/*", "{}"),
        ] {
            let a = answer(raw, &cfg, &agent).await;
            assert_eq!(a.status, 503);
            assert_eq!(a.text(), "{\"error\":\"Store not initialized\"}\n");
        }
        assert_eq!(agent.queries.get(), 0);
    });
}

// ---------------------------------------------------------------------------------------
// The connection driver
// ---------------------------------------------------------------------------------------

async fn exchange(addr: std::net::SocketAddr, chunks: &[&[u8]]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    for c in chunks {
        s.write_all(c).await.unwrap();
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    out
}

#[test]
fn connections_limits_and_slow_clients() {
    let dir = temp_dir("conn");
    run(move || async move {
        let mut cfg = config(&dir);
        cfg.idle_timeout = Duration::from_millis(300);
        let cfg = Rc::new(cfg);
        let backend: Rc<dyn Backend> = Rc::new(FakeBackend::new());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (c2, b2) = (cfg.clone(), backend.clone());
        glommio::spawn_local(async move {
            loop {
                let Ok(s) = listener.accept().await else {
                    break;
                };
                glommio::spawn_local(serve_connection(s, c2.clone(), b2.clone())).detach();
            }
        })
        .detach();

        // A slow client holding a partial head does not stall others; it is closed
        // after the idle timeout without an answer.
        let slow = glommio::spawn_local(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /foo.bar HTTP/1.1\r\nHo").await.unwrap();
            let mut out = Vec::new();
            let t = std::time::Instant::now();
            let _ = s.read_to_end(&mut out).await;
            (out, t.elapsed())
        });
        let a = Answer::of(
            &exchange(
                addr,
                &[b"GET /foo.bar?start=1000 HTTP/1.1\r\nHost: x\r\n\r\n"],
            )
            .await,
        );
        assert_eq!(a.status, 200);
        // Head and body split over several writes.
        let a = Answer::of(
            &exchange(
                addr,
                &[
                    b"POST /* HTTP/1.1\r\nContent-Le",
                    b"ngth: 19\r\n\r\n{\"keys\":",
                    b"[\"nosuch\"]}",
                ],
            )
            .await,
        );
        assert_eq!(
            (a.status, a.text()),
            (200, "{\"nosuch\":\"Not found.\"}".into())
        );
        // A body shorter than announced: answered 400 once the client half-closes.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /* HTTP/1.1\r\nContent-Length: 50\r\n\r\n{}")
            .await
            .unwrap();
        s.shutdown(std::net::Shutdown::Write).await.unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        assert_eq!(Answer::of(&out).status, 400);
        // An endless head: 413 once it passes the limit.
        let big = vec![b'a'; MAX_HEAD + 10];
        let out = exchange(addr, &[b"GET / HTTP/1.1\r\nX: ", &big]).await;
        assert_eq!(Answer::of(&out).status, 413);
        // A malformed head.
        let out = exchange(addr, &[b"GET / HTTP/1.0\r\n\r\n"]).await;
        assert_eq!(Answer::of(&out).status, 400);

        let (out, waited) = slow.await;
        assert!(out.is_empty());
        assert!(waited >= Duration::from_millis(250), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert_eq!(cfg.stats.current.get(), 0);
        assert!(cfg.stats.requests.get() >= 6);
        assert!(cfg.stats.http_errors.get() >= 3);
        assert!(cfg.stats.server_errors.get() >= 2);
    });
}

// ---------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_head(&bytes);
    }

    #[test]
    fn the_parser_never_panics_on_head_like_input(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b"\r\n\r\n".to_vec()),
                Just(b" ".to_vec()),
                Just(b":".to_vec()),
                Just(b"GET".to_vec()),
                Just(b"/".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..8),
            ],
            0..40,
        )
    ) {
        let bytes: Vec<u8> = parts.concat();
        if let Ok(Some((req, n))) = parse_head(&bytes) {
            prop_assert!(n <= bytes.len());
            prop_assert!(bytes[..n].ends_with(b"\r\n\r\n"));
            let _ = req.body_length();
        }
    }

    #[test]
    fn the_json_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = istatd::http::json::parse(&bytes);
    }

    #[test]
    fn the_json_reader_agrees_with_serde_on_valid_json(
        v in json_value(),
    ) {
        let text = serde_json::to_vec(&v).unwrap();
        let ours = istatd::http::json::parse(&text).unwrap();
        prop_assert!(same(&ours, &v), "{} vs {:?}", String::from_utf8_lossy(&text), ours);
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        any::<u64>().prop_map(|i| serde_json::json!(i)),
        (-1e300f64..1e300).prop_map(|f| serde_json::json!(f)),
        ".*".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(".*", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn same(ours: &istatd::http::json::JValue, v: &serde_json::Value) -> bool {
    use istatd::http::json::JValue as J;
    match (ours, v) {
        (J::Null, serde_json::Value::Null) => true,
        (J::Bool(a), serde_json::Value::Bool(b)) => a == b,
        (J::Int(a), serde_json::Value::Number(n)) => n.as_i64() == Some(*a),
        (J::UInt(a), serde_json::Value::Number(n)) => n.as_u64() == Some(*a),
        (J::Real(a), serde_json::Value::Number(n)) => n.as_f64() == Some(*a),
        (J::Str(a), serde_json::Value::String(s)) => a == s.as_bytes(),
        (J::Array(a), serde_json::Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
        }
        (J::Object(a), serde_json::Value::Object(b)) => {
            a.len() == b.len()
                && b.iter()
                    .all(|(k, y)| a.get(k.as_bytes()).is_some_and(|x| same(x, y)))
        }
        _ => false,
    }
}

#[test]
fn random_requests_through_handle_never_panic() {
    let dir = temp_dir("fuzz");
    std::fs::write(dir.join("files/index.html"), "x").unwrap();
    run(move || async move {
        let cfg = config(&dir);
        let b = FakeBackend::new();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 600,
            ..ProptestConfig::default()
        });
        let methods = prop_oneof![
            Just("GET".to_string()),
            Just("POST".to_string()),
            Just("OPTIONS".to_string()),
            "[A-Z]{0,6}",
        ];
        let urls = prop_oneof![
            "/[a-zA-Z0-9.*%/]{0,12}(\\?([a-z]{1,7}=[a-zA-Z0-9%*?.+-]{0,10}&?){0,4})?",
            "/(\\?(start|end|samples|trailing|format|q|s|sk|f|a)=[-+0-9a-z%]{0,12}&?){1,5}",
            "[^ \r\n]{0,20}",
        ];
        let bodies = prop_oneof![
            Just(String::new()),
            Just("{\"keys\":[\"foo.bar\",\"x\"],\"start\":1000,\"stop\":2000}".to_string()),
            "[{}\\[\\]\":,0-9a-z. -]{0,40}",
        ];
        let mut cases = Vec::new();
        for _ in 0..600 {
            let m = methods.new_tree(&mut runner).unwrap().current();
            let u = urls.new_tree(&mut runner).unwrap().current();
            let body = bodies.new_tree(&mut runner).unwrap().current();
            cases.push((m, u, body));
        }
        for (m, u, body) in cases {
            let raw = format!(
                "{m} {u} HTTP/1.1\r\nAccept-Encoding: gzip\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if let Ok(Some((mut req, n))) = parse_head(raw.as_bytes()) {
                req.body = raw.as_bytes()[n..].to_vec();
                let resp = handle(&req, &cfg, &b).await;
                assert!(resp.starts_with(b"HTTP/1.1 "), "{raw:?}");
                assert!(
                    String::from_utf8_lossy(&resp).contains("\r\nConnection: close\r\n"),
                    "{raw:?}"
                );
            }
        }
    });
}
