//! Which store a node uses: PostgreSQL when a URL is configured (the store several
//! nodes share), else the embedded SQLite database in the data directory.

use std::sync::Arc;

use tributary_core::store::{Store, StoreError};

use crate::config::Config;
use crate::postgres_store::{self, PgStore};
use crate::store::SqliteStore;

pub fn open(cfg: &Config) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &cfg.store {
        Some(url) => Arc::new(PgStore::open(url)?),
        None => Arc::new(SqliteStore::open(&cfg.data)?),
    })
}

/// Where the state is kept, for people (no password).
pub fn describe(cfg: &Config) -> String {
    match &cfg.store {
        Some(url) => postgres_store::describe(url),
        None => cfg.data.join("tributary.db").display().to_string(),
    }
}
