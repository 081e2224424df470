//! Operator control of replication (replication.md §2.14): the roles a node plays now
//! (suspended or not, slave of whom, promoted), the store-root markers that make a
//! promotion or a `replication.of` survive a restart, and the `replication.*` admin
//! commands that change them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::admin::{ReplicationCommand, ReplicationRole, ResyncTarget, ScrubAction, OK};

use super::replica::{self, ReplConfig, ReplMsg};
use super::{clock, Rep, Req, Shard};

pub const PROMOTED_MARKER: &str = ".replication_promoted";
pub const OF_MARKER: &str = ".replication_of";

/// What a marker file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marker {
    pub at: i64,
    /// `host:port` of the master (of) or of the former master (promoted).
    pub source: String,
    /// Resume time R (of), or the former master's id (promoted).
    pub extra: String,
}

impl Marker {
    fn render(&self, third: &str) -> String {
        format!(
            "at={}\nsource={}\n{third}={}\n",
            self.at, self.source, self.extra
        )
    }

    fn parse(text: &str) -> Option<Marker> {
        let mut m = Marker::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("at", v)) => m.at = v.trim().parse().ok()?,
                Some(("source", v)) => m.source = v.trim().to_string(),
                Some(("from", v)) | Some(("master_id", v)) => m.extra = v.trim().to_string(),
                _ => {}
            }
        }
        Some(m)
    }
}

/// The roles this node plays now.
#[derive(Debug, Clone, Default)]
pub struct Control {
    pub master_suspended: bool,
    /// The master this node pulls from (None: not a slave).
    pub of: Option<(String, u16)>,
    /// Resume time R in force.
    pub from: Option<i64>,
    pub slave_suspended: bool,
    pub promoted: Option<Marker>,
    pub of_marker: Option<Marker>,
    /// Bumped whenever the slave link must start over; `close_reason` says why.
    pub epoch: u64,
    pub close_reason: Option<&'static str>,
}

static CONTROL: Mutex<Option<Control>> = Mutex::new(None);

/// Whether the stat port is open (a slave keeps it closed), and its generation: every
/// listener and connection of an older generation ends.
pub static STAT_OPEN: AtomicBool = AtomicBool::new(true);
pub static STAT_EPOCH: AtomicU64 = AtomicU64::new(1);

pub fn control() -> Control {
    CONTROL
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

pub fn update<R>(f: impl FnOnce(&mut Control) -> R) -> R {
    let mut g = CONTROL.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(Control::default))
}

/// Whether this node is a slave now (its store written only by replication).
pub fn acting_slave() -> bool {
    control().of.is_some()
}

/// Set the start-up roles from the options and the store's markers (before any shard
/// runs; plain file reads). A `.replication_promoted` marker wins over `--replica-of`;
/// a `.replication_of` marker overrides it. With both, the later one wins and the
/// other is removed.
pub fn init(cfg: &mut ReplConfig, store: Option<&Path>, shards: usize) {
    if let (Some(root), true) = (store, cfg.port != 0) {
        load_late(root, cfg.late_window, shards);
    }
    let mut c = Control {
        of: cfg.of.clone(),
        from: cfg.from,
        epoch: 1,
        ..Default::default()
    };
    if let Some(root) = store {
        let read = |name: &str| {
            std::fs::read_to_string(root.join(name))
                .ok()
                .and_then(|t| Marker::parse(&t))
        };
        let mut promoted = read(PROMOTED_MARKER);
        let mut of = read(OF_MARKER);
        if let (Some(p), Some(o)) = (&promoted, &of) {
            if p.at >= o.at {
                let _ = std::fs::remove_file(root.join(OF_MARKER));
                of = None;
            } else {
                let _ = std::fs::remove_file(root.join(PROMOTED_MARKER));
                promoted = None;
            }
        }
        if let Some(p) = &promoted {
            if cfg.of.is_some() {
                tracing::warn!(
                    at = p.at,
                    former_master = %p.source,
                    "this store was promoted to master: --replica-of is ignored"
                );
            }
            c.of = None;
            c.from = None;
        }
        if let Some(o) = &of {
            match crate::options::parse_host_port(&o.source) {
                Ok(hp) => {
                    if cfg.of.as_ref() != Some(&hp) {
                        tracing::warn!(
                            source = %o.source,
                            "the store's .replication_of names the master; the command line is overridden"
                        );
                    }
                    c.of = Some(hp);
                    c.from = o.extra.parse().ok();
                }
                Err(e) => tracing::error!(marker = %o.source, error = %e, "bad .replication_of"),
            }
        }
        c.promoted = promoted;
        c.of_marker = of;
    }
    cfg.of = c.of.clone();
    cfg.from = c.from;
    STAT_OPEN.store(c.of.is_none(), Ordering::SeqCst);
    *CONTROL.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
}

/// Write a marker atomically: temporary file, fsync, rename, fsync of the directory.
fn write_marker(root: &Path, name: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = root.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, root.join(name))?;
    std::fs::File::open(root)?.sync_all()
}

/// Write one marker, then remove the other (a store holds at most one, §2.14).
fn replace_marker(root: &Path, name: &str, text: &str, other: &str) -> std::io::Result<()> {
    write_marker(root, name, text)?;
    match std::fs::remove_file(root.join(other)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    glommio::executor().spawn_blocking(f).await
}

fn host_port_text((h, p): &(String, u16)) -> String {
    if h.contains(':') {
        format!("[{h}]:{p}")
    } else {
        format!("{h}:{p}")
    }
}

impl Shard {
    fn store_root(&self) -> Option<PathBuf> {
        self.cfg.store.clone()
    }

    /// A `replication.*` admin command (shard 0); the whole reply.
    pub(super) async fn replication_command(
        self: &std::rc::Rc<Self>,
        cmd: ReplicationCommand,
    ) -> String {
        let not_replica = || "huh? not a replica\r\n".to_string();
        if self.repl.is_none() {
            return "huh? replication needs a store\r\n".into();
        }
        match cmd {
            ReplicationCommand::Status => {
                let (_, extras) = self.gather_stats().await;
                let mut out = replica::status_lines(&self.cfg.repl, &control(), &extras);
                out.push_str(OK);
                out
            }
            ReplicationCommand::Suspend(role) => self.suspend_resume(role, true),
            ReplicationCommand::Resume(role) => self.suspend_resume(role, false),
            ReplicationCommand::Promote => {
                let c = control();
                let Some(former) = c.of.clone() else {
                    return not_replica();
                };
                let former_id = replica::master_id_text();
                update(|c| {
                    c.of = None;
                    c.from = None;
                    c.slave_suspended = false;
                    c.epoch += 1;
                    c.close_reason = Some("Replica promoted");
                });
                // Let what was already received be applied.
                let end = clock::monotonic_secs() + 5;
                while replica::shared().slave_inflight.load(Ordering::SeqCst) > 0
                    && clock::monotonic_secs() < end
                {
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                }
                let marker = Marker {
                    at: clock::now(),
                    source: host_port_text(&former),
                    extra: former_id,
                };
                if let Some(root) = self.store_root() {
                    let text = marker.render("master_id");
                    let r =
                        blocking(move || replace_marker(&root, PROMOTED_MARKER, &text, OF_MARKER))
                            .await;
                    if let Err(e) = r {
                        tracing::error!(error = %e, "cannot write the promotion marker");
                        return format!("huh? cannot write {PROMOTED_MARKER}: {e}\r\n");
                    }
                }
                update(|c| {
                    c.promoted = Some(marker.clone());
                    c.of_marker = None;
                });
                for to in 0..self.count {
                    self.repl_send(to, ReplMsg::ReplicaMode(false)).await;
                }
                tracing::warn!(former_master = %marker.source, "promoted to master");
                let mut out = String::new();
                if self.cfg.stat_port != 0 {
                    STAT_OPEN.store(true, Ordering::SeqCst);
                    let epoch = STAT_EPOCH.fetch_add(1, Ordering::SeqCst) + 1;
                    for rep in self.broadcast(Req::OpenStat(epoch)).await {
                        if let Rep::Failed(e) = rep {
                            out = format!("warning: stat port {}: {e}\r\n", self.cfg.stat_port);
                        }
                    }
                }
                out.push_str(OK);
                out
            }
            ReplicationCommand::Of { address, from } => {
                let hp = match crate::options::parse_host_port(&address) {
                    Ok(hp) => hp,
                    Err(_) => return "huh? bad address\r\n".into(),
                };
                let from = from.map(i64::from);
                let c = control();
                if c.of.as_ref() == Some(&hp) {
                    if c.from != from {
                        update(|c| c.from = from);
                        self.write_of_marker(&hp, from).await;
                        for to in 0..self.count {
                            self.repl_send(to, ReplMsg::SetResume(from)).await;
                        }
                    }
                    return OK.into();
                }
                // Stop taking samples: the stat port closes (agents fail over).
                if STAT_OPEN.swap(false, Ordering::SeqCst) {
                    STAT_EPOCH.fetch_add(1, Ordering::SeqCst);
                }
                if let Some(e) = self.write_of_marker(&hp, from).await {
                    return e;
                }
                for to in 0..self.count {
                    self.repl_send(to, ReplMsg::ReplicaMode(true)).await;
                    self.repl_send(to, ReplMsg::SetResume(from)).await;
                }
                update(|c| {
                    c.of = Some(hp.clone());
                    c.from = from;
                    c.slave_suspended = false;
                    c.promoted = None;
                    c.epoch += 1;
                    c.close_reason = Some("Shutting down");
                });
                tracing::warn!(master = %host_port_text(&hp), "now a slave");
                replica::ensure_slave_link(self);
                OK.into()
            }
            ReplicationCommand::Resync { target, from } => {
                if !acting_slave() {
                    return not_replica();
                }
                let from = from.map(i64::from);
                match target {
                    ResyncTarget::All => {
                        for to in 0..self.count {
                            self.repl_send(to, ReplMsg::SetResume(from.or(control().from)))
                                .await;
                        }
                        update(|c| {
                            c.epoch += 1;
                            c.close_reason = Some("Resync requested");
                        });
                        OK.into()
                    }
                    ResyncTarget::Path(p) => {
                        let key = istatd_replication::name::counter_key(&p);
                        let owner = istatd_shards::shard_of(key.as_bytes(), self.count);
                        match self.rpc(owner, Req::Resync(p, from)).await {
                            Rep::Done => OK.into(),
                            Rep::Failed(e) => format!("huh? {e}\r\n"),
                            _ => "huh? unknown file\r\n".into(),
                        }
                    }
                }
            }
            ReplicationCommand::Scrub(action) => self.scrub_command(action).await,
        }
    }

    /// `replication.scrub [start|stop]`: on a slave with `--replica-scrub-rate`, start
    /// a pass over every file now or stop the running one (automatic passes stay off
    /// until the next start); always the scrub's status lines.
    async fn scrub_command(self: &std::rc::Rc<Self>, action: ScrubAction) -> String {
        if action != ScrubAction::Show {
            if !acting_slave() {
                return "huh? not a replica\r\n".into();
            }
            if self.cfg.repl.scrub_rate == 0 {
                return "huh? the scrub is off (--replica-scrub-rate 0)\r\n".into();
            }
            self.broadcast(Req::Scrub(action == ScrubAction::Start))
                .await;
        }
        let (_, extras) = self.gather_stats().await;
        let mut out = replica::scrub_lines(&self.cfg.repl, &extras);
        out.push_str(OK);
        out
    }
}

impl Shard {
    /// `replication.suspend|resume [master|slave]`: idempotent; without a role, every
    /// role this node has.
    fn suspend_resume(&self, role: Option<ReplicationRole>, suspend: bool) -> String {
        let is_master = self.cfg.repl.port != 0;
        let is_slave = acting_slave();
        let (master, slave) = match role {
            Some(ReplicationRole::Master) if !is_master => return "huh? not a master\r\n".into(),
            Some(ReplicationRole::Slave) if !is_slave => return "huh? not a replica\r\n".into(),
            Some(ReplicationRole::Master) => (true, false),
            Some(ReplicationRole::Slave) => (false, true),
            None if !is_master && !is_slave => return "huh? not a replica\r\n".into(),
            None => (is_master, is_slave),
        };
        update(|c| {
            if master {
                c.master_suspended = suspend;
            }
            if slave && c.slave_suspended != suspend {
                c.slave_suspended = suspend;
                c.epoch += 1;
                c.close_reason = Some("Replication suspended");
            }
        });
        tracing::info!(
            master,
            slave,
            suspend,
            "replication {}",
            if suspend { "suspended" } else { "resumed" }
        );
        OK.into()
    }

    /// Write `.replication_of` (and remove `.replication_promoted`); an error reply
    /// when it cannot be written.
    async fn write_of_marker(&self, hp: &(String, u16), from: Option<i64>) -> Option<String> {
        let root = self.store_root()?;
        let marker = Marker {
            at: clock::now(),
            source: host_port_text(hp),
            extra: from.map(|f| f.to_string()).unwrap_or_default(),
        };
        let text = marker.render("from");
        let r = blocking(move || replace_marker(&root, OF_MARKER, &text, PROMOTED_MARKER)).await;
        match r {
            Ok(()) => {
                update(|c| c.of_marker = Some(marker));
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the replication.of marker");
                Some(format!("huh? cannot write {OF_MARKER}: {e}\r\n"))
            }
        }
    }
}

// ----- late marks on disk (replication.md §2.8) ------------------------------------------

pub const LATE_FILE: &str = ".replication_late";
const LATE_HEADER: &str = "istatd-replication-late 1";
/// Checkpoints of changed marks are written at most this often.
pub const LATE_CHECKPOINT_SECS: i64 = 60;

type Mark = (Box<str>, u32, u32);

#[derive(Default)]
struct LateState {
    root: Option<PathBuf>,
    /// Marks read at start-up, not yet handed to their shards.
    loaded: Vec<Mark>,
    /// Each shard's marks as last published.
    per_shard: Vec<Vec<Mark>>,
    dirty: bool,
    unclean: bool,
}

static LATE: Mutex<Option<LateState>> = Mutex::new(None);

fn late<R>(f: impl FnOnce(&mut LateState) -> R) -> R {
    let mut g = LATE.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(LateState::default))
}

/// Read `.replication_late` at start-up of a master (plain file I/O, before the shards
/// run): keep the live marks of files the store holds, note an unclean previous run
/// (the file missing from a store that has counters, or written as a checkpoint), and
/// write the kept marks back as a checkpoint.
pub fn load_late(root: &Path, late_window: u32, shards: usize) {
    let now = clock::now();
    let text = std::fs::read_to_string(root.join(LATE_FILE)).ok();
    let store_has_files = std::fs::read_dir(root).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| !e.file_name().as_encoded_bytes().starts_with(b".")))
    });
    let mut loaded = Vec::new();
    let clean = match &text {
        None => !store_has_files,
        Some(t) => {
            let mut lines = t.lines();
            let first = lines.next().unwrap_or("");
            for l in lines {
                let mut w = l.split(' ');
                let (Some(p), Some(low), Some(at)) = (w.next(), w.next(), w.next()) else {
                    continue;
                };
                let (Ok(low), Ok(at)) = (low.parse::<u32>(), at.parse::<u32>()) else {
                    continue;
                };
                if now - at as i64 > late_window as i64
                    || !istatd_replication::name::is_valid_name(p.as_bytes())
                    || !root.join(p).is_file()
                {
                    continue;
                }
                loaded.push((p.into(), low, at));
            }
            first.starts_with(&format!("{LATE_HEADER} clean"))
        }
    };
    if !clean {
        tracing::warn!(
            "the previous run did not end cleanly ({LATE_FILE} missing or a checkpoint): \
             late writes recorded in its last minute, and writes it had not flushed, may \
             differ on its slaves (replication.md §2.1 residual risks 1 and 2)"
        );
    }
    late(|l| {
        l.root = Some(root.to_path_buf());
        l.per_shard = vec![Vec::new(); shards];
        l.loaded = loaded;
        l.unclean = !clean;
        l.dirty = true;
    });
    let _ = write_late("checkpoint");
}

/// The loaded marks owned by shard `id` of `count`.
pub fn take_loaded_for(id: usize, count: usize) -> Vec<Mark> {
    late(|l| {
        let (mine, rest): (Vec<Mark>, Vec<Mark>) = std::mem::take(&mut l.loaded)
            .into_iter()
            .partition(|(p, _, _)| {
                let key = istatd_replication::name::counter_key(p);
                istatd_shards::shard_of(key.as_bytes(), count) == id
            });
        l.loaded = rest;
        mine
    })
}

/// A shard's current marks.
pub fn publish_late(shard: usize, marks: Vec<Mark>) {
    late(|l| {
        if l.per_shard.len() <= shard {
            l.per_shard.resize(shard + 1, Vec::new());
        }
        l.per_shard[shard] = marks;
        l.dirty = true;
    });
}

pub fn unclean_starts() -> u64 {
    late(|l| u64::from(l.unclean))
}

/// Whether marks changed since the last write (and forget it).
pub fn take_late_dirty() -> bool {
    late(|l| std::mem::take(&mut l.dirty))
}

/// Write `.replication_late` (`kind` is `clean` or `checkpoint`): temporary file, fsync,
/// rename, fsync of the directory. Blocking: call it off the executors.
pub fn write_late(kind: &str) -> std::io::Result<()> {
    let (root, text) = late(|l| {
        let mut text = format!("{LATE_HEADER} {kind} {}\n", clock::now());
        for (p, low, at) in l.per_shard.iter().flatten().chain(l.loaded.iter()) {
            text.push_str(&format!("{p} {low} {at}\n"));
        }
        (l.root.clone(), text)
    });
    match root {
        Some(root) => write_marker(&root, LATE_FILE, &text),
        None => Ok(()),
    }
}

/// Write the checkpoint off the executor.
pub async fn checkpoint_late() {
    if take_late_dirty() {
        if let Err(e) = blocking(|| write_late("checkpoint")).await {
            tracing::error!(error = %e, "cannot write {LATE_FILE}");
        }
    }
}
