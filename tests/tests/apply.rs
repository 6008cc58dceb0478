//! Idempotent, minimal apply: the same state twice changes nothing; pool and prefix-list changes
//! never reset a session; adding or removing a node touches exactly its sessions.

use std::collections::BTreeMap;

use bgplb_tests::{Lab, LabSpec};

const COMMUNITY: &[&str] = &["64512:100"];

/// Session counters of the given neighbours.
fn counters(lab: &Lab, addresses: &[String]) -> BTreeMap<String, (u64, u64)> {
    let all = lab.session_counters();
    addresses
        .iter()
        .map(|a| {
            (
                a.clone(),
                *all.get(a)
                    .unwrap_or_else(|| panic!("no neighbour {a} in FRR")),
            )
        })
        .collect()
}

fn history(lab: &Lab) -> Vec<serde_json::Value> {
    serde_json::from_str(&lab.agent_ok(&["history", "--json"])).expect("history json")
}

/// The generation's script changes the neighbours `addresses` and, besides them, only the ECMP
/// width (`maximum-paths` follows the node count).
fn assert_only_touches(generation: &serde_json::Value, addresses: &[&str]) {
    let script = generation["script"].as_str().expect("script");
    let mut neighbor_lines = 0;
    for line in script.lines().map(str::trim) {
        let context = line.starts_with("router bgp")
            || line.starts_with("address-family")
            || line.starts_with("exit");
        let ours = addresses.iter().any(|a| {
            line.contains(&format!("neighbor {a} ")) || line.ends_with(&format!("neighbor {a}"))
        });
        neighbor_lines += usize::from(ours);
        assert!(
            context || ours || line.starts_with("maximum-paths "),
            "unexpected change: {line}\n{script}"
        );
    }
    assert!(neighbor_lines >= addresses.len(), "{script}");
}

#[test]
fn applying_the_same_state_twice_changes_nothing() {
    let lab = Lab::start(LabSpec {
        nodes: 2,
        ..LabSpec::default()
    });
    let mut site = lab.site();
    // Record every vtysh call the agent makes.
    let log = lab.dir.path().join("vtysh-calls.log");
    site.agent.frr.vtysh = lab.vtysh_wrapper(
        "vtysh-logged",
        &format!("echo \"$*\" >> {}\nexec $VTYSH \"$@\"", log.display()),
    );
    lab.apply_and_wait(&site);
    let addresses = lab.all_node_addresses();
    let before = counters(&lab, &addresses);
    std::fs::write(&log, "").unwrap();

    let out = lab.agent_ok(&["apply"]);
    assert!(
        out.contains("FRR already runs generation 1: nothing changed"),
        "{out}"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        !calls.contains(" -f "),
        "a no-op apply ran a configuration script: {calls}"
    );
    assert!(!calls.contains("write memory"), "{calls}");
    assert_eq!(
        history(&lab).len(),
        1,
        "a no-op apply recorded a generation"
    );
    assert_eq!(
        counters(&lab, &addresses),
        before,
        "a no-op apply reset a session"
    );
    let plan = lab.agent_ok(&["plan"]);
    assert!(plan.contains("nothing to change"), "{plan}");
}

#[test]
fn pool_and_prefix_list_changes_never_reset_a_session() {
    let lab = Lab::start(LabSpec {
        nodes: 2,
        ..LabSpec::default()
    });
    let mut site = lab.site();
    lab.apply_and_wait(&site);
    let addresses = lab.all_node_addresses();
    let node = &lab.nodes[0];
    node.announce("172.29.52.230/32", COMMUNITY); // in no pool yet
    node.announce("172.29.52.200/32", COMMUNITY); // bgp-ingress
    node.announce("fd47:25e1:2f96:52:100::7/128", COMMUNITY);
    lab.wait_route("172.29.52.200", &["172.29.51.11"]);
    lab.wait_route("fd47:25e1:2f96:52:100::7", &["fd47:25e1:2f96:51::11"]);
    assert!(lab.bgp_route("172.29.52.230").is_none());
    let before = counters(&lab, &addresses);

    // Add a pool: its VIP is accepted without a session reset.
    site.pools.push(bgplb_site::Pool {
        name: "bgp-extra".into(),
        blocks: vec!["172.29.52.230-172.29.52.239".into()],
        disabled: false,
        cluster: None,
    });
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    lab.wait_route("172.29.52.230", &["172.29.51.11"]);

    // Remove a pool: its VIP is withdrawn from the FIB, sessions stay.
    site.pools.retain(|p| p.name != "bgp-ingress");
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    bgplb_tests::cmd::wait_for(
        "172.29.52.200 to leave the FIB",
        std::time::Duration::from_secs(10),
        || lab.bgp_route("172.29.52.200").is_none().then_some(()),
    );

    // Disable the IPv6 pool (a prefix-list change in the other family).
    for p in site
        .pools
        .iter_mut()
        .filter(|p| p.name == "bgp-default-ipv6")
    {
        p.disabled = true;
    }
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    bgplb_tests::cmd::wait_for(
        "the IPv6 VIP to leave the FIB",
        std::time::Duration::from_secs(10),
        || {
            lab.bgp_route("fd47:25e1:2f96:52:100::7")
                .is_none()
                .then_some(())
        },
    );

    // Stop requiring the community (a route-map change): the gateway adds it instead.
    site.bgp.require_community = false;
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);

    // Renumbered prefix-lists and the new route-map still accept what they should, once FRR
    // has re-evaluated them (its route-map delay timer).
    // (A loaded machine may still be re-evaluating after the sleep: a route wrongly refused
    // would not come back, so waiting a little more cannot hide one.)
    std::thread::sleep(std::time::Duration::from_secs(7));
    bgplb_tests::cmd::wait_for(
        "the VIP accepted and in the FIB after the policy change",
        std::time::Duration::from_secs(10),
        || {
            (lab.accepted_from("172.29.51.11")
                .contains("172.29.52.230/32")
                && lab.bgp_route("172.29.52.230").is_some())
            .then_some(())
        },
    );
    assert_eq!(
        counters(&lab, &addresses),
        before,
        "a policy change reset a session"
    );
    assert_eq!(history(&lab).len(), 5);
}

#[test]
fn adding_and_removing_a_node_touches_exactly_its_sessions() {
    let lab = Lab::start(LabSpec {
        nodes: 3,
        ..LabSpec::default()
    });
    let mut site = lab.site();
    let third = site.clusters[0].nodes.pop().expect("three nodes");
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    let first_two: Vec<String> = lab.nodes[..2]
        .iter()
        .flat_map(|n| [n.ipv4.clone(), n.ipv6.clone().unwrap()])
        .collect();
    lab.wait_established(&first_two.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!lab.peer_states().contains_key("172.29.51.13"));
    let before = counters(&lab, &first_two);

    // Add k8s-3: exactly its two sessions (peer-group and description lines for each).
    site.clusters[0].nodes.push(third);
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    lab.wait_established(&["172.29.51.13", "fd47:25e1:2f96:51::13"]);
    assert_only_touches(
        &history(&lab)[0],
        &["172.29.51.13", "fd47:25e1:2f96:51::13"],
    );
    assert_eq!(
        counters(&lab, &first_two),
        before,
        "adding a node reset another node's session"
    );

    // Remove k8s-1: its two neighbours go, nothing else changes.
    let others: Vec<String> = lab
        .all_node_addresses()
        .into_iter()
        .filter(|a| !a.ends_with("11"))
        .collect();
    let before = counters(&lab, &others);
    site.clusters[0].nodes.retain(|n| n.name != "k8s-1");
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    assert_only_touches(
        &history(&lab)[0],
        &["172.29.51.11", "fd47:25e1:2f96:51::11"],
    );
    let states = lab.peer_states();
    assert!(
        !states.contains_key("172.29.51.11") && !states.contains_key("fd47:25e1:2f96:51::11"),
        "{states:?}"
    );
    assert_eq!(
        counters(&lab, &others),
        before,
        "removing a node reset another node's session"
    );
}

#[test]
fn the_operators_own_frr_configuration_survives_every_apply() {
    let lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    // Configuration the operator made by hand: an uplink neighbour and its filter.
    let operator = lab.dir.path().join("operator.conf");
    std::fs::write(
        &operator,
        "ip prefix-list UPLINK-OUT seq 5 permit 172.29.52.0/24\n\
         route-map UPLINK-OUT permit 10\n match ip address prefix-list UPLINK-OUT\nexit\n\
         router bgp 64512\n neighbor 192.0.2.1 remote-as 65000\n neighbor 192.0.2.1 description uplink\n\
          address-family ipv4 unicast\n  neighbor 192.0.2.1 activate\n  neighbor 192.0.2.1 route-map UPLINK-OUT out\n exit-address-family\nexit\n",
    )
    .unwrap();
    bgplb_tests::cmd::run(&[
        bgplb_tests::lab::vtysh(),
        "-N",
        &lab.gw,
        "-f",
        &operator.display().to_string(),
    ]);
    let operator_lines = [
        "ip prefix-list UPLINK-OUT seq 5 permit 172.29.52.0/24",
        "route-map UPLINK-OUT permit 10",
        " neighbor 192.0.2.1 remote-as 65000",
        " neighbor 192.0.2.1 description uplink",
        "  neighbor 192.0.2.1 route-map UPLINK-OUT out",
    ];
    let check = |when: &str| {
        let running = lab.running_config();
        for line in operator_lines {
            assert!(
                running.lines().any(|l| l == line),
                "after {when}: `{line}` is gone:\n{running}"
            );
        }
    };

    // Its uplink has no router-id or graceful restart set: the site leaves those globals alone
    // (tests/tests/shared_bgp.rs: what happens when it does not).
    let mut site = lab.site();
    site.gateway.router_id = None;
    site.bgp.graceful_restart = false;
    lab.apply_and_wait(&site);
    check("the first apply");
    site.clusters[0].nodes.pop();
    site.pools.retain(|p| p.name != "bgp-ingress");
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    check("removing a node and a pool");
    lab.agent_ok(&["rollback"]);
    check("a rollback");
}

#[test]
fn a_cluster_removed_and_added_back_at_once_leaves_frr_running() {
    // FRR before 8.3 crashes, zebra and bgpd both, when a route-map deleted by name is created
    // and deleted again before its delay timer has run (FRRouting/frr#10708); there the agent
    // waits for the deletion to settle. Three rounds of a second cluster going and coming back,
    // as fast as the agent applies: without the wait, 7.5.1 did not survive them.
    let lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    let base = lab.site();
    let mut with_lab = base.clone();
    let mut second = with_lab.clusters[0].clone();
    second.name = "lab".into();
    second.asn = 64514;
    second.node_subnets = vec!["172.29.53.0/24".parse().unwrap()];
    second.reserved = Vec::new();
    second.nodes = vec![bgplb_site::StaticNode {
        name: "lab-1".into(),
        ipv4: Some("172.29.53.11".parse().unwrap()),
        ipv6: None,
    }];
    with_lab.clusters.push(second);
    assert!(with_lab.validate().is_empty(), "{:?}", with_lab.validate());
    lab.apply_and_wait(&base);
    for round in 1..=3 {
        lab.write_site(&with_lab);
        lab.agent_ok(&["apply"]);
        assert!(
            lab.running_config().contains("route-map BGPLB-lab-IN-V4 "),
            "round {round}: the second cluster's route-map is missing"
        );
        lab.write_site(&base);
        lab.agent_ok(&["apply"]);
        assert!(
            !lab.running_config().contains("BGPLB-lab-IN-V4"),
            "round {round}: the second cluster's route-map is still there"
        );
    }
    lab.assert_frr_survived_its_delayed_processing();
    lab.wait_established(&[lab.nodes[0].ipv4.as_str()]);
}
