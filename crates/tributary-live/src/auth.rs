//! What the live plane asks the rest of the server before letting a stream in or out.
//!
//! The live plane knows RTMP, not apps, tokens or rooms' rules: the binary implements
//! [`Authority`] with the core's token check, ban list and registry (and its callbacks).

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use tributary_core::{AppId, CloseReason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    pub app_id: AppId,
    pub stream_id: String,
    pub room_id: String,
    pub user_id: String,
    pub token: Option<String>,
    pub peer: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayRequest {
    pub app_id: AppId,
    pub stream_id: String,
    /// The room and user a player names (`?room=…&user=…`): with a token bound to them
    /// the player is a member of that room while it plays. Empty: an anonymous player.
    pub room_id: String,
    pub user_id: String,
    pub token: Option<String>,
    pub peer: Option<SocketAddr>,
    /// Another node's relay credential (`?relay=…` on HTTP-FLV): that node copies the
    /// stream for its own players and mixes, and is not a member of any room.
    pub relay: Option<String>,
}

impl PlayRequest {
    /// Whether the player asks to be a member of a room.
    pub fn names_a_member(&self) -> bool {
        !self.room_id.is_empty() || !self.user_id.is_empty()
    }
}

/// A viewer's place in a room, held for as long as its player or feed lasts; dropping it
/// takes the viewer out (on a blocking thread: that may write callbacks). `ended` fires
/// when the server API removes the user (KickoutUser, CloseRoom): the session must stop.
pub struct Attendance {
    ended: CancellationToken,
    reason: CloseReason,
    leave: Option<Box<dyn FnOnce(CloseReason) + Send + Sync>>,
}

impl Attendance {
    pub fn new(
        ended: CancellationToken,
        leave: Box<dyn FnOnce(CloseReason) + Send + Sync>,
    ) -> Self {
        Attendance {
            ended,
            // A session that says nothing else ended with its connection.
            reason: CloseReason::Disconnected,
            leave: Some(leave),
        }
    }

    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }

    /// How the session ended, for `room_logout` (default: the connection dropped).
    pub fn set_reason(&mut self, reason: CloseReason) {
        self.reason = reason;
    }
}

impl Drop for Attendance {
    fn drop(&mut self) {
        let Some(leave) = self.leave.take() else {
            return;
        };
        let reason = self.reason;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || leave(reason));
            }
            Err(_) => leave(reason),
        }
    }
}

impl std::fmt::Debug for Attendance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attendance")
            .field("ended", &self.ended.is_cancelled())
            .finish()
    }
}

/// Resolves when an attendance ends; never for an anonymous player.
pub async fn removed(attendance: &Option<Attendance>) {
    match attendance {
        Some(a) => a.ended().cancelled().await,
        None => std::future::pending().await,
    }
}

/// Why a publish or play is refused, in the terms each side needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The RTMP status code sent to the client (`NetStream.Publish.BadName`, …).
    pub status: &'static str,
    /// A short label for metrics (`bad_token`, `banned`, …).
    pub reason: &'static str,
    /// What the client and the log are told.
    pub message: String,
}

impl Refusal {
    pub fn new(status: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            reason,
            message: message.into(),
        }
    }
}

pub trait Authority: Send + Sync + 'static {
    /// Cheap checks before anything is claimed: the app exists, the token, the ban list.
    fn check_publish(&self, req: &PublishRequest) -> Result<(), Refusal>;
    /// Puts the stream in its room (and queues `stream_create`). May block on the store;
    /// called on a blocking thread.
    fn register_publish(&self, req: &PublishRequest) -> Result<(), Refusal>;
    /// Takes the stream out of its room (and queues `stream_close`). May block.
    fn unregister_publish(&self, req: &PublishRequest, reason: CloseReason);
    /// Checks a play request (token if the configuration wants one, or if the player
    /// names a room and user).
    fn check_play(&self, req: &PlayRequest) -> Result<(), Refusal>;
    /// Puts a checked player that names a room and user in that room (`None` for an
    /// anonymous player). May block on the store; see [`join`].
    fn join_play(&self, req: &PlayRequest) -> Result<Option<Attendance>, Refusal>;
}

/// [`Authority::join_play`] on tokio's blocking pool.
pub async fn join(
    auth: &std::sync::Arc<dyn Authority>,
    req: &PlayRequest,
) -> Result<Option<Attendance>, Refusal> {
    if !req.names_a_member() {
        return Ok(None);
    }
    let (auth, req) = (auth.clone(), req.clone());
    tokio::task::spawn_blocking(move || auth.join_play(&req))
        .await
        .unwrap_or_else(|e| {
            Err(Refusal::new(
                "NetStream.Play.Failed",
                "internal",
                format!("joining the room failed: {e}"),
            ))
        })
}

/// [`Authority::register_publish`] on tokio's blocking pool (it may wait on the store),
/// for a publisher being admitted by an async task.
pub async fn register(
    auth: &std::sync::Arc<dyn Authority>,
    req: &PublishRequest,
) -> Result<(), Refusal> {
    let (auth, req) = (auth.clone(), req.clone());
    tokio::task::spawn_blocking(move || auth.register_publish(&req))
        .await
        .unwrap_or_else(|e| {
            Err(Refusal::new(
                "NetStream.Publish.Rejected",
                "internal",
                format!("registration failed: {e}"),
            ))
        })
}

/// The hub key of a stream.
pub fn stream_key(app_id: AppId, stream_id: &str) -> String {
    format!("{app_id}/{stream_id}")
}
