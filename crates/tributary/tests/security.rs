//! Hardening, through the real binary: tenant URLs never reach refused addresses (a canary
//! server counts every connection), operator routes need the admin token, secrets never
//! show in introspection or logs, slow clients are dropped, the data directory is private.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use serde_json::{Value, json};

const LIVE: Duration = Duration::from_secs(20);

/// A TCP server that counts connections and answers each with `reply`.
struct Canary {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Canary {
    fn start(ip: &str, reply: &'static str) -> Canary {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        Canary { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn start_mix(c: &Client, body: Value) -> Value {
    c.post("StartMix", &body.to_string(), "application/json")
}

fn mix_body(task: &str, input: Value, output: Value) -> Value {
    json!({
        "TaskId": task, "UserId": "u", "Sequence": 1,
        "MixInput": [input],
        "MixOutput": [output],
    })
}

fn message(v: &Value) -> String {
    v["Message"].as_str().unwrap_or_default().to_string()
}

#[test]
fn tenant_urls_never_reach_refused_addresses() {
    let s = Server::start(None);
    let c = s.app();
    // 127.0.0.2 is loopback outside the test configuration's allow-list (127.0.0.1/32).
    let canary = Canary::start("127.0.0.2", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let p = canary.port;
    let rect = json!({"Top": 0, "Left": 0, "Bottom": 240, "Right": 320});
    let out = json!({"StreamId": "sec-out", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000});

    // Inputs at refused addresses: the documented "input stream error" naming the field;
    // schemes FFmpeg would open locally: a parameter error naming the field.
    let refused = [
        format!("http://127.0.0.2:{p}/live/x.flv"),
        format!("rtmp://127.0.0.2:{p}/live/x"),
        format!("rtmp://[::ffff:127.0.0.2]:{p}/live/x"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/live/x.flv".to_string(),
        // 127.0.0.2 in disguise (the HTTP client would connect to it without a lookup).
        format!("http://2130706434:{p}/live/x.flv"),
        format!("http://0x7f.0.0.2:{p}/live/x.flv"),
    ]
    .map(|u| (u, 110200153));
    let local = [
        "file:///etc/passwd",
        "concat:/etc/passwd|/etc/hosts",
        "subfile:,,start,0,end,0,,:/etc/passwd",
        "pipe:0",
        "tcp://8.8.8.8:80",
        "data:text/plain,hi",
    ]
    .map(|u| (u.to_string(), 110200002));
    for (url, code) in refused.into_iter().chain(local) {
        let r = start_mix(
            &c,
            mix_body(
                "t",
                json!({"StreamUrl": url, "RectInfo": rect}),
                out.clone(),
            ),
        );
        expect_code(&r, code);
        assert!(message(&r).contains("MixInput[0].StreamUrl"), "{r}");
        if code == 110200153 {
            assert!(message(&r).contains("address"), "{r}");
        }
    }
    // Outputs and images.
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    wait_live(&s, "red", LIVE);
    let red = json!({"StreamId": "red", "RectInfo": rect});
    let r = start_mix(
        &c,
        mix_body(
            "t",
            red.clone(),
            json!({"StreamUrl": format!("rtmp://127.0.0.2:{p}/live/k"), "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000}),
        ),
    );
    expect_code(&r, 110200154);
    assert!(message(&r).contains("MixOutput[0].StreamUrl"), "{r}");
    let mut v = mix_body("t", red.clone(), out.clone());
    v["BackgroundImage"] = json!(format!("http://127.0.0.2:{p}/bg.png"));
    expect_code(&start_mix(&c, v), 110200141);
    let mut v = mix_body("t", red.clone(), out.clone());
    v["BackgroundImage"] = json!(format!("http://2130706434:{p}/bg.png"));
    expect_code(&start_mix(&c, v), 110200141);

    // A permitted image host that redirects to the cloud metadata address.
    let redirector = Canary::start(
        "127.0.0.1",
        "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n",
    );
    let mut v = mix_body("t", red.clone(), out.clone());
    v["BackgroundImage"] = json!(format!("http://127.0.0.1:{}/bg.png", redirector.port));
    let r = start_mix(&c, v);
    expect_code(&r, 110200142);
    assert!(message(&r).contains("redirect"), "{r}");
    assert_eq!(redirector.hits(), 1);

    // Auto-mix extras go through the same policy.
    let auto = |url: &str| {
        json!({"TaskId": "auto", "UserId": "u", "RoomId": "room1", "Sequence": 1,
               "ExtraMixInput": [{"StreamUrl": url}],
               "MixOutput": [{"StreamId": "auto-out"}]})
        .to_string()
    };
    let r = c.post(
        "StartAutoMix",
        &auto("file:///etc/passwd"),
        "application/json",
    );
    expect_code(&r, 110200002);
    assert!(message(&r).contains("ExtraMixInput[0].StreamUrl"), "{r}");
    let r = c.post(
        "StartAutoMix",
        &auto(&format!("rtmp://127.0.0.2:{p}/live/x")),
        "application/json",
    );
    expect_code(&r, 110200153);

    // Nothing ever connected to the refused address.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(canary.hits(), 0, "a refused address was reached");
}

#[test]
fn operator_routes_need_the_admin_token() {
    let s = Server::start(None);
    let get = |path: &str, token: Option<&str>| {
        let mut r = reqwest::blocking::Client::new().get(format!("{}{path}", s.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    };
    for path in [
        "/metrics",
        "/api/mix",
        &format!("/api/streams/{APP}/nothing"),
        &format!("/api/bans/{APP}"),
        &format!("/api/rooms/{APP}"),
        "/api/callbacks",
        "/api/console/apps",
        "/api/console/templates",
        "/api/nodes",
    ] {
        let r = get(path, None);
        assert_eq!(r.status(), 401, "{path}");
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(get(path, Some("wrong")).status(), 401, "{path}");
        assert_ne!(get(path, Some(ADMIN_TOKEN)).status(), 401, "{path}");
    }
    assert_eq!(get("/metrics", Some(ADMIN_TOKEN)).status(), 200);
    assert_eq!(get("/api/mix", Some(ADMIN_TOKEN)).status(), 200);
    // The editor's template presets: sizes outside the output limits are refused.
    let t = get(
        "/api/console/templates?width=1280&height=720",
        Some(ADMIN_TOKEN),
    );
    assert_eq!(t.status(), 200);
    let t: serde_json::Value = t.json().unwrap();
    assert_eq!(t["templates"][0]["boxes"][0]["width"], 1280, "{t}");
    for bad in ["width=10&height=720", "width=1280&height=9999", "width=x"] {
        let r = get(&format!("/api/console/templates?{bad}"), Some(ADMIN_TOKEN));
        assert_eq!(r.status(), 400, "{bad}");
    }
    // The console's actions too (a POST, so not in the loop above).
    let forbid = reqwest::blocking::Client::new()
        .post(format!("{}/api/console/zego/{APP}/ForbidRTCStream", s.base))
        .body(r#"{"StreamId":"x","Sequence":1}"#)
        .send()
        .unwrap();
    assert_eq!(forbid.status(), 401);
    // A drain (POST) too; with the token, a node that shares no store has nobody to hand
    // its tasks to.
    let drain = |token: Option<&str>| {
        let mut r = reqwest::blocking::Client::new().post(format!("{}/api/drain", s.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap().status()
    };
    assert_eq!(drain(None), 401);
    assert_eq!(drain(Some(ADMIN_TOKEN)), 409);
    // Calls between nodes: a "forwarded" API call, or a relay read of a stream, is
    // refused on a node outside any cluster (no key to check them with).
    let forwarded = reqwest::blocking::Client::new()
        .get(s.app().url("DescribeSimpleStreamList", &[("RoomId", "r")]))
        .header("x-tributary-forwarded", "node-x 1 00")
        .send()
        .unwrap();
    assert_eq!(forwarded.status(), 403);
    let relay =
        reqwest::blocking::get(format!("{}/{APP}/anything.flv?relay=9999999999.00", s.base))
            .unwrap();
    assert_eq!(relay.status(), 403);
    // Players, the API dialects, the probes and the console's page (which holds no data)
    // need no admin token.
    assert_eq!(get("/healthz", None).status(), 200);
    assert_eq!(get("/readyz", None).status(), 200);
    assert_eq!(get("/console/", None).status(), 200);

    // No token configured: one is generated, stored, and printed once.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut fresh = Server::start_with(&data, &["--app", "4242:0123456789abcdef"]);
    let out = std::fs::read_to_string(fresh.stdout_log()).unwrap();
    let token = out
        .lines()
        .skip_while(|l| !l.starts_with("Generated the admin token"))
        .nth(1)
        .map(|l| l.trim().to_string())
        .expect("the generated token is printed");
    assert_eq!(token.len(), 48);
    let metrics = |base: &str, t: &str| {
        reqwest::blocking::Client::new()
            .get(format!("{base}/metrics"))
            .bearer_auth(t)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(metrics(&fresh.base, &token), 200);
    fresh.restart();
    let out = std::fs::read_to_string(fresh.stdout_log()).unwrap();
    assert!(!out.contains(&token), "printed again after a restart");
    assert_eq!(metrics(&fresh.base, &token), 200, "the stored token");
}

#[test]
fn secrets_never_show_in_introspection_or_logs() {
    // A callback receiver that refuses connections, its URL carrying a secret.
    let s = Server::start(Some("http://127.0.0.1:9/hook?key=CBSECRET77"));
    let c = s.app();
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    wait_live(&s, "red", LIVE);
    // A push target on a permitted address that refuses connections (port 9, discard).
    let body = json!({
        "TaskId": "secret", "UserId": "u", "Sequence": 1,
        "MixInput": [{"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
        "MixOutput": [
            {"StreamId": "plain-out", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000},
            {"StreamUrl": "rtmp://127.0.0.1:9/live/STREAMKEY123?token=TOKEN456", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000}
        ],
    });
    expect_code(&start_mix(&c, body), 0);
    // Wait until the push and the callback have failed and said so in the log.
    let log_path = s.data.with_extension("stderr.log");
    let deadline = Instant::now() + LIVE;
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains("push failed") && log.contains("callback attempt failed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no push or callback failure logged"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = admin_get(&s.base, &format!("/api/mix/{APP}/secret"))
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("rtmp://127.0.0.1:9/live"), "{text}");
    let list = admin_get(&s.base, "/api/mix").unwrap().text().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    for secret in ["STREAMKEY123", "TOKEN456", "CBSECRET77"] {
        assert!(!text.contains(secret), "{secret} in {text}");
        assert!(!list.contains(secret), "{secret} in {list}");
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn slow_clients_are_dropped_and_others_served() {
    let s = Server::start_with_sections("[limits]\nhttp_header_timeout_ms = 1000");
    let addr = s.base.trim_start_matches("http://").to_string();
    // Slowloris: a request head that never ends.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the half-sent request was kept {took:?}"
    );
    // Others are served meanwhile and after.
    let r = reqwest::blocking::get(format!("{}/healthz", s.base)).unwrap();
    assert_eq!(r.status(), 200);
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start(None);
    expect_code(&s.app().get("DescribeUserNum", &[("RoomId", "r")]), 0);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&s.data), 0o700);
    for f in ["tributary.db", "tributary.db-wal", "tributary.db-shm"] {
        let p = s.data.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
}

/// An RTMP handshake as a client: C0+C1, read S0+S1+S2, send C2.
fn rtmp_handshake(addr: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c0c1 = vec![0u8; 1 + 1536];
    c0c1[0] = 3;
    s.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.read_exact(&mut s0s1s2).unwrap();
    s.write_all(&s0s1s2[1..1 + 1536]).unwrap();
    s
}

/// Whether the server closes `s` (EOF or reset) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
        if started.elapsed() > limit {
            return false;
        }
    }
}

#[test]
fn rtmp_peers_are_limited_before_they_are_trusted() {
    let s = Server::start_with_sections("[limits]\nrtmp_connections_per_ip = 3");
    let addr = s.rtmp.trim_start_matches("rtmp://").to_string();

    // Before publish: a command message claiming 1 MiB is refused at once (a publisher
    // may send 8 MiB messages once it is accepted; an anonymous peer may not).
    let mut big = rtmp_handshake(&addr);
    let mut header = vec![0x03, 0, 0, 0, 0x10, 0x00, 0x00, 0x14, 0, 0, 0, 0];
    header.extend(std::iter::repeat_n(0u8, 128));
    big.write_all(&header).unwrap();
    assert!(
        closed_within(&mut big, Duration::from_secs(5)),
        "a 1 MiB pre-auth message was buffered"
    );

    // Per IP: three connections are held, the fourth is closed at once.
    let held: Vec<TcpStream> = (0..3).map(|_| rtmp_handshake(&addr)).collect();
    let mut fourth = TcpStream::connect(&addr).unwrap();
    assert!(
        closed_within(&mut fourth, Duration::from_secs(5)),
        "a fourth connection from one IP was kept"
    );
    drop(held);
    // Slots come back: a publisher from the same IP works again.
    std::thread::sleep(Duration::from_millis(300));
    let _p = publish_color(&publish_url(&s, "again", "room1", "u1"), "red", 440, 20);
    wait_live(&s, "again", LIVE);
}

#[test]
fn image_memory_is_admitted_and_sse_feeds_are_capped() {
    // A 320×240 canvas alone holds 115 200 bytes; allow less than two of them.
    let s = Server::start_with_sections(
        "[mix]\nimage_memory_bytes = 200000\n\n[limits]\nsse_per_app = 1",
    );
    let c = s.app();
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 40);
    wait_live(&s, "red", LIVE);
    let body = |task: &str, out: &str| {
        mix_body(
            task,
            json!({"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}),
            json!({"StreamId": out, "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000}),
        )
    };
    expect_code(&start_mix(&c, body("m1", "o1")), 0);
    let r = start_mix(&c, body("m2", "o2"));
    expect_code(&r, 110200194);
    assert!(message(&r).contains("image memory"), "{r}");

    // One room feed per app: the second is refused while the first is open.
    let token = mint("room-events", SECRET, "", "room1", "", now_secs() + 60);
    let url = format!("{}/rooms/room1/events?app_id={APP}&token={token}", s.base);
    let first = reqwest::blocking::get(&url).unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(reqwest::blocking::get(&url).unwrap().status(), 429);
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = reqwest::blocking::get(&url).unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the feed's slot did not come back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_slow_image_host_does_not_keep_a_restarting_server_closed() {
    // Serves a PNG at once the first time, then only after 8 s.
    let img = image::RgbaImage::from_pixel(40, 40, image::Rgba([0, 255, 0, 255]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/bg.png", l.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let slow_answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let n = served.clone();
    let answered = slow_answered.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let png = png.clone();
            let slow = n.fetch_add(1, Ordering::SeqCst) > 0;
            let answered = answered.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf);
                if slow {
                    std::thread::sleep(Duration::from_secs(8));
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    png.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&png);
                if slow {
                    answered.store(true, Ordering::SeqCst);
                }
            });
        }
    });
    let mut s = Server::start(None);
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 60);
    wait_live(&s, "red", LIVE);
    let mut body = mix_body(
        "slowbg",
        json!({"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 120, "Right": 160}}),
        json!({"StreamId": "slowbg-out", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000}),
    );
    body["BackgroundImage"] = json!(url);
    expect_code(&start_mix(&s.app(), body), 0);
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // Restart: the task's image is fetched again (slowly) while the API already answers.
    s.restart();
    expect_code(&s.app().get("DescribeUserNum", &[("RoomId", "room1")]), 0);
    assert!(
        !slow_answered.load(Ordering::SeqCst),
        "the API answered only after the slow image host did"
    );
    // And the task does come back once the image arrives.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list: Value = admin_get(&s.base, "/api/mix").unwrap().json().unwrap();
        if list
            .as_array()
            .is_some_and(|l| l.iter().any(|t| t["task_id"] == "slowbg"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the task did not resume: {list}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(served.load(Ordering::SeqCst) >= 2);
}

#[test]
fn http_connections_are_capped_per_address() {
    let s = Server::start_with_sections("[limits]\nhttp_connections_per_ip = 2");
    let addr = s.base.trim_start_matches("http://").to_string();
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    // Make sure both were accepted (a request on each is answered).
    for mut c in &held {
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        assert!(c.read(&mut buf).unwrap() > 0);
    }
    let mut third = TcpStream::connect(&addr).unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(5)),
        "a third connection from one address was served"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = reqwest::blocking::get(format!("{}/healthz", s.base))
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "slots did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn threads_and_fds(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (threads, fds)
}

/// The names of a process's threads (for a failure message).
#[cfg(target_os = "linux")]
fn thread_names(pid: u32) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(target_os = "linux")]
#[test]
fn hung_pulls_end_with_their_task_and_churn_leaks_nothing() {
    // An "RTMP server" that accepts and never says a word; counts open connections.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let open = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (o, a) = (open.clone(), accepted.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            a.fetch_add(1, Ordering::SeqCst);
            o.fetch_add(1, Ordering::SeqCst);
            let o = o.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let s = Server::start(None);
    let c = s.app();
    let _red = publish_color(&publish_url(&s, "red", "room1", "u1"), "red", 440, 60);
    wait_live(&s, "red", LIVE);
    let body = |seq: u64| {
        json!({
            "TaskId": "hung", "UserId": "u", "Sequence": seq,
            "MixInput": [
                {"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240, "Right": 160}},
                {"StreamUrl": format!("rtmp://127.0.0.1:{port}/live/never"),
                 "RectInfo": {"Top": 0, "Left": 160, "Bottom": 240, "Right": 320}}],
            "MixOutput": [{"StreamId": "hung-out", "Width": 320, "Height": 240, "Fps": 15, "VideoBitrate": 300000}],
        })
    };
    let cycle = |seq: u64| {
        expect_code(&start_mix(&c, body(seq)), 0);
        // The pull is connected (and hangs in the handshake) before the task stops.
        let deadline = Instant::now() + LIVE;
        while open.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "the input URL was never opened");
            std::thread::sleep(Duration::from_millis(20));
        }
        expect_code(
            &c.post(
                "StopMix",
                &json!({"TaskId": "hung", "UserId": "u", "Sequence": seq + 1}).to_string(),
                "application/json",
            ),
            0,
        );
        // The stop interrupts the hung open: the connection is closed.
        let deadline = Instant::now() + LIVE;
        while open.load(Ordering::SeqCst) != 0 {
            assert!(
                Instant::now() < deadline,
                "a stopped task's pull kept its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    cycle(1);
    let (_, fds0) = threads_and_fds(s.pid());
    let names0 = thread_names(s.pid());
    for i in 1..=5 {
        cycle(i * 10);
    }
    assert!(accepted.load(Ordering::SeqCst) >= 6);
    // Threads and descriptors come back to where one cycle left them: no mixer thread
    // (mix, mix-decode, mix-encode, mix-pull) and no descriptor is left over. The
    // runtime's blocking pool is not counted: its idle threads may be kept alive by the
    // outbox's once-a-second store poll, whichever of them it lands on.
    let mixer = |names: &[String]| names.iter().filter(|n| n.starts_with("mix")).count();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, fds) = threads_and_fds(s.pid());
        let names = thread_names(s.pid());
        if mixer(&names) <= mixer(&names0) && fds <= fds0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after churn: threads {names:?} (were {names0:?}), {fds} fds (was {fds0})"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_relay_to_a_refused_address_is_a_startup_error() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), None);
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[callbacks]",
        &format!(
            "[live]\nrelays = [{{ app_id = {APP}, stream_id = \"s\", url = \"rtmp://10.1.2.3/live/KEY9\" }}]\n\n[callbacks]"
        ),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--rtmp",
            "127.0.0.1:0",
            "--rtc-udp",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(tmp.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("relay") && err.contains("private"), "{err}");
    assert!(!err.contains("KEY9"), "the stream key was printed: {err}");
}
