//! What the rendered objects mean, not just that they parse: the per-family peer split, the
//! selectors that decide what is advertised, the community, and the version matrix.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use bgplb_cilium::bgp_v1::BgpPeeringPolicy;
use bgplb_cilium::bgp_v2::{BgpAdvertisement, BgpClusterConfig, BgpPeerConfig};
use bgplb_cilium::meta::LabelSelector;
use bgplb_cilium::pool::{LbIpPool, YesNo};
use bgplb_cilium::{render, Object, RenderError, RenderOptions, Rendered, Stage};
use bgplb_site::Range;
use common::{reference_site, v, VERSIONS};
use serde_json::Value;

fn rendered(version: &str) -> Rendered {
    render(
        &reference_site(),
        "home",
        v(version),
        &RenderOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{version}: {e}"))
}

fn pools(r: &Rendered) -> Vec<&LbIpPool> {
    r.objects
        .iter()
        .filter_map(|o| match o {
            Object::Pool(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn pool<'a>(r: &'a Rendered, name: &str) -> &'a LbIpPool {
    pools(r)
        .into_iter()
        .find(|p| p.metadata.name == name)
        .unwrap_or_else(|| panic!("no pool {name}"))
}

fn cluster_config(r: &Rendered) -> &BgpClusterConfig {
    r.objects
        .iter()
        .find_map(|o| match o {
            Object::ClusterConfig(c) => Some(c),
            _ => None,
        })
        .expect("a cluster config")
}

fn peer_configs(r: &Rendered) -> BTreeMap<&str, &BgpPeerConfig> {
    r.objects
        .iter()
        .filter_map(|o| match o {
            Object::PeerConfig(c) => Some((c.metadata.name.as_str(), c)),
            _ => None,
        })
        .collect()
}

fn advertisement(r: &Rendered) -> &BgpAdvertisement {
    r.objects
        .iter()
        .find_map(|o| match o {
            Object::Advertisement(a) => Some(a),
            _ => None,
        })
        .expect("an advertisement")
}

fn peering_policy(r: &Rendered) -> &BgpPeeringPolicy {
    r.objects
        .iter()
        .find_map(|o| match o {
            Object::PeeringPolicy(p) => Some(p),
            _ => None,
        })
        .expect("a peering policy")
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn api_versions_and_kinds_by_version() {
    let expect = [
        ("1.14", "cilium.io/v2alpha1", None),
        ("1.15", "cilium.io/v2alpha1", None),
        ("1.16", "cilium.io/v2alpha1", Some("cilium.io/v2alpha1")),
        ("1.17.3", "cilium.io/v2alpha1", Some("cilium.io/v2alpha1")),
        ("1.18", "cilium.io/v2", Some("cilium.io/v2")),
        ("v1.19.0", "cilium.io/v2", Some("cilium.io/v2")),
    ];
    for (version, pool_api, bgp_api) in expect {
        let r = rendered(version);
        let kinds: Vec<&str> = r.objects.iter().map(|o| o.kind()).collect();
        for o in &r.objects {
            let want = match o.kind() {
                "CiliumLoadBalancerIPPool" => pool_api,
                "CiliumBGPPeeringPolicy" => "cilium.io/v2alpha1",
                _ => bgp_api.expect("v2 BGP objects only from 1.16"),
            };
            assert_eq!(o.api_version(), want, "{version} {}", o.kind());
        }
        match bgp_api {
            None => assert_eq!(
                kinds
                    .iter()
                    .filter(|k| **k == "CiliumBGPPeeringPolicy")
                    .count(),
                1
            ),
            Some(_) => {
                assert!(!kinds.contains(&"CiliumBGPPeeringPolicy"), "{version}");
                for k in ["CiliumBGPClusterConfig", "CiliumBGPAdvertisement"] {
                    assert_eq!(
                        kinds.iter().filter(|x| **x == k).count(),
                        1,
                        "{version} {k}"
                    );
                }
                assert_eq!(
                    kinds
                        .iter()
                        .filter(|x| **x == "CiliumBGPPeerConfig")
                        .count(),
                    2
                );
            }
        }
        // Stable order: pools in site order first, then BGP.
        let names: Vec<&str> = pools(&r).iter().map(|p| p.metadata.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bgp-default",
                "bgp-ingress",
                "bgp-reserved",
                "bgp-default-ipv6"
            ]
        );
        assert!(kinds[..4].iter().all(|k| *k == "CiliumLoadBalancerIPPool"));
    }
}

#[test]
fn ipv4_and_ipv6_peers_are_separate_sessions() {
    for version in ["1.16", "1.17", "1.18", "1.19"] {
        let r = rendered(version);
        let cc = cluster_config(&r);
        assert_eq!(cc.spec.bgp_instances.len(), 1);
        let instance = &cc.spec.bgp_instances[0];
        assert_eq!(instance.local_asn, 64513);
        assert_eq!(instance.peers.len(), 2, "{version}");
        let configs = peer_configs(&r);
        let expected: [(IpAddr, &str); 2] = [
            ("172.29.51.1".parse().unwrap(), "ipv4"),
            ("fd47:25e1:2f96:51::1".parse().unwrap(), "ipv6"),
        ];
        for (peer, (address, afi)) in instance.peers.iter().zip(expected) {
            assert_eq!(peer.peer_address, address);
            assert_eq!(peer.peer_asn, 64512);
            let config = configs
                .get(peer.peer_config_ref.name.as_str())
                .unwrap_or_else(|| panic!("{version}: {} names no peer config", peer.name));
            let families: Vec<(&str, &str)> = config
                .spec
                .families
                .iter()
                .map(|f| (f.afi.as_str(), f.safi.as_str()))
                .collect();
            assert_eq!(
                families,
                [(afi, "unicast")],
                "{version}: {} carries only {afi}",
                peer.name
            );
        }
        // The two peers use different peer configs.
        assert_ne!(
            instance.peers[0].peer_config_ref.name,
            instance.peers[1].peer_config_ref.name
        );
    }
}

#[test]
fn legacy_neighbors_are_host_prefixes_with_their_own_family() {
    for version in ["1.14", "1.15"] {
        let r = rendered(version);
        let vr = &peering_policy(&r).spec.virtual_routers;
        assert_eq!(vr.len(), 1);
        assert_eq!(vr[0].local_asn, 64513);
        assert!(!vr[0].export_pod_cidr);
        let n = &vr[0].neighbors;
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].peer_address.to_string(), "172.29.51.1/32");
        assert_eq!(n[1].peer_address.to_string(), "fd47:25e1:2f96:51::1/128");
        assert!(n.iter().all(|x| x.peer_asn == 64512));
        let fam = |i: usize| -> Vec<String> {
            n[i].families
                .iter()
                .map(|f| format!("{}/{}", f.afi, f.safi))
                .collect()
        };
        if version == "1.15" {
            assert_eq!(fam(0), ["ipv4/unicast"]);
            assert_eq!(fam(1), ["ipv6/unicast"]);
        } else {
            assert!(
                fam(0).is_empty() && fam(1).is_empty(),
                "1.14 has no families field"
            );
        }
    }
}

#[test]
fn timers_and_graceful_restart_follow_the_site() {
    let mut site = reference_site();
    site.bgp.keepalive = 5;
    site.bgp.hold = 15;
    site.bgp.connect_retry = 7;
    site.bgp.restart_time = 90;
    let r = render(&site, "home", v("1.18"), &RenderOptions::default()).unwrap();
    for c in peer_configs(&r).values() {
        let t = &c.spec.timers;
        assert_eq!(
            (
                t.keep_alive_time_seconds,
                t.hold_time_seconds,
                t.connect_retry_time_seconds
            ),
            (5, 15, 7)
        );
        assert!(
            t.keep_alive_time_seconds <= t.hold_time_seconds,
            "the CRD's CEL rule"
        );
        assert!(c.spec.graceful_restart.enabled);
        assert_eq!(c.spec.graceful_restart.restart_time_seconds, Some(90));
        assert_eq!(c.spec.auth_secret_ref, None);
        assert_eq!(c.spec.ebgp_multihop, None);
    }
    let r = render(&site, "home", v("1.15"), &RenderOptions::default()).unwrap();
    for n in &peering_policy(&r).spec.virtual_routers[0].neighbors {
        assert_eq!(
            (
                n.keep_alive_time_seconds,
                n.hold_time_seconds,
                n.connect_retry_time_seconds
            ),
            (5, 15, 7)
        );
        assert_eq!(n.graceful_restart.restart_time_seconds, Some(90));
    }
    site.bgp.graceful_restart = false;
    let r = render(&site, "home", v("1.19"), &RenderOptions::default()).unwrap();
    for c in peer_configs(&r).values() {
        assert!(!c.spec.graceful_restart.enabled);
        assert_eq!(c.spec.graceful_restart.restart_time_seconds, None);
    }
}

#[test]
fn password_and_multihop() {
    let mut site = reference_site();
    site.bgp.password_file = Some("/data/bgplb/bgp-password".into());
    site.bgp.ebgp_multihop = Some(3);
    let options = RenderOptions {
        password_secret: Some("gw-md5".into()),
        ..RenderOptions::default()
    };
    let r = render(&site, "home", v("1.18"), &options).unwrap();
    for c in peer_configs(&r).values() {
        assert_eq!(c.spec.auth_secret_ref.as_deref(), Some("gw-md5"));
        assert_eq!(c.spec.ebgp_multihop, Some(3));
    }
    let ns = r
        .helm_values(Stage::Bgp)
        .bgp_control_plane
        .secrets_namespace
        .as_ref()
        .unwrap();
    assert_eq!(ns.name, "kube-system");
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("create Secret gw-md5 with key `password`")));
    let r = render(&site, "home", v("1.15"), &options).unwrap();
    for n in &peering_policy(&r).spec.virtual_routers[0].neighbors {
        assert_eq!(n.auth_secret_ref.as_deref(), Some("gw-md5"));
        assert_eq!(n.ebgp_multihop_ttl, Some(3));
    }
    let bad = RenderOptions {
        password_secret: Some("Not A Name".into()),
        ..RenderOptions::default()
    };
    assert!(matches!(
        render(&site, "home", v("1.18"), &bad),
        Err(RenderError::InvalidName { .. })
    ));
}

#[test]
fn the_advertisement_is_selected_and_selects_every_service() {
    let unlabelled = labels(&[("app", "web")]);
    let opted_out = labels(&[("app", "web"), ("bgplb.io/no-advertise", "true")]);
    for version in ["1.16", "1.17", "1.18", "1.19"] {
        let r = rendered(version);
        let ad = advertisement(&r);
        assert_eq!(ad.spec.advertisements.len(), 1);
        let a = &ad.spec.advertisements[0];
        assert_eq!(a.advertisement_type, "Service");
        assert_eq!(a.service.addresses, ["LoadBalancerIP"]);
        // Cilium advertises nothing for an empty selector.
        assert!(
            !a.selector.is_empty(),
            "{version}: empty advertisement selector"
        );
        assert!(a.selector.matches(&unlabelled));
        assert!(a.selector.matches(&BTreeMap::new()));
        assert!(!a.selector.matches(&opted_out));
        assert_eq!(a.attributes.communities.standard, ["64512:100"]);
        // Every family of every peer config selects this advertisement by its labels.
        let configs = peer_configs(&r);
        assert_eq!(configs.len(), 2);
        for c in configs.values() {
            for f in &c.spec.families {
                assert!(!f.advertisements.is_empty());
                assert!(
                    f.advertisements.matches(&ad.metadata.labels),
                    "{version}: {} does not select the advertisement",
                    c.metadata.name
                );
            }
        }
        // The cluster config selects nodes explicitly.
        assert_eq!(
            cluster_config(&r).spec.node_selector,
            LabelSelector::label("kubernetes.io/os", "linux")
        );
    }
}

#[test]
fn the_legacy_community_is_attached_to_bgplb_pools() {
    let r = rendered("1.15");
    let vr = &peering_policy(&r).spec.virtual_routers[0];
    assert!(!vr.service_selector.is_empty());
    assert!(vr.service_selector.matches(&labels(&[("app", "web")])));
    assert!(!vr
        .service_selector
        .matches(&labels(&[("bgplb.io/no-advertise", "")])));
    for n in &vr.neighbors {
        assert_eq!(n.advertised_path_attributes.len(), 1);
        let pa = &n.advertised_path_attributes[0];
        assert_eq!(pa.selector_type, "CiliumLoadBalancerIPPool");
        assert_eq!(pa.communities.standard, ["64512:100"]);
        for p in pools(&r) {
            assert!(
                pa.selector.matches(&p.metadata.labels),
                "{} not selected",
                p.metadata.name
            );
        }
        assert!(!pa
            .selector
            .matches(&labels(&[("app.kubernetes.io/managed-by", "someone-else")])));
    }
    // 1.14 cannot attach it, and says so.
    let r = rendered("1.14");
    assert!(peering_policy(&r).spec.virtual_routers[0]
        .neighbors
        .iter()
        .all(|n| n.advertised_path_attributes.is_empty()));
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("cannot attach BGP communities") && w.contains("refuse every route")));
}

#[test]
fn blocks_or_cidrs_by_version() {
    let exact = |p: &LbIpPool| -> Vec<String> {
        let mut out: Vec<String> = p.spec.cidrs.iter().map(|c| c.cidr.to_string()).collect();
        for b in &p.spec.blocks {
            match (b.cidr, b.start, b.stop) {
                (Some(c), None, None) => out.push(c.to_string()),
                (None, Some(s), Some(e)) => out.push(format!("{s}-{e}")),
                other => panic!("malformed block {other:?}"),
            }
        }
        out
    };
    let cover = |s: &str| -> Vec<String> {
        Range::parse(s)
            .unwrap()
            .cidrs()
            .iter()
            .map(|c| c.to_string())
            .collect()
    };
    // 1.14: `cidrs` only, no allowFirstLastIPs.
    let r = rendered("1.14");
    for p in pools(&r) {
        assert!(p.spec.blocks.is_empty() && !p.spec.cidrs.is_empty());
        assert_eq!(p.spec.allow_first_last_ips, None);
    }
    assert_eq!(
        exact(pool(&r, "bgp-default")),
        cover("172.29.52.100-172.29.52.199")
    );
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("pool bgp-default") && w.contains("first and last address")));
    // 1.15: `blocks`, CIDRs only, every address allocatable.
    let r = rendered("1.15");
    for p in pools(&r) {
        assert!(p.spec.cidrs.is_empty() && !p.spec.blocks.is_empty());
        assert!(p
            .spec
            .blocks
            .iter()
            .all(|b| b.cidr.is_some() && b.start.is_none()));
        assert_eq!(p.spec.allow_first_last_ips, Some(YesNo::Yes));
    }
    assert_eq!(
        exact(pool(&r, "bgp-ingress")),
        cover("172.29.52.200-172.29.52.220")
    );
    // 1.16+: ranges as start/stop, CIDRs as cidr.
    for version in ["1.16", "1.17", "1.18", "1.19"] {
        let r = rendered(version);
        for p in pools(&r) {
            assert!(p.spec.cidrs.is_empty());
            assert_eq!(p.spec.allow_first_last_ips, Some(YesNo::Yes));
        }
        assert_eq!(
            exact(pool(&r, "bgp-default")),
            ["172.29.52.100-172.29.52.199"]
        );
        assert_eq!(
            exact(pool(&r, "bgp-ingress")),
            ["172.29.52.200-172.29.52.220"]
        );
        assert_eq!(
            exact(pool(&r, "bgp-reserved")),
            ["172.29.52.50-172.29.52.99"]
        );
        assert_eq!(
            exact(pool(&r, "bgp-default-ipv6")),
            ["fd47:25e1:2f96:52:100::/120"]
        );
    }
}

#[test]
fn pool_selectors_and_disabled_pools() {
    let unlabelled = labels(&[("app", "web")]);
    let ingress = labels(&[("bgplb.io/pool", "bgp-ingress")]);
    for version in VERSIONS {
        let r = rendered(version);
        for p in pools(&r) {
            assert!(!p.spec.service_selector.is_empty());
            assert_eq!(p.metadata.labels["app.kubernetes.io/managed-by"], "bgplb");
            assert_eq!(
                p.spec.disabled,
                p.metadata.name == "bgp-reserved",
                "{version}"
            );
        }
        let takes = |l: &BTreeMap<String, String>| -> Vec<&str> {
            pools(&r)
                .into_iter()
                .filter(|p| p.spec.service_selector.matches(l))
                .map(|p| p.metadata.name.as_str())
                .collect()
        };
        // One default per family: an unlabelled dual-stack service gets an address of each.
        assert_eq!(takes(&unlabelled), ["bgp-default", "bgp-default-ipv6"]);
        assert_eq!(takes(&ingress), ["bgp-ingress"]);
    }
    // Explicit defaults, and an unknown one refused.
    let options = RenderOptions {
        default_pools: Some(vec!["bgp-ingress".into()]),
        ..RenderOptions::default()
    };
    let r = render(&reference_site(), "home", v("1.18"), &options).unwrap();
    assert!(pool(&r, "bgp-ingress")
        .spec
        .service_selector
        .matches(&unlabelled));
    assert!(!pool(&r, "bgp-default")
        .spec
        .service_selector
        .matches(&unlabelled));
    let options = RenderOptions {
        default_pools: Some(vec!["nope".into()]),
        ..RenderOptions::default()
    };
    assert!(matches!(
        render(&reference_site(), "home", v("1.18"), &options),
        Err(RenderError::UnknownDefaultPool(..))
    ));
}

#[test]
fn pools_of_other_clusters_are_left_out() {
    let mut site = reference_site();
    let mut other = site.clusters[0].clone();
    other.name = "lab".into();
    other.asn = 64514;
    other.node_subnets = vec!["172.29.53.0/24".parse().unwrap()];
    other.reserved.clear();
    other.nodes.clear();
    site.clusters.push(other);
    site.pools[1].cluster = Some("lab".into());
    assert!(site.validate().is_empty(), "{:?}", site.validate());
    let r = render(&site, "home", v("1.18"), &RenderOptions::default()).unwrap();
    assert!(pools(&r).iter().all(|p| p.metadata.name != "bgp-ingress"));
    let r = render(&site, "lab", v("1.18"), &RenderOptions::default()).unwrap();
    assert!(pools(&r).iter().any(|p| p.metadata.name == "bgp-ingress"));
    assert_eq!(cluster_config(&r).spec.bgp_instances[0].local_asn, 64514);
    // The lab has no gateway address on its node network: it peers with the site's addresses.
    assert_eq!(cluster_config(&r).spec.bgp_instances[0].peers.len(), 2);
}

#[test]
fn legacy_policy_on_request_and_refused_from_1_19() {
    let legacy = RenderOptions {
        legacy_peering_policy: true,
        ..RenderOptions::default()
    };
    for version in ["1.16", "1.18.7"] {
        let r = render(&reference_site(), "home", v(version), &legacy).unwrap();
        assert_eq!(peering_policy(&r).api_version, "cilium.io/v2alpha1");
        assert!(r
            .objects
            .iter()
            .all(|o| !o.kind().starts_with("CiliumBGP") || o.kind() == "CiliumBGPPeeringPolicy"));
        assert!(r.warnings.iter().any(|w| w.contains("removed in 1.19")));
    }
    for version in ["1.19", "1.19.4", "1.20"] {
        let err = render(&reference_site(), "home", v(version), &legacy).unwrap_err();
        assert!(matches!(
            err,
            RenderError::LegacyPeeringPolicyRemoved { .. }
        ));
        let msg = err.to_string();
        assert!(msg.contains("CiliumBGPPeeringPolicy"), "{msg}");
        assert!(msg.contains("removed in Cilium 1.19"), "{msg}");
        assert!(msg.contains("v2 BGP resources"), "{msg}");
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let site = reference_site();
    let o = RenderOptions::default();
    assert!(matches!(
        render(&site, "nope", v("1.18"), &o),
        Err(RenderError::UnknownCluster(_))
    ));
    assert!(matches!(
        render(&site, "home", v("1.13"), &o),
        Err(RenderError::UnsupportedVersion(_))
    ));
    assert!(matches!(
        render(&site, "home", v("2.0"), &o),
        Err(RenderError::UnsupportedVersion(_))
    ));

    let mut bad = site.clone();
    bad.bgp.community = "64512-100".into();
    let err = render(&bad, "home", v("1.18"), &o).unwrap_err();
    assert!(matches!(err, RenderError::InvalidSite(_)));
    assert!(err.to_string().contains("bgp.community"), "{err}");

    let mut hold0 = site.clone();
    hold0.bgp.hold = 0;
    let err = render(&hold0, "home", v("1.18"), &o).unwrap_err();
    assert!(err.to_string().contains("bgp.hold"), "{err}");

    let mut no_peer = site.clone();
    no_peer.gateway.addresses.clear();
    assert!(matches!(
        render(&no_peer, "home", v("1.18"), &o),
        Err(RenderError::NoPeerAddress { .. })
    ));

    let mut v4_only = site.clone();
    v4_only.gateway.addresses.retain(IpAddr::is_ipv4);
    let r = render(&v4_only, "home", v("1.18"), &o).unwrap();
    assert_eq!(peer_configs(&r).len(), 1);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("no ipv6 address to peer with")));

    let mut dash = site.clone();
    dash.clusters[0].name = "home-".into();
    assert!(dash.validate().is_empty());
    assert!(matches!(
        render(&dash, "home-", v("1.18"), &o),
        Err(RenderError::InvalidName { .. })
    ));

    assert!(v("1.18").to_string() == "1.18");
    assert!(bgplb_cilium::CiliumVersion::parse("latest").is_err());
}

#[test]
fn helm_values() {
    for version in VERSIONS {
        let r = rendered(version);
        for stage in Stage::ALL {
            let h: Value = serde_json::to_value(r.helm_values(stage)).unwrap();
            assert_eq!(h["bgpControlPlane"]["enabled"], true);
            assert_eq!(h["loadBalancer"]["mode"], "dsr");
            assert_eq!(h["loadBalancer"]["dsrDispatch"], "opt");
            assert_eq!(h["kubeProxyReplacement"], "true");
            assert_eq!(h["k8sServiceHost"], "localhost", "Talos KubePrism");
            assert_eq!(h["k8sServicePort"], 7445);
            assert_eq!(h["routingMode"], "native");
            assert_eq!(h["autoDirectNodeRoutes"], true);
            assert_eq!(h["ipv6"]["enabled"], true, "the site has an IPv6 pool");
            assert!(h.get("ipv4NativeRoutingCIDR").is_none());
            let text = r.helm_values_yaml(stage).unwrap();
            assert!(
                text.contains("kubeProxyReplacement: \"true\""),
                "a string, as the chart documents"
            );
            assert!(
                text.contains("connectRetryTimeSeconds"),
                "the connect-retry note"
            );
            assert!(
                text.contains(&format!(
                    "helm upgrade cilium cilium/cilium -n kube-system --version {}.x --reuse-values -f {}",
                    version,
                    stage.file_name()
                )),
                "an overlay, applied over the operator's values"
            );
        }
        // L2 stays on until the migration moved every Service; only the final stage turns it off.
        assert!(r.helm_values(Stage::Bgp).l2announcements.enabled);
        assert!(!r.helm_values(Stage::Final).l2announcements.enabled);
        let mut bgp = r.helm_values(Stage::Bgp).clone();
        bgp.l2announcements.enabled = false;
        assert_eq!(
            &bgp,
            r.helm_values(Stage::Final),
            "the stages differ only in L2"
        );
        assert!(r
            .warnings
            .iter()
            .any(|w| w.contains("ipv4NativeRoutingCIDR") && w.contains("--pod-cidr")));
        let files = r.files().unwrap();
        assert!(files.contains_key("cilium-values-1-bgp.yaml"));
        assert!(files.contains_key("cilium-values-2-final.yaml"));
    }
    let options = RenderOptions {
        pod_cidrs: vec![
            "10.244.0.0/16".parse().unwrap(),
            "fd00:10:244::/56".parse().unwrap(),
        ],
        k8s_service_host: Some("172.29.51.10".into()),
        k8s_service_port: Some(6443),
        cilium_namespace: Some("cilium".into()),
        ..RenderOptions::default()
    };
    let r = render(&reference_site(), "home", v("1.18"), &options).unwrap();
    let h = r.helm_values(Stage::Final);
    assert_eq!(
        h.ipv4_native_routing_cidr.unwrap().to_string(),
        "10.244.0.0/16"
    );
    assert_eq!(
        h.ipv6_native_routing_cidr.unwrap().to_string(),
        "fd00:10:244::/56"
    );
    assert_eq!(
        (h.k8s_service_host.as_str(), h.k8s_service_port),
        ("172.29.51.10", 6443)
    );
    let text = r.helm_values_yaml(Stage::Bgp).unwrap();
    assert!(
        text.contains("-n cilium --version 1.18.x --reuse-values"),
        "{text}"
    );
    assert!(
        !text.contains("KubePrism;"),
        "no Talos hint for an explicit address"
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn cilium_1_19_is_warned_about_local_services() {
    // cilium/cilium#44803: 1.19 advertises externalTrafficPolicy: Local VIPs from every node.
    let warned = |version: &str| {
        rendered(version)
            .warnings
            .iter()
            .any(|w| w.contains("44803") && w.contains("externalTrafficPolicy: Cluster"))
    };
    assert!(warned("1.19"));
    assert!(!warned("1.18"));
    assert!(!warned("1.16"));
}

#[test]
fn yaml_stream_reads_back_as_the_objects() {
    for version in VERSIONS {
        let r = rendered(version);
        let text = r.to_yaml().unwrap();
        assert!(text.starts_with("# Cilium objects rendered by bgplb"));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
        let json: Vec<Value> = r.objects.iter().map(|o| o.to_json().unwrap()).collect();
        assert_eq!(docs, json, "{version}");
        // YAML 1.1 readers (Kubernetes' yaml) would turn a bare Yes into a boolean.
        if version != "1.14" {
            assert!(text.contains("allowFirstLastIPs: \"Yes\""));
        }
        let files = r.files().unwrap();
        assert_eq!(files.len(), r.objects.len() + Stage::ALL.len());
        for (name, content) in &files {
            assert!(name.ends_with(".yaml") && content.ends_with('\n'), "{name}");
            let doc: Value = serde_saphyr::from_str(content).unwrap();
            assert!(doc.is_object(), "{name}");
        }
    }
}
