//! Cilium's announcements and datapath as the lab plays them, driven by what the Kubernetes
//! stand-in holds (its LB-IPAM assigns the addresses):
//!
//! * BGP: while `cilium-config` enables the BGP control plane and a `CiliumBGPClusterConfig`
//!   (or peering policy) exists, every node's GoBGP
//!   announces the LoadBalancer addresses of the Services Cilium's BGP control plane advertises
//!   (no class or its own, not `bgplb.io/no-advertise`), with the community, as the rendered
//!   advertisement says; an address no Service holds is withdrawn.
//! * L2: while `cilium-config` enables L2 announcements and a `CiliumL2AnnouncementPolicy`
//!   exists, the first node answers ARP for the node
//!   network addresses Services hold (the address on its `eth0`); otherwise it stops.
//! * The datapath: every node answers TCP on each Service's first port at its addresses.
//!
//! A thread polls the stand-in every 200 ms until [`Cilium::stop`] (or the lab ends).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd;
use crate::kubesim::KubeSim;
use crate::lab::{gobgp_in, serve_vip_in};

const COMMUNITY: &str = "64512:100";
const NODE_NETWORK: &str = "172.29.51.";

pub struct Cilium {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    /// What is announced now (BGP) and held at L2, for tests.
    pub state: Arc<Mutex<(BTreeSet<String>, BTreeSet<String>)>>,
}

/// `ip` as a host prefix.
fn host(ip: &str) -> String {
    if ip.contains(':') {
        format!("{ip}/128")
    } else {
        format!("{ip}/32")
    }
}

/// GoBGP's address family of `ip`.
fn afi(ip: &str) -> &'static str {
    if ip.contains(':') {
        "ipv6"
    } else {
        "ipv4"
    }
}

/// What Cilium would make of the stand-in's objects: (BGP addresses, L2 addresses, served).
fn desired(sim: &KubeSim) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<(String, u16)>) {
    // What the Helm values turned on (`cilium-config`, which the agents read at start): the BGP
    // control plane and L2 announcements each do nothing while their flag is off.
    let flag = |key: &str| {
        sim.list("ConfigMap").iter().any(|c| {
            c.pointer("/metadata/name").and_then(Value::as_str) == Some("cilium-config")
                && c.pointer(&format!("/data/{key}")).and_then(Value::as_str) == Some("true")
        })
    };
    let bgp_on = flag("enable-bgp-control-plane")
        && (!sim.list("CiliumBGPClusterConfig").is_empty()
            || !sim.list("CiliumBGPPeeringPolicy").is_empty());
    let l2_on =
        flag("enable-l2-announcements") && !sim.list("CiliumL2AnnouncementPolicy").is_empty();
    let (mut bgp, mut l2, mut served) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for s in sim.list("Service") {
        if s.pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer") {
            continue;
        }
        let class = s.pointer("/spec/loadBalancerClass").and_then(Value::as_str);
        let no_advertise = s
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .is_some_and(|l| l.contains_key("bgplb.io/no-advertise"));
        let port = s
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .and_then(|p| p.first())
            .and_then(|p| p["port"].as_u64())
            .and_then(|p| u16::try_from(p).ok());
        for ip in s["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["ip"].as_str())
        {
            if let Some(p) = port {
                served.insert((ip.to_string(), p));
            }
            if ip.starts_with(NODE_NETWORK) {
                if l2_on && class != Some("io.cilium/bgp-control-plane") {
                    l2.insert(ip.to_string());
                }
            } else if bgp_on
                && !no_advertise
                && class.is_none_or(|c| c == "io.cilium/bgp-control-plane")
            {
                bgp.insert(ip.to_string());
            }
        }
    }
    (bgp, l2, served)
}

impl Cilium {
    /// Starts playing Cilium for the lab's nodes (`(name, namespace)`), until `lab_stop`.
    pub fn start(sim: KubeSim, nodes: Vec<(String, String)>, lab_stop: Arc<AtomicBool>) -> Cilium {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new((BTreeSet::new(), BTreeSet::new())));
        let (st, shared) = (stop.clone(), state.clone());
        let handle = std::thread::spawn(move || {
            let mut announced: BTreeSet<String> = BTreeSet::new();
            let mut held: BTreeSet<String> = BTreeSet::new();
            let mut serving: BTreeSet<(String, u16)> = BTreeSet::new();
            let mut on_lo: BTreeSet<String> = BTreeSet::new();
            // Bounded: an hour at most.
            let limit = Instant::now() + Duration::from_secs(3600);
            while !st.load(Ordering::SeqCst)
                && !lab_stop.load(Ordering::SeqCst)
                && Instant::now() < limit
            {
                let (bgp, l2, served) = desired(&sim);
                for (ip, port) in served.difference(&serving.clone()) {
                    for (name, ns) in &nodes {
                        serve_vip_in(ns, name, ip, *port, lab_stop.clone());
                    }
                    serving.insert((ip.clone(), *port));
                    on_lo.insert(ip.clone());
                }
                // An address back after a withdrawal: its listeners still run. A node-network
                // address lives only while it is announced at L2.
                for (ip, _) in &served {
                    if ip.starts_with(NODE_NETWORK) && !l2.contains(ip) {
                        continue;
                    }
                    if on_lo.insert(ip.clone()) {
                        for (_, ns) in &nodes {
                            crate::lab::put_on_loopback(ns, ip);
                        }
                    }
                }
                for ip in bgp.difference(&announced.clone()) {
                    for (_, ns) in &nodes {
                        gobgp_in(
                            ns,
                            &[
                                "global",
                                "rib",
                                "add",
                                "-a",
                                afi(ip),
                                &host(ip),
                                "community",
                                COMMUNITY,
                            ],
                        );
                    }
                    announced.insert(ip.clone());
                }
                for ip in announced.difference(&bgp.clone()) {
                    for (_, ns) in &nodes {
                        gobgp_in(ns, &["global", "rib", "del", "-a", afi(ip), &host(ip)]);
                    }
                }
                announced.retain(|ip| bgp.contains(ip));
                let first = &nodes[0].1;
                for ip in l2.difference(&held.clone()) {
                    cmd::quiet(&[
                        "ip",
                        "-n",
                        first,
                        "addr",
                        "add",
                        &format!("{ip}/32"),
                        "dev",
                        "eth0",
                    ]);
                    held.insert(ip.clone());
                }
                for ip in held.difference(&l2.clone()) {
                    cmd::quiet(&[
                        "ip",
                        "-n",
                        first,
                        "addr",
                        "del",
                        &format!("{ip}/32"),
                        "dev",
                        "eth0",
                    ]);
                    // The datapath forgets it too.
                    for (_, ns) in &nodes {
                        cmd::quiet(&["ip", "-n", ns, "addr", "del", &host(ip), "dev", "lo"]);
                    }
                    on_lo.remove(ip);
                }
                held.retain(|ip| l2.contains(ip));
                *shared.lock().unwrap_or_else(|p| p.into_inner()) =
                    (announced.clone(), held.clone());
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Cilium {
            stop,
            handle: Some(handle),
            state,
        }
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Cilium {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
