//! Configuration: defaults, then a TOML file (`--config`), then environment variables,
//! then flags — each later source overrides the earlier. With no file and no flags the
//! server runs on loopback with a demo app.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use tributary_core::app::TencentCredential;
use tributary_core::url_policy::{BadCidr, Cidr, UrlPolicy};

use crate::http_server::HttpLimits;
use tributary_core::{AppConfig, AppId};

/// Flags shared by every subcommand that reads the configuration. Each flag also reads
/// an environment variable; a flag given on the command line wins over it.
#[derive(Debug, Clone, Args, Default)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, global = true, env = "TRIBUTARY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// API and HTTP playback address [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "TRIBUTARY_HTTP", value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// RTMP address [default: 127.0.0.1:1935].
    #[arg(long, global = true, env = "TRIBUTARY_RTMP", value_name = "ADDR")]
    pub rtmp: Option<SocketAddr>,
    /// The UDP address every WebRTC (WHIP) session shares [default: 127.0.0.1:8443].
    #[arg(
        long = "rtc-udp",
        global = true,
        env = "TRIBUTARY_RTC_UDP",
        value_name = "ADDR"
    )]
    pub rtc_udp: Option<SocketAddr>,
    /// The TCP address of the ICE-TCP fallback (a passive candidate for clients whose UDP
    /// is blocked), or `off` [default: the UDP address's IP and port].
    #[arg(
        long = "rtc-tcp",
        global = true,
        env = "TRIBUTARY_RTC_TCP",
        value_name = "ADDR|off"
    )]
    pub rtc_tcp: Option<String>,
    /// An address WebRTC clients reach this server at (announced as a host candidate;
    /// for a server behind NAT). Repeatable.
    #[arg(
        long = "rtc-public-ip",
        global = true,
        env = "TRIBUTARY_RTC_PUBLIC_IP",
        value_delimiter = ',',
        value_name = "IP"
    )]
    pub rtc_public_ip: Vec<std::net::IpAddr>,
    /// Directory of the store and state [default: ./data].
    #[arg(long, global = true, env = "TRIBUTARY_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The store shared by a cluster's nodes: a PostgreSQL URL
    /// (`postgres://USER:PASSWORD@HOST:PORT/DB`; prefer the environment to the command
    /// line for a password; `?sslmode=require&sslrootcert=CA.pem` for verified TLS)
    /// [default: the embedded SQLite in DATA]
    #[arg(long, global = true, env = "TRIBUTARY_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// This node's name among the nodes sharing a store: 1–64 of A–Z a–z 0–9 . _ -
    /// [default: HOST-HTTPPORT-RTMPPORT, stable across restarts]
    #[arg(
        long = "node-id",
        global = true,
        env = "TRIBUTARY_NODE_ID",
        value_name = "ID"
    )]
    pub node_id: Option<String>,
    /// Declares an app: APPID:SERVERSECRET[:CALLBACKSECRET]. Repeatable.
    #[arg(
        long = "app",
        global = true,
        env = "TRIBUTARY_APP",
        value_delimiter = ',',
        value_name = "APPID:SECRET"
    )]
    pub apps: Vec<String>,
    /// Callback URL for the apps declared with --app (for every app when none is).
    /// Repeatable.
    #[arg(
        long = "callback-url",
        global = true,
        env = "TRIBUTARY_CALLBACK_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub callback_urls: Vec<String>,
    /// Switches every rate limit off (benchmarks, trusted single-tenant setups).
    #[arg(long, global = true, env = "TRIBUTARY_NO_RATE_LIMITS")]
    pub no_rate_limits: bool,
    /// Delay before the first callback retry, in ms; later retries double it [default: 2000].
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_CALLBACK_RETRY_BASE_MS",
        value_name = "MS"
    )]
    pub callback_retry_base_ms: Option<u64>,
    /// Lets anyone publish without a token (local development only; said at startup).
    #[arg(long, global = true, env = "TRIBUTARY_OPEN_PUBLISH")]
    pub open_publish: bool,
    /// Requires a signed play token (`?token=`) on RTMP, HTTP-FLV and HLS playback.
    #[arg(long, global = true, env = "TRIBUTARY_PLAY_TOKEN")]
    pub play_token: bool,
    /// A Tencent Cloud API key of an app: APPID:SECRETID:SECRETKEY. Repeatable.
    #[arg(
        long = "tencent-credential",
        global = true,
        env = "TRIBUTARY_TENCENT_CREDENTIAL",
        value_delimiter = ',',
        value_name = "APPID:SECRETID:SECRETKEY"
    )]
    pub tencent_credentials: Vec<String>,
    /// Also serve the Tencent dialect alone on this address (it is always on --http too).
    #[arg(long, global = true, env = "TRIBUTARY_TENCENT_HTTP")]
    pub tencent_http: Option<SocketAddr>,
    /// Folder of `preset-id://NAME` images (default: DATA/images).
    #[arg(long, global = true, env = "TRIBUTARY_IMAGES_DIR")]
    pub images_dir: Option<PathBuf>,
    /// The node's mixing budget in decoded+encoded pixels per second (default: 100 M per core).
    #[arg(long, global = true, env = "TRIBUTARY_MIX_BUDGET")]
    pub mix_budget: Option<u64>,
    /// Lets tenant URLs (mix inputs/outputs, images, relays) reach this network, which the
    /// URL policy refuses by default (loopback, private, link-local…). CIDR; repeatable.
    #[arg(
        long = "allow-network",
        global = true,
        env = "TRIBUTARY_ALLOW_NETWORK",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub allow_networks: Vec<String>,
    /// The operator's bearer token for `/api/*` and `/metrics` (prefer the file or the
    /// environment: every local user can read a command line).
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_ADMIN_TOKEN",
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,
    /// A file whose first line is the admin token.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_ADMIN_TOKEN_FILE",
        value_name = "PATH"
    )]
    pub admin_token_file: Option<PathBuf>,
}

/// The configuration file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// API and HTTP playback (HTTP-FLV, HLS, WHIP/WHEP signalling) address [default:
    /// 127.0.0.1:8080].
    pub http: Option<SocketAddr>,
    /// RTMP address [default: 127.0.0.1:1935].
    pub rtmp: Option<SocketAddr>,
    /// The UDP address every WebRTC session shares [default: 127.0.0.1:8443].
    pub rtc_udp: Option<SocketAddr>,
    /// `"off"` or an address of the ICE-TCP fallback [default: the UDP address].
    pub rtc_tcp: Option<String>,
    /// Addresses WebRTC clients reach this server at, announced as host candidates (a
    /// server behind NAT) [default: none].
    pub rtc_public_ips: Option<Vec<std::net::IpAddr>>,
    /// Directory of the store and state [default: ./data].
    pub data: Option<PathBuf>,
    /// Base of the RTMP play URLs handed out (e.g. `rtmp://live.example.com`); by default
    /// derived from `rtmp`.
    pub public_rtmp_url: Option<String>,
    /// Base of the HTTP play URLs handed out; by default derived from `http`.
    pub public_http_url: Option<String>,
    /// Switches every rate limit off [default: false].
    pub rate_limits_off: Option<bool>,
    pub callbacks: CallbackFileConfig,
    pub store: StoreFileConfig,
    /// This node's name among the nodes sharing a store (1–64 of A–Z a–z 0–9 . _ -)
    /// [default: HOST-HTTPPORT-RTMPPORT].
    pub node_id: Option<String>,
    pub live: LiveFileConfig,
    pub mix: MixFileConfig,
    pub tencent: TencentFileConfig,
    pub security: SecurityFileConfig,
    pub admin: AdminFileConfig,
    pub limits: LimitsFileConfig,
    pub apps: Vec<AppConfig>,
}

/// `[limits]`: what one peer may hold or take of this server.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsFileConfig {
    /// Open HTTP connections at most [default: 4096].
    pub http_connections: Option<usize>,
    /// A request head must arrive within this (also the keep-alive idle) [default: 10000].
    pub http_header_timeout_ms: Option<u64>,
    /// A request body must arrive within this [default: 30000].
    pub http_body_timeout_ms: Option<u64>,
    /// A write a peer does not take within this drops it (HTTP and RTMP) [default: 30000].
    pub write_timeout_ms: Option<u64>,
    /// RTMP connections from one IP address at most [default: 1000].
    pub rtmp_connections_per_ip: Option<usize>,
    /// HTTP connections from one IP address at most [default: 1000].
    pub http_connections_per_ip: Option<usize>,
    /// Live SSE room feeds per app at most [default: 1000].
    pub sse_per_app: Option<usize>,
}

/// `[admin]`: the operator's credential.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminFileConfig {
    /// Bearer token for `/api/*` and `/metrics`.
    pub token: Option<String>,
    /// A file whose first line is the token.
    pub token_file: Option<PathBuf>,
}

/// `[security]`: what tenants may reach and who may operate the server.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityFileConfig {
    /// Networks (CIDR) tenant URLs may reach although the URL policy refuses them by default.
    pub allow_networks: Vec<String>,
}

/// `[live]`: publishing and playback.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LiveFileConfig {
    /// Publish without a token (development only) [default: false].
    pub open_publish: Option<bool>,
    /// Require a play token for RTMP/HTTP-FLV/HLS playback [default: false].
    pub play_token: Option<bool>,
    /// Close a publisher whose first media packet has not come after this long, ms
    /// [default: 20000].
    pub first_packet_timeout_ms: Option<u64>,
    /// Close a publisher that sent nothing for this long, ms [default: 5000].
    pub idle_timeout_ms: Option<u64>,
    /// Target HLS segment length, ms [default: 2000].
    pub hls_segment_ms: Option<u64>,
    /// Segments kept in the HLS playlist, 2–100 [default: 6].
    pub hls_window: Option<usize>,
    /// WebRTC sessions (WHIP publishers and WHEP viewers) at most from one address
    /// [default: 50].
    pub rtc_sessions_per_ip: Option<usize>,
    /// RTMP and HTTP-FLV players are written at most once per this long: packets wait
    /// and go out in one send (merged writes, as SRS does for its players) [default:
    /// 100]; 0 writes each packet at once (lowest latency, most CPU).
    pub player_write_coalesce_ms: Option<u64>,
    /// Streams forwarded to external RTMP servers whenever they are live.
    pub relays: Vec<Relay>,
}

/// Forward `app_id`/`stream_id` to `url` (`rtmp://host[:port]/app/stream`) whenever it is
/// live, reconnecting with back-off.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Relay {
    pub app_id: AppId,
    pub stream_id: String,
    pub url: String,
}

/// `[tencent]`: the Tencent Cloud API 3.0 dialect.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TencentFileConfig {
    /// Also serve the dialect alone on this address.
    pub http: Option<SocketAddr>,
    /// Require this service in the TC3 credential scope (e.g. "live"); unset: take it as
    /// given (the Node SDK signs the endpoint's first label there).
    pub service: Option<String>,
}

/// `[mix]`: the mixing engine.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MixFileConfig {
    /// Folder of `preset-id://NAME` images [default: DATA/images].
    pub images_dir: Option<PathBuf>,
    /// Decoded+encoded pixels per second this node accepts [default: 100 M per core].
    pub budget_pixels_per_s: Option<u64>,
    /// libx264 preset of the outputs [default: veryfast].
    pub x264_preset: Option<String>,
    /// Jitter buffer added to every input, ms, 0–4000 [default: 50].
    pub input_buffer_ms: Option<i64>,
    /// Stop tasks idle this long even if their MaxIdleTime is longer, s [default: no cap].
    pub idle_cap_s: Option<u32>,
    /// Bytes all tasks' prepared pictures (background, watermark, image layers) may hold
    /// [default: 1 GiB].
    pub image_memory_bytes: Option<usize>,
    /// Font of each label `FontType` 0–3, `PATH` or `PATH#INDEX` in a collection; fewer
    /// than four keep the defaults for the rest.
    pub fonts: Vec<String>,
}

/// `[callbacks]`: delivery of the signed webhooks.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackFileConfig {
    /// Delay before the first retry of a failed callback, ms; later retries double it
    /// [default: 2000].
    pub retry_base_ms: Option<u64>,
    /// How long a receiver has to answer one callback, ms [default: 5000].
    pub timeout_ms: Option<u64>,
}

/// `[store]`: where the state lives.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoreFileConfig {
    /// A PostgreSQL URL (`postgres://USER:PASSWORD@HOST:PORT/DB`, with
    /// `?sslmode=require&sslrootcert=CA.pem` for verified TLS), the store several nodes
    /// share; unset, the embedded SQLite database in `data` [default: unset].
    pub url: Option<String>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: SocketAddr,
    pub rtmp: SocketAddr,
    pub rtc_udp: SocketAddr,
    pub rtc_tcp: tributary_rtc::TcpSetting,
    pub rtc_public_ips: Vec<std::net::IpAddr>,
    pub data: PathBuf,
    /// A PostgreSQL URL; `None`: SQLite in `data`.
    pub store: Option<String>,
    /// This node's name (see `node`); `None`: derived from the host and the ports bound.
    pub node_id: Option<String>,
    pub public_rtmp_url: Option<String>,
    pub public_http_url: Option<String>,
    pub rate_limits_off: bool,
    pub callback_retry_base: Duration,
    pub callback_timeout: Duration,
    pub open_publish: bool,
    pub play_token: bool,
    pub first_packet_timeout: Duration,
    pub rtc_sessions_per_ip: usize,
    pub player_write_coalesce: Duration,
    pub idle_timeout: Duration,
    pub hls_segment: Duration,
    pub hls_window: usize,
    pub relays: Vec<Relay>,
    pub images_dir: PathBuf,
    pub mix_budget: Option<u64>,
    pub x264_preset: String,
    pub input_buffer_ms: i64,
    pub idle_cap_s: Option<u32>,
    pub image_memory_bytes: Option<usize>,
    pub fonts: Vec<String>,
    pub tencent_http: Option<SocketAddr>,
    pub tencent_service: Option<String>,
    /// Tencent keys given by flag, attached to their apps once those are known.
    pub tencent_credentials: Vec<(AppId, TencentCredential)>,
    /// What tenant URLs may open.
    pub url_policy: UrlPolicy,
    /// The configured admin token (`None`: generate and store one).
    pub admin_token: Option<String>,
    pub http_limits: HttpLimits,
    pub rtmp_connections_per_ip: Option<usize>,
    pub sse_per_app: usize,
    /// Apps from the file and the flags; empty means "use the stored or demo app".
    pub apps: Vec<AppConfig>,
    /// Callback URLs to add to every app (when no app was declared by flag).
    pub callback_urls_for_all: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error(
        "--app {0:?}: expected APPID:SERVERSECRET[:CALLBACKSECRET] with a decimal uint32 APPID"
    )]
    BadApp(String),
    #[error("app {0}: the server secret must not be empty")]
    EmptySecret(AppId),
    #[error("callback URL {0:?} must start with http:// or https://")]
    BadCallbackUrl(String),
    #[error("--tencent-credential {0:?}: expected APPID:SECRETID:SECRETKEY")]
    BadTencentCredential(String),
    #[error("--allow-network: {0}")]
    BadNetwork(#[from] BadCidr),
    #[error("the admin token must not be empty (from {0})")]
    EmptyAdminToken(String),
    #[error("rtc_tcp {0:?} is not an address or \"off\"")]
    BadRtcTcp(String),
    #[error("node id {0:?}: 1–64 characters of A–Z a–z 0–9 . _ -")]
    BadNodeId(String),
}

/// Parses `APPID:SERVERSECRET[:CALLBACKSECRET]`. Without a callback secret the server
/// secret signs callbacks too (simple local setups); declare one in production.
fn parse_app(spec: &str) -> Result<AppConfig, ConfigError> {
    let mut parts = spec.splitn(3, ':');
    let id = parts.next().and_then(|s| s.trim().parse::<AppId>().ok());
    let secret = parts.next().map(str::trim).filter(|s| !s.is_empty());
    let (Some(id), Some(secret)) = (id, secret) else {
        return Err(ConfigError::BadApp(spec.to_string()));
    };
    let callback_secret = parts
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(secret);
    Ok(AppConfig::new(
        id,
        secret.to_string(),
        callback_secret.to_string(),
    ))
}

fn parse_tencent(spec: &str) -> Result<(AppId, TencentCredential), ConfigError> {
    let mut parts = spec.splitn(3, ':');
    let app = parts.next().and_then(|s| s.trim().parse::<AppId>().ok());
    let id = parts.next().map(str::trim).filter(|s| !s.is_empty());
    let key = parts.next().map(str::trim).filter(|s| !s.is_empty());
    match (app, id, key) {
        (Some(app), Some(id), Some(key)) => Ok((
            app,
            TencentCredential {
                secret_id: id.to_string(),
                secret_key: key.to_string(),
            },
        )),
        _ => Err(ConfigError::BadTencentCredential(spec.to_string())),
    }
}

fn check_url(url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ConfigError::BadCallbackUrl(url.to_string()))
    }
}

impl Config {
    pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut apps = file.apps;
        for app in &mut apps {
            if app.server_secret.is_empty() {
                return Err(ConfigError::EmptySecret(app.app_id));
            }
            if app.callback_secret.is_empty() {
                app.callback_secret = app.server_secret.clone();
            }
        }
        let mut flag_apps = Vec::new();
        for spec in &args.apps {
            flag_apps.push(parse_app(spec)?);
        }
        for url in &args.callback_urls {
            check_url(url)?;
        }
        for app in &apps {
            for url in app.callback_urls.iter().chain(&app.room_callback_urls) {
                check_url(url)?;
            }
        }
        let mut callback_urls_for_all = Vec::new();
        if flag_apps.is_empty() {
            callback_urls_for_all = args.callback_urls.clone();
        } else {
            for app in &mut flag_apps {
                app.callback_urls = args.callback_urls.clone();
            }
        }
        for flag_app in flag_apps {
            apps.retain(|a| a.app_id != flag_app.app_id);
            apps.push(flag_app);
        }
        for app in &mut apps {
            app.callback_urls
                .extend(callback_urls_for_all.iter().cloned());
        }
        let data = args
            .data
            .clone()
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let url_policy = UrlPolicy::new(
            file.security
                .allow_networks
                .iter()
                .chain(&args.allow_networks)
                .map(|c| c.parse::<Cidr>())
                .collect::<Result<_, _>>()?,
        );
        // Flag/env beats file; a token file beats an inline token of the same source.
        let admin_token = match (
            &args.admin_token_file,
            &args.admin_token,
            &file.admin.token_file,
            &file.admin.token,
        ) {
            (Some(path), _, _, _) | (None, None, Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let t = text.lines().next().unwrap_or("").trim().to_string();
                if t.is_empty() {
                    return Err(ConfigError::EmptyAdminToken(path.display().to_string()));
                }
                Some(t)
            }
            (None, Some(t), _, _) | (None, None, None, Some(t)) => {
                if t.trim().is_empty() {
                    return Err(ConfigError::EmptyAdminToken("the configuration".into()));
                }
                Some(t.trim().to_string())
            }
            (None, None, None, None) => None,
        };
        let d = HttpLimits::default();
        let http_limits = HttpLimits {
            max_connections: file
                .limits
                .http_connections
                .unwrap_or(d.max_connections)
                .max(1),
            max_connections_per_ip: file
                .limits
                .http_connections_per_ip
                .unwrap_or(d.max_connections_per_ip)
                .max(1),
            header_timeout: file
                .limits
                .http_header_timeout_ms
                .map_or(d.header_timeout, |ms| Duration::from_millis(ms.max(100))),
            body_timeout: file
                .limits
                .http_body_timeout_ms
                .map_or(d.body_timeout, |ms| Duration::from_millis(ms.max(100))),
            write_timeout: file
                .limits
                .write_timeout_ms
                .map_or(d.write_timeout, |ms| Duration::from_millis(ms.max(100))),
            ..d
        };
        let mut cfg = Config {
            url_policy,
            admin_token,
            http_limits,
            rtmp_connections_per_ip: file.limits.rtmp_connections_per_ip.map(|n| n.max(1)),
            sse_per_app: file.limits.sse_per_app.unwrap_or(1000).max(1),
            http: args
                .http
                .or(file.http)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            rtmp: args
                .rtmp
                .or(file.rtmp)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 1935))),
            rtc_udp: args
                .rtc_udp
                .or(file.rtc_udp)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8443))),
            rtc_tcp: match args.rtc_tcp.as_deref().or(file.rtc_tcp.as_deref()) {
                None => tributary_rtc::TcpSetting::BesideUdp,
                Some("off") => tributary_rtc::TcpSetting::Off,
                Some(a) => tributary_rtc::TcpSetting::At(
                    a.parse()
                        .map_err(|_| ConfigError::BadRtcTcp(a.to_string()))?,
                ),
            },
            rtc_public_ips: if args.rtc_public_ip.is_empty() {
                file.rtc_public_ips.clone().unwrap_or_default()
            } else {
                args.rtc_public_ip.clone()
            },
            public_rtmp_url: file.public_rtmp_url,
            public_http_url: file.public_http_url,
            rate_limits_off: args.no_rate_limits || file.rate_limits_off.unwrap_or(false),
            callback_retry_base: Duration::from_millis(
                args.callback_retry_base_ms
                    .or(file.callbacks.retry_base_ms)
                    .unwrap_or(2_000)
                    .max(1),
            ),
            callback_timeout: Duration::from_millis(
                file.callbacks.timeout_ms.unwrap_or(5_000).max(100),
            ),
            open_publish: args.open_publish || file.live.open_publish.unwrap_or(false),
            play_token: args.play_token || file.live.play_token.unwrap_or(false),
            first_packet_timeout: Duration::from_millis(
                file.live.first_packet_timeout_ms.unwrap_or(20_000).max(100),
            ),
            rtc_sessions_per_ip: file.live.rtc_sessions_per_ip.unwrap_or(50).max(1),
            player_write_coalesce: Duration::from_millis(
                file.live.player_write_coalesce_ms.unwrap_or(100).min(500),
            ),
            idle_timeout: Duration::from_millis(
                file.live.idle_timeout_ms.unwrap_or(5_000).max(100),
            ),
            hls_segment: Duration::from_millis(file.live.hls_segment_ms.unwrap_or(2_000).max(500)),
            hls_window: file.live.hls_window.unwrap_or(6).clamp(2, 100),
            relays: file.live.relays,
            images_dir: args
                .images_dir
                .clone()
                .or(file.mix.images_dir)
                .unwrap_or_else(|| data.join("images")),
            mix_budget: args.mix_budget.or(file.mix.budget_pixels_per_s),
            x264_preset: file.mix.x264_preset.unwrap_or_else(|| "veryfast".into()),
            input_buffer_ms: file.mix.input_buffer_ms.unwrap_or(50).clamp(0, 4_000),
            idle_cap_s: file.mix.idle_cap_s.map(|s| s.max(1)),
            image_memory_bytes: file.mix.image_memory_bytes,
            fonts: file.mix.fonts,
            tencent_http: args.tencent_http.or(file.tencent.http),
            tencent_service: file.tencent.service,
            tencent_credentials: args
                .tencent_credentials
                .iter()
                .map(|c| parse_tencent(c))
                .collect::<Result<_, _>>()?,
            data,
            store: args.store.clone().or(file.store.url.clone()),
            node_id: None,
            apps,
            callback_urls_for_all,
        };
        cfg.node_id = match args.node_id.as_deref().or(file.node_id.as_deref()) {
            Some(id) if crate::node::valid_id(id) => Some(id.to_string()),
            Some(id) => return Err(ConfigError::BadNodeId(id.to_string())),
            None => None,
        };
        Ok(cfg)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_example_parses() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n").expect("a toml block") + 8;
        let len = readme[start..].find("```").expect("its end");
        let parsed: Result<FileConfig, _> = toml::from_str(&readme[start..start + len]);
        let file = parsed.unwrap();
        assert_eq!(file.tencent.service.as_deref(), Some("live"));
        assert_eq!(file.apps[0].tencent_credentials.len(), 1);
        assert_eq!(file.mix.idle_cap_s, Some(600));
    }

    #[test]
    fn defaults_without_anything() {
        let c = Config::load(&ConfigArgs::default()).unwrap();
        assert_eq!(c.http.to_string(), "127.0.0.1:8080");
        assert_eq!(c.rtmp.to_string(), "127.0.0.1:1935");
        assert_eq!(c.data, PathBuf::from("./data"));
        assert!(c.apps.is_empty());
        assert_eq!(c.callback_retry_base, Duration::from_secs(2));
    }

    #[test]
    fn flags_override_file_and_apps_merge() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(
            &path,
            r#"
http = "127.0.0.1:9000"
data = "/tmp/x"
[callbacks]
retry_base_ms = 100
[[apps]]
app_id = 1
server_secret = "s1"
callback_secret = "c1"
callback_urls = ["http://hook/"]
is_test = true
[apps.rate_limits]
enabled = false
[apps.rate_limits.per_second]
AddStream = 100.0
[[apps]]
app_id = 2
server_secret = "old"
callback_secret = ""
"#,
        )
        .unwrap();
        let args = ConfigArgs {
            config: Some(path),
            http: Some("127.0.0.1:9100".parse().unwrap()),
            apps: vec!["2:new:cb".into(), "3:s3".into()],
            callback_urls: vec!["http://flag/".into()],
            ..Default::default()
        };
        let c = Config::load(&args).unwrap();
        assert_eq!(c.http.to_string(), "127.0.0.1:9100");
        assert_eq!(c.data, PathBuf::from("/tmp/x"));
        assert_eq!(c.callback_retry_base, Duration::from_millis(100));
        let ids: Vec<_> = c.apps.iter().map(|a| a.app_id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(c.apps[0].is_test);
        assert!(!c.apps[0].rate_limits.enabled);
        assert_eq!(c.apps[0].rate_limits.per_second["AddStream"], 100.0);
        assert_eq!(c.apps[0].callback_urls, ["http://hook/"]);
        assert_eq!(c.apps[1].server_secret, "new");
        assert_eq!(c.apps[1].callback_secret, "cb");
        assert_eq!(c.apps[1].callback_urls, ["http://flag/"]);
        assert_eq!(c.apps[2].callback_secret, "s3");
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        for bad in ["x:secret", "1", "1:", "99999999999:s"] {
            let args = ConfigArgs {
                apps: vec![bad.into()],
                ..Default::default()
            };
            assert!(
                matches!(Config::load(&args), Err(ConfigError::BadApp(_))),
                "{bad}"
            );
        }
        let args = ConfigArgs {
            callback_urls: vec!["ftp://x".into()],
            ..Default::default()
        };
        assert!(matches!(
            Config::load(&args),
            Err(ConfigError::BadCallbackUrl(_))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "htp = 1").unwrap();
        let args = ConfigArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(matches!(
            Config::load(&args),
            Err(ConfigError::Parse { .. })
        ));
    }
}
