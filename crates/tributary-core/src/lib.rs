//! tributary's domain model and rules.
//!
//! Everything here is pure: no I/O, no async, no clock. Time comes in as Unix
//! milliseconds (or seconds) from the caller, so every rule can be tested with a fake clock
//! and the same inputs always give the same outputs. The HTTP dialects translate their wire
//! types into calls on these types; the binary wires them to a [`store::Store`].

pub mod app;
pub mod ban;
pub mod error;
pub mod event;
pub mod ids;
pub mod mix;
pub mod mix_task;
pub mod rate_limit;
pub mod registry;
pub mod replay;
pub mod sequence;
pub mod store;
pub mod token;
pub mod url_policy;
pub mod watermark;

pub use app::{AppConfig, AppId, RateLimitConfig};
pub use error::CoreError;
pub use event::{CloseReason, CoreEvent};
