//! Requests and their answers (docs/replication-protocol.md,
//! "Master: discovery and answering"): a Request parks or readies its entry, ready entries
//! become read jobs, and a finished read becomes the Data to send (or parks the entry again
//! until the next flush visit).

use super::*;

impl MasterFiles {
    /// A file Request (name already checked). `file` is the file if it exists, with its
    /// interval and newest bucket time if no flush visit has told of it yet. Returns
    /// true when the answer went to the gone queue ("no such file").
    pub fn request(
        &mut self,
        conn: u64,
        name: &[u8],
        from: i64,
        n: i64,
        file: Option<(FileKey, u32, i64)>,
    ) -> bool {
        self.counters.requests += 1;
        if !self.conns.contains_key(&conn) {
            return false;
        }
        let Some((key, interval, newest)) = file else {
            self.counters.requests_unknown_file += 1;
            if let Some(c) = self.conns.get_mut(&conn) {
                c.gone.push_back((name.to_vec(), true));
            }
            return true;
        };
        if self.known(key).is_none() {
            self.learn(key, sat_u32(newest));
        }
        let slot = key.0;
        let iv = interval.max(1);
        let f = if from <= 0 {
            0
        } else {
            sat_u32(from) / iv * iv
        };
        let n = n.clamp(1, self.cfg.chunk_buckets.max(1) as i64) as u16;
        let flushed_last = self.files[slot as usize].flushed_last;
        let late_low = self.late.get(&slot).map_or(INF, |m| m.0);
        let c = self.conns.get_mut(&conn).expect("checked above");
        let created = c.entry(slot).state().is_none();
        if created && c.entry(slot).has(ANNOUNCED) {
            // The slave answered a Discover: it leaves the window.
            c.unanswered = c.unanswered.saturating_sub(1);
            c.full_since = 0;
        }
        if created {
            c.forget(slot);
            if late_low < f {
                self.counters.late_seeded += 1;
                c.set_resend_from(slot, late_low);
            }
            c.entry_mut(slot).set_state(MState::Parked);
        }
        match c.entry(slot).state() {
            Some(MState::Reading) => {
                self.counters.requests_replaced += 1;
                if let Some(r) = c.reading.get_mut(&slot) {
                    r.replaced = Some((f, n));
                }
                return false;
            }
            Some(MState::Parked | MState::Ready) if !created => {
                self.counters.requests_replaced += 1;
            }
            _ => {}
        }
        let e = c.entry_mut(slot);
        e.f = f;
        e.n = n;
        Self::readiness(c, slot, flushed_last);
        false
    }

    fn readiness(c: &mut Conn, slot: u32, flushed_last: u32) {
        let e = c.entry(slot);
        if e.state().is_none() {
            return;
        }
        if flushed_last >= e.f || c.resend_from(slot) < e.f {
            c.entry_mut(slot).set_state(MState::Ready);
            c.push_ready(slot);
        } else {
            c.entry_mut(slot).set_state(MState::Parked);
        }
    }

    /// The next owed "no such file" answer of a connection, and whether it answers a
    /// Request still in flight (see [`MasterFiles::request`]; a deleted file's answer
    /// does not: its Request was parked when it came).
    pub fn next_gone(&mut self, conn: u64) -> Option<(Pdu, bool)> {
        let (name, in_flight) = self.conns.get_mut(&conn)?.gone.pop_front()?;
        Some((
            Pdu::Data {
                buckets: Vec::new(),
                name,
            },
            in_flight,
        ))
    }

    pub fn gone_len(&self, conn: u64) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.gone.len())
    }

    /// Move delayed (read-error) entries whose time came back to ready.
    pub fn wake_delayed(&mut self, now: i64) {
        for c in self.conns.values_mut() {
            if c.delayed.is_empty() {
                continue;
            }
            let due: Vec<u32> = c
                .delayed
                .iter()
                .filter(|(t, _)| *t <= now)
                .map(|(_, s)| *s)
                .collect();
            c.delayed.retain(|(t, _)| *t > now);
            for slot in due {
                let e = c.entry_mut(slot);
                e.set(DELAYED, false);
                if e.state() == Some(MState::Ready) {
                    c.push_ready(slot);
                }
            }
        }
    }

    /// The next read to do for a connection, within the read limit.
    pub fn next_read(&mut self, conn: u64) -> Option<ReadJob> {
        if self.suspended {
            return None;
        }
        let c = self.conns.get_mut(&conn)?;
        if c.reads >= self.cfg.max_reads {
            return None;
        }
        while let Some(slot) = c.ready.pop_front() {
            let e = c.entry_mut(slot);
            e.set(IN_READY, false);
            // A delayed entry (its read failed) waits for its time in the delayed list,
            // which readies it again; read now, a second failure would put a second
            // item there.
            if e.state() != Some(MState::Ready) || e.has(DELAYED) {
                continue;
            }
            let Some(info) = self.files.get(slot as usize).filter(|f| f.gen1 != 0) else {
                continue;
            };
            let resend_from = c.resend_from(slot);
            let e = c.entry_mut(slot);
            let from_resend = resend_from < e.f;
            let start = e.f.min(resend_from);
            e.set_state(MState::Reading);
            let max = e.n as usize;
            c.reading.insert(
                slot,
                Reading {
                    read_low: INF,
                    replaced: None,
                },
            );
            c.reads += 1;
            return Some(ReadJob {
                conn,
                file: (slot, info.gen1.wrapping_sub(1)),
                start: start as i64,
                end: info.flushed_last as i64,
                max,
                from_resend,
            });
        }
        crate::dense::trim_drained(&mut c.ready);
        None
    }

    /// Whether a connection has ready entries.
    pub fn has_ready(&self, conn: u64) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.ready.is_empty())
    }

    /// A read finished: `Ok((buckets, time just past the last slot scanned))`, for a
    /// file of interval `interval`. Returns the buckets of the Data to send, if any
    /// (the driver names it).
    pub fn read_done(
        &mut self,
        job: &ReadJob,
        interval: u32,
        result: Result<(Vec<Bucket>, i64), ()>,
        now: i64,
    ) -> Option<Vec<Bucket>> {
        let c = self.conns.get_mut(&job.conn)?;
        c.reads = c.reads.saturating_sub(1);
        let (slot, _) = job.file;
        let info = *self.files.get(slot as usize)?;
        if info.gen1 == 0 || info.gen1 != job.file.1.wrapping_add(1) {
            return None;
        }
        let iv = interval.max(1);
        let flushed_last = info.flushed_last;
        if c.entry(slot).state() != Some(MState::Reading) {
            return None;
        }
        let reading = c.reading.remove(&slot).unwrap_or(Reading {
            read_low: INF,
            replaced: None,
        });
        let mut e = c.entry(slot);
        let mut resend_from = c.resend_from(slot);
        let mut out = None;
        // Parked until the next flush visit, whatever readiness says.
        let mut hold = false;
        if let Some((f, n)) = reading.replaced {
            e.f = f;
            e.n = n;
            e.set_state(MState::Parked);
        } else {
            match result {
                Err(()) => {
                    self.counters.read_errors += 1;
                    let errors = e.errors() + 1;
                    if errors >= READ_ERROR_LIMIT {
                        tracing::error!(
                            slot,
                            "replication reads keep failing; retried at the next flush"
                        );
                        e.set_errors(0);
                        e.set_state(MState::Parked);
                        hold = true;
                    } else {
                        e.set_errors(errors);
                        e.set_state(MState::Ready);
                        e.set(DELAYED, true);
                        c.delayed.push((now + (1i64 << errors), slot));
                    }
                }
                Ok((buckets, next)) => {
                    e.set_errors(0);
                    let next32 = sat_u32(next);
                    let reached_end = next > job.end || next <= job.start;
                    if buckets.is_empty() && !reached_end {
                        if job.from_resend {
                            resend_from = if next32 >= e.f { INF } else { next32 };
                        } else {
                            e.f = e.f.max(next32);
                        }
                        e.set_state(MState::Ready);
                    } else if buckets.is_empty() {
                        e.f = e.f.max(add(sat_u32(job.end), iv));
                        resend_from = INF;
                        e.set_state(MState::Parked);
                    } else {
                        let last = buckets.last().map_or(0, |b| b.time);
                        let past = add(sat_u32(last), iv);
                        let resent = buckets.iter().filter(|b| b.time < e.f as i64).count();
                        resend_from = if resend_from < e.f && past < e.f {
                            past
                        } else {
                            INF
                        };
                        e.f = e.f.max(past);
                        e.set_state(MState::Answered);
                        self.counters.data_sent += 1;
                        self.counters.buckets_sent += buckets.len() as u64;
                        self.counters.resent_buckets += resent as u64;
                        c.data_since_discover += 1;
                        out = Some(buckets);
                    }
                }
            }
        }
        if reading.read_low < e.f {
            resend_from = resend_from.min(reading.read_low);
        }
        *c.entry_mut(slot) = e;
        c.set_resend_from(slot, resend_from);
        match e.state() {
            Some(MState::Parked) if hold => {}
            Some(MState::Parked) => Self::readiness(c, slot, flushed_last),
            Some(MState::Ready) if !e.has(DELAYED) => c.push_ready(slot),
            _ => {}
        }
        out
    }
}
