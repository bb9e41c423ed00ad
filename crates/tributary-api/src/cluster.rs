//! Calls between the nodes that share a store: a mix task's calls answered by the node
//! that runs it, and the credentials one node shows another.
//!
//! Any node takes any API call. A call about a mix task (start, update, stop, describe)
//! is authenticated, replay-checked and rate-limited where it arrives, then — when the
//! task runs on another node, or placement picks another node for a new one — sent on
//! to that node as it came (same method, query, headers and body, so the vendor's
//! signature still verifies there), with [`FORWARDED`]: the receiving node checks that
//! MAC instead of claiming the nonce a second time, and never forwards again. Its
//! answer goes back to the caller byte for byte. One node thus holds each task's
//! Sequence guard and sends its callbacks, as with a single node.
//!
//! Both credentials are HMAC-SHA256 under the cluster key, a random secret the first
//! node stores (`settings.cluster_key`) and every node reads from the shared store.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::warn;
use tributary_core::AppId;
use tributary_core::mix::MixSpec;

/// The header a forwarded call carries: `NODE TIMESTAMP_MS MAC`.
pub const FORWARDED: &str = "x-tributary-forwarded";
/// How far a forwarded call's timestamp may be from the receiver's clock.
const FORWARD_SKEW_MS: u64 = 30_000;
/// How long a relay credential lasts (a relay opens its connection at once).
const RELAY_TOKEN_S: u64 = 120;
/// The largest answer taken back from another node (the API's answers are small).
const ANSWER_LIMIT: usize = 4 << 20;
/// A node that does not answer a forwarded call within this fails it.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// The secret the nodes of one store share.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(…)")
    }
}

impl ClusterKey {
    /// A fresh key, as hex (what the store keeps).
    pub fn generate_hex() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s.trim()).ok()?;
        Some(ClusterKey(bytes.try_into().ok()?))
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new(); // unreachable: HMAC takes any key length
        };
        for p in parts {
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        hex::encode(m.finalize().into_bytes())
    }

    fn same(a: &str, b: &str) -> bool {
        a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    }

    /// What a node shows the origin of a stream to read it (`?relay=`): `EXPIRY.MAC`.
    pub fn relay_token(&self, app_id: AppId, stream_id: &str, now_s: u64) -> String {
        let until = (now_s + RELAY_TOKEN_S).to_string();
        let app = app_id.to_string();
        let mac = self.mac(&[
            b"relay",
            app.as_bytes(),
            stream_id.as_bytes(),
            until.as_bytes(),
        ]);
        format!("{until}.{mac}")
    }

    /// Whether `token` lets another node read that stream now.
    pub fn relay_allowed(&self, app_id: AppId, stream_id: &str, token: &str, now_s: u64) -> bool {
        let Some((until, mac)) = token.split_once('.') else {
            return false;
        };
        let Ok(until_s) = until.parse::<u64>() else {
            return false;
        };
        if until_s < now_s || until_s > now_s + RELAY_TOKEN_S {
            return false;
        }
        let app = app_id.to_string();
        let expected = self.mac(&[
            b"relay",
            app.as_bytes(),
            stream_id.as_bytes(),
            until.as_bytes(),
        ]);
        Self::same(&expected, mac)
    }

    fn forward_mac(&self, node: &str, at_ms: &str, req: &Forward) -> String {
        let body = hex::encode(Sha256::digest(&req.body));
        self.mac(&[
            b"forward",
            node.as_bytes(),
            at_ms.as_bytes(),
            req.method.as_str().as_bytes(),
            req.raw_query.as_bytes(),
            body.as_bytes(),
        ])
    }

    /// The [`FORWARDED`] header for a call `node` sends on.
    pub fn forward_header(&self, node: &str, req: &Forward, now_ms: u64) -> String {
        let at = now_ms.to_string();
        format!("{node} {at} {}", self.forward_mac(node, &at, req))
    }

    /// The sending node, when `header` is a valid [`FORWARDED`] value for this call.
    pub fn forwarded_by(&self, header: &str, req: &Forward, now_ms: u64) -> Option<String> {
        let mut parts = header.split(' ');
        let (node, at, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let at_ms: u64 = at.parse().ok()?;
        if at_ms.abs_diff(now_ms) > FORWARD_SKEW_MS {
            return None;
        }
        Self::same(&self.forward_mac(node, at, req), mac).then(|| node.to_string())
    }
}

/// A call as it arrived, to send on unchanged.
#[derive(Debug, Clone)]
pub struct Forward {
    pub method: Method,
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Another node: its id and API address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node: String,
    pub http: String,
}

/// How a call came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// From a client: checked in full, and sent on if its task belongs elsewhere.
    Client,
    /// From another node that checked it already: answered here.
    Node,
}

/// How a call came in: from a client, or sent on by another node (its [`FORWARDED`]
/// header checked; a wrong one, or one on a node outside any cluster, is refused).
pub fn via(
    cluster: Option<&Cluster>,
    headers: &HeaderMap,
    method: &Method,
    raw_query: &str,
    body: Option<&Bytes>,
    now_ms: u64,
) -> Result<Via, Box<Response>> {
    let Some(h) = headers.get(FORWARDED) else {
        return Ok(Via::Client);
    };
    let refuse = || Box::new((StatusCode::FORBIDDEN, "bad forwarded call\n").into_response());
    let (Some(cluster), Ok(h), Some(body)) = (cluster, h.to_str(), body) else {
        return Err(refuse());
    };
    let req = Forward {
        method: method.clone(),
        raw_query: raw_query.to_string(),
        headers: HeaderMap::new(),
        body: body.clone(),
    };
    match cluster.key.forwarded_by(h, &req, now_ms) {
        Some(_) => Ok(Via::Node),
        None => Err(refuse()),
    }
}

/// Where mix tasks run, as the shared store says (lookups: blocking).
pub trait Placement: Send + Sync + 'static {
    /// The node that runs a stored task, when that is another live node.
    fn owner(&self, app_id: AppId, task_id: &str) -> Option<Peer>;
    /// Where a new task should run, when not here: among the live nodes that are not
    /// draining and whose free budget fits the task's cost, the one that publishes the
    /// most of its input streams, then the one with the most budget free.
    fn place(&self, app_id: AppId, task_id: &str, spec: &MixSpec) -> Option<Peer>;
    /// Another node that publishes the stream, when this one does not.
    fn origin(&self, app_id: AppId, stream_id: &str) -> Option<Peer>;
    /// Every other live node.
    fn peers(&self) -> Vec<Peer>;
}

/// This node's part in a cluster, as the dialects see it.
pub struct Cluster {
    pub node: String,
    pub key: ClusterKey,
    pub placement: Box<dyn Placement>,
    client: reqwest::Client,
}

impl Cluster {
    pub fn new(
        node: String,
        key: ClusterKey,
        placement: Box<dyn Placement>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(FORWARD_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Cluster {
            node,
            key,
            placement,
            client,
        })
    }

    /// Sends `req` to every other live node at once; each one's answer body as JSON
    /// (`None`: no answer, or not JSON), by node.
    pub async fn broadcast(
        self: &Arc<Self>,
        req: Forward,
        now_ms: u64,
    ) -> Vec<(String, Option<Value>)> {
        let me = self.clone();
        let peers = tokio::task::spawn_blocking(move || me.placement.peers())
            .await
            .unwrap_or_default();
        let mut calls = tokio::task::JoinSet::new();
        for peer in peers.into_iter().filter(|p| p.node != self.node) {
            let (me, req) = (self.clone(), req.clone());
            calls.spawn(async move {
                let answer = me.forward(&peer, req, now_ms).await;
                let body = axum::body::to_bytes(answer.into_body(), ANSWER_LIMIT).await;
                let json = body
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
                (peer.node, json)
            });
        }
        let mut out = Vec::new();
        while let Some(done) = calls.join_next().await {
            if let Ok(answer) = done {
                out.push(answer);
            }
        }
        out
    }

    /// Sends `req` to `peer` and returns its answer as it is; a node that cannot be
    /// reached gives 502 (the caller retries, as after any network error).
    pub async fn forward(&self, peer: &Peer, req: Forward, now_ms: u64) -> Response {
        let url = format!("http://{}/?{}", peer.http, req.raw_query);
        let mut headers = req.headers.clone();
        for h in [
            "content-length",
            "transfer-encoding",
            "connection",
            FORWARDED,
        ] {
            headers.remove(h);
        }
        if let Ok(v) = HeaderValue::from_str(&self.key.forward_header(&self.node, &req, now_ms)) {
            headers.insert(FORWARDED, v);
        }
        let sent = self
            .client
            .request(req.method.clone(), &url)
            .headers(headers)
            .body(req.body.clone())
            .send()
            .await;
        // Errors are told without the URL: its query is the caller's signed request.
        let failed = |e: String| {
            warn!(peer = %peer.node, error = %e, "a call for another node could not be forwarded");
            (
                StatusCode::BAD_GATEWAY,
                format!("node {} did not answer: {e}\n", peer.node),
            )
                .into_response()
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return failed(e.without_url().to_string()),
        };
        let status = resp.status();
        let content_type = resp.headers().get("content-type").cloned();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if body.len() + c.len() > ANSWER_LIMIT {
                        return failed("answer too large".into());
                    }
                    body.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => return failed(e.without_url().to_string()),
            }
        }
        let mut out = (status, body).into_response();
        if let Some(ct) = content_type {
            out.headers_mut().insert("content-type", ct);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> Forward {
        Forward {
            method: Method::POST,
            raw_query: "Action=StartMix&AppId=1".into(),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn a_forwarded_call_is_bound_to_its_bytes_time_and_key() {
        let key = ClusterKey::from_hex(&ClusterKey::generate_hex()).unwrap();
        let h = key.forward_header("node-a", &req("{}"), 1_000_000);
        assert_eq!(
            key.forwarded_by(&h, &req("{}"), 1_010_000).as_deref(),
            Some("node-a")
        );
        // Another body, query or method; too old; another key; a renamed sender.
        assert!(key.forwarded_by(&h, &req("{ }"), 1_000_000).is_none());
        let mut other = req("{}");
        other.raw_query.push('x');
        assert!(key.forwarded_by(&h, &other, 1_000_000).is_none());
        other = req("{}");
        other.method = Method::GET;
        assert!(key.forwarded_by(&h, &other, 1_000_000).is_none());
        assert!(key.forwarded_by(&h, &req("{}"), 1_031_000).is_none());
        let stranger = ClusterKey::from_hex(&ClusterKey::generate_hex()).unwrap();
        assert!(stranger.forwarded_by(&h, &req("{}"), 1_000_000).is_none());
        let renamed = h.replacen("node-a", "node-b", 1);
        assert!(key.forwarded_by(&renamed, &req("{}"), 1_000_000).is_none());
        for junk in ["", "a", "a 1", "a 1 x y", "a x 00"] {
            assert!(key.forwarded_by(junk, &req("{}"), 1).is_none(), "{junk}");
        }
    }

    #[test]
    fn a_relay_token_opens_one_stream_for_a_while() {
        let key = ClusterKey::from_hex(&ClusterKey::generate_hex()).unwrap();
        let t = key.relay_token(7, "cam", 1000);
        assert!(key.relay_allowed(7, "cam", &t, 1000));
        assert!(key.relay_allowed(7, "cam", &t, 1000 + RELAY_TOKEN_S));
        assert!(!key.relay_allowed(7, "cam", &t, 1001 + RELAY_TOKEN_S));
        assert!(!key.relay_allowed(7, "cam2", &t, 1000));
        assert!(!key.relay_allowed(8, "cam", &t, 1000));
        // An expiry pushed further out breaks the MAC; one far out is refused outright.
        let (_, mac) = t.split_once('.').unwrap();
        assert!(!key.relay_allowed(
            7,
            "cam",
            &format!("{}.{mac}", 1000 + RELAY_TOKEN_S + 1),
            1000
        ));
        assert!(!key.relay_allowed(7, "cam", "99999999999.00", 1000));
        for junk in ["", ".", "x.y", "1000"] {
            assert!(!key.relay_allowed(7, "cam", junk, 1000), "{junk}");
        }
        assert!(ClusterKey::from_hex("abc").is_none());
    }
}
