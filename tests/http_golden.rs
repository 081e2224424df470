//! The HTTP answers of the reference for the golden "basic" case
//! (../shared/golden/basic/http, see its README): each request of `requests.txt` goes
//! through `parse_head` and `handle` against a backend that queries the golden counter
//! files (`query_images` over `NAME.10s.bin` / `NAME.5m.bin`) at the golden fake time;
//! status line and headers must equal `N.head` byte for byte, bodies must equal `N.body`
//! (byte for byte where the reference's order is deterministic, as parsed JSON for the
//! multi-get, as a set of entries for the counter list).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use glommio::LocalExecutorBuilder;
use istatd::http::backend::{AgentInfo, Backend, CounterData, CounterInfo, LocalFut};
use istatd::http::{handle, parse_head, HttpConfig, SettingsStore};
use istatd::metrics::prom::PromLayout;
use istatd_storage::format::Header;
use istatd_storage::query::{is_event_file, query_images, QueryParams};

const NOW: i64 = 1600002700;

fn golden() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden/basic");
    if p.join("http/requests.txt").is_file() {
        Some(p)
    } else {
        eprintln!("SKIP: ../shared/golden/basic not found next to the repository; HTTP golden tests skipped");
        None
    }
}

/// The reference's own `istatd.*` counters alive when the golden answers were taken.
/// Their files are left out of the golden set (README), so the backend adds them.
const INTERNAL: &[(&str, bool)] = &[
    ("istatd.admin.commands", true),
    ("istatd.admin.connections", true),
    ("istatd.app.memory.vmrss", false),
    ("istatd.app.memory.vmsize", false),
    ("istatd.counter.created", true),
    ("istatd.counter.dequeue", true),
    ("istatd.counter.eagerconns", false),
    ("istatd.counter.enqueue", true),
    ("istatd.counter.flushed", true),
    ("istatd.counter.from_past", true),
    ("istatd.counter.queuelen", false),
    ("istatd.http.current", false),
    ("istatd.statserver.commands.bad", true),
    ("istatd.statserver.connected", false),
    ("istatd.statserver.connects", true),
    ("istatd.statserver.drops", true),
];

struct GoldenBackend {
    files: PathBuf,
}

impl GoldenBackend {
    fn image(&self, key: &str, ret: &str) -> Option<(Header, Vec<u8>)> {
        let img = std::fs::read(self.files.join(format!("{key}.{ret}.bin"))).ok()?;
        let h = Header::parse_checked(&img, img.len() as u64).expect("golden header");
        Some((h, img))
    }
}

impl Backend for GoldenBackend {
    fn has_store(&self) -> bool {
        true
    }

    fn now(&self) -> i64 {
        NOW
    }

    fn query<'a>(
        &'a self,
        key: &'a str,
        params: QueryParams,
    ) -> LocalFut<'a, Result<Option<CounterData>, String>> {
        Box::pin(async move {
            let Some((h10, i10)) = self.image(key, "10s") else {
                return Ok(None);
            };
            let (h5, i5) = self.image(key, "5m").expect("5m file next to the 10s file");
            let result = query_images(&[&h10, &h5], &[&i10, &i5], &params, NOW);
            Ok(Some(CounterData {
                result,
                is_event: is_event_file(&h10),
            }))
        })
    }

    fn counters(&self) -> LocalFut<'_, Vec<CounterInfo>> {
        Box::pin(async move {
            let mut out: Vec<CounterInfo> = INTERNAL
                .iter()
                .map(|&(n, e)| CounterInfo {
                    name: n.into(),
                    is_event: e,
                })
                .collect();
            for ent in std::fs::read_dir(&self.files).unwrap() {
                let f = ent.unwrap().file_name().into_string().unwrap();
                if let Some(name) = f.strip_suffix(".10s.bin") {
                    let (h, _) = self.image(name, "10s").unwrap();
                    out.push(CounterInfo {
                        name: name.into(),
                        is_event: is_event_file(&h),
                    });
                }
            }
            out
        })
    }

    fn metrics(&self, _exporter: bool, _layout: PromLayout) -> LocalFut<'_, Option<String>> {
        Box::pin(async { None })
    }

    fn agents(&self) -> LocalFut<'_, Vec<AgentInfo>> {
        Box::pin(async { Vec::new() })
    }
}

fn split_response(resp: &[u8]) -> (&[u8], &[u8]) {
    let p = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head")
        + 4;
    (&resp[..p], &resp[p..])
}

fn list_entries(v: &serde_json::Value) -> BTreeSet<String> {
    v["matching_names"]
        .as_array()
        .expect("matching_names")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn reference_answers_for_the_basic_case() {
    let Some(dir) = golden() else { return };
    let http = dir.join("http");
    let requests = std::fs::read_to_string(http.join("requests.txt")).unwrap();
    let tmp = std::env::temp_dir().join(format!("istatd-http-golden-{}", std::process::id()));
    let files = dir.join("files");
    let tmp2 = tmp.clone();
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let settings = Arc::new(SettingsStore::new(tmp2.join("settings")));
            let cfg = HttpConfig::new(tmp2.join("files"), settings, false);
            let backend: Rc<dyn Backend> = Rc::new(GoldenBackend { files });
            let mut n = 0;
            for line in requests.lines().filter(|l| !l.trim().is_empty()) {
                let (id, rest) = line.split_once(' ').unwrap();
                let (method, rest) = rest.split_once(' ').unwrap();
                let (url, body) = rest.split_once(' ').unwrap_or((rest, ""));
                let mut raw =
                    format!("{method} {url} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n");
                if method == "POST" {
                    raw.push_str(&format!(
                        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                        body.len()
                    ));
                }
                raw.push_str("\r\n");
                raw.push_str(body);
                let (mut req, head_len) = parse_head(raw.as_bytes()).unwrap().unwrap();
                req.body = raw.as_bytes()[head_len..].to_vec();
                let resp = handle(&req, &cfg, &*backend).await;
                let (head, got) = split_response(&resp);
                let want_head = std::fs::read(http.join(format!("{id}.head"))).unwrap();
                let want = std::fs::read(http.join(format!("{id}.body"))).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(head),
                    String::from_utf8_lossy(&want_head),
                    "head of request {id}: {line}"
                );
                if url.starts_with("/?q=") {
                    let g: serde_json::Value = serde_json::from_slice(got).unwrap();
                    let w: serde_json::Value = serde_json::from_slice(&want).unwrap();
                    assert_eq!(g["type_mapping"], w["type_mapping"]);
                    assert_eq!(g["pattern"], w["pattern"]);
                    assert_eq!(list_entries(&g), list_entries(&w), "request {id}");
                } else if method == "POST" {
                    let g: serde_json::Value = serde_json::from_slice(got).unwrap();
                    let w: serde_json::Value = serde_json::from_slice(&want).unwrap();
                    assert_eq!(g, w, "body of request {id}: {line}");
                } else {
                    assert_eq!(
                        String::from_utf8_lossy(got),
                        String::from_utf8_lossy(&want),
                        "body of request {id}: {line}"
                    );
                }
                n += 1;
            }
            assert_eq!(n, 7, "every golden request was checked");
        })
        .unwrap()
        .join()
        .unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
}
