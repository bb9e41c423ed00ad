//! Typed errors of the domain rules. Each dialect maps them to its own codes.

use thiserror::Error;

use crate::ids::IdKind;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    #[error("{kind} is missing")]
    MissingId { kind: IdKind },
    #[error("{kind} is {len} bytes; at most {max} are allowed")]
    IdTooLong {
        kind: IdKind,
        len: usize,
        max: usize,
    },
    #[error("{kind} contains the character {ch:?}, which is not allowed")]
    IdBadChar { kind: IdKind, ch: char },
    #[error("{field} is {len} bytes; at most {max} are allowed")]
    FieldTooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("stream {stream_id} is owned by user {owner}, not {user}")]
    StreamOwnedByOther {
        stream_id: String,
        owner: String,
        user: String,
    },
    #[error("stream {stream_id} already exists in room {room_id}")]
    StreamInOtherRoom { stream_id: String, room_id: String },
    #[error("stream {stream_id} does not exist in room {room_id}")]
    StreamNotFound { stream_id: String, room_id: String },
    #[error("room {room_id} already holds {max} streams")]
    RoomFull { room_id: String, max: u32 },
    #[error("user {user_id} was kicked out of room {room_id}; refused for {secs_left} s more")]
    UserKicked {
        user_id: String,
        room_id: String,
        secs_left: u64,
    },
    #[error("the app already has {max} rooms open")]
    TooManyRooms { max: u32 },
    #[error("the ban list already holds {max} stream ids")]
    BanListFull { max: u32 },
    #[error(
        "Sequence {got} for stream {stream_id} is not greater than {last}, accepted {age_ms} ms ago; \
         it must strictly increase within 10 s"
    )]
    StaleSequence {
        stream_id: String,
        got: u64,
        last: u64,
        age_ms: u64,
    },
    #[error("SignatureNonce was already used by this app within the time window (replay)")]
    NonceReplayed,
    #[error("the replay guard holds {max} nonces for this app; retry in a moment")]
    ReplayGuardFull { max: usize },
}
