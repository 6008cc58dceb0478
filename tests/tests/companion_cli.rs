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
    assert!(
        files.contains(&"cilium-values.yaml".to_string()),
        "{files:?}"
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
