//! Dispatch of the HTTP interface (docs/interfaces.md §3.4; reference `RequestInFlight` in
//! daemon/RequestInFlight.cpp): [`handle`] turns a parsed request into the exact
//! response bytes, independent of sockets, and `GET /metrics` is answered here. The
//! endpoint families have a module each: `counter_data` (§3.5), `multiget` (§3.6),
//! `lists` (§3.7–§3.9), `files` (§3.10), `settings_requests` (§3.11).

use std::collections::BTreeMap;

use super::backend::Backend;
use super::request::{querystring, BodyLength, HeadError, RawRequest};
use super::response::{negotiate, render, split, Encoding, Response, JSON};
use super::HttpConfig;
use crate::metrics::prom::PromLayout;

mod counter_data;
mod files;
pub mod graphite;
mod lists;
mod multiget;
mod settings_requests;

pub use counter_data::{counter_key, render_csv, render_json};
pub use files::{static_file_type, MAX_STATIC_FILE};
pub use lists::{key_universe, normalize_pattern, push_agent};

use counter_data::counter_data;
use files::serve_file;
use lists::{list_agents, list_counters};
use multiget::multiget;
use settings_requests::{get_settings, set_settings};

type Params = BTreeMap<Vec<u8>, Vec<u8>>;

/// A `std::runtime_error` thrown inside `RequestInFlight::go`: answered 400
/// `{"error":"HTTP exception: <msg>"}`.
struct HttpException(Vec<u8>);

impl<T: Into<Vec<u8>>> From<T> for HttpException {
    fn from(m: T) -> HttpException {
        HttpException(m.into())
    }
}

type Handled = Result<Response, HttpException>;

/// Answer one request: the exact response bytes (§3.2 framing, §3.3 compression).
///
/// Must run inside a glommio executor (static files and settings use its blocking pool).
/// `req.body` must hold the body the request announced (see [`body_wanted`]); a shorter
/// body is answered 400.
pub async fn handle(req: &RawRequest, cfg: &HttpConfig, backend: &dyn Backend) -> Vec<u8> {
    if cfg.prometheus_only || (req.method == b"GET" && req.url == b"/metrics") {
        return metrics(req, cfg, backend).await;
    }
    if !backend.has_store() {
        // Port: the reference sends this with an empty body (§3.4, §9 item 9).
        return render(
            Some(req),
            Response::error(503, "Store not initialized"),
            Encoding::Identity,
        );
    }
    let (path, query) = split(&req.url, b'?');
    if path.is_empty() {
        return render(
            Some(req),
            Response::error(400, "Malformed url"),
            Encoding::Identity,
        );
    }
    let enc = negotiate(req.header("accept-encoding"), cfg.disallow_compressed);
    if graphite::is_graphite_path(path) {
        let resp = graphite::handle(req, path, query, backend).await;
        return render(Some(req), resp, enc);
    }
    let params = querystring(query);
    let resp = match req.method.as_slice() {
        b"GET" => do_get(req, &params, &path[1..], cfg, backend).await,
        b"POST" => do_post(req, &params, cfg, backend).await,
        b"OPTIONS" => Ok(Response::new(204, JSON, Vec::new())),
        _ => Ok(Response::error(405, "Bad method")),
    };
    let resp = resp.unwrap_or_else(|HttpException(msg)| {
        let mut m = b"HTTP exception: ".to_vec();
        m.extend_from_slice(&msg);
        Response::error(400, m)
    });
    render(Some(req), resp, enc)
}

/// `GET /metrics`: the Prometheus exporter on its own port (anything else there is 400
/// `Malformed url` or 405), or the daemon's internal counters on the main HTTP port.
async fn metrics(req: &RawRequest, cfg: &HttpConfig, backend: &dyn Backend) -> Vec<u8> {
    let enc = negotiate(req.header("accept-encoding"), cfg.disallow_compressed);
    let resp = if req.method != b"GET" {
        Response::error(405, "Bad method")
    } else if req.url != b"/metrics" {
        Response::error(400, "Malformed url")
    } else {
        let layout = PromLayout::for_accept(req.header("accept"));
        match backend.metrics(cfg.prometheus_only, layout).await {
            Some(text) => Response::new(200, crate::metrics::prom::CONTENT_TYPE, text.into_bytes()),
            None => Response::error(404, "Prometheus exporter is off"),
        }
    };
    render(Some(req), resp, enc)
}

/// The response to a head that cannot be parsed: 413 for a head over the limit, 400
/// `{"error":"Malformed request"}` otherwise (**Port:** the reference's 400 has an empty
/// body). No CORS headers, no compression.
pub fn head_error_response(e: HeadError) -> Vec<u8> {
    let resp = match e {
        HeadError::TooLarge => Response::error(413, "Request head too large"),
        HeadError::Malformed => Response::error(400, "Malformed request"),
    };
    render(None, resp, Encoding::Identity)
}

/// How many body bytes the connection should read after the head before calling
/// [`handle`]: the `Content-Length` of a POST the dispatch reads a body for (`/*` and
/// `?s=`), 0 otherwise (also when the length is missing, invalid or over the limit:
/// `handle` answers those).
pub fn body_wanted(req: &RawRequest, has_store: bool) -> usize {
    if !has_store || req.method != b"POST" {
        return 0;
    }
    let (path, query) = split(&req.url, b'?');
    if path.is_empty() {
        return 0;
    }
    let wanted = is_multiget_url(&req.url)
        || graphite::reads_body(path)
        || querystring(query).contains_key(&b"s"[..]);
    if !wanted {
        return 0;
    }
    match req.body_length() {
        BodyLength::Len(n) => n,
        _ => 0,
    }
}

fn is_multiget_url(url: &[u8]) -> bool {
    matches!(url, b"/*" | b"/%2A" | b"/%2a")
}

/// The announced body, or the response that refuses it.
fn body_of(req: &RawRequest) -> Result<&[u8], Handled> {
    match req.body_length() {
        BodyLength::Missing => Err(Err("Can't read body without content-length".into())),
        BodyLength::Invalid => Err(Err("Bad Content-Length".into())),
        BodyLength::TooLarge => Err(Ok(Response::error(413, "Request body too large"))),
        BodyLength::Len(n) => match req.body.get(..n) {
            Some(b) => Ok(b),
            None => Err(Err("Incomplete request body".into())),
        },
    }
}

async fn do_get(
    req: &RawRequest,
    params: &Params,
    name: &[u8],
    cfg: &HttpConfig,
    backend: &dyn Backend,
) -> Handled {
    let url = req.url.as_slice();
    if url == b"/" {
        // Port: without a static index.html, the built-in page (super::page).
        let resp = serve_file(cfg, b"index.html").await;
        Ok(if resp.status == 404 {
            super::page::response()
        } else {
            resp
        })
    } else if let Some(rest) = url.strip_prefix(b"/files/") {
        Ok(serve_file(cfg, rest).await)
    } else if params.is_empty() && (url == b"favicon.ico" || url == b"/favicon.ico") {
        // Port (§9 item 13): the reference asks for ".files.favicon.ico" and always 404s.
        Ok(serve_file(cfg, b"favicon.ico").await)
    } else if params.contains_key(&b"f"[..]) {
        Ok(serve_file(cfg, url.get(4..).unwrap_or_default()).await)
    } else if params.contains_key(&b"a"[..]) {
        Ok(list_agents(backend).await)
    } else if let Some(q) = params.get(&b"q"[..]) {
        Ok(list_counters(q, backend).await)
    } else if let Some(s) = params.get(&b"s"[..]) {
        let key = params.get(&b"sk"[..]).map_or(&b"*"[..], Vec::as_slice);
        Ok(get_settings(cfg, s, key).await)
    } else {
        counter_data(name, params, backend).await
    }
}

async fn do_post(
    req: &RawRequest,
    params: &Params,
    cfg: &HttpConfig,
    backend: &dyn Backend,
) -> Handled {
    if is_multiget_url(&req.url) {
        let body = match body_of(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        Ok(multiget(body, backend).await)
    } else if let Some(s) = params.get(&b"s"[..]) {
        let body = match body_of(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        Ok(set_settings(cfg, s, body).await)
    } else {
        Ok(Response::error(404, "No such POST target"))
    }
}

#[cfg(test)]
mod tests;
