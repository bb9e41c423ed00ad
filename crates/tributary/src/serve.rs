//! `tributary serve`: wires the store, the control plane, the dialects and the callback
//! outbox, and runs until SIGINT/SIGTERM.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tributary_api::callbacks::outbox::{Outbox, OutboxConfig};
use tributary_api::clock::now_ms;
use tributary_api::cluster::{Cluster, ClusterKey};
use tributary_api::zego::ZegoApi;
use tributary_api::{ControlPlane, PlayUrls};
use tributary_core::url_policy::{Purpose, redact};
use tributary_core::{AppConfig, CoreEvent};
use tributary_live::auth::stream_key;
use tributary_live::hls::{Hls, HlsConfig};
use tributary_live::hls_audience::HlsAudience;
use tributary_live::http::LiveHttp;
use tributary_live::push::{self, PushConfig, Target};
use tributary_live::rtmp_server::{RtmpConfig, RtmpServer};
use tributary_live::{Hub, HubConfig, LiveMetrics};
use tributary_mixer::bridge::{OpusBridges, TwinContext, start_twin, twin_vp8_streams};
use tributary_rtc::{RtcConfig, RtcServer};

use crate::config::Config;
use crate::failover;
use crate::live_auth::LiveAuth;
use crate::node;
use crate::placement;
use crate::relay::{self, Relays};
use crate::sign::signed_url;
use crate::store_watch;
use crate::stores;
use crate::viewers::Viewers;
use crate::{admin, apps, drain};
use crate::{admin_api, console, console_api, health};
use crate::{events, http_server, memory, metrics_route, mix_engine};
use crate::{whep, whip};
use tributary_api::mixing::MixControl;
use tributary_api::tencent::handler::TencentApi;
use tributary_mixer::{Engine, EngineConfig, MixMetrics};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub async fn run(cfg: Config) -> Result<(), BoxError> {
    let store = stores::open(&cfg)?;
    let (admin_token, admin_generated) =
        admin::resolve(cfg.admin_token.as_deref(), store.as_ref())?;
    let mut resolved = apps::resolve(&cfg, store.as_ref(), true)?;
    for (app_id, cred) in &cfg.tencent_credentials {
        let Some(app) = resolved.apps.iter_mut().find(|a| a.app_id == *app_id) else {
            return Err(format!(
                "--tencent-credential names app {app_id}, which is not declared (--app or the config file)"
            )
            .into());
        };
        app.tencent_credentials.push(cred.clone());
    }

    let listener = TcpListener::bind(cfg.http)
        .await
        .map_err(|e| format!("binding the HTTP address {}: {e}", cfg.http))?;
    let http_addr = listener.local_addr()?;
    let rtmp_listener = TcpListener::bind(cfg.rtmp)
        .await
        .map_err(|e| format!("binding the RTMP address {}: {e}", cfg.rtmp))?;
    let rtmp_addr = rtmp_listener.local_addr()?;
    // Named by the ports actually bound, so nodes on one host (ephemeral ports included)
    // differ.
    let node_id = cfg
        .node_id
        .clone()
        .unwrap_or_else(|| node::default_id(&node::hostname(), http_addr.port(), rtmp_addr.port()));
    store.set_node(&node_id);
    let http_base = cfg
        .public_http_url
        .clone()
        .unwrap_or_else(|| format!("http://{http_addr}"));
    let play_urls = PlayUrls {
        rtmp_base: cfg
            .public_rtmp_url
            .clone()
            .unwrap_or_else(|| format!("rtmp://{rtmp_addr}")),
        http_base: http_base.clone(),
    };

    let control = Arc::new(ControlPlane::load(
        resolved.apps.clone(),
        store.clone(),
        play_urls,
    )?);
    // The live plane.
    let live_stop = CancellationToken::new();
    let metrics = Arc::new(LiveMetrics::default());
    let hub = Hub::new(HubConfig::default(), metrics.clone());

    // The mixing engine, and the tasks that were running before a restart.
    let mix_metrics = Arc::new(MixMetrics::default());
    let mut engine_config = EngineConfig {
        images_dir: Some(cfg.images_dir.clone()),
        preset: cfg.x264_preset.clone(),
        idle_cap_s: cfg.idle_cap_s,
        url_policy: cfg.url_policy.clone(),
        self_urls: self_urls(&cfg, rtmp_addr, http_addr),
        ..EngineConfig::default()
    };
    engine_config.timeline.buffer_ms = cfg.input_buffer_ms;
    if let Some(b) = cfg.mix_budget {
        engine_config.budget_pixels_per_s = b;
    }
    if let Some(b) = cfg.image_memory_bytes {
        engine_config.image_memory_budget = b;
    }
    for (i, f) in cfg.fonts.iter().enumerate() {
        if let Some(face) = engine_config.fonts.get_mut(i) {
            *face = tributary_mixer::fonts::parse_face(f);
        }
    }
    let (engine, engine_events) = Engine::new(
        hub.clone(),
        tokio::runtime::Handle::current(),
        engine_config,
        mix_metrics.clone(),
    );
    let mixing = Arc::new(MixControl::load(
        control.clone(),
        Arc::new(mix_engine::EngineAdapter(engine.clone())),
    )?);
    // Several nodes on one store: streams relayed between them, mix calls answered by
    // the node of their task, new tasks placed by cost.
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let relay_key = if store.shared() {
        let s = store.clone();
        let hex = tokio::task::spawn_blocking(move || {
            s.put_setting_if_absent("cluster_key", &ClusterKey::generate_hex())
        })
        .await??;
        let key =
            ClusterKey::from_hex(&hex).ok_or("the stored cluster_key is not 32 bytes of hex")?;
        let placement = placement::StorePlacement {
            store: store.clone(),
            engine: engine.clone(),
            hub: hub.clone(),
            me: node_id.clone(),
            draining: draining.clone(),
            recent: Default::default(),
            peers: Default::default(),
        };
        mixing.set_cluster(Arc::new(Cluster::new(
            node_id.clone(),
            key.clone(),
            Box::new(placement),
        )?));
        let relays = Relays::new(
            store.clone(),
            hub.clone(),
            key.clone(),
            tokio::runtime::Handle::current(),
        )?;
        hub.set_origins(relays);
        tokio::spawn(relay::record_streams(store.clone(), hub.clone()));
        Some(key)
    } else {
        None
    };
    {
        // In the background: a slow image host must not keep the listeners closed.
        let m = mixing.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            m.resume_all();
            info!(
                took_ms = started.elapsed().as_millis() as u64,
                "stored mix tasks resumed"
            );
        });
    }
    if store.shared() {
        tokio::spawn(failover::adopt_orphans(
            store.clone(),
            mixing.clone(),
            node_id.clone(),
            draining.clone(),
        ));
    } else {
        tokio::spawn(failover::retry_not_started(mixing.clone()));
    }
    tokio::spawn(mixing.clone().follow_rooms());
    tokio::spawn(mix_engine::follow_idle(mixing.clone(), engine_events));
    tokio::spawn(memory::trim_after_churn(
        engine.clone(),
        std::time::Duration::from_secs(20),
    ));
    let api = ZegoApi::new(control.clone(), Some(mixing.clone()), cfg.rate_limits_off);
    let tencent = TencentApi::new(
        control.clone(),
        Some(mixing.clone()),
        cfg.tencent_service.clone(),
        Some(api.gateway()),
    )?;
    if let Some(addr) = cfg.tencent_http {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("binding the Tencent address {addr}: {e}"))?;
        info!(addr = %l.local_addr()?, "Tencent API 3.0 dialect also served alone");
        let router = tributary_api::front::tencent_router(tencent.clone());
        let limits = cfg.http_limits.clone();
        tokio::spawn(async move {
            http_server::serve(l, router, limits, std::future::pending()).await;
        });
    }
    let viewers = Viewers::new(control.clone());
    let auth = Arc::new(LiveAuth {
        control: control.clone(),
        viewers: viewers.clone(),
        open_publish: cfg.open_publish,
        play_token: cfg.play_token,
        relay_key,
    });
    let rtmp = RtmpServer::new(hub.clone(), auth.clone(), {
        let d = RtmpConfig::default();
        RtmpConfig {
            first_packet_timeout: cfg.first_packet_timeout,
            idle_timeout: cfg.idle_timeout,
            write_timeout: cfg.http_limits.write_timeout,
            write_coalesce: cfg.player_write_coalesce,
            max_connections_per_ip: cfg
                .rtmp_connections_per_ip
                .unwrap_or(d.max_connections_per_ip),
            ..d
        }
    });
    let hls = Hls::new(HlsConfig {
        segment: cfg.hls_segment,
        window: cfg.hls_window,
        ..HlsConfig::default()
    });
    tokio::spawn(hls.clone().run(hub.clone()));
    // An HLS member that fetched no playlist for a whole window has gone (heartbeat).
    let audience = Arc::new(HlsAudience::new(
        (cfg.hls_segment * cfg.hls_window as u32).max(Duration::from_secs(6)),
    ));
    tokio::spawn(audience.clone().run());
    let rtmp_task = tokio::spawn(rtmp.clone().serve(rtmp_listener, live_stop.clone()));
    // A twin that starts transcoding VP8 asks the source for a key frame: a WHIP
    // publisher (the RTC server, made just below) or a mix output's encoder.
    let rtc_cell: Arc<std::sync::OnceLock<std::sync::Weak<RtcServer>>> = Arc::default();
    let twin_cx = TwinContext {
        hls: hls.clone(),
        key_frame: {
            let (cell, engine) = (rtc_cell.clone(), engine.clone());
            Arc::new(move |key: &str| {
                let asked = cell
                    .get()
                    .and_then(std::sync::Weak::upgrade)
                    .is_some_and(|rtc| rtc.request_key_frame(key));
                if !asked {
                    engine.request_key_frame(key);
                }
            })
        },
    };
    let rtc = RtcServer::start(
        RtcConfig {
            udp: cfg.rtc_udp,
            tcp: cfg.rtc_tcp,
            public_ips: cfg.rtc_public_ips.clone(),
            idle_timeout: cfg.idle_timeout,
            first_packet_timeout: cfg.first_packet_timeout,
            max_sessions_per_ip: cfg.rtc_sessions_per_ip,
            ..RtcConfig::default()
        },
        hub.clone(),
        auth.clone(),
        tokio::runtime::Handle::current(),
        {
            // WebRTC viewers of AAC/MP3 streams read them with their audio in Opus.
            let bridges = OpusBridges::new(hub.clone(), tokio::runtime::Handle::current());
            Arc::new(move |key: &str| bridges.source_for(key))
        },
        {
            // A WebRTC viewer's PLI reaches a mix output's encoder.
            let engine = engine.clone();
            Arc::new(move |key: &str| engine.request_key_frame(key))
        },
        {
            // A WHIP publisher's Opus (and VP8) as AAC (and H.264) for RTMP, HTTP-FLV and
            // HLS players.
            let (hub, rt, cx) = (
                hub.clone(),
                tokio::runtime::Handle::current(),
                twin_cx.clone(),
            );
            Arc::new(move |key: &str| start_twin(&hub, &rt, key, cx.clone()))
        },
    )
    .map_err(|e| format!("binding the WebRTC UDP address {}: {e}", cfg.rtc_udp))?;
    let _ = rtc_cell.set(Arc::downgrade(&rtc));
    tokio::spawn(twin_vp8_streams(
        hub.clone(),
        tokio::runtime::Handle::current(),
        twin_cx,
    ));
    tokio::spawn(moderation(
        control.clone(),
        rtmp.clone(),
        rtc.clone(),
        viewers.clone(),
    ));
    let mut relays = Vec::new();
    for r in &cfg.relays {
        let target = Target::parse(&r.url)?;
        // Relays are the operator's own, but they still go through the URL policy: a
        // relay to a private address needs that network opened on purpose.
        cfg.url_policy
            .parse(&r.url, Purpose::Relay)
            .map_err(|e| format!("relay {}: {e}", redact(&r.url)))?;
        info!(app_id = r.app_id, stream_id = %r.stream_id, url = %redact(&r.url), "relay configured");
        relays.push(push::spawn(
            hub.clone(),
            stream_key(r.app_id, &r.stream_id),
            target,
            PushConfig {
                policy: cfg.url_policy.clone(),
                ..PushConfig::default()
            },
        ));
    }

    let drained = Arc::new(tokio::sync::Notify::new());
    let router = Router::new()
        .merge(health::router(store.clone()))
        .merge(drain::router(drain::Drainer {
            store: store.clone(),
            mixing: mixing.clone(),
            draining: draining.clone(),
            stop: drained.clone(),
        }))
        .merge(console::router())
        .merge(admin_api::router(store.clone(), control.clone()))
        .merge(console_api::router(api.clone(), control.clone()))
        .merge(tributary_api::front::router(api, tencent))
        .merge(metrics_route::router(metrics.clone(), mix_metrics.clone()))
        .merge(mix_engine::router(
            engine.clone(),
            node_id.clone(),
            store.clone(),
        ))
        .merge(node::router(store.clone(), node_id.clone()))
        .merge(events::router(
            control.clone(),
            viewers.clone(),
            cfg.sse_per_app,
        ))
        .merge(whip::router(rtc.clone()))
        .merge(whep::router(rtc.clone()))
        .merge(tributary_live::http::router(LiveHttp {
            hub: hub.clone(),
            hls,
            auth,
            audience,
            write_coalesce: cfg.player_write_coalesce,
        }))
        .layer(axum::middleware::from_fn_with_state(
            admin::AdminAuth::new(&admin_token),
            admin::require,
        ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let outbox = Outbox::new(
        store.clone(),
        control.outbox_wakeup(),
        OutboxConfig {
            retry_base: cfg.callback_retry_base,
            timeout: cfg.callback_timeout,
            ..OutboxConfig::default()
        },
        control.clock().clone(),
    )?;
    let outbox_task = tokio::spawn(outbox.run(stop_rx));
    let me = node::Me {
        id: node_id.clone(),
        http: http_addr.to_string(),
        rtmp: rtmp_addr.to_string(),
        started_ms: tributary_api::clock::now_ms(),
        load: {
            let engine = engine.clone();
            Arc::new(move || (engine.free_budget(), engine.task_keys()))
        },
        draining: draining.clone(),
    };
    // On a shared store a node that cannot renew its lease stops its tasks before
    // another node adopts them (no output published twice).
    let fence: Option<Arc<dyn node::Fence>> = store.shared().then(|| {
        Arc::new(node::TaskFence {
            store: store.clone(),
            mixing: mixing.clone(),
            node: node_id.clone(),
        }) as Arc<dyn node::Fence>
    });
    let lease_task = tokio::spawn(node::keep_alive(store.clone(), me.clone(), fence));
    let watch_task = store_watch::start(store.clone(), control.clone())?;

    announce(
        &cfg,
        rtmp_addr,
        &rtc,
        &http_base,
        &resolved.apps,
        resolved.created_demo.as_ref(),
        admin_generated.then_some(admin_token.as_str()),
    );
    if cfg.rate_limits_off {
        warn!("rate limits are OFF for every app");
    }
    if cfg.open_publish {
        warn!(
            "open publish is ON: anyone who can reach the RTMP port may publish without a token (development only)"
        );
    }
    info!(
        node = %node_id,
        http = %http_addr,
        rtmp = %rtmp_addr,
        data = %cfg.data.display(),
        apps = resolved.apps.len(),
        "tributary started"
    );

    let stopping = async {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = drained.notified() => info!("drained: shutting down"),
        }
    };
    http_server::serve(listener, router, cfg.http_limits.clone(), stopping).await;
    live_stop.cancel();
    drop(relays);
    let _ = rtmp_task.await;
    info!("HTTP stopped; finishing callback deliveries in flight and closing the store");
    let _ = stop_tx.send(true);
    if let Err(e) = outbox_task.await {
        warn!(error = %e, "callback outbox ended abnormally");
    }
    lease_task.abort();
    let _ = lease_task.await;
    if let Some(t) = watch_task {
        t.abort();
    }
    let leaving = store.clone();
    let _ = tokio::task::spawn_blocking(move || node::leave(leaving.as_ref(), &me)).await;
    drop(control);
    drop(store);
    info!("tributary stopped");
    Ok(())
}

/// This server's play URL bases, for mix inputs that name its own streams by URL: the
/// announced addresses, the public bases, and loopback names when it listens on loopback
/// or on every interface.
fn self_urls(cfg: &Config, rtmp: std::net::SocketAddr, http: std::net::SocketAddr) -> Vec<String> {
    let mut out = vec![format!("rtmp://{rtmp}"), format!("http://{http}")];
    out.extend(cfg.public_rtmp_url.iter().cloned());
    out.extend(cfg.public_http_url.iter().cloned());
    for (scheme, addr) in [("rtmp", rtmp), ("http", http)] {
        if addr.ip().is_loopback() || addr.ip().is_unspecified() {
            out.push(format!("{scheme}://127.0.0.1:{}", addr.port()));
            out.push(format!("{scheme}://localhost:{}", addr.port()));
        }
    }
    out
}

/// Prints, on the first run, the demo app's credentials with a ready-to-run signed request,
/// then where the server listens. The "listening" line comes last: scripts and tests wait
/// for it and may read everything before it.
fn announce(
    cfg: &Config,
    rtmp_addr: std::net::SocketAddr,
    rtc: &RtcServer,
    http_base: &str,
    apps: &[AppConfig],
    demo: Option<&AppConfig>,
    new_admin_token: Option<&str>,
) {
    let mut out = std::io::stdout().lock();
    if let Some(token) = new_admin_token {
        let _ = writeln!(
            out,
            concat!(
                "\nGenerated the admin token (stored in {}; shown this once):\n  {token}\n",
                "Operator routes (/api/*, /metrics) need: Authorization: Bearer {token}\n",
                "Set your own with --admin-token-file, TRIBUTARY_ADMIN_TOKEN or [admin] token.\n",
            ),
            stores::describe(cfg),
            token = token,
        );
    }
    if let Some(app) = demo {
        let example = signed_url(
            http_base,
            app,
            "DescribeSimpleStreamList",
            &[("RoomId".into(), "room1".into())],
            now_ms() / 1000,
        );
        let _ = writeln!(
            out,
            "\nCreated a demo app (stored in {}):\n  AppId:          {}\n  ServerSecret:   {}\n  CallbackSecret: {}\n\n\
             A signed request, valid once within 10 minutes:\n  curl '{}'\n\n\
             More: tributary sign --data {} AddStream RoomId=room1 UserId=admin StreamId=s1\n",
            stores::describe(cfg),
            app.app_id,
            app.server_secret,
            app.callback_secret,
            example,
            cfg.data.display(),
        );
    } else {
        let ids: Vec<String> = apps.iter().map(|a| a.app_id.to_string()).collect();
        let _ = writeln!(out, "tributary: serving apps {}", ids.join(", "));
    }
    let _ = writeln!(out, "tributary: RTMP listening on rtmp://{rtmp_addr}");
    let _ = writeln!(
        out,
        "tributary: WebRTC (WHIP: POST {http_base}/whip/{{AppId}}/{{streamId}}) on udp://{}",
        rtc.local_addr()
    );
    if let Some(tcp) = rtc.tcp_addr() {
        let _ = writeln!(out, "tributary: WebRTC ICE-TCP fallback on tcp://{tcp}");
    }
    let _ = writeln!(out, "tributary: API listening on {http_base}");
    let _ = out.flush();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("SIGINT: shutting down"),
        _ = term => info!("SIGTERM: shutting down"),
    }
}

/// Makes forbids bite: a `StreamForbidden` cuts off the live publisher of that id. If
/// events were missed (the listener lagged), every live publisher is checked against the
/// ban list instead, so no forbid is lost.
async fn moderation(
    control: Arc<ControlPlane>,
    rtmp: Arc<RtmpServer>,
    rtc: Arc<RtcServer>,
    viewers: Arc<Viewers>,
) {
    let mut events = control.subscribe();
    loop {
        match events.recv().await {
            Ok(CoreEvent::ViewersRemoved {
                app_id,
                room_id,
                users,
            }) => {
                let n = viewers.end(app_id, &room_id, users.as_deref());
                info!(app_id, room_id = %room_id, sessions = n, "removed members' players and feeds ended");
            }
            Ok(CoreEvent::PublisherKicked { app_id, stream_id }) => {
                let key = stream_key(app_id, &stream_id);
                if rtmp.kick(&key) | rtc.kick(&key) {
                    info!(app_id, stream_id = %stream_id, "kicked user's publisher cut off");
                }
            }
            Ok(CoreEvent::StreamForbidden {
                app_id, stream_id, ..
            }) => {
                let key = stream_key(app_id, &stream_id);
                if rtmp.kick(&key) | rtc.kick(&key) {
                    info!(app_id, stream_id = %stream_id, "forbidden stream's publisher cut off");
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(n)) => {
                warn!(
                    missed = n,
                    "moderation missed events; checking every live publisher"
                );
                for key in rtmp.live_keys().into_iter().chain(rtc.live_keys()) {
                    if let Some((app, stream)) = key.split_once('/')
                        && let Ok(app_id) = app.parse()
                        && control.is_banned(app_id, stream)
                    {
                        rtmp.kick(&key);
                        rtc.kick(&key);
                    }
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}
