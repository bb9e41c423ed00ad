//! The `tributary` binary: `serve` runs the server; `sign` prints signed API URLs;
//! `callbacks` inspects and requeues the callback outbox; `config-reference` prints
//! docs/CONFIG.md.

mod admin;
mod admin_api;
mod apps;
mod config;
mod config_reference;
mod console;
mod console_api;
mod drain;
mod events;
mod failover;
mod health;
mod http_server;
mod live_auth;
mod memory;
mod metrics_route;
mod migrations;
mod mix_engine;
mod node;
mod pg_tls;
mod placement;
mod postgres_store;
mod relay;
mod serve;
mod sign;
mod store;
mod store_watch;
mod stores;
#[cfg(test)]
mod test_postgres;
mod url;
mod viewers;
mod whep;
mod whip;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use tributary_api::clock::now_ms;
use tributary_core::store::CallbackState;
use tributary_core::token::Purpose;

use config::{Config, ConfigArgs};

#[derive(Parser)]
#[command(
    name = "tributary",
    version,
    about = "Self-hosted live-media server with the ZEGO / Tencent mixing APIs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the server.
    Serve(ConfigArgs),
    /// Print a signed ZEGO-dialect URL: `tributary sign AddStream RoomId=r UserId=u StreamId=s`.
    Sign {
        #[command(flatten)]
        config: ConfigArgs,
        /// The app to sign for (default: the only or first app).
        #[arg(long)]
        app_id: Option<u32>,
        /// The Action, e.g. DescribeSimpleStreamList.
        action: String,
        /// Business parameters as KEY=VALUE (repeat `StreamId[]=…` for arrays).
        params: Vec<String>,
    },
    /// Inspect the persistent ban list (ForbidRTCStream(s)).
    Bans {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        cmd: BansCmd,
    },
    /// Mint signed live URLs: `tributary url publish --stream s1 --room r1 --user u1`.
    Url {
        #[command(flatten)]
        config: ConfigArgs,
        /// publish (RTMP push URL), play (RTMP, HTTP-FLV and HLS URLs) or events (the
        /// room's SSE feed).
        #[arg(value_parser = ["publish", "play", "events"])]
        kind: String,
        /// The app (default: the only or first app).
        #[arg(long = "app-id")]
        app_id: Option<u32>,
        #[arg(long, default_value = "")]
        stream: String,
        #[arg(long, default_value = "")]
        room: String,
        #[arg(long, default_value = "")]
        user: String,
        /// Seconds the token stays valid.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Inspect the callback outbox.
    Callbacks {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        cmd: CallbacksCmd,
    },
    /// Hand a running node's mix tasks to the other nodes sharing its store (then, with
    /// --stop, stop it): `tributary drain --store postgres://… --url http://node:8080`.
    Drain {
        #[command(flatten)]
        config: ConfigArgs,
        /// The node's API base URL (default: its --http address).
        #[arg(long)]
        url: Option<String>,
        /// Stop the node once its tasks are handed over.
        #[arg(long)]
        stop: bool,
    },
    /// Print the configuration reference (docs/CONFIG.md): every flag, environment
    /// variable and file key, generated from the configuration types.
    ConfigReference,
}

#[derive(Subcommand)]
enum BansCmd {
    /// List banned stream ids, one per line, sorted.
    List {
        /// Only this app (default: every app).
        #[arg(long)]
        app_id: Option<u32>,
    },
}

#[derive(Subcommand)]
enum CallbacksCmd {
    /// List queued callbacks as JSON lines (pending by default).
    List {
        /// Show the ones that failed for good instead.
        #[arg(long)]
        failed: bool,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put every failed callback back in the queue (a running server sends them within a
    /// second).
    RetryFailed,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tributary: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The configuration and the app a CLI command acts for: `app_id`, or the only/first app.
fn load_app(
    config: &ConfigArgs,
    app_id: Option<u32>,
) -> Result<(Config, tributary_core::AppConfig), serve::BoxError> {
    let cfg = Config::load(config)?;
    let store = stores::open(&cfg)?;
    let apps = apps::resolve(&cfg, store.as_ref(), false)?.apps;
    let app = match app_id {
        Some(id) => apps.into_iter().find(|a| a.app_id == id),
        None => apps.into_iter().next(),
    }
    .ok_or(
        "no such app: declare one with --app, or run `tributary serve` once to create the demo app",
    )?;
    Ok((cfg, app))
}

fn run(cli: Cli) -> Result<(), serve::BoxError> {
    match cli.cmd {
        Cmd::Serve(args) => {
            let cfg = Config::load(&args)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(serve::run(cfg))
        }
        Cmd::Sign {
            config,
            app_id,
            action,
            params,
        } => {
            let (cfg, app) = load_app(&config, app_id)?;
            let app = &app;
            let mut pairs = Vec::new();
            for p in params {
                let (k, v) = p
                    .split_once('=')
                    .ok_or_else(|| format!("parameter {p:?} is not KEY=VALUE"))?;
                pairs.push((k.to_string(), v.to_string()));
            }
            let base = cfg
                .public_http_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", cfg.http));
            println!(
                "{}",
                sign::signed_url(&base, app, &action, &pairs, now_ms() / 1000)
            );
            Ok(())
        }
        Cmd::Url {
            config,
            kind,
            app_id,
            stream,
            room,
            user,
            ttl,
        } => {
            let (cfg, app) = load_app(&config, app_id)?;
            let app = &app;
            let purpose = match kind.as_str() {
                "publish" => Purpose::Publish,
                "play" => Purpose::Play,
                _ => Purpose::RoomEvents,
            };
            if purpose != Purpose::RoomEvents && stream.is_empty() {
                return Err("--stream is required".into());
            }
            if purpose == Purpose::RoomEvents && room.is_empty() {
                return Err("--room is required".into());
            }
            let req = url::UrlRequest {
                purpose,
                stream: &stream,
                room: &room,
                user: &user,
                expiry: now_ms() / 1000 + ttl,
            };
            for line in url::urls(&cfg, app, &req) {
                println!("{line}");
            }
            Ok(())
        }
        Cmd::Bans {
            config,
            cmd: BansCmd::List { app_id },
        } => {
            let cfg = Config::load(&config)?;
            let store = stores::open(&cfg)?;
            for app in apps::resolve(&cfg, store.as_ref(), false)?.apps {
                if app_id.is_some_and(|id| id != app.app_id) {
                    continue;
                }
                let mut ids: Vec<String> = store
                    .registry(app.app_id)?
                    .bans
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                ids.sort();
                for id in ids {
                    println!("{id}");
                }
            }
            Ok(())
        }
        Cmd::Drain { config, url, stop } => {
            let cfg = Config::load(&config)?;
            let token = match cfg.admin_token.clone() {
                Some(t) => t,
                None => stores::open(&cfg)?.setting(admin::SETTING)?.ok_or(
                    "no admin token: give --admin-token-file, or --store/--data of the node",
                )?,
            };
            let base = url.unwrap_or_else(|| format!("http://{}", cfg.http));
            let target = format!("{}/api/drain?stop={stop}", base.trim_end_matches('/'));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let answer = rt.block_on(async {
                let resp = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(120))
                    .build()?
                    .post(&target)
                    .bearer_auth(token)
                    .send()
                    .await?;
                let status = resp.status();
                Ok::<_, reqwest::Error>((status, resp.text().await?))
            })?;
            if !answer.0.is_success() {
                return Err(format!("{target}: {} {}", answer.0, answer.1.trim()).into());
            }
            println!("{}", answer.1.trim());
            Ok(())
        }
        Cmd::ConfigReference => {
            print!("{}", config_reference::markdown());
            Ok(())
        }
        Cmd::Callbacks { config, cmd } => {
            let cfg = Config::load(&config)?;
            let store = stores::open(&cfg)?;
            match cmd {
                CallbacksCmd::List { failed, limit } => {
                    let state = if failed {
                        CallbackState::Failed
                    } else {
                        CallbackState::Pending
                    };
                    for e in store.callbacks(state, limit)? {
                        println!("{}", serde_json::to_string(&e)?);
                    }
                }
                CallbacksCmd::RetryFailed => {
                    let n = store.requeue_failed(now_ms())?;
                    println!("requeued {n} failed callbacks");
                }
            }
            Ok(())
        }
    }
}
