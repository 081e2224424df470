//! The HTTP interface (docs/interfaces.md §3).
//!
//! - [`request`]: head parsing ([`parse_head`]) as the reference reads heads, with the
//!   port's limits.
//! - [`handler`]: dispatch, with a module per endpoint family; [`handle`] turns a parsed
//!   request into the exact response bytes, independent of sockets.
//! - [`response`]: framing, `Accept-Encoding`, gzip / zlib.
//! - [`json`]: jsoncpp-compatible reading of request bodies and string quoting.
//! - [`settings`]: the process-wide settings store (`?s=`).
//! - [`conn`]: [`serve_connection`], one connection from accept to close.
//! - [`backend`]: what the HTTP layer asks of the daemon.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod backend;
pub mod conn;
pub mod handler;
pub mod json;
pub mod page;
pub mod request;
pub mod response;
pub mod settings;

pub use conn::serve_connection;
pub use handler::{body_wanted, handle, head_error_response};
pub use request::{parse_head, BodyLength, HeadError, RawRequest, MAX_BODY, MAX_HEAD};
pub use settings::SettingsStore;

/// **Port:** a connection idle this long while its request is read (or its answer
/// written) is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The HTTP counters of one shard (docs/interfaces.md §3.12), for the daemon's
/// `istatd.http.*` internal counters.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Accepted connections (`istatd.http.requests`).
    pub requests: Cell<u64>,
    /// Connections being served now (`istatd.http.current`).
    pub current: Cell<i64>,
    /// Responses with a status of 400 or more (`istatd.http.errors.http`).
    pub http_errors: Cell<u64>,
    /// Malformed requests and connection errors (`istatd.http.errors.server`).
    pub server_errors: Cell<u64>,
}

impl HttpStats {
    pub(crate) fn bump(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }
}

/// What the HTTP layer needs to know; one per shard (`Rc`), sharing the settings store.
#[derive(Debug)]
pub struct HttpConfig {
    /// `--files-dir`, already resolved (§7.7).
    pub files_dir: PathBuf,
    /// The process-wide settings store over `--settings` (one `Arc` for all shards).
    pub settings: Arc<SettingsStore>,
    /// `--disallow-compressed-responses`.
    pub disallow_compressed: bool,
    /// Idle timeout of a connection (reading the request, writing the answer).
    pub idle_timeout: Duration,
    /// This shard's HTTP counters.
    pub stats: HttpStats,
    /// The Prometheus exporter's listener (docs/interfaces.md §4.1): only `GET /metrics`.
    pub prometheus_only: bool,
}

impl HttpConfig {
    pub fn new(
        files_dir: impl Into<PathBuf>,
        settings: Arc<SettingsStore>,
        disallow_compressed: bool,
    ) -> HttpConfig {
        HttpConfig {
            files_dir: files_dir.into(),
            settings,
            disallow_compressed,
            idle_timeout: IDLE_TIMEOUT,
            stats: HttpStats::default(),
            prometheus_only: false,
        }
    }

    /// The settings directory (`--settings`).
    pub fn settings_dir(&self) -> &std::path::Path {
        self.settings.dir()
    }
}
