//! One end of a replication connection as both sessions (the master's per slave, the
//! slave's to its master) drive it: the reading half with its frame decoder and idle
//! timer, and the send queue with its writer task.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::AsyncReadExt;
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::TcpStream;
use istatd_replication::link::Heartbeat;
use istatd_replication::pdu::{FrameDecoder, Pdu, ProtocolError};
use istatd_shards::Shutdown;

use super::send_queue::SendQueue;
use crate::clock;

/// Why a read brought nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The peer closed the connection or the socket failed.
    Closed,
    /// The daemon is shutting down.
    Shutdown,
    /// The send queue was closed (its writer failed, or newest-wins closed it).
    QueueClosed,
    /// No byte for the limit.
    Timeout,
    /// The caller's periodic check asked to stop.
    Stopped,
}

pub struct LinkIo {
    rd: ReadHalf<TcpStream>,
    pub q: Rc<SendQueue>,
    writer: glommio::Task<()>,
    pub hb: Heartbeat,
    dec: FrameDecoder,
    buf: Vec<u8>,
    shutdown: Shutdown,
}

impl LinkIo {
    /// Split the stream and start its writer (`spawn_writer` gets the queue, its
    /// wake-up and the writing half).
    pub fn new(
        stream: TcpStream,
        keepalive: i64,
        timeout: i64,
        shutdown: Shutdown,
        spawn_writer: impl FnOnce(
            Rc<SendQueue>,
            LocalReceiver<()>,
            WriteHalf<TcpStream>,
        ) -> glommio::Task<()>,
    ) -> LinkIo {
        let _ = stream.set_nodelay(true);
        if let Err(e) = set_keepalive(&stream) {
            tracing::debug!(error = %e, "replication: cannot set SO_KEEPALIVE");
        }
        let (rd, wr): (ReadHalf<TcpStream>, WriteHalf<TcpStream>) = futures_lite::io::split(stream);
        let (q, wake) = SendQueue::new();
        let writer = spawn_writer(q.clone(), wake, wr);
        LinkIo {
            rd,
            q,
            writer,
            hb: Heartbeat::new(clock::monotonic_secs(), keepalive, timeout),
            dec: FrameDecoder::new(),
            buf: vec![0u8; 64 * 1024],
            shutdown,
        }
    }

    /// The link's negotiated version (which PDU ids the decoder knows).
    pub fn set_version(&mut self, version: u32) {
        self.dec.set_version(version);
    }

    /// Wait for bytes, at most `limit` seconds of silence; every 50 ms meanwhile
    /// `tick` runs (it may ping through the heartbeat and the queue) and may ask to
    /// stop. The bytes read are decoded into `out`: `Ok(Err(e))` is a protocol error
    /// after the PDUs before it.
    pub async fn read(
        &mut self,
        limit: i64,
        out: &mut Vec<Pdu>,
        mut tick: impl FnMut(&mut Heartbeat, &SendQueue) -> bool,
    ) -> Result<(usize, Result<(), ProtocolError>), ReadEnd> {
        let LinkIo {
            rd,
            q,
            hb,
            buf,
            shutdown,
            ..
        } = self;
        let read = futures_lite::future::or(async { Ok(rd.read(buf).await) }, async {
            loop {
                glommio::timer::sleep(Duration::from_millis(50)).await;
                if shutdown.is_requested() {
                    return Err(ReadEnd::Shutdown);
                }
                if q.is_closed() {
                    return Err(ReadEnd::QueueClosed);
                }
                if tick(hb, q) {
                    return Err(ReadEnd::Stopped);
                }
                if hb.idle_for(clock::monotonic_secs()) >= limit {
                    return Err(ReadEnd::Timeout);
                }
            }
        })
        .await?;
        let n = match read {
            Ok(0) | Err(_) => return Err(ReadEnd::Closed),
            Ok(n) => n,
        };
        self.hb.received(clock::monotonic_secs());
        out.clear();
        let res = self.dec.feed(&self.buf[..n], out).map(|_| ());
        Ok((n, res))
    }

    /// Send the Error of `reason` (if any) as the last frame, close the queue, and give
    /// the writer 2 s to put it on the wire.
    pub async fn finish(self, reason: Option<&str>) {
        if let Some(text) = reason {
            self.q.reopen_for_last_words();
            self.q.push_pdu(&Pdu::error(text));
        }
        self.q.close();
        let _ = futures_lite::future::or(self.writer, async {
            glommio::timer::sleep(Duration::from_secs(2)).await;
        })
        .await;
    }
}

/// SO_KEEPALIVE with idle 30 s, interval 10 s, count 3 (docs/replication-protocol.md,
/// "Liveness and resume"): with the idle timer, it finds a dead peer whose socket would
/// otherwise look open.
fn set_keepalive(stream: &TcpStream) -> nix::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    use std::os::fd::{AsRawFd, BorrowedFd};
    // SAFETY: the descriptor belongs to `stream`, which outlives this call.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    setsockopt(&fd, sockopt::KeepAlive, &true)?;
    setsockopt(&fd, sockopt::TcpKeepIdle, &30)?;
    setsockopt(&fd, sockopt::TcpKeepInterval, &10)?;
    setsockopt(&fd, sockopt::TcpKeepCount, &3)
}
