//! Signed callbacks through the real binary: shape, signature, retries, giving up,
//! listing and requeueing failures, and never blocking the API.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sha1::{Digest, Sha1};

const WAIT: Duration = Duration::from_secs(20);

/// The callback signature, computed independently of the server's code.
fn check_signature(body: &serde_json::Value, secret: &str) {
    let ts = body["timestamp"].as_str().unwrap();
    let nonce = body["nonce"].as_str().unwrap();
    let mut parts = [secret, ts, nonce];
    parts.sort();
    let expected = hex::encode(Sha1::digest(parts.concat().as_bytes()));
    assert_eq!(body["signature"].as_str().unwrap(), expected, "{body}");
}

#[test]
fn stream_create_and_close_arrive_signed() {
    let rx = Receiver::start(&[]);
    let s = Server::start(Some(&rx.url));
    let c = s.app();
    expect_code(
        &c.get(
            "AddStream",
            &[
                ("RoomId", "room1"),
                ("UserId", "admin"),
                ("UserName", "Admin"),
                ("StreamId", "s1"),
                ("StreamTitle", "hello"),
                ("ExtraInfo", "xi"),
            ],
        ),
        0,
    );
    let created = rx.next(WAIT).expect("stream_create");
    let b = &created.body;
    check_signature(b, CB_SECRET);
    assert_eq!(b["event"], "stream_create");
    assert_eq!(b["appid"], APP.to_string());
    assert_eq!(b["room_id"], "room1");
    assert_eq!(b["channel_id"], "room1");
    assert_eq!(b["stream_id"], "s1");
    assert_eq!(b["stream_alias"], "s1");
    assert_eq!(b["user_id"], "admin");
    assert_eq!(b["user_name"], "Admin");
    assert_eq!(b["title"], "hello");
    assert_eq!(b["extra_info"], "xi");
    assert_eq!(b["stream_seq"], "1");
    assert_eq!(b["recreate"], "0");
    // Numbers travel as strings.
    for k in [
        "appid",
        "room_session_id",
        "stream_seq",
        "create_time",
        "create_time_ms",
        "timestamp",
    ] {
        assert!(
            b[k].as_str().is_some_and(|v| v.parse::<u64>().is_ok()),
            "{k}: {b}"
        );
    }
    assert!(
        b["rtmp_url"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{APP}/s1"))
    );
    assert!(
        b["hdl_url"][0]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{APP}/s1.flv"))
    );

    expect_code(
        &c.get(
            "DeleteStream",
            &[("RoomId", "room1"), ("UserId", "mod"), ("StreamId", "s1")],
        ),
        0,
    );
    let closed = rx.next(WAIT).expect("stream_close");
    let b = &closed.body;
    check_signature(b, CB_SECRET);
    assert_eq!(b["event"], "stream_close");
    assert_eq!(b["type"], "100");
    assert_eq!(b["stream_seq"], "2");
    assert_eq!(b["room_session_id"], created.body["room_session_id"]);
    assert_eq!(b["stream_sid"], created.body["stream_sid"]);
    assert_eq!(b["create_time_ms"], created.body["create_time_ms"]);
    assert!(
        b["destroy_timemillis"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );

    // Moderation and reads send nothing; the other apps have no callback URL.
    expect_code(
        &c.get("ForbidRTCStream", &[("StreamId", "s1"), ("Sequence", "1")]),
        0,
    );
    expect_code(
        &s.limited().get(
            "AddStream",
            &[("RoomId", "r"), ("UserId", "u"), ("StreamId", "x")],
        ),
        0,
    );
    assert!(rx.next(Duration::from_millis(500)).is_none());
}

#[test]
fn retries_back_off_then_deliver() {
    // Three failures (two HTTP errors and a 503), then success.
    let rx = Receiver::start(&[500, 500, 503]);
    let s = Server::start(Some(&rx.url));
    expect_code(
        &s.app().get(
            "AddStream",
            &[("RoomId", "r"), ("UserId", "u"), ("StreamId", "s")],
        ),
        0,
    );
    let got: Vec<Received> = (0..4).map(|_| rx.next(WAIT).expect("attempt")).collect();
    assert_eq!(
        got.iter().map(|r| r.status_sent).collect::<Vec<_>>(),
        [500, 500, 503, 200]
    );
    // Every attempt carries the same signed body.
    assert!(got.iter().all(|r| r.body == got[0].body));
    // Delays double from the configured base (100 ms in the test config): lower bounds only.
    for k in 0..3 {
        let gap = got[k + 1].at - got[k].at;
        let min = Duration::from_millis(90 * (1 << k));
        assert!(gap >= min, "retry {k}: {gap:?} < {min:?}");
    }
    assert!(
        rx.next(Duration::from_millis(800)).is_none(),
        "delivered twice"
    );
    let pending = s.tributary(&["callbacks", "list"]);
    assert!(pending.trim().is_empty(), "{pending}");
}

#[test]
fn gives_up_after_five_retries_lists_and_requeues() {
    let rx = Receiver::start(&[500; 6]);
    let s = Server::start(Some(&rx.url));
    expect_code(
        &s.app().get(
            "AddStream",
            &[("RoomId", "r"), ("UserId", "u"), ("StreamId", "s")],
        ),
        0,
    );
    for _ in 0..6 {
        assert_eq!(rx.next(WAIT).expect("attempt").status_sent, 500);
    }
    assert!(
        rx.next(Duration::from_millis(500)).is_none(),
        "more than 1 + 5 attempts"
    );
    let deadline = Instant::now() + WAIT;
    let failed = loop {
        let out = s.tributary(&["callbacks", "list", "--failed"]);
        if !out.trim().is_empty() {
            break out;
        }
        assert!(Instant::now() < deadline, "never marked failed");
        std::thread::sleep(Duration::from_millis(50));
    };
    let entry: serde_json::Value = serde_json::from_str(failed.lines().next().unwrap()).unwrap();
    assert_eq!(entry["event"], "stream_create");
    assert_eq!(entry["attempts"], 6);
    assert_eq!(entry["last_error"], "HTTP 500");
    // Requeued by an operator, it goes out again (the receiver now answers 200).
    assert!(
        s.tributary(&["callbacks", "retry-failed"])
            .contains("requeued 1")
    );
    let again = rx.next(WAIT).expect("redelivery");
    assert_eq!(again.status_sent, 200);
    assert_eq!(again.body["event"], "stream_create");
}

#[test]
fn a_hung_receiver_never_blocks_the_api() {
    // Accepts connections and never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", hung.local_addr().unwrap());
    let _keep = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in hung.incoming() {
            conns.push(c);
        }
    });
    let s = Server::start(Some(&url));
    let c = s.app();
    // Each delivery attempt waits for the 2 s timeout; five API calls together must not.
    let t = Instant::now();
    for i in 0..5 {
        let id = format!("s{i}");
        expect_code(
            &c.get(
                "AddStream",
                &[("RoomId", "r"), ("UserId", "u"), ("StreamId", &id)],
            ),
            0,
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "API waited on callbacks: {:?}",
        t.elapsed()
    );
}
