//! Live-plane helpers: tokens minted independently of the server's code, real `ffmpeg`
//! publishers and `ffprobe` readers.

use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{APP, SECRET, Server, admin_get, now_secs};

/// The documented token: `{expiry}.hex(HMAC-SHA256(secret, "tributary-token-v1\n{purpose}
/// \n{app}\n{stream}\n{room}\n{user}\n{expiry}"))`.
pub fn mint(
    purpose: &str,
    secret: &str,
    stream: &str,
    room: &str,
    user: &str,
    expiry: u64,
) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(
        format!("tributary-token-v1\n{purpose}\n{APP}\n{stream}\n{room}\n{user}\n{expiry}")
            .as_bytes(),
    );
    format!("{expiry}.{}", hex::encode(m.finalize().into_bytes()))
}

pub fn publish_url(s: &Server, stream: &str, room: &str, user: &str) -> String {
    let t = mint("publish", SECRET, stream, room, user, now_secs() + 600);
    format!(
        "{}/{APP}/{stream}?room={room}&user={user}&token={t}",
        s.rtmp
    )
}

/// `ffmpeg` publishing a 320×240 test pattern with a 440 Hz tone (H.264 + AAC) for `secs`.
pub fn publish(url: &str, secs: u32) -> Child {
    let codec: Vec<&str> = X264_LIVE.iter().copied().chain(["-c:a", "aac"]).collect();
    publish_with(url, secs, &codec, "320x240")
}

/// libx264 settings of the test publishers: fast, a key frame every second.
pub const X264_LIVE: [&str; 8] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-tune",
    "zerolatency",
    "-g",
    "25",
];

pub fn publish_with(url: &str, secs: u32, codec: &[&str], size: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=25"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(codec)
        .args(["-t", &secs.to_string(), "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg (scripts/setup.sh installs it)")
}

/// Waits for a child to exit, up to `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stderr_of(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON introspection of a stream once it is live (polls; panics after `limit`).
pub fn wait_live(s: &Server, stream: &str, limit: Duration) -> serde_json::Value {
    let path = format!("/api/streams/{APP}/{stream}");
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(r) = admin_get(&s.base, &path)
            && r.status().is_success()
        {
            let v: serde_json::Value = r.json().unwrap();
            // Live and past the codec headers.
            if !v["video_codec"].is_null() {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "{stream} did not go live");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until a stream is live with its audio codec known (for audio-only publishers).
pub fn wait_live_audio(s: &Server, stream: &str) {
    let path = format!("/api/streams/{APP}/{stream}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = admin_get(&s.base, &path)
            && r.status().is_success()
        {
            let v: serde_json::Value = r.json().unwrap();
            if !v["audio_codec"].is_null() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{stream} did not go live");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn is_live(s: &Server, stream: &str) -> bool {
    admin_get(&s.base, &format!("/api/streams/{APP}/{stream}"))
        .map(|r| r.status().is_success())
        .unwrap_or(false)
}

pub fn ffprobe(args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("20")
        .arg("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .output()
        .expect("ffprobe")
}

/// Stream codecs and sizes as `codec:WxH` lines (audio: `codec`).
pub fn probe_streams(url: &str) -> Vec<String> {
    let out = ffprobe(&[
        "-show_entries",
        "stream=codec_name,width,height",
        "-of",
        "csv=p=0",
        url,
    ]);
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches(',').replace(',', ":"))
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// ffprobe's `packet=…` entries of the video packets over about `secs` of a stream, one
/// CSV line each (`extra`: more ffprobe options), and whether ffprobe succeeded.
pub fn video_packets(url: &str, secs: u32, entries: &str, extra: &[&str]) -> (bool, Vec<String>) {
    let interval = format!("%+{secs}");
    let entries = format!("packet={entries}");
    let mut args = vec![
        "-read_intervals",
        &interval,
        "-select_streams",
        "v",
        "-show_entries",
        &entries,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-of", "csv=p=0", url]);
    let out = ffprobe(&args);
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    (out.status.success(), lines)
}

/// Video packet times (seconds) read over about `secs` of the stream.
pub fn video_times(url: &str, secs: u32) -> Vec<f64> {
    let (ok, lines) = video_packets(url, secs, "dts_time", &[]);
    assert!(ok, "ffprobe failed on {url}");
    lines
        .iter()
        .filter_map(|l| l.trim_end_matches(',').parse().ok())
        .collect()
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A Prometheus sample's value (sum over label sets matching `labels`).
pub fn metric(s: &Server, name: &str, labels: &str) -> f64 {
    let text = admin_get(&s.base, "/metrics").unwrap().text().unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A child process killed (and reaped) when dropped, so a failing test leaves none behind.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ffmpeg` publishing a solid colour with a sine tone (H.264 + AAC), for `secs`.
pub fn publish_color(url: &str, color: &str, freq: u32, secs: u32) -> Proc {
    publish_color_with(url, color, freq, secs, &["-c:a", "aac", "-b:a", "64k"])
}

/// The same with the audio encoder given (`-c:a …`).
pub fn publish_color_with(url: &str, color: &str, freq: u32, secs: u32, audio: &[&str]) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!("color=c={color}:size=160x120:rate=25"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency={freq}:sample_rate=44100"))
            .args(X264_LIVE)
            .args(["-pix_fmt", "yuv420p"])
            .args(audio)
            .args(["-t", &secs.to_string(), "-f", "flv", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    )
}

/// `ffmpeg` publishing digital silence only (AAC, no video), as a muted microphone's
/// client does, for `secs`.
pub fn publish_silence(url: &str, secs: u32) -> Proc {
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono"])
            .args(["-c:a", "aac", "-b:a", "48k"])
            .args(["-t", &secs.to_string(), "-f", "flv", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    )
}

/// A current FFmpeg (9.x, static, from PyPI's `imageio-ffmpeg`, installed by
/// `scripts/setup.sh`): it reads and writes Enhanced RTMP (H.265, Opus in FLV), which
/// Debian's FFmpeg 5.1 cannot.
pub fn modern_ffmpeg() -> String {
    let dir =
        std::env::var("TRIBUTARY_TOOLS").unwrap_or_else(|_| "/var/tmp/tributary-tools".into());
    let path = format!("{dir}/ffmpeg");
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: run scripts/setup.sh"
    );
    path
}

/// The modern FFmpeg publishing a solid colour (H.265) and a tone (Opus, 48 kHz) over
/// Enhanced RTMP, as OBS 30 does.
pub fn publish_hevc_opus(url: &str, color: &str, freq: u32, secs: u32) -> Proc {
    Proc(
        Command::new(modern_ffmpeg())
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i"])
            .arg(format!("color=c={color}:size=160x120:rate=25"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency={freq}:sample_rate=48000"))
            .args(["-c:v", "libx265", "-preset", "ultrafast", "-g", "25"])
            .args(["-x265-params", "log-level=error", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "libopus", "-b:a", "64k"])
            .args(["-t", &secs.to_string(), "-f", "flv", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("modern ffmpeg"),
    )
}

/// The `Stream #…` lines `ffmpeg` (the binary given) reports for `url`, and what it
/// complains about while decoding `secs` of it (empty when clean).
pub fn streams_and_errors(ffmpeg: &str, url: &str, secs: u32) -> (Vec<String>, String) {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-i", url])
        .args(["-t", &secs.to_string(), "-f", "null", "-"])
        .stdout(Stdio::null())
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    let streams = text
        .lines()
        .take_while(|l| !l.starts_with("Stream mapping"))
        .filter(|l| l.trim_start().starts_with("Stream #"))
        .map(|l| l.trim().to_string())
        .collect();
    let errors = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
        .args(["-t", &secs.to_string(), "-f", "null", "-"])
        .stdout(Stdio::null())
        .output()
        .expect("ffmpeg");
    (
        streams,
        String::from_utf8_lossy(&errors.stderr).into_owned(),
    )
}

/// The RGB of the centre of the first picture `ffmpeg` (the binary given) decodes at
/// `url`.
pub fn centre_rgb(ffmpeg: &str, url: &str) -> Option<(u8, u8, u8)> {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
        .args(["-frames:v", "1", "-vf", "scale=3:3", "-f", "rawvideo"])
        .args(["-pix_fmt", "rgb24", "-"])
        .output()
        .ok()?;
    let p = out.stdout.get(12..15)?;
    Some((p[0], p[1], p[2]))
}

/// `codec_name,profile,sample_rate,channels` of the audio stream at `url`.
pub fn audio_stream(url: &str) -> String {
    let out = ffprobe(&[
        "-select_streams",
        "a",
        "-show_entries",
        "stream=codec_name,profile,sample_rate,channels",
        "-of",
        "csv=p=0",
        url,
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The mean volume (dB, ffmpeg's `volumedetect`) of the first `secs` of `url`'s audio;
/// −99 when there is none.
pub fn mean_volume_db(url: &str, secs: u32) -> f64 {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-i",
            url,
            "-t",
            &secs.to_string(),
            "-vn",
        ])
        .args(["-af", "volumedetect", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.split("mean_volume:").nth(1))
        .and_then(|v| v.trim().trim_end_matches("dB").trim().parse().ok())
        .unwrap_or(-99.0)
}

/// Reads `secs` of a stream's audio as mono f32 at 44.1 kHz.
pub fn read_audio(url: &str, secs: f32) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url])
        .args([
            "-t",
            &secs.to_string(),
            "-vn",
            "-ac",
            "1",
            "-ar",
            "44100",
            "-f",
            "f32le",
            "-",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("ffmpeg");
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Magnitude of one frequency (a single DFT bin), normalised.
pub fn tone(samples: &[f32], freq: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, s) in samples.iter().enumerate() {
        let ph = 2.0 * std::f64::consts::PI * freq * i as f64 / 44_100.0;
        re += *s as f64 * ph.cos();
        im += *s as f64 * ph.sin();
    }
    (re * re + im * im).sqrt() / samples.len().max(1) as f64
}
