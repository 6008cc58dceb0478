//! The companion's Kubernetes manifests as a GitOps repository consumes them (config/kubernetes):
//! every file a kustomization names exists; the base builds with the kustomize inside Debian's
//! kubectl and the overlay with its components with kustomize 4.5.4, neither rewriting the RBAC;
//! every object validates against the Kubernetes OpenAPI schemas (kubernetes-validate, strict)
//! or its project's CRD schema (@kubernetes-models); and the pieces fit together (ports, probes,
//! Secret, ConfigMap, identity, Pod Security "restricted"). The tools come from scripts/k8s-tools.

use std::path::{Path, PathBuf};

use bgplb_tests::cmd::{output, run};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifests_dir() -> PathBuf {
    repo().join("config/kubernetes")
}

fn tools() -> PathBuf {
    let dir = std::env::var_os("BGPLB_K8S_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/k8s-tools"));
    assert!(
        dir.join("kustomize").is_file() && dir.join("venv/bin/kubernetes-validate").is_file(),
        "the manifest tools are missing in {}: run scripts/k8s-tools (scripts/test does)",
        dir.display()
    );
    dir
}

fn docs(yaml: &str) -> Vec<Value> {
    let parsed: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("YAML");
    parsed.into_iter().filter(|d| !d.is_null()).collect()
}

fn file_docs(rel: &str) -> Vec<Value> {
    docs(&std::fs::read_to_string(manifests_dir().join(rel)).unwrap())
}

fn build(kustomization: &str) -> Vec<Value> {
    let k = tools().join("kustomize");
    let dir = manifests_dir().join(kustomization);
    docs(&run(&[k.to_str().unwrap(), "build", dir.to_str().unwrap()]))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Every kustomization under config/kubernetes.
fn kustomizations() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n == "kustomization.yaml") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&manifests_dir(), &mut out);
    out.sort();
    out
}

#[test]
fn every_file_a_kustomization_names_exists() {
    let all = kustomizations();
    assert!(all.len() >= 5, "{all:?}");
    for k in all {
        let dir = k.parent().unwrap();
        let doc = &docs(&std::fs::read_to_string(&k).unwrap())[0];
        let mut named: Vec<String> = Vec::new();
        for key in ["resources", "components"] {
            for r in doc[key].as_array().into_iter().flatten() {
                named.push(r.as_str().unwrap().to_string());
            }
        }
        for g in doc["configMapGenerator"].as_array().into_iter().flatten() {
            for f in g["files"].as_array().into_iter().flatten() {
                named.push(f.as_str().unwrap().to_string());
            }
        }
        assert!(!named.is_empty(), "{} names nothing", k.display());
        for n in named {
            assert!(
                dir.join(&n).exists(),
                "{} names {n}, which does not exist",
                k.display()
            );
        }
    }
    // The Flux example points at a kustomization that exists.
    let flux = file_docs("flux/bgplb.yaml");
    let path = find(&flux, "Kustomization", "bgplb-companion")["spec"]["path"]
        .as_str()
        .unwrap();
    assert!(
        repo().join(path).join("kustomization.yaml").is_file(),
        "the Flux Kustomization's path {path} has no kustomization"
    );
}

/// The objects of the base's source files (not generated).
fn base_sources() -> Vec<Value> {
    [
        "namespace.yaml",
        "rbac.yaml",
        "deployment.yaml",
        "pdb.yaml",
        "service.yaml",
    ]
    .iter()
    .flat_map(|f| file_docs(&format!("base/{f}")))
    .collect()
}

/// The RBAC objects of `docs` (roles, bindings), for comparing sources with builds.
fn rbac(docs: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str().is_some_and(|k| k.contains("Role")))
        .map(|d| {
            json!({"kind": d["kind"], "name": d["metadata"]["name"], "namespace": d["metadata"]["namespace"],
                   "rules": d["rules"], "roleRef": d["roleRef"], "subjects": d["subjects"]})
        })
        .collect();
    out.sort_by_key(|v| v.to_string());
    out
}

#[test]
fn the_base_builds_with_the_kustomize_inside_debians_kubectl() {
    let kubectl = tools().join("kubectl/usr/bin/kubectl");
    let dir = manifests_dir().join("base");
    let built = docs(&run(&[
        kubectl.to_str().unwrap(),
        "kustomize",
        dir.to_str().unwrap(),
    ]));
    let sources = base_sources();
    // Every source object, plus the generated ConfigMap.
    assert_eq!(built.len(), sources.len() + 1);
    assert_eq!(rbac(&built), rbac(&sources), "the build changed the RBAC");
    let cm = built
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("the generated ConfigMap");
    let cm_name = cm["metadata"]["name"].as_str().unwrap();
    assert!(cm_name.starts_with("bgplb-companion-config-"), "{cm_name}");
    let deploy = find(&built, "Deployment", "bgplb-companion");
    let volumes = deploy["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert!(
        volumes.iter().any(|v| v["configMap"]["name"] == cm_name),
        "the Deployment mounts the hashed ConfigMap"
    );
}

/// Runs kubernetes-validate (strict) on `objects`; returns (success, output).
fn kubernetes_validate(objects: &[Value]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.yaml");
    let text: String = objects
        .iter()
        .map(|o| format!("---\n{}", serde_json::to_string(o).unwrap()))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, text).unwrap();
    let v = tools().join("venv/bin/kubernetes-validate");
    let out = output(&[
        v.to_str().unwrap(),
        "--kubernetes-version",
        "1.33.0",
        "--strict",
        "--no-warn",
        file.to_str().unwrap(),
    ]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Validates custom resources with their projects' schemas; returns (success, output).
fn crd_validate(objects: &[Value]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("objects.json");
    std::fs::write(&file, serde_json::to_string(objects).unwrap()).unwrap();
    let script = repo().join("tests/k8s/validate-crds.mjs");
    let out = std::process::Command::new("node")
        .arg(&script)
        .arg(&file)
        .env("NODE_PATH", tools().join("node_modules"))
        .output()
        .expect("node runs (apt-get install nodejs)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn is_custom(o: &Value) -> bool {
    let api = o["apiVersion"].as_str().unwrap_or_default();
    [
        "cert-manager.io/",
        "monitoring.coreos.com/",
        "external-secrets.io/",
        "toolkit.fluxcd.io/",
    ]
    .iter()
    .any(|g| api.contains(g))
}

/// Validates each object with the right schema set, failing with the validators' words.
fn validate_all(objects: &[Value]) {
    let (custom, core): (Vec<Value>, Vec<Value>) = objects.iter().cloned().partition(is_custom);
    if !core.is_empty() {
        let (ok, out) = kubernetes_validate(&core);
        assert!(ok, "kubernetes-validate:\n{out}");
    }
    if !custom.is_empty() {
        let (ok, out) = crd_validate(&custom);
        assert!(ok, "CRD schemas:\n{out}");
    }
}

#[test]
fn every_object_validates_against_its_schema() {
    let mut all = build("example");
    let kinds: Vec<&str> = all.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "Certificate",
        "Issuer",
        "ServiceMonitor",
        "ClusterRole",
        "Deployment",
    ] {
        assert!(
            kinds.contains(&k),
            "the example overlay has no {k}: {kinds:?}"
        );
    }
    all.extend(file_docs("flux/bgplb.yaml"));
    validate_all(&all);

    // The validators do refuse: an unknown field in a Deployment, a number where
    // cert-manager wants a duration string.
    let mut bad = find(&all, "Deployment", "bgplb-companion").clone();
    bad["spec"]["replica"] = json!(2);
    let (ok, out) = kubernetes_validate(&[bad]);
    assert!(!ok, "kubernetes-validate accepted an unknown field: {out}");
    let mut bad = find(&all, "Certificate", "bgplb-companion").clone();
    bad["spec"]["duration"] = json!(2160);
    let (ok, out) = crd_validate(&[bad]);
    assert!(!ok && out.contains("duration"), "{out}");
}

#[test]
fn the_components_add_to_the_base_without_changing_it() {
    let base = build("base");
    let example = build("example");
    assert_eq!(
        rbac(&example),
        rbac(&[base_sources(), file_docs("components/migration/rbac.yaml")].concat()),
        "the overlay's RBAC is the base's plus the migration component's, unchanged"
    );
    for b in &base {
        let name = b["metadata"]["name"].as_str().unwrap();
        let kind = b["kind"].as_str().unwrap();
        if kind == "Deployment" {
            continue; // The image tag may be set by the overlay.
        }
        assert_eq!(find(&example, kind, name), b, "{kind} {name} differs");
    }
}

#[test]
fn the_pieces_fit_together() {
    let all = build("example");
    let deploy = find(&all, "Deployment", "bgplb-companion");
    let pod = &deploy["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(deploy["spec"]["replicas"], 2);

    // Pod Security "restricted", which the namespace enforces.
    let ns = find(&all, "Namespace", "bgplb");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let sc = &container["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(
        pod["securityContext"]["runAsUser"], 65532,
        "the image's nonroot user"
    );
    assert!(container["resources"]["requests"]["memory"].is_string());

    // The configuration the ConfigMap carries loads, and serves health and metrics on the
    // port the probes, the Service and the ServiceMonitor use.
    let cm = all.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let toml_text = cm["data"]["companion.toml"].as_str().unwrap();
    let config: bgplb_companion::config::Config = toml::from_str(toml_text).unwrap();
    config.validate().unwrap();
    let listen = config.listen_addr().unwrap().expect("listen is set");
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"], listen.port());
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], port["name"]);
    let svc = find(&all, "Service", "bgplb-companion-metrics");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], port["name"]);
    let sm = find(&all, "ServiceMonitor", "bgplb-companion");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the Service"
        );
    }
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels(deploy)[k], v, "the Service selects the pods");
    }

    // The Certificate makes the Secret the Deployment mounts, with the files the configuration
    // names, and the identity of the cluster the configuration reports for.
    let cert = find(&all, "Certificate", "bgplb-companion");
    let tls = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .unwrap();
    assert_eq!(tls["secret"]["secretName"], cert["spec"]["secretName"]);
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tls")
        .unwrap()["mountPath"]
        .as_str()
        .unwrap();
    for (key, path) in [
        ("ca.crt", &config.tls.ca),
        ("tls.crt", &config.tls.cert),
        ("tls.key", &config.tls.key),
    ] {
        assert_eq!(*path, Path::new(mount).join(key), "{key}");
    }
    assert_eq!(
        cert["spec"]["uris"],
        json!([format!("spiffe://bgplb/cluster/{}", config.cluster)])
    );
    assert_eq!(cert["spec"]["usages"][0], "client auth");
    let issuer = find(&all, "Issuer", "bgplb-ca");
    assert_eq!(
        cert["spec"]["issuerRef"]["name"],
        issuer["metadata"]["name"]
    );

    // The Lease the role names is the one the configuration elects with.
    let lease_role = find(&all, "Role", "bgplb-companion-lease");
    assert_eq!(
        lease_role["rules"][1]["resourceNames"],
        json!([config.leader_election.lease_name])
    );
    assert_eq!(
        lease_role["metadata"]["namespace"],
        config.leader_election.namespace.as_str()
    );
}

fn pod_labels(deploy: &Value) -> &Value {
    &deploy["spec"]["template"]["metadata"]["labels"]
}

#[test]
fn the_password_secret_render_emits_validates_and_names_what_authsecretref_needs() {
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("bgp-password");
    std::fs::write(&password, "s3cret-Pw\n").unwrap();
    let site = std::fs::read_to_string(repo().join("config/site.toml"))
        .unwrap()
        .replace(
            "# password_file = \"/data/bgplb/bgp-password\"",
            &format!("password_file = \"{}\"", password.display()),
        );
    assert!(
        site.contains("password_file = \"/"),
        "the reference site's line moved"
    );
    let site_path = dir.path().join("site.toml");
    std::fs::write(&site_path, site).unwrap();
    let bin = bgplb_tests::bins::path("bgplb-companion");
    let render = |extra: &[&str]| {
        let mut argv = vec![
            bin.to_str().unwrap(),
            "render",
            "--site",
            site_path.to_str().unwrap(),
            "--cilium-version",
            "1.18",
        ];
        argv.extend_from_slice(extra);
        docs(&run(&argv))
    };
    let plain = render(&[]);
    let secret = find(&plain, "Secret", "bgplb-bgp-password");
    assert_eq!(secret["stringData"]["password"], "s3cret-Pw");
    let peer = plain
        .iter()
        .find(|d| d["kind"] == "CiliumBGPPeerConfig")
        .unwrap();
    assert_eq!(peer["spec"]["authSecretRef"], secret["metadata"]["name"]);
    validate_all(std::slice::from_ref(secret));

    let external = render(&["--external-secret", "vault:home/bgplb#bgp-password"]);
    assert!(external.iter().all(|d| d["kind"] != "Secret"));
    let es = find(&external, "ExternalSecret", "bgplb-bgp-password");
    assert_eq!(es["spec"]["target"]["name"], peer["spec"]["authSecretRef"]);
    assert_eq!(es["metadata"]["namespace"], secret["metadata"]["namespace"]);
    assert!(!serde_json::to_string(&external).unwrap().contains("s3cret"));
    validate_all(std::slice::from_ref(es));

    // Written files: the Secret only its owner can read.
    let out = dir.path().join("out");
    run(&[
        bin.to_str().unwrap(),
        "render",
        "--site",
        site_path.to_str().unwrap(),
        "--cilium-version",
        "1.18",
        "--out",
        out.to_str().unwrap(),
    ]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(out.join("secret-bgplb-bgp-password.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Without a password there is nothing to provide.
    let no_password = output(&[
        bin.to_str().unwrap(),
        "render",
        "--site",
        repo().join("config/site.toml").to_str().unwrap(),
        "--cilium-version",
        "1.18",
        "--external-secret",
        "vault:x",
    ]);
    assert_eq!(no_password.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&no_password.stderr).contains("sets no BGP password"));
}
