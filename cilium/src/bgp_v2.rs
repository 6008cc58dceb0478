//! The BGP resources of Cilium ≥ 1.16 (`cilium.io/v2alpha1` in 1.16-1.17, `cilium.io/v2` from
//! 1.18): one CiliumBGPClusterConfig with a peer per gateway address, one CiliumBGPPeerConfig per
//! address family (only that family's AFI, so IPv6 routes never go over an IPv4 session), and one
//! CiliumBGPAdvertisement for LoadBalancer IPs that both peer configs select by label.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::meta::{LabelSelector, ObjectMeta};
use crate::naming;
use crate::session::{Family, Peer, Session};
use crate::version::CiliumVersion;

pub const CLUSTER_CONFIG_KIND: &str = "CiliumBGPClusterConfig";
pub const PEER_CONFIG_KIND: &str = "CiliumBGPPeerConfig";
pub const ADVERTISEMENT_KIND: &str = "CiliumBGPAdvertisement";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpClusterConfig {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ClusterConfigSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfigSpec {
    pub node_selector: LabelSelector,
    pub bgp_instances: Vec<BgpInstance>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpInstance {
    pub name: String,
    #[serde(rename = "localASN")]
    pub local_asn: u32,
    pub peers: Vec<BgpPeer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpPeer {
    pub name: String,
    #[serde(rename = "peerAddress")]
    pub peer_address: IpAddr,
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    #[serde(rename = "peerConfigRef")]
    pub peer_config_ref: PeerConfigRef,
}

/// Only `name`: `group`/`kind` existed in v2alpha1 (defaulted) and were dropped in v2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConfigRef {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerConfig {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PeerConfigSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebgp_multihop: Option<u8>,
    pub families: Vec<AfiSafi>,
    pub graceful_restart: GracefulRestart,
    pub timers: Timers,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfiSafi {
    pub afi: String,
    pub safi: String,
    /// Which CiliumBGPAdvertisements this family announces (empty selects nothing).
    pub advertisements: LabelSelector,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GracefulRestart {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_time_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timers {
    pub connect_retry_time_seconds: u32,
    pub hold_time_seconds: u32,
    pub keep_alive_time_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpAdvertisement {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: AdvertisementSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvertisementSpec {
    pub advertisements: Vec<Advertisement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Advertisement {
    pub advertisement_type: String,
    pub service: ServiceAddresses,
    /// Services to advertise. Cilium advertises nothing for an empty selector.
    pub selector: LabelSelector,
    pub attributes: Attributes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAddresses {
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    pub communities: Communities,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Communities {
    pub standard: Vec<String>,
}

pub(crate) fn meta(name: String, cluster: &str) -> ObjectMeta {
    ObjectMeta {
        name,
        labels: naming::labels(cluster),
    }
}

/// Nodes that run BGP: every Linux node (`kubernetes.io/os` is set by the kubelet).
pub(crate) fn linux_nodes() -> LabelSelector {
    LabelSelector::label("kubernetes.io/os", "linux")
}

/// Every service, except those labelled `bgplb.io/no-advertise`.
pub(crate) fn advertised_services() -> LabelSelector {
    LabelSelector::without(naming::NO_ADVERTISE_KEY)
}

pub fn cluster_config(
    cluster: &str,
    version: CiliumVersion,
    session: &Session,
    peers: &[Peer],
) -> BgpClusterConfig {
    BgpClusterConfig {
        api_version: version.bgp_api_version().to_string(),
        kind: CLUSTER_CONFIG_KIND.to_string(),
        metadata: meta(naming::bgp_name(cluster), cluster),
        spec: ClusterConfigSpec {
            node_selector: linux_nodes(),
            bgp_instances: vec![BgpInstance {
                name: naming::bgp_name(cluster),
                local_asn: session.local_asn,
                peers: peers
                    .iter()
                    .map(|p| BgpPeer {
                        name: p.name.clone(),
                        peer_address: p.address,
                        peer_asn: session.peer_asn,
                        peer_config_ref: PeerConfigRef {
                            name: naming::peer_config_name(cluster, p.family.afi()),
                        },
                    })
                    .collect(),
            }],
        },
    }
}

pub fn peer_config(
    cluster: &str,
    version: CiliumVersion,
    session: &Session,
    family: Family,
) -> BgpPeerConfig {
    BgpPeerConfig {
        api_version: version.bgp_api_version().to_string(),
        kind: PEER_CONFIG_KIND.to_string(),
        metadata: meta(naming::peer_config_name(cluster, family.afi()), cluster),
        spec: PeerConfigSpec {
            auth_secret_ref: session.auth_secret.clone(),
            ebgp_multihop: session.ebgp_multihop,
            families: vec![AfiSafi {
                afi: family.afi().to_string(),
                safi: "unicast".to_string(),
                advertisements: LabelSelector::label(
                    naming::ADVERTISE_KEY,
                    naming::ADVERTISE_SERVICES,
                ),
            }],
            graceful_restart: GracefulRestart {
                enabled: session.graceful_restart,
                restart_time_seconds: session.graceful_restart.then_some(session.restart_time),
            },
            timers: Timers {
                connect_retry_time_seconds: session.connect_retry,
                hold_time_seconds: session.hold,
                keep_alive_time_seconds: session.keepalive,
            },
        },
    }
}

pub fn advertisement(cluster: &str, version: CiliumVersion, session: &Session) -> BgpAdvertisement {
    let mut metadata = meta(naming::advertisement_name(cluster), cluster);
    metadata.labels.extend(BTreeMap::from([(
        naming::ADVERTISE_KEY.to_string(),
        naming::ADVERTISE_SERVICES.to_string(),
    )]));
    BgpAdvertisement {
        api_version: version.bgp_api_version().to_string(),
        kind: ADVERTISEMENT_KIND.to_string(),
        metadata,
        spec: AdvertisementSpec {
            advertisements: vec![Advertisement {
                advertisement_type: "Service".to_string(),
                service: ServiceAddresses {
                    addresses: vec!["LoadBalancerIP".to_string()],
                },
                selector: advertised_services(),
                attributes: Attributes {
                    communities: Communities {
                        standard: vec![session.community.clone()],
                    },
                },
            }],
        },
    }
}
