//! StartMix's tile and timing fields through the real binary, checked by pixels and by the
//! API: placeholders for each DisplayMode, labels, rounded corners, blurred margins,
//! TargetRoom, WaitVideoInput, RecvBufferLevel, and the vendor's full example body.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use serde_json::{Value, json};

const LIVE: Duration = Duration::from_secs(20);

/// An ffmpeg publisher of lavfi sources: a video filter graph (or none) and a tone (or none).
fn publish_lavfi(url: &str, video: Option<&str>, tone: Option<u32>) -> Proc {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"]);
    if let Some(v) = video {
        cmd.args(["-f", "lavfi", "-i", v]);
    }
    if let Some(f) = tone {
        cmd.args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency={f}:sample_rate=44100"));
    }
    if video.is_some() {
        cmd.args(X264_LIVE).args(["-pix_fmt", "yuv420p"]);
    }
    if tone.is_some() {
        cmd.args(["-c:a", "aac", "-b:a", "64k"]);
    }
    cmd.args(["-t", "60", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Proc(cmd.spawn().expect("ffmpeg"))
}

/// Reads about a second of a stream's video as RGB frames of `w × h`.
fn frames(url: &str, w: usize, h: usize) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url])
        .args(["-t", "1", "-an", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stderr(Stdio::null())
        .output()
        .expect("ffmpeg");
    out.stdout
        .chunks_exact(w * h * 3)
        .map(<[u8]>::to_vec)
        .collect()
}

struct Frame<'a> {
    px: &'a [u8],
    w: usize,
}

impl Frame<'_> {
    fn at(&self, x: usize, y: usize) -> (u8, u8, u8) {
        let i = (y * self.w + x) * 3;
        (self.px[i], self.px[i + 1], self.px[i + 2])
    }
    /// Pixels of about `rgb` in `[x0, x1) × [y0, y1)`.
    fn count(&self, (x0, y0, x1, y1): (usize, usize, usize, usize), rgb: (u8, u8, u8)) -> usize {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| is(self.at(x, y), rgb))
            .count()
    }
    /// Sum of luma-ish differences between horizontal neighbours along row `y`.
    fn contrast(&self, y: usize, xs: std::ops::Range<usize>) -> u32 {
        xs.map(|x| {
            let (a, b) = (self.at(x, y), self.at(x + 1, y));
            (a.1 as i32 - b.1 as i32).unsigned_abs()
        })
        .sum()
    }
}

fn is(c: (u8, u8, u8), rgb: (u8, u8, u8)) -> bool {
    let d = |a: u8, b: u8| (a as i32 - b as i32).abs();
    d(c.0, rgb.0) < 50 && d(c.1, rgb.1) < 50 && d(c.2, rgb.2) < 50
}

/// Waits until a frame satisfies `ok`; returns it.
fn wait_frame(url: &str, w: usize, h: usize, what: &str, ok: impl Fn(&Frame) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + LIVE;
    loop {
        if let Some(f) = frames(url, w, h)
            .into_iter()
            .rev()
            .find(|f| ok(&Frame { px: f, w }))
        {
            return f;
        }
        assert!(Instant::now() < deadline, "never saw: {what}");
    }
}

const RED: (u8, u8, u8) = (255, 0, 0);
const GREEN: (u8, u8, u8) = (0, 255, 0);
const BLUE: (u8, u8, u8) = (0, 0, 255);
const YELLOW: (u8, u8, u8) = (255, 255, 0);

fn write_png(path: &std::path::Path, rgba: [u8; 4]) {
    image::RgbaImage::from_pixel(64, 48, image::Rgba(rgba))
        .save_with_format(path, image::ImageFormat::Png)
        .unwrap();
}

fn mix_info(s: &Server, task: &str) -> Value {
    admin_get(&s.base, &format!("/api/mix/{APP}/{task}"))
        .unwrap()
        .json()
        .unwrap()
}

/// Four 160×120 tiles on a blue 320×240 canvas:
/// - top left: red video, rounded corners, a green label that runs past the tile's edge;
/// - top right: an audio-only publisher with a "camera off" placeholder (yellow);
/// - bottom left: a checkerboard with blurred left and top margins;
/// - bottom right: green video under an always-on placeholder, then (update) one shown
///   only after 3 s without video, so the video comes back.
fn tiles(seq: i64, green_mode: u32) -> String {
    json!({
        "TaskId": "tiles", "UserId": "u", "RoomId": "room1", "Sequence": seq,
        "BackGroundColorHex": "0x0000FF00",
        "MixInput": [
            {"StreamId": "red", "UID": "anchor-1",
             "RectInfo": {"Top": 0, "Left": 0, "Bottom": 120, "Right": 160, "CornerRadius": 30},
             "Label": {"Text": "HELLO", "Left": 100, "Top": 40,
                       "Font": {"FontSize": 40, "FontColor": 65280}}},
            {"StreamId": "mic", "RectInfo": {"Top": 0, "Left": 160, "Bottom": 120, "Right": 320},
             "Image": {"Url": "preset-id://ph.png", "DisplayMode": 1}},
            {"StreamId": "check", "RectInfo": {"Top": 120, "Left": 0, "Bottom": 240, "Right": 160},
             "BlurInfo": {"LeftPadding": 40, "TopPadding": 30}},
            {"StreamId": "green", "RectInfo": {"Top": 120, "Left": 160, "Bottom": 240, "Right": 320},
             "Image": {"Url": "preset-id://ph.png", "DisplayMode": green_mode}}
        ],
        "MixOutput": [{"StreamId": "tiles-out", "Width": 320, "Height": 240, "Fps": 15,
                        "VideoBitrate": 1200000}]
    })
    .to_string()
}

#[test]
fn placeholders_labels_rounded_corners_and_blurred_margins_are_drawn() {
    let s = Server::start(None);
    let images = s.data.join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_png(&images.join("ph.png"), [255, 255, 0, 255]);
    let pub_url = |id: &str| publish_url(&s, id, "room1", id);
    let _red = publish_lavfi(
        &pub_url("red"),
        Some("color=c=red:size=160x120:rate=25"),
        Some(440),
    );
    let _mic = publish_lavfi(&pub_url("mic"), None, Some(660));
    let _check = publish_lavfi(
        &pub_url("check"),
        Some(
            "nullsrc=size=160x120:rate=25,geq=lum='if(mod(floor(X/8)+floor(Y/8),2),235,16)':cb=128:cr=128",
        ),
        None,
    );
    let _green = publish_lavfi(
        &pub_url("green"),
        Some("color=c=lime:size=160x120:rate=25"),
        None,
    );
    wait_live_audio(&s, "mic");
    for id in ["red", "check", "green"] {
        wait_live(&s, id, LIVE);
    }
    let c = s.app();
    expect_code(&c.post("StartMix", &tiles(1, 0), "application/json"), 0);
    let url = format!("{}/{APP}/tiles-out.flv", s.base);
    let f = wait_frame(&url, 320, 240, "red, the placeholders and the label", |f| {
        is(f.at(80, 100), RED)
            && is(f.at(240, 60), YELLOW)
            && is(f.at(240, 180), YELLOW)
            && f.count((100, 40, 160, 100), GREEN) > 50
    });
    if let Ok(dir) = std::env::var("TRIBUTARY_SNAPSHOT_DIR") {
        // For a human look at the picture (README, reviews).
        let img = image::RgbImage::from_raw(320, 240, f.clone()).unwrap();
        img.save(std::path::Path::new(&dir).join("tiles.png"))
            .unwrap();
    }
    let f = Frame { px: &f, w: 320 };
    // Rounded corners: the corner pixels show the canvas, the edges' middles the video.
    for (x, y) in [(1, 1), (158, 1), (1, 118), (158, 118)] {
        assert!(is(f.at(x, y), BLUE), "corner ({x},{y}) = {:?}", f.at(x, y));
    }
    for (x, y) in [(80, 2), (2, 60), (157, 20), (80, 117)] {
        assert!(is(f.at(x, y), RED), "edge ({x},{y}) = {:?}", f.at(x, y));
    }
    // The label is clipped to its tile: nothing green in the yellow placeholder beside it.
    assert_eq!(
        f.count((162, 0, 320, 120), GREEN),
        0,
        "label spilled out of its tile"
    );
    // Blurred margins: the left band and top band are far smoother than the centre.
    let centre = f.contrast(200, 60..150);
    let left = f.contrast(200, 2..36);
    let top = f.contrast(132, 60..150);
    assert!(centre > 500, "the checkerboard centre is sharp: {centre}");
    // Per pixel: the 34-pixel band against the 90-pixel centre.
    assert!(
        left * 90 * 3 < centre * 34,
        "left margin blurred: {left} vs {centre}"
    );
    assert!(top * 3 < centre, "top margin blurred: {top} vs {centre}");

    let info = mix_info(&s, "tiles");
    assert_eq!(info["inputs"][0]["uid"], "anchor-1");
    assert_eq!(info["inputs"][1]["placeholder_shown"], true);
    assert_eq!(info["inputs"][3]["placeholder_shown"], true);
    assert_eq!(info["inputs"][0]["placeholder_shown"], false);

    // Live update: the bottom-right placeholder now waits for 3 s without video, and the
    // green video is flowing, so it shows.
    expect_code(&c.post("StartMix", &tiles(2, 2), "application/json"), 0);
    // The label, unchanged by the update, is still drawn (from the picture drawn before).
    wait_frame(&url, 320, 240, "the green video back", |f| {
        is(f.at(240, 180), GREEN)
            && is(f.at(240, 60), YELLOW)
            && f.count((100, 40, 160, 100), GREEN) > 50
    });
}

#[test]
fn a_placeholder_replaces_a_video_that_stops() {
    let s = Server::start(None);
    let images = s.data.join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_png(&images.join("ph.png"), [255, 255, 0, 255]);
    let red = publish_lavfi(
        &publish_url(&s, "red", "room1", "u1"),
        Some("color=c=red:size=160x120:rate=25"),
        None,
    );
    wait_live(&s, "red", LIVE);
    let body = json!({"TaskId": "ph", "UserId": "u", "BackGroundColorHex": "0x0000FF00",
        "MixInput": [{"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320},
                      "Image": {"Url": "preset-id://ph.png", "DisplayMode": 2}}],
        "MixOutput": [{"StreamId": "ph-out", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 500000}]});
    expect_code(
        &s.app()
            .post("StartMix", &body.to_string(), "application/json"),
        0,
    );
    let url = format!("{}/{APP}/ph-out.flv", s.base);
    wait_frame(&url, 320, 240, "the red video", |f| is(f.at(160, 120), RED));
    let stopped = Instant::now();
    drop(red);
    wait_frame(&url, 320, 240, "the placeholder", |f| {
        is(f.at(160, 120), YELLOW)
    });
    // DisplayMode 2 waits 3 s of no video (the frame is held that long, then the image).
    assert!(
        stopped.elapsed() >= Duration::from_millis(2_500),
        "shown after {:?}",
        stopped.elapsed()
    );
}

#[test]
fn target_room_lists_the_output_while_the_task_runs() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let _red = publish_lavfi(
        &publish_url(&s, "red", "stage", "anchor"),
        Some("color=c=red:size=160x120:rate=25"),
        Some(440),
    );
    wait_live(&s, "red", LIVE);
    let c = s.app();
    let body = |room: &str| {
        json!({"TaskId": "tr", "UserId": "u",
            "MixInput": [{"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
            "MixOutput": [{"StreamId": "tr-out", "Width": 320, "Height": 240, "Fps": 15,
                           "VideoBitrate": 500000, "TargetRoom": {"RoomId": room, "UserId": "mixer"}}]})
        .to_string()
    };
    expect_code(
        &c.post("StartMix", &body("nowhere"), "application/json"),
        110200197,
    );
    expect_code(&c.post("StartMix", &body("stage"), "application/json"), 0);
    let list = c.get("DescribeSimpleStreamList", &[("RoomId", "stage")]);
    let listed: Vec<(String, String)> = list["Data"]["StreamList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["StreamId"].as_str().unwrap_or("").to_string(),
                s["UserId"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        listed.contains(&("tr-out".into(), "mixer".into())),
        "{listed:?}"
    );
    let created = loop {
        let cb = rx.next(LIVE).expect("stream_create for the output");
        if cb.body["event"] == "stream_create" && cb.body["stream_id"] == "tr-out" {
            break cb.body;
        }
    };
    assert_eq!(created["channel_id"], "stage");
    assert_eq!(created["user_id"], "mixer");
    // The room's listing is fixed for the task's life: an update naming another room
    // keeps it where it is.
    let again =
        body("elsewhere").replace("\"tr\", \"UserId\"", "\"tr\", \"Sequence\": 2, \"UserId\"");
    expect_code(&c.post("StartMix", &again, "application/json"), 0);
    let list = c.get("DescribeSimpleStreamList", &[("RoomId", "stage")]);
    assert!(
        list["Data"]["StreamList"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["StreamId"] == "tr-out"),
        "{list}"
    );
    expect_code(
        &c.post(
            "StopMix",
            &json!({"TaskId": "tr", "UserId": "u"}).to_string(),
            "application/json",
        ),
        0,
    );
    let closed = loop {
        let cb = rx.next(LIVE).expect("stream_close for the output");
        if cb.body["event"] == "stream_close" && cb.body["stream_id"] == "tr-out" {
            break cb.body;
        }
    };
    assert_eq!(closed["channel_id"], "stage");
    let list = c.get("DescribeSimpleStreamList", &[("RoomId", "stage")]);
    assert!(
        !list["Data"]["StreamList"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["StreamId"] == "tr-out"),
        "{list}"
    );
}

#[test]
fn wait_video_input_holds_the_output_and_gives_up_without_video() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let _mic = publish_lavfi(&publish_url(&s, "mic", "room1", "u1"), None, Some(440));
    let _red = publish_lavfi(
        &publish_url(&s, "red", "room1", "u2"),
        Some("color=c=red:size=160x120:rate=25"),
        None,
    );
    wait_live_audio(&s, "mic");
    wait_live(&s, "red", LIVE);
    let c = s.app();
    let body = |task: &str, input: &str, buffer: u32| {
        json!({"TaskId": task, "UserId": task, "WaitVideoInput": 1, "RecvBufferLevel": buffer,
            "MixInput": [{"StreamId": input, "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
            "MixOutput": [{"StreamId": format!("{task}-out"), "Width": 320, "Height": 240, "Fps": 15,
                           "VideoBitrate": 500000}]})
        .to_string()
    };
    let started = Instant::now();
    expect_code(
        &c.post("StartMix", &body("audio", "mic", 0), "application/json"),
        0,
    );
    expect_code(
        &c.post("StartMix", &body("video", "red", 1000), "application/json"),
        0,
    );

    // The video task publishes, through a one-second receive buffer.
    let url = format!("{}/{APP}/video-out.flv", s.base);
    wait_frame(&url, 320, 240, "red", |f| is(f.at(160, 120), RED));
    let info = mix_info(&s, "video");
    assert_eq!(info["waiting_for_video"], false);
    assert_eq!(info["recv_buffer_ms"], 1000);
    let delay = info["inputs"][0]["buffer_delay_ms"].as_i64().unwrap();
    assert!(
        (700..=1300).contains(&delay),
        "frames wait about 1 s: {delay}"
    );

    // The audio-only task holds its output, then ends with mix_stop after 10 s.
    let info = mix_info(&s, "audio");
    assert_eq!(info["waiting_for_video"], true);
    assert!(
        !is_live(&s, "audio-out"),
        "nothing is published while waiting"
    );
    let stop = loop {
        let cb = rx.next(LIVE).expect("mix_stop of the task without video");
        if cb.body["event"] == "mix_stop" && cb.body["task_id"] == format!("{APP}:audio") {
            break cb;
        }
    };
    let waited = stop.at.duration_since(started);
    assert!(
        waited >= Duration::from_secs(9) && waited <= Duration::from_secs(16),
        "ended after {waited:?}"
    );
    expect_code(&c.get("GetMixTaskInfo", &[("TaskId", "audio")]), 110209001);
    expect_code(&c.get("GetMixTaskInfo", &[("TaskId", "video")]), 0);
}

#[test]
fn the_vendors_full_example_body_is_accepted_and_renders() {
    let s = Server::start(None);
    let images = s.data.join("images");
    std::fs::create_dir_all(&images).unwrap();
    write_png(&images.join("no_camera_icon.png"), [255, 255, 0, 255]);
    let _a = publish_lavfi(
        &publish_url(&s, "stream1", "321", "a"),
        Some("color=c=red:size=180x320:rate=25"),
        Some(440),
    );
    let _b = publish_lavfi(
        &publish_url(&s, "stream2", "321", "b"),
        Some("color=c=lime:size=180x320:rate=25"),
        Some(660),
    );
    wait_live(&s, "stream1", LIVE);
    wait_live(&s, "stream2", LIVE);
    // spec §3.1.5, verbatim but for the image URLs (this server's images folder).
    let body = r#"{"TaskId":"2213699902971205739","Sequence":1,"UserId":"123","RoomId":"321",
 "UserData":"DoraTest","SoundLevel":1,
 "BackgroundImage":"preset-id://no_camera_icon.png","BackGroundColorHex":"0x87CEFA00",
 "ByPass":1,"AlignmentType":0,"CheckImageMode":0,"RecvBufferLevel":0,
 "MixInput":[
  {"StreamId":"stream1","SoundLevelId":1,"ContentControl":2,"RenderMode":0,"Volume":100,
   "RectInfo":{"Top":0,"Left":0,"Bottom":640,"Right":180,"Layer":1,"CornerRadius":10},
   "Image":{"Url":"preset-id://no_camera_icon.png","DisplayMode":0},
   "Label":{"Text":"Hello","Left":10,"Top":10,
            "Font":{"FontType":1,"FontSize":26,"FontColor":256,"Transparency":50,"BorderColor":0}}},
  {"StreamId":"stream2","SoundLevelId":2,"ContentControl":2,"RenderMode":0,
   "RectInfo":{"Top":0,"Left":180,"Bottom":640,"Right":360,"Layer":2}}],
 "WaterMark":{"Image":"preset-id://no_camera_icon.png","RectInfo":{"Top":0,"Left":0,"Bottom":200,"Right":150}},
 "MixOutput":[{"StreamId":"stream3","VideoBitrate":1200000,"Fps":15,"Width":360,"Height":640,
   "AudioCodec":0,"AudioBitrate":48000,"SoundChannel":2,"VideoEncId":0,
   "ExtraLayers":[{"VideoBitrate":1200000}],"LowBitrateHD":0}],
 "ExPara":[{"Key":"video_encode","Value":"h264"},{"Key":"sei_mode","Value":"1"},
           {"Key":"mixowner_userid","Value":"[\"456\"]"}]}"#;
    let v = s.app().post("StartMix", body, "application/json");
    expect_code(&v, 0);
    assert_eq!(v["Data"]["Sequence"], 1);
    let url = format!("{}/{APP}/stream3.flv", s.base);
    // stream1's tile shows its always-on placeholder, stream2 its video.
    wait_frame(&url, 360, 640, "the example's layout", |f| {
        is(f.at(90, 400), YELLOW) && is(f.at(270, 320), GREEN)
    });
    let streams = probe_streams(&url);
    assert!(streams.iter().any(|l| l == "h264:360:640"), "{streams:?}");
}
