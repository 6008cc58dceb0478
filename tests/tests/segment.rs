//! The LB segment and the kernel's view, over netlink, in namespaces: routed and adopt modes,
//! ownership, the FIB check, the L2 conflict scan, ECMP detection, bad input. (The vlan mode needs
//! a kernel with 8021q and is tested in the QEMU machine: cross/.)

use std::time::Duration;

use bgplb_tests::cmd::{output, run, wait_for};
use bgplb_tests::{Lab, LabSpec};

fn routes(lab: &Lab) -> String {
    run(&["ip", "-n", &lab.gw, "route", "show", "table", "all"])
        + &run(&["ip", "-n", &lab.gw, "-6", "route", "show", "table", "all"])
}

fn validate(lab: &Lab) -> (bool, serde_json::Value) {
    let out = lab.agent(&["validate", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "validate --json: {e}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// The detail lines of one check.
fn details(v: &serde_json::Value, name: &str) -> Vec<String> {
    check(v, name)["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

fn check<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {v:#}"))
}

#[test]
fn routed_mode_refuses_unallocated_vips_fast_and_owns_only_its_routes() {
    let lab = Lab::start(LabSpec {
        nodes: 1,
        client: true,
        ..LabSpec::default()
    });
    lab.write_site(&lab.site());
    // Someone else's objects with similar names and prefixes.
    run(&[
        "ip",
        "-n",
        &lab.gw,
        "route",
        "add",
        "unreachable",
        "172.29.53.0/24",
        "proto",
        "static",
    ]);
    run(&[
        "ip", "-n", &lab.gw, "link", "add", "br0.52", "type", "bridge",
    ]);

    let out = lab.agent_ok(&["segment", "apply"]);
    assert!(
        out.contains("done: + route unreachable 172.29.52.0/24 proto 201"),
        "{out}"
    );
    assert!(
        out.contains("done: + route unreachable fd47:25e1:2f96:52::/64 proto 201"),
        "{out}"
    );
    let r = routes(&lab);
    let has = |prefix: &str| {
        r.lines()
            .any(|l| l.starts_with(&format!("unreachable {prefix} ")) && l.contains("proto 201"))
    };
    assert!(
        has("172.29.52.0/24") && has("fd47:25e1:2f96:52::/64"),
        "{r}"
    );
    let again = lab.agent_ok(&["segment", "apply"]);
    assert!(again.contains("nothing changed"), "{again}");

    // Full apply: FRR too. An allocated VIP is reached; an unallocated one is refused at once.
    lab.agent_ok(&["apply"]);
    lab.wait_established(&["172.29.51.11"]);
    lab.serve_vip(0, "172.29.52.100", 8080);
    lab.nodes[0].announce("172.29.52.100/32", &["64512:100"]);
    lab.wait_route("172.29.52.100", &["172.29.51.11"]);
    assert_eq!(lab.tcp_from_client("172.29.52.100", 8080).unwrap(), "k8s-1");
    let refused = lab.tcp_from_client("172.29.52.123", 8080).unwrap_err();
    assert!(
        refused.contains("No route to host") || refused.contains("unreachable"),
        "expected an ICMP unreachable, got: {refused}"
    );
    let refused6 = lab
        .tcp_from_client("fd47:25e1:2f96:52::123", 8080)
        .unwrap_err();
    assert!(
        !refused6.contains("timed out"),
        "expected a fast refusal, got: {refused6}"
    );

    // Teardown removes exactly ours.
    let out = lab.agent_ok(&["segment", "teardown"]);
    assert!(out.contains("- route unreachable 172.29.52.0/24"), "{out}");
    let r = routes(&lab);
    assert!(!r.contains("proto 201"), "{r}");
    assert!(
        r.contains("unreachable 172.29.53.0/24 proto static"),
        "someone else's route was removed:\n{r}"
    );
    assert!(
        output(&["ip", "-n", &lab.gw, "link", "show", "br0.52"])
            .status
            .success(),
        "someone else's link was removed"
    );
}

#[test]
fn routed_mode_refuses_a_segment_that_is_already_on_an_interface() {
    let lab = Lab::start(LabSpec {
        nodes: 0,
        ..LabSpec::default()
    });
    lab.write_site(&lab.site());
    run(&[
        "ip",
        "-n",
        &lab.gw,
        "addr",
        "add",
        "172.29.52.1/24",
        "dev",
        "br51",
    ]);
    let before = routes(&lab);
    let out = lab.agent(&["segment", "apply"]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("overlaps the address 172.29.52.1/24 already on br51")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(routes(&lab), before);
}

#[test]
fn vlan_mode_with_a_missing_parent_is_refused_and_changes_nothing() {
    let lab = Lab::start(LabSpec {
        nodes: 0,
        ..LabSpec::default()
    });
    let mut site = lab.site();
    site.segment.mode = bgplb_site::SegmentMode::Vlan;
    site.segment.parent = Some("eth7".into());
    site.segment.gateway_addresses = vec!["172.29.52.1".parse().unwrap()];
    lab.write_site(&site);
    let before = routes(&lab) + &run(&["ip", "-n", &lab.gw, "link", "show"]);
    let out = lab.agent(&["segment", "apply"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the link `eth7` does not exist"),
        "{out:?}"
    );
    assert_eq!(
        routes(&lab) + &run(&["ip", "-n", &lab.gw, "link", "show"]),
        before
    );
    // A VLAN id out of range never gets this far: the site file is refused.
    site.segment.vlan = 4095;
    lab.write_site(&site);
    let out = lab.agent(&["segment", "apply"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("segment.vlan: VLAN id 4095 is outside 1-4094"));
}

/// A gateway with br52 made by "the controller", in adopt mode.
fn adopt_lab(address: &str) -> Lab {
    let lab = Lab::start(LabSpec {
        nodes: 1,
        ..LabSpec::default()
    });
    run(&["ip", "-n", &lab.gw, "link", "add", "br52", "type", "bridge"]);
    run(&["ip", "-n", &lab.gw, "addr", "add", address, "dev", "br52"]);
    run(&["ip", "-n", &lab.gw, "link", "set", "br52", "up"]);
    let mut site = lab.site();
    site.segment.mode = bgplb_site::SegmentMode::Adopt;
    site.segment.interface = Some("br52".into());
    site.segment.gateway_addresses = vec!["172.29.52.1".parse().unwrap()];
    lab.write_site(&site);
    lab
}

#[test]
fn adopt_mode_reports_a_wrong_address_and_leaves_the_interface_alone() {
    let lab = adopt_lab("172.29.52.9/24");
    let before = run(&["ip", "-n", &lab.gw, "addr", "show", "br52"]);
    let out = lab.agent_ok(&["segment", "apply"]);
    assert!(out.contains("nothing changed"), "{out}");
    assert!(
        out.contains("FAIL br52 lacks the address 172.29.52.1/24"),
        "{out}"
    );
    assert!(
        out.contains("FAIL br52 carries 172.29.52.9/24, which the site file does not list"),
        "{out}"
    );
    assert_eq!(
        run(&["ip", "-n", &lab.gw, "addr", "show", "br52"]),
        before,
        "adopt mode changed the interface"
    );
    let (ok, v) = validate(&lab);
    assert!(!ok, "validate must fail: {v:#}");
    assert_eq!(check(&v, "segment")["ok"], false);
}

#[test]
fn the_conflict_scan_finds_an_l2_announcement_with_its_mac() {
    let lab = adopt_lab("172.29.52.1/24");
    // A host on the segment answering ARP for a pool address, as an L2 announcement does.
    let l2 = bgplb_tests::netns::Scratch::new("a");
    run(&[
        "ip", "-n", &lab.gw, "link", "add", "l2a", "type", "veth", "peer", "name", "eth0", "netns",
        &l2.name,
    ]);
    run(&[
        "ip", "-n", &lab.gw, "link", "set", "l2a", "master", "br52", "up",
    ]);
    run(&[
        "ip",
        "-n",
        &l2.name,
        "addr",
        "add",
        "172.29.52.120/24",
        "dev",
        "eth0",
    ]);
    run(&["ip", "-n", &l2.name, "link", "set", "eth0", "up"]);
    let mac_json = run(&["ip", "-n", &l2.name, "-j", "link", "show", "eth0"]);
    let mac = serde_json::from_str::<serde_json::Value>(&mac_json).unwrap()[0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    // Traffic from the gateway to the VIP makes the gateway ARP for it.
    wait_for(
        "the gateway to learn the L2 answer",
        Duration::from_secs(10),
        || {
            bgplb_tests::netns::run_in(&lab.gw, || {
                let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
                let _ = s.send_to(b"x", "172.29.52.120:9");
            });
            std::thread::sleep(Duration::from_millis(300));
            let n = run(&["ip", "-n", &lab.gw, "neigh", "show", "172.29.52.120"]);
            n.contains(&mac).then_some(())
        },
    );
    let (ok, v) = validate(&lab);
    assert!(!ok);
    let c = &v["conflicts"][0];
    assert_eq!(
        (
            c["vip"].as_str(),
            c["interface"].as_str(),
            c["mac"].as_str()
        ),
        (Some("172.29.52.120"), Some("br52"), Some(mac.as_str())),
        "{v:#}"
    );
    assert!(check(&v, "l2")["details"][0]
        .as_str()
        .unwrap()
        .contains("an L2 announcement is still alive"));
}

#[test]
fn the_fib_check_catches_withdrawn_routes_wrong_next_hops_and_shadowing() {
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    let site = lab.daemon_site();
    lab.write_site(&site);
    lab.start_daemon();
    // The cluster says: web/nginx (Cluster) 172.29.52.150 on both nodes; media/jellyfin (Local)
    // 172.29.52.151 only where its endpoint is, k8s-1.
    let report = serde_json::json!({
        "cluster": "home", "generation": 5, "observed_at": "2026-11-25T12:00:00Z",
        "nodes": [
            {"name": "k8s-1", "ipv4": "172.29.51.11", "ready": true},
            {"name": "k8s-2", "ipv4": "172.29.51.12", "ready": true}
        ],
        "services": [
            {"namespace": "web", "name": "nginx", "ips": ["172.29.52.150"], "external_traffic_policy": "Cluster", "ready_nodes": ["k8s-1"]},
            {"namespace": "media", "name": "jellyfin", "ips": ["172.29.52.151"], "external_traffic_policy": "Local", "ready_nodes": ["k8s-1"]}
        ]
    });
    let a = bgplb_tests::client::request(
        &lab.nodes[0].ns,
        Some("companion-home"),
        "PUT",
        "https://172.29.51.1:7443/v1/clusters/home/report",
        Some(serde_json::to_vec(&report).unwrap()),
    );
    assert_eq!(a.status(), Some(202), "{a:?}");
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
    for n in &lab.nodes {
        n.announce("172.29.52.150/32", &["64512:100"]);
    }
    lab.nodes[0].announce("172.29.52.151/32", &["64512:100"]);
    lab.wait_route("172.29.52.150", &["172.29.51.11", "172.29.51.12"]);
    lab.wait_route("172.29.52.151", &["172.29.51.11"]);
    let (ok, v) = validate(&lab);
    assert!(ok, "{v:#}");
    // ECMP detected on this kernel: FRR got maximum-paths for the node count.
    assert_eq!(v["ecmp"]["supported"], true, "{v:#}");
    assert!(lab.running_config().contains("maximum-paths 2"));

    // A node that should announce withdraws: a missing next hop.
    lab.nodes[1].withdraw("172.29.52.150/32");
    lab.wait_route("172.29.52.150", &["172.29.51.11"]);
    // A node without an endpoint announces a Local service: an unexpected next hop.
    lab.nodes[1].announce("172.29.52.151/32", &["64512:100"]);
    lab.wait_route("172.29.52.151", &["172.29.51.11", "172.29.51.12"]);
    let (ok, v) = validate(&lab);
    assert!(!ok);
    let fib = details(&v, "fib");
    assert!(
        fib.iter()
            .any(|d| d.starts_with("172.29.52.150") && d.contains("missing [172.29.51.12]")),
        "{fib:#?}"
    );
    assert!(
        fib.iter()
            .any(|d| d.starts_with("172.29.52.151") && d.contains("unexpected [172.29.51.12]")),
        "{fib:#?}"
    );

    // Withdrawn everywhere: no route. A static route shadows the other one.
    lab.nodes[0].withdraw("172.29.52.150/32");
    wait_for(
        "172.29.52.150 to leave the FIB",
        Duration::from_secs(10),
        || lab.bgp_route("172.29.52.150").is_none().then_some(()),
    );
    run(&[
        "ip",
        "-n",
        &lab.gw,
        "route",
        "add",
        "172.29.52.151/32",
        "via",
        "172.29.51.12",
        "proto",
        "static",
        "metric",
        "5",
    ]);
    let (_, v) = validate(&lab);
    let fib = details(&v, "fib");
    assert!(
        fib.iter()
            .any(|d| d.starts_with("172.29.52.150") && d.contains("no route")),
        "{fib:#?}"
    );
    assert!(
        fib.iter().any(|d| d.starts_with("172.29.52.151")
            && d.contains("shadowed by a static route (metric 5)")),
        "{fib:#?}"
    );
    // The daemon sees it too (kernel events), in /v1/status.
    wait_for(
        "the daemon's checks to see the shadowing",
        Duration::from_secs(20),
        || {
            let s = bgplb_tests::client::request(
                &lab.nodes[0].ns,
                Some("companion-home"),
                "GET",
                "https://172.29.51.1:7443/v1/status",
                None,
            )
            .json();
            let fib = s["kernel_checks"]
                .as_array()?
                .iter()
                .find(|c| c["name"] == "fib")?
                .clone();
            fib["details"]
                .to_string()
                .contains("shadowed")
                .then_some(())
        },
    );
}

#[test]
fn only_kernel_events_that_matter_start_a_pass() {
    // Neighbour churn of the whole LAN must not re-run the kernel checks; a pool address does.
    let mut lab = bgplb_tests::Lab::start(bgplb_tests::LabSpec {
        nodes: 1,
        ipv6: false,
        ..bgplb_tests::LabSpec::default()
    });
    let site = lab.daemon_site();
    lab.write_site(&site);
    lab.start_daemon();
    lab.wait_established(&["172.29.51.11"]);
    // The passes of the start are let to end before the count.
    let passes = || lab.agent_metric("bgplb_kernel_passes_total");
    let before = bgplb_tests::cmd::wait_stable(
        "the kernel passes of the start to end",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(3),
        passes,
    );
    for i in 1..=30 {
        bgplb_tests::cmd::run(&[
            "ip",
            "-n",
            &lab.gw,
            "neigh",
            "add",
            &format!("192.0.2.{i}"),
            "lladdr",
            &format!("02:00:00:00:00:{i:02x}"),
            "dev",
            "br51",
            "nud",
            "permanent",
        ]);
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(passes(), before, "unrelated neighbours started a pass");
    bgplb_tests::cmd::run(&[
        "ip",
        "-n",
        &lab.gw,
        "neigh",
        "add",
        "172.29.52.150",
        "lladdr",
        "02:00:00:00:01:50",
        "dev",
        "br51",
        "nud",
        "permanent",
    ]);
    bgplb_tests::cmd::wait_for(
        "a pass for the pool address",
        std::time::Duration::from_secs(10),
        || (passes() > before).then_some(()),
    );
}
