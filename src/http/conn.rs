//! One HTTP connection from accept to close (docs/interfaces.md §3.1): read the head (at
//! most [`MAX_HEAD`] bytes), read the body a POST announces (at most
//! [`MAX_BODY`](super::MAX_BODY)), answer, close. Every read and write has the idle
//! timeout, so a slow client only holds its own task; the daemon spawns one task per
//! accepted connection.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::backend::Backend;
use super::handler::{body_wanted, handle, head_error_response};
use super::request::{find_head_end, parse_head, HeadError, RawRequest, MAX_HEAD};
use super::response::status_of;
use super::{HttpConfig, HttpStats};

/// What was read from the connection.
enum Incoming {
    Request(RawRequest),
    Bad(HeadError),
    /// The client closed (or timed out) before a whole head arrived.
    Gone,
}

struct CurrentGuard<'a>(&'a HttpStats);

impl Drop for CurrentGuard<'_> {
    fn drop(&mut self) {
        self.0.current.set(self.0.current.get() - 1);
    }
}

const CHUNK: usize = 16 * 1024;

async fn read_head(
    stream: &mut TcpStream,
    scratch: &mut [u8],
) -> std::io::Result<(Incoming, Vec<u8>, usize)> {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        let n = stream.read(scratch).await?;
        if n == 0 {
            return Ok((Incoming::Gone, buf, 0));
        }
        let old = buf.len();
        buf.extend_from_slice(&scratch[..n]);
        if find_head_end(&buf, old.saturating_sub(3)).is_some() || buf.len() > MAX_HEAD {
            return Ok(match parse_head(&buf) {
                Ok(Some((req, len))) => (Incoming::Request(req), buf, len),
                // Not reached: a terminated head or an over-long buffer always parses.
                Ok(None) => (Incoming::Bad(HeadError::Malformed), buf, 0),
                Err(e) => (Incoming::Bad(e), buf, 0),
            });
        }
    }
}

async fn read_body(
    stream: &mut TcpStream,
    scratch: &mut [u8],
    req: &mut RawRequest,
    already: &[u8],
    want: usize,
) -> std::io::Result<()> {
    let take = already.len().min(want);
    // Grow with what arrives, not with what is announced.
    req.body = Vec::with_capacity(want.min(64 * 1024));
    req.body.extend_from_slice(&already[..take]);
    while req.body.len() < want {
        let room = (want - req.body.len()).min(scratch.len());
        let n = stream.read(&mut scratch[..room]).await?;
        if n == 0 {
            // Short body: `handle` answers 400.
            break;
        }
        req.body.extend_from_slice(&scratch[..n]);
    }
    Ok(())
}

/// Serve one accepted connection: one request, one answer, then close.
pub async fn serve_connection(
    mut stream: TcpStream,
    cfg: Rc<HttpConfig>,
    backend: Rc<dyn Backend>,
) {
    let stats = &cfg.stats;
    HttpStats::bump(&stats.requests);
    stats.current.set(stats.current.get() + 1);
    let _guard = CurrentGuard(stats);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(cfg.idle_timeout));
    let _ = stream.set_write_timeout(Some(cfg.idle_timeout));

    let mut scratch = vec![0u8; CHUNK];
    let answer = match read_head(&mut stream, &mut scratch).await {
        Err(e) => {
            tracing::debug!("http: reading the request: {e}");
            HttpStats::bump(&stats.server_errors);
            return;
        }
        Ok((Incoming::Gone, _, _)) => return,
        Ok((Incoming::Bad(e), _, _)) => {
            HttpStats::bump(&stats.server_errors);
            head_error_response(e)
        }
        Ok((Incoming::Request(mut req), buf, head_len)) => {
            if req.no_version {
                HttpStats::bump(&stats.server_errors);
            }
            let want = body_wanted(&req, backend.has_store());
            if want > 0 {
                if let Err(e) =
                    read_body(&mut stream, &mut scratch, &mut req, &buf[head_len..], want).await
                {
                    tracing::debug!("http: reading the body: {e}");
                    HttpStats::bump(&stats.server_errors);
                    return;
                }
            }
            handle(&req, &cfg, &*backend).await
        }
    };
    if status_of(&answer) >= 400 {
        HttpStats::bump(&stats.http_errors);
    }
    if let Err(e) = stream.write_all(&answer).await {
        tracing::debug!("http: writing the answer: {e}");
        HttpStats::bump(&stats.server_errors);
        return;
    }
    let _ = stream.flush().await;
    // Half-close, then drain briefly what the client may still send (an unread body),
    // so that closing does not reset the connection before the answer is read.
    let _ = stream.shutdown(std::net::Shutdown::Write).await;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut drained = 0usize;
    while drained < 1024 * 1024 {
        match stream.read(&mut scratch).await {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}
