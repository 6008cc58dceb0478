//! Each check against a fixture shaped like real API responses (`tests/fixtures/validate/`,
//! plus the companion's `nodes.json`, `services.json`, `pools-*.json`), proving it finds the
//! problem it claims; and healthy clusters (the renderer's own output) proving it stays quiet.

use bgplb_cilium::{CiliumVersion, RenderOptions};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../tests/fixtures/", $name))
    };
}

fn site() -> Site {
    bgplb_site::parse(include_str!("../../../config/site.toml")).expect("reference site parses")
}

fn value(json: &str) -> Value {
    serde_json::from_str(json).expect("fixture is JSON")
}

fn items<T: DeserializeOwned>(json: &str) -> Vec<T> {
    serde_json::from_value(value(json)["items"].clone()).expect("fixture items")
}

/// The reference cluster, healthy: the 1.18 render as the API returns it, the companion's node
/// and service fixtures, and an agent with every session Established.
fn healthy() -> Input {
    Input {
        site: site(),
        cluster: "home".into(),
        services: items(fixture!("services.json")),
        nodes: items(fixture!("nodes.json")),
        cilium: CiliumObjects::from_values([value(fixture!("validate/cilium-1.18.json"))]),
        cilium_version: Some("1.18.2".into()),
        agent: Some(serde_json::from_str(fixture!("validate/agent-status.json")).unwrap()),
        cilium_config: Some(serde_json::json!({"data": {
            "enable-bgp-control-plane": "true", "enable-l2-announcements": "false"}})),
        dns: None,
        backup: None,
    }
}

fn check<'a>(r: &'a Report, name: &str) -> &'a Check {
    r.check(name)
        .unwrap_or_else(|| panic!("no check {name} in {r:#?}"))
}

/// Asserts the check's status and that some detail line contains each of `needles`.
fn expect(r: &Report, name: &str, status: Status, needles: &[&str]) {
    let c = check(r, name);
    assert_eq!(c.status, status, "{name}: {:#?}", c.details);
    for n in needles {
        assert!(
            c.details.iter().any(|d| d.contains(n)),
            "{name}: no detail contains {n:?}: {:#?}",
            c.details
        );
    }
}

fn no_detail(r: &Report, name: &str, needle: &str) {
    let c = check(r, name);
    assert!(
        !c.details.iter().any(|d| d.contains(needle)),
        "{name}: unexpected {needle:?}: {:#?}",
        c.details
    );
}

/// Sets `pointer` in the object `name` of `list`.
fn set(list: &mut [Value], name: &str, pointer: &str, v: Value) {
    let o = list
        .iter_mut()
        .find(|o| objects::name(o) == name)
        .unwrap_or_else(|| panic!("no object {name}"));
    *o.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{name} has no {pointer}")) = v;
}

#[test]
fn healthy_cluster_has_no_failure() {
    let r = validate(&healthy());
    assert!(r.ok, "{}", render_table(&r));
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "l2-policies",
            "service-ips",
            "pools",
            "bgp-objects",
            "nodes-vs-agent",
            "cilium-version",
            "dns"
        ]
    );
    expect(
        &r,
        "l2-policies",
        Status::Ok,
        &["no CiliumL2AnnouncementPolicy"],
    );
    // media/pending has no address yet: a warning, not a failure.
    expect(
        &r,
        "service-ips",
        Status::Warn,
        &[
            "media/pending: pending",
            "3 LoadBalancer service(s), 3 address(es)",
        ],
    );
    expect(
        &r,
        "pools",
        Status::Ok,
        &[
            "bgp-default: 1 of 100 address(es) used, 99 free (Cilium's pool status)",
            "bgp-reserved: 0 of 50 address(es) used, 50 free (Cilium's pool status), disabled",
        ],
    );
    expect(
        &r,
        "bgp-objects",
        Status::Ok,
        &[
            "CiliumBGPClusterConfig bgplb-home peer udm-pro-ipv4 (172.29.51.1): AS 64512, CiliumBGPPeerConfig bgplb-home-ipv4 (ipv4), advertisement(s) bgplb-home-lb-services",
            "peer udm-pro-ipv6 (fd47:25e1:2f96:51::1): AS 64512, CiliumBGPPeerConfig bgplb-home-ipv6 (ipv6)",
        ],
    );
    // k8s-3 is being deleted: not expected on the gateway.
    expect(
        &r,
        "nodes-vs-agent",
        Status::Ok,
        &["4 of 4 node session(s) Established on udm-pro"],
    );
    expect(
        &r,
        "cilium-version",
        Status::Ok,
        &["Cilium 1.18.2: pools cilium.io/v2, BGP CiliumBGPClusterConfig cilium.io/v2"],
    );
}

/// What bgplb renders validates for every Cilium release it renders for, through either BGP
/// API (the 1.15 render is a peering policy with pools as CIDR covers of the site's ranges).
#[test]
fn rendered_objects_validate_for_every_release() {
    for v in ["1.15.7", "1.16.4", "1.17.0", "1.18.2", "1.19.0"] {
        let version = CiliumVersion::parse(v).unwrap();
        let rendered =
            bgplb_cilium::render(&site(), "home", version, &RenderOptions::default()).unwrap();
        let mut input = healthy();
        input.cilium =
            CiliumObjects::from_values(rendered.objects.iter().map(|o| o.to_json().unwrap()));
        input.cilium_version = Some(v.into());
        let r = validate(&input);
        assert!(r.ok, "Cilium {v}:\n{}", render_table(&r));
        for name in ["pools", "bgp-objects", "cilium-version"] {
            assert_eq!(
                check(&r, name).status,
                Status::Ok,
                "Cilium {v}:\n{}",
                render_table(&r)
            );
        }
        // No pool status: usage is counted from the services' addresses.
        expect(
            &r,
            "pools",
            Status::Ok,
            &["bgp-ingress: 1 of 21 address(es) used, 20 free (counted from services)"],
        );
    }
}

#[test]
fn l2_policy_left_is_a_failure() {
    let mut input = healthy();
    input.cilium.l2_policies = items(fixture!("validate/l2-policy.json"));
    let r = validate(&input);
    assert!(!r.ok);
    expect(
        &r,
        "l2-policies",
        Status::Fail,
        &["CiliumL2AnnouncementPolicy l2-default still exists (announces LoadBalancer IPs of services l2=announce)"],
    );
}

#[test]
fn service_ips_outside_enabled_pools_fail() {
    let mut input = healthy();
    input.services = items(fixture!("validate/services-bad.json"));
    let r = validate(&input);
    expect(
        &r,
        "service-ips",
        Status::Fail,
        &[
            "home/home-assistant: 172.29.51.240 is outside every BGP pool of the site",
            "home/mqtt: 172.29.52.60 is in pool bgp-reserved, which the site disables",
            "net/unifi: loadBalancerClass io.cilium/l2-announcer",
            "net/tailscale-proxy: loadBalancerClass tailscale belongs to another controller",
        ],
    );
    no_detail(&r, "service-ips", "web/web");
    // Failures come first.
    assert!(check(&r, "service-ips").details[0].contains("home/home-assistant"));
}

#[test]
fn pools_that_differ_from_the_site_fail() {
    let mut input = healthy();
    // The companion's pools fixture: bgp-ingress also carries the IPv6 block, no IPv6 pool.
    input.cilium.pools = items(fixture!("pools-v2.json"));
    let r = validate(&input);
    expect(
        &r,
        "pools",
        Status::Fail,
        &[
            "bgp-ingress: blocks differ: the cluster has 172.29.52.200-172.29.52.220, fd47:25e1:2f96:52:100::/120, the site 172.29.52.200-172.29.52.220",
            "bgp-default-ipv6: no CiliumLoadBalancerIPPool bgp-default-ipv6 in the cluster",
            "bgp-default: 1 of 100 address(es) used, 99 free",
        ],
    );
}

#[test]
fn a_pool_on_the_node_network_fails_and_a_stray_pool_warns() {
    let mut input = healthy();
    input
        .cilium
        .pools
        .extend(items::<Value>(fixture!("validate/pools-l2.json")));
    let r = validate(&input);
    expect(
        &r,
        "pools",
        Status::Fail,
        &[
            "l2-pool (172.29.51.200-172.29.51.250) overlaps the node subnet 172.29.51.0/24",
            "lab (10.10.0.0/28) is not in the site file",
        ],
    );
    no_detail(
        &r,
        "pools",
        "l2-pool (172.29.51.200-172.29.51.250) is not in the site file",
    );

    let mut input = healthy();
    let lab = items::<Value>(fixture!("validate/pools-l2.json"))
        .pop()
        .unwrap();
    input.cilium.pools.push(lab);
    expect(
        &validate(&input),
        "pools",
        Status::Warn,
        &["lab (10.10.0.0/28) is not in the site file"],
    );
}

#[test]
fn pool_enabled_against_the_site_or_exhausted() {
    let mut input = healthy();
    set(
        &mut input.cilium.pools,
        "bgp-reserved",
        "/spec/disabled",
        json!(false),
    );
    set(
        &mut input.cilium.pools,
        "bgp-ingress",
        "/status/conditions/1/message",
        json!("0"),
    );
    let r = validate(&input);
    expect(
        &r,
        "pools",
        Status::Fail,
        &[
            "bgp-reserved: enabled in the cluster but disabled in the site",
            "bgp-ingress: 1 of 21 address(es) used, 0 free (Cilium's pool status): exhausted",
        ],
    );
}

#[test]
fn missing_bgp_objects_fail() {
    let mut input = healthy();
    input.cilium = CiliumObjects {
        pools: input.cilium.pools.clone(),
        ..Default::default()
    };
    expect(
        &validate(&input),
        "bgp-objects",
        Status::Fail,
        &["no CiliumBGPClusterConfig and no CiliumBGPPeeringPolicy"],
    );
}

/// The example from Cilium's documentation, adapted to the site's addresses: one peer config
/// with both families for an IPv4 peer, no IPv6 peer, no community.
#[test]
fn bgp_objects_from_the_docs_example_fail() {
    let mut input = healthy();
    let docs = CiliumObjects::from_values([value(fixture!("validate/bgp-docs-example.json"))]);
    input.cilium = CiliumObjects {
        pools: input.cilium.pools.clone(),
        ..docs
    };
    let r = validate(&input);
    expect(
        &r,
        "bgp-objects",
        Status::Fail,
        &[
            "CiliumBGPPeerConfig cilium-peer carries afi ipv6 on CiliumBGPClusterConfig cilium-bgp peer udm (172.29.51.1), an ipv4 session",
            "no peer at the gateway's ipv6 address (fd47:25e1:2f96:51::1) in a bgpInstance with localASN 64513",
            "CiliumBGPAdvertisement bgp-advertisements (selected by CiliumBGPPeerConfig cilium-peer) advertise LoadBalancerIP without community 64512:100",
        ],
    );
}

#[test]
fn bgp_v2_peer_asn_peer_config_and_advertisement_are_checked() {
    let mut input = healthy();
    let c = &mut input.cilium;
    set(
        &mut c.cluster_configs,
        "bgplb-home",
        "/spec/bgpInstances/0/peers/0/peerASN",
        json!(65000),
    );
    c.peer_configs
        .retain(|p| objects::name(p) != "bgplb-home-ipv6");
    set(
        &mut c.advertisements,
        "bgplb-home-lb-services",
        "/metadata/labels/bgplb.io~1advertise",
        json!("other"),
    );
    set(
        &mut c.cluster_configs,
        "bgplb-home",
        "/status/conditions/1",
        json!({"type": "cilium.io/MissingPeerConfigs", "status": "True", "reason": "MissingPeerConfigs",
               "message": "Peer configs missing: [bgplb-home-ipv6]"}),
    );
    let r = validate(&input);
    expect(
        &r,
        "bgp-objects",
        Status::Fail,
        &[
            "peer udm-pro-ipv4 (172.29.51.1): peerASN 65000, but the gateway is AS 64512",
            "peer udm-pro-ipv6 (fd47:25e1:2f96:51::1): its CiliumBGPPeerConfig bgplb-home-ipv6 does not exist",
            "CiliumBGPPeerConfig bgplb-home-ipv4 family ipv4: advertisements selector bgplb.io/advertise=lb-services matches no CiliumBGPAdvertisement",
            "CiliumBGPClusterConfig bgplb-home: Cilium reports cilium.io/MissingPeerConfigs: Peer configs missing: [bgplb-home-ipv6]",
        ],
    );
}

#[test]
fn bgp_v2_wrong_local_asn_and_node_selector_fail() {
    let mut input = healthy();
    set(
        &mut input.cilium.cluster_configs,
        "bgplb-home",
        "/spec/bgpInstances/0/localASN",
        json!(65001),
    );
    let r = validate(&input);
    expect(
        &r,
        "bgp-objects",
        Status::Fail,
        &[
            "no CiliumBGPClusterConfig has a bgpInstance with localASN 64513",
            "instance bgplb-home: localASN 65001 is not cluster home's ASN 64513",
        ],
    );

    let mut input = healthy();
    set(
        &mut input.cilium.cluster_configs,
        "bgplb-home",
        "/spec/nodeSelector",
        json!({"matchLabels": {"bgp": "on"}}),
    );
    expect(
        &validate(&input),
        "bgp-objects",
        Status::Fail,
        &["the nodeSelector of CiliumBGPClusterConfig bgplb-home selects none of the cluster's 2 node(s)"],
    );
}

#[test]
fn hand_written_peering_policies_fail() {
    let mut input = healthy();
    input.cilium = CiliumObjects {
        pools: input.cilium.pools.clone(),
        peering_policies: items(fixture!("validate/peering-policy-hand-written.json")),
        ..Default::default()
    };
    input.cilium_version = Some("1.17.3".into());
    let r = validate(&input);
    expect(
        &r,
        "bgp-objects",
        Status::Fail,
        &[
            "node k8s-1 is selected by several CiliumBGPPeeringPolicies (rack0, linux-nodes): Cilium applies none of them",
            "CiliumBGPPeeringPolicy linux-nodes: virtualRouter localASN 65100 is not cluster home's ASN 64513",
            "CiliumBGPPeeringPolicy rack0: the virtualRouter with localASN 64513 has no serviceSelector",
            "CiliumBGPPeeringPolicy rack0 neighbor 172.29.51.1/32: peerASN 65000, but the gateway is AS 64512",
            "CiliumBGPPeeringPolicy rack0 neighbor 172.29.51.1/32: no advertisedPathAttributes for CiliumLoadBalancerIPPool with community 64512:100",
            "CiliumBGPPeeringPolicy rack0 neighbor 172.29.51.1/32: no families",
            "no neighbor at the gateway's ipv6 address (fd47:25e1:2f96:51::1)",
        ],
    );
}

#[test]
fn peering_policy_community_must_cover_every_enabled_pool() {
    let rendered = bgplb_cilium::render(
        &site(),
        "home",
        CiliumVersion::parse("1.15.7").unwrap(),
        &RenderOptions::default(),
    )
    .unwrap();
    let mut input = healthy();
    input.cilium =
        CiliumObjects::from_values(rendered.objects.iter().map(|o| o.to_json().unwrap()));
    input.cilium_version = Some("1.15.7".into());
    set(
        &mut input.cilium.pools,
        "bgp-ingress",
        "/metadata/labels/bgplb.io~1cluster",
        json!("lab"),
    );
    expect(
        &validate(&input),
        "bgp-objects",
        Status::Fail,
        &["neighbor 172.29.51.1/32: the community 64512:100 goes only on pools selected by app.kubernetes.io/managed-by=bgplb,bgplb.io/cluster=home, not on pool bgp-ingress"],
    );
}

#[test]
fn nodes_without_established_sessions_and_stale_sessions_are_found() {
    let mut input = healthy();
    input.agent = Some(serde_json::from_str(fixture!("validate/agent-status-drift.json")).unwrap());
    let r = validate(&input);
    expect(
        &r,
        "nodes-vs-agent",
        Status::Fail,
        &[
            "k8s-1 ipv6 fd47:25e1:2f96:51::11: session Active",
            "k8s-2 ipv4 172.29.51.12: no session on the gateway",
            "the gateway has an Established ipv4 session with 172.29.51.21 (k8s-old), which is no node of cluster home",
            "k8s-3: being deleted, but the gateway still has its ipv4 session with 172.29.51.13",
            "the gateway still has the ipv4 session of k8s-9 (172.29.51.19, Idle)",
            "the agent's last report from cluster home is stale (912 s old)",
            "the agent refused a report from cluster home: node k8s-9",
            "2 of 4 node session(s) Established",
        ],
    );
}

#[test]
fn nodes_vs_agent_needs_a_report_and_is_skipped_without_status() {
    let mut input = healthy();
    input.agent.as_mut().unwrap().clusters.clear();
    expect(
        &validate(&input),
        "nodes-vs-agent",
        Status::Fail,
        &["has no report from cluster home"],
    );

    input.agent = None;
    expect(
        &validate(&input),
        "nodes-vs-agent",
        Status::Ok,
        &["not checked: no agent status given"],
    );
}

#[test]
fn a_node_that_is_not_ready_only_warns() {
    let mut input = healthy();
    let agent = input.agent.as_mut().unwrap();
    agent.peers.retain(|p| p.node != "k8s-2");
    let k8s2 = input
        .nodes
        .iter_mut()
        .find(|n| n.metadata.name.as_deref() == Some("k8s-2"))
        .unwrap();
    for c in k8s2.status.as_mut().unwrap().conditions.as_mut().unwrap() {
        c.status = "False".into();
    }
    expect(
        &validate(&input),
        "nodes-vs-agent",
        Status::Warn,
        &["k8s-2 ipv4 172.29.51.12: no session on the gateway (the node is not Ready)"],
    );
}

/// The 1.17 render plus the 1.15 peering policy, and the companion's v2alpha1 pool with `cidrs`.
fn legacy(version: &str) -> Input {
    let mut input = healthy();
    input.cilium = CiliumObjects::from_values([
        value(fixture!("validate/cilium-1.17-and-peering-policy.json")),
        value(fixture!("pools-v2alpha1.json")),
    ]);
    input.cilium_version = Some(version.into());
    input
}

#[test]
fn an_empty_selector_selects_everything_and_a_missing_one_nothing() {
    // LabelSelectorAsSelector: nil selects nothing, {} selects everything.
    let mut input = healthy();
    for pc in &mut input.cilium.peer_configs {
        for fam in pc["spec"]["families"].as_array_mut().unwrap() {
            fam["advertisements"] = serde_json::json!({});
        }
    }
    for a in &mut input.cilium.advertisements {
        for adv in a["spec"]["advertisements"].as_array_mut().unwrap() {
            adv["selector"] = serde_json::json!({});
        }
    }
    let r = validate(&input);
    let c = r.checks.iter().find(|c| c.name == "bgp-objects").unwrap();
    assert_eq!(c.status, Status::Ok, "{:?}", c.details);
    for pc in &mut input.cilium.peer_configs {
        for fam in pc["spec"]["families"].as_array_mut().unwrap() {
            fam.as_object_mut().unwrap().remove("advertisements");
        }
    }
    expect(
        &validate(&input),
        "bgp-objects",
        Status::Fail,
        &["no advertisements selector: Cilium advertises nothing"],
    );
}

#[test]
fn cilium_version_finds_what_an_upgrade_breaks() {
    let r = validate(&legacy("1.19.1"));
    expect(
        &r,
        "cilium-version",
        Status::Fail,
        &[
            "CiliumBGPPeeringPolicy bgplb-home: CiliumBGPPeeringPolicy was removed in Cilium 1.19: Cilium 1.19.1 ignores it",
            "CiliumLoadBalancerIPPool legacy: spec.cidrs was removed in Cilium 1.16",
        ],
    );

    let r = validate(&legacy("1.18.0"));
    expect(
        &r,
        "cilium-version",
        Status::Fail,
        &["CiliumBGPPeeringPolicy bgplb-home: CiliumBGPPeeringPolicy is deprecated in Cilium 1.18.0 and removed in 1.19"],
    );
    let mut input = legacy("1.18.0");
    input.cilium.pools.retain(|p| objects::name(p) != "legacy");
    expect(
        &validate(&input),
        "cilium-version",
        Status::Warn,
        &["is deprecated in Cilium 1.18.0"],
    );

    let mut input = legacy("1.15.7");
    input.cilium.cluster_configs.clear();
    input.cilium.peer_configs.clear();
    input.cilium.advertisements.clear();
    expect(
        &validate(&input),
        "cilium-version",
        Status::Warn,
        &["CiliumLoadBalancerIPPool legacy: spec.cidrs is removed in Cilium 1.16: an upgrade leaves the pool without addresses"],
    );

    let mut input = legacy("1.15.7");
    input.cilium.peering_policies.clear();
    expect(
        &validate(&input),
        "cilium-version",
        Status::Fail,
        &["CiliumBGPClusterConfig bgplb-home: the BGP v2 resources arrived in Cilium 1.16"],
    );
}

#[test]
fn listed_api_versions_are_not_judged_and_an_unknown_version_warns() {
    // The API server converts between the versions a CRD serves: objects listed as v2 say
    // nothing about how they were written, so a 1.17 cluster listing them is fine.
    let mut input = healthy();
    input.cilium_version = Some("1.17.3".into());
    let r = validate(&input);
    let c = r
        .checks
        .iter()
        .find(|c| c.name == "cilium-version")
        .unwrap();
    assert_eq!(c.status, Status::Ok, "{:?}", c.details);
    input.cilium_version = None;
    expect(
        &validate(&input),
        "cilium-version",
        Status::Warn,
        &["Cilium version unknown"],
    );
    input.cilium_version = Some("latest".into());
    expect(
        &validate(&input),
        "cilium-version",
        Status::Warn,
        &["latest"],
    );
}

#[test]
fn an_unknown_cluster_is_one_failure() {
    let mut input = healthy();
    input.cluster = "office".into();
    let r = validate(&input);
    assert!(!r.ok);
    assert_eq!(r.checks.len(), 1);
    expect(
        &r,
        "site",
        Status::Fail,
        &["cluster office is not in the site file (it has: home)"],
    );
}

/// Objects with missing, null and oddly typed fields are judged, never a panic.
#[test]
fn odd_objects_do_not_panic() {
    let mut input = healthy();
    let odd = vec![
        json!(null),
        json!(5),
        json!({"kind": "CiliumBGPClusterConfig"}),
        json!({"kind": "CiliumBGPClusterConfig", "metadata": {"name": "x"},
               "spec": {"nodeSelector": 3, "bgpInstances": [null, {"localASN": 64513, "peers": [7, {"peerAddress": "nope"},
                        {"peerAddress": "172.29.51.1", "peerASN": "64512", "peerConfigRef": {"name": 1}}]}]}}),
        json!({"kind": "CiliumBGPPeerConfig", "metadata": {"name": "y"}, "spec": {"families": [{"afi": 4}]}}),
        json!({"kind": "CiliumBGPAdvertisement", "metadata": {"name": "z", "labels": {"a": 1}},
               "spec": {"advertisements": [{"service": {"addresses": "LoadBalancerIP"}}]}}),
        json!({"kind": "CiliumBGPPeeringPolicy", "metadata": {"name": "p"},
               "spec": {"virtualRouters": [{"localASN": 64513, "serviceSelector": {"matchExpressions": [{"operator": "In"}]},
                        "neighbors": [{"peerAddress": "172.29.51.1/24"}, {"peerAddress": "fd47:25e1:2f96:51::1/128", "families": [{"afi": null}],
                                       "advertisedPathAttributes": [{"selectorType": "CiliumLoadBalancerIPPool", "communities": {"standard": ["64512:100"]}}]}]}]}}),
        json!({"kind": "CiliumLoadBalancerIPPool", "metadata": {"name": "weird"},
               "spec": {"blocks": [{"start": "172.29.52.9", "stop": "fd00::1"}, {"cidr": "x"}, {}, 4], "cidrs": {"cidr": "1.2.3.0/24"}},
               "status": {"conditions": [{"type": "cilium.io/IPsTotal", "message": "-1"}]}}),
        json!({"kind": "CiliumL2AnnouncementPolicy"}),
    ];
    input.cilium = CiliumObjects::from_values(odd);
    input
        .services
        .push(serde_json::from_value(json!({"spec": {"type": "LoadBalancer"}})).unwrap());
    input
        .nodes
        .push(serde_json::from_value(json!({"metadata": {"name": "bare"}})).unwrap());
    for v in [Some("1.18.2"), Some(""), Some("2.0.0"), Some("1.13"), None] {
        input.cilium_version = v.map(String::from);
        let r = validate(&input);
        assert!(!r.ok);
        assert!(r.checks.iter().all(|c| !c.details.is_empty()));
        let _ = render_table(&r);
        let _ = render_markdown(&r, "odd");
    }
    expect(&validate(&input), "pools", Status::Fail, &["weird: block"]);
}

#[test]
fn duplicates_are_kept_once() {
    let mut input = healthy();
    let again = input.cilium.cluster_configs[0].clone();
    input.cilium.cluster_configs.push(again);
    let r = validate(&input);
    assert!(r.ok);
    let peers = check(&r, "bgp-objects")
        .details
        .iter()
        .filter(|d| d.contains("peer udm-pro-ipv4"))
        .count();
    assert_eq!(peers, 1);
}

#[test]
fn table_markdown_and_json() {
    let mut input = healthy();
    input.cilium.l2_policies = items(fixture!("validate/l2-policy.json"));
    let r = validate(&input);

    let table = render_table(&r);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("CHECK") && lines[0].contains("RESULT") && lines[0].contains("DETAIL")
    );
    assert!(
        lines[1].contains("l2-policies") && lines[1].contains("FAIL"),
        "{table}"
    );
    assert!(table.contains(" warn "), "{table}");

    let md = render_markdown(&r, "bgplb validate: cluster home");
    assert!(md.starts_with("# bgplb validate: cluster home\n\n**Result: FAIL**: 7 check(s), 5 ok, 1 warning(s), 1 failed."), "{md}");
    assert!(
        md.contains(
            "| [l2-policies](#l2-policies) | **FAIL** | CiliumL2AnnouncementPolicy l2-default"
        ),
        "{md}"
    );
    assert!(
        md.contains("\n## service-ips\n\n**warn**\n\n- media/pending: pending"),
        "{md}"
    );
    assert_eq!(
        super::render::render_markdown(&report(vec![]), "a|b *c*")
            .lines()
            .next(),
        Some("# a\\|b \\*c\\*")
    );

    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["ok"], json!(false));
    assert_eq!(j["checks"][0]["name"], json!("l2-policies"));
    assert_eq!(j["checks"][0]["status"], json!("fail"));
    assert_eq!(j["checks"][1]["status"], json!("warn"));
    assert!(j["checks"][0]["details"][0]
        .as_str()
        .unwrap()
        .contains("l2-default"));
}

#[test]
fn the_stage_of_ciliums_values_is_checked() {
    let stage = |bgp: &str, l2: &str| {
        let mut input = healthy();
        input.cilium_config = Some(json!({"data": {
            "enable-bgp-control-plane": bgp, "enable-l2-announcements": l2}}));
        validate(&input)
    };
    // Stage 1 left on after the migration: no policy selects anything, but L2 still runs.
    let r = stage("true", "true");
    expect(
        &r,
        "l2-policies",
        Status::Warn,
        &["enable-l2-announcements", "cilium-values-2-final.yaml"],
    );
    // BGP off: the objects do nothing.
    let r = stage("false", "true");
    expect(
        &r,
        "bgp-objects",
        Status::Fail,
        &["BGP control plane is off", "cilium-values-1-bgp.yaml"],
    );
    // The final stage, or a ConfigMap the caller could not read: nothing to say.
    for input in [healthy(), {
        let mut i = healthy();
        i.cilium_config = None;
        i
    }] {
        let r = validate(&input);
        no_detail(&r, "l2-policies", "enable-l2-announcements");
        no_detail(&r, "bgp-objects", "BGP control plane is off");
    }
}

#[test]
fn local_services_on_cilium_1_19_are_warned_about() {
    // cilium/cilium#44803: 1.19 advertises externalTrafficPolicy: Local from every node.
    let mut input = healthy();
    input.cilium_version = Some("1.19.1".into());
    let r = validate(&input);
    expect(
        &r,
        "service-ips",
        Status::Warn,
        &["media/jellyfin", "44803"],
    );
    no_detail(&r, "service-ips", "ingress/traefik: externalTrafficPolicy");
    no_detail(&validate(&healthy()), "service-ips", "44803");
}

/// Sets an annotation on the Service `namespace/name` of `input`.
fn annotate(input: &mut Input, service: &str, key: &str, value: &str) {
    let (ns, name) = service.split_once('/').unwrap();
    let s = input
        .services
        .iter_mut()
        .find(|s| {
            s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name)
        })
        .unwrap_or_else(|| panic!("no service {service}"));
    s.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(key.into(), value.into());
}

const HOSTNAME: &str = "external-dns.alpha.kubernetes.io/hostname";

/// One family's answer from the server.
type Answered = Result<crate::dns::Answer, crate::dns::DnsError>;

fn found(addrs: &[&str]) -> Answered {
    Ok(crate::dns::Answer {
        addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        cnames: vec![],
    })
}

fn via(cname: &str, addrs: &[&str]) -> Answered {
    let mut a = found(addrs);
    a.as_mut().unwrap().cnames.push(cname.into());
    a
}

/// The server's answers: (name, A, AAAA).
fn answers(list: Vec<(&str, Answered, Answered)>) -> Option<DnsResults> {
    Some(DnsResults {
        server: "172.29.51.1:53".into(),
        lookups: list
            .into_iter()
            .map(|(n, a, aaaa)| (n.to_string(), crate::dns::Lookup { a, aaaa }))
            .collect(),
    })
}

/// The healthy cluster with external-dns names: traefik has two (one written oddly), jellyfin
/// one; the reference cluster's VIPs are traefik 172.29.52.200 + fd47:25e1:2f96:52:100::1,
/// jellyfin 172.29.52.100 (IPv4 only).
fn with_names() -> Input {
    let mut input = healthy();
    annotate(
        &mut input,
        "ingress/traefik",
        HOSTNAME,
        "traefik.example.lan, Ingress.Example.LAN.",
    );
    annotate(
        &mut input,
        "media/jellyfin",
        HOSTNAME,
        "jellyfin.example.lan",
    );
    input
}

/// What `migrate` saved: jellyfin on its L2 address, the old L2 pool.
fn backup() -> crate::migrate::Backup {
    crate::migrate::Backup {
        objects: vec![
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "jellyfin", "namespace": "media"},
                   "spec": {"type": "LoadBalancer"},
                   "status": {"loadBalancer": {"ingress": [{"ip": "172.29.51.210"}]}}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "traefik", "namespace": "ingress"},
                   "spec": {"type": "LoadBalancer"},
                   "status": {"loadBalancer": {"ingress": [{"ip": "172.29.51.200"}]}}}),
            json!({"apiVersion": "cilium.io/v2", "kind": "CiliumLoadBalancerIPPool",
                   "metadata": {"name": "l2-pool"},
                   "spec": {"blocks": [{"start": "172.29.51.200", "stop": "172.29.51.250"}]}}),
        ],
        absent: vec![],
    }
}

#[test]
fn dns_is_skipped_without_a_server_and_lists_the_annotated_names() {
    let r = validate(&with_names());
    assert!(r.ok);
    assert_eq!(r.checks.last().unwrap().name, "dns");
    expect(
        &r,
        "dns",
        Status::Ok,
        &["not checked: no DNS server given (--dns-server)"],
    );
    let mut input = with_names();
    input.services.push(
        serde_json::from_value(json!({"metadata": {"name": "internal", "namespace": "x",
            "annotations": {HOSTNAME: "internal.example.lan"}}, "spec": {"type": "ClusterIP"}}))
        .unwrap(),
    );
    annotate(
        &mut input,
        "media/pending",
        HOSTNAME,
        "jellyfin.example.lan,,",
    );
    assert_eq!(
        dns_names(&input.services),
        [
            "ingress.example.lan",
            "jellyfin.example.lan",
            "traefik.example.lan"
        ]
    );
}

#[test]
fn dns_names_resolving_to_the_vips_are_ok() {
    let mut input = with_names();
    input.dns = answers(vec![
        (
            "traefik.example.lan",
            found(&["172.29.52.200"]),
            found(&["fd47:25e1:2f96:52:100::1"]),
        ),
        (
            "ingress.example.lan",
            via("traefik.example.lan", &["172.29.52.200"]),
            via("traefik.example.lan", &["fd47:25e1:2f96:52:100::1"]),
        ),
        // No IPv6 VIP: no AAAA record is right.
        (
            "jellyfin.example.lan",
            found(&["172.29.52.100"]),
            found(&[]),
        ),
    ]);
    let r = validate(&input);
    assert!(r.ok, "{}", render_table(&r));
    expect(
        &r,
        "dns",
        Status::Ok,
        &[
            "3 name(s) of 2 service(s) asked at 172.29.51.1:53: 3 resolve to their service's address(es)",
            "ingress/traefik: ingress.example.lan (via CNAME traefik.example.lan) resolves to 172.29.52.200, fd47:25e1:2f96:52:100::1",
            "media/jellyfin: jellyfin.example.lan resolves to 172.29.52.100",
        ],
    );
}

#[test]
fn stale_missing_and_foreign_dns_records_fail() {
    use crate::dns::DnsError;
    let mut input = with_names();
    annotate(
        &mut input,
        "media/jellyfin",
        HOSTNAME,
        "jellyfin.example.lan,media.example.lan,tv.example.lan,v6.example.lan",
    );
    input.backup = Some(backup());
    input.dns = answers(vec![
        // Still on the address traefik had before the migration, and one of the old pool.
        (
            "traefik.example.lan",
            found(&["172.29.51.200"]),
            found(&["fd47:25e1:2f96:52:100::1"]),
        ),
        (
            "ingress.example.lan",
            found(&["172.29.51.220"]),
            Err(DnsError::Timeout {
                tries: 2,
                each: std::time::Duration::from_secs(2),
            }),
        ),
        (
            "jellyfin.example.lan",
            Err(DnsError::NxDomain),
            Err(DnsError::NxDomain),
        ),
        // Another service's VIP, through a CNAME; then an address nobody knows.
        (
            "media.example.lan",
            via("traefik.example.lan", &["172.29.52.200"]),
            found(&[]),
        ),
        (
            "tv.example.lan",
            found(&["10.1.2.3"]),
            Err(DnsError::ServFail),
        ),
        // The right A next to the old one, and an AAAA for a service without an IPv6 VIP.
        (
            "v6.example.lan",
            found(&["172.29.52.100", "172.29.51.210"]),
            found(&["fd47:25e1:2f96:52:100::9"]),
        ),
    ]);
    let r = validate(&input);
    assert!(!r.ok);
    expect(
        &r,
        "dns",
        Status::Fail,
        &[
            "ingress/traefik: traefik.example.lan A: resolves to 172.29.51.200, it should be 172.29.52.200: stale record from before the migration (L2 address 172.29.51.200, this service's address then)",
            "ingress/traefik: ingress.example.lan A: resolves to 172.29.51.220, it should be 172.29.52.200: stale record from before the migration (172.29.51.220 is inside the pre-migration L2 pool l2-pool)",
            "ingress/traefik: ingress.example.lan AAAA: timeout (no answer in 2 tries of 2 s) at 172.29.51.1:53: it should resolve to fd47:25e1:2f96:52:100::1",
            "media/jellyfin: jellyfin.example.lan does not exist at 172.29.51.1:53 (NXDOMAIN): it should resolve to 172.29.52.100",
            "media/jellyfin: media.example.lan A (via CNAME traefik.example.lan): resolves to 172.29.52.200, it should be 172.29.52.100: 172.29.52.200 is the address of service ingress/traefik",
            "media/jellyfin: tv.example.lan A: resolves to 10.1.2.3, it should be 172.29.52.100: 10.1.2.3 is outside every pool of the site",
            "media/jellyfin: v6.example.lan A: resolves to 172.29.52.100, 172.29.51.210, it should be 172.29.52.100: stale record from before the migration (L2 address 172.29.51.210, this service's address then)",
            "media/jellyfin: v6.example.lan AAAA: resolves to fd47:25e1:2f96:52:100::9, the service has no address of this family, so it should have no record: fd47:25e1:2f96:52:100::9 is in site pool bgp-default-ipv6, but no service has it",
            "6 name(s) of 2 service(s) asked at 172.29.51.1:53: 0 resolve",
        ],
    );
    // A failing AAAA query for a service without IPv6 is only a warning.
    let c = check(&r, "dns");
    assert!(c.details.iter().any(|d| d.contains(
        "tv.example.lan AAAA: SERVFAIL (the server could not answer) at 172.29.51.1:53 (the service has no IPv6 address"
    )));
    assert!(
        !c.details.iter().any(|d| d.contains("missing")),
        "nothing is partly there: {:#?}",
        c.details
    );
    // Without the backup the old address is just outside every pool.
    input.backup = None;
    expect(
        &validate(&input),
        "dns",
        Status::Fail,
        &["traefik.example.lan A: resolves to 172.29.51.200, it should be 172.29.52.200: 172.29.51.200 is outside every pool of the site"],
    );
}

#[test]
fn dns_of_a_pending_service_warns_and_a_target_is_not_checked() {
    let mut input = with_names();
    annotate(&mut input, "media/pending", HOSTNAME, "pending.example.lan");
    annotate(
        &mut input,
        "ingress/traefik",
        "external-dns.alpha.kubernetes.io/target",
        "gw.example.lan",
    );
    input.dns = answers(vec![(
        "jellyfin.example.lan",
        found(&["172.29.52.100"]),
        found(&[]),
    )]);
    let r = validate(&input);
    assert!(r.ok, "{}", render_table(&r));
    expect(
        &r,
        "dns",
        Status::Warn,
        &[
            "media/pending: pending.example.lan: the service has no LoadBalancer IP yet",
            "ingress/traefik: traefik.example.lan, ingress.example.lan: external-dns points the names at its target annotation (gw.example.lan)",
            "1 name(s) of 3 service(s) asked",
        ],
    );
    assert_eq!(
        dns_names(&input.services),
        ["jellyfin.example.lan", "pending.example.lan"]
    );
    // No annotated service at all.
    let mut input = healthy();
    input.dns = answers(vec![]);
    expect(
        &validate(&input),
        "dns",
        Status::Ok,
        &["no LoadBalancer service has an external-dns.alpha.kubernetes.io/hostname annotation"],
    );
}
