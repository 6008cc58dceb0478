//! Mutual TLS for the companion API: the server certificate, the client CA, the identity check,
//! and reloading the files when they change (cert-manager rotates them).
//!
//! rustls verifies the client's chain against the configured CA, its validity period and its
//! extended key usage (clientAuth); it does not know which cluster a certificate may report for.
//! [`identity`] reads the URI SANs (`spiffe://bgplb/cluster/<name>`) so the API can bind the
//! certificate to the cluster in the URL.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use bgplb_site::TlsSettings;

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {message}")]
    Read {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{what} {path} holds no certificate")]
    Empty { what: &'static str, path: PathBuf },
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Read {
            what,
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Read {
            what,
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The server configuration: our certificate, client certificates required and verified
/// against `client_ca`, TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in certs("client CA", &settings.client_ca)? {
        roots.add(ca).map_err(|e| {
            TlsError::Config(format!("client CA {}: {e}", settings.client_ca.display()))
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let chain = certs("certificate", &settings.cert)?;
    let key = PrivateKeyDer::from_pem_file(&settings.key).map_err(|e| TlsError::Read {
        what: "private key",
        path: settings.key.clone(),
        message: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(format!("{}: {e}", settings.cert.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The URI SANs of a DER certificate (the client's identities).
pub fn identities(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

/// Whether the certificate may report for `cluster`.
pub fn may_report_for(der: &[u8], cluster: &str) -> bool {
    let wanted = bgplb_proto::identity(cluster);
    identities(der).contains(&wanted)
}

/// Modification times of the three files, to notice a rotation.
pub fn stamp(settings: &TlsSettings) -> Vec<Option<SystemTime>> {
    [&settings.cert, &settings.key, &settings.client_ca]
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Re-reads the TLS files every `every` and swaps the server configuration when they changed
/// and load cleanly; a broken rotation keeps the previous configuration and is reported.
pub async fn reload_loop(
    settings: TlsSettings,
    config: axum_server::tls_rustls::RustlsConfig,
    every: Duration,
    on_result: impl Fn(Result<(), TlsError>) + Send + 'static,
) {
    let mut last = stamp(&settings);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = stamp(&settings);
        if now == last {
            continue;
        }
        // Give a writer replacing several files a moment to finish.
        tokio::time::sleep(Duration::from_millis(200)).await;
        last = stamp(&settings);
        match server_config(&settings) {
            Ok(c) => {
                config.reload_from_config(c);
                on_result(Ok(()));
            }
            Err(e) => on_result(Err(e)),
        }
    }
}
