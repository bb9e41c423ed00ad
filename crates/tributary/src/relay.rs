//! Streams held by another node, played or mixed here (edge/origin, as SRS does): on a
//! shared store each node records the streams it publishes (its publishers and its mix
//! outputs) in `live_streams`; a player or mix input here asking for a stream that is
//! live only elsewhere makes this node read it once from its origin over HTTP-FLV, with
//! a relay credential (HMAC under the cluster key, one stream, two minutes to connect),
//! and publish the copy into its own hub, where any number of local readers share it.
//!
//! HTTP-FLV rather than an RTMP pull: it carries the same tags, every node serves it
//! already, and the FLV reader has its tag-size limit. A copy is never recorded as
//! published here, so nodes never relay a relay. It ends when its origin ends it, when
//! the origin goes silent for [`READ_TIMEOUT`], or when nobody here has read it for
//! [`IDLE`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};

use tributary_api::clock::now_ms;
use tributary_api::cluster::ClusterKey;
use tributary_core::AppId;
use tributary_core::store::{NodeInfo, Store};
use tributary_live::Hub;
use tributary_live::flv::FlvReader;
use tributary_live::hub::{HubEvent, Origins};

/// A copy nobody here reads is dropped after this.
const IDLE: Duration = Duration::from_secs(10);
/// An origin that sends nothing for this long is given up.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A stream found on no other node is not looked up again for this long.
const MISS_TTL: Duration = Duration::from_secs(1);
/// Largest FLV tag taken from an origin.
const MAX_TAG: usize = 16 << 20;
/// Stream names remembered at once (players choose the names they ask for: past this,
/// the expired misses are forgotten, and a new name is not looked up until there is room).
const MAX_WANTS: usize = 10_000;

enum Want {
    Pulling,
    Missing(Instant),
}

/// This node's relays of streams other nodes publish.
pub struct Relays {
    me: Weak<Relays>,
    store: Arc<dyn Store>,
    hub: Hub,
    key: ClusterKey,
    rt: tokio::runtime::Handle,
    client: reqwest::Client,
    wants: Mutex<HashMap<String, Want>>,
}

fn split(key: &str) -> Option<(AppId, &str)> {
    let (app, stream) = key.split_once('/')?;
    Some((app.parse().ok()?, stream))
}

impl Relays {
    pub fn new(
        store: Arc<dyn Store>,
        hub: Hub,
        key: ClusterKey,
        rt: tokio::runtime::Handle,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Arc::new_cyclic(|me| Relays {
            me: me.clone(),
            store,
            hub,
            key,
            rt,
            client,
            wants: Mutex::new(HashMap::new()),
        }))
    }

    fn wants(&self) -> std::sync::MutexGuard<'_, HashMap<String, Want>> {
        self.wants.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn origins(&self, key: &str) -> Vec<NodeInfo> {
        let Some((app, stream)) = split(key) else {
            return Vec::new();
        };
        self.store
            .stream_origins(app, stream, now_ms())
            .unwrap_or_else(|e| {
                warn!(stream = %key, error = %e, "stream origins not looked up");
                Vec::new()
            })
    }

    /// Reads `key` from the node that publishes it into this hub, until it ends.
    async fn pull(self: Arc<Self>, key: String) {
        let found = {
            let me = self.clone();
            let k = key.clone();
            tokio::task::spawn_blocking(move || me.origins(&k))
                .await
                .unwrap_or_default()
        };
        let outcome = match found.first() {
            Some(origin) => self.copy(&key, origin).await,
            None => Err("published on no other node".to_string()),
        };
        let mut wants = self.wants();
        match outcome {
            Ok(()) => {
                wants.remove(&key);
            }
            Err(why) => {
                debug!(stream = %key, why, "stream not relayed");
                wants.insert(key, Want::Missing(Instant::now()));
            }
        }
    }

    async fn copy(&self, key: &str, origin: &NodeInfo) -> Result<(), String> {
        let (app, stream) = split(key).ok_or("not a stream key")?;
        let token = self.key.relay_token(app, stream, now_ms() / 1000);
        let name: String = form_urlencoded::byte_serialize(stream.as_bytes()).collect();
        let url = format!("http://{}/{app}/{name}.flv?relay={token}", origin.http);
        let mut resp = self
            .client
            .get(&url)
            .send()
            .await
            // Without the URL: it carries the relay credential.
            .map_err(|e| e.without_url().to_string())?;
        if !resp.status().is_success() {
            return Err(format!(
                "origin {} answered {}",
                origin.node_id,
                resp.status()
            ));
        }
        // A publisher here came first: it wins, as a second publisher would be refused.
        let publisher = self
            .hub
            .publish_relay(key, now_ms())
            .map_err(|e| e.to_string())?;
        info!(stream = %key, origin = %origin.node_id, "relaying a stream from its origin node");
        let mut reader = FlvReader::new(MAX_TAG);
        let mut buf = BytesMut::new();
        let mut read_since = Instant::now();
        let why = loop {
            let chunk = match tokio::time::timeout(READ_TIMEOUT, resp.chunk()).await {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => break "the origin ended it".to_string(),
                Ok(Err(e)) => break e.without_url().to_string(),
                Err(_) => break "the origin went silent".to_string(),
            };
            buf.extend_from_slice(&chunk);
            loop {
                match reader.read(&mut buf) {
                    Ok(Some(p)) => publisher.send(p),
                    Ok(None) => break,
                    Err(e) => return Err(format!("bad FLV from the origin: {e}")),
                }
            }
            if publisher.stream().subscriber_count() > 0 {
                read_since = Instant::now();
            } else if read_since.elapsed() >= IDLE {
                break "nobody here reads it".to_string();
            }
        };
        info!(stream = %key, origin = %origin.node_id, why, "relay ended");
        Ok(())
    }
}

impl Origins for Relays {
    fn want(&self, key: &str) {
        {
            let mut wants = self.wants();
            match wants.get(key) {
                Some(Want::Pulling) => return,
                Some(Want::Missing(at)) if at.elapsed() < MISS_TTL => return,
                _ => {}
            }
            if wants.len() >= MAX_WANTS {
                wants.retain(|_, w| !matches!(w, Want::Missing(at) if at.elapsed() >= MISS_TTL));
                if wants.len() >= MAX_WANTS {
                    debug!(stream = %key, "too many streams asked for at once; not relayed");
                    return;
                }
            }
            wants.insert(key.to_string(), Want::Pulling);
        }
        if let Some(me) = self.me.upgrade() {
            self.rt.spawn(me.pull(key.to_string()));
        }
    }

    fn elsewhere(&self, key: &str) -> bool {
        !self.origins(key).is_empty()
    }
}

/// Keeps `live_streams` true for this node: what its hub publishes (relayed copies
/// aside) is recorded as published here, and forgotten when it ends. Rows a crash left
/// behind are cleared first; a missed event re-records everything.
pub async fn record_streams(store: Arc<dyn Store>, hub: Hub) {
    let mut events = hub.events();
    let mut recorded: HashSet<String> = HashSet::new();
    let s = store.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.clear_live_streams()).await {
        warn!(error = %e, "live streams of an earlier run not cleared");
    }
    let put = |key: String, live: bool| {
        let s = store.clone();
        async move {
            let Some((app, stream)) = split(&key) else {
                return;
            };
            let stream = stream.to_string();
            let r = tokio::task::spawn_blocking(move || {
                s.put_live_stream(app, &stream, live, now_ms())
            });
            if let Ok(Err(e)) = r.await {
                warn!(stream = %key, live, error = %e, "live stream not recorded");
            }
        }
    };
    let local = |k: &str| hub.stream(k).is_some_and(|s| !s.is_relay());
    for k in hub.keys() {
        if local(&k) {
            recorded.insert(k.clone());
            put(k, true).await;
        }
    }
    loop {
        match events.recv().await {
            Ok(HubEvent::Published(k)) => {
                if local(&k) {
                    recorded.insert(k.clone());
                    put(k, true).await;
                }
            }
            Ok(HubEvent::Unpublished(k)) => {
                if recorded.remove(&k) {
                    put(k, false).await;
                }
            }
            Err(RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "stream events missed; recording every live stream again"
                );
                let now: HashSet<String> = hub.keys().into_iter().filter(|k| local(k)).collect();
                for gone in recorded.difference(&now).cloned().collect::<Vec<_>>() {
                    put(gone, false).await;
                }
                for k in &now {
                    put(k.clone(), true).await;
                }
                recorded = now;
            }
            Err(RecvError::Closed) => return,
        }
    }
}
