//! The gateway as it really is, in one aarch64 QEMU machine (`cross/qemu-test`): Debian's arm64
//! systemd, FRR 8.4 (started by its own unit), iproute2 and two gobgpd nodes in network
//! namespaces, with the cross-built static agent installed the way the README tells an operator
//! (`pki init`, `pki issue`, `install --root /`). Checked there: sessions Established in both
//! families, the VLAN 52 segment up, a report sent from this machine over mutual TLS through a
//! forwarded port changing FRR's neighbours (and a client without a certificate refused), the
//! report still fresh after the gateway's clock steps two hours ahead, systemd
//! restarting a killed agent without a new generation, and a firmware upgrade (the unit gone, then
//! UniFi OS's on-boot script) bringing the agent back on the same generation with FRR unchanged,
//! nothing left to plan and the configuration saved.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_aarch64_gateway_installs_peers_takes_reports_and_survives_an_upgrade() {
    bgplb_tests::vm::agent_aarch64();
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("console.log");
    let out = Command::new(repo().join("cross/qemu-test"))
        .arg("--log")
        .arg(&log)
        .output()
        .expect("run cross/qemu-test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cross/qemu-test failed:\n{stderr}\n--- console\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // The figures the closing notes quote, visible with --nocapture.
    for line in stderr.lines().filter(|l| l.contains("measured:")) {
        println!("{line}");
    }
    let console = std::fs::read_to_string(&log).unwrap();
    for want in [
        "SESSIONS-ESTABLISHED",
        "NEIGHBOURS-FROM-REPORT",
        "FRESH-AFTER-CLOCK-JUMP",
        "SAME-GENERATION",
        "FRR runs the desired configuration: nothing to change",
        "gateway udm-pro (AS 64512), FRR 8.4",
        "SAVED",
    ] {
        assert!(
            console.contains(want),
            "the console lacks {want:?}:\n{console}"
        );
    }
    assert!(Path::new(&log).exists());
}
