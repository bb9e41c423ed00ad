//! What happened, as facts other parts react to: callbacks, room event feeds, and the live
//! plane (which cuts off a publisher on [`CoreEvent::StreamForbidden`]).

use crate::app::AppId;
use crate::registry::{RoomInfo, RoomUser, StreamInfo};

/// Why a stream left its room's list. Dialects map these to their own numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The publisher stopped normally.
    Normal,
    /// No data from the publisher for too long.
    Timeout,
    /// Kicked by a server API.
    Kicked,
    /// The publisher's connection dropped.
    Disconnected,
    /// The room was cleared.
    RoomCleared,
    /// Removed by the DeleteStream API (signalling only).
    Deleted,
    /// Cut off because its id was forbidden.
    Forbidden,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CoreEvent {
    /// A stream joined a room's list. `room` is the room after the change.
    StreamAdded {
        app_id: AppId,
        room: RoomInfo,
        stream: StreamInfo,
    },
    /// A stream left a room's list. `room` is the room after the change (its `stream_seq`
    /// already counts this removal, even when the room closed with it).
    StreamRemoved {
        app_id: AppId,
        room: RoomInfo,
        stream: StreamInfo,
        reason: CloseReason,
        at_ms: u64,
    },
    /// A stream id was put on the ban list: a live publisher of it must be cut off now.
    /// `room_id` is the room the stream was in when forbidden (None for a pre-emptive ban).
    StreamForbidden {
        app_id: AppId,
        stream_id: String,
        room_id: Option<String>,
    },
    /// A stream id left the ban list: it may publish again.
    StreamResumed { app_id: AppId, stream_id: String },
    /// A stream was taken out of its room by the API (KickoutUser, CloseRoom): a live
    /// publisher of it must be cut off now (its `stream_close` is already queued).
    PublisherKicked { app_id: AppId, stream_id: String },
    /// A room got its first member. `creator` is that member's user id.
    RoomCreated {
        app_id: AppId,
        room: RoomInfo,
        creator: String,
    },
    /// A room lost its last member. `reason` is how that member left; `quiet` when the
    /// caller asked for no `room_close` callback (CloseRoom without RoomCloseCallback).
    RoomClosed {
        app_id: AppId,
        room: RoomInfo,
        reason: CloseReason,
        at_ms: u64,
        quiet: bool,
    },
    /// A user became a member of a room (their first stream or viewer session there).
    UserJoined {
        app_id: AppId,
        room: RoomInfo,
        user: RoomUser,
    },
    /// A user stopped being a member of a room (their last stream or session ended).
    UserLeft {
        app_id: AppId,
        room: RoomInfo,
        user: RoomUser,
        reason: CloseReason,
        at_ms: u64,
    },
    /// Viewer sessions were taken out of a room by the API (KickoutUser: `users`;
    /// CloseRoom: `None`, everyone): their players and feeds must end now.
    ViewersRemoved {
        app_id: AppId,
        room_id: String,
        users: Option<Vec<String>>,
    },
}
