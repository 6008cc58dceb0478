//! Judging a companion's report against the site file (safe by default), and turning
//! accepted reports into the desired state's inputs. Pure: no I/O.
//!
//! A report can add or remove nodes and narrow the accepted pools; it can never widen what the
//! site file allows. Every problem is collected, so a refusal lists them all at once.

use std::collections::BTreeSet;
use std::net::IpAddr;

use bgplb_proto::{Problem, Report, SCHEMA_VERSION};
use bgplb_site::{Cluster, GatewayInputs, NodeSpec, Range, Site};
use ipnet::IpNet;

/// A report that passed every check, reduced to what the gateway uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// Nodes to peer with (deleting nodes left out).
    pub nodes: Vec<NodeSpec>,
    /// Blocks of the cluster's enabled pools inside the site's; `None` when the report names no
    /// pool of the site's (none yet, or only an old L2 pool during a migration): the site's
    /// pools then apply unchanged, since an empty list must not withdraw every VIP.
    pub narrow: Option<Vec<Range>>,
    pub warnings: Vec<String>,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// Checks `report`, sent for the cluster `cluster` of `site`. `current` is the node set the
/// gateway peers with now (the last accepted report's, or the site's static nodes): a report
/// that would take away every neighbour, or every neighbour of one family, is refused unless the
/// cluster allows it (`allow_empty_reports`). `None` skips that rule (a stored report, already
/// accepted once).
pub fn check(
    site: &Site,
    cluster: &Cluster,
    report: &Report,
    current: Option<&[NodeSpec]>,
) -> Result<Checked, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    if report.schema > SCHEMA_VERSION {
        problems.push(problem(
            "schema",
            format!(
                "schema version {} is newer than this agent's {SCHEMA_VERSION}; upgrade the agent",
                report.schema
            ),
        ));
    }
    if report.cluster != cluster.name {
        problems.push(problem(
            "cluster",
            format!(
                "the report is for cluster `{}` but was sent to `{}`",
                report.cluster, cluster.name
            ),
        ));
    }

    // Nodes: addresses parse and are of the right family, then the site's node rules.
    let mut nodes = Vec::new();
    for (i, n) in report.nodes.iter().enumerate() {
        let parse = |field: &str, value: &Option<String>, v4: bool, problems: &mut Vec<Problem>| {
            let text = value.as_deref()?;
            match text.parse::<IpAddr>() {
                Ok(a) if a.is_ipv4() == v4 => Some(a),
                Ok(a) => {
                    problems.push(problem(
                        format!("nodes[{i}].{field}"),
                        format!("{a} is not an {} address", if v4 { "IPv4" } else { "IPv6" }),
                    ));
                    None
                }
                Err(_) => {
                    problems.push(problem(
                        format!("nodes[{i}].{field}"),
                        format!("`{text}` is not an IP address"),
                    ));
                    None
                }
            }
        };
        let ipv4 = parse("ipv4", &n.ipv4, true, &mut problems);
        let ipv6 = parse("ipv6", &n.ipv6, false, &mut problems);
        if n.deleting {
            continue;
        }
        nodes.push(NodeSpec {
            name: n.name.clone(),
            ipv4,
            ipv6,
            shutdown: false,
        });
    }
    for p in site.check_nodes(cluster, &nodes) {
        problems.push(problem(p.key, p.message));
    }
    if let (Some(current), false) = (current, cluster.allow_empty_reports) {
        problems.extend(emptied(cluster, current, &nodes));
    }

    // Pools: every reported block must lie inside the site's pools for this cluster.
    let site_ranges: Vec<(String, bool, Range)> = site
        .pools
        .iter()
        .filter(|p| p.cluster.as_deref().is_none_or(|c| c == cluster.name))
        .flat_map(|p| {
            p.blocks
                .iter()
                .filter_map(|b| Range::parse(b).ok())
                .map(move |r| (p.name.clone(), p.disabled, r))
        })
        .collect();
    let mut narrow = Vec::new();
    // Whether the report names any pool of the site's (enabled or not).
    let mut site_pool_reported = false;
    for (pi, pool) in report.pools.iter().enumerate() {
        for (bi, block) in pool.blocks.iter().enumerate() {
            let path = format!("pools[{pi}].blocks[{bi}]");
            match Range::parse(block) {
                Err(e) => problems.push(problem(path, format!("pool `{}`: {e}", pool.name))),
                Ok(r) => {
                    let inside = site_ranges.iter().any(|(_, _, s)| {
                        s.start <= r.start && r.end <= s.end && s.is_ipv4() == r.is_ipv4()
                    });
                    // A pool outside the site's (the old L2 pool during a migration, another
                    // controller's) is not the gateway's business: ignored, said, never accepted.
                    if !inside {
                        warnings.push(format!(
                            "{path}: pool `{}` block {block} is outside the site's pools: ignored (the gateway never accepts more than the site file allows)",
                            pool.name
                        ));
                    } else {
                        site_pool_reported = true;
                        if !pool.disabled {
                            narrow.push(r);
                        }
                    }
                }
            }
        }
    }

    // Services: every VIP a host address inside a site pool.
    for (si, svc) in report.services.iter().enumerate() {
        for (ii, ip) in svc.ips.iter().enumerate() {
            let path = format!("services[{si}].ips[{ii}]");
            let who = format!("service {}/{}", svc.namespace, svc.name);
            let addr = match parse_host(ip) {
                Ok(a) => a,
                Err(m) => {
                    problems.push(problem(path, format!("{who}: {m}")));
                    continue;
                }
            };
            match site_ranges.iter().find(|(_, _, r)| r.contains(addr)) {
                None => warnings.push(format!(
                    "{path}: {who}: VIP {addr} is outside every pool of the site: ignored (the gateway refuses its route)"
                )),
                Some((pool, true, _)) => warnings.push(format!(
                    "{who}: VIP {addr} is in disabled pool `{pool}`; the gateway does not accept it"
                )),
                Some(_) => {}
            }
        }
    }
    if report.cilium.advertises_local_services_everywhere() {
        for svc in report
            .services
            .iter()
            .filter(|s| s.external_traffic_policy == "Local" && !s.ips.is_empty())
        {
            warnings.push(format!(
                "service {}/{}: externalTrafficPolicy Local, but Cilium {} advertises it from every node (cilium/cilium#44803): nodes without an endpoint drop what the gateway sends them; use externalTrafficPolicy: Cluster",
                svc.namespace,
                svc.name,
                report.cilium.version.as_deref().unwrap_or_default()
            ));
        }
    }
    if !report.l2_announcement_policies.is_empty() {
        warnings.push(format!(
            "L2 announcement policies still present: {}",
            report.l2_announcement_policies.join(", ")
        ));
    }

    if problems.is_empty() {
        Ok(Checked {
            nodes,
            narrow: site_pool_reported.then_some(narrow),
            warnings,
        })
    } else {
        Err(problems)
    }
}

/// The refusal of a report that would leave the cluster without neighbours, in all or in one
/// family that has sessions now.
fn emptied(cluster: &Cluster, current: &[NodeSpec], reported: &[NodeSpec]) -> Vec<Problem> {
    let fix = format!(
        "set allow_empty_reports = true on cluster `{}` in the site file if this is intended",
        cluster.name
    );
    if reported.is_empty() && !current.is_empty() {
        return vec![problem(
            "nodes",
            format!(
                "the report has no node: it would remove all {} neighbour(s) of cluster `{}`; refused ({fix})",
                current.len(),
                cluster.name
            ),
        )];
    }
    let mut out = Vec::new();
    for (family, v4) in [("IPv4", true), ("IPv6", false)] {
        let has = |nodes: &[NodeSpec]| {
            nodes
                .iter()
                .flat_map(|n| n.addresses())
                .filter(|a| a.is_ipv4() == v4)
                .count()
        };
        let now = has(current);
        if now > 0 && has(reported) == 0 {
            out.push(problem(
                "nodes",
                format!(
                    "no node in the report has an {family} address: it would remove all {now} {family} session(s) of cluster `{}`; refused ({fix})",
                    cluster.name
                ),
            ));
        }
    }
    out
}

/// A VIP: a plain address or a host prefix (/32, /128).
fn parse_host(text: &str) -> Result<IpAddr, String> {
    if let Ok(a) = text.parse::<IpAddr>() {
        return Ok(a);
    }
    match text.parse::<IpNet>() {
        Ok(net) if net.prefix_len() == net.max_prefix_len() => Ok(net.addr()),
        Ok(net) => Err(format!(
            "{net} is a /{} prefix, not a host route (/{}): a VIP is one address",
            net.prefix_len(),
            net.max_prefix_len()
        )),
        Err(_) => Err(format!("`{text}` is not an IP address")),
    }
}

/// The desired state's inputs: the site's static nodes, replaced per cluster by the nodes and
/// pools of that cluster's last accepted report.
pub fn inputs<'a>(
    site: &Site,
    password: Option<String>,
    ecmp: bool,
    accepted: impl IntoIterator<Item = (&'a str, &'a Checked)>,
) -> GatewayInputs {
    let mut inputs = GatewayInputs::from_site(site, password);
    inputs.ecmp = ecmp;
    for (cluster, checked) in accepted {
        inputs
            .nodes
            .insert(cluster.to_string(), checked.nodes.clone());
        if let Some(narrow) = &checked.narrow {
            inputs.narrow.insert(cluster.to_string(), narrow.clone());
        }
    }
    inputs
}

/// Names of nodes in a checked report (for status).
pub fn node_names(checked: &Checked) -> BTreeSet<String> {
    checked.nodes.iter().map(|n| n.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site {
        bgplb_site::parse(include_str!("../../config/site.toml")).unwrap()
    }

    fn report() -> Report {
        serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap()
    }

    fn problems(r: &Report) -> Vec<String> {
        let s = site();
        check(&s, &s.clusters[0], r, None)
            .unwrap_err()
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }

    #[test]
    fn the_reference_report_is_accepted() {
        let s = site();
        let c = check(&s, &s.clusters[0], &report(), None).unwrap();
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(
            c.narrow.as_ref().unwrap().len(),
            3,
            "the disabled pool narrows nothing in"
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut r = report();
        r.nodes[0].ipv4 = Some("172.29.50.11".into());
        r.nodes[1].ipv6 = Some("not-an-address".into());
        r.services[1].ips[0] = "172.29.52.0/24".into();
        let found = problems(&r);
        let expect = [
            "nodes[0].ipv4: node `k8s-1` address 172.29.50.11 is outside the node subnets",
            "nodes[1].ipv6: `not-an-address` is not an IP address",
            "services[1].ips[0]: service media/jellyfin: 172.29.52.0/24 is a /24 prefix, not a host route",
        ];
        for e in expect {
            assert!(
                found.iter().any(|f| f.starts_with(e)),
                "missing `{e}` in {found:#?}"
            );
        }
    }

    #[test]
    fn too_many_nodes_and_wrong_cluster_are_refused() {
        let mut r = report();
        r.cluster = "other".into();
        let template = r.nodes[0].clone();
        r.nodes = (0..65)
            .map(|i| bgplb_proto::Node {
                name: format!("n{i}"),
                ipv4: Some(format!("172.29.51.{}", 100 + i)),
                ipv6: None,
                ..template.clone()
            })
            .collect();
        let found = problems(&r);
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("cluster: the report is for cluster `other`")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("nodes: 65 nodes exceed max_nodes = 64")),
            "{found:?}"
        );
    }

    #[test]
    fn deleting_nodes_leave_and_an_empty_pool_list_narrows_nothing() {
        let s = site();
        let mut r = report();
        r.nodes[2].deleting = true;
        r.pools.clear();
        let c = check(&s, &s.clusters[0], &r, None).unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.narrow, None);
    }

    #[test]
    fn a_report_that_empties_the_cluster_is_refused_unless_allowed() {
        let mut s = site();
        let current: Vec<NodeSpec> = s.clusters[0].nodes.iter().map(NodeSpec::from).collect();
        let mut r = report();
        r.nodes.clear();
        let found = check(&s, &s.clusters[0], &r, Some(&current)).unwrap_err();
        assert!(
            found[0].message.contains("would remove all 3 neighbour(s)"),
            "{found:?}"
        );
        // Every node deleting is as empty.
        let mut r = report();
        for n in &mut r.nodes {
            n.deleting = true;
        }
        assert!(check(&s, &s.clusters[0], &r, Some(&current)).is_err());
        // All IPv6 addresses gone: the IPv6 sessions would all go.
        let mut r = report();
        for n in &mut r.nodes {
            n.ipv6 = None;
        }
        let found = check(&s, &s.clusters[0], &r, Some(&current)).unwrap_err();
        assert!(found[0].message.contains("IPv6"), "{found:?}");
        // Allowed explicitly.
        s.clusters[0].allow_empty_reports = true;
        let c = check(&s, &s.clusters[0], &r, Some(&current)).unwrap();
        assert_eq!(c.nodes.len(), 3);
        // Stored reports (None) are not judged again on this rule.
        s.clusters[0].allow_empty_reports = false;
        assert!(check(&s, &s.clusters[0], &r, None).is_ok());
    }

    #[test]
    fn pools_and_vips_outside_the_site_are_ignored_with_a_warning() {
        // The old L2 pool and its services during a migration, or another controller's.
        let s = site();
        let mut r = report();
        r.services[0].ips[0] = "172.29.51.240".into();
        r.pools.push(bgplb_proto::Pool {
            name: "l2-old".into(),
            blocks: vec!["172.29.51.200-172.29.51.250".into()],
            ..Default::default()
        });
        let c = check(&s, &s.clusters[0], &r, None).unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("172.29.51.240 is outside every pool")));
        assert!(c.warnings.iter().any(|w| w.contains("pool `l2-old`")));
        // Only the site's pools narrow; the old pool adds nothing.
        assert_eq!(c.narrow.as_ref().unwrap().len(), 3);
        // A cluster with only its old L2 pool (before the migration) narrows nothing: the
        // site's pools stay accepted, so the first BGP routes are not refused.
        let mut r = report();
        r.pools = vec![bgplb_proto::Pool {
            name: "l2-old".into(),
            blocks: vec!["172.29.51.200-172.29.51.250".into()],
            ..Default::default()
        }];
        let c = check(&s, &s.clusters[0], &r, None).unwrap();
        assert_eq!(c.narrow, None);
    }

    #[test]
    fn vip_in_a_disabled_pool_is_a_warning() {
        let s = site();
        let mut r = report();
        r.services[1].ips[0] = "172.29.52.60".into();
        let c = check(&s, &s.clusters[0], &r, None).unwrap();
        assert!(
            c.warnings[0].contains("disabled pool `bgp-reserved`"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn local_services_on_cilium_1_19_are_a_warning() {
        let s = site();
        let mut r = report();
        let local: Vec<String> = r
            .services
            .iter()
            .filter(|x| x.external_traffic_policy == "Local" && !x.ips.is_empty())
            .map(|x| format!("service {}/{}", x.namespace, x.name))
            .collect();
        assert!(!local.is_empty(), "the fixture has a Local service");
        r.cilium.version = Some("1.19.1".into());
        let c = check(&s, &s.clusters[0], &r, None).unwrap();
        for who in &local {
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.starts_with(who.as_str()) && w.contains("44803")),
                "{who}: {:?}",
                c.warnings
            );
        }
        r.cilium.version = Some("1.18.7".into());
        let c = check(&s, &s.clusters[0], &r, None).unwrap();
        assert!(!c.warnings.iter().any(|w| w.contains("44803")));
    }
}
