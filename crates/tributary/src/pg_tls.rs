//! TLS to PostgreSQL: `--store 'postgres://…?sslmode=require&sslrootcert=/path/ca.pem'`.
//!
//! `sslmode=require` makes every connection TLS (rustls), and the server's certificate is
//! verified — chain and host name — against the PEM file `sslrootcert` names, or the
//! bundled web PKI roots without one. This is libpq's `verify-full`, stricter than its
//! `require` (which checks nothing): a store holds the apps' secrets, and an unverified
//! TLS connection guards against nobody on the path. `sslmode=disable`, and the default
//! `prefer`, connect in plain TCP as before (a node never half-trusts a certificate).
//!
//! `sslrootcert` is libpq's name; tokio-postgres does not know it, so it is taken out of
//! the URL here before the rest is parsed.

use std::str::FromStr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tributary_core::store::StoreError;

/// A parsed store URL: the driver's config and, with `sslmode=require`, the connector.
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub tls: Option<MakeRustlsConnect>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// Splits `sslrootcert` off a URL's query (`postgres://…?a=b&sslrootcert=…`).
fn take_root_cert(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let mut kept = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == "sslrootcert" {
            root = Some(v.into_owned());
        } else {
            kept.append_pair(&k, &v);
        }
    }
    let kept = kept.finish();
    if kept.is_empty() {
        (base.to_string(), root)
    } else {
        (format!("{base}?{kept}"), root)
    }
}

pub fn parse(url: &str) -> Result<PgTarget, StoreError> {
    let (url, root) = take_root_cert(url);
    let config = tokio_postgres::Config::from_str(&url).map_err(err)?;
    if config.get_ssl_mode() != SslMode::Require {
        if root.is_some() {
            return Err(err("sslrootcert needs sslmode=require"));
        }
        return Ok(PgTarget { config, tls: None });
    }
    let mut roots = rustls::RootCertStore::empty();
    match &root {
        Some(path) => {
            let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| err(format!("sslrootcert {path}: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| err(format!("sslrootcert {path}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| err(format!("sslrootcert {path}: {e}")))?;
            }
            if roots.is_empty() {
                return Err(err(format!("sslrootcert {path}: no certificate in it")));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(PgTarget {
        config,
        tls: Some(MakeRustlsConnect::new(tls)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_certificate_is_taken_out_of_the_url() {
        let (u, r) =
            take_root_cert("postgres://u@h:5/db?sslmode=require&sslrootcert=%2Ftmp%2Fca.pem");
        assert_eq!(u, "postgres://u@h:5/db?sslmode=require");
        assert_eq!(r.as_deref(), Some("/tmp/ca.pem"));
        let (u, r) = take_root_cert("postgres://u@h/db?sslrootcert=x");
        assert_eq!((u.as_str(), r.as_deref()), ("postgres://u@h/db", Some("x")));
        let (u, r) = take_root_cert("postgres://u@h/db");
        assert_eq!((u.as_str(), r), ("postgres://u@h/db", None));
    }

    #[test]
    fn plain_unless_required() {
        assert!(parse("postgres://u@h/db").unwrap().tls.is_none());
        assert!(
            parse("postgres://u@h/db?sslmode=disable")
                .unwrap()
                .tls
                .is_none()
        );
        assert!(
            parse("postgres://u@h/db?sslmode=require")
                .unwrap()
                .tls
                .is_some()
        );
        // A root certificate without TLS asked for is a mistake worth saying.
        assert!(parse("postgres://u@h/db?sslrootcert=/x").is_err());
        let missing = parse("postgres://u@h/db?sslmode=require&sslrootcert=/nonexistent.pem");
        assert!(missing.is_err());
    }
}
