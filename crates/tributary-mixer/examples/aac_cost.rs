//! CPU per second of audio for each AAC encoder the mixer has, and for FFmpeg's native
//! AAC-LC encoder with its fast coder (the one the ffmpeg CLI uses, and the one the mixer
//! used before libfdk-aac), on the same signal. Run with `--release`; argument `tones`
//! (four sines, as the audio rooms' benchmark speakers) or `noise` (syllable-modulated
//! noise).
use tributary_mixer::audio::{RATE, Stereo};
use tributary_mixer::codec::AudioEncoder;

/// This thread's CPU time so far (Linux: the first field of its schedstat, in ns).
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kind = std::env::args().nth(1).unwrap_or_else(|| "tones".into());
    let channels: u8 = std::env::args()
        .nth(2)
        .and_then(|c| c.parse().ok())
        .unwrap_or(2);
    let secs = std::env::args()
        .nth(3)
        .and_then(|c| c.parse().ok())
        .unwrap_or(60usize);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let signal: Vec<Stereo> = (0..RATE as usize * secs)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            let v = if kind == "noise" {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let x = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                x * 0.4 * (0.5 + 0.5 * (t * 4.0 * std::f32::consts::TAU).sin())
            } else {
                [440.0f32, 554.0, 659.0, 880.0]
                    .iter()
                    .map(|f| 0.125 * (t * f * std::f32::consts::TAU).sin())
                    .sum()
            };
            [v, v * 0.9]
        })
        .collect();
    type Open = fn(u8) -> Result<AudioEncoder, tributary_mixer::codec::CodecError>;
    let encoders: [(&str, Open); 3] = [
        ("ffmpeg-aac (fast coder)", |ch| {
            AudioEncoder::ffmpeg_aac(ch, 48_000, RATE)
        }),
        ("fdk-aac AAC-LC", |ch| AudioEncoder::new(ch, 48_000, RATE)),
        ("fdk-aac HE-AAC", |ch| {
            AudioEncoder::he_aac(ch, 48_000, RATE)
        }),
    ];
    let only = std::env::var("ONLY").ok();
    for (name, open) in encoders {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let mut enc = open(channels)?;
        let start = cpu_s();
        let mut bytes = 0;
        // In 20 ms ticks, as the mixer hands them.
        for tick in signal.chunks(882) {
            bytes += enc
                .encode(tick)?
                .iter()
                .map(|p| p.data.len())
                .sum::<usize>();
        }
        let cpu = cpu_s() - start;
        println!(
            "{name:26} {:5.2} ms CPU per second of 48 kb/s, {channels} channel(s) ({:.1} kb/s out)",
            cpu * 1000.0 / secs as f64,
            bytes as f64 * 8.0 / secs as f64 / 1000.0
        );
    }
    Ok(())
}
