//! A damaged state database (a power cut mid-write, a bad flash block): the agent refuses to run
//! on it with one sentence naming the fix, `store check` says what is wrong, and `store reset`
//! starts a new history from FRR's running configuration without changing FRR. Against the
//! lab's real FRR and a real SQLite file.

use std::process::{Command, Output};

use bgplb_tests::{Lab, LabSpec};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn history(lab: &Lab) -> Vec<serde_json::Value> {
    serde_json::from_str(&lab.agent_ok(&["history", "--json"])).expect("history json")
}

/// Damages the database file in place.
type Damage = fn(&std::path::Path);

/// `bgplb-agent run`, bounded: it must refuse at once, not serve.
fn run_daemon(lab: &Lab) -> Output {
    Command::new("timeout")
        .args(["30", "ip", "netns", "exec", &lab.gw])
        .arg(bgplb_tests::bins::path("bgplb-agent"))
        .arg("--config")
        .arg(lab.dir.path().join("site.toml"))
        .arg("run")
        .output()
        .expect("run bgplb-agent run")
}

#[test]
fn a_damaged_state_database_is_refused_and_reset_from_frrs_running_configuration() {
    let lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    let site = lab.site();
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);
    let data = site.agent.data_dir;
    let db = data.join("state.db");
    // A sound file is not reset without --force, and stays as it is.
    let check = lab.agent_ok(&["store", "check"]);
    assert!(check.contains(": ok (1 generation(s)"), "{check}");
    let refused = lab.agent(&["store", "reset"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("is not damaged") && stderr(&refused).contains("--force"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(history(&lab).len(), 1);

    let damages: [(&str, Damage); 2] = [
        ("truncated to half", |db| {
            let bytes = std::fs::read(db).unwrap();
            std::fs::write(db, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("garbage over the header", |db| {
            let mut bytes = std::fs::read(db).unwrap();
            bytes[..100].copy_from_slice(&[0x5a; 100]);
            std::fs::write(db, bytes).unwrap();
        }),
    ];
    for (round, (what, damage)) in damages.into_iter().enumerate() {
        let before = lab.running_config();
        assert!(
            !db.with_extension("db-wal").exists()
                || std::fs::metadata(db.with_extension("db-wal"))
                    .unwrap()
                    .len()
                    == 0,
            "the CLI's last connection checkpointed the WAL"
        );
        damage(&db);

        // Every command that needs the history refuses with one sentence and the fix.
        for args in [&["status"][..], &["history"], &["apply"]] {
            let out = lab.agent(args);
            assert_eq!(
                out.status.code(),
                Some(74),
                "{what}: {args:?}: {}",
                stderr(&out)
            );
            let e = stderr(&out);
            assert!(
                e.contains("is damaged") && e.contains("bgplb-agent store reset"),
                "{what}: {args:?}: {e}"
            );
            assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        }
        let daemon = run_daemon(&lab);
        assert_eq!(
            daemon.status.code(),
            Some(74),
            "{what}: run: {}",
            stderr(&daemon)
        );
        let check = lab.agent(&["store", "check"]);
        assert_eq!(check.status.code(), Some(1), "{what}: {}", stdout(&check));
        assert!(stdout(&check).contains("damaged"), "{}", stdout(&check));
        assert_eq!(lab.running_config(), before, "{what}: nothing touched FRR");

        // The way out: a new history from what FRR runs, FRR unchanged.
        let reset = lab.agent_ok(&["store", "reset"]);
        assert!(reset.contains("FRR was not changed"), "{reset}");
        assert_eq!(
            lab.running_config(),
            before,
            "{what}: the reset changed FRR"
        );
        let kept: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.starts_with("state.db.damaged-") && !n.ends_with("-wal") && !n.ends_with("-shm")
            })
            .collect();
        assert!(!kept.is_empty(), "the damaged file is kept: {kept:?}");
        let h = history(&lab);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0]["source"], "store-reset");
        assert!(lab.agent_ok(&["store", "check"]).contains(": ok"));
        let events = lab.agent_ok(&["history", "--events"]);
        assert!(events.contains("store-reset"), "{events}");

        // The next apply is minimal: FRR already runs it.
        let plan = lab.agent_ok(&["plan"]);
        assert!(plan.contains("nothing to change"), "{what}: {plan}");
        lab.agent_ok(&["apply"]);
        let h = history(&lab);
        assert_eq!(h[0]["changes"], 0, "{what}: {h:?}");
        assert_eq!(lab.running_config(), before);
        lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
        // Different damage-file names for the two rounds (they are named by the second).
        if round == 0 {
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
    }
}
