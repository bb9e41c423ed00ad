//! The ban list: stream ids that may not publish.
//!
//! It may hold ids that do not exist yet (a pre-emptive ban), it is persisted by the
//! caller, and it is consulted by the live plane at publish time.

use std::collections::HashMap;

use crate::error::CoreError;

#[derive(Debug, Default)]
pub struct BanList {
    /// stream id → when it was banned (Unix ms).
    banned: HashMap<String, u64>,
    max: u32,
}

impl BanList {
    pub fn new(max: u32) -> Self {
        BanList {
            banned: HashMap::new(),
            max: max.max(1),
        }
    }

    pub fn restore(max: u32, entries: impl IntoIterator<Item = (String, u64)>) -> Self {
        let mut list = BanList::new(max);
        list.banned.extend(entries);
        list
    }

    pub fn is_banned(&self, stream_id: &str) -> bool {
        self.banned.contains_key(stream_id)
    }

    pub fn banned_since(&self, stream_id: &str) -> Option<u64> {
        self.banned.get(stream_id).copied()
    }

    /// The ids among `ids` that a ban would add (already banned ones are no change).
    /// Fails when the list would outgrow its bound.
    pub fn plan_ban<'a>(&self, ids: &'a [String]) -> Result<Vec<&'a str>, CoreError> {
        let mut new: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| !self.banned.contains_key(*id))
            .collect();
        new.sort_unstable();
        new.dedup();
        if self.banned.len() + new.len() > self.max as usize {
            return Err(CoreError::BanListFull { max: self.max });
        }
        Ok(new)
    }

    pub fn commit_ban<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>, now_ms: u64) {
        for id in ids {
            self.banned.entry(id.to_string()).or_insert(now_ms);
        }
    }

    /// The ids among `ids` that are banned now (the others are no change).
    pub fn plan_unban<'a>(&self, ids: &'a [String]) -> Vec<&'a str> {
        let mut found: Vec<&str> = ids
            .iter()
            .map(String::as_str)
            .filter(|id| self.banned.contains_key(*id))
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    pub fn commit_unban<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        for id in ids {
            self.banned.remove(id);
        }
    }

    /// Makes the list the stored one (bans another node wrote to a shared store);
    /// returns the ids it added and the ids it removed, sorted.
    pub fn sync(&mut self, stored: &[(String, u64)]) -> (Vec<String>, Vec<String>) {
        let mut added: Vec<String> = stored
            .iter()
            .filter(|(id, _)| !self.banned.contains_key(id))
            .map(|(id, _)| id.clone())
            .collect();
        let keep: std::collections::HashSet<&str> =
            stored.iter().map(|(id, _)| id.as_str()).collect();
        let mut removed: Vec<String> = self
            .banned
            .keys()
            .filter(|id| !keep.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &removed {
            self.banned.remove(id);
        }
        for (id, at) in stored {
            self.banned.entry(id.clone()).or_insert(*at);
        }
        added.sort_unstable();
        added.dedup();
        removed.sort_unstable();
        (added, removed)
    }

    pub fn len(&self) -> usize {
        self.banned.len()
    }

    pub fn is_empty(&self) -> bool {
        self.banned.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_takes_the_stored_list_and_says_what_changed() {
        let mut list = BanList::restore(10, [("a".into(), 1), ("b".into(), 2)]);
        let stored = vec![("b".to_string(), 2), ("c".to_string(), 3)];
        assert_eq!(list.sync(&stored), (vec!["c".into()], vec!["a".into()]));
        assert!(!list.is_banned("a") && list.is_banned("b") && list.is_banned("c"));
        assert_eq!(list.banned_since("c"), Some(3));
        assert_eq!(list.sync(&stored), (vec![], vec![]));
        assert_eq!(list.sync(&[]), (vec![], vec!["b".into(), "c".into()]));
        assert!(list.is_empty());
    }

    #[test]
    fn ban_unban_and_preemptive() {
        let mut b = BanList::new(10);
        let ids = vec!["x".to_string(), "y".to_string(), "x".to_string()];
        let new = b.plan_ban(&ids).unwrap();
        assert_eq!(new, ["x", "y"]);
        b.commit_ban(new, 5);
        assert!(b.is_banned("x"));
        assert_eq!(b.banned_since("y"), Some(5));
        assert!(b.plan_ban(&ids).unwrap().is_empty());
        let gone = vec!["y".to_string(), "never".to_string()];
        let found = b.plan_unban(&gone);
        assert_eq!(found, ["y"]);
        b.commit_unban(found);
        assert!(!b.is_banned("y"));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn bounded() {
        let b = BanList::restore(2, [("a".to_string(), 0), ("b".to_string(), 0)]);
        assert_eq!(
            b.plan_ban(&["c".to_string()]),
            Err(CoreError::BanListFull { max: 2 })
        );
        assert!(b.plan_ban(&["a".to_string()]).unwrap().is_empty());
    }
}
