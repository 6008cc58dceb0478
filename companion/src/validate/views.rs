//! Nodes and LoadBalancer Services reduced to what the checks read.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use bgplb_cilium::session::Family;
use k8s_openapi::api::core::v1::{Node, Service};

use crate::migrate::plan::DNS_ANNOTATION;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeView {
    pub name: String,
    /// The first InternalIP of each family.
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    pub labels: BTreeMap<String, String>,
}

impl NodeView {
    pub fn address(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::Ipv4 => self.ipv4,
            Family::Ipv6 => self.ipv6,
        }
    }
}

/// Nodes with a name, sorted by name.
pub(crate) fn nodes(nodes: &[Node]) -> Vec<NodeView> {
    let mut out: Vec<NodeView> = nodes
        .iter()
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            let status = n.status.as_ref();
            let internal: Vec<IpAddr> = status
                .and_then(|s| s.addresses.as_ref())
                .into_iter()
                .flatten()
                .filter(|a| a.type_ == "InternalIP")
                .filter_map(|a| a.address.trim().parse().ok())
                .collect();
            Some(NodeView {
                name,
                ipv4: internal.iter().copied().find(IpAddr::is_ipv4),
                ipv6: internal.iter().copied().find(IpAddr::is_ipv6),
                ready: status
                    .and_then(|s| s.conditions.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
                deleting: n.metadata.deletion_timestamp.is_some(),
                labels: n.metadata.labels.clone().unwrap_or_default(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServiceView {
    pub namespace: String,
    pub name: String,
    /// `status.loadBalancer.ingress[].ip`, as found.
    pub ips: Vec<String>,
    pub load_balancer_class: Option<String>,
    /// `spec.externalTrafficPolicy` (`Cluster` when unset).
    pub external_traffic_policy: String,
    /// external-dns's hostname annotation, normalized ([`hostnames`]).
    pub dns_names: Vec<String>,
    /// external-dns's target annotation: the names point there instead of at the VIPs.
    pub dns_target: Option<String>,
}

impl fmt::Display for ServiceView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Services of type LoadBalancer, sorted by namespace/name.
pub(super) fn lb_services(services: &[Service]) -> Vec<ServiceView> {
    let mut out: Vec<ServiceView> = services
        .iter()
        .filter_map(|s| {
            let spec = s.spec.as_ref()?;
            if spec.type_.as_deref() != Some("LoadBalancer") {
                return None;
            }
            Some(ServiceView {
                namespace: s
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                name: s.metadata.name.clone()?,
                ips: crate::project::lb_ips(s),
                load_balancer_class: spec.load_balancer_class.clone(),
                external_traffic_policy: spec
                    .external_traffic_policy
                    .clone()
                    .unwrap_or_else(|| "Cluster".into()),
                dns_names: annotation(s, DNS_ANNOTATION)
                    .map(hostnames)
                    .unwrap_or_default(),
                dns_target: annotation(s, DNS_TARGET_ANNOTATION)
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(String::from),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// external-dns's annotation naming the target the records point at instead of the VIPs.
pub(super) const DNS_TARGET_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/target";

fn annotation<'a>(s: &'a Service, key: &str) -> Option<&'a str> {
    s.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The names of external-dns's hostname annotation (`a.example.lan, b.example.lan.`): split at
/// commas, normalized ([`crate::dns::normalize`]), each once, in order.
pub(super) fn hostnames(annotation: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in annotation.split(',').map(crate::dns::normalize) {
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}
