//! Clock trouble: a companion whose clock is an hour behind the generation the agent holds (it
//! was restarted after an NTP correction, or a report came from a companion whose clock ran
//! ahead) still gets its reports accepted: the refusal names the accepted generation and the
//! companion goes above it. (The gateway's own clock stepping is in gateway_qemu.rs: the VM has a
//! clock of its own to move.)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgplb_tests::client::request;
use bgplb_tests::cmd::wait_for;
use bgplb_tests::kubesim::{objects, KubeSim};
use bgplb_tests::{Lab, LabSpec};

const URL: &str = "https://172.29.51.1:7443/v1/clusters/home/report";

#[test]
fn a_companion_an_hour_behind_the_accepted_generation_is_accepted_after_one_refusal() {
    let mut lab = Lab::start(LabSpec {
        nodes: 3,
        ipv6: false,
        ..LabSpec::default()
    });
    let site = lab.daemon_site();
    lab.write_site(&site);
    lab.start_daemon();

    // A report stamped an hour ahead of this machine's clock: all three nodes.
    let hour_ahead = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    let mut report: serde_json::Value =
        serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
    report["generation"] = hour_ahead.into();
    for node in report["nodes"].as_array_mut().unwrap() {
        node["ipv6"] = serde_json::Value::Null;
    }
    let answer = request(
        &lab.nodes[0].ns,
        Some("companion-home"),
        "PUT",
        URL,
        Some(serde_json::to_vec(&report).unwrap()),
    );
    assert_eq!(answer.status(), Some(202), "{answer:?}");
    wait_for("k8s-3 in FRR", Duration::from_secs(30), || {
        lab.peer_states().contains_key("172.29.51.13").then_some(())
    });

    // The companion, on this machine's clock, sees a cluster of two nodes.
    let sim = KubeSim::with_cilium("1.18.2");
    sim.apply(objects::bgp_cluster_config("bgplb-home"));
    for n in &lab.nodes[..2] {
        sim.apply(objects::node(&n.name, &n.ipv4, None, true));
    }
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());
    lab.start_companion(0, 3);
    wait_for(
        "the companion's report above the accepted generation",
        Duration::from_secs(60),
        || (!lab.peer_states().contains_key("172.29.51.13")).then_some(()),
    );
    let log = lab.companion_log();
    assert!(
        log.contains("the agent holds a newer generation"),
        "the first report was refused as older: {log}"
    );
    let status = lab.agent_status(0);
    let generation = status["clusters"][0]["report_generation"].as_u64().unwrap();
    assert!(generation > hour_ahead, "{generation} <= {hour_ahead}");
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
}
