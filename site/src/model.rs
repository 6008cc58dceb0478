//! The site file, as serde types. Defaults are the reference site's; `deny_unknown_fields`
//! everywhere so a typo is an error instead of a silently ignored setting.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One site: the gateway, the clusters behind it, the LB segment, the pools and the BGP policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    pub gateway: Gateway,
    #[serde(default)]
    pub clusters: Vec<Cluster>,
    pub segment: Segment,
    #[serde(default)]
    pub pools: Vec<Pool>,
    #[serde(default)]
    pub bgp: BgpPolicy,
    #[serde(default)]
    pub agent: AgentSettings,
    #[serde(default)]
    pub liveness: LivenessSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    #[serde(default = "default_gateway_name")]
    pub name: String,
    pub asn: u32,
    /// `bgp router-id`. Must be an IPv4 address (BGP identifiers are 32 bits); checked by
    /// `validate`. Leave it out on a gateway whose BGP already has a router-id: changing it resets
    /// every session, the operator's too, so bgplb refuses to while other peers exist.
    #[serde(default)]
    pub router_id: Option<IpAddr>,
    /// The gateway's addresses on the node network(s): what the nodes peer with.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

fn default_gateway_name() -> String {
    "gateway".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Used in FRR object names and matched against the companion's certificate identity.
    pub name: String,
    pub asn: u32,
    /// Subnets node addresses must be in (IPv4 and/or IPv6).
    pub node_subnets: Vec<IpNet>,
    /// Addresses in the node subnets that are never nodes (the API VIP, the gateway).
    #[serde(default)]
    pub reserved: Vec<IpAddr>,
    /// More nodes than this in a report is refused.
    #[serde(default = "default_max_nodes")]
    pub max_nodes: usize,
    /// Nodes known before any report: their sessions are rendered from the site file alone.
    #[serde(default)]
    pub nodes: Vec<StaticNode>,
    /// Accept a report that leaves the cluster without neighbours (no node at all, or none in a
    /// family that has sessions now). Off by default: one bad report must not drop every session.
    #[serde(default)]
    pub allow_empty_reports: bool,
}

fn default_max_nodes() -> usize {
    64
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticNode {
    pub name: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentMode {
    /// No host address in the segment; an unreachable route per segment prefix.
    #[default]
    Routed,
    /// The agent creates and owns a VLAN interface with the gateway addresses.
    Vlan,
    /// An interface made by someone else (e.g. the UniFi controller's br52): verified, never changed.
    Adopt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    #[serde(default)]
    pub mode: SegmentMode,
    #[serde(default = "default_vlan")]
    pub vlan: u16,
    /// `vlan` mode: the link the VLAN interface is created on.
    pub parent: Option<String>,
    /// `adopt` mode: the existing interface; `vlan` mode: the name to create (default `PARENT.VLAN`).
    pub interface: Option<String>,
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    /// `vlan`/`adopt` mode: the gateway's own addresses inside the segment.
    #[serde(default)]
    pub gateway_addresses: Vec<IpAddr>,
}

fn default_vlan() -> u16 {
    52
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    /// `START-STOP` ranges or CIDRs, as in Cilium's pool `blocks`.
    pub blocks: Vec<String>,
    /// A disabled pool accepts no routes (Cilium allocates nothing new from it either).
    #[serde(default)]
    pub disabled: bool,
    /// Restrict the pool to one cluster; by default every cluster may announce from it.
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BgpPolicy {
    /// Standard community `ASN:VALUE` carried by LB routes.
    pub community: String,
    /// Accept only routes carrying the community (otherwise the gateway adds it).
    pub require_community: bool,
    pub keepalive: u16,
    pub hold: u16,
    pub connect_retry: u16,
    pub graceful_restart: bool,
    pub restart_time: u32,
    pub stalepath_time: u32,
    /// Prefixes per session (received, refused ones included) before FRR tears the session down.
    pub maximum_prefix: u32,
    /// Minutes until FRR re-establishes a session torn down by maximum-prefix; 0 keeps it down.
    pub maximum_prefix_restart: u16,
    /// File holding the TCP MD5 password (the same secret the cluster side uses).
    pub password_file: Option<PathBuf>,
    pub ebgp_multihop: Option<u8>,
    /// Overrides the ECMP width (default: the node count, capped at 64).
    pub maximum_paths: Option<u16>,
}

impl Default for BgpPolicy {
    fn default() -> Self {
        BgpPolicy {
            community: "64512:100".into(),
            require_community: true,
            keepalive: 3,
            hold: 9,
            connect_retry: 5,
            graceful_restart: true,
            restart_time: 120,
            stalepath_time: 360,
            maximum_prefix: 256,
            maximum_prefix_restart: 5,
            password_file: None,
            ebgp_multihop: None,
            maximum_paths: None,
        }
    }
}

/// How the gateway probes a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LivenessMethod {
    /// ICMP echo to the node's addresses (raw sockets; the agent runs as root).
    #[default]
    Icmp,
    /// TCP connect to `tcp_port`: a SYN-ACK or a RST both mean the node is alive.
    Tcp,
}

/// Node liveness (`[liveness]`): the gateway probes every node it peers with and shuts a dead
/// node's sessions at once, instead of waiting for the hold timer plus graceful restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LivenessSettings {
    /// Probe nodes. Companion signals (NotReady, cordoned) act either way.
    pub enabled: bool,
    pub method: LivenessMethod,
    /// `tcp` method: the port to connect to (179: Cilium does not listen there, so the node's
    /// kernel answers with a RST, which proves it alive).
    pub tcp_port: u16,
    /// Milliseconds between probes.
    pub interval_ms: u64,
    /// Probes in a row without an answer before a node is down; `interval_ms × misses` is the
    /// detection time. Many small probes tolerate random loss: 30% loss gives 16 misses in a row
    /// with a probability of 4·10⁻⁹ per probe.
    pub misses: u32,
    /// Seconds a node that was down must answer without a miss before its sessions come back.
    pub hold_down: u64,
    /// Seconds a node that turned Ready again stays de-preferred.
    pub settle: u64,
    /// Flap damping: every down adds 1 to a penalty that halves every `flap_half_life` seconds;
    /// at `flap_suppress` the node stays down until the penalty is below `flap_reuse`.
    pub flap_half_life: u64,
    pub flap_suppress: f64,
    pub flap_reuse: f64,
}

impl Default for LivenessSettings {
    fn default() -> Self {
        LivenessSettings {
            enabled: true,
            method: LivenessMethod::Icmp,
            tcp_port: 179,
            interval_ms: 50,
            misses: 16,
            hold_down: 5,
            settle: 30,
            flap_half_life: 60,
            flap_suppress: 3.0,
            flap_reuse: 1.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// Persistent state (SQLite, rendered files); under /data on a UniFi gateway.
    pub data_dir: PathBuf,
    /// The mutual-TLS API the companion reports to.
    pub listen: SocketAddr,
    /// Plain HTTP for /healthz, /readyz and /metrics (no client certificate); `None` disables it
    /// (`metrics_listen = "off"` in the file: a missing key means the default address).
    #[serde(with = "off_or_addr")]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds without a report after which status calls a cluster's report stale. The last
    /// report stays in force regardless (fail static).
    pub report_stale_after: u64,
    /// Seconds between checks that FRR still runs the current generation (drift is re-applied).
    pub drift_check_interval: u64,
    /// Reports one cluster may send per minute on average; beyond that (and the burst) the API
    /// answers 429 with Retry-After, so a companion gone wild cannot starve the other clusters.
    pub reports_per_minute: u32,
    /// Reports one cluster may send at once before `reports_per_minute` applies.
    pub report_burst: u32,
    pub tls: TlsSettings,
    pub frr: FrrSettings,
    pub retention: Retention,
    /// Keep the UniFi Network application's uploaded BGP configuration equal to bgplb's
    /// (`[agent.unifi]`; off without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unifi: Option<UnifiSettings>,
}

/// How much history the state database keeps: the newest `generations` generations and
/// `events` events, none older than `max_age_days` days. The current generation, the one
/// before it (what `rollback` goes back to) and a pinned one are never removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub generations: u32,
    pub events: u32,
    pub max_age_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            generations: 1000,
            events: 10000,
            max_age_days: 365,
        }
    }
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            data_dir: PathBuf::from("/data/bgplb"),
            listen: "172.29.51.1:7443".parse().expect("valid literal"),
            metrics_listen: Some("127.0.0.1:9478".parse().expect("valid literal")),
            report_stale_after: 300,
            drift_check_interval: 60,
            reports_per_minute: 120,
            report_burst: 20,
            tls: TlsSettings::default(),
            frr: FrrSettings::default(),
            retention: Retention::default(),
            unifi: None,
        }
    }
}

/// `[agent.unifi]`: on UniFi OS versions whose Network application manages FRR from an uploaded
/// BGP configuration, a re-provision rewrites FRR from the controller's copy. The agent keeps that
/// copy equal to its rendered configuration through the controller's API: the whole document
/// each time, only when the rendered configuration changed, never more often than
/// `min_interval`, never in the failover fast path (liveness changes are not generations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnifiSettings {
    /// The controller's base URL: on the gateway itself `https://127.0.0.1`.
    pub controller: String,
    /// The UniFi site (`default` on a single-site console).
    pub site: String,
    /// File holding an API key (UniFi Network → Control Plane → Integrations), sent as
    /// `X-API-KEY`.
    pub api_key_file: PathBuf,
    /// PEM certificate(s) to trust for the controller (its self-signed certificate will do).
    pub ca: Option<PathBuf>,
    /// Trust the controller's certificate without checking it: only for `https://127.0.0.1`
    /// on the gateway itself, where no one else is on the path.
    pub insecure_loopback: bool,
    /// Seconds between two uploads at least.
    pub min_interval: u64,
    /// The upload's description and file name in the Network application.
    pub description: String,
    pub uploaded_file_name: String,
}

impl Default for UnifiSettings {
    fn default() -> Self {
        UnifiSettings {
            controller: "https://127.0.0.1".into(),
            site: "default".into(),
            api_key_file: PathBuf::from("/data/bgplb/unifi-api-key"),
            ca: None,
            insecure_loopback: false,
            min_interval: 60,
            description: "bgplb: Kubernetes LoadBalancer routes (managed by bgplb-agent)".into(),
            uploaded_file_name: "bgplb-frr.conf".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            cert: PathBuf::from("/data/bgplb/tls/agent.crt"),
            key: PathBuf::from("/data/bgplb/tls/agent.key"),
            client_ca: PathBuf::from("/data/bgplb/tls/ca.crt"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrrSettings {
    pub vtysh: PathBuf,
    /// FRR instance name (`vtysh -N`), for FRR running with `-N`; empty for the default instance.
    pub instance: Option<String>,
    /// `write memory` after a verified apply, so FRR restarts with the applied config.
    pub save: bool,
    /// Upper bound for one vtysh call, in seconds.
    pub timeout: u64,
    /// Where FRR's daemons put their vty sockets (`bgpd.vty`, or `INSTANCE/bgpd.vty` with
    /// `instance`): the fast path writes liveness changes there without starting vtysh.
    pub vty_dir: PathBuf,
    /// How often (milliseconds) the agent reads bgpd's running configuration from its vty
    /// socket to notice at once when FRR was restarted, reloaded or edited by someone else; 0
    /// leaves it to `drift_check_interval`.
    pub watch_interval_ms: u64,
    /// Re-applies after FRR was changed by someone else, at most `fight_limit` within
    /// `fight_window` seconds: one more and the agent stops re-applying (alerting in status,
    /// metrics and events) until FRR runs bgplb's configuration again (`bgplb-agent apply`).
    pub fight_limit: u32,
    pub fight_window: u64,
}

impl Default for FrrSettings {
    fn default() -> Self {
        FrrSettings {
            vtysh: PathBuf::from("/usr/bin/vtysh"),
            instance: None,
            save: true,
            timeout: 30,
            vty_dir: PathBuf::from("/var/run/frr"),
            watch_interval_ms: 1000,
            fight_limit: 5,
            fight_window: 600,
        }
    }
}

/// An optional listen address written as `"off"` when absent, so that a missing key can keep
/// meaning the default and a file written back reads the same.
mod off_or_addr {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.serialize_str(&a.to_string()),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text == "off" {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an address:port (e.g. 127.0.0.1:9478) or \"off\""
            ))
        })
    }
}

#[cfg(test)]
mod metrics_listen_tests {
    #[test]
    fn metrics_can_be_turned_off_and_stay_off_when_written_back() {
        let base = include_str!("../../config/site.toml");
        let with = |line: &str| base.replace("metrics_listen = \"127.0.0.1:9478\"", line);
        let off = crate::parse(&with("metrics_listen = \"off\"")).unwrap();
        assert_eq!(off.agent.metrics_listen, None);
        let again = crate::parse(&toml::to_string(&off).unwrap()).unwrap();
        assert_eq!(again.agent.metrics_listen, None, "written back as \"off\"");
        let default = crate::parse(&with("")).unwrap();
        assert_eq!(
            default.agent.metrics_listen,
            Some("127.0.0.1:9478".parse().unwrap())
        );
        let err = crate::parse(&with("metrics_listen = \"nowhere\"")).unwrap_err();
        assert!(
            err.to_string().contains("`nowhere` is not an address:port"),
            "{err}"
        );
    }
}
