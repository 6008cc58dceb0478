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
    let files = identity.map(|name| {
        (
            pki_dir().join(format!("{name}.crt")),
            pki_dir().join(format!("{name}.key")),
        )
    });
    client_with(ca, files.as_ref())
}

/// A client trusting `ca` and presenting the certificate and key in `files`, if any.
pub fn client_with(ca: &Path, files: Option<&(PathBuf, PathBuf)>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("read CA")).expect("CA pem");
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5));
    if let Some((cert, key)) = files {
        let mut pem = std::fs::read(cert).expect("cert");
        pem.extend(std::fs::read(key).expect("key"));
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
    send(ns, client(ca, identity), method, url, body)
}

/// Sends `method url` with `body` from inside the namespace `ns` with `client`.
pub fn send(
    ns: &str,
    client: reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
) -> Answer {
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

/// A bare TLS session to `addr` from namespace `ns`, trusting `ca` and presenting `identity`, that
/// sends one request and reads the answer. `Ok` holds the server's certificate (DER) when the
/// server took the request; `Err` the TLS error the session ended with: rustls names the alert the
/// server sent (`received fatal alert: UnknownCA`), which reqwest's errors do not show.
pub fn tls_session(
    ns: &str,
    addr: std::net::SocketAddr,
    ca: &Path,
    identity: Option<&str>,
) -> Result<Vec<u8>, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(c.expect("CA pem")).expect("CA certificate");
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        Some(name) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(pki_dir().join(format!("{name}.crt")))
                    .expect("cert")
                    .map(|c| c.expect("cert pem"))
                    .collect();
            let key =
                PrivateKeyDer::from_pem_file(pki_dir().join(format!("{name}.key"))).expect("key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client identity")
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    crate::netns::block_on_in(ns, move || async move {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::IpAddress(addr.ip().into());
        let mut tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
            .await
            .map_err(|_| "handshake timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        // TLS 1.3: the client's handshake ends before the server has judged the client's
        // certificate; its verdict (an alert, or the answer) arrives with the first read.
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer))
            .await
            .map_err(|_| "no answer".to_string())?
            .map_err(|e| e.to_string())?;
        if answer.is_empty() {
            return Err("the server closed the session without an answer".into());
        }
        Ok(cert)
    })
}
