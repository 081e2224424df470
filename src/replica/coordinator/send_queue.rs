//! Bytes waiting for a replication socket, and the writer task that puts them on it.
//!
//! Frames an owning shard queued are remembered with their origin, so that when they
//! leave the queue the writer can give the shard that much room back (its send window,
//! [`ToOwner::Credit`](super::super::messages::ToOwner::Credit)): the queue never holds
//! more than the windows allow, whatever the shards do.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use futures_lite::AsyncWriteExt;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use istatd_replication::pdu::Pdu;

/// Largest single socket write.
const MAX_WRITE: usize = 64 * 1024;

pub struct SendQueue {
    /// Blocks of frames in order, each with the shard that queued it (`None`: the
    /// coordinator's own, which take no window) and how much of it has been taken.
    blocks: RefCell<VecDeque<Block>>,
    wake: LocalSender<()>,
    closed: Cell<bool>,
}

struct Block {
    origin: Option<usize>,
    bytes: Vec<u8>,
    taken: usize,
}

impl SendQueue {
    pub fn new() -> (Rc<SendQueue>, LocalReceiver<()>) {
        let (tx, rx) = local_channel::new_bounded(1);
        (
            Rc::new(SendQueue {
                blocks: RefCell::new(VecDeque::new()),
                wake: tx,
                closed: Cell::new(false),
            }),
            rx,
        )
    }

    /// Queue the coordinator's own frames.
    pub fn push(&self, frames: &[u8]) {
        self.push_from(None, frames.to_vec());
    }

    /// Queue frames of shard `shard` (`None`: the coordinator's own).
    pub fn push_from(&self, origin: Option<usize>, bytes: Vec<u8>) {
        if self.closed.get() || bytes.is_empty() {
            return;
        }
        self.blocks.borrow_mut().push_back(Block {
            origin,
            bytes,
            taken: 0,
        });
        let _ = self.wake.try_send(());
    }

    pub fn push_pdu(&self, p: &Pdu) {
        self.push_from(None, p.to_frame());
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub fn close(&self) {
        self.closed.set(true);
        let _ = self.wake.try_send(());
    }

    /// Open again for the last frame (the Error that says why the link closes).
    pub fn reopen_for_last_words(&self) {
        self.closed.set(false);
    }

    /// Take up to `max` bytes into `out`, with how many of them each shard queued.
    fn take(&self, max: usize, out: &mut Vec<u8>) -> Vec<(usize, usize)> {
        let mut credits: Vec<(usize, usize)> = Vec::new();
        let mut blocks = self.blocks.borrow_mut();
        while out.len() < max {
            let Some(b) = blocks.front_mut() else { break };
            let k = (b.bytes.len() - b.taken).min(max - out.len());
            out.extend_from_slice(&b.bytes[b.taken..b.taken + k]);
            b.taken += k;
            if let Some(s) = b.origin {
                match credits.iter_mut().find(|(x, _)| *x == s) {
                    Some(c) => c.1 += k,
                    None => credits.push((s, k)),
                }
            }
            if b.taken == b.bytes.len() {
                blocks.pop_front();
            }
        }
        credits
    }
}

/// Write a send queue to a socket in writes of at most 64 KiB until it is closed and
/// empty (or the socket fails). After each write, `written(bytes, credits)` says what
/// left and whose frames they were.
pub async fn writer<W, F, Fut>(q: Rc<SendQueue>, wake: LocalReceiver<()>, mut w: W, written: F)
where
    W: futures_lite::AsyncWrite + Unpin,
    F: Fn(usize, Vec<(usize, usize)>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut chunk = Vec::with_capacity(MAX_WRITE);
    loop {
        chunk.clear();
        let credits = q.take(MAX_WRITE, &mut chunk);
        if chunk.is_empty() {
            if q.closed.get() {
                break;
            }
            if wake.recv().await.is_none() {
                break;
            }
            continue;
        }
        if w.write_all(&chunk).await.is_err() {
            q.closed.set(true);
            break;
        }
        written(chunk.len(), credits).await;
    }
    let _ = w.flush().await;
    let _ = w.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_follow_the_origin_of_the_bytes() {
        glommio::LocalExecutor::default().run(async {
            let (q, _wake) = SendQueue::new();
            q.push_from(Some(1), vec![1; 10]);
            q.push(&[0; 5]);
            q.push_from(Some(2), vec![2; 7]);
            q.push_from(Some(1), vec![1; 3]);
            let mut out = Vec::new();
            assert_eq!(q.take(12, &mut out), vec![(1, 10)]);
            assert_eq!(out.len(), 12);
            out.clear();
            assert_eq!(q.take(100, &mut out), vec![(2, 7), (1, 3)]);
            assert_eq!(
                out,
                [&[0u8; 3][..], &[2; 7], &[1; 3]].concat(),
                "the rest of the coordinator's 5 bytes first"
            );
            assert!(q.blocks.borrow().is_empty());
        });
    }
}
