//! Both ends compared over the companion's fixtures (`nodes.json`: k8s-1 and k8s-2 Ready with
//! both families, k8s-3 being deleted; `validate/agent-status.json`: the gateway's four home
//! sessions Established) and CiliumBGPNodeConfig objects shaped like Cilium's.

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

fn nodes() -> Vec<Node> {
    let v: Value = serde_json::from_str(fixture!("nodes.json")).unwrap();
    serde_json::from_value(v["items"].clone()).unwrap()
}

fn agent() -> AgentStatus {
    serde_json::from_str(fixture!("validate/agent-status.json")).unwrap()
}

/// A Cilium peer status: (gateway address, state, advertised routes).
fn peer(name: &str, addr: &str, state: &str, advertised: u64) -> Value {
    let afi = if addr.contains(':') { "ipv6" } else { "ipv4" };
    json!({
        "name": name, "peerAddress": addr, "peerASN": 64512, "peeringState": state,
        "establishedTime": "2026-11-25T12:00:00Z",
        "routeCount": [{"afi": afi, "safi": "unicast", "advertised": advertised, "received": 0}],
        "timers": {"appliedHoldTimeSeconds": 9, "appliedKeepaliveSeconds": 3}
    })
}

/// A CiliumBGPNodeConfig (`cilium.io/v2`) as Cilium's operator creates it and its agent fills
/// the status.
fn node_config(node: &str, peers: Vec<Value>) -> Value {
    let spec_peers: Vec<Value> = peers
        .iter()
        .map(|p| {
            json!({"name": p["name"], "peerAddress": p["peerAddress"], "peerASN": p["peerASN"],
                   "peerConfigRef": {"name": format!("bgplb-home-{}", if p["peerAddress"].as_str().unwrap().contains(':') { "ipv6" } else { "ipv4" })}})
        })
        .collect();
    json!({
        "apiVersion": "cilium.io/v2", "kind": "CiliumBGPNodeConfig",
        "metadata": {"name": node},
        "spec": {"bgpInstances": [{"name": "bgplb", "localASN": 64513, "peers": spec_peers}]},
        "status": {"bgpInstances": [{"name": "bgplb", "localASN": 64513, "peers": peers}]}
    })
}

/// Both nodes' configs agreeing with the agent fixture (2 IPv4 and 1 IPv6 route accepted).
fn healthy_configs() -> Vec<Value> {
    ["k8s-1", "k8s-2"]
        .iter()
        .map(|n| {
            node_config(
                n,
                vec![
                    peer("udm-pro-ipv4", "172.29.51.1", "established", 2),
                    peer("udm-pro-ipv6", "fd47:25e1:2f96:51::1", "established", 1),
                ],
            )
        })
        .collect()
}

fn healthy() -> Input {
    Input {
        site: site(),
        cluster: "home".into(),
        nodes: nodes(),
        agent: agent(),
        node_configs: healthy_configs(),
        peering_policies: 0,
    }
}

/// Sets the `i`-th peer of `node`'s config status to `v`.
fn set_peer(input: &mut Input, node: &str, i: usize, v: Value) {
    let c = input
        .node_configs
        .iter_mut()
        .find(|c| c["metadata"]["name"] == node)
        .unwrap();
    c["status"]["bgpInstances"][0]["peers"][i] = v;
}

fn gateway_peer<'a>(input: &'a mut Input, node: &str, family: &str) -> &'a mut PeerStatus {
    input
        .agent
        .peers
        .iter_mut()
        .find(|p| p.node == node && p.family == family)
        .unwrap()
}

fn messages(r: &Report) -> Vec<String> {
    r.findings.iter().map(|f| f.message.clone()).collect()
}

/// Asserts the report fails with a finding containing every needle (each in some line).
fn fails_with(r: &Report, needles: &[&str]) {
    assert!(!r.ok, "{}", render_table(r));
    for n in needles {
        assert!(
            r.findings
                .iter()
                .any(|f| f.status == Status::Fail && f.message.contains(n)),
            "no failure contains {n:?}:\n{}",
            render_table(r)
        );
    }
}

fn row<'a>(r: &'a Report, node: &str, family: &str) -> &'a Session {
    r.sessions
        .iter()
        .find(|s| s.node == node && s.family == family)
        .unwrap_or_else(|| panic!("no row {node} {family}:\n{}", render_table(r)))
}

#[test]
fn both_ends_agreeing_is_ok_and_quiet() {
    let r = verify(&healthy());
    assert!(r.ok, "{}", render_table(&r));
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.cilium_view);
    // k8s-3 is being deleted: not expected; the lab cluster's session is not ours.
    let rows: Vec<(&str, &str)> = r
        .sessions
        .iter()
        .map(|s| (s.node.as_str(), s.family.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("k8s-1", "ipv4"),
            ("k8s-1", "ipv6"),
            ("k8s-2", "ipv4"),
            ("k8s-2", "ipv6")
        ]
    );
    assert!(r.sessions.iter().all(|s| s.result == Status::Ok));
    assert_eq!(
        r.summary,
        "4 of 4 session(s) Established on both ends (udm-pro and Cilium) for cluster home"
    );
    let table = render_table(&r);
    assert!(
        table.contains("NODE") && table.contains("CILIUM") && table.contains("RESULT"),
        "{table}"
    );
    assert!(
        table.contains("Established, 2 accepted") && table.contains("established, 2 advertised"),
        "{table}"
    );
}

#[test]
fn cilium_idle_under_an_established_gateway_session_is_named() {
    let mut input = healthy();
    set_peer(
        &mut input,
        "k8s-2",
        0,
        peer("udm-pro-ipv4", "172.29.51.1", "idle", 0),
    );
    let r = verify(&input);
    fails_with(&r, &["k8s-2 ipv4: gateway Established, Cilium says idle"]);
    assert_eq!(row(&r, "k8s-2", "ipv4").result, Status::Fail);
    assert_eq!(row(&r, "k8s-2", "ipv6").result, Status::Ok);
    assert_eq!(messages(&r).len(), 1, "{:#?}", r.findings);
}

#[test]
fn a_session_down_on_both_ends_is_named_once() {
    let mut input = healthy();
    set_peer(
        &mut input,
        "k8s-2",
        0,
        peer("udm-pro-ipv4", "172.29.51.1", "active", 0),
    );
    gateway_peer(&mut input, "k8s-2", "ipv4").state = "Active".into();
    let r = verify(&input);
    fails_with(
        &r,
        &["k8s-2 ipv4: session down: gateway Active, Cilium says active"],
    );
    assert_eq!(messages(&r).len(), 1, "{:#?}", r.findings);
    assert!(r.summary.starts_with("3 of 4"), "{}", r.summary);
}

#[test]
fn cilium_established_but_the_gateway_not_is_named() {
    let mut input = healthy();
    gateway_peer(&mut input, "k8s-1", "ipv6").state = "Connect".into();
    let r = verify(&input);
    fails_with(
        &r,
        &["k8s-1 ipv6: Cilium says established, gateway Connect"],
    );
}

#[test]
fn a_ready_node_without_gateway_sessions_is_one_line() {
    let mut input = healthy();
    input.agent.peers.retain(|p| p.node != "k8s-2");
    let r = verify(&input);
    fails_with(&r, &["k8s-2: no session on the gateway (node is Ready)"]);
    assert_eq!(messages(&r).len(), 1, "{:#?}", r.findings);
    assert!(row(&r, "k8s-2", "ipv4").gateway.is_none());
    // One family only: named with the family.
    let mut input = healthy();
    input
        .agent
        .peers
        .retain(|p| !(p.node == "k8s-2" && p.family == "ipv6"));
    let r = verify(&input);
    fails_with(
        &r,
        &["k8s-2 ipv6: no session on the gateway (node is Ready)"],
    );
}

#[test]
fn cilium_peering_with_another_address_names_both() {
    let mut input = healthy();
    set_peer(
        &mut input,
        "k8s-1",
        1,
        peer("udm-pro-ipv6", "fd47:25e1:2f96:51::2", "active", 0),
    );
    gateway_peer(&mut input, "k8s-1", "ipv6").state = "Active".into();
    let r = verify(&input);
    fails_with(
        &r,
        &["k8s-1 ipv6: Cilium peers with fd47:25e1:2f96:51::2, the gateway is fd47:25e1:2f96:51::1"],
    );
    // The address is the problem: no second line about the states.
    assert_eq!(messages(&r).len(), 1, "{:#?}", r.findings);
}

#[test]
fn a_node_config_without_a_peer_of_the_family_is_named() {
    let mut input = healthy();
    input.node_configs[0] = node_config(
        "k8s-1",
        vec![peer("udm-pro-ipv4", "172.29.51.1", "established", 2)],
    );
    let r = verify(&input);
    fails_with(
        &r,
        &["k8s-1 ipv6: Cilium has no ipv6 peer (the gateway is fd47:25e1:2f96:51::1)"],
    );
    assert!(matches!(row(&r, "k8s-1", "ipv6").cilium, CiliumEnd::NoPeer));
}

#[test]
fn asn_mismatches_are_named() {
    let mut input = healthy();
    let mut p = peer("udm-pro-ipv4", "172.29.51.1", "idle", 0);
    p["peerASN"] = json!(64513);
    set_peer(&mut input, "k8s-1", 0, p);
    input.node_configs[1]["status"]["bgpInstances"][0]["localASN"] = json!(64999);
    let r = verify(&input);
    fails_with(
        &r,
        &[
            "k8s-1 ipv4: Cilium peer ASN 64513 ≠ gateway ASN 64512",
            "k8s-2 ipv4: Cilium's local ASN 64999 ≠ cluster home's ASN 64513",
        ],
    );
}

#[test]
fn a_gateway_session_for_no_node_is_named() {
    let mut input = healthy();
    input.agent.peers.push(PeerStatus {
        cluster: "home".into(),
        node: "k8s-9".into(),
        family: "ipv4".into(),
        address: "172.29.51.19".into(),
        state: "Established".into(),
        accepted: 0,
    });
    let r = verify(&input);
    fails_with(
        &r,
        &["gateway has a session for k8s-9, which is not a node"],
    );
    let s = row(&r, "k8s-9", "ipv4");
    assert_eq!(s.cilium, CiliumEnd::NotANode);
    assert_eq!(s.result, Status::Fail);
    // Not Established: a leftover, a warning.
    input.agent.peers.last_mut().unwrap().state = "Active".into();
    let r = verify(&input);
    assert!(r.ok, "{}", render_table(&r));
    assert!(messages(&r)[0].contains("k8s-9"), "{:#?}", r.findings);
}

#[test]
fn more_routes_advertised_than_accepted_is_named() {
    let mut input = healthy();
    input.site.bgp.graceful_restart = false;
    set_peer(
        &mut input,
        "k8s-1",
        0,
        peer("udm-pro-ipv4", "172.29.51.1", "established", 3),
    );
    let r = verify(&input);
    fails_with(
        &r,
        &["k8s-1 ipv4: Cilium advertises 3 routes, the gateway accepted 2"],
    );
    // With graceful restart GoBGP v3 counts the End-of-RIB marker: one more is agreement ...
    input.site.bgp.graceful_restart = true;
    let r = verify(&input);
    assert!(r.ok && r.findings.is_empty(), "{}", render_table(&r));
    // ... two more is not.
    set_peer(
        &mut input,
        "k8s-1",
        0,
        peer("udm-pro-ipv4", "172.29.51.1", "established", 4),
    );
    let r = verify(&input);
    fails_with(
        &r,
        &["k8s-1 ipv4: Cilium advertises 4 routes, the gateway accepted 2"],
    );
    // Fewer advertised than accepted: Cilium's status lags, a warning.
    set_peer(
        &mut input,
        "k8s-1",
        0,
        peer("udm-pro-ipv4", "172.29.51.1", "established", 1),
    );
    let r = verify(&input);
    assert!(r.ok, "{}", render_table(&r));
    assert!(
        messages(&r)[0].contains("Cilium advertises 1 route, the gateway accepted 2"),
        "{:#?}",
        r.findings
    );
}

#[test]
fn a_node_without_node_config_is_named() {
    let mut input = healthy();
    input.node_configs.remove(1);
    let r = verify(&input);
    fails_with(&r, &["k8s-2: no CiliumBGPNodeConfig"]);
    assert_eq!(messages(&r).len(), 1, "{:#?}", r.findings);
    assert_eq!(row(&r, "k8s-2", "ipv4").cilium, CiliumEnd::NoNodeConfig);
    assert_eq!(row(&r, "k8s-2", "ipv4").result, Status::Fail);
}

#[test]
fn without_node_configs_only_the_gateway_is_judged() {
    let mut input = healthy();
    input.node_configs.clear();
    input.peering_policies = 1;
    let r = verify(&input);
    assert!(r.ok, "{}", render_table(&r));
    assert!(!r.cilium_view);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].status, Status::Warn);
    assert!(
        r.findings[0]
            .message
            .contains("Cilium's view is unavailable: the cluster uses CiliumBGPPeeringPolicy"),
        "{:#?}",
        r.findings
    );
    assert!(r
        .sessions
        .iter()
        .all(|s| s.cilium == CiliumEnd::Unavailable));
    assert!(
        r.summary.contains("Cilium's view unavailable"),
        "{}",
        r.summary
    );
    // The gateway's end alone still fails.
    gateway_peer(&mut input, "k8s-1", "ipv4").state = "Idle".into();
    let r = verify(&input);
    fails_with(&r, &["k8s-1 ipv4: session Idle on the gateway"]);
}

#[test]
fn a_node_that_is_not_ready_gets_warnings_only() {
    let mut input = healthy();
    let k2 = input
        .nodes
        .iter_mut()
        .find(|n| n.metadata.name.as_deref() == Some("k8s-2"))
        .unwrap();
    for c in k2
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()
        .iter_mut()
    {
        if c.type_ == "Ready" {
            c.status = "False".into();
        }
    }
    input.agent.peers.retain(|p| p.node != "k8s-2");
    let r = verify(&input);
    assert!(r.ok, "{}", render_table(&r));
    assert!(
        messages(&r).contains(&"k8s-2: no session on the gateway (node is not Ready)".to_string()),
        "{:#?}",
        r.findings
    );
    assert_eq!(row(&r, "k8s-2", "ipv4").result, Status::Warn);
    // One family missing: the family's line, said once that the node is not Ready.
    let mut input2 = input.clone();
    input2.agent = agent();
    input2
        .agent
        .peers
        .retain(|p| !(p.node == "k8s-2" && p.family == "ipv6"));
    let r = verify(&input2);
    assert!(r.ok, "{}", render_table(&r));
    assert!(
        messages(&r)
            .contains(&"k8s-2 ipv6: no session on the gateway (the node is not Ready)".to_string()),
        "{:#?}",
        r.findings
    );
}

#[test]
fn a_peer_only_in_the_spec_has_no_state_yet() {
    let mut input = healthy();
    // v2alpha1 (Cilium 1.16/1.17): same status shape; here the status is not written yet.
    input.node_configs[0]["apiVersion"] = json!("cilium.io/v2alpha1");
    input.node_configs[0]
        .as_object_mut()
        .unwrap()
        .remove("status");
    let r = verify(&input);
    assert!(r.ok, "{}", render_table(&r));
    assert!(
        messages(&r)
            .iter()
            .any(|m| m.contains("k8s-1 ipv4: gateway Established; Cilium reports no state")),
        "{:#?}",
        r.findings
    );
    assert_eq!(row(&r, "k8s-1", "ipv4").cilium.to_string(), "no state");
}

#[test]
fn the_agent_without_a_report_or_frr_is_named() {
    let mut input = healthy();
    input.agent.clusters.clear();
    input.agent.frr_error = Some("vtysh timed out".into());
    input.agent.peers.clear();
    let r = verify(&input);
    fails_with(
        &r,
        &[
            "cannot read FRR (vtysh timed out)",
            "k8s-1: no session on the gateway",
        ],
    );
    assert!(
        messages(&r)
            .iter()
            .any(|m| m.contains("has no report from cluster home")),
        "{:#?}",
        r.findings
    );
}

#[test]
fn cilium_peer_parsing_reads_both_families_and_route_counts() {
    let c = node_config(
        "k8s-1",
        vec![
            peer("udm-pro-ipv4", "172.29.51.1", "established", 4),
            peer("udm-pro-ipv6", "fe80::1%eth0", "open_sent", 0),
        ],
    );
    let peers = cilium_peers(&c);
    assert_eq!(peers.len(), 2, "{peers:#?}");
    assert_eq!(peers[0].0, Family::Ipv4);
    assert_eq!(peers[0].1.advertised, Some(4));
    assert_eq!(peers[0].1.local_asn, Some(64513));
    assert_eq!(peers[1].0, Family::Ipv6);
    assert_eq!(peers[1].1.state.as_deref(), Some("open_sent"));
}

#[test]
fn the_report_serializes_for_json() {
    let mut input = healthy();
    set_peer(
        &mut input,
        "k8s-2",
        0,
        peer("udm-pro-ipv4", "172.29.51.1", "idle", 0),
    );
    let v = serde_json::to_value(verify(&input)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["sessions"][2]["cilium"]["view"], "peer");
    assert_eq!(v["sessions"][2]["cilium"]["state"], "idle");
    assert_eq!(v["sessions"][2]["result"], "fail");
    assert_eq!(v["findings"][0]["status"], "fail");
}
