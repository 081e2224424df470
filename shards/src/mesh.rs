//! The meshes: every shard holds a bounded channel to every other shard, one mesh for
//! data and one for control.

use std::io;

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};

pub use glommio::channels::shared_channel::ConnectedReceiver;

/// What a shard's main future receives: its identity and the meshes to join.
pub struct ShardContext<D: Send + 'static, C: Send + 'static> {
    pub id: usize,
    pub count: usize,
    data: MeshBuilder<D, Full>,
    control: MeshBuilder<C, Full>,
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
    pub(crate) fn new(
        id: usize,
        count: usize,
        data: MeshBuilder<D, Full>,
        control: MeshBuilder<C, Full>,
    ) -> Self {
        ShardContext {
            id,
            count,
            data,
            control,
        }
    }

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
