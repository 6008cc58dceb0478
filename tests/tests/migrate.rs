//! The L2 → BGP migration against the Kubernetes API stand-in (playing Cilium's LB-IPAM) and a
//! stand-in agent: the happy path, a failure in each phase (then resume, or rollback), exact
//! rollback, a dry run that writes nothing, and a second run that changes nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bgplb_companion::dynkube::DynKube;
use bgplb_companion::migrate::{self, Options};
use bgplb_tests::fixtures::{l2_cluster, FakeAgent, SERVICES};
use bgplb_tests::kubesim::{kubeconfig, KubeSim};
use bgplb_tests::netns::{block_on_in, Scratch};
use serde_json::{json, Value};

const ADDR: &str = "127.0.0.1:6443";

fn options(dry_run: bool, dir: &std::path::Path) -> Options {
    Options {
        site: bgplb_site::parse(bgplb_tests::lab::REFERENCE_SITE).unwrap(),
        cluster: "home".into(),
        cilium_version: "1.18.2".into(),
        cilium_namespace: "kube-system".into(),
        dry_run,
        backup_file: dir.join("backup.json"),
        peering_timeout: Duration::from_secs(2),
        service_timeout: Duration::from_secs(5),
    }
}

async fn kube(dry_run: bool) -> DynKube {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig(&format!("http://{ADDR}"))).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    DynKube::new(kube::Client::try_from(config).unwrap(), dry_run)
}

/// Objects the migration touches, as comparable JSON (server fields removed).
fn touched(sim: &KubeSim) -> Vec<Value> {
    let mut refs: Vec<(&str, &str, &str, &str)> = SERVICES
        .iter()
        .map(|(ns, n)| ("v1", "Service", *ns, *n))
        .collect();
    refs.extend([
        ("cilium.io/v2", "CiliumLoadBalancerIPPool", "", "l2-pool"),
        (
            "cilium.io/v2alpha1",
            "CiliumL2AnnouncementPolicy",
            "",
            "l2-policy",
        ),
        (
            "cilium.io/v2",
            "CiliumLoadBalancerIPPool",
            "",
            "bgp-default",
        ),
        ("cilium.io/v2", "CiliumBGPClusterConfig", "", "bgplb-home"),
    ]);
    refs.iter()
        .map(|(v, k, ns, n)| {
            let mut o = sim.get(v, k, ns, n).unwrap_or(Value::Null);
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                m.remove("uid");
            }
            // When a condition last changed is the controller's clock, not the object's state.
            for c in o
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(c) = c.as_object_mut() {
                    c.remove("lastTransitionTime");
                }
            }
            o
        })
        .collect()
}

fn ip_of(sim: &KubeSim, ns: &str, name: &str) -> String {
    ips_of(sim, ns, name).join(",")
}

fn ips_of(sim: &KubeSim, ns: &str, name: &str) -> Vec<String> {
    bgplb_tests::fixtures::service_ips(sim, ns, name)
}

/// Runs `f` with a fresh stand-in cluster in its own namespace.
fn with_cluster<T: Send + 'static, F: std::future::Future<Output = T>>(
    f: impl FnOnce(KubeSim, Arc<FakeAgent>, std::path::PathBuf) -> F + Send + 'static,
) -> T {
    let ns = Scratch::new("m");
    let sim = l2_cluster();
    sim.spawn_in_namespace(&ns.name, ADDR.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let out = block_on_in(&ns.name, move || async move {
        // Wait for the stand-in to listen.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(ADDR).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        f(sim, Arc::new(FakeAgent::default()), path).await
    });
    drop(dir);
    out
}

#[test]
fn the_happy_path_moves_every_service_and_a_second_run_changes_nothing() {
    with_cluster(|sim, agent, dir| async move {
        let p = migrate::migrate(&kube(false).await, &*agent, &options(false, &dir))
            .await
            .expect("migration");
        assert_eq!(p.moves.len(), 11, "every service but tailscale's");
        assert_eq!(
            ip_of(&sim, "ingress", "traefik"),
            "172.29.52.200",
            "same host part in bgp-ingress"
        );
        let traefik = sim.get("v1", "Service", "ingress", "traefik").unwrap();
        assert_eq!(
            traefik["metadata"]["labels"]["bgplb.io/pool"],
            "bgp-ingress"
        );
        assert_eq!(ip_of(&sim, "ingress", "nginx"), "172.29.52.201");
        assert!(ip_of(&sim, "ingress", "haproxy").starts_with("172.29.52.2"));
        assert_eq!(
            ip_of(&sim, "media", "plex"),
            ip_of(&sim, "media", "jellyfin"),
            "the sharing key is kept"
        );
        assert_eq!(
            ip_of(&sim, "net", "dns-tcp"),
            ip_of(&sim, "net", "dns-udp"),
            "TCP and UDP on port 53 share one address (legacy key)"
        );
        assert_eq!(ip_of(&sim, "net", "dns-tcp"), "172.29.52.153");
        assert!(ip_of(&sim, "web", "api").starts_with("172.29.52."));
        let api = sim.get("v1", "Service", "web", "api").unwrap();
        assert!(
            api["metadata"]["annotations"]
                .get("lbipam.cilium.io/ips")
                .is_none(),
            "a service that never requested is not pinned"
        );
        let dual = ips_of(&sim, "web", "dual");
        assert_eq!(
            dual.len(),
            2,
            "PreferDualStack keeps both families: {dual:?}"
        );
        assert!(dual
            .iter()
            .any(|ip| ip.starts_with("fd47:25e1:2f96:52:100::")));
        let lbip = sim.get("v1", "Service", "web", "lbip").unwrap();
        assert!(
            lbip["spec"].get("loadBalancerIP").is_none(),
            "the old request is gone"
        );
        assert!(ip_of(&sim, "web", "lbip").starts_with("172.29.52."));
        assert!(ip_of(&sim, "web", "internal").starts_with("172.29.52."));
        assert_eq!(ip_of(&sim, "vpn", "tailscale"), "100.64.0.7", "not ours");
        // The plan recorded what LB-IPAM gave the services moved by selector.
        let api_move = p.moves.iter().find(|m| m.name == "api").unwrap();
        assert_eq!(api_move.new_ips, ips_of(&sim, "web", "api"));
        let plex = sim.get("v1", "Service", "media", "plex").unwrap();
        assert!(
            plex["metadata"]["annotations"]
                .get("io.cilium/lb-ipam-ips")
                .is_none(),
            "legacy annotation replaced"
        );
        assert!(sim
            .get(
                "cilium.io/v2alpha1",
                "CiliumL2AnnouncementPolicy",
                "",
                "l2-policy"
            )
            .is_none());
        assert!(sim
            .get("cilium.io/v2", "CiliumLoadBalancerIPPool", "", "l2-pool")
            .is_none());
        assert!(sim
            .get("cilium.io/v2", "CiliumBGPClusterConfig", "", "bgplb-home")
            .is_some());
        assert!(sim
            .get(
                "cilium.io/v2",
                "CiliumLoadBalancerIPPool",
                "",
                "bgp-default"
            )
            .is_some());
        assert!(dir.join("backup.json").exists());

        let writes = sim.writes().len();
        migrate::migrate(&kube(false).await, &*agent, &options(false, &dir))
            .await
            .expect("second run");
        assert_eq!(
            sim.writes().len(),
            writes,
            "a second run wrote to the API server"
        );
    });
}

#[test]
fn a_dry_run_writes_nothing() {
    with_cluster(|sim, agent, dir| async move {
        let p = migrate::migrate(&kube(true).await, &*agent, &options(true, &dir))
            .await
            .expect("dry run");
        assert_eq!(p.moves.len(), 11);
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("ingress/traefik: gets the label bgplb.io/pool=bgp-ingress")));
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("tailscale belongs to another controller")));
        assert_eq!(p.l2_policies, ["l2-policy"]);
        assert!(sim.writes().is_empty(), "{:?}", sim.writes());
        assert!(!dir.join("backup.json").exists());
    });
}

/// How each phase is made to fail, and how the failure is lifted.
fn break_phase(phase: &str, sim: &KubeSim, agent: &FakeAgent) {
    match phase {
        "preflight" => agent.down.store(true, Ordering::SeqCst),
        "backup" => sim.fail_next("GET", "/namespaces/ingress/services/traefik", 1),
        "apply-objects" => sim.fail_next("POST", "ciliumbgpclusterconfigs", 1),
        "wait-peering" => agent.peers_down.store(true, Ordering::SeqCst),
        "move-services" => sim.fail_next("PUT", "/namespaces/media/services/plex", 1),
        "remove-l2" => sim.fail_next("DELETE", "ciliuml2announcementpolicies", 1),
        "verify" => agent.probes_fail.store(true, Ordering::SeqCst),
        "cleanup" => sim.fail_next("DELETE", "ciliumloadbalancerippools/l2-pool", 1),
        _ => unreachable!(),
    }
}

fn heal(agent: &FakeAgent) {
    agent.down.store(false, Ordering::SeqCst);
    agent.peers_down.store(false, Ordering::SeqCst);
    agent.probes_fail.store(false, Ordering::SeqCst);
}

const PHASES: [&str; 8] = [
    "preflight",
    "backup",
    "apply-objects",
    "wait-peering",
    "move-services",
    "remove-l2",
    "verify",
    "cleanup",
];

#[test]
fn a_failure_in_each_phase_names_it_and_the_run_resumes() {
    for phase in PHASES {
        with_cluster(move |sim, agent, dir| async move {
            break_phase(phase, &sim, &agent);
            let err = migrate::migrate(&kube(false).await, &*agent, &options(false, &dir))
                .await
                .expect_err("must fail");
            assert!(
                err.to_string().starts_with(&format!("phase {phase}:")),
                "{phase}: {err}"
            );
            heal(&agent);
            migrate::migrate(&kube(false).await, &*agent, &options(false, &dir))
                .await
                .unwrap_or_else(|e| panic!("resume after {phase}: {e}"));
            assert_eq!(
                ip_of(&sim, "ingress", "traefik"),
                "172.29.52.200",
                "{phase}"
            );
            assert!(
                sim.get("cilium.io/v2", "CiliumLoadBalancerIPPool", "", "l2-pool")
                    .is_none(),
                "{phase}"
            );
        });
    }
}

#[test]
fn the_migration_needs_stage_one_of_the_values_and_reads_ciliums_namespace() {
    with_cluster(|sim, agent, dir| async move {
        // Cilium in its own namespace, with the values not applied yet (BGP off).
        sim.delete("v1", "ConfigMap", "kube-system", "cilium-config");
        sim.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "cilium-config", "namespace": "cilium"},
                         "data": {"enable-bgp-control-plane": "false", "enable-l2-announcements": "true"}}));
        let mut opts = options(false, &dir);
        opts.cilium_namespace = "cilium".into();
        let err = migrate::migrate(&kube(false).await, &*agent, &opts)
            .await
            .expect_err("BGP is off");
        let text = err.to_string();
        assert!(text.starts_with("phase preflight:"), "{text}");
        assert!(
            text.contains("cilium/cilium-config")
                && text.contains("helm upgrade cilium cilium/cilium -n cilium --version 1.18.2 --reuse-values -f cilium-values-1-bgp.yaml"),
            "names the stage-1 values: {text}"
        );
        assert!(
            sim.writes().is_empty(),
            "a refused preflight writes nothing"
        );
        // Stage 1 applied: BGP on, L2 still on; the migration runs.
        sim.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "cilium-config", "namespace": "cilium"},
                         "data": {"enable-bgp-control-plane": "true", "enable-l2-announcements": "true"}}));
        migrate::migrate(&kube(false).await, &*agent, &opts)
            .await
            .expect("stage 1 is what the migration needs");
        assert_eq!(ip_of(&sim, "ingress", "traefik"), "172.29.52.200");
    });
}

#[test]
fn a_failure_in_each_phase_can_be_rolled_back_exactly() {
    for phase in PHASES {
        with_cluster(move |sim, agent, dir| async move {
            let before = touched(&sim);
            break_phase(phase, &sim, &agent);
            let k = kube(false).await;
            migrate::migrate(&k, &*agent, &options(false, &dir))
                .await
                .expect_err("must fail");
            match migrate::rollback(&k, "kube-system", None).await {
                Ok(_) => {}
                // Failing before the backup exists leaves nothing to undo.
                Err(migrate::MigrateError::NoBackup(_)) if phase == "preflight" => {}
                Err(e) => panic!("rollback after {phase}: {e}"),
            }
            assert_eq!(
                touched(&sim),
                before,
                "rollback after {phase} did not restore the cluster exactly"
            );
        });
    }
}

#[test]
fn a_completed_migration_rolls_back_to_the_l2_setup() {
    with_cluster(|sim, agent, dir| async move {
        let before = touched(&sim);
        let k = kube(false).await;
        migrate::migrate(&k, &*agent, &options(false, &dir))
            .await
            .expect("migration");
        assert_ne!(touched(&sim), before);
        let n = migrate::rollback(&k, "kube-system", None)
            .await
            .expect("rollback");
        assert!(n >= 8, "{n}");
        assert_eq!(
            touched(&sim),
            before,
            "spec, labels and annotations of every touched object are back"
        );
        assert_eq!(ip_of(&sim, "media", "plex"), "172.29.51.210");
        assert_eq!(
            ip_of(&sim, "web", "api"),
            "172.29.51.230",
            "back on its old address"
        );
        let api = sim.get("v1", "Service", "web", "api").unwrap();
        assert!(
            api["metadata"]["annotations"]
                .get("lbipam.cilium.io/ips")
                .is_none(),
            "the request used for the restore is gone again"
        );
        // The progress is forgotten: a new migration starts from the top.
        let p = migrate::migrate(&kube(true).await, &*agent, &options(true, &dir))
            .await
            .unwrap();
        assert_eq!(p.moves.len(), 11);
    });
}
