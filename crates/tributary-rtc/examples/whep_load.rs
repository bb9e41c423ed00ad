//! WHEP load generator for `bench/fanout.sh`: N WebRTC viewers of one live stream, each a
//! str0m client with its own UDP socket, all driven from one thread. Prints the server's
//! CPU per viewer over the run and what the viewers received (so a viewer left behind
//! shows).
//!
//! `whep_load --url http://127.0.0.1:8080/whep/1/s --viewers 100 --pid PID --secs 10`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

struct Viewer {
    rtc: Rtc,
    socket: UdpSocket,
    bytes: u64,
}

fn post(url: &str, offer: &SdpOffer) -> String {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut s = TcpStream::connect(host).expect("the server");
    let body = offer.to_sdp_string();
    write!(
        s,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("sending the offer");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("the answer");
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    reply
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn viewer(url: &str) -> Viewer {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    socket.set_nonblocking(true).expect("non-blocking");
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_h264(true)
        .enable_opus(true)
        .build(Instant::now());
    let local = socket.local_addr().expect("its address");
    rtc.add_local_candidate(Candidate::host(local, "udp").expect("a candidate"));
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().expect("an offer");
    let answer = SdpAnswer::from_sdp_string(&post(url, &offer)).expect("an SDP answer");
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .expect("the answer accepted");
    Viewer {
        rtc,
        socket,
        bytes: 0,
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let f = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    f(11) + f(12)
}

/// Drives every viewer once: sends what is due, reads what arrived.
fn turn(viewers: &mut [Viewer], buf: &mut [u8]) {
    for v in viewers.iter_mut() {
        let local: SocketAddr = v.socket.local_addr().expect("address");
        while let Ok((n, source)) = v.socket.recv_from(buf) {
            if let Ok(contents) = buf[..n].try_into() {
                let _ = v.rtc.handle_input(Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: local,
                        contents,
                    },
                ));
            }
        }
        let _ = v.rtc.handle_input(Input::Timeout(Instant::now()));
        while let Ok(out) = v.rtc.poll_output() {
            match out {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    let _ = v.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(Event::MediaData(d)) => v.bytes += d.data.len() as u64,
                Output::Event(_) => {}
            }
        }
    }
}

fn main() {
    str0m::crypto::from_feature_flags().install_process_default();
    let args: Vec<String> = std::env::args().collect();
    let arg = |k: &str| {
        args.iter()
            .position(|a| a == k)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| panic!("{k} is required"))
    };
    let (url, n, pid, secs): (String, usize, u32, u64) = (
        arg("--url"),
        arg("--viewers").parse().expect("--viewers N"),
        arg("--pid").parse().expect("--pid PID"),
        arg("--secs").parse().expect("--secs S"),
    );
    let mut viewers: Vec<Viewer> = (0..n).map(|_| viewer(&url)).collect();
    let mut buf = vec![0u8; 2048];
    // Connect and settle.
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        turn(&mut viewers, &mut buf);
        std::thread::sleep(Duration::from_millis(2));
    }
    let before: Vec<u64> = viewers.iter().map(|v| v.bytes).collect();
    let (c0, t0) = (cpu_ticks(pid), Instant::now());
    while t0.elapsed() < Duration::from_secs(secs) {
        turn(&mut viewers, &mut buf);
        std::thread::sleep(Duration::from_millis(2));
    }
    let cpu_s = (cpu_ticks(pid) - c0) as f64 / 100.0;
    let wall = t0.elapsed().as_secs_f64();
    let mut kbps: Vec<f64> = viewers
        .iter()
        .zip(&before)
        .map(|(v, b)| (v.bytes - b) as f64 * 8.0 / wall / 1000.0)
        .collect();
    kbps.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{n} WHEP viewers: server {:.3} cores, {:.2} ms CPU per viewer-second, \
         {:.0} viewers/core; received kb/s min {:.0} median {:.0}",
        cpu_s / wall,
        cpu_s * 1000.0 / wall / n as f64,
        n as f64 / (cpu_s / wall).max(1e-9),
        kbps.first().copied().unwrap_or(0.0),
        kbps.get(n / 2).copied().unwrap_or(0.0),
    );
}
