//! The gateway as it really is: the cross-built static aarch64 agent next to Debian's arm64 FRR
//! (bookworm's 8.4, unpacked by `scripts/frr-fetch 8.4-arm64` and copied into the VM), inside an
//! aarch64 QEMU machine (cross/vm). The agent applies the reference site to that FRR, reads it
//! back, plans nothing more, and names the release in `status`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp {}: {:?}", from.display(), out);
}

#[test]
fn the_static_agent_applies_to_debians_arm64_frr_in_an_aarch64_vm() {
    let frr = root().join(".cache/frr/8.4-arm64");
    assert!(
        frr.join("bin/bgpd").is_file(),
        "{} is missing: run `scripts/frr-fetch 8.4-arm64` (scripts/test does this)",
        frr.display()
    );
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    // Only what zebra, bgpd and vtysh need: the wrappers, glibc and the libraries.
    for part in [
        "bin",
        "root/lib/aarch64-linux-gnu",
        "root/usr/lib/aarch64-linux-gnu",
        "root/usr/lib/frr/zebra",
        "root/usr/lib/frr/bgpd",
        "root/usr/bin/vtysh",
    ] {
        copy(&frr.join(part), &files.join("frr").join(part));
    }
    let mut site = bgplb_site::parse(bgplb_tests::lab::REFERENCE_SITE).unwrap();
    site.agent.data_dir = "/tmp/bgplb".into();
    site.agent.frr.vtysh = "/files/frr/bin/vtysh".into();
    site.agent.frr.instance = None;
    std::fs::write(files.join("site.toml"), toml::to_string(&site).unwrap()).unwrap();
    let script = r#"set -e
mkdir -p /etc/frr /var/run/frr /var/lib/frr /var/log/frr /var/tmp/frr
# The busybox machine has no users: FRR's privilege code looks them up.
printf 'root:x:0:0:root:/root:/bin/sh\nfrr:x:100:101::/nonexistent:/bin/false\n' > /etc/passwd
printf 'root:x:0:\nfrr:x:101:\nfrrvty:x:102:frr,root\n' > /etc/group
printf 'frr defaults traditional\nhostname gw\nno zebra nexthop kernel enable\n!\n' > /etc/frr/frr.conf
# No PAM modules in the machine: vtysh lets root in without asking PAM.
printf 'service integrated-vtysh-config\nusername root nopassword\n' > /etc/frr/vtysh.conf
F=/files/frr/bin
chown -R 100:101 /etc/frr /var/run/frr /var/lib/frr /var/tmp/frr /var/log/frr
$F/zebra -d -f /etc/frr/frr.conf -i /var/run/frr/zebra.pid
$F/bgpd -d -f /etc/frr/frr.conf -i /var/run/frr/bgpd.pid
i=0
until $F/vtysh -c 'show bgp summary json' >/tmp/vtysh.out 2>&1; do
  i=$((i+1)); [ $i -lt 40 ] || { cat /tmp/vtysh.out; ls -l /var/run/frr; echo FRR-NOT-ANSWERING; exit 1; }; sleep 1
done
echo FRR-UP
A="/bin/bgplb-agent --config site.toml"
$A apply
echo "--- plan"
$A plan
echo "--- status"
$A status | head -1
echo "--- owned lines: $($F/vtysh -c 'show running-config' | grep -c BGPLB)"
grep -q 'BGPLB-home-V4' /etc/frr/frr.conf && echo SAVED
"#;
    bgplb_tests::vm::run(
        &files,
        script,
        400,
        &[
            "FRR-UP",
            "generation 1 applied",
            "FRR runs the desired configuration: nothing to change",
            "gateway udm-pro (AS 64512), FRR 8.4",
            "SAVED",
        ],
    );
}
