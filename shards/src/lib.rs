//! Executors and cross-shard messaging for the istatd daemon.
//!
//! This crate owns the pinned glommio executors (one per shard), the hash that assigns
//! a counter to its owning shard, and the bounded channels between shards. It knows
//! nothing of file formats or wire protocols: messages are the daemon's own type.
//!
//! Every shard joins two full meshes: `data` for batched samples and `control` for
//! requests and replies. Keeping replies off the data mesh means a shard whose data
//! channels are full can still answer an admin request.

use std::future::Future;
use std::io;

use glommio::channels::channel_mesh::{MeshBuilder, Receivers, Senders};
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

pub use glommio::channels::shared_channel::ConnectedReceiver;

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

/// What a shard's main future receives: its identity and the meshes to join.
pub struct ShardContext<D: Send + 'static, C: Send + 'static> {
    pub id: usize,
    pub count: usize,
    data: MeshBuilder<D, glommio::channels::channel_mesh::Full>,
    control: MeshBuilder<C, glommio::channels::channel_mesh::Full>,
}

/// A shard's connections to every other shard.
pub struct Mesh<T: Send + 'static> {
    pub id: usize,
    pub count: usize,
    senders: Senders<T>,
    receivers: Option<Receivers<T>>,
}

impl<T: Send + 'static> Mesh<T> {
    /// Send to another shard, waiting while its channel is full. Sending to oneself is a
    /// caller bug (handle local work locally) and returns the message.
    pub async fn send(&self, to: usize, msg: T) -> Result<(), T> {
        if to == self.id || self.count == 1 {
            return Err(msg);
        }
        self.senders.send_to(to, msg).await.map_err(|e| match e {
            glommio::GlommioError::Closed(glommio::ResourceType::Channel(m)) => m,
            glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(m)) => m,
            other => panic!("channel mesh send failed: {other}"),
        })
    }

    /// The receiving ends, one per peer (taken once).
    pub fn take_receivers(&mut self) -> Vec<(usize, ConnectedReceiver<T>)> {
        match self.receivers.take() {
            Some(mut r) => r.streams(),
            None => Vec::new(),
        }
    }

    /// Close this shard's sending ends (peers' receivers then end).
    pub fn close(&self) {
        self.senders.close();
    }
}

impl<D: Send + 'static, C: Send + 'static> ShardContext<D, C> {
    /// Join both meshes; every shard must call this before any shard can send.
    pub async fn join(self) -> io::Result<(Mesh<D>, Mesh<C>)> {
        let (ds, dr) = self
            .data
            .join()
            .await
            .map_err(|_| io::Error::other("joining the data mesh"))?;
        let (cs, cr) = self
            .control
            .join()
            .await
            .map_err(|_| io::Error::other("joining the control mesh"))?;
        Ok((
            Mesh {
                id: self.id,
                count: self.count,
                senders: ds,
                receivers: Some(dr),
            },
            Mesh {
                id: self.id,
                count: self.count,
                senders: cs,
                receivers: Some(cr),
            },
        ))
    }
}

/// Start one executor per shard, each running `main(ctx)`. Returns their join handles.
pub fn spawn<D, C, F, Fut>(spec: &ShardSpec, main: F) -> io::Result<Vec<ExecutorJoinHandle<()>>>
where
    D: Send + 'static,
    C: Send + 'static,
    F: Fn(ShardContext<D, C>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let data = MeshBuilder::<D, _>::full(spec.count, spec.channel_capacity);
    let control = MeshBuilder::<C, _>::full(spec.count, spec.channel_capacity);
    let mut handles = Vec::with_capacity(spec.count);
    for id in 0..spec.count {
        let ctx = ShardContext {
            id,
            count: spec.count,
            data: data.clone(),
            control: control.clone(),
        };
        let main = main.clone();
        let h = LocalExecutorBuilder::new(spec.placement(id))
            .name(&format!("shard-{id}"))
            .io_memory(spec.io_memory)
            .spawn(move || main(ctx))
            .map_err(|e| io::Error::other(format!("starting shard {id}: {e}")))?;
        handles.push(h);
    }
    Ok(handles)
}

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
        let handles = spawn::<u64, u64, _, _>(&spec, move |ctx| {
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
            }
        })
        .unwrap();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(got.load(Ordering::SeqCst), 2);
    }
}
