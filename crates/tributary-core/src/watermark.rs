//! Watermark images registered by an app (Tencent's AddLiveWatermark): a name and a
//! picture URL, kept durably so a mix can use them by id later.

use serde::{Deserialize, Serialize};

/// Most watermarks one app keeps (the vendor's limit).
pub const MAX_WATERMARKS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub id: u64,
    pub name: String,
    pub picture_url: String,
    /// Position and size in percent of the picture they are drawn on (vendor fields).
    pub x_percent: i64,
    pub y_percent: i64,
    pub width_percent: i64,
    pub height_percent: i64,
    pub created_ms: u64,
}
