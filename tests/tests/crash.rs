//! Killed anywhere: the agent aborted (SIGABRT, as a power cut or an OOM kill leaves it) at each
//! step of an apply, through the test-only `BGPLB_FAULT` point. After the restart FRR and the
//! store agree, no generation is duplicated or lost, the next apply is minimal, and FRR's saved
//! file catches up. Against the lab's real FRR and a real SQLite file.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use bgplb_tests::{Lab, LabSpec};

const POINTS: [&str; 6] = [
    "after-plan",
    "after-vtysh",
    "after-verify",
    "during-record",
    "before-save",
    "during-save",
];

fn history(lab: &Lab) -> Vec<serde_json::Value> {
    serde_json::from_str(&lab.agent_ok(&["history", "--json", "--limit", "1000"])).unwrap()
}

fn numbers(lab: &Lab) -> Vec<i64> {
    history(lab)
        .iter()
        .map(|g| g["number"].as_i64().unwrap())
        .collect()
}

#[test]
fn an_agent_killed_at_any_step_of_an_apply_leaves_frr_and_the_store_agreeing() {
    let lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    let full = lab.site();
    lab.write_site(&full);
    lab.agent_ok(&["apply"]);
    let mut smaller = full.clone();
    smaller.clusters[0].nodes.pop();
    let saved_file = std::path::Path::new("/etc/frr")
        .join(&lab.gw)
        .join("frr.conf");

    for (round, point) in POINTS.into_iter().enumerate() {
        // Every round changes the node set: k8s-2 goes, then comes back.
        let (site, k8s_2) = if round % 2 == 0 {
            (&smaller, false)
        } else {
            (&full, true)
        };
        lab.write_site(site);
        let before = numbers(&lab);
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.gw])
            .arg(bgplb_tests::bins::path("bgplb-agent"))
            .arg("--config")
            .arg(lab.dir.path().join("site.toml"))
            .arg("apply")
            .env("BGPLB_FAULT", point)
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(6),
            "{point}: the agent was to abort: {out:?}"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("BGPLB_FAULT={point}")));
        let after_crash = numbers(&lab);
        let recorded = usize::from(point == "before-save" || point == "during-save");
        assert_eq!(
            after_crash.len(),
            before.len() + recorded,
            "{point}: generations after the crash {after_crash:?}, before {before:?}"
        );

        // The restart: the next apply.
        let out = lab.agent_ok(&["apply"]);
        let now = numbers(&lab);
        assert_eq!(
            now.len(),
            before.len() + 1,
            "{point}: one generation for one change: {now:?}"
        );
        let mut unique = now.clone();
        unique.dedup();
        assert_eq!(unique, now, "{point}: no generation twice");
        assert!(now.windows(2).all(|w| w[0] > w[1]), "{point}: {now:?}");
        let newest = &history(&lab)[0];
        let changes = newest["changes"].as_i64().unwrap();
        match point {
            // Nothing reached FRR: the change is applied now.
            "after-plan" => assert!(changes > 0, "{point}: {newest}"),
            // FRR had it already: recorded without touching FRR again.
            "after-vtysh" | "after-verify" | "during-record" => {
                assert_eq!(changes, 0, "{point}: {newest}")
            }
            // Recorded before the crash: nothing more to do.
            _ => assert!(out.contains("nothing changed"), "{point}: {out}"),
        }
        // FRR and the store agree, and FRR's file has what it runs.
        let plan = lab.agent_ok(&["plan"]);
        assert!(plan.contains("nothing to change"), "{point}: {plan}");
        assert_eq!(
            lab.running_config()
                .contains("neighbor 172.29.51.12 peer-group"),
            k8s_2,
            "{point}"
        );
        let file = std::fs::read_to_string(&saved_file).unwrap();
        assert_eq!(
            file.contains("neighbor 172.29.51.12 peer-group"),
            k8s_2,
            "{point}: FRR's saved file is behind what it runs:\n{file}"
        );
    }
}
