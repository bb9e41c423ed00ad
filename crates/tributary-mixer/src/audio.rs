//! Audio of the mix: every input is resampled to one rate and stereo (in `codec`), queued
//! here against the output's sample clock, and summed with its gain.
//!
//! Pure and sample-exact: positions are sample indices on the output clock, so tests can
//! check precisely what each tick takes.

use std::collections::VecDeque;

/// The mixing rate (and every output's rate): AAC-LC at 44.1 kHz, as the vendor's.
pub const RATE: u32 = 44_100;

/// A stereo sample.
pub type Stereo = [f32; 2];

/// A gap in an input's audio shorter than this is filled with silence; a longer one (or a
/// jump backwards) re-anchors the queue where the new samples say.
const MAX_GAP_SAMPLES: i64 = RATE as i64;
/// Most queued audio per input (2 s): beyond it the oldest samples go.
const MAX_QUEUED: usize = 2 * RATE as usize;

/// One input's audio, positioned on the output sample clock.
#[derive(Debug, Default)]
pub struct AudioTrack {
    /// The output sample index of `queue[0]`.
    start: i64,
    queue: VecDeque<Stereo>,
    /// Samples dropped because the queue overflowed.
    pub dropped: u64,
    /// Samples dropped because their time had passed when they arrived.
    pub late: u64,
}

impl AudioTrack {
    pub fn new() -> Self {
        Self::default()
    }

    fn end(&self) -> i64 {
        self.start + self.queue.len() as i64
    }

    /// Queues samples that play at output sample `at`. Small jitter against the queue's
    /// end is absorbed (the samples are appended), so decoder timestamps rounded to
    /// milliseconds do not click.
    pub fn push(&mut self, at: i64, samples: &[Stereo]) {
        if self.queue.is_empty() {
            self.start = at;
        } else {
            let gap = at - self.end();
            if !(-MAX_GAP_SAMPLES..=MAX_GAP_SAMPLES).contains(&gap) || gap < -(RATE as i64 / 10) {
                // A jump, or samples placed well before what is queued (the timeline moved
                // its anchor earlier): what is queued would only add delay.
                self.queue.clear();
                self.start = at;
            } else if gap > (RATE / 50) as i64 {
                // A real hole (lost packets): keep the timing by filling it with silence.
                self.queue
                    .extend(std::iter::repeat_n([0.0; 2], gap as usize));
            }
        }
        self.queue.extend(samples);
        if self.queue.len() > MAX_QUEUED {
            let excess = self.queue.len() - MAX_QUEUED;
            self.queue.drain(..excess);
            self.start += excess as i64;
            self.dropped += excess as u64;
        }
    }

    /// Adds `gain ×` this track's samples for output samples `[from, from + out.len())`
    /// into `out`. Samples before `from` are late and dropped; positions not yet queued
    /// add nothing (silence).
    pub fn mix_into(&mut self, from: i64, out: &mut [Stereo], gain: f32) {
        if from > self.start {
            let late = ((from - self.start) as usize).min(self.queue.len());
            self.queue.drain(..late);
            self.start += late as i64;
            self.late += late as u64;
            if self.queue.is_empty() {
                self.start = from;
            }
        }
        let skip = ((self.start - from).max(0) as usize).min(out.len());
        let out = &mut out[skip..];
        let taken = out.len().min(self.queue.len());
        // Over the queue's two contiguous halves, so the loops vectorize.
        let (a, b) = self.queue.as_slices();
        let in_a = a.len().min(taken);
        let (out_a, out_b) = out[..taken].split_at_mut(in_a);
        add_scaled(out_a, &a[..in_a], gain);
        add_scaled(out_b, &b[..taken - in_a], gain);
        self.queue.drain(..taken);
        self.start += taken as i64;
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}

/// `out += gain × from`, sample by sample (equal lengths).
fn add_scaled(out: &mut [Stereo], from: &[Stereo], gain: f32) {
    for (slot, s) in out.iter_mut().zip(from) {
        slot[0] += s[0] * gain;
        slot[1] += s[1] * gain;
    }
}

/// Keeps a sum inside [-1, 1] without wrap-around: linear up to 0.9, then a smooth knee
/// that approaches but never reaches full scale. Integer conversion downstream can then
/// never overflow, however many loud inputs are summed.
pub fn soft_clip(buf: &mut [Stereo]) {
    for s in buf.iter_mut() {
        for v in s.iter_mut() {
            *v = knee(*v);
        }
    }
}

fn knee(v: f32) -> f32 {
    const T: f32 = 0.9;
    if !v.is_finite() {
        return 0.0;
    }
    let a = v.abs();
    if a <= T {
        v
    } else {
        // Maps (T, ∞) onto (T, 1) monotonically.
        let over = a - T;
        let out = T + (1.0 - T) * (over / (over + (1.0 - T)));
        out.copysign(v)
    }
}

/// Gain for a `Volume` of 0–200 (percent).
pub fn gain(volume: u32) -> f32 {
    volume.min(200) as f32 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, n: usize, amp: f32) -> Vec<Stereo> {
        (0..n)
            .map(|i| {
                let v = amp * (2.0 * std::f32::consts::PI * freq * i as f32 / RATE as f32).sin();
                [v, v]
            })
            .collect()
    }

    /// Magnitude of one frequency in a signal (a single DFT bin).
    fn magnitude(buf: &[Stereo], freq: f32) -> f32 {
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (i, s) in buf.iter().enumerate() {
            let ph = 2.0 * std::f64::consts::PI * freq as f64 * i as f64 / RATE as f64;
            re += s[0] as f64 * ph.cos();
            im += s[0] as f64 * ph.sin();
        }
        ((re * re + im * im).sqrt() / buf.len() as f64) as f32
    }

    fn mixed(volumes: [u32; 2]) -> Vec<Stereo> {
        let n = 4410;
        let mut a = AudioTrack::new();
        let mut b = AudioTrack::new();
        a.push(0, &sine(440.0, n, 0.5));
        b.push(0, &sine(1000.0, n, 0.5));
        let mut out = vec![[0.0; 2]; n];
        a.mix_into(0, &mut out, gain(volumes[0]));
        b.mix_into(0, &mut out, gain(volumes[1]));
        soft_clip(&mut out);
        out
    }

    #[test]
    fn two_sines_are_both_in_the_mix_and_volume_zero_removes_one() {
        let out = mixed([100, 100]);
        assert!(magnitude(&out, 440.0) > 0.1);
        assert!(magnitude(&out, 1000.0) > 0.1);
        assert!(magnitude(&out, 700.0) < 0.01);

        let out = mixed([100, 0]);
        assert!(magnitude(&out, 440.0) > 0.1);
        assert!(magnitude(&out, 1000.0) < 0.005);
    }

    #[test]
    fn loud_sums_never_wrap() {
        let n = 2000;
        let mut out = vec![[0.0; 2]; n];
        for _ in 0..9 {
            let mut t = AudioTrack::new();
            t.push(0, &sine(440.0, n, 1.0));
            t.mix_into(0, &mut out, gain(200));
        }
        soft_clip(&mut out);
        let mut prev = 0.0f32;
        for s in &out {
            assert!(s[0].abs() < 1.0);
            // No wrap-around: a clipped sine stays smooth in sign (no jump from + to −
            // between neighbouring samples at high amplitude).
            assert!(!(prev > 0.8 && s[0] < -0.8));
            prev = s[0];
        }
        assert_eq!(knee(0.5), 0.5);
        assert!(knee(100.0) < 1.0 && knee(100.0) > 0.99);
        assert_eq!(knee(f32::NAN), 0.0);
    }

    #[test]
    fn positions_are_kept_late_samples_dropped_and_gaps_silent() {
        let mut t = AudioTrack::new();
        t.push(100, &[[1.0, 1.0]; 10]);
        let mut out = vec![[0.0; 2]; 20];
        t.mix_into(95, &mut out, 1.0);
        // 95..100 silent, 100..110 ones, then silence.
        assert_eq!(out[4], [0.0, 0.0]);
        assert_eq!(out[5], [1.0, 1.0]);
        assert_eq!(out[14], [1.0, 1.0]);
        assert_eq!(out[15], [0.0, 0.0]);
        assert_eq!(t.queued(), 0);

        // Late: the first half is already past.
        t.push(200, &[[0.5, 0.5]; 10]);
        let mut out = vec![[0.0; 2]; 10];
        t.mix_into(205, &mut out, 1.0);
        assert_eq!(out[0], [0.5, 0.5]);
        assert_eq!(out[5], [0.0, 0.0]);

        // A far jump re-anchors instead of padding seconds of silence.
        t.push(1_000, &[[0.25; 2]; 4]);
        t.push(1_000 + 10 * RATE as i64, &[[0.75; 2]; 4]);
        assert_eq!(t.queued(), 4);
    }
}
