//! Nothing is lost across a real restart: added streams (with their numbering), rooms'
//! sequence counters, the ban list, and pending callbacks — after a clean SIGTERM and
//! after a crash (SIGKILL).

mod common;

use std::time::Duration;

use common::*;

fn list(c: &Client, room: &str) -> Vec<serde_json::Value> {
    let v = c.get("DescribeSimpleStreamList", &[("RoomId", room)]);
    expect_code(&v, 0);
    v["Data"]["StreamList"].as_array().unwrap().clone()
}

#[test]
fn streams_rooms_and_bans_survive_restart_and_crash() {
    let rx = Receiver::start(&[]);
    let mut s = Server::start(Some(&rx.url));
    let c = s.app();
    for id in ["a", "b", "c"] {
        expect_code(
            &c.get(
                "AddStream",
                &[
                    ("RoomId", "room"),
                    ("UserId", "admin"),
                    ("StreamId", id),
                    ("ExtraInfo", "keep me"),
                ],
            ),
            0,
        );
    }
    expect_code(
        &c.get(
            "DeleteStream",
            &[("RoomId", "room"), ("UserId", "admin"), ("StreamId", "b")],
        ),
        0,
    );
    expect_code(
        &c.get(
            "ForbidRTCStreams",
            &[
                ("StreamId[]", "banned1"),
                ("StreamId[]", "banned2"),
                ("Sequence", "5"),
            ],
        ),
        0,
    );
    expect_code(
        &c.get(
            "ResumeRTCStream",
            &[("StreamId", "banned2"), ("Sequence", "6")],
        ),
        0,
    );
    let before = list(&c, "room");
    for _ in 0..4 {
        rx.next(Duration::from_secs(20)).expect("callback");
    }

    s.restart();
    let c = s.app();
    assert_eq!(list(&c, "room"), before);
    let bans = s.tributary(&["bans", "list", "--app-id", &APP.to_string()]);
    assert_eq!(bans.lines().collect::<Vec<_>>(), ["banned1"]);
    // Numbering and the room's stream_seq carry on where they were.
    expect_code(
        &c.get(
            "AddStream",
            &[("RoomId", "room"), ("UserId", "admin"), ("StreamId", "d")],
        ),
        0,
    );
    let after = list(&c, "room");
    assert_eq!(after.last().unwrap()["StreamNumberId"], 4);
    let created = rx
        .next(Duration::from_secs(20))
        .expect("stream_create after restart");
    assert_eq!(created.body["stream_seq"], "5");
    assert!(created.body["room_session_id"].as_str().is_some());

    // A crash right after an acknowledged write loses nothing.
    expect_code(
        &c.get(
            "AddStream",
            &[("RoomId", "room"), ("UserId", "admin"), ("StreamId", "e")],
        ),
        0,
    );
    s.kill();
    s.restart();
    let c = s.app();
    let ids: Vec<String> = list(&c, "room")
        .iter()
        .map(|v| v["StreamId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["a", "c", "d", "e"]);
}

#[test]
fn pending_callback_is_delivered_after_restart() {
    // The first attempt fails; the retry is due in 5 s, after the server has restarted.
    let rx = Receiver::start(&[500]);
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), Some(&rx.url));
    let data = tmp.path().join("data");
    let args = [
        "--config",
        cfg.to_str().unwrap(),
        "--callback-retry-base-ms",
        "5000",
    ];
    let mut s = Server::start_with(&data, &args);
    expect_code(
        &s.app().get(
            "AddStream",
            &[("RoomId", "r"), ("UserId", "u"), ("StreamId", "s")],
        ),
        0,
    );
    let first = rx.next(Duration::from_secs(20)).expect("first attempt");
    assert_eq!(first.status_sent, 500);
    assert!(s.stop().success());
    let pending = s.tributary(&["callbacks", "list"]);
    assert_eq!(pending.lines().count(), 1, "{pending}");

    let mut s = Server::start_with(&data, &args);
    let again = rx
        .next(Duration::from_secs(30))
        .expect("delivered after restart");
    assert_eq!(again.status_sent, 200);
    assert_eq!(again.body, first.body);
    assert!(s.stop().success());
}

#[test]
fn demo_app_is_created_once_and_printed_with_a_working_example() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut s = Server::start_with(&data, &[]);
    let out = std::fs::read_to_string(s.stdout_log()).unwrap();
    let app_id: u32 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("AppId:"))
        .expect("AppId printed")
        .trim()
        .parse()
        .unwrap();
    let secret = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("ServerSecret:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(secret.len(), 32);
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()));
    // The printed example request works as printed.
    let example = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("curl '"))
        .unwrap()
        .trim_end_matches('\'')
        .to_string();
    let c = s.client(app_id, &secret);
    expect_code(&c.fetch(&example), 0);
    // `tributary sign` signs for the stored app.
    let url = s.tributary(&[
        "sign",
        "--http",
        &s.base.replace("http://", ""),
        "AddStream",
        "RoomId=r",
        "UserId=u",
        "StreamId=x",
    ]);
    expect_code(&c.fetch(url.trim()), 0);

    s.restart();
    let out = std::fs::read_to_string(s.stdout_log()).unwrap();
    assert!(out.contains(&format!("serving apps {app_id}")), "{out}");
    assert!(!out.contains("ServerSecret"), "secret printed again: {out}");
    let c = s.client(app_id, &secret);
    expect_code(&c.get("DescribeUserNum", &[("RoomId[]", "r")]), 0);
}
