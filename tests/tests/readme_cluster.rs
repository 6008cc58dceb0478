//! The README's "Install in your cluster" commands, run. Every command line in the section's
//! code blocks must be one this test knows; a new or changed line fails until the test runs it
//! too. Commands that need a registry or a cluster run against local stand-ins: the push goes to
//! a second OCI layout, `kubectl create` runs client-side (`--dry-run=client`), `kubectl apply -k`
//! is the kustomize build it starts with (then validated), `kubectl apply -f` gets its file
//! checked; `rollout status` needs a real cluster and is only recognised.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The command lines of the section's ```sh blocks.
fn commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("### Install in your cluster")
        .expect("the README has the section");
    let rest = &readme[start + 3..];
    let section = &rest[..rest.find("\n### ").unwrap_or(rest.len())];
    let mut out = Vec::new();
    let mut inside = false;
    for line in section.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            inside = !inside && t == "```sh";
            continue;
        }
        if inside && !t.is_empty() && !t.starts_with('#') {
            out.push(t.to_string());
        }
    }
    out
}

fn ok(argv: &[&str], dir: &Path) -> String {
    let out = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "`{}` failed: {}{}",
        argv.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tools() -> PathBuf {
    std::env::var_os("BGPLB_K8S_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/k8s-tools"))
}

fn yaml(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

#[test]
fn every_command_of_install_in_your_cluster_runs() {
    let cmds = commands();
    assert!(cmds.len() >= 8, "{cmds:?}");
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path();
    let kubectl = tools().join("kubectl/usr/bin/kubectl");
    let kubectl = kubectl.to_str().unwrap();
    // The gateway's files: a site whose TLS lives here, its CA and the agent's certificate.
    let site = std::fs::read_to_string(repo().join("config/site.toml"))
        .unwrap()
        .replace("/data/bgplb/tls", &work.join("tls").display().to_string());
    let site_path = work.join("site.toml");
    std::fs::write(&site_path, site).unwrap();
    let agent = bgplb_tests::bins::path("bgplb-agent");
    ok(
        &[
            agent.to_str().unwrap(),
            "--config",
            site_path.to_str().unwrap(),
            "pki",
            "init",
        ],
        work,
    );
    std::fs::copy(work.join("tls/ca.crt"), work.join("ca.crt")).unwrap();
    std::fs::copy(work.join("tls/ca.key"), work.join("ca.key")).unwrap();

    let mut ran = Vec::new();
    for cmd in &cmds {
        match cmd.as_str() {
            "cross/setup" => {
                ok(&[repo().join("cross/setup").to_str().unwrap()], work);
            }
            "cross/build-image" => {
                // Built already by scripts/test: this run only repackages (into a scratch layout).
                let out = std::process::Command::new(repo().join("cross/build-image"))
                    .args(["--out", work.join("image/bgplb-companion").to_str().unwrap()])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                let last = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .to_string();
                assert_eq!(
                    last,
                    format!(
                        "oci:{}:{}",
                        work.join("image/bgplb-companion").display(),
                        env!("CARGO_PKG_VERSION")
                    ),
                    "the layout's reference is printed last"
                );
            }
            c if c.starts_with("skopeo copy --all oci:target/image/bgplb-companion:0.1.0 docker://") => {
                let from = format!(
                    "oci:{}:{}",
                    work.join("image/bgplb-companion").display(),
                    env!("CARGO_PKG_VERSION")
                );
                let to = format!("oci:{}:pushed", work.join("registry").display());
                ok(&["skopeo", "copy", "--all", "--quiet", &from, &to], work);
                let index: Value =
                    serde_json::from_str(&ok(&["skopeo", "inspect", "--raw", &to], work)).unwrap();
                assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "--all pushes both");
            }
            "kubectl create namespace bgplb" => {
                let out = ok(
                    &[kubectl, "create", "namespace", "bgplb", "--dry-run=client", "-o", "yaml"],
                    work,
                );
                assert_eq!(yaml(&out)[0]["metadata"]["name"], "bgplb");
            }
            "kubectl -n bgplb create secret tls bgplb-ca --cert=ca.crt --key=ca.key" => {
                let out = ok(
                    &[
                        kubectl,
                        "-n",
                        "bgplb",
                        "create",
                        "secret",
                        "tls",
                        "bgplb-ca",
                        "--cert=ca.crt",
                        "--key=ca.key",
                        "--dry-run=client",
                        "-o",
                        "yaml",
                    ],
                    work,
                );
                let secret = &yaml(&out)[0];
                assert_eq!(secret["type"], "kubernetes.io/tls");
                // What the cert-manager component's Issuer reads.
                let issuer = std::fs::read_to_string(
                    repo().join("config/kubernetes/components/cert-manager/issuer.yaml"),
                )
                .unwrap();
                let issuer: Value = serde_saphyr::from_str(&issuer).unwrap();
                assert_eq!(issuer["spec"]["ca"]["secretName"], secret["metadata"]["name"]);
                assert!(secret["data"]["tls.key"].is_string());
            }
            "bgplb-agent --config /data/bgplb/site.toml pki issue --cluster home --secret > companion-tls.yaml" => {
                let out = ok(
                    &[
                        agent.to_str().unwrap(),
                        "--config",
                        site_path.to_str().unwrap(),
                        "pki",
                        "issue",
                        "--cluster",
                        "home",
                        "--secret",
                    ],
                    work,
                );
                std::fs::write(work.join("companion-tls.yaml"), out).unwrap();
            }
            "kubectl apply -f companion-tls.yaml" => {
                // The Secret the base's Deployment mounts, with every key it projects.
                let secret = &yaml(&std::fs::read_to_string(work.join("companion-tls.yaml")).unwrap())[0];
                let deploy = std::fs::read_to_string(
                    repo().join("config/kubernetes/base/deployment.yaml"),
                )
                .unwrap();
                let deploy: Value = serde_saphyr::from_str(&deploy).unwrap();
                let tls = deploy["spec"]["template"]["spec"]["volumes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["name"] == "tls")
                    .unwrap()
                    .clone();
                assert_eq!(tls["secret"]["secretName"], secret["metadata"]["name"]);
                assert_eq!(secret["metadata"]["namespace"], deploy["metadata"]["namespace"]);
                for item in tls["secret"]["items"].as_array().unwrap() {
                    let key = item["key"].as_str().unwrap();
                    assert!(secret["stringData"][key].is_string(), "the Secret has no {key}");
                }
            }
            "kubectl apply -k config/kubernetes/example" => {
                let k = tools().join("kustomize");
                let built = ok(
                    &[
                        k.to_str().unwrap(),
                        "build",
                        repo().join("config/kubernetes/example").to_str().unwrap(),
                    ],
                    work,
                );
                assert!(yaml(&built).iter().any(|d| d["kind"] == "Deployment"));
            }
            "kubectl -n bgplb rollout status deployment/bgplb-companion" => {
                // Needs the cluster; the Deployment it names exists.
                let deploy = std::fs::read_to_string(
                    repo().join("config/kubernetes/base/deployment.yaml"),
                )
                .unwrap();
                assert!(deploy.contains("name: bgplb-companion\n  namespace: bgplb"));
            }
            other => panic!(
                "the README's \"Install in your cluster\" shows `{other}`, which this test does not run: add it here"
            ),
        }
        ran.push(cmd.clone());
    }
    assert_eq!(ran, cmds);
}
