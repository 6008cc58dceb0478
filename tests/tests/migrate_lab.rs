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
use bgplb_tests::fixtures;
use bgplb_tests::kubesim::{kubeconfig, objects, KubeSim};
use bgplb_tests::netns::block_on_in;
use bgplb_tests::traffic::{Outcome, Traffic};
use bgplb_tests::{Lab, LabSpec};

const ALL: [&str; 3] = ["172.29.51.11", "172.29.51.12", "172.29.51.13"];

/// The fixture's Services a client cannot reach from outside: UDP, kept out of BGP, another
/// controller's.
const UNREACHABLE: [&str; 3] = ["dns-udp", "internal", "tailscale"];

/// The Services a client reaches from outside (advertised, TCP): (namespace, name).
fn reachable() -> impl Iterator<Item = (&'static str, &'static str)> {
    fixtures::SERVICES
        .into_iter()
        .filter(|(_, name)| !UNREACHABLE.contains(name))
}

/// Whether every reachable Service answers on its current address.
fn all_answer(lab: &Lab, sim: &KubeSim) -> bool {
    reachable().all(|(ns, name)| {
        let a = address_of(sim, ns, name).unwrap();
        lab.tcp_from_client(&a.ip().to_string(), a.port()).is_ok()
    })
}
/// The home cluster still on L2 (every kind of Service, tests/src/fixtures.rs), with the lab's
/// nodes.
fn l2_cluster(lab: &Lab) -> KubeSim {
    let sim = fixtures::l2_cluster();
    for n in &lab.nodes {
        sim.apply(objects::node(&n.name, &n.ipv4, n.ipv6.as_deref(), true));
    }
    sim
}

/// The Service's first address and first port, now.
fn address_of(sim: &KubeSim, ns: &str, name: &str) -> Option<SocketAddr> {
    let s = sim.get("v1", "Service", ns, name)?;
    let ip = s["status"]["loadBalancer"]["ingress"]
        .as_array()?
        .iter()
        .filter_map(|i| i["ip"].as_str())
        .find(|ip| !ip.contains(':'))?
        .to_string();
    let port = s["spec"]["ports"][0]["port"].as_u64()?;
    format!("{ip}:{port}").parse().ok()
}

/// A client following each reachable Service's address (as DNS would) every 100 ms.
fn follow_all(lab: &Lab, sim: &KubeSim) -> Vec<(&'static str, Traffic)> {
    reachable()
        .map(|(ns, name)| {
            let sim = sim.clone();
            (
                name,
                Traffic::follow(
                    &lab.client_ns(),
                    move || address_of(&sim, ns, name),
                    Duration::from_millis(100),
                    Duration::from_secs(1),
                ),
            )
        })
        .collect()
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

/// Prints each Service's longest outage and returns the worst.
fn report(what: &str, outcomes: &[(&str, Outcome)]) -> Duration {
    let mut worst = Duration::ZERO;
    for (name, o) in outcomes {
        let w = o.longest_outage();
        worst = worst.max(w);
        eprintln!(
            "{name}: unreachable during the {what}: {:.1} s ({} of {} requests failed)",
            w.as_secs_f64(),
            o.failed().len(),
            o.samples.len()
        );
    }
    worst
}

async fn dynkube() -> DynKube {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig("http://127.0.0.1:6443")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    DynKube::new(kube::Client::try_from(config).unwrap(), false)
}

fn ips(sim: &KubeSim, ns: &str, name: &str) -> Vec<String> {
    fixtures::service_ips(sim, ns, name)
}

#[test]
fn the_migration_moves_real_traffic_through_the_real_agent_and_back() {
    let (mut lab, site) = Lab::start_with_daemon(
        LabSpec {
            nodes: 3,
            ipv6: true,
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

    // Before: every Service answers at L2 on the node network.
    wait_for("the L2 services to answer", Duration::from_secs(20), || {
        all_answer(&lab, &sim).then_some(())
    });
    let followed = follow_all(&lab, &sim);
    let old_traefik = traffic(&lab, "172.29.51.200", 443);

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
    let api = ips(&sim, "web", "api");
    assert!(api[0].starts_with("172.29.52."), "{api:?}");
    assert_eq!(
        plan.moves.iter().find(|m| m.name == "api").unwrap().new_ips,
        api,
        "what LB-IPAM gave, recorded"
    );
    // After: the new addresses answer through the gateway's BGP routes; the old ones are gone.
    for (ns, name) in reachable() {
        let a = address_of(&sim, ns, name).unwrap();
        assert!(a.ip().to_string().starts_with("172.29.52."), "{name}: {a}");
        lab.wait_route(&a.ip().to_string(), &ALL);
    }
    std::thread::sleep(Duration::from_secs(2));
    let moved = Instant::now();
    // Stage 2 of the values, as migrate says: L2 announcements off. The moved services are on
    // BGP and do not notice.
    sim.apply(fixtures::cilium_config(true, false));
    std::thread::sleep(Duration::from_secs(2));
    let followed: Vec<(&str, Outcome)> = followed.into_iter().map(|(n, t)| (n, t.stop())).collect();
    let old_traefik = old_traefik.stop();
    for (name, o) in &followed {
        assert!(
            o.after(moved).failed().is_empty(),
            "{name}: failed after the move and stage 2"
        );
    }
    assert!(
        old_traefik
            .after(moved)
            .samples
            .iter()
            .all(|s| s.result.is_err()),
        "the old address still answers after the L2 policy and pool are gone"
    );
    let worst = report("migration", &followed);
    eprintln!(
        "migration wall time: {:.1} s, worst service outage {:.1} s",
        took.as_secs_f64(),
        worst.as_secs_f64()
    );

    // Rollback through the same API server rules: the operator applies stage 1 again (L2 on;
    // no policy selects anything yet), then rolls back; the old addresses come back and answer.
    sim.apply(fixtures::cilium_config(true, true));
    let followed = follow_all(&lab, &sim);
    let started = Instant::now();
    let back = block_on_in(&lab.nodes[0].ns.clone(), || async move {
        migrate::rollback(&dynkube().await, "kube-system", None).await
    })
    .expect("rollback");
    let took = started.elapsed();
    assert!(back > 0);
    assert_eq!(ips(&sim, "ingress", "traefik"), ["172.29.51.200"]);
    assert_eq!(ips(&sim, "web", "api"), ["172.29.51.230"]);
    for (ns, name) in reachable() {
        let a = address_of(&sim, ns, name).unwrap();
        assert!(a.ip().to_string().starts_with("172.29.51."), "{name}: {a}");
    }
    wait_for(
        "the old addresses to answer again",
        Duration::from_secs(30),
        || all_answer(&lab, &sim).then_some(()),
    );
    let restored = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let followed: Vec<(&str, Outcome)> = followed.into_iter().map(|(n, t)| (n, t.stop())).collect();
    for (name, o) in &followed {
        assert!(
            o.after(restored).failed().is_empty(),
            "{name}: failed after the rollback"
        );
    }
    let worst = report("rollback", &followed);
    eprintln!(
        "rollback wall time: {:.1} s, worst service outage {:.1} s",
        took.as_secs_f64(),
        worst.as_secs_f64()
    );
    let api = sim.get("v1", "Service", "web", "api").unwrap();
    assert!(api["metadata"]["annotations"]
        .get("lbipam.cilium.io/ips")
        .is_none());
    cilium.stop();
}
