//! The timing model (design.md §4) for one input: input timestamps are mapped onto the
//! task's output clock, and each tick picks what to show.
//!
//! - On a track's first packet, `offset = arrival + buffer − pts`; audio and video of the
//!   input share it, so they stay in sync whatever the network does.
//! - A tick at time `t` shows the newest frame with time ≤ `t`, else repeats the last one;
//!   after [`TimelineConfig::hold_ms`] without any video, nothing (the background shows).
//! - A reconnect is a new track with a new offset; a timestamp jump (an encoder restart
//!   inside one connection) re-anchors too, so a returning input is shown again as soon as
//!   its first frame is due (within the buffer, well under a second).
//!
//! Pure: times are milliseconds on the task's clock, passed in; tests drive it with a
//! fake clock.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy)]
pub struct TimelineConfig {
    /// Jitter buffer added to every input (RTMP is TCP: small is enough).
    pub buffer_ms: i64,
    /// How long the last frame is held when video stops.
    pub hold_ms: i64,
    /// Frames further than this from where the offset puts them (late or early) mean the
    /// input's clock jumped: re-anchor.
    pub rebase_ms: i64,
    /// Most frames queued per input; beyond it the oldest go (an input far ahead).
    pub max_frames: usize,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        TimelineConfig {
            buffer_ms: 50,
            hold_ms: 3_000,
            rebase_ms: 1_000,
            max_frames: 90,
        }
    }
}

/// What a tick shows for one input.
#[derive(Debug, PartialEq, Eq)]
pub enum Slot<'a, F> {
    /// A frame that became due since the last tick.
    Fresh(&'a F),
    /// No new frame: the last one again.
    Held(&'a F),
    /// No video for too long, or none yet.
    Empty,
}

impl<'a, F> Slot<'a, F> {
    pub fn frame(&self) -> Option<&'a F> {
        match *self {
            Slot::Fresh(f) | Slot::Held(f) => Some(f),
            Slot::Empty => None,
        }
    }
}

/// Which track of an input a timestamp belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Video = 0,
    Audio = 1,
}

#[derive(Debug)]
pub struct Timeline<F> {
    config: TimelineConfig,
    offset: Option<i64>,
    /// Per track, the smallest `arrival + buffer − pts` seen since the last anchor.
    best: [Option<i64>; 2],
    frames: VecDeque<(i64, F)>,
    current: Option<F>,
    last_video_ms: Option<i64>,
    last_packet_ms: Option<i64>,
    /// Frames that were already past due when they arrived.
    pub late_frames: u64,
    /// Frames dropped because the queue was full.
    pub dropped_frames: u64,
    /// How often the offset was set (first packet, reconnects, jumps).
    pub anchors: u64,
    /// How long the last frame waited between arriving and being due: the buffering
    /// this input adds, as measured.
    pub last_wait_ms: i64,
}

impl<F> Timeline<F> {
    pub fn new(config: TimelineConfig) -> Self {
        Timeline {
            config,
            offset: None,
            best: [None; 2],
            frames: VecDeque::new(),
            current: None,
            last_video_ms: None,
            last_packet_ms: None,
            late_frames: 0,
            dropped_frames: 0,
            anchors: 0,
            last_wait_ms: 0,
        }
    }

    /// A new track (the publisher reconnected): the next packet sets a new offset. The
    /// last frame stays on screen until the new track's frames are due or the hold ends.
    pub fn new_track(&mut self) {
        self.offset = None;
        self.best = [None; 2];
        self.frames.clear();
    }

    /// Maps an input timestamp to output time, anchoring or re-anchoring as needed.
    ///
    /// Each track (audio, video) keeps the earliest arrival it has seen relative to its
    /// timestamps; the offset is the later of the two, so the track that arrives later
    /// (an encoder that sends audio 100 ms behind its video) is still on time and both
    /// play in sync. A burst of cached packets lowers a track's minimum as it drains, so
    /// the hub's GOP cache adds no delay.
    pub fn place(&mut self, track: Track, pts_ms: i64, now_ms: i64) -> i64 {
        self.last_packet_ms = Some(now_ms);
        let expected = now_ms + self.config.buffer_ms;
        let candidate = expected - pts_ms;
        if let Some(off) = self.offset
            && (pts_ms + off - expected).abs() > self.config.rebase_ms
        {
            // The input's clock jumped (or this is far off): start again from here.
            self.offset = None;
            self.best = [None; 2];
            self.frames.clear();
        }
        let k = track as usize;
        if self.best[k].is_none_or(|b| candidate < b) {
            self.best[k] = Some(candidate);
        }
        let target = self
            .best
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(candidate);
        match self.offset {
            None => {
                self.anchors += 1;
            }
            Some(old) if old != target => {
                // Keep what is queued in step with the new offset.
                for (t, _) in self.frames.iter_mut() {
                    *t += target - old;
                }
            }
            Some(_) => {}
        }
        self.offset = Some(target);
        pts_ms + target
    }

    /// Queues a decoded frame with presentation time `pts_ms`, arriving at `now_ms`.
    pub fn push_video(&mut self, pts_ms: i64, now_ms: i64, frame: F) {
        let t = self.place(Track::Video, pts_ms, now_ms);
        self.last_video_ms = Some(now_ms);
        if t < now_ms {
            self.late_frames += 1;
        }
        self.last_wait_ms = (t - now_ms).max(0);
        // Keep the queue ordered by time (B-frames are reordered by the decoder already,
        // but be safe against equal or slightly out-of-order times).
        let at = self.frames.partition_point(|(ft, _)| *ft <= t);
        self.frames.insert(at, (t, frame));
        while self.frames.len() > self.config.max_frames {
            self.frames.pop_front();
            self.dropped_frames += 1;
        }
    }

    /// What the tick at `now_ms` shows.
    pub fn pick(&mut self, now_ms: i64) -> Slot<'_, F> {
        let mut fresh = false;
        while self.frames.front().is_some_and(|(t, _)| *t <= now_ms) {
            if let Some((_, f)) = self.frames.pop_front() {
                self.current = Some(f);
                fresh = true;
            }
        }
        let stale = self
            .last_video_ms
            .is_none_or(|at| now_ms - at > self.config.hold_ms);
        if stale && !fresh {
            return Slot::Empty;
        }
        match &self.current {
            Some(f) if fresh => Slot::Fresh(f),
            Some(f) => Slot::Held(f),
            None => Slot::Empty,
        }
    }

    /// What an input timestamp maps to on the output's clock (add it), once anchored.
    pub fn offset(&self) -> Option<i64> {
        self.offset
    }

    /// When the input's last video frame arrived.
    pub fn last_video_ms(&self) -> Option<i64> {
        self.last_video_ms
    }

    /// When the input last delivered anything (audio or video).
    pub fn last_packet_ms(&self) -> Option<i64> {
        self.last_packet_ms
    }

    pub fn queued_frames(&self) -> usize {
        self.frames.len()
    }
}

/// The idle rule of a task: it stops itself when no input has delivered anything for
/// `max_idle_ms` (counted from the start when none ever did).
#[derive(Debug, Clone, Copy)]
pub struct IdleWatch {
    max_idle_ms: i64,
    last_activity_ms: i64,
}

impl IdleWatch {
    pub fn new(max_idle_ms: i64, start_ms: i64) -> Self {
        IdleWatch {
            max_idle_ms,
            last_activity_ms: start_ms,
        }
    }

    /// Notes whether any input was live at `now_ms`; `true` when the task should stop.
    pub fn observe(&mut self, any_live: bool, max_idle_ms: i64, now_ms: i64) -> bool {
        self.max_idle_ms = max_idle_ms;
        if any_live {
            self.last_activity_ms = now_ms;
        }
        now_ms - self.last_activity_ms > self.max_idle_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tl() -> Timeline<u32> {
        Timeline::new(TimelineConfig {
            buffer_ms: 100,
            hold_ms: 3_000,
            rebase_ms: 1_000,
            max_frames: 10,
        })
    }

    #[test]
    fn frames_play_after_the_buffer_and_are_held_between() {
        let mut t = tl();
        // Input pts start at 5000: offset = 0 + 100 - 5000.
        t.push_video(5_000, 0, 1);
        t.push_video(5_040, 40, 2);
        assert_eq!(t.pick(50), Slot::Empty, "nothing due yet");
        assert_eq!(t.pick(100), Slot::Fresh(&1));
        assert_eq!(t.pick(120), Slot::Held(&1));
        assert_eq!(t.pick(140), Slot::Fresh(&2));
        // A tick that skips several frames shows the newest due.
        t.push_video(5_080, 80, 3);
        t.push_video(5_120, 120, 4);
        assert_eq!(t.pick(230), Slot::Fresh(&4));
        assert_eq!(t.late_frames, 0);
    }

    #[test]
    fn a_dropout_holds_then_shows_background_then_recovers() {
        let mut t = tl();
        for i in 0..10 {
            t.push_video(i * 40, i * 40, i as u32);
        }
        assert_eq!(t.pick(500), Slot::Fresh(&9));
        // The publisher stalls: the last frame is held for 3 s after the last video…
        assert_eq!(t.pick(3_000), Slot::Held(&9));
        assert_eq!(t.pick(3_360), Slot::Held(&9));
        // …then the slot is empty.
        assert_eq!(t.pick(3_400), Slot::Empty);
        // It reconnects: a new track with timestamps from zero again.
        t.new_track();
        t.push_video(0, 10_000, 100);
        assert_eq!(
            t.pick(10_040),
            Slot::Held(&9),
            "the old frame until the new one is due"
        );
        assert_eq!(t.pick(10_100), Slot::Fresh(&100));
        assert_eq!(t.anchors, 2);
    }

    #[test]
    fn a_timestamp_jump_reanchors_and_late_frames_are_counted() {
        let mut t = tl();
        t.push_video(0, 0, 1);
        // The same connection's clock jumps by an hour: used right away, not in an hour.
        t.push_video(3_600_000, 40, 2);
        assert_eq!(t.anchors, 2);
        assert_eq!(t.pick(140), Slot::Fresh(&2));
        // A frame that arrives 300 ms late (network hiccup) is late but still shown.
        t.push_video(3_600_040, 480, 3);
        assert_eq!(t.late_frames, 1);
        assert_eq!(t.pick(500), Slot::Fresh(&3));
    }

    #[test]
    fn idle_stop_counts_from_the_last_live_input() {
        let mut w = IdleWatch::new(90_000, 0);
        assert!(!w.observe(false, 90_000, 89_000));
        assert!(!w.observe(true, 90_000, 89_500), "an input came");
        assert!(!w.observe(false, 90_000, 179_500));
        assert!(w.observe(false, 90_000, 179_501), "gone for MaxIdleTime");
        // A live update that raises MaxIdleTime takes effect at once.
        let mut w = IdleWatch::new(90_000, 0);
        assert!(!w.observe(false, 600_000, 100_000));
    }

    #[test]
    fn a_burst_of_cached_frames_does_not_add_latency() {
        let mut t = tl();
        // A subscriber joins 800 ms into a GOP: the cached key frame (pts 0) and the
        // frames after it arrive at once, at 10 000 ms; then live frames follow.
        for i in 0..=20 {
            t.push_video(i * 40, 10_000, i as u32);
        }
        assert_eq!(t.anchors, 1);
        // The offset followed the newest cached frame: pts 800 plays at 10 100.
        assert_eq!(t.pick(10_100), Slot::Fresh(&20));
        t.push_video(840, 10_040, 21);
        assert_eq!(t.pick(10_139), Slot::Held(&20));
        assert_eq!(t.pick(10_140), Slot::Fresh(&21));
    }

    #[test]
    fn audio_arriving_behind_its_video_keeps_both_in_sync() {
        let mut t = tl();
        // Video pts 0 arrives at 0; the audio of pts 0 arrives 120 ms later.
        let v0 = t.place(Track::Video, 0, 0);
        assert_eq!(v0, 100);
        let a0 = t.place(Track::Audio, 0, 120);
        // The offset moved to fit the later track: same pts, same output time.
        assert_eq!(a0, 220);
        assert_eq!(t.place(Track::Video, 0, 200), 220);
        assert_eq!(t.place(Track::Audio, 40, 160), 260);
        assert_eq!(t.anchors, 1);
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut t = tl();
        for i in 0..30 {
            t.push_video(i * 10, 0, i as u32);
        }
        assert_eq!(t.queued_frames(), 10);
        assert_eq!(t.dropped_frames, 20);
    }
}
