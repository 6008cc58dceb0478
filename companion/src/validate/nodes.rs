//! `nodes-vs-agent`: the cluster's nodes against the gateway's sessions (the agent's status).
//! Every live node has an Established session per address family of the node subnets; the
//! gateway has no session for a node the cluster does not have.

use std::net::IpAddr;

use bgplb_cilium::session::Family;
use bgplb_proto::PeerStatus;

use super::views::NodeView;
use super::{Check, Ctx, Findings};

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
            let Some(addr) = n.address(fam) else {
                f.warn(format!(
                    "{}: no {} InternalIP: no {} session",
                    n.name,
                    fam.afi(),
                    fam.afi()
                ));
                continue;
            };
            if !ctx.cluster.node_subnets.iter().any(|s| s.contains(&addr)) {
                f.fail(format!(
                    "{} {} {addr} is outside the site's node subnets: the agent refuses reports naming it",
                    n.name,
                    fam.afi()
                ));
                continue;
            }
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
    let found = peers
        .iter()
        .filter(|p| family(p) == Some(fam))
        .find(|p| address(p) == Some(addr))
        .or_else(|| {
            peers
                .iter()
                .filter(|p| family(p) == Some(fam))
                .find(|p| p.node == n.name)
        });
    match found {
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
    let addr = address(p);
    let owner = ctx
        .nodes
        .iter()
        .find(|n| n.name == p.node || (addr.is_some() && (n.ipv4 == addr || n.ipv6 == addr)));
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

fn address(p: &PeerStatus) -> Option<IpAddr> {
    p.address.trim().parse().ok()
}

fn family(p: &PeerStatus) -> Option<Family> {
    match p.family.to_ascii_lowercase().as_str() {
        "ipv4" => Some(Family::Ipv4),
        "ipv6" => Some(Family::Ipv6),
        _ => address(p).map(|a| Family::of(&a)),
    }
}
