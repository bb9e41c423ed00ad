//! The HTTP listener, with a limit and a deadline on everything a client controls.
//!
//! `axum::serve` has no knobs for these, so connections are served here with hyper's
//! HTTP/1 builder:
//! - a cap on open connections (past it, new ones are closed at once, not queued), and
//!   one per client IP address (NATs share addresses: keep it generous);
//! - a header-read deadline (slowloris: a client that never finishes its request head,
//!   or idles on a kept-alive connection, is dropped);
//! - a write deadline on the socket: a player of an HTTP-FLV or SSE stream that stops
//!   reading is dropped instead of pinning its connection and buffers forever;
//! - a request-body deadline (the API's bodies are small; a trickled one is cut off);
//! - a bounded request head (header bytes).
//!
//! Shutdown stops accepting, asks every connection to finish its current response, and
//! gives long-lived ones (FLV, SSE) a few seconds before they are dropped.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_io_timeout::TimeoutStream;
use tower_http::timeout::RequestBodyTimeout;
use tracing::{debug, warn};
use tributary_live::slots::KeyedSlots;

#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one IP address at most.
    pub max_connections_per_ip: usize,
    /// A request head must arrive within this (also the keep-alive idle limit).
    pub header_timeout: Duration,
    /// A request body must arrive within this.
    pub body_timeout: Duration,
    /// A write the client does not take within this drops the connection.
    pub write_timeout: Duration,
    /// Largest request head buffered (bytes).
    pub max_head_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 4096,
            max_connections_per_ip: 1000,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_head_bytes: 64 << 10,
        }
    }
}

/// How long connections may take to finish after shutdown is asked.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = KeyedSlots::new(limits.max_connections_per_ip);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (sock, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "HTTP connection refused: at the connection cap");
            drop(sock);
            continue;
        };
        let Some(ip_slot) = per_ip.take(peer.ip()) else {
            debug!(%peer, "HTTP connection refused: at the cap for its address");
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let mut stream = TimeoutStream::new(sock);
        stream.set_write_timeout(Some(limits.write_timeout));
        let io = TokioIo::new(Box::pin(stream));
        // Handlers that limit per address (WHIP/WHEP) read the peer as axum's ConnectInfo.
        let routed = router
            .clone()
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let service =
            TowerToHyperService::new(RequestBodyTimeout::new(routed, limits.body_timeout));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_head_bytes.max(8192));
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ip_slot = ip_slot;
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                }
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn.as_mut()).await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    // Every connection gives its slot back when it is done (or dropped after DRAIN).
    let all = limits.max_connections as u32;
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), slots.acquire_many(all)).await;
}
