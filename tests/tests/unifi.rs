//! The controller's copy (`[agent.unifi]`) against a stand-in of the UniFi Network application's
//! BGP upload (tests/src/unifi.rs): the agent uploads the whole document when the rendered
//! configuration changes, coalesces changes to at most one upload per `min_interval`, uploads
//! nothing while nothing changes, and a re-provision from the controller's copy then leaves FRR
//! running exactly bgplb's configuration with nothing to re-apply. A wrong API key is said in
//! status, metrics and the `unifi-copy` check, and the copy catches up once the key is right.

use std::time::Duration;

use bgplb_tests::cmd::wait_for;
use bgplb_tests::unifi::ControllerSim;
use bgplb_tests::{Lab, LabSpec};

const KEY: &str = "bgplb-test-api-key";
const MIN_INTERVAL: u64 = 3;

/// What the agent rendered last (the current generation's configuration).
fn rendered(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dir.path().join("data/frr/bgplb.conf")).expect("bgplb.conf")
}

fn check(lab: &Lab, name: &str) -> serde_json::Value {
    lab.agent_status(0)["kernel_checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name).cloned())
        .unwrap_or(serde_json::Value::Null)
}

fn wait_in_sync(lab: &Lab, sim: &ControllerSim, what: &str) {
    wait_for(what, Duration::from_secs(60), || {
        let last = sim.uploads().last().map(|u| u.frr_bgpd_config.clone());
        (last.as_deref() == Some(rendered(lab).as_str())
            && lab.agent_metric("bgplb_unifi_in_sync") == 1.0)
            .then_some(())
    });
}

#[test]
fn the_controllers_copy_follows_the_rendered_configuration_and_survives_a_reprovision() {
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    // The re-provision restarts FRR on purpose.
    lab.frr_changes_expected = true;
    let sim = ControllerSim::new(lab.dir.path(), KEY);
    sim.spawn_in_namespace(&lab.gw, "127.0.0.1:8443".parse().unwrap());
    let key_file = lab.dir.path().join("unifi-api-key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let mut site = lab.daemon_site();
    site.agent.unifi = Some(bgplb_site::UnifiSettings {
        controller: "https://127.0.0.1:8443".into(),
        api_key_file: key_file.clone(),
        ca: Some(sim.cert_file.clone()),
        min_interval: MIN_INTERVAL,
        ..bgplb_site::UnifiSettings::default()
    });
    lab.write_site(&site);
    lab.start_daemon();
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
    wait_in_sync(&lab, &sim, "the first generation uploaded");
    let first = sim.uploads();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].uploaded_file_name, "bgplb-frr.conf");
    assert!(sim.refused().is_empty(), "{:?}", sim.refused());
    wait_for(
        "the unifi-copy check to pass",
        Duration::from_secs(30),
        || (check(&lab, "unifi-copy")["ok"] == true).then_some(()),
    );

    // Three changes in a row: coalesced, at most one upload per interval, the last one wins.
    for nodes in [1, 2, 1] {
        let mut s = site.clone();
        s.clusters[0].nodes.truncate(nodes);
        lab.write_site(&s);
        std::thread::sleep(Duration::from_millis(700));
    }
    site.clusters[0].nodes.truncate(1);
    wait_for(
        "the node's removal applied",
        Duration::from_secs(30),
        || (!lab.has_neighbor("172.29.51.12")).then_some(()),
    );
    wait_in_sync(&lab, &sim, "the last change uploaded");
    let uploads = sim.uploads();
    for pair in uploads.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(MIN_INTERVAL * 1000 - 500),
            "two uploads {gap:?} apart (min_interval {MIN_INTERVAL} s)"
        );
    }
    let generations: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["history", "--json"])).unwrap();
    assert!(
        uploads.len() <= generations.as_array().unwrap().len(),
        "more uploads ({}) than generations",
        uploads.len()
    );
    // Nothing changes: nothing is uploaded.
    let count = uploads.len();
    std::thread::sleep(Duration::from_secs(MIN_INTERVAL + 3));
    assert_eq!(sim.uploads().len(), count, "uploads without a change");

    // The controller provisions the gateway from its copy: FRR restarts with it, and runs
    // exactly bgplb's configuration with nothing to re-apply.
    let generations_before = lab.agent_ok(&["history", "--json"]);
    let applied_before = lab.agent_metric("bgplb_applies_total{result=\"applied\"}");
    sim.reprovision(&mut lab);
    lab.wait_established(&["172.29.51.11"]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        lab.agent_ok(&["plan"]).contains("nothing to change"),
        "FRR restarted from the controller's copy lacks bgplb's configuration"
    );
    assert_eq!(lab.agent_ok(&["history", "--json"]), generations_before);
    assert_eq!(
        lab.agent_metric("bgplb_applies_total{result=\"applied\"}"),
        applied_before,
        "the agent had to re-apply after the re-provision"
    );

    // A wrong API key: the upload fails, and status, metrics and the check say so.
    std::fs::write(&key_file, "wrong-key\n").unwrap();
    site.clusters[0].nodes = lab.site().clusters[0].nodes.clone();
    lab.write_site(&site);
    wait_for(
        "the failed upload in the unifi-copy check",
        Duration::from_secs(60),
        || {
            let c = check(&lab, "unifi-copy");
            (c["ok"] == false && c["details"].to_string().contains("401")).then_some(())
        },
    );
    assert_eq!(lab.agent_metric("bgplb_unifi_in_sync"), 0.0);
    assert!(lab.agent_metric("bgplb_unifi_uploads_total{result=\"failed\"}") >= 1.0);
    assert!(sim.refused().iter().any(|(code, _)| *code == 401));
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    wait_in_sync(&lab, &sim, "the copy caught up once the key is right");
    wait_for(
        "the unifi-copy check to pass again",
        Duration::from_secs(30),
        || (check(&lab, "unifi-copy")["ok"] == true).then_some(()),
    );
    lab.stop_daemon();
}
