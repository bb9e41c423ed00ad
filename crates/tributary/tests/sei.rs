//! Stream data in mix outputs, read back from a real output the way a player would: ffmpeg
//! demuxes the H.264 elementary stream, and a small reference parser of `docs/SEI.md`
//! finds tributary's SEI and decodes its records.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use serde_json::json;

const LIVE: Duration = Duration::from_secs(20);

/// tributary's SEI UUID (docs/SEI.md).
const UUID: [u8; 16] = [
    0x7d, 0x0b, 0x1f, 0x6a, 0x2c, 0x4e, 0x4b, 0x8e, 0x9a, 0x51, 0x3f, 0x6c, 0x2e, 0x8d, 0x4b, 0x17,
];

/// A layout entry: left, top, right, bottom, user id.
type Tile = (i16, i16, i16, i16, String);

/// One decoded tributary SEI message.
#[derive(Debug, Default, Clone)]
struct Sei {
    user_data: Option<Vec<u8>>,
    levels: Option<Vec<(u32, u8)>>,
    layout: Option<Vec<Tile>>,
}

/// The reference parser: Annex B bytes → tributary SEI messages, in stream order.
fn parse_stream(annexb: &[u8]) -> Vec<Sei> {
    let mut out = Vec::new();
    for nal in split_nals(annexb) {
        if nal.first().map(|h| h & 0x1f) != Some(6) {
            continue;
        }
        let rbsp = unescape(&nal[1..]);
        let mut i = 0;
        // sei_message()s until the trailing bits.
        while i < rbsp.len() && rbsp[i] != 0x80 {
            let mut read = || {
                let mut v = 0usize;
                while i < rbsp.len() && rbsp[i] == 0xff {
                    v += 255;
                    i += 1;
                }
                let last = rbsp.get(i).copied().unwrap_or(0) as usize;
                i += 1;
                v + last
            };
            let (ptype, size) = (read(), read());
            let Some(payload) = rbsp.get(i..i + size) else {
                break;
            };
            i += size;
            if ptype == 5 && payload.len() >= 17 && payload[..16] == UUID && payload[16] == 1 {
                out.push(parse_records(&payload[17..]));
            }
        }
    }
    out
}

fn parse_records(mut b: &[u8]) -> Sei {
    let mut sei = Sei::default();
    while b.len() >= 3 {
        let (tag, len) = (b[0], u16::from_be_bytes([b[1], b[2]]) as usize);
        let Some(v) = b.get(3..3 + len) else { break };
        match tag {
            1 => sei.user_data = Some(v.to_vec()),
            2 => {
                sei.levels = Some(
                    v.chunks_exact(5)
                        .map(|c| (u32::from_be_bytes([c[0], c[1], c[2], c[3]]), c[4]))
                        .collect(),
                )
            }
            3 => {
                let mut l = Vec::new();
                let mut r = v;
                while r.len() >= 9 {
                    let c = |k: usize| i16::from_be_bytes([r[2 * k], r[2 * k + 1]]);
                    let n = r[8] as usize;
                    let uid = String::from_utf8_lossy(&r[9..(9 + n).min(r.len())]).into_owned();
                    l.push((c(0), c(1), c(2), c(3), uid));
                    r = &r[(9 + n).min(r.len())..];
                }
                sei.layout = Some(l);
            }
            _ => {} // unknown records are skipped
        }
        b = &b[3 + len..];
    }
    sei
}

fn split_nals(b: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= b.len() {
        if b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let mut e = starts.get(k + 1).map_or(b.len(), |n| n - 3);
            while e > s && b[e - 1] == 0 {
                e -= 1;
            }
            &b[s..e]
        })
        .collect()
}

fn unescape(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut zeros = 0;
    for &x in b {
        if zeros >= 2 && x == 3 {
            zeros = 0;
            continue;
        }
        out.push(x);
        zeros = if x == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// About `secs` of the output's video as an H.264 Annex B elementary stream.
fn elementary(url: &str, secs: u32) -> Vec<u8> {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url])
        .args(["-t", &secs.to_string(), "-map", "0:v", "-c", "copy"])
        .args(["-bsf:v", "h264_mp4toannexb", "-f", "h264", "-"])
        .stderr(Stdio::null())
        .output()
        .expect("ffmpeg")
        .stdout
}

#[test]
fn user_data_sound_levels_and_layout_travel_as_sei() {
    let s = Server::start(None);
    let loud = publish_color(&publish_url(&s, "loud", "room1", "a"), "red", 440, 60);
    let muted = publish_color(&publish_url(&s, "muted", "room1", "c"), "blue", 660, 60);
    // Video with digital silence.
    let _silent = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "color=c=lime:size=160x120:rate=25"])
            .args(["-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo"])
            .args(X264_LIVE)
            .args([
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-t", "60", "-f", "flv",
            ])
            .arg(publish_url(&s, "silent", "room1", "b"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    for id in ["loud", "muted", "silent"] {
        wait_live(&s, id, LIVE);
    }
    // Zero runs in the user data exercise the emulation-prevention bytes.
    let data: &[u8] = b"\x00\x00\x01\x00\x00\x03hello, players";
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let body = |seq: i64, user_data: &str| {
        json!({"TaskId": "sei", "UserId": "u", "Sequence": seq, "UserData": user_data, "SoundLevel": 1,
            "MixInput": [
                {"StreamId": "loud", "SoundLevelId": 11, "UID": "anchor-a",
                 "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 160}},
                {"StreamId": "silent", "SoundLevelId": 22,
                 "RectInfo": {"Top": 0, "Left": 160, "Bottom": 120, "Right": 320}},
                {"StreamId": "muted", "SoundLevelId": 33, "Volume": 0,
                 "RectInfo": {"Top": 120, "Left": 160, "Bottom": 240, "Right": 320}}],
            "MixOutput": [{"StreamId": "sei-out", "Width": 320, "Height": 240, "Fps": 15,
                           "VideoBitrate": 500000}]})
        .to_string()
    };
    let c = s.app();
    expect_code(&c.post("StartMix", &body(1, &b64), "application/json"), 0);
    let url = format!("{}/{APP}/sei-out.flv", s.base);
    let deadline = Instant::now() + LIVE;
    let msgs = loop {
        let msgs = parse_stream(&elementary(&url, 3));
        // Past the first second: every input's audio is flowing.
        if msgs.iter().filter(|m| m.levels.is_some()).count() > 15 {
            break msgs;
        }
        assert!(
            Instant::now() < deadline,
            "no sound levels in {} SEI",
            msgs.len()
        );
    };
    // User data: the bytes as given, on the first frame and every key frame (GOP 2 s).
    let carried: Vec<&Vec<u8>> = msgs.iter().filter_map(|m| m.user_data.as_ref()).collect();
    assert!(!carried.is_empty(), "user data carried");
    assert!(carried.iter().all(|d| d.as_slice() == data));
    // Sound levels every 100 ms (15 fps: one frame in 1.5 carries them), keyed by id.
    let levels: Vec<HashMap<u32, u8>> = msgs
        .iter()
        .filter_map(|m| m.levels.as_ref())
        .map(|l| l.iter().copied().collect())
        .collect();
    let late = &levels[levels.len() / 2..];
    for l in late {
        assert_eq!(l.len(), 3, "{l:?}");
        assert!(l[&11] >= 40, "a loud input: {l:?}");
        assert_eq!(l[&22], 0, "a silent input: {l:?}");
        assert_eq!(l[&33], 0, "a muted input: {l:?}");
    }
    // The layout, with the user id, on key frames.
    let layout = msgs
        .iter()
        .find_map(|m| m.layout.clone())
        .expect("a layout record");
    assert_eq!(layout[0], (0, 0, 160, 240, "anchor-a".to_string()));
    assert_eq!(layout.len(), 3);

    // A live update of the user data reaches players at once.
    expect_code(
        &c.post("StartMix", &body(2, "bmV3IGRhdGE="), "application/json"),
        0,
    );
    let deadline = Instant::now() + LIVE;
    loop {
        let msgs = parse_stream(&elementary(&url, 2));
        if msgs
            .iter()
            .any(|m| m.user_data.as_deref() == Some(b"new data".as_slice()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the new user data never came");
    }
    drop((loud, muted));
}

#[test]
fn stream_data_needs_a_video_output_and_ids() {
    let s = Server::start(None);
    let _a = publish_color(&publish_url(&s, "a", "room1", "a"), "red", 440, 30);
    wait_live(&s, "a", LIVE);
    let c = s.app();
    let audio_only = json!({"TaskId": "t", "UserId": "u", "SoundLevel": 1,
        "MixInput": [{"StreamId": "a", "SoundLevelId": 1, "RectInfo": {}}],
        "MixOutput": [{"StreamId": "o", "Width": 1, "Height": 1, "Fps": 1, "VideoBitrate": 1}]});
    let r = c.post("StartMix", &audio_only.to_string(), "application/json");
    expect_code(&r, 110200002);
    assert!(r["Message"].as_str().unwrap().contains("SEI"), "{r}");
    let no_id = json!({"TaskId": "t", "UserId": "u", "SoundLevel": 1,
        "MixInput": [{"StreamId": "a", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [{"StreamId": "o", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000}]});
    let r = c.post("StartMix", &no_id.to_string(), "application/json");
    expect_code(&r, 110200002);
    assert!(
        r["Message"].as_str().unwrap().contains("SoundLevelId"),
        "{r}"
    );
    let not_b64 = json!({"TaskId": "t", "UserId": "u", "UserData": "not base64!",
        "MixInput": [{"StreamId": "a", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [{"StreamId": "o", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000}]});
    expect_code(
        &c.post("StartMix", &not_b64.to_string(), "application/json"),
        110200002,
    );
}
