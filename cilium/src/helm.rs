//! Cilium Helm values for BGP-announced LoadBalancer IPs with direct server return.
//!
//! Choices (Cilium's kube-proxy-free guide, "Direct Server Return"):
//! - `loadBalancer.mode: dsr` needs the kube-proxy replacement (`kubeProxyReplacement: "true"`,
//!   the quoted string the chart documents).
//! - DSR's default dispatch (`dsrDispatch: opt`, an IPv4 option / IPv6 extension header) only
//!   works with native routing; DSR with Geneve dispatch would also work in a Geneve tunnel, but
//!   not with VXLAN. bgplb chooses **native routing with `opt` dispatch**: the nodes share one L2
//!   segment (the node VLAN), so `autoDirectNodeRoutes: true` installs the pod routes between
//!   them, and no encapsulation shrinks the MTU.
//! - Native routing with masquerading needs `ipv4NativeRoutingCIDR` (the agent refuses to start
//!   without it): the pod CIDR, which the site file does not know, so it comes from
//!   [`crate::RenderOptions::pod_cidrs`].
//! - The kube-proxy replacement talks to the API server without kube-proxy's ClusterIP, so it
//!   needs `k8sServiceHost`/`k8sServicePort`: Talos' KubePrism (`localhost:7445`) by default,
//!   [`crate::RenderOptions::k8s_service_host`] / `k8s_service_port` otherwise.
//! - `l2announcements.enabled: false` at the end: the VIPs then live on a routed segment
//!   announced by BGP, and an L2 announcement left on is the ARP conflict bgplb removes.
//!
//! The values are an **overlay** (only the keys bgplb needs) in two [`Stage`]s, because a live
//! migration needs them in order: BGP on with L2 still on before `migrate` (every Service stays
//! announced while it moves), L2 off only after its `remove-l2` phase. Applied over the
//! operator's own values (`helm upgrade --reuse-values -f`, or listed after them), they keep the
//! rest (cgroup settings, IPAM, Hubble, ...).

use crate::version::CiliumVersion;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::naming;
use crate::session::Session;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmValues {
    /// `"true"`: the string form the chart documents (older charts also knew `strict`).
    pub kube_proxy_replacement: String,
    /// The API server as the kube-proxy replacement reaches it (Talos: KubePrism `localhost`).
    pub k8s_service_host: String,
    pub k8s_service_port: u16,
    pub routing_mode: String,
    pub auto_direct_node_routes: bool,
    #[serde(
        rename = "ipv4NativeRoutingCIDR",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_native_routing_cidr: Option<IpNet>,
    #[serde(
        rename = "ipv6NativeRoutingCIDR",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_native_routing_cidr: Option<IpNet>,
    /// Present (enabled) when the cluster has IPv6 pools: Cilium only advertises routes of the
    /// address families it runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Enabled>,
    pub load_balancer: LoadBalancer,
    pub bgp_control_plane: BgpControlPlane,
    pub l2announcements: Enabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    pub mode: String,
    pub dsr_dispatch: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpControlPlane {
    pub enabled: bool,
    /// Where `authSecretRef` Secrets are read from; rendered when the site has a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_namespace: Option<SecretsNamespace>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsNamespace {
    pub create: bool,
    pub name: String,
}

/// Talos' KubePrism: the API server on every node at `localhost:7445`.
pub const KUBEPRISM_HOST: &str = "localhost";
pub const KUBEPRISM_PORT: u16 = 7445;

/// Where a live migration is: which values to apply when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Before `migrate`: BGP control plane on, L2 announcements still on.
    Bgp,
    /// After `migrate`'s remove-l2 phase: L2 announcements off.
    Final,
}

impl Stage {
    pub const ALL: [Stage; 2] = [Stage::Bgp, Stage::Final];

    /// The file `render --out DIR` writes this stage's values to.
    pub fn file_name(self) -> &'static str {
        match self {
            Stage::Bgp => naming::HELM_VALUES_BGP_FILE,
            Stage::Final => naming::HELM_VALUES_FINAL_FILE,
        }
    }

    /// When to apply it, one sentence.
    pub fn when(self) -> &'static str {
        match self {
            Stage::Bgp => {
                "stage 1 of 2, apply before `bgplb-companion migrate`: it turns Cilium's BGP \
                 control plane on and leaves L2 announcements on, so every Service stays \
                 reachable while the migration moves it"
            }
            Stage::Final => {
                "stage 2 of 2, apply after the migration's remove-l2 phase (migrate says when): \
                 it turns L2 announcements off"
            }
        }
    }
}

/// The API server address for the kube-proxy replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiServer {
    pub host: String,
    pub port: u16,
}

impl Default for ApiServer {
    fn default() -> Self {
        ApiServer {
            host: KUBEPRISM_HOST.to_string(),
            port: KUBEPRISM_PORT,
        }
    }
}

pub fn values(
    session: &Session,
    pod_cidrs: &[IpNet],
    ipv6_pools: bool,
    api_server: &ApiServer,
    stage: Stage,
) -> HelmValues {
    HelmValues {
        kube_proxy_replacement: "true".to_string(),
        k8s_service_host: api_server.host.clone(),
        k8s_service_port: api_server.port,
        routing_mode: "native".to_string(),
        auto_direct_node_routes: true,
        ipv4_native_routing_cidr: pod_cidrs.iter().copied().find(|n| n.addr().is_ipv4()),
        ipv6_native_routing_cidr: pod_cidrs.iter().copied().find(|n| n.addr().is_ipv6()),
        ipv6: ipv6_pools.then_some(Enabled { enabled: true }),
        load_balancer: LoadBalancer {
            mode: "dsr".to_string(),
            dsr_dispatch: "opt".to_string(),
        },
        bgp_control_plane: BgpControlPlane {
            enabled: true,
            secrets_namespace: session.auth_secret.as_ref().map(|_| SecretsNamespace {
                create: false,
                name: naming::SECRETS_NAMESPACE.to_string(),
            }),
        },
        l2announcements: Enabled {
            enabled: stage == Stage::Bgp,
        },
    }
}

/// The `helm upgrade` line that applies `file` over the operator's values, pinned to the
/// installed Cilium: with `--reuse-values` and no `--version`, helm would upgrade Cilium to the
/// newest chart. A version without a patch level pins the minor release (`1.18.x`).
pub fn upgrade_line(cilium_namespace: &str, version: &CiliumVersion, file: &str) -> String {
    let pin = match version.patch {
        Some(_) => version.to_string(),
        None => format!("{}.{}.x", version.major, version.minor),
    };
    format!(
        "helm upgrade cilium cilium/cilium -n {cilium_namespace} --version {pin} --reuse-values -f {file}"
    )
}

/// The comment block above one stage's values.
pub fn header(
    session: &Session,
    api_server: &ApiServer,
    cilium_namespace: &str,
    version: &CiliumVersion,
    stage: Stage,
) -> String {
    let mut lines = vec![
        "Cilium Helm values rendered by bgplb: BGP-announced LoadBalancer IPs with DSR.".to_string(),
        format!("This is {}.", stage.when()),
        format!(
            "An overlay on your own values: {}",
            upgrade_line(cilium_namespace, version, stage.file_name())
        ),
        "(or list it after your values file); keys it does not name keep your settings.".to_string(),
        "DSR (loadBalancer.mode dsr, dispatch opt) needs kubeProxyReplacement and native routing;".to_string(),
        "autoDirectNodeRoutes works because the nodes share the node VLAN. Native routing needs".to_string(),
        "ipv4NativeRoutingCIDR (and ipv6NativeRoutingCIDR) set to the cluster's pod CIDRs (--pod-cidr).".to_string(),
        "If your values do not have routingMode native and DSR yet, changing them restarts the".to_string(),
        "Cilium agents' datapath: apply stage 1 in a maintenance window, or drop those keys (BGP".to_string(),
        "announcements work with tunnelling and SNAT too).".to_string(),
        format!(
            "k8sServiceHost/k8sServicePort {}:{}: the API server without kube-proxy{}.",
            api_server.host,
            api_server.port,
            if *api_server == ApiServer::default() {
                " (Talos KubePrism; elsewhere render with --k8s-service-host/--k8s-service-port)"
            } else {
                ""
            }
        ),
        match stage {
            Stage::Bgp => "l2announcements stays on until the migration has moved every Service.".to_string(),
            Stage::Final => "l2announcements off: an L2 announcement for a VIP is the ARP conflict bgplb removes.".to_string(),
        },
        format!(
            "Connect retry: Cilium's default is 120 s, so a session lost when the gateway restarts can take two minutes to come back; bgplb sets connectRetryTimeSeconds to the site's {} s in the BGP peer settings (not a Helm value).",
            session.connect_retry
        ),
    ];
    if let Some(secret) = &session.auth_secret {
        lines.push(format!(
            "BGP password: create Secret {secret} (key `password`) in {ns}, e.g. kubectl -n {ns} create secret generic {secret} --from-file=password=PASSWORD_FILE",
            ns = naming::SECRETS_NAMESPACE
        ));
    }
    lines.iter().map(|l| format!("# {l}\n")).collect()
}
