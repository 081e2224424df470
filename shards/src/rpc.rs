//! Requests, replies and one-way events over the control mesh.
//!
//! A request to another shard runs there in a task of its own, so a receiver loop never
//! waits on a handler; its reply comes back to the pending call. Events are handled in
//! arrival order in the receiver loop itself: their handler must not wait for other
//! shards (it queues work instead), which is why it is not async. Work addressed to the
//! sending shard itself goes straight to its handler, so callers need not tell local
//! from remote.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use crate::mesh::{ConnectedReceiver, Mesh};

/// A message on the control mesh.
pub enum Ctl<Req, Rep, Ev> {
    Req { id: u64, from: usize, req: Req },
    Rep { id: u64, rep: Rep },
    Event(Ev),
}

/// A future on the current executor.
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What a shard does with the requests and events it receives.
pub trait Handler<Req, Rep, Ev> {
    fn request(self: Rc<Self>, req: Req) -> LocalBoxFuture<Rep>;
    /// Take an event; must not wait for other shards.
    fn event(&self, ev: Ev);
}

/// Where a shard's own requests and events go.
type LocalHandler<Req, Rep, Ev> = RefCell<Option<Weak<dyn Handler<Req, Rep, Ev>>>>;
/// The receiving ends of the control mesh.
pub type Receivers<Req, Rep, Ev> = Vec<(usize, ConnectedReceiver<Ctl<Req, Rep, Ev>>)>;

pub struct Rpc<Req: Send + 'static, Rep: Send + 'static, Ev: Send + 'static> {
    mesh: Mesh<Ctl<Req, Rep, Ev>>,
    pending: RefCell<HashMap<u64, LocalSender<Rep>>>,
    next_id: Cell<u64>,
    handler: LocalHandler<Req, Rep, Ev>,
}

impl<Req, Rep, Ev> Rpc<Req, Rep, Ev>
where
    Req: Send + Clone + 'static,
    Rep: Send + 'static,
    Ev: Send + 'static,
{
    pub fn new(mesh: Mesh<Ctl<Req, Rep, Ev>>) -> Self {
        Rpc {
            mesh,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            handler: RefCell::new(None),
        }
    }

    /// This shard's id.
    pub fn id(&self) -> usize {
        self.mesh.id
    }

    pub fn count(&self) -> usize {
        self.mesh.count
    }

    /// Who handles this shard's own requests and events (set once it exists).
    pub fn set_handler(&self, h: Weak<dyn Handler<Req, Rep, Ev>>) {
        *self.handler.borrow_mut() = Some(h);
    }

    fn local(&self) -> Option<Rc<dyn Handler<Req, Rep, Ev>>> {
        self.handler.borrow().as_ref().and_then(Weak::upgrade)
    }

    /// Ask shard `to` (this one included); `None` when it is stopping and did not answer.
    pub async fn call(&self, to: usize, req: Req) -> Option<Rep> {
        if to == self.mesh.id {
            return Some(self.local()?.request(req).await);
        }
        self.send_request(to, req).await?.recv().await
    }

    /// Ask every shard; the replies that came, in shard order. The other shards work
    /// on it while this one answers its own part.
    pub async fn broadcast(&self, req: Req) -> Vec<Rep> {
        let mut waiting = Vec::with_capacity(self.mesh.count);
        for to in 0..self.mesh.count {
            if to != self.mesh.id {
                waiting.push(self.send_request(to, req.clone()).await);
            }
        }
        let mut out = Vec::with_capacity(self.mesh.count);
        let mut remote = waiting.into_iter();
        for to in 0..self.mesh.count {
            if to == self.mesh.id {
                if let Some(h) = self.local() {
                    out.push(h.request(req.clone()).await);
                }
            } else if let Some(Some(rx)) = remote.next() {
                if let Some(rep) = rx.recv().await {
                    out.push(rep);
                }
            }
        }
        out
    }

    /// Deliver an event to shard `to` (this one included), waiting while its channel
    /// is full; false when that shard is stopping.
    pub async fn event(&self, to: usize, ev: Ev) -> bool {
        if to == self.mesh.id {
            return match self.local() {
                Some(h) => {
                    h.event(ev);
                    true
                }
                None => false,
            };
        }
        self.mesh.send(to, Ctl::Event(ev)).await.is_ok()
    }

    async fn send_request(&self, to: usize, req: Req) -> Option<LocalReceiver<Rep>> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, tx);
        let msg = Ctl::Req {
            id,
            from: self.mesh.id,
            req,
        };
        if self.mesh.send(to, msg).await.is_err() {
            self.pending.borrow_mut().remove(&id);
            return None;
        }
        Some(rx)
    }

    /// Serve the control mesh: one loop per peer, for as long as the peers send.
    pub fn serve(self: &Rc<Self>, receivers: Receivers<Req, Rep, Ev>) {
        for (_, rx) in receivers {
            let rpc = self.clone();
            glommio::spawn_local(async move {
                while let Some(msg) = rx.recv().await {
                    match msg {
                        Ctl::Rep { id, rep } => {
                            let tx = rpc.pending.borrow_mut().remove(&id);
                            if let Some(tx) = tx {
                                let _ = tx.try_send(rep);
                            }
                        }
                        Ctl::Event(ev) => {
                            if let Some(h) = rpc.local() {
                                h.event(ev);
                            }
                        }
                        Ctl::Req { id, from, req } => {
                            let Some(h) = rpc.local() else { continue };
                            let rpc = rpc.clone();
                            glommio::spawn_local(async move {
                                let rep = h.request(req).await;
                                let _ = rpc.mesh.send(from, Ctl::Rep { id, rep }).await;
                            })
                            .detach();
                        }
                    }
                }
            })
            .detach();
        }
    }

    /// Close this shard's sending ends of the control mesh.
    pub fn close(&self) {
        self.mesh.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{spawn, ShardSpec};

    struct Echo {
        id: usize,
        events: RefCell<Vec<u32>>,
    }

    impl Handler<u32, (usize, u32), u32> for Echo {
        fn request(self: Rc<Self>, req: u32) -> LocalBoxFuture<(usize, u32)> {
            Box::pin(async move { (self.id, req * 2) })
        }
        fn event(&self, ev: u32) {
            self.events.borrow_mut().push(ev);
        }
    }

    #[test]
    fn calls_broadcasts_and_events_reach_every_shard() {
        let handles = spawn::<(), Ctl<u32, (usize, u32), u32>, Vec<u32>, _, _>(
            &ShardSpec::new(3),
            |ctx| async move {
                let id = ctx.id;
                let (_data, mut ctl) = ctx.join().await.unwrap();
                let rx = ctl.take_receivers();
                let rpc = Rc::new(Rpc::new(ctl));
                let echo = Rc::new(Echo {
                    id,
                    events: RefCell::new(Vec::new()),
                });
                let h: Rc<dyn Handler<u32, (usize, u32), u32>> = echo.clone();
                rpc.set_handler(Rc::downgrade(&h));
                rpc.serve(rx);
                assert_eq!(rpc.call(id, 5).await, Some((id, 10)), "local call");
                assert_eq!(rpc.call((id + 1) % 3, 7).await, Some(((id + 1) % 3, 14)));
                let all = rpc.broadcast(1).await;
                assert_eq!(all, vec![(0, 2), (1, 2), (2, 2)]);
                for to in 0..3 {
                    assert!(rpc.event(to, id as u32).await);
                }
                // Every shard gets one event from each shard.
                while echo.events.borrow().len() < 3 {
                    glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                }
                // Let the peers finish their calls before the meshes close.
                glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
                let mut got = echo.events.borrow().clone();
                got.sort();
                drop(h);
                got
            },
        )
        .unwrap();
        for h in handles {
            assert_eq!(h.join().unwrap(), vec![0, 1, 2]);
        }
    }
}
