//! The segment's `vlan` mode, for real: this machine's kernel has no VLAN links, so the static
//! aarch64 agent runs inside an aarch64 QEMU machine whose kernel has 8021q (cross/vm). The VM's
//! NIC is QEMU user-mode networking with restrict=on: nothing reaches out of it.

#[test]
fn vlan_mode_creates_owns_and_removes_only_its_vlan_in_an_aarch64_vm() {
    let work = tempfile::tempdir().unwrap();
    let files = work.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    let mut site = bgplb_site::parse(bgplb_tests::lab::REFERENCE_SITE).unwrap();
    site.segment.mode = bgplb_site::SegmentMode::Vlan;
    site.segment.parent = Some("eth0".into());
    site.segment.gateway_addresses = vec![
        "172.29.52.1".parse().unwrap(),
        "fd47:25e1:2f96:52::1".parse().unwrap(),
    ];
    site.agent.data_dir = "/tmp/bgplb".into();
    std::fs::write(files.join("site.toml"), toml::to_string(&site).unwrap()).unwrap();
    let script = r#"set -e
A="/bin/bgplb-agent --config site.toml"
$A segment apply
echo "ALIAS=$(cat /sys/class/net/eth0.52/ifalias)"
cat /proc/net/vlan/eth0.52
ip addr show eth0.52
ip link show eth0.52 | grep -q ',UP' && echo LINK-UP
echo "--- second apply"
$A segment apply
echo "--- someone else's VLAN, then teardown"
ip link add link eth0 name eth0.53 type vlan id 53
$A segment teardown
ip link show eth0.53 >/dev/null 2>&1 && echo FOREIGN-SURVIVES
if ip link show eth0.52 >/dev/null 2>&1; then echo OURS-LEFT; else echo OURS-GONE; fi
echo "--- a link of ours with the wrong VLAN id is replaced"
ip link add link eth0 name eth0.52 type vlan id 54
echo bgplb:segment > /sys/class/net/eth0.52/ifalias
$A segment apply
grep 'VID: 52' /proc/net/vlan/eth0.52 && echo VID-FIXED
echo "--- a foreign link with our name is refused"
$A segment teardown
ip link add link eth0 name eth0.52 type vlan id 52
if $A segment apply; then echo TAKEN-ACCEPTED; else echo TAKEN-REFUSED; fi
"#;
    bgplb_tests::vm::run(
        &files,
        script,
        180,
        &[
            "done: + link eth0.52 (VLAN 52 on eth0)",
            "done: + address 172.29.52.1/24 on eth0.52",
            "done: + address fd47:25e1:2f96:52::1/64 on eth0.52",
            "ALIAS=bgplb:segment",
            "VID: 52",
            "inet 172.29.52.1/24",
            "LINK-UP",
            "nothing changed",
            "done: - link eth0.52",
            "FOREIGN-SURVIVES",
            "OURS-GONE",
            "VID-FIXED",
            "a link named `eth0.52` exists and was not made by bgplb",
            "TAKEN-REFUSED",
        ],
    );
}
