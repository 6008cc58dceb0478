//! `nodes-vs-agent`: the cluster's nodes against the gateway's sessions (the agent's status).
//! Every live node has an Established session per address family of the node subnets; the
//! gateway has no session for a node the cluster does not have.

use std::collections::BTreeSet;
use std::net::IpAddr;

use bgplb_cilium::session::Family;
use bgplb_proto::PeerStatus;
use bgplb_site::Cluster;

use super::views::NodeView;
use super::{Check, Ctx, Findings};

/// Address families the cluster's nodes peer in: those of its node subnets.
pub(crate) fn families(cluster: &Cluster) -> BTreeSet<Family> {
    cluster
        .node_subnets
        .iter()
        .map(|n| Family::of(&n.addr()))
        .collect()
}

/// The address a node's session of one family is expected at on the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    /// The node has no InternalIP of the family: no session.
    NoAddress,
    /// Its InternalIP is outside the site's node subnets: the agent refuses reports naming it.
    OutsideSubnets(IpAddr),
    At(IpAddr),
}

/// Where node `n`'s session of `fam` should be.
pub(crate) fn expected_address(cluster: &Cluster, n: &NodeView, fam: Family) -> Expected {
    match n.address(fam) {
        None => Expected::NoAddress,
        Some(a) if !cluster.node_subnets.iter().any(|s| s.contains(&a)) => {
            Expected::OutsideSubnets(a)
        }
        Some(a) => Expected::At(a),
    }
}

/// The gateway's session for node `n` in `fam`: the one at the node's address, else one the
/// gateway names after the node (at another address).
pub(crate) fn gateway_session<'a>(
    peers: &[&'a PeerStatus],
    n: &NodeView,
    fam: Family,
    addr: IpAddr,
) -> Option<&'a PeerStatus> {
    peers
        .iter()
        .copied()
        .filter(|p| family(p) == Some(fam))
        .find(|p| address(p) == Some(addr))
        .or_else(|| {
            peers
                .iter()
                .copied()
                .filter(|p| family(p) == Some(fam))
                .find(|p| p.node == n.name)
        })
}

pub(super) fn check(ctx: &Ctx) -> Check {
    let mut f = Findings::new("nodes-vs-agent");
    let Some(agent) = &ctx.input.agent else {
        f.info("not checked: no agent status given");
        return f.finish();
    };
    let cl = ctx.cluster.name.as_str();
    match agent.clusters.iter().find(|c| c.name == cl) {
        None => f.fail(format!(
            "the agent on {} has no report from cluster {cl}: is the companion running, and can it reach the agent?",
            agent.gateway
        )),
        Some(c) => {
            if c.stale {
                f.warn(format!(
                    "the agent's last report from cluster {cl} is stale ({}): the gateway keeps its last state",
                    c.report_age_seconds
                        .map_or_else(|| "age unknown".to_string(), |s| format!("{s} s old"))
                ));
            }
            if let Some(r) = &c.last_refusal {
                f.warn(format!("the agent refused a report from cluster {cl}: {r}"));
            }
        }
    }
    let peers: Vec<&PeerStatus> = agent.peers.iter().filter(|p| p.cluster == cl).collect();
    let (mut expected, mut established) = (0usize, 0usize);
    for n in ctx.nodes.iter().filter(|n| !n.deleting) {
        for fam in ctx.families() {
            let addr = match expected_address(ctx.cluster, n, fam) {
                Expected::NoAddress => {
                    f.warn(format!(
                        "{}: no {} InternalIP: no {} session",
                        n.name,
                        fam.afi(),
                        fam.afi()
                    ));
                    continue;
                }
                Expected::OutsideSubnets(addr) => {
                    f.fail(format!(
                        "{} {} {addr} is outside the site's node subnets: the agent refuses reports naming it",
                        n.name,
                        fam.afi()
                    ));
                    continue;
                }
                Expected::At(addr) => addr,
            };
            expected += 1;
            if session(&mut f, n, fam, addr, &peers) {
                established += 1;
            }
        }
    }
    for p in &peers {
        stale_peer(ctx, &mut f, p);
    }
    f.info(format!(
        "{established} of {expected} node session(s) Established on {} for cluster {cl}",
        agent.gateway
    ));
    f.finish()
}

/// Judges a node's session of one family; true when it is Established.
fn session(
    f: &mut Findings,
    n: &NodeView,
    fam: Family,
    addr: IpAddr,
    peers: &[&PeerStatus],
) -> bool {
    let afi = fam.afi();
    let problem = |f: &mut Findings, line: String| {
        if n.ready {
            f.fail(line);
        } else {
            f.warn(format!("{line} (the node is not Ready)"));
        }
    };
    match gateway_session(peers, n, fam, addr) {
        None => {
            problem(
                f,
                format!("{} {afi} {addr}: no session on the gateway", n.name),
            );
            false
        }
        Some(p) if address(p) != Some(addr) => {
            f.fail(format!(
                "{} {afi}: the gateway peers with {}, but the node's address is {addr}",
                n.name, p.address
            ));
            false
        }
        Some(p) if !p.state.eq_ignore_ascii_case("Established") => {
            problem(f, format!("{} {afi} {addr}: session {}", n.name, p.state));
            false
        }
        Some(_) => true,
    }
}

/// A gateway session for no live node of the cluster.
fn stale_peer(ctx: &Ctx, f: &mut Findings, p: &PeerStatus) {
    let owner = owner(&ctx.nodes, p);
    let up = p.state.eq_ignore_ascii_case("Established");
    match owner {
        Some(n) if !n.deleting => {}
        Some(n) => f.warn(format!(
            "{}: being deleted, but the gateway still has its {} session with {} ({})",
            n.name, p.family, p.address, p.state
        )),
        None if up => f.fail(format!(
            "the gateway has an Established {} session with {} ({}), which is no node of cluster {}",
            p.family, p.address, p.node, ctx.cluster.name
        )),
        None => f.warn(format!(
            "the gateway still has the {} session of {} ({}, {}), a node cluster {} does not have",
            p.family, p.node, p.address, p.state, ctx.cluster.name
        )),
    }
}

/// The node a gateway session belongs to: by name, else by address.
pub(crate) fn owner<'a>(nodes: &'a [NodeView], p: &PeerStatus) -> Option<&'a NodeView> {
    let addr = address(p);
    nodes
        .iter()
        .find(|n| n.name == p.node || (addr.is_some() && (n.ipv4 == addr || n.ipv6 == addr)))
}

pub(crate) fn address(p: &PeerStatus) -> Option<IpAddr> {
    p.address.trim().parse().ok()
}

pub(crate) fn family(p: &PeerStatus) -> Option<Family> {
    match p.family.to_ascii_lowercase().as_str() {
        "ipv4" => Some(Family::Ipv4),
        "ipv6" => Some(Family::Ipv6),
        _ => address(p).map(|a| Family::of(&a)),
    }
}
