//! The soak: random cluster changes (nodes joining and leaving, services appearing, moving and
//! going, a pool enabled and disabled) made in the Kubernetes API stand-in, watched by the real
//! companion, reported to the real agent daemon, applied to the real FRR. Changes come in bursts
//! as fast as the stand-in takes them (the loop coalesces them), with an isolated change every
//! `isolated_every` changes whose time from the cluster to FRR is measured (p50/p99). At the end
//! FRR must run exactly the desired configuration, k8s-1's session (never removed) must never
//! have been reset, and the agent's RSS and database are measured (bounded by retention).
//!
//! `tests/tests/soak.rs` runs a CI size; `bgplb-soak` (a benchmark binary) the full 10,000.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::cmd::wait_for;
use crate::kubesim::{objects, KubeSim};
use crate::{Lab, LabSpec};

#[derive(Debug, Clone)]
pub struct Options {
    pub changes: usize,
    /// Every this many changes, one is made alone and its time to FRR measured.
    pub isolated_every: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub changes: usize,
    pub seconds: f64,
    pub applies: f64,
    /// Isolated changes' time from the cluster to FRR, sorted.
    pub latencies: Vec<Duration>,
    pub rss_kib_start: u64,
    pub rss_kib_end: u64,
    pub rss_kib_max: u64,
    pub db_bytes_end: u64,
    pub generations_kept: usize,
}

impl Figures {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }

    pub fn print(&self) {
        println!(
            "soak: {} changes in {:.1} s: {:.1} changes/s, {:.3} applies per change",
            self.changes,
            self.seconds,
            self.changes as f64 / self.seconds,
            self.applies / self.changes as f64
        );
        println!(
            "soak: cluster change → FRR (isolated, n={}): p50 {:?}, p99 {:?}, max {:?}",
            self.latencies.len(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.latencies.last().copied().unwrap_or_default()
        );
        println!(
            "soak: agent RSS {} KiB at the start, {} KiB at the end, {} KiB at most; state.db {} KiB with {} generations kept",
            self.rss_kib_start,
            self.rss_kib_end,
            self.rss_kib_max,
            self.db_bytes_end / 1024,
            self.generations_kept
        );
    }
}

/// The cluster as the soak made it, and what FRR must show for it.
struct Model {
    /// Nodes 2..=4 present (k8s-1 always is: the companion runs there).
    nodes: BTreeSet<usize>,
    /// Service k → its VIP (last octet in the bgp-default pool).
    services: std::collections::BTreeMap<usize, u8>,
    ingress_enabled: bool,
}

/// What FRR shows of the model: the neighbours, and whether the ingress pool is accepted.
fn frr_signature(running: &str) -> (BTreeSet<String>, bool) {
    let neighbors = running
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["neighbor", addr, "peer-group", group] if group.starts_with("BGPLB-") => {
                    Some(addr.to_string())
                }
                _ => None,
            }
        })
        .collect();
    // 172.29.52.220 is only in the ingress pool (the rest merges with bgp-default).
    (neighbors, running.contains("permit 172.29.52.220/32"))
}

impl Model {
    fn signature(&self, lab: &Lab) -> (BTreeSet<String>, bool) {
        let mut neighbors: BTreeSet<String> = BTreeSet::from([lab.nodes[0].ipv4.clone()]);
        for i in &self.nodes {
            neighbors.insert(lab.nodes[i - 1].ipv4.clone());
        }
        (neighbors, self.ingress_enabled)
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Makes one random change in the stand-in; returns whether FRR must show it.
fn change(sim: &KubeSim, lab: &Lab, model: &mut Model, rng: &mut fastrand::Rng) -> bool {
    match rng.u64(..10) {
        // A node joins or leaves.
        0..=2 => {
            let i = 2 + rng.u64(..3) as usize;
            let n = &lab.nodes[i - 1];
            if model.nodes.remove(&i) {
                sim.delete("v1", "Node", "", &n.name);
            } else {
                model.nodes.insert(i);
                sim.apply(objects::node(&n.name, &n.ipv4, None, true));
            }
            true
        }
        // The ingress pool is disabled or enabled again.
        3 => {
            model.ingress_enabled = !model.ingress_enabled;
            sim.apply(objects::pool(
                "bgp-ingress",
                &["172.29.52.200-172.29.52.220"],
                !model.ingress_enabled,
            ));
            true
        }
        // A service appears, moves to another VIP, or goes.
        _ => {
            let k = rng.u64(..20) as usize;
            let name = format!("svc-{k}");
            if model.services.contains_key(&k) && rng.u64(..3) == 0 {
                model.services.remove(&k);
                sim.delete("v1", "Service", "soak", &name);
            } else {
                let octet = 100 + rng.u64(..100) as u8;
                model.services.insert(k, octet);
                let ip = format!("172.29.52.{octet}");
                sim.apply(objects::service("soak", &name, &[ip.as_str()], 80));
            }
            false
        }
    }
}

/// Runs the soak in a lab of its own.
pub fn run(options: &Options) -> Figures {
    let mut lab = Lab::start(LabSpec {
        nodes: 4,
        ipv6: false,
        ..LabSpec::default()
    });
    let mut site = lab.daemon_site();
    site.agent.retention.generations = 50;
    site.agent.retention.events = 200;
    // The site's own static nodes: only k8s-1 until the cluster reports.
    site.clusters[0].nodes.truncate(1);
    lab.write_site(&site);
    lab.start_daemon();
    let pid = lab.daemon_pid().expect("the daemon runs");

    let sim = KubeSim::with_cilium("1.18.2");
    sim.apply(objects::bgp_cluster_config("bgplb-home"));
    let n1 = &lab.nodes[0];
    sim.apply(objects::node(&n1.name, &n1.ipv4, None, true));
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());
    lab.start_companion(0, 30);
    let mut model = Model {
        nodes: BTreeSet::new(),
        services: Default::default(),
        ingress_enabled: true,
    };
    let settle = |model: &Model, what: &str| {
        let want = model.signature(&lab);
        wait_for(what, Duration::from_secs(120), || {
            (frr_signature(&lab.running_config()) == want).then_some(())
        });
    };
    settle(&model, "the first report in FRR");
    lab.wait_established(&[lab.nodes[0].ipv4.as_str()]);
    let k1 = lab.nodes[0].ipv4.clone();
    let k1_counters = lab.session_counters()[&k1];
    let applied = |lab: &Lab| lab.agent_metric("bgplb_applies_total{result=\"applied\"}");
    let applies_before = applied(&lab);
    let mut figures = Figures {
        changes: options.changes,
        rss_kib_start: rss_kib(pid),
        ..Figures::default()
    };
    // The same seed makes the same changes.
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let started = Instant::now();
    let mut made = 0;
    while made < options.changes {
        let isolated = options.isolated_every > 0 && made % options.isolated_every == 0;
        if isolated {
            settle(&model, "FRR to catch up before an isolated change");
            // Only a change FRR shows is timed.
            let t0;
            loop {
                let before = Instant::now();
                let shows = change(&sim, &lab, &mut model, &mut rng);
                made += 1;
                if shows || made >= options.changes {
                    t0 = before;
                    break;
                }
            }
            let want = model.signature(&lab);
            wait_for(
                "an isolated change in FRR",
                Duration::from_secs(120),
                || (frr_signature(&lab.running_config()) == want).then_some(()),
            );
            figures.latencies.push(t0.elapsed());
        } else {
            change(&sim, &lab, &mut model, &mut rng);
            made += 1;
        }
        if made % 50 == 0 {
            figures.rss_kib_max = figures.rss_kib_max.max(rss_kib(pid));
        }
    }
    settle(&model, "FRR to run the soak's final state");
    figures.seconds = started.elapsed().as_secs_f64();
    // Let the last reconcile finish, then FRR must run exactly the desired configuration.
    std::thread::sleep(Duration::from_secs(2));
    let plan = lab.agent_ok(&["plan"]);
    assert!(
        plan.contains("nothing to change"),
        "after the soak FRR does not run the desired configuration:\n{plan}"
    );
    let counters = lab.session_counters()[&k1];
    assert_eq!(
        counters, k1_counters,
        "k8s-1's session (never removed) was reset during the soak"
    );
    figures.applies = applied(&lab) - applies_before;
    figures.rss_kib_end = rss_kib(pid);
    figures.rss_kib_max = figures.rss_kib_max.max(figures.rss_kib_end);
    let db = site.agent.data_dir.join("state.db");
    figures.db_bytes_end = ["", "-wal"]
        .iter()
        .map(|s| {
            std::fs::metadata(format!("{}{s}", db.display()))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    let history: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["history", "--json", "--limit", "100000"]))
            .expect("history");
    figures.generations_kept = history.as_array().map_or(0, Vec::len);
    figures.latencies.sort();
    figures
}
