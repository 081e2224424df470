//! The roles a node plays now (docs/replication-protocol.md, "Operator command rules"):
//! suspended or not, slave of whom, promoted; and the store-root markers that make a
//! promotion or a `replication.of` survive a restart. The state lives with the coordinator
//! on shard 0; the other shards hear of changes by message.

use std::path::Path;

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
    pub fn render(&self, third: &str) -> String {
        format!(
            "at={}\nsource={}\n{third}={}\n",
            self.at, self.source, self.extra
        )
    }

    pub fn parse(text: &str) -> Option<Marker> {
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

impl Control {
    /// Whether this node is a slave now (its store written only by replication).
    pub fn acting_slave(&self) -> bool {
        self.of.is_some()
    }
}

/// The start-up roles from the options and the store's markers (plain file reads,
/// before any shard runs). A `.replication_promoted` marker wins over `--replica-of`;
/// a `.replication_of` marker overrides it. With both, the later one wins and the
/// other is removed. `cfg.of` and `cfg.from` are set to the result.
pub fn init(cfg: &mut super::ReplConfig, store: Option<&Path>) -> Control {
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
    c
}

/// Write a marker atomically: temporary file, fsync, rename, fsync of the directory.
/// Blocking: call it off the executors.
pub fn write_marker(root: &Path, name: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = root.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, root.join(name))?;
    std::fs::File::open(root)?.sync_all()
}

/// Write one marker, then remove the other (a store holds at most one).
pub fn replace_marker(root: &Path, name: &str, text: &str, other: &str) -> std::io::Result<()> {
    write_marker(root, name, text)?;
    match std::fs::remove_file(root.join(other)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `host:port`, or `[v6]:port`.
pub fn host_port_text((h, p): &(String, u16)) -> String {
    if h.contains(':') {
        format!("[{h}]:{p}")
    } else {
        format!("{h}:{p}")
    }
}
