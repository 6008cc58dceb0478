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
            // FRR's own record of why: it sent Cease / Maximum Number of Prefixes Reached
            // (RFC 4486, 0601), or the summary says the prefix count holds the peer down (FRR
            // 7.5 may record "Peer closed the session" when the node closes first, but shows
            // `Idle (PfxCt)`; 8.x shows state Idle with peerState PfxCt).
            let s = lab.vtysh_json("show bgp summary json");
            let p = &s["ipv4Unicast"]["peers"]["172.29.51.11"];
            let pfx_ct = p["peerState"] == "PfxCt"
                || p["state"].as_str().is_some_and(|st| st.contains("PfxCt"));
            (n["bgpState"] != "Established" && (n["lastErrorCodeSubcode"] == "0601" || pfx_ct))
                .then_some(())
        },
    );
    let gone = |secs| {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            if lab.bgp_route(vip).is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    if gone(10) {
        return;
    }
    // FRR 7.5 only: its I/O thread can read the node's close after the NOTIFICATION before the
    // main thread stops the session, and takes it for a graceful restart (bgp_io.c sets
    // PEER_STATUS_NSF_WAIT; FRR 8.0 moved that handling to the main thread, 6af96fa). The routes
    // then stay, marked stale, for the restart time the node announced (120 s here, as Cilium's
    // default), and go when it ends. Anything else is a failure.
    let detail = lab.vtysh_json(&format!("show bgp ipv4 unicast {vip}/32 json"));
    let stale = detail["paths"]
        .as_array()
        .is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["stale"] == true));
    assert!(
        bgplb_tests::frr::build().version.major == 7 && stale,
        "{vip} is still in the kernel 10 s after the teardown, and not as FRR 7.5's stale \
         graceful-restart path: {detail}"
    );
    eprintln!("FRR 7.5 kept {vip} as a stale graceful-restart path; waiting for the restart time");
    assert!(
        gone(135),
        "{vip} still in the kernel after the node's restart time"
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
fn refused_routes_of_one_node_never_take_down_another() {
    // The reproduction of FRR 8.4's `maximum-prefix ... force` bug: node 1 announces 2 pool VIPs
    // and 11 refused prefixes, node 2 announces 9 pool VIPs, all accepted, limit 20. With
    // `force`, FRR counted node 1's refused routes against node 2 and tore node 2 down
    // (`Idle (PfxCt)`); bgplb renders maximum-prefix without `force`.
    let lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    let mut site = lab.site();
    site.bgp.maximum_prefix = 20;
    site.bgp.maximum_prefix_restart = 5;
    lab.apply_and_wait(&site);
    let (n1, n2) = (&lab.nodes[0], &lab.nodes[1]);
    for i in 100..102 {
        n1.announce(&format!("172.29.52.{i}/32"), COMMUNITY);
    }
    for i in 1..=11 {
        n1.announce(&format!("10.0.{i}.0/24"), COMMUNITY);
    }
    for i in 110..119 {
        n2.announce(&format!("172.29.52.{i}/32"), COMMUNITY);
    }
    wait_for("node 2's nine VIPs", Duration::from_secs(20), || {
        (lab.accepted_from("172.29.51.12").len() == 9).then_some(())
    });
    wait_for("node 1's thirteen routes", Duration::from_secs(20), || {
        (lab.received_from("172.29.51.11").len() == 13).then_some(())
    });
    // More announcements from both, then a moment for FRR to (wrongly) act.
    n2.announce("172.29.52.119/32", COMMUNITY);
    n1.announce("172.29.52.102/32", COMMUNITY);
    wait_for("node 2's tenth VIP", Duration::from_secs(20), || {
        (lab.accepted_from("172.29.51.12").len() == 10).then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    let states = lab.peer_states();
    assert_eq!(states["172.29.51.12"], "Established", "{states:?}");
    assert_eq!(states["172.29.51.11"], "Established", "{states:?}");
    assert_eq!(lab.accepted_from("172.29.51.12").len(), 10);
    assert!(!lab
        .running_config()
        .contains("maximum-prefix 20 restart 5 force"));
}

#[test]
fn a_node_flooding_refused_routes_is_shut_by_the_agent() {
    // Without `force`, FRR counts accepted routes only; the agent counts what each node sent
    // (refused routes included) and shuts a node that sent more than maximum_prefix.
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    let mut site = lab.daemon_site();
    site.bgp.maximum_prefix = 10;
    lab.write_site(&site);
    lab.start_daemon();
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
    lab.nodes[1].announce("172.29.52.120/32", COMMUNITY);
    for i in 1..=12 {
        lab.nodes[0].announce(&format!("10.0.{i}.0/24"), COMMUNITY);
    }
    let node = wait_for("the agent to shut k8s-1", Duration::from_secs(30), || {
        let status = lab.agent_status(1);
        let n = status["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["node"] == "k8s-1")?
            .clone();
        (n["state"] == "down").then_some(n)
    });
    // The agent judges whenever it looks: while the twelve routes still arrive one by one, it
    // may see eleven (seen with FRR 7.5). Either is more than the limit.
    let reason = node["reason"].as_str().unwrap();
    assert!(
        ["sent 11 routes", "sent 12 routes"]
            .iter()
            .any(|n| reason.contains(&format!("{n}, more than bgp.maximum_prefix (10)"))),
        "{node}"
    );
    // The status says so as soon as the agent decides; FRR is told right after.
    wait_for("FRR to shut k8s-1", Duration::from_secs(20), || {
        lab.running_config()
            .contains("neighbor 172.29.51.11 shutdown")
            .then_some(())
    });
    // The well-behaved node is untouched.
    assert_eq!(lab.peer_states()["172.29.51.12"], "Established");
    lab.wait_route("172.29.52.120", &["172.29.51.12"]);
}
