//! What the coordinator reports: the link-level metrics, the `replication.status` and
//! `replication.scrub` lines, and the progress lines of the log
//! (docs/replication-protocol.md, "Metrics").

use std::rc::Rc;
use std::time::Duration;

use istatd_replication::pdu;

use super::Coordinator;
use crate::metrics::gather;
use crate::replica::control::Control;
use crate::replica::ReplConfig;

/// Link-level metrics (shard 0) for `stats` and `/metrics`.
pub fn link_stats(c: &Coordinator, out: &mut Vec<(String, i64)>) {
    let lc = c.counters.borrow().clone();
    crate::metrics::push_named(
        out,
        "replication",
        "master.connections master.accepted master.handshakes \
         master.rejected_version master.rejected_self master.rejected_cycle \
         master.rejected_too_many master.protocol_errors master.errors_received \
         master.timeouts master.pings master.unclean_starts master.bytes_sent \
         master.bytes_received slave.connected slave.connect_attempts \
         slave.connect_failures slave.handshake_failures slave.disconnects \
         slave.backoff_seconds slave.master_changes slave.protocol_errors \
         slave.errors_received slave.timeouts slave.pings_sent slave.bytes_sent \
         slave.bytes_received",
        &[
            c.master.connections() as u64,
            lc.m_accepted,
            lc.m_handshakes,
            lc.m_rejected_version,
            lc.m_rejected_self,
            lc.m_rejected_cycle,
            lc.m_rejected_too_many,
            lc.m_protocol_errors,
            lc.m_errors_received,
            lc.m_timeouts,
            lc.m_pings,
            c.unclean_starts(),
            lc.m_bytes_sent,
            lc.m_bytes_received,
            u64::from(c.slave.is_connected()),
            lc.s_connect_attempts,
            lc.s_connect_failures,
            lc.s_handshake_failures,
            lc.s_disconnects,
            lc.s_backoff_seconds,
            lc.s_master_changes,
            lc.s_protocol_errors,
            lc.s_errors_received,
            lc.s_timeouts,
            lc.s_pings_sent,
            lc.s_bytes_sent,
            lc.s_bytes_received,
        ],
    );
}

/// The `replication.status` lines.
pub fn status_lines(c: &Coordinator, cfg: &ReplConfig, extras: &[(String, i64)]) -> String {
    let ctl: Control = c.control();
    let lc = c.counters.borrow().clone();
    let get = |k: &str| gather::get(extras, k);
    let master = cfg.port != 0;
    let slave = ctl.of.is_some();
    let role = match (master, slave, ctl.promoted.is_some()) {
        (_, false, true) => "promoted",
        (true, true, _) => "master+slave",
        (true, false, _) => "master",
        (false, true, _) => "slave",
        (false, false, _) => "none",
    };
    let mut out = format!("role={role}\r\nid={}\r\n", c.id.str());
    if master {
        out.push_str(&format!(
            "master.suspended={}\r\nmaster.connections={}\r\nmaster.late_marks={}\r\n",
            u8::from(ctl.master_suspended),
            c.master.connections(),
            get("replication.master.late_marks")
        ));
    }
    if let Some((h, p)) = &ctl.of {
        // Never a lag of 0 while the link is down: "down" and for how long.
        let (lag, down) = if c.slave.is_connected() {
            (get("replication.slave.tail_lag_seconds").to_string(), 0)
        } else {
            (
                "down".to_string(),
                lc.s_down_since.map_or(0, |t| t.elapsed().as_secs()),
            )
        };
        out.push_str(&format!(
            "slave.source={h}:{p}\r\nslave.state={}\r\nslave.master_id={}\r\nslave.suspended={}\r\nslave.subscribed={}\r\nslave.behind={}\r\nslave.errors={}\r\nslave.from={}\r\n",
            lc.s_state,
            lc.s_master_id,
            u8::from(ctl.slave_suspended),
            get("replication.slave.subscribed"),
            get("replication.slave.behind"),
            get("replication.slave.files_in_error"),
            ctl.from.map(|f| f.to_string()).unwrap_or_default(),
        ));
        out.push_str(&format!(
            "slave.lag_seconds={lag}\r\nslave.down_seconds={down}\r\nslave.bytes_behind={}\r\nslave.create_waiting={}\r\n",
            get("replication.slave.bytes_behind"),
            get("replication.slave.create_waiting")
        ));
    }
    if let Some(m) = &ctl.of_marker {
        out.push_str(&format!(
            "of.source={}\r\nof.from={}\r\nof.at={}\r\n",
            m.source, m.extra, m.at
        ));
    }
    if let Some(m) = &ctl.promoted {
        out.push_str(&format!(
            "promoted.at={}\r\npromoted.from={}\r\n",
            m.at, m.source
        ));
    }
    out
}

/// `replication.scrub` lines: where the scrub stands on this node, from the summed
/// `replication.scrub.*` metrics of its shards.
pub fn scrub_lines(c: &Coordinator, cfg: &ReplConfig, extras: &[(String, i64)]) -> String {
    let get = |k: &str| gather::get(extras, &format!("replication.scrub.{k}"));
    let version = c.slave.version();
    let state = if cfg.scrub_rate == 0 {
        "off"
    } else if get("running") > 0 && version < pdu::VERSION_SCRUB {
        // A pass waits for a version 3 link.
        "waiting"
    } else if get("running") > 0 {
        "running"
    } else if get("stopped") > 0 {
        "stopped"
    } else if get("passes_done") > 0 {
        "done"
    } else {
        "idle"
    };
    let mut out = format!(
        "scrub.state={state}\r\nscrub.rate={}\r\nscrub.interval={}\r\nscrub.link_version={version}\r\n",
        cfg.scrub_rate, cfg.scrub_interval
    );
    for k in [
        "passes_started",
        "passes_done",
        "files_done",
        "files_total",
        "files_missing",
        "ranges_checked",
        "ranges_differing",
        "ranges_repaired",
        "buckets_repaired",
        "apply_errors",
        "bytes",
    ] {
        out.push_str(&format!("scrub.{k}={}\r\n", get(k)));
    }
    out
}

/// Progress lines: the slave every 10 s while it catches up or Discovers arrive, and
/// once when it has caught up; a scrub pass once a minute and when it ends; the master
/// every 60 s while slaves are connected.
pub async fn progress_loop(c: Rc<Coordinator>) {
    let get = gather::get;
    let mut prev: Vec<(String, i64)> = Vec::new();
    let mut prev_at = std::time::Instant::now();
    let mut was_behind = false;
    let mut since_connect: Option<std::time::Instant> = None;
    let mut last_master_line = std::time::Instant::now();
    let mut prev_sent = 0i64;
    let mut last_scrub_line = std::time::Instant::now();
    let mut prev_scrub_ranges = 0i64;
    let cfg = &c.core.cfg.repl;
    while !c.core.shutdown.sleep(Duration::from_secs(10)).await {
        let (_, v) = gather::gather(&c.core).await;
        let dt = prev_at.elapsed().as_secs_f64().max(0.001);
        prev_at = std::time::Instant::now();
        if c.acting_slave() {
            let connected = c.slave.is_connected();
            if connected && since_connect.is_none() {
                since_connect = Some(std::time::Instant::now());
            } else if !connected {
                since_connect = None;
            }
            let behind = get(&v, "replication.slave.behind");
            let discovered = get(&v, "replication.slave.discover_received");
            let written = get(&v, "replication.slave.buckets_written");
            let rate = (written - get(&prev, "replication.slave.buckets_written")) as f64 / dt;
            if behind > 0 || discovered > get(&prev, "replication.slave.discover_received") {
                tracing::info!(
                    discovered,
                    subscribed = get(&v, "replication.slave.subscribed"),
                    behind,
                    pending = get(&v, "replication.slave.pending_subscribe"),
                    buckets_per_s = rate.round(),
                    tail_lag_s = get(&v, "replication.slave.tail_lag_seconds"),
                    "replication catch-up"
                );
            } else if was_behind {
                tracing::info!(
                    seconds_since_connect = since_connect.map_or(0, |t| t.elapsed().as_secs()),
                    "replication caught up"
                );
            }
            was_behind = behind > 0;
            let running = get(&v, "replication.scrub.running") > 0;
            let was_running = get(&prev, "replication.scrub.running") > 0;
            let ranges = get(&v, "replication.scrub.ranges_checked");
            let line_due = last_scrub_line.elapsed() >= Duration::from_secs(60);
            if (running && line_due) || (was_running && !running) {
                let dt = last_scrub_line.elapsed().as_secs_f64().max(0.001);
                last_scrub_line = std::time::Instant::now();
                let per_s = (ranges - prev_scrub_ranges) as f64 * 64.0 / dt;
                prev_scrub_ranges = ranges;
                tracing::info!(
                    files_done = get(&v, "replication.scrub.files_done"),
                    files_total = get(&v, "replication.scrub.files_total"),
                    ranges_checked = ranges,
                    ranges_differing = get(&v, "replication.scrub.ranges_differing"),
                    ranges_repaired = get(&v, "replication.scrub.ranges_repaired"),
                    buckets_per_s = per_s.round(),
                    "{}",
                    if running {
                        "replication scrub"
                    } else {
                        "replication scrub pass ended"
                    }
                );
            } else if !running {
                last_scrub_line = std::time::Instant::now();
                prev_scrub_ranges = ranges;
            }
        }
        if cfg.port != 0 && last_master_line.elapsed() >= Duration::from_secs(60) {
            let sent = get(&v, "replication.master.buckets_sent");
            let dt = last_master_line.elapsed().as_secs_f64();
            last_master_line = std::time::Instant::now();
            let conns = c.master.connections();
            if conns > 0 {
                tracing::info!(
                    connections = conns,
                    announced = get(&v, "replication.master.discover_sent"),
                    parked = get(&v, "replication.master.parked"),
                    ready = get(&v, "replication.master.ready"),
                    buckets_per_s = ((sent - prev_sent) as f64 / dt).round(),
                    "replication master"
                );
            }
            prev_sent = sent;
        }
        prev = v;
    }
}
