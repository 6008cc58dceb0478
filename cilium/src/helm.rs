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
//! - `l2announcements.enabled: false`: the VIPs now live on a routed segment announced by BGP;
//!   an L2 announcement left on is exactly the ARP conflict bgplb removes.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::naming;
use crate::session::Session;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmValues {
    /// `"true"`: the string form the chart documents (older charts also knew `strict`).
    pub kube_proxy_replacement: String,
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

pub fn values(session: &Session, pod_cidrs: &[IpNet], ipv6_pools: bool) -> HelmValues {
    HelmValues {
        kube_proxy_replacement: "true".to_string(),
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
        l2announcements: Enabled { enabled: false },
    }
}

/// The comment block above the values in `cilium-values.yaml`.
pub fn header(session: &Session) -> String {
    let mut lines = vec![
        "Cilium Helm values rendered by bgplb: BGP-announced LoadBalancer IPs with DSR.".to_string(),
        "DSR (loadBalancer.mode dsr, dispatch opt) needs kubeProxyReplacement and native routing;".to_string(),
        "autoDirectNodeRoutes works because the nodes share the node VLAN. Native routing needs".to_string(),
        "ipv4NativeRoutingCIDR (and ipv6NativeRoutingCIDR) set to the cluster's pod CIDRs.".to_string(),
        "l2announcements stays off: an L2 announcement for a VIP is the ARP conflict bgplb removes.".to_string(),
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
