//! The embedded SQLite store (`<data>/tributary.db`).
//!
//! Durability: WAL journal with `synchronous = FULL`, so every acknowledged write batch
//! has been fsynced before the API answers. Rows hold the core's records as JSON, keyed by
//! app and id, which keeps the schema small while the records grow.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use tributary_core::mix_task::MixTask;
use tributary_core::store::{
    CallbackState, DeliveryOutcome, NodeInfo, OutboxEntry, Store, StoreError, StoredRegistry,
    WriteBatch, WriteOp,
};
use tributary_core::watermark::Watermark;
use tributary_core::{AppConfig, AppId};

use crate::migrations;

pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The node writing (recorded with its tasks; one node per SQLite file).
    node: std::sync::OnceLock<String>,
}

/// The data directory readable by its owner only, the database file too (created empty
/// with that mode if it does not exist yet, so it is never readable by others).
fn private_files(dir: &Path, db: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |p: &Path, e: std::io::Error| err(format!("{}: {e}", p.display()));
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io(dir, e))?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(db)
            .map_err(|e| io(db, e))?;
        for suffix in ["", "-wal", "-shm"] {
            let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
            if f.exists() {
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| io(&f, e))?;
            }
        }
    }
    Ok(())
}

/// Applies the migrations the database has not had yet, each with its version in one
/// transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let at: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    for m in migrations::SQLITE.iter().filter(|m| m.version > at) {
        let tx = conn.transaction().map_err(err)?;
        tx.execute_batch(m.sql)
            .and_then(|_| tx.execute_batch(&format!("PRAGMA user_version = {}", m.version)))
            .map_err(|e| err(format!("migration {} ({}): {e}", m.version, m.name)))?;
        tx.commit().map_err(err)?;
    }
    Ok(())
}

/// An app's ban list (stream id, banned at).
fn ban_rows(conn: &Connection, app_id: AppId) -> Result<Vec<(String, u64)>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT stream_id, at_ms FROM bans WHERE app_id = ?1")
        .map_err(err)?;
    let rows = stmt
        .query_map([app_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })
        .map_err(err)?;
    rows.map(|r| r.map_err(err)).collect()
}

/// Milliseconds as SQLite's signed integers.
fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(err)
}

fn from_json<T: DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(err)
}

impl SqliteStore {
    /// One JSON column of an app's rows, decoded.
    fn json_rows<T: DeserializeOwned>(
        &self,
        sql: &str,
        app_id: AppId,
    ) -> Result<Vec<T>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).map_err(err)?;
        let rows = stmt
            .query_map([app_id], |r| r.get::<_, String>(0))
            .map_err(err)?;
        rows.map(|r| r.map_err(err).and_then(|s| from_json(&s)))
            .collect()
    }

    /// Opens (and creates) the database in `dir`. The directory is made 0700 and the
    /// database 0600 (SQLite gives its WAL and shared-memory files the database's mode):
    /// it holds app secrets and the admin token.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let db = dir.join("tributary.db");
        private_files(dir, &db)?;
        let mut conn = Connection::open(&db).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(err)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            node: std::sync::OnceLock::new(),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // rusqlite rolls back an open transaction when it is dropped during a panic, so
        // the connection is consistent even if the lock was poisoned.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    let state: String = row.get(8)?;
    Ok(OutboxEntry {
        id: row.get(0)?,
        app_id: row.get(1)?,
        event: row.get(2)?,
        url: row.get(3)?,
        body: row.get(4)?,
        created_ms: row.get::<_, i64>(5)? as u64,
        attempts: row.get(6)?,
        next_at_ms: row.get::<_, i64>(7)? as u64,
        state: if state == "failed" {
            CallbackState::Failed
        } else {
            CallbackState::Pending
        },
        last_error: row.get(9)?,
    })
}

const ENTRY_COLUMNS: &str =
    "id, app_id, event, url, body, created_ms, attempts, next_at_ms, state, last_error";

impl Store for SqliteStore {
    /// A server setting (e.g. the generated admin token).
    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)
    }

    /// Whether the database answers a query (the readiness probe).
    fn ping(&self) -> Result<(), StoreError> {
        self.conn()
            .query_row("SELECT count(*) FROM settings", [], |r| r.get::<_, i64>(0))
            .map(|_| ())
            .map_err(err)
    }

    /// Stores `value` unless the key has one; returns the value now stored.
    fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
        .map_err(err)?;
        conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .map_err(err)
    }

    fn bans(&self, app_id: AppId) -> Result<Vec<(String, u64)>, StoreError> {
        ban_rows(&self.conn(), app_id)
    }

    fn set_node(&self, node_id: &str) {
        let _ = self.node.set(node_id.to_string());
    }

    fn renew_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO nodes (node_id, info, lease_until_ms) VALUES (?1, ?2, ?3)",
                params![node.node_id, to_json(node)?, ms(node.lease_until_ms)],
            )
            .map_err(err)?;
        Ok(())
    }

    fn nodes(&self, now_ms: u64) -> Result<Vec<NodeInfo>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT info FROM nodes WHERE lease_until_ms > ?1 ORDER BY node_id")
            .map_err(err)?;
        let rows = stmt
            .query_map([ms(now_ms)], |r| r.get::<_, String>(0))
            .map_err(err)?;
        rows.map(|r| r.map_err(err).and_then(|s| from_json(&s)))
            .collect()
    }

    fn apps(&self) -> Result<Vec<AppConfig>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT config FROM apps ORDER BY app_id")
            .map_err(err)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
        rows.map(|r| r.map_err(err).and_then(|s| from_json(&s)))
            .collect()
    }

    fn insert_first_app(&self, app: &AppConfig) -> Result<Vec<AppConfig>, StoreError> {
        let mut conn = self.conn();
        // IMMEDIATE: the write lock from the first read, so another process on the same
        // file cannot insert between the count and the insert.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let stored: i64 = tx
            .query_row("SELECT count(*) FROM apps", [], |r| r.get(0))
            .map_err(err)?;
        if stored == 0 {
            tx.execute(
                "INSERT INTO apps (app_id, config) VALUES (?1, ?2)",
                params![app.app_id, to_json(app)?],
            )
            .map_err(err)?;
        }
        let apps = {
            let mut stmt = tx
                .prepare("SELECT config FROM apps ORDER BY app_id")
                .map_err(err)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
            rows.map(|r| r.map_err(err).and_then(|s| from_json(&s)))
                .collect::<Result<Vec<AppConfig>, StoreError>>()?
        };
        tx.commit().map_err(err)?;
        Ok(apps)
    }

    fn registry(&self, app_id: AppId) -> Result<StoredRegistry, StoreError> {
        let conn = self.conn();
        let mut out = StoredRegistry::default();
        let mut stmt = conn
            .prepare("SELECT info FROM rooms WHERE app_id = ?1")
            .map_err(err)?;
        for row in stmt
            .query_map([app_id], |r| r.get::<_, String>(0))
            .map_err(err)?
        {
            out.rooms.push(from_json(&row.map_err(err)?)?);
        }
        let mut stmt = conn
            .prepare("SELECT info FROM streams WHERE app_id = ?1")
            .map_err(err)?;
        for row in stmt
            .query_map([app_id], |r| r.get::<_, String>(0))
            .map_err(err)?
        {
            out.streams.push(from_json(&row.map_err(err)?)?);
        }
        out.bans = ban_rows(&conn, app_id)?;
        Ok(out)
    }

    fn mix_tasks(&self, app_id: AppId) -> Result<Vec<MixTask>, StoreError> {
        self.json_rows(
            "SELECT task FROM mix_tasks WHERE app_id = ?1 ORDER BY task_id",
            app_id,
        )
    }

    fn watermarks(&self, app_id: AppId) -> Result<Vec<Watermark>, StoreError> {
        self.json_rows(
            "SELECT watermark FROM watermarks WHERE app_id = ?1 ORDER BY id",
            app_id,
        )
    }

    fn apply(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(err)?;
        let app = batch.app_id;
        for op in &batch.ops {
            match op {
                WriteOp::PutRoom(room) => tx.execute(
                    "INSERT OR REPLACE INTO rooms (app_id, room_id, info) VALUES (?1, ?2, ?3)",
                    params![app, room.room_id, to_json(room)?],
                ),
                WriteOp::DeleteRoom { room_id } => tx.execute(
                    "DELETE FROM rooms WHERE app_id = ?1 AND room_id = ?2",
                    params![app, room_id],
                ),
                WriteOp::PutStream(stream) => tx.execute(
                    "INSERT OR REPLACE INTO streams (app_id, stream_id, info) VALUES (?1, ?2, ?3)",
                    params![app, stream.stream_id, to_json(stream)?],
                ),
                WriteOp::DeleteStream { stream_id } => tx.execute(
                    "DELETE FROM streams WHERE app_id = ?1 AND stream_id = ?2",
                    params![app, stream_id],
                ),
                WriteOp::Ban { stream_id, at_ms } => tx.execute(
                    "INSERT OR IGNORE INTO bans (app_id, stream_id, at_ms) VALUES (?1, ?2, ?3)",
                    params![app, stream_id, *at_ms as i64],
                ),
                WriteOp::Unban { stream_id } => tx.execute(
                    "DELETE FROM bans WHERE app_id = ?1 AND stream_id = ?2",
                    params![app, stream_id],
                ),
                WriteOp::EnqueueCallback(cb) => tx.execute(
                    "INSERT INTO callbacks (app_id, event, url, body, created_ms, next_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![cb.app_id, cb.event, cb.url, cb.body, cb.created_ms as i64],
                ),
                WriteOp::PutMixTask(task) => tx.execute(
                    "INSERT OR REPLACE INTO mix_tasks (app_id, task_id, task, owner)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        app,
                        task.task_id,
                        to_json(task.as_ref())?,
                        self.node.get().map_or("", String::as_str)
                    ],
                ),
                WriteOp::DeleteMixTask { task_id } => tx.execute(
                    "DELETE FROM mix_tasks WHERE app_id = ?1 AND task_id = ?2",
                    params![app, task_id],
                ),
                WriteOp::PutWatermark(w) => tx.execute(
                    "INSERT OR REPLACE INTO watermarks (app_id, id, watermark) VALUES (?1, ?2, ?3)",
                    params![app, w.id as i64, to_json(w)?],
                ),
                // One node per SQLite store: its registry lists its live streams.
                WriteOp::PutLiveStream(_) | WriteOp::DeleteLiveStream { .. } => continue,
                WriteOp::DeleteWatermark { id } => tx.execute(
                    "DELETE FROM watermarks WHERE app_id = ?1 AND id = ?2",
                    params![app, *id as i64],
                ),
            }
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    fn due_callbacks(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM callbacks
                 WHERE state = 'pending' AND next_at_ms <= ?1 ORDER BY next_at_ms, id LIMIT ?2"
            ))
            .map_err(err)?;
        let rows = stmt
            .query_map(params![now_ms as i64, limit as i64], entry_from_row)
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn next_callback_at(&self) -> Result<Option<u64>, StoreError> {
        self.conn()
            .query_row(
                "SELECT MIN(next_at_ms) FROM callbacks WHERE state = 'pending'",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(|v| v.flatten().map(|ms| ms.max(0) as u64))
            .map_err(err)
    }

    fn record_delivery(&self, id: i64, outcome: &DeliveryOutcome) -> Result<(), StoreError> {
        let conn = self.conn();
        match outcome {
            DeliveryOutcome::Delivered => conn.execute("DELETE FROM callbacks WHERE id = ?1", [id]),
            DeliveryOutcome::Retry { next_at_ms, error } => conn.execute(
                "UPDATE callbacks SET attempts = attempts + 1, next_at_ms = ?2, last_error = ?3
                 WHERE id = ?1",
                params![id, *next_at_ms as i64, error],
            ),
            DeliveryOutcome::Failed { error } => conn.execute(
                "UPDATE callbacks SET attempts = attempts + 1, state = 'failed', last_error = ?2
                 WHERE id = ?1",
                params![id, error],
            ),
        }
        .map_err(err)?;
        Ok(())
    }

    fn callbacks(
        &self,
        state: CallbackState,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM callbacks WHERE state = ?1 ORDER BY id LIMIT ?2"
            ))
            .map_err(err)?;
        let rows = stmt
            .query_map(params![state.as_str(), limit as i64], entry_from_row)
            .map_err(err)?;
        rows.map(|r| r.map_err(err)).collect()
    }

    fn requeue_failed(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.conn()
            .execute(
                "UPDATE callbacks SET state = 'pending', attempts = 0, next_at_ms = ?1
                 WHERE state = 'failed'",
                [now_ms as i64],
            )
            .map_err(err)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;
    use tributary_core::registry::{RoomInfo, StreamInfo, StreamOrigin};
    use tributary_core::store::NewCallback;

    pub(crate) fn room() -> RoomInfo {
        RoomInfo {
            room_id: "r".into(),
            session_id: 5,
            stream_seq: 1,
            next_number_id: 2,
            create_time_ms: 10,
        }
    }

    pub(crate) fn stream() -> StreamInfo {
        StreamInfo {
            stream_id: "s".into(),
            room_id: "r".into(),
            user_id: "u".into(),
            user_name: String::new(),
            title: String::new(),
            extra_info: String::new(),
            censor_flag: 0,
            number_id: 1,
            create_time_ms: 10,
            origin: StreamOrigin::Added,
        }
    }

    #[test]
    fn batch_round_trip_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        round_trip(&|| Arc::new(SqliteStore::open(dir.path()).unwrap()));
    }

    /// What every store must do, given a way to open it again on the same data (each
    /// backend's tests call this).
    pub(crate) fn round_trip(open: &dyn Fn() -> Arc<dyn Store>) {
        {
            let store = open();
            store
                .apply(&WriteBatch {
                    app_id: 1,
                    ops: vec![
                        WriteOp::PutRoom(room()),
                        WriteOp::PutStream(stream()),
                        WriteOp::Ban {
                            stream_id: "b".into(),
                            at_ms: 3,
                        },
                        WriteOp::EnqueueCallback(NewCallback {
                            app_id: 1,
                            event: "stream_create".into(),
                            url: "http://x/".into(),
                            body: "{}".into(),
                            created_ms: 100,
                        }),
                    ],
                })
                .unwrap();
            let app = AppConfig::new(7, "a".repeat(32), "b".repeat(32));
            assert_eq!(store.insert_first_app(&app).unwrap(), vec![app]);
            assert_eq!(store.put_setting_if_absent("k", "v1").unwrap(), "v1");
        }
        let store = open();
        store.ping().unwrap();
        assert_eq!(
            store.apps().unwrap(),
            vec![AppConfig::new(7, "a".repeat(32), "b".repeat(32))]
        );
        assert_eq!(store.put_setting_if_absent("k", "v2").unwrap(), "v1");
        assert_eq!(store.setting("k").unwrap().as_deref(), Some("v1"));
        assert_eq!(store.setting("none").unwrap(), None);
        let reg = store.registry(1).unwrap();
        assert_eq!(reg.rooms, vec![room()]);
        assert_eq!(reg.streams, vec![stream()]);
        assert_eq!(reg.bans, vec![("b".to_string(), 3)]);
        assert!(store.registry(2).unwrap().rooms.is_empty());
        // A second put replaces, a delete removes.
        let mut renamed = room();
        renamed.stream_seq = 9;
        store
            .apply(&WriteBatch {
                app_id: 1,
                ops: vec![
                    WriteOp::PutRoom(renamed.clone()),
                    WriteOp::DeleteStream {
                        stream_id: "s".into(),
                    },
                    WriteOp::Ban {
                        stream_id: "b".into(),
                        at_ms: 4,
                    },
                ],
            })
            .unwrap();
        let reg = store.registry(1).unwrap();
        assert_eq!(reg.rooms, vec![renamed]);
        assert!(reg.streams.is_empty());
        assert_eq!(
            reg.bans,
            vec![("b".to_string(), 3)],
            "a ban keeps its first time"
        );

        // Node leases: live until they run out; a renewal replaces the entry.
        let node = |id: &str, until: u64| NodeInfo {
            node_id: id.into(),
            http: "127.0.0.1:8080".into(),
            rtmp: "127.0.0.1:1935".into(),
            started_ms: 1,
            renewed_ms: 2,
            lease_until_ms: until,
            free_budget: 7,
            draining: false,
            tasks: vec!["1:t".into()],
        };
        store.renew_node(&node("b", 5_000)).unwrap();
        store.renew_node(&node("a", 1_000)).unwrap();
        let ids = |now| -> Vec<String> {
            store
                .nodes(now)
                .unwrap()
                .into_iter()
                .map(|n| n.node_id)
                .collect()
        };
        assert_eq!(ids(999), ["a", "b"]);
        assert_eq!(ids(1_000), ["b"]);
        store.renew_node(&node("b", 100)).unwrap();
        assert!(ids(1_000).is_empty());
        assert_eq!(store.nodes(0).unwrap()[1], node("b", 100));

        assert!(store.due_callbacks(99, 10).unwrap().is_empty());
        assert_eq!(store.next_callback_at().unwrap(), Some(100));
        let due = store.due_callbacks(100, 10).unwrap();
        assert_eq!(due.len(), 1);
        let id = due[0].id;
        store
            .record_delivery(
                id,
                &DeliveryOutcome::Retry {
                    next_at_ms: 500,
                    error: "HTTP 500".into(),
                },
            )
            .unwrap();
        let e = &store.callbacks(CallbackState::Pending, 10).unwrap()[0];
        assert_eq!(
            (e.attempts, e.next_at_ms, e.last_error.as_str()),
            (1, 500, "HTTP 500")
        );
        store
            .record_delivery(
                id,
                &DeliveryOutcome::Failed {
                    error: "gone".into(),
                },
            )
            .unwrap();
        assert_eq!(store.next_callback_at().unwrap(), None);
        assert_eq!(store.callbacks(CallbackState::Failed, 10).unwrap().len(), 1);
        assert_eq!(store.requeue_failed(700).unwrap(), 1);
        assert_eq!(store.due_callbacks(700, 10).unwrap()[0].attempts, 0);
        store
            .record_delivery(id, &DeliveryOutcome::Delivered)
            .unwrap();
        assert!(
            store
                .callbacks(CallbackState::Pending, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn failed_batch_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Make the second op fail: a table the batch writes to disappears.
        store.conn().execute_batch("DROP TABLE bans").unwrap();
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
        assert!(res.is_err());
        let n: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM rooms", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn migrations_are_numbered_in_the_database() {
        let dir = tempfile::tempdir().unwrap();
        // A database from before numbered migrations: the tables, user_version 0.
        {
            let conn = Connection::open(dir.path().join("tributary.db")).unwrap();
            conn.execute_batch(migrations::SQLITE[0].sql).unwrap();
            conn.execute_batch("INSERT INTO settings VALUES ('k', 'kept')")
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let v: u32 = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, migrations::SQLITE.len());
        assert_eq!(store.setting("k").unwrap().as_deref(), Some("kept"));
        drop(store);
        SqliteStore::open(dir.path()).unwrap();
    }

    #[test]
    fn apps_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let app = AppConfig::new(7, "a".repeat(32), "b".repeat(32));
        assert_eq!(store.insert_first_app(&app).unwrap(), vec![app.clone()]);
        assert_eq!(store.apps().unwrap(), vec![app.clone()]);
        // Only the first: a second first app is not stored, and the first is returned.
        let other = AppConfig::new(8, "c".repeat(32), "d".repeat(32));
        assert_eq!(store.insert_first_app(&other).unwrap(), vec![app]);
    }
}
