//! A shard's internal counters: its loopback counters brought up to date from the
//! sources that keep their own totals (HTTP, the settings store, the page cache), its
//! port-specific extras, and every shard's gathered for `stats` and the recording.

use super::{Rep, Req, Shard};
use crate::metrics::gather;
use crate::metrics::loopback::{Loopback, LoopbackCounters};
use crate::replica::coordinator::status;

/// Seconds between audits of the page-cache counters (the reference's audit timer).
const PAGECACHE_AUDIT_SECS: i64 = 10;

impl Shard {
    /// This shard's loopback counters and its port-specific extras.
    pub(super) fn shard_stats(&self) -> (LoopbackCounters, Vec<(String, i64)>) {
        self.sync_http_counters();
        self.sync_settings_counters();
        self.audit_pagecache();
        self.core.lb.borrow_mut().set(
            Loopback::StatServerConnected,
            self.stat_port.active() as i64,
        );
        let mut extras = Vec::new();
        self.ingest.stats(&mut extras);
        self.stat_port.stats(&mut extras);
        self.graphite_port.stats(&mut extras);
        let s = self
            .core
            .store
            .as_ref()
            .map(|s| s.stats())
            .unwrap_or_default();
        gather::store_stats(&s, &mut extras);
        if let Some(o) = &self.owner {
            o.stats(&mut extras);
        }
        if let Some(a) = &self.agent {
            a.shard.stats(&mut extras);
        }
        let taken = self.core.lb.borrow().clone();
        self.core.lb.borrow_mut().take_queuelen_peak();
        (taken, extras)
    }

    /// `istatd.settings.{get,set,match,save}`: the process's one settings store counts
    /// its operations; shard 0 alone reports them (every shard holds the store).
    fn sync_settings_counters(&self) {
        use crate::http::settings::{OP_GET, OP_MATCH, OP_SAVE, OP_SET};
        let Some(settings) = self.settings.as_ref().filter(|_| self.core.id == 0) else {
            return;
        };
        let now = settings.op_totals();
        let before = self.settings_reported.replace(now);
        let mut lb = self.core.lb.borrow_mut();
        for (op, c) in [
            (OP_GET, Loopback::SettingsGet),
            (OP_SET, Loopback::SettingsSet),
            (OP_MATCH, Loopback::SettingsMatch),
            (OP_SAVE, Loopback::SettingsSave),
        ] {
            lb.add(c, now[op].wrapping_sub(before[op]) as i64);
        }
    }

    /// `istatd.pagecache.hits|misses.time_<retention>`: the store's page-cache totals
    /// by retention, taken every 10 s (the reference's audit timer), the first time at
    /// the first recording.
    fn audit_pagecache(&self) {
        let Some(store) = &self.core.store else {
            return;
        };
        let now = crate::clock::monotonic_secs();
        if self
            .pagecache_audit
            .get()
            .is_some_and(|t| now - t < PAGECACHE_AUDIT_SECS)
        {
            return;
        }
        self.pagecache_audit.set(Some(now));
        self.core
            .lb
            .borrow_mut()
            .audit_pagecache(&store.page_counts_by_retention());
    }

    /// Bring the HTTP counters into the loopback counters (events as totals).
    fn sync_http_counters(&self) {
        let Some(cfg) = &self.http else { return };
        let st = &cfg.stats;
        let (r0, h0, s0) = self.http_reported.get();
        let (r, h, sv) = (
            st.requests.get(),
            st.http_errors.get(),
            st.server_errors.get(),
        );
        let mut lb = self.core.lb.borrow_mut();
        lb.add(Loopback::HttpRequests, (r - r0) as i64);
        lb.add(Loopback::HttpErrorsHttp, (h - h0) as i64);
        lb.add(Loopback::HttpErrorsServer, (sv - s0) as i64);
        lb.set(Loopback::HttpCurrent, st.current.get());
        self.http_reported.set((r, h, sv));
    }

    /// Every shard's counters with the agent's and the replication links', from any
    /// shard (shard 0 owns the links).
    pub async fn all_stats_anywhere(&self) -> (LoopbackCounters, Vec<(String, i64)>) {
        if self.id() == 0 {
            return self.all_stats().await;
        }
        match self.core.rpc.call(0, Req::AllStats).await {
            Some(Rep::Stats(lb, extras)) => (*lb, extras),
            _ => gather::gather(&self.core).await,
        }
    }

    /// Every shard's counters with the agent's and the replication links' (shard 0);
    /// the `replication.*` metrics only when this node replicates (or was promoted).
    pub async fn all_stats(&self) -> (LoopbackCounters, Vec<(String, i64)>) {
        let (lb, mut extras) = gather::gather(&self.core).await;
        if let Some(links) = self.agent.as_ref().and_then(|a| a.links.as_ref()) {
            links.stats(&mut extras);
        }
        let replicating = self.coordinator.as_ref().filter(|c| {
            let ctl = c.control();
            self.core.cfg.repl.port != 0 || ctl.of.is_some() || ctl.promoted.is_some()
        });
        match replicating {
            Some(c) => status::link_stats(c, &mut extras),
            None => extras.retain(|(k, _)| !k.starts_with("replication.")),
        }
        (lb, extras)
    }
}
