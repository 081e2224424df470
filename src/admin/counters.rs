//! `flush`, `delete.ctr`, `delete.pattern` and `purge`: commands that act on every
//! shard's counters or connections.

use std::rc::Rc;

use super::{echo_line, AdminReply, OK};
use crate::daemon::{Req, Shard};

/// `flush`: record the internal counters, forward an agent's buffers and wait for
/// them, flush every counter of every shard, save the settings.
pub async fn flush(shard: &Rc<Shard>) -> String {
    if let Some(r) = &shard.recording {
        r.record_loopback().await;
    }
    if let Some(a) = &shard.agent {
        a.admin_flush().await;
    }
    shard.core.rpc.broadcast(Req::Flush { force: true }).await;
    if let Some(settings) = &shard.settings {
        settings.flush_all().await;
    }
    OK.to_string()
}

/// `delete.ctr a[,b...]`: each name echoed, munged, deleted on its owner.
pub async fn delete_ctr(shard: &Rc<Shard>, names: Vec<String>) -> String {
    if shard.core.store_less() {
        return AdminReply::no_store("delete.ctr").render();
    }
    let mut out = String::new();
    for name in names {
        out.push_str(&echo_line(&name));
        let key = crate::statline::munge(name.as_bytes());
        let owner = istatd_shards::shard_of(key.as_bytes(), shard.core.count);
        shard.core.rpc.call(owner, Req::Delete(vec![key])).await;
    }
    out.push_str(OK);
    out
}

/// `delete.pattern p[,q...]`: every counter matching, on every shard.
pub async fn delete_pattern(shard: &Rc<Shard>, patterns: Vec<String>) -> String {
    if shard.core.store_less() {
        return AdminReply::no_store("delete.pattern").render();
    }
    let mut out = String::new();
    for p in &patterns {
        out.push_str(&echo_line(p));
    }
    shard.core.rpc.broadcast(Req::DeletePattern(patterns)).await;
    out.push_str(OK);
    out
}

/// `purge maxOld,maxAge`: offline connection records on every shard.
pub async fn purge(shard: &Rc<Shard>, max_old: u64, max_age: i64) -> String {
    shard
        .core
        .rpc
        .broadcast(Req::Purge { max_old, max_age })
        .await;
    OK.to_string()
}
