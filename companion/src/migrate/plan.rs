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

/// The site's enabled pools for `cluster`, by name, in file order.
fn site_pools(site: &Site, cluster: &str) -> Vec<(String, Vec<Range>)> {
    site.pools
        .iter()
        .filter(|p| !p.disabled && p.cluster.as_deref().is_none_or(|c| c == cluster))
        .map(|p| {
            (
                p.name.clone(),
                p.blocks
                    .iter()
                    .filter_map(|b| Range::parse(b).ok())
                    .collect(),
            )
        })
        .collect()
}

/// Plans the migration of `observed` to the site's BGP pools. `objects` are the rendered
/// Cilium objects as JSON.
pub fn plan(
    site: &Site,
    cluster: &str,
    cilium_version: &str,
    objects: Vec<Value>,
    observed: &Observed,
) -> Plan {
    let pools = site_pools(site, cluster);
    let in_bgp_pool = |ip: &IpAddr| {
        pools
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
        let (ips, _) = service_ips(s);
        let parsed: Vec<IpAddr> = ips.iter().filter_map(|i| i.parse().ok()).collect();
        if parsed.is_empty() {
            warnings.push(format!(
                "service {}/{} has no LoadBalancer IP yet; Cilium will allocate it from the BGP pools",
                meta_str(s, "namespace"),
                meta_str(s, "name")
            ));
            continue;
        }
        if parsed.iter().all(in_bgp_pool) {
            used.extend(parsed);
        } else {
            to_move.push(s);
        }
    }

    // Sharing groups move together.
    let mut assigned_by_key: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    let mut moves = Vec::new();
    for s in to_move {
        let (old, _) = service_ips(s);
        let a = annotations(s);
        let labels_pool = s
            .pointer(&format!(
                "/metadata/labels/{}",
                POOL_LABEL.replace('/', "~1")
            ))
            .and_then(Value::as_str);
        let (new_ips, pool_name) = match a.get(SHARING_KEY).and_then(|k| assigned_by_key.get(k)) {
            Some(done) => done.clone(),
            None => {
                let mut new_ips = Vec::new();
                let mut pool_name = String::new();
                for ip in old.iter().filter_map(|i| i.parse::<IpAddr>().ok()) {
                    let candidates: Vec<&(String, Vec<Range>)> = match labels_pool {
                        Some(p) => pools.iter().filter(|(n, _)| n == p).collect(),
                        None => pools.iter().collect(),
                    };
                    let family: Vec<&(String, Vec<Range>)> = candidates
                        .into_iter()
                        .filter(|(_, rs)| rs.iter().any(|r| r.is_ipv4() == ip.is_ipv4()))
                        .collect();
                    if family.is_empty() {
                        warnings.push(format!(
                            "service {}/{}: no enabled BGP pool for {ip}'s address family; it keeps {ip}",
                            meta_str(s, "namespace"),
                            meta_str(s, "name")
                        ));
                        continue;
                    }
                    let chosen = family
                        .iter()
                        .find_map(|(name, rs)| same_host(ip, rs, &used).map(|a| (name, a)))
                        .or_else(|| {
                            family.iter().find_map(|(name, rs)| {
                                lowest_free(ip, rs, &used).map(|a| (name, a))
                            })
                        });
                    match chosen {
                        Some((name, new)) => {
                            used.insert(new);
                            new_ips.push(new.to_string());
                            pool_name = name.clone();
                        }
                        None => warnings.push(format!(
                            "no free address in the BGP pools: service {}/{} cannot move",
                            meta_str(s, "namespace"),
                            meta_str(s, "name")
                        )),
                    }
                }
                if let Some(k) = a.get(SHARING_KEY) {
                    assigned_by_key.insert(k.clone(), (new_ips.clone(), pool_name.clone()));
                }
                (new_ips, pool_name)
            }
        };
        if new_ips.is_empty() {
            continue;
        }
        let dns = a
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
        moves.push(ServiceMove {
            namespace: meta_str(s, "namespace").to_string(),
            name: meta_str(s, "name").to_string(),
            old_ips: old,
            new_ips,
            pool: pool_name,
            dns,
            tcp_port,
        });
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

/// The service after its move: the new addresses requested, the legacy annotation gone.
pub fn moved_service(current: &Value, m: &ServiceMove) -> Value {
    let mut s = current.clone();
    let ann = s["metadata"].as_object_mut().map(|meta| {
        meta.entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()))
    });
    if let Some(Value::Object(a)) = ann {
        a.remove(LEGACY_IPS_ANNOTATION);
        a.insert(IPS_ANNOTATION.into(), Value::String(m.new_ips.join(",")));
    }
    s
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

    #[test]
    fn services_move_with_their_host_part_and_sharing_keys() {
        let observed = Observed {
            services: vec![
                svc(
                    "ingress",
                    "traefik",
                    &["172.29.51.200"],
                    &[
                        (IPS_ANNOTATION, "172.29.51.200"),
                        (DNS_ANNOTATION, "home.example.org"),
                    ],
                ),
                svc(
                    "media",
                    "plex",
                    &["172.29.51.150"],
                    &[
                        (LEGACY_IPS_ANNOTATION, "172.29.51.150"),
                        (SHARING_KEY, "media"),
                    ],
                ),
                svc(
                    "media",
                    "jellyfin",
                    &["172.29.51.150"],
                    &[(SHARING_KEY, "media")],
                ),
                svc("web", "dynamic", &["172.29.51.230"], &[]),
                svc("web", "already", &["172.29.52.120"], &[]),
                svc("web", "pending", &[], &[]),
            ],
            pools: vec![
                json!({"metadata": {"name": "l2-pool"}, "spec": {"blocks": [{"start": "172.29.51.150", "stop": "172.29.51.250"}]}}),
            ],
            l2_policies: vec![json!({"metadata": {"name": "l2-default"}})],
        };
        let p = plan(
            &site(),
            "home",
            "1.18.2",
            vec![json!({"kind": "CiliumLoadBalancerIPPool", "metadata": {"name": "bgp-default"}})],
            &observed,
        );
        let by_name: BTreeMap<&str, &ServiceMove> =
            p.moves.iter().map(|m| (m.name.as_str(), m)).collect();
        assert_eq!(
            by_name["traefik"].new_ips,
            ["172.29.52.200"],
            "same host part, inside bgp-ingress"
        );
        assert_eq!(by_name["traefik"].dns, ["home.example.org"]);
        assert_eq!(by_name["plex"].new_ips, ["172.29.52.150"]);
        assert_eq!(
            by_name["jellyfin"].new_ips, by_name["plex"].new_ips,
            "sharing key: one IP"
        );
        // .230 is outside every BGP pool: the lowest free address of the first pool.
        assert_eq!(by_name["dynamic"].new_ips, ["172.29.52.100"]);
        assert!(!by_name.contains_key("already") && !by_name.contains_key("pending"));
        assert_eq!(p.old_pools, ["l2-pool"]);
        assert_eq!(p.l2_policies, ["l2-default"]);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        let moved = moved_service(&observed.services[1], by_name["plex"]);
        assert_eq!(
            moved["metadata"]["annotations"][IPS_ANNOTATION],
            "172.29.52.150"
        );
        assert!(moved["metadata"]["annotations"]
            .get(LEGACY_IPS_ANNOTATION)
            .is_none());
    }
}
