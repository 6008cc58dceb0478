//! The L2 → BGP migration end to end in the lab: the real agent daemon and FRR on the gateway,
//! GoBGP nodes announcing what the Kubernetes stand-in's LB-IPAM assigns (tests/src/cilium.rs),
//! the companion reporting, and the migration talking to the real agent (wait-peering reads its
//! status, verify goes through its /v1/probe). A client on the other side of the gateway makes a
//! TCP connection to every Service's old and new address every 100 ms; the services answer on
//! the old addresses before, on the new ones after, and on the old ones again after rollback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bgplb_companion::agent::HttpAgent;
use bgplb_companion::dynkube::DynKube;
use bgplb_companion::migrate::{self, Options};
use bgplb_tests::cilium::Cilium;
use bgplb_tests::client::{client, pki_dir};
use bgplb_tests::cmd::wait_for;
use bgplb_tests::kubesim::{kubeconfig, objects, KubeSim};
use bgplb_tests::netns::block_on_in;
use bgplb_tests::traffic::{Outcome, Traffic};
use bgplb_tests::{Lab, LabSpec};
use serde_json::{json, Value};

const ALL: [&str; 3] = ["172.29.51.11", "172.29.51.12", "172.29.51.13"];

fn service(ns: &str, name: &str, ip: &str, port: u16, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "ports": [{"port": port, "protocol": "TCP"}], "selector": {"app": name}},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}
    })
}

/// The home cluster still on L2: an L2 pool on the node network, two services (one requested
/// its address, one never did).
fn l2_cluster(lab: &Lab) -> KubeSim {
    let sim = KubeSim::new();
    sim.serve_cilium();
    sim.simulate_lb_ipam();
    sim.apply(objects::cilium_daemonset("1.18.2"));
    // Stage 1 of the values applied: BGP on, L2 still on.
    sim.apply(cilium_config(true, true));
    for n in &lab.nodes {
        sim.apply(objects::node(&n.name, &n.ipv4, None, true));
    }
    sim.apply(objects::pool(
        "l2-pool",
        &["172.29.51.200-172.29.51.250"],
        false,
    ));
    sim.apply(json!({"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumL2AnnouncementPolicy", "metadata": {"name": "l2-policy"},
                     "spec": {"loadBalancerIPs": true, "interfaces": ["^eth0$"]}}));
    sim.apply(service(
        "ingress",
        "traefik",
        "172.29.51.200",
        8443,
        json!({"lbipam.cilium.io/ips": "172.29.51.200"}),
    ));
    sim.apply(service("web", "api", "172.29.51.230", 8080, json!({})));
    sim
}

fn traffic(lab: &Lab, ip: &str, port: u16) -> Traffic {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    Traffic::start(
        &lab.client_ns(),
        addr,
        Duration::from_millis(100),
        Duration::from_secs(1),
    )
}

fn last_ok(o: &Outcome) -> Option<Instant> {
    o.samples
        .iter()
        .filter(|s| s.result.is_ok())
        .map(|s| s.at)
        .max()
}

fn first_ok(o: &Outcome) -> Option<Instant> {
    o.samples
        .iter()
        .filter(|s| s.result.is_ok())
        .map(|s| s.at)
        .min()
}

async fn dynkube() -> DynKube {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig("http://127.0.0.1:6443")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    DynKube::new(kube::Client::try_from(config).unwrap(), false)
}

fn ips(sim: &KubeSim, ns: &str, name: &str) -> Vec<String> {
    sim.get("v1", "Service", ns, name).unwrap()["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().map(String::from))
        .collect()
}

/// Cilium's `cilium-config` as the Helm values set it.
fn cilium_config(bgp: bool, l2: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "cilium-config", "namespace": "kube-system"},
           "data": {"enable-bgp-control-plane": bgp.to_string(),
                    "enable-l2-announcements": l2.to_string()}})
}

#[test]
fn the_migration_moves_real_traffic_through_the_real_agent_and_back() {
    let (mut lab, site) = Lab::start_with_daemon(
        LabSpec {
            nodes: 3,
            ipv6: false,
            client: true,
            ..LabSpec::default()
        },
        |_| {},
    );
    lab.wait_established(&ALL);
    let sim = l2_cluster(&lab);
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());
    lab.start_companion(0, 2);
    let cilium = Cilium::start(sim.clone(), lab.node_refs(), lab.stop_flag());

    // Before: the old addresses answer at L2 on the node network.
    wait_for("the L2 services to answer", Duration::from_secs(20), || {
        (lab.tcp_from_client("172.29.51.200", 8443).is_ok()
            && lab.tcp_from_client("172.29.51.230", 8080).is_ok())
        .then_some(())
    });
    let old = [
        ("traefik", traffic(&lab, "172.29.51.200", 8443)),
        ("api", traffic(&lab, "172.29.51.230", 8080)),
    ];
    let new = [
        ("traefik", traffic(&lab, "172.29.52.200", 8443)),
        ("api", traffic(&lab, "172.29.52.100", 8080)),
    ];

    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        site: site.clone(),
        cluster: "home".into(),
        cilium_version: "1.18.2".into(),
        cilium_namespace: "kube-system".into(),
        dry_run: false,
        backup_file: dir.path().join("backup.json"),
        peering_timeout: Duration::from_secs(60),
        service_timeout: Duration::from_secs(60),
    };
    let started = Instant::now();
    let plan = block_on_in(&lab.nodes[0].ns.clone(), move || async move {
        let agent = HttpAgent {
            client: client(&pki_dir().join("ca.crt"), Some("companion-home")),
            base: "https://172.29.51.1:7443".into(),
        };
        migrate::migrate(&dynkube().await, &agent, &opts).await
    })
    .expect("the migration");
    let took = started.elapsed();
    assert_eq!(ips(&sim, "ingress", "traefik"), ["172.29.52.200"]);
    assert_eq!(
        ips(&sim, "web", "api"),
        ["172.29.52.100"],
        "what LB-IPAM gave, recorded"
    );
    assert_eq!(
        plan.moves.iter().find(|m| m.name == "api").unwrap().new_ips,
        ["172.29.52.100"]
    );
    // After: the new addresses answer through the gateway's BGP routes; the old ones are gone.
    lab.wait_route("172.29.52.200", &ALL);
    lab.wait_route("172.29.52.100", &ALL);
    std::thread::sleep(Duration::from_secs(2));
    let moved = Instant::now();
    // Stage 2 of the values, as migrate says: L2 announcements off. The moved services are on
    // BGP and do not notice.
    sim.apply(cilium_config(true, false));
    std::thread::sleep(Duration::from_secs(2));
    let new: Vec<(&str, Outcome)> = new.into_iter().map(|(n, t)| (n, t.stop())).collect();
    let old: Vec<(&str, Outcome)> = old.into_iter().map(|(n, t)| (n, t.stop())).collect();
    for ((name, o), (_, n)) in old.iter().zip(&new) {
        assert!(
            n.after(moved).failed().is_empty(),
            "{name}: the new address failed after the move"
        );
        assert!(
            o.after(moved).samples.iter().all(|s| s.result.is_err()),
            "{name}: the old address still answers after the L2 policy and pool are gone"
        );
        // The window: from the old address's last answer to the new one's first (negative:
        // both answered for a while).
        let last_old = last_ok(o).expect("the old address answered before");
        let first_new = first_ok(n).expect("the new address answered");
        let window = if first_new <= last_old {
            "none (both answered for a while)".to_string()
        } else {
            format!("{:.1} s", (first_new - last_old).as_secs_f64())
        };
        eprintln!("{name}: unreachable window during the move: {window}");
    }
    eprintln!("migration wall time: {:.1} s", took.as_secs_f64());

    // Rollback through the same API server rules: the operator applies stage 1 again (L2 on;
    // no policy selects anything yet), then rolls back; the old addresses come back and answer.
    sim.apply(cilium_config(true, true));
    let old = [
        ("traefik", traffic(&lab, "172.29.51.200", 8443)),
        ("api", traffic(&lab, "172.29.51.230", 8080)),
    ];
    let new = [
        ("traefik", traffic(&lab, "172.29.52.200", 8443)),
        ("api", traffic(&lab, "172.29.52.100", 8080)),
    ];
    let started = Instant::now();
    let back = block_on_in(&lab.nodes[0].ns.clone(), || async move {
        migrate::rollback(&dynkube().await, "kube-system").await
    })
    .expect("rollback");
    let took = started.elapsed();
    assert!(back > 0);
    assert_eq!(ips(&sim, "ingress", "traefik"), ["172.29.51.200"]);
    assert_eq!(ips(&sim, "web", "api"), ["172.29.51.230"]);
    wait_for(
        "the old addresses to answer again",
        Duration::from_secs(30),
        || {
            (lab.tcp_from_client("172.29.51.200", 8443).is_ok()
                && lab.tcp_from_client("172.29.51.230", 8080).is_ok())
            .then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    let old: Vec<(&str, Outcome)> = old.into_iter().map(|(n, t)| (n, t.stop())).collect();
    let new: Vec<(&str, Outcome)> = new.into_iter().map(|(n, t)| (n, t.stop())).collect();
    for ((name, o), (_, n)) in old.iter().zip(&new) {
        let last_new = last_ok(n).expect("the BGP address answered before the rollback");
        let first_old = first_ok(o).expect("the old address answers after the rollback");
        let window = if first_old <= last_new {
            "none (both answered for a while)".to_string()
        } else {
            format!("{:.1} s", (first_old - last_new).as_secs_f64())
        };
        eprintln!("{name}: unreachable window during the rollback: {window}");
    }
    eprintln!("rollback wall time: {:.1} s", took.as_secs_f64());
    let api = sim.get("v1", "Service", "web", "api").unwrap();
    assert!(api["metadata"]["annotations"]
        .get("lbipam.cilium.io/ips")
        .is_none());
    cilium.stop();
}
