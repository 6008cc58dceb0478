//! The daemon and the operator's CLI agree: an edited site file is followed (and a broken one
//! refused) by the running daemon, and a rollback is kept until it is unpinned.

use std::time::Duration;

use bgplb_tests::cmd::wait_for;
use bgplb_tests::{Lab, LabSpec};

fn history(lab: &Lab) -> Vec<serde_json::Value> {
    serde_json::from_str(&lab.agent_ok(&["history", "--json"])).unwrap()
}

fn daemon_lab() -> (Lab, bgplb_site::Site) {
    let (lab, site) = Lab::start_with_daemon(
        LabSpec {
            nodes: 1,
            ipv6: false,
            ..LabSpec::default()
        },
        |_| {},
    );
    settle(lab, site)
}

/// A lab whose agent (daemon and CLI) runs vtysh through a wrapper that, while the file
/// `slow` exists, returns from an apply script only 4 s after FRR ran it: FRR runs the new
/// generation, the agent has not yet read it back and recorded it.
fn slow_apply_lab() -> (Lab, bgplb_site::Site, std::path::PathBuf) {
    let mut lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    let slow = lab.dir.path().join("slow");
    let mut site = lab.daemon_site();
    // No drift check during the CLI's apply: one would hold the daemon's FRR writer while it
    // waits for the CLI's lock, and keep the watch from looking.
    site.agent.drift_check_interval = 3600;
    site.agent.frr.vtysh = lab.vtysh_wrapper(
        "vtysh-slow-apply",
        &format!(
            r#"$VTYSH "$@"; rc=$?
case "$script" in
  */apply.vtysh) [ -e {} ] && sleep 4 ;;
esac
exit $rc"#,
            slow.display()
        ),
    );
    lab.write_site(&site);
    lab.start_daemon();
    let (lab, site) = settle(lab, site);
    (lab, site, slow)
}

fn settle(lab: Lab, site: bgplb_site::Site) -> (Lab, bgplb_site::Site) {
    lab.wait_established(&["172.29.51.11"]);
    // The session comes up before the daemon has read FRR back and recorded its generation.
    wait_for(
        "the daemon's first generation",
        Duration::from_secs(30),
        || (lab.agent_readyz() && !history(&lab).is_empty()).then_some(()),
    );
    (lab, site)
}

/// Writes `site` with keepalive 2 and hold 6 as the site file; returns once the daemon applied it
/// by itself.
fn faster_timers_applied_by_the_daemon(lab: &Lab, site: &bgplb_site::Site) {
    let mut edited = site.clone();
    edited.bgp.keepalive = 2;
    edited.bgp.hold = 6;
    lab.write_site(&edited);
    wait_for(
        "the daemon to apply the edit",
        Duration::from_secs(20),
        || lab.running_config().contains("timers 2 6").then_some(()),
    );
}

#[test]
fn the_daemon_follows_the_site_file_and_refuses_a_broken_one() {
    let (lab, site) = daemon_lab();
    // The operator edits the site file and applies it with the CLI.
    let mut edited = site.clone();
    edited.pools.retain(|p| p.name != "bgp-ingress");
    lab.write_site(&edited);
    lab.agent_ok(&["apply"]);
    let applied = history(&lab)[0]["number"].as_i64().unwrap();
    // Several drift checks later (5 s in the lab) the daemon has not re-applied the old site.
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(history(&lab)[0]["number"].as_i64().unwrap(), applied);
    assert!(
        !lab.running_config().contains("172.29.52.200"),
        "bgp-ingress is gone"
    );

    // Edited again without the CLI: the daemon applies it by itself.
    faster_timers_applied_by_the_daemon(&lab, &edited);
    assert!(lab.daemon_log().contains("site file reloaded"));

    // A broken edit changes nothing and says why.
    let path = lab.dir.path().join("site.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("hold = 6", "hold = 2")).unwrap();
    wait_for(
        "the refusal of the broken site file",
        Duration::from_secs(20),
        || {
            lab.daemon_log()
                .contains("the changed site file is not valid")
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(6));
    assert!(lab.running_config().contains("timers 2 6"));
    assert!(
        lab.daemon_log().contains("bgp.hold"),
        "{}",
        lab.daemon_log()
    );
    // Fixed again: the refusal is an event, and the daemon carries on.
    std::fs::write(&path, text).unwrap();
    let events = lab.agent_ok(&["history", "--events"]);
    assert!(events.contains("site-invalid"), "{events}");
}

#[test]
fn a_rollback_is_kept_until_unpinned() {
    let (lab, site) = daemon_lab();
    let first = history(&lab)[0]["number"].as_i64().unwrap();
    faster_timers_applied_by_the_daemon(&lab, &site);

    // Roll back while the daemon runs: the daemon keeps the rolled-back generation.
    let out = lab.agent_ok(&["rollback", "--to", &first.to_string()]);
    assert!(
        out.contains(&format!("pinned to generation {first}")),
        "{out}"
    );
    std::thread::sleep(Duration::from_secs(12));
    assert!(
        lab.running_config().contains("timers 3 9"),
        "the rollback held"
    );
    let status = lab.agent_status(0);
    assert!(status["pinned"]
        .as_str()
        .unwrap()
        .contains(&format!("generation {first}")));
    let validate = lab.agent_ok(&["validate"]);
    assert!(validate.contains("pin "), "{validate}");

    // Unpinned: the daemon follows the site file again.
    lab.agent_ok(&["unpin"]);
    wait_for(
        "the daemon to follow the site again",
        Duration::from_secs(20),
        || lab.running_config().contains("timers 2 6").then_some(()),
    );
    assert!(lab.agent_status(0)["pinned"].is_null());
}

#[test]
fn the_frr_watch_waits_while_the_cli_applies() {
    // The CLI changes FRR, reads it back, then records the generation. The daemon's FRR watch
    // (every second) looking in between must not take the CLI's change for someone else's edit
    // and fight it.
    let (lab, site, slow) = slow_apply_lab();
    let first = history(&lab)[0]["number"].as_i64().unwrap();
    faster_timers_applied_by_the_daemon(&lab, &site);
    wait_for(
        "the edit's generation to be recorded",
        Duration::from_secs(20),
        || (history(&lab)[0]["number"].as_i64() != Some(first)).then_some(()),
    );
    // A reconcile queued behind the CLI's lock would keep the watch from looking: let the ones
    // that follow the edit pass. Then FRR runs the rolled-back generation 4 s before the CLI
    // records it.
    std::thread::sleep(Duration::from_secs(3));
    std::fs::write(&slow, "").unwrap();
    let out = lab.agent_ok(&["rollback", "--to", &first.to_string()]);
    std::fs::remove_file(&slow).unwrap();
    assert!(
        out.contains(&format!("pinned to generation {first}")),
        "{out}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let log = lab.daemon_log();
    assert!(
        !log.contains("FRR changed by someone else"),
        "the FRR watch took the CLI's rollback for an edit:\n{log}"
    );
    assert!(lab.running_config().contains("timers 3 9"));
}
