//! Every rendered object against Cilium's CRD schemas, and proof that the check can fail.

mod common;

use std::path::PathBuf;

use bgplb_cilium::{render, RenderOptions, Rendered};
use common::{crd_problems, reference_site, v, VERSIONS};
use serde_json::{json, Value};

fn assert_valid(rendered: &Rendered, context: &str) {
    assert!(!rendered.objects.is_empty());
    for o in &rendered.objects {
        let json = o.to_json().unwrap();
        let problems = crd_problems(&json, rendered.version);
        assert!(
            problems.is_empty(),
            "{context}: {} {} (Cilium {}) fails its CRD:\n  {}",
            o.kind(),
            o.name(),
            rendered.version,
            problems.join("\n  ")
        );
    }
}

fn variant_site() -> bgplb_site::Site {
    let mut site = reference_site();
    site.bgp.password_file = Some(PathBuf::from("/data/bgplb/bgp-password"));
    site.bgp.ebgp_multihop = Some(2);
    site.bgp.graceful_restart = false;
    site
}

#[test]
fn every_object_of_every_version_matches_its_crd() {
    let options = RenderOptions::default();
    for version in VERSIONS {
        let r = render(&reference_site(), "home", v(version), &options).unwrap();
        assert_valid(&r, "reference site");
        let r = render(&variant_site(), "home", v(version), &options).unwrap();
        assert_valid(&r, "password + multihop, no graceful restart");
    }
}

#[test]
fn the_legacy_peering_policy_matches_its_crd_where_it_exists() {
    let options = RenderOptions {
        legacy_peering_policy: true,
        ..RenderOptions::default()
    };
    for version in ["1.14", "1.15", "1.16", "1.17", "1.18.5"] {
        for site in [reference_site(), variant_site()] {
            let r = render(&site, "home", v(version), &options).unwrap();
            assert!(r
                .objects
                .iter()
                .any(|o| o.kind() == "CiliumBGPPeeringPolicy"));
            assert_valid(&r, "legacy peering policy");
        }
    }
}

/// A valid rendered object, as JSON, to break.
fn rendered(kind: &str, version: &str) -> Value {
    let r = render(
        &reference_site(),
        "home",
        v(version),
        &RenderOptions::default(),
    )
    .unwrap();
    let o = r
        .objects
        .iter()
        .find(|o| o.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered for {version}"));
    let json = o.to_json().unwrap();
    assert!(crd_problems(&json, v(version)).is_empty(), "starts valid");
    json
}

fn assert_fails(object: &Value, version: &str, expect: &str) {
    let problems = crd_problems(object, v(version));
    assert!(
        problems.iter().any(|p| p.contains(expect)),
        "expected a problem mentioning {expect:?}, got {problems:?}"
    );
}

#[test]
fn a_wrong_type_fails() {
    let mut o = rendered("CiliumBGPPeerConfig", "1.18");
    o["spec"]["timers"]["holdTimeSeconds"] = json!("9");
    assert_fails(&o, "1.18", "/spec/timers/holdTimeSeconds");

    let mut o = rendered("CiliumLoadBalancerIPPool", "1.16");
    o["spec"]["allowFirstLastIPs"] = json!(true);
    assert_fails(&o, "1.16", "/spec/allowFirstLastIPs");

    let mut o = rendered("CiliumBGPClusterConfig", "1.19");
    o["spec"]["bgpInstances"][0]["localASN"] = json!(0);
    assert_fails(&o, "1.19", "/spec/bgpInstances/0/localASN");

    let mut o = rendered("CiliumBGPAdvertisement", "1.17");
    o["spec"]["advertisements"][0]["attributes"]["communities"]["standard"] = json!(["64512-100"]);
    assert_fails(&o, "1.17", "communities/standard/0");
}

#[test]
fn an_unknown_field_fails() {
    // A typo the API server would silently prune: the schema has no additionalProperties here.
    let mut o = rendered("CiliumBGPPeerConfig", "1.18");
    o["spec"]["timers"]["holdTimeSecond"] = json!(9);
    assert_fails(&o, "1.18", ".spec.timers.holdTimeSecond: not declared");

    let mut o = rendered("CiliumLoadBalancerIPPool", "1.19");
    o["spec"]["cidrs"] = json!([{ "cidr": "172.29.52.0/24" }]);
    assert_fails(&o, "1.19", ".spec.cidrs: not declared");

    let mut o = rendered("CiliumBGPPeeringPolicy", "1.15");
    o["spec"]["virtualRouters"][0]["neighbors"][0]["ebgpMultihop"] = json!(2);
    assert_fails(&o, "1.15", "neighbors[0].ebgpMultihop: not declared");

    // v2 dropped transport.localPort and peerConfigRef.kind; v2alpha1 still has them.
    let mut o = rendered("CiliumBGPClusterConfig", "1.18");
    o["spec"]["bgpInstances"][0]["peers"][0]["peerConfigRef"]["kind"] =
        json!("CiliumBGPPeerConfig");
    assert_fails(&o, "1.18", "peerConfigRef.kind: not declared");
    let mut o = rendered("CiliumBGPClusterConfig", "1.17");
    o["spec"]["bgpInstances"][0]["peers"][0]["peerConfigRef"]["kind"] =
        json!("CiliumBGPPeerConfig");
    assert!(crd_problems(&o, v("1.17")).is_empty());

    let mut o = rendered("CiliumBGPAdvertisement", "1.16");
    o["metadata"]["namespace"] = json!("kube-system");
    assert_fails(&o, "1.16", "metadata.namespace");
}

#[test]
fn a_field_the_version_does_not_have_fails() {
    // 1.14's pool CRD has only `cidrs`; `blocks` and allowFirstLastIPs came with 1.15.
    let mut o = rendered("CiliumLoadBalancerIPPool", "1.14");
    o["spec"]["allowFirstLastIPs"] = json!("Yes");
    assert_fails(&o, "1.14", ".spec.allowFirstLastIPs: not declared");
    // An apiVersion the CRD does not serve.
    let mut o = rendered("CiliumLoadBalancerIPPool", "1.14");
    o["apiVersion"] = json!("cilium.io/v2");
    assert_fails(&o, "1.14", "has no version v2");
}
