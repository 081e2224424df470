//! Executors and the way work travels between them, for the istatd daemon.
//!
//! This crate owns the pinned glommio executors (one per shard), the hash that assigns
//! a counter to its owning shard, the bounded channels between shards, and the few
//! patterns every shard uses on them: batching records per owner ([`router`]),
//! request/reply and one-way events ([`rpc`]), the pacing of a flush round
//! ([`flush`]), and one shutdown handle passed to every task ([`shutdown`]). It knows
//! nothing of file formats or wire protocols: messages are the daemon's own types.
//!
//! Every shard joins two full meshes: `data` for batched records and `control` for
//! requests, replies and events. Keeping replies off the data mesh means a shard whose
//! data channels are full can still answer an admin request.

pub mod executor;
pub mod flush;
pub mod mesh;
pub mod router;
pub mod rpc;
pub mod shutdown;

pub use executor::{parse_cpu_list, spawn, ShardSpec};
pub use mesh::{ConnectedReceiver, Mesh, ShardContext};
pub use router::{shard_of, Batch, Router};
pub use shutdown::Shutdown;
