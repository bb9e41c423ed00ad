//! One input's audio converted to the mix rate ([`RATE`]), or the mix converted to an
//! output's rate, by a band-limited resampler (rubato's FFT resampler: the spectrum is cut
//! at the lower Nyquist frequency, so a 48 kHz input's content above 22.05 kHz does not
//! fold back as aliases).
//!
//! The resampler takes fixed input chunks; the chunk is the input's frame length (1024
//! for AAC, 1152 for MP3), so a frame converts as it arrives and nothing waits in the FIFO
//! in the usual case. Output positions are counted by the resampler itself, anchored once
//! per stretch of continuous input (minus the filter's delay), so the variable chunk
//! lengths out never click; a jump in the input's positions (a reconnect, lost packets)
//! starts a new stretch.

use rubato::{FftFixedIn, Resampler as _};

use crate::audio::{RATE, Stereo};

pub struct Resampler {
    from: u32,
    to: u32,
    engine: Option<FftFixedIn<f32>>,
    /// Input frames waiting for a whole chunk, per channel.
    fifo: [Vec<f32>; 2],
    /// Where the next output sample plays (mix-rate samples on the task's clock).
    out_pos: i64,
    /// Where the next input frame is expected to start (mix-rate samples, fractional).
    expected_in: f64,
}

impl Resampler {
    /// From `from` Hz to the mix rate.
    pub fn new(from: u32) -> Self {
        Self::between(from, RATE)
    }

    pub fn between(from: u32, to: u32) -> Self {
        Resampler {
            from: from.max(1),
            to: to.max(1),
            engine: None,
            fifo: [Vec::new(), Vec::new()],
            out_pos: 0,
            expected_in: 0.0,
        }
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Converts a continuous stream (an output's): each call's samples follow the last's.
    pub fn convert(&mut self, input: &[Stereo]) -> Vec<Stereo> {
        let at = self.expected_in.round() as i64;
        self.process(at, input).map(|(_, s)| s).unwrap_or_default()
    }

    /// Converts `input` (at `from` Hz) that starts at target-rate position `at`; returns
    /// the converted samples and where they play (possibly none yet).
    pub fn process(&mut self, at: i64, input: &[Stereo]) -> Option<(i64, Vec<Stereo>)> {
        if self.from == self.to {
            return Some((at, input.to_vec()));
        }
        if input.is_empty() {
            return None;
        }
        // Input positions further than 50 ms from where the last input ended start a new
        // stretch.
        let jump = self.to as f64 / 20.0;
        let continuous = self.engine.is_some() && (at as f64 - self.expected_in).abs() <= jump;
        if !continuous {
            let engine =
                FftFixedIn::<f32>::new(self.from as usize, self.to as usize, input.len(), 2, 2)
                    .ok()?;
            self.out_pos = at - engine.output_delay() as i64;
            self.engine = Some(engine);
            self.fifo[0].clear();
            self.fifo[1].clear();
            self.expected_in = at as f64;
        }
        self.expected_in += input.len() as f64 * self.to as f64 / self.from as f64;
        for s in input {
            self.fifo[0].push(s[0]);
            self.fifo[1].push(s[1]);
        }
        let engine = self.engine.as_mut()?;
        let start = self.out_pos;
        let mut out = Vec::new();
        loop {
            let need = engine.input_frames_next();
            if self.fifo[0].len() < need {
                break;
            }
            let chunk = [&self.fifo[0][..need], &self.fifo[1][..need]];
            let Ok(waves) = engine.process(&chunk, None) else {
                // Cannot happen with whole chunks; drop what is queued rather than stall.
                self.fifo[0].clear();
                self.fifo[1].clear();
                break;
            };
            out.extend(waves[0].iter().zip(&waves[1]).map(|(l, r)| [*l, *r]));
            self.fifo[0].drain(..need);
            self.fifo[1].drain(..need);
        }
        self.out_pos += out.len() as i64;
        (!out.is_empty()).then_some((start, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, n: usize) -> Vec<Stereo> {
        (0..n)
            .map(|i| {
                let v = 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin();
                [v, v]
            })
            .collect()
    }

    fn magnitude(samples: &[Stereo], freq: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, s) in samples.iter().enumerate() {
            let ph = 2.0 * std::f64::consts::PI * freq * i as f64 / RATE as f64;
            re += s[0] as f64 * ph.cos();
            im += s[0] as f64 * ph.sin();
        }
        2.0 * (re * re + im * im).sqrt() / samples.len().max(1) as f64
    }

    /// Runs one second of `input` through in AAC-sized frames; the samples in order.
    fn convert(input: &[Stereo], from: u32) -> (Vec<Stereo>, i64) {
        let mut r = Resampler::new(from);
        let mut out = Vec::new();
        let mut first = None;
        let mut pos = 0f64;
        for chunk in input.chunks(1024) {
            if let Some((at, s)) = r.process(pos.round() as i64, chunk) {
                first.get_or_insert(at);
                assert_eq!(
                    at,
                    first.unwrap() + out.len() as i64,
                    "contiguous positions"
                );
                out.extend(s);
            }
            pos += chunk.len() as f64 * RATE as f64 / from as f64;
        }
        (out, first.unwrap_or(0))
    }

    #[test]
    fn duration_and_pitch_are_kept() {
        let (out, first) = convert(&tone(440.0, 48_000, 48_000), 48_000);
        // Whole chunks only (the last partial frame waits): within two frames of a second,
        // starting a filter delay early.
        assert!(
            (RATE as i64 - out.len() as i64).abs() <= 2048,
            "{}",
            out.len()
        );
        assert!(first < 0 && first > -1024, "{first}");
        let steady = &out[2048..];
        assert!(
            (magnitude(steady, 440.0) - 0.5).abs() < 0.02,
            "{}",
            magnitude(steady, 440.0)
        );
    }

    /// −70 dBFS as an amplitude (full scale = 1).
    const MINUS_70_DBFS: f64 = 3.162e-4;

    #[test]
    fn content_above_the_new_nyquist_does_not_alias() {
        // 23 kHz at 48 kHz would fold to 21.1 kHz at 44.1 kHz without a band limit.
        let (out, _) = convert(&tone(23_000.0, 48_000, 48_000), 48_000);
        let alias = magnitude(&out[2048..], 21_100.0);
        assert!(alias < MINUS_70_DBFS, "alias at {alias}");
        // A 10 kHz tone passes at full level; linear interpolation's images (48 ± 10 kHz)
        // would fold to 6.1 and 13.9 kHz.
        let (out, _) = convert(&tone(10_000.0, 48_000, 48_000), 48_000);
        let steady = &out[2048..];
        assert!((magnitude(steady, 10_000.0) - 0.5).abs() < 0.02);
        for f in [6_100.0, 13_900.0, 20_000.0] {
            let m = magnitude(steady, f);
            assert!(m < MINUS_70_DBFS, "{f} Hz: {m}");
        }
        // The measure can fail: linear interpolation (the previous resampler) leaves the
        // 6.1 kHz image far above −70 dBFS.
        let input = tone(10_000.0, 48_000, 48_000);
        let step = 48_000.0 / RATE as f64;
        let linear: Vec<Stereo> = (0..40_000)
            .map(|k| {
                let p = k as f64 * step;
                let (i, f) = (p.floor() as usize, (p - p.floor()) as f32);
                let v = input[i][0] + (input[i + 1][0] - input[i][0]) * f;
                [v, v]
            })
            .collect();
        assert!(magnitude(&linear, 6_100.0) > 10.0 * MINUS_70_DBFS);
    }

    #[test]
    fn a_jump_starts_a_new_stretch_and_mix_rate_passes_through() {
        let mut r = Resampler::new(48_000);
        let frame = tone(440.0, 48_000, 1024);
        let (a, _) = r.process(10_000, &frame).unwrap();
        let (b, _) = r.process(10_941, &frame).unwrap();
        assert!(b > a);
        // A reconnect 5 s later: anchored anew there.
        let (c, _) = r.process(230_000, &frame).unwrap();
        assert!((229_000..230_000).contains(&c), "{c}");
        let mut same = Resampler::new(RATE);
        let (p, s) = same.process(7, &frame).unwrap();
        assert_eq!((p, s.len()), (7, 1024));
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;

    #[test]
    fn an_output_stream_converts_continuously_to_its_rate() {
        // The mix at 44.1 kHz in 25 fps ticks (1764 samples), to a 48 kHz output.
        let mut r = Resampler::between(RATE, 48_000);
        let mut out = Vec::new();
        for k in 0..50 {
            let tick: Vec<Stereo> = (0..1764)
                .map(|i| {
                    let n = (k * 1764 + i) as f32;
                    let v = 0.5 * (2.0 * std::f32::consts::PI * 1000.0 * n / RATE as f32).sin();
                    [v, v]
                })
                .collect();
            out.extend(r.convert(&tick));
        }
        // Two seconds in: two seconds out at 48 kHz, less what the filter holds back.
        assert!((94_000..=96_000).contains(&out.len()), "{}", out.len());
        let steady = &out[4096..];
        let (mut re, mut im) = (0.0f64, 0.0f64);
        for (i, s) in steady.iter().enumerate() {
            let ph = 2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48_000.0;
            re += s[0] as f64 * ph.cos();
            im += s[0] as f64 * ph.sin();
        }
        let level = 2.0 * (re * re + im * im).sqrt() / steady.len() as f64;
        assert!((level - 0.5).abs() < 0.02, "1 kHz at {level}");
    }
}
