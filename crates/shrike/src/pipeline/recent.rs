//! A map that remembers the `CAP` most recently added keys: inserting a new key past the bound
//! forgets the oldest one. What the pipeline keeps about the past (the domains DNS answers gave,
//! the images that connected out, the pipes execs held) is bounded this way, so memory stays
//! fixed however long the agent runs.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

#[derive(Debug)]
pub(super) struct Recent<K, V, const CAP: usize> {
    map: HashMap<K, V>,
    /// Keys in the order they were first added; the front goes first.
    order: VecDeque<K>,
}

impl<K, V, const CAP: usize> Default for Recent<K, V, CAP> {
    fn default() -> Self {
        Recent {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Eq + Hash + Clone, V, const CAP: usize> Recent<K, V, CAP> {
    /// Sets `key`'s value. A key already there keeps its place in the order.
    pub(super) fn insert(&mut self, key: K, value: V) {
        if self.map.insert(key.clone(), value).is_none() {
            self.added(key);
        }
    }

    /// `key`'s value, made with `V::default()` (and added, forgetting the oldest past the bound)
    /// when it is not there.
    pub(super) fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        if !self.map.contains_key(&key) {
            self.map.insert(key.clone(), V::default());
            self.added(key.clone());
        }
        self.map.get_mut(&key).expect("just made sure it is there")
    }

    pub(super) fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    fn added(&mut self, key: K) {
        self.order.push_back(key);
        while self.order.len() > CAP {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oldest key goes first; replacing a value neither moves its key nor evicts another.
    #[test]
    fn the_oldest_key_is_forgotten_past_the_bound() {
        let mut r: Recent<u32, &str, 2> = Recent::default();
        r.insert(1, "a");
        r.insert(2, "b");
        r.insert(1, "a2");
        assert_eq!(
            (r.len(), r.get(&1), r.get(&2)),
            (2, Some(&"a2"), Some(&"b"))
        );
        r.insert(3, "c");
        assert_eq!((r.len(), r.get(&1), r.get(&3)), (2, None, Some(&"c")));
        *r.get_or_default(4) = "d";
        assert_eq!((r.len(), r.get(&2), r.get(&4)), (2, None, Some(&"d")));
        *r.get_or_default(3) = "c2";
        assert_eq!(
            (r.len(), r.get(&3), r.get(&4)),
            (2, Some(&"c2"), Some(&"d"))
        );
    }
}
