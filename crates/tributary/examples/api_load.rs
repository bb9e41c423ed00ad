//! Load generator for the ZEGO dialect: signed requests (a fresh nonce each, as the replay
//! guard demands) from N concurrent keep-alive connections for a fixed time; prints
//! requests/s and latency percentiles. Used by `bench/api.sh`; not a test.
//!
//! `api_load BASE APPID SECRET read|write CONCURRENCY SECONDS`
//! - read: DescribeSimpleStreamList of a room holding 10 streams;
//! - write: AddStream then DeleteStream of a fresh stream (each a durable write).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};

struct Target {
    base: String,
    app: u32,
    secret: String,
}

impl Target {
    fn url(&self, action: &str, params: &str) -> String {
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let sig = hex::encode(Md5::digest(
            format!("{}{nonce}{}{ts}", self.app, self.secret).as_bytes(),
        ));
        format!(
            "{}/?Action={action}&{params}&AppId={}&SignatureNonce={nonce}&Timestamp={ts}&Signature={sig}&SignatureVersion=2.0",
            self.base, self.app
        )
    }
}

async fn call(client: &reqwest::Client, url: &str, bad: &AtomicU64) -> Duration {
    let t = Instant::now();
    match client.get(url).send().await {
        Ok(r) => match r.bytes().await {
            Ok(b) if b.starts_with(b"{\"Code\":0,") => {}
            _ => {
                bad.fetch_add(1, Ordering::Relaxed);
            }
        },
        Err(_) => {
            bad.fetch_add(1, Ordering::Relaxed);
        }
    }
    t.elapsed()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        eprintln!("usage: api_load BASE APPID SECRET read|write CONCURRENCY SECONDS");
        std::process::exit(2);
    }
    let target = Arc::new(Target {
        base: a[1].clone(),
        app: a[2].parse().unwrap_or(0),
        secret: a[3].clone(),
    });
    let write = a[4] == "write";
    let conc: usize = a[5].parse().unwrap_or(16);
    let secs: u64 = a[6].parse().unwrap_or(10);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap_or_default();
    let bad = Arc::new(AtomicU64::new(0));

    if !write {
        for i in 0..10 {
            let url = target.url(
                "AddStream",
                &format!("RoomId=bench&UserId=admin&StreamId=b{i}"),
            );
            call(&client, &url, &bad).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..conc {
        let (client, target, bad) = (client.clone(), target.clone(), bad.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut n = 0u64;
            while Instant::now() < deadline {
                if write {
                    let params = format!("RoomId=w{w}&UserId=admin&StreamId=w{w}-{n}");
                    lat.push(call(&client, &target.url("AddStream", &params), &bad).await);
                    lat.push(call(&client, &target.url("DeleteStream", &params), &bad).await);
                } else {
                    lat.push(
                        call(
                            &client,
                            &target.url("DescribeSimpleStreamList", "RoomId=bench"),
                            &bad,
                        )
                        .await,
                    );
                }
                n += 1;
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            all.extend(l);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "mode={} concurrency={conc} requests={} errors={} req_per_s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        a[4],
        all.len(),
        bad.load(Ordering::Relaxed),
        all.len() as f64 / elapsed,
        pct(&all, 0.50),
        pct(&all, 0.99),
        pct(&all, 1.0),
    );
}
