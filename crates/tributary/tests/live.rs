//! The live plane through the real binary with real clients: `ffmpeg` publishes with a
//! minted token; `ffprobe` reads RTMP, HTTP-FLV and HLS.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::media::*;
use common::*;
use sha1::{Digest, Sha1};

const LIVE: Duration = Duration::from_secs(20);

fn check_callback_signature(body: &serde_json::Value) {
    let mut parts = [
        CB_SECRET,
        body["timestamp"].as_str().unwrap(),
        body["nonce"].as_str().unwrap(),
    ];
    parts.sort();
    let expected = hex::encode(Sha1::digest(parts.concat().as_bytes()));
    assert_eq!(body["signature"].as_str().unwrap(), expected, "{body}");
}

#[test]
fn publish_then_play_over_rtmp_flv_and_hls_with_callbacks() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let mut publisher = publish(&publish_url(&s, "cam1", "room1", "alice"), 8);
    let info = wait_live(&s, "cam1", LIVE);
    assert_eq!(info["video_codec"], "H264");
    assert_eq!(info["width"], 320.0);

    // The room lists the published stream, and stream_create arrived signed.
    let list = s
        .app()
        .get("DescribeSimpleStreamList", &[("RoomId", "room1")]);
    assert_eq!(list["Data"]["StreamList"][0]["StreamId"], "cam1", "{list}");
    let created = rx.next(LIVE).expect("stream_create");
    check_callback_signature(&created.body);
    assert_eq!(created.body["event"], "stream_create");
    assert_eq!(created.body["stream_id"], "cam1");
    assert_eq!(created.body["user_id"], "alice");
    let state = s.app().get(
        "DescribeRTCStreamState",
        &[("StreamId", "cam1"), ("Sequence", "1")],
    );
    expect_code(&state, 0);

    let rtmp = format!("{}/{APP}/cam1", s.rtmp);
    let flv = format!("{}/{APP}/cam1.flv", s.base);
    for url in [&rtmp, &flv] {
        assert_eq!(probe_streams(url), vec!["aac", "h264:320:240"], "{url}");
        let times = video_times(url, 2);
        assert!(times.len() >= 25, "{url}: {} frames in 2 s", times.len());
        assert!(times.windows(2).all(|w| w[1] >= w[0]), "monotonic");
        let span = times[times.len() - 1] - times[0];
        assert!((1.0..4.0).contains(&span), "{url}: span {span}");
    }

    // HLS: wait for two segments, then probe the playlist and a segment.
    let playlist = format!("{}/{APP}/cam1/playlist.m3u8", s.base);
    let deadline = Instant::now() + LIVE;
    let text = loop {
        let t = reqwest::blocking::get(&playlist).unwrap().text().unwrap();
        if t.matches(".ts").count() >= 2 {
            break t;
        }
        assert!(Instant::now() < deadline, "no HLS segments: {t}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.starts_with("#EXTM3U"));
    assert_eq!(probe_streams(&playlist), vec!["aac", "h264:320:240"]);
    let seg_name = text.lines().find(|l| l.ends_with(".ts")).unwrap();
    let seg = reqwest::blocking::get(format!("{}/{APP}/cam1/{seg_name}", s.base))
        .unwrap()
        .bytes()
        .unwrap();
    let seg_file = s.data.with_extension("seg.ts");
    std::fs::write(&seg_file, &seg).unwrap();
    let out = ffprobe(&[
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
        seg_file.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let dur: f64 = text
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{text:?} {}", String::from_utf8_lossy(&out.stderr)));
    assert!((1.5..3.0).contains(&dur), "segment duration {dur}");

    // The publisher ends normally: stream_close type 0, the room is empty again.
    let st = wait_exit(&mut publisher, LIVE).expect("ffmpeg ends");
    assert!(st.success(), "{}", stderr_of(publisher));
    let closed = loop {
        let c = rx.next(LIVE).expect("stream_close");
        if c.body["event"] == "stream_close" {
            break c;
        }
    };
    check_callback_signature(&closed.body);
    assert_eq!(closed.body["type"], "0", "{}", closed.body);
    let list = s
        .app()
        .get("DescribeSimpleStreamList", &[("RoomId", "room1")]);
    assert!(
        list["Data"]["StreamList"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{list}"
    );
    assert!(!is_live(&s, "cam1"));
    assert!(metric(&s, "tributary_live_sent_bytes_total", "protocol=\"rtmp\"") > 10_000.0);
}

#[test]
fn bad_missing_expired_and_foreign_tokens_are_refused() {
    let s = Server::start(None);
    let expired = mint("publish", SECRET, "s1", "r", "u", now_secs() - 1);
    let other_stream = mint("publish", SECRET, "s2", "r", "u", now_secs() + 60);
    let play_token = mint("play", SECRET, "s1", "", "", now_secs() + 60);
    let wrong_secret = mint("publish", "nope", "s1", "r", "u", now_secs() + 60);
    for (what, query) in [
        ("missing", "room=r&user=u".to_string()),
        ("expired", format!("room=r&user=u&token={expired}")),
        (
            "other stream",
            format!("room=r&user=u&token={other_stream}"),
        ),
        ("play token", format!("room=r&user=u&token={play_token}")),
        (
            "wrong secret",
            format!("room=r&user=u&token={wrong_secret}"),
        ),
        (
            "other room",
            format!(
                "room=r2&user=u&token={}",
                mint("publish", SECRET, "s1", "r", "u", now_secs() + 60)
            ),
        ),
        ("garbage", "room=r&user=u&token=xyz".to_string()),
    ] {
        let mut p = publish(&format!("{}/{APP}/s1?{query}", s.rtmp), 5);
        let st = wait_exit(&mut p, LIVE).expect("refused publisher exits");
        assert!(!st.success(), "{what} was accepted");
        let err = stderr_of(p);
        assert!(err.contains("token"), "{what}: {err}");
    }
    assert!(!is_live(&s, "s1"));
    assert!(metric(&s, "tributary_live_refusals_total", "token") >= 7.0);
    // An unknown app is refused too.
    let mut p = publish(&format!("{}/999/s1", s.rtmp), 5);
    assert!(!wait_exit(&mut p, LIVE).unwrap().success());
}

#[test]
fn forbid_cuts_off_the_publisher_and_resume_lets_it_back() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let c = s.app();
    let url = publish_url(&s, "bad1", "room2", "bob");
    let mut p = publish(&url, 60);
    wait_live(&s, "bad1", LIVE);
    expect_code(
        &c.get(
            "DescribeRTCStreamState",
            &[("StreamId", "bad1"), ("Sequence", "9")],
        ),
        0,
    );
    // A player sees the stream end when the publisher is cut off.
    let mut player = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            &format!("{}/{APP}/bad1", s.rtmp),
            "-f",
            "null",
            "-",
        ])
        .spawn()
        .unwrap();

    let t0 = Instant::now();
    expect_code(
        &c.get(
            "ForbidRTCStream",
            &[("StreamId", "bad1"), ("Sequence", "10")],
        ),
        0,
    );
    let st = wait_exit(&mut p, Duration::from_secs(10)).expect("forbidden publisher exits");
    let cut = t0.elapsed();
    assert!(!st.success());
    eprintln!("publisher cut off {cut:?} after ForbidRTCStream");
    assert!(
        wait_exit(&mut player, Duration::from_secs(10)).is_some(),
        "player sees the end"
    );
    assert!(!is_live(&s, "bad1"));
    // Not live any more (41004: not being published).
    let state = c.get(
        "DescribeRTCStreamState",
        &[("StreamId", "bad1"), ("Sequence", "11")],
    );
    expect_code(&state, 41004);

    // Banned: a new publish is refused.
    let mut again = publish(&url, 5);
    assert!(!wait_exit(&mut again, LIVE).unwrap().success());
    assert!(stderr_of(again).contains("forbidden"));

    // Resumed: it may publish again.
    expect_code(
        &c.get(
            "ResumeRTCStream",
            &[("StreamId", "bad1"), ("Sequence", "12")],
        ),
        0,
    );
    let mut back = publish(&url, 30);
    wait_live(&s, "bad1", LIVE);
    let _ = back.kill();
    let _ = back.wait();

    // stream_close for the cut-off publisher says "kicked" (type 3).
    let deadline = Instant::now() + LIVE;
    loop {
        let cb = rx.next(LIVE).expect("callbacks");
        if cb.body["event"] == "stream_close" {
            assert_eq!(cb.body["type"], "3", "{}", cb.body);
            break;
        }
        assert!(Instant::now() < deadline);
    }
}

#[test]
fn a_second_publisher_is_refused_and_the_first_goes_on() {
    let s = Server::start(None);
    let url = publish_url(&s, "dup", "r", "u");
    let mut first = publish(&url, 30);
    wait_live(&s, "dup", LIVE);
    let mut second = publish(&url, 5);
    let st = wait_exit(&mut second, LIVE).expect("second exits");
    assert!(!st.success());
    assert!(stderr_of(second).contains("already being published"));
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first publisher still runs"
    );
    assert!(is_live(&s, "dup"));
    let _ = first.kill();
    let _ = first.wait();
}

#[test]
fn room_event_feed_shows_add_and_delete_in_order() {
    let s = Server::start(None);
    let token = mint("room-events", SECRET, "", "lobby", "", now_secs() + 60);
    // Wrong token: 403.
    let r = reqwest::blocking::get(format!(
        "{}/rooms/lobby/events?app_id={APP}&token=1.00",
        s.base
    ))
    .unwrap();
    assert_eq!(r.status(), 403);
    let mut sock = TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    write!(
        sock,
        "GET /rooms/lobby/events?app_id={APP}&token={token} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    sock.set_read_timeout(Some(LIVE)).unwrap();
    let mut reader = BufReader::new(sock);
    let mut next_event = |name: &str| -> serde_json::Value {
        let mut current = String::new();
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "feed closed");
            let line = line.trim_end();
            if let Some(e) = line.strip_prefix("event: ") {
                current = e.to_string();
            }
            if let Some(d) = line.strip_prefix("data: ")
                && current == name
            {
                return serde_json::from_str(d).unwrap();
            }
        }
    };
    next_event("ready");
    let c = s.app();
    expect_code(
        &c.get(
            "AddStream",
            &[("RoomId", "lobby"), ("UserId", "u1"), ("StreamId", "x1")],
        ),
        0,
    );
    expect_code(
        &c.get(
            "AddStream",
            &[("RoomId", "other"), ("UserId", "u1"), ("StreamId", "y1")],
        ),
        0,
    );
    expect_code(
        &c.get(
            "DeleteStream",
            &[("RoomId", "lobby"), ("UserId", "u1"), ("StreamId", "x1")],
        ),
        0,
    );
    let added = next_event("stream_added");
    assert_eq!(added["stream_id"], "x1");
    assert_eq!(added["origin"], "api");
    let deleted = next_event("stream_deleted");
    assert_eq!(deleted["stream_id"], "x1");
    assert_eq!(deleted["reason"], "deleted");
    assert!(deleted["stream_seq"].as_u64() > added["stream_seq"].as_u64());
}

#[test]
fn a_slow_reader_loses_gops_not_memory() {
    let s = Server::start(None);
    // A high-bitrate stream (cheap Sorenson H.263 at q 1, ~15 Mb/s) for 10 s.
    let mut p = publish_with(
        &publish_url(&s, "fat", "r", "u"),
        10,
        &["-c:v", "flv", "-q:v", "1", "-g", "25", "-c:a", "aac"],
        "1280x720",
    );
    wait_live(&s, "fat", LIVE);
    // A player that asks and never reads.
    let mut stuck = TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    write!(stuck, "GET /{APP}/fat.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let before = rss_kib(s.pid());
    let st = wait_exit(&mut p, LIVE).expect("publisher ends");
    assert!(st.success());
    let after = rss_kib(s.pid());
    let bytes_in = metric(&s, "tributary_live_received_bytes_total", "");
    let dropped = metric(&s, "tributary_live_dropped_gops_total", "");
    eprintln!(
        "received {:.1} MB; RSS {before} KiB → {after} KiB; dropped GOPs {dropped}",
        bytes_in / 1e6
    );
    assert!(
        bytes_in > 8e6,
        "the stream was big enough to matter: {bytes_in}"
    );
    assert!(dropped >= 1.0, "the stuck reader lost GOPs");
    assert!(
        after < before + 24 * 1024,
        "RSS grew {before} → {after} KiB"
    );
    drop(stuck);
}

#[test]
fn a_hundred_flv_players_get_data() {
    let s = Server::start(None);
    let mut p = publish(&publish_url(&s, "many", "r", "u"), 30);
    wait_live(&s, "many", LIVE);
    let addr = s.base.trim_start_matches("http://").to_string();
    let players: Vec<_> = (0..100)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut sock = TcpStream::connect(&addr).unwrap();
                sock.set_read_timeout(Some(LIVE)).unwrap();
                write!(sock, "GET /{APP}/many.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 16384];
                while got.len() < 64 * 1024 {
                    let n = sock.read(&mut buf).unwrap();
                    assert!(n > 0, "closed early");
                    got.extend_from_slice(&buf[..n]);
                }
                let text = String::from_utf8_lossy(&got[..200]).to_string();
                assert!(text.starts_with("HTTP/1.1 200"), "{text}");
                got.windows(3).any(|w| w == b"FLV")
            })
        })
        .collect();
    let ok = players
        .into_iter()
        .map(|h| h.join())
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(ok, 100);
    // The server notices a gone player at its next write: wait for the gauge to drain.
    let deadline = Instant::now() + LIVE;
    while metric(&s, "tributary_live_players", "protocol=\"flv\"") != 0.0 {
        assert!(Instant::now() < deadline, "players still counted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = p.kill();
    let _ = p.wait();
}

#[test]
fn garbage_on_the_rtmp_port_closes_only_that_connection() {
    let s = Server::start(None);
    let addr = s.rtmp.trim_start_matches("rtmp://").to_string();
    let send = |bytes: &[u8]| {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(LIVE)).unwrap();
        let _ = c.write_all(bytes);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        // The server closes: read ends (EOF or reset), it does not hang.
        let _ = c.read_to_end(&mut sink);
    };
    send(b"GET / HTTP/1.1\r\n\r\n");
    send(&[3u8; 100]); // truncated handshake
    let mut hs = vec![3u8];
    hs.extend_from_slice(&[0u8; 1536 * 2]);
    // Handshake, then a chunk header announcing a 16 MiB message, then junk AMF.
    let mut bad = hs.clone();
    bad.extend_from_slice(&[0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 0]);
    send(&bad);
    let mut amf = hs.clone();
    amf.extend_from_slice(&[
        0x03, 0, 0, 0, 0, 0, 5, 20, 0, 0, 0, 0, 0x02, 0xFF, 0xFF, 0x07, 0x07,
    ]);
    send(&amf);
    let random: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut r = hs.clone();
    r.extend_from_slice(&random);
    send(&r);
    // Still serving.
    let mut p = publish(&publish_url(&s, "after", "r", "u"), 20);
    wait_live(&s, "after", LIVE);
    let _ = p.kill();
    let _ = p.wait();
}

#[test]
fn a_relay_pushes_the_stream_on_and_reconnects_after_the_target_drops_it() {
    // The relay's target is this same server, stream "copy" (its own publish token).
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Port of the RTMP listener must be known in the config: take a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = mint(
        "publish",
        SECRET,
        "copy",
        "relays",
        "relay",
        now_secs() + 600,
    );
    let config = write_config(tmp.path(), None);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replacen(
        "[callbacks]",
        &format!(
            "[live]\nrelays = [{{ app_id = {APP}, stream_id = \"src\", url = \"rtmp://127.0.0.1:{port}/{APP}/copy?room=relays&user=relay&token={token}\" }}]\n\n[callbacks]"
        ),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let rtmp_arg = format!("127.0.0.1:{port}");
    let s = Server::start_with(
        &data,
        &["--config", config.to_str().unwrap(), "--rtmp", &rtmp_arg],
    );
    let c = s.app();
    let mut p = publish(&publish_url(&s, "src", "r", "u"), 60);
    wait_live(&s, "src", LIVE);
    wait_live(&s, "copy", LIVE);
    assert_eq!(
        probe_streams(&format!("{}/{APP}/copy.flv", s.base)),
        vec!["aac", "h264:320:240"]
    );

    // Cut the copy off (forbid): the relay retries, refused, until resumed.
    expect_code(
        &c.get(
            "ForbidRTCStream",
            &[("StreamId", "copy"), ("Sequence", "1")],
        ),
        0,
    );
    let deadline = Instant::now() + LIVE;
    while is_live(&s, "copy") {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    expect_code(
        &c.get(
            "ResumeRTCStream",
            &[("StreamId", "copy"), ("Sequence", "2")],
        ),
        0,
    );
    wait_live(&s, "copy", Duration::from_secs(40));
    let _ = p.kill();
    let _ = p.wait();
}
