//! The companion's configuration: a TOML file, with the cluster name and agent URLs also
//! settable from the environment (BGPLB_CLUSTER, BGPLB_AGENTS) for the Deployment.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The cluster this companion reports for (its certificate must carry its identity).
    pub cluster: String,
    /// Base URLs of the agents, e.g. `https://172.29.51.1:7443`.
    pub agents: Vec<String>,
    pub tls: TlsFiles,
    /// Seconds between reports when nothing changes.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: u64,
    /// Changes within this many milliseconds go into one report.
    #[serde(default = "default_debounce")]
    pub debounce_ms: u64,
    #[serde(default)]
    pub leader_election: LeaderElection,
    #[serde(default)]
    pub cilium: CiliumLocation,
    /// Health (`/healthz`, `/readyz`) and metrics (`/metrics`) over plain HTTP, e.g.
    /// `0.0.0.0:9477`; absent or `"off"`: not served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

fn default_heartbeat() -> u64 {
    30
}

fn default_debounce() -> u64 {
    500
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// CA that signed the agents' server certificates.
    pub ca: PathBuf,
    /// Client certificate with the URI SAN spiffe://bgplb/cluster/<cluster>, and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderElection {
    pub enabled: bool,
    pub namespace: String,
    pub lease_name: String,
    pub lease_seconds: u32,
}

impl Default for LeaderElection {
    fn default() -> Self {
        LeaderElection {
            enabled: true,
            namespace: "bgplb".into(),
            lease_name: "bgplb-companion".into(),
            lease_seconds: 15,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CiliumLocation {
    pub namespace: String,
    pub daemonset: String,
}

impl Default for CiliumLocation {
    fn default() -> Self {
        CiliumLocation {
            namespace: "kube-system".into(),
            daemonset: "cilium".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid companion configuration: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid companion configuration: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(
        path: &Path,
        cluster: Option<String>,
        agents: Vec<String>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if let Some(c) = cluster {
            config.cluster = c;
        }
        if !agents.is_empty() {
            config.agents = agents;
        }
        config.validate()?;
        Ok(config)
    }

    /// Where health and metrics are served, if anywhere.
    pub fn listen_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        match self.listen.as_deref() {
            None | Some("off") => Ok(None),
            Some(a) => a.parse().map(Some).map_err(|_| {
                format!("listen: `{a}` is not an address:port such as 0.0.0.0:9477 (or \"off\")")
            }),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.cluster.is_empty() {
            problems.push("cluster is empty".to_string());
        }
        if self.agents.is_empty() {
            problems.push("agents: at least one agent URL is required".to_string());
        }
        for a in &self.agents {
            if !a.starts_with("https://") {
                problems.push(format!(
                    "agents: `{a}` must be an https:// URL (the API is mutual TLS)"
                ));
            }
        }
        if self.heartbeat == 0 {
            problems.push("heartbeat must be at least 1 second".into());
        }
        if self.leader_election.lease_seconds < 2 {
            problems.push("leader_election.lease_seconds must be at least 2".into());
        }
        if let Err(e) = self.listen_addr() {
            problems.push(e);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_loads_and_env_overrides_apply() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/kubernetes/base/companion.toml");
        let c = Config::load(&path, None, Vec::new()).unwrap();
        assert_eq!(c.cluster, "home");
        assert_eq!(c.agents, ["https://172.29.51.1:7443"]);
        let c = Config::load(
            &path,
            Some("lab".into()),
            vec!["https://10.0.0.1:7443".into()],
        )
        .unwrap();
        assert_eq!(
            (c.cluster.as_str(), c.agents[0].as_str()),
            ("lab", "https://10.0.0.1:7443")
        );
    }

    #[test]
    fn bad_configuration_is_named() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/kubernetes/base/companion.toml");
        let err = Config::load(&path, None, vec!["http://172.29.51.1:7443".into()]).unwrap_err();
        assert!(err.to_string().contains("must be an https:// URL"), "{err}");
    }
}
