//! The pure projection from what the cluster shows to the report the agent receives.
//!
//! Inputs are Kubernetes objects exactly as the API returns them (typed for core kinds,
//! `DynamicObject` for Cilium's CRDs, which may not be installed); the output is a
//! [`bgplb_proto::Report`]. No I/O, no clock: the caller passes generation and time.

use std::collections::{BTreeMap, BTreeSet};

use bgplb_proto::{
    BgpApi, Cilium, Node as RNode, Pool as RPool, Port, Report, Service as RService,
};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::DynamicObject;
use serde_json::Value;

/// Annotation Cilium LB-IPAM uses to let services share an IP.
pub const SHARING_KEY: &str = "lbipam.cilium.io/sharing-key";
/// The sharing key's older name, still honoured by Cilium's LB-IPAM (`pkg/annotation/k8s.go`).
pub const LEGACY_SHARING_KEY: &str = "io.cilium/lb-ipam-sharing-key";

/// Which of Cilium's BGP objects exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpObjects {
    pub cluster_configs_v2: usize,
    pub cluster_configs_v2alpha1: usize,
    pub peering_policies: usize,
}

impl BgpObjects {
    pub fn api(&self) -> BgpApi {
        if self.cluster_configs_v2 > 0 {
            BgpApi::V2
        } else if self.cluster_configs_v2alpha1 > 0 {
            BgpApi::V2alpha1
        } else if self.peering_policies > 0 {
            BgpApi::PeeringPolicy
        } else {
            BgpApi::None
        }
    }
}

/// Everything the projection reads.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub nodes: Vec<Node>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub pools: Vec<DynamicObject>,
    pub bgp: BgpObjects,
    pub l2_policies: Vec<DynamicObject>,
    pub cilium_version: Option<String>,
}

/// Builds the report for `cluster`.
pub fn report(cluster: &str, generation: u64, observed_at: &str, o: &Observed) -> Report {
    let mut nodes: Vec<RNode> = o.nodes.iter().filter_map(node).collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let services: Vec<RService> = {
        let mut v: Vec<RService> = o
            .services
            .iter()
            .filter_map(|s| service(s, &o.endpoint_slices))
            .collect();
        v.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        v
    };
    let mut pools: Vec<RPool> = o.pools.iter().map(|p| pool(p, &services)).collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    let mut l2: Vec<String> = o
        .l2_policies
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    l2.sort();
    Report {
        schema: bgplb_proto::SCHEMA_VERSION,
        cluster: cluster.to_string(),
        generation,
        observed_at: observed_at.to_string(),
        cilium: Cilium {
            version: o.cilium_version.clone(),
            bgp_api: o.bgp.api(),
        },
        nodes,
        pools,
        services,
        l2_announcement_policies: l2,
    }
}

fn node(n: &Node) -> Option<RNode> {
    let name = n.metadata.name.clone()?;
    let status = n.status.as_ref();
    let mut ipv4 = None;
    let mut ipv6 = None;
    for a in status
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
    {
        if a.type_ != "InternalIP" {
            continue;
        }
        match a.address.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) if ipv4.is_none() => ipv4 = Some(a.address.clone()),
            Ok(std::net::IpAddr::V6(_)) if ipv6.is_none() => ipv6 = Some(a.address.clone()),
            _ => {}
        }
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Some(RNode {
        name,
        ipv4,
        ipv6,
        ready,
        unschedulable: n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        deleting: n.metadata.deletion_timestamp.is_some(),
    })
}

/// The load-balancer class Cilium's BGP control plane serves.
pub const BGP_CLASS: &str = "io.cilium/bgp-control-plane";

/// Whether Cilium's BGP control plane advertises this LoadBalancer Service: no
/// `loadBalancerClass` or its own (it skips every other class: `pkg/bgpv1/manager/reconcilerv2/
/// service.go`, "Ignore service managed by an unsupported LB class"), and not labelled
/// `bgplb.io/no-advertise` (the rendered advertisement's selector excludes it).
pub fn advertised_by_bgp(s: &Service) -> bool {
    let class_ok = s
        .spec
        .as_ref()
        .and_then(|sp| sp.load_balancer_class.as_deref())
        .is_none_or(|c| c == BGP_CLASS);
    let excluded = s
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(bgplb_cilium::naming::NO_ADVERTISE_KEY));
    class_ok && !excluded
}

fn service(s: &Service, slices: &[EndpointSlice]) -> Option<RService> {
    let spec = s.spec.as_ref()?;
    if spec.type_.as_deref() != Some("LoadBalancer") || !advertised_by_bgp(s) {
        return None;
    }
    let namespace = s
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = s.metadata.name.clone()?;
    let ips = lb_ips(s);
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| Port {
            port: u16::try_from(p.port).unwrap_or(0),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
        })
        .collect();
    let ready_nodes: BTreeSet<String> = slices
        .iter()
        .filter(|sl| {
            sl.metadata.namespace.as_deref() == Some(namespace.as_str())
                && sl
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    == Some(&name)
        })
        .flat_map(|sl| sl.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .filter_map(|e| e.node_name.clone())
        .collect();
    Some(RService {
        namespace,
        // Both names Cilium reads (the legacy one is still honoured: pkg/annotation/k8s.go).
        sharing_key: s.metadata.annotations.as_ref().and_then(|a| {
            a.get(SHARING_KEY)
                .or_else(|| a.get(LEGACY_SHARING_KEY))
                .cloned()
        }),
        name,
        ips,
        ports,
        external_traffic_policy: spec
            .external_traffic_policy
            .clone()
            .unwrap_or_else(|| "Cluster".into()),
        ready_nodes: ready_nodes.into_iter().collect(),
    })
}

/// `status.loadBalancer.ingress[].ip` of a Service.
pub fn lb_ips(s: &Service) -> Vec<String> {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

/// Blocks of a CiliumLoadBalancerIPPool: `spec.blocks` (1.15+: `{cidr}` or `{start, stop}`) or the
/// older `spec.cidrs` (`{cidr}`).
pub fn pool_blocks(spec: &Value) -> Vec<String> {
    let mut blocks = Vec::new();
    for key in ["blocks", "cidrs"] {
        for b in spec
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(cidr) = b.get("cidr").and_then(Value::as_str) {
                blocks.push(cidr.to_string());
            } else if let (Some(start), Some(stop)) = (
                b.get("start").and_then(Value::as_str),
                b.get("stop").and_then(Value::as_str),
            ) {
                // Cilium allows `stop` to be omitted for a single address; both are required here.
                blocks.push(format!("{start}-{stop}"));
            } else if let Some(start) = b.get("start").and_then(Value::as_str) {
                blocks.push(format!("{start}-{start}"));
            }
        }
    }
    blocks
}

fn pool(p: &DynamicObject, services: &[RService]) -> RPool {
    let spec = p.data.get("spec").cloned().unwrap_or(Value::Null);
    let blocks = pool_blocks(&spec);
    let ranges: Vec<bgplb_site::Range> = blocks
        .iter()
        .filter_map(|b| bgplb_site::Range::parse(b).ok())
        .collect();
    // Cilium publishes counts as conditions (cilium.io/IPsTotal, cilium.io/IPsAvailable,
    // cilium.io/IPsUsed) with the number in `message`.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for c in p
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(t), Some(m)) = (
            c.get("type").and_then(Value::as_str),
            c.get("message").and_then(Value::as_str),
        ) {
            if let Ok(n) = m.trim().parse() {
                counts.insert(t.to_string(), n);
            }
        }
    }
    let total = counts
        .get("cilium.io/IPsTotal")
        .copied()
        .unwrap_or_else(|| {
            ranges
                .iter()
                .map(|r| u64::try_from(r.size()).unwrap_or(u64::MAX))
                .fold(0u64, u64::saturating_add)
        });
    let used = counts.get("cilium.io/IPsUsed").copied().unwrap_or_else(|| {
        let ips: BTreeSet<std::net::IpAddr> = services
            .iter()
            .flat_map(|s| s.ips.iter())
            .filter_map(|ip| ip.parse().ok())
            .filter(|ip| ranges.iter().any(|r| r.contains(*ip)))
            .collect();
        ips.len() as u64
    });
    RPool {
        name: p.metadata.name.clone().unwrap_or_default(),
        blocks,
        disabled: spec
            .get("disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        used,
        total,
    }
}

#[cfg(test)]
mod tests;
