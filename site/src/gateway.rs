//! The desired state of the gateway's FRR: a pure function of the site file and the node set.
//!
//! Per cluster and address family: one peer-group carrying every timer and policy, one neighbour
//! per node address, an inbound route-map accepting only host routes inside the cluster's enabled
//! pools (with the community, when required), and a deny-all outbound route-map. Nothing a report
//! supplies can widen what the site file allows: reported pools only narrow the accepted ranges.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bgplb_frr::model::{
    Action, CommunityList, CommunityListEntry, Config, GracefulRestart, Match, MaximumPrefix,
    Neighbor, PeerGroup, PrefixList, PrefixListEntry, RouteMap, RouteMapEntry, RouterBgp, Set,
};
use bgplb_frr::{naming, Capability, Family, FrrVersion};
use ipnet::IpNet;

use crate::blocks::Range;
use crate::model::{Cluster, Site};
use crate::nodes::NodeSpec;

/// What, besides the site file, decides the gateway's configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GatewayInputs {
    /// Nodes per cluster name. A cluster missing here uses its static nodes from the site file.
    pub nodes: BTreeMap<String, Vec<NodeSpec>>,
    /// The MD5 password (contents of `bgp.password_file`).
    pub password: Option<String>,
    /// Whether the kernel accepts multipath routes; without it FRR gets `maximum-paths 1`.
    pub ecmp: bool,
    /// Ranges a cluster reported in use; accepted ranges become site pools ∩ these. A cluster
    /// missing here accepts all of its enabled site pools.
    pub narrow: BTreeMap<String, Vec<Range>>,
    /// The FRR release to render for (its configuration language differs by release).
    pub frr: FrrVersion,
}

impl GatewayInputs {
    /// Inputs from the site file alone: static nodes, ECMP assumed.
    pub fn from_site(site: &Site, password: Option<String>) -> GatewayInputs {
        GatewayInputs {
            nodes: site
                .clusters
                .iter()
                .map(|c| (c.name.clone(), c.nodes.iter().map(NodeSpec::from).collect()))
                .collect(),
            password,
            ecmp: true,
            narrow: BTreeMap::new(),
            frr: FrrVersion::REFERENCE,
        }
    }
}

/// Local preference of a draining node's routes (FRR's default is 100): they stay as a backup
/// but leave the ECMP set while another node announces the same VIP.
pub const DRAIN_LOCAL_PREFERENCE: u32 = 50;

/// The complete FRR configuration bgplb wants on the gateway.
pub fn gateway_config(site: &Site, inputs: &GatewayInputs) -> Config {
    let policy = &site.bgp;
    let mut prefix_lists = Vec::new();
    let mut route_maps = Vec::new();
    let mut peer_groups = Vec::new();
    let mut neighbors = Vec::new();
    let mut paths: BTreeMap<Family, usize> = BTreeMap::new();

    for cluster in &site.clusters {
        let static_nodes: Vec<NodeSpec>;
        let nodes = match inputs.nodes.get(&cluster.name) {
            Some(nodes) => nodes,
            None => {
                static_nodes = cluster.nodes.iter().map(NodeSpec::from).collect();
                &static_nodes
            }
        };
        for family in cluster_families(cluster) {
            let list = naming::pool_prefix_list(&cluster.name, family);
            prefix_lists.push(PrefixList {
                name: list.clone(),
                family,
                entries: prefix_list_entries(
                    &accepted_cidrs(site, cluster, inputs.narrow.get(&cluster.name), family),
                    family,
                ),
            });
            let mut entry = RouteMapEntry {
                action: Action::Permit,
                seq: 10,
                matches: vec![Match::PrefixList { family, name: list }],
                sets: Vec::new(),
            };
            if policy.require_community {
                entry
                    .matches
                    .push(Match::Community(naming::COMMUNITY_LIST.to_string()));
            } else {
                entry
                    .sets
                    .push(Set::CommunityAdditive(policy.community.clone()));
            }
            let mut drain = entry.clone();
            drain
                .sets
                .push(Set::LocalPreference(DRAIN_LOCAL_PREFERENCE));
            route_maps.push(RouteMap {
                name: naming::route_map_in(&cluster.name, family),
                entries: vec![entry],
                optimization_disabled: inputs.frr.has(Capability::RouteMapOptimizationOff),
            });
            route_maps.push(RouteMap {
                name: naming::route_map_drain(&cluster.name, family),
                entries: vec![drain],
                optimization_disabled: inputs.frr.has(Capability::RouteMapOptimizationOff),
            });
            let group = naming::peer_group(&cluster.name, family);
            peer_groups.push(PeerGroup {
                name: group.clone(),
                family,
                remote_as: cluster.asn,
                password: inputs.password.clone(),
                keepalive: policy.keepalive,
                hold: policy.hold,
                connect_retry: policy.connect_retry,
                ebgp_multihop: policy.ebgp_multihop,
                route_map_in: naming::route_map_in(&cluster.name, family),
                route_map_out: naming::DENY_ALL.to_string(),
                soft_reconfiguration: true,
                maximum_prefix: Some(MaximumPrefix {
                    limit: policy.maximum_prefix,
                    restart_minutes: (policy.maximum_prefix_restart > 0)
                        .then_some(policy.maximum_prefix_restart),
                    // Not `force`: before FRR 10.5 (commit bf12b93e0e) the count of refused
                    // routes behind it walks every peer's adj-in against this peer's route-map
                    // and never resets, so one node announcing junk tears down the sessions of
                    // healthy nodes. The agent guards against floods of refused routes itself.
                    force: false,
                }),
            });
            let mut count = 0;
            for node in nodes {
                let address = match family {
                    Family::V4 => node.ipv4,
                    Family::V6 => node.ipv6,
                };
                let Some(address) = address else { continue };
                if Family::of(&address) != family {
                    continue;
                }
                count += 1;
                neighbors.push(Neighbor {
                    address,
                    peer_group: group.clone(),
                    description: Some(description(&node.name)),
                    shutdown: node.shutdown,
                });
            }
            *paths.entry(family).or_default() += count;
        }
    }

    let community_lists = if policy.require_community {
        vec![CommunityList {
            name: naming::COMMUNITY_LIST.to_string(),
            entries: vec![CommunityListEntry {
                seq: 5,
                action: Action::Permit,
                community: policy.community.clone(),
            }],
        }]
    } else {
        Vec::new()
    };
    route_maps.push(RouteMap {
        name: naming::DENY_ALL.to_string(),
        entries: vec![RouteMapEntry {
            action: Action::Deny,
            seq: 10,
            matches: Vec::new(),
            sets: Vec::new(),
        }],
        optimization_disabled: false,
    });

    let maximum_paths = |family: Family| -> Option<u16> {
        let groups = peer_groups.iter().any(|g: &PeerGroup| g.family == family);
        groups.then(|| {
            maximum_paths(
                policy.maximum_paths,
                inputs.ecmp,
                paths.get(&family).copied().unwrap_or(0),
            )
        })
    };
    let bgp = RouterBgp {
        asn: site.gateway.asn,
        router_id: site.gateway.router_id.map(|id| match id {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED, // refused by validate()
        }),
        graceful_restart: policy.graceful_restart.then_some(GracefulRestart {
            restart_time: policy.restart_time,
            stalepath_time: policy.stalepath_time,
            // Cilium sets the N-bit: negotiated, a dead node's routes would stay for the
            // whole restart time after its hold timer expires. An FRR without the line
            // negotiates no N-bit.
            notification: inputs
                .frr
                .has(Capability::GracefulRestartNotification)
                .then_some(false),
        }),
        maximum_paths_v4: maximum_paths(Family::V4),
        maximum_paths_v6: maximum_paths(Family::V6),
        peer_groups,
        neighbors,
    };
    Config {
        prefix_lists,
        community_lists,
        route_maps,
        bgp,
    }
}

/// ECMP width: the operator's override, else one path per node of the family (1 without kernel
/// multipath support), capped where FRR stops printing the value.
pub fn maximum_paths(configured: Option<u16>, ecmp: bool, nodes: usize) -> u16 {
    if !ecmp {
        return 1;
    }
    let cap = bgplb_frr::plan::MAXIMUM_PATHS_CAP;
    configured
        .unwrap_or_else(|| u16::try_from(nodes).unwrap_or(cap))
        .clamp(1, cap)
}

/// Address families a cluster has node subnets in.
fn cluster_families(cluster: &Cluster) -> Vec<Family> {
    let mut families: Vec<Family> = cluster.node_subnets.iter().map(Family::of_net).collect();
    families.sort();
    families.dedup();
    families
}

/// The CIDRs a cluster may announce host routes from, in one family: its enabled pools, cut down
/// to the reported ranges when the cluster reported any.
pub fn accepted_cidrs(
    site: &Site,
    cluster: &Cluster,
    narrow: Option<&Vec<Range>>,
    family: Family,
) -> Vec<IpNet> {
    let mut ranges: Vec<Range> = site
        .pools
        .iter()
        .filter(|p| !p.disabled)
        .filter(|p| p.cluster.as_deref().is_none_or(|c| c == cluster.name))
        .flat_map(|p| p.blocks.iter().filter_map(|b| Range::parse(b).ok()))
        .filter(|r| (family == Family::V4) == r.is_ipv4())
        .collect();
    if let Some(narrow) = narrow {
        ranges = ranges
            .iter()
            .flat_map(|r| narrow.iter().filter_map(move |n| intersect(r, n)))
            .collect();
    }
    let mut cidrs: Vec<IpNet> = ranges.iter().flat_map(|r| r.cidrs()).collect();
    cidrs.sort();
    cidrs.dedup();
    IpNet::aggregate(&cidrs)
}

fn intersect(a: &Range, b: &Range) -> Option<Range> {
    if !a.overlaps(b) {
        return None;
    }
    Some(Range {
        start: a.start.max(b.start),
        end: a.end.min(b.end),
    })
}

/// Prefix-list entries accepting only host routes inside `cidrs`; `deny any` when there are none,
/// so the route-map always references an existing list.
fn prefix_list_entries(cidrs: &[IpNet], family: Family) -> Vec<PrefixListEntry> {
    if cidrs.is_empty() {
        return vec![PrefixListEntry {
            seq: 10,
            action: Action::Deny,
            prefix: None,
            ge: None,
            le: None,
        }];
    }
    let host = family.host_len();
    cidrs
        .iter()
        .zip(1u32..)
        .map(|(cidr, i)| PrefixListEntry {
            seq: i * 10,
            action: Action::Permit,
            prefix: Some(*cidr),
            ge: (cidr.prefix_len() < host).then_some(host),
            le: None,
        })
        .collect()
}

/// A node name as an FRR description: characters outside `[A-Za-z0-9._-]` become `_`.
fn description(name: &str) -> String {
    name.chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The complete gateway configuration as text, with bgplb's header: what the agent applies and
/// what an operator pastes into the UniFi BGP upload. The header holds nothing that changes
/// between runs (it is part of every stored generation).
pub fn render_text(site: &Site, inputs: &GatewayInputs) -> String {
    let config = gateway_config(site, inputs);
    let mut out = format!(
        "! bgplb: BGP for the LoadBalancer segment of gateway {} (AS {}), for FRR {}\n\
         ! Rendered from the site file; bgplb owns the BGPLB-* objects and the router bgp settings it sets.\n!\n",
        site.gateway.name, site.gateway.asn, inputs.frr
    );
    out.push_str(&bgplb_frr::render::render(&config));
    out
}
