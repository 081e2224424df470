//! The executors: one pinned glommio executor per shard, each with the locked I/O
//! memory it may register, started together with the meshes they join.

use std::future::Future;
use std::io;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement, PoolPlacement};

use crate::mesh::ShardContext;

/// Threads of each executor's blocking pool (directory work, file creation, markers).
/// glommio's default is one, pinned with its executor: a replica's file creations
/// (mkdir, open, fallocate, header) then went one at a time per shard, 1,000-5,000
/// files/s. They mostly wait on the file system, so more can run at once.
pub const BLOCKING_THREADS: usize = 4;

/// How many shards, where they run, and how much locked memory each may register.
#[derive(Debug, Clone)]
pub struct ShardSpec {
    pub count: usize,
    /// CPUs to pin shard `i` to (`pin_cores[i % len]`); empty = not pinned.
    pub pin_cores: Vec<usize>,
    /// glommio's registered I/O memory per executor. Its default (10 MiB) is above a
    /// typical 8 MiB locked-memory limit.
    pub io_memory: usize,
    /// Capacity (messages) of each channel of the meshes.
    pub channel_capacity: usize,
}

impl ShardSpec {
    pub fn new(count: usize) -> ShardSpec {
        ShardSpec {
            count: count.max(1),
            pin_cores: Vec::new(),
            io_memory: 1 << 20,
            channel_capacity: 256,
        }
    }

    fn placement(&self, shard: usize) -> Placement {
        if self.pin_cores.is_empty() {
            Placement::Unbound
        } else {
            Placement::Fixed(self.pin_cores[shard % self.pin_cores.len()])
        }
    }
}

/// Start one executor per shard, each running `main(ctx)`; their join handles give
/// back what each shard's main returned.
pub fn spawn<D, C, T, F, Fut>(spec: &ShardSpec, main: F) -> io::Result<Vec<ExecutorJoinHandle<T>>>
where
    D: Send + 'static,
    C: Send + 'static,
    T: Send + 'static,
    F: Fn(ShardContext<D, C>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = T> + 'static,
{
    let data = MeshBuilder::<D, _>::full(spec.count, spec.channel_capacity);
    let control = MeshBuilder::<C, _>::full(spec.count, spec.channel_capacity);
    let mut handles = Vec::with_capacity(spec.count);
    for id in 0..spec.count {
        let ctx = ShardContext::new(id, spec.count, data.clone(), control.clone());
        let main = main.clone();
        let h = LocalExecutorBuilder::new(spec.placement(id))
            .name(&format!("shard-{id}"))
            .io_memory(spec.io_memory)
            .blocking_thread_pool_placement(PoolPlacement::Unbound(BLOCKING_THREADS))
            .spawn(move || main(ctx))
            .map_err(|e| io::Error::other(format!("starting shard {id}: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}

/// Parse a CPU list such as `0,1`, `0-3` or `0-1,4`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("bad CPU list element {part:?} in {s:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| bad())?;
                let b: usize = b.trim().parse().map_err(|_| bad())?;
                if b < a || b - a > 4096 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0,1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_cpu_list("0-1,4").unwrap(), vec![0, 1, 4]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn shards_exchange_messages() {
        let got = Arc::new(AtomicUsize::new(0));
        let g = got.clone();
        let spec = ShardSpec::new(2);
        let handles = spawn::<u64, u64, usize, _, _>(&spec, move |ctx| {
            let got = g.clone();
            async move {
                let id = ctx.id;
                let (mut data, control) = ctx.join().await.unwrap();
                let peer = 1 - id;
                data.send(peer, id as u64 + 10).await.unwrap();
                assert!(data.send(id, 0).await.is_err(), "no sending to oneself");
                for (from, rx) in data.take_receivers() {
                    assert_eq!(from, peer);
                    let v = rx.recv().await.unwrap();
                    assert_eq!(v, peer as u64 + 10);
                    got.fetch_add(1, Ordering::SeqCst);
                }
                control.close();
                data.close();
                id
            }
        })
        .unwrap();
        let ids: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(ids, vec![0, 1], "each shard's main gives back its result");
        assert_eq!(got.load(Ordering::SeqCst), 2);
    }
}
