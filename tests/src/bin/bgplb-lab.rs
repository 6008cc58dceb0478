//! `bgplb-lab demo [--keep]`: the self-contained lab behind the README's main command.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

    step("starting the lab: gateway namespace with FRR, three nodes with GoBGP (AS 64513)");
    let lab = Lab::start(LabSpec {
        nodes: 3,
        ..LabSpec::default()
    });
    println!(
        "gateway namespace {}, FRR instance {}, files in {}",
        lab.gw,
        lab.gw,
        lab.dir.path().display()
    );

    step("bgplb-agent check-config, then apply (the reference site with the lab's nodes)");
    let site = lab.site();
    lab.write_site(&site);
    print!("{}", lab.agent_ok(&["check-config"]));
    print!("{}", lab.agent_ok(&["apply"]));
    let addresses = lab.all_node_addresses();
    lab.wait_established(&addresses.iter().map(String::as_str).collect::<Vec<_>>());

    step("nodes announce VIPs (GoBGP, community 64512:100), and one route the gateway must refuse");
    let community = ["64512:100"];
    lab.nodes[0].announce("172.29.52.100/32", &community);
    lab.nodes[1].announce("172.29.52.100/32", &community);
    lab.nodes[2].announce("172.29.52.200/32", &community);
    lab.nodes[0].announce("fd47:25e1:2f96:52:100::1/128", &community);
    lab.nodes[1].announce("fd47:25e1:2f96:52:100::1/128", &community);
    lab.nodes[2].announce("10.0.0.0/8", &community);
    println!("k8s-1, k8s-2: 172.29.52.100 and fd47:25e1:2f96:52:100::1 (ECMP); k8s-3: 172.29.52.200 and 10.0.0.0/8");
    lab.wait_route("172.29.52.100", &["172.29.51.11", "172.29.51.12"]);
    lab.wait_route("172.29.52.200", &["172.29.51.13"]);
    lab.wait_route(
        "fd47:25e1:2f96:52:100::1",
        &["fd47:25e1:2f96:51::11", "fd47:25e1:2f96:51::12"],
    );

    step("bgplb-agent status");
    print!("{}", lab.agent_ok(&["status"]));

    step("the gateway's kernel routes from BGP");
    for family in ["-4", "-6"] {
        for r in lab
            .kernel_routes(family)
            .into_iter()
            .filter(|r| r.protocol == "bgp")
        {
            let via: Vec<String> = r.nexthops.into_iter().collect();
            println!("{} via {}", r.dst, via.join(", "));
        }
    }

    step("bgplb-agent apply again: nothing to change");
    print!("{}", lab.agent_ok(&["apply"]));
    step("bgplb-agent history");
    print!("{}", lab.agent_ok(&["history"]));

    if keep {
        println!(
            "\nThe lab stays up. Try: ip netns exec {} vtysh -N {} -c 'show bgp summary'",
            lab.gw, lab.gw
        );
        println!("Press Ctrl-C to tear it down.");
        // Bounded: at most a day.
        for _ in 0..(24 * 3600 * 10) {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    step("tearing down");
    drop(lab);
    println!("done: namespaces and daemons removed");
}
