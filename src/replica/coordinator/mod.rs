//! The coordinator: shard 0's part of replication. It owns every connection (the
//! master's sessions per slave, the slave's link to its master), the operator's
//! control state, the link-level counters and the late-marks book; the owning shards
//! reach it only through [`ToCoordinator`] messages.

pub mod link_io;
pub mod master_sessions;
pub mod send_queue;
pub mod slave_link;
pub mod status;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;
use istatd_replication::pdu::UniqueId;

use super::control::Control;
use super::late::{self, LateBook, LATE_CHECKPOINT_SECS};
use super::messages::ToCoordinator;
use super::ReplStart;
use crate::daemon::ShardCore;
use master_sessions::MasterSessions;
use slave_link::SlaveLink;

/// Link-level counters (docs/replication-protocol.md, "Metrics").
#[derive(Debug, Default, Clone)]
pub struct LinkCounters {
    pub m_accepted: u64,
    pub m_handshakes: u64,
    pub m_rejected_version: u64,
    pub m_rejected_self: u64,
    pub m_rejected_cycle: u64,
    pub m_rejected_too_many: u64,
    pub m_protocol_errors: u64,
    pub m_errors_received: u64,
    pub m_timeouts: u64,
    pub m_pings: u64,
    pub m_bytes_sent: u64,
    pub m_bytes_received: u64,
    pub s_connect_attempts: u64,
    pub s_connect_failures: u64,
    pub s_handshake_failures: u64,
    pub s_disconnects: u64,
    pub s_master_changes: u64,
    pub s_protocol_errors: u64,
    pub s_errors_received: u64,
    pub s_timeouts: u64,
    pub s_pings_sent: u64,
    pub s_bytes_sent: u64,
    pub s_bytes_received: u64,
    pub s_backoff_seconds: u64,
    pub s_state: &'static str,
    pub s_master_id: String,
    /// Since when the slave link has been down (None while connected).
    pub s_down_since: Option<std::time::Instant>,
}

pub struct Coordinator {
    core: Rc<ShardCore>,
    pub id: UniqueId,
    control: Rc<RefCell<Control>>,
    pub counters: Rc<RefCell<LinkCounters>>,
    pub master: Rc<MasterSessions>,
    pub slave: Rc<SlaveLink>,
    late: RefCell<LateBook>,
    /// The stat port's generation: listeners and connections of an older one end.
    stat_epoch: Cell<u64>,
}

impl Coordinator {
    pub fn new(core: Rc<ShardCore>, start: &ReplStart) -> Rc<Coordinator> {
        let control = Rc::new(RefCell::new(start.control.clone()));
        let counters = Rc::new(RefCell::new(LinkCounters {
            s_state: "disabled",
            ..Default::default()
        }));
        Rc::new(Coordinator {
            master: Rc::new(MasterSessions::new(
                core.clone(),
                start.id,
                counters.clone(),
            )),
            slave: Rc::new(SlaveLink::new(
                core.clone(),
                start.id,
                control.clone(),
                counters.clone(),
            )),
            core,
            id: start.id,
            control,
            counters,
            late: RefCell::new(LateBook::new(&start.late)),
            stat_epoch: Cell::new(1),
        })
    }

    /// The replica listener's accept loop, the slave link (when a slave), progress
    /// lines and late-mark checkpoints.
    pub fn start(self: &Rc<Self>, listener: Option<TcpListener>) {
        if let Some(l) = listener {
            let master = self.master.clone();
            glommio::spawn_local(async move { master.accept_loop(l).await }).detach();
        }
        if self.acting_slave() {
            self.slave.ensure_running();
        }
        let me = self.clone();
        glommio::spawn_local(async move { status::progress_loop(me).await }).detach();
        if self.core.cfg.repl.port != 0 {
            let me = self.clone();
            glommio::spawn_local(async move {
                let every = Duration::from_secs(LATE_CHECKPOINT_SECS as u64);
                while !me.core.shutdown.sleep(every).await {
                    let due = me.late.borrow_mut().take_checkpoint();
                    if let Some((root, marks)) = due {
                        late::write_checkpoint(root, marks).await;
                    }
                }
            })
            .detach();
        }
    }

    /// A message from an owning shard (never waits).
    pub fn event(&self, m: ToCoordinator) {
        match m {
            ToCoordinator::MasterOut {
                conn,
                shard,
                frames,
                answered,
            } => self.master.out(conn, shard, frames, answered),
            ToCoordinator::SlaveOut {
                gen,
                frames,
                applied,
            } => self.slave.out(gen, frames, applied),
            ToCoordinator::SlaveFatal { gen, text } => self.slave.fatal(gen, text),
            ToCoordinator::LateMarks { shard, marks } => {
                self.late.borrow_mut().publish(shard, marks)
            }
        }
    }

    pub fn control(&self) -> Control {
        self.control.borrow().clone()
    }

    pub fn update_control<R>(&self, f: impl FnOnce(&mut Control) -> R) -> R {
        f(&mut self.control.borrow_mut())
    }

    /// Whether this node is a slave now (its store written only by replication).
    pub fn acting_slave(&self) -> bool {
        self.control.borrow().acting_slave()
    }

    pub fn unclean_starts(&self) -> u64 {
        self.late.borrow().unclean_starts()
    }

    /// The id of the master of the last handshake (empty when none).
    pub fn master_id_text(&self) -> String {
        self.counters.borrow().s_master_id.clone()
    }

    pub fn stat_epoch(&self) -> u64 {
        self.stat_epoch.get()
    }

    /// A new generation of the stat port (its listeners of older ones end).
    pub fn next_stat_epoch(&self) -> u64 {
        self.stat_epoch.set(self.stat_epoch.get() + 1);
        self.stat_epoch.get()
    }
}
