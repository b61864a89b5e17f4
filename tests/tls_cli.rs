//! HTTPS: `serve` with `[http] tls` and an `http` and a `firehose` source with `tls`, reached by
//! a rustls client that trusts a certificate made for the test; plain HTTP on those ports gets
//! no answer, and the failed handshakes count as refused.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::{activity, start_serve, terminate};

const TOKEN: &str = "tls-test-token-0123456789";

/// One HTTPS request (HTTP/1.1, `Connection: close`); returns (status, body).
fn https(
    roots: &rustls::RootCertStore,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("an HTTP answer over TLS");
    (
        head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        body.to_owned(),
    )
}

#[test]
fn serve_and_push_sources_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let tls = format!(
        "tls = {{ cert_file = \"{}\", key_file = \"{}\" }}",
        cert_file.display(),
        key_file.display()
    );
    let config = dir.path().join("tunnelwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"data = "{}"

[http]
{tls}

[sources.push]
type = "http"
address = "127.0.0.1:0"
token = "{TOKEN}"
{tls}

[sources.aws]
type = "firehose"
address = "127.0.0.1:0"
access_key = "{TOKEN}"
{tls}
"#,
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut served = start_serve(&config);
    let api = served.http.trim_start_matches("https://").to_owned();
    let push = served.sources["push"].clone();
    assert_eq!(https(&roots, &api, "GET", "/healthz", &[], b"").0, 200);
    let auth = format!("Bearer {TOKEN}");
    let body = activity(1) + "\n";
    let (status, text) = https(
        &roots,
        &push,
        "POST",
        "/ingest?stream=vpn-0a1b2c3d-1.1.1.1",
        &[("Authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let request = std::fs::read("tests/data/firehose-request.json").unwrap();
    let (status, text) = https(
        &roots,
        &served.sources["aws"],
        "POST",
        "/",
        &[
            (
                "X-Amz-Firehose-Request-Id",
                "ed4acda5-034f-9f42-bba1-f29aea6d7d8f",
            ),
            ("X-Amz-Firehose-Access-Key", TOKEN),
        ],
        &request,
    );
    assert_eq!(status, 200, "{text}");
    let (status, text) = https(
        &roots,
        &api,
        "POST",
        "/api/v1/query",
        &[],
        b"SELECT count(*) AS n FROM tunnel_activity",
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains('4'), "{text}");
    // Plain HTTP on a TLS port: no HTTP answer, and the handshake failure is counted.
    let mut plain = TcpStream::connect(&push).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    plain
        .write_all(b"GET /ingest HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).starts_with("HTTP/"),
        "{raw:?}"
    );
    let (_, metrics) = https(&roots, &api, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("tunnelwatch_source_refused_total{source=\"push\",kind=\"http\"} 1"),
        "{metrics}"
    );
    assert!(terminate(&mut served.child).success());
}
