//! FRR changed under the agent: bgpd restarted from a file without bgplb's part (what a
//! controller provisioning its own frr.conf does), an edit by hand through vtysh, and something
//! that keeps undoing bgplb's configuration. The drift check is an hour here, so only the FRR
//! watch (bgpd's vty socket, every second) can notice in time.

use std::time::{Duration, Instant};

use bgplb_tests::cmd::wait_for;
use bgplb_tests::{Lab, LabSpec};

const NODES: [&str; 2] = ["172.29.51.11", "172.29.51.12"];

fn events(lab: &Lab) -> String {
    lab.agent_ok(&["history", "--events"])
}

#[test]
fn frr_restarted_reloaded_or_edited_gets_bgplbs_configuration_back_until_it_is_a_fight() {
    let (mut lab, _site) = Lab::start_with_daemon(
        LabSpec {
            nodes: 2,
            ipv6: false,
            ..LabSpec::default()
        },
        |site| {
            site.agent.drift_check_interval = 3600;
            site.agent.frr.watch_interval_ms = 500;
            site.agent.frr.fight_limit = 2;
            site.agent.frr.fight_window = 600;
        },
    );
    lab.frr_changes_expected = true;
    lab.wait_established(&NODES);
    wait_for("the daemon's first apply", Duration::from_secs(30), || {
        lab.agent_readyz().then_some(())
    });
    assert_eq!(lab.agent_metric("bgplb_frr_fight"), 0.0);

    // 1. bgpd and zebra restarted from a file that lacks bgplb's part, as a controller writes it.
    lab.stop_frr();
    let conf = std::path::Path::new("/etc/frr")
        .join(&lab.gw)
        .join("frr.conf");
    std::fs::write(
        &conf,
        format!(
            "frr defaults traditional\nhostname {}\nno zebra nexthop kernel enable\n!\n",
            lab.gw
        ),
    )
    .unwrap();
    lab.start_frr();
    let back = Instant::now();
    wait_for(
        "bgplb's configuration back after the restart",
        Duration::from_secs(60),
        || NODES.iter().all(|n| lab.has_neighbor(n)).then_some(()),
    );
    let config_back = back.elapsed();
    lab.wait_established(&NODES);
    println!(
        "measured: FRR restarted without bgplb's part: configuration back {:.2} s, sessions Established {:.2} s after FRR answered",
        config_back.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    let e = events(&lab);
    assert!(
        e.contains("frr-changed") && e.contains("bgpd restarted"),
        "{e}"
    );

    // 2. An edit by hand through vtysh removes a node.
    lab.vtysh_config(&["router bgp 64512", &format!("no neighbor {}", NODES[1])]);
    let edited = Instant::now();
    wait_for(
        "the removed neighbour back after the edit",
        Duration::from_secs(60),
        || lab.has_neighbor(NODES[1]).then_some(()),
    );
    println!(
        "measured: neighbour removed through vtysh: back {:.2} s later",
        edited.elapsed().as_secs_f64()
    );
    let e = events(&lab);
    assert!(e.contains("was changed"), "{e}");
    assert!(
        lab.agent_metric("bgplb_frr_changed_total{cause=\"edited\"}") >= 1.0,
        "{}",
        lab.agent_metric_text()
    );

    // 3. Once more within the window: over the limit (2), the agent stops fighting.
    lab.vtysh_config(&["router bgp 64512", &format!("no neighbor {}", NODES[1])]);
    wait_for(
        "the agent to stop fighting",
        Duration::from_secs(60),
        || (lab.agent_metric("bgplb_frr_fight") == 1.0).then_some(()),
    );
    // The metric is set just before the event is written.
    wait_for("the frr-fight event", Duration::from_secs(10), || {
        let e = events(&lab);
        (e.contains("frr-fight") && e.contains("stopped re-applying")).then_some(())
    });
    // It leaves FRR alone (several watch rounds and reconciles), and says so in its checks.
    std::thread::sleep(Duration::from_secs(4));
    assert!(!lab.has_neighbor(NODES[1]), "the agent kept fighting");
    wait_for(
        "the failing frr-ownership check",
        Duration::from_secs(30),
        || (lab.agent_metric("bgplb_check_ok{check=\"frr-ownership\"}") == 0.0).then_some(()),
    );
    let status = lab.agent_status(0).to_string();
    assert!(status.contains("stopped re-applying"), "{status}");

    // The operator dealt with the cause and applies: the agent resumes.
    lab.agent_ok(&["apply"]);
    assert!(lab.has_neighbor(NODES[1]));
    wait_for("the fight to end", Duration::from_secs(30), || {
        (lab.agent_metric("bgplb_frr_fight") == 0.0).then_some(())
    });
    wait_for("the frr-fight-over event", Duration::from_secs(10), || {
        events(&lab).contains("frr-fight-over").then_some(())
    });
    lab.wait_established(&NODES);
    lab.stop_daemon();
}
