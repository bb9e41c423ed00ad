//! The Tencent Cloud API 3.0 dialect (`X-TC-Action`, TC3-HMAC-SHA256).
//!
//! Groundwork so far, each piece tested but not routed yet: the signatures (TC3 and the
//! legacy form signature), the parameters in their three wire shapes, the reply envelope,
//! the template layouts, and CreateCommonMixStream → `MixSpec` (`mix.rs`). The actions (CreateCommonMixStream and its siblings) come
//! with the Tencent issue and translate into the same `MixSpec` and engine as the ZEGO
//! dialect.

pub mod envelope;
pub mod legacy;
pub mod mix;
pub mod params;
pub mod signature;
pub mod templates;
