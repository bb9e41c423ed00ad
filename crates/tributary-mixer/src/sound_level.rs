//! Per-input sound levels on the output clock, every [`PERIOD_MS`]: the RMS of what the
//! input contributed to the mix (after its `Volume`) over the period, on the vendor's
//! 0–100 scale.
//!
//! The scale: `level = 100 · (dBFS + 60) / 60`, clamped to 0–100 and rounded — so
//! −60 dBFS and quieter (and a muted input) is 0, a full-scale sine (−3 dBFS RMS) is 95,
//! normal speech (−30 to −20 dBFS RMS) is 50–67. Pure: fed with samples, asked on ticks.

use crate::audio::Stereo;

/// How often levels are reported (the vendor's 100 ms).
pub const PERIOD_MS: i64 = 100;
/// The quietest level above 0.
const FLOOR_DB: f64 = -60.0;

/// Energy summed per input since the last report.
#[derive(Debug, Default)]
pub struct Meter {
    energy: Vec<f64>,
    samples: Vec<u64>,
    next_ms: Option<i64>,
}

/// 0–100 for an RMS amplitude (full scale 1.0).
pub fn level(rms: f64) -> u8 {
    if rms <= 0.0 {
        return 0;
    }
    let db = 20.0 * rms.log10();
    (100.0 * (db - FLOOR_DB) / -FLOOR_DB)
        .clamp(0.0, 100.0)
        .round() as u8
}

impl Meter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds input `i`'s contribution for this tick (mono-mixed).
    pub fn add(&mut self, i: usize, samples: &[Stereo]) {
        if self.energy.len() <= i {
            self.energy.resize(i + 1, 0.0);
            self.samples.resize(i + 1, 0);
        }
        let e: f64 = samples
            .iter()
            .map(|s| {
                let m = ((s[0] + s[1]) * 0.5) as f64;
                m * m
            })
            .sum();
        self.energy[i] += e;
        self.samples[i] += samples.len() as u64;
    }

    /// At the tick of `now_ms`: the levels of inputs `0..count` when a period has passed
    /// (then the sums start again), else `None`.
    pub fn report(&mut self, now_ms: i64, count: usize) -> Option<Vec<u8>> {
        let next = *self.next_ms.get_or_insert(now_ms + PERIOD_MS);
        if now_ms < next {
            return None;
        }
        // The next period starts from this one's end (no drift), or from now after a gap.
        self.next_ms = Some(if now_ms - next < PERIOD_MS {
            next + PERIOD_MS
        } else {
            now_ms + PERIOD_MS
        });
        let levels = (0..count)
            .map(|i| match (self.energy.get(i), self.samples.get(i)) {
                (Some(e), Some(&n)) if n > 0 => level((e / n as f64).sqrt()),
                _ => 0,
            })
            .collect();
        self.energy.iter_mut().for_each(|e| *e = 0.0);
        self.samples.iter_mut().for_each(|n| *n = 0);
        Some(levels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(amp: f32, n: usize) -> Vec<Stereo> {
        (0..n)
            .map(|i| {
                let v = amp * (i as f32 * 0.1).sin();
                [v, v]
            })
            .collect()
    }

    #[test]
    fn the_scale_maps_decibels_to_0_100() {
        assert_eq!(level(0.0), 0);
        assert_eq!(level(0.001), 0); // −60 dBFS
        assert_eq!(level(1.0), 100);
        assert_eq!(level(std::f64::consts::FRAC_1_SQRT_2), 95); // a full-scale sine
        assert_eq!(level(0.0316), 50); // −30 dBFS
    }

    #[test]
    fn levels_come_every_100_ms_per_input() {
        let mut m = Meter::new();
        assert_eq!(m.report(1_000, 2), None, "the first period starts");
        for t in (1_000..1_100).step_by(33) {
            m.add(0, &sine(0.5, 1470));
            m.add(1, &sine(0.0, 1470));
            assert_eq!(m.report(t, 2), None);
        }
        let levels = m.report(1_100, 2).unwrap();
        // A 0.5 sine: RMS 0.354, −9 dBFS → 85; silence → 0.
        assert_eq!(levels, [85, 0]);
        // The sums started again: nothing added, all zero at the next report.
        assert_eq!(m.report(1_150, 2), None);
        assert_eq!(m.report(1_200, 2).unwrap(), [0, 0]);
        // After a stall the periods restart from now.
        assert!(m.report(5_000, 2).is_some());
        assert_eq!(m.report(5_099, 2), None);
        assert!(m.report(5_100, 2).is_some());
    }
}
