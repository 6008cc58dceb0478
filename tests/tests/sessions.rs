//! IPv4 and IPv6 sessions for every node, pool VIPs in the gateway's kernel FIB, ECMP.

use bgplb_tests::{Lab, LabSpec};

#[test]
fn every_node_gets_ipv4_and_ipv6_sessions_and_vips_reach_the_fib() {
    let lab = Lab::start(LabSpec {
        nodes: 3,
        ..LabSpec::default()
    });
    lab.write_site(&lab.site());
    let out = lab.agent_ok(&["apply"]);
    assert!(out.contains("generation 1 applied"), "{out}");
    lab.wait_established(
        &lab.all_node_addresses()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );

    // One VIP per node, IPv4 and IPv6, with the community.
    lab.nodes[0].announce("172.29.52.100/32", &["64512:100"]);
    lab.nodes[1].announce("172.29.52.200/32", &["64512:100"]);
    lab.nodes[2].announce("fd47:25e1:2f96:52:100::5/128", &["64512:100"]);
    lab.wait_route("172.29.52.100", &["172.29.51.11"]);
    lab.wait_route("172.29.52.200", &["172.29.51.12"]);
    lab.wait_route("fd47:25e1:2f96:52:100::5", &["fd47:25e1:2f96:51::13"]);

    // The IPv6 route arrived over the IPv6 session, with a global next hop.
    assert!(lab
        .accepted_from("fd47:25e1:2f96:51::13")
        .contains("fd47:25e1:2f96:52:100::5/128"));
    assert!(lab.accepted_from("172.29.51.13").is_empty());

    // Two nodes announcing one VIP: both next hops.
    lab.nodes[1].announce("172.29.52.100/32", &["64512:100"]);
    lab.wait_route("172.29.52.100", &["172.29.51.11", "172.29.51.12"]);
    lab.nodes[0].announce("fd47:25e1:2f96:52:100::5/128", &["64512:100"]);
    lab.wait_route(
        "fd47:25e1:2f96:52:100::5",
        &["fd47:25e1:2f96:51::11", "fd47:25e1:2f96:51::13"],
    );

    // status shows every session Established with its accepted prefixes.
    let status: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["status", "--json"])).unwrap();
    let peers = status["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 6, "{status:#}");
    assert!(
        peers.iter().all(|p| p["state"] == "Established"),
        "{status:#}"
    );
    let k8s1_v4 = peers
        .iter()
        .find(|p| p["address"] == "172.29.51.11")
        .unwrap();
    assert_eq!(k8s1_v4["node"], "k8s-1");
    assert_eq!(k8s1_v4["accepted"], 1);
    assert_eq!(status["generation"]["number"], 1);
}
