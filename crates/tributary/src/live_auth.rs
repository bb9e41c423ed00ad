//! The live plane's [`Authority`]: tokens from the core, bans and rooms from the control
//! plane. Publishing is refused unless the token is right (or open publish is on), the
//! stream id is valid and not banned; a published stream joins its room like AddStream
//! and leaves it with the close reason of how it ended.

use std::sync::Arc;

use tracing::warn;

use tributary_api::clock::now_ms;
use tributary_api::{ControlError, ControlPlane};
use tributary_core::ids::{self, IdKind};
use tributary_core::registry::{NewStream, StreamOrigin};
use tributary_core::token::{self, Claims, Purpose, TokenError};
use tributary_core::{AppId, CloseReason, CoreError};
use tributary_live::auth::{Attendance, Authority, PlayRequest, PublishRequest, Refusal};

use crate::viewers::Viewers;

pub struct LiveAuth {
    pub control: Arc<ControlPlane>,
    pub viewers: Arc<Viewers>,
    pub open_publish: bool,
    pub play_token: bool,
    /// On a node sharing its store: lets other nodes relay this node's streams.
    pub relay_key: Option<tributary_api::cluster::ClusterKey>,
}

const REJECTED: &str = "NetStream.Publish.Rejected";
const PLAY_FAILED: &str = "NetStream.Play.Failed";

fn token_refusal(status: &'static str, e: TokenError) -> Refusal {
    let reason = match e {
        TokenError::Missing => "missing_token",
        TokenError::Expired { .. } => "expired_token",
        TokenError::Malformed | TokenError::BadSignature => "bad_token",
    };
    Refusal::new(status, reason, e.to_string())
}

/// Where a published stream goes when the key names no room or user: its own id.
fn room_and_user(req: &PublishRequest) -> (String, String) {
    let room = if req.room_id.is_empty() {
        req.stream_id.clone()
    } else {
        req.room_id.clone()
    };
    let user = if req.user_id.is_empty() {
        req.stream_id.clone()
    } else {
        req.user_id.clone()
    };
    (room, user)
}

impl LiveAuth {
    fn secret(&self, app_id: AppId, status: &'static str) -> Result<String, Refusal> {
        self.control
            .app(app_id)
            .map(|a| a.config.server_secret.clone())
            .ok_or_else(|| Refusal::new(status, "unknown_app", format!("unknown app {app_id}")))
    }
}

impl Authority for LiveAuth {
    fn check_publish(&self, req: &PublishRequest) -> Result<(), Refusal> {
        let secret = self.secret(req.app_id, REJECTED)?;
        if let Err(e) = ids::validate(IdKind::Stream, &req.stream_id) {
            return Err(Refusal::new(
                "NetStream.Publish.BadName",
                "bad_id",
                e.to_string(),
            ));
        }
        if !self.open_publish {
            let claims = Claims {
                purpose: Purpose::Publish,
                app_id: req.app_id,
                stream_id: &req.stream_id,
                room_id: &req.room_id,
                user_id: &req.user_id,
            };
            token::verify(&secret, &claims, req.token.as_deref(), now_ms() / 1000)
                .map_err(|e| token_refusal(REJECTED, e))?;
        }
        if self.control.is_banned(req.app_id, &req.stream_id) {
            return Err(Refusal::new(
                REJECTED,
                "banned",
                format!(
                    "stream {} is forbidden (ForbidRTCStream); resume it first",
                    req.stream_id
                ),
            ));
        }
        Ok(())
    }

    fn register_publish(&self, req: &PublishRequest) -> Result<(), Refusal> {
        let (room_id, user_id) = room_and_user(req);
        self.control
            .add_stream(
                req.app_id,
                NewStream {
                    stream_id: req.stream_id.clone(),
                    room_id,
                    user_id: user_id.clone(),
                    user_name: user_id,
                    title: String::new(),
                    extra_info: String::new(),
                    censor_flag: 0,
                    origin: StreamOrigin::Published,
                },
            )
            .map(|_| ())
            .map_err(|e| match e {
                ControlError::Rule(CoreError::UserKicked { .. }) => {
                    Refusal::new(REJECTED, "kicked", e.to_string())
                }
                e => Refusal::new("NetStream.Publish.BadName", "room_rules", e.to_string()),
            })
    }

    fn unregister_publish(&self, req: &PublishRequest, reason: CloseReason) {
        let (room_id, _) = room_and_user(req);
        if let Err(e) = self
            .control
            .remove_stream(req.app_id, &room_id, &req.stream_id, reason)
        {
            // DeleteStream may have removed it already: the room no longer lists it.
            warn!(app_id = req.app_id, stream_id = %req.stream_id, error = %e, "published stream was not in its room");
        }
    }

    /// A player that names a room and user must hold a play token bound to them (even
    /// with `--play-token` off): membership is not taken on the player's word.
    fn check_play(&self, req: &PlayRequest) -> Result<(), Refusal> {
        if let Some(token) = &req.relay {
            // Another node copying the stream for its own players: it proves it holds
            // the cluster key, and joins no room.
            let allowed = self.relay_key.as_ref().is_some_and(|k| {
                k.relay_allowed(req.app_id, &req.stream_id, token, now_ms() / 1000)
            });
            return if allowed && !req.names_a_member() {
                Ok(())
            } else {
                Err(Refusal::new(
                    PLAY_FAILED,
                    "bad_relay",
                    "bad relay credential",
                ))
            };
        }
        let secret = self.secret(req.app_id, PLAY_FAILED)?;
        if self.play_token || req.names_a_member() {
            if req.names_a_member() && (req.room_id.is_empty() || req.user_id.is_empty()) {
                return Err(Refusal::new(
                    PLAY_FAILED,
                    "bad_member",
                    "a player that names a room must name its user too, and the other way round",
                ));
            }
            let claims = Claims {
                purpose: Purpose::Play,
                app_id: req.app_id,
                stream_id: &req.stream_id,
                room_id: &req.room_id,
                user_id: &req.user_id,
            };
            token::verify(&secret, &claims, req.token.as_deref(), now_ms() / 1000)
                .map_err(|e| token_refusal(PLAY_FAILED, e))?;
        }
        Ok(())
    }

    fn join_play(&self, req: &PlayRequest) -> Result<Option<Attendance>, Refusal> {
        if !req.names_a_member() {
            return Ok(None);
        }
        self.viewers
            .join(req.app_id, &req.room_id, &req.user_id)
            .map(Some)
            .map_err(|e| {
                let reason = match &e {
                    ControlError::Rule(CoreError::UserKicked { .. }) => "kicked",
                    _ => "room_rules",
                };
                Refusal::new(PLAY_FAILED, reason, e.to_string())
            })
    }
}
