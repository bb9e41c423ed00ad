//! The Tencent Cloud API 3.0 dialect (`X-TC-Action`, TC3-HMAC-SHA256).
//!
//! Served on `/` beside the ZEGO dialect (`front.rs` tells them apart), and alone on
//! `[tencent] http` if set: `CreateCommonMixStream`, `CancelCommonMixStream` and the
//! watermark actions over TC3 (POST JSON or GET flattened) and the legacy HmacSHA1/256
//! form, translated into the same `MixSpec` and mixing control as the ZEGO dialect.
//! `OutputStreamType` 0 (the mix taking over an input's name) uses the hub's aliases.

pub mod envelope;
pub mod handler;
pub mod legacy;
pub mod mix;
pub mod params;
pub mod signature;
pub mod templates;
