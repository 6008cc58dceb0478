//! The agent's API as the migration and validation use it: status and TCP probes.

use std::future::Future;

use bgplb_proto::{AgentStatus, ProbeOutcome, ProbeRequest, ProbeResponse, ProbeTarget};

/// What the migration asks the gateway agent. A trait so tests can stand in for the agent.
pub trait AgentApi: Send + Sync {
    fn status(&self) -> impl Future<Output = Result<AgentStatus, String>> + Send;
    fn probe(
        &self,
        targets: Vec<ProbeTarget>,
    ) -> impl Future<Output = Result<Vec<ProbeOutcome>, String>> + Send;
}

/// The real agent over mutual TLS.
pub struct HttpAgent {
    pub client: reqwest::Client,
    pub base: String,
}

impl AgentApi for HttpAgent {
    async fn status(&self) -> Result<AgentStatus, String> {
        let url = format!("{}/v1/status", self.base.trim_end_matches('/'));
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: {}", resp.status()));
        }
        resp.json().await.map_err(|e| format!("{url}: {e}"))
    }

    async fn probe(&self, targets: Vec<ProbeTarget>) -> Result<Vec<ProbeOutcome>, String> {
        let url = format!(
            "{}{}",
            self.base.trim_end_matches('/'),
            bgplb_proto::PROBE_PATH
        );
        let resp = self
            .client
            .post(&url)
            .json(&ProbeRequest { targets })
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return Err(format!("{url}: {status}: {body}"));
        }
        resp.json::<ProbeResponse>()
            .await
            .map(|r| r.results)
            .map_err(|e| format!("{url}: {e}"))
    }
}

/// No agent to ask: `migrate --dry-run` without the companion's configuration. The dry run asks
/// the agent nothing; if anything did, it would be told why there is no agent.
pub struct NoAgent;

impl AgentApi for NoAgent {
    async fn status(&self) -> Result<AgentStatus, String> {
        Err("no agent configured (a dry run without --config)".into())
    }

    async fn probe(&self, _targets: Vec<ProbeTarget>) -> Result<Vec<ProbeOutcome>, String> {
        Err("no agent configured (a dry run without --config)".into())
    }
}
