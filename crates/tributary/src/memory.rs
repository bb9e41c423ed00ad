//! Giving freed memory back to the system.
//!
//! Mix tasks come and go with their threads (decoders, encoders, FFmpeg's own): glibc
//! keeps what those threads freed in per-thread arenas, so the process' resident size
//! creeps up with task churn although nothing is leaked (the soak in BENCHMARKS.md
//! measured 33 MiB of 151 handed back by one `malloc_trim`). Trimming after tasks stop
//! keeps the resident size flat.

use std::sync::Arc;
use std::time::Duration;

use tracing::debug;
use tributary_mixer::Engine;

/// Returns the allocator's free pages to the system (glibc; a no-op elsewhere).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Every `period`, trims if a task stopped since the last look.
pub async fn trim_after_churn(engine: Arc<Engine>, period: Duration) {
    let mut seen = engine.churn_total();
    loop {
        tokio::time::sleep(period).await;
        let now = engine.churn_total();
        if now != seen {
            seen = now;
            let _ = tokio::task::spawn_blocking(trim).await;
            debug!(churn_total = now, "freed memory returned to the system");
        }
    }
}
