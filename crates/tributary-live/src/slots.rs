//! Counted places per key (connections per IP address, event feeds per app): at most
//! `max` held at once for one key; a place is given back when its [`Slot`] is dropped,
//! and a key with none held is forgotten, so the map holds only keys in use.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

pub struct KeyedSlots<K: Eq + Hash + Clone> {
    held: Mutex<HashMap<K, usize>>,
    max: usize,
}

/// One place held for a key.
pub struct Slot<K: Eq + Hash + Clone> {
    slots: Arc<KeyedSlots<K>>,
    key: K,
}

impl<K: Eq + Hash + Clone> KeyedSlots<K> {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(KeyedSlots {
            held: Mutex::new(HashMap::new()),
            max,
        })
    }

    /// A place for `key`, or `None` when `max` are held.
    pub fn take(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let n = held.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            key,
        })
    }
}

impl<K: Eq + Hash + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_key_and_given_back() {
        let s = KeyedSlots::new(2);
        let a1 = s.take("a").unwrap();
        let _a2 = s.take("a").unwrap();
        assert!(s.take("a").is_none());
        let _b = s.take("b").unwrap();
        drop(a1);
        assert!(s.take("a").is_some());
        drop(_b);
        assert!(
            !s.held.lock().unwrap().contains_key("b"),
            "an unused key is forgotten"
        );
    }
}
