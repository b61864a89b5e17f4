//! The rustls server configuration of a TLS syslog listener (RFC 5425), read from PEM files when
//! the source is built, so a wrong path or a key that does not match its certificate stops the
//! config from loading instead of failing at the first connection.
//!
//! Crypto provider: the process default if the binary installed one, else aws-lc-rs (the
//! provider the AWS SDK's HTTPS client uses too: one TLS stack in the binary).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// `[sources.NAME.tls]`: serve TLS (RFC 5425) instead of plain TCP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate, followed by any intermediate certificates.
    pub cert_file: PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM file with the CA certificate(s) that client certificates must chain to. When set,
    /// clients without a valid certificate are refused (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// Builds the server configuration; the error names the setting and the file.
pub(super) fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let certs = read_certs("tls.cert_file", &tls.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| {
        format!(
            "tls.key_file `{}`: {}",
            tls.key_file.display(),
            pem_error(e, "private key")
        )
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("tls.client_ca_file", path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("tls.client_ca_file `{}`: {e}", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("tls.client_ca_file `{}`: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "tls.cert_file `{}` / tls.key_file `{}`: {e}",
            tls.cert_file.display(),
            tls.key_file.display()
        )
    })?;
    // Syslog senders only write: no session tickets, so the server writes nothing after the
    // handshake that a sender would leave unread (and reset the connection over on close).
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

fn read_certs(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{setting} `{}`: {}",
                path.display(),
                pem_error(e, "certificate")
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{setting} `{}`: no PEM certificate in the file",
            path.display()
        ));
    }
    Ok(certs)
}

fn pem_error(e: rustls_pki_types::pem::Error, what: &str) -> String {
    match e {
        rustls_pki_types::pem::Error::NoItemsFound => format!("no PEM {what} in the file"),
        rustls_pki_types::pem::Error::Io(e) => format!("cannot read: {e}"),
        e => format!("not a PEM {what}: {e}"),
    }
}
