//! End to end in the lab: the companion, unchanged, watches a simulated cluster (the Kubernetes
//! API stand-in) and reports to the agent daemon, which drives the gateway's real FRR.

use std::time::Duration;

use bgplb_tests::client::{pki_dir, tls_session};
use bgplb_tests::cmd::wait_for;
use bgplb_tests::kubesim::{objects, KubeSim};
use bgplb_tests::pki::{issue_like_cert_manager, kubelet_secret_update};
use bgplb_tests::{Lab, LabSpec};

const COMMUNITY: &[&str] = &["64512:100"];

fn neighbours(lab: &Lab) -> Vec<String> {
    lab.peer_states().into_keys().collect()
}

#[test]
fn the_companion_drives_the_gateway_from_the_cluster() {
    let mut lab = Lab::start(LabSpec {
        nodes: 3,
        client: true,
        ..LabSpec::default()
    });
    let site = lab.daemon_site();
    lab.write_site(&site);
    lab.start_daemon();

    // The simulated cluster: two nodes, Cilium 1.18 with the reference pools.
    let sim = KubeSim::with_cilium("1.18.2");
    sim.apply(objects::bgp_cluster_config("bgplb-home"));
    for n in &lab.nodes[..2] {
        sim.apply(objects::node(&n.name, &n.ipv4, n.ipv6.as_deref(), true));
    }
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());
    lab.start_companion(0, 3);

    // The report replaces the site's three static nodes with the cluster's two.
    wait_for(
        "FRR to peer with exactly k8s-1 and k8s-2",
        Duration::from_secs(30),
        || {
            let n = neighbours(&lab);
            (n.len() == 4 && !n.iter().any(|a| a.ends_with("::13") || a == "172.29.51.13"))
                .then_some(())
        },
    );
    lab.wait_established(&[
        "172.29.51.11",
        "172.29.51.12",
        "fd47:25e1:2f96:51::11",
        "fd47:25e1:2f96:51::12",
    ]);

    // A node joins: its sessions appear and come up.
    let k3 = &lab.nodes[2];
    sim.apply(objects::node(&k3.name, &k3.ipv4, k3.ipv6.as_deref(), true));
    lab.wait_established(&["172.29.51.13", "fd47:25e1:2f96:51::13"]);

    // A new LoadBalancer service: Cilium (here: the test) announces its VIP from the nodes with
    // endpoints; it becomes reachable over TCP from the client.
    sim.apply(objects::service("web", "nginx", &["172.29.52.150"], 8080));
    sim.apply(objects::endpoint_slice("web", "nginx", &["k8s-2", "k8s-3"]));
    for i in [1, 2] {
        lab.serve_vip(i, "172.29.52.150", 8080);
        lab.nodes[i].announce("172.29.52.150/32", COMMUNITY);
    }
    lab.wait_route("172.29.52.150", &["172.29.51.12", "172.29.51.13"]);
    let answer = lab
        .tcp_from_client("172.29.52.150", 8080)
        .expect("TCP to the VIP");
    assert!(answer == "k8s-2" || answer == "k8s-3", "{answer}");
    // An unallocated VIP is not routed.
    assert!(lab.tcp_from_client("172.29.52.151", 8080).is_err());

    // A node leaves the cluster: its sessions go.
    assert!(sim.delete("v1", "Node", "", "k8s-1"));
    wait_for("k8s-1's sessions to go", Duration::from_secs(30), || {
        let n = neighbours(&lab);
        (!n.contains(&"172.29.51.11".to_string())
            && !n.contains(&"fd47:25e1:2f96:51::11".to_string()))
        .then_some(())
    });

    // The agent restarts: it comes back to the same state from SQLite, resetting nothing. FRR
    // loses the neighbours before the agent has read them back and recorded the generation, so
    // the history is read once that generation is there.
    let counters = lab.session_counters();
    let generations = wait_for(
        "the generation without k8s-1 to be recorded",
        Duration::from_secs(30),
        || {
            let text = lab.agent_ok(&["history", "--json"]);
            let history: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
            let config = history[0]["config"].as_str().unwrap_or_default();
            (!config.contains("172.29.51.11") && !config.contains("fd47:25e1:2f96:51::11"))
                .then_some(text)
        },
    );
    lab.stop_daemon();
    lab.start_daemon();
    wait_for(
        "the restarted agent to be ready",
        Duration::from_secs(30),
        || {
            let out = bgplb_tests::netns::run_in(&lab.gw, || {
                std::net::TcpStream::connect("127.0.0.1:9478").is_ok()
            });
            out.then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lab.session_counters(),
        counters,
        "the agent's restart reset a session"
    );
    let after: Vec<serde_json::Value> =
        serde_json::from_str(&lab.agent_ok(&["history", "--json"])).unwrap();
    let before: Vec<serde_json::Value> = serde_json::from_str(&generations).unwrap();
    assert_eq!(
        after[0]["number"], before[0]["number"],
        "the restart applied a new generation"
    );

    // The agent is down while the cluster changes: the companion retries and the agent gets the
    // latest state when it is back.
    lab.stop_daemon();
    sim.apply(objects::service("web", "api", &["172.29.52.152"], 8081));
    std::thread::sleep(Duration::from_secs(4));
    lab.start_daemon();
    wait_for(
        "the agent to receive the latest report",
        Duration::from_secs(40),
        || (lab.agent_status(1)["clusters"][0]["services"] == 2).then_some(()),
    );
    assert!(
        lab.companion_log().contains("cannot deliver the report"),
        "{}",
        lab.companion_log()
    );
    let status = lab.agent_status(1);
    assert_eq!(status["clusters"][0]["nodes"], 2);
    assert_eq!(status["clusters"][0]["stale"], false);
}

#[test]
fn the_agents_own_certificate_rotates_under_a_connected_companion() {
    use rustls_pki_types::pem::PemObject;
    let der = |name: &str| {
        rustls_pki_types::CertificateDer::from_pem_file(pki_dir().join(name))
            .unwrap()
            .to_vec()
    };
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    let site = lab.daemon_site();
    lab.write_site(&site);
    lab.start_daemon();
    let sim = KubeSim::with_cilium("1.18.2");
    for n in &lab.nodes {
        sim.apply(objects::node(&n.name, &n.ipv4, None, true));
    }
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());
    lab.start_companion(0, 2);
    wait_for(
        "the companion's first report",
        Duration::from_secs(30),
        || lab.agent_status(1)["clusters"][0]["report_generation"].as_u64(),
    );

    let agent: std::net::SocketAddr = "172.29.51.1:7443".parse().unwrap();
    let ca = pki_dir().join("ca.crt");
    let ns = lab.nodes[1].ns.clone();
    let served = || tls_session(&ns, agent, &ca, Some("companion-home")).unwrap();
    assert_eq!(served(), der("agent.crt"));
    // cert-manager renews the agent's certificate: new key, new certificate, same files.
    let tls = lab.dir.path().join("tls");
    std::fs::copy(pki_dir().join("agent-rotated.key"), tls.join("agent.key")).unwrap();
    std::fs::copy(pki_dir().join("agent-rotated.crt"), tls.join("agent.crt")).unwrap();
    wait_for(
        "the rotated certificate to be served",
        Duration::from_secs(20),
        || (served() == der("agent-rotated.crt")).then_some(()),
    );
    assert!(lab.daemon_log().contains("TLS files reloaded"));
    // The companion, connected before, still delivers: a new service reaches the agent.
    sim.apply(objects::service("web", "nginx", &["172.29.52.150"], 8080));
    wait_for(
        "the companion's report after the rotation",
        Duration::from_secs(30),
        || (lab.agent_status(1)["clusters"][0]["services"] == 1).then_some(()),
    );
}

/// cert-manager renews the companion's client certificate (issued as the cert-manager
/// component's Certificate says: ECDSA P-256, the cluster's URI SAN, client auth) and the kubelet
/// swaps the Secret volume under the running companion. Reports made after the old certificate
/// expired are accepted by the agent, and the old certificate itself is refused by then: the
/// companion switched without a restart.
#[test]
fn the_companion_keeps_reporting_across_a_cert_manager_renewal() {
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        ipv6: false,
        ..LabSpec::default()
    });
    let site = lab.daemon_site();
    lab.write_site(&site);
    lab.start_daemon();
    let sim = KubeSim::with_cilium("1.18.2");
    for n in &lab.nodes {
        sim.apply(objects::node(&n.name, &n.ipv4, None, true));
    }
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());

    let component = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/kubernetes/components/cert-manager/certificate.yaml");
    let certificate: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(component).unwrap()).unwrap();
    let spec = &certificate["spec"];
    let ca = std::fs::read_to_string(pki_dir().join("ca.crt")).unwrap();
    let ca_key = std::fs::read_to_string(pki_dir().join("ca.key")).unwrap();
    let lifetime = time::Duration::seconds(20);
    let first_expiry = time::OffsetDateTime::now_utc() + lifetime;
    let (first_cert, first_key) = issue_like_cert_manager(spec, &ca, &ca_key, first_expiry);
    let secret = lab.dir.path().join("companion-tls");
    kubelet_secret_update(
        &secret,
        &[
            ("ca.crt", &ca),
            ("tls.crt", &first_cert),
            ("tls.key", &first_key),
        ],
    );
    lab.start_companion_with_tls(
        0,
        1,
        [
            secret.join("ca.crt"),
            secret.join("tls.crt"),
            secret.join("tls.key"),
        ],
    );
    wait_for(
        "the companion's first report",
        Duration::from_secs(30),
        || lab.agent_status(1)["clusters"][0]["report_generation"].as_u64(),
    );

    // Renewal (new key: rotationPolicy Always), well before the first certificate expires.
    let (renewed_cert, renewed_key) = issue_like_cert_manager(
        spec,
        &ca,
        &ca_key,
        time::OffsetDateTime::now_utc() + time::Duration::days(90),
    );
    kubelet_secret_update(
        &secret,
        &[
            ("ca.crt", &ca),
            ("tls.crt", &renewed_cert),
            ("tls.key", &renewed_key),
        ],
    );

    // Past the first certificate's expiry: it is refused now ...
    let expired_at_ms = (first_expiry.unix_timestamp_nanos() / 1_000_000) as u64;
    while time::OffsetDateTime::now_utc() < first_expiry + time::Duration::seconds(1) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let old_files = (
        lab.dir.path().join("old.crt"),
        lab.dir.path().join("old.key"),
    );
    std::fs::write(&old_files.0, &first_cert).unwrap();
    std::fs::write(&old_files.1, &first_key).unwrap();
    let old = bgplb_tests::client::send(
        &lab.nodes[1].ns,
        bgplb_tests::client::client_with(&pki_dir().join("ca.crt"), Some(&old_files)),
        "GET",
        "https://172.29.51.1:7443/v1/status",
        None,
    );
    assert!(
        old.status().is_none(),
        "the agent still took the expired certificate: {old:?}"
    );
    // ... and the companion's reports, made after that, are accepted, also over new
    // connections: the agent restarts, so no session made with the old certificate survives.
    lab.stop_daemon();
    lab.start_daemon();
    let restarted_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    wait_for(
        "a report made after the first certificate expired",
        Duration::from_secs(30),
        || {
            let g = lab.agent_status(1)["clusters"][0]["report_generation"].as_u64()?;
            (g > expired_at_ms && g > restarted_ms).then_some(())
        },
    );
    assert!(
        lab.companion_log()
            .contains("TLS files changed: new client certificate in use"),
        "{}",
        lab.companion_log()
    );
}
