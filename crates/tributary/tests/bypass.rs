//! Pass-through (`ByPass` = 1, Tencent `AllowCopy`): the output carries the input's own
//! packets, byte for byte; adding an input switches the task to mixing while a player
//! keeps playing.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use serde_json::json;

const LIVE: Duration = Duration::from_secs(20);

/// MD5 of each video packet's payload over about `secs` of `url`.
fn packet_hashes(url: &str, secs: u32) -> Vec<String> {
    video_packets(url, secs, "data_hash", &["-show_data_hash", "MD5"]).1
}

fn body(seq: i64, inputs: &[&str]) -> String {
    let rects = [(0, 0, 160, 240), (160, 0, 320, 240)];
    let inputs: Vec<_> = inputs
        .iter()
        .zip(rects)
        .map(|(id, (l, t, r, b))| {
            json!({"StreamId": id, "RectInfo": {"Left": l, "Top": t, "Right": r, "Bottom": b}})
        })
        .collect();
    json!({"TaskId": "bp", "UserId": "u", "Sequence": seq, "ByPass": 1, "MixInput": inputs,
        "MixOutput": [{"StreamId": "bp-out", "Width": 320, "Height": 240, "Fps": 15,
                       "VideoBitrate": 400000}]})
    .to_string()
}

#[test]
fn bypass_copies_packets_and_switches_to_mixing_without_a_break() {
    let s = Server::start(None);
    let red = publish_color(&publish_url(&s, "red", "room1", "a"), "red", 440, 60);
    let green = publish_color(&publish_url(&s, "green", "room1", "b"), "lime", 660, 60);
    wait_live(&s, "red", LIVE);
    wait_live(&s, "green", LIVE);
    let c = s.app();
    expect_code(
        &c.post("StartMix", &body(1, &["red"]), "application/json"),
        0,
    );
    let (input, output) = (
        format!("{}/{APP}/red.flv", s.base),
        format!("{}/{APP}/bp-out.flv", s.base),
    );
    wait_live(&s, "bp-out", LIVE);
    // Read both at once: the output's packets are the input's, byte for byte.
    let reader = {
        let input = input.clone();
        std::thread::spawn(move || packet_hashes(&input, 4))
    };
    let out = packet_hashes(&output, 3);
    let inp: HashSet<String> = reader.join().unwrap().into_iter().collect();
    assert!(out.len() >= 30, "{} output packets", out.len());
    let copied = out.iter().filter(|h| inp.contains(*h)).count();
    assert!(
        copied * 10 >= out.len() * 9,
        "{copied} of {} output packets are input packets",
        out.len()
    );
    let info: serde_json::Value = admin_get(&s.base, &format!("/api/mix/{APP}/bp"))
        .unwrap()
        .json()
        .unwrap();
    assert!(
        info["cost_pixels_per_s"].as_u64().unwrap() < 1_000_000,
        "{info}"
    );

    // A player reads across the switch to mixing.
    let player = {
        let output = output.clone();
        std::thread::spawn(move || {
            Command::new("ffmpeg")
                .args(["-hide_banner", "-nostdin", "-v", "error", "-i", &output])
                .args(["-t", "8", "-an", "-s", "320x240", "-f", "rawvideo"])
                .args(["-pix_fmt", "rgb24", "-"])
                .stderr(Stdio::null())
                .output()
                .expect("ffmpeg")
                .stdout
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    expect_code(
        &c.post("StartMix", &body(2, &["red", "green"]), "application/json"),
        0,
    );
    let started = Instant::now();
    let raw = player.join().unwrap();
    let frames: Vec<&[u8]> = raw.chunks_exact(320 * 240 * 3).collect();
    let px = |f: &[u8], x: usize, y: usize| {
        let i = (y * 320 + x) * 3;
        (f[i], f[i + 1], f[i + 2])
    };
    let green_right = |f: &[u8]| {
        let (r, g, b) = px(f, 240, 120);
        r < 60 && g > 200 && b < 60
    };
    // 8 s of a 25 fps input then a 15 fps mix: one player, never cut off.
    assert!(frames.len() >= 100, "{} frames in 8 s", frames.len());
    assert!(
        frames.last().is_some_and(|f| green_right(f)),
        "the player ends on the mix (green on the right)"
    );
    assert!(
        !frames.first().is_some_and(|f| green_right(f)),
        "and started on the pass-through"
    );
    assert!(started.elapsed() < LIVE);
    drop((red, green));
}
