//! The Tencent Cloud API 3.0 dialect through the real binary: requests signed here with
//! TC3-HMAC-SHA256 (and the legacy HmacSHA256 form), computed independently of the
//! server's code, the way the vendor's SDKs send them.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::media::*;
use common::tencent::*;
use common::*;
use serde_json::{Value, json};

/// A server with the test apps and a Tencent key for the main one (and the directory it
/// lives in, kept as long as the server).
fn server() -> (Server, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), None);
    let data = tmp.path().join("data");
    let cred = format!("{APP}:{SECRET_ID}:{SECRET_KEY}");
    let s = Server::start_with(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--tencent-credential",
            &cred,
        ],
    );
    (s, tmp)
}

fn error_code(v: &Value) -> Option<&str> {
    assert!(
        v["Response"]["RequestId"]
            .as_str()
            .is_some_and(|r| r.len() == 36),
        "{v}"
    );
    v["Response"]["Error"]["Code"].as_str()
}

/// The RGB of pixel (x, y) of the newest frame of a 320×240 stream.
fn pixel(url: &str, x: usize, y: usize) -> Option<(u8, u8, u8)> {
    pixel_of(url, 320, 240, x, y)
}

#[test]
fn create_and_cancel_over_tc3_post_and_get_with_the_vendors_errors() {
    let (s, _dir) = server();
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 30);
    wait_live(&s, "red", Duration::from_secs(20));
    let body = json!({"MixStreamSessionId": "room_1",
        "InputStreamList": [
            {"InputStreamName": "canvas1", "LayoutParams": {"ImageLayer": 1, "InputType": 3, "ImageWidth": 320, "ImageHeight": 240, "Color": "0x0000FF"}},
            {"InputStreamName": "red", "LayoutParams": {"ImageLayer": 2, "ImageWidth": 0.5, "ImageHeight": 240, "LocationX": 0, "LocationY": 0}}],
        "OutputParams": {"OutputStreamName": "tc_mix", "OutputStreamType": 1, "OutputStreamBitRate": 500,
                         "OutputStreamFrameRate": 15, "OutputStreamGop": 1,
                         "OutputAudioSampleRate": 48000, "OutputAudioChannels": 1}})
    .to_string();
    let now = now_secs();
    let (ct, r) = tc3(&s, "CreateCommonMixStream", SECRET_KEY, now, None, &body);
    assert_eq!(
        ct, "application/json",
        "exactly, or the Python SDK misreads errors"
    );
    assert_eq!(error_code(&r), None, "{r}");
    // The same signed request again: TC3 has no nonce, so the signature is remembered.
    let (_, r) = tc3(&s, "CreateCommonMixStream", SECRET_KEY, now, None, &body);
    assert_eq!(error_code(&r), Some("AuthFailure.SignatureFailure"), "{r}");
    assert!(
        r["Response"]["Error"]["Message"]
            .as_str()
            .is_some_and(|m| m.contains("replayed")),
        "{r}"
    );

    // The mix: red on the left half, the blue canvas on the right.
    let url = format!("{}/{APP}/tc_mix.flv", s.base);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (l, r) = (pixel(&url, 80, 120), pixel(&url, 240, 120));
        let red_left = l.is_some_and(|p| p.0 > 200 && p.2 < 60);
        let blue_right = r.is_some_and(|p| p.2 > 200 && p.0 < 60);
        if red_left && blue_right {
            break;
        }
        assert!(Instant::now() < deadline, "left {l:?} right {r:?}");
    }

    // OutputStreamGop 1: a key frame every second.
    let keys: Vec<f64> = video_packets(&url, 5, "pts_time,flags", &[])
        .1
        .iter()
        .filter(|l| l.contains(",K"))
        .filter_map(|l| l.split(',').next()?.parse().ok())
        .collect();
    assert!(keys.len() >= 3, "key frames at {keys:?}");
    for w in keys.windows(2) {
        assert!(
            (0.9..=1.1).contains(&(w[1] - w[0])),
            "key frames at {keys:?}"
        );
    }

    // OutputAudioSampleRate 48000 and OutputAudioChannels 1, as asked.
    assert_eq!(audio_stream(&url), "aac,LC,48000,1");

    // Same session, another output: refused. Unknown key, bad signature, old timestamp.
    let other = body.replace("tc_mix", "tc_other");
    let (_, r) = tc3(&s, "CreateCommonMixStream", SECRET_KEY, now, None, &other);
    assert_eq!(
        error_code(&r),
        Some("InvalidParameter.SessionOutputStreamChanged")
    );
    let (_, r) = tc3(&s, "CreateCommonMixStream", "wrong-key", now, None, &body);
    assert_eq!(error_code(&r), Some("AuthFailure.SignatureFailure"));
    let (_, r) = tc3(
        &s,
        "CreateCommonMixStream",
        SECRET_KEY,
        now - 400,
        None,
        &body,
    );
    assert_eq!(error_code(&r), Some("AuthFailure.SignatureExpire"));
    let (_, r) = tc3(&s, "DescribeLiveStreams", SECRET_KEY, now, None, "{}");
    assert_eq!(error_code(&r), Some("InvalidAction"));

    // Cancel over GET (flattened query, signed as sent), then again: the session is gone.
    let (_, r) = tc3(
        &s,
        "CancelCommonMixStream",
        SECRET_KEY,
        now,
        Some("MixStreamSessionId=room_1"),
        "",
    );
    assert_eq!(error_code(&r), None, "{r}");
    let (_, r) = tc3(
        &s,
        "CancelCommonMixStream",
        SECRET_KEY,
        now,
        None,
        r#"{"MixStreamSessionId": "room_1"}"#,
    );
    assert_eq!(
        error_code(&r),
        Some("InvalidParameter.CancelSessionNotExist")
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while is_live(&s, "tc_mix") {
        assert!(Instant::now() < deadline, "the output outlived its session");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The ZEGO dialect still answers on the same path.
    expect_code(
        &s.app()
            .get("DescribeSimpleStreamList", &[("RoomId", "room1")]),
        0,
    );
}

#[test]
fn the_legacy_hmac_sha256_form_is_verified() {
    let (s, _dir) = server();
    let host = s.base.trim_start_matches("http://").to_string();
    let ts = now_secs().to_string();
    let good = legacy_form(
        &host,
        SECRET_KEY,
        &[
            ("Action", "CancelCommonMixStream"),
            ("Language", "zh-CN"),
            ("MixStreamSessionId", "nothing_here"),
            ("Nonce", "788888818051923570"),
            ("Region", "ap-guangzhou"),
            ("SecretId", SECRET_ID),
            ("SignatureMethod", "HmacSHA256"),
            ("Timestamp", &ts),
            ("Version", "2018-08-01"),
        ],
    );
    let send = |body: String| -> Value { post_form(&s, body) };
    let r = send(good.clone());
    assert_eq!(
        error_code(&r),
        Some("InvalidParameter.CancelSessionNotExist"),
        "{r}"
    );
    let r = send(good.replace("nothing_here", "nothing_else"));
    assert_eq!(error_code(&r), Some("AuthFailure.SignatureFailure"), "{r}");
    // The same Nonce again, exactly as signed: a replay.
    let r = send(good.clone());
    assert_eq!(error_code(&r), Some("AuthFailure.SignatureFailure"), "{r}");
    assert!(format!("{r}").contains("replayed"), "{r}");

    // A flattened key of 60,000 parts, properly signed: a clear error, no stack overflow.
    let deep = vec!["A"; 60_000].join(".");
    let ts = now_secs().to_string();
    let r = send(legacy_form(
        &host,
        SECRET_KEY,
        &[
            ("Action", "CancelCommonMixStream"),
            (&deep, "1"),
            ("Nonce", "1234567"),
            ("Region", "ap-guangzhou"),
            ("SecretId", SECRET_ID),
            ("SignatureMethod", "HmacSHA256"),
            ("Timestamp", &ts),
            ("Version", "2018-08-01"),
        ],
    ));
    assert_eq!(error_code(&r), Some("InvalidParameter"), "{r}");
    assert!(format!("{r}").contains("60000 parts"), "{r}");
    // The server is still there.
    let r = send(good.replace("788888818051923570", "42"));
    assert_eq!(error_code(&r), Some("AuthFailure.SignatureFailure"), "{r}");
}

/// The legacy form body of `params`, signed with HmacSHA256 as the SDKs do: the sorted
/// `k=v` pairs after `POST{host}/?`, base64 of the HMAC, appended as `Signature`.
fn legacy_form(host: &str, key: &str, params: &[(&str, &str)]) -> String {
    use base64::Engine;
    let mut sorted = params.to_vec();
    sorted.sort();
    let joined: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let to_sign = format!("POST{host}/?{}", joined.join("&"));
    let sig = base64::engine::general_purpose::STANDARD
        .encode(hmac256(key.as_bytes(), to_sign.as_bytes()));
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &sorted {
        form.append_pair(k, v);
    }
    form.append_pair("Signature", &sig);
    form.finish()
}

fn post_form(s: &Server, body: String) -> Value {
    reqwest::blocking::Client::new()
        .post(format!("{}/", s.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// A virtualenv with the vendor's official SDK, made once and reused (pinned version).
fn sdk_python() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(
        std::env::var("TRIBUTARY_SDK_VENV")
            .unwrap_or_else(|_| "/var/tmp/tributary-tencent-sdk-3.1.195".into()),
    );
    let python = dir.join("bin/python");
    let ready = |p: &std::path::Path| {
        Command::new(p)
            .args(["-c", "import tencentcloud.live.v20180801.live_client"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "python3 -m venv (scripts/setup.sh installs python3-venv)"
        );
        let ok = Command::new(dir.join("bin/pip"))
            .args(["install", "-q", "tencentcloud-sdk-python-live==3.1.195"])
            .status()
            .unwrap();
        assert!(ok.success(), "pip install tencentcloud-sdk-python-live");
    }
    assert!(ready(&python));
    python
}

fn run_sdk(s: &Server, mode: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/tencent_sdk.py");
    let host = s.base.trim_start_matches("http://");
    let out = Command::new(sdk_python())
        .args([script, host, SECRET_ID, SECRET_KEY, mode])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A pixel and the test its colour must pass.
type Probe = ((usize, usize), fn((u8, u8, u8)) -> bool);

fn wait_colors(url: &str, want: &[Probe]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: Vec<_> = want.iter().map(|((x, y), _)| pixel(url, *x, *y)).collect();
        if want.iter().zip(&got).all(|((_, ok), p)| p.is_some_and(ok)) {
            return;
        }
        assert!(Instant::now() < deadline, "{got:?}");
    }
}

#[test]
fn the_official_python_sdk_works_unchanged() {
    let (s, _dir) = server();
    let _red = publish_color(&publish_url(&s, "red", "room1", "red"), "red", 440, 40);
    let _green = publish_color(&publish_url(&s, "green", "room1", "green"), "lime", 660, 40);
    wait_live(&s, "red", Duration::from_secs(20));
    wait_live(&s, "green", Duration::from_secs(20));
    let red_ = |p: (u8, u8, u8)| p.0 > 200 && p.1 < 60;
    let green_ = |p: (u8, u8, u8)| p.1 > 200 && p.0 < 60;
    let blue_ = |p: (u8, u8, u8)| p.2 > 200 && p.0 < 60 && p.1 < 60;

    // Template 390 (PK, side by side) on a blue canvas.
    let r = run_sdk(&s, "template");
    assert_eq!(r["template"]["ok"], true, "{r}");
    let url = format!("{}/{APP}/sdk_mix.flv", s.base);
    wait_colors(
        &url,
        &[((80, 120), red_), ((280, 120), green_), ((160, 20), blue_)],
    );

    let r = run_sdk(&s, "rest");
    // A custom layout with a source crop on a canvas; the update swaps the sides; cancel,
    // cancel again, a bad key; GET and the legacy HmacSHA256 signature reach the action.
    assert_eq!(r["custom_with_crop"]["ok"], true, "{r}");
    let url = format!("{}/{APP}/sdk_custom_out.flv", s.base);
    wait_colors(&url, &[((80, 120), red_), ((240, 120), blue_)]);
    assert_eq!(r["update"]["ok"], true, "{r}");
    assert_eq!(r["cancel"]["ok"], true, "{r}");
    for case in ["cancel_again", "get_mode", "hmac_sha256"] {
        assert_eq!(
            r[case]["code"], "InvalidParameter.CancelSessionNotExist",
            "{case}: {r}"
        );
        assert_eq!(r[case]["request_id"].as_str().map(str::len), Some(36));
    }
    assert_eq!(r["bad_key"]["code"], "AuthFailure.SignatureFailure", "{r}");
}

/// Serves one PNG over HTTP to whoever asks (the mixer fetches watermark images).
fn image_server(rgba: [u8; 4]) -> String {
    let img = image::RgbaImage::from_pixel(40, 40, image::Rgba(rgba));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/logo.png", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 2048];
            let _ = std::io::Read::read(&mut conn, &mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                png.len()
            );
            let _ = std::io::Write::write_all(&mut conn, head.as_bytes());
            let _ = std::io::Write::write_all(&mut conn, &png);
        }
    });
    url
}

#[test]
fn watermark_images_are_registered_durably_and_mixed_as_layers() {
    let (mut s, _dir) = server();
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    wait_live(&s, "red", Duration::from_secs(20));
    let url = image_server([255, 255, 0, 255]);
    let now = now_secs();
    let add = json!({"PictureUrl": url, "WatermarkName": "logo"}).to_string();
    let (_, r) = tc3(&s, "AddLiveWatermark", SECRET_KEY, now, None, &add);
    assert_eq!(error_code(&r), None, "{r}");
    let id = r["Response"]["WatermarkId"].as_u64().unwrap();

    // A yellow image layer over the red input, on a blue canvas.
    let body = json!({"MixStreamSessionId": "marks",
        "InputStreamList": [
            {"InputStreamName": "canvas1", "LayoutParams": {"ImageLayer": 1, "InputType": 3, "ImageWidth": 320, "ImageHeight": 240, "Color": "0x0000FF"}},
            {"InputStreamName": "red", "LayoutParams": {"ImageLayer": 2, "ImageWidth": 160, "ImageHeight": 240}},
            {"InputStreamName": "logo1", "LayoutParams": {"ImageLayer": 3, "InputType": 2, "WatermarkId": id,
                "ImageWidth": 40, "ImageHeight": 40, "LocationX": 20, "LocationY": 20}}],
        "OutputParams": {"OutputStreamName": "marked", "OutputStreamType": 1}})
    .to_string();
    let (_, r) = tc3(&s, "CreateCommonMixStream", SECRET_KEY, now, None, &body);
    assert_eq!(error_code(&r), None, "{r}");
    let out = format!("{}/{APP}/marked.flv", s.base);
    let yellow = |p: (u8, u8, u8)| p.0 > 200 && p.1 > 200 && p.2 < 60;
    let red = |p: (u8, u8, u8)| p.0 > 200 && p.1 < 60;
    let blue = |p: (u8, u8, u8)| p.2 > 200 && p.0 < 60;
    wait_colors(
        &out,
        &[((40, 40), yellow), ((100, 150), red), ((240, 120), blue)],
    );

    // Listed, kept across a restart, and deleted.
    let (_, r) = tc3(
        &s,
        "CancelCommonMixStream",
        SECRET_KEY,
        now,
        None,
        r#"{"MixStreamSessionId": "marks"}"#,
    );
    assert_eq!(error_code(&r), None, "{r}");
    s.restart();
    let now = now_secs();
    let (_, r) = tc3(&s, "DescribeLiveWatermarks", SECRET_KEY, now, None, "{}");
    assert_eq!(r["Response"]["TotalNum"], 1, "{r}");
    assert_eq!(r["Response"]["WatermarkList"][0]["WatermarkId"], id);
    assert_eq!(
        r["Response"]["WatermarkList"][0]["PictureUrl"],
        url.as_str()
    );
    let del = json!({"WatermarkId": id}).to_string();
    let (_, r) = tc3(&s, "DeleteLiveWatermark", SECRET_KEY, now, None, &del);
    assert_eq!(error_code(&r), None, "{r}");
    // The same request signed again (TC3 has no nonce: the exact bytes would be a replay).
    let (_, r) = tc3(&s, "DeleteLiveWatermark", SECRET_KEY, now + 1, None, &del);
    assert_eq!(error_code(&r), Some("ResourceNotFound"));
    let (_, r) = tc3(&s, "DescribeLiveWatermarks", SECRET_KEY, now, None, "{}");
    assert_eq!(r["Response"]["TotalNum"], 0, "{r}");
}

/// The RGB at (x, y) of the newest frame of a `w × h` stream.
fn pixel_of(url: &str, w: usize, h: usize, x: usize, y: usize) -> Option<(u8, u8, u8)> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-i", url])
        .args(["-t", "1", "-an", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let frame = out.stdout.chunks_exact(w * h * 3).last()?;
    let i = (y * w + x) * 3;
    Some((frame[i], frame[i + 1], frame[i + 2]))
}

#[test]
fn output_type_0_takes_over_an_input_name_and_gives_it_back() {
    let (s, _dir) = server();
    let _a = publish_color(
        &publish_url(&s, "test_stream1", "room1", "a"),
        "red",
        440,
        40,
    );
    let _b = publish_color(
        &publish_url(&s, "test_stream2", "room1", "b"),
        "lime",
        660,
        40,
    );
    wait_live(&s, "test_stream1", Duration::from_secs(20));
    wait_live(&s, "test_stream2", Duration::from_secs(20));
    // The vendor's example 1, unchanged: template 40, the output is test_stream1 itself.
    let body = r#"{"MixStreamTemplateId":40,"MixStreamSessionId":"test_room","InputStreamList":[{"LayoutParams":{"ImageLayer":1},"InputStreamName":"test_stream1"},{"LayoutParams":{"ImageLayer":2},"InputStreamName":"test_stream2"}],"OutputParams":{"OutputStreamName":"test_stream1"}}"#;
    let now = now_secs();
    let (_, r) = tc3(&s, "CreateCommonMixStream", SECRET_KEY, now, None, body);
    assert_eq!(error_code(&r), None, "{r}");
    // Players of test_stream1 now get the mix: green picture-in-picture at the top right
    // (a third of 160×120 at (W−20−w, 20)), red elsewhere.
    let url = format!("{}/{APP}/test_stream1.flv", s.base);
    let is_green = |p: Option<(u8, u8, u8)>| p.is_some_and(|p| p.1 > 200 && p.0 < 60);
    let is_red = |p: Option<(u8, u8, u8)>| p.is_some_and(|p| p.0 > 200 && p.1 < 60);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(is_green(pixel_of(&url, 160, 120, 110, 40))
        && is_red(pixel_of(&url, 160, 120, 30, 100)))
    {
        assert!(
            Instant::now() < deadline,
            "the mix never replaced test_stream1"
        );
    }
    // Cancel: the name is given back to the original stream.
    let (_, r) = tc3(
        &s,
        "CancelCommonMixStream",
        SECRET_KEY,
        now,
        None,
        r#"{"MixStreamSessionId":"test_room"}"#,
    );
    assert_eq!(error_code(&r), None, "{r}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !is_red(pixel_of(&url, 160, 120, 110, 40)) {
        assert!(Instant::now() < deadline, "test_stream1 did not come back");
    }
}

/// A legacy-signed (HmacSHA256) form POST with `params` (Nonce and Timestamp added).
fn legacy_post(s: &Server, secret_id: &str, key: &str, params: &[(&str, &str)]) -> Value {
    let host = s.base.trim_start_matches("http://").to_string();
    let nonce = rand::random::<u32>().to_string();
    let ts = now_secs().to_string();
    let mut all: Vec<(&str, &str)> = params.to_vec();
    all.extend([
        ("Nonce", nonce.as_str()),
        ("Region", "ap-guangzhou"),
        ("SecretId", secret_id),
        ("SignatureMethod", "HmacSHA256"),
        ("Timestamp", ts.as_str()),
        ("Version", "2018-08-01"),
    ]);
    post_form(s, legacy_form(&host, key, &all))
}

#[test]
fn mixing_calls_of_both_dialects_share_the_apps_rate_limits() {
    // The limited app: one StopMix-class call per 5 s, whichever dialect makes it.
    let cred = format!("{LIMITED_APP}:AKIDLIMITED:limited-key");
    let s = Server::start_edited(
        |t| {
            t.replacen(
                "callback_secret = \"limited-cb\"",
                "callback_secret = \"limited-cb\"\n[apps.rate_limits]\nper_second = { StopMix = 0.2 }",
                1,
            )
        },
        &["--tencent-credential", &cred],
    );
    let cancel = |id: &str| {
        legacy_post(
            &s,
            "AKIDLIMITED",
            "limited-key",
            &[
                ("Action", "CancelCommonMixStream"),
                ("MixStreamSessionId", id),
            ],
        )
    };
    // The bucket's one token goes to the first cancel (the session does not exist).
    let r = cancel("a");
    assert_eq!(
        error_code(&r),
        Some("InvalidParameter.CancelSessionNotExist"),
        "{r}"
    );
    let r = cancel("b");
    assert_eq!(error_code(&r), Some("RequestLimitExceeded"), "{r}");
    // The ZEGO StopMix of the same app finds the same bucket empty.
    let r = s.limited().post(
        "StopMix",
        r#"{"TaskId": "c", "UserId": "u"}"#,
        "application/json",
    );
    expect_code(&r, 110200194);
}

/// A publisher whose frames carry its own user data SEI ("hello" under `uuid`) once a
/// second: ffmpeg inserts it in the first access unit of a one-second clip
/// (`h264_metadata`), and a second ffmpeg publishes the clip over and over (`concat`,
/// stream copy).
fn publish_with_sei(dir: &std::path::Path, url: &str, uuid: &str) -> Proc {
    let clip = dir.join("sei-clip.flv");
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "color=c=green:size=160x120:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", "1"])
        .args(X264_LIVE)
        .args([
            "-bsf:v",
            &format!("h264_metadata=sei_user_data={uuid}+hello"),
        ])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(ok.success());
    let list = dir.join("sei-list.txt");
    let line = format!("file '{}'\n", clip.display());
    std::fs::write(&list, line.repeat(60)).unwrap();
    Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"])
            .args(["-f", "concat", "-safe", "0", "-i"])
            .arg(&list)
            .args(["-c", "copy", "-f", "flv", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// The UUIDs and user data of the unregistered SEI that ffmpeg's decoder finds in the
/// first `frames` frames of `url`.
fn sei_seen(url: &str, frames: u32) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i", url])
        .args([
            "-frames:v",
            &frames.to_string(),
            "-vf",
            "showinfo",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| l.split("] ").nth(1))
        .filter(|l| l.starts_with("UUID=") || l.starts_with("User Data="))
        .map(str::to_string)
        .collect()
}

#[test]
fn pass_input_sei_carries_the_publishers_user_data_into_the_mix() {
    let (s, dir) = server();
    const APP_UUID: &str = "086f3693-b7b3-4f2c-9653-21492feee5b8";
    let _p = publish_with_sei(
        dir.path(),
        &publish_url(&s, "sei_in", "room1", "u1"),
        APP_UUID,
    );
    wait_live(&s, "sei_in", Duration::from_secs(20));
    // (One input alone would be a cancel in this dialect: a canvas goes under it.)
    let body = |out: &str, pass: u8| {
        json!({"MixStreamSessionId": out,
            "InputStreamList": [
                {"InputStreamName": "canvas", "LayoutParams": {"ImageLayer": 1, "InputType": 3, "ImageWidth": 160, "ImageHeight": 120}},
                {"InputStreamName": "sei_in", "LayoutParams": {"ImageLayer": 2, "ImageWidth": 160, "ImageHeight": 120}}],
            "OutputParams": {"OutputStreamName": out, "OutputStreamType": 1, "OutputStreamBitRate": 300,
                             "OutputStreamFrameRate": 15},
            "ControlParams": {"PassInputSei": pass}})
        .to_string()
    };
    for (out, pass) in [("sei_pass", 1), ("sei_plain", 0)] {
        let (_, r) = tc3(
            &s,
            "CreateCommonMixStream",
            SECRET_KEY,
            now_secs(),
            None,
            &body(out, pass),
        );
        assert_eq!(error_code(&r), None, "{r}");
    }
    let url = |id: &str| format!("{}/{APP}/{id}.flv", s.base);
    wait_live(&s, "sei_pass", Duration::from_secs(20));
    wait_live(&s, "sei_plain", Duration::from_secs(20));
    // Over 3 s of output (45 frames), the publisher's message comes through about once a
    // second, with its bytes ("hello\0"), and never where it was not asked for.
    let seen = sei_seen(&url("sei_pass"), 45);
    let ours = seen
        .windows(2)
        .filter(|w| w[0] == format!("UUID={APP_UUID}") && w[1] == "User Data=68656c6c6f00")
        .count();
    assert!((2..=4).contains(&ours), "{seen:?}");
    // x264's banner: the mix's own encoder writes one on its first frame; the publisher's
    // (in every repeat of its clip) is not passed on.
    let banners = seen.iter().filter(|l| l.contains("dc45e9bd")).count();
    assert!(banners <= 1, "{seen:?}");
    let plain = sei_seen(&url("sei_plain"), 45);
    assert!(!plain.iter().any(|l| l.contains(APP_UUID)), "{plain:?}");
}
