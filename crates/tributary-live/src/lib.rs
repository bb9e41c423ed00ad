//! tributary's live plane: RTMP ingest and play, the hub, HTTP-FLV, HLS and the RTMP push
//! client. See the crate README for what lives where.

pub mod amf0;
pub mod annexb;
pub mod auth;
pub mod chunk;
pub mod dial;
pub mod flv;
pub mod handshake;
pub mod hls;
pub mod hls_audience;
pub mod http;
pub mod hub;
pub mod id3;
pub mod media;
pub mod metrics;
pub mod push;
pub mod queue;
pub mod rtmp_server;
pub mod session;
pub mod slots;
pub mod ts;
pub mod write_pacer;

pub use hub::{Hub, HubConfig, HubError, HubEvent, Publisher, Subscription};
pub use media::{Kind, Packet};
pub use metrics::{LiveMetrics, Protocol};
