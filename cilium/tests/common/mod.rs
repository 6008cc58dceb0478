//! Shared by the integration tests: the reference site, and validation of rendered objects
//! against Cilium's published CRD schemas (vendored in tests/crds, or $BGPLB_CILIUM_CRDS).
//!
//! A rendered object passes when
//! 1. its kind and apiVersion are a served version of the CRD for that kind,
//! 2. it validates against that version's `openAPIV3Schema` (the `jsonschema` crate, draft 4,
//!    which OpenAPI v3 schemas follow; Kubernetes extensions such as CEL rules are not checked
//!    here — the semantic tests cover the ones that matter),
//! 3. no field is undeclared: the API server prunes unknown fields silently, so a misspelled field
//!    would vanish instead of failing. Every object key must be in the schema's `properties` (or
//!    allowed by `additionalProperties` / `x-kubernetes-preserve-unknown-fields`); `metadata`
//!    may only hold `name` and `labels`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bgplb_cilium::CiliumVersion;
use bgplb_site::Site;
use serde_json::Value;

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The reference site, config/site.toml.
pub fn reference_site_path() -> PathBuf {
    manifest_dir().join("../config/site.toml")
}

pub fn load_site(path: &Path) -> Site {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let site = bgplb_site::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let problems = site.validate();
    assert!(problems.is_empty(), "{}: {problems:?}", path.display());
    site
}

pub fn reference_site() -> Site {
    load_site(&reference_site_path())
}

pub fn v(s: &str) -> CiliumVersion {
    CiliumVersion::parse(s).expect("test version")
}

/// Every minor release the renderer distinguishes, oldest first.
pub const VERSIONS: [&str; 6] = ["1.14", "1.15", "1.16", "1.17", "1.18", "1.19"];

/// Where the CRD manifests are: $BGPLB_CILIUM_CRDS, else the copy vendored in `tests/crds`
/// (see its README for the Cilium commit each file comes from).
pub fn crd_dir() -> PathBuf {
    let dir = std::env::var_os("BGPLB_CILIUM_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("tests/crds"));
    assert!(
        dir.join("v2").is_dir() && dir.join("v2alpha1").is_dir(),
        "Cilium CRD manifests not found in {} (vendored in cilium/tests/crds)",
        dir.display()
    );
    dir
}

/// The CRD manifest for `kind` as installed by Cilium `cilium`.
///
/// The pool has two manifests of the same CRD. `v2/ciliumloadbalancerippools.yaml` (both the v2
/// and the v2alpha1 schema, with `blocks` and `allowFirstLastIPs`) is the pool of Cilium ≥ 1.15;
/// `v2alpha1/ciliumloadbalancerippools.yaml` is the older copy with only `cidrs`, the pool as
/// Cilium 1.14 installs it (its newer sibling no longer declares `cidrs`, removed in 1.16).
pub fn crd_file(kind: &str, cilium: CiliumVersion) -> PathBuf {
    let dir = crd_dir();
    let file = match kind {
        "CiliumLoadBalancerIPPool" if cilium < v("1.15") => {
            "v2alpha1/ciliumloadbalancerippools.yaml"
        }
        "CiliumLoadBalancerIPPool" => "v2/ciliumloadbalancerippools.yaml",
        "CiliumBGPClusterConfig" => "v2/ciliumbgpclusterconfigs.yaml",
        "CiliumBGPPeerConfig" => "v2/ciliumbgppeerconfigs.yaml",
        "CiliumBGPAdvertisement" => "v2/ciliumbgpadvertisements.yaml",
        "CiliumBGPPeeringPolicy" => "v2alpha1/ciliumbgppeeringpolicies.yaml",
        other => panic!("no CRD manifest known for kind {other}"),
    };
    dir.join(file)
}

pub fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `openAPIV3Schema` of the served CRD version matching `object`'s apiVersion.
pub fn schema_for(object: &Value, cilium: CiliumVersion) -> Result<Value, String> {
    let kind = object["kind"].as_str().ok_or("object has no kind")?;
    let api_version = object["apiVersion"]
        .as_str()
        .ok_or("object has no apiVersion")?;
    let (group, version) = api_version
        .split_once('/')
        .ok_or_else(|| format!("apiVersion {api_version} has no group"))?;
    let path = crd_file(kind, cilium);
    let crd = read_yaml(&path);
    if crd["spec"]["group"] != group || crd["spec"]["names"]["kind"] != kind {
        return Err(format!(
            "{} is the CRD of {}/{}, not of {kind} in {group}",
            path.display(),
            crd["spec"]["group"],
            crd["spec"]["names"]["kind"]
        ));
    }
    if crd["spec"]["scope"] != "Cluster" {
        return Err(format!("{kind} is not cluster-scoped"));
    }
    let versions = crd["spec"]["versions"]
        .as_array()
        .ok_or("CRD without versions")?;
    let entry = versions
        .iter()
        .find(|e| e["name"] == version)
        .ok_or_else(|| format!("{} has no version {version} of {kind}", path.display()))?;
    if entry["served"] != true {
        return Err(format!("{kind} {version} is not served"));
    }
    Ok(entry["schema"]["openAPIV3Schema"].clone())
}

/// Every problem with `object` as the CRD of Cilium `cilium` sees it (empty: valid).
pub fn crd_problems(object: &Value, cilium: CiliumVersion) -> Vec<String> {
    let schema = match schema_for(object, cilium) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    match jsonschema::draft4::new(&schema) {
        Ok(validator) => {
            for e in validator.iter_errors(object) {
                problems.push(format!("{}: {e}", e.instance_path()));
            }
        }
        Err(e) => problems.push(format!("schema does not compile: {e}")),
    }
    undeclared(object, &schema, "", true, &mut problems);
    problems
}

/// Fields the API server would prune: not in `properties`, not allowed by
/// `additionalProperties`, not under `x-kubernetes-preserve-unknown-fields`.
pub fn undeclared(value: &Value, schema: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve =
                schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            for (k, v) in map {
                let here = format!("{path}.{k}");
                if root && k == "metadata" {
                    metadata(v, &here, out);
                } else if let Some(s) = props.and_then(|p| p.get(k)) {
                    undeclared(v, s, &here, false, out);
                } else if let Some(a) = additional.filter(|a| a.is_object()) {
                    undeclared(v, a, &here, false, out);
                } else if additional != Some(&Value::Bool(true)) && !preserve {
                    out.push(format!(
                        "{here}: not declared in the schema (the API server would prune it)"
                    ));
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    undeclared(item, s, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

fn metadata(value: &Value, path: &str, out: &mut Vec<String>) {
    let Some(map) = value.as_object() else {
        out.push(format!("{path}: not an object"));
        return;
    };
    for (k, v) in map {
        match k.as_str() {
            "name" => {
                let ok = v.as_str().is_some_and(|s| {
                    !s.is_empty()
                        && s.len() <= 253
                        && s.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                        })
                });
                if !ok {
                    out.push(format!("{path}.name: {v} is not a DNS subdomain"));
                }
            }
            "labels" => {
                for (lk, lv) in v.as_object().into_iter().flatten() {
                    let value_ok = lv.as_str().is_some_and(|s| {
                        s.len() <= 63
                            && s.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
                            })
                    });
                    if !value_ok || lk.is_empty() {
                        out.push(format!("{path}.labels.{lk}: invalid label {lv}"));
                    }
                }
            }
            other => out.push(format!("{path}.{other}: bgplb sets only name and labels")),
        }
    }
}
