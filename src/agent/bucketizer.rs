//! A shard's bucketizers: the samples it parsed, summed per name into 10-second slots
//! until the next forward (docs/interfaces.md §6.3).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use istatd_storage::counter::Sample;
use istatd_storage::numfmt::push_g;

/// One 10-second slot of a name.
#[derive(Debug, Clone, Copy)]
struct Slot {
    time: i64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    count: u64,
}

/// A name's five slots around the time its first sample arrived (§6.3).
#[derive(Debug, Clone)]
struct Bucketizer {
    base: i64,
    event: bool,
    slots: [Option<Slot>; 5],
}

/// A shard's bucketizers.
#[derive(Default)]
pub struct AgentShard {
    names: RefCell<HashMap<Box<[u8]>, Bucketizer>>,
    /// Samples outside a name's five slots (`istatd.agent.samples_out_of_window`).
    out_of_window: Cell<u64>,
    /// Meta lines (`#key value`) to forward as they are.
    pub meta: RefCell<Vec<u8>>,
}

impl AgentShard {
    /// Add a handled sample (name unmunged, `*` stripped; `event` says it had one).
    pub fn add(&self, name: &[u8], event: bool, s: &Sample, now: i64) {
        let name = name.strip_prefix(b"*").unwrap_or(name);
        let mut names = self.names.borrow_mut();
        // The key is copied only for a name's first sample of a forward period.
        if !names.contains_key(name) {
            names.insert(
                name.into(),
                Bucketizer {
                    base: now - now.rem_euclid(10),
                    event,
                    slots: [None; 5],
                },
            );
        }
        let b = names.get_mut(name).expect("just made sure");
        let t = s.time - s.time.rem_euclid(10);
        let ix = (t - (b.base - 30)) / 10;
        if !(0..5).contains(&ix) {
            self.out_of_window.set(self.out_of_window.get() + 1);
            return;
        }
        let slot = &mut b.slots[ix as usize];
        match slot {
            None => {
                *slot = Some(Slot {
                    time: s.time,
                    sum: s.sum,
                    sum_sq: s.sum_sq,
                    min: s.min,
                    max: s.max,
                    count: s.count,
                })
            }
            Some(x) => {
                x.sum += s.sum;
                x.sum_sq += s.sum_sq;
                x.min = x.min.min(s.min);
                x.max = x.max.max(s.max);
                x.count += s.count;
            }
        }
    }

    /// Take every bucketizer and render its lines (§6.3).
    pub fn take_lines(&self) -> (String, u64) {
        let names = std::mem::take(&mut *self.names.borrow_mut());
        let mut out = String::new();
        let mut n = 0;
        for (name, b) in names {
            let name = String::from_utf8_lossy(&name);
            for s in b.slots.iter().flatten() {
                n += 1;
                if b.event {
                    out.push('*');
                    out.push_str(&name);
                    out.push_str(&format!(" {} ", s.time));
                    push_g(&mut out, s.sum, 17);
                } else {
                    out.push_str(&name);
                    out.push_str(&format!(" {} ", s.time));
                    for (i, v) in [s.sum, s.sum_sq, s.min, s.max].into_iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        push_g(&mut out, v, 17);
                    }
                    out.push_str(&format!(" {}", s.count));
                }
                out.push_str("\r\n");
            }
        }
        (out, n)
    }

    /// This shard's part of the agent's `stats` extras.
    pub fn stats(&self, out: &mut Vec<(String, i64)>) {
        out.push((
            "istatd.agent.samples_out_of_window".into(),
            self.out_of_window.get() as i64,
        ));
    }
}
