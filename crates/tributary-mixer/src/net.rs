//! The HTTP client the engine fetches tenant URLs with (images, HTTP-FLV inputs), held to
//! the URL policy: names resolve through a resolver that refuses any answer with a
//! forbidden address (and the connection goes to the addresses it returned, so there is
//! no second lookup), IP-literal hosts are checked before the request, every redirect
//! is checked the same way, and proxies from the environment are ignored.

use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tributary_core::url_policy::{Purpose, UrlPolicy};
use tributary_live::dial;

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

struct GuardedResolver(UrlPolicy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = dial::resolve(&policy, &host, 0).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A client for `purpose` URLs under `policy`; `timeout` bounds each whole request
/// (`None`: only connecting and each read are bounded, for long-lived streams).
pub fn client(
    policy: &UrlPolicy,
    purpose: Purpose,
    timeout: Option<Duration>,
) -> Result<reqwest::Client, reqwest::Error> {
    let redirect_policy = policy.clone();
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match redirect_policy.parse(attempt.url().as_str(), purpose) {
                Ok(_) => attempt.follow(),
                Err(e) => attempt.error(format!("redirected to a URL that {e}")),
            }
        }));
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server answering with `reply`; returns its port and whether it was
    /// asked anything.
    async fn serve_once(reply: String) -> (u16, tokio::task::JoinHandle<bool>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let h = tokio::spawn(async move {
            let Ok(Ok((mut s, _))) =
                tokio::time::timeout(Duration::from_millis(500), l.accept()).await
            else {
                return false;
            };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(reply.as_bytes()).await;
            true
        });
        (port, h)
    }

    #[tokio::test]
    async fn names_and_redirects_to_refused_addresses_never_connect() {
        let strict = UrlPolicy::default();
        let c = client(&strict, Purpose::Image, Some(Duration::from_secs(2))).unwrap();
        // `localhost` resolves to loopback: refused by the resolver, nothing is asked.
        let (port, asked) = serve_once("HTTP/1.1 200 OK\r\n\r\n".into()).await;
        assert!(
            c.get(format!("http://localhost:{port}/a.png"))
                .send()
                .await
                .is_err()
        );
        assert!(!asked.await.unwrap(), "the refused server was reached");

        // An allowed host that redirects to the metadata address: the redirect is refused.
        let open = UrlPolicy::new(vec!["127.0.0.1".parse().unwrap()]);
        let c = client(&open, Purpose::Image, Some(Duration::from_secs(2))).unwrap();
        let (port, asked) = serve_once(
            "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n"
                .into(),
        )
        .await;
        let e = c
            .get(format!("http://127.0.0.1:{port}/a.png"))
            .send()
            .await
            .unwrap_err();
        assert!(e.is_redirect(), "{e}");
        assert!(asked.await.unwrap());
    }
}
