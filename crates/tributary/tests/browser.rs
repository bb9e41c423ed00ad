//! Playback in a real browser: Debian's Chromium (headless, driven by Playwright for
//! Python) plays tributary's HLS with hls.js and its HTTP-FLV with mpegts.js — the npm
//! players web pages use, pinned in `console/package-lock.json` and installed by
//! `scripts/setup.sh`. Each play must advance the `<video>`'s clock for several seconds
//! and show the right colours where they belong.

mod common;

use std::process::Command;
use std::time::Duration;

use common::media::*;
use common::*;
use serde_json::{Value, json};

const LIVE: Duration = Duration::from_secs(20);
/// Seconds of playback each player must show.
const PLAY_S: f64 = 3.0;

fn tools() -> String {
    std::env::var("TRIBUTARY_TOOLS").unwrap_or_else(|_| "/var/tmp/tributary-tools".into())
}

/// Plays `url` with hls.js (`kind` "hls") or mpegts.js ("flv") in Chromium; returns the
/// driver's report (`advanced`, `width`, `height`, `colours` at `points`).
fn play(kind: &str, url: &str, points: &[(f64, f64)]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/players.py");
    let out = Command::new(format!("{}/venv/bin/python", tools()))
        .arg(script)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/console"))
        .args([kind, url, &PLAY_S.to_string()])
        .args(points.iter().map(|(x, y)| format!("{x},{y}")))
        .output()
        .expect("the tools venv with playwright (scripts/setup.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "{kind} {url}: no report; stdout {text}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Both players at once (two browsers), each checked: the clock advanced, the picture is
/// `size`, and each point shows its colour (within what YUV→RGB rounding allows).
/// A point of the picture (fractions of its width and height) and the colour it shows.
type Probe = ((f64, f64), (u8, u8, u8));

fn both_play(hls: &str, flv: &str, size: (u64, u64), points: &[Probe]) {
    let at: Vec<(f64, f64)> = points.iter().map(|p| p.0).collect();
    let (hls_report, flv_report) = std::thread::scope(|sc| {
        let h = sc.spawn(|| play("hls", hls, &at));
        let f = sc.spawn(|| play("flv", flv, &at));
        (h.join().unwrap(), f.join().unwrap())
    });
    for (name, r) in [("hls.js", hls_report), ("mpegts.js", flv_report)] {
        eprintln!("{name}: {r}");
        assert!(r.get("error").is_none(), "{name}: {r}");
        let advanced = r["advanced"].as_f64().unwrap_or(0.0);
        assert!(
            advanced >= PLAY_S,
            "{name}: currentTime advanced {advanced} s: {r}"
        );
        assert_eq!(
            (r["width"].as_u64(), r["height"].as_u64()),
            (Some(size.0), Some(size.1)),
            "{name}: {r}"
        );
        for (i, (_, want)) in points.iter().enumerate() {
            let got = &r["colours"][i];
            let got: Vec<i64> = (0..3).map(|c| got[c].as_i64().unwrap_or(-999)).collect();
            let want = [want.0 as i64, want.1 as i64, want.2 as i64];
            assert!(
                got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 40),
                "{name}: point {:?} is {got:?}, want {want:?}: {r}",
                points[i].0
            );
        }
    }
}

#[test]
fn hls_js_and_mpegts_js_play_a_published_stream_and_a_mix() {
    let s = Server::start_with_sections("[live]\nhls_segment_ms = 1000");
    let colours = [
        ("red", (255, 0, 0)),
        ("lime", (0, 255, 0)),
        ("blue", (0, 0, 255)),
        ("yellow", (255, 255, 0)),
    ];
    let _pubs: Vec<Proc> = colours
        .iter()
        .enumerate()
        .map(|(i, (c, _))| {
            publish_color(
                &publish_url(&s, c, "room1", &format!("u{i}")),
                c,
                300 + 100 * i as u32,
                60,
            )
        })
        .collect();
    for (c, _) in &colours {
        wait_live(&s, c, LIVE);
    }

    // A stream as published (160×120 red).
    both_play(
        &format!("{}/{APP}/red/playlist.m3u8", s.base),
        &format!("{}/{APP}/red.flv", s.base),
        (160, 120),
        &[((0.5, 0.5), (255, 0, 0))],
    );

    // A 2×2 mix of the four: each colour in its quadrant.
    let quad = |stream: &str, left, top| json!({"StreamId": stream, "RectInfo": {"Left": left, "Top": top, "Right": left + 160, "Bottom": top + 120, "Layer": 1}});
    let r = s.app().post(
        "StartMix",
        &json!({
            "TaskId": "quad", "UserId": "mixer", "RoomId": "room1", "Sequence": 1,
            "MixInput": [quad("red", 0, 0), quad("lime", 160, 0), quad("blue", 0, 120), quad("yellow", 160, 120)],
            "MixOutput": [{"StreamId": "quad", "Width": 320, "Height": 240, "Fps": 15,
                           "VideoBitrate": 500000, "AudioCodec": 1}]
        })
        .to_string(),
        "application/json",
    );
    expect_code(&r, 0);
    let play_info = &r["Data"]["PlayInfo"][0];
    let (hls, flv) = (
        play_info["HLS"].as_str().unwrap().to_string(),
        play_info["FLV"].as_str().unwrap().to_string(),
    );
    wait_live(&s, "quad", LIVE);
    both_play(
        &hls,
        &flv,
        (320, 240),
        &[
            ((0.25, 0.25), (255, 0, 0)),
            ((0.75, 0.25), (0, 255, 0)),
            ((0.25, 0.75), (0, 0, 255)),
            ((0.75, 0.75), (255, 255, 0)),
        ],
    );
}

/// Runs the console driver; its JSON report.
fn console(s: &Server, token: &str, mode: &str, shots: Option<&std::path::Path>) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/console.py");
    let mut cmd = Command::new(format!("{}/venv/bin/python", tools()));
    cmd.args([script, &s.base, token, mode]);
    if let Some(dir) = shots {
        cmd.arg(dir);
    }
    let out = cmd.output().expect("the tools venv with playwright");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "console {mode}: no report; stdout {text}; stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn the_console_shows_streams_and_mixes_to_the_operator_only() {
    // A callback receiver that refuses everything: the outbox has pending deliveries.
    let rx = Receiver::start(&[500; 400]);
    let s = Server::start(Some(&rx.url));
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 60);
    let _blue = publish_color(&publish_url(&s, "blue", "room1", "u2"), "blue", 880, 60);
    wait_live(&s, "red", LIVE);
    wait_live(&s, "blue", LIVE);
    let half = |stream: &str, left| json!({"StreamId": stream, "RectInfo": {"Left": left, "Top": 0, "Right": left + 160, "Bottom": 240, "Layer": 1}});
    let r = s.app().post(
        "StartMix",
        &json!({
            "TaskId": "side", "UserId": "mixer", "RoomId": "room1", "Sequence": 1,
            "MixInput": [half("red", 0), half("blue", 160)],
            "MixOutput": [{"StreamId": "side-out", "Width": 320, "Height": 240, "Fps": 15,
                           "VideoBitrate": 400000, "AudioCodec": 1}]
        })
        .to_string(),
        "application/json",
    );
    expect_code(&r, 0);
    wait_live(&s, "side-out", LIVE);

    // A wrong token: the page says so and shows nothing.
    let refused = console(&s, "not-the-token", "refused", None);
    eprintln!("refused: {refused}");
    assert_eq!(refused["refused"], true, "{refused}");
    assert_eq!(refused["login_shown"], true, "{refused}");
    assert_eq!(refused["streams"], json!([]), "{refused}");
    assert_eq!(refused["mixes"], json!([]), "{refused}");

    // The operator, logged in by the link's fragment (dropped from the address at once);
    // the screenshots in docs/console/ are this run's.
    let shots = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/console"));
    std::fs::create_dir_all(shots).unwrap();
    let r = console(&s, ADMIN_TOKEN, "login", Some(shots));
    eprintln!("login: {r}");
    assert_eq!(
        r["hash_after_load"], "",
        "the token stayed in the address: {r}"
    );
    assert_eq!(r["errors"], json!([]), "{r}");
    let streams: Vec<String> = serde_json::from_value(r["streams"].clone()).unwrap();
    for name in ["red", "blue", "side-out"] {
        let row = streams
            .iter()
            .find(|row| row.split('\t').nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} not listed: {streams:?}"));
        assert!(
            row.starts_with(&APP.to_string()) && row.contains("H264"),
            "{row}"
        );
    }
    // The room with its publishers (hosts) and their streams.
    let rooms: Vec<String> = serde_json::from_value(r["rooms"].clone()).unwrap();
    let room1 = rooms
        .iter()
        .find(|row| row.starts_with("room1\t"))
        .unwrap_or_else(|| panic!("room1 not listed: {rooms:?}"));
    assert!(
        room1.contains("red (u1)") && room1.contains("blue (u2)") && room1.contains("u1 host"),
        "{room1}"
    );
    let mixes: Vec<String> = serde_json::from_value(r["mixes"].clone()).unwrap();
    let side = mixes
        .iter()
        .find(|row| row.contains("side"))
        .unwrap_or_else(|| panic!("the task is not listed: {mixes:?}"));
    assert!(
        side.contains("red live") && side.contains("blue live") && side.contains("/ 15"),
        "{side}"
    );
    // Its preview plays the task's output.
    assert_eq!(r["preview"]["name"], format!("{APP}/side-out"), "{r}");
    assert!(r["preview"]["time"].as_f64().unwrap_or(0.0) > 2.0, "{r}");
    assert_eq!(
        (
            r["preview"]["width"].as_u64(),
            r["preview"]["height"].as_u64()
        ),
        (Some(320), Some(240))
    );
    assert!(r["metrics"].as_u64().unwrap_or(0) >= 1, "{r}");
    // The live charts: the streams counted right, a positive send rate (players read).
    let charts: Vec<String> = serde_json::from_value(r["charts"].clone()).unwrap();
    assert_eq!(charts.len(), 4, "{charts:?}");
    assert_eq!(charts[0], "live streams 3", "{charts:?}");
    let sent: f64 = charts[3]
        .trim_start_matches("sent Mb/s")
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(sent > 0.0, "{charts:?}");
    let callbacks: Vec<String> = serde_json::from_value(r["callbacks"].clone()).unwrap();
    assert!(
        !callbacks.is_empty()
            && callbacks
                .iter()
                .all(|c| c.contains("/hook") && c.contains("500")),
        "{callbacks:?}"
    );
    assert_eq!(r["forbid"], "ForbidRTCStream: done", "{r}");
    assert!(
        r["banned"][0]
            .as_str()
            .is_some_and(|b| b.starts_with("red\t")),
        "{r}"
    );
    assert_eq!(r["resume"], "ResumeRTCStream: done", "{r}");
    // The layout editor's two applies: red | blue, then blue dragged over red's half.
    let colour = |v: &Value| -> Vec<i64> { (0..3).map(|c| v[c].as_i64().unwrap_or(-1)).collect() };
    let near =
        |got: Vec<i64>, want: [i64; 3]| got.iter().zip(want).all(|(g, w)| (g - w).abs() <= 60);
    assert!(
        near(colour(&r["before"][0]), [255, 0, 0]) && near(colour(&r["before"][1]), [0, 0, 255]),
        "{r}"
    );
    assert_eq!(r["dragged"], "0,0 → 320,360", "{r}");
    assert!(
        near(colour(&r["after"][0]), [0, 0, 255]) && near(colour(&r["after"][1]), [0, 0, 0]),
        "{r}"
    );
    assert_eq!(r["stopped"], "StopMix: done", "{r}");
    // Tencent's templates as presets; template 20 on 640×360: a third of the background
    // (213×120) 20 px from the bottom-right corner, its left edge rounded to even (407 →
    // 408). Red's corner dragged to (411, 223) sticks to blue's edges (408, 220), where
    // the 8 px grid alone would give (408, 224).
    assert!(
        r["template_options"].as_u64().is_some_and(|n| n >= 10),
        "{r}"
    );
    assert_eq!(
        r["template_blue"],
        json!(["408px", "220px", "212px", "120px"]),
        "{r}"
    );
    assert_eq!(r["snapped"], "0,0 → 408,220", "{r}");
    let tasks: Value = admin_get(&s.base, "/api/mix").unwrap().json().unwrap();
    assert!(
        tasks
            .as_array()
            .is_some_and(|t| t.iter().all(|t| t["task_id"] != "console-mix")),
        "{tasks}"
    );
    assert_eq!(r["session_token"], true);
    for shot in [
        "streams.png",
        "mix-tasks.png",
        "metrics.png",
        "layout-editor.png",
    ] {
        assert!(
            shots
                .join(shot)
                .metadata()
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{shot}"
        );
    }
}
