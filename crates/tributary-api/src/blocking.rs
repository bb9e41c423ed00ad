//! Blocking calls made from async request handlers. A shared store's call (a nonce claim
//! per request) is a network round trip: on a multi-thread runtime the worker hands its
//! other tasks to the rest first (`block_in_place`), so a slow database does not stall
//! the requests queued behind it. Elsewhere (a current-thread runtime, plain threads) the
//! call simply runs.

pub fn run<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_anywhere() {
        assert_eq!(super::run(|| 1), 1);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { super::run(|| 2) }), 2);
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert_eq!(multi.block_on(async { super::run(|| 3) }), 3);
    }
}
