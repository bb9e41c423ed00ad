//! Mixing through the real binary: `ffmpeg` publishes solid colours with tones, StartMix
//! arrives over the signed API, and `ffmpeg` reads the mixed HTTP-FLV output back to check
//! pixels at layout points, size, frame rate and both tones.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use serde_json::{Value, json};

const LIVE: Duration = Duration::from_secs(20);
const W: usize = 320;
const H: usize = 240;

fn flv_url(s: &Server, stream: &str) -> String {
    format!("{}/{APP}/{stream}.flv", s.base)
}

/// Reads `secs` of a stream's video as RGB frames of W×H.
fn read_frames(url: &str, secs: f32) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url])
        .args([
            "-t",
            &secs.to_string(),
            "-an",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("ffmpeg");
    out.stdout
        .chunks_exact(W * H * 3)
        .map(<[u8]>::to_vec)
        .collect()
}

fn px(frame: &[u8], x: usize, y: usize) -> (u8, u8, u8) {
    let i = (y * W + x) * 3;
    (frame[i], frame[i + 1], frame[i + 2])
}

/// Roughly this colour (codec and colour-conversion rounding allowed).
fn is(c: (u8, u8, u8), rgb: (u8, u8, u8)) -> bool {
    let d = |a: u8, b: u8| (a as i32 - b as i32).abs();
    d(c.0, rgb.0) < 40 && d(c.1, rgb.1) < 40 && d(c.2, rgb.2) < 40
}

const RED: (u8, u8, u8) = (255, 0, 0);
const BLUE: (u8, u8, u8) = (0, 0, 255);
const GREEN: (u8, u8, u8) = (0, 255, 0);

fn two_up(task: &str, seq: i64, left: &str, right: &str, out: &str) -> String {
    json!({
        "TaskId": task, "UserId": "mixer-user", "RoomId": "room1", "Sequence": seq,
        "BackGroundColorHex": "0x00FF0000",
        "MixInput": [
            {"StreamId": left, "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 160, "Layer": 1}},
            {"StreamId": right, "RectInfo": {"Top": 0, "Left": 160, "Bottom": 240, "Right": 320, "Layer": 1}}
        ],
        "MixOutput": [{"StreamId": out, "Width": 320, "Height": 240, "Fps": 15,
                        "VideoBitrate": 600000, "AudioCodec": 1}]
    })
    .to_string()
}

/// Waits until a frame of the output shows `rgb` at (x, y).
fn wait_pixel(url: &str, x: usize, y: usize, rgb: (u8, u8, u8)) -> Vec<u8> {
    let deadline = Instant::now() + LIVE;
    loop {
        let frames = read_frames(url, 1.0);
        if let Some(f) = frames.iter().rev().find(|f| is(px(f, x, y), rgb)) {
            return f.clone();
        }
        assert!(Instant::now() < deadline, "({x},{y}) never became {rgb:?}");
    }
}

#[test]
fn start_update_and_stop_a_two_input_mix() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    let _blue = publish_color(&publish_url(&s, "blue", "room1", "u2"), "blue", 1000, 40);
    wait_live(&s, "red", LIVE);
    wait_live(&s, "blue", LIVE);

    let c = s.app();
    let r = c.post(
        "StartMix",
        &two_up("t1", 1, "red", "blue", "mixed"),
        "application/json",
    );
    expect_code(&r, 0);
    let play = &r["Data"]["PlayInfo"][0];
    assert_eq!(r["Data"]["UserId"], "mixer-user");
    assert_eq!(r["Data"]["Sequence"], 1);
    assert_eq!(r["Data"]["RoomId"], "room1");
    assert_eq!(play["StreamId"], "mixed");
    let flv = play["FLV"].as_str().unwrap().to_string();
    assert_eq!(flv, flv_url(&s, "mixed"));
    assert!(play["RTMP"].as_str().unwrap().starts_with("rtmp://"));
    assert!(
        play["HLS"]
            .as_str()
            .unwrap()
            .ends_with("/mixed/playlist.m3u8")
    );

    // mix_start arrives, signed, with the vendor's task_id form.
    let cb = loop {
        let cb = rx.next(LIVE).expect("callback");
        if cb.body["event"] == "mix_start" {
            break cb.body;
        }
    };
    assert_eq!(cb["task_id"], format!("{APP}:t1"));
    assert_eq!(cb["mix_stream_alias"], "mixed");
    assert_eq!(cb["seq"], "1");

    // The picture: red left, blue right, size and codec as asked.
    let info = wait_live(&s, "mixed", LIVE);
    assert_eq!(info["width"], 320.0);
    assert_eq!(info["video_codec"], "H264");
    let frame = wait_pixel(&flv, 80, 120, RED);
    assert!(is(px(&frame, 240, 120), BLUE), "{:?}", px(&frame, 240, 120));

    // Frame rate: about 15 fps of monotonic video.
    let times = video_times(&flv, 3);
    assert!(times.len() >= 30, "{} frames in 3 s", times.len());
    assert!(times.windows(2).all(|w| w[1] >= w[0]));

    // Both tones are in the mixed audio.
    let audio = read_audio(&flv, 2.0);
    assert!(audio.len() > 44_100, "{} samples", audio.len());
    let (a, b, none) = (
        tone(&audio, 440.0),
        tone(&audio, 1000.0),
        tone(&audio, 700.0),
    );
    assert!(
        a > 0.02 && b > 0.02 && none < a / 10.0,
        "440: {a}, 1000: {b}, 700: {none}"
    );

    // A stale Sequence is refused and changes nothing; another user may not update.
    let stale = c.post(
        "StartMix",
        &two_up("t1", 1, "blue", "red", "mixed"),
        "application/json",
    );
    expect_code(&stale, 110200002);
    assert!(stale["Message"].as_str().unwrap().contains("Sequence"));
    let mut other: Value = serde_json::from_str(&two_up("t1", 5, "blue", "red", "mixed")).unwrap();
    other["UserId"] = json!("intruder");
    expect_code(
        &c.post("StartMix", &other.to_string(), "application/json"),
        110200160,
    );

    // A live update swaps the sides while one player keeps reading.
    let url = flv.clone();
    let player = std::thread::spawn(move || read_frames(&url, 6.0));
    std::thread::sleep(Duration::from_millis(1500));
    let r = c.post(
        "StartMix",
        &two_up("t1", 2, "blue", "red", "mixed"),
        "application/json",
    );
    expect_code(&r, 0);
    let frames = player.join().unwrap();
    assert!(
        frames.len() >= 60,
        "the player kept going: {} frames",
        frames.len()
    );
    assert!(
        is(px(&frames[5], 80, 120), RED),
        "before: {:?}",
        px(&frames[5], 80, 120)
    );
    let last = frames.last().unwrap();
    assert!(
        is(px(last, 80, 120), BLUE),
        "after: {:?}",
        px(last, 80, 120)
    );
    assert!(is(px(last, 240, 120), RED));

    // The HLS URL of PlayInfo plays too.
    let hls = play["HLS"].as_str().unwrap();
    assert_eq!(probe_streams(hls), vec!["aac", "h264:320:240"], "{hls}");

    // GetMixTaskInfo reports the real duration; unknown tasks get 110209001.
    let info = c.get("GetMixTaskInfo", &[("TaskId", "t1")]);
    expect_code(&info, 0);
    assert_eq!(info["Data"]["TaskInfo"]["TaskId"], "t1");
    assert!(
        info["Data"]["TaskInfo"]["MixDuration"].as_u64().unwrap() >= 5,
        "{info}"
    );
    expect_code(&c.get("GetMixTaskInfo", &[("TaskId", "nope")]), 110209001);

    // The introspection endpoint has the task's figures.
    let stats: Value = admin_get(&s.base, &format!("/api/mix/{APP}/t1"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["inputs"][0]["status"], "live", "{stats}");
    // Every input's audio arrived in time to be mixed (a 15 fps tick is longer than the
    // input buffer: this once lost a quarter of the audio).
    for inp in stats["inputs"].as_array().unwrap() {
        assert!(inp["late_audio_ms"].as_u64().unwrap() < 200, "{stats}");
    }
    assert!(stats["fps_achieved"].as_f64().unwrap() > 12.0, "{stats}");
    // It names the node running it: this one.
    let nodes: Value = admin_get(&s.base, "/api/nodes").unwrap().json().unwrap();
    assert_eq!(stats["node"], nodes["node"], "{stats} {nodes}");
    assert_eq!(nodes["nodes"][0]["this"], true, "{nodes}");

    // StopMix by a non-owner is refused; by the owner it ends the output and fires mix_stop.
    let stop = |user: &str, seq: i64| {
        c.post(
            "StopMix",
            &json!({"TaskId": "t1", "UserId": user, "Sequence": seq}).to_string(),
            "application/json",
        )
    };
    expect_code(&stop("intruder", 10), 110200160);
    let mut reader = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            &flv,
            "-f",
            "null",
            "-",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    expect_code(&stop("mixer-user", 11), 0);
    assert!(
        wait_exit(&mut reader, LIVE).is_some(),
        "the player saw the end"
    );
    let cb = loop {
        let cb = rx.next(LIVE).expect("callback");
        if cb.body["event"] == "mix_stop" {
            break cb.body;
        }
    };
    assert_eq!(cb["task_id"], format!("{APP}:t1"));
    assert_eq!(cb["seq"], "11");
    expect_code(&stop("mixer-user", 12), 110209001);
    expect_code(&c.get("GetMixTaskInfo", &[("TaskId", "t1")]), 110209001);
}

#[test]
fn refusals_use_the_vendors_codes() {
    let s = Server::start(None);
    let c = s.app();
    let post = |v: Value| c.post("StartMix", &v.to_string(), "application/json");
    let base = || -> Value { serde_json::from_str(&two_up("v", 1, "a", "b", "out")).unwrap() };

    // Inputs that are not live: 110200150.
    let r = post(base());
    expect_code(&r, 110200150);
    assert!(r["Message"].as_str().unwrap().contains('a'), "{r}");

    let mut v = base();
    v["MixInput"] = json!(
        (0..10)
            .map(|i| json!({"StreamId": format!("s{i}"), "RectInfo": {}}))
            .collect::<Vec<_>>()
    );
    expect_code(&post(v), 110200158);

    let mut v = base();
    v["MixInput"][1]["StreamId"] = json!("a");
    expect_code(&post(v), 110200175);

    let mut v = base();
    v["MixOutput"][0]["StreamId"] = json!("a");
    expect_code(&post(v), 110200140);

    let mut v = base();
    let o = v["MixOutput"][0].clone();
    v["MixOutput"] = json!([o.clone(), o]);
    expect_code(&post(v), 110200176);

    let mut v = base();
    let o = v["MixOutput"][0].clone();
    v["MixOutput"] = json!([o.clone(), o.clone(), o.clone(), o]);
    expect_code(&post(v), 110200178);

    let mut v = base();
    v["MixOutput"][0]["Width"] = json!(3002);
    expect_code(&post(v), 110200161);

    let mut v = base();
    v["BackgroundImage"] = json!("ftp://example.com/a.png");
    expect_code(&post(v), 110200141);

    let mut v = base();
    v["WaterMark"] =
        json!({"Image": "", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 10, "Right": 10}});
    expect_code(&post(v), 110200171);

    // Features not implemented yet, or incomplete, are refused by name, never ignored.
    for (path, value, name) in [
        ("/UserData", json!("not base64!"), "UserData"),
        ("/SoundLevel", json!(2), "SoundLevel"),
        ("/MixOutput/0/VideoEncId", json!(4), "ExtraLayers"),
        ("/MixOutput/0/LowBitrateHD", json!(1), "LowBitrateHD"),
        ("/MixOutput/0/AudioCodec", json!(9), "AudioCodec"),
        // Out of range.
        (
            "/MixInput/0/RectInfo/CornerRadius",
            json!(101),
            "CornerRadius",
        ),
        ("/RecvBufferLevel", json!(5000), "RecvBufferLevel"),
        (
            "/MixOutput/0/TargetRoom",
            json!({"RoomId": "r"}),
            "TargetRoom",
        ),
    ] {
        let mut v = base();
        let (parent, key) = path.rsplit_once('/').unwrap();
        v.pointer_mut(if parent.is_empty() { "" } else { parent })
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert(key.to_string(), value);
        let r = post(v);
        expect_code(&r, 110200002);
        assert!(r["Message"].as_str().unwrap().contains(name), "{name}: {r}");
    }
    // VP8 only where this server serves it (a StreamId output, played over WHEP).
    let mut v = base();
    v["MixOutput"][0]["VideoEncId"] = json!(2);
    v["MixOutput"][0]["StreamUrl"] = json!("rtmp://127.0.0.1:1/live/x");
    let r = post(v);
    expect_code(&r, 110200002);
    assert!(r["Message"].as_str().unwrap().contains("VP8"), "{r}");
    // A label without its font: the text watermark code.
    let mut v = base();
    v["MixInput"][0]["Label"] = json!({"Text": "x", "Left": 0, "Top": 0});
    expect_code(&post(v), 110200179);

    // Missing required fields, and unknown tasks.
    expect_code(
        &c.post(
            "StartMix",
            r#"{"UserId":"u","MixInput":[],"MixOutput":[]}"#,
            "application/json",
        ),
        110200002,
    );
    expect_code(
        &c.post("StopMix", r#"{"TaskId":"ghost"}"#, "application/json"),
        110209001,
    );
    expect_code(
        &c.post(
            "StopAutoMix",
            r#"{"TaskId":"ghost","RoomId":"r"}"#,
            "application/json",
        ),
        110209001,
    );
}

#[test]
fn inputs_drop_and_return_a_dead_push_target_does_not_stall_and_a_restart_resumes() {
    let rx = Receiver::start(&[]);
    let mut s = Server::start(Some(&rx.url));
    let red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 60);
    let blue = publish_color(&publish_url(&s, "blue", "room1", "u2"), "blue", 1000, 60);
    wait_live(&s, "red", LIVE);
    wait_live(&s, "blue", LIVE);

    // One output played here, one pushed to a port where nothing listens.
    let mut v: Value = serde_json::from_str(&two_up("faults", 1, "red", "blue", "m2")).unwrap();
    let o = v["MixOutput"][0].clone();
    let mut dead = o.clone();
    dead["StreamUrl"] = json!("rtmp://127.0.0.1:9/live/nowhere");
    v["MixOutput"] = json!([o, dead]);
    let c = s.app();
    expect_code(&c.post("StartMix", &v.to_string(), "application/json"), 0);
    let flv = flv_url(&s, "m2");
    wait_pixel(&flv, 240, 120, BLUE);

    // The blue publisher dies: after the 3 s hold its half shows the background (green),
    // while the red half and the output go on.
    drop(blue);
    let frame = wait_pixel(&flv, 240, 120, GREEN);
    assert!(is(px(&frame, 80, 120), RED));
    let stats: Value = admin_get(&s.base, &format!("/api/mix/{APP}/faults"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["inputs"][1]["status"], "lost", "{stats}");
    assert!(
        stats["outputs"][0]["frames_encoded"].as_u64().unwrap() > 30,
        "{stats}"
    );
    assert_ne!(stats["outputs"][1]["push"], "Live", "{stats}");

    // It comes back as a new track and is shown again.
    let _blue = publish_color(&publish_url(&s, "blue", "room1", "u2"), "blue", 1000, 60);
    wait_pixel(&flv, 240, 120, BLUE);

    // A restart: the task is stored, so it resumes with the same output once the
    // publishers are back.
    drop(red);
    drop(_blue);
    s.restart();
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 60);
    let _blue = publish_color(&publish_url(&s, "blue", "room1", "u2"), "blue", 1000, 60);
    let flv = flv_url(&s, "m2");
    let frame = wait_pixel(&flv, 80, 120, RED);
    assert!(is(px(&frame, 240, 120), BLUE) || is(px(&frame, 240, 120), GREEN));
    let info = s.app().get("GetMixTaskInfo", &[("TaskId", "faults")]);
    expect_code(&info, 0);
    expect_code(
        &s.app().post(
            "StopMix",
            r#"{"TaskId":"faults","UserId":"mixer-user"}"#,
            "application/json",
        ),
        0,
    );
}

#[test]
fn auto_mix_follows_the_room() {
    let s = Server::start(None);
    let _a = publish_color(&publish_url(&s, "a", "party", "ua"), "red", 440, 60);
    let _b = publish_color(&publish_url(&s, "b", "party", "ub"), "blue", 1000, 60);
    wait_live(&s, "a", LIVE);
    wait_live(&s, "b", LIVE);
    let c = s.app();
    let r = c.post(
        "StartAutoMix",
        &json!({"TaskId": "party", "UserId": "host", "RoomId": "party",
                "MixOutput": [{"StreamId": "party-mix", "AudioCodec": 1, "SoundChannel": 2}]})
        .to_string(),
        "application/json",
    );
    expect_code(&r, 0);
    assert_eq!(r["Data"]["PlayInfo"][0]["StreamId"], "party-mix");
    let flv = flv_url(&s, "party-mix");
    wait_live_audio(&s, "party-mix");
    assert_eq!(probe_streams(&flv), vec!["aac".to_string()], "audio only");

    let deadline = Instant::now() + LIVE;
    loop {
        let audio = read_audio(&flv, 1.5);
        if tone(&audio, 440.0) > 0.02 && tone(&audio, 1000.0) > 0.02 {
            break;
        }
        assert!(Instant::now() < deadline, "both speakers never heard");
    }

    // A third speaker joins the room: heard without any API call.
    let _d = publish_color(&publish_url(&s, "d", "party", "ud"), "green", 1800, 60);
    let deadline = Instant::now() + LIVE;
    loop {
        let audio = read_audio(&flv, 1.5);
        if tone(&audio, 1800.0) > 0.02 && tone(&audio, 440.0) > 0.02 {
            break;
        }
        assert!(Instant::now() < deadline, "the third speaker never heard");
    }

    // A stream removed with ExtraMixInput ModifyType 1 is no longer heard.
    let r = c.post(
        "StartAutoMix",
        &json!({"TaskId": "party", "UserId": "host", "RoomId": "party",
                "ExtraMixInput": [{"StreamId": "a", "ModifyType": 1}],
                "MixOutput": [{"StreamId": "party-mix", "AudioCodec": 1, "SoundChannel": 2}]})
        .to_string(),
        "application/json",
    );
    expect_code(&r, 0);
    let deadline = Instant::now() + LIVE;
    loop {
        let audio = read_audio(&flv, 1.5);
        if tone(&audio, 440.0) < 0.005 && tone(&audio, 1000.0) > 0.02 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the removed stream is still heard"
        );
    }
    expect_code(
        &c.post(
            "StopAutoMix",
            r#"{"TaskId":"party","RoomId":"other"}"#,
            "application/json",
        ),
        110200002,
    );
    expect_code(
        &c.post(
            "StopAutoMix",
            r#"{"TaskId":"party","RoomId":"party","UserId":"host"}"#,
            "application/json",
        ),
        0,
    );
}

/// A room of muted speakers: its mix is continuous digital silence, made without encoding
/// it and without decoding the speakers' repeated silent packets; a speaker who starts
/// talking is heard at once.
#[test]
fn a_muted_room_is_mixed_without_encoding_or_decoding_its_silence() {
    let s = Server::start(None);
    let _m1 = publish_silence(&publish_url(&s, "m1", "hush", "u1"), 60);
    let _m2 = publish_silence(&publish_url(&s, "m2", "hush", "u2"), 60);
    wait_live_audio(&s, "m1");
    wait_live_audio(&s, "m2");
    let c = s.app();
    let r = c.post(
        "StartAutoMix",
        &json!({"TaskId": "hush", "UserId": "host", "RoomId": "hush",
                "MixOutput": [{"StreamId": "hush-mix", "AudioCodec": 1}]})
        .to_string(),
        "application/json",
    );
    expect_code(&r, 0);
    let flv = flv_url(&s, "hush-mix");
    wait_live_audio(&s, "hush-mix");

    // Two seconds of the mix: every sample zero, a packet every 1024 samples, no gap.
    let audio = read_audio(&flv, 2.0);
    assert!(audio.len() > 44_100, "{} samples", audio.len());
    assert!(
        audio.iter().all(|v| *v == 0.0),
        "the muted room is not silent"
    );
    let out = ffprobe(&[
        "-read_intervals",
        "%+2",
        "-select_streams",
        "a",
        "-show_entries",
        "packet=pts_time",
        "-of",
        "csv=p=0",
        &flv,
    ]);
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    assert!(times.len() > 60, "{} packets in 2 s", times.len());
    for w in times.windows(2) {
        let step = w[1] - w[0];
        assert!(
            (0.020..=0.027).contains(&step),
            "packet step {step} s in {times:?}"
        );
    }
    // Both short-cuts were taken on real publishers' packets.
    let wait_metric = |name: &str| {
        let deadline = Instant::now() + LIVE;
        while metric(&s, name, "") < 50.0 {
            assert!(
                Instant::now() < deadline,
                "{name} stayed at {}",
                metric(&s, name, "")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_metric("tributary_mix_silent_frames_not_encoded");
    wait_metric("tributary_mix_silent_packets_not_decoded");

    // Someone talks: heard, with the muted speaker still in the mix.
    let _t = publish_color(&publish_url(&s, "t", "hush", "u3"), "red", 1000, 60);
    let deadline = Instant::now() + LIVE;
    loop {
        let audio = read_audio(&flv, 1.5);
        if tone(&audio, 1000.0) > 0.02 {
            break;
        }
        assert!(Instant::now() < deadline, "the talking speaker never heard");
    }
    expect_code(
        &c.post(
            "StopAutoMix",
            r#"{"TaskId":"hush","RoomId":"hush","UserId":"host"}"#,
            "application/json",
        ),
        0,
    );
}

fn write_png(path: &std::path::Path, w: u32, h: u32, rgba: [u8; 4]) {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba(rgba));
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

#[test]
fn background_image_and_watermark_from_the_images_folder() {
    let s = Server::start(None);
    let images = s.data.join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_png(&images.join("bg.png"), 64, 48, [255, 255, 0, 255]);
    // A watermark: opaque magenta left half, fully transparent right half.
    let mut wm = image::RgbaImage::from_pixel(40, 40, image::Rgba([255, 0, 255, 255]));
    for y in 0..40 {
        for x in 20..40 {
            wm.put_pixel(x, y, image::Rgba([255, 255, 255, 0]));
        }
    }
    wm.save_with_format(images.join("wm.png"), image::ImageFormat::Png)
        .unwrap();

    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    wait_live(&s, "red", LIVE);
    let body = |bg: &str| {
        json!({
            "TaskId": "img", "UserId": "u", "BackgroundImage": bg,
            "WaterMark": {"Image": "preset-id://wm.png",
                          "RectInfo": {"Top": 200, "Left": 280, "Bottom": 240, "Right": 320}},
            "MixInput": [{"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 120, "Right": 160}}],
            "MixOutput": [{"StreamId": "img-out", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 500000}]
        })
        .to_string()
    };
    let c = s.app();
    expect_code(
        &c.post(
            "StartMix",
            &body("preset-id://missing.png"),
            "application/json",
        ),
        110200142,
    );
    expect_code(
        &c.post("StartMix", &body("preset-id://bg.png"), "application/json"),
        0,
    );
    let frame = wait_pixel(&flv_url(&s, "img-out"), 80, 60, RED);
    assert!(
        is(px(&frame, 240, 60), (255, 255, 0)),
        "background image: {:?}",
        px(&frame, 240, 60)
    );
    assert!(
        is(px(&frame, 290, 220), (255, 0, 255)),
        "watermark: {:?}",
        px(&frame, 290, 220)
    );
    assert!(
        is(px(&frame, 312, 220), (255, 255, 0)),
        "transparent part: {:?}",
        px(&frame, 312, 220)
    );
}

#[test]
fn a_task_over_the_nodes_budget_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), None);
    let data = tmp.path().join("data");
    let s = Server::start_with(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--mix-budget",
            "1000000",
        ],
    );
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 20);
    let _blue = publish_color(&publish_url(&s, "blue", "room1", "u2"), "blue", 1000, 20);
    wait_live(&s, "red", LIVE);
    wait_live(&s, "blue", LIVE);
    let r = s.app().post(
        "StartMix",
        &two_up("big", 1, "red", "blue", "o"),
        "application/json",
    );
    expect_code(&r, 110200194);
    assert!(r["Message"].as_str().unwrap().contains("budget"), "{r}");
}

#[test]
fn a_stream_url_input_is_pulled_and_the_task_shows_in_metrics() {
    let s = Server::start(None);
    // The source is another server (another tributary): its URL is pulled over RTMP by
    // FFmpeg, through the URL policy (the test configuration opens 127.0.0.1).
    let origin = Server::start(None);
    let _red = publish_color(&publish_url(&origin, "red", "room1", "u1"), "red", 440, 40);
    wait_live(&origin, "red", LIVE);
    let body = json!({
        "TaskId": "pull", "UserId": "u",
        "MixInput": [{"StreamId": "ignored-when-url-given", "StreamUrl": format!("{}/{APP}/red", origin.rtmp),
                      "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}, "RenderMode": 1}],
        "MixOutput": [{"StreamId": "pulled", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 400000}]
    });
    let r = s
        .app()
        .post("StartMix", &body.to_string(), "application/json");
    expect_code(&r, 0);
    // Fit mode: the 4:3 input fills the 4:3 rect.
    let frame = wait_pixel(&flv_url(&s, "pulled"), 160, 120, RED);
    assert!(is(px(&frame, 5, 5), RED), "{:?}", px(&frame, 5, 5));
    assert_eq!(metric(&s, "tributary_mix_tasks", ""), 1.0);
    let task = format!("task=\"{APP}:pull\"");
    assert!(metric(&s, "tributary_mix_ticks_total", &task) > 0.0);
    assert_eq!(metric(&s, "tributary_mix_inputs_live", &task), 1.0);
    // A stopped task's series go away.
    expect_code(
        &s.app()
            .post("StopMix", r#"{"TaskId":"pull"}"#, "application/json"),
        0,
    );
    assert_eq!(metric(&s, "tributary_mix_tasks", ""), 0.0);
    let text = admin_get(&s.base, "/metrics").unwrap().text().unwrap();
    assert!(!text.contains(&task), "{text}");
}

#[test]
fn an_http_flv_input_is_pulled_through_the_url_policy() {
    let s = Server::start(None);
    let _blue = publish_color(&publish_url(&s, "blue", "room1", "u1"), "blue", 660, 40);
    wait_live(&s, "blue", LIVE);
    // HTTP-FLV inputs are read by tributary's own client (redirects checked), not FFmpeg's.
    let body = json!({
        "TaskId": "flvpull", "UserId": "u", "Sequence": 1,
        "MixInput": [{"StreamUrl": format!("{}/{APP}/blue.flv?token=SECRETQ", s.base),
                      "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [{"StreamId": "flvpulled", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 400000}]
    });
    expect_code(
        &s.app()
            .post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    let frame = wait_pixel(&flv_url(&s, "flvpulled"), 160, 120, BLUE);
    assert!(is(px(&frame, 5, 5), BLUE), "{:?}", px(&frame, 5, 5));
    // This server's own play URL is read from its hub, not over the network.
    let stats: Value = admin_get(&s.base, &format!("/api/mix/{APP}/flvpull"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["inputs"][0]["source"], "blue", "{stats}");
    let origin = Server::start(None);
    let _green = publish_color(
        &publish_url(&origin, "green", "room1", "u1"),
        "lime",
        550,
        40,
    );
    wait_live(&origin, "green", LIVE);
    let body = json!({
        "TaskId": "flvpull", "UserId": "u", "Sequence": 2,
        "MixInput": [{"StreamUrl": format!("{}/{APP}/green.flv?token=SECRETQ", origin.base),
                      "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [{"StreamId": "flvpulled", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 400000}]
    });
    expect_code(
        &s.app()
            .post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    let frame = wait_pixel(&flv_url(&s, "flvpulled"), 160, 120, GREEN);
    assert!(is(px(&frame, 5, 5), GREEN), "{:?}", px(&frame, 5, 5));
    let stats: Value = admin_get(&s.base, &format!("/api/mix/{APP}/flvpull"))
        .unwrap()
        .json()
        .unwrap();
    let input = &stats["inputs"][0];
    assert_eq!(input["status"], "live", "{stats}");
    let source = input["source"].as_str().unwrap();
    assert!(source.starts_with("http://127.0.0.1:"), "{source}");
    assert!(!source.contains("SECRETQ"), "{source}");
}

#[test]
fn a_48_khz_input_is_resampled_without_aliases() {
    let s = Server::start(None);
    // A 10 kHz tone encoded at 48 kHz (what OBS and browsers send).
    let _hi = publish_color_with(
        &publish_url(&s, "hi", "room1", "u1"),
        "red",
        10_000,
        40,
        &["-c:a", "aac", "-b:a", "128k", "-ar", "48000"],
    );
    wait_live(&s, "hi", LIVE);
    let body = json!({"TaskId": "rs", "UserId": "u",
        "MixInput": [{"StreamId": "hi", "RectInfo": {}}],
        "MixOutput": [{"StreamId": "rs-out", "Width": 1, "Height": 1, "Fps": 1, "VideoBitrate": 1,
                        "AudioCodec": 1, "AudioBitrate": 128000}]});
    expect_code(
        &s.app()
            .post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    wait_live_audio(&s, "rs-out");
    let deadline = Instant::now() + LIVE;
    let samples = loop {
        let a = read_audio(&flv_url(&s, "rs-out"), 3.0);
        if a.len() > 44_100 && tone(&a[22_050..], 10_000.0) > 0.01 {
            break a;
        }
        assert!(Instant::now() < deadline, "the tone never came through");
    };
    let steady = &samples[22_050..];
    // `tone` is half the amplitude; full scale is 1.
    let dbfs = |f: f64| 20.0 * (2.0 * tone(steady, f)).log10();
    assert!(
        dbfs(10_000.0) > -25.0,
        "the tone: {:.1} dBFS",
        dbfs(10_000.0)
    );
    // Linear interpolation folds 48 ± 10 kHz to 6.1 and 13.9 kHz (about −42 dBFS here).
    for f in [6_100.0, 13_900.0] {
        assert!(dbfs(f) < -70.0, "alias at {f} Hz: {:.1} dBFS", dbfs(f));
    }
}

#[test]
fn an_mp3_input_is_mixed_and_an_output_can_change_size_live() {
    let s = Server::start(None);
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    // An MP3 publisher (FLV audio codec 2).
    let _mp3 = publish_color_with(
        &publish_url(&s, "mp3", "room1", "u2"),
        "blue",
        1000,
        40,
        &["-c:a", "libmp3lame", "-b:a", "64k"],
    );
    wait_live(&s, "red", LIVE);
    wait_live(&s, "mp3", LIVE);
    let c = s.app();
    expect_code(
        &c.post(
            "StartMix",
            &two_up("sz", 1, "red", "mp3", "sz-out"),
            "application/json",
        ),
        0,
    );
    let flv = flv_url(&s, "sz-out");
    wait_pixel(&flv, 240, 120, BLUE);
    let deadline = Instant::now() + LIVE;
    loop {
        let audio = read_audio(&flv, 1.5);
        if tone(&audio, 1000.0) > 0.02 && tone(&audio, 440.0) > 0.02 {
            break;
        }
        assert!(Instant::now() < deadline, "the MP3 input is not heard");
    }
    // A live update to a smaller output: new players get the new size.
    let mut v: Value = serde_json::from_str(&two_up("sz", 2, "red", "mp3", "sz-out")).unwrap();
    v["MixOutput"][0]["Width"] = json!(160);
    v["MixOutput"][0]["Height"] = json!(120);
    v["MixOutput"][0]["VideoBitrate"] = json!(300000);
    v["MixInput"][0]["RectInfo"] = json!({"Top": 0, "Left": 0, "Bottom": 120, "Right": 80});
    v["MixInput"][1]["RectInfo"] = json!({"Top": 0, "Left": 80, "Bottom": 120, "Right": 160});
    expect_code(&c.post("StartMix", &v.to_string(), "application/json"), 0);
    let deadline = Instant::now() + LIVE;
    loop {
        if probe_streams(&flv).contains(&"h264:160:120".to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the output never became 160x120: {:?}",
            probe_streams(&flv)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_task_whose_inputs_are_gone_stops_itself_and_says_so() {
    let rx = Receiver::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), Some(&rx.url));
    // The operators' cap on idle time stands in for MaxIdleTime's 90 s minimum.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[mix]\nidle_cap_s = 2\n");
    std::fs::write(&config, text).unwrap();
    let s = Server::start_with(
        &tmp.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    wait_live(&s, "red", LIVE);
    let c = s.app();
    let body = json!({"TaskId": "idle", "UserId": "u", "RoomId": "room1",
        "MixInput": [{"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [{"StreamId": "idle-out", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000}]});
    expect_code(
        &c.post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    wait_live(&s, "idle-out", LIVE);
    drop(red);
    let cb = loop {
        let cb = rx.next(LIVE).expect("mix_stop after the idle time");
        if cb.body["event"] == "mix_stop" {
            break cb.body;
        }
    };
    assert_eq!(cb["task_id"], format!("{APP}:idle"));
    expect_code(&c.get("GetMixTaskInfo", &[("TaskId", "idle")]), 110209001);
    let deadline = Instant::now() + LIVE;
    while is_live(&s, "idle-out") {
        assert!(Instant::now() < deadline, "the output outlived its task");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (≤ 5 s) until the node reports `want` streams decoded for video tasks.
fn wait_decodes(s: &Server, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = metric(s, "tributary_mix_decodes", "");
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} streams decoded, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stream_read_by_several_tasks_is_decoded_once() {
    let s = Server::start(None);
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    let _blue = publish_color(&publish_url(&s, "blue", "room1", "u2"), "blue", 1000, 40);
    wait_live(&s, "red", LIVE);
    wait_live(&s, "blue", LIVE);
    let c = s.app();
    // Red full frame in two tasks (one picture scaled for both), and at half width beside
    // blue in a third (its own scale of the same decoded picture).
    let full = |task: &str, out: &str| {
        json!({
            "TaskId": task, "UserId": "u", "Sequence": 1,
            "MixInput": [{"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
            "MixOutput": [{"StreamId": out, "Width": 320, "Height": 240, "Fps": 15,
                            "VideoBitrate": 400000, "AudioCodec": 1}]
        })
        .to_string()
    };
    expect_code(
        &c.post("StartMix", &full("one", "o1"), "application/json"),
        0,
    );
    expect_code(
        &c.post("StartMix", &full("two", "o2"), "application/json"),
        0,
    );
    expect_code(
        &c.post(
            "StartMix",
            &two_up("three", 1, "red", "blue", "o3"),
            "application/json",
        ),
        0,
    );
    let frame = wait_pixel(&flv_url(&s, "o3"), 80, 120, RED);
    assert!(is(px(&frame, 240, 120), BLUE), "{:?}", px(&frame, 240, 120));
    for out in ["o1", "o2"] {
        let frame = wait_pixel(&flv_url(&s, out), 160, 120, RED);
        assert!(
            is(px(&frame, 300, 220), RED),
            "{out}: {:?}",
            px(&frame, 300, 220)
        );
    }
    // Three tasks, four inputs, two streams decoded.
    wait_decodes(&s, 2.0);
    // Each task hears what it mixes, on its own timeline.
    let audio = read_audio(&flv_url(&s, "o3"), 2.0);
    assert!(tone(&audio, 440.0) > 0.02, "red's tone in o3");
    assert!(tone(&audio, 1000.0) > 0.02, "blue's tone in o3");
    let audio = read_audio(&flv_url(&s, "o2"), 2.0);
    assert!(tone(&audio, 440.0) > 0.02, "red's tone in o2");
    assert!(tone(&audio, 1000.0) < 0.01, "no blue in o2");

    // A task leaving does not stop the decode the others read.
    expect_code(
        &c.post("StopMix", r#"{"TaskId":"one"}"#, "application/json"),
        0,
    );
    expect_code(
        &c.post("StopMix", r#"{"TaskId":"three"}"#, "application/json"),
        0,
    );
    wait_decodes(&s, 1.0);
    let before: Value = admin_get(&s.base, &format!("/api/mix/{APP}/two"))
        .unwrap()
        .json()
        .unwrap();
    let frame = wait_pixel(&flv_url(&s, "o2"), 160, 120, RED);
    assert!(is(px(&frame, 5, 5), RED), "{:?}", px(&frame, 5, 5));
    let after: Value = admin_get(&s.base, &format!("/api/mix/{APP}/two"))
        .unwrap()
        .json()
        .unwrap();
    let decoded = |v: &Value| v["inputs"][0]["frames_decoded"].as_u64().unwrap_or(0);
    assert!(decoded(&after) > decoded(&before), "{before} -> {after}");
    // A task joining a stream already decoded reads that decode.
    expect_code(
        &c.post("StartMix", &full("four", "o4"), "application/json"),
        0,
    );
    wait_pixel(&flv_url(&s, "o4"), 160, 120, RED);
    wait_decodes(&s, 1.0);
    for task in ["two", "four"] {
        expect_code(
            &c.post(
                "StopMix",
                &json!({"TaskId": task}).to_string(),
                "application/json",
            ),
            0,
        );
    }
    wait_decodes(&s, 0.0);
}

#[test]
fn a_mix_outputs_audio_starts_with_increasing_timestamps() {
    let s = Server::start(None);
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 60);
    wait_live(&s, "red", LIVE);
    let body = json!({"TaskId": "ts", "UserId": "u",
        "MixInput": [{"StreamId": "red", "RectInfo": {}}],
        "MixOutput": [{"StreamId": "ts-out", "Width": 320, "Height": 240, "Fps": 15,
                        "VideoBitrate": 300000, "AudioCodec": 1, "AudioBitrate": 48000}]});
    expect_code(
        &s.app()
            .post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    wait_live(&s, "ts-out", LIVE);
    // A player that comes now starts from the output's first key frame (the hub keeps its
    // first GOP): it sees the audio's first access units, the encoder's priming among them.
    let out = ffprobe(&[
        "-show_entries",
        "packet=codec_type,dts",
        "-of",
        "csv=p=0",
        "-read_intervals",
        "%+1",
        &flv_url(&s, "ts-out"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let dts = |kind: &str| -> Vec<i64> {
        text.lines()
            .filter_map(|l| l.split_once(','))
            .filter(|(k, _)| *k == kind)
            .filter_map(|(_, d)| d.trim().parse().ok())
            .collect()
    };
    let (video, audio) = (dts("video"), dts("audio"));
    // It read from the start: the output's first picture is stamped at its start.
    assert!(video.first().is_some_and(|&d| d < 1_000), "video {video:?}");
    assert!(audio.len() > 10, "audio {audio:?}");
    assert!(
        audio.windows(2).all(|w| w[0] < w[1]),
        "audio timestamps repeat or go back: {audio:?}"
    );
}
