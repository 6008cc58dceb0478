//! The controller's copy (`[agent.unifi]`). On UniFi OS versions whose Network application
//! manages FRR from an uploaded BGP configuration, a re-provision rewrites FRR from the
//! controller's copy, which would drop bgplb's part until the FRR watch re-asserts it. The agent
//! keeps that copy equal to its rendered configuration instead:
//!
//! `POST {controller}/proxy/network/v2/api/site/{site}/bgp/config` with the whole document
//! (`enabled`, `description`, `frr_bgpd_config`, `uploaded_file_name`) and the API key in
//! `X-API-KEY`; only when the current generation's configuration differs from the last one the
//! controller took, never more often than `min_interval`. It runs in its own task from the stored
//! generation: the liveness fast path (an overlay, never a generation) does not upload.

use std::time::{Duration, Instant};

use bgplb_site::UnifiSettings;
use serde::Serialize;

/// The document the controller stores.
#[derive(Debug, Clone, Serialize)]
pub struct BgpConfig<'a> {
    pub enabled: bool,
    pub description: &'a str,
    pub frr_bgpd_config: &'a str,
    pub uploaded_file_name: &'a str,
}

/// Uploads to one controller.
pub struct Uploader {
    settings: UnifiSettings,
    client: reqwest::Client,
    url: String,
}

impl Uploader {
    /// Builds the HTTPS client; fails on an unreadable CA file.
    pub fn new(settings: &UnifiSettings) -> Result<Uploader, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5));
        if let Some(ca) = &settings.ca {
            let pem =
                std::fs::read(ca).map_err(|e| format!("agent.unifi.ca {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("agent.unifi.ca {}: {e}", ca.display()))?;
            builder = builder.tls_certs_only(certs);
        } else if settings.insecure_loopback {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Uploader {
            url: format!(
                "{}/proxy/network/v2/api/site/{}/bgp/config",
                settings.controller.trim_end_matches('/'),
                settings.site
            ),
            settings: settings.clone(),
            client,
        })
    }

    /// Uploads `config` as the controller's whole BGP configuration.
    pub async fn upload(&self, config: &str) -> Result<(), String> {
        let key = std::fs::read_to_string(&self.settings.api_key_file).map_err(|e| {
            format!(
                "cannot read the API key file {}: {e}",
                self.settings.api_key_file.display()
            )
        })?;
        let body = BgpConfig {
            enabled: true,
            description: &self.settings.description,
            frr_bgpd_config: config,
            uploaded_file_name: &self.settings.uploaded_file_name,
        };
        let resp = self
            .client
            .post(&self.url)
            .header("X-API-KEY", key.trim())
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                use std::error::Error;
                let mut msg = format!("{}: {e}", self.url);
                let mut src = e.source();
                while let Some(s) = src {
                    msg.push_str(&format!(": {s}"));
                    src = s.source();
                }
                msg
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        Err(format!("{}: HTTP {status}: {text}", self.url))
    }
}

/// When to upload: the hash the controller last took, and when the last attempt was.
#[derive(Debug, Default)]
pub struct SyncState {
    pub uploaded: Option<String>,
    pub last_attempt: Option<Instant>,
    pub last_error: Option<String>,
}

impl SyncState {
    /// Whether `hash` (the current generation's) should go now.
    pub fn due(&self, hash: &str, min_interval: Duration, now: Instant) -> bool {
        self.uploaded.as_deref() != Some(hash)
            && self
                .last_attempt
                .is_none_or(|t| now.saturating_duration_since(t) >= min_interval)
    }

    pub fn in_sync(&self, hash: Option<&str>) -> bool {
        hash.is_some() && self.uploaded.as_deref() == hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_a_changed_configuration_at_most_once_per_interval() {
        let t0 = Instant::now();
        let every = Duration::from_secs(60);
        let mut s = SyncState::default();
        assert!(s.due("a", every, t0));
        s.last_attempt = Some(t0);
        s.uploaded = Some("a".into());
        assert!(
            !s.due("a", every, t0 + Duration::from_secs(3600)),
            "unchanged"
        );
        assert!(!s.due("b", every, t0 + Duration::from_secs(59)), "too soon");
        assert!(s.due("b", every, t0 + Duration::from_secs(60)));
        assert!(s.in_sync(Some("a")) && !s.in_sync(Some("b")) && !s.in_sync(None));
    }

    #[test]
    fn the_document_has_the_controllers_four_fields() {
        let v = serde_json::to_value(BgpConfig {
            enabled: true,
            description: "d",
            frr_bgpd_config: "router bgp 64512\n",
            uploaded_file_name: "bgplb-frr.conf",
        })
        .unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "description",
                "enabled",
                "frr_bgpd_config",
                "uploaded_file_name"
            ]
        );
    }
}
