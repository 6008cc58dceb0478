//! `bgplb-companion verify-bgp-peering`: both ends of every BGP session side by side (pure).
//!
//! The gateway's end is the agent's `GET /v1/status` (`peers`: node, family, address, state,
//! accepted prefixes). The cluster's end is Cilium's own per-node status, the
//! CiliumBGPNodeConfig objects' `status.bgpInstances[].peers[]` (`peerAddress`, `peerASN`,
//! `peeringState`, `routeCount[].advertised`), which Cilium's BGP control plane writes for the
//! v2 BGP API (`cilium.io/v2alpha1` from 1.16, `v2` from 1.18). A cluster without them (the
//! older CiliumBGPPeeringPolicy, an older Cilium) has no per-node status: only the gateway's end
//! is judged then, and a warning says so.
//!
//! Expected sessions are `validate`'s (`nodes-vs-agent`, [`crate::validate::nodes`]): every
//! node that is not being deleted × every address family of the site's node subnets, at the
//! node's InternalIP of that family. Problems of a node that is not Ready are warnings.
//!
//! Every mismatch is one line naming the node and family: a session up on one end only, down on
//! both, Cilium peering with an address or ASN that is not the gateway's, Cilium advertising more
//! routes than the gateway accepted (allowing for GoBGP counting the End-of-RIB marker of a
//! graceful-restart session, see `routes`), a gateway session for a node the cluster does not have.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use bgplb_cilium::session::Family;
use bgplb_proto::{AgentStatus, PeerStatus};
use bgplb_site::{Cluster, Site};
use k8s_openapi::api::core::v1::Node;
use serde::Serialize;
use serde_json::Value;

use crate::validate::nodes::{self as nv, Expected};
use crate::validate::views::{self, NodeView};
use crate::validate::Status;

/// Everything the comparison reads.
#[derive(Debug, Clone)]
pub struct Input {
    pub site: Site,
    /// The site cluster the nodes belong to.
    pub cluster: String,
    pub nodes: Vec<Node>,
    /// The agent's `GET /v1/status`.
    pub agent: AgentStatus,
    /// CiliumBGPNodeConfig objects as the API returns them (either version); empty when the
    /// cluster has none.
    pub node_configs: Vec<Value>,
    /// How many CiliumBGPPeeringPolicy objects exist (for the message when there is no node
    /// status).
    pub peering_policies: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// No finding failed (warnings allowed).
    pub ok: bool,
    pub gateway: String,
    pub cluster: String,
    /// Whether Cilium's end was available (CiliumBGPNodeConfig objects exist).
    pub cilium_view: bool,
    /// One per expected session, then the gateway's sessions for nodes the cluster lacks.
    pub sessions: Vec<Session>,
    /// Mismatches and warnings, failures first, one line each.
    pub findings: Vec<Finding>,
    pub summary: String,
}

/// One session as both ends see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub node: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// The node's InternalIP of the family (none for a node the cluster does not have).
    pub node_address: Option<String>,
    pub node_ready: bool,
    /// `None`: the gateway has no session for the node in this family.
    pub gateway: Option<GatewayEnd>,
    pub cilium: CiliumEnd,
    pub result: Status,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayEnd {
    /// The neighbour address FRR uses (the node's address).
    pub address: String,
    /// FRR's state: `Established`, `Active`, `Connect`, `Idle`, ...
    pub state: String,
    /// Prefixes the gateway accepted from the node.
    pub accepted: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "view", rename_all = "kebab-case")]
pub enum CiliumEnd {
    /// The cluster has no CiliumBGPNodeConfig at all.
    Unavailable,
    /// A gateway session for a node the cluster does not have.
    NotANode,
    /// The node has no CiliumBGPNodeConfig (Cilium runs no BGP instance there).
    NoNodeConfig,
    /// The node's CiliumBGPNodeConfig has no peer of this family.
    NoPeer,
    Peer(CiliumPeer),
}

/// A peer of a node's BGP instance, from its CiliumBGPNodeConfig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiliumPeer {
    /// The BGP instance's name.
    pub instance: String,
    pub name: String,
    pub peer_address: String,
    pub peer_asn: Option<u64>,
    /// The instance's `localASN`.
    pub local_asn: Option<u64>,
    /// `peeringState` (`established`, `idle`, `active`, `connect`, `open_sent`, ...); `None`
    /// when the status does not list the peer yet (it is only in the spec).
    pub state: Option<String>,
    /// `routeCount[]` of the peer's family (unicast), when Cilium reports it.
    pub advertised: Option<u64>,
    pub received: Option<u64>,
    pub established_time: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub status: Status,
    pub message: String,
}

/// Compares both ends of every session.
pub fn verify(input: &Input) -> Report {
    let mut out = Collector::default();
    let agent = &input.agent;
    let Some(cluster) = input.site.cluster(&input.cluster) else {
        out.push(
            Status::Fail,
            format!("cluster {} is not in the site file", input.cluster),
        );
        return out.finish(input, false, Vec::new(), String::new());
    };
    let cl = cluster.name.as_str();
    let nodes = views::nodes(&input.nodes);
    let peers: Vec<&PeerStatus> = agent.peers.iter().filter(|p| p.cluster == cl).collect();
    let view = !input.node_configs.is_empty();
    let configs: BTreeMap<&str, &Value> = input
        .node_configs
        .iter()
        .filter_map(|c| Some((c.pointer("/metadata/name")?.as_str()?, c)))
        .collect();
    let gateway = GatewayAddresses::of(&input.site, cluster);

    if let Some(e) = &agent.frr_error {
        out.push(
            Status::Fail,
            format!(
                "the agent on {} cannot read FRR ({e}): the gateway's sessions are unknown",
                agent.gateway
            ),
        );
    }
    agent_report(&mut out, agent, cl);
    if !view {
        out.push(
            Status::Warn,
            if input.peering_policies > 0 {
                "Cilium's view is unavailable: the cluster uses CiliumBGPPeeringPolicy, and \
                 Cilium writes no per-node BGP status (CiliumBGPNodeConfig) for it: only the \
                 gateway's end is checked"
                    .to_string()
            } else {
                "Cilium's view is unavailable: the cluster has no CiliumBGPNodeConfig (Cilium \
                 before 1.16, or its BGP v2 API unused): only the gateway's end is checked"
                    .to_string()
            },
        );
    }

    let mut sessions = Vec::new();
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let (mut expected, mut agreed) = (0usize, 0usize);
    for n in nodes.iter().filter(|n| !n.deleting) {
        let config = configs.get(n.name.as_str()).copied();
        let mut rows = Vec::new();
        for fam in nv::families(cluster) {
            let addr = match nv::expected_address(cluster, n, fam) {
                Expected::NoAddress => {
                    if n.ready {
                        out.push(
                            Status::Warn,
                            format!(
                                "{}: no {} InternalIP: no {} session expected",
                                n.name,
                                fam.afi(),
                                fam.afi()
                            ),
                        );
                    }
                    continue;
                }
                Expected::OutsideSubnets(a) => {
                    out.push(
                        Status::Fail,
                        format!(
                            "{} {} {a} is outside the site's node subnets: the agent refuses reports naming it",
                            n.name,
                            fam.afi()
                        ),
                    );
                    continue;
                }
                Expected::At(a) => a,
            };
            expected += 1;
            let gw = nv::gateway_session(&peers, n, fam, addr);
            if let Some(p) = gw {
                used.insert((p.address.clone(), p.family.to_ascii_lowercase()));
            }
            let cilium = if view {
                match config {
                    None => CiliumEnd::NoNodeConfig,
                    Some(c) => cilium_end(c, fam, &gateway),
                }
            } else {
                CiliumEnd::Unavailable
            };
            rows.push((fam, addr, gw, cilium));
        }
        judge_node(
            &mut out,
            &mut sessions,
            &mut agreed,
            Judge {
                node: n,
                graceful_restart: input.site.bgp.graceful_restart,
                agent,
                cluster,
                gateway: &gateway,
            },
            rows,
        );
    }

    // Gateway sessions nothing above claimed.
    for p in &peers {
        if used.contains(&(p.address.clone(), p.family.to_ascii_lowercase())) {
            continue;
        }
        let up = established(&p.state);
        let line = |out: &mut Collector, status: Status, message: String| {
            out.push(status, message.clone());
            status
        };
        let result = match nv::owner(&nodes, p) {
            Some(n) if n.deleting => line(
                &mut out,
                Status::Warn,
                format!(
                    "{}: being deleted, but the gateway still has its {} session with {} ({})",
                    n.name, p.family, p.address, p.state
                ),
            ),
            Some(n) => line(
                &mut out,
                Status::Warn,
                format!(
                    "{} {}: the gateway has another session for the node, with {} ({})",
                    n.name, p.family, p.address, p.state
                ),
            ),
            None => line(
                &mut out,
                if up { Status::Fail } else { Status::Warn },
                format!(
                    "gateway has a session for {}, which is not a node ({} {}, {})",
                    if p.node.is_empty() {
                        "an unnamed peer"
                    } else {
                        p.node.as_str()
                    },
                    p.family,
                    p.address,
                    p.state
                ),
            ),
        };
        sessions.push(Session {
            node: p.node.clone(),
            family: p.family.to_ascii_lowercase(),
            node_address: None,
            node_ready: false,
            gateway: Some(gateway_end(p)),
            cilium: CiliumEnd::NotANode,
            result,
        });
    }

    // Node configs for nodes the cluster does not have.
    for name in configs.keys() {
        if !nodes.iter().any(|n| n.name == *name) {
            out.push(
                Status::Warn,
                format!("CiliumBGPNodeConfig {name} is for no node of the cluster (a node that is gone?)"),
            );
        }
    }

    let summary = if view {
        format!(
            "{agreed} of {expected} session(s) Established on both ends ({} and Cilium) for cluster {cl}",
            agent.gateway
        )
    } else {
        format!(
            "{agreed} of {expected} session(s) Established on {} for cluster {cl} (Cilium's view unavailable)",
            agent.gateway
        )
    };
    out.finish(input, view, sessions, summary)
}

/// What judging one node's rows needs.
struct Judge<'a> {
    node: &'a NodeView,
    /// Graceful restart on the sessions (the site's policy).
    graceful_restart: bool,
    agent: &'a AgentStatus,
    cluster: &'a Cluster,
    gateway: &'a GatewayAddresses,
}

/// Judges a node's sessions (one row per family) and records them.
fn judge_node(
    out: &mut Collector,
    sessions: &mut Vec<Session>,
    agreed: &mut usize,
    j: Judge,
    rows: Vec<(Family, IpAddr, Option<&PeerStatus>, CiliumEnd)>,
) {
    let n = j.node;
    let severity = |s: Status| if n.ready { s } else { s.min(Status::Warn) };
    let not_ready = if n.ready {
        ""
    } else {
        " (the node is not Ready)"
    };
    let all_missing = !rows.is_empty() && rows.iter().all(|r| r.2.is_none());
    let no_config = rows.iter().any(|r| matches!(r.3, CiliumEnd::NoNodeConfig));
    // Node-wide lines first: one line instead of one per family.
    if all_missing {
        out.push(
            severity(Status::Fail),
            format!(
                "{}: no session on the gateway ({})",
                n.name,
                if n.ready {
                    "node is Ready"
                } else {
                    "node is not Ready"
                }
            ),
        );
    }
    if no_config {
        out.push(
            severity(Status::Fail),
            format!(
                "{}: no CiliumBGPNodeConfig: Cilium runs no BGP instance on the node (no \
                 CiliumBGPClusterConfig selects it, or its cilium-agent has not started BGP){not_ready}",
                n.name
            ),
        );
    }
    for (fam, addr, gw, cilium) in rows {
        let afi = fam.afi();
        let mut lines: Vec<(Status, String)> = Vec::new();
        let who = format!("{} {afi}", n.name);
        if gw.is_none() && !all_missing {
            // A node that is not Ready gets its suffix below.
            lines.push((
                Status::Fail,
                format!(
                    "{who}: no session on the gateway{}",
                    if n.ready { " (node is Ready)" } else { "" }
                ),
            ));
        }
        if all_missing && gw.is_none() {
            // Named above; the row still fails.
            lines.push((Status::Fail, String::new()));
        }
        let mut address_problem = false;
        if let Some(p) = gw {
            if nv::address(p) != Some(addr) {
                address_problem = true;
                lines.push((
                    Status::Fail,
                    format!(
                        "{who}: the gateway peers with {}, but the node's address is {addr}",
                        p.address
                    ),
                ));
            }
        }
        match &cilium {
            CiliumEnd::NoNodeConfig => lines.push((Status::Fail, String::new())),
            CiliumEnd::NoPeer => {
                address_problem = true;
                lines.push((
                    Status::Fail,
                    format!(
                        "{who}: Cilium has no {afi} peer (the gateway is {})",
                        j.gateway.show(fam)
                    ),
                ));
            }
            CiliumEnd::Peer(cp) => {
                if !j.gateway.is_gateway(&cp.peer_address) {
                    address_problem = true;
                    lines.push((
                        Status::Fail,
                        format!(
                            "{who}: Cilium peers with {}, the gateway is {}",
                            cp.peer_address,
                            j.gateway.show(fam)
                        ),
                    ));
                }
                if let Some(asn) = cp.peer_asn.filter(|a| *a != u64::from(j.agent.asn)) {
                    lines.push((
                        Status::Fail,
                        format!("{who}: Cilium peer ASN {asn} ≠ gateway ASN {}", j.agent.asn),
                    ));
                }
                if let Some(asn) = cp.local_asn.filter(|a| *a != u64::from(j.cluster.asn)) {
                    lines.push((
                        Status::Fail,
                        format!(
                            "{who}: Cilium's local ASN {asn} ≠ cluster {}'s ASN {} (site file): the gateway refuses the session",
                            j.cluster.name, j.cluster.asn
                        ),
                    ));
                }
            }
            CiliumEnd::Unavailable | CiliumEnd::NotANode => {}
        }
        let mut both_up = false;
        if let (Some(p), false) = (gw, address_problem) {
            let gw_up = established(&p.state);
            match &cilium {
                CiliumEnd::Peer(cp) => {
                    let ci_up = cp.state.as_deref().map(established);
                    let says = cp.state.as_deref().unwrap_or("");
                    match (gw_up, ci_up) {
                        (true, Some(true)) => {
                            both_up = true;
                            routes(&mut lines, &who, p, cp, j.graceful_restart);
                        }
                        (true, Some(false)) => lines.push((
                            Status::Fail,
                            format!("{who}: gateway {}, Cilium says {says}", p.state),
                        )),
                        (false, Some(true)) => lines.push((
                            Status::Fail,
                            format!("{who}: Cilium says {says}, gateway {}", p.state),
                        )),
                        (false, Some(false)) => lines.push((
                            Status::Fail,
                            format!(
                                "{who}: session down: gateway {}, Cilium says {says}",
                                p.state
                            ),
                        )),
                        (true, None) => lines.push((
                            Status::Warn,
                            format!(
                                "{who}: gateway {}; Cilium reports no state for its peer {} yet",
                                p.state, cp.name
                            ),
                        )),
                        (false, None) => lines.push((
                            Status::Fail,
                            format!(
                                "{who}: session down: gateway {}, Cilium reports no state yet",
                                p.state
                            ),
                        )),
                    }
                }
                CiliumEnd::Unavailable => {
                    if gw_up {
                        both_up = true;
                    } else {
                        lines.push((
                            Status::Fail,
                            format!("{who}: session {} on the gateway", p.state),
                        ));
                    }
                }
                CiliumEnd::NoNodeConfig | CiliumEnd::NoPeer | CiliumEnd::NotANode => {}
            }
        }
        if both_up && lines.iter().all(|(s, _)| *s != Status::Fail) {
            *agreed += 1;
        }
        let mut result = Status::Ok;
        for (s, line) in lines {
            let s = severity(s);
            result = result.max(s);
            if !line.is_empty() {
                out.push(s, format!("{line}{not_ready}"));
            }
        }
        sessions.push(Session {
            node: n.name.clone(),
            family: afi.to_string(),
            node_address: Some(addr.to_string()),
            node_ready: n.ready,
            gateway: gw.map(gateway_end),
            cilium,
            result,
        });
    }
}

/// Both ends Established: the routes Cilium advertises against those the gateway accepted.
///
/// Cilium copies GoBGP's count, and GoBGP v3 (the speaker Cilium 1.16-1.19 embeds) counts the
/// End-of-RIB marker of a graceful-restart session as one more advertised path per family. With
/// graceful restart on (the site's `bgp.graceful_restart`, which the rendered peer configs
/// carry), one more than accepted is therefore agreement too.
fn routes(
    lines: &mut Vec<(Status, String)>,
    who: &str,
    p: &PeerStatus,
    cp: &CiliumPeer,
    graceful_restart: bool,
) {
    let Some(advertised) = cp.advertised else {
        return;
    };
    let eor = u64::from(graceful_restart);
    let routes = |n: u64| {
        if n == 1 {
            "1 route".to_string()
        } else {
            format!("{n} routes")
        }
    };
    if advertised > p.accepted + eor {
        lines.push((
            Status::Fail,
            format!(
                "{who}: Cilium advertises {}, the gateway accepted {} (it refuses routes outside the site's pools or without the community: `bgplb-agent status` lists them)",
                routes(advertised),
                p.accepted
            ),
        ));
    } else if advertised < p.accepted {
        lines.push((
            Status::Warn,
            format!(
                "{who}: Cilium advertises {}, the gateway accepted {} (Cilium's status may lag behind)",
                routes(advertised),
                p.accepted
            ),
        ));
    }
}

/// The agent's report from the cluster: missing, stale or refused are warnings here (the
/// sessions decide).
fn agent_report(out: &mut Collector, agent: &AgentStatus, cl: &str) {
    match agent.clusters.iter().find(|c| c.name == cl) {
        None => out.push(
            Status::Warn,
            format!(
                "the agent on {} has no report from cluster {cl}: it peers with the site file's nodes (is the companion running?)",
                agent.gateway
            ),
        ),
        Some(c) => {
            if c.stale {
                out.push(
                    Status::Warn,
                    format!(
                        "the agent's last report from cluster {cl} is stale ({}): the gateway keeps its last state",
                        c.report_age_seconds
                            .map_or_else(|| "age unknown".to_string(), |s| format!("{s} s old"))
                    ),
                );
            }
            if let Some(r) = &c.last_refusal {
                out.push(
                    Status::Warn,
                    format!("the agent refused a report from cluster {cl}: {r}"),
                );
            }
        }
    }
}

/// The site's gateway addresses: those a node may peer with, and those the rendered objects use.
struct GatewayAddresses {
    /// Every gateway address of the site.
    all: Vec<IpAddr>,
    /// What the rendered Cilium objects peer with, by family.
    rendered: BTreeMap<Family, Vec<IpAddr>>,
}

impl GatewayAddresses {
    fn of(site: &Site, cluster: &Cluster) -> GatewayAddresses {
        let mut rendered: BTreeMap<Family, Vec<IpAddr>> = BTreeMap::new();
        match bgplb_cilium::session::peers(site, cluster) {
            Ok(peers) => {
                for p in peers {
                    rendered.entry(p.family).or_default().push(p.address);
                }
            }
            Err(_) => {
                for a in &site.gateway.addresses {
                    rendered.entry(Family::of(a)).or_default().push(*a);
                }
            }
        }
        GatewayAddresses {
            all: site.gateway.addresses.clone(),
            rendered,
        }
    }

    fn is_gateway(&self, addr: &str) -> bool {
        parse_addr(addr).is_some_and(|a| self.all.contains(&a))
    }

    fn show(&self, fam: Family) -> String {
        match self.rendered.get(&fam) {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" or "),
            _ => format!("without an {} address in the site file", fam.afi()),
        }
    }
}

/// `peerAddress` without an IPv6 zone.
fn parse_addr(s: &str) -> Option<IpAddr> {
    s.trim().split('%').next()?.parse().ok()
}

/// BGP's Established, as FRR (`Established`) or Cilium (`established`) spells it.
fn established(state: &str) -> bool {
    state.trim().eq_ignore_ascii_case("established")
}

fn gateway_end(p: &PeerStatus) -> GatewayEnd {
    GatewayEnd {
        address: p.address.clone(),
        state: p.state.clone(),
        accepted: p.accepted,
    }
}

/// The peers of a CiliumBGPNodeConfig: those in its status, then those only in its spec (no
/// state yet). Peers without an address (auto-discovery not done) are left out.
pub fn cilium_peers(config: &Value) -> Vec<(Family, CiliumPeer)> {
    let mut out: Vec<(Family, CiliumPeer)> = Vec::new();
    for (pointer, with_status) in [
        ("/status/bgpInstances", true),
        ("/spec/bgpInstances", false),
    ] {
        for inst in array(config, pointer) {
            let instance = str_at(inst, "/name").unwrap_or("").to_string();
            for p in array(inst, "/peers") {
                let Some(address) = str_at(p, "/peerAddress") else {
                    continue;
                };
                let Some(ip) = parse_addr(address) else {
                    continue;
                };
                let name = str_at(p, "/name").unwrap_or("").to_string();
                if !with_status
                    && out
                        .iter()
                        .any(|(_, o)| o.instance == instance && o.name == name)
                {
                    continue;
                }
                let fam = Family::of(&ip);
                let count = |key: &str| {
                    array(p, "/routeCount")
                        .filter(|r| {
                            str_at(r, "/afi") == Some(fam.afi())
                                && str_at(r, "/safi").is_none_or(|s| s == "unicast")
                        })
                        .filter_map(|r| r.get(key).and_then(Value::as_u64))
                        .reduce(|a, b| a + b)
                };
                out.push((
                    fam,
                    CiliumPeer {
                        instance: instance.clone(),
                        name,
                        peer_address: address.to_string(),
                        peer_asn: p.get("peerASN").and_then(Value::as_u64),
                        local_asn: inst.get("localASN").and_then(Value::as_u64),
                        state: if with_status {
                            str_at(p, "/peeringState").map(String::from)
                        } else {
                            None
                        },
                        advertised: if with_status {
                            count("advertised")
                        } else {
                            None
                        },
                        received: if with_status { count("received") } else { None },
                        established_time: str_at(p, "/establishedTime").map(String::from),
                    },
                ));
            }
        }
    }
    out
}

/// The node's Cilium end of its `fam` session with the gateway: the peer at a gateway address,
/// else any peer of the family (peering elsewhere), else none.
fn cilium_end(config: &Value, fam: Family, gateway: &GatewayAddresses) -> CiliumEnd {
    let peers: Vec<CiliumPeer> = cilium_peers(config)
        .into_iter()
        .filter(|(f, _)| *f == fam)
        .map(|(_, p)| p)
        .collect();
    let chosen = peers
        .iter()
        .find(|p| gateway.is_gateway(&p.peer_address))
        .or_else(|| peers.first());
    match chosen {
        Some(p) => CiliumEnd::Peer(p.clone()),
        None => CiliumEnd::NoPeer,
    }
}

fn array<'a>(o: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn str_at<'a>(o: &'a Value, pointer: &str) -> Option<&'a str> {
    o.pointer(pointer).and_then(Value::as_str)
}

#[derive(Default)]
struct Collector {
    lines: Vec<(Status, String)>,
}

impl Collector {
    fn push(&mut self, status: Status, message: String) {
        self.lines.push((status, message));
    }

    fn finish(
        mut self,
        input: &Input,
        view: bool,
        sessions: Vec<Session>,
        summary: String,
    ) -> Report {
        // Stable: within a severity, the order found.
        self.lines.sort_by_key(|l| std::cmp::Reverse(l.0));
        let findings: Vec<Finding> = self
            .lines
            .into_iter()
            .filter(|(s, _)| *s != Status::Ok)
            .map(|(status, message)| Finding { status, message })
            .collect();
        Report {
            ok: findings.iter().all(|f| f.status != Status::Fail),
            gateway: input.agent.gateway.clone(),
            cluster: input.cluster.clone(),
            cilium_view: view,
            sessions,
            findings,
            summary,
        }
    }
}

impl fmt::Display for CiliumEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CiliumEnd::Unavailable => f.write_str("unavailable"),
            CiliumEnd::NotANode => f.write_str("-"),
            CiliumEnd::NoNodeConfig => f.write_str("no node config"),
            CiliumEnd::NoPeer => f.write_str("no peer"),
            CiliumEnd::Peer(p) => {
                f.write_str(p.state.as_deref().unwrap_or("no state"))?;
                if let Some(a) = p.advertised {
                    write!(f, ", {a} advertised")?;
                }
                Ok(())
            }
        }
    }
}

/// `NODE FAMILY GATEWAY CILIUM RESULT`, then one line per mismatch and the summary.
pub fn render_table(r: &Report) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header(["NODE", "FAMILY", "GATEWAY", "CILIUM", "RESULT"]);
    for s in &r.sessions {
        let gateway = match &s.gateway {
            None => "no session".to_string(),
            Some(g) if established(&g.state) => format!("{}, {} accepted", g.state, g.accepted),
            Some(g) => g.state.clone(),
        };
        table.add_row([
            s.node.clone(),
            s.family.clone(),
            gateway,
            s.cilium.to_string(),
            s.result.to_string(),
        ]);
    }
    let mut out = format!("{table}\n");
    if !r.findings.is_empty() {
        out.push('\n');
    }
    for f in &r.findings {
        out.push_str(&format!("{:<4}  {}\n", f.status.to_string(), f.message));
    }
    out.push_str(&format!("\n{}\n", r.summary));
    out
}

#[cfg(test)]
mod tests;
