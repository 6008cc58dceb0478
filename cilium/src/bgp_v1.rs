//! The legacy CiliumBGPPeeringPolicy (`cilium.io/v2alpha1`, "BGPv1"): the only BGP API before
//! Cilium 1.16, deprecated in 1.18, removed in 1.19.
//!
//! One virtual router (the cluster's ASN) with one neighbor per gateway address. From 1.15 each
//! neighbor carries only its own address family (`families`) and the community is attached with
//! `advertisedPathAttributes` selecting bgplb's pools; 1.14 has neither field.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::bgp_v2::{advertised_services, linux_nodes, meta, GracefulRestart};
use crate::meta::LabelSelector;
use crate::meta::ObjectMeta;
use crate::naming;
use crate::session::{Peer, Session};
use crate::version::{CiliumVersion, V2ALPHA1};

pub const KIND: &str = "CiliumBGPPeeringPolicy";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeeringPolicy {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PeeringPolicySpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeeringPolicySpec {
    pub node_selector: LabelSelector,
    pub virtual_routers: Vec<VirtualRouter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualRouter {
    #[serde(rename = "localASN")]
    pub local_asn: u32,
    #[serde(rename = "exportPodCIDR")]
    pub export_pod_cidr: bool,
    /// Services whose LoadBalancer IPs are advertised (an absent selector advertises none).
    #[serde(rename = "serviceSelector")]
    pub service_selector: LabelSelector,
    pub neighbors: Vec<Neighbor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    /// A host prefix: `/32` or `/128`.
    #[serde(rename = "peerAddress")]
    pub peer_address: IpNet,
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    #[serde(
        rename = "authSecretRef",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_secret_ref: Option<String>,
    #[serde(
        rename = "eBGPMultihopTTL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ebgp_multihop_ttl: Option<u8>,
    #[serde(rename = "connectRetryTimeSeconds")]
    pub connect_retry_time_seconds: u32,
    #[serde(rename = "holdTimeSeconds")]
    pub hold_time_seconds: u32,
    #[serde(rename = "keepAliveTimeSeconds")]
    pub keep_alive_time_seconds: u32,
    #[serde(rename = "gracefulRestart")]
    pub graceful_restart: GracefulRestart,
    /// 1.15+: only this neighbor's own family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<Family>,
    /// 1.15+: the community on LB routes.
    #[serde(
        rename = "advertisedPathAttributes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub advertised_path_attributes: Vec<PathAttributes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub afi: String,
    pub safi: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathAttributes {
    pub selector_type: String,
    /// Which CiliumLoadBalancerIPPools' routes get the attributes.
    pub selector: LabelSelector,
    pub communities: crate::bgp_v2::Communities,
}

/// bgplb's pools for this cluster (their labels, see [`naming::labels`]).
pub fn bgplb_pools(cluster: &str) -> LabelSelector {
    LabelSelector {
        match_labels: naming::labels(cluster),
        match_expressions: Vec::new(),
    }
}

fn host_prefix(addr: IpAddr) -> IpNet {
    let len = if addr.is_ipv4() { 32 } else { 128 };
    // A full-length prefix is always valid.
    IpNet::new(addr, len).unwrap_or_else(|_| IpNet::from(addr))
}

pub fn peering_policy(
    cluster: &str,
    version: CiliumVersion,
    session: &Session,
    peers: &[Peer],
) -> BgpPeeringPolicy {
    let neighbors = peers
        .iter()
        .map(|p| Neighbor {
            peer_address: host_prefix(p.address),
            peer_asn: session.peer_asn,
            auth_secret_ref: session.auth_secret.clone(),
            ebgp_multihop_ttl: session.ebgp_multihop,
            connect_retry_time_seconds: session.connect_retry,
            hold_time_seconds: session.hold,
            keep_alive_time_seconds: session.keepalive,
            graceful_restart: GracefulRestart {
                enabled: session.graceful_restart,
                restart_time_seconds: session.graceful_restart.then_some(session.restart_time),
            },
            families: if version.peering_policy_has_families() {
                vec![Family {
                    afi: p.family.afi().to_string(),
                    safi: "unicast".to_string(),
                }]
            } else {
                Vec::new()
            },
            advertised_path_attributes: if version.peering_policy_has_path_attributes() {
                vec![PathAttributes {
                    selector_type: "CiliumLoadBalancerIPPool".to_string(),
                    selector: bgplb_pools(cluster),
                    communities: crate::bgp_v2::Communities {
                        standard: vec![session.community.clone()],
                    },
                }]
            } else {
                Vec::new()
            },
        })
        .collect();
    BgpPeeringPolicy {
        api_version: V2ALPHA1.to_string(),
        kind: KIND.to_string(),
        metadata: meta(naming::bgp_name(cluster), cluster),
        spec: PeeringPolicySpec {
            node_selector: linux_nodes(),
            virtual_routers: vec![VirtualRouter {
                local_asn: session.local_asn,
                export_pod_cidr: false,
                service_selector: advertised_services(),
                neighbors,
            }],
        },
    }
}
