//! The kernel side of an apply and of `validate`: reconcile the LB segment (plan, execute,
//! verify), probe ECMP, check the FIB against what should be routed, scan for L2 conflicts.
//! Shared by the CLI and the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bgplb_proto::Report;
use bgplb_site::{Range, Site};
use serde::Serialize;

use crate::checks::{self, Conflict, Ecmp, ExpectedVip, FibFinding};
use crate::error::Error;
use crate::kernel::Kernel;
use crate::liveness::State;
use crate::segment::{self, SegmentPlan};

/// Brings the segment to the site's mode; returns what was done. With `dry_run`, only plans.
/// After executing, the kernel is read again and must need nothing more.
pub async fn reconcile_segment(
    kernel: &Kernel,
    site: &Site,
    dry_run: bool,
) -> Result<SegmentPlan, Error> {
    let state = kernel.read().await?;
    let plan = segment::plan(site, &state)?;
    if dry_run || plan.actions.is_empty() {
        return Ok(plan);
    }
    for action in &plan.actions {
        tracing::info!(%action, "segment");
        kernel.execute(action).await?;
    }
    let after = segment::plan(site, &kernel.read().await?)?;
    if !after.actions.is_empty() {
        let left: Vec<String> = after.actions.iter().map(|a| a.to_string()).collect();
        return Err(Error::Kernel(crate::kernel::KernelError::Refused(format!(
            "the segment still needs changes after applying: {}",
            left.join("; ")
        ))));
    }
    Ok(plan)
}

/// Removes everything bgplb created in the kernel.
pub async fn teardown_segment(kernel: &Kernel) -> Result<SegmentPlan, Error> {
    let plan = segment::teardown(&kernel.read().await?);
    for action in &plan.actions {
        kernel.execute(action).await?;
    }
    Ok(plan)
}

/// One line of `validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// Passes, but something needs the operator's attention (shown as WARN; exit code 0).
    pub warning: bool,
    pub details: Vec<String>,
}

impl Check {
    pub fn new(name: &'static str, ok: bool, details: Vec<String>) -> Check {
        Check {
            name,
            ok,
            warning: false,
            details,
        }
    }

    pub fn warn(name: &'static str, details: Vec<String>) -> Check {
        Check {
            name,
            ok: true,
            warning: true,
            details,
        }
    }

    /// The RESULT column: ok, WARN or FAIL.
    pub fn result(&self) -> &'static str {
        match (self.ok, self.warning) {
            (false, _) => "FAIL",
            (true, true) => "WARN",
            (true, false) => "ok",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    pub ok: bool,
    pub checks: Vec<Check>,
    pub ecmp: Option<Ecmp>,
    pub fib: Vec<FibFinding>,
    pub conflicts: Vec<Conflict>,
}

/// Every pool's ranges (enabled or not: an L2 answer for any pool address is a conflict).
pub fn pool_ranges(site: &Site) -> Vec<Range> {
    site.pools
        .iter()
        .flat_map(|p| p.blocks.iter().filter_map(|b| Range::parse(b).ok()))
        .collect()
}

/// The VIPs that should be routed, and via whom. From the clusters' reports when there are any:
/// with externalTrafficPolicy Local only nodes with ready endpoints announce (except on Cilium
/// 1.19, which announces them from every node: cilium/cilium#44803), with Cluster every Ready
/// node does; VIPs the gateway refuses on purpose (outside the cluster's enabled pools)
/// are not expected; at most `maximum-paths` next hops are. Without reports, from FRR's BGP
/// table (then the check is FIB against RIB).
pub fn expected_vips(
    site: &Site,
    reports: &[Report],
    bgp_routes: &BTreeMap<String, Vec<String>>,
    liveness: &BTreeMap<(String, String), State>,
    ecmp: bool,
) -> Vec<ExpectedVip> {
    let mut out = Vec::new();
    if !reports.is_empty() {
        let widths = maximum_paths(site, reports, ecmp);
        for r in reports {
            let accepted: Vec<Range> = site
                .pools
                .iter()
                .filter(|p| !p.disabled)
                .filter(|p| p.cluster.as_deref().is_none_or(|c| c == r.cluster))
                .flat_map(|p| p.blocks.iter().filter_map(|b| Range::parse(b).ok()))
                .collect();
            let nodes: BTreeMap<&str, &bgplb_proto::Node> = r
                .nodes
                .iter()
                .filter(|n| !n.deleting)
                .map(|n| (n.name.as_str(), n))
                .collect();
            for s in &r.services {
                let candidates: Vec<&bgplb_proto::Node> = if s.external_traffic_policy == "Local"
                    && !r.cilium.advertises_local_services_everywhere()
                {
                    s.ready_nodes
                        .iter()
                        .filter_map(|n| nodes.get(n.as_str()).copied())
                        .collect()
                } else {
                    nodes.values().copied().filter(|n| n.ready).collect()
                };
                // Liveness: a down node's sessions are shut; a drained node's routes lose to
                // any other node's (all drained: they share the traffic again).
                let state = |n: &bgplb_proto::Node| {
                    liveness
                        .get(&(r.cluster.clone(), n.name.clone()))
                        .copied()
                        .unwrap_or(State::Up)
                };
                let alive: Vec<&bgplb_proto::Node> = candidates
                    .into_iter()
                    .filter(|n| state(n) != State::Down)
                    .collect();
                let preferred: Vec<&bgplb_proto::Node> = alive
                    .iter()
                    .copied()
                    .filter(|n| state(n) == State::Up)
                    .collect();
                let announcing = if preferred.is_empty() {
                    alive
                } else {
                    preferred
                };
                for ip in &s.ips {
                    let Ok(vip) = ip.split('/').next().unwrap_or(ip).parse::<IpAddr>() else {
                        continue;
                    };
                    if !accepted.iter().any(|a| a.contains(vip)) {
                        continue;
                    }
                    let nexthops: BTreeSet<IpAddr> = announcing
                        .iter()
                        .filter_map(|n| {
                            if vip.is_ipv4() {
                                n.ipv4.as_deref()
                            } else {
                                n.ipv6.as_deref()
                            }
                        })
                        .filter_map(|a| a.parse().ok())
                        .collect();
                    out.push(ExpectedVip {
                        vip,
                        source: format!("{}: service {}/{}", r.cluster, s.namespace, s.name),
                        nexthops,
                        width: if vip.is_ipv4() { widths.0 } else { widths.1 },
                    });
                }
            }
        }
        return out;
    }
    let pools = pool_ranges(site);
    for (prefix, via) in bgp_routes {
        let Ok(net) = prefix.parse::<ipnet::IpNet>() else {
            continue;
        };
        if net.prefix_len() != net.max_prefix_len() || !pools.iter().any(|r| r.contains(net.addr()))
        {
            continue;
        }
        out.push(ExpectedVip {
            vip: net.addr(),
            source: "BGP table".into(),
            nexthops: via.iter().filter_map(|v| v.parse().ok()).collect(),
            width: usize::MAX,
        });
    }
    out
}

/// The `maximum-paths` the render gives each family (IPv4, IPv6) for the reported node sets.
fn maximum_paths(site: &Site, reports: &[Report], ecmp: bool) -> (usize, usize) {
    let mut count = (0, 0);
    for c in &site.clusters {
        match reports.iter().find(|r| r.cluster == c.name) {
            Some(r) => {
                for n in r.nodes.iter().filter(|n| !n.deleting) {
                    count.0 += usize::from(n.ipv4.is_some());
                    count.1 += usize::from(n.ipv6.is_some());
                }
            }
            None => {
                for n in &c.nodes {
                    count.0 += usize::from(n.ipv4.is_some());
                    count.1 += usize::from(n.ipv6.is_some());
                }
            }
        }
    }
    let width = |n: usize| {
        usize::from(bgplb_site::gateway::maximum_paths(
            site.bgp.maximum_paths,
            ecmp,
            n,
        ))
    };
    (width(count.0), width(count.1))
}

/// What node liveness decided, for the checks: every node's state and the overlay FRR runs.
#[derive(Debug, Clone, Default)]
pub struct LivenessFacts {
    pub nodes: Vec<crate::liveness::View>,
    pub overlay: bgplb_frr::overlay::Overlay,
    /// Whether the agent probes (`liveness.enabled`).
    pub probing: bool,
}

impl LivenessFacts {
    /// Nodes by (cluster, node) → state.
    pub fn states(&self) -> BTreeMap<(String, String), State> {
        self.nodes
            .iter()
            .map(|n| ((n.cluster.clone(), n.node.clone()), n.state))
            .collect()
    }
}

/// The FRR release against the ones bgplb is tested with.
pub fn frr_version_check(v: bgplb_frr::FrrVersion) -> Check {
    let tested: Vec<String> = bgplb_frr::FrrVersion::TESTED
        .iter()
        .map(|t| t.to_string())
        .collect();
    if v.is_tested() {
        Check::new("frr-version", true, vec![format!("FRR {v} (tested)")])
    } else {
        Check::warn(
            "frr-version",
            vec![format!(
                "FRR {v} is outside the releases bgplb is tested with ({}): bgplb renders what \
                 its capability table says {v} understands, but `plan` before an apply is wise",
                tested.join(", ")
            )],
        )
    }
}

/// Runs every kernel check. `frr` is the FRR part of `status` (sessions), `reports` the
/// accepted reports, `bgp_routes` FRR's best routes, `liveness` what node liveness decided.
pub async fn validate(
    kernel: &Kernel,
    site: &Site,
    ecmp: Option<Ecmp>,
    status: &crate::status::Status,
    reports: &[Report],
    liveness: &LivenessFacts,
) -> Result<Validation, Error> {
    let state = kernel.read().await?;
    let mut checks = Vec::new();

    match segment::plan(site, &state) {
        Ok(p) => {
            let mut details: Vec<String> =
                p.actions.iter().map(|a| format!("needed: {a}")).collect();
            let bad_findings = p.findings.iter().filter(|f| !f.ok).count();
            details.extend(p.findings.iter().map(|f| f.what.clone()));
            if details.is_empty() {
                details.push(format!("{:?} mode: as configured", site.segment.mode).to_lowercase());
            }
            checks.push(Check::new(
                "segment",
                p.actions.is_empty() && bad_findings == 0,
                details,
            ));
        }
        Err(e) => checks.push(Check::new("segment", false, vec![e.to_string()])),
    }

    if let Some(e) = &ecmp {
        checks.push(if e.supported {
            let mut details = vec![format!("multipath: yes ({})", e.reason)];
            if let Some(hint) = hash_policy_hint() {
                details.push(hint);
            }
            Check::new("ecmp", true, details)
        } else {
            Check::warn(
                "ecmp",
                vec![format!(
                    "multipath: NO: {}; FRR gets maximum-paths 1, so one node takes each VIP's traffic",
                    e.reason
                )],
            )
        });
    }

    match &status.frr_error {
        Some(e) => checks.push(Check::new("frr", false, vec![e.clone()])),
        None => {
            let shut = |p: &&crate::status::Peer| {
                p.address
                    .parse::<IpAddr>()
                    .is_ok_and(|a| liveness.overlay.shutdown.contains(&a))
            };
            let down: Vec<String> = status
                .peers
                .iter()
                .filter(|p| p.state != "Established" && !shut(p))
                .map(|p| format!("{} {} ({}) is {}", p.node, p.family, p.address, p.state))
                .collect();
            let shut_down: Vec<&crate::status::Peer> = status.peers.iter().filter(shut).collect();
            let mut details = vec![format!(
                "{} of {} session(s) Established",
                status.peers.len() - down.len() - shut_down.len(),
                status.peers.len()
            )];
            details.extend(down.iter().cloned());
            details.extend(shut_down.iter().map(|p| {
                format!(
                    "{} {} ({}) shut down by node liveness",
                    p.node, p.family, p.address
                )
            }));
            checks.push(Check::new("sessions", down.is_empty(), details));
        }
    }

    if let Some(v) = status
        .frr_version
        .as_deref()
        .and_then(|v| v.parse::<bgplb_frr::FrrVersion>().ok())
    {
        checks.push(frr_version_check(v));
    }
    checks.push(match &status.unsaved {
        Some(u) => Check::new("saved", false, vec![u.clone()]),
        None => Check::new(
            "saved",
            true,
            vec!["FRR's configuration file has what FRR runs".into()],
        ),
    });
    if let Some(p) = &status.pinned {
        checks.push(Check::warn("pin", vec![p.clone()]));
    }
    checks.push(liveness_check(liveness));

    let pools = pool_ranges(site);
    let expected = expected_vips(
        site,
        reports,
        &status.bgp_routes,
        &liveness.states(),
        crate::checks::ecmp_proven(ecmp.as_ref()),
    );
    let fib = checks::fib_check(&expected, &state);
    checks.push(Check::new(
        "fib",
        fib.is_empty(),
        if fib.is_empty() {
            vec![format!("{} VIP(s) routed as expected", expected.len())]
        } else {
            fib.iter().map(|f| f.to_string()).collect()
        },
    ));

    let conflicts = checks::l2_conflicts(&pools, &state);
    checks.push(Check::new(
        "l2",
        conflicts.is_empty(),
        if conflicts.is_empty() {
            vec!["nothing answers ARP/NDP for a pool address".into()]
        } else {
            conflicts.iter().map(|c| c.to_string()).collect()
        },
    ));

    // Each node address with its cluster: a pool's traffic leaves towards its own cluster.
    let mut nodes: Vec<(&str, IpAddr)> = site
        .clusters
        .iter()
        .flat_map(|c| c.nodes.iter().map(move |n| (c.name.as_str(), n)))
        .flat_map(|(c, n)| [n.ipv4, n.ipv6].map(|a| a.map(|a| (c, a))))
        .flatten()
        .collect();
    nodes.extend(reports.iter().flat_map(|r| {
        r.nodes
            .iter()
            .flat_map(|n| [n.ipv4.as_deref(), n.ipv6.as_deref()])
            .flatten()
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .map(|a| (r.cluster.as_str(), a))
    }));
    let segment_nets: Vec<ipnet::IpNet> = [site.segment.ipv4, site.segment.ipv6]
        .into_iter()
        .flatten()
        .collect();
    checks.push(crate::nat::check(
        &crate::nat::flows(site, &state, &nodes),
        &crate::nat::read_rules().await,
        &segment_nets,
    ));

    Ok(Validation {
        ok: checks.iter().all(|c| c.ok),
        checks,
        ecmp,
        fib,
        conflicts,
    })
}

/// A note when the kernel hashes multipath routes by addresses only: every connection of one
/// client then goes to the same node.
fn hash_policy_hint() -> Option<String> {
    let policy = std::fs::read_to_string("/proc/sys/net/ipv4/fib_multipath_hash_policy").ok()?;
    (policy.trim() == "0").then(|| {
        "hash policy: addresses only (each client sticks to one node); `sysctl -w net.ipv4.fib_multipath_hash_policy=1 net.ipv6.fib_multipath_hash_policy=1` spreads connections by port".to_string()
    })
}

/// The liveness row: a node down or drained is a warning (traffic avoids it, as it should); a
/// node that never answered a probe is one too (probes cannot protect it).
pub fn liveness_check(l: &LivenessFacts) -> Check {
    let mut details = Vec::new();
    let mut warning = false;
    let up = l.nodes.iter().filter(|n| n.state == State::Up).count();
    details.push(format!("{up} of {} node(s) up", l.nodes.len()));
    for n in &l.nodes {
        if n.state != State::Up {
            warning = true;
            details.push(format!(
                "{}/{} {} since {}: {}",
                n.cluster,
                n.node,
                n.state.as_str(),
                crate::liveness::format_unix_ms(n.since_unix_ms),
                n.reason
            ));
        } else if l.probing && !n.answered {
            warning = true;
            details.push(format!(
                "{}/{} has not answered a probe yet: until it does, probes cannot take it down (a firewall dropping them?)",
                n.cluster, n.node
            ));
        }
    }
    if !l.probing {
        details.push(
            "probing is off (liveness.enabled = false): only the companion's signals act".into(),
        );
    }
    if warning {
        Check::warn("liveness", details)
    } else {
        Check::new("liveness", true, details)
    }
}

/// `validate` as a table.
pub fn render_validation(v: &Validation) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header(["CHECK", "RESULT", "DETAIL"]);
    for c in &v.checks {
        for (i, d) in c.details.iter().enumerate() {
            let (name, result) = if i == 0 {
                (c.name, c.result())
            } else {
                ("", "")
            };
            table.add_row([name, result, d.as_str()]);
        }
    }
    format!("{table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_next_hops_follow_the_traffic_policy() {
        let mut r: Report =
            serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
        r.nodes[2].ready = true;
        let site = bgplb_site::parse(include_str!("../../config/site.toml")).unwrap();
        let e = expected_vips(
            &site,
            &[r.clone()],
            &BTreeMap::new(),
            &BTreeMap::new(),
            true,
        );
        let traefik = e
            .iter()
            .find(|x| x.vip.to_string() == "172.29.52.200")
            .unwrap();
        assert_eq!(traefik.nexthops.len(), 3, "Cluster: every Ready node");
        let jellyfin = e
            .iter()
            .find(|x| x.vip.to_string() == "172.29.52.100")
            .unwrap();
        assert_eq!(
            jellyfin
                .nexthops
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>(),
            ["172.29.51.12"],
            "Local: nodes with endpoints"
        );
        let v6 = e.iter().find(|x| x.vip.is_ipv6()).unwrap();
        assert!(v6.nexthops.iter().all(|a| a.is_ipv6()));

        // Cilium 1.19 announces Local services from every node (cilium/cilium#44803): the FIB
        // the gateway expects is what that version does.
        for (version, expected) in [("1.19.1", 3), ("v1.19.0", 3), ("1.18.7", 1), ("1.20.0", 1)] {
            let mut r = r.clone();
            r.cilium.version = Some(version.into());
            let e = expected_vips(&site, &[r], &BTreeMap::new(), &BTreeMap::new(), true);
            let jellyfin = e
                .iter()
                .find(|x| x.vip.to_string() == "172.29.52.100")
                .unwrap();
            assert_eq!(jellyfin.nexthops.len(), expected, "Cilium {version}");
        }
    }

    #[test]
    fn an_frr_outside_the_tested_releases_is_a_warning() {
        let c = frr_version_check(bgplb_frr::FrrVersion::new(7, 5));
        assert!(c.ok && !c.warning, "{:?}", c.details);
        let c = frr_version_check(bgplb_frr::FrrVersion::new(9, 1));
        assert!(c.warning, "{:?}", c.details);
        assert!(c.details[0].contains("7.5, 8.4, 10.3"), "{:?}", c.details);
    }

    #[test]
    fn without_reports_the_bgp_table_is_the_expectation() {
        let routes: BTreeMap<String, Vec<String>> = [
            (
                "172.29.52.100/32".to_string(),
                vec!["172.29.51.11".to_string()],
            ),
            ("10.0.0.0/8".to_string(), vec!["172.29.51.11".to_string()]),
        ]
        .into();
        let site = bgplb_site::parse(include_str!("../../config/site.toml")).unwrap();
        let e = expected_vips(&site, &[], &routes, &BTreeMap::new(), true);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].source, "BGP table");
    }

    #[test]
    fn refused_on_purpose_and_beyond_maximum_paths_is_not_expected() {
        let mut r: Report =
            serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
        r.nodes[2].ready = true;
        // A VIP in the disabled pool: the gateway refuses it on purpose.
        r.services[1].ips[0] = "172.29.52.60".into();
        let mut site = bgplb_site::parse(include_str!("../../config/site.toml")).unwrap();
        site.bgp.maximum_paths = Some(2);
        let e = expected_vips(&site, &[r], &BTreeMap::new(), &BTreeMap::new(), true);
        assert!(
            !e.iter().any(|x| x.vip.to_string() == "172.29.52.60"),
            "{e:?}"
        );
        let traefik = e
            .iter()
            .find(|x| x.vip.to_string() == "172.29.52.200")
            .unwrap();
        assert_eq!((traefik.nexthops.len(), traefik.width), (3, 2));
        // Without multipath: one next hop of the three is right.
        let one = expected_vips(
            &site,
            std::slice::from_ref(
                &serde_json::from_str(include_str!("../../proto/fixtures/report-home.json"))
                    .unwrap(),
            ),
            &BTreeMap::new(),
            &BTreeMap::new(),
            false,
        );
        assert!(one.iter().all(|x| x.width == 1));
    }
}
