//! The Kubernetes side of a home cluster still on L2 announcements, as the migration tests (with
//! a stand-in agent, and end to end in the lab) start from: an L2 pool on the node network, an
//! L2 announcement policy, and every kind of Service a real cluster has.

use std::sync::atomic::{AtomicBool, Ordering};

use bgplb_companion::agent::AgentApi;
use bgplb_proto::{AgentStatus, PeerStatus, ProbeOutcome, ProbeTarget};
use serde_json::{json, Value};

use crate::kubesim::{objects, KubeSim};

/// A LoadBalancer Service holding `ip`, listening on `ports`.
pub fn service_on(ns: &str, name: &str, ip: &str, annotations: Value, ports: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}, "annotations": annotations},
        "spec": {"type": "LoadBalancer", "ports": ports, "selector": {"app": name}},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}
    })
}

/// A LoadBalancer Service on TCP 443.
pub fn service(ns: &str, name: &str, ip: &str, annotations: Value) -> Value {
    service_on(
        ns,
        name,
        ip,
        annotations,
        json!([{"port": 443, "protocol": "TCP"}]),
    )
}

/// A Service's `status.loadBalancer.ingress[].ip`.
pub fn service_ips(sim: &KubeSim, ns: &str, name: &str) -> Vec<String> {
    sim.get("v1", "Service", ns, name).unwrap()["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().map(String::from))
        .collect()
}

/// Cilium's `cilium-config` as the Helm values set it.
pub fn cilium_config(bgp: bool, l2: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "cilium-config", "namespace": "kube-system"},
           "data": {"enable-bgp-control-plane": bgp.to_string(),
                    "enable-l2-announcements": l2.to_string()}})
}

/// Every Service of the fixture: (namespace, name).
pub const SERVICES: [(&str, &str); 12] = [
    ("ingress", "traefik"),
    ("ingress", "nginx"),
    ("ingress", "haproxy"),
    ("media", "plex"),
    ("media", "jellyfin"),
    ("web", "api"),
    ("net", "dns-tcp"),
    ("net", "dns-udp"),
    ("web", "dual"),
    ("web", "lbip"),
    ("web", "internal"),
    ("vpn", "tailscale"),
];

/// A cluster still on L2 announcements, with its LB pool (172.29.51.150-250) on the node
/// network, and every kind of Service a real one has. Cilium's LB-IPAM is played by the
/// stand-in with Cilium's rules.
pub fn l2_cluster() -> KubeSim {
    let sim = KubeSim::new();
    sim.serve_cilium();
    sim.simulate_lb_ipam();
    sim.apply(objects::cilium_daemonset("1.18.2"));
    // Stage 1 of the Helm values applied: BGP on, L2 still on.
    sim.apply(cilium_config(true, true));
    let mut l2 = objects::pool("l2-pool", &["172.29.51.150-172.29.51.250"], false);
    if let Some(spec) = l2["spec"].as_object_mut() {
        spec.remove("allowFirstLastIPs");
    }
    sim.apply(l2);
    sim.apply(json!({"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumL2AnnouncementPolicy", "metadata": {"name": "l2-policy"},
                     "spec": {"loadBalancerIPs": true, "interfaces": ["^eth0$"]}}));
    // Ingress: requested, without and with the pool label.
    sim.apply(service("ingress", "traefik", "172.29.51.200", json!({
        "lbipam.cilium.io/ips": "172.29.51.200", "external-dns.alpha.kubernetes.io/hostname": "home.example.org"})));
    sim.apply(service(
        "ingress",
        "nginx",
        "172.29.51.201",
        json!({"lbipam.cilium.io/ips": "172.29.51.201"}),
    ));
    let mut haproxy = service("ingress", "haproxy", "172.29.51.220", json!({}));
    haproxy["metadata"]["labels"]["bgplb.io/pool"] = json!("bgp-ingress");
    haproxy["spec"]["ports"] = json!([{"port": 8443, "protocol": "TCP"}]);
    sim.apply(haproxy);
    // A sharing pair: one requests (legacy name), the other shares by key.
    sim.apply(service_on(
        "media",
        "plex",
        "172.29.51.210",
        json!({"io.cilium/lb-ipam-ips": "172.29.51.210", "lbipam.cilium.io/sharing-key": "media"}),
        json!([{"port": 32400, "protocol": "TCP"}]),
    ));
    sim.apply(service_on(
        "media",
        "jellyfin",
        "172.29.51.210",
        json!({"lbipam.cilium.io/sharing-key": "media"}),
        json!([{"port": 8096, "protocol": "TCP"}]),
    ));
    sim.apply(service("web", "api", "172.29.51.230", json!({})));
    // DNS over TCP and UDP on one address, under the legacy sharing-key name.
    sim.apply(service_on(
        "net",
        "dns-tcp",
        "172.29.51.153",
        json!({"io.cilium/lb-ipam-ips": "172.29.51.153", "io.cilium/lb-ipam-sharing-key": "dns"}),
        json!([{"port": 53, "protocol": "TCP"}]),
    ));
    sim.apply(service_on(
        "net",
        "dns-udp",
        "172.29.51.153",
        json!({"io.cilium/lb-ipam-sharing-key": "dns"}),
        json!([{"port": 53, "protocol": "UDP"}]),
    ));
    // PreferDualStack, never requested: the L2 pool has no IPv6, so it has IPv4 only.
    let mut dual = service("web", "dual", "172.29.51.235", json!({}));
    dual["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
    dual["spec"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
    dual["spec"]["ports"] = json!([{"port": 8443, "protocol": "TCP"}]);
    sim.apply(dual);
    // The old way of asking: spec.loadBalancerIP.
    let mut lbip = service("web", "lbip", "172.29.51.240", json!({}));
    lbip["spec"]["loadBalancerIP"] = json!("172.29.51.240");
    lbip["spec"]["ports"] = json!([{"port": 9443, "protocol": "TCP"}]);
    sim.apply(lbip);
    // Kept out of BGP.
    let mut internal = service("web", "internal", "172.29.51.245", json!({}));
    internal["metadata"]["labels"]["bgplb.io/no-advertise"] = json!("");
    internal["spec"]["ports"] = json!([{"port": 7443, "protocol": "TCP"}]);
    sim.apply(internal);
    // Another controller's: not LB-IPAM's, not the migration's.
    let mut ts = service("vpn", "tailscale", "100.64.0.7", json!({}));
    ts["spec"]["loadBalancerClass"] = json!("tailscale");
    sim.apply(ts);
    sim
}

/// The agent, as the migration sees it (no gateway behind it): two Established sessions, and
/// probes that succeed, each breakable.
#[derive(Default)]
pub struct FakeAgent {
    pub down: AtomicBool,
    pub peers_down: AtomicBool,
    pub probes_fail: AtomicBool,
}

impl AgentApi for FakeAgent {
    async fn status(&self) -> Result<AgentStatus, String> {
        if self.down.load(Ordering::SeqCst) {
            return Err("connection refused".into());
        }
        let state = if self.peers_down.load(Ordering::SeqCst) {
            "Active"
        } else {
            "Established"
        };
        Ok(AgentStatus {
            gateway: "udm-pro".into(),
            asn: 64512,
            peers: ["k8s-1", "k8s-2"]
                .iter()
                .map(|n| PeerStatus {
                    cluster: "home".into(),
                    node: n.to_string(),
                    family: "ipv4".into(),
                    address: String::new(),
                    state: state.into(),
                    accepted: 1,
                })
                .collect(),
            ..Default::default()
        })
    }

    async fn probe(&self, targets: Vec<ProbeTarget>) -> Result<Vec<ProbeOutcome>, String> {
        let ok = !self.probes_fail.load(Ordering::SeqCst);
        Ok(targets
            .into_iter()
            .map(|t| ProbeOutcome {
                ip: t.ip,
                port: t.port,
                ok,
                error: (!ok).then(|| "connection refused".into()),
                millis: 1,
            })
            .collect())
    }
}
