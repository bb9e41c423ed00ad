//! Output codecs through the real binary: each `AudioCodec` probed with ffprobe (codec,
//! profile, rate, channels) over HTTP-FLV and HLS, and decoded by ffmpeg without errors;
//! an HE-AAC output mixed again as an input.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use serde_json::json;

const LIVE: Duration = Duration::from_secs(20);

/// `codec_name,profile,sample_rate,channels` of the audio stream at `url`.
fn audio_stream(url: &str) -> String {
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
    // Opus is refused by name, with the reason.
    let opus = body
        .to_string()
        .replace("\"AudioCodec\":2", "\"AudioCodec\":3");
    let r = c.post(
        "StartMix",
        &opus.replace("\"codecs\"", "\"opus\""),
        "application/json",
    );
    expect_code(&r, 110200002);
    assert!(r["Message"].as_str().unwrap().contains("Opus"), "{r}");
}
