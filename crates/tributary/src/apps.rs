//! Which apps the server serves: those declared in the config, or else the ones stored
//! by an earlier run, or else a demo app created now (and stored) so a newcomer can call
//! the API at once.

use rand::Rng;

use tributary_core::AppConfig;
use tributary_core::store::{Store, StoreError};

use crate::config::Config;

pub struct ResolvedApps {
    pub apps: Vec<AppConfig>,
    /// The demo app, when this run created it.
    pub created_demo: Option<AppConfig>,
}

fn random_hex32() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

pub fn resolve(
    cfg: &Config,
    store: &dyn Store,
    create_demo: bool,
) -> Result<ResolvedApps, StoreError> {
    if !cfg.apps.is_empty() {
        return Ok(ResolvedApps {
            apps: cfg.apps.clone(),
            created_demo: None,
        });
    }
    let mut apps = store.apps()?;
    let mut created_demo = None;
    if apps.is_empty() && create_demo {
        let app_id = rand::rng().random_range(1_000_000_000..=4_000_000_000u32);
        let app = AppConfig::new(app_id, random_hex32(), random_hex32());
        // Another node starting on the same empty store may store its demo app first:
        // then every node serves that one.
        apps = store.insert_first_app(&app)?;
        if apps.contains(&app) {
            created_demo = Some(app);
        }
    }
    for app in &mut apps {
        app.callback_urls
            .extend(cfg.callback_urls_for_all.iter().cloned());
    }
    Ok(ResolvedApps { apps, created_demo })
}
