//! Room membership through the real binary: DescribeUsers, DescribeUserList (paging),
//! KickoutUser and CloseRoom with real ffmpeg publishers, their `stream_close` callbacks
//! (type 3 kicked, 5 room cleared) and the vendor's codes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::media::*;
use common::*;

const LIVE: Duration = Duration::from_secs(20);

/// The `stream_close` types of `streams`, whatever order their callbacks come in.
fn close_types(rx: &Receiver, streams: &[&str]) -> Vec<String> {
    let mut seen = std::collections::HashMap::new();
    let deadline = Instant::now() + LIVE;
    while streams.iter().any(|s| !seen.contains_key(*s)) {
        assert!(
            Instant::now() < deadline,
            "stream_close seen for {seen:?} only"
        );
        let cb = rx.next(LIVE).expect("stream_close");
        if cb.body["event"] == "stream_close" {
            let id = cb.body["stream_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let t = cb.body["type"].as_str().unwrap_or_default().to_string();
            seen.insert(id, t);
        }
    }
    streams.iter().map(|s| seen[*s].clone()).collect()
}

#[test]
fn users_are_listed_kicked_and_cleared_with_their_room() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let c = s.app();
    let mut alice = publish(&publish_url(&s, "a1", "party", "alice"), 60);
    wait_live(&s, "a1", LIVE);
    let mut bob = publish(&publish_url(&s, "b1", "party", "bob"), 60);
    wait_live(&s, "b1", LIVE);
    let mut carol = publish(&publish_url(&s, "c1", "party", "carol"), 60);
    wait_live(&s, "c1", LIVE);
    expect_code(
        &c.get(
            "AddStream",
            &[
                ("RoomId", "party"),
                ("UserId", "admin"),
                ("StreamId", "s-admin"),
            ],
        ),
        0,
    );

    // DescribeUsers: in the room with their login time and role, or not.
    let v = c.get(
        "DescribeUsers",
        &[
            ("RoomId", "party"),
            ("UserId[]", "alice"),
            ("UserId[]", "nobody"),
            ("UserId[]", "admin"),
        ],
    );
    expect_code(&v, 0);
    let list = v["Data"]["UserStatusList"].as_array().unwrap();
    assert_eq!(list[0]["UserId"], "alice");
    assert_eq!(list[0]["Status"], 1);
    assert_eq!(list[0]["UserRole"], 1);
    assert!(list[0]["LoginTime"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(list[1]["Status"], 0);
    assert_eq!(
        list[2]["UserRole"], 4,
        "an API-added stream's owner is an admin"
    );

    // DescribeUserList pages by login time with a Marker, both ways.
    let page = |mode: &str, marker: &str| {
        let v = c.get(
            "DescribeUserList",
            &[
                ("RoomId", "party"),
                ("Mode", mode),
                ("Limit", "3"),
                ("Marker", marker),
            ],
        );
        expect_code(&v, 0);
        let ids: Vec<String> = v["Data"]["UserList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["UserId"].as_str().unwrap().to_string())
            .collect();
        (ids, v["Data"]["Marker"].as_str().unwrap().to_string())
    };
    let (first, marker) = page("0", "");
    assert_eq!(first, ["alice", "bob", "carol"]);
    assert!(!marker.is_empty());
    let (rest, end) = page("0", &marker);
    assert_eq!(rest, ["admin"]);
    assert!(end.is_empty(), "an empty Marker ends the list");
    let (newest, _) = page("1", "");
    assert_eq!(newest, ["admin", "carol", "bob"]);

    // KickoutUser: alice's publisher is cut off, her stream closes as kicked (type 3);
    // the others go on.
    expect_code(
        &c.get("KickoutUser", &[("RoomId", "party"), ("UserId[]", "alice")]),
        0,
    );
    assert!(
        wait_exit(&mut alice, Duration::from_secs(5)).is_some(),
        "the kicked publisher's connection ends"
    );
    assert_eq!(close_types(&rx, &["a1"]), ["3"]);
    assert!(!is_live(&s, "a1"));
    assert!(is_live(&s, "b1") && is_live(&s, "c1"));
    let v = c.get("DescribeUsers", &[("RoomId", "party"), ("UserId", "alice")]);
    assert_eq!(v["Data"]["UserStatusList"][0]["Status"], 0);
    let six: Vec<(&str, &str)> = [("RoomId", "party")]
        .into_iter()
        .chain((0..6).map(|_| ("UserId[]", "x")))
        .collect();
    expect_code(&c.get("KickoutUser", &six), 50011);

    // CloseRoom: everyone's streams end as "room cleared" (type 5), publishers included.
    expect_code(&c.get("CloseRoom", &[("RoomId", "party")]), 0);
    for p in [&mut bob, &mut carol] {
        assert!(wait_exit(p, Duration::from_secs(5)).is_some());
    }
    assert_eq!(close_types(&rx, &["b1", "c1", "s-admin"]), ["5", "5", "5"]);
    let (none, _) = page("0", "");
    assert!(none.is_empty());
    expect_code(&c.get("CloseRoom", &[("RoomId", "party")]), 5024);
}

/// A player reading `url` to nowhere for up to `secs` (ffmpeg, the client we did not
/// write).
fn player(url: &str, secs: u32) -> Proc {
    Proc(
        std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-loglevel", "error"])
            .args(["-rw_timeout", "15000000", "-i", url])
            .args(["-t", &secs.to_string(), "-f", "null", "-"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ffmpeg"),
    )
}

/// Room callbacks by event, waiting until `want` (event, user) pairs have all come.
fn room_callbacks(rx: &Receiver, want: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let mut got: Vec<serde_json::Value> = Vec::new();
    let deadline = Instant::now() + LIVE;
    let seen = |got: &[serde_json::Value], (ev, user): (&str, &str)| {
        got.iter().any(|b| {
            b["event"] == ev
                && (user.is_empty() || b["user_account"] == user || b["id_name"] == user)
        })
    };
    while want.iter().any(|w| !seen(&got, *w)) {
        assert!(Instant::now() < deadline, "room callbacks seen: {got:#?}");
        if let Some(cb) = rx.next(Duration::from_secs(1)) {
            got.push(cb.body);
        }
    }
    got
}

#[test]
fn players_and_feeds_are_members_and_kicked_out_with_every_session() {
    let rx = Receiver::start(&[]);
    let s = Server::start_edited(
        |t| {
            t.replacen(
                &format!("server_secret = \"{SECRET}\""),
                &format!(
                    "server_secret = \"{SECRET}\"\nroom_callback_urls = [\"{}\"]",
                    rx.url
                ),
                1,
            )
            .replacen(
                "[apps.rate_limits]",
                "[apps.limits]\nkick_refusal_secs = 4\n[apps.rate_limits]",
                1,
            )
        },
        &[],
    );
    let c = s.app();
    let mut host = publish(&publish_url(&s, "m1", "hall", "host"), 90);
    wait_live(&s, "m1", LIVE);
    let got = room_callbacks(&rx, &[("room_create", "host"), ("room_login", "host")]);
    let login = got.iter().find(|b| b["event"] == "room_login").unwrap();
    assert_eq!(login["room_id"], "hall");
    assert_eq!(login["user_role"], "1", "a publisher is a host");
    let create = got.iter().find(|b| b["event"] == "room_create").unwrap();
    assert_eq!(create["room_session_id"], login["room_seq"]);

    // One member per way of watching, each with a play token bound to its room and user.
    let play = |user: &str| {
        let t = mint("play", SECRET, "m1", "hall", user, now_secs() + 600);
        format!("?room=hall&user={user}&token={t}")
    };
    let _rtmp = player(&format!("{}/{APP}/m1{}", s.rtmp, play("fan-rtmp")), 80);
    let _flv = player(&format!("{}/{APP}/m1.flv{}", s.base, play("fan-flv")), 80);
    let hls_url = format!("{}/{APP}/m1/playlist.m3u8{}", s.base, play("fan-hls"));
    let deadline = Instant::now() + LIVE;
    loop {
        // The first segment takes a moment; the playlist is there once it is.
        let r = reqwest::blocking::get(&hls_url).unwrap();
        let text = if r.status() == 200 {
            r.text().unwrap()
        } else {
            String::new()
        };
        if text.contains(".ts") {
            assert!(
                text.contains("room=hall") && text.contains("user=fan-hls"),
                "segment URIs carry what the token is bound to: {text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no HLS playlist");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The room's feed, opened as a user.
    let feed_token = mint(
        "room-events",
        SECRET,
        "",
        "hall",
        "fan-feed",
        now_secs() + 600,
    );
    let mut sock = TcpStream::connect(s.base.trim_start_matches("http://")).unwrap();
    write!(
        sock,
        "GET /rooms/hall/events?app_id={APP}&user=fan-feed&token={feed_token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    sock.set_read_timeout(Some(LIVE)).unwrap();
    let mut feed = BufReader::new(sock);
    let mut next_event = |name: &str| -> Option<serde_json::Value> {
        let mut current = String::new();
        loop {
            let mut line = String::new();
            if feed.read_line(&mut line).unwrap_or(0) == 0 {
                return None;
            }
            let line = line.trim_end();
            if let Some(e) = line.strip_prefix("event: ") {
                current = e.to_string();
            }
            if let Some(d) = line.strip_prefix("data: ")
                && current == name
            {
                return Some(serde_json::from_str(d).unwrap());
            }
        }
    };
    let joined = next_event("user_joined").expect("the feed's own join");
    assert_eq!(joined["user_id"], "fan-feed");

    let fans = ["fan-rtmp", "fan-flv", "fan-hls", "fan-feed"];
    let logins: Vec<(&str, &str)> = fans.iter().map(|f| ("room_login", *f)).collect();
    let got = room_callbacks(&rx, &logins);
    for b in got.iter().filter(|b| b["event"] == "room_login") {
        assert_eq!(b["user_role"], "2", "a viewer is audience: {b}");
    }
    let v = c.get("DescribeUserList", &[("RoomId", "hall")]);
    expect_code(&v, 0);
    let mut listed: Vec<(String, u64)> = v["Data"]["UserList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["UserId"].as_str().unwrap().to_string(),
                u["UserRole"].as_u64().unwrap(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("fan-feed".to_string(), 2),
            ("fan-flv".to_string(), 2),
            ("fan-hls".to_string(), 2),
            ("fan-rtmp".to_string(), 2),
            ("host".to_string(), 1)
        ]
    );
    let v = c.get("DescribeUserNum", &[("RoomId[]", "hall")]);
    assert_eq!(v["Data"]["UserCountList"][0]["UserCount"], 5);

    // A token bound to another user, or to no room, does not make anyone a member.
    let wrong = mint("play", SECRET, "m1", "hall", "someone", now_secs() + 600);
    let r = reqwest::blocking::get(format!(
        "{}/{APP}/m1.flv?room=hall&user=fan-x&token={wrong}",
        s.base
    ))
    .unwrap();
    assert_eq!(r.status(), 403);
    let anonymous = mint("play", SECRET, "m1", "", "", now_secs() + 600);
    let r = reqwest::blocking::get(format!(
        "{}/{APP}/m1.flv?room=hall&user=fan-x&token={anonymous}",
        s.base
    ))
    .unwrap();
    assert_eq!(r.status(), 403);

    // KickoutUser ends every session of those users: players, the HLS member, the feed.
    let t0 = Instant::now();
    expect_code(
        &c.get(
            "KickoutUser",
            &[
                ("RoomId", "hall"),
                ("UserId[]", "fan-rtmp"),
                ("UserId[]", "fan-flv"),
                ("UserId[]", "fan-hls"),
                ("UserId[]", "fan-feed"),
            ],
        ),
        0,
    );
    let mut rtmp = _rtmp;
    let mut flv = _flv;
    assert!(
        wait_exit(&mut rtmp.0, Duration::from_secs(5)).is_some(),
        "RTMP player cut off"
    );
    assert!(
        wait_exit(&mut flv.0, Duration::from_secs(5)).is_some(),
        "HTTP-FLV player cut off"
    );
    let cut = t0.elapsed();
    assert!(next_event("never").is_none(), "the feed ended");
    println!(
        "kicked players' connections ended {} ms after KickoutUser",
        cut.as_millis()
    );
    assert_eq!(reqwest::blocking::get(&hls_url).unwrap().status(), 403);
    let logouts: Vec<(&str, &str)> = fans.iter().map(|f| ("room_logout", *f)).collect();
    for b in room_callbacks(&rx, &logouts)
        .iter()
        .filter(|b| b["event"] == "room_logout")
    {
        assert_eq!(b["reason"], "3", "kicked out: {b}");
    }
    // Refused while the kick lasts (4 s here), welcome after.
    let r = reqwest::blocking::get(format!("{}/{APP}/m1.flv{}", s.base, play("fan-flv"))).unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("kicked"));
    std::thread::sleep(Duration::from_secs(4));
    let _back = player(&format!("{}/{APP}/m1.flv{}", s.base, play("fan-flv")), 60);
    room_callbacks(&rx, &[("room_login", "fan-flv")]);

    // CloseRoom with RoomCloseCallback: the publisher and the returning player go, then
    // the room, with room_close.
    expect_code(
        &c.get(
            "CloseRoom",
            &[("RoomId", "hall"), ("RoomCloseCallback", "true")],
        ),
        0,
    );
    assert!(wait_exit(&mut host, Duration::from_secs(5)).is_some());
    let got = room_callbacks(
        &rx,
        &[
            ("room_logout", "host"),
            ("room_logout", "fan-flv"),
            ("room_close", ""),
        ],
    );
    let close = got.iter().find(|b| b["event"] == "room_close").unwrap();
    assert_eq!(close["room_session_id"], create["room_session_id"]);
    assert_eq!(close["close_reason"], "0");
    let v = c.get("DescribeUserNum", &[("RoomId[]", "hall")]);
    assert_eq!(v["Data"]["UserCountList"][0]["UserCount"], 0);
}
