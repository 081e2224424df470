//! The HTTP servers of a shard (the main port and the Prometheus exporter's) and what
//! they ask of the daemon: counter data from the owning shards, lists and metrics from
//! all of them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::TcpListener;

use super::messages::{Rep, Req};
use super::shard::Shard;
use crate::clock;
use crate::http::backend::{AgentInfo, Backend, CounterData, CounterInfo, LocalFut, NameList};
use crate::http::HttpConfig;
use crate::metrics::prom::{PromLayout, PromStore};

/// Accept HTTP connections until shutdown.
pub async fn accept_loop(shard: Rc<Shard>, l: TcpListener, cfg: Option<Rc<HttpConfig>>) {
    let Some(cfg) = cfg else { return };
    let backend: Rc<dyn Backend> = Rc::new(ShardBackend::new(shard.clone()));
    loop {
        let conn = futures_lite::future::or(
            async { Some(l.accept().await.map_err(std::io::Error::from)) },
            async {
                shard.core.shutdown.requested().await;
                None
            },
        )
        .await;
        match conn {
            None => return,
            Some(Ok(stream)) => {
                let conn = crate::http::serve_connection(stream, cfg.clone(), backend.clone());
                glommio::spawn_local(conn).detach();
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "http accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// How long a snapshot of the counter names serves Graphite's find and wildcard
/// renders: a Grafana dashboard asks many of them at once, and listing half a million
/// names from every shard per request would cost more than the requests themselves. A
/// new counter shows in them at most this much later.
const NAMES_TTL: Duration = Duration::from_secs(10);

/// The HTTP layer's view of the daemon, from the shard that accepted the connection.
pub struct ShardBackend(Rc<Shard>, NamesCache);

#[derive(Default)]
struct NamesCache {
    snapshot: RefCell<Option<(Instant, Rc<NameList>)>>,
    refreshing: Cell<bool>,
}

impl ShardBackend {
    pub fn new(shard: Rc<Shard>) -> ShardBackend {
        ShardBackend(shard, NamesCache::default())
    }

    async fn collect_all<T>(&self, req: Req, pick: impl Fn(Rep) -> Option<Vec<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for rep in self.0.core.rpc.broadcast(req).await {
            if let Some(v) = pick(rep) {
                out.extend(v);
            }
        }
        out
    }
}

impl Backend for ShardBackend {
    fn has_store(&self) -> bool {
        self.0.core.store.is_some()
    }

    fn now(&self) -> i64 {
        clock::now()
    }

    fn query<'a>(
        &'a self,
        key: &'a str,
        params: istatd_storage::query::QueryParams,
    ) -> LocalFut<'a, Result<Option<CounterData>, String>> {
        Box::pin(async move {
            let owner = istatd_shards::shard_of(key.as_bytes(), self.0.core.count);
            match self
                .0
                .core
                .rpc
                .call(owner, Req::Query(key.to_string(), params))
                .await
            {
                Some(Rep::Query(r)) => r,
                _ => Err("shard did not answer".into()),
            }
        })
    }

    fn counters(&self) -> LocalFut<'_, Vec<CounterInfo>> {
        Box::pin(self.collect_all(Req::Counters, |rep| match rep {
            Rep::Counters(v) => Some(v),
            _ => None,
        }))
    }

    fn names(&self) -> LocalFut<'_, Rc<NameList>> {
        Box::pin(async move {
            let cache = &self.1;
            let current = cache.snapshot.borrow().clone();
            if let Some((at, names)) = &current {
                // Fresh, or being refreshed by another request: serve this one.
                if at.elapsed() < NAMES_TTL || cache.refreshing.get() {
                    return names.clone();
                }
            }
            cache.refreshing.set(true);
            // A request dropped mid-refresh (its client went away) must not leave the
            // flag set: every later request would serve the stale list.
            struct Refreshing<'a>(&'a Cell<bool>);
            impl Drop for Refreshing<'_> {
                fn drop(&mut self) {
                    self.0.set(false);
                }
            }
            let _refreshing = Refreshing(&cache.refreshing);
            let names = self
                .collect_all(Req::CounterNames, |rep| match rep {
                    Rep::CounterNames(v) => Some(v),
                    _ => None,
                })
                .await;
            let names = Rc::new(NameList::new(names));
            *cache.snapshot.borrow_mut() = Some((Instant::now(), names.clone()));
            names
        })
    }

    fn metrics(&self, exporter: bool, layout: PromLayout) -> LocalFut<'_, Option<String>> {
        Box::pin(async move {
            if exporter {
                self.0.prom_http.as_ref()?;
                let mut all = PromStore::default();
                for rep in self.0.core.rpc.broadcast(Req::PromSnapshot).await {
                    if let Rep::Prom(p) = rep {
                        all.merge_from(&p);
                    }
                }
                Some(all.render_as(clock::now(), layout))
            } else {
                let (lb, extras) = self.0.all_stats_anywhere().await;
                let all: Vec<(String, i64)> = lb.stats().into_iter().chain(extras).collect();
                Some(crate::metrics::prom::render_internal(&all))
            }
        })
    }

    fn agents(&self) -> LocalFut<'_, Vec<AgentInfo>> {
        Box::pin(self.collect_all(Req::Agents, |rep| match rep {
            Rep::Agents(v) => Some(v),
            _ => None,
        }))
    }
}
