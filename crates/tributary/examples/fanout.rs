//! Fan-out load generator for `bench/fanout.sh`: publishes an FLV clip in real time to an
//! RTMP server, attaches N players (RTMP or HTTP-FLV), and reports the server's CPU per
//! player, the bytes players received and publish→play latency (measured on one player
//! by matching video timestamps to the moment they were sent).
//!
//! `cargo run --release --example fanout -- --rtmp rtmp://127.0.0.1:1935/app --stream s
//!  --file clip.flv --players 100 --mode rtmp --pid PID --secs 10`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary_live::Kind;
use tributary_live::amf0::{self, Amf0};
use tributary_live::chunk::{ChunkReader, ChunkWriter, Limits, msg_type};
use tributary_live::flv::FlvReader;
use tributary_live::handshake;

type Sent = Arc<Mutex<HashMap<u32, Instant>>>;

struct Args {
    rtmp: String,
    http: Option<String>,
    stream: String,
    query: String,
    file: String,
    players: usize,
    mode: String,
    pid: u32,
    secs: u64,
}

fn args() -> Args {
    let mut a = Args {
        rtmp: String::new(),
        http: None,
        stream: "bench".into(),
        query: String::new(),
        file: String::new(),
        players: 10,
        mode: "rtmp".into(),
        pid: 0,
        secs: 10,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let val = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--rtmp" => a.rtmp = val,
            "--http" => a.http = Some(val),
            "--stream" => a.stream = val,
            "--query" => a.query = val,
            "--file" => a.file = val,
            "--players" => a.players = val.parse().expect("--players N"),
            "--mode" => a.mode = val,
            "--pid" => a.pid = val.parse().expect("--pid PID"),
            "--secs" => a.secs = val.parse().expect("--secs S"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Conn {
    sock: TcpStream,
    reader: ChunkReader,
    writer: ChunkWriter,
    buf: BytesMut,
    out: BytesMut,
}

impl Conn {
    async fn open(base: &str) -> Conn {
        let rest = base.trim_start_matches("rtmp://");
        let (addr, app) = rest.split_once('/').expect("rtmp://host:port/app");
        let mut sock = TcpStream::connect(addr).await.expect("connect");
        sock.set_nodelay(true).ok();
        sock.write_all(&handshake::client_hello()).await.unwrap();
        let mut s0s1 = vec![0u8; 1537];
        sock.read_exact(&mut s0s1).await.unwrap();
        let mut s2 = vec![0u8; 1536];
        sock.read_exact(&mut s2).await.unwrap();
        sock.write_all(&handshake::client_ack(&s0s1).unwrap())
            .await
            .unwrap();
        let mut c = Conn {
            sock,
            reader: ChunkReader::new(Limits::default()),
            writer: ChunkWriter::new(128),
            buf: BytesMut::new(),
            out: BytesMut::new(),
        };
        c.writer.write(
            &mut c.out,
            2,
            msg_type::SET_CHUNK_SIZE,
            0,
            0,
            &4096u32.to_be_bytes(),
        );
        c.writer = ChunkWriter::new(4096);
        c.cmd(
            0,
            &[
                Amf0::str("connect"),
                Amf0::Number(1.0),
                Amf0::object([("app", Amf0::str(app)), ("tcUrl", Amf0::str(base))]),
            ],
        );
        c.flush().await;
        c.wait_for("_result").await;
        c.cmd(
            0,
            &[Amf0::str("createStream"), Amf0::Number(2.0), Amf0::Null],
        );
        c.flush().await;
        c.wait_for("_result").await;
        c
    }
    fn cmd(&mut self, sid: u32, v: &[Amf0]) {
        let p = amf0::encode_all(v);
        self.writer
            .write(&mut self.out, 3, msg_type::COMMAND_AMF0, sid, 0, &p);
    }
    async fn flush(&mut self) {
        let o = self.out.split();
        self.sock.write_all(&o).await.expect("write");
    }
    async fn wait_for(&mut self, name: &str) {
        loop {
            while let Some(m) = self.reader.read(&mut self.buf).expect("chunks") {
                if m.type_id == msg_type::SET_CHUNK_SIZE {
                    let n = u32::from_be_bytes([
                        m.payload[0],
                        m.payload[1],
                        m.payload[2],
                        m.payload[3],
                    ]);
                    self.reader.set_chunk_size(n).unwrap();
                }
                if m.type_id == msg_type::COMMAND_AMF0 {
                    let v = amf0::decode_all(&m.payload).unwrap_or_default();
                    if v.first().and_then(Amf0::as_str) == Some(name) {
                        return;
                    }
                    if let Some(code) = v.get(3).and_then(|o| o.get("code")).and_then(Amf0::as_str)
                        && code.contains("Start")
                        && name == "onStatus"
                    {
                        return;
                    }
                }
            }
            let n = self.sock.read_buf(&mut self.buf).await.expect("read");
            assert!(n > 0, "server closed while waiting for {name}");
        }
    }
}

async fn publisher(a: Arc<Args>, sent: Sent) {
    let flv = std::fs::read(&a.file).expect("--file clip.flv");
    let mut tags = Vec::new();
    let mut buf = BytesMut::from(&flv[..]);
    let mut r = FlvReader::new(16 << 20);
    while let Ok(Some(p)) = r.read(&mut buf) {
        tags.push(p);
    }
    let clip_ms = tags.iter().map(|p| p.timestamp).max().unwrap_or(0) + 40;
    let mut c = Conn::open(&a.rtmp).await;
    c.cmd(
        1,
        &[
            Amf0::str("publish"),
            Amf0::Number(3.0),
            Amf0::Null,
            Amf0::str(&format!("{}{}", a.stream, a.query)),
            Amf0::str("live"),
        ],
    );
    c.flush().await;
    c.wait_for("onStatus").await;
    let start = Instant::now();
    let mut lap = 0u32;
    loop {
        for p in &tags {
            if lap > 0 && p.is_config() {
                continue;
            }
            let ts = p.timestamp + lap * clip_ms;
            let due = start + Duration::from_millis(u64::from(ts));
            tokio::time::sleep_until(due.into()).await;
            let (csid, t) = match p.kind {
                Kind::Audio => (4, msg_type::AUDIO),
                Kind::Video => (6, msg_type::VIDEO),
                Kind::Meta => (5, msg_type::DATA_AMF0),
            };
            if p.kind == Kind::Meta {
                let mut body = amf0::encode_all(&[Amf0::str("@setDataFrame")]);
                body.extend_from_slice(&p.data);
                c.writer.write(&mut c.out, csid, t, 1, 0, &body);
            } else {
                c.writer.write(&mut c.out, csid, t, 1, ts, &p.data);
            }
            if p.kind == Kind::Video {
                let mut s = sent.lock().unwrap();
                s.insert(ts, Instant::now());
                if s.len() > 10_000 {
                    s.retain(|k, _| *k + 60_000 > ts);
                }
            }
            c.flush().await;
        }
        lap += 1;
    }
}

async fn rtmp_player(
    a: Arc<Args>,
    bytes: Arc<AtomicU64>,
    lat: Option<(Sent, Arc<Mutex<Vec<f64>>>)>,
) {
    let mut c = Conn::open(&a.rtmp).await;
    c.cmd(
        1,
        &[
            Amf0::str("play"),
            Amf0::Number(3.0),
            Amf0::Null,
            Amf0::str(&a.stream),
        ],
    );
    c.flush().await;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if let Some((sent, out)) = &lat {
            let n = c.sock.read_buf(&mut c.buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            bytes.fetch_add(n as u64, Ordering::Relaxed);
            while let Ok(Some(m)) = c.reader.read(&mut c.buf) {
                if m.type_id == msg_type::SET_CHUNK_SIZE {
                    let n = u32::from_be_bytes([
                        m.payload[0],
                        m.payload[1],
                        m.payload[2],
                        m.payload[3],
                    ]);
                    c.reader.set_chunk_size(n).unwrap();
                }
                if m.type_id == msg_type::VIDEO
                    && let Some(t0) = sent.lock().unwrap().get(&m.timestamp)
                {
                    out.lock()
                        .unwrap()
                        .push(t0.elapsed().as_secs_f64() * 1000.0);
                }
            }
        } else {
            let n = c.sock.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

async fn flv_player(
    a: Arc<Args>,
    bytes: Arc<AtomicU64>,
    lat: Option<(Sent, Arc<Mutex<Vec<f64>>>)>,
) {
    let base = a.http.clone().expect("--http for flv mode");
    let rest = base.trim_start_matches("http://");
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /{path}/{}.flv HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        a.stream
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut header_done = false;
    let mut reader = FlvReader::new(16 << 20);
    let mut body = BytesMut::new();
    loop {
        let n = sock.read_buf(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
        if !header_done {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let _ = buf.split_to(i + 4);
                header_done = true;
            } else {
                continue;
            }
        }
        match &lat {
            // The body comes with chunked transfer encoding.
            Some((sent, out)) => dechunk_and_measure(&mut buf, &mut body, &mut reader, sent, out),
            None => buf.clear(),
        }
    }
}

/// Decodes HTTP/1.1 chunked framing from `buf` into `body`, then FLV tags; records video
/// latency.
fn dechunk_and_measure(
    buf: &mut BytesMut,
    body: &mut BytesMut,
    reader: &mut FlvReader,
    sent: &Sent,
    out: &Mutex<Vec<f64>>,
) {
    while let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&buf[..i]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if buf.len() < i + 2 + size + 2 {
            break;
        }
        let _ = buf.split_to(i + 2);
        let data = buf.split_to(size);
        let _ = buf.split_to(2);
        body.extend_from_slice(&data);
    }
    while let Ok(Some(p)) = reader.read(body) {
        if p.kind == Kind::Video
            && let Some(t0) = sent.lock().unwrap().get(&p.timestamp)
        {
            out.lock()
                .unwrap()
                .push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p) as usize]
}

#[tokio::main]
async fn main() {
    let a = Arc::new(args());
    let sent: Sent = Arc::new(Mutex::new(HashMap::new()));
    tokio::spawn(publisher(a.clone(), sent.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bytes = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    for i in 0..a.players {
        let l = (i == 0).then(|| (sent.clone(), lat.clone()));
        if a.mode == "flv" {
            tokio::spawn(flv_player(a.clone(), bytes.clone(), l));
        } else {
            tokio::spawn(rtmp_player(a.clone(), bytes.clone(), l));
        }
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (c0, b0, t0) = (
        cpu_ticks(a.pid),
        bytes.load(Ordering::Relaxed),
        Instant::now(),
    );
    lat.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_secs(a.secs)).await;
    let (c1, b1, el) = (
        cpu_ticks(a.pid),
        bytes.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let ticks_per_sec = 100.0;
    let cpu = (c1 - c0) as f64 / ticks_per_sec / el; // cores
    let mbps = (b1 - b0) as f64 * 8.0 / 1e6 / el;
    let mut l = lat.lock().unwrap().clone();
    println!(
        "mode={} players={} server_cpu_pct={:.1} cpu_pct_per_player={:.3} players_per_core={:.0} recv_mbps_total={:.1} recv_mbps_per_player={:.3} latency_ms_p50={:.0} latency_ms_p95={:.0} rss_mib={:.1}",
        a.mode,
        a.players,
        cpu * 100.0,
        cpu * 100.0 / a.players as f64,
        if cpu > 0.0 {
            a.players as f64 / cpu
        } else {
            f64::INFINITY
        },
        mbps,
        mbps / a.players as f64,
        pct(&mut l, 0.5),
        pct(&mut l, 0.95),
        rss_kib(a.pid) as f64 / 1024.0,
    );
    std::process::exit(0);
}
