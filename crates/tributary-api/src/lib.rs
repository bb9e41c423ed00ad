//! tributary's HTTP control plane.
//!
//! - [`control`]: the service every dialect (and, later, the live plane) calls to change
//!   rooms, streams and bans; it persists each change with the callbacks it causes, then
//!   applies it in memory and announces it as a [`tributary_core::CoreEvent`].
//! - [`mixing`]: mix tasks (start, update, stop, persist, resume) over a media engine.
//! - [`cluster`]: calls between nodes sharing a store (a mix task's calls answered by
//!   the node that runs it) and the credentials they show each other.
//! - [`callbacks`]: signed webhook payloads and their durable, retried delivery.
//! - [`zego`]: the ZEGO server API v2 dialect (gateway, signature, envelope, actions).
//! - [`tencent`]: the Tencent Cloud API 3.0 dialect (so far: TC3-HMAC-SHA256 verification).

pub mod blocking;
pub mod callbacks;
pub mod clock;
pub mod cluster;
pub mod control;
pub mod front;
pub mod mixing;
mod room_lists;
pub mod tencent;
#[cfg(test)]
mod test_store;
pub mod zego;

pub use control::{ControlError, ControlPlane, PlayUrls};
