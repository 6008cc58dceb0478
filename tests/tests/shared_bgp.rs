//! The operator's own BGP stays untouched. The gateway already runs BGP for something else: an
//! uplink neighbour that relies on FRR's default IPv4 activation, a router-id of its own,
//! graceful restart off, `no bgp ebgp-requires-policy`. A site file that would change a global
//! applied to every peer (the router-id resets every session) is refused with the fix and changes
//! nothing; one that matches leaves the uplink's session up through every apply (its establishment
//! and drop counters do not move) while bgplb's IPv4 and IPv6 sessions come up, the IPv6 ones
//! without IPv4 unicast.

use bgplb_tests::{Lab, LabSpec};

/// The uplink: the lab's third node namespace, configured by the operator, not by bgplb.
const UPLINK: &str = "172.29.51.13";
const OURS: [&str; 4] = [
    "172.29.51.11",
    "172.29.51.12",
    "fd47:25e1:2f96:51::11",
    "fd47:25e1:2f96:51::12",
];

/// Address families a neighbour's session carries, as FRR reports them.
fn families(lab: &Lab, neighbor: &str) -> Vec<String> {
    let v = lab.vtysh_json(&format!("show bgp neighbors {neighbor} json"));
    v[neighbor]["addressFamilyInfo"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// The `router bgp` globals as FRR runs them (the lines directly under it that are not neighbours).
fn globals(lab: &Lab) -> Vec<String> {
    let running = lab.running_config();
    let mut inside = false;
    let mut out = Vec::new();
    for line in running.lines() {
        if line.starts_with("router bgp ") {
            inside = true;
        } else if inside && !line.starts_with(' ') {
            inside = false;
        } else if inside && (line.starts_with(" bgp ") || line.starts_with(" no bgp ")) {
            out.push(line.trim().to_string());
        }
    }
    out
}

#[test]
fn the_operators_uplink_keeps_its_session_and_its_globals_through_bgplbs_applies() {
    let lab = Lab::start(LabSpec {
        nodes: 3,
        ipv6: true,
        ..LabSpec::default()
    });
    lab.vtysh_config(&[
        "router bgp 64512",
        "bgp router-id 10.255.0.1",
        "no bgp ebgp-requires-policy",
        &format!("neighbor {UPLINK} remote-as 64513"),
        &format!("neighbor {UPLINK} description uplink"),
    ]);
    lab.wait_established(&[UPLINK]);
    assert_eq!(
        families(&lab, UPLINK),
        ["ipv4Unicast"],
        "FRR's default activation"
    );
    let before = lab.session_counters()[UPLINK];
    let globals_before = globals(&lab);
    assert!(
        globals_before.contains(&"bgp router-id 10.255.0.1".to_string()),
        "{globals_before:?}"
    );
    let running_before = lab.running_config();

    // The reference site: a router-id of its own and graceful restart on. Refused, nothing changed.
    let mut site = lab.site();
    site.clusters[0].nodes.truncate(2);
    lab.write_site(&site);
    for command in ["plan", "apply"] {
        let out = lab.agent(&[command]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} went through: {stderr}");
        for said in [
            "operator's own peers (172.29.51.13)",
            "`bgp router-id 10.255.0.1` → `bgp router-id 172.29.51.1`",
            "add `bgp graceful-restart`",
            "gateway.router_id = \"10.255.0.1\" or leave gateway.router_id out",
            "bgp.graceful_restart = false",
        ] {
            assert!(
                stderr.contains(said),
                "{command}: `{said}` not in: {stderr}"
            );
        }
        assert_eq!(
            lab.running_config(),
            running_before,
            "a refused {command} changed FRR"
        );
    }
    let history: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["history", "--json"])).expect("history --json");
    assert_eq!(
        history.as_array().map(Vec::len),
        Some(0),
        "a refused apply recorded a generation: {history}"
    );

    // The site file made to match: no router-id of bgplb's, graceful restart as FRR runs it.
    site.gateway.router_id = None;
    site.bgp.graceful_restart = false;
    lab.write_site(&site);
    let plan = lab.agent_ok(&["plan"]);
    let changes: Vec<&str> = plan.lines().filter(|l| !l.starts_with("! ")).collect();
    for untouched in [
        "router-id",
        "graceful-restart",
        "ebgp-requires-policy",
        "default ipv4-unicast",
        UPLINK,
    ] {
        assert!(
            !changes.iter().any(|l| l.contains(untouched)),
            "the plan touches `{untouched}`:\n{plan}"
        );
    }
    assert!(
        plan.contains("! FRR runs `no bgp ebgp-requires-policy`"),
        "the plan does not say it leaves the operator's policy setting:\n{plan}"
    );
    lab.agent_ok(&["apply"]);
    lab.wait_established(&OURS);
    for v6 in &OURS[2..] {
        assert_eq!(
            families(&lab, v6),
            ["ipv6Unicast"],
            "{v6}: an IPv6 session carries IPv4 unicast"
        );
    }
    for v4 in &OURS[..2] {
        assert_eq!(families(&lab, v4), ["ipv4Unicast"], "{v4}");
    }

    // A second apply, a node leaving and a rollback: the uplink never moves.
    lab.agent_ok(&["apply"]);
    site.clusters[0].nodes.truncate(1);
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    lab.agent_ok(&["rollback"]);
    lab.wait_established(&OURS);
    site = lab.site();
    site.clusters[0].nodes.truncate(2);
    site.gateway.router_id = None;
    site.bgp.graceful_restart = false;
    lab.write_site(&site);
    assert!(
        lab.agent_ok(&["plan"]).contains("nothing to change"),
        "not a fixed point after the rollback"
    );

    let states = lab.peer_states();
    assert_eq!(states[UPLINK], "Established", "{states:?}");
    assert_eq!(
        lab.session_counters()[UPLINK],
        before,
        "the uplink's session was reset (established, dropped)"
    );
    assert_eq!(families(&lab, UPLINK), ["ipv4Unicast"]);
    assert_eq!(
        globals(&lab),
        globals_before,
        "the operator's globals changed"
    );
}
