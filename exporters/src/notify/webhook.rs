//! `type = "webhook"`: POSTs each notification (the JSON of [`crate::alarm_message`]) to `url`
//! over HTTP or HTTPS (rustls, the system's root certificates), with
//! `Content-Type: application/json`, `X-Tunnelwatch-Idempotency-Key: <key>`, the configured
//! `headers`, and, with `hmac_secret` set, `X-Tunnelwatch-Signature: sha256=<hex HMAC-SHA256 of
//! the body>`. A 2xx answer is delivered; 408, 429 and 5xx answers, timeouts and connection
//! errors are retried by the outbox; other 4xx answers are permanent failures.
//!
//! Sync/async: `deliver` is called from the outbox's plain thread and drives the hyper client on
//! the notifier's own current-thread runtime; it must not be called from async code.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use sha2::Sha256;

use super::{BuildError, Notifier, NotifyError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `http://` or `https://` URL to POST to.
    pub url: String,
    /// Extra request headers (e.g. an `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Secret for the `X-Tunnelwatch-Signature` HMAC-SHA256 header.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// Seconds a request may take (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    10
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Config {
    pub fn build(&self, name: &str) -> Result<Box<dyn Notifier>, BuildError> {
        let err = |m: String| BuildError {
            name: name.to_owned(),
            message: m,
        };
        for (k, v) in &self.headers {
            if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || hyper::header::HeaderValue::from_str(v).is_err()
            {
                return Err(err(format!("headers: `{k}` is not a valid header")));
            }
        }
        let poster = Poster::new(&self.url, self.timeout_seconds).map_err(err)?;
        Ok(Box::new(WebhookNotifier {
            config: self.clone(),
            poster,
        }))
    }
}

struct WebhookNotifier {
    config: Config,
    poster: Poster,
}

/// An HTTP(S) client on its own current-thread runtime, for plain (non-async) callers.
pub(crate) struct Poster {
    url: String,
    uri: hyper::Uri,
    timeout: Duration,
    runtime: tokio::runtime::Runtime,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Poster {
    /// A client for `url` (http or https with a host); `Err` says why not.
    pub(crate) fn new(url: &str, timeout_seconds: u64) -> Result<Poster, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("url `{url}`: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!(
                "url `{url}` must be http:// or https:// with a host"
            ));
        }
        if timeout_seconds == 0 {
            return Err("timeout_seconds must be more than 0".into());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting its runtime: {e}"))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("loading the system's root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Poster {
            url: url.to_owned(),
            uri,
            timeout: Duration::from_secs(timeout_seconds),
            runtime,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// POSTs `body` as JSON with `headers`; 2xx is delivered, 408, 429, 5xx, timeouts and
    /// connection errors are transient, other answers permanent.
    pub(crate) fn post(&self, body: &[u8], headers: &[(&str, &str)]) -> Result<(), NotifyError> {
        let mut request =
            hyper::Request::post(self.uri.clone()).header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| NotifyError::Permanent(format!("{}: {e}", self.url)))?;
        let status = self.runtime.block_on(async {
            match tokio::time::timeout(self.timeout, self.client.request(request)).await {
                Err(_) => Err(NotifyError::Transient(format!(
                    "{}: no answer within {} s",
                    self.url,
                    self.timeout.as_secs()
                ))),
                Ok(Err(e)) => Err(NotifyError::Transient(format!("{}: {e}", self.url))),
                Ok(Ok(r)) => {
                    let status = r.status();
                    // Read the answer so the connection can be reused.
                    let _ = r.into_body().collect().await;
                    Ok(status)
                }
            }
        })?;
        match status.as_u16() {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(NotifyError::Transient(format!(
                "{}: HTTP {status}",
                self.url
            ))),
            _ => Err(NotifyError::Permanent(format!(
                "{}: HTTP {status}",
                self.url
            ))),
        }
    }
}

impl Notifier for WebhookNotifier {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn deliver(&self, body: &[u8], key: &str) -> Result<(), NotifyError> {
        let c = &self.config;
        let signature = c.hmac_secret.as_ref().map(|s| signature(s, body));
        let mut headers: Vec<(&str, &str)> = vec![("x-tunnelwatch-idempotency-key", key)];
        headers.extend(c.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(s) = &signature {
            headers.push(("x-tunnelwatch-signature", s));
        }
        self.poster.post(body, &headers)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_server::server;
    use super::*;

    /// A loopback server answering each request with the next status of `statuses`, recording
    /// (headers, body) of each.
    #[test]
    fn posts_signed_json_and_classifies_answers() {
        let (url, handle) = server(vec![503, 200, 400]);
        let n = Config {
            url,
            headers: BTreeMap::from([("authorization".into(), "Bearer t".into())]),
            hmac_secret: Some("s3cret".into()),
            timeout_seconds: 5,
        }
        .build("hook")
        .unwrap();
        let body = br#"{"AlarmName":"a"}"#;
        assert!(matches!(
            n.deliver(body, "k1"),
            Err(NotifyError::Transient(_))
        ));
        n.deliver(body, "k1").unwrap();
        assert!(matches!(
            n.deliver(body, "k2"),
            Err(NotifyError::Permanent(_))
        ));
        let seen = handle.join().unwrap();
        let (head, got) = &seen[1];
        assert_eq!(got, body);
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("post /hook http/1.1"), "{head}");
        assert!(head.contains("x-tunnelwatch-idempotency-key: k1"), "{head}");
        assert!(head.contains("authorization: bearer t"), "{head}");
        assert!(
            head.contains(&format!(
                "x-tunnelwatch-signature: {}",
                signature("s3cret", body)
            )),
            "{head}"
        );
    }

    #[test]
    fn bad_configs_are_refused() {
        for url in ["ftp://x/", "not a url", "http:///nohost"] {
            let c = Config {
                url: url.into(),
                headers: BTreeMap::new(),
                hmac_secret: None,
                timeout_seconds: 5,
            };
            assert!(c.build("h").is_err(), "{url}");
        }
    }
}
