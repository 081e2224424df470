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
    buf: RefCell<VecDeque<u8>>,
    /// Runs of queued bytes by the shard whose frames they are (`None`: the
    /// coordinator's own, which take no window).
    origin: RefCell<VecDeque<(Option<usize>, usize)>>,
    wake: LocalSender<()>,
    closed: Cell<bool>,
}

impl SendQueue {
    pub fn new() -> (Rc<SendQueue>, LocalReceiver<()>) {
        let (tx, rx) = local_channel::new_bounded(1);
        (
            Rc::new(SendQueue {
                buf: RefCell::new(VecDeque::new()),
                origin: RefCell::new(VecDeque::new()),
                wake: tx,
                closed: Cell::new(false),
            }),
            rx,
        )
    }

    /// Queue the coordinator's own frames.
    pub fn push(&self, frames: &[u8]) {
        self.push_from(None, frames);
    }

    /// Queue frames of shard `shard` (`None`: the coordinator's own).
    pub fn push_from(&self, shard: Option<usize>, frames: &[u8]) {
        if self.closed.get() || frames.is_empty() {
            return;
        }
        self.buf.borrow_mut().extend(frames);
        let mut o = self.origin.borrow_mut();
        match o.back_mut() {
            Some((s, n)) if *s == shard => *n += frames.len(),
            _ => o.push_back((shard, frames.len())),
        }
        let _ = self.wake.try_send(());
    }

    pub fn push_pdu(&self, p: &Pdu) {
        self.push(&p.to_frame());
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

    /// Take up to `max` bytes, with how many of them each shard queued.
    fn take(&self, max: usize, out: &mut Vec<u8>) -> Vec<(usize, usize)> {
        let mut b = self.buf.borrow_mut();
        let n = b.len().min(max);
        out.extend(b.drain(..n));
        let mut credits: Vec<(usize, usize)> = Vec::new();
        let mut left = n;
        let mut o = self.origin.borrow_mut();
        while left > 0 {
            let Some((shard, run)) = o.front_mut() else {
                break;
            };
            let k = (*run).min(left);
            if let Some(s) = *shard {
                match credits.iter_mut().find(|(x, _)| *x == s) {
                    Some(c) => c.1 += k,
                    None => credits.push((s, k)),
                }
            }
            *run -= k;
            left -= k;
            if *run == 0 {
                o.pop_front();
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
            q.push_from(Some(1), &[1; 10]);
            q.push(&[0; 5]);
            q.push_from(Some(2), &[2; 7]);
            q.push_from(Some(1), &[1; 3]);
            let mut out = Vec::new();
            assert_eq!(q.take(12, &mut out), vec![(1, 10)]);
            assert_eq!(out.len(), 12);
            out.clear();
            assert_eq!(q.take(100, &mut out), vec![(2, 7), (1, 3)]);
            assert_eq!(out.len(), 13);
            assert!(q.buf.borrow().is_empty());
        });
    }
}
