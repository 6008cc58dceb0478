//! An mTLS client for the agent's API, as the companion would be, with the test PKI.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The committed test PKI (tests/pki).
pub fn pki_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pki")
}

/// A client trusting `ca` (a PEM file) and presenting `identity` (NAME.crt + NAME.key in the test
/// PKI), or no client certificate.
pub fn client(ca: &Path, identity: Option<&str>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("read CA")).expect("CA pem");
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5));
    if let Some(name) = identity {
        let mut pem = std::fs::read(pki_dir().join(format!("{name}.crt"))).expect("cert");
        pem.extend(std::fs::read(pki_dir().join(format!("{name}.key"))).expect("key"));
        builder = builder.identity(reqwest::Identity::from_pem(&pem).expect("identity"));
    }
    builder.build().expect("client")
}

/// The answer to one request: status and body, or the transport error (TLS refusals).
#[derive(Debug)]
pub enum Answer {
    Http { status: u16, body: String },
    Failed(String),
}

impl Answer {
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Http { status, .. } => Some(*status),
            Answer::Failed(_) => None,
        }
    }

    pub fn json(&self) -> serde_json::Value {
        match self {
            Answer::Http { body, .. } => {
                serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
            }
            Answer::Failed(_) => serde_json::Value::Null,
        }
    }
}

/// Sends `method url` with `body` from inside the namespace `ns`.
pub fn request(
    ns: &str,
    identity: Option<&str>,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
) -> Answer {
    request_with_ca(ns, &pki_dir().join("ca.crt"), identity, method, url, body)
}

pub fn request_with_ca(
    ns: &str,
    ca: &Path,
    identity: Option<&str>,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
) -> Answer {
    let client = client(ca, identity);
    let method: reqwest::Method = method.parse().expect("method");
    let url = url.to_string();
    crate::netns::block_on_in(ns, move || async move {
        let mut req = client.request(method, &url);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp.text().await.unwrap_or_default();
                Answer::Http { status, body }
            }
            Err(e) => {
                use std::error::Error;
                let mut msg = e.to_string();
                let mut src = e.source();
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                Answer::Failed(msg)
            }
        }
    })
}
