//! Which shard owns a key, and records batched per owner: a connection's parser
//! appends every record to its owner's batch and sends each batch once per read, so
//! the cost of a cross-shard hop is paid per batch, not per record.

use crate::mesh::Mesh;

/// The shard owning a counter key: FNV-1a, stable across runs and builds.
pub fn shard_of(key: &[u8], count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % count as u64) as usize
}

/// Records bound for one shard, with their keys in one arena (one allocation per
/// batch, not per record). Records keep the order they were pushed in.
#[derive(Debug)]
pub struct Batch<R> {
    names: String,
    recs: Vec<(u32, u32, R)>,
}

impl<R> Default for Batch<R> {
    fn default() -> Self {
        Batch {
            names: String::new(),
            recs: Vec::new(),
        }
    }
}

impl<R: Copy> Batch<R> {
    pub fn push(&mut self, key: &str, rec: R) {
        let start = self.names.len() as u32;
        self.names.push_str(key);
        self.recs.push((start, key.len() as u32, rec));
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, R)> {
        self.recs
            .iter()
            .map(|&(st, len, r)| (&self.names[st as usize..(st + len) as usize], r))
    }
}

/// One batch per shard, filled by key.
#[derive(Debug)]
pub struct Router<R> {
    me: usize,
    batches: Vec<Batch<R>>,
}

impl<R: Copy> Router<R> {
    pub fn new(me: usize, count: usize) -> Self {
        Router {
            me,
            batches: (0..count.max(1)).map(|_| Batch::default()).collect(),
        }
    }

    pub fn count(&self) -> usize {
        self.batches.len()
    }

    /// The shard owning `key`.
    pub fn owner(&self, key: &str) -> usize {
        shard_of(key.as_bytes(), self.batches.len())
    }

    /// Append a record to its key's owner's batch.
    pub fn push(&mut self, key: &str, rec: R) {
        let owner = self.owner(key);
        self.batches[owner].push(key, rec);
    }

    /// Send every other shard's batch over `mesh` (wrapped by `wrap`), waiting while a
    /// channel is full; give back this shard's own batch, if any, for the caller to
    /// handle. A batch for a shard whose channel is closed is dropped and its owner
    /// named in the returned list.
    pub async fn send<M: Send + 'static>(
        &mut self,
        mesh: &Mesh<M>,
        wrap: impl Fn(Batch<R>) -> M,
    ) -> (Option<Batch<R>>, Vec<usize>) {
        let mut local = None;
        let mut dropped = Vec::new();
        for owner in 0..self.batches.len() {
            if self.batches[owner].is_empty() {
                continue;
            }
            let b = std::mem::take(&mut self.batches[owner]);
            if owner == self.me {
                local = Some(b);
            } else if mesh.send(owner, wrap(b)).await.is_err() {
                dropped.push(owner);
            }
        }
        (local, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_spread() {
        assert_eq!(shard_of(b"anything", 1), 0);
        let a = shard_of(b"web.latency.server1", 4);
        assert_eq!(a, shard_of(b"web.latency.server1", 4));
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[shard_of(format!("c{i}").as_bytes(), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }

    #[test]
    fn batches_keep_order_and_keys() {
        let mut b = Batch::default();
        b.push("a.b", 1u8);
        b.push("c", 2);
        b.push("a.b", 3);
        let got: Vec<(&str, u8)> = b.iter().collect();
        assert_eq!(got, vec![("a.b", 1), ("c", 2), ("a.b", 3)]);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn router_files_records_under_their_owner() {
        let mut r = Router::new(0, 3);
        for i in 0..30 {
            r.push(&format!("k{i}"), i);
        }
        for (owner, b) in r.batches.iter().enumerate() {
            for (k, _) in b.iter() {
                assert_eq!(shard_of(k.as_bytes(), 3), owner);
            }
        }
        assert_eq!(r.batches.iter().map(Batch::len).sum::<usize>(), 30);
    }
}
