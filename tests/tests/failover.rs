//! Fast failover against real FRR, GoBGP and the agent daemon: a node that dies silently stops
//! getting traffic once the gateway's probes miss it (not after hold time plus graceful
//! restart), a speaker that restarts on a live node keeps its routes, a cordoned node leaves the
//! ECMP set before it goes, a flapping node is damped and random probe loss takes nothing down.
//!
//! The assertions are about behaviour (who shut the session and why, which next hops the kernel
//! has, which requests failed relative to a state change), never about wall-clock limits:
//! `bgplb-failover` (a bench binary) measures the loss windows.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bgplb_tests::cmd::wait_for;
use bgplb_tests::kubesim::{objects, KubeSim};
use bgplb_tests::traffic::Traffic;
use bgplb_tests::{Lab, LabSpec};

const VIP: &str = "172.29.52.100";
const PORT: u16 = 8080;
const COMMUNITY: &[&str] = &["64512:100"];
const ALL: [&str; 3] = ["172.29.51.11", "172.29.51.12", "172.29.51.13"];

/// Three nodes announcing one VIP with graceful restart and the N-bit, as Cilium does; the
/// agent daemon with the reference site (liveness on, defaults).
fn lab() -> Lab {
    let (lab, _) = Lab::start_with_daemon(
        LabSpec {
            nodes: 3,
            ipv6: false,
            client: true,
            ..LabSpec::default()
        },
        |_| {},
    );
    lab.wait_established(&ALL);
    for i in 0..3 {
        lab.serve_vip(i, VIP, PORT);
        lab.nodes[i].announce(&format!("{VIP}/32"), COMMUNITY);
    }
    lab.wait_route(VIP, &ALL);
    wait_all_answered(&lab);
    lab
}

fn vip() -> SocketAddr {
    format!("{VIP}:{PORT}").parse().unwrap()
}

fn traffic(lab: &Lab) -> Traffic {
    Traffic::start(
        &lab.client_ns(),
        vip(),
        Duration::from_millis(50),
        Duration::from_secs(1),
    )
}

/// The daemon's view of one node (from `/v1/status`).
fn node(lab: &Lab, from: usize, name: &str) -> serde_json::Value {
    let status = lab.agent_status(from);
    status["nodes"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["node"] == name).cloned())
        .unwrap_or_else(|| panic!("no liveness for {name} in {status}"))
}

fn wait_all_answered(lab: &Lab) {
    wait_for(
        "every node to answer a probe",
        Duration::from_secs(20),
        || {
            let status = lab.agent_status(1);
            let nodes = status["nodes"].as_array()?.clone();
            (nodes.len() == 3 && nodes.iter().all(|n| n["answered"] == true)).then_some(())
        },
    );
}

fn wait_state(lab: &Lab, from: usize, name: &str, state: &str) -> serde_json::Value {
    wait_for(
        &format!("{name} to be {state}"),
        Duration::from_secs(60),
        || {
            let n = node(lab, from, name);
            (n["state"] == state).then_some(n)
        },
    )
}

#[test]
fn a_silent_node_death_is_shut_by_the_probes_and_traffic_moves() {
    let mut lab = lab();
    let generations = lab.agent_ok(&["history", "--json"]);
    let traffic = traffic(&lab);
    std::thread::sleep(Duration::from_secs(1));
    let cut = Instant::now();
    lab.cut_link(0);

    // The probes take it down: the agent shuts the sessions, FRR flushes the routes (the
    // graceful-restart helper would otherwise keep them for 120 s).
    let down = wait_state(&lab, 1, "k8s-1", "down");
    assert!(
        down["reason"]
            .as_str()
            .unwrap()
            .contains("no answer to 16 probes"),
        "{down}"
    );
    lab.wait_route(VIP, &["172.29.51.12", "172.29.51.13"]);
    let states = lab.peer_states();
    assert_ne!(states["172.29.51.11"], "Established");
    assert!(
        lab.running_config()
            .contains("neighbor 172.29.51.11 shutdown"),
        "the session is shut by the agent, not lost to the hold timer"
    );
    let shut = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let outcome = traffic.stop();
    assert!(
        outcome.after(shut).failed().is_empty(),
        "every request after the route moved succeeds: {:?}",
        outcome.after(shut).failed()
    );
    assert!(outcome
        .samples
        .iter()
        .any(|s| s.at > cut && s.result.is_ok()));

    // A restarted agent keeps the dead node down: its first reconcile applies the stored
    // overlay, it never un-shuts the neighbour.
    lab.stop_daemon();
    lab.start_daemon();
    wait_for(
        "the restarted daemon to be ready",
        Duration::from_secs(30),
        || lab.agent_readyz().then_some(()),
    );
    assert!(lab
        .running_config()
        .contains("neighbor 172.29.51.11 shutdown"));
    assert_eq!(node(&lab, 1, "k8s-1")["state"], "down");

    // Back: after the hold-down the sessions return and the VIP is spread over three again.
    lab.restore_link(0);
    let up = wait_state(&lab, 1, "k8s-1", "up");
    assert!(up["transitions"].as_u64().unwrap() >= 2, "{up}");
    lab.wait_established(&ALL);
    lab.wait_route(VIP, &ALL);
    assert!(!lab
        .running_config()
        .contains("neighbor 172.29.51.11 shutdown"));

    // Liveness is not configuration: no generation per transition; history shows events.
    assert_eq!(lab.agent_ok(&["history", "--json"]), generations);
    let events = lab.agent_ok(&["history", "--events"]);
    assert!(events.contains("node-down"), "{events}");
    assert!(events.contains("node-up"), "{events}");
}

#[test]
fn a_restarting_speaker_on_a_live_node_keeps_its_routes() {
    let mut lab = lab();
    let traffic = traffic(&lab);
    std::thread::sleep(Duration::from_secs(1));
    lab.restart_bgp(0);
    lab.nodes[0].announce(&format!("{VIP}/32"), COMMUNITY);
    lab.wait_established(&ALL);
    lab.wait_route(VIP, &ALL);
    std::thread::sleep(Duration::from_secs(1));
    let outcome = traffic.stop();
    assert!(
        outcome.failed().is_empty(),
        "graceful restart keeps the node's routes while its speaker restarts: {:?}",
        outcome.failed()
    );
    assert!(
        outcome.answered_by().contains_key("k8s-1"),
        "{:?}",
        outcome.answered_by()
    );
    let n = node(&lab, 1, "k8s-1");
    assert_eq!(
        (n["state"].as_str(), n["transitions"].as_u64()),
        (Some("up"), Some(0))
    );
}

#[test]
fn random_probe_loss_takes_no_node_down() {
    let lab = lab();
    lab.drop_probes(0, 30);
    // CI size: 20 s of 30% loss (400 probes); `bgplb-failover --loss-minutes` runs longer.
    std::thread::sleep(Duration::from_secs(20));
    let n = node(&lab, 1, "k8s-1");
    assert_eq!(
        (n["state"].as_str(), n["transitions"].as_u64()),
        (Some("up"), Some(0)),
        "{n}"
    );
    assert!(n["answered"] == true);
    assert!(!lab.running_config().contains("shutdown"));
}

#[test]
fn a_flapping_node_is_damped_and_the_vip_stays_reachable() {
    let lab = lab();
    // The link flaps every second (CI size: 20 s).
    let flaps = 20;
    lab.cut_link(0);
    wait_state(&lab, 1, "k8s-1", "down");
    lab.wait_route(VIP, &["172.29.51.12", "172.29.51.13"]);
    let traffic = traffic(&lab);
    for _ in 0..flaps {
        lab.restore_link(0);
        std::thread::sleep(Duration::from_millis(500));
        lab.cut_link(0);
        std::thread::sleep(Duration::from_millis(500));
    }
    let outcome = traffic.stop();
    assert!(
        outcome.failed().is_empty(),
        "once down, a flapping node gets no traffic: {:?}",
        outcome.failed()
    );
    let n = node(&lab, 1, "k8s-1");
    // One down and nothing else: it never answered for the whole hold-down.
    assert_eq!(n["transitions"].as_u64(), Some(1), "{n}");
    assert_eq!(
        lab.agent_metric("bgplb_liveness_fast_path_total{result=\"ok\"}"),
        1.0
    );
}

#[test]
fn a_cordoned_node_is_drained_before_it_goes() {
    let mut lab = lab();
    // The simulated cluster reports the three nodes and the service.
    let sim = KubeSim::with_cilium("1.18.2");
    let nodes: Vec<(String, String)> = lab
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.ipv4.clone()))
        .collect();
    let node_object = |i: usize, cordoned: bool| {
        let (name, ipv4) = &nodes[i];
        let mut o = objects::node(name, ipv4, None, true);
        o["spec"]["unschedulable"] = serde_json::json!(cordoned);
        o
    };
    for i in 0..3 {
        sim.apply(node_object(i, false));
    }
    sim.apply(objects::service("web", "nginx", &[VIP], PORT));
    sim.spawn_in_namespace(&lab.nodes[1].ns, "127.0.0.1:6443".parse().unwrap());
    lab.start_companion(1, 3);
    wait_for("the companion's report", Duration::from_secs(30), || {
        let status = lab.agent_status(1);
        status["clusters"][0]["report_generation"].as_u64()
    });
    let counters = lab.session_counters();

    // kubectl drain / a Talos upgrade starts by cordoning: the node leaves the ECMP set
    // without a session reset.
    sim.apply(node_object(0, true));
    let drained = wait_state(&lab, 1, "k8s-1", "drained");
    assert_eq!(drained["reason"], "cordoned (spec.unschedulable)");
    lab.wait_route(VIP, &["172.29.51.12", "172.29.51.13"]);
    assert_eq!(
        lab.session_counters()["172.29.51.11"],
        counters["172.29.51.11"]
    );
    assert!(
        counters["172.29.51.11"].0 > 0,
        "counters read: {counters:?}"
    );

    // Then the node reboots: no new connection fails.
    let traffic = traffic(&lab);
    std::thread::sleep(Duration::from_secs(1));
    lab.cut_link(0);
    wait_state(&lab, 1, "k8s-1", "down");
    std::thread::sleep(Duration::from_secs(1));
    let outcome = traffic.stop();
    assert!(outcome.failed().is_empty(), "{:?}", outcome.failed());
    assert!(!outcome.answered_by().contains_key("k8s-1"));

    // Back and schedulable: drained while it settles (Ready did not change here, so up at once
    // once the probes' hold-down passed).
    lab.restore_link(0);
    sim.apply(node_object(0, false));
    wait_state(&lab, 1, "k8s-1", "up");
    lab.wait_established(&ALL);
    lab.wait_route(VIP, &ALL);
}
