//! Failure handling: FRR down, FRR dying half-way through an apply, FRR refusing a command, and
//! rollback to a chosen generation.

use bgplb_frr::{plan::plan, Owned};
use bgplb_tests::{Lab, LabSpec};

/// A line FRR refuses, slipped into apply scripts by a vtysh stand-in.
const REFUSED_LINE: &str = "router bgp 64512\n neighbor BGPLB-home-V4 frobnicate\nexit\n";

/// Whether FRR's running configuration matches `config` in everything bgplb owns.
fn runs(lab: &Lab, config: &str) -> Result<(), String> {
    let p = plan(
        &Owned::from_text(config),
        &Owned::from_text(&lab.running_config()),
    )
    .expect("plan");
    if p.is_empty() {
        Ok(())
    } else {
        Err(p.to_string())
    }
}

fn history(lab: &Lab) -> Vec<serde_json::Value> {
    serde_json::from_str(&lab.agent_ok(&["history", "--json"])).expect("history json")
}

fn generation_config(lab: &Lab, n: i64) -> String {
    lab.agent_ok(&["history", "--show", &n.to_string()])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A second site: one node fewer, one pool fewer, other timers.
fn changed(site: &bgplb_site::Site) -> bgplb_site::Site {
    let mut s = site.clone();
    s.clusters[0].nodes.pop();
    s.pools.retain(|p| p.name != "bgp-ingress");
    s.bgp.keepalive = 5;
    s.bgp.hold = 15;
    s
}

#[test]
fn frr_down_is_a_clear_error_and_changes_nothing() {
    let mut lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    let site = lab.site();
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    let gen1 = generation_config(&lab, 1);

    lab.stop_frr();
    lab.write_site(&changed(&site));
    let out = lab.agent(&["apply"]);
    assert_eq!(out.status.code(), Some(69), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("FRR is not answering"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        history(&lab).len(),
        1,
        "an apply that never reached FRR recorded a generation"
    );

    // FRR comes back with what was saved after generation 1; the retry applies the change.
    lab.start_frr();
    runs(&lab, &gen1).expect("FRR restarted with generation 1");
    lab.agent_ok(&["apply"]);
    runs(&lab, &generation_config(&lab, 2)).expect("generation 2 runs");
}

#[test]
fn frr_dying_mid_apply_leaves_nothing_half_applied() {
    let mut lab = Lab::start(LabSpec {
        nodes: 3,
        ..LabSpec::default()
    });
    let site = lab.site();
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    let gen1 = generation_config(&lab, 1);

    // A vtysh that applies the first half of a script, then kills bgpd (a crash mid-apply).
    let mut broken = changed(&site);
    broken.agent.frr.vtysh = lab.vtysh_wrapper(
        "vtysh-crash",
        &format!(
            r#"if [ -n "$script" ]; then
  half=$(( $(wc -l < "$script") / 2 ))
  head -n "$half" "$script" > "$script.half"
  $VTYSH -N {gw} -f "$script.half"
  kill -9 "$(cat {pid})"
  exit 0
fi
exec $VTYSH "$@""#,
            gw = lab.gw,
            pid = lab.bgpd_pid_file().display()
        ),
    );
    lab.write_site(&broken);
    let out = lab.agent(&["apply"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("generation 2 was not applied"), "{err}");
    assert!(
        err.contains("rolling back to generation 1 failed too"),
        "{err}"
    );
    let h = history(&lab);
    assert_eq!(h[0]["outcome"], "failed");
    let status: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["status", "--json"])).unwrap();
    assert_eq!(
        status["generation"]["number"], 1,
        "the failed attempt displaced generation 1"
    );
    assert_eq!(status["last_failure"]["number"], 2);

    // FRR restarts from what was saved after generation 1: nothing of the half-applied script.
    lab.stop_frr();
    lab.start_frr();
    runs(&lab, &gen1).expect("FRR came back with generation 1 exactly");

    // With a working vtysh the retry applies the change in full.
    lab.write_site(&changed(&site));
    lab.agent_ok(&["apply"]);
    let h = history(&lab);
    assert_eq!(
        (h[0]["number"].as_i64(), h[0]["outcome"].as_str()),
        (Some(3), Some("applied"))
    );
    runs(&lab, &generation_config(&lab, 3)).expect("generation 3 runs in full");
}

#[test]
fn a_refused_command_rolls_back_to_the_last_good_generation() {
    let lab = Lab::start(LabSpec {
        nodes: 2,
        ..LabSpec::default()
    });
    let site = lab.site();
    lab.apply_and_wait(&site);
    let gen1 = generation_config(&lab, 1);
    let before = lab.session_counters();

    // A vtysh that slips a line FRR refuses into every apply script (not into rollbacks).
    let mut broken = changed(&site);
    broken.clusters[0].nodes = site.clusters[0].nodes.clone();
    broken.agent.frr.vtysh = lab.vtysh_appending_to_applies("vtysh-refused", REFUSED_LINE, None);
    lab.write_site(&broken);
    let out = lab.agent(&["apply"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("FRR refused part of the configuration"),
        "{err}"
    );
    assert!(err.contains("Unknown command"), "{err}");
    assert!(err.contains("FRR was rolled back to generation 1"), "{err}");
    runs(&lab, &gen1).expect("FRR runs generation 1 again");
    let h = history(&lab);
    assert_eq!(h[0]["outcome"], "failed");
    assert_eq!(h[0]["rolled_back_to"], 1);
    assert_eq!(
        lab.session_counters(),
        before,
        "the failed apply and its rollback reset a session"
    );
}

#[test]
fn rollback_restores_a_generation_exactly() {
    let lab = Lab::start(LabSpec {
        nodes: 2,
        ..LabSpec::default()
    });
    let site = lab.site();
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    let second = changed(&site);
    lab.write_site(&second);
    lab.agent_ok(&["apply"]);
    let mut third = second.clone();
    third.bgp.require_community = false;
    lab.write_site(&third);
    lab.agent_ok(&["apply"]);
    let gen1 = generation_config(&lab, 1);
    runs(&lab, &generation_config(&lab, 3)).unwrap();

    let out = lab.agent_ok(&["rollback", "--to", "1"]);
    assert!(out.contains("restoring generation 1"), "{out}");
    assert!(out.contains("generation 4 applied"), "{out}");
    runs(&lab, &gen1).expect("generation 1 runs again");
    assert_eq!(
        generation_config(&lab, 4),
        gen1,
        "generation 4 is not generation 1's config"
    );
    let h = history(&lab);
    assert_eq!(
        (h[0]["source"].as_str(), h[0]["restores"].as_i64()),
        (Some("rollback"), Some(1))
    );

    // Without --to: back to the applied generation before the current one (3).
    lab.agent_ok(&["rollback"]);
    runs(&lab, &generation_config(&lab, 3)).expect("generation 3 runs again");

    let out = lab.agent(&["rollback", "--to", "42"]);
    assert!(
        stderr(&out).contains("there is no generation 42"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failed_save_is_shown_until_a_retry_works() {
    // `write memory` fails (a full /etc, a read-only file): FRR runs the generation but would
    // restart without it. Status, metrics and validate say so; the daemon retries on its drift
    // check and clears it once saving works.
    let mut lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    let flag = lab.dir.path().join("save-fails");
    std::fs::write(&flag, "").unwrap();
    let mut site = lab.daemon_site();
    site.agent.frr.vtysh = lab.vtysh_wrapper(
        "vtysh-nosave",
        &format!(
            r#"for a in "$@"; do
  if [ "$a" = "write memory" ] && [ -e {flag} ]; then
    echo "% Can't open configuration file /etc/frr/frr.conf.XXXXXX." >&2; exit 1
  fi
done
exec $VTYSH "$@""#,
            flag = flag.display()
        ),
    );
    lab.write_site(&site);
    let out = lab.agent_ok(&["apply"]);
    assert!(
        out.contains("warning: FRR's configuration file lacks generation 1"),
        "{out}"
    );
    let status = lab.agent_ok(&["status"]);
    assert!(
        status.contains("NOT SAVED: FRR's configuration file lacks generation 1"),
        "{status}"
    );
    let v = lab.agent(&["validate", "--json"]);
    assert_eq!(v.status.code(), Some(1), "validate fails while unsaved");
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    let saved = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "saved")
        .cloned()
        .unwrap();
    assert_eq!(saved["ok"], false, "{saved}");

    // The daemon shows it in /v1/status and metrics, and retries on its drift check.
    lab.start_daemon();
    assert_eq!(lab.agent_metric("bgplb_frr_config_saved"), 0.0);
    assert!(lab.agent_status(0)["unsaved"]
        .as_str()
        .unwrap()
        .contains("write memory failed"));
    std::fs::remove_file(&flag).unwrap();
    bgplb_tests::cmd::wait_for(
        "the daemon's retry to save",
        std::time::Duration::from_secs(30),
        || (lab.agent_metric("bgplb_frr_config_saved") == 1.0).then_some(()),
    );
    assert!(lab.agent_status(0)["unsaved"].is_null());
    assert!(!lab.agent_ok(&["status"]).contains("NOT SAVED"));
    let events = lab.agent_ok(&["history", "--events"]);
    assert!(events.contains("save-failed"), "{events}");
}

#[test]
fn the_bgp_password_stays_private() {
    use std::os::unix::fs::PermissionsExt;
    const SECRET: &str = "s3cr3t-pw";
    let lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        password: Some(SECRET.into()),
        ..LabSpec::default()
    });
    let mut site = lab.site();
    // A vtysh that makes FRR refuse a line carrying the password: the error FRR prints names it.
    let leak = lab.dir.path().join("leak");
    site.agent.frr.vtysh = lab.vtysh_appending_to_applies(
        "vtysh-leaky",
        &format!("router bgp 64512\n neighbor BGPLB-home-V4 password {SECRET} extra words\nexit\n"),
        Some(&leak),
    );
    lab.apply_and_wait(&site);
    let data = &site.agent.data_dir;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data), 0o700);
    assert_eq!(mode(&data.join("frr")), 0o700);
    for f in ["state.db", "frr/bgplb.conf", "frr/apply.vtysh"] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    assert!(
        std::fs::read_to_string(data.join("frr/bgplb.conf"))
            .unwrap()
            .contains(SECRET),
        "the rendered file keeps it (FRR needs it)"
    );

    // A failed apply whose error carries the password.
    std::fs::write(&leak, "").unwrap();
    let mut changed = site.clone();
    changed.bgp.keepalive = 2;
    changed.bgp.hold = 6;
    lab.write_site(&changed);
    let out = lab.agent(&["apply"]);
    assert_eq!(out.status.code(), Some(1));
    let shown = [
        stderr(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        lab.agent_ok(&["history", "--show", "1"]),
        lab.agent_ok(&["history", "--json"]),
        lab.agent_ok(&["history", "--events", "--json"]),
        lab.agent_ok(&["status", "--json"]),
    ];
    for text in &shown {
        assert!(!text.contains(SECRET), "the password leaked:\n{text}");
    }
    assert!(shown[0].contains("password <redacted>"), "{}", shown[0]);
    assert!(shown[2].contains("password <redacted>"), "{}", shown[2]);
}

#[test]
fn a_failing_apply_backs_off() {
    // FRR refuses every apply: the daemon retries after 10 s, then 20 s, ... instead of on every
    // drift check (5 s in the lab), each attempt being a generation row and an event.
    let mut lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    let mut site = lab.daemon_site();
    site.agent.frr.vtysh = lab.vtysh_appending_to_applies("vtysh-refusing", REFUSED_LINE, None);
    lab.write_site(&site);
    lab.start_daemon();
    std::thread::sleep(std::time::Duration::from_secs(25));
    let failed = history(&lab)
        .iter()
        .filter(|g| g["outcome"] == "failed")
        .count();
    // Attempts at 0 s, 10 s and 30 s at most; every drift check would have made five.
    assert!(
        (1..=3).contains(&failed),
        "{failed} failed attempts in 25 s"
    );
}
