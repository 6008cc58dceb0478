//! The gateway accepts only host routes inside enabled pools, with the community; each kind of
//! refusal in its own test. A refused route reaches FRR (soft-reconfiguration keeps it, so we can
//! see it arrived) but is not accepted and never reaches the kernel.

use std::time::Duration;

use bgplb_tests::cmd::wait_for;
use bgplb_tests::{Lab, LabSpec};

const COMMUNITY: &[&str] = &["64512:100"];

/// One node, IPv4 only, sessions up with the reference policy.
fn lab() -> Lab {
    let lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    lab.apply_and_wait(&lab.site());
    lab
}

/// Announces `bad` and then a good VIP; once the good one is accepted the bad one has been
/// processed too. Asserts the bad one arrived and was refused.
fn assert_refused(lab: &Lab, bad: &str, communities: &[&str]) {
    let node = &lab.nodes[0];
    node.announce(bad, communities);
    node.announce("172.29.52.101/32", COMMUNITY);
    lab.wait_route("172.29.52.101", &["172.29.51.11"]);
    let received = lab.received_from(&node.ipv4);
    assert!(
        received.contains(bad),
        "{bad} never reached FRR: {received:?}"
    );
    let accepted = lab.accepted_from(&node.ipv4);
    assert!(!accepted.contains(bad), "{bad} was accepted: {accepted:?}");
    assert!(accepted.contains("172.29.52.101/32"));
    // (The segment's own unreachable route for 172.29.52.0/24 is not BGP's.)
    let kernel: Vec<String> = lab
        .kernel_routes("-4")
        .into_iter()
        .filter(|r| r.protocol == "bgp")
        .map(|r| r.dst)
        .collect();
    let host = bad.trim_end_matches("/32");
    assert!(
        !kernel
            .iter()
            .any(|d| d == bad || d == host || (bad == "0.0.0.0/0" && d == "default")),
        "{bad} in the kernel: {kernel:?}"
    );
    // status names the refused route.
    let status = lab.agent_ok(&["status"]);
    assert!(
        status.contains(&format!("refused from k8s-1 (172.29.51.11): {bad}")),
        "{status}"
    );
}

#[test]
fn vip_outside_every_pool_is_refused() {
    assert_refused(&lab(), "172.29.52.10/32", COMMUNITY);
}

#[test]
fn segment_aggregate_is_refused() {
    assert_refused(&lab(), "172.29.52.0/24", COMMUNITY);
}

#[test]
fn default_route_is_refused() {
    assert_refused(&lab(), "0.0.0.0/0", COMMUNITY);
}

#[test]
fn route_into_the_node_subnet_is_refused() {
    assert_refused(&lab(), "172.29.51.12/32", COMMUNITY);
}

#[test]
fn vip_without_the_community_is_refused() {
    assert_refused(&lab(), "172.29.52.102/32", &[]);
}

#[test]
fn vip_from_a_disabled_pool_is_refused() {
    // bgp-reserved, 172.29.52.50-99, is disabled in the reference site.
    assert_refused(&lab(), "172.29.52.60/32", COMMUNITY);
}

/// Waits until FRR tore the session to k8s-1 down for exceeding maximum-prefix, and its routes
/// left the kernel.
fn assert_torn_down_for_prefixes(lab: &Lab, vip: &str) {
    wait_for(
        "the session to be torn down",
        Duration::from_secs(30),
        || {
            let v = lab.vtysh_json("show bgp neighbors 172.29.51.11 json");
            let n = &v["172.29.51.11"];
            // Cease / Maximum Number of Prefixes Reached (RFC 4486).
            (n["bgpState"] != "Established" && n["lastErrorCodeSubcode"] == "0601").then_some(())
        },
    );
    wait_for(
        "the node's routes to leave the kernel",
        Duration::from_secs(10),
        || lab.bgp_route(vip).is_none().then_some(()),
    );
}

fn lab_with_maximum_prefix(limit: u32) -> Lab {
    let lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    let mut site = lab.site();
    site.bgp.maximum_prefix = limit;
    lab.apply_and_wait(&site);
    lab
}

#[test]
fn more_prefixes_than_maximum_prefix_tear_the_session_down() {
    let lab = lab_with_maximum_prefix(3);
    let node = &lab.nodes[0];
    for i in 100..103 {
        node.announce(&format!("172.29.52.{i}/32"), COMMUNITY);
    }
    lab.wait_route("172.29.52.102", &["172.29.51.11"]);
    // FRR checks the count before adding a prefix, so the teardown comes at limit + 2 when
    // prefixes arrive one by one (seen with FRR 8.4).
    node.announce("172.29.52.103/32", COMMUNITY);
    node.announce("172.29.52.104/32", COMMUNITY);
    assert_torn_down_for_prefixes(&lab, "172.29.52.100");
}

#[test]
fn refused_prefixes_count_towards_maximum_prefix() {
    // `force`: refused routes count too, so junk cannot pile up behind the policy. FRR 8.4 checks
    // the count when it accepts a route, so the teardown comes with the next acceptable one.
    let lab = lab_with_maximum_prefix(3);
    let node = &lab.nodes[0];
    node.announce("172.29.52.100/32", COMMUNITY);
    lab.wait_route("172.29.52.100", &["172.29.51.11"]);
    for i in 1..=5 {
        node.announce(&format!("10.0.{i}.0/24"), COMMUNITY);
    }
    wait_for("the junk to reach FRR", Duration::from_secs(10), || {
        (lab.received_from("172.29.51.11").len() == 6).then_some(())
    });
    node.announce("172.29.52.101/32", COMMUNITY);
    assert_torn_down_for_prefixes(&lab, "172.29.52.100");
}
