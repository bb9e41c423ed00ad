//! The rooms and streams registry of one app.
//!
//! One registry per app is shared by everything that touches streams — the AddStream and
//! DeleteStream APIs now, RTMP publishers and mix outputs later — so every change bumps the
//! same `stream_seq` and every stream gets a `StreamNumberId` from the same counter. A room
//! exists while it holds at least one stream: the first stream creates it (with a new
//! `room_session_id`), the last one leaving closes it.
//!
//! A user is a *member* of a room while they own a stream there or hold a viewer session
//! in it (a player or an event feed opened with a user-bound token). Membership drives
//! DescribeUsers and the `room_login` / `room_logout` callbacks; a room lives while it
//! has any member, so `room_create` / `room_close` follow the first and the last one. A
//! user kicked out by the API is refused (publishing and viewing, not AddStream, which is
//! the backend itself) until their refusal ends.
//!
//! Changes are made in two steps, `plan_*` (checks, computes the new state, changes
//! nothing) and `commit_*` (applies it), so the caller can persist a plan before the
//! in-memory state moves, and a failed write leaves both unchanged.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::ids::{self, IdKind};

/// Longest `StreamTitle`, in bytes.
pub const MAX_TITLE_LEN: usize = 127;
/// Longest `ExtraInfo`, in bytes.
pub const MAX_EXTRA_INFO_LEN: usize = 1024;
/// Longest `UserName`, in bytes.
pub const MAX_USER_NAME_LEN: usize = 255;

/// Where a stream came from; decides whether it survives a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamOrigin {
    /// Added by the AddStream API: signalling only, persisted.
    Added,
    /// A live publisher: exists while its connection does, never persisted.
    Published,
    /// A mix task's output listed in a room (`TargetRoom`): exists while the task runs,
    /// never persisted (a resumed task lists it again).
    Mix,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room_id: String,
    /// Constant for the room's lifetime; a room that closes and opens again gets a new one.
    pub session_id: u64,
    /// The room's stream-list version: +1 on every add or remove.
    pub stream_seq: u64,
    /// The next `StreamNumberId` to hand out.
    pub next_number_id: u32,
    pub create_time_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub stream_id: String,
    pub room_id: String,
    pub user_id: String,
    pub user_name: String,
    pub title: String,
    pub extra_info: String,
    pub censor_flag: i32,
    /// The stream's number within its room, in creation order.
    pub number_id: u32,
    pub create_time_ms: u64,
    pub origin: StreamOrigin,
}

impl StreamInfo {
    /// A server-side unique id for the stream: its room session and number.
    pub fn sid(&self, room: &RoomInfo) -> String {
        format!("{}-{}", room.session_id, self.number_id)
    }
}

/// What a caller asks to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStream {
    pub stream_id: String,
    pub room_id: String,
    pub user_id: String,
    pub user_name: String,
    pub title: String,
    pub extra_info: String,
    pub censor_flag: i32,
    pub origin: StreamOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddKind {
    /// A new stream: the room's list changed.
    New,
    /// The same user added the same stream again: title and extra info were refreshed,
    /// the list itself did not change.
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPlan {
    pub room: RoomInfo,
    pub stream: StreamInfo,
    pub kind: AddKind,
    /// The room did not exist: this stream creates it.
    pub room_created: bool,
    /// The stream's owner was not a member before: they join the room with it.
    pub joined: Option<RoomUser>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovePlan {
    /// The room after the removal, `stream_seq` bumped.
    pub room: RoomInfo,
    /// True when the room has no member left after this: the room closes.
    pub room_closes: bool,
    pub stream: StreamInfo,
    /// The owner is no longer a member after this (it was their last stream and they
    /// view nothing there).
    pub left: Option<RoomUser>,
}

/// A viewer session joining a room: a player or an event feed with a user-bound token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinPlan {
    pub room: RoomInfo,
    pub room_created: bool,
    /// Set when the user was not a member before.
    pub joined: Option<RoomUser>,
    pub user_id: String,
    pub user_name: String,
    /// The session's id, to leave with.
    pub session: u64,
    pub now_ms: u64,
}

/// A viewer session leaving its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeavePlan {
    pub room: RoomInfo,
    pub room_closes: bool,
    /// Set when the user is no longer a member after this.
    pub left: Option<RoomUser>,
    pub user_id: String,
    /// `None`: every session of the user.
    pub session: Option<u64>,
}

/// One user's viewer sessions in a room.
#[derive(Debug, Clone)]
struct Viewer {
    user_id: String,
    user_name: String,
    since_ms: u64,
    sessions: Vec<u64>,
}

#[derive(Debug, Clone)]
struct Room {
    info: RoomInfo,
    /// In creation order (number ids only grow), so listing needs no sort.
    streams: Vec<StreamInfo>,
    /// Users who view (play or follow the feed) without necessarily owning a stream.
    viewers: Vec<Viewer>,
}

impl Room {
    fn new(info: RoomInfo) -> Self {
        Room {
            info,
            streams: Vec::new(),
            viewers: Vec::new(),
        }
    }

    /// The user as a member of this room, if they are one: host when they publish (or a
    /// mix lists its output as theirs), audience when they only view, admin when they own
    /// only API-added streams (a server identity).
    fn member(&self, user_id: &str) -> Option<RoomUser> {
        let mut found: Option<RoomUser> = None;
        let mut host = false;
        for s in self.streams.iter().filter(|s| s.user_id == user_id) {
            host |= s.origin != StreamOrigin::Added;
            let u = found.get_or_insert_with(|| RoomUser {
                user_id: s.user_id.clone(),
                user_name: s.user_name.clone(),
                login_ms: s.create_time_ms,
                role: 4,
            });
            u.login_ms = u.login_ms.min(s.create_time_ms);
        }
        let viewer = self.viewers.iter().find(|v| v.user_id == user_id);
        if let Some(v) = viewer {
            let u = found.get_or_insert_with(|| RoomUser {
                user_id: v.user_id.clone(),
                user_name: v.user_name.clone(),
                login_ms: v.since_ms,
                role: 2,
            });
            u.login_ms = u.login_ms.min(v.since_ms);
            u.role = 2;
        }
        if host && let Some(u) = &mut found {
            u.role = 1;
        }
        found
    }

    fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.viewers.is_empty()
    }
}

/// Kicked users still refused, at most this many per app: the oldest refusal is
/// forgotten first past it (a bound against a caller kicking invented ids).
const MAX_REFUSALS: usize = 10_000;

/// Users in a room, as DescribeUserNum reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserCount {
    /// The room's members: distinct users owning a stream or viewing there.
    pub users: u32,
    /// Of those, the ones that own only API-added streams: server identities such as
    /// "Server-Administrator", which the vendor tells callers to use for AddStream.
    pub admins: u32,
}

/// A user in a room, as DescribeUsers / DescribeUserList report them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomUser {
    pub user_id: String,
    pub user_name: String,
    /// When they became a member (ms).
    pub login_ms: u64,
    /// 1 host (publishes a stream), 2 audience (views only), 4 admin (only API-added
    /// streams: a server identity).
    pub role: u8,
}

#[derive(Debug, Default)]
pub struct Rooms {
    rooms: HashMap<String, Room>,
    /// stream id → room id: stream ids are unique across the whole app.
    stream_room: HashMap<String, String>,
    max_streams_per_room: u32,
    max_rooms: u32,
    /// (room, user) → until when (ms) a kicked user is refused.
    refused: HashMap<(String, String), u64>,
    next_session: u64,
}

impl Rooms {
    pub fn new(max_streams_per_room: u32, max_rooms: u32) -> Self {
        Rooms {
            rooms: HashMap::new(),
            stream_room: HashMap::new(),
            max_streams_per_room: max_streams_per_room.max(1),
            max_rooms: max_rooms.max(1),
            refused: HashMap::new(),
            next_session: 0,
        }
    }

    /// Rebuilds the registry from stored rows. Rooms without streams are left out (their
    /// streams were live publishers, gone with the restart).
    pub fn restore(
        max_streams_per_room: u32,
        max_rooms: u32,
        rooms: Vec<RoomInfo>,
        streams: Vec<StreamInfo>,
    ) -> Self {
        let mut reg = Rooms::new(max_streams_per_room, max_rooms);
        for info in rooms {
            reg.rooms.insert(info.room_id.clone(), Room::new(info));
        }
        for s in streams {
            if let Some(room) = reg.rooms.get_mut(&s.room_id) {
                reg.stream_room
                    .insert(s.stream_id.clone(), s.room_id.clone());
                room.streams.push(s);
            }
        }
        reg.rooms.retain(|_, r| !r.streams.is_empty());
        for room in reg.rooms.values_mut() {
            room.streams.sort_by_key(|s| s.number_id);
        }
        reg
    }

    /// Checks an add and computes the resulting room and stream. `new_session_id` is
    /// used only if the room has to be created.
    pub fn plan_add(
        &self,
        req: NewStream,
        now_ms: u64,
        new_session_id: u64,
    ) -> Result<AddPlan, CoreError> {
        ids::validate(IdKind::Room, &req.room_id)?;
        ids::validate(IdKind::User, &req.user_id)?;
        ids::validate(IdKind::Stream, &req.stream_id)?;
        ids::validate_len("UserName", &req.user_name, MAX_USER_NAME_LEN)?;
        ids::validate_len("StreamTitle", &req.title, MAX_TITLE_LEN)?;
        ids::validate_len("ExtraInfo", &req.extra_info, MAX_EXTRA_INFO_LEN)?;

        if let Some(other_room) = self.stream_room.get(&req.stream_id)
            && other_room != &req.room_id
        {
            return Err(CoreError::StreamInOtherRoom {
                stream_id: req.stream_id,
                room_id: other_room.clone(),
            });
        }
        if req.origin == StreamOrigin::Published {
            self.check_refused(&req.room_id, &req.user_id, now_ms)?;
        }
        let room = self.rooms.get(&req.room_id);
        if let Some(r) = room
            && let Some(existing) = r.streams.iter().find(|s| s.stream_id == req.stream_id)
        {
            if existing.user_id != req.user_id || existing.origin != req.origin {
                return Err(CoreError::StreamOwnedByOther {
                    stream_id: req.stream_id,
                    owner: existing.user_id.clone(),
                    user: req.user_id,
                });
            }
            let mut stream = existing.clone();
            stream.user_name = req.user_name;
            stream.title = req.title;
            stream.extra_info = req.extra_info;
            stream.censor_flag = req.censor_flag;
            return Ok(AddPlan {
                room: r.info.clone(),
                stream,
                kind: AddKind::Refresh,
                room_created: false,
                joined: None,
            });
        }

        let mut info = match room {
            Some(r) => {
                if r.streams.len() as u64 >= u64::from(self.max_streams_per_room) {
                    return Err(CoreError::RoomFull {
                        room_id: req.room_id,
                        max: self.max_streams_per_room,
                    });
                }
                r.info.clone()
            }
            None if self.rooms.len() as u64 >= u64::from(self.max_rooms) => {
                return Err(CoreError::TooManyRooms {
                    max: self.max_rooms,
                });
            }
            None => RoomInfo {
                room_id: req.room_id.clone(),
                session_id: new_session_id,
                stream_seq: 0,
                next_number_id: 1,
                create_time_ms: now_ms,
            },
        };
        let was_member = room.and_then(|r| r.member(&req.user_id)).is_some();
        let number_id = info.next_number_id;
        info.next_number_id = info.next_number_id.wrapping_add(1).max(1);
        info.stream_seq += 1;
        let stream = StreamInfo {
            stream_id: req.stream_id,
            room_id: req.room_id,
            user_id: req.user_id,
            user_name: req.user_name,
            title: req.title,
            extra_info: req.extra_info,
            censor_flag: req.censor_flag,
            number_id,
            create_time_ms: now_ms,
            origin: req.origin,
        };
        let joined = (!was_member).then(|| RoomUser {
            user_id: stream.user_id.clone(),
            user_name: stream.user_name.clone(),
            login_ms: now_ms,
            role: if stream.origin == StreamOrigin::Added {
                4
            } else {
                1
            },
        });
        Ok(AddPlan {
            room: info,
            stream,
            kind: AddKind::New,
            room_created: room.is_none(),
            joined,
        })
    }

    /// Applies a plan made by [`Rooms::plan_add`] against the current state.
    pub fn commit_add(&mut self, plan: AddPlan) {
        let room = self
            .rooms
            .entry(plan.room.room_id.clone())
            .or_insert_with(|| Room::new(plan.room.clone()));
        room.info = plan.room;
        match plan.kind {
            AddKind::Refresh => {
                if let Some(s) = room
                    .streams
                    .iter_mut()
                    .find(|s| s.stream_id == plan.stream.stream_id)
                {
                    *s = plan.stream;
                }
            }
            AddKind::New => {
                self.stream_room
                    .insert(plan.stream.stream_id.clone(), plan.stream.room_id.clone());
                room.streams.push(plan.stream);
            }
        }
    }

    /// Checks a removal of `stream_id` from `room_id`.
    pub fn plan_remove(&self, room_id: &str, stream_id: &str) -> Result<RemovePlan, CoreError> {
        let not_found = || CoreError::StreamNotFound {
            stream_id: stream_id.to_string(),
            room_id: room_id.to_string(),
        };
        let room = self.rooms.get(room_id).ok_or_else(not_found)?;
        let stream = room
            .streams
            .iter()
            .find(|s| s.stream_id == stream_id)
            .ok_or_else(not_found)?;
        let mut info = room.info.clone();
        info.stream_seq += 1;
        let mut after = room.clone();
        after.streams.retain(|s| s.stream_id != stream_id);
        let left = match after.member(&stream.user_id) {
            Some(_) => None,
            None => room.member(&stream.user_id),
        };
        Ok(RemovePlan {
            room: info,
            room_closes: after.is_empty(),
            stream: stream.clone(),
            left,
        })
    }

    /// Applies a plan made by [`Rooms::plan_remove`].
    pub fn commit_remove(&mut self, plan: &RemovePlan) {
        self.stream_room.remove(&plan.stream.stream_id);
        if let Some(room) = self.rooms.get_mut(&plan.room.room_id) {
            room.streams
                .retain(|s| s.stream_id != plan.stream.stream_id);
            room.info = plan.room.clone();
            if room.is_empty() {
                self.rooms.remove(&plan.room.room_id);
            }
        }
    }

    /// Checks a viewer session of `user_id` joining `room_id` (creating the room if it
    /// has to, with `new_session_id`).
    pub fn plan_join(
        &self,
        room_id: &str,
        user_id: &str,
        user_name: &str,
        now_ms: u64,
        new_session_id: u64,
    ) -> Result<JoinPlan, CoreError> {
        ids::validate(IdKind::Room, room_id)?;
        ids::validate(IdKind::User, user_id)?;
        ids::validate_len("UserName", user_name, MAX_USER_NAME_LEN)?;
        self.check_refused(room_id, user_id, now_ms)?;
        let room = self.rooms.get(room_id);
        let info = match room {
            Some(r) => r.info.clone(),
            None if self.rooms.len() as u64 >= u64::from(self.max_rooms) => {
                return Err(CoreError::TooManyRooms {
                    max: self.max_rooms,
                });
            }
            None => RoomInfo {
                room_id: room_id.to_string(),
                session_id: new_session_id,
                stream_seq: 0,
                next_number_id: 1,
                create_time_ms: now_ms,
            },
        };
        let joined = match room.and_then(|r| r.member(user_id)) {
            Some(_) => None,
            None => Some(RoomUser {
                user_id: user_id.to_string(),
                user_name: user_name.to_string(),
                login_ms: now_ms,
                role: 2,
            }),
        };
        Ok(JoinPlan {
            room: info,
            room_created: room.is_none(),
            joined,
            user_id: user_id.to_string(),
            user_name: user_name.to_string(),
            session: self.next_session.wrapping_add(1),
            now_ms,
        })
    }

    pub fn commit_join(&mut self, plan: &JoinPlan) {
        self.next_session = plan.session;
        let room = self
            .rooms
            .entry(plan.room.room_id.clone())
            .or_insert_with(|| Room::new(plan.room.clone()));
        match room.viewers.iter_mut().find(|v| v.user_id == plan.user_id) {
            Some(v) => v.sessions.push(plan.session),
            None => room.viewers.push(Viewer {
                user_id: plan.user_id.clone(),
                user_name: plan.user_name.clone(),
                since_ms: plan.now_ms,
                sessions: vec![plan.session],
            }),
        }
    }

    /// Checks viewer session `session` of `user_id` leaving `room_id` (every session of
    /// theirs when `None`: a kick or the room closing). `None` when it is not there (any
    /// more: the user was kicked, or the room closed, meanwhile).
    pub fn plan_leave(
        &self,
        room_id: &str,
        user_id: &str,
        session: Option<u64>,
    ) -> Option<LeavePlan> {
        let room = self.rooms.get(room_id)?;
        room.viewers
            .iter()
            .find(|v| v.user_id == user_id && session.is_none_or(|id| v.sessions.contains(&id)))?;
        let mut after = room.clone();
        Self::drop_session(&mut after, user_id, session);
        let left = match after.member(user_id) {
            Some(_) => None,
            None => room.member(user_id),
        };
        Some(LeavePlan {
            room: room.info.clone(),
            room_closes: after.is_empty(),
            left,
            user_id: user_id.to_string(),
            session,
        })
    }

    /// Applies a plan of [`Rooms::plan_leave`].
    pub fn commit_leave(&mut self, plan: &LeavePlan) {
        if let Some(room) = self.rooms.get_mut(&plan.room.room_id) {
            Self::drop_session(room, &plan.user_id, plan.session);
            if room.is_empty() {
                self.rooms.remove(&plan.room.room_id);
            }
        }
    }

    fn drop_session(room: &mut Room, user_id: &str, session: Option<u64>) {
        for v in room.viewers.iter_mut().filter(|v| v.user_id == user_id) {
            match session {
                Some(id) => v.sessions.retain(|s| *s != id),
                None => v.sessions.clear(),
            }
        }
        room.viewers.retain(|v| !v.sessions.is_empty());
    }

    /// The users viewing `room_id` (not only owning streams there).
    pub fn viewers(&self, room_id: &str) -> Vec<String> {
        self.rooms
            .get(room_id)
            .map(|r| r.viewers.iter().map(|v| v.user_id.clone()).collect())
            .unwrap_or_default()
    }

    /// Refuses `user_id` in `room_id` until `until_ms` (a kick). Expired refusals are
    /// forgotten here; past [`MAX_REFUSALS`] the one ending soonest goes first.
    pub fn refuse(&mut self, room_id: &str, user_id: &str, now_ms: u64, until_ms: u64) {
        self.refused.retain(|_, until| *until > now_ms);
        if self.refused.len() >= MAX_REFUSALS
            && let Some(first) = self
                .refused
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| k.clone())
        {
            self.refused.remove(&first);
        }
        if until_ms > now_ms {
            self.refused
                .insert((room_id.to_string(), user_id.to_string()), until_ms);
        }
    }

    fn check_refused(&self, room_id: &str, user_id: &str, now_ms: u64) -> Result<(), CoreError> {
        match self
            .refused
            .get(&(room_id.to_string(), user_id.to_string()))
        {
            Some(until) if *until > now_ms => Err(CoreError::UserKicked {
                user_id: user_id.to_string(),
                room_id: room_id.to_string(),
                secs_left: (until - now_ms).div_ceil(1000),
            }),
            _ => Ok(()),
        }
    }

    /// The room's streams in creation order, or `None` when the room does not exist.
    pub fn list(&self, room_id: &str) -> Option<&[StreamInfo]> {
        self.rooms.get(room_id).map(|r| r.streams.as_slice())
    }

    pub fn room(&self, room_id: &str) -> Option<&RoomInfo> {
        self.rooms.get(room_id).map(|r| &r.info)
    }

    /// The ids of up to `limit` open rooms, sorted (for operators' listings).
    pub fn room_ids(&self, limit: usize) -> Vec<String> {
        let mut ids: Vec<String> = self.rooms.keys().cloned().collect();
        ids.sort_unstable();
        ids.truncate(limit);
        ids
    }

    /// The stream with this id, wherever it is.
    pub fn stream(&self, stream_id: &str) -> Option<&StreamInfo> {
        let room = self.stream_room.get(stream_id)?;
        self.rooms
            .get(room)?
            .streams
            .iter()
            .find(|s| s.stream_id == stream_id)
    }

    /// Users of a room; a room that does not exist counts zero.
    pub fn user_count(&self, room_id: &str) -> UserCount {
        let users = self.users(room_id);
        UserCount {
            users: users.len() as u32,
            admins: users.iter().filter(|u| u.role == 4).count() as u32,
        }
    }

    /// The room's members, by login time (then id); empty when the room does not exist.
    pub fn users(&self, room_id: &str) -> Vec<RoomUser> {
        let Some(room) = self.rooms.get(room_id) else {
            return Vec::new();
        };
        let mut ids: Vec<&str> = room
            .streams
            .iter()
            .map(|s| s.user_id.as_str())
            .chain(room.viewers.iter().map(|v| v.user_id.as_str()))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut users: Vec<RoomUser> = ids.into_iter().filter_map(|u| room.member(u)).collect();
        users.sort_by(|a, b| (a.login_ms, &a.user_id).cmp(&(b.login_ms, &b.user_id)));
        users
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(stream: &str, room: &str, user: &str) -> NewStream {
        NewStream {
            stream_id: stream.into(),
            room_id: room.into(),
            user_id: user.into(),
            user_name: String::new(),
            title: String::new(),
            extra_info: String::new(),
            censor_flag: 0,
            origin: StreamOrigin::Added,
        }
    }

    fn add(reg: &mut Rooms, s: NewStream, now: u64, session: u64) -> AddPlan {
        let plan = reg.plan_add(s, now, session).unwrap();
        reg.commit_add(plan.clone());
        plan
    }

    #[test]
    fn numbers_and_seq_grow_and_room_lives_while_it_has_streams() {
        let mut reg = Rooms::new(10, 10);
        let a = add(&mut reg, new("a", "r", "u1"), 1_000, 77);
        assert_eq!(a.kind, AddKind::New);
        assert_eq!(
            (a.room.session_id, a.room.stream_seq, a.stream.number_id),
            (77, 1, 1)
        );
        let b = add(&mut reg, new("b", "r", "u2"), 2_000, 88);
        assert_eq!(
            (b.room.session_id, b.room.stream_seq, b.stream.number_id),
            (77, 2, 2)
        );
        assert_eq!(b.stream.create_time_ms, 2_000);
        let ids: Vec<_> = reg
            .list("r")
            .unwrap()
            .iter()
            .map(|s| s.stream_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);

        let rm = reg.plan_remove("r", "a").unwrap();
        assert!(!rm.room_closes);
        assert_eq!(rm.room.stream_seq, 3);
        reg.commit_remove(&rm);
        let rm = reg.plan_remove("r", "b").unwrap();
        assert!(rm.room_closes);
        reg.commit_remove(&rm);
        assert!(reg.list("r").is_none());
        assert!(reg.stream("b").is_none());

        // A new room session starts from scratch.
        let c = add(&mut reg, new("c", "r", "u1"), 3_000, 99);
        assert_eq!(
            (c.room.session_id, c.room.stream_seq, c.stream.number_id),
            (99, 1, 1)
        );
    }

    #[test]
    fn plan_changes_nothing() {
        let reg = Rooms::new(10, 10);
        reg.plan_add(new("a", "r", "u"), 0, 1).unwrap();
        assert!(reg.list("r").is_none());
    }

    #[test]
    fn ownership_and_uniqueness() {
        let mut reg = Rooms::new(10, 10);
        add(&mut reg, new("a", "r", "u1"), 0, 1);
        assert!(matches!(
            reg.plan_add(new("a", "r", "u2"), 0, 1),
            Err(CoreError::StreamOwnedByOther { .. })
        ));
        assert!(matches!(
            reg.plan_add(new("a", "other", "u1"), 0, 1),
            Err(CoreError::StreamInOtherRoom { .. })
        ));
        let mut again = new("a", "r", "u1");
        again.title = "new title".into();
        let plan = add(&mut reg, again, 5, 1);
        assert_eq!(plan.kind, AddKind::Refresh);
        assert_eq!(plan.room.stream_seq, 1);
        assert_eq!(reg.list("r").unwrap()[0].title, "new title");
        assert_eq!(reg.list("r").unwrap().len(), 1);
        assert!(matches!(
            reg.plan_remove("r", "zzz"),
            Err(CoreError::StreamNotFound { .. })
        ));
        assert!(matches!(
            reg.plan_remove("nope", "a"),
            Err(CoreError::StreamNotFound { .. })
        ));
    }

    #[test]
    fn limits() {
        let mut reg = Rooms::new(1, 2);
        add(&mut reg, new("a", "r", "u1"), 0, 1);
        assert!(matches!(
            reg.plan_add(new("b", "r", "u1"), 0, 1),
            Err(CoreError::RoomFull { max: 1, .. })
        ));
        add(&mut reg, new("b2", "r2", "u1"), 0, 1);
        assert!(matches!(
            reg.plan_add(new("c3", "r3", "u1"), 0, 1),
            Err(CoreError::TooManyRooms { max: 2 })
        ));
        let mut long = new("c", "r2", "u");
        long.extra_info = "x".repeat(1025);
        assert!(matches!(
            reg.plan_add(long, 0, 1),
            Err(CoreError::FieldTooLong {
                field: "ExtraInfo",
                ..
            })
        ));
    }

    #[test]
    fn user_count_counts_distinct_owners() {
        let mut reg = Rooms::new(10, 10);
        add(&mut reg, new("a", "r", "admin"), 0, 1);
        add(&mut reg, new("b", "r", "admin"), 0, 1);
        let mut live = new("c", "r", "alice");
        live.origin = StreamOrigin::Published;
        add(&mut reg, live, 0, 1);
        assert_eq!(
            reg.user_count("r"),
            UserCount {
                users: 2,
                admins: 1
            }
        );
        assert_eq!(reg.user_count("missing"), UserCount::default());
        // The same room as a user list: the admin first (its streams came first), the
        // publisher as host.
        let users = reg.users("r");
        assert_eq!(
            users
                .iter()
                .map(|u| (u.user_id.as_str(), u.role))
                .collect::<Vec<_>>(),
            [("admin", 4), ("alice", 1)]
        );
        assert!(reg.users("missing").is_empty());
    }

    #[test]
    fn restore_drops_empty_rooms_and_keeps_order() {
        let mut reg = Rooms::new(10, 10);
        add(&mut reg, new("a", "r", "u"), 0, 1);
        add(&mut reg, new("b", "r", "u"), 0, 1);
        let room = reg.room("r").unwrap().clone();
        let mut streams = reg.list("r").unwrap().to_vec();
        streams.reverse();
        let empty = RoomInfo {
            room_id: "gone".into(),
            ..room.clone()
        };
        let restored = Rooms::restore(10, 10, vec![room.clone(), empty], streams);
        assert_eq!(restored.room_count(), 1);
        assert_eq!(restored.list("r").unwrap()[0].stream_id, "a");
        assert_eq!(restored.room("r"), Some(&room));
        assert!(restored.stream("b").is_some());
    }
}
