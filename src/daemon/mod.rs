//! The daemon's wiring: start-up from the options ([`startup`]), the process's life
//! cycle ([`process`]: pid file, ports, signals), and the shards ([`shard`]): what each
//! is made of, what they send each other ([`messages`]) and what all parts of one
//! shard share ([`core`]).
//!
//! Which shard owns what: a counter's files belong to the shard its name hashes to
//! (`istatd_shards::shard_of`), with their flushes, queries and replication state.
//! Every shard accepts stat, HTTP and exporter connections (the kernel spreads them
//! with SO_REUSEPORT) and parses what it receives. Shard 0 also runs the admin port,
//! the replication coordinator, the agent's forward connections, the blacklist
//! loader and the recording of internal counters.

pub mod config;
pub mod core;
pub mod http_backend;
pub mod messages;
pub mod process;
pub mod shard;
pub mod startup;

use std::sync::Arc;

pub use self::core::{CtlMsg, ShardCore, ShardRpc};
pub use config::ServerConfig;
pub use messages::{DataMsg, Event, Rep, Req};
pub use shard::{BindError, Shard, ShardExit, StartError, Startup};

use istatd_shards::Shutdown;

use crate::replica::ReplStart;

/// Start the shards; returns their join handles. Each shard reports on `ready`.
pub fn start(
    cfg: ServerConfig,
    repl: ReplStart,
    shutdown: Shutdown,
    ready: std::sync::mpsc::Sender<Result<(), StartError>>,
) -> std::io::Result<Vec<glommio::ExecutorJoinHandle<ShardExit>>> {
    // Walk the store once here (not on an executor) and give every shard the listing;
    // each keeps the counters it owns.
    let mut store_closed_cleanly = false;
    let listing = match &cfg.store {
        Some(root) => {
            std::fs::create_dir_all(root)?;
            // Before any write: a crash of this run must not look like a clean close.
            store_closed_cleanly = istatd_storage::store::take_clean_mark(root)?;
            let started = std::time::Instant::now();
            let l = istatd_storage::store::walk_store(root)?;
            let files: usize = l.iter().map(|(_, f)| f.len()).sum();
            tracing::info!(
                directories = l.len(),
                files,
                seconds = started.elapsed().as_secs_f64(),
                closed_cleanly = store_closed_cleanly,
                "store scanned"
            );
            Some(Arc::new(l))
        }
        None => None,
    };
    let settings = if cfg.http_port != 0 {
        std::fs::create_dir_all(&cfg.settings_dir)?;
        let settings = Arc::new(crate::http::SettingsStore::new(&cfg.settings_dir));
        settings.load_all_blocking()?;
        Some(settings)
    } else {
        None
    };
    let spec = cfg.shards.clone();
    let startup = Startup {
        cfg: Arc::new(cfg),
        listing,
        store_closed_cleanly,
        settings,
        repl: Arc::new(repl),
        shutdown,
        ready,
    };
    let startup = std::sync::Mutex::new(startup);
    let startup = Arc::new(startup);
    istatd_shards::spawn::<DataMsg, CtlMsg, ShardExit, _, _>(&spec, move |ctx| {
        let st = startup.lock().map(|s| s.clone()).expect("startup state");
        shard::shard_main(ctx, st)
    })
}
