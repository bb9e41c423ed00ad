//! The stores' schemas as numbered migrations, one list per backend, applied in order at
//! start and recorded (SQLite: `PRAGMA user_version`; PostgreSQL: `schema_migrations`,
//! under an advisory lock so nodes starting together apply each step once). A schema
//! change is a new entry at the end of both lists, never an edit of an applied one.

/// One schema step.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        // `IF NOT EXISTS`: databases made before migrations were numbered already hold
        // these tables (at user_version 0) and take this step as a no-op.
        sql: "
CREATE TABLE IF NOT EXISTS apps (
    app_id INTEGER PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rooms (
    app_id INTEGER NOT NULL,
    room_id TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (app_id, room_id)
);
CREATE TABLE IF NOT EXISTS streams (
    app_id INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (app_id, stream_id)
);
CREATE TABLE IF NOT EXISTS bans (
    app_id INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (app_id, stream_id)
);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id INTEGER NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS mix_tasks (
    app_id INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    task TEXT NOT NULL,
    PRIMARY KEY (app_id, task_id)
);
CREATE TABLE IF NOT EXISTS watermarks (
    app_id INTEGER NOT NULL,
    id INTEGER NOT NULL,
    watermark TEXT NOT NULL,
    PRIMARY KEY (app_id, id)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS callbacks_due ON callbacks (state, next_at_ms);
",
    },
    Migration {
        version: 2,
        name: "cluster nonces",
        // Kept for parity with PostgreSQL; a single SQLite node keeps nonces in memory.
        sql: "
CREATE TABLE IF NOT EXISTS nonces (
    app_id INTEGER NOT NULL,
    scope TEXT NOT NULL,
    digest TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (app_id, scope, digest)
);
",
    },
    Migration {
        version: 3,
        name: "nodes",
        sql: "
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    lease_until_ms INTEGER NOT NULL
);
",
    },
    Migration {
        version: 4,
        name: "task owners",
        sql: "ALTER TABLE mix_tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';",
    },
    Migration {
        version: 5,
        name: "live streams",
        // Kept for the schema's sake: one node per SQLite store relays nothing.
        sql: "
CREATE TABLE IF NOT EXISTS live_streams (
    app_id INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (app_id, stream_id, node_id)
);
",
    },
    Migration {
        version: 6,
        name: "room streams",
        sql: "
CREATE TABLE IF NOT EXISTS room_streams (
    app_id INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (app_id, stream_id, node_id)
);
",
    },
    Migration {
        version: 7,
        name: "rate windows",
        sql: "
CREATE TABLE IF NOT EXISTS rate_windows (
    app_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (app_id, key, window_start)
);
",
    },
    Migration {
        version: 8,
        name: "sequences",
        sql: "
CREATE TABLE IF NOT EXISTS sequences (
    app_id INTEGER NOT NULL,
    stream_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (app_id, stream_id)
);
",
    },
    Migration {
        version: 9,
        name: "api streams listed",
        // Nothing to list on one node: its registry holds its API-added streams.
        sql: "SELECT 1;",
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: "
CREATE TABLE apps (
    app_id BIGINT PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE TABLE rooms (
    app_id BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (app_id, room_id)
);
CREATE TABLE streams (
    app_id BIGINT NOT NULL,
    stream_id TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (app_id, stream_id)
);
CREATE TABLE bans (
    app_id BIGINT NOT NULL,
    stream_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (app_id, stream_id)
);
CREATE TABLE callbacks (
    id BIGSERIAL PRIMARY KEY,
    app_id BIGINT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at_ms BIGINT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE mix_tasks (
    app_id BIGINT NOT NULL,
    task_id TEXT NOT NULL,
    task TEXT NOT NULL,
    PRIMARY KEY (app_id, task_id)
);
CREATE TABLE watermarks (
    app_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    watermark TEXT NOT NULL,
    PRIMARY KEY (app_id, id)
);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX callbacks_due ON callbacks (state, next_at_ms);
",
    },
    Migration {
        version: 2,
        name: "cluster nonces",
        // Signed requests' nonces claimed by any node (replays to another node refused).
        sql: "
CREATE TABLE nonces (
    app_id BIGINT NOT NULL,
    scope TEXT NOT NULL,
    digest TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (app_id, scope, digest)
);
CREATE INDEX nonces_until ON nonces (until_ms);
",
    },
    Migration {
        version: 3,
        name: "nodes",
        // Each node's lease, renewed while it runs.
        sql: "
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY,
    info TEXT NOT NULL,
    lease_until_ms BIGINT NOT NULL
);
",
    },
    Migration {
        version: 4,
        name: "task owners",
        // The node that runs each task; another adopts it when that node's lease runs out.
        sql: "ALTER TABLE mix_tasks ADD COLUMN owner TEXT NOT NULL DEFAULT '';",
    },
    Migration {
        version: 5,
        name: "live streams",
        // Which node publishes which stream (its publishers and its mix outputs): the
        // origin another node relays a stream from.
        sql: "
CREATE TABLE live_streams (
    app_id BIGINT NOT NULL,
    stream_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    since_ms BIGINT NOT NULL,
    PRIMARY KEY (app_id, stream_id, node_id)
);
CREATE INDEX live_streams_node ON live_streams (node_id);
",
    },
    Migration {
        version: 6,
        name: "room streams",
        // Each node's listed live streams (publishers, mix outputs in a room), so a room's
        // stream list on any node shows the streams every node holds.
        sql: "
CREATE TABLE room_streams (
    app_id BIGINT NOT NULL,
    stream_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (app_id, stream_id, node_id)
);
CREATE INDEX room_streams_room ON room_streams (app_id, room_id);
",
    },
    Migration {
        version: 7,
        name: "rate windows",
        // Calls per app, limit and fixed window, counted by every node: rate limits hold
        // for the app across the cluster, not per node.
        sql: "
CREATE TABLE rate_windows (
    app_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (app_id, key, window_start)
);
",
    },
    Migration {
        version: 8,
        name: "sequences",
        // Each stream's last moderation Sequence, so a stale forbid or resume is refused
        // whichever node it reaches.
        sql: "
CREATE TABLE sequences (
    app_id BIGINT NOT NULL,
    stream_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    PRIMARY KEY (app_id, stream_id)
);
",
    },
    Migration {
        version: 9,
        name: "api streams listed",
        // API-added streams listed in their rooms for every node (node ''), so a room's
        // list is one indexed read; those added before are listed here.
        sql: "
INSERT INTO room_streams (app_id, stream_id, node_id, room_id, info)
SELECT app_id, stream_id, '', info::jsonb ->> 'room_id', info FROM streams
ON CONFLICT DO NOTHING;
",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_take_the_same_numbered_steps() {
        for list in [SQLITE, POSTGRES] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version as usize, i + 1, "{}", m.name);
                assert!(!m.sql.trim().is_empty());
            }
        }
        let names = |l: &[Migration]| l.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(SQLITE), names(POSTGRES));
        // The same tables on both sides.
        let tables = |sql: &str| {
            let mut t: Vec<String> = sql
                .split("CREATE TABLE")
                .skip(1)
                .filter_map(|s| {
                    s.trim_start()
                        .trim_start_matches("IF NOT EXISTS")
                        .split_whitespace()
                        .next()
                        .map(str::to_string)
                })
                .collect();
            t.sort();
            t
        };
        for (a, b) in SQLITE.iter().zip(POSTGRES) {
            assert_eq!(tables(a.sql), tables(b.sql), "migration {}", a.version);
        }
    }
}
