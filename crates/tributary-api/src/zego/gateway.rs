//! The gateway: common parameters, signature, replay guard, environment, rate limits.
//!
//! Checks run in the vendor's order — Action, AppId, Timestamp, SignatureNonce, Signature,
//! SignatureVersion — so a client sees the same first error it would see at the vendor.
//! Beyond the vendor, a nonce may be used only once per app inside the time window
//! (100000005 with a Message that says "replayed"): the vendor's signature covers only the
//! app, nonce, secret and timestamp, so without this a captured URL could be replayed for
//! ten minutes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tributary_core::rate_limit::KeyedLimiter;
use tributary_core::replay::ReplayGuard;
use tributary_core::{AppId, CoreError};

use super::action::Action;
use super::codes::*;
use super::params::Params;
use super::signature;
use crate::control::{AppRuntime, ControlPlane};

/// The accepted clock difference between a request's Timestamp and ours, in seconds.
pub const TIMESTAMP_WINDOW_SECS: i64 = 600;
/// Nonces one app may have in the replay guard at once (far above what its rate limits
/// let through in a window).
const MAX_NONCES_PER_APP: usize = 2_000_000;
/// Rooms tracked at once by a per-room limiter.
const MAX_ROOM_BUCKETS: usize = 100_000;

/// The action of a request, or why there is none.
pub fn parse_action(query: &Params) -> Result<Action, ZegoError> {
    let name = query
        .non_empty("Action")
        .ok_or_else(|| ZegoError::new(GW_ACTION_EMPTY, "Action is required"))?;
    Action::parse(name)
        .ok_or_else(|| ZegoError::new(GW_ACTION_UNSUPPORTED, format!("unknown Action {name:?}")))
}

struct AppGuards {
    replay: Mutex<ReplayGuard>,
    actions: Mutex<KeyedLimiter<Action>>,
    rooms: Mutex<KeyedLimiter<(Action, String)>>,
}

pub struct Gateway {
    guards: HashMap<AppId, AppGuards>,
    /// Where calls are counted for every node sharing the store.
    control: Arc<ControlPlane>,
    /// Switches every rate limit off, whatever the apps say (benchmarks).
    rate_limits_off: bool,
}

/// The answer to a nonce used before (on this node or another sharing the store).
fn replayed() -> ZegoError {
    ZegoError::new(
        GW_SIGNATURE_ERROR,
        "SignatureNonce was already used within the last 10 minutes (replayed request); \
         generate a new nonce for every request",
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values stay consistent at every instruction; a poisoned lock is usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Gateway {
    pub fn new(control: &Arc<ControlPlane>, rate_limits_off: bool, now_ms: u64) -> Self {
        let guards = control
            .apps()
            .map(|app| {
                (
                    app.config.app_id,
                    AppGuards {
                        replay: Mutex::new(ReplayGuard::new(
                            TIMESTAMP_WINDOW_SECS as u64,
                            MAX_NONCES_PER_APP,
                            rand::random(),
                            now_ms / 1000,
                        )),
                        actions: Mutex::new(KeyedLimiter::new(64)),
                        rooms: Mutex::new(KeyedLimiter::new(MAX_ROOM_BUCKETS)),
                    },
                )
            })
            .collect();
        Gateway {
            guards,
            control: control.clone(),
            rate_limits_off,
        }
    }

    /// Checks the common parameters and returns the calling app. `claim_nonce`: false
    /// for a call another node checked and sent on (it claimed the nonce already).
    pub fn authenticate<'c>(
        &self,
        control: &'c ControlPlane,
        query: &Params,
        now_ms: u64,
        claim_nonce: bool,
    ) -> Result<&'c Arc<AppRuntime>, ZegoError> {
        let app_id: AppId = query
            .non_empty("AppId")
            .ok_or_else(|| ZegoError::new(GW_APPID_FORMAT, "AppId is required"))?
            .parse()
            .map_err(|_| ZegoError::new(GW_APPID_FORMAT, "AppId must be a decimal uint32"))?;
        let app = control
            .app(app_id)
            .ok_or_else(|| ZegoError::new(GW_UNKNOWN_APP, format!("unknown AppId {app_id}")))?;

        let timestamp = query
            .non_empty("Timestamp")
            .ok_or_else(|| ZegoError::new(GW_TIMESTAMP_EMPTY, "Timestamp is required"))?;
        let ts: i64 = timestamp.parse().map_err(|_| {
            ZegoError::new(
                GW_TIMESTAMP_FORMAT,
                "Timestamp must be Unix seconds (int64)",
            )
        })?;
        let now_secs = (now_ms / 1000) as i64;
        if !tributary_core::replay::within_window(now_secs, ts, TIMESTAMP_WINDOW_SECS) {
            return Err(ZegoError::new(
                GW_SIGNATURE_EXPIRED,
                format!(
                    "Timestamp {ts} is more than {TIMESTAMP_WINDOW_SECS} s away from server time {now_secs}"
                ),
            ));
        }

        let nonce = query
            .non_empty("SignatureNonce")
            .ok_or_else(|| ZegoError::new(GW_NONCE_EMPTY, "SignatureNonce is required"))?;
        let received = query
            .non_empty("Signature")
            .ok_or_else(|| ZegoError::new(GW_SIGNATURE_EMPTY, "Signature is required"))?;
        let expected = signature::sign(app_id, nonce, &app.config.server_secret, timestamp);
        if !signature::verify(&expected, received) {
            return Err(ZegoError::new(
                GW_SIGNATURE_ERROR,
                "Signature mismatch: expected lowercase hex md5(AppId + SignatureNonce + ServerSecret + Timestamp)",
            ));
        }

        match query.non_empty("SignatureVersion") {
            None => {
                return Err(ZegoError::new(
                    GW_VERSION_EMPTY,
                    "SignatureVersion is required",
                ));
            }
            Some("2.0") => {}
            Some(other) => {
                return Err(ZegoError::new(
                    GW_VERSION_UNSUPPORTED,
                    format!("SignatureVersion {other:?} is not supported; use 2.0"),
                ));
            }
        }

        let is_test = match query.non_empty("IsTest") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                return Err(ZegoError::new(
                    GW_WRONG_ENV,
                    format!("IsTest must be true or false, not {v:?}"),
                ));
            }
        };
        if is_test != app.config.is_test {
            let msg = if app.config.is_test {
                format!("app {app_id} is a test app: send IsTest=true")
            } else {
                format!("app {app_id} is a production app: send IsTest=false or leave it out")
            };
            return Err(ZegoError::new(GW_WRONG_ENV, msg));
        }

        if !claim_nonce {
            return Ok(app);
        }
        if let Some(g) = self.guards.get(&app_id) {
            lock(&g.replay)
                .check_and_insert(nonce, now_ms / 1000)
                .map_err(|e| match e {
                    CoreError::NonceReplayed => replayed(),
                    other => ZegoError::new(GW_INTERNAL, other.to_string()),
                })?;
        }
        // And for the other nodes sharing the store (a replay sent to another node).
        let keep_ms = 2 * TIMESTAMP_WINDOW_SECS as u64 * 1000;
        match control.claim_nonce(app_id, "zego", nonce, now_ms, keep_ms) {
            Ok(true) => {}
            Ok(false) => return Err(replayed()),
            Err(e) => return Err(ZegoError::new(GW_INTERNAL, e.to_string())),
        }
        Ok(app)
    }

    fn limits_on(&self, app: &AppRuntime) -> bool {
        !self.rate_limits_off && app.config.rate_limits.enabled
    }

    /// The app-wide limit of an action.
    pub fn throttle(&self, app: &AppRuntime, action: Action, now_ms: u64) -> Result<(), ZegoError> {
        if !self.limits_on(app) {
            return Ok(());
        }
        let cfg = &app.config.rate_limits;
        let rate = cfg
            .per_second
            .get(action.name())
            .copied()
            .unwrap_or_else(|| action.default_rate(app.config.is_test));
        if rate <= 0.0 {
            return Ok(());
        }
        let Some(g) = self.guards.get(&app.config.app_id) else {
            return Ok(());
        };
        let refused = || {
            ZegoError::new(
                action.family().throttled(),
                format!(
                    "{} is limited to {rate} requests per second for this app",
                    action.name()
                ),
            )
        };
        if !lock(&g.actions).try_take(&action, rate, rate, now_ms) {
            return Err(refused());
        }
        let (window_ms, limit) = window(rate);
        self.cluster_count(
            app,
            &format!("action:{}", action.name()),
            window_ms,
            limit,
            now_ms,
        )
        .then_some(())
        .ok_or_else(refused)
    }

    /// The cluster's count of a call (every node sharing the store): whether it is within
    /// `limit` calls per fixed window. One node: always (its own limiters decide). A
    /// store that does not answer refuses the call (its nonce claim failed too).
    fn cluster_count(
        &self,
        app: &AppRuntime,
        key: &str,
        window_ms: u64,
        limit: u64,
        now_ms: u64,
    ) -> bool {
        match self
            .control
            .count_call(app.config.app_id, key, window_ms, now_ms)
        {
            Ok(None) => true,
            Ok(Some(n)) => n <= limit,
            Err(e) => {
                tracing::warn!(app_id = app.config.app_id, error = %e, "call not counted against the cluster's rate limit");
                false
            }
        }
    }

    /// The per-room limit of an action (DescribeSimpleStreamList: one call per 10 s).
    pub fn throttle_room(
        &self,
        app: &AppRuntime,
        action: Action,
        room_id: &str,
        now_ms: u64,
    ) -> Result<(), ZegoError> {
        if !self.limits_on(app) {
            return Ok(());
        }
        let interval = app
            .config
            .rate_limits
            .per_room_interval_secs
            .get(action.name())
            .copied()
            .or_else(|| action.default_room_interval());
        let Some(interval) = interval.filter(|i| *i > 0.0) else {
            return Ok(());
        };
        let Some(g) = self.guards.get(&app.config.app_id) else {
            return Ok(());
        };
        let refused = || {
            ZegoError::new(
                ROOM_ROOM_THROTTLED,
                format!(
                    "{} is limited to one call per {interval} s for one room",
                    action.name()
                ),
            )
        };
        if !lock(&g.rooms).try_take(&(action, room_id.to_string()), 1.0 / interval, 1.0, now_ms) {
            return Err(refused());
        }
        let key = format!("room:{}:{room_id}", action.name());
        let window_ms = (interval * 1000.0).ceil().max(1.0) as u64;
        self.cluster_count(app, &key, window_ms, 1, now_ms)
            .then_some(())
            .ok_or_else(refused)
    }
}

/// A rate as a fixed window and the calls it allows: per second for 1/s and more, else
/// one call per `1/rate` seconds.
fn window(rate: f64) -> (u64, u64) {
    if rate >= 1.0 {
        (1000, rate.floor() as u64)
    } else {
        ((1000.0 / rate.max(0.001)).ceil() as u64, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn rates_become_fixed_windows() {
        assert_eq!(window(10.0), (1000, 10));
        assert_eq!(window(2.5), (1000, 2));
        assert_eq!(window(1.0), (1000, 1));
        assert_eq!(window(0.5), (2000, 1));
        assert_eq!(window(0.1), (10000, 1));
    }
}
