//! `bgplb-companion render` from the command line.

use std::process::Command;

fn companion(args: &[&str]) -> std::process::Output {
    Command::new(bgplb_tests::bins::path("bgplb-companion"))
        .args(args)
        .output()
        .expect("run bgplb-companion")
}

fn site() -> String {
    format!("{}/../config/site.toml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn render_writes_the_cilium_objects_for_a_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = companion(&[
        "render",
        "--site",
        &site(),
        "--cilium-version",
        "1.18",
        "--out",
        &dir.path().display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        files.contains(&"ciliumbgpclusterconfig-bgplb-home.yaml".to_string()),
        "{files:?}"
    );
    for stage in ["cilium-values-1-bgp.yaml", "cilium-values-2-final.yaml"] {
        assert!(files.contains(&stage.to_string()), "{files:?}");
    }
    let stage1 = std::fs::read_to_string(dir.path().join("cilium-values-1-bgp.yaml")).unwrap();
    assert!(
        stage1.contains("l2announcements:\n  enabled: true")
            && stage1.contains("k8sServicePort: 7445"),
        "{stage1}"
    );
    let stream = companion(&["render", "--site", &site(), "--cilium-version", "1.16"]);
    let text = String::from_utf8_lossy(&stream.stdout);
    assert!(
        text.contains("apiVersion: cilium.io/v2alpha1")
            && text.contains("kind: CiliumBGPClusterConfig"),
        "{text}"
    );
}

#[test]
fn the_old_peering_policy_is_refused_on_1_19_with_the_reason() {
    let out = companion(&[
        "render",
        "--site",
        &site(),
        "--cilium-version",
        "1.19",
        "--legacy-peering-policy",
    ]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("removed in Cilium 1.19"), "{err}");
}

#[test]
fn render_gateway_is_exactly_what_the_agent_renders() {
    let gw = companion(&["render", "--site", &site(), "--gateway"]);
    assert!(
        gw.status.success(),
        "{}",
        String::from_utf8_lossy(&gw.stderr)
    );
    let agent = Command::new(bgplb_tests::bins::path("bgplb-agent"))
        .args(["--config", &site(), "render"])
        .output()
        .unwrap();
    assert!(agent.status.success());
    assert_eq!(gw.stdout, agent.stdout);
}

#[test]
fn validate_reads_the_cluster_and_names_what_is_left_of_l2() {
    use bgplb_tests::kubesim::{kubeconfig, objects, KubeSim};
    let ns = bgplb_tests::netns::Scratch::new("v");
    let sim = KubeSim::new();
    sim.serve_cilium();
    sim.apply(objects::cilium_daemonset("1.18.2"));
    for n in ["k8s-1", "k8s-2"] {
        let ip = if n == "k8s-1" {
            "172.29.51.11"
        } else {
            "172.29.51.12"
        };
        sim.apply(objects::node(n, ip, None, true));
    }
    sim.apply(objects::pool(
        "l2-pool",
        &["172.29.51.200-172.29.51.250"],
        false,
    ));
    sim.apply(serde_json::json!({"apiVersion": "cilium.io/v2alpha1", "kind": "CiliumL2AnnouncementPolicy", "metadata": {"name": "l2-policy"}, "spec": {"loadBalancerIPs": true}}));
    sim.apply(objects::service("web", "nginx", &["172.29.51.200"], 80));
    sim.spawn_in_namespace(&ns.name, "127.0.0.1:6443".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig("http://127.0.0.1:6443")).unwrap();
    let report = dir.path().join("report.md");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(bgplb_tests::bins::path("bgplb-companion"))
        .args([
            "validate",
            "--site",
            &site(),
            "--no-agent",
            "--json",
            "--kubeconfig",
        ])
        .arg(&kc)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(check("l2-policies")["status"], "fail");
    assert!(check("l2-policies")["details"]
        .to_string()
        .contains("l2-policy"));
    assert_eq!(check("service-ips")["status"], "fail");
    assert!(check("service-ips")["details"]
        .to_string()
        .contains("web/nginx"));
    assert_eq!(check("bgp-objects")["status"], "fail");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("l2-policies"), "{md}");
}
