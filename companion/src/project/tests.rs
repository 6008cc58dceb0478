//! The projection, from fixtures shaped like real API responses and from small builders.

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus};
use kube::api::ObjectList;

use super::*;

fn list<T: serde::de::DeserializeOwned + Clone>(json: &str) -> Vec<T> {
    let l: ObjectList<T> = serde_json::from_str(json).expect("fixture is a list");
    l.items
}

fn observed() -> Observed {
    Observed {
        nodes: list(include_str!("../../tests/fixtures/nodes.json")),
        services: list(include_str!("../../tests/fixtures/services.json")),
        endpoint_slices: list(include_str!("../../tests/fixtures/endpointslices.json")),
        pools: list(include_str!("../../tests/fixtures/pools-v2.json")),
        bgp: BgpObjects {
            cluster_configs_v2: 1,
            ..Default::default()
        },
        l2_policies: Vec::new(),
        cilium_version: Some("1.18.2".into()),
    }
}

/// `node("k8s-1").ready().ip("172.29.51.11")`
struct NodeBuilder(Node);

fn node(name: &str) -> NodeBuilder {
    let mut n = Node::default();
    n.metadata.name = Some(name.into());
    n.status = Some(NodeStatus::default());
    NodeBuilder(n)
}

impl NodeBuilder {
    fn ready(mut self) -> Self {
        let st = self.0.status.get_or_insert_with(Default::default);
        st.conditions
            .get_or_insert_with(Vec::new)
            .push(NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..Default::default()
            });
        self
    }
    fn ip(mut self, address: &str) -> Self {
        let st = self.0.status.get_or_insert_with(Default::default);
        st.addresses.get_or_insert_with(Vec::new).push(NodeAddress {
            type_: "InternalIP".into(),
            address: address.into(),
        });
        self
    }
    fn cordoned(mut self) -> Self {
        self.0.spec = Some(NodeSpec {
            unschedulable: Some(true),
            ..Default::default()
        });
        self
    }
    fn build(self) -> Node {
        self.0
    }
}

#[test]
fn fixtures_project_into_the_report() {
    let r = report("home", 42, "2026-11-25T12:00:00Z", &observed());
    assert_eq!((r.cluster.as_str(), r.generation), ("home", 42));
    assert_eq!(r.cilium.bgp_api, BgpApi::V2);

    let names: Vec<_> = r.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["k8s-1", "k8s-2", "k8s-3"]);
    let k1 = &r.nodes[0];
    assert_eq!(k1.ipv4.as_deref(), Some("172.29.51.11"));
    assert_eq!(k1.ipv6.as_deref(), Some("fd47:25e1:2f96:51::11"));
    assert!(k1.ready && !k1.unschedulable && !k1.deleting);
    assert!(r.nodes[1].unschedulable, "cordoned node");
    assert!(
        !r.nodes[2].ready && r.nodes[2].deleting,
        "NotReady node being deleted"
    );
    assert_eq!(r.nodes[2].ipv6, None);

    // Only LoadBalancer services; dual-stack IPs; endpoint slices give the ready nodes.
    let svc: Vec<_> = r
        .services
        .iter()
        .map(|s| format!("{}/{}", s.namespace, s.name))
        .collect();
    assert_eq!(svc, ["ingress/traefik", "media/jellyfin", "media/pending"]);
    let traefik = &r.services[0];
    assert_eq!(traefik.ips, ["172.29.52.200", "fd47:25e1:2f96:52:100::1"]);
    assert_eq!(traefik.ports.len(), 2);
    assert_eq!(traefik.ready_nodes, ["k8s-1", "k8s-2"]);
    let jellyfin = &r.services[1];
    assert_eq!(jellyfin.external_traffic_policy, "Local");
    assert_eq!(
        jellyfin.ready_nodes,
        ["k8s-2"],
        "not the terminating endpoint, not another namespace's slice"
    );
    assert_eq!(jellyfin.sharing_key.as_deref(), Some("media"));
    assert!(r.services[2].ips.is_empty());
    assert_eq!(r.services[2].ports[0].protocol, "UDP");

    // Pools: blocks as ranges and CIDRs, counts from Cilium's status conditions when present.
    let default = r.pools.iter().find(|p| p.name == "bgp-default").unwrap();
    assert_eq!(default.blocks, ["172.29.52.100-172.29.52.199"]);
    assert_eq!((default.used, default.total), (1, 100));
    let ingress = r.pools.iter().find(|p| p.name == "bgp-ingress").unwrap();
    assert_eq!(
        ingress.blocks,
        ["172.29.52.200-172.29.52.220", "fd47:25e1:2f96:52:100::/120"]
    );
    assert_eq!(
        (ingress.used, ingress.total),
        (2, 21 + 256),
        "counted from the services without status"
    );
    assert!(
        r.pools
            .iter()
            .find(|p| p.name == "bgp-reserved")
            .unwrap()
            .disabled
    );
}

#[test]
fn the_report_passes_the_agents_checks_for_the_reference_site() {
    // The projection's output is what the agent accepts (pools inside the site's, host VIPs).
    let r = report("home", 1, "2026-11-25T12:00:00Z", &observed());
    let text = serde_json::to_string(&r).unwrap();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
    let site = bgplb_site::parse(include_str!("../../../config/site.toml")).unwrap();
    let cluster = site.cluster("home").unwrap();
    let current: Vec<bgplb_site::NodeSpec> = cluster
        .nodes
        .iter()
        .map(bgplb_site::NodeSpec::from)
        .collect();
    let checked = bgplb_agent::report::check(&site, cluster, &back, Some(&current))
        .unwrap_or_else(|p| panic!("the agent refuses the projected report: {p:?}"));
    assert_eq!(
        checked.nodes.len(),
        r.nodes.iter().filter(|n| !n.deleting).count()
    );
    assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
}

#[test]
fn v2alpha1_pools_with_cidrs_are_read() {
    let mut o = observed();
    o.pools = list(include_str!("../../tests/fixtures/pools-v2alpha1.json"));
    let r = report("home", 1, "t", &o);
    assert_eq!(r.pools[0].blocks, ["172.29.52.128/27"]);
    assert_eq!(r.pools[0].total, 32);
}

#[test]
fn builders_cover_the_node_cases() {
    let o = Observed {
        nodes: vec![
            node("a")
                .ready()
                .ip("172.29.51.21")
                .ip("fd47:25e1:2f96:51::21")
                .build(),
            node("b").ip("172.29.51.22").cordoned().build(),
            node("c").ready().build(),
        ],
        ..Default::default()
    };
    let r = report("home", 1, "t", &o);
    assert!(r.nodes[0].ready && r.nodes[0].ipv6.is_some());
    assert!(!r.nodes[1].ready && r.nodes[1].unschedulable);
    assert_eq!(
        (r.nodes[2].ipv4.as_deref(), r.nodes[2].ipv6.as_deref()),
        (None, None)
    );
    assert_eq!(r.cilium.bgp_api, BgpApi::None);
}

#[test]
fn bgp_api_prefers_the_newest_objects_found() {
    let b = |v2, a1, pp| BgpObjects {
        cluster_configs_v2: v2,
        cluster_configs_v2alpha1: a1,
        peering_policies: pp,
    };
    assert_eq!(b(1, 1, 1).api(), BgpApi::V2);
    assert_eq!(b(0, 1, 1).api(), BgpApi::V2alpha1);
    assert_eq!(b(0, 0, 2).api(), BgpApi::PeeringPolicy);
}

#[test]
fn only_services_ciliums_bgp_advertises_are_reported() {
    let lb = |name: &str, class: Option<&str>, label: bool| {
        let mut s: k8s_openapi::api::core::v1::Service =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "net",
                    "annotations": {"io.cilium/lb-ipam-sharing-key": "dns"}},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 53, "protocol": "UDP"}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "172.29.52.53"}]}}
            }))
            .unwrap();
        if let Some(c) = class {
            s.spec.as_mut().unwrap().load_balancer_class = Some(c.into());
        }
        if label {
            s.metadata.labels = Some([("bgplb.io/no-advertise".to_string(), String::new())].into());
        }
        s
    };
    let mut o = observed();
    o.services = vec![
        lb("plain", None, false),
        lb("bgp-class", Some(BGP_CLASS), false),
        lb("tailscale", Some("tailscale"), false),
        lb("l2", Some("io.cilium/l2-announcer"), false),
        lb("hidden", None, true),
    ];
    let r = report("home", 1, "2026-12-02T12:00:00Z", &o);
    let names: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["bgp-class", "plain"]);
    // The legacy sharing-key name is read too.
    assert!(r
        .services
        .iter()
        .all(|s| s.sharing_key.as_deref() == Some("dns")));
}
