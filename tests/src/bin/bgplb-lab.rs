//! `bgplb-lab demo [--keep]`: the self-contained lab behind the README's main command.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bgplb_tests::kubesim::{objects, KubeSim};
use bgplb_tests::{Lab, LabSpec};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo(args.iter().any(|a| a == "--keep")),
        _ => {
            eprintln!("usage: bgplb-lab demo [--keep]");
            std::process::exit(64);
        }
    }
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn demo(keep: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).expect("Ctrl-C handler");
    }

    step("starting the lab: a gateway namespace with FRR, three nodes with GoBGP (AS 64513), a client");
    let mut lab = Lab::start(LabSpec {
        nodes: 3,
        client: true,
        ..LabSpec::default()
    });
    println!(
        "gateway namespace {}, files in {}",
        lab.gw,
        lab.dir.path().display()
    );

    step(
        "bgplb-agent run on the gateway (mTLS API on 172.29.51.1:7443, metrics on 127.0.0.1:9478)",
    );
    let site = lab.daemon_site();
    lab.write_site(&site);
    print!("{}", lab.agent_ok(&["check-config"]));
    lab.start_daemon();

    step("a simulated cluster (Kubernetes API stand-in): 3 nodes, Cilium 1.18, the reference pools, 2 services");
    let sim = KubeSim::new();
    sim.serve_cilium();
    sim.apply(objects::cilium_daemonset("1.18.2"));
    for p in objects::reference_pools() {
        sim.apply(p);
    }
    sim.apply(objects::bgp_cluster_config("bgplb-home"));
    for n in &lab.nodes {
        sim.apply(objects::node(&n.name, &n.ipv4, n.ipv6.as_deref(), true));
    }
    sim.apply(objects::service_with_policy(
        "web",
        "nginx",
        &["172.29.52.100"],
        8080,
        "Local",
    ));
    sim.apply(objects::endpoint_slice("web", "nginx", &["k8s-1", "k8s-2"]));
    sim.apply(objects::service(
        "ingress",
        "traefik",
        &["172.29.52.200", "fd47:25e1:2f96:52:100::1"],
        80,
    ));
    sim.apply(objects::endpoint_slice(
        "ingress",
        "traefik",
        &["k8s-1", "k8s-2", "k8s-3"],
    ));
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().expect("addr"));

    step("bgplb-companion run in the cluster (node k8s-1), reporting to the agent over mTLS");
    lab.start_companion(0, 10);

    step("the nodes announce the VIPs (as Cilium would) and serve TCP on them");
    let community = ["64512:100"];
    for i in [0, 1] {
        lab.serve_vip(i, "172.29.52.100", 8080);
        lab.nodes[i].announce("172.29.52.100/32", &community);
    }
    for i in [0, 1, 2] {
        lab.serve_vip(i, "172.29.52.200", 80);
        lab.serve_vip(i, "fd47:25e1:2f96:52:100::1", 80);
        lab.nodes[i].announce("172.29.52.200/32", &community);
        lab.nodes[i].announce("fd47:25e1:2f96:52:100::1/128", &community);
    }
    let addresses = lab.all_node_addresses();
    lab.wait_established(&addresses.iter().map(String::as_str).collect::<Vec<_>>());
    lab.wait_route("172.29.52.100", &["172.29.51.11", "172.29.51.12"]);
    lab.wait_route(
        "172.29.52.200",
        &["172.29.51.11", "172.29.51.12", "172.29.51.13"],
    );
    lab.wait_route(
        "fd47:25e1:2f96:52:100::1",
        &[
            "fd47:25e1:2f96:51::11",
            "fd47:25e1:2f96:51::12",
            "fd47:25e1:2f96:51::13",
        ],
    );

    // The daemon re-checks the kernel when routes change; give it a moment after the last one.
    std::thread::sleep(Duration::from_secs(2));
    step("bgplb-agent status");
    print!("{}", lab.agent_ok(&["status"]));

    step("TCP requests from the client namespace to the VIPs");
    for (vip, port) in [
        ("172.29.52.100", 8080),
        ("172.29.52.200", 80),
        ("fd47:25e1:2f96:52:100::1", 80),
    ] {
        match lab.tcp_from_client(vip, port) {
            Ok(node) => println!("{vip} port {port}: answered by {node}"),
            Err(e) => println!("{vip} port {port}: FAILED: {e}"),
        }
    }

    step("bgplb-agent history");
    print!("{}", lab.agent_ok(&["history"]));

    if keep {
        println!("\nThe lab stays up. Try:");
        println!(
            "  ip netns exec {gw} vtysh -N {gw} -c 'show bgp summary'",
            gw = lab.gw
        );
        println!(
            "  ip netns exec {gw} curl -s 127.0.0.1:9478/metrics | grep bgplb_",
            gw = lab.gw
        );
        println!("Press Ctrl-C to tear it down.");
        for _ in 0..(24 * 3600 * 10) {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    step("tearing down");
    drop(lab);
    println!("done: namespaces and processes removed");
}
