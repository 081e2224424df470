//! The stat port (docs/interfaces.md §2): TCP connections and UDP datagrams, split into
//! frames and handed to [`Ingest`] through one path. The port has generations: a slave
//! keeps it closed, a promotion opens a new one, `replication.of` closes it, and the
//! listeners and connections of an older generation end by themselves.
//!
//! The Graphite plaintext port (`--graphite-port`) is the same machinery speaking
//! [`Proto::Graphite`]: each line is rewritten into a stat line first.

use std::cell::Cell;
use std::net::SocketAddrV4;
use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::AsyncReadExt;
use glommio::net::{TcpListener, TcpStream, UdpSocket};

use super::Ingest;
use crate::clock;
use crate::daemon::{BindError, ShardCore};
use crate::metrics::loopback::Loopback;
use crate::statline::graphite::{self, GraphiteBad, GraphiteLine};
use crate::statline::{self, Frame, LineSplitter, ParsedBatch};

/// The line protocol a port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// istatd's stat lines (docs/interfaces.md §2).
    Istatd,
    /// Graphite plaintext, `name value timestamp` (docs/graphite.md).
    Graphite,
}

pub struct StatPort {
    core: Rc<ShardCore>,
    ingest: Rc<Ingest>,
    proto: Proto,
    port: u16,
    /// The generation open now (0: closed).
    epoch: Cell<u64>,
    /// The newest generation this shard was told of, opened or closed: a request
    /// handled before the shard's own start-up opened the port (the admin port of
    /// shard 0 answers while the other shards still scan their stores) must not be
    /// undone by it.
    newest: Cell<u64>,
    /// TCP connections being served.
    active: Cell<usize>,
    udp_packets: Cell<u64>,
    udp_bad: Cell<u64>,
    /// Graphite lines handled, and refused (with the time the last refusal was logged).
    lines: Cell<u64>,
    bad: Cell<u64>,
    bad_logged: Cell<Option<std::time::Instant>>,
}

/// One refused Graphite line is logged per this period; the rest are counted.
const BAD_LOG_EVERY: Duration = Duration::from_secs(10);

impl StatPort {
    pub fn new(core: Rc<ShardCore>, ingest: Rc<Ingest>, proto: Proto) -> StatPort {
        let port = match proto {
            Proto::Istatd => core.cfg.stat_port,
            Proto::Graphite => core.cfg.graphite_port,
        };
        StatPort {
            core,
            ingest,
            proto,
            port,
            epoch: Cell::new(0),
            newest: Cell::new(0),
            active: Cell::new(0),
            udp_packets: Cell::new(0),
            udp_bad: Cell::new(0),
            lines: Cell::new(0),
            bad: Cell::new(0),
            bad_logged: Cell::new(None),
        }
    }

    /// The port number (0: this port is off).
    pub fn port(&self) -> u16 {
        self.port
    }

    fn what(&self) -> &'static str {
        match self.proto {
            Proto::Istatd => "stat",
            Proto::Graphite => "graphite",
        }
    }

    /// Bind the TCP and UDP sockets of the port on this shard.
    pub fn bind(&self) -> Result<(TcpListener, UdpSocket), BindError> {
        let cfg = &self.core.cfg;
        let what = self.what();
        let a = SocketAddrV4::new(cfg.listen, self.port);
        let l = crate::net::tcp_listener(a, cfg.backlog).map_err(|e| BindError::new(what, a, e))?;
        let mut u = crate::net::udp_socket(a, cfg.udp_buffer_bytes)
            .map_err(|e| BindError::new(what, a, e).udp())?;
        u.set_buffer_size(65536);
        Ok((l, u))
    }

    /// Serve bound sockets as generation `epoch`; the two tasks end when the
    /// generation does (or at shutdown). Sockets of a generation older than one
    /// already seen are closed at once (no tasks).
    pub fn serve(
        self: &Rc<Self>,
        (l, u): (TcpListener, UdpSocket),
        epoch: u64,
    ) -> Vec<glommio::Task<()>> {
        if epoch < self.newest.get() {
            return Vec::new();
        }
        self.newest.set(epoch);
        self.epoch.set(epoch);
        let me = self.clone();
        let tcp = glommio::spawn_local(async move { me.accept(l, epoch).await });
        let me = self.clone();
        let udp = glommio::spawn_local(async move { me.serve_udp(u, epoch).await });
        vec![tcp, udp]
    }

    /// Close the port as of generation `epoch`: every listener and connection of an
    /// older generation ends.
    pub fn close(&self, epoch: u64) {
        if epoch < self.newest.get() {
            return;
        }
        self.newest.set(epoch);
        self.epoch.set(0);
    }

    /// TCP connections still being served.
    pub fn active(&self) -> usize {
        self.active.get()
    }

    /// Resolves when a shutdown was requested or generation `epoch` ended.
    async fn closed(&self, epoch: u64) {
        while !self.core.shutdown.is_requested() && self.epoch.get() == epoch {
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn accept(self: Rc<Self>, l: TcpListener, epoch: u64) {
        loop {
            let conn = futures_lite::future::or(
                async { Some(l.accept().await.map_err(std::io::Error::from)) },
                async {
                    self.closed(epoch).await;
                    None
                },
            )
            .await;
            let Some(conn) = conn else { return };
            match conn {
                Ok(stream) => {
                    {
                        let mut lb = self.core.lb.borrow_mut();
                        lb.incr(Loopback::StatServerConnects);
                        lb.incr(Loopback::CounterEagerconns);
                    }
                    self.active.set(self.active.get() + 1);
                    let me = self.clone();
                    glommio::spawn_local(async move {
                        me.serve_conn(stream, epoch).await;
                        {
                            let mut lb = me.core.lb.borrow_mut();
                            lb.incr(Loopback::StatServerDrops);
                            lb.decr(Loopback::CounterEagerconns);
                        }
                        me.active.set(me.active.get() - 1);
                    })
                    .detach();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stat accept failed");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn serve_conn(&self, mut stream: TcpStream, epoch: u64) {
        let mut buf = vec![0u8; 16384];
        let mut splitter = LineSplitter::new();
        let mut parsed = ParsedBatch::new();
        let mut router = self.ingest.router();
        let source = self.ingest.new_source();
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut record = None;
        let mut line = Vec::new();
        loop {
            let n = futures_lite::future::or(async { Some(stream.read(&mut buf).await) }, async {
                self.closed(epoch).await;
                None
            })
            .await;
            let n = match n {
                None | Some(Ok(0)) | Some(Err(_)) => break,
                Some(Ok(n)) => n,
            };
            let now = clock::now();
            let rec = record
                .get_or_insert_with(|| self.ingest.open_meta(peer.clone(), now))
                .clone();
            rec.borrow_mut().last_seen = now;
            let flow = splitter.try_push(&buf[..n], |frame| match self.proto {
                Proto::Istatd => {
                    self.ingest
                        .frame(frame, now, source, &mut parsed, &mut router, &rec)
                }
                Proto::Graphite => {
                    let Frame::Line(l) = frame else {
                        self.refused(None, &peer);
                        return ControlFlow::Continue(());
                    };
                    match self.graphite_line(l, now, &mut line, &peer) {
                        Some(f) => {
                            self.ingest
                                .frame(f, now, source, &mut parsed, &mut router, &rec)
                        }
                        None => ControlFlow::Continue(()),
                    }
                }
            });
            self.ingest.dispatch(&mut router).await;
            if flow.is_break() {
                self.core.lb.borrow_mut().incr(Loopback::BlacklistCount);
                rec.borrow_mut().blacklisted = true;
                tracing::info!(peer = %peer, "closing a blacklisted host's connection");
                break;
            }
        }
        if let Some(rec) = record {
            let mut r = rec.borrow_mut();
            r.online = false;
            r.last_seen = clock::now();
        }
    }

    async fn serve_udp(&self, sock: UdpSocket, epoch: u64) {
        let mut buf = vec![0u8; 65536];
        let mut parsed = ParsedBatch::new();
        let mut router = self.ingest.router();
        let source = self.ingest.new_source();
        let mut line = Vec::new();
        loop {
            let r =
                futures_lite::future::or(async { Some(sock.recv_from(&mut buf).await) }, async {
                    self.closed(epoch).await;
                    None
                })
                .await;
            let Some(r) = r else { return };
            let (n, from) = match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "udp receive failed");
                    continue;
                }
            };
            self.udp_packets.set(self.udp_packets.get() + 1);
            let now = clock::now();
            if self.proto == Proto::Graphite {
                let rec = self.ingest.udp_meta(|| from.to_string(), now);
                rec.borrow_mut().last_seen = now;
                for l in graphite::datagram_lines(&buf[..n]) {
                    if let Some(f) = self.graphite_line(l, now, &mut line, &from) {
                        let _ = self
                            .ingest
                            .frame(f, now, source, &mut parsed, &mut router, &rec);
                    }
                }
                self.ingest.dispatch(&mut router).await;
                continue;
            }
            let Ok(frames) = statline::split_datagram(&buf[..n]) else {
                self.udp_bad.set(self.udp_bad.get() + 1);
                continue;
            };
            let rec = self.ingest.udp_meta(|| from.to_string(), now);
            rec.borrow_mut().last_seen = now;
            for frame in frames {
                let flow = self
                    .ingest
                    .frame(frame, now, source, &mut parsed, &mut router, &rec);
                if flow == ControlFlow::Break(()) {
                    self.core.lb.borrow_mut().incr(Loopback::BlacklistCount);
                }
            }
            self.ingest.dispatch(&mut router).await;
        }
    }

    /// One Graphite line as the stat line to record (in `buf`), or `None` when there is
    /// nothing to record (refusals are counted and logged here).
    fn graphite_line<'b>(
        &self,
        l: &[u8],
        now: i64,
        buf: &'b mut Vec<u8>,
        peer: &dyn std::fmt::Display,
    ) -> Option<Frame<'b>> {
        match graphite::translate(l, now, buf) {
            Ok(GraphiteLine::Sample) => {
                self.lines.set(self.lines.get() + 1);
                Some(Frame::Line(buf))
            }
            Ok(GraphiteLine::Skip) => None,
            Err(why) => {
                self.lines.set(self.lines.get() + 1);
                self.refused(Some((why, l)), peer);
                None
            }
        }
    }

    /// Count a refused Graphite line; log one per [`BAD_LOG_EVERY`] (no log spam per line).
    /// `peer` is formatted only when a line is logged: a datagram's sender is not turned
    /// into a String per datagram.
    fn refused(&self, what: Option<(GraphiteBad, &[u8])>, peer: &dyn std::fmt::Display) {
        self.bad.set(self.bad.get() + 1);
        let due = self
            .bad_logged
            .get()
            .is_none_or(|t| t.elapsed() >= BAD_LOG_EVERY);
        if due {
            self.bad_logged.set(Some(std::time::Instant::now()));
            let (why, line) = what.map_or(("line too long", &[][..]), |(w, l)| (w.as_str(), l));
            let shown = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
            tracing::warn!(peer = %peer, line = %shown, total_refused = self.bad.get(), "bad graphite line: {why}");
        }
    }

    pub fn stats(&self, out: &mut Vec<(String, i64)>) {
        if self.proto == Proto::Graphite {
            for (k, v) in [
                ("istatd.graphite.lines", self.lines.get()),
                ("istatd.graphite.bad", self.bad.get()),
                ("istatd.graphite.udp.packets", self.udp_packets.get()),
                ("istatd.graphite.connections", self.active.get() as u64),
            ] {
                out.push((k.into(), v as i64));
            }
            return;
        }
        out.push((
            "istatd.statserver.udp.packets".into(),
            self.udp_packets.get() as i64,
        ));
        out.push((
            "istatd.statserver.udp.bad".into(),
            self.udp_bad.get() as i64,
        ));
    }
}
