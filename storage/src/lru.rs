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
}
