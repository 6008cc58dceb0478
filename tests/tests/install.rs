//! Installing on a gateway, in a temporary root next to the lab's real FRR: preflight names every
//! problem and writes nothing, install lays out /data and is idempotent, a firmware upgrade
//! (everything outside /data wiped) is undone by the on-boot script, uninstall keeps FRR and
//! /data unless told otherwise. And the CA a user starts with: `pki init` and `pki issue`
//! certificates the real agent accepts, rotated without a restart, and a new CA refusing the old
//! one's.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bgplb_tests::client::{client_with, send, Answer};
use bgplb_tests::cmd::wait_for;
use bgplb_tests::{Lab, LabSpec};

/// The lab's site as a gateway install has it: state and TLS files under /data/bgplb.
fn gateway_site(lab: &Lab) -> bgplb_site::Site {
    let mut site = lab.site();
    site.agent.data_dir = PathBuf::from("/data/bgplb");
    site.agent.tls = bgplb_site::TlsSettings::default();
    site
}

fn lab() -> Lab {
    Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    })
}

fn agent(lab: &Lab, args: &[&str]) -> (bool, String) {
    let out = lab.agent(args);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn preflight_names_every_problem_and_writes_nothing() {
    let lab = lab();
    let root = tempfile::tempdir().unwrap();
    let r = root.path().display().to_string();
    let mut site = gateway_site(&lab);
    site.agent.listen = "172.29.99.1:7443".parse().unwrap();
    lab.write_site(&site);
    let (ok, out) = agent(&lab, &["install", "--root", &r]);
    assert!(!ok, "{out}");
    for problem in [
        "etc/frr/daemons is missing",
        "TLS files missing",
        "bgplb-agent pki init",
        "172.29.99.1 is not an address of this host",
        "nothing was written",
    ] {
        assert!(out.contains(problem), "{problem}: {out}");
    }
    assert!(tree(root.path()).is_empty(), "{:?}", tree(root.path()));

    // bgpd off; a key that is not the certificate's.
    std::fs::create_dir_all(root.path().join("etc/frr")).unwrap();
    std::fs::write(root.path().join("etc/frr/daemons"), "zebra=yes\nbgpd=no\n").unwrap();
    let site = gateway_site(&lab);
    lab.write_site(&site);
    let tls = root.path().join("data/bgplb/tls");
    let (ok, out) = agent(&lab, &["pki", "init", "--dir", &tls.display().to_string()]);
    assert!(ok, "{out}");
    let other = tempfile::tempdir().unwrap();
    let (ok, out) = agent(
        &lab,
        &["pki", "init", "--dir", &other.path().display().to_string()],
    );
    assert!(ok, "{out}");
    std::fs::copy(other.path().join("agent.key"), tls.join("agent.key")).unwrap();
    let before = tree(root.path());
    let (ok, out) = agent(&lab, &["install", "--root", &r]);
    assert!(!ok, "{out}");
    assert!(out.contains("set `bgpd=yes`"), "{out}");
    assert!(out.contains("do not go together"), "{out}");
    assert_eq!(tree(root.path()), before, "nothing written");

    // A certificate from another CA than the client CA.
    std::fs::copy(other.path().join("agent.key"), tls.join("agent.key")).unwrap();
    std::fs::copy(other.path().join("agent.crt"), tls.join("agent.crt")).unwrap();
    std::fs::write(root.path().join("etc/frr/daemons"), "zebra=yes\nbgpd=yes\n").unwrap();
    let (ok, out) = agent(&lab, &["install", "--root", &r]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("does not verify against the client CA"),
        "{out}"
    );
}

/// A root with FRR's daemons file and `pki init` done, ready to install into.
fn ready_root(lab: &Lab) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc/frr")).unwrap();
    std::fs::write(
        root.path().join("etc/frr/daemons"),
        "zebra=yes\nbgpd=yes\nospfd=no\n",
    )
    .unwrap();
    lab.write_site(&gateway_site(lab));
    let tls = root.path().join("data/bgplb/tls");
    let (ok, out) = agent(lab, &["pki", "init", "--dir", &tls.display().to_string()]);
    assert!(ok, "{out}");
    root
}

#[test]
fn install_lays_out_data_survives_a_firmware_upgrade_and_uninstall_keeps_what_it_should() {
    let lab = lab();
    lab.apply_and_wait(&lab.site());
    let root = ready_root(&lab);
    let r = root.path().display().to_string();
    let (ok, out) = agent(&lab, &["install", "--root", &r]);
    assert!(ok, "{out}");
    assert!(out.contains("nothing started (--root"), "{out}");
    let at = |p: &str| root.path().join(p);
    assert_eq!(mode(&at("data/bgplb")), 0o700);
    assert_eq!(mode(&at("data/bgplb/bin/bgplb-agent")), 0o755);
    assert_eq!(mode(&at("data/bgplb/site.toml")), 0o600);
    assert_eq!(mode(&at("data/on_boot.d/10-bgplb-agent.sh")), 0o755);
    let unit = std::fs::read_to_string(at("etc/systemd/system/bgplb-agent.service")).unwrap();
    assert!(unit.contains("ExecStart=/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml"));
    assert_eq!(
        std::fs::read(at("data/bgplb/bin/bgplb-agent")).unwrap(),
        std::fs::read(bgplb_tests::bins::path("bgplb-agent")).unwrap(),
        "the running binary, copied"
    );
    // Idempotent: a second install changes nothing, and never overwrites the site file.
    std::fs::write(at("data/bgplb/site.toml"), {
        let mut s = std::fs::read_to_string(at("data/bgplb/site.toml")).unwrap();
        s.push_str("# the operator's edit\n");
        s
    })
    .unwrap();
    let (ok, out) = agent(&lab, &["install", "--root", &r]);
    assert!(ok, "{out}");
    assert!(!out.contains("wrote "), "{out}");
    assert!(std::fs::read_to_string(at("data/bgplb/site.toml"))
        .unwrap()
        .ends_with("# the operator's edit\n"));

    // A firmware upgrade wipes everything outside /data; the on-boot script (as UniFi OS runs
    // it at boot) puts the unit back and starts the agent. systemctl is a recording stand-in here
    // (no systemd in the lab); gateway_qemu.rs does this under the real systemd.
    std::fs::remove_dir_all(at("etc")).unwrap();
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls");
    let systemctl = bin.path().join("systemctl");
    std::fs::write(
        &systemctl,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", calls.display()),
    )
    .unwrap();
    std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.gw])
        .arg(at("data/on_boot.d/10-bgplb-agent.sh"))
        .env("BGPLB_ROOT", root.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.path().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(at("etc/systemd/system/bgplb-agent.service")).unwrap(),
        unit,
        "the unit is back"
    );
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "daemon-reload\nenable bgplb-agent.service\nrestart bgplb-agent.service\n"
    );

    // Uninstall: the unit and the on-boot script go; FRR keeps its generation; /data stays.
    let frr_before = lab.running_config();
    assert!(frr_before.contains("BGPLB-home-V4"));
    for _ in 0..2 {
        let (ok, out) = agent(&lab, &["uninstall", "--root", &r]);
        assert!(ok, "{out}");
    }
    assert!(!at("etc/systemd/system/bgplb-agent.service").exists());
    assert!(!at("data/on_boot.d/10-bgplb-agent.sh").exists());
    assert!(at("data/bgplb/site.toml").exists());
    assert_eq!(lab.running_config(), frr_before, "FRR untouched");
    // Told to: bgplb's part of FRR goes (the operator's stays), and so does /data/bgplb.
    lab.vtysh_config(&["ip prefix-list OPERATOR seq 5 permit 10.0.0.0/8"]);
    let (ok, out) = agent(
        &lab,
        &["uninstall", "--root", &r, "--remove-frr-config", "--purge"],
    );
    assert!(ok, "{out}");
    let after = lab.running_config();
    assert!(!after.contains("BGPLB"), "{after}");
    assert!(after.contains("ip prefix-list OPERATOR seq 5 permit 10.0.0.0/8"));
    assert!(!at("data/bgplb").exists());
}

const URL: &str = "https://172.29.51.1:7443/v1/clusters/home/report";

fn report(generation: u64) -> Option<Vec<u8>> {
    let mut r: serde_json::Value =
        serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
    r["generation"] = generation.into();
    r["nodes"].as_array_mut().unwrap().truncate(1);
    Some(serde_json::to_vec(&r).unwrap())
}

#[test]
fn pki_certificates_work_with_the_real_agent_and_a_new_ca_refuses_the_old_ones() {
    let (lab, _) = Lab::start_with_daemon(
        LabSpec {
            nodes: 1,
            ipv6: false,
            ..LabSpec::default()
        },
        |_| {},
    );
    let ns = lab.nodes[0].ns.clone();
    // The daemon runs with the test PKI in <lab>/tls; make a CA of our own and move the agent
    // onto it, as an operator would after `pki init` (the files are re-read without a restart).
    let made = tempfile::tempdir().unwrap();
    let d = made.path().display().to_string();
    let (ok, out) = agent(
        &lab,
        &["pki", "init", "--dir", &d, "--name", "udm.home.arpa"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("172.29.51.1") && out.contains("udm.home.arpa"),
        "{out}"
    );
    // `pki issue --cluster home` into a new directory.
    let issue_home = || {
        let out_dir = tempfile::tempdir().unwrap();
        let o = out_dir.path().display().to_string();
        let (ok, out) = agent(
            &lab,
            &[
                "pki",
                "issue",
                "--cluster",
                "home",
                "--dir",
                &d,
                "--out",
                &o,
            ],
        );
        assert!(ok, "{out}");
        assert!(out.contains("spiffe://bgplb/cluster/home"), "{out}");
        out_dir
    };
    let issued = issue_home();
    let (ok, out) = agent(&lab, &["pki", "issue", "--cluster", "nope", "--dir", &d]);
    assert!(!ok && out.contains("no cluster `nope`"), "{out}");
    let tls = lab.dir.path().join("tls");
    let move_agent_to = |dir: &Path| {
        for (from, to) in [
            ("agent.crt", "agent.crt"),
            ("agent.key", "agent.key"),
            ("ca.crt", "ca.crt"),
        ] {
            std::fs::copy(dir.join(from), tls.join(to)).unwrap();
        }
    };
    move_agent_to(made.path());
    let companion = (
        issued.path().join("companion-home.crt"),
        issued.path().join("companion-home.key"),
    );
    let home = || client_with(&issued.path().join("ca.crt"), Some(&companion));
    wait_for(
        "the new certificates to be in force",
        Duration::from_secs(20),
        || (send(&ns, home(), "PUT", URL, report(1)).status() == Some(202)).then_some(()),
    );
    // The Secret form holds the same kind of certificate.
    let (ok, secret) = agent(
        &lab,
        &["pki", "issue", "--cluster", "home", "--dir", &d, "--secret"],
    );
    assert!(ok, "{secret}");
    assert!(secret.contains("name: bgplb-companion-tls") && secret.contains("namespace: bgplb"));

    // A new CA: its certificates work, the old CA's companion certificate is refused.
    let (ok, out) = agent(&lab, &["pki", "init", "--dir", &d]);
    assert!(!ok && out.contains("--force"), "{out}");
    let (ok, out) = agent(&lab, &["pki", "init", "--dir", &d, "--force"]);
    assert!(ok, "{out}");
    let renewed = issue_home();
    move_agent_to(made.path());
    let new_companion = (
        renewed.path().join("companion-home.crt"),
        renewed.path().join("companion-home.key"),
    );
    wait_for("the new CA to be in force", Duration::from_secs(20), || {
        let c = client_with(&renewed.path().join("ca.crt"), Some(&new_companion));
        (send(&ns, c, "PUT", URL, report(2)).status() == Some(202)).then_some(())
    });
    // The old companion certificate, trusting the new CA's server certificate: refused.
    let old = client_with(&renewed.path().join("ca.crt"), Some(&companion));
    let a = send(&ns, old, "PUT", URL, report(3));
    assert!(matches!(a, Answer::Failed(_)), "{a:?}");
}
