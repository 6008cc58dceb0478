//! The migration plan, pure: which Cilium objects to apply, which services move from the old
//! L2 addresses to which BGP addresses, which L2 policies and old pools go.
//!
//! Address choice is deterministic: a service that requested addresses keeps its requests'
//! meaning — the same host part in the new pool when that is free (172.29.51.210 → .52.210 when
//! .210 is inside the target pool), else the lowest free address — and services sharing an IP
//! (`lbipam.cilium.io/sharing-key`) move together to the same new IP.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bgplb_site::{Range, Site};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Annotation requesting specific LB IPs (Cilium ≥ 1.15).
pub const IPS_ANNOTATION: &str = "lbipam.cilium.io/ips";
/// The older annotation (Cilium < 1.15), still honoured by Cilium, replaced by the migration.
pub const LEGACY_IPS_ANNOTATION: &str = "io.cilium/lb-ipam-ips";
pub const SHARING_KEY: &str = "lbipam.cilium.io/sharing-key";
/// The sharing key's older name, still honoured.
pub const LEGACY_SHARING_KEY: &str = "io.cilium/lb-ipam-sharing-key";
/// Marks a Service the migration moves by selector (one that never requested addresses): the
/// old L2 pools stop selecting it, so LB-IPAM gives it an address from a BGP pool.
pub const MIGRATED_LABEL: &str = "bgplb.io/migrated";
/// external-dns's hostname annotation: the names whose address changes.
pub const DNS_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/hostname";
/// Label selecting a non-default pool (the renderer's pool selectors use it).
pub const POOL_LABEL: &str = "bgplb.io/pool";

/// What the cluster has now, as the API returned it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub services: Vec<Value>,
    pub pools: Vec<Value>,
    pub l2_policies: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceMove {
    pub namespace: String,
    pub name: String,
    pub old_ips: Vec<String>,
    pub new_ips: Vec<String>,
    pub pool: String,
    /// DNS names (external-dns annotation) that will point at the new addresses.
    pub dns: Vec<String>,
    /// First TCP port, for the verify phase.
    pub tcp_port: Option<u16>,
    /// The service requested its addresses (annotation or `spec.loadBalancerIP`): it moves by
    /// requesting the new ones. Otherwise it moves by selector and `new_ips` is what LB-IPAM is
    /// expected to give (recorded as given after the move).
    #[serde(default)]
    pub requested: bool,
    /// Labels the move adds so a pool selects the service (`bgplb.io/pool`).
    #[serde(default)]
    pub add_labels: BTreeMap<String, String>,
    /// The annotation that carries the request for the Cilium version (`lbipam.cilium.io/ips`
    /// from 1.15, `io.cilium/lb-ipam-ips` before).
    #[serde(default = "default_ips_annotation")]
    pub ips_annotation: String,
}

fn default_ips_annotation() -> String {
    IPS_ANNOTATION.to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub cluster: String,
    pub cilium_version: String,
    /// The rendered Cilium objects (JSON), applied in this order.
    pub objects: Vec<Value>,
    pub moves: Vec<ServiceMove>,
    /// CiliumL2AnnouncementPolicy names to remove.
    pub l2_policies: Vec<String>,
    /// CiliumLoadBalancerIPPool names not in the site (the old L2 pools), removed at cleanup.
    pub old_pools: Vec<String>,
    pub warnings: Vec<String>,
}

fn annotations(o: &Value) -> BTreeMap<String, String> {
    o.pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn meta_str<'a>(o: &'a Value, field: &str) -> &'a str {
    o.pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// What a Service requests: `spec.loadBalancerIP` and the IPs annotation (either name), merged
/// as Cilium's LB-IPAM does (`getSVCRequestedIPs`).
pub fn requested_ips(s: &Value) -> Vec<String> {
    let a = annotations(s);
    let mut ips: Vec<String> = s
        .pointer("/spec/loadBalancerIP")
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .into_iter()
        .collect();
    if let Some(req) = a
        .get(IPS_ANNOTATION)
        .or_else(|| a.get(LEGACY_IPS_ANNOTATION))
    {
        ips.extend(
            req.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty()),
        );
    }
    ips.dedup();
    ips
}

/// The sharing key, either name (`getSVCSharingKey`).
pub fn sharing_key(s: &Value) -> Option<String> {
    let a = annotations(s);
    a.get(SHARING_KEY)
        .or_else(|| a.get(LEGACY_SHARING_KEY))
        .cloned()
}

/// A Service's labels as LB-IPAM's pool selectors see them (`svcLabels`: its own plus
/// `io.kubernetes.service.name` and `.namespace`).
pub fn selector_labels(s: &Value) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = s
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    labels.insert(
        "io.kubernetes.service.name".into(),
        meta_str(s, "name").into(),
    );
    labels.insert(
        "io.kubernetes.service.namespace".into(),
        meta_str(s, "namespace").into(),
    );
    labels
}

/// Whether a pool's `serviceSelector` selects these labels (a missing selector selects all).
fn pool_selects(pool: &Value, labels: &BTreeMap<String, String>) -> bool {
    match pool.pointer("/spec/serviceSelector") {
        None | Some(Value::Null) => true,
        Some(sel) => serde_json::from_value::<bgplb_cilium::meta::LabelSelector>(sel.clone())
            .map(|s| s.matches(labels))
            .unwrap_or(false),
    }
}

/// Why two Services of one sharing key cannot share an address in Cilium's LB-IPAM
/// (`ServiceView.isCompatible`), if they cannot. From 1.17 (protocol differentiation) a port
/// clashes only with the same port of the same protocol.
fn incompatible(a: &Value, b: &Value, protocols: bool) -> Option<String> {
    if meta_str(a, "namespace") != meta_str(b, "namespace") {
        return Some("they are in different namespaces".into());
    }
    let ports = |s: &Value| -> Vec<(i64, String)> {
        s.pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["port"].as_i64()?,
                    p["protocol"].as_str().unwrap_or("TCP").to_string(),
                ))
            })
            .collect()
    };
    let (pa, pb) = (ports(a), ports(b));
    if let Some((p, proto)) = pa.iter().find(|(p, proto)| {
        pb.iter().any(|(p2, pr2)| {
            p == p2 && (!protocols || (proto == pr2 && (proto == "TCP" || proto == "UDP")))
        })
    }) {
        return Some(if protocols {
            format!("both use {proto} port {p}")
        } else {
            format!("both use port {p} (Cilium before 1.17 does not tell TCP from UDP)")
        });
    }
    let etp = |s: &Value| {
        s.pointer("/spec/externalTrafficPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Cluster")
            .to_string()
    };
    if etp(a) != etp(b) {
        return Some("their externalTrafficPolicy differs".into());
    }
    if etp(a) == "Local" && a.pointer("/spec/selector") != b.pointer("/spec/selector") {
        return Some("with externalTrafficPolicy Local they must select the same pods".into());
    }
    None
}

/// IPs a service asks for (annotation) or holds (status).
fn service_ips(s: &Value) -> (Vec<String>, bool) {
    let a = annotations(s);
    if let Some(req) = a
        .get(IPS_ANNOTATION)
        .or_else(|| a.get(LEGACY_IPS_ANNOTATION))
    {
        let ips: Vec<String> = req
            .split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect();
        return (ips, true);
    }
    let ips = s
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip").and_then(Value::as_str).map(String::from))
        .collect();
    (ips, false)
}

/// The pool blocks of an existing CiliumLoadBalancerIPPool.
pub fn pool_ranges(p: &Value) -> Vec<Range> {
    crate::project::pool_blocks(p.get("spec").unwrap_or(&Value::Null))
        .iter()
        .filter_map(|b| Range::parse(b).ok())
        .collect()
}

/// Plans the migration of `observed` to the site's BGP pools. `objects` are the rendered
/// Cilium objects as JSON.
pub fn plan(
    _site: &Site,
    cluster: &str,
    cilium_version: &str,
    objects: Vec<Value>,
    observed: &Observed,
) -> Plan {
    // The pools LB-IPAM will hand out from: the rendered, enabled ones, in order.
    let bgp_pools: Vec<(&Value, Vec<Range>)> = objects
        .iter()
        .filter(|o| o["kind"] == "CiliumLoadBalancerIPPool")
        .filter(|o| {
            !o.pointer("/spec/disabled")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .map(|o| (o, pool_ranges(o)))
        .collect();
    let in_bgp_pool = |ip: &IpAddr| {
        bgp_pools
            .iter()
            .any(|(_, rs)| rs.iter().any(|r| r.contains(*ip)))
    };
    let rendered_pool_names: BTreeSet<String> = objects
        .iter()
        .filter(|o| o["kind"] == "CiliumLoadBalancerIPPool")
        .filter_map(|o| {
            o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect();
    // Cilium 1.14 reads only the io.cilium/lb-ipam-* names (the lbipam.cilium.io/* ones came
    // with 1.15).
    let ips_annotation = if version_at_least(cilium_version, 1, 15) {
        IPS_ANNOTATION
    } else {
        LEGACY_IPS_ANNOTATION
    };
    let mut warnings = Vec::new();

    // Addresses already taken inside the BGP pools (services that stay, or moved earlier).
    let mut used: BTreeSet<IpAddr> = BTreeSet::new();
    let mut to_move: Vec<&Value> = Vec::new();
    let mut services: Vec<&Value> = observed
        .services
        .iter()
        .filter(|s| s.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer"))
        .collect();
    services.sort_by_key(|s| {
        (
            meta_str(s, "namespace").to_string(),
            meta_str(s, "name").to_string(),
        )
    });
    for s in &services {
        let who = format!(
            "service {}/{}",
            meta_str(s, "namespace"),
            meta_str(s, "name")
        );
        match s.pointer("/spec/loadBalancerClass").and_then(Value::as_str) {
            None | Some(crate::project::BGP_CLASS) => {}
            Some(L2_CLASS) => {
                warnings.push(format!(
                    "{who}: loadBalancerClass {L2_CLASS} is announced at L2 only and the class cannot be changed; recreate the service without it (it is not moved)"
                ));
                continue;
            }
            Some(other) => {
                warnings.push(format!(
                    "{who}: loadBalancerClass {other} belongs to another controller; left alone"
                ));
                continue;
            }
        }
        let (ips, _) = service_ips(s);
        let parsed: Vec<IpAddr> = ips.iter().filter_map(|i| i.parse().ok()).collect();
        if parsed.is_empty() {
            warnings.push(format!(
                "{who} has no LoadBalancer IP yet; Cilium will allocate it from the BGP pools"
            ));
            continue;
        }
        if parsed.iter().all(in_bgp_pool) {
            used.extend(parsed);
        } else {
            to_move.push(s);
        }
    }

    // Services that request addresses first: they claim specific addresses (and LB-IPAM
    // grants them as soon as they are written); the others get the first free ones after.
    to_move.sort_by_key(|s| requested_ips(s).is_empty());
    // Sharing groups (key and namespace) move together: the first member decides.
    let mut groups: BTreeMap<(String, String), (&Value, ServiceMove)> = BTreeMap::new();
    let mut moves = Vec::new();
    for s in to_move {
        let who = format!(
            "service {}/{}",
            meta_str(s, "namespace"),
            meta_str(s, "name")
        );
        let a = annotations(s);
        let (status_ips, _) = service_ips(s);
        let requested = requested_ips(s);
        let is_requested = !requested.is_empty();
        let group = sharing_key(s).map(|k| (meta_str(s, "namespace").to_string(), k));
        let dns: Vec<String> = a
            .get(DNS_ANNOTATION)
            .map(|d| {
                d.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let tcp_port = s
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("protocol").and_then(Value::as_str).unwrap_or("TCP") == "TCP")
            .and_then(|p| p.get("port").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok());
        let old_ips = if is_requested {
            requested.clone()
        } else {
            status_ips.clone()
        };
        // A service kept out of BGP moves too (its address leaves the node network with the L2
        // pool), but nothing advertises it: the verify phase cannot reach it from the gateway.
        let advertised = s
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .is_none_or(|l| !l.contains_key(bgplb_cilium::naming::NO_ADVERTISE_KEY));
        if !advertised {
            warnings.push(format!(
                "{who} is labelled {}: it moves, but BGP does not advertise it (not verified from the gateway)",
                bgplb_cilium::naming::NO_ADVERTISE_KEY
            ));
        }
        let tcp_port = tcp_port.filter(|_| advertised);
        if let Some(g) = group.as_ref().and_then(|g| groups.get(g)) {
            let (leader, lm) = g;
            if let Some(why) = incompatible(leader, s, version_at_least(cilium_version, 1, 17)) {
                warnings.push(format!(
                    "{who} shares key `{}` with {}/{} but Cilium will not let them share an address: {why}",
                    group.as_ref().map(|g| g.1.as_str()).unwrap_or_default(),
                    meta_str(leader, "namespace"),
                    meta_str(leader, "name")
                ));
            }
            moves.push(ServiceMove {
                namespace: meta_str(s, "namespace").to_string(),
                name: meta_str(s, "name").to_string(),
                old_ips,
                new_ips: lm.new_ips.clone(),
                pool: lm.pool.clone(),
                dns,
                tcp_port,
                requested: is_requested,
                add_labels: lm.add_labels.clone(),
                ips_annotation: ips_annotation.to_string(),
            });
            continue;
        }
        let mut labels = selector_labels(s);
        let has_pool_label = labels.contains_key(POOL_LABEL);
        let (v4, v6) = requested_families(s);
        let mut new_ips = Vec::new();
        let mut pool_name = String::new();
        let mut add_labels = BTreeMap::new();
        // The addresses to replace: a requesting service keeps its requests' meaning (one new
        // address per old one); one that never requested gets what LB-IPAM gives per family.
        let wanted: Vec<(bool, Option<IpAddr>)> = if is_requested {
            old_ips
                .iter()
                .filter_map(|i| i.parse::<IpAddr>().ok())
                .map(|ip| (ip.is_ipv4(), Some(ip)))
                .collect()
        } else {
            [(true, v4), (false, v6)]
                .into_iter()
                .filter(|(_, want)| *want)
                .map(|(fam, _)| {
                    let old = status_ips
                        .iter()
                        .filter_map(|i| i.parse::<IpAddr>().ok())
                        .find(|ip| ip.is_ipv4() == fam);
                    (fam, old)
                })
                .collect()
        };
        let single_family = wanted.iter().all(|(f, _)| *f == wanted[0].0);
        for (fam, old) in wanted {
            let of_family: Vec<&(&Value, Vec<Range>)> = bgp_pools
                .iter()
                .filter(|(_, rs)| rs.iter().any(|r| r.is_ipv4() == fam))
                .collect();
            let selecting: Vec<&&(&Value, Vec<Range>)> = of_family
                .iter()
                .filter(|(p, _)| pool_selects(p, &labels))
                .collect();
            let name_of = |p: &Value| meta_str(p, "name").to_string();
            let mut chosen: Option<(IpAddr, String)> = None;
            if let (true, Some(old)) = (is_requested, old) {
                // The same host part in a pool that selects the service...
                chosen = selecting
                    .iter()
                    .find_map(|(p, rs)| same_host(old, rs, &used).map(|a| (a, name_of(p))));
                // ... or in a pool that would with its `bgplb.io/pool` label (said in the plan).
                if chosen.is_none() && !has_pool_label && single_family {
                    for (p, rs) in &of_family {
                        let Some(a) = same_host(old, rs, &used) else {
                            continue;
                        };
                        let mut with = labels.clone();
                        with.insert(POOL_LABEL.into(), name_of(p));
                        if pool_selects(p, &with) {
                            add_labels.insert(POOL_LABEL.to_string(), name_of(p));
                            labels = with;
                            chosen = Some((a, name_of(p)));
                            break;
                        }
                    }
                }
            }
            // LB-IPAM's own choice: the first free address of the first selecting pool.
            let chosen = chosen.or_else(|| {
                selecting.iter().find_map(|(p, rs)| {
                    lowest_free(
                        if fam {
                            IpAddr::from([0, 0, 0, 0])
                        } else {
                            IpAddr::from([0u16; 8])
                        },
                        rs,
                        &used,
                    )
                    .map(|a| (a, name_of(p)))
                })
            });
            match chosen {
                Some((a, name)) => {
                    used.insert(a);
                    new_ips.push(a.to_string());
                    pool_name = name;
                }
                None => warnings.push(format!(
                    "{who}: no BGP pool selects it with a free {} address; it cannot move",
                    if fam { "IPv4" } else { "IPv6" }
                )),
            }
        }
        if new_ips.is_empty() {
            continue;
        }
        if !add_labels.is_empty() {
            warnings.push(format!(
                "{who}: gets the label {POOL_LABEL}={pool_name} so that pool's selector grants {}",
                new_ips.join(",")
            ));
        }
        let m = ServiceMove {
            namespace: meta_str(s, "namespace").to_string(),
            name: meta_str(s, "name").to_string(),
            old_ips,
            new_ips,
            pool: pool_name,
            dns,
            tcp_port,
            requested: is_requested,
            add_labels,
            ips_annotation: ips_annotation.to_string(),
        };
        if let Some(g) = group {
            groups.insert(g, (s, m.clone()));
        }
        moves.push(m);
    }

    let old_pools: Vec<String> = observed
        .pools
        .iter()
        .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str))
        .filter(|n| !rendered_pool_names.contains(*n))
        .map(String::from)
        .collect();
    let l2_policies = observed
        .l2_policies
        .iter()
        .filter_map(|p| {
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect();
    Plan {
        cluster: cluster.to_string(),
        cilium_version: cilium_version.to_string(),
        objects,
        moves,
        l2_policies,
        old_pools,
        warnings,
    }
}

/// Cilium's L2-announcement load-balancer class.
pub const L2_CLASS: &str = "io.cilium/l2-announcer";

/// The families LB-IPAM gives a Service that requests no address (`serviceIPFamilyRequest`,
/// both families enabled).
pub fn requested_families(s: &Value) -> (bool, bool) {
    let families: Vec<&str> = s
        .pointer("/spec/ipFamilies")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match s.pointer("/spec/ipFamilyPolicy").and_then(Value::as_str) {
        Some("RequireDualStack") => (true, true),
        Some("PreferDualStack") if families.is_empty() => (true, true),
        Some("PreferDualStack") => (families.contains(&"IPv4"), families.contains(&"IPv6")),
        _ => match families.first() {
            Some(&"IPv6") => (false, true),
            _ => (true, false),
        },
    }
}

/// Whether a Cilium version string (`1.18.2`) is at least `major.minor`.
fn version_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut parts = v
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// The address with `old`'s host part (last octet / last 16 bits) in `ranges`, when free.
fn same_host(old: IpAddr, ranges: &[Range], used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    ranges
        .iter()
        .filter(|r| r.is_ipv4() == old.is_ipv4())
        .find_map(|r| {
            let cand = match (old, r.start) {
                (IpAddr::V4(v4), IpAddr::V4(start)) => {
                    let o = start.octets();
                    IpAddr::from([o[0], o[1], o[2], v4.octets()[3]])
                }
                (IpAddr::V6(v6), IpAddr::V6(start)) => {
                    let mut seg = start.segments();
                    seg[7] = v6.segments()[7];
                    IpAddr::from(seg)
                }
                _ => return None,
            };
            (r.contains(cand) && !used.contains(&cand)).then_some(cand)
        })
}

/// The lowest free address of `old`'s family in `ranges`.
fn lowest_free(old: IpAddr, ranges: &[Range], used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    ranges
        .iter()
        .filter(|r| r.is_ipv4() == old.is_ipv4())
        .find_map(|r| {
            // Bounded: stop after 65536 addresses of one range.
            let mut ip = r.start;
            for _ in 0..65_536 {
                if !used.contains(&ip) {
                    return Some(ip);
                }
                if ip == r.end {
                    return None;
                }
                ip = next(ip)?;
            }
            None
        })
}

fn next(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v) => u32::from(v).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(v) => u128::from(v).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}

/// The service after its move. One that requested addresses requests the new ones (under the
/// name its Cilium reads; the other name and `spec.loadBalancerIP` go, since LB-IPAM merges them
/// all). One that never requested is only marked [`MIGRATED_LABEL`]: the old pools stop
/// selecting it and LB-IPAM gives it an address from a BGP pool by selector, as before. Both get
/// the labels the plan adds.
pub fn moved_service(current: &Value, m: &ServiceMove) -> Value {
    let mut s = current.clone();
    let meta = s["metadata"].as_object_mut();
    if let Some(meta) = meta {
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Value::Object(l) = labels {
            for (k, v) in &m.add_labels {
                l.insert(k.clone(), Value::String(v.clone()));
            }
            if !m.requested {
                l.insert(MIGRATED_LABEL.into(), Value::String("true".into()));
            }
        }
        if m.requested {
            let ann = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(a) = ann {
                a.remove(LEGACY_IPS_ANNOTATION);
                a.remove(IPS_ANNOTATION);
                a.insert(m.ips_annotation.clone(), Value::String(m.new_ips.join(",")));
            }
        }
    }
    if m.requested {
        if let Some(spec) = s["spec"].as_object_mut() {
            spec.remove("loadBalancerIP");
        }
    }
    s
}

/// An old pool that no longer selects the services the migration moves by selector.
pub fn old_pool_without_migrated(pool: &Value) -> Value {
    let mut p = pool.clone();
    let sel = &mut p["spec"]["serviceSelector"];
    if !sel.is_object() {
        *sel = serde_json::json!({});
    }
    let exprs = &mut sel["matchExpressions"];
    if !exprs.is_array() {
        *exprs = serde_json::json!([]);
    }
    let req = serde_json::json!({"key": MIGRATED_LABEL, "operator": "DoesNotExist"});
    if let Some(a) = exprs.as_array_mut() {
        if !a.contains(&req) {
            a.push(req);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn site() -> Site {
        bgplb_site::parse(include_str!("../../../config/site.toml")).unwrap()
    }

    fn svc(ns: &str, name: &str, ips: &[&str], ann: &[(&str, &str)]) -> Value {
        let annotations: serde_json::Map<String, Value> =
            ann.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations},
            "spec": {"type": "LoadBalancer", "ports": [{"port": 443, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": ips.iter().map(|i| json!({"ip": i})).collect::<Vec<_>>()}}
        })
    }

    /// The pools as the renderer makes them for the reference site and Cilium 1.18.
    fn rendered() -> Vec<Value> {
        let (objects, _) = super::super::rendered_objects(&site(), "home", "1.18").unwrap();
        objects
            .into_iter()
            .filter(|o| o["kind"] == "CiliumLoadBalancerIPPool")
            .collect()
    }

    fn with_ports(mut s: Value, ports: Value) -> Value {
        s["spec"]["ports"] = ports;
        s
    }

    #[test]
    fn services_move_where_lb_ipam_will_grant_it() {
        let observed = Observed {
            services: vec![
                // Requested, same host part in bgp-ingress, which selects only its label.
                svc(
                    "ingress",
                    "traefik",
                    &["172.29.51.200"],
                    &[
                        (IPS_ANNOTATION, "172.29.51.200"),
                        (DNS_ANNOTATION, "home.example.org"),
                    ],
                ),
                // The legacy names; a TCP/UDP pair sharing one address.
                with_ports(
                    svc(
                        "net",
                        "dns-tcp",
                        &["172.29.51.153"],
                        &[
                            (LEGACY_IPS_ANNOTATION, "172.29.51.153"),
                            (LEGACY_SHARING_KEY, "dns"),
                        ],
                    ),
                    json!([{"port": 53, "protocol": "TCP"}]),
                ),
                with_ports(
                    svc(
                        "net",
                        "dns-udp",
                        &["172.29.51.153"],
                        &[(LEGACY_SHARING_KEY, "dns")],
                    ),
                    json!([{"port": 53, "protocol": "UDP"}]),
                ),
                // Never requested: moves by selector, gets what LB-IPAM gives.
                svc("web", "dynamic", &["172.29.51.230"], &[]),
                svc("web", "already", &["172.29.52.120"], &[]),
                svc("web", "pending", &[], &[]),
            ],
            pools: vec![
                json!({"metadata": {"name": "l2-pool"}, "spec": {"blocks": [{"start": "172.29.51.150", "stop": "172.29.51.250"}]}}),
            ],
            l2_policies: vec![json!({"metadata": {"name": "l2-default"}})],
        };
        let mut with_lbip = svc("web", "pinned-by-spec", &["172.29.51.240"], &[]);
        with_lbip["spec"]["loadBalancerIP"] = json!("172.29.51.240");
        let mut observed = observed;
        observed.services.push(with_lbip.clone());
        let p = plan(&site(), "home", "1.18.2", rendered(), &observed);
        let by_name: BTreeMap<&str, &ServiceMove> =
            p.moves.iter().map(|m| (m.name.as_str(), m)).collect();
        let t = by_name["traefik"];
        assert_eq!(t.new_ips, ["172.29.52.200"]);
        assert_eq!(t.pool, "bgp-ingress");
        assert_eq!(
            t.add_labels.get(POOL_LABEL).map(String::as_str),
            Some("bgp-ingress"),
            "the label bgp-ingress selects, said in the plan"
        );
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("gets the label bgplb.io/pool=bgp-ingress")));
        assert_eq!(t.dns, ["home.example.org"]);
        // .153 has no same-host address in a pool that selects an unlabelled service... it does:
        // bgp-default (100-199) selects services without the pool label.
        assert_eq!(by_name["dns-tcp"].new_ips, ["172.29.52.153"]);
        assert!(by_name["dns-tcp"].add_labels.is_empty());
        assert_eq!(
            by_name["dns-udp"].new_ips, by_name["dns-tcp"].new_ips,
            "one address"
        );
        assert!(!by_name["dns-udp"].requested);
        assert!(
            !p.warnings
                .iter()
                .any(|w| w.contains("will not let them share")),
            "TCP/53 and UDP/53 may share from Cilium 1.17: {:?}",
            p.warnings
        );
        let d = by_name["dynamic"];
        assert!(!d.requested);
        // Requests are claimed first (pinned-by-spec takes .100), then LB-IPAM's first free one.
        assert_eq!(by_name["pinned-by-spec"].new_ips, ["172.29.52.100"]);
        assert_eq!(
            d.new_ips,
            ["172.29.52.101"],
            "the first free address LB-IPAM gives"
        );
        assert!(!by_name.contains_key("already") && !by_name.contains_key("pending"));
        assert!(by_name["pinned-by-spec"].requested);
        assert_eq!(p.old_pools, ["l2-pool"]);
        assert_eq!(p.l2_policies, ["l2-default"]);

        // The moved objects: requests under the version's name, spec.loadBalancerIP cleared.
        let moved = moved_service(&with_lbip, by_name["pinned-by-spec"]);
        assert!(moved["spec"].get("loadBalancerIP").is_none());
        assert_eq!(
            moved["metadata"]["annotations"][IPS_ANNOTATION],
            by_name["pinned-by-spec"].new_ips.join(",")
        );
        let dynamic = moved_service(&observed.services[3], d);
        assert_eq!(dynamic["metadata"]["labels"][MIGRATED_LABEL], "true");
        assert!(dynamic["metadata"]["annotations"]
            .get(IPS_ANNOTATION)
            .is_none());
        let old = old_pool_without_migrated(&observed.pools[0]);
        assert!(!pool_selects(&old, &selector_labels(&dynamic)));
        assert!(pool_selects(&old, &selector_labels(&observed.services[3])));
    }

    #[test]
    fn before_1_17_a_tcp_udp_pair_cannot_share_and_1_14_gets_the_old_names() {
        let observed = Observed {
            services: vec![
                with_ports(
                    svc(
                        "net",
                        "dns-tcp",
                        &["172.29.51.153"],
                        &[(SHARING_KEY, "dns"), (IPS_ANNOTATION, "172.29.51.153")],
                    ),
                    json!([{"port": 53, "protocol": "TCP"}]),
                ),
                with_ports(
                    svc(
                        "net",
                        "dns-udp",
                        &["172.29.51.153"],
                        &[(SHARING_KEY, "dns")],
                    ),
                    json!([{"port": 53, "protocol": "UDP"}]),
                ),
            ],
            ..Default::default()
        };
        let p = plan(&site(), "home", "1.16.5", rendered(), &observed);
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("does not tell TCP from UDP")),
            "{:?}",
            p.warnings
        );
        let p = plan(&site(), "home", "1.14.9", rendered(), &observed);
        assert_eq!(p.moves[0].ips_annotation, LEGACY_IPS_ANNOTATION);
    }
}
