//! The media engine of tributary: decode, timeline, compose, audio mix, encode.
//!
//! Nothing lives here yet: the mixing issue fills this crate. It exists now so the
//! workspace has its final shape and the dependency direction (mixer → core, live) is fixed.
