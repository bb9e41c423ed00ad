//! The Tencent Cloud API 3.0 dialect (`X-TC-Action`, TC3-HMAC-SHA256).
//!
//! Only the signatures (TC3 and the legacy form signature) and the template layouts are
//! here so far; the actions (CreateCommonMixStream and its
//! siblings) come with the Tencent issue and translate into the same `MixSpec` and
//! engine as the ZEGO dialect.

pub mod legacy;
pub mod signature;
pub mod templates;
