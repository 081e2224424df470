//! Growth of the dense per-slot arrays and of the per-file queues
//! (docs/replication-protocol.md, "Memory"): state is budgeted in bytes per file, and a
//! `Vec` that doubles holds up to twice what it uses (a store of 50,000 files had 65,536
//! entries' room). These grow by an eighth instead: still amortised constant time, at most
//! 12.5% unused.

/// Make `v` at least `len` long, new items `fill`, reserving an eighth more room
/// rather than doubling.
pub(crate) fn grow<T: Clone>(v: &mut Vec<T>, len: usize, fill: T) {
    if len <= v.len() {
        return;
    }
    if len > v.capacity() {
        let extra = (len - v.len()).max(v.len() / 8);
        v.reserve_exact(extra);
    }
    v.resize(len, fill);
}

/// Room for `len` items, exactly: for an array whose final length is known (the store's
/// file slots), growing by an eighth would leave up to an eighth of it unused.
pub(crate) fn reserve_to<T>(v: &mut Vec<T>, len: usize) {
    if len > v.capacity() {
        v.reserve_exact(len - v.len());
    }
}

/// Room an empty queue keeps.
const QUEUE_KEEP: usize = 1024;

/// An emptied queue gives back the room its peak took (a catch-up or a resubscription
/// queues every file once: 4 bytes a file held for good otherwise).
pub(crate) fn trim_drained<T>(q: &mut std::collections::VecDeque<T>) {
    if q.is_empty() && q.capacity() > QUEUE_KEEP {
        q.shrink_to(QUEUE_KEEP);
    }
}

#[cfg(test)]
mod tests {
    use super::{grow, trim_drained, QUEUE_KEEP};

    #[test]
    fn a_drained_queue_gives_back_its_room() {
        let mut q: std::collections::VecDeque<u32> = (0..100_000).collect();
        trim_drained(&mut q);
        assert!(q.capacity() >= 100_000, "not empty: kept");
        q.clear();
        trim_drained(&mut q);
        assert!(q.capacity() <= QUEUE_KEEP);
    }

    #[test]
    fn room_stays_within_an_eighth() {
        let mut v: Vec<u64> = Vec::new();
        for i in 0..100_000usize {
            grow(&mut v, i + 1, 7);
            assert_eq!(v.len(), i + 1);
            if i >= 1000 {
                assert!(
                    v.capacity() * 8 <= v.len() * 9 + 8,
                    "{} of {}",
                    v.len(),
                    v.capacity()
                );
            }
        }
        assert!(v.iter().all(|&x| x == 7));
        grow(&mut v, 10, 0);
        assert_eq!(v.len(), 100_000, "never shrinks");
    }
}
