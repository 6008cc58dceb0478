//! Cilium's LB-IPAM as the Kubernetes stand-in plays it, rule by rule from Cilium's own source
//! (`operator/pkg/lbipam/lbipam.go` and `service_store.go`, the 1.18 line). Each function names
//! the one it follows. What it decides is written to the Services' status, as the operator does
//! through the `/status` subresource.
//!
//! Simplifications, none of which the migration depends on: one pass over all services per
//! change (Cilium reacts per event), services in name order, the lowest free address first, and
//! no cross-namespace sharing annotation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Value};

/// `v2alpha1.BGPLoadBalancerClass` and `L2AnnounceLoadBalancerClass`: the classes LB-IPAM serves
/// when BGP and L2 announcements are on.
pub const CLASSES: [&str; 2] = ["io.cilium/bgp-control-plane", "io.cilium/l2-announcer"];
pub const CONDITION: &str = "cilium.io/IPAMRequestSatisfied";

type Key = (String, String);

/// One block of a pool: an address range, disabled with its pool.
#[derive(Debug, Clone)]
struct LbRange {
    pool: String,
    from: IpAddr,
    to: IpAddr,
    /// Addresses never handed out (the first and last of a CIDR with allowFirstLastIPs: No).
    reserved: BTreeSet<IpAddr>,
    disabled: bool,
}

impl LbRange {
    fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.from.is_ipv4() && self.from <= ip && ip <= self.to
    }
}

/// The stand-in's view of one Service (`ServiceView`).
#[derive(Debug, Clone)]
struct View {
    key: Key,
    labels: BTreeMap<String, String>,
    requested: Vec<IpAddr>,
    v4: bool,
    v6: bool,
    sharing_key: String,
    etp: String,
    /// (port, protocol)
    ports: Vec<(i64, String)>,
    selector: BTreeMap<String, String>,
}

/// LB-IPAM's memory: which address each service holds, from which pool.
#[derive(Debug, Default)]
pub struct LbIpam {
    allocated: BTreeMap<Key, Vec<(IpAddr, String)>>,
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `isResponsibleForSVC`: LoadBalancer services without a class (the default IPAM) or with one
/// of the classes LB-IPAM serves.
pub fn responsible(svc: &Value) -> bool {
    svc.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
        && svc
            .pointer("/spec/loadBalancerClass")
            .and_then(Value::as_str)
            .is_none_or(|c| CLASSES.contains(&c))
}

/// `serviceViewFromService`, with `svcLabels`, `getSVCRequestedIPs`, `getSVCSharingKey` and
/// `serviceIPFamilyRequest` (IPv4 and IPv6 both enabled).
fn view(svc: &Value) -> View {
    let ns = svc["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let name = svc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut labels = str_map(&svc["metadata"]["labels"]);
    labels.insert("io.kubernetes.service.name".into(), name.clone());
    labels.insert("io.kubernetes.service.namespace".into(), ns.clone());
    let ann = str_map(&svc["metadata"]["annotations"]);
    let mut requested: Vec<IpAddr> = Vec::new();
    if let Some(ip) = svc
        .pointer("/spec/loadBalancerIP")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
    {
        requested.push(ip);
    }
    // annotation.Get(svc, LBIPAMIPsKey, LBIPAMIPKeyAlias): the new name wins.
    if let Some(v) = ann
        .get("lbipam.cilium.io/ips")
        .or_else(|| ann.get("io.cilium/lb-ipam-ips"))
    {
        requested.extend(v.split(',').filter_map(|s| s.trim().parse::<IpAddr>().ok()));
    }
    requested.dedup();
    let sharing_key = ann
        .get("lbipam.cilium.io/sharing-key")
        .or_else(|| ann.get("io.cilium/lb-ipam-sharing-key"))
        .cloned()
        .unwrap_or_default();
    let families: Vec<String> = svc
        .pointer("/spec/ipFamilies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let policy = svc.pointer("/spec/ipFamilyPolicy").and_then(Value::as_str);
    let (v4, v6) = match policy {
        Some("RequireDualStack") => (true, true),
        Some("PreferDualStack") if families.is_empty() => (true, true),
        Some("PreferDualStack") => (
            families.iter().any(|f| f == "IPv4"),
            families.iter().any(|f| f == "IPv6"),
        ),
        // SingleStack, or no policy: the first family, IPv4 when none is given.
        _ => match families.first().map(String::as_str) {
            Some("IPv6") => (false, true),
            _ => (true, false),
        },
    };
    View {
        key: (ns, name),
        labels,
        requested,
        v4,
        v6,
        sharing_key,
        etp: svc
            .pointer("/spec/externalTrafficPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Cluster")
            .to_string(),
        ports: svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["port"].as_i64()?,
                    p["protocol"].as_str().unwrap_or("TCP").to_string(),
                ))
            })
            .collect(),
        selector: str_map(&svc["spec"]["selector"]),
    }
}

/// `ServiceView.isCompatible`: same sharing key and namespace, no common port of the same
/// protocol (TCP or UDP; protocol differentiation, on by default since Cilium 1.17, PR 34691),
/// the same externalTrafficPolicy, and with `Local` the same non-empty selector.
fn compatible(a: &View, b: &View) -> Result<(), &'static str> {
    if a.sharing_key != b.sharing_key {
        return Err("different sharing key");
    }
    if a.key.0 != b.key.0 {
        return Err("different namespace");
    }
    let clash = a.ports.iter().any(|(port, proto)| {
        b.ports
            .iter()
            .any(|(p2, pr2)| port == p2 && proto == pr2 && (proto == "TCP" || proto == "UDP"))
    });
    if clash {
        return Err("overlapping ports");
    }
    if a.etp != b.etp {
        return Err("different externalTrafficPolicy");
    }
    if a.etp == "Local" && (a.selector.is_empty() || a.selector != b.selector) {
        return Err("Local traffic policy with different selectors");
    }
    Ok(())
}

/// A Kubernetes label selector (`matchLabels`, `matchExpressions`); a missing one selects
/// everything in LB-IPAM (`if pool.Spec.ServiceSelector != nil`).
pub fn selects(selector: Option<&Value>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_null()) else {
        return true;
    };
    for (k, v) in str_map(&sel["matchLabels"]) {
        if labels.get(&k) != Some(&v) {
            return false;
        }
    }
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let have = labels.get(key);
        let ok = match e["operator"].as_str().unwrap_or_default() {
            "In" => have.is_some_and(|v| values.contains(&v.as_str())),
            "NotIn" => have.is_none_or(|v| !values.contains(&v.as_str())),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `handleNewPool` with `ipRangeFromBlock`: `blocks` (cidr, or start/stop) or the older `cidrs`;
/// a CIDR with `allowFirstLastIPs: No` (the default when unset) keeps its first and last
/// address back, from /30 (/126) up.
fn ranges(pools: &[Value]) -> Vec<LbRange> {
    let mut out = Vec::new();
    for p in pools {
        let name = p["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let disabled = p["spec"]["disabled"].as_bool().unwrap_or(false);
        let allow_first_last = p["spec"]["allowFirstLastIPs"].as_str() == Some("Yes");
        let blocks = p["spec"]["blocks"]
            .as_array()
            .or_else(|| p["spec"]["cidrs"].as_array())
            .cloned()
            .unwrap_or_default();
        for b in blocks {
            let (from, to, cidr) = if let Some(c) =
                b["cidr"].as_str().and_then(|c| c.parse::<IpNet>().ok())
            {
                (c.network(), c.broadcast(), true)
            } else {
                let Some(from) = b["start"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) else {
                    continue;
                };
                let to = b["stop"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(from);
                (from, to, false)
            };
            let mut reserved = BTreeSet::new();
            if cidr && !allow_first_last && span(from, to) >= 3 {
                reserved.insert(from);
                reserved.insert(to);
            }
            out.push(LbRange {
                pool: name.clone(),
                from,
                to,
                reserved,
                disabled,
            });
        }
    }
    out
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

fn span(from: IpAddr, to: IpAddr) -> u128 {
    match (from, to) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u128::from(u32::from(b).saturating_sub(u32::from(a))),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(b).saturating_sub(u128::from(a)),
        _ => 0,
    }
}

fn next(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(v) => u32::from(v).checked_add(1).map(|n| IpAddr::V4(n.into())),
        IpAddr::V6(v) => u128::from(v).checked_add(1).map(|n| IpAddr::V6(n.into())),
    }
}

impl LbIpam {
    /// One pass over every service (`revalidateAllServices`): strip what is no longer valid,
    /// import or drop what the status holds, satisfy what is missing. `services` are updated in
    /// place (status only); returns the keys of those whose status changed. `pools` in creation
    /// order, the order LB-IPAM tries their ranges in.
    pub fn reconcile(&mut self, services: &mut [Value], pools: &[Value]) -> Vec<Key> {
        let ranges = ranges(pools);
        let pool_selector: BTreeMap<String, Value> = pools
            .iter()
            .map(|p| {
                (
                    p["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    p["spec"]["serviceSelector"].clone(),
                )
            })
            .collect();
        let views: Vec<Option<View>> = services
            .iter()
            .map(|s| responsible(s).then(|| view(s)))
            .collect();
        let live: BTreeSet<Key> = views.iter().flatten().map(|v| v.key.clone()).collect();
        // A service gone, or no longer ours (`handleDeletedService`): its addresses are free.
        self.allocated.retain(|k, _| live.contains(k));
        let by_key: BTreeMap<Key, View> = views
            .iter()
            .flatten()
            .map(|v| (v.key.clone(), v.clone()))
            .collect();

        // stripInvalidAllocations, for everyone first (so freed addresses can be reused).
        let keys: Vec<Key> = self.allocated.keys().cloned().collect();
        for key in &keys {
            let v = &by_key[key];
            let mut keep = Vec::new();
            for (ip, pool) in self.allocated[key].clone() {
                let pool_ok = pool_selector
                    .get(&pool)
                    .is_some_and(|sel| selects(Some(sel), &v.labels))
                    && ranges.iter().any(|r| r.pool == pool && r.contains(ip));
                let shared_ok = self
                    .holders(ip, key)
                    .iter()
                    .all(|other| by_key.get(other).is_none_or(|o| compatible(o, v).is_ok()));
                let wanted = if v.requested.is_empty() {
                    if ip.is_ipv4() {
                        v.v4
                    } else {
                        v.v6
                    }
                } else {
                    v.requested.contains(&ip)
                };
                if pool_ok && shared_ok && wanted {
                    keep.push((ip, pool));
                }
            }
            self.allocated.insert(key.clone(), keep);
        }

        let mut changed = Vec::new();
        for (svc, v) in services.iter_mut().zip(views) {
            // Another controller's service: its status is that controller's business.
            let Some(v) = v else { continue };
            let before = svc["status"].clone();
            let mut mine = self.allocated.get(&v.key).cloned().unwrap_or_default();
            // stripOrImportIngresses: an address in the status that LB-IPAM did not allocate is
            // adopted when it is requested (or of a requested family) and free in a range of a
            // matching pool; otherwise it is dropped.
            let status_ips: Vec<IpAddr> = svc["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["ip"].as_str()?.parse().ok())
                .collect();
            for ip in status_ips {
                if mine.iter().any(|(a, _)| *a == ip) {
                    continue;
                }
                if !v.requested.is_empty() && !v.requested.contains(&ip) {
                    continue;
                }
                if (ip.is_ipv4() && !v.v4) || (ip.is_ipv6() && !v.v6) {
                    continue;
                }
                if let Ok(r) = self.find_range(&ranges, &pool_selector, &v, ip) {
                    if self.holders(ip, &v.key).is_empty() {
                        mine.push((ip, r.pool.clone()));
                    }
                }
            }
            self.allocated.insert(v.key.clone(), mine.clone());
            let mut condition = ("satisfied".to_string(), String::new(), true);
            if !v.requested.is_empty() {
                // satisfySpecificIPRequests
                for ip in v.requested.clone() {
                    if mine.iter().any(|(a, _)| *a == ip) {
                        continue;
                    }
                    let r = match self.find_range(&ranges, &pool_selector, &v, ip) {
                        Ok(r) => r,
                        Err(found_pool) => {
                            condition = if found_pool {
                                (
                                    "pool_selector_mismatch".into(),
                                    format!("The pool with the CIDR containing '{ip}', doesn't select this service"),
                                    false,
                                )
                            } else {
                                (
                                    "no_pool".into(),
                                    format!("No pool exists with a CIDR containing '{ip}'"),
                                    false,
                                )
                            };
                            continue;
                        }
                    };
                    let holders = self.holders(ip, &v.key);
                    if !holders.is_empty() {
                        if v.sharing_key.is_empty() {
                            condition = (
                                "already_allocated".into(),
                                format!("The IP '{ip}' is already allocated to another service"),
                                false,
                            );
                            continue;
                        }
                        if let Some(why) = holders
                            .iter()
                            .filter_map(|h| by_key.get(h))
                            .find_map(|h| compatible(h, &v).err())
                        {
                            condition = (
                                "already_allocated_incompatible_service".into(),
                                format!("The IP '{ip}' is already allocated to an incompatible service. Reason: {why}"),
                                false,
                            );
                            continue;
                        }
                    }
                    mine.push((ip, r.pool.clone()));
                }
            } else {
                // satisfyGenericIPRequests: per missing family, share within the sharing key
                // first, else the first free address of the first matching, enabled range.
                for v4 in [true, false] {
                    let wanted = if v4 { v.v4 } else { v.v6 };
                    if !wanted || mine.iter().any(|(a, _)| a.is_ipv4() == v4) {
                        continue;
                    }
                    let shared = (!v.sharing_key.is_empty())
                        .then(|| {
                            self.allocated
                                .iter()
                                .filter(|(k, _)| **k != v.key)
                                .filter_map(|(k, a)| Some((by_key.get(k)?, a)))
                                .filter(|(o, _)| o.sharing_key == v.sharing_key)
                                .flat_map(|(_, a)| a.iter().cloned())
                                .find(|(ip, _)| {
                                    ip.is_ipv4() == v4
                                        && self
                                            .holders(*ip, &v.key)
                                            .iter()
                                            .filter_map(|h| by_key.get(h))
                                            .all(|h| compatible(h, &v).is_ok())
                                })
                        })
                        .flatten();
                    if let Some(s) = shared {
                        mine.push(s);
                        continue;
                    }
                    match self.allocate_any(&ranges, &pool_selector, &v, v4, &mine) {
                        Some(a) => mine.push(a),
                        None => {
                            condition = (
                                "no_pool".into(),
                                "There are no enabled CiliumLoadBalancerIPPools that match this service".into(),
                                false,
                            )
                        }
                    }
                }
            }
            self.allocated.insert(v.key.clone(), mine.clone());
            let ingress: Vec<Value> = mine
                .iter()
                .map(|(ip, _)| json!({"ip": ip.to_string()}))
                .collect();
            let satisfied = condition.2;
            let mut status = svc["status"].clone();
            if !status.is_object() {
                status = json!({});
            }
            status["loadBalancer"] = json!({"ingress": ingress});
            // `setSVCSatisfiedCondition`: a metav1.Condition, whose lastTransitionTime changes
            // only with the condition.
            let cond_status = if satisfied { "True" } else { "False" };
            let previous = before["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == CONDITION))
                .cloned();
            let since = previous
                .as_ref()
                .filter(|p| {
                    p["status"] == cond_status
                        && p["reason"] == condition.0.as_str()
                        && p["message"] == condition.1.as_str()
                })
                .and_then(|p| p["lastTransitionTime"].as_str().map(String::from))
                .unwrap_or_else(now_rfc3339);
            status["conditions"] = json!([{
                "type": CONDITION,
                "status": cond_status,
                "reason": condition.0,
                "message": condition.1,
                "lastTransitionTime": since,
            }]);
            if status != before {
                svc["status"] = status;
                changed.push(v.key.clone());
            }
        }
        changed
    }

    /// Holders of `ip` other than `me`.
    fn holders(&self, ip: IpAddr, me: &Key) -> Vec<Key> {
        self.allocated
            .iter()
            .filter(|(k, a)| *k != me && a.iter().any(|(x, _)| *x == ip))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// `findRangeOfIP`: the first enabled range holding `ip` whose pool selects the service;
    /// `Err(true)` when a range holds it but its pool does not select the service.
    fn find_range<'a>(
        &self,
        ranges: &'a [LbRange],
        selectors: &BTreeMap<String, Value>,
        v: &View,
        ip: IpAddr,
    ) -> Result<&'a LbRange, bool> {
        let mut found_pool = false;
        for r in ranges.iter().filter(|r| !r.disabled && r.contains(ip)) {
            found_pool = true;
            if selects(selectors.get(&r.pool), &v.labels) {
                return Ok(r);
            }
        }
        Err(found_pool)
    }

    /// `allocateIPAddress`: ranges in pool order, enabled, of the family, whose pool selects the
    /// service; the lowest address nobody holds.
    fn allocate_any(
        &self,
        ranges: &[LbRange],
        selectors: &BTreeMap<String, Value>,
        v: &View,
        v4: bool,
        mine: &[(IpAddr, String)],
    ) -> Option<(IpAddr, String)> {
        let taken: BTreeSet<IpAddr> = self
            .allocated
            .values()
            .flatten()
            .map(|(ip, _)| *ip)
            .chain(mine.iter().map(|(ip, _)| *ip))
            .collect();
        for r in ranges
            .iter()
            .filter(|r| !r.disabled && r.from.is_ipv4() == v4)
        {
            if !selects(selectors.get(&r.pool), &v.labels) {
                continue;
            }
            let mut ip = r.from;
            // Bounded: at most 65536 addresses of one range are looked at.
            for _ in 0..65_536 {
                if !taken.contains(&ip) && !r.reserved.contains(&ip) {
                    return Some((ip, r.pool.clone()));
                }
                if ip == r.to {
                    break;
                }
                ip = next(ip)?;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, start: &str, stop: &str, selector: Value) -> Value {
        json!({"metadata": {"name": name}, "spec": {"blocks": [{"start": start, "stop": stop}], "serviceSelector": selector}})
    }

    fn svc(ns: &str, name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": ns}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
    }

    fn ips(s: &Value) -> Vec<String> {
        s["status"]["loadBalancer"]["ingress"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["ip"].as_str().unwrap().to_string())
            .collect()
    }

    fn reason(s: &Value) -> String {
        s["status"]["conditions"][0]["reason"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_requested_ip_comes_only_from_a_pool_that_selects_the_service() {
        let pools = [
            pool(
                "default",
                "10.0.0.10",
                "10.0.0.19",
                json!({"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]}),
            ),
            pool(
                "ingress",
                "10.0.0.20",
                "10.0.0.29",
                json!({"matchLabels": {"pool": "ingress"}}),
            ),
        ];
        let mut s = svc("a", "web");
        s["metadata"]["annotations"] = json!({"lbipam.cilium.io/ips": "10.0.0.20"});
        let mut l = LbIpam::default();
        let mut services = [s];
        l.reconcile(&mut services, &pools);
        assert!(ips(&services[0]).is_empty());
        assert_eq!(reason(&services[0]), "pool_selector_mismatch");
        services[0]["metadata"]["labels"] = json!({"pool": "ingress"});
        l.reconcile(&mut services, &pools);
        assert_eq!(ips(&services[0]), ["10.0.0.20"]);
    }

    #[test]
    fn load_balancer_ip_and_the_annotation_are_both_requests() {
        let pools = [pool("p", "10.0.0.10", "10.0.0.19", Value::Null)];
        let mut s = svc("a", "web");
        s["spec"]["loadBalancerIP"] = json!("10.0.0.11");
        s["metadata"]["annotations"] = json!({"io.cilium/lb-ipam-ips": "10.0.0.12"});
        let mut services = [s];
        LbIpam::default().reconcile(&mut services, &pools);
        assert_eq!(ips(&services[0]), ["10.0.0.11", "10.0.0.12"]);
    }

    #[test]
    fn sharing_needs_the_key_the_namespace_and_distinct_ports() {
        let pools = [pool("p", "10.0.0.10", "10.0.0.19", Value::Null)];
        let with = |ns: &str, name: &str, port: i64, key: &str| {
            let mut s = svc(ns, name);
            s["spec"]["ports"] = json!([{"port": port}]);
            s["metadata"]["annotations"] =
                json!({"io.cilium/lb-ipam-sharing-key": key, "lbipam.cilium.io/ips": "10.0.0.15"});
            s
        };
        let mut services = [
            with("net", "dns-tcp", 53, "dns"),
            with("net", "dns-udp", 5353, "dns"),
            with("net", "web", 53, "dns"),
            with("other", "dns", 54, "dns"),
        ];
        LbIpam::default().reconcile(&mut services, &pools);
        assert_eq!(ips(&services[0]), ["10.0.0.15"]);
        assert_eq!(
            ips(&services[1]),
            ["10.0.0.15"],
            "same key, namespace, other port"
        );
        assert_eq!(
            reason(&services[2]),
            "already_allocated_incompatible_service"
        );
        assert_eq!(
            reason(&services[3]),
            "already_allocated_incompatible_service"
        );
    }

    #[test]
    fn tcp_and_udp_on_one_port_may_share() {
        let pools = [pool("p", "10.0.0.10", "10.0.0.19", Value::Null)];
        let dns = |name: &str, proto: &str| {
            let mut s = svc("net", name);
            s["spec"]["ports"] = json!([{"port": 53, "protocol": proto}]);
            s["metadata"]["annotations"] = json!({"io.cilium/lb-ipam-sharing-key": "dns"});
            s
        };
        let mut services = [
            dns("dns-tcp", "TCP"),
            dns("dns-udp", "UDP"),
            dns("dns-tcp2", "TCP"),
        ];
        LbIpam::default().reconcile(&mut services, &pools);
        assert_eq!(ips(&services[0]), ips(&services[1]));
        assert_ne!(
            ips(&services[2]),
            ips(&services[0]),
            "TCP/53 twice cannot share"
        );
    }

    #[test]
    fn other_classes_are_not_ours_and_dual_stack_gets_both_families() {
        let pools = [
            pool("v4", "10.0.0.10", "10.0.0.19", Value::Null),
            pool("v6", "fd00::10", "fd00::19", Value::Null),
        ];
        let mut foreign = svc("a", "ts");
        foreign["spec"]["loadBalancerClass"] = json!("tailscale");
        let mut dual = svc("a", "dual");
        dual["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
        dual["spec"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
        let mut services = [foreign, dual];
        LbIpam::default().reconcile(&mut services, &pools);
        assert!(services[0]["status"].is_null());
        assert_eq!(ips(&services[1]), ["10.0.0.10", "fd00::10"]);
    }

    #[test]
    fn a_disabled_pool_keeps_what_it_gave_and_a_deleted_pool_releases_it() {
        let mut pools = vec![
            pool("old", "10.0.1.10", "10.0.1.19", Value::Null),
            pool("new", "10.0.0.10", "10.0.0.19", Value::Null),
        ];
        let mut l = LbIpam::default();
        let mut services = [svc("a", "web")];
        l.reconcile(&mut services, &pools);
        assert_eq!(ips(&services[0]), ["10.0.1.10"]);
        pools[0]["spec"]["disabled"] = json!(true);
        l.reconcile(&mut services, &pools);
        assert_eq!(ips(&services[0]), ["10.0.1.10"], "disabled: kept");
        pools.remove(0);
        l.reconcile(&mut services, &pools);
        assert_eq!(ips(&services[0]), ["10.0.0.10"], "deleted: moved");
    }

    #[test]
    fn a_status_address_is_imported_only_when_valid() {
        let pools = [pool("p", "10.0.0.10", "10.0.0.19", Value::Null)];
        let mut ok = svc("a", "kept");
        ok["status"] = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.17"}]}});
        let mut bad = svc("a", "outside");
        bad["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
        let mut services = [ok, bad];
        LbIpam::default().reconcile(&mut services, &pools);
        assert_eq!(ips(&services[0]), ["10.0.0.17"]);
        assert_eq!(ips(&services[1]), ["10.0.0.10"], "dropped, then allocated");
    }
}
