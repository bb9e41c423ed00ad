//! StartCloudTranscode / StopCloudTranscode through the real binary: a 720p input becomes
//! a 720p + 360p ladder (with audio), probed with ffprobe; `transcode_start` and
//! `transcode_stop` arrive signed, with the vendor's PascalCase fields.

mod common;

use std::time::Duration;

use common::media::*;
use common::*;
use serde_json::json;
use sha1::{Digest, Sha1};

const LIVE: Duration = Duration::from_secs(20);

/// The transcode callbacks' signature (PascalCase fields), computed independently.
fn check_signature(body: &serde_json::Value) {
    let ts = body["Timestamp"].as_str().unwrap();
    let nonce = body["Nonce"].as_str().unwrap();
    let mut parts = [CB_SECRET, ts, nonce];
    parts.sort();
    let expected = hex::encode(Sha1::digest(parts.concat().as_bytes()));
    assert_eq!(body["Signature"].as_str().unwrap(), expected, "{body}");
}

fn next_event(rx: &Receiver, event: &str) -> serde_json::Value {
    loop {
        let cb = rx
            .next(LIVE)
            .unwrap_or_else(|| panic!("no {event} callback"));
        if cb.body["Event"] == event {
            return cb.body;
        }
    }
}

#[test]
fn a_720p_input_becomes_a_ladder_and_the_callbacks_say_so() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let codec: Vec<&str> = X264_LIVE.iter().copied().chain(["-c:a", "aac"]).collect();
    let _cam = Proc(publish_with(
        &publish_url(&s, "cam", "room1", "u1"),
        60,
        &codec,
        "1280x720",
    ));
    wait_live(&s, "cam", LIVE);
    let c = s.app();
    let body = json!({"TaskId": "ladder", "UserId": "u", "Sequence": 1,
        "TranscodeInput": {"StreamId": "cam"},
        "TranscodeOutput": [
            {"StreamId": "cam-360", "TemplateId": 0},
            {"StreamId": "cam-720", "TemplateId": 2},
            {"StreamId": "cam-h265", "TemplateId": 4, "TemplateConfig":
                {"VideoEncId": 2, "Width": 320, "Height": 180, "VideoBitrate": 200000}}]});
    expect_code(
        &c.post("StartCloudTranscode", &body.to_string(), "application/json"),
        0,
    );
    let started = next_event(&rx, "transcode_start");
    check_signature(&started);
    assert_eq!(started["Status"], "TranscodeStarted");
    assert_eq!(started["TaskId"], "ladder");
    assert_eq!(started["Details"]["Input"]["StreamId"], "cam");
    let outs = started["Details"]["Outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 3);

    for (id, size) in [("cam-720", "h264:1280:720"), ("cam-360", "h264:640:360")] {
        let url = format!("{}/{APP}/{id}.flv", s.base);
        wait_live(&s, id, LIVE);
        let streams = probe_streams(&url);
        assert!(streams.iter().any(|l| l == size), "{id}: {streams:?}");
        assert!(
            streams.iter().any(|l| l.starts_with("aac")),
            "{id}: {streams:?}"
        );
    }

    // The H.265 rung (Enhanced RTMP in FLV), read from its HLS by Debian's ffprobe.
    wait_live(&s, "cam-h265", LIVE);
    let hls = format!("{}/{APP}/cam-h265/playlist.m3u8", s.base);
    let deadline = std::time::Instant::now() + LIVE;
    loop {
        let out = ffprobe(&[
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "csv=p=0",
            &hls,
        ]);
        let streams = String::from_utf8_lossy(&out.stdout).into_owned();
        if streams.lines().any(|l| l == "hevc,320,180") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{streams:?}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // A transcode is not a mix: StopMix does not know it, StopCloudTranscode does.
    let stop = json!({"TaskId": "ladder", "UserId": "u", "Sequence": 2}).to_string();
    expect_code(
        &c.post(
            "StopCloudTranscode",
            &json!({"TaskId": "nope", "UserId": "u"}).to_string(),
            "application/json",
        ),
        110209001,
    );
    let r = c.post(
        "StartMix",
        &json!({"TaskId": "ladder", "UserId": "u", "Sequence": 3,
                "MixInput": [{"StreamId": "cam", "RectInfo": {}}],
                "MixOutput": [{"StreamId": "x", "Width": 1, "Height": 1, "Fps": 1, "VideoBitrate": 1}]})
        .to_string(),
        "application/json",
    );
    expect_code(&r, 110200002);
    assert!(r["Message"].as_str().unwrap().contains("transcode"), "{r}");
    expect_code(&c.post("StopCloudTranscode", &stop, "application/json"), 0);
    let stopped = next_event(&rx, "transcode_stop");
    check_signature(&stopped);
    assert_eq!(stopped["Status"], "TranscodeStopped");
    assert_eq!(stopped["StopReason"], 0);
}

#[test]
fn transcode_requests_are_checked() {
    let s = Server::start(None);
    let c = s.app();
    let post =
        |b: serde_json::Value| c.post("StartCloudTranscode", &b.to_string(), "application/json");
    // The input must be live.
    let r = post(
        json!({"TaskId": "t", "UserId": "u", "TranscodeInput": {"StreamId": "ghost"},
                        "TranscodeOutput": [{"StreamId": "o", "TemplateId": 0}]}),
    );
    expect_code(&r, 110200150);
    // A pulled input has no known size: templates need TemplateId 4 with a size.
    let r = post(json!({"TaskId": "t", "UserId": "u",
                        "TranscodeInput": {"StreamUrl": "rtmp://example.com/live/a"},
                        "TranscodeOutput": [{"StreamId": "o", "TemplateId": 1}]}));
    expect_code(&r, 110200002);
    // LowBitrateHD needs H.265; TemplateId must be 0–4.
    for out in [
        json!({"StreamId": "o", "TemplateId": 4, "TemplateConfig": {"LowBitrateHD": 1, "Width": 640, "Height": 360}}),
        json!({"StreamId": "o", "TemplateId": 9}),
        json!({"StreamId": "o"}),
    ] {
        let r = post(json!({"TaskId": "t", "UserId": "u",
                            "TranscodeInput": {"StreamUrl": "rtmp://example.com/live/a"},
                            "TranscodeOutput": [out]}));
        expect_code(&r, 110200002);
    }
}
