//! `bgplb-bench`: figures for the agent's core.
//!
//! 1. Render + plan, pure, for 250 dual-stack nodes and 20 pools (no FRR needed).
//! 2. With real FRR (root): the time to apply a one-pool change and to add one node, with
//!    bgplb-agent (plan + one `vtysh -f` batch + read-back verification + write memory) versus
//!    frr-reload.py on the same FRR and the same change.
//!
//! 3. The live loop: a change in the simulated cluster until FRR has it, report throughput over
//!    mTLS, the agent daemon's memory idle and after a burst of reports, and the companion's
//!    memory with 50 nodes and 200 services.
//!
//! `bgplb-bench [--pure | --apply-only]`; `BGPLB_FRR=7.5` runs part 2 against FRR 7.5 (after
//! `scripts/frr-fetch 7.5`). Wall-clock figures from a shared machine: run it a few times and
//! compare medians.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use bgplb_frr::{plan::plan, render::render, Owned};
use bgplb_site::{gateway_config, GatewayInputs, NodeSpec, Pool, Site};
use bgplb_tests::{Lab, LabSpec};

/// A change to a site, applied forward and back.
type SiteChange = Box<dyn Fn(&mut Site)>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    pure();
    if args.iter().any(|a| a == "--pure") {
        return;
    }
    with_frr();
    if args.iter().any(|a| a == "--apply-only") {
        return;
    }
    live();
}

/// VmRSS and VmHWM (peak) of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn daemon_pid(lab: &Lab) -> u32 {
    let out = bgplb_tests::cmd::run(&["ip", "netns", "pids", &lab.gw]);
    out.split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .map(|c| c.contains("bgplb-agent") && c.contains("run"))
                .unwrap_or(false)
        })
        .expect("bgplb-agent run is running")
}

/// The live loop: cluster change → FRR, report throughput over mTLS, agent memory.
fn live() {
    use bgplb_tests::kubesim::{objects, KubeSim};
    println!("\n== live loop: simulated cluster → companion → agent (mTLS) → FRR");
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        ..LabSpec::default()
    });
    let site = lab.daemon_site();
    lab.write_site(&site);
    lab.start_daemon();
    let sim = KubeSim::new();
    sim.serve_cilium();
    for p in objects::reference_pools() {
        sim.apply(p);
    }
    for n in &lab.nodes {
        sim.apply(objects::node(&n.name, &n.ipv4, n.ipv6.as_deref(), true));
    }
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());
    lab.start_companion(0, 30);
    let configured = |addr: &str| {
        lab.running_config()
            .contains(&format!("neighbor {addr} peer-group"))
    };
    bgplb_tests::cmd::wait_for("the first report", Duration::from_secs(30), || {
        (!configured("172.29.51.11") || configured("172.29.51.12")).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let pid = daemon_pid(&lab);
    let (idle_rss, _) = memory(pid);

    let mut times = Vec::new();
    for i in 0..20 {
        let name = format!("bench-{i}");
        let addr = format!("172.29.51.{}", 100 + i);
        let t = Instant::now();
        sim.apply(objects::node(&name, &addr, None, true));
        bgplb_tests::cmd::wait_for("the new node in FRR", Duration::from_secs(30), || {
            configured(&addr).then_some(())
        });
        times.push(t.elapsed());
    }
    let worst = *times.iter().max().unwrap();
    println!(
        "cluster change → FRR config applied (20 node additions): median {}, worst {}  (companion debounce 200 ms, agent debounce 200 ms, 20 ms polling)",
        ms(median(times)),
        ms(worst)
    );

    // Throughput: reports over mTLS from one client, sequential, each a new generation.
    let ns = lab.nodes[1].ns.clone();
    let body: serde_json::Value =
        serde_json::from_str(include_str!("../../../proto/fixtures/report-home.json")).unwrap();
    let n = 300u64;
    let (elapsed, accepted) = bgplb_tests::netns::block_on_in(&ns, move || async move {
        let client = bgplb_tests::client::client(
            &bgplb_tests::client::pki_dir().join("ca.crt"),
            Some("companion-home"),
        );
        let base = 4_000_000_000_000u64;
        let t = Instant::now();
        let mut ok = 0;
        for g in 0..n {
            let mut r = body.clone();
            r["generation"] = (base + g).into();
            r["nodes"].as_array_mut().unwrap().truncate(2);
            let resp = client
                .put("https://172.29.51.1:7443/v1/clusters/home/report")
                .json(&r)
                .send()
                .await
                .expect("request");
            ok += u64::from(resp.status().as_u16() == 202);
        }
        (t.elapsed(), ok)
    });
    let (rss_after, peak) = memory(pid);
    println!(
        "report handling over mTLS: {n} reports in {} = {:.0} reports/s ({accepted} accepted; one connection, sequential, each stored in SQLite)",
        ms(elapsed),
        n as f64 / elapsed.as_secs_f64()
    );
    println!("agent memory: idle {idle_rss} KiB RSS; after {n} reports {rss_after} KiB RSS, peak {peak} KiB");

    // The companion with a cluster of 50 nodes and 200 LoadBalancer Services (100 IPv4, 100
    // IPv6, each with an EndpointSlice), all reported to the agent.
    let companion = process_in(&lab.nodes[0].ns, "bgplb-companion");
    let (companion_idle, _) = memory(companion);
    for i in 20..48 {
        sim.apply(objects::node(
            &format!("bench-{i}"),
            &format!("172.29.51.{}", 100 + i),
            None,
            true,
        ));
    }
    let node_names: Vec<String> = (0..48)
        .map(|i| format!("bench-{i}"))
        .chain(lab.nodes.iter().map(|n| n.name.clone()))
        .collect();
    for i in 0..200usize {
        let vip = if i < 100 {
            format!("172.29.52.{}", 100 + i)
        } else {
            format!("fd47:25e1:2f96:52:100::{:x}", i - 100 + 1)
        };
        let name = format!("svc-{i}");
        sim.apply(objects::service("bench", &name, &[vip.as_str()], 443));
        let on: Vec<&str> = node_names
            .iter()
            .skip(i % 50)
            .take(3)
            .map(String::as_str)
            .collect();
        sim.apply(objects::endpoint_slice("bench", &name, &on));
    }
    bgplb_tests::cmd::wait_for(
        "the agent to hold 50 nodes and 200 services",
        Duration::from_secs(60),
        || {
            let c = &lab.agent_status(1)["clusters"][0];
            (c["services"] == 200 && c["nodes"] == 50).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let (companion_rss, companion_peak) = memory(companion);
    println!(
        "companion memory: {companion_idle} KiB RSS with 2 nodes; with 50 nodes and 200 services reported {companion_rss} KiB RSS, peak {companion_peak} KiB"
    );
}

/// The pid of the process in namespace `ns` whose command line names `program`.
fn process_in(ns: &str, program: &str) -> u32 {
    let out = bgplb_tests::cmd::run(&["ip", "netns", "pids", ns]);
    out.split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .map(|c| c.contains(program))
                .unwrap_or(false)
        })
        .unwrap_or_else(|| panic!("no {program} in {ns}"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A site with `nodes` dual-stack nodes in a /22 and `pools` pools (IPv4 and IPv6 halves).
fn big_site(nodes: usize, pools: usize) -> (Site, GatewayInputs) {
    let mut site = bgplb_site::parse(bgplb_tests::lab::REFERENCE_SITE).expect("reference site");
    site.clusters[0].node_subnets = vec![
        "172.29.48.0/22".parse().unwrap(),
        "fd47:25e1:2f96:51::/64".parse().unwrap(),
    ];
    site.clusters[0].max_nodes = 1000;
    site.clusters[0].nodes.clear();
    site.pools = (0..pools)
        .map(|i| {
            let block = if i % 2 == 0 {
                let start = 10 + i * 10;
                format!("172.29.52.{start}-172.29.52.{}", start + 7)
            } else {
                format!("fd47:25e1:2f96:52:{:x}::/120", 0x100 + i)
            };
            Pool {
                name: format!("pool-{i}"),
                blocks: vec![block],
                disabled: false,
                cluster: None,
            }
        })
        .collect();
    assert!(site.validate().is_empty(), "{:?}", site.validate());
    let nodes: Vec<NodeSpec> = (0..nodes)
        .map(|i| NodeSpec {
            name: format!("node-{i}"),
            ipv4: Some(IpAddr::from([
                172,
                29,
                48 + (i / 250) as u8,
                (i % 250 + 2) as u8,
            ])),
            ipv6: Some(
                format!("fd47:25e1:2f96:51::{:x}", 0x100 + i)
                    .parse()
                    .unwrap(),
            ),
            shutdown: false,
        })
        .collect();
    let mut inputs = GatewayInputs::from_site(&site, None);
    inputs.nodes.insert("home".into(), nodes);
    (site, inputs)
}

fn pure() {
    println!("== render + plan, 250 dual-stack nodes, 20 pools (pure, median of 50)");
    let (site, inputs) = big_site(250, 20);
    let text = render(&gateway_config(&site, &inputs));
    let mut changed_inputs = inputs.clone();
    changed_inputs.nodes.get_mut("home").unwrap().pop();
    let running = render(&gateway_config(&site, &changed_inputs));
    let (mut r, mut p, mut np) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..50 {
        let t = Instant::now();
        let desired = render(&gateway_config(&site, &inputs));
        r.push(t.elapsed());
        let t = Instant::now();
        let result = plan(&Owned::from_text(&desired), &Owned::from_text(&running)).unwrap();
        p.push(t.elapsed());
        assert_eq!(result.changes.len(), 4);
        let t = Instant::now();
        let none = plan(&Owned::from_text(&desired), &Owned::from_text(&desired)).unwrap();
        np.push(t.elapsed());
        assert!(none.is_empty());
    }
    println!(
        "config: {} lines, {} bytes, {} neighbours",
        text.lines().count(),
        text.len(),
        500
    );
    println!("render:                     {}", ms(median(r)));
    println!("plan (one node added):      {}  (4 changes)", ms(median(p)));
    println!("plan (nothing to change):   {}", ms(median(np)));
}

fn with_frr() {
    let frr = bgplb_tests::frr::build();
    // frr-reload.py comes with the system's FRR only (frr-pythontools).
    let compare = frr.is_system();
    println!(
        "\n== apply against real FRR {}: bgplb-agent{} (50 configured nodes, median of 5)",
        frr.version,
        if compare { " vs frr-reload.py" } else { "" }
    );
    let lab = Lab::start(LabSpec {
        nodes: 0,
        ..LabSpec::default()
    });
    let mut site = lab.site();
    site.clusters[0].nodes = (0..50)
        .map(|i| bgplb_site::StaticNode {
            name: format!("node-{i}"),
            ipv4: Some(IpAddr::from([172, 29, 51, 100 + i as u8])),
            ipv6: Some(
                format!("fd47:25e1:2f96:51::{:x}", 0x100 + i)
                    .parse()
                    .unwrap(),
            ),
        })
        .collect();
    lab.write_site(&site);
    lab.agent_ok(&["apply"]);

    let extra_pool = Pool {
        name: "bench".into(),
        blocks: vec!["172.29.52.230-172.29.52.239".into()],
        disabled: false,
        cluster: None,
    };
    let extra_node = bgplb_site::StaticNode {
        name: "node-new".into(),
        ipv4: Some("172.29.51.250".parse().unwrap()),
        ipv6: Some("fd47:25e1:2f96:51::250".parse().unwrap()),
    };
    let variants: [(&str, SiteChange); 2] = [
        (
            "one-pool change",
            Box::new(move |s: &mut Site| s.pools.push(extra_pool.clone())),
        ),
        (
            "add one node",
            Box::new(move |s: &mut Site| s.clusters[0].nodes.push(extra_node.clone())),
        ),
    ];
    for (name, change) in &variants {
        let mut changed = site.clone();
        change(&mut changed);
        let (mut ours, mut ours_internal, mut reload) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            // bgplb-agent: forward, then back.
            for s in [&changed, &site] {
                lab.write_site(s);
                let t = Instant::now();
                let out = lab.agent_ok(&["apply", "--json"]);
                ours.push(t.elapsed());
                let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                ours_internal.push(Duration::from_millis(
                    v["duration_ms"].as_u64().unwrap_or(0),
                ));
            }
            // frr-reload.py: the same change, the same FRR.
            for s in [&changed, &site].into_iter().filter(|_| compare) {
                let file = lab.dir.path().join("reload.conf");
                std::fs::write(&file, full_config(&lab, s)).unwrap();
                let t = Instant::now();
                bgplb_tests::cmd::run(&[
                    "python3",
                    "/usr/lib/frr/frr-reload.py",
                    "--reload",
                    "--pathspace",
                    &lab.gw,
                    "--bindir",
                    "/usr/bin",
                    "--rundir",
                    &lab.dir.path().display().to_string(),
                    &file.display().to_string(),
                ]);
                reload.push(t.elapsed());
            }
            // Both must have left FRR on the same configuration.
            lab.write_site(&site);
            let plan = lab.agent_ok(&["plan"]);
            assert!(
                plan.contains("nothing to change"),
                "frr-reload.py left a different config: {plan}"
            );
        }
        println!(
            "{name:16} bgplb-agent apply (whole command): {}   of which plan+apply+verify: {}   frr-reload.py: {}",
            ms(median(ours)),
            ms(median(ours_internal)),
            if compare {
                ms(median(reload))
            } else {
                "n/a".to_string()
            }
        );
    }
}

/// What frr-reload.py needs: the complete configuration, the lab's base lines plus bgplb's part.
fn full_config(lab: &Lab, site: &Site) -> String {
    let running = lab.running_config();
    let base: Vec<&str> = running
        .lines()
        .take_while(|l| {
            !l.starts_with("ip prefix-list")
                && !l.starts_with("router bgp")
                && !l.starts_with("bgp community-list")
                && !l.starts_with("route-map")
        })
        .filter(|l| !l.starts_with("Building") && !l.starts_with("Current configuration"))
        .collect();
    let inputs = GatewayInputs::from_site(site, None);
    format!(
        "{}\n{}",
        base.join("\n"),
        render(&gateway_config(site, &inputs))
    )
}
