//! tributary's RTC plane: WebRTC publishers (WHIP) on one UDP socket, bridged into the
//! live hub as streams like any RTMP one. See the README for what each module owns.

pub mod egress;
mod gso;
pub mod ingest;
pub mod server;

pub mod tcp;
pub use server::{
    Accepted, KeyFrameFor, OnPublish, RtcConfig, RtcServer, SourceFor, TcpSetting, WhipError,
};
