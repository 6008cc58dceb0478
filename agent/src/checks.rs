//! Pure judgements of the kernel's view: ECMP capability, the FIB check, the L2 conflict scan.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bgplb_site::Range;
use ipnet::IpNet;
use serde::Serialize;

use crate::kstate::{protocol_name, KernelState, RouteKind};
use crate::segment::MAIN_TABLE;

/// Route protocol of FRR's BGP routes.
pub const PROTO_BGP: u8 = 186;

/// Whether the kernel takes multipath routes, and why we think so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ecmp {
    pub supported: bool,
    pub reason: String,
}

/// How a probe (a two-next-hop route in a private table) went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Accepted,
    /// The kernel refused it with this errno and message.
    Refused {
        errno: i32,
        message: String,
    },
}

/// The decision from the probe: only an accepted multipath route proves support. A kernel built
/// without CONFIG_IP_ROUTE_MULTIPATH refuses RTA_MULTIPATH with EINVAL; anything else (EPERM,
/// ENETUNREACH) also leaves us without proof, and one path is the safe answer.
pub fn ecmp_decision(probe: &ProbeResult) -> Ecmp {
    match probe {
        ProbeResult::Accepted => Ecmp {
            supported: true,
            reason: "the kernel accepted a test route with two next hops".into(),
        },
        ProbeResult::Refused { errno, message } if *errno == 22 => Ecmp {
            supported: false,
            reason: format!("the kernel refused a test route with two next hops (EINVAL: {message}); it was likely built without multipath routing, so FRR gets maximum-paths 1"),
        },
        ProbeResult::Refused { errno, message } => Ecmp {
            supported: false,
            reason: format!("the multipath probe failed (errno {errno}: {message}); assuming no multipath, so FRR gets maximum-paths 1"),
        },
    }
}

/// The decision when no probe could run (netlink cannot be opened): without proof, one path.
pub fn ecmp_unknown(why: &str) -> Ecmp {
    Ecmp {
        supported: false,
        reason: format!(
            "multipath could not be checked ({why}); without proof FRR gets maximum-paths 1"
        ),
    }
}

/// Whether to render multipath: only with a probe's proof.
pub fn ecmp_proven(ecmp: Option<&Ecmp>) -> bool {
    ecmp.is_some_and(|e| e.supported)
}

/// A VIP the gateway should route, and through whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectedVip {
    pub vip: IpAddr,
    /// Where the expectation comes from (a service, or the BGP table).
    pub source: String,
    pub nexthops: BTreeSet<IpAddr>,
    /// At most this many next hops can be in the FIB (`maximum-paths`); with more candidates,
    /// any that many of them is right.
    pub width: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum FibProblem {
    /// No route for the VIP at all (it falls to the segment's unreachable route or the default).
    Missing,
    /// Another protocol's route wins over BGP's.
    Shadowed {
        protocol: String,
        metric: u32,
        nexthops: Vec<IpAddr>,
    },
    /// The BGP route's next hops differ.
    NextHops {
        missing: Vec<IpAddr>,
        extra: Vec<IpAddr>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FibFinding {
    pub vip: IpAddr,
    pub source: String,
    #[serde(flatten)]
    pub problem: FibProblem,
}

impl std::fmt::Display for FibFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[IpAddr]| {
            v.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.problem {
            FibProblem::Missing => {
                write!(f, "{} ({}): no route in the kernel", self.vip, self.source)
            }
            FibProblem::Shadowed {
                protocol,
                metric,
                nexthops,
            } => write!(
                f,
                "{} ({}): shadowed by a {protocol} route (metric {metric}) via {}",
                self.vip,
                self.source,
                list(nexthops)
            ),
            FibProblem::NextHops { missing, extra } => write!(
                f,
                "{} ({}): next hops differ: missing [{}], unexpected [{}]",
                self.vip,
                self.source,
                list(missing),
                list(extra)
            ),
        }
    }
}

/// Checks that each expected VIP has, as the route the kernel uses, a BGP route whose next hops
/// are exactly the expected ones.
pub fn fib_check(expected: &[ExpectedVip], k: &KernelState) -> Vec<FibFinding> {
    let mut findings = Vec::new();
    for e in expected {
        let host = IpNet::from(e.vip);
        let mut candidates: Vec<_> = k
            .routes
            .iter()
            .filter(|r| r.table == MAIN_TABLE && r.dst == host)
            .collect();
        candidates.sort_by_key(|r| r.metric);
        let problem = match candidates.first() {
            None => Some(FibProblem::Missing),
            Some(r) if r.protocol != PROTO_BGP || r.kind != RouteKind::Unicast => {
                Some(FibProblem::Shadowed {
                    protocol: protocol_name(r.protocol),
                    metric: r.metric,
                    nexthops: r.nexthops.clone(),
                })
            }
            Some(r) => {
                let have: BTreeSet<IpAddr> = r.nexthops.iter().copied().collect();
                let want = e.nexthops.len().min(e.width.max(1));
                let enough = have.intersection(&e.nexthops).count() >= want;
                let missing: Vec<IpAddr> = if enough {
                    Vec::new()
                } else {
                    e.nexthops.difference(&have).copied().collect()
                };
                let extra: Vec<IpAddr> = have.difference(&e.nexthops).copied().collect();
                (!missing.is_empty() || !extra.is_empty())
                    .then_some(FibProblem::NextHops { missing, extra })
            }
        };
        if let Some(problem) = problem {
            findings.push(FibFinding {
                vip: e.vip,
                source: e.source.clone(),
                problem,
            });
        }
    }
    findings
}

/// Something answers ARP/NDP for a pool address: an L2 announcement still alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub vip: IpAddr,
    pub interface: String,
    pub mac: String,
    pub state: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answers at L2 on {} from {} ({}): an L2 announcement is still alive",
            self.vip, self.interface, self.mac, self.state
        )
    }
}

/// Neighbour entries with a link-layer address for any address inside a pool.
pub fn l2_conflicts(pools: &[Range], k: &KernelState) -> Vec<Conflict> {
    let mut out: BTreeMap<(IpAddr, String), Conflict> = BTreeMap::new();
    for n in &k.neighbours {
        let Some(mac) = &n.mac else { continue };
        if matches!(n.state.as_str(), "FAILED" | "INCOMPLETE" | "NONE") {
            continue;
        }
        if pools.iter().any(|r| r.contains(n.ip)) {
            let interface = k.link_name(n.index);
            out.insert(
                (n.ip, interface.clone()),
                Conflict {
                    vip: n.ip,
                    interface,
                    mac: mac.clone(),
                    state: n.state.clone(),
                },
            );
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kstate::{Link, Neighbour, Route};

    fn route(dst: &str, protocol: u8, metric: u32, via: &[&str]) -> Route {
        Route {
            table: MAIN_TABLE,
            dst: dst.parse().unwrap(),
            protocol,
            kind: RouteKind::Unicast,
            metric,
            nexthops: via.iter().map(|v| v.parse().unwrap()).collect(),
        }
    }

    fn expect(vip: &str, via: &[&str]) -> ExpectedVip {
        ExpectedVip {
            width: 64,
            vip: vip.parse().unwrap(),
            source: "web/nginx".into(),
            nexthops: via.iter().map(|v| v.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn ecmp_decision_covers_both_branches() {
        assert!(ecmp_decision(&ProbeResult::Accepted).supported);
        let no = ecmp_decision(&ProbeResult::Refused {
            errno: 22,
            message: "Invalid argument".into(),
        });
        assert!(
            !no.supported && no.reason.contains("maximum-paths 1"),
            "{}",
            no.reason
        );
        let unknown = ecmp_decision(&ProbeResult::Refused {
            errno: 1,
            message: "Operation not permitted".into(),
        });
        assert!(!unknown.supported);
    }

    #[test]
    fn without_a_probe_there_is_no_multipath() {
        // Not checked (no netlink, or before the first probe): one path, and why.
        assert!(!ecmp_proven(None));
        let e = ecmp_unknown("netlink could not be opened");
        assert!(!ecmp_proven(Some(&e)));
        assert!(e.reason.contains("maximum-paths 1"), "{}", e.reason);
        assert!(ecmp_proven(Some(&ecmp_decision(&ProbeResult::Accepted))));
        assert_eq!(
            bgplb_site::gateway::maximum_paths(None, ecmp_proven(None), 3),
            1
        );
    }

    #[test]
    fn fib_check_names_each_problem() {
        let k = KernelState {
            routes: vec![
                route(
                    "172.29.52.100/32",
                    PROTO_BGP,
                    20,
                    &["172.29.51.11", "172.29.51.12"],
                ),
                route("172.29.52.101/32", PROTO_BGP, 20, &["172.29.51.11"]),
                route("172.29.52.102/32", PROTO_BGP, 20, &["172.29.51.11"]),
                route("172.29.52.102/32", 4, 10, &["172.29.51.13"]),
            ],
            ..Default::default()
        };
        let expected = [
            expect("172.29.52.100", &["172.29.51.11", "172.29.51.12"]),
            expect("172.29.52.101", &["172.29.51.12"]),
            expect("172.29.52.102", &["172.29.51.11"]),
            expect("172.29.52.103", &["172.29.51.11"]),
        ];
        let f = fib_check(&expected, &k);
        let text: Vec<String> = f.iter().map(|x| x.to_string()).collect();
        assert_eq!(f.len(), 3, "{text:#?}");
        assert!(
            text[0].contains("172.29.52.101")
                && text[0].contains("missing [172.29.51.12], unexpected [172.29.51.11]")
        );
        assert!(
            text[1].contains("172.29.52.102")
                && text[1].contains("shadowed by a static route (metric 10)")
        );
        assert!(text[2].contains("172.29.52.103") && text[2].contains("no route"));
    }

    #[test]
    fn fewer_paths_than_candidates_is_right_up_to_maximum_paths() {
        let k = KernelState {
            routes: vec![
                route(
                    "172.29.52.100/32",
                    PROTO_BGP,
                    20,
                    &["172.29.51.11", "172.29.51.13"],
                ),
                route("172.29.52.101/32", PROTO_BGP, 20, &["172.29.51.12"]),
            ],
            ..Default::default()
        };
        let three = &["172.29.51.11", "172.29.51.12", "172.29.51.13"];
        let mut a = expect("172.29.52.100", three);
        a.width = 2;
        let mut b = expect("172.29.52.101", three);
        b.width = 2;
        let f = fib_check(&[a, b], &k);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].vip.to_string(),
            "172.29.52.101",
            "one of two is too few"
        );
    }

    #[test]
    fn conflicts_need_a_mac_inside_a_pool() {
        let k = KernelState {
            links: vec![Link {
                index: 7,
                name: "br52".into(),
                alias: None,
                up: true,
                vlan: None,
                kind: None,
            }],
            neighbours: vec![
                Neighbour {
                    index: 7,
                    ip: "172.29.52.120".parse().unwrap(),
                    mac: Some("02:00:00:00:00:01".into()),
                    state: "REACHABLE".into(),
                },
                Neighbour {
                    index: 7,
                    ip: "172.29.52.121".parse().unwrap(),
                    mac: None,
                    state: "FAILED".into(),
                },
                Neighbour {
                    index: 7,
                    ip: "172.29.52.10".parse().unwrap(),
                    mac: Some("02:00:00:00:00:02".into()),
                    state: "STALE".into(),
                },
            ],
            ..Default::default()
        };
        let pools = [Range::parse("172.29.52.100-172.29.52.199").unwrap()];
        let c = l2_conflicts(&pools, &k);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].interface.as_str(), c[0].mac.as_str()),
            ("br52", "02:00:00:00:00:01")
        );
    }
}
