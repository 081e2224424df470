//! A small O(1) least-recently-used map (slab + doubly linked list), used for the
//! descriptor cache and the page cache.

use crate::hashing::FastMap;
use std::hash::Hash;

const NIL: usize = usize::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    prev: usize,
    next: usize,
}

pub struct Lru<K, V> {
    map: FastMap<K, usize>,
    nodes: Vec<Option<Node<K, V>>>,
    free: Vec<usize>,
    head: usize, // most recent
    tail: usize, // least recent
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub fn new(capacity: usize) -> Lru<K, V> {
        Lru {
            map: FastMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn node(&mut self, i: usize) -> &mut Node<K, V> {
        self.nodes[i].as_mut().expect("live node")
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = {
            let n = self.node(i);
            (n.prev, n.next)
        };
        if prev != NIL {
            self.node(prev).next = next;
        } else {
            self.head = next;
        }
        if next != NIL {
            self.node(next).prev = prev;
        } else {
            self.tail = prev;
        }
    }

    fn push_front(&mut self, i: usize) {
        let head = self.head;
        {
            let n = self.node(i);
            n.prev = NIL;
            n.next = head;
        }
        if head != NIL {
            self.node(head).prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Look up and mark as most recently used.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = *self.map.get(key)?;
        self.unlink(i);
        self.push_front(i);
        Some(&mut self.node(i).value)
    }

    /// Look up without changing the order.
    pub fn peek(&self, key: &K) -> Option<&V> {
        let i = *self.map.get(key)?;
        self.nodes[i].as_ref().map(|n| &n.value)
    }

    pub fn peek_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = *self.map.get(key)?;
        self.nodes[i].as_mut().map(|n| &mut n.value)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Insert (or replace) as most recent; returns entries evicted to stay in capacity.
    pub fn insert(&mut self, key: K, value: V) -> Vec<(K, V)> {
        let mut evicted = Vec::new();
        if let Some(old) = self.remove(&key) {
            evicted.push((key.clone(), old));
        }
        while self.map.len() >= self.capacity {
            match self.pop_lru() {
                Some(e) => evicted.push(e),
                None => break,
            }
        }
        self.link_new(key, value);
        evicted
    }

    /// Insert as the most recent entry without evicting anything, even above the
    /// capacity (the next [`Lru::insert`] evicts back down to it). For a value that must
    /// not be dropped and whose eviction cannot be handled now.
    pub fn insert_over(&mut self, key: K, value: V) {
        let _ = self.remove(&key);
        self.link_new(key, value);
    }

    fn link_new(&mut self, key: K, value: V) {
        let node = Node {
            key: key.clone(),
            value,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = Some(node);
                i
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        };
        self.map.insert(key, i);
        self.push_front(i);
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.map.remove(key)?;
        self.unlink(i);
        let n = self.nodes[i].take().expect("live node");
        self.free.push(i);
        Some(n.value)
    }

    pub fn pop_lru(&mut self) -> Option<(K, V)> {
        if self.tail == NIL {
            return None;
        }
        let key = self.node(self.tail).key.clone();
        let v = self.remove(&key)?;
        Some((key, v))
    }

    /// Keys from least to most recently used.
    pub fn keys(&self) -> Vec<K> {
        let mut out = Vec::with_capacity(self.map.len());
        let mut i = self.tail;
        while i != NIL {
            let n = self.nodes[i].as_ref().expect("live node");
            out.push(n.key.clone());
            i = n.prev;
        }
        out
    }
}

/// A scan-resistant LRU (segmented: a protected part and a probation part of an
/// eighth). New keys fill the protected part while it has room, then enter on
/// probation; a key found on probation moves to the protected part, whose least
/// recent key goes back on probation. Why: a plain LRU smaller than a cyclic working
/// set (a flush round or a replication catch-up over more files than descriptors)
/// misses every time; this one keeps hitting on the protected part, about
/// capacity x 7/8 of the set. Evicted values are dropped.
pub struct SegmentedLru<K, V> {
    protected: Lru<K, V>,
    probation: Lru<K, V>,
}

impl<K: Hash + Eq + Clone, V> SegmentedLru<K, V> {
    pub fn new(capacity: usize) -> SegmentedLru<K, V> {
        let capacity = capacity.max(2);
        let probation = (capacity / 8).max(1);
        SegmentedLru {
            protected: Lru::new(capacity - probation),
            probation: Lru::new(probation),
        }
    }

    pub fn len(&self) -> usize {
        self.protected.len() + self.probation.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Look up; a key on probation is promoted.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        if self.protected.contains(key) {
            return self.protected.get_mut(key);
        }
        let v = self.probation.remove(key)?;
        if self.protected.len() >= self.protected.capacity() {
            if let Some((k, demoted)) = self.protected.pop_lru() {
                drop(self.probation.insert(k, demoted));
            }
        }
        drop(self.protected.insert(key.clone(), v));
        self.protected.get_mut(key)
    }

    /// Insert (or replace); see the type's rules for where a new key goes.
    pub fn insert(&mut self, key: K, value: V) {
        if let Some(v) = self.protected.get_mut(&key) {
            *v = value;
            return;
        }
        drop(self.probation.remove(&key));
        if self.protected.len() < self.protected.capacity() {
            drop(self.protected.insert(key, value));
        } else {
            drop(self.probation.insert(key, value));
        }
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.protected
            .remove(key)
            .or_else(|| self.probation.remove(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recent() {
        let mut l = Lru::new(2);
        assert!(l.insert(1, "a").is_empty());
        assert!(l.insert(2, "b").is_empty());
        l.get_mut(&1);
        assert_eq!(l.insert(3, "c"), vec![(2, "b")]);
        assert_eq!(l.keys(), vec![1, 3]);
        assert_eq!(l.remove(&1), Some("a"));
        assert_eq!(l.pop_lru(), Some((3, "c")));
        assert!(l.is_empty());
    }

    #[test]
    fn insert_over_capacity_evicts_back_down_later() {
        let mut l = Lru::new(2);
        l.insert(1, "a");
        l.insert(2, "b");
        l.insert_over(3, "c");
        assert_eq!(l.len(), 3, "nothing evicted");
        assert_eq!(l.insert(4, "d"), vec![(1, "a"), (2, "b")]);
        assert_eq!(l.keys(), vec![3, 4]);
    }

    /// Hits over `rounds` passes of a cycle of `set` keys.
    fn cyclic_hits(capacity: usize, set: u32, rounds: u32) -> (u32, u32) {
        let mut plain = Lru::new(capacity);
        let mut seg = SegmentedLru::new(capacity);
        let (mut plain_hits, mut seg_hits) = (0, 0);
        for _ in 0..rounds {
            for k in 0..set {
                match plain.get_mut(&k) {
                    Some(_) => plain_hits += 1,
                    None => drop(plain.insert(k, ())),
                }
                match seg.get_mut(&k) {
                    Some(_) => seg_hits += 1,
                    None => seg.insert(k, ()),
                }
                assert!(seg.len() <= capacity);
            }
        }
        (plain_hits, seg_hits)
    }

    #[test]
    fn a_cycle_larger_than_the_cache_still_hits() {
        // 1,000 descriptors, 3,000 files visited in turn, 10 rounds.
        let (plain, seg) = cyclic_hits(1000, 3000, 10);
        assert_eq!(plain, 0, "a plain LRU misses every time");
        // The protected part (875) hits in every round after the first.
        assert!(seg >= 875 * 9, "{seg}");
    }

    #[test]
    fn a_cycle_within_the_cache_always_hits() {
        let (plain, seg) = cyclic_hits(1000, 1000, 5);
        assert_eq!(plain, 1000 * 4);
        assert_eq!(seg, 1000 * 4);
    }

    #[test]
    fn a_key_reused_on_probation_is_promoted() {
        let mut l = SegmentedLru::new(16); // 14 protected, 2 on probation
        for k in 0..14 {
            l.insert(k, k);
        }
        l.insert(100, 100);
        assert_eq!(l.get_mut(&100), Some(&mut 100), "promoted");
        // The protected part's least recent key (0) went on probation.
        l.insert(101, 101);
        l.insert(102, 102);
        assert!(l.get_mut(&0).is_none(), "0 was pushed off probation");
        assert_eq!(l.get_mut(&100), Some(&mut 100));
        assert_eq!(l.len(), 16);
        assert_eq!(l.remove(&100), Some(100));
        assert_eq!(l.len(), 15);
    }
}
