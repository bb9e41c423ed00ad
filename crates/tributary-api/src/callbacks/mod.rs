//! Server-to-server callbacks (webhooks): the ZEGO payload shapes and signature, and
//! durable at-least-once delivery through the store's outbox.

pub mod outbox;
pub mod payload;
pub mod signature;
