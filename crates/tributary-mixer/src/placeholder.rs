//! When an input's placeholder image replaces its video (`MixInput.Image.DisplayMode`).
//!
//! - `Always`: while it is set.
//! - `NoVideo`: once the input has delivered no video for [`NO_VIDEO_MS`] — counted from
//!   its last frame, or from when the task started reading it if none came yet. The
//!   publisher may be gone entirely.
//! - `CameraOff`: the publisher is there but sends no picture: its stream delivered
//!   something (audio) within the last [`CAMERA_OFF_MS`], and no video for as long. RTMP
//!   has no "camera off" signal, so this is what counts; a publisher that goes away
//!   altogether is not "camera off" (use `NoVideo` for that).
//!
//! Pure: times are milliseconds on the task's clock.

use tributary_core::mix::PlaceholderMode;

/// The vendor's "an empty stream for 3 s".
pub const NO_VIDEO_MS: i64 = 3_000;
/// How long a publisher sends audio without video before its camera counts as off.
pub const CAMERA_OFF_MS: i64 = 1_000;

/// What the rule needs to know of one input.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// When its last video frame arrived.
    pub last_video_ms: Option<i64>,
    /// When anything (audio or video) last arrived.
    pub last_packet_ms: Option<i64>,
    /// When the task started reading it.
    pub since_ms: i64,
}

pub fn shows(mode: PlaceholderMode, seen: Seen, now_ms: i64) -> bool {
    let without_video = now_ms - seen.last_video_ms.unwrap_or(seen.since_ms);
    match mode {
        PlaceholderMode::Always => true,
        PlaceholderMode::NoVideo => without_video >= NO_VIDEO_MS,
        PlaceholderMode::CameraOff => {
            let present = seen
                .last_packet_ms
                .is_some_and(|t| now_ms - t < CAMERA_OFF_MS);
            present && without_video >= CAMERA_OFF_MS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(video: Option<i64>, packet: Option<i64>) -> Seen {
        Seen {
            last_video_ms: video,
            last_packet_ms: packet,
            since_ms: 1_000,
        }
    }

    #[test]
    fn always_shows() {
        assert!(shows(
            PlaceholderMode::Always,
            seen(Some(5_000), Some(5_000)),
            5_000
        ));
    }

    #[test]
    fn no_video_waits_three_seconds_from_the_last_frame_or_the_start() {
        let m = PlaceholderMode::NoVideo;
        // Nothing yet: counted from the start (1 s).
        assert!(!shows(m, seen(None, None), 3_999));
        assert!(shows(m, seen(None, None), 4_000));
        // Video flowing: never.
        assert!(!shows(m, seen(Some(9_960), Some(9_990)), 10_000));
        // Video stopped at 10 s (audio or not): from 13 s on.
        assert!(!shows(m, seen(Some(10_000), Some(12_900)), 12_999));
        assert!(shows(m, seen(Some(10_000), Some(12_900)), 13_000));
        assert!(shows(m, seen(Some(10_000), Some(10_000)), 20_000));
    }

    #[test]
    fn camera_off_needs_the_publisher_present_without_video() {
        let m = PlaceholderMode::CameraOff;
        // Audio flowing, video stopped 1 s ago: camera off.
        assert!(shows(m, seen(Some(10_000), Some(10_990)), 11_000));
        assert!(!shows(m, seen(Some(10_000), Some(10_990)), 10_999));
        // Audio-only from the start.
        assert!(shows(m, seen(None, Some(2_480)), 2_500));
        // Video flowing.
        assert!(!shows(m, seen(Some(10_950), Some(10_990)), 11_000));
        // Gone altogether: not "camera off".
        assert!(!shows(m, seen(Some(10_000), Some(10_000)), 15_000));
        assert!(!shows(m, seen(None, None), 15_000));
    }
}
