//! The planner against the real FRR, for random models: a sequence of random sites (nodes of
//! both families coming and going, a second cluster, pools disabled, every BGP policy knob,
//! password, ECMP) is rendered, and each plan, from whatever FRR runs after the previous one
//! (with the operator's own lines beside it), is applied with `vtysh -f`. FRR must take every
//! script, and afterwards plan nothing more: the plan reaches the desired configuration. Each
//! model's rendered text is also a fixed point of parse → owned text → parse. Deterministic
//! (seeded); a failure names the case and shows the script.

use std::time::SystemTime;

use bgplb_frr::churn::RouteMapDeletions;
use bgplb_frr::{plan::plan, render, Owned};
use bgplb_site::{GatewayInputs, Site, StaticNode};
use bgplb_tests::lab::{vtysh, REFERENCE_SITE};
use bgplb_tests::{Lab, LabSpec};

/// Models per run: `BGPLB_PLAN_CASES`, default 100 (the FRR matrix in scripts/test runs 40).
fn cases() -> usize {
    std::env::var("BGPLB_PLAN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// `percent` % of the time.
fn chance(rng: &mut fastrand::Rng, percent: u64) -> bool {
    rng.u64(..100) < percent
}

/// A random site the reference site's validation accepts, and the inputs to render it with.
fn random_model(rng: &mut fastrand::Rng) -> (Site, GatewayInputs) {
    loop {
        let mut site = bgplb_site::parse(REFERENCE_SITE).expect("reference site");
        let mut nodes = Vec::new();
        for i in 1..=6 {
            if !chance(rng, 60) {
                continue;
            }
            let ipv4 = chance(rng, 80).then(|| format!("172.29.51.{}", 10 + i).parse().unwrap());
            let ipv6 =
                chance(rng, 60).then(|| format!("fd47:25e1:2f96:51::{}", 10 + i).parse().unwrap());
            if ipv4.is_some() || ipv6.is_some() {
                nodes.push(StaticNode {
                    name: format!("k8s-{i}"),
                    ipv4,
                    ipv6,
                });
            }
        }
        site.clusters[0].nodes = nodes;
        if chance(rng, 30) {
            let mut lab = site.clusters[0].clone();
            lab.name = "lab".into();
            lab.asn = 64514;
            lab.node_subnets = vec!["172.29.53.0/24".parse().unwrap()];
            lab.reserved = Vec::new();
            lab.nodes = Vec::new();
            for i in 1..=3 {
                if chance(rng, 50) {
                    lab.nodes.push(StaticNode {
                        name: format!("lab-{i}"),
                        ipv4: Some(format!("172.29.53.{}", 10 + i).parse().unwrap()),
                        ipv6: None,
                    });
                }
            }
            site.clusters.push(lab);
        }
        for pool in &mut site.pools {
            if chance(rng, 20) {
                pool.disabled = !pool.disabled;
            }
        }
        let b = &mut site.bgp;
        b.require_community = chance(rng, 70);
        b.keepalive = 1 + rng.u64(..10) as u16;
        b.hold = b.keepalive * (3 + rng.u64(..3) as u16);
        b.connect_retry = 1 + rng.u64(..30) as u16;
        b.graceful_restart = chance(rng, 60);
        b.restart_time = if chance(rng, 50) {
            120
        } else {
            1 + rng.u64(..3600) as u32
        };
        b.stalepath_time = if chance(rng, 50) {
            360
        } else {
            1 + rng.u64(..3600) as u32
        };
        b.maximum_prefix = 1 + rng.u64(..1000) as u32;
        b.maximum_prefix_restart = rng.u64(..30) as u16;
        b.ebgp_multihop = chance(rng, 20).then(|| 2 + rng.u64(..4) as u8);
        b.maximum_paths = chance(rng, 30).then(|| 1 + rng.u64(..16) as u16);
        if chance(rng, 20) {
            site.gateway.router_id = Some("172.29.51.254".parse().unwrap());
        }
        if !site.validate().is_empty() {
            continue;
        }
        let password = chance(rng, 30).then(|| format!("pw-{}", rng.u64(..1000)));
        let mut inputs = GatewayInputs::from_site(&site, password);
        inputs.ecmp = chance(rng, 80);
        inputs.frr = bgplb_tests::frr::build().version;
        return (site, inputs);
    }
}

#[test]
fn plans_for_random_models_reach_them_on_the_real_frr() {
    let lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    // The operator's own lines, which every plan must leave alone.
    let operator = [
        "ip prefix-list UPLINK-OUT seq 5 permit 10.0.0.0/8",
        "bgp community-list standard UPLINK seq 5 permit 65000:1",
        "route-map UPLINK-OUT permit 10",
    ];
    lab.vtysh_config(&operator);
    let version = bgplb_tests::frr::build().version;
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    let script_file = lab.dir.path().join("case.vtysh");
    let mut deletions = RouteMapDeletions::default();
    for case in 0..cases() {
        let (site, inputs) = random_model(&mut rng);
        let text = render::render(&bgplb_site::gateway_config(&site, &inputs));
        let desired = Owned::from_text(&text);
        let again = Owned::from_text(&desired.to_text());
        assert_eq!(
            again.to_text(),
            desired.to_text(),
            "case {case}: the owned text is not a fixed point:\n{text}"
        );
        let running = lab.running_config();
        let have = Owned::from_text(&running);
        let p = plan(&desired, &have)
            .unwrap_or_else(|e| panic!("case {case}: no plan: {e}\n{text}"))
            .for_frr(&have, version);
        let script = p.script();
        // As the agent does on FRR before 8.3: a route-map deleted by name moments ago is left
        // alone until FRR has processed the deletion, or zebra and bgpd crash.
        if !version.survives_route_map_churn() {
            if let Some((wait, _)) = deletions.wait_before(&script, SystemTime::now()) {
                std::thread::sleep(wait);
            }
        }
        std::fs::write(&script_file, &script).unwrap();
        let out = bgplb_tests::cmd::output(&[
            vtysh(),
            "-N",
            &lab.gw,
            "-f",
            &script_file.display().to_string(),
        ]);
        deletions.record(&script, SystemTime::now());
        assert!(
            out.status.success(),
            "case {case}: FRR refused the plan:\n{}{}\nscript:\n{script}\ndesired:\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let after = lab.running_config();
        let rest = plan(&desired, &Owned::from_text(&after))
            .expect("plan")
            .for_frr(&Owned::from_text(&after), version);
        assert!(
            rest.is_empty(),
            "case {case}: the plan did not reach the desired configuration; still to do:\n{rest}\n\
             script was:\n{script}\nrunning before:\n{running}\nrunning after:\n{after}"
        );
        for line in operator {
            assert!(
                after.lines().any(|l| l == line),
                "case {case}: the operator's `{line}` is gone:\n{after}"
            );
        }
    }
    lab.assert_frr_survived_its_delayed_processing();
}
