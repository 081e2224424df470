//! How forwarding runs on every shard: each `--agent-interval` a shard hands its
//! bucketed lines to shard 0, which queues them on a connection; meta lines go to every
//! connection at once; the admin `flush` forwards everything now and waits until it is
//! written.

use std::rc::Rc;
use std::time::Duration;

use super::bucketizer::AgentShard;
use super::links::AgentLinks;
use crate::daemon::{Event, Rep, Req, ShardCore};

pub struct AgentForwarder {
    core: Rc<ShardCore>,
    pub shard: Rc<AgentShard>,
    /// Shard 0: the forward connections.
    pub links: Option<Rc<AgentLinks>>,
}

impl AgentForwarder {
    pub fn new(
        core: Rc<ShardCore>,
        shard: Rc<AgentShard>,
        links: Option<Rc<AgentLinks>>,
    ) -> AgentForwarder {
        AgentForwarder { core, shard, links }
    }

    /// Forward this shard's bucketizers every `--agent-interval` seconds.
    pub async fn flush_loop(&self) {
        let every = Duration::from_secs(self.core.cfg.agent.interval_secs.max(1));
        loop {
            glommio::timer::sleep(every).await;
            if self.core.shutdown.is_requested() {
                return;
            }
            if let Some(links) = &self.links {
                // Once per interval, on shard 0: connections that are down miss one.
                links.note_flush();
            }
            self.flush_now().await;
        }
    }

    /// Meta lines received by this shard go to every connection at once.
    pub async fn send_meta(&self) {
        let meta = std::mem::take(&mut *self.shard.meta.borrow_mut());
        if meta.is_empty() {
            return;
        }
        self.to_links(meta, 0, true).await;
    }

    /// Hand this shard's lines to shard 0 (which queues them on a connection).
    pub async fn flush_now(&self) {
        let (text, n) = self.shard.take_lines();
        if n > 0 {
            self.to_links(text.into_bytes(), n, false).await;
        }
    }

    async fn to_links(&self, text: Vec<u8>, lines: u64, meta: bool) {
        let ev = Event::AgentLines { text, lines, meta };
        self.core.send_event(0, ev).await;
    }

    /// Shard 0, admin `flush` in agent mode: every shard's lines now, and wait until
    /// what they gave is written (possibly until a reconnect).
    pub async fn admin_flush(&self) {
        let Some(links) = &self.links else {
            return;
        };
        links.note_flush();
        for rep in self.core.rpc.broadcast(Req::AgentFlush).await {
            if let Rep::AgentLines(text, n) = rep {
                links.send_batch(&text, n);
            }
        }
        let end = std::time::Instant::now() + Duration::from_secs(600);
        while links.pending() && std::time::Instant::now() < end {
            if self.core.shutdown.is_requested() {
                return;
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }
}
