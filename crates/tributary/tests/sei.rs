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
    /// Levels keyed by stream id (auto-mixes).
    stream_levels: Option<Vec<(String, u8)>>,
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
            4 => {
                let mut l = Vec::new();
                let mut r = v;
                while let Some((&n, rest)) = r.split_first() {
                    let n = n as usize;
                    let (Some(id), Some(&level)) = (rest.get(..n), rest.get(n)) else {
                        break;
                    };
                    l.push((String::from_utf8_lossy(id).into_owned(), level));
                    r = &rest[n + 1..];
                }
                sei.stream_levels = Some(l);
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
fn sound_levels_need_ids_and_user_data_base64() {
    let s = Server::start(None);
    let _a = publish_color(&publish_url(&s, "a", "room1", "a"), "red", 440, 30);
    wait_live(&s, "a", LIVE);
    let c = s.app();
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

/// The stream data messages (`onTributaryData`) of about `secs` of an HTTP-FLV stream,
/// read the way a web player's script-data event sees them: FLV tags of type 18, AMF0
/// name + `{payload: base64}`, the payload being docs/SEI.md's bytes.
fn flv_data_messages(url: &str, secs: u64) -> Vec<Sei> {
    use base64::Engine as _;
    use std::io::Read;
    let mut body = Vec::new();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(secs + 5))
        .build()
        .unwrap();
    let Ok(mut r) = client.get(url).send() else {
        return Vec::new();
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 16384];
    while Instant::now() < deadline {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let mut out = Vec::new();
    let mut at = 13; // FLV header + first PreviousTagSize
    while at + 11 <= body.len() {
        let kind = body[at];
        let size = u32::from_be_bytes([0, body[at + 1], body[at + 2], body[at + 3]]) as usize;
        let Some(tag) = body.get(at + 11..at + 11 + size) else {
            break;
        };
        at += 11 + size + 4;
        let name = b"\x02\x00\x0fonTributaryData";
        let key = b"\x00\x07payload\x02";
        if kind != 18 || !tag.starts_with(name) {
            continue;
        }
        let Some(k) = tag.windows(key.len()).position(|w| w == key) else {
            continue;
        };
        let v = &tag[k + key.len()..];
        let len = u16::from_be_bytes([v[0], v[1]]) as usize;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&v[2..2 + len])
            .unwrap();
        assert_eq!(&payload[..16], &UUID);
        assert_eq!(payload[16], 1);
        out.push(parse_records(&payload[17..]));
    }
    out
}

#[test]
fn audio_only_outputs_carry_stream_data_as_script_data_and_timed_id3() {
    let s = Server::start(None);
    let _loud = publish_color(&publish_url(&s, "loud", "room1", "a"), "red", 440, 60);
    let _muted = publish_color(&publish_url(&s, "muted", "room1", "b"), "blue", 660, 60);
    wait_live(&s, "loud", LIVE);
    wait_live(&s, "muted", LIVE);
    let c = s.app();
    // "hello" as user data; an audio-only output (1×1).
    let body = json!({"TaskId": "voice", "UserId": "u", "UserData": "aGVsbG8=", "SoundLevel": 1,
        "MixInput": [
            {"StreamId": "loud", "SoundLevelId": 1, "RectInfo": {}},
            {"StreamId": "muted", "SoundLevelId": 2, "Volume": 0, "RectInfo": {}}],
        "MixOutput": [{"StreamId": "voice-out", "Width": 1, "Height": 1}]});
    expect_code(
        &c.post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    wait_live_audio(&s, "voice-out");
    let url = format!("{}/{APP}/voice-out.flv", s.base);
    let deadline = Instant::now() + LIVE;
    let msgs = loop {
        let msgs = flv_data_messages(&url, 3);
        if msgs.iter().filter(|m| m.levels.is_some()).count() >= 15 {
            break msgs;
        }
        assert!(Instant::now() < deadline, "{msgs:?}");
    };
    // Levels every 100 ms: the loud input is heard, the muted one is 0.
    let levels: Vec<&Vec<(u32, u8)>> = msgs.iter().filter_map(|m| m.levels.as_ref()).collect();
    let last = levels[levels.len() - 1];
    let level = |id: u32| last.iter().find(|(i, _)| *i == id).map(|(_, l)| *l);
    assert!(level(1).is_some_and(|l| l >= 30), "{last:?}");
    assert_eq!(level(2), Some(0), "{last:?}");
    // The user data, repeated for late joiners (every 2 s) with its bytes as given.
    assert!(
        msgs.iter()
            .any(|m| m.user_data.as_deref() == Some(&b"hello"[..])),
        "{msgs:?}"
    );

    // HLS: the same messages as timed ID3 (TXXX, description onTributaryData, value
    // {"payload": …}), demuxed by ffmpeg from the TS segments.
    let hls = format!("{}/{APP}/voice-out/playlist.m3u8", s.base);
    let deadline = Instant::now() + LIVE;
    loop {
        let out = Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error"])
            .args(["-live_start_index", "0", "-i", &hls])
            .args(["-map", "0:d", "-c", "copy", "-t", "3", "-f", "data", "-"])
            .output()
            .unwrap();
        let raw = out.stdout;
        let marker = b"TXXX";
        let found = raw.windows(4).filter(|w| w == marker).count();
        let with_hello = raw
            .windows(b"onTributaryData\x00".len())
            .enumerate()
            .filter(|(_, w)| *w == b"onTributaryData\x00")
            .filter_map(|(i, w)| {
                let json_start = i + w.len();
                let end = raw[json_start..].iter().position(|b| *b == b'}')? + json_start + 1;
                let v: serde_json::Value = serde_json::from_slice(&raw[json_start..end]).ok()?;
                use base64::Engine as _;
                let p = base64::engine::general_purpose::STANDARD
                    .decode(v["payload"].as_str()?)
                    .ok()?;
                (p.get(..16)? == UUID).then(|| parse_records(&p[17..]))
            })
            .filter(|m| m.user_data.as_deref() == Some(&b"hello"[..]))
            .count();
        if found >= 5 && with_hello >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ID3 tags {found}, with the user data {with_hello}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = ffprobe(&["-show_entries", "stream=codec_name", "-of", "csv=p=0", &hls]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("timed_id3"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn auto_mix_sound_levels_are_keyed_by_stream_id() {
    let s = Server::start(None);
    let _talker = publish_color(&publish_url(&s, "talker", "voice", "a"), "red", 440, 60);
    // A listener with a live microphone and digital silence.
    let _quiet = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo"])
            .args(["-c:a", "aac", "-t", "60", "-f", "flv"])
            .arg(publish_url(&s, "quiet", "voice", "b"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    wait_live(&s, "talker", LIVE);
    wait_live_audio(&s, "quiet");
    let c = s.app();
    let r = c.post(
        "StartAutoMix",
        &json!({"TaskId": "room-levels", "UserId": "host", "RoomId": "voice",
                "SoundLevel": 1, "UserData": "aGk=",
                "MixOutput": [{"StreamId": "voice-mix", "AudioCodec": 1}]})
        .to_string(),
        "application/json",
    );
    expect_code(&r, 0);
    wait_live_audio(&s, "voice-mix");
    let url = format!("{}/{APP}/voice-mix.flv", s.base);
    let deadline = Instant::now() + LIVE;
    loop {
        let msgs = flv_data_messages(&url, 2);
        let last = msgs.iter().rev().find_map(|m| m.stream_levels.clone());
        let level = |id: &str| {
            last.as_ref()
                .and_then(|l| l.iter().find(|(i, _)| i == id).map(|(_, v)| *v))
        };
        if level("talker").is_some_and(|l| l >= 30) && level("quiet") == Some(0) {
            assert!(
                msgs.iter()
                    .any(|m| m.user_data.as_deref() == Some(&b"hi"[..]))
            );
            break;
        }
        assert!(Instant::now() < deadline, "{last:?}");
    }
}
