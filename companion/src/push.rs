//! Delivering reports to the agents over mutual TLS.
//!
//! One sender per agent. Each holds only the latest report (a `watch` channel): while an agent is
//! down, reports are not queued, and when it is back it receives the newest state at once.
//! Failures back off exponentially with jitter (1 s to 30 s). A report the agent refuses as
//! invalid is not retried (it would be refused again); the next change or heartbeat brings a new
//! one. A stale-generation refusal raises the floor for the next generation.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bgplb_proto::{ErrorBody, Report};
use tokio::sync::watch;

use crate::config::TlsFiles;

/// Why the mTLS client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid TLS material: {0}")]
    Tls(String),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, PushError> {
    std::fs::read(path).map_err(|source| PushError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// An HTTPS client trusting only the agents' CA and presenting the companion's certificate.
pub fn client(tls: &TlsFiles) -> Result<reqwest::Client, PushError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&read("CA", &tls.ca)?)
        .map_err(|e| PushError::Tls(format!("{}: {e}", tls.ca.display())))?;
    let mut pem = read("certificate", &tls.cert)?;
    pem.extend(read("key", &tls.key)?);
    let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
        PushError::Tls(format!(
            "{} / {}: {e}",
            tls.cert.display(),
            tls.key.display()
        ))
    })?;
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .identity(identity)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| PushError::Tls(e.to_string()))
}

/// A client that is rebuilt when the TLS files change (cert-manager renews the companion's
/// certificate; the Secret volume is updated in place).
pub struct RotatingClient {
    tls: TlsFiles,
    stamp: Vec<Option<std::time::SystemTime>>,
    client: reqwest::Client,
    /// How many times the client was rebuilt after a change.
    pub rebuilds: u32,
}

fn stamp(tls: &TlsFiles) -> Vec<Option<std::time::SystemTime>> {
    [&tls.ca, &tls.cert, &tls.key]
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

impl RotatingClient {
    pub fn new(tls: &TlsFiles) -> Result<RotatingClient, PushError> {
        Ok(RotatingClient {
            tls: tls.clone(),
            stamp: stamp(tls),
            client: client(tls)?,
            rebuilds: 0,
        })
    }

    /// The client, rebuilt first if the files changed and load cleanly (else the old one stays).
    pub fn get(&mut self) -> &reqwest::Client {
        let now = stamp(&self.tls);
        if now != self.stamp {
            match client(&self.tls) {
                Ok(c) => {
                    tracing::info!("TLS files changed: new client certificate in use");
                    self.client = c;
                    self.stamp = now;
                    self.rebuilds += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS files changed but cannot be loaded; keeping the previous ones")
                }
            }
        }
        &self.client
    }
}

/// What happened to one delivery attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Accepted,
    /// The agent refused the content; retrying the same report is pointless.
    Refused(String),
    /// The agent holds a newer generation.
    Stale(Option<u64>),
    /// Transport error or 5xx: retry.
    Failed(String),
}

pub async fn deliver(client: &reqwest::Client, base: &str, report: &Report) -> Delivery {
    let url = format!(
        "{}{}",
        base.trim_end_matches('/'),
        bgplb_proto::report_path(&report.cluster)
    );
    match client.put(&url).json(report).send().await {
        Ok(resp) if resp.status().is_success() => Delivery::Accepted,
        Ok(resp) => {
            let status = resp.status();
            let body: ErrorBody = resp.json().await.unwrap_or_default();
            let text = format!("{status}: {} {}", body.error, body.message);
            if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
                Delivery::Failed(text)
            } else if body.error == "stale-generation" {
                Delivery::Stale(body.accepted_generation)
            } else {
                let problems: Vec<String> = body
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect();
                Delivery::Refused(format!("{text} {}", problems.join("; ")))
            }
        }
        Err(e) => {
            use std::error::Error;
            let mut msg = e.to_string();
            let mut src = e.source();
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            Delivery::Failed(msg)
        }
    }
}

/// Exponential backoff with ±20 % jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1)
        .saturating_mul(2u32.saturating_pow(attempt.min(5)))
        .min(Duration::from_secs(30));
    let jitter = 0.8 + fastrand::f64() * 0.4;
    base.mul_f64(jitter)
}

/// Sends the latest report to the agent at `base` forever.
pub async fn sender(
    mut client: RotatingClient,
    base: String,
    mut latest: watch::Receiver<Option<Arc<Report>>>,
    floor: Arc<AtomicU64>,
    telemetry: Arc<crate::serve::Telemetry>,
) {
    let mut delivered: Option<u64> = None;
    let mut attempt = 0u32;
    loop {
        let report = latest.borrow_and_update().clone();
        let pending = report.filter(|r| Some(r.generation) != delivered);
        let Some(report) = pending else {
            if latest.changed().await.is_err() {
                return;
            }
            continue;
        };
        let rebuilds = client.rebuilds;
        let http = client.get().clone();
        if client.rebuilds != rebuilds {
            telemetry.tls_reloads.inc();
        }
        let delivery = deliver(&http, &base, &report).await;
        telemetry.delivered(
            &base,
            match &delivery {
                Delivery::Accepted => "accepted",
                Delivery::Refused(_) => "refused",
                Delivery::Stale(_) => "stale",
                Delivery::Failed(_) => "failed",
            },
        );
        match delivery {
            Delivery::Accepted => {
                tracing::debug!(agent = %base, generation = report.generation, "report delivered");
                delivered = Some(report.generation);
                attempt = 0;
            }
            Delivery::Refused(why) => {
                tracing::error!(agent = %base, generation = report.generation, %why, "the agent refused the report");
                delivered = Some(report.generation);
                attempt = 0;
            }
            Delivery::Stale(have) => {
                let have = have.unwrap_or(report.generation);
                floor.fetch_max(have, Ordering::SeqCst);
                tracing::warn!(agent = %base, generation = report.generation, have, "the agent holds a newer generation; the next report goes above it");
                delivered = Some(report.generation);
            }
            Delivery::Failed(why) => {
                let wait = backoff(attempt);
                attempt = attempt.saturating_add(1);
                tracing::warn!(agent = %base, %why, retry_in = ?wait, "cannot deliver the report");
                // Retry after the backoff, or at once with a newer report.
                let _ = tokio::time::timeout(wait, latest.changed()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_follows_rotated_files_and_survives_a_broken_rotation() {
        let pki = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/pki");
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "ca.crt",
            "companion-home.crt",
            "companion-home.key",
            "companion-lab.crt",
            "companion-lab.key",
        ] {
            std::fs::copy(pki.join(f), dir.path().join(f)).unwrap();
        }
        let tls = TlsFiles {
            ca: dir.path().join("ca.crt"),
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        std::fs::copy(dir.path().join("companion-home.crt"), &tls.cert).unwrap();
        std::fs::copy(dir.path().join("companion-home.key"), &tls.key).unwrap();
        let mut c = RotatingClient::new(&tls).unwrap();
        c.get();
        assert_eq!(c.rebuilds, 0);
        // Rotation (mtime moves on): rebuilt.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::copy(dir.path().join("companion-lab.crt"), &tls.cert).unwrap();
        std::fs::copy(dir.path().join("companion-lab.key"), &tls.key).unwrap();
        c.get();
        assert_eq!(c.rebuilds, 1);
        // A broken rotation keeps the working client.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&tls.key, "garbage").unwrap();
        c.get();
        assert_eq!(c.rebuilds, 1);
    }

    #[test]
    fn backoff_grows_to_thirty_seconds_with_jitter() {
        for _ in 0..50 {
            let first = backoff(0);
            assert!(
                first >= Duration::from_millis(800) && first <= Duration::from_millis(1200),
                "{first:?}"
            );
            let late = backoff(20);
            assert!(
                late >= Duration::from_secs(24) && late <= Duration::from_secs(36),
                "{late:?}"
            );
        }
    }
}
