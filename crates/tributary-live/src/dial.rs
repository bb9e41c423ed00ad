//! Connecting to a tenant's URL only through the URL policy (`core::url_policy`).
//!
//! The name is resolved once, every address is checked, and the connection goes to a
//! checked address — the name is never looked up again between the check and the
//! connect, so a DNS answer that changes (rebinding) cannot reach a refused address.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpStream;
use tributary_core::url_policy::{UrlPolicy, UrlRefusal};

#[derive(Debug, Error)]
pub enum DialError {
    #[error("{host} {refusal}")]
    Refused { host: String, refusal: UrlRefusal },
    #[error("resolving {host}: {error}")]
    Resolve { host: String, error: String },
    #[error("connecting to {host}: {error}")]
    Connect { host: String, error: String },
}

/// A name lookup gives up after this.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves `host:port` (within [`LOOKUP_TIMEOUT`]) and checks every address (async).
pub async fn resolve(
    policy: &UrlPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, DialError> {
    let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {LOOKUP_TIMEOUT:?}"),
            ))
        });
    checked(policy, host, lookup)
}

/// Resolves `host:port` and checks every address (blocking; for threads that may wait).
pub fn resolve_blocking(
    policy: &UrlPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, DialError> {
    checked(policy, host, (host, port).to_socket_addrs())
}

/// A lookup's answer, every address checked.
fn checked(
    policy: &UrlPolicy,
    host: &str,
    lookup: std::io::Result<impl Iterator<Item = SocketAddr>>,
) -> Result<Vec<SocketAddr>, DialError> {
    let addrs: Vec<SocketAddr> = lookup
        .map_err(|e| DialError::Resolve {
            host: host.to_string(),
            error: e.to_string(),
        })?
        .collect();
    policy
        .check_addrs(host, &addrs)
        .map_err(|refusal| DialError::Refused {
            host: host.to_string(),
            refusal,
        })?;
    Ok(addrs)
}

/// Resolves, checks, and connects to the first checked address that answers, each
/// attempt bounded by `timeout`.
pub async fn connect(
    policy: &UrlPolicy,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, DialError> {
    let addrs = resolve(policy, host, port).await?;
    let mut last = String::from("no address");
    for a in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(a)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("timed out after {timeout:?}"),
        }
    }
    Err(DialError::Connect {
        host: host.to_string(),
        error: last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_addresses_are_never_connected() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let strict = UrlPolicy::default();
        let e = connect(&strict, "127.0.0.1", port, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(e, DialError::Refused { .. }), "{e}");
        // `localhost` is a name: refused after resolving, before connecting.
        let e = connect(&strict, "localhost", port, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(e, DialError::Refused { .. }), "{e}");
        assert!(resolve_blocking(&strict, "localhost", port).is_err());
        // Opened by the operator: it connects.
        let open = UrlPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
        assert!(
            connect(&open, "127.0.0.1", port, Duration::from_secs(1))
                .await
                .is_ok()
        );
        assert!(accepted.await.unwrap());
    }
}
