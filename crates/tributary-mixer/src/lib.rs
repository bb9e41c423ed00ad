//! The media engine of tributary: decode, timeline, compose, audio mix, encode.
//!
//! `codec` is the only module that touches FFmpeg; `timeline`, `compose` (with `corners`,
//! `blur`), `label` and `audio` are pure and tested with synthetic frames and a fake
//! clock; `task` wires them into threads, and `ticker` runs the light tasks (audio-only,
//! pass-through) many to a thread.

pub use tributary_live::annexb;
pub mod audio;
pub mod blur;
pub mod bridge;
pub mod codec;
pub mod compose;
pub mod corners;
pub mod engine;
pub mod fdk_aac;
pub mod fonts;
pub mod frame;
pub mod hevc;
pub mod images;
pub mod input;
pub mod label;
pub mod net;
pub mod output;
pub mod passed_sei;
pub mod placeholder;
pub mod pool;
mod pull;
pub mod resample;
pub mod sei;
mod shared_decode;
pub mod silence;
pub mod sound_level;
pub mod task;
mod ticker;
pub mod timeline;

pub use engine::{Engine, EngineConfig, EngineError, EngineEvent, MixMetrics};
