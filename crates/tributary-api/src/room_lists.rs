//! Other nodes' room stream lists, kept for a moment: a hot room listed by many calls at
//! once (or every auto-mix's periodic check) reads the shared store once per
//! [`FRESH_MS`], not once per call. A list is then at most that old, like the other
//! nodes' streams it shows, which arrive asynchronously anyway. Time is passed in.

use std::collections::HashMap;

use tributary_core::AppId;
use tributary_core::registry::StreamInfo;

/// How long a list read from the store is used.
pub const FRESH_MS: u64 = 500;
/// Rooms kept at most (past it, the stale ones go, then everything).
const MAX_ROOMS: usize = 10_000;

#[derive(Default)]
pub struct RoomLists {
    lists: HashMap<(AppId, String), (u64, Vec<StreamInfo>)>,
}

impl RoomLists {
    /// The room's list if read within [`FRESH_MS`] of `now_ms`.
    pub fn get(&self, app_id: AppId, room_id: &str, now_ms: u64) -> Option<Vec<StreamInfo>> {
        let (at, list) = self.lists.get(&(app_id, room_id.to_string()))?;
        (now_ms.saturating_sub(*at) < FRESH_MS).then(|| list.clone())
    }

    pub fn put(&mut self, app_id: AppId, room_id: &str, now_ms: u64, list: Vec<StreamInfo>) {
        if self.lists.len() >= MAX_ROOMS {
            self.lists
                .retain(|_, (at, _)| now_ms.saturating_sub(*at) < FRESH_MS);
            if self.lists.len() >= MAX_ROOMS {
                self.lists.clear();
            }
        }
        self.lists
            .insert((app_id, room_id.to_string()), (now_ms, list));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_used_while_fresh_and_the_map_stays_bounded() {
        let mut r = RoomLists::default();
        assert!(r.get(1, "a", 0).is_none());
        r.put(1, "a", 1_000, Vec::new());
        assert_eq!(r.get(1, "a", 1_000 + FRESH_MS - 1), Some(Vec::new()));
        assert!(r.get(1, "a", 1_000 + FRESH_MS).is_none());
        assert!(r.get(2, "a", 1_000).is_none());
        for i in 0..MAX_ROOMS + 5 {
            r.put(1, &i.to_string(), 5_000, Vec::new());
        }
        assert!(r.lists.len() <= MAX_ROOMS);
    }
}
