//! The PostgreSQL store (`--store postgres://…`): the records SQLite keeps, on a server
//! several nodes share. Same rows (the core's records as JSON, keyed by app and id), same
//! rule: a [`WriteBatch`] is one transaction, so a change and its callbacks are stored
//! together or not at all.
//!
//! The `Store` trait is synchronous (SQLite answers in microseconds and its callers are
//! blocking code or `spawn_blocking`), while the driver is async: the store owns a small
//! runtime of its own and each call waits for its query there, with a deadline, so a
//! database that stops answering turns into an error instead of a stuck caller.
//!
//! The callback outbox is shared: a node takes due callbacks with `FOR UPDATE SKIP
//! LOCKED` and leases them (their next attempt moved [`LEASE`] ahead) until it records
//! the outcome, so two nodes never deliver the same callback at once, and a node that
//! dies holding some lets them fall due again (at-least-once).

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use tracing::{info, warn};

use tributary_core::mix_task::MixTask;
use tributary_core::registry::StreamInfo;
use tributary_core::store::{
    CallbackState, ChangeSink, DeliveryOutcome, NodeInfo, OutboxEntry, Store, StoreChange,
    StoreError, StoredRegistry, WriteBatch, WriteOp,
};
use tributary_core::watermark::Watermark;
use tributary_core::{AppConfig, AppId};

use crate::migrations;

/// How long one call may take, connection included.
const DEADLINE: Duration = Duration::from_secs(10);
/// Connections per node.
const POOL_SIZE: usize = 8;
/// Connections per node for nonce claims.
const NONCE_POOL_SIZE: usize = 4;
/// How long a node owns the callbacks it took for delivery (well above a delivery's
/// timeout, so a slow receiver does not get the same callback from two nodes).
pub const LEASE: Duration = Duration::from_secs(60);
/// Expired nonce claims are deleted once per this many claims.
const SWEEP_EVERY: u64 = 512;
/// The channel changes other nodes must hear about are announced on.
const CHANNEL: &str = "tributary_changes";
/// How long a lost watch connection waits before connecting again.
const RECONNECT: Duration = Duration::from_secs(1);
/// Any constant: the advisory lock nodes take while migrating.
const MIGRATION_LOCK: i64 = 0x7472_6962_7574;

const ENTRY_COLUMNS: &str =
    "id, app_id, event, url, body, created_ms, attempts, next_at_ms, state, last_error";

pub struct PgStore {
    pool: Pool,
    /// Nonce claims only, on connections with `synchronous_commit = off`: a claim is one
    /// per API call and need not wait for the disk — a database crash could forget the
    /// last fraction of a second of claims, re-opening those requests to a replay for the
    /// rest of their timestamp window, while every durable write keeps its own pool.
    nonce_pool: Pool,
    /// For the watch's own connection (LISTEN holds one for as long as it runs).
    config: tokio_postgres::Config,
    /// With `sslmode=require`: every connection's TLS (see [`crate::pg_tls`]).
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// The node writing: its tasks are marked as its own.
    node: std::sync::OnceLock<String>,
    /// Nonce claims so far; every [`SWEEP_EVERY`]th also deletes the claims that ran out.
    claims: std::sync::atomic::AtomicU64,
    /// `Some` until dropped (a runtime must be shut down without blocking: the store
    /// may be dropped inside the server's own runtime).
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("postgres: {e}"))
}

/// The server's message when it sent one (the driver's Display says only "db error").
fn pg_err(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => err(format!("{}: {}", db.code().code(), db.message())),
        None => match std::error::Error::source(&e) {
            Some(cause) => err(format!("{e}: {cause}")),
            None => err(e),
        },
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_err(e),
        other => err(other),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(err)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(err)
}

/// Where a URL points, without its password (for logs).
pub fn describe(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
            format!(
                "postgres://{}@{}:{}/{}",
                c.get_user().unwrap_or(""),
                hosts.join(","),
                ports.join(","),
                c.get_dbname().unwrap_or("")
            )
        }
        Err(_) => "postgres://(unparsable URL)".into(),
    }
}

fn entry(row: &tokio_postgres::Row) -> Result<OutboxEntry, StoreError> {
    let get_i64 = |i: usize| row.try_get::<_, i64>(i).map_err(pg_err);
    let state: String = row.try_get(8).map_err(pg_err)?;
    Ok(OutboxEntry {
        id: get_i64(0)?,
        app_id: app_of(get_i64(1)?)?,
        event: row.try_get(2).map_err(pg_err)?,
        url: row.try_get(3).map_err(pg_err)?,
        body: row.try_get(4).map_err(pg_err)?,
        created_ms: get_i64(5)?.max(0) as u64,
        attempts: row.try_get::<_, i32>(6).map_err(pg_err)?.max(0) as u32,
        next_at_ms: get_i64(7)?.max(0) as u64,
        state: if state == "failed" {
            CallbackState::Failed
        } else {
            CallbackState::Pending
        },
        last_error: row.try_get(9).map_err(pg_err)?,
    })
}

/// The first column of each row: a record as JSON.
fn json_column<T: DeserializeOwned>(rows: &[tokio_postgres::Row]) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(|r| from_json(&r.try_get::<_, String>(0).map_err(pg_err)?))
        .collect()
}

/// An app's ban list (stream id, banned at).
async fn load_bans(
    client: &deadpool_postgres::Client,
    app_id: AppId,
) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = client
        .query(
            "SELECT stream_id, at_ms FROM bans WHERE app_id = $1",
            &[&i64::from(app_id)],
        )
        .await
        .map_err(pg_err)?;
    rows.iter()
        .map(|r| {
            let at: i64 = r.try_get(1).map_err(pg_err)?;
            Ok((r.try_get(0).map_err(pg_err)?, at.max(0) as u64))
        })
        .collect()
}

fn app_of(v: i64) -> Result<AppId, StoreError> {
    AppId::try_from(v).map_err(|_| err(format!("app id {v} out of range")))
}

fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Connects to `url`, applies the migrations it lacks, and keeps a pool.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let target = crate::pg_tls::parse(url)?;
        let tls = target.tls;
        let mut config = target.config;
        config.connect_timeout(Duration::from_secs(5));
        config.application_name("tributary");
        let managed = |config: tokio_postgres::Config| {
            let how = ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            };
            match &tls {
                Some(tls) => Manager::from_config(config, tls.clone(), how),
                None => Manager::from_config(config, NoTls, how),
            }
        };
        let manager = managed(config.clone());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("store-pg")
            .enable_all()
            .build()
            .map_err(err)?;
        let mut fast = config.clone();
        fast.options("-c synchronous_commit=off");
        let nonce_manager = managed(fast);
        let (pool, nonce_pool) = {
            let _in = rt.enter();
            let build = |m: Manager, size: usize| {
                Pool::builder(m)
                    .max_size(size)
                    .runtime(deadpool_postgres::Runtime::Tokio1)
                    .wait_timeout(Some(DEADLINE))
                    .create_timeout(Some(DEADLINE))
                    .build()
                    .map_err(err)
            };
            (
                build(manager, POOL_SIZE)?,
                build(nonce_manager, NONCE_POOL_SIZE)?,
            )
        };
        let store = PgStore {
            pool,
            nonce_pool,
            config,
            tls,
            node: std::sync::OnceLock::new(),
            claims: Default::default(),
            rt: Some(rt),
        };
        store.migrate()?;
        info!(store = %describe(url), "PostgreSQL store ready");
        Ok(store)
    }

    /// Whether this claim (of a nonce, a Sequence, a rate count) also deletes the rows
    /// that ran out: every [`SWEEP_EVERY`]th does.
    fn sweep_due(&self) -> bool {
        self.claims
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
    }

    /// Runs `f` on the store's runtime and waits for it, at most [`DEADLINE`].
    fn run<T, F>(&self, f: impl FnOnce(Pool) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.run_on(&self.pool, f)
    }

    /// [`Self::run`] with connections of `pool`.
    fn run_on<T, F>(&self, pool: &Pool, f: impl FnOnce(Pool) -> F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(rt) = self.rt.as_ref() else {
            return Err(err("the store is closed"));
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let fut = f(pool.clone());
        rt.spawn(async move {
            let _ = tx.send(tokio::time::timeout(DEADLINE, fut).await);
        });
        match rx.recv_timeout(DEADLINE + Duration::from_secs(1)) {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(err(format!("no answer within {} s", DEADLINE.as_secs()))),
        }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let mut client = pool.get().await.map_err(pool_err)?;
            let tx = client.transaction().await.map_err(pg_err)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await
                .map_err(pg_err)?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_ms BIGINT NOT NULL
                )",
            )
            .await
            .map_err(pg_err)?;
            let at: i32 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                    &[],
                )
                .await
                .map_err(pg_err)?
                .try_get(0)
                .map_err(pg_err)?;
            let now = ms(tributary_api::clock::now_ms());
            for m in migrations::POSTGRES
                .iter()
                .filter(|m| m.version as i32 > at)
            {
                tx.batch_execute(m.sql).await.map_err(|e| {
                    err(format!(
                        "migration {} ({}): {}",
                        m.version,
                        m.name,
                        pg_err(e)
                    ))
                })?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, $3)",
                    &[&(m.version as i32), &m.name, &now],
                )
                .await
                .map_err(pg_err)?;
            }
            tx.commit().await.map_err(pg_err)
        })
    }

    /// One JSON column of an app's rows, decoded.
    fn json_rows<T: DeserializeOwned + Send + 'static>(
        &self,
        sql: &'static str,
        app_id: AppId,
    ) -> Result<Vec<T>, StoreError> {
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = client
                .query(sql, &[&i64::from(app_id)])
                .await
                .map_err(pg_err)?;
            json_column(&rows)
        })
    }
}

/// Listens for other nodes' changes for as long as the store runs, connecting again
/// after a lost connection; each (re)connection reports `Resync`, since notifications
/// sent meanwhile are gone.
async fn listen<T>(config: tokio_postgres::Config, tls: T, sink: std::sync::Arc<ChangeSink>)
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    use futures_util::StreamExt;
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let heard = sink.clone();
                // The connection must be polled for the client's LISTEN to go out, and it
                // is where notifications arrive.
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let tokio_postgres::AsyncMessage::Notification(n) = message
                            && let Some(change) = parse_change(n.payload())
                        {
                            heard(change);
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        sink(StoreChange::Resync);
                        let _ = driver.await;
                        warn!("the store's change feed was lost; connecting again");
                    }
                    Err(e) => {
                        driver.abort();
                        warn!(error = %pg_err(e), "cannot listen for the store's changes");
                    }
                }
            }
            Err(e) => warn!(error = %pg_err(e), "cannot connect for the store's changes"),
        }
        tokio::time::sleep(RECONNECT).await;
    }
}

/// `bans:<AppId>` → the app's ban list changed.
fn parse_change(payload: &str) -> Option<StoreChange> {
    let app = payload.strip_prefix("bans:")?.parse().ok()?;
    Some(StoreChange::Bans(app))
}

/// A query parameter owned by a statement (statements cross to the store's runtime).
type Param = Box<dyn ToSql + Send + Sync>;

/// One write as SQL and its parameters.
fn statement(app: i64, node: &str, op: &WriteOp) -> Result<(&'static str, Vec<Param>), StoreError> {
    let s = |v: &str| -> Param { Box::new(v.to_string()) };
    Ok(match op {
        WriteOp::PutRoom(room) => (
            "INSERT INTO rooms (app_id, room_id, info) VALUES ($1, $2, $3)
             ON CONFLICT (app_id, room_id) DO UPDATE SET info = EXCLUDED.info",
            vec![Box::new(app), s(&room.room_id), Box::new(to_json(room)?)],
        ),
        WriteOp::DeleteRoom { room_id } => (
            "DELETE FROM rooms WHERE app_id = $1 AND room_id = $2",
            vec![Box::new(app), s(room_id)],
        ),
        // An API-added stream is also listed in its room for every node (node '': it
        // belongs to no node's lease).
        WriteOp::PutStream(stream) => (
            "WITH listed AS (
                INSERT INTO room_streams (app_id, stream_id, node_id, room_id, info)
                VALUES ($1, $2, '', $4, $3)
                ON CONFLICT (app_id, stream_id, node_id)
                DO UPDATE SET room_id = EXCLUDED.room_id, info = EXCLUDED.info)
             INSERT INTO streams (app_id, stream_id, info) VALUES ($1, $2, $3)
             ON CONFLICT (app_id, stream_id) DO UPDATE SET info = EXCLUDED.info",
            vec![
                Box::new(app),
                s(&stream.stream_id),
                Box::new(to_json(stream)?),
                s(&stream.room_id),
            ],
        ),
        WriteOp::DeleteStream { stream_id } => (
            "WITH unlisted AS (
                DELETE FROM room_streams WHERE app_id = $1 AND stream_id = $2 AND node_id = '')
             DELETE FROM streams WHERE app_id = $1 AND stream_id = $2",
            vec![Box::new(app), s(stream_id)],
        ),
        WriteOp::Ban { stream_id, at_ms } => (
            "INSERT INTO bans (app_id, stream_id, at_ms) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            vec![Box::new(app), s(stream_id), Box::new(ms(*at_ms))],
        ),
        WriteOp::Unban { stream_id } => (
            "DELETE FROM bans WHERE app_id = $1 AND stream_id = $2",
            vec![Box::new(app), s(stream_id)],
        ),
        WriteOp::EnqueueCallback(cb) => (
            "INSERT INTO callbacks (app_id, event, url, body, created_ms, next_at_ms)
             VALUES ($1, $2, $3, $4, $5, $5)",
            vec![
                Box::new(i64::from(cb.app_id)),
                s(&cb.event),
                s(&cb.url),
                s(&cb.body),
                Box::new(ms(cb.created_ms)),
            ],
        ),
        WriteOp::PutMixTask(task) => (
            "INSERT INTO mix_tasks (app_id, task_id, task, owner) VALUES ($1, $2, $3, $4)
             ON CONFLICT (app_id, task_id)
             DO UPDATE SET task = EXCLUDED.task, owner = EXCLUDED.owner",
            vec![
                Box::new(app),
                s(&task.task_id),
                Box::new(to_json(task.as_ref())?),
                s(node),
            ],
        ),
        WriteOp::DeleteMixTask { task_id } => (
            "DELETE FROM mix_tasks WHERE app_id = $1 AND task_id = $2",
            vec![Box::new(app), s(task_id)],
        ),
        WriteOp::PutWatermark(w) => (
            "INSERT INTO watermarks (app_id, id, watermark) VALUES ($1, $2, $3)
             ON CONFLICT (app_id, id) DO UPDATE SET watermark = EXCLUDED.watermark",
            vec![Box::new(app), Box::new(ms(w.id)), Box::new(to_json(w)?)],
        ),
        WriteOp::DeleteWatermark { id } => (
            "DELETE FROM watermarks WHERE app_id = $1 AND id = $2",
            vec![Box::new(app), Box::new(ms(*id))],
        ),
        WriteOp::PutLiveStream(stream) => (
            "INSERT INTO room_streams (app_id, stream_id, node_id, room_id, info)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (app_id, stream_id, node_id)
             DO UPDATE SET room_id = EXCLUDED.room_id, info = EXCLUDED.info",
            vec![
                Box::new(app),
                s(&stream.stream_id),
                s(node),
                s(&stream.room_id),
                Box::new(to_json(stream)?),
            ],
        ),
        WriteOp::DeleteLiveStream { stream_id } => (
            "DELETE FROM room_streams WHERE app_id = $1 AND stream_id = $2 AND node_id = $3",
            vec![Box::new(app), s(stream_id), s(node)],
        ),
    })
}

impl Store for PgStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            client.query_one("SELECT 1", &[]).await.map_err(pg_err)?;
            Ok(())
        })
    }

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let row = client
                .query_opt("SELECT value FROM settings WHERE key = $1", &[&key])
                .await
                .map_err(pg_err)?;
            row.map(|r| r.try_get(0).map_err(pg_err)).transpose()
        })
    }

    fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            client
                .execute(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&key, &value],
                )
                .await
                .map_err(pg_err)?;
            client
                .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
                .await
                .map_err(pg_err)?
                .try_get(0)
                .map_err(pg_err)
        })
    }

    fn claim_nonce(
        &self,
        app_id: AppId,
        scope: &str,
        nonce: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<bool, StoreError> {
        use sha2::Digest;
        // A digest: bounded rows whatever a client sends as its nonce.
        let digest = hex::encode(sha2::Sha256::digest(nonce.as_bytes()));
        let (app, scope, now, until) = (
            i64::from(app_id),
            scope.to_string(),
            ms(now_ms),
            ms(until_ms),
        );
        let sweep = self.sweep_due();
        self.run_on(&self.nonce_pool, move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            if sweep {
                client
                    .execute("DELETE FROM nonces WHERE until_ms <= $1", &[&now])
                    .await
                    .map_err(pg_err)?;
            }
            // New, or a claim that ran out taken over: one row changed. Claimed and still
            // valid: none.
            let changed = client
                .execute(
                    "INSERT INTO nonces (app_id, scope, digest, until_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (app_id, scope, digest) DO UPDATE SET until_ms = EXCLUDED.until_ms
                     WHERE nonces.until_ms <= $5",
                    &[&app, &scope, &digest, &until, &now],
                )
                .await
                .map_err(pg_err)?;
            Ok(changed == 1)
        })
    }

    fn claim_sequence(
        &self,
        app_id: AppId,
        ids: &[String],
        seq: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<Option<(String, u64, u64)>, StoreError> {
        let (app, ids, seq, now, fresh) = (
            i64::from(app_id),
            ids.to_vec(),
            ms(seq),
            ms(now_ms),
            ms(now_ms.saturating_sub(window_ms)),
        );
        let sweep = self.sweep_due();
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(pool_err)?;
            let tx = client.transaction().await.map_err(pg_err)?;
            for id in &ids {
                // Taken when the last one is older than the window or smaller; the row
                // lock orders nodes claiming the same stream at once.
                let taken = tx
                    .query_opt(
                        "INSERT INTO sequences (app_id, stream_id, seq, at_ms) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (app_id, stream_id) DO UPDATE
                         SET seq = EXCLUDED.seq, at_ms = EXCLUDED.at_ms
                         WHERE sequences.at_ms <= $5 OR sequences.seq < EXCLUDED.seq
                         RETURNING stream_id",
                        &[&app, id, &seq, &now, &fresh],
                    )
                    .await
                    .map_err(pg_err)?;
                if taken.is_none() {
                    let row = tx
                        .query_one(
                            "SELECT seq, at_ms FROM sequences WHERE app_id = $1 AND stream_id = $2",
                            &[&app, id],
                        )
                        .await
                        .map_err(pg_err)?;
                    let (last, at): (i64, i64) =
                        (row.try_get(0).map_err(pg_err)?, row.try_get(1).map_err(pg_err)?);
                    // Dropping the transaction rolls the earlier ids back: all or none.
                    return Ok(Some((
                        id.clone(),
                        last.max(0) as u64,
                        (now - at).max(0) as u64,
                    )));
                }
            }
            if sweep {
                // Older than the window: they constrain nothing any more.
                tx.execute("DELETE FROM sequences WHERE at_ms <= $1", &[&fresh])
                    .await
                    .map_err(pg_err)?;
            }
            tx.commit().await.map_err(pg_err)?;
            Ok(None)
        })
    }

    fn count_call(
        &self,
        app_id: AppId,
        key: &str,
        window_ms: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        let window_ms = window_ms.max(1);
        let start = now_ms - now_ms % window_ms;
        let (app, key, start, old) = (
            i64::from(app_id),
            key.to_string(),
            ms(start),
            // Windows of the last ten minutes are kept (the longest room interval).
            ms(now_ms.saturating_sub(600_000)),
        );
        let sweep = self.sweep_due();
        self.run_on(&self.nonce_pool, move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            if sweep {
                client
                    .execute("DELETE FROM rate_windows WHERE window_start < $1", &[&old])
                    .await
                    .map_err(pg_err)?;
            }
            let row = client
                .query_one(
                    "INSERT INTO rate_windows (app_id, key, window_start, n) VALUES ($1, $2, $3, 1)
                     ON CONFLICT (app_id, key, window_start) DO UPDATE SET n = rate_windows.n + 1
                     RETURNING n",
                    &[&app, &key, &start],
                )
                .await
                .map_err(pg_err)?;
            let n: i32 = row.try_get(0).map_err(pg_err)?;
            Ok(Some(n.max(0) as u64))
        })
    }

    fn bans(&self, app_id: AppId) -> Result<Vec<(String, u64)>, StoreError> {
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            load_bans(&client, app_id).await
        })
    }

    fn watch(&self, sink: ChangeSink) -> Result<bool, StoreError> {
        let Some(rt) = self.rt.as_ref() else {
            return Err(err("the store is closed"));
        };
        let sink = std::sync::Arc::new(sink);
        match &self.tls {
            Some(tls) => rt.spawn(listen(self.config.clone(), tls.clone(), sink)),
            None => rt.spawn(listen(self.config.clone(), NoTls, sink)),
        };
        Ok(true)
    }

    fn renew_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let (id, info, until) = (
            node.node_id.clone(),
            to_json(node)?,
            ms(node.lease_until_ms),
        );
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            client
                .execute(
                    "INSERT INTO nodes (node_id, info, lease_until_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (node_id) DO UPDATE
                     SET info = EXCLUDED.info, lease_until_ms = EXCLUDED.lease_until_ms",
                    &[&id, &info, &until],
                )
                .await
                .map_err(pg_err)?;
            Ok(())
        })
    }

    fn nodes(&self, now_ms: u64) -> Result<Vec<NodeInfo>, StoreError> {
        let now = ms(now_ms);
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = client
                .query(
                    "SELECT info FROM nodes WHERE lease_until_ms > $1 ORDER BY node_id",
                    &[&now],
                )
                .await
                .map_err(pg_err)?;
            json_column(&rows)
        })
    }

    fn apps(&self) -> Result<Vec<AppConfig>, StoreError> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = client
                .query("SELECT config FROM apps ORDER BY app_id", &[])
                .await
                .map_err(pg_err)?;
            json_column(&rows)
        })
    }

    fn insert_first_app(&self, app: &AppConfig) -> Result<Vec<AppConfig>, StoreError> {
        let (id, config) = (i64::from(app.app_id), to_json(app)?);
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(pool_err)?;
            let tx = client.transaction().await.map_err(pg_err)?;
            // A mode that conflicts with itself: a second node's transaction waits here
            // until the first committed, then counts its app.
            tx.execute("LOCK TABLE apps IN SHARE ROW EXCLUSIVE MODE", &[])
                .await
                .map_err(pg_err)?;
            let stored: i64 = tx
                .query_one("SELECT count(*) FROM apps", &[])
                .await
                .map_err(pg_err)?
                .get(0);
            if stored == 0 {
                tx.execute(
                    "INSERT INTO apps (app_id, config) VALUES ($1, $2)",
                    &[&id, &config],
                )
                .await
                .map_err(pg_err)?;
            }
            let rows = tx
                .query("SELECT config FROM apps ORDER BY app_id", &[])
                .await
                .map_err(pg_err)?;
            let apps = json_column(&rows)?;
            tx.commit().await.map_err(pg_err)?;
            Ok(apps)
        })
    }

    fn registry(&self, app_id: AppId) -> Result<StoredRegistry, StoreError> {
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let app = i64::from(app_id);
            let rooms = client
                .query("SELECT info FROM rooms WHERE app_id = $1", &[&app])
                .await
                .map_err(pg_err)?;
            let streams = client
                .query("SELECT info FROM streams WHERE app_id = $1", &[&app])
                .await
                .map_err(pg_err)?;
            Ok(StoredRegistry {
                rooms: json_column(&rooms)?,
                streams: json_column(&streams)?,
                bans: load_bans(&client, app_id).await?,
            })
        })
    }

    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let app = i64::from(batch.app_id);
        let statements = batch
            .ops
            .iter()
            .map(|op| statement(app, self.node.get().map_or("", String::as_str), op))
            .collect::<Result<Vec<_>, _>>()?;
        let bans_changed = batch
            .ops
            .iter()
            .any(|op| matches!(op, WriteOp::Ban { .. } | WriteOp::Unban { .. }));
        self.run(move |pool| async move {
            let mut client = pool.get().await.map_err(pool_err)?;
            let tx = client.transaction().await.map_err(pg_err)?;
            for (sql, params) in &statements {
                let params: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                tx.execute(*sql, &params).await.map_err(pg_err)?;
            }
            // Delivered to the listening nodes when (and only if) the batch commits.
            if bans_changed {
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&CHANNEL, &format!("bans:{app}")],
                )
                .await
                .map_err(pg_err)?;
            }
            tx.commit().await.map_err(pg_err)
        })
    }

    fn mix_tasks(&self, app_id: AppId) -> Result<Vec<MixTask>, StoreError> {
        let node = self.node.get().cloned().unwrap_or_default();
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = client
                .query(
                    "SELECT task FROM mix_tasks WHERE app_id = $1 AND owner = $2 ORDER BY task_id",
                    &[&i64::from(app_id), &node],
                )
                .await
                .map_err(pg_err)?;
            json_column(&rows)
        })
    }

    fn set_node(&self, node_id: &str) {
        let _ = self.node.set(node_id.to_string());
    }

    fn shared(&self) -> bool {
        true
    }

    fn orphaned_tasks(&self, now_ms: u64) -> Result<Vec<(AppId, String, String)>, StoreError> {
        let (node, now) = (self.node.get().cloned().unwrap_or_default(), ms(now_ms));
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = client
                .query(
                    "SELECT app_id, task_id, owner FROM mix_tasks
                     WHERE owner <> $1 AND owner NOT IN
                       (SELECT node_id FROM nodes WHERE lease_until_ms > $2)
                     ORDER BY app_id, task_id LIMIT 1000",
                    &[&node, &now],
                )
                .await
                .map_err(pg_err)?;
            rows.iter()
                .map(|r| {
                    Ok((
                        app_of(r.try_get(0).map_err(pg_err)?)?,
                        r.try_get(1).map_err(pg_err)?,
                        r.try_get(2).map_err(pg_err)?,
                    ))
                })
                .collect()
        })
    }

    fn task_owner(&self, app_id: AppId, task_id: &str) -> Result<Option<String>, StoreError> {
        let task_id = task_id.to_string();
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let row = client
                .query_opt(
                    "SELECT owner FROM mix_tasks WHERE app_id = $1 AND task_id = $2",
                    &[&i64::from(app_id), &task_id],
                )
                .await
                .map_err(pg_err)?;
            row.map(|r| r.try_get(0).map_err(pg_err)).transpose()
        })
    }

    fn adopt_task(
        &self,
        app_id: AppId,
        task_id: &str,
        from: &str,
    ) -> Result<Option<MixTask>, StoreError> {
        let node = self.node.get().cloned().unwrap_or_default();
        let (task_id, from) = (task_id.to_string(), from.to_string());
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let row = client
                .query_opt(
                    "UPDATE mix_tasks SET owner = $4
                     WHERE app_id = $1 AND task_id = $2 AND owner = $3 RETURNING task",
                    &[&i64::from(app_id), &task_id, &from, &node],
                )
                .await
                .map_err(pg_err)?;
            row.map(|r| from_json(&r.try_get::<_, String>(0).map_err(pg_err)?))
                .transpose()
        })
    }

    fn hand_over_task(&self, app_id: AppId, task_id: &str, to: &str) -> Result<bool, StoreError> {
        let node = self.node.get().cloned().unwrap_or_default();
        let (task_id, to) = (task_id.to_string(), to.to_string());
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let n = client
                .execute(
                    "UPDATE mix_tasks SET owner = $4
                     WHERE app_id = $1 AND task_id = $2 AND owner = $3",
                    &[&i64::from(app_id), &task_id, &node, &to],
                )
                .await
                .map_err(pg_err)?;
            Ok(n == 1)
        })
    }

    fn owned_tasks(&self) -> Result<Vec<(AppId, MixTask)>, StoreError> {
        let node = self.node.get().cloned().unwrap_or_default();
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = client
                .query(
                    "SELECT app_id, task FROM mix_tasks WHERE owner = $1
                     ORDER BY app_id, task_id LIMIT 10000",
                    &[&node],
                )
                .await
                .map_err(pg_err)?;
            rows.iter()
                .map(|r| {
                    let task: String = r.try_get(1).map_err(pg_err)?;
                    Ok((app_of(r.try_get(0).map_err(pg_err)?)?, from_json(&task)?))
                })
                .collect()
        })
    }

    fn put_live_stream(
        &self,
        app_id: AppId,
        stream_id: &str,
        live: bool,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let node = self.node.get().cloned().unwrap_or_default();
        let (stream_id, now) = (stream_id.to_string(), ms(now_ms));
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let app = i64::from(app_id);
            if live {
                client
                    .execute(
                        "INSERT INTO live_streams (app_id, stream_id, node_id, since_ms)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (app_id, stream_id, node_id)
                         DO UPDATE SET since_ms = EXCLUDED.since_ms",
                        &[&app, &stream_id, &node, &now],
                    )
                    .await
            } else {
                client
                    .execute(
                        "DELETE FROM live_streams
                         WHERE app_id = $1 AND stream_id = $2 AND node_id = $3",
                        &[&app, &stream_id, &node],
                    )
                    .await
            }
            .map_err(pg_err)?;
            Ok(())
        })
    }

    fn stream_origins(
        &self,
        app_id: AppId,
        stream_id: &str,
        now_ms: u64,
    ) -> Result<Vec<NodeInfo>, StoreError> {
        let node = self.node.get().cloned().unwrap_or_default();
        let (stream_id, now) = (stream_id.to_string(), ms(now_ms));
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = client
                .query(
                    "SELECT n.info FROM live_streams s JOIN nodes n ON n.node_id = s.node_id
                     WHERE s.app_id = $1 AND s.stream_id = $2 AND s.node_id <> $3
                       AND n.lease_until_ms > $4
                     ORDER BY s.since_ms DESC LIMIT 8",
                    &[&i64::from(app_id), &stream_id, &node, &now],
                )
                .await
                .map_err(pg_err)?;
            json_column(&rows)
        })
    }

    fn clear_live_streams(&self) -> Result<(), StoreError> {
        let node = self.node.get().cloned().unwrap_or_default();
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            for table in ["live_streams", "room_streams"] {
                client
                    .execute(&format!("DELETE FROM {table} WHERE node_id = $1"), &[&node])
                    .await
                    .map_err(pg_err)?;
            }
            Ok(())
        })
    }

    fn room_streams(
        &self,
        app_id: AppId,
        room_id: &str,
        now_ms: u64,
    ) -> Result<Vec<StreamInfo>, StoreError> {
        let node = self.node.get().cloned().unwrap_or_default();
        let (room_id, now) = (room_id.to_string(), ms(now_ms));
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let rows = client
                .query(
                    "SELECT r.info FROM room_streams r LEFT JOIN nodes n ON n.node_id = r.node_id
                     WHERE r.app_id = $1 AND r.room_id = $2
                       AND (r.node_id = '' OR (r.node_id <> $3 AND n.lease_until_ms > $4))
                     LIMIT 10000",
                    &[&i64::from(app_id), &room_id, &node, &now],
                )
                .await
                .map_err(pg_err)?;
            json_column(&rows)
        })
    }

    fn watermarks(&self, app_id: AppId) -> Result<Vec<Watermark>, StoreError> {
        self.json_rows(
            "SELECT watermark FROM watermarks WHERE app_id = $1 ORDER BY id",
            app_id,
        )
    }

    fn due_callbacks(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let (now, limit) = (ms(now_ms), limit.min(10_000) as i64);
        let until = ms(now_ms.saturating_add(LEASE.as_millis() as u64));
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let sql = format!(
                "UPDATE callbacks SET next_at_ms = $3 WHERE id IN (
                     SELECT id FROM callbacks WHERE state = 'pending' AND next_at_ms <= $1
                     ORDER BY next_at_ms, id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING {ENTRY_COLUMNS}"
            );
            let rows = client
                .query(&sql, &[&now, &limit, &until])
                .await
                .map_err(pg_err)?;
            let mut out = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
            out.sort_by_key(|e| e.id);
            Ok(out)
        })
    }

    fn next_callback_at(&self) -> Result<Option<u64>, StoreError> {
        self.run(|pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let at: Option<i64> = client
                .query_one(
                    "SELECT MIN(next_at_ms) FROM callbacks WHERE state = 'pending'",
                    &[],
                )
                .await
                .map_err(pg_err)?
                .try_get(0)
                .map_err(pg_err)?;
            Ok(at.map(|v| v.max(0) as u64))
        })
    }

    fn record_delivery(&self, id: i64, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        let outcome = outcome.clone();
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            match &outcome {
                DeliveryOutcome::Delivered => {
                    client
                        .execute("DELETE FROM callbacks WHERE id = $1", &[&id])
                        .await
                }
                DeliveryOutcome::Retry { next_at_ms, error } => {
                    client
                        .execute(
                            "UPDATE callbacks SET attempts = attempts + 1, next_at_ms = $2,
                             last_error = $3 WHERE id = $1",
                            &[&id, &ms(*next_at_ms), error],
                        )
                        .await
                }
                DeliveryOutcome::Failed { error } => {
                    client
                        .execute(
                            "UPDATE callbacks SET attempts = attempts + 1, state = 'failed',
                             last_error = $2 WHERE id = $1",
                            &[&id, error],
                        )
                        .await
                }
            }
            .map_err(pg_err)?;
            Ok(())
        })
    }

    fn callbacks(
        &self,
        state: CallbackState,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = limit.min(10_000) as i64;
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let sql = format!(
                "SELECT {ENTRY_COLUMNS} FROM callbacks WHERE state = $1 ORDER BY id LIMIT $2"
            );
            let rows = client
                .query(&sql, &[&state.as_str(), &limit])
                .await
                .map_err(pg_err)?;
            rows.iter().map(entry).collect()
        })
    }

    fn requeue_failed(&self, now_ms: u64) -> Result<usize, StoreError> {
        let now = ms(now_ms);
        self.run(move |pool| async move {
            let client = pool.get().await.map_err(pool_err)?;
            let n = client
                .execute(
                    "UPDATE callbacks SET state = 'pending', attempts = 0, next_at_ms = $1
                     WHERE state = 'failed'",
                    &[&now],
                )
                .await
                .map_err(pg_err)?;
            Ok(n as usize)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::tests::{room, round_trip};
    use crate::test_postgres::TestPostgres;
    use tributary_core::store::NewCallback;

    fn callback(created_ms: u64) -> WriteOp {
        WriteOp::EnqueueCallback(NewCallback {
            app_id: 1,
            event: "stream_create".into(),
            url: "http://x/".into(),
            body: "{}".into(),
            created_ms,
        })
    }

    #[test]
    fn over_tls_the_server_certificate_is_verified() {
        let pg = TestPostgres::start();
        let url = pg.new_database("tls");
        let ca = pg.require_tls();
        // The server takes TLS only; a plain connection is refused.
        assert!(PgStore::open(&url).is_err());
        // TLS against a CA that did not sign it (the web PKI): refused.
        assert!(PgStore::open(&format!("{url}?sslmode=require")).is_err());
        let tls = format!("{url}?sslmode=require&sslrootcert={}", ca.display());
        let store = PgStore::open(&tls).expect("TLS with the right CA");
        store.ping().unwrap();
        store
            .apply(&WriteBatch {
                app_id: 1,
                ops: vec![WriteOp::Ban {
                    stream_id: "s".into(),
                    at_ms: 1,
                }],
            })
            .unwrap();
        assert_eq!(store.bans(1).unwrap(), vec![("s".to_string(), 1)]);
        // The change feed's own connection goes over TLS too.
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        store
            .watch(Box::new(move |c| {
                let _ = tx.lock().unwrap().send(c);
            }))
            .unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            StoreChange::Resync
        );
    }

    #[test]
    fn nodes_starting_at_once_on_an_empty_database_keep_one_demo_app() {
        let pg = TestPostgres::start();
        let url = pg.new_database("first_app");
        let stores: Vec<PgStore> = (0..4).map(|_| PgStore::open(&url).unwrap()).collect();
        let go = std::sync::Barrier::new(stores.len());
        let kept: Vec<Vec<AppConfig>> = std::thread::scope(|s| {
            let racers: Vec<_> = stores
                .iter()
                .zip(1u32..)
                .map(|(store, i)| {
                    let go = &go;
                    s.spawn(move || {
                        let app = AppConfig::new(i, "a".repeat(32), "b".repeat(32));
                        go.wait();
                        store.insert_first_app(&app).unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        // One app stored, and every node got that one back.
        let stored = stores[0].apps().unwrap();
        assert_eq!(stored.len(), 1, "{stored:?}");
        for k in &kept {
            assert_eq!(k, &stored);
        }
    }

    #[test]
    fn what_sqlite_keeps_postgresql_keeps() {
        let pg = TestPostgres::start();
        let url = pg.new_database("round_trip");
        round_trip(&|| Arc::new(PgStore::open(&url).unwrap()));

        // A batch that fails half-way leaves nothing behind.
        let url = pg.new_database("atomic");
        let store = PgStore::open(&url).unwrap();
        pg.psql("atomic", "DROP TABLE bans");
        let res = store.apply(&WriteBatch {
            app_id: 1,
            ops: vec![
                WriteOp::PutRoom(room()),
                WriteOp::Ban {
                    stream_id: "b".into(),
                    at_ms: 3,
                },
            ],
        });
        let e = res.unwrap_err().to_string();
        assert!(e.contains("42P01"), "{e}"); // undefined_table, the server's own code
        assert_eq!(pg.psql("atomic", "SELECT count(*) FROM rooms"), "0");

        // Nodes starting together migrate once; opening again changes nothing.
        let url = pg.new_database("together");
        let opened: Vec<_> = (0..3)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || PgStore::open(&url).map(|_| ()))
            })
            .collect();
        for o in opened {
            o.join().unwrap().unwrap();
        }
        PgStore::open(&url).unwrap();
        assert_eq!(
            pg.psql("together", "SELECT count(*) FROM schema_migrations"),
            migrations::POSTGRES.len().to_string()
        );
    }

    #[test]
    fn two_nodes_never_take_the_same_callback_and_a_lost_lease_falls_due_again() {
        let pg = TestPostgres::start();
        let url = pg.new_database("outbox");
        let (a, b) = (PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap());
        a.apply(&WriteBatch {
            app_id: 1,
            ops: (0..5).map(|i| callback(100 + i)).collect(),
        })
        .unwrap();
        let now = 1_000;
        let (ta, tb) = std::thread::scope(|s| {
            let ta = s.spawn(|| a.due_callbacks(now, 3).unwrap());
            let tb = s.spawn(|| b.due_callbacks(now, 3).unwrap());
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let mut ids: Vec<i64> = ta.iter().chain(&tb).map(|e| e.id).collect();
        assert_eq!(ids.len(), 5, "{ta:?} {tb:?}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "a callback taken twice: {ta:?} {tb:?}");
        // Taken ones are not due again until their lease runs out…
        assert!(a.due_callbacks(now + 1, 10).unwrap().is_empty());
        // …unless delivered: a delivered one is gone, the others come back after the lease
        // (their node died holding them).
        for e in &ta {
            a.record_delivery(e.id, &DeliveryOutcome::Delivered)
                .unwrap();
        }
        let later = now + LEASE.as_millis() as u64;
        let again: Vec<i64> = b
            .due_callbacks(later, 10)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(again, tb.iter().map(|e| e.id).collect::<Vec<_>>());
    }

    #[test]
    fn a_nonce_is_claimed_once_by_all_nodes_until_its_claim_runs_out() {
        let pg = TestPostgres::start();
        let url = pg.new_database("nonces");
        let (a, b) = (PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap());
        assert!(a.claim_nonce(1, "zego", "n1", 1_000, 5_000).unwrap());
        assert!(!b.claim_nonce(1, "zego", "n1", 2_000, 6_000).unwrap());
        // Another app, another dialect: another nonce.
        assert!(b.claim_nonce(2, "zego", "n1", 2_000, 6_000).unwrap());
        assert!(b.claim_nonce(1, "tencent", "n1", 2_000, 6_000).unwrap());
        // Once the claim ran out, the nonce may be used again (its timestamp would be
        // refused by then anyway).
        assert!(b.claim_nonce(1, "zego", "n1", 5_000, 9_000).unwrap());
        assert!(!a.claim_nonce(1, "zego", "n1", 8_999, 12_000).unwrap());
        // Rows stay bounded whatever the nonce's size.
        assert!(
            a.claim_nonce(1, "zego", &"x".repeat(100_000), 1, 2)
                .unwrap()
        );
        assert_eq!(
            pg.psql("nonces", "SELECT max(length(digest)) FROM nonces"),
            "64"
        );
    }

    #[test]
    fn a_watcher_hears_other_nodes_bans_and_resyncs_after_losing_its_connection() {
        let pg = TestPostgres::start();
        let url = pg.new_database("watch");
        let (a, b) = (PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let sink: ChangeSink = Box::new(move |c| {
            let _ = tx.lock().unwrap().send(c);
        });
        assert!(a.watch(sink).unwrap());
        let wait = Duration::from_secs(10);
        assert_eq!(rx.recv_timeout(wait).unwrap(), StoreChange::Resync);
        let ban = |op| WriteBatch {
            app_id: 7,
            ops: vec![op],
        };
        b.apply(&ban(WriteOp::Ban {
            stream_id: "s".into(),
            at_ms: 1,
        }))
        .unwrap();
        assert_eq!(rx.recv_timeout(wait).unwrap(), StoreChange::Bans(7));
        assert_eq!(a.bans(7).unwrap(), vec![("s".to_string(), 1)]);
        // Other writes say nothing.
        b.apply(&ban(WriteOp::PutRoom(room()))).unwrap();
        // The watch's connection is cut: it connects again and asks for a full pass.
        pg.psql(
            "watch",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'",
        );
        assert_eq!(rx.recv_timeout(wait).unwrap(), StoreChange::Resync);
        b.apply(&ban(WriteOp::Unban {
            stream_id: "s".into(),
        }))
        .unwrap();
        assert_eq!(rx.recv_timeout(wait).unwrap(), StoreChange::Bans(7));
        assert!(parse_change("bans:x").is_none() && parse_change("other").is_none());
    }

    #[test]
    fn a_server_that_does_not_answer_is_an_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let started = std::time::Instant::now();
        let e = PgStore::open(&format!("postgres://tributary@127.0.0.1:{port}/x"))
            .err()
            .expect("nothing listens there");
        assert!(e.to_string().contains("postgres: error connecting"), "{e}");
        assert!(e.to_string().contains("refused"), "{e}");
        assert!(started.elapsed() < DEADLINE + Duration::from_secs(2));
        assert!(PgStore::open("not a url").is_err());
        assert_eq!(
            describe("postgres://me:secret@db.example:5433/tb"),
            "postgres://me@db.example:5433/tb"
        );
    }
}
