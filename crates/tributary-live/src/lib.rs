//! The live plane of tributary: RTMP ingest and play, HTTP-FLV, HLS, and the stream hub.
//!
//! Nothing lives here yet: the live-plane issue fills this crate. It exists now so the
//! workspace has its final shape and the dependency direction (live → core) is fixed.
