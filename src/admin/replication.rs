//! The `replication.*` admin commands (docs/replication-protocol.md, "Operator commands",
//! "Operator command rules"): status, suspend and resume, promote, of (fail back or
//! re-point), resync and scrub. They change the coordinator's control state, write the
//! store's markers, and tell the shards.

use std::rc::Rc;
use std::time::Duration;

use super::{ReplicationCommand, ReplicationRole, ResyncTarget, ScrubAction, OK};
use crate::clock;
use crate::daemon::{Event, Rep, Req, Shard};
use crate::replica::control::{host_port_text, replace_marker, Marker, OF_MARKER, PROMOTED_MARKER};
use crate::replica::coordinator::{status, Coordinator};
use crate::replica::messages::ToOwner;

const NOT_REPLICA: &str = "huh? not a replica\r\n";

/// A `replication.*` command (shard 0); the whole reply.
pub async fn run(shard: &Rc<Shard>, cmd: ReplicationCommand) -> String {
    let Some(c) = shard.coordinator.clone() else {
        return "huh? replication needs a store\r\n".into();
    };
    match cmd {
        ReplicationCommand::Status => {
            let (_, extras) = crate::metrics::gather::gather(&shard.core).await;
            let mut out = status::status_lines(&c, &shard.core.cfg.repl, &extras);
            out.push_str(OK);
            out
        }
        ReplicationCommand::Suspend(role) => suspend_resume(shard, &c, role, true).await,
        ReplicationCommand::Resume(role) => suspend_resume(shard, &c, role, false).await,
        ReplicationCommand::Promote => promote(shard, &c).await,
        ReplicationCommand::Of { address, from } => of(shard, &c, &address, from).await,
        ReplicationCommand::Resync { target, from } => resync(shard, &c, target, from).await,
        ReplicationCommand::Scrub(action) => scrub(shard, &c, action).await,
    }
}

async fn to_every_shard(shard: &Shard, m: impl Fn() -> ToOwner) {
    for to in 0..shard.core.count {
        shard.core.send_event(to, Event::ToOwner(m())).await;
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(f).await
}

/// `replication.promote`: the slave stops pulling, writes `.replication_promoted`,
/// opens its stat port.
async fn promote(shard: &Rc<Shard>, c: &Coordinator) -> String {
    let Some(former) = c.control().of else {
        return NOT_REPLICA.into();
    };
    let former_id = c.master_id_text();
    c.update_control(|c| {
        c.of = None;
        c.from = None;
        c.slave_suspended = false;
        c.epoch += 1;
        c.close_reason = Some("Replica promoted");
    });
    // Let what was already received be applied.
    let end = clock::monotonic_secs() + 5;
    while c.slave.inflight() > 0 && clock::monotonic_secs() < end {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    let marker = Marker {
        at: clock::now(),
        source: host_port_text(&former),
        extra: former_id,
    };
    if let Some(root) = shard.core.cfg.store.clone() {
        let text = marker.render("master_id");
        let r = blocking(move || replace_marker(&root, PROMOTED_MARKER, &text, OF_MARKER)).await;
        if let Err(e) = r {
            tracing::error!(error = %e, "cannot write the promotion marker");
            return format!("huh? cannot write {PROMOTED_MARKER}: {e}\r\n");
        }
    }
    c.update_control(|c| {
        c.promoted = Some(marker.clone());
        c.of_marker = None;
    });
    to_every_shard(shard, || ToOwner::ReplicaMode(false)).await;
    tracing::warn!(former_master = %marker.source, "promoted to master");
    let mut out = String::new();
    let cfg = &shard.core.cfg;
    if cfg.stat_port != 0 || cfg.graphite_port != 0 {
        let epoch = c.next_stat_epoch();
        for rep in shard.core.rpc.broadcast(Req::OpenStat(epoch)).await {
            if let Rep::Failed(e) = rep {
                out = format!("warning: stat port {}: {e}\r\n", cfg.stat_port);
            }
        }
    }
    out.push_str(OK);
    out
}

/// `replication.of HOST:PORT[,from=T]`: fail back or re-point; the stat port closes.
async fn of(shard: &Rc<Shard>, c: &Coordinator, address: &str, from: Option<u32>) -> String {
    let hp = match crate::options::parse_host_port(address) {
        Ok(hp) => hp,
        Err(_) => return "huh? bad address\r\n".into(),
    };
    let from = from.map(i64::from);
    let ctl = c.control();
    if ctl.of.as_ref() == Some(&hp) {
        if ctl.from != from {
            c.update_control(|c| c.from = from);
            write_of_marker(shard, c, &hp, from).await;
            to_every_shard(shard, || ToOwner::SetResume(from)).await;
        }
        return OK.into();
    }
    // Stop taking samples: the stat port closes (agents fail over).
    if !ctl.acting_slave() {
        let epoch = c.next_stat_epoch();
        shard.core.rpc.broadcast(Req::CloseStat(epoch)).await;
    }
    if let Some(e) = write_of_marker(shard, c, &hp, from).await {
        return e;
    }
    to_every_shard(shard, || ToOwner::ReplicaMode(true)).await;
    to_every_shard(shard, || ToOwner::SetResume(from)).await;
    c.update_control(|c| {
        c.of = Some(hp.clone());
        c.from = from;
        c.slave_suspended = false;
        c.promoted = None;
        c.epoch += 1;
        c.close_reason = Some("Shutting down");
    });
    tracing::warn!(master = %host_port_text(&hp), "now a slave");
    c.slave.ensure_running();
    OK.into()
}

async fn resync(
    shard: &Rc<Shard>,
    c: &Coordinator,
    target: ResyncTarget,
    from: Option<u32>,
) -> String {
    if !c.acting_slave() {
        return NOT_REPLICA.into();
    }
    let from = from.map(i64::from);
    match target {
        ResyncTarget::All => {
            // On the next link every subscription uses T (runtime only, that link).
            to_every_shard(shard, || ToOwner::ResyncNextLink(from)).await;
            c.update_control(|c| {
                c.epoch += 1;
                c.close_reason = Some("Resync requested");
            });
            OK.into()
        }
        ResyncTarget::Path(p) => {
            let owner = crate::replica::owner_of(p.as_bytes(), shard.core.count);
            match shard.core.rpc.call(owner, Req::Resync(p, from)).await {
                Some(Rep::Done) => OK.into(),
                Some(Rep::Failed(e)) => format!("huh? {e}\r\n"),
                _ => "huh? unknown file\r\n".into(),
            }
        }
    }
}

/// `replication.scrub [start|stop]`: on a slave with `--replica-scrub-rate`, start a
/// pass over every file now or stop the running one (automatic passes stay off until
/// the next start); always the scrub's status lines.
async fn scrub(shard: &Rc<Shard>, c: &Coordinator, action: ScrubAction) -> String {
    if action != ScrubAction::Show {
        if !c.acting_slave() {
            return NOT_REPLICA.into();
        }
        if shard.core.cfg.repl.scrub_rate == 0 {
            return "huh? the scrub is off (--replica-scrub-rate 0)\r\n".into();
        }
        shard
            .core
            .rpc
            .broadcast(Req::Scrub(action == ScrubAction::Start))
            .await;
    }
    let (_, extras) = crate::metrics::gather::gather(&shard.core).await;
    let mut out = status::scrub_lines(c, &shard.core.cfg.repl, &extras);
    out.push_str(OK);
    out
}

/// `replication.suspend|resume [master|slave]`: idempotent; without a role, every
/// role this node has.
async fn suspend_resume(
    shard: &Rc<Shard>,
    c: &Coordinator,
    role: Option<ReplicationRole>,
    suspend: bool,
) -> String {
    let is_master = shard.core.cfg.repl.port != 0;
    let is_slave = c.acting_slave();
    let (master, slave) = match role {
        Some(ReplicationRole::Master) if !is_master => return "huh? not a master\r\n".into(),
        Some(ReplicationRole::Slave) if !is_slave => return NOT_REPLICA.into(),
        Some(ReplicationRole::Master) => (true, false),
        Some(ReplicationRole::Slave) => (false, true),
        None if !is_master && !is_slave => return NOT_REPLICA.into(),
        None => (is_master, is_slave),
    };
    c.update_control(|c| {
        if master {
            c.master_suspended = suspend;
        }
        if slave && c.slave_suspended != suspend {
            c.slave_suspended = suspend;
            c.epoch += 1;
            c.close_reason = Some("Replication suspended");
        }
    });
    if master {
        to_every_shard(shard, || ToOwner::MasterSuspended(suspend)).await;
    }
    tracing::info!(
        master,
        slave,
        suspend,
        "replication {}",
        if suspend { "suspended" } else { "resumed" }
    );
    OK.into()
}

/// Write `.replication_of` (and remove `.replication_promoted`); an error reply when
/// it cannot be written.
async fn write_of_marker(
    shard: &Shard,
    c: &Coordinator,
    hp: &(String, u16),
    from: Option<i64>,
) -> Option<String> {
    let root = shard.core.cfg.store.clone()?;
    let marker = Marker {
        at: clock::now(),
        source: host_port_text(hp),
        extra: from.map(|f| f.to_string()).unwrap_or_default(),
    };
    let text = marker.render("from");
    let r = blocking(move || replace_marker(&root, OF_MARKER, &text, PROMOTED_MARKER)).await;
    match r {
        Ok(()) => {
            c.update_control(|c| c.of_marker = Some(marker));
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot write the replication.of marker");
            Some(format!("huh? cannot write {OF_MARKER}: {e}\r\n"))
        }
    }
}
