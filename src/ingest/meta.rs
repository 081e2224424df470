//! Connection meta records (`#key value` lines, docs/interfaces.md §2.7) and the host
//! blacklist's configuration (§2.10; shard 0 loads the list and sends it to every
//! shard).
//!
//! Each stat connection gets a record the first time it sends data; its keys are the
//! meta keys plus `_peer`. Records go offline when the connection closes and are purged
//! by the admin `purge` command and every 300 s. All UDP traffic of a shard shares one
//! record.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::daemon::{Req, ShardCore};
use crate::statline::Blacklist;

#[derive(Debug, Clone)]
pub struct MetaRecord {
    pub peer: String,
    pub keys: BTreeMap<String, String>,
    pub online: bool,
    pub blacklisted: bool,
    /// Clock time of the last command (seconds).
    pub last_seen: i64,
    /// Clock time the record was created.
    pub connected: i64,
}

impl MetaRecord {
    pub fn new(peer: String, now: i64) -> MetaRecord {
        MetaRecord {
            peer,
            keys: BTreeMap::new(),
            online: true,
            blacklisted: false,
            last_seen: now,
            connected: now,
        }
    }

    pub fn hostname(&self) -> Option<&str> {
        self.keys.get("hostname").map(String::as_str)
    }
}

pub type MetaHandle = Rc<RefCell<MetaRecord>>;

/// One shard's records.
#[derive(Debug, Default)]
pub struct MetaRegistry {
    records: Vec<MetaHandle>,
}

impl MetaRegistry {
    pub fn open(&mut self, peer: String, now: i64) -> MetaHandle {
        let h = Rc::new(RefCell::new(MetaRecord::new(peer, now)));
        self.records.push(h.clone());
        h
    }

    pub fn records(&self) -> impl Iterator<Item = &MetaHandle> {
        self.records.iter()
    }

    /// Admin `purge maxOld,maxAge` (port semantics, docs/interfaces.md §5.3): delete
    /// offline records idle at least `max_age` seconds, then keep only the `max_old` most
    /// recent offline ones when `max_old` > 0. Returns how many were deleted.
    pub fn purge(&mut self, max_old: u64, max_age: i64, now: i64) -> usize {
        let before = self.records.len();
        self.records.retain(|r| {
            let r = r.borrow();
            r.online || now - r.last_seen < max_age
        });
        if max_old > 0 {
            let mut offline: Vec<(i64, usize)> = self
                .records
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.borrow().online)
                .map(|(i, r)| (r.borrow().last_seen, i))
                .collect();
            if offline.len() as u64 > max_old {
                offline.sort();
                let drop: std::collections::HashSet<usize> = offline
                    [..offline.len() - max_old as usize]
                    .iter()
                    .map(|&(_, i)| i)
                    .collect();
                let mut i = 0;
                self.records.retain(|_| {
                    let keep = !drop.contains(&i);
                    i += 1;
                    keep
                });
            }
        }
        before - self.records.len()
    }
}

/// Whether a record's `hostname` is on the blacklist (lower-cased comparison).
pub fn is_blacklisted(rec: &MetaHandle, bl: &Blacklist) -> bool {
    let r = rec.borrow();
    if r.blacklisted {
        return true;
    }
    r.hostname().is_some_and(|h| bl.contains(h))
}

/// `--blacklist-path` and `--blacklist-period`.
#[derive(Debug, Clone)]
pub struct BlacklistConfig {
    pub path: PathBuf,
    pub period_secs: u64,
}

/// Shard 0: load the blacklist now and whenever its file's mtime changes
/// (docs/interfaces.md §2.10), and send it to every shard.
pub async fn blacklist_loop(core: Rc<ShardCore>, cfg: BlacklistConfig) {
    let mut last_mtime = None;
    loop {
        let path = cfg.path.clone();
        let seen = last_mtime;
        let loaded = glommio::executor()
            .spawn_blocking(move || {
                let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
                if Some(mtime) == seen {
                    return None;
                }
                let text = std::fs::read(&path).ok()?;
                Some((mtime, Blacklist::parse_bytes(&text)))
            })
            .await;
        if let Some((mtime, list)) = loaded {
            tracing::info!(path = %cfg.path.display(), hosts = list.len(), "blacklist loaded");
            core.rpc.broadcast(Req::Blacklist(Arc::new(list))).await;
            last_mtime = Some(mtime);
        }
        if core
            .shutdown
            .sleep(Duration::from_secs(cfg.period_secs.max(1)))
            .await
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_keeps_online_and_recent() {
        let mut m = MetaRegistry::default();
        let a = m.open("a".into(), 100);
        let b = m.open("b".into(), 100);
        let c = m.open("c".into(), 150);
        a.borrow_mut().online = false;
        b.borrow_mut().online = false;
        c.borrow_mut().online = false;
        let _d = m.open("d".into(), 0); // online, very old: kept
        assert_eq!(m.purge(0, 60, 200), 2, "a and b idle 100 s");
        assert_eq!(m.records().count(), 2);
        let e = m.open("e".into(), 190);
        e.borrow_mut().online = false;
        assert_eq!(
            m.purge(1, 1000, 200),
            1,
            "keep only the most recent offline record"
        );
        let peers: Vec<String> = m.records().map(|r| r.borrow().peer.clone()).collect();
        assert_eq!(peers, vec!["d".to_string(), "e".to_string()]);
    }
}
