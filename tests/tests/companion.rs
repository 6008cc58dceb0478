//! The companion's kube-rs code against the Kubernetes API stand-in: watchers follow the cluster
//! (including a CRD that appears later), and leader election gives exactly one leader.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bgplb_companion::leader::{self, LeaderConfig};
use bgplb_companion::watch::Watched;
use bgplb_tests::kubesim::{kubeconfig, objects, KubeSim};
use bgplb_tests::netns::{block_on_in, Scratch};

const ADDR: &str = "127.0.0.1:6443";

async fn client() -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig(&format!("http://{ADDR}"))).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Polls `check` (async, inside the namespace) until true, at most `secs`.
async fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn watchers_follow_the_cluster() {
    let ns = Scratch::new("k");
    let sim = KubeSim::new();
    sim.apply(objects::node(
        "k8s-1",
        "172.29.51.11",
        Some("fd47:25e1:2f96:51::11"),
        true,
    ));
    sim.apply(objects::cilium_daemonset("1.18.2"));
    sim.spawn_in_namespace(&ns.name, ADDR.parse().unwrap());
    let s = sim.clone();
    block_on_in(&ns.name, move || async move {
        let notify = Arc::new(tokio::sync::Notify::new());
        let w = Watched::start_with(
            client().await,
            "kube-system",
            "cilium",
            notify,
            Duration::from_millis(300),
        );
        eventually("the first list", 10, || w.synced()).await;
        let o = w.observed();
        assert_eq!(o.nodes.len(), 1);
        assert!(o.pools.is_empty(), "no Cilium CRDs served yet");
        eventually("the Cilium version", 10, || {
            w.observed().cilium_version.as_deref() == Some("1.18.2")
        })
        .await;

        // Changes arrive through the watch.
        s.apply(objects::node("k8s-2", "172.29.51.12", None, true));
        s.apply(objects::service("web", "nginx", &["172.29.52.100"], 80));
        s.apply(objects::endpoint_slice("web", "nginx", &["k8s-2"]));
        eventually("k8s-2 and the service", 10, || {
            let o = w.observed();
            o.nodes.len() == 2 && o.services.len() == 1 && o.endpoint_slices.len() == 1
        })
        .await;
        assert!(s.delete("v1", "Node", "", "k8s-1"));
        eventually("k8s-1 to leave", 10, || w.observed().nodes.len() == 1).await;

        // The CRDs get installed later: the pool watcher finds them.
        s.serve_cilium();
        for p in objects::reference_pools() {
            s.apply(p);
        }
        s.apply(objects::bgp_cluster_config("bgplb-home"));
        eventually("pools from the new CRD", 15, || {
            w.observed().pools.len() == 4
        })
        .await;
        eventually("the BGP cluster config", 15, || {
            w.observed().bgp.cluster_configs_v2 == 1
        })
        .await;
        let report = bgplb_companion::project::report("home", 1, "t", &w.observed());
        assert_eq!(report.cilium.bgp_api, bgplb_proto::BgpApi::V2);
        assert_eq!(report.services[0].ready_nodes, ["k8s-2"]);
    });
    // The watchers used list, then watch from the list's resourceVersion.
    let requests = sim.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/nodes?") && r.contains("watch=true")),
        "{requests:#?}"
    );
}

#[test]
fn leader_election_gives_exactly_one_leader_and_fails_over() {
    let ns = Scratch::new("l");
    let sim = KubeSim::new();
    sim.spawn_in_namespace(&ns.name, ADDR.parse().unwrap());
    let s = sim.clone();
    block_on_in(&ns.name, move || async move {
        let cfg = |id: &str| LeaderConfig {
            namespace: "bgplb".into(),
            lease_name: "bgplb-companion".into(),
            identity: id.into(),
            lease_seconds: 2,
        };
        let (a_tx, a) = tokio::sync::watch::channel(false);
        let (b_tx, b) = tokio::sync::watch::channel(false);
        let ta = tokio::spawn(leader::run(client().await, cfg("replica-a"), a_tx));
        let _tb = tokio::spawn(leader::run(client().await, cfg("replica-b"), b_tx));
        eventually("a leader", 10, || *a.borrow() || *b.borrow()).await;
        // For a while, exactly one leads at every moment.
        for _ in 0..40 {
            let (la, lb) = (*a.borrow(), *b.borrow());
            assert!(!(la && lb), "both replicas lead");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let first_is_a = *a.borrow();
        let lease = s
            .get(
                "coordination.k8s.io/v1",
                "Lease",
                "bgplb",
                "bgplb-companion",
            )
            .unwrap();
        let holder = lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(holder, if first_is_a { "replica-a" } else { "replica-b" });

        // The leader dies without releasing (crash): the other takes over once the lease expires.
        if first_is_a {
            ta.abort();
            eventually("replica-b to take over", 15, || *b.borrow()).await;
        } else {
            _tb.abort();
            eventually("replica-a to take over", 15, || *a.borrow()).await;
        }
        let lease = s
            .get(
                "coordination.k8s.io/v1",
                "Lease",
                "bgplb",
                "bgplb-companion",
            )
            .unwrap();
        assert_ne!(lease["spec"]["holderIdentity"].as_str().unwrap(), holder);
        assert_eq!(lease["spec"]["leaseTransitions"], 1);
    });
}
