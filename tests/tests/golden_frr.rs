//! Every golden FRR config (site/tests/golden/*/frr.conf) is judged by real FRR: its parser accepts
//! it, bgpd applies it without an error, and it reads back identical. A deliberately broken config
//! proves the check can fail.

use std::path::{Path, PathBuf};

use bgplb_tests::{Lab, LabSpec};

/// Each case's render for the FRR the lab runs (`BGPLB_FRR`): `frr-<release>.conf` (7.5, 10.3),
/// `frr.conf` for the reference 8.4.
fn goldens() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../site/tests/golden");
    let version = bgplb_tests::frr::build().version;
    let name = if version == bgplb_frr::FrrVersion::REFERENCE {
        "frr.conf".to_string()
    } else {
        format!("frr-{version}.conf")
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path().join(&name))
        .filter(|p| p.exists())
        .collect();
    files.sort();
    files
}

#[test]
fn every_golden_config_is_accepted_by_frr_and_reads_back_identical() {
    let files = goldens();
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        // A fresh FRR per case: nothing from the previous case can hide a problem.
        let lab = Lab::start(LabSpec {
            nodes: 0,
            ..LabSpec::default()
        });
        lab.check_config(&file).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn a_broken_config_fails_the_check() {
    let lab = Lab::start(LabSpec {
        nodes: 0,
        ..LabSpec::default()
    });
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/broken-frr.conf");
    let err = lab
        .check_config(&broken)
        .expect_err("a broken config passed FRR's check");
    assert!(
        err.contains("refused") && err.contains("maximum-paths 300"),
        "{err}"
    );
}

#[test]
fn a_config_frr_accepts_but_prints_differently_fails_the_check() {
    // `timer` is a prefix FRR's parser accepts for `timers`, but it reads back as `timers`:
    // a renderer writing it would never see its own config in FRR.
    let lab = Lab::start(LabSpec {
        nodes: 0,
        ..LabSpec::default()
    });
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/noncanonical-frr.conf");
    let err = lab
        .check_config(&file)
        .expect_err("a non-canonical config passed the check");
    assert!(
        err.contains("does not read back identical") && err.contains("timer 3 9"),
        "{err}"
    );
}
