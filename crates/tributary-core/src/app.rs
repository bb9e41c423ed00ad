//! Per-application settings: secrets, environment, limits, rate limits.
//!
//! An *app* is the tenant unit of both vendor dialects: every request names one and is
//! signed with its secret, and every room, stream, ban and task belongs to one.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A numeric application id, as the ZEGO dialect's `AppId` (a decimal `u32`).
pub type AppId = u32;

/// Everything tributary knows about one app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppConfig {
    /// The numeric `AppId` requests name.
    pub app_id: AppId,
    /// Signs API requests (`Signature` of the ZEGO dialect).
    pub server_secret: String,
    /// Signs outgoing callbacks. Distinct from the server secret on purpose: a callback
    /// receiver must not hold the key that can drive the API.
    pub callback_secret: String,
    /// Where callbacks go. Every URL receives every callback (each its own delivery).
    #[serde(default)]
    pub callback_urls: Vec<String>,
    /// Where the room callbacks (`room_create`, `room_close`, `room_login`,
    /// `room_logout`) go; none when empty. Apart from the stream and mix callbacks, as
    /// the vendor configures them, because they come once per player.
    #[serde(default)]
    pub room_callback_urls: Vec<String>,
    /// A test-only app: requests must say `IsTest=true`, and hand-typed stream ids carry
    /// the `zegotest-<AppId>-` prefix.
    #[serde(default)]
    pub is_test: bool,
    #[serde(default)]
    pub limits: AppLimits,
    #[serde(default)]
    pub rate_limits: RateLimitConfig,
    /// SecretId/SecretKey pairs for the Tencent Cloud API 3.0 dialect.
    #[serde(default)]
    pub tencent_credentials: Vec<TencentCredential>,
}

/// A Tencent Cloud API key of an app (`SecretId` names it in requests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TencentCredential {
    /// Named by requests (`SecretId`).
    pub secret_id: String,
    /// Signs TC3-HMAC-SHA256 requests; never sent.
    pub secret_key: String,
}

impl AppConfig {
    /// A fresh app with the given secrets and default limits.
    pub fn new(app_id: AppId, server_secret: String, callback_secret: String) -> Self {
        AppConfig {
            app_id,
            server_secret,
            callback_secret,
            callback_urls: Vec::new(),
            room_callback_urls: Vec::new(),
            is_test: false,
            limits: AppLimits::default(),
            rate_limits: RateLimitConfig::default(),
            tencent_credentials: Vec::new(),
        }
    }
}

/// Hard limits of an app's resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AppLimits {
    /// Inputs one mix task may have.
    pub max_mix_inputs: u32,
    /// Outputs one mix task may have.
    pub max_mix_outputs: u32,
    /// Streams one room may hold; bounds the registry's memory per room.
    pub max_streams_per_room: u32,
    /// Rooms one app may have open at once; with the above, bounds the registry and the
    /// store against a caller that invents room ids.
    pub max_rooms: u32,
    /// Stream ids the ban list may hold; bounds its memory and the store.
    pub max_banned_streams: u32,
    /// How long a user removed by KickoutUser is refused in that room (publishing and
    /// playing), in seconds. The vendor does not say; a refusal outlasts a client's
    /// automatic reconnect, so a kick sticks. 0 lets them back at once.
    pub kick_refusal_secs: u32,
}

impl Default for AppLimits {
    fn default() -> Self {
        AppLimits {
            max_mix_inputs: 9,
            max_mix_outputs: 3,
            max_streams_per_room: 1000,
            max_rooms: 100_000,
            max_banned_streams: 100_000,
            kick_refusal_secs: 60,
        }
    }
}

/// Rate-limit settings. The per-action defaults are the dialect's (the vendor's documented
/// limits); `per_second` overrides them by action name, and `enabled = false` switches
/// limiting off (benchmarks, trusted single-tenant setups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Whether the app's requests are rate-limited at all.
    pub enabled: bool,
    /// Action name → allowed requests per second for the whole app.
    pub per_second: BTreeMap<String, f64>,
    /// Action name → minimum seconds between two calls for the same room.
    pub per_room_interval_secs: BTreeMap<String, f64>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            per_second: BTreeMap::new(),
            per_room_interval_secs: BTreeMap::new(),
        }
    }
}
