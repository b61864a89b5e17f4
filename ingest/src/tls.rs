//! TLS for listeners: the rustls server configuration, read from PEM files when a source or the
//! HTTP server is built (so a wrong path or a key that does not match its certificate stops the
//! config from loading instead of failing at the first connection), and [`TlsListener`], an
//! `axum` listener that serves HTTPS. Used by the syslog source (RFC 5425), the `http` and
//! `firehose` sources and `serve`'s HTTP server.
//!
//! Crypto provider: the process default if the binary installed one, else aws-lc-rs (the
//! provider the AWS SDK's HTTPS client uses too: one TLS stack in the binary).
//!
//! Limits: handshakes run concurrently, each bounded by [`HANDSHAKE_TIMEOUT`] (a client that
//! opens a connection and sends nothing holds no accept slot); at most [`HANDSHAKES`] at once
//! (more wait in the kernel's backlog). A failed handshake is counted by the caller's hook and
//! logged at debug level without the peer's bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
pub use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::idle::IdleStream;
use serde::Deserialize;

/// `tls = { cert_file = …, key_file = … }`: serve TLS instead of plain TCP (syslog: RFC 5425;
/// HTTP: HTTPS).
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
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
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
    // HTTP clients lose only session resumption by it.
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

/// Serves `app` on `tcp` until `shutdown` resolves (requests in progress finish): HTTPS with
/// `tls`, plain HTTP without, every connection with the idle limit `idle` ([`crate::idle`]).
/// `on_handshake_failure` is called for each TLS handshake that fails or times out.
pub async fn serve(
    tcp: tokio::net::TcpListener,
    tls: Option<Arc<ServerConfig>>,
    idle: std::time::Duration,
    app: axum::Router,
    on_handshake_failure: impl Fn() + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            axum::serve(crate::idle::IdleListener::new(tcp, idle), app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            axum::serve(
                TlsListener::new(tcp, config, idle, on_handshake_failure)?,
                app,
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    }
}

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Handshakes in progress at most.
pub const HANDSHAKES: usize = 256;

/// A connection of a [`TlsListener`]: TLS over TCP with an idle limit.
pub type TlsIo = tokio_rustls::server::TlsStream<IdleStream<tokio::net::TcpStream>>;

/// A TCP listener whose connections are TLS streams once their handshake succeeded, each with
/// an idle limit ([`crate::idle`]): hand it to `axum::serve` in place of the `TcpListener`.
pub struct TlsListener {
    local: std::net::SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(TlsIo, std::net::SocketAddr)>,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Accepts on `tcp` in a task of the current runtime; `on_failure` is called for every
    /// handshake that fails or times out.
    pub fn new(
        tcp: tokio::net::TcpListener,
        config: Arc<ServerConfig>,
        idle: std::time::Duration,
        on_failure: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES));
        let on_failure = Arc::new(on_failure);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as axum's own loop does.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx, on_failure) = (acceptor.clone(), tx.clone(), on_failure.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let stream = IdleStream::new(stream, idle);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            on_failure();
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            on_failure();
                        }
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accepting task only ends with the runtime: wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
