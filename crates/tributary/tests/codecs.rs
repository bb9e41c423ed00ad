//! Output codecs through the real binary: each `AudioCodec` probed with ffprobe (codec,
//! profile, rate, channels) over HTTP-FLV and HLS, and decoded by ffmpeg without errors;
//! an HE-AAC output mixed again as an input. H.265 and Opus travel in Enhanced RTMP,
//! which only a current FFmpeg reads (`modern_ffmpeg`, FFmpeg 9); H.265 in HLS is read
//! by Debian's ffprobe as well.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use serde_json::json;

const LIVE: Duration = Duration::from_secs(20);

/// ffmpeg's complaints while decoding `secs` of `url` (empty when clean).
fn decode_errors(url: &str, secs: u32) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i", url])
        .args(["-t", &secs.to_string(), "-f", "null", "-"])
        .stdout(Stdio::null())
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wait_probe(url: &str, want: &str) -> String {
    let deadline = Instant::now() + LIVE;
    loop {
        let got = audio_stream(url);
        if got.starts_with(want) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: wanted {want}, got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn he_aac_and_mp3_outputs_probe_and_decode() {
    let s = Server::start(None);
    let _a = publish_color(&publish_url(&s, "a", "room1", "a"), "red", 440, 60);
    wait_live(&s, "a", LIVE);
    let c = s.app();
    let body = json!({"TaskId": "codecs", "UserId": "u",
        "MixInput": [{"StreamId": "a", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [
            {"StreamId": "he", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000,
             "AudioCodec": 0, "AudioBitrate": 48000, "SoundChannel": 2},
            {"StreamId": "mp3", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000,
             "AudioCodec": 2, "AudioBitrate": 64000, "SoundChannel": 2},
            {"StreamId": "lc", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000,
             "AudioCodec": 1, "AudioBitrate": 64000, "SoundChannel": 1}]});
    expect_code(
        &c.post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    let flv = |id: &str| format!("{}/{APP}/{id}.flv", s.base);
    assert_eq!(wait_probe(&flv("he"), "aac"), "aac,HE-AAC,44100,2");
    assert_eq!(wait_probe(&flv("mp3"), "mp3"), "mp3,unknown,44100,2");
    assert_eq!(wait_probe(&flv("lc"), "aac"), "aac,LC,44100,1");
    for id in ["he", "mp3", "lc"] {
        let errors = decode_errors(&flv(id), 3);
        assert!(errors.trim().is_empty(), "{id}: {errors}");
    }
    // HLS carries the same audio (HE-AAC as ADTS with implicit SBR, MP3 as MPEG audio).
    let hls = |id: &str| format!("{}/{APP}/{id}/playlist.m3u8", s.base);
    let deadline = Instant::now() + LIVE;
    loop {
        let (he, mp3) = (audio_stream(&hls("he")), audio_stream(&hls("mp3")));
        if he.starts_with("aac") && mp3.starts_with("mp3") {
            assert!(he.ends_with(",44100,2"), "{he}");
            break;
        }
        assert!(Instant::now() < deadline, "HLS: {he:?} {mp3:?}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // An HE-AAC stream is an input like any other: mix it again.
    let again = json!({"TaskId": "again", "UserId": "v",
        "MixInput": [{"StreamId": "he", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [{"StreamId": "again-out", "Width": 320, "Height": 240, "Fps": 15,
                       "VideoBitrate": 300000}]});
    expect_code(
        &c.post("StartMix", &again.to_string(), "application/json"),
        0,
    );
    wait_probe(&flv("again-out"), "aac");
    let info: serde_json::Value = admin_get(&s.base, &format!("/api/mix/{APP}/again"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["inputs"][0]["status"], "live", "{info}");
}

#[test]
fn h265_and_opus_outputs_play_in_a_current_ffmpeg() {
    let s = Server::start(None);
    let _a = publish_color(&publish_url(&s, "a", "room1", "a"), "red", 440, 60);
    wait_live(&s, "a", LIVE);
    let c = s.app();
    // "SEI!" as the task's user data, to find it in the H.265 frames.
    let body = json!({"TaskId": "hevc", "UserId": "u", "UserData": "U0VJIQ==",
        "MixInput": [{"StreamId": "a", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [
            {"StreamId": "h265", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000,
             "VideoEncId": 3, "AudioCodec": 3, "AudioBitrate": 48000, "SoundChannel": 2},
            {"StreamId": "h265-hd", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 200000,
             "VideoEncId": 3, "LowBitrateHD": 1, "AudioCodec": 1, "AudioBitrate": 48000,
             "SoundChannel": 1}]});
    expect_code(
        &c.post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    let modern = modern_ffmpeg();
    let flv = format!("{}/{APP}/h265.flv", s.base);
    let rtmp = format!("{}/{APP}/h265", s.rtmp);
    let deadline = Instant::now() + LIVE;
    while centre_rgb(&modern, &flv).is_none() {
        assert!(Instant::now() < deadline, "{flv} never played");
        std::thread::sleep(Duration::from_millis(300));
    }
    for url in [&flv, &rtmp] {
        let (streams, errors) = streams_and_errors(&modern, url, 3);
        let all = streams.join("\n");
        assert!(
            all.contains("Video: hevc (Main)") && all.contains("320x240"),
            "{url}: {all}"
        );
        assert!(
            all.contains("Audio: opus, 48000 Hz, stereo"),
            "{url}: {all}"
        );
        assert!(errors.trim().is_empty(), "{url}: {errors}");
    }
    // The picture is the red input.
    let (r, g, b) = centre_rgb(&modern, &flv).unwrap();
    assert!(r > 200 && g < 60 && b < 60, "centre {r},{g},{b}");
    // Our SEI travels in H.265 prefix SEI units: the decoder hands the user data up.
    let out = Command::new(&modern)
        .args(["-hide_banner", "-nostdin", "-i", &flv, "-frames:v", "40"])
        .args(["-vf", "showinfo", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    // docs/SEI.md: our UUID, then version 1, record 1 (user data), length 4, "SEI!".
    assert!(
        log.contains("UUID=7d0b1f6a-2c4e-4b8e-9a51-3f6c2e8d4b17")
            && log.contains("User Data=0101000453454921"),
        "{}",
        log.lines()
            .filter(|l| l.contains("side data") || l.contains("User Data"))
            .take(4)
            .collect::<Vec<_>>()
            .join("\n")
    );

    // LowBitrateHD: H.265 with AAC-LC mono, as asked.
    let (streams, errors) =
        streams_and_errors(&modern, &format!("{}/{APP}/h265-hd.flv", s.base), 3);
    let all = streams.join("\n");
    assert!(all.contains("Video: hevc (Main)"), "{all}");
    assert!(all.contains("Audio: aac (LC), 44100 Hz, mono"), "{all}");
    assert!(errors.trim().is_empty(), "{errors}");

    // HLS carries the H.265 (TS stream type 0x24): Debian's ffprobe reads it. Opus is
    // left out of HLS (no browser player reads Opus in TS); the AAC output keeps audio.
    let hls = |id: &str| format!("{}/{APP}/{id}/playlist.m3u8", s.base);
    let deadline = Instant::now() + LIVE;
    loop {
        let probe = |url: &str| {
            let out = ffprobe(&[
                "-show_entries",
                "stream=codec_name,profile",
                "-of",
                "csv=p=0",
                url,
            ]);
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .replace('\n', ";")
        };
        let (a, b) = (probe(&hls("h265")), probe(&hls("h265-hd")));
        // (HLS lists its streams twice: under the program and alone.)
        let only_video = !a.is_empty() && a.split(';').all(|x| x.is_empty() || x == "hevc,Main");
        if only_video && b.contains("hevc,Main") && b.contains("aac,LC") {
            break;
        }
        assert!(Instant::now() < deadline, "HLS: {a:?} / {b:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn h265_and_opus_publishers_are_mixed() {
    let s = Server::start(None);
    // OBS-style Enhanced RTMP: H.265 video, Opus audio at 48 kHz.
    let _b = publish_hevc_opus(&publish_url(&s, "b", "room1", "b"), "blue", 880, 60);
    wait_live(&s, "b", LIVE);
    let c = s.app();
    let body = json!({"TaskId": "from-hevc", "UserId": "u",
        "MixInput": [{"StreamId": "b", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [{"StreamId": "plain", "Width": 320, "Height": 240, "Fps": 15,
                       "VideoBitrate": 300000}]});
    expect_code(
        &c.post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    let flv = format!("{}/{APP}/plain.flv", s.base);
    wait_probe(&flv, "aac");
    // The picture is the blue H.265 input, decoded and encoded again as H.264.
    let deadline = Instant::now() + LIVE;
    loop {
        let rgb = centre_rgb("ffmpeg", &flv);
        if rgb.is_some_and(|(r, g, b)| b > 200 && r < 60 && g < 60) {
            break;
        }
        assert!(Instant::now() < deadline, "centre {rgb:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The Opus tone is heard: a sine at lavfi's default amplitude (1/8) is −21 dB RMS.
    let mean = mean_volume_db(&flv, 3);
    assert!((-26.0..=-17.0).contains(&mean), "mean volume {mean} dB");
    let info: serde_json::Value = admin_get(&s.base, &format!("/api/mix/{APP}/from-hevc"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["inputs"][0]["status"], "live", "{info}");
    // The publisher's own HLS carries its H.265.
    let out = ffprobe(&[
        "-select_streams",
        "v",
        "-show_entries",
        "stream=codec_name",
        "-of",
        "csv=p=0",
        &format!("{}/{APP}/b/playlist.m3u8", s.base),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().next(),
        Some("hevc")
    );
}

#[test]
fn svc_publishes_a_base_layer_beside_the_output() {
    let s = Server::start(None);
    // A busy picture, so that both encoders spend what they are given.
    let codec: Vec<&str> = X264_LIVE.iter().copied().chain(["-c:a", "aac"]).collect();
    let _a = Proc(publish_with(
        &publish_url(&s, "busy", "room1", "a"),
        60,
        &codec,
        "320x240",
    ));
    wait_live(&s, "busy", LIVE);
    let c = s.app();
    let body = json!({"TaskId": "svc", "UserId": "u",
        "MixInput": [{"StreamId": "busy", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [{"StreamId": "layered", "Width": 320, "Height": 240, "Fps": 15,
                       "VideoBitrate": 800000, "VideoEncId": 4,
                       "ExtraLayers": [{"VideoBitrate": 150000}]}]});
    let r = c.post("StartMix", &body.to_string(), "application/json");
    expect_code(&r, 0);
    // The base layer is listed with the output, so a player learns where it is.
    let listed: Vec<&str> = r["Data"]["PlayInfo"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["StreamId"].as_str())
        .collect();
    assert_eq!(listed, ["layered", "layered_base"], "{r}");
    for id in ["layered", "layered_base"] {
        wait_live(&s, id, LIVE);
        let streams = probe_streams(&format!("{}/{APP}/{id}.flv", s.base));
        assert!(
            streams.iter().any(|l| l == "h264:320:240"),
            "{id}: {streams:?}"
        );
    }
    // Over a few seconds the base layer carries a fraction of the main one's bytes.
    let bytes = || {
        let info: serde_json::Value = admin_get(&s.base, &format!("/api/mix/{APP}/svc"))
            .unwrap()
            .json()
            .unwrap();
        let outs = info["outputs"].as_array().cloned().unwrap_or_default();
        let of = |i: usize| outs.get(i).and_then(|o| o["bytes"].as_u64()).unwrap_or(0);
        (of(0), of(1))
    };
    let (m0, b0) = bytes();
    std::thread::sleep(Duration::from_secs(4));
    let (m1, b1) = bytes();
    let (main, base) = ((m1 - m0) as f64, (b1 - b0) as f64);
    assert!(main > 0.0 && base > 0.0, "{main} {base}");
    assert!(base < 0.5 * main, "base {base} B vs main {main} B over 4 s");
}
