//! The wire contract between bgplb-companion and bgplb-agent: JSON over mutual-TLS HTTPS.
//!
//! ```text
//! companion ── PUT /v1/clusters/{cluster}/report  (Report)  ──▶ agent
//!           ◀── 202 ReportAccepted | 4xx ErrorBody ──────────
//! companion ── GET /v1/status ──▶ agent   (AgentStatus)
//! ```
//!
//! Rules for rolling upgrades: every type tolerates unknown fields (no `deny_unknown_fields`) and
//! every field added later has a default, so an older agent reads a newer companion's report and
//! the other way round. [`SCHEMA_VERSION`] changes only for a change an old reader must refuse.
//! Reports carry a generation that only grows; the agent refuses an older one.
//!
//! Addresses that the agent must judge (a VIP that might be a prefix) travel as strings, so a bad
//! value is a clear refusal naming it instead of a JSON type error.

use serde::{Deserialize, Serialize};

/// The schema version this crate speaks.
pub const SCHEMA_VERSION: u32 = 1;

/// Path of the report endpoint for `cluster`.
pub fn report_path(cluster: &str) -> String {
    format!("/v1/clusters/{cluster}/report")
}

/// The identity a companion's client certificate carries (URI SAN) to report for `cluster`.
pub fn identity(cluster: &str) -> String {
    format!("{CLUSTER_IDENTITY_PREFIX}{cluster}")
}

/// Prefix of a cluster's identity.
pub const CLUSTER_IDENTITY_PREFIX: &str = "spiffe://bgplb/cluster/";

/// The identity of an operator's certificate: status of every cluster, probes to any pool
/// address. A cluster's certificate sees and probes only its own cluster.
pub const OPERATOR_IDENTITY: &str = "spiffe://bgplb/operator";

/// What the companion observed in its cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(default = "schema_version")]
    pub schema: u32,
    /// Must match the URL and the client certificate's identity.
    pub cluster: String,
    /// Grows with every report the companion sends (it survives restarts: it is time-based).
    pub generation: u64,
    /// RFC 3339, when the companion took the snapshot.
    pub observed_at: String,
    #[serde(default)]
    pub cilium: Cilium,
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub pools: Vec<Pool>,
    #[serde(default)]
    pub services: Vec<Service>,
    /// CiliumL2AnnouncementPolicy objects still present (names): L2 announcements alive.
    #[serde(default)]
    pub l2_announcement_policies: Vec<String>,
}

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// The installed Cilium and which BGP API the cluster uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cilium {
    /// E.g. "1.18.2"; `None` when the companion could not tell.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub bgp_api: BgpApi,
}

impl Cilium {
    /// Cilium 1.19's BGP control plane advertises `externalTrafficPolicy: Local` Services from
    /// every node, endpoint or not (cilium/cilium#44803; 1.18 honours the policy). The same rule
    /// as `bgplb_cilium::CiliumVersion::advertises_local_services_everywhere`.
    pub fn advertises_local_services_everywhere(&self) -> bool {
        let Some(v) = self.version.as_deref() else {
            return false;
        };
        let mut parts = v.trim().trim_start_matches(['v', 'V']).split('.');
        parts.next() == Some("1") && parts.next() == Some("19")
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BgpApi {
    /// No BGP objects found.
    #[default]
    None,
    /// CiliumBGPPeeringPolicy (v2alpha1, removed in Cilium 1.19).
    PeeringPolicy,
    /// CiliumBGPClusterConfig and friends, cilium.io/v2alpha1 (Cilium 1.16-1.17).
    V2alpha1,
    /// CiliumBGPClusterConfig and friends, cilium.io/v2 (Cilium 1.18+).
    V2,
    /// Something this version does not know (a newer companion).
    #[serde(other)]
    Unknown,
}

/// A Kubernetes node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    /// InternalIP addresses, as strings.
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub ipv6: Option<String>,
    /// The Ready condition is True.
    #[serde(default)]
    pub ready: bool,
    /// Cordoned (`spec.unschedulable`): about to be drained.
    #[serde(default)]
    pub unschedulable: bool,
    /// `metadata.deletionTimestamp` is set.
    #[serde(default)]
    pub deleting: bool,
}

/// A CiliumLoadBalancerIPPool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub name: String,
    /// CIDRs or `START-STOP` ranges (from `blocks` or the older `cidrs`).
    #[serde(default)]
    pub blocks: Vec<String>,
    #[serde(default)]
    pub disabled: bool,
    /// Addresses allocated / available, from the pool's status when present.
    #[serde(default)]
    pub used: u64,
    #[serde(default)]
    pub total: u64,
}

/// A Service of type LoadBalancer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// `status.loadBalancer.ingress[].ip`; each must be a host address inside a pool.
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
    /// `Cluster` or `Local`.
    #[serde(default)]
    pub external_traffic_policy: String,
    /// Nodes with a ready endpoint (from EndpointSlices): with `Local`, only these announce.
    #[serde(default)]
    pub ready_nodes: Vec<String>,
    /// `lbipam.cilium.io/sharing-key`.
    #[serde(default)]
    pub sharing_key: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "TCP".into()
}

/// 202 answer to an accepted report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAccepted {
    pub cluster: String,
    pub generation: u64,
    /// The same report was received before (a retry): nothing new.
    #[serde(default)]
    pub duplicate: bool,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Body of every 4xx/5xx answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable kind, e.g. `invalid-report`, `stale-generation`.
    pub error: String,
    /// One sentence for a human.
    pub message: String,
    /// Every problem found, each with the JSON path it concerns.
    #[serde(default)]
    pub problems: Vec<Problem>,
    /// With `stale-generation`: the generation the agent holds; a newer report must exceed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_generation: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// `POST /v1/probe`: TCP connections from the gateway to VIPs (the migration's verify phase).
pub const PROBE_PATH: &str = "/v1/probe";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRequest {
    pub targets: Vec<ProbeTarget>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTarget {
    pub ip: String,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResponse {
    pub results: Vec<ProbeOutcome>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    pub ip: String,
    pub port: u16,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub millis: u64,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub gateway: String,
    pub asn: u32,
    #[serde(default)]
    pub generation: Option<i64>,
    #[serde(default)]
    pub last_apply_error: Option<String>,
    /// Why FRR's configuration file lacks what FRR runs (a failed `write memory`), if it does.
    #[serde(default)]
    pub unsaved: Option<String>,
    /// Set when a rollback pinned a generation: the agent keeps it until unpinned.
    #[serde(default)]
    pub pinned: Option<String>,
    /// Why the state database cannot record an apply (a full or read-only file system), if it
    /// cannot: the agent then changes nothing in FRR until it can.
    #[serde(default)]
    pub store_problem: Option<String>,
    #[serde(default)]
    pub frr_error: Option<String>,
    /// The FRR release the gateway runs (`major.minor`), when FRR answered.
    #[serde(default)]
    pub frr_version: Option<String>,
    #[serde(default)]
    pub clusters: Vec<ClusterStatus>,
    #[serde(default)]
    pub peers: Vec<PeerStatus>,
    /// The gateway's own checks: segment, ECMP, sessions, liveness, FIB, L2 conflicts.
    #[serde(default)]
    pub kernel_checks: Vec<Check>,
    /// Every node's liveness as the gateway sees it.
    #[serde(default)]
    pub nodes: Vec<NodeLiveness>,
}

/// One node's liveness: probes from the gateway plus the companion's signals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeLiveness {
    pub cluster: String,
    pub node: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    /// `up`, `drained` (routes de-preferred) or `down` (sessions shut).
    pub state: String,
    #[serde(default)]
    pub reason: String,
    /// When the state last changed (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub transitions: u64,
    #[serde(default)]
    pub probe_rtt_ms: Option<f64>,
    /// The node answered a probe at least once (until then probes cannot take it down).
    #[serde(default)]
    pub answered: bool,
    /// Held down by flap damping.
    #[serde(default)]
    pub suppressed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// Passes, but needs attention.
    #[serde(default)]
    pub warning: bool,
    #[serde(default)]
    pub details: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub name: String,
    /// Generation of the last accepted report.
    #[serde(default)]
    pub report_generation: Option<u64>,
    /// Seconds since the last accepted report (fail static: its state stays in force).
    #[serde(default)]
    pub report_age_seconds: Option<u64>,
    /// Whether the report is older than the staleness limit.
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub last_refusal: Option<String>,
    #[serde(default)]
    pub nodes: usize,
    #[serde(default)]
    pub services: usize,
    /// What the last report carried that the gateway ignores (pools and VIPs outside the site's
    /// pools, VIPs in disabled pools, L2 policies still present).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub cluster: String,
    pub node: String,
    pub family: String,
    pub address: String,
    pub state: String,
    #[serde(default)]
    pub accepted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_round_trip() {
        for fixture in [
            include_str!("../fixtures/report-home.json"),
            include_str!("../fixtures/report-minimal.json"),
        ] {
            let report: Report = serde_json::from_str(fixture).expect("fixture parses");
            let again: Report =
                serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
            assert_eq!(report, again);
        }
    }

    #[test]
    fn unknown_fields_and_values_are_tolerated() {
        let text = r#"{"schema": 1, "cluster": "home", "generation": 7, "observed_at": "2026-11-25T12:00:00Z",
            "future_field": {"x": 1}, "cilium": {"version": "1.20.0", "bgp_api": "v3", "more": true},
            "nodes": [{"name": "k8s-1", "ipv4": "172.29.51.11", "ready": true, "zone": "a"}]}"#;
        let r: Report = serde_json::from_str(text).unwrap();
        assert_eq!(r.cilium.bgp_api, BgpApi::Unknown);
        assert_eq!(r.nodes[0].name, "k8s-1");
        assert!(r.services.is_empty());
    }

    #[test]
    fn minimal_report_gets_defaults() {
        let r: Report =
            serde_json::from_str(include_str!("../fixtures/report-minimal.json")).unwrap();
        assert_eq!(r.schema, SCHEMA_VERSION);
        assert_eq!(r.cilium, Cilium::default());
    }
}
