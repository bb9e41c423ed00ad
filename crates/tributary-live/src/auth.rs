//! What the live plane asks the rest of the server before letting a stream in or out.
//!
//! The live plane knows RTMP, not apps, tokens or rooms' rules: the binary implements
//! [`Authority`] with the core's token check, ban list and registry (and its callbacks).

use std::net::SocketAddr;

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
    pub token: Option<String>,
    pub peer: Option<SocketAddr>,
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
    /// Checks a play request (token if the configuration wants one).
    fn check_play(&self, req: &PlayRequest) -> Result<(), Refusal>;
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
