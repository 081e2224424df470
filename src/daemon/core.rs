//! What every part of a shard shares: its identity, the configuration, its slice of
//! the store, its ends of the meshes, the shutdown handle and its share of the
//! reference's internal counters. One per shard, owned by that shard's thread.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use istatd_shards::rpc::{Ctl, Rpc};
use istatd_shards::{Mesh, Shutdown};
use istatd_storage::store::Store;

use super::config::ServerConfig;
use super::messages::{DataMsg, Event, Rep, Req};
use crate::metrics::loopback::LoopbackCounters;

pub type ShardRpc = Rpc<Req, Rep, Event>;
pub type CtlMsg = Ctl<Req, Rep, Event>;

pub struct ShardCore {
    pub id: usize,
    pub count: usize,
    pub cfg: Arc<ServerConfig>,
    /// This shard's counters' files (`None`: an agent keeps no store).
    pub store: Option<Store>,
    pub rpc: Rc<ShardRpc>,
    pub data: Mesh<DataMsg>,
    pub shutdown: Shutdown,
    /// The reference's internal counters, this shard's share.
    pub lb: RefCell<LoopbackCounters>,
}

impl ShardCore {
    /// An agent without a store: samples are forwarded, never recorded.
    pub fn store_less(&self) -> bool {
        self.cfg.store.is_none()
    }

    /// Send an event to shard `to` (this one included); a stopping shard's events are
    /// dropped.
    pub async fn send_event(&self, to: usize, ev: Event) {
        if !self.rpc.event(to, ev).await {
            tracing::debug!(to, "event to a stopped shard dropped");
        }
    }

    pub fn retention_names(&self) -> Vec<String> {
        self.cfg.retentions.iter().map(|r| r.name.clone()).collect()
    }
}
