//! The Tencent Cloud API 3.0 dialect (`X-TC-Action`, TC3-HMAC-SHA256).
//!
//! Only the signature is here so far; the actions (CreateCommonMixStream and its
//! siblings) come with the Tencent issue and translate into the same `MixSpec` and
//! engine as the ZEGO dialect.

pub mod signature;
