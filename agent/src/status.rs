//! `bgplb-agent status`: the current generation and every session bgplb owns, per node and family,
//! with what each node sent and what the gateway accepted.

use std::collections::{BTreeMap, BTreeSet};

use bgplb_frr::{naming, show, Family};
use serde::Serialize;

use crate::error::Error;
use crate::store::{Generation, Outcome, Store, StoredReport};
use crate::vtysh::Vtysh;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub gateway: String,
    pub asn: u32,
    pub generation: Option<GenerationBrief>,
    /// The newest attempt, when it failed after the current generation.
    pub last_failure: Option<GenerationBrief>,
    /// Why FRR could not be read, if it could not.
    pub frr_error: Option<String>,
    /// The FRR release that runs (`major.minor`), when FRR answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frr_version: Option<String>,
    /// Why FRR's configuration file may lack what it runs (a failed `write memory`).
    pub unsaved: Option<String>,
    /// Why the state database cannot record an apply (full or read-only file system).
    pub store_problem: Option<String>,
    /// A rollback's pin, when set.
    pub pinned: Option<String>,
    pub peers: Vec<Peer>,
    /// Per cluster: its last report, the pools' usage and the services' VIPs with their routes.
    pub clusters: Vec<ClusterView>,
    /// FRR's best (and multipath) next hops by prefix.
    #[serde(skip)]
    pub bgp_routes: BTreeMap<String, Vec<String>>,
    /// The kernel checks (segment, ECMP, FIB, L2), when they were run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<crate::netcheck::Validation>,
    /// Node liveness, as last persisted by the daemon.
    pub liveness: Vec<NodeView>,
}

/// One node's liveness.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub cluster: String,
    pub node: String,
    pub state: String,
    pub reason: String,
    pub since: String,
    pub transitions: u64,
    pub probe_rtt_ms: Option<f64>,
    pub answered: bool,
    pub suppressed: bool,
}

impl From<&crate::liveness::View> for NodeView {
    fn from(v: &crate::liveness::View) -> Self {
        NodeView {
            cluster: v.cluster.clone(),
            node: v.node.clone(),
            state: v.state.as_str().to_string(),
            reason: v.reason.clone(),
            since: crate::liveness::format_unix_ms(v.since_unix_ms),
            transitions: v.transitions,
            probe_rtt_ms: v.rtt.map(|d| d.as_secs_f64() * 1000.0),
            answered: v.answered,
            suppressed: v.suppressed,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    pub name: String,
    pub report_generation: u64,
    pub report_received_at: String,
    pub report_age_secs: i64,
    pub nodes: usize,
    pub pools: Vec<PoolView>,
    pub services: Vec<ServiceView>,
    /// What the report carries that the gateway ignores.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolView {
    pub name: String,
    pub used: u64,
    pub total: u64,
    pub disabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    pub name: String,
    pub vips: Vec<VipView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VipView {
    pub ip: String,
    /// Next hops of the gateway's BGP best path(s) for the VIP; empty: not routed.
    pub routed_via: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenerationBrief {
    pub number: i64,
    pub created_at: String,
    pub source: String,
    pub hash: String,
    pub error: Option<String>,
}

impl From<&Generation> for GenerationBrief {
    fn from(g: &Generation) -> Self {
        GenerationBrief {
            number: g.number,
            created_at: g.created_at.clone(),
            source: g.source.clone(),
            hash: g.hash.clone(),
            error: g.error.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Peer {
    pub cluster: String,
    pub node: String,
    pub family: Family,
    pub address: String,
    pub state: String,
    pub uptime_secs: u64,
    /// Prefixes the node sent (before policy).
    pub received: u64,
    /// Prefixes the inbound policy accepted.
    pub accepted: u64,
    /// Prefixes the node sent that the policy refused.
    pub refused: Vec<String>,
    pub established: u64,
    pub dropped: u64,
    pub shutdown: bool,
}

/// What the store says: the current generation, the newest attempt, the clusters' reports. Read
/// before FRR is asked, so no lock is held across the wait.
pub struct Generations {
    pub current: Option<Generation>,
    pub newest: Option<Generation>,
    pub reports: Vec<StoredReport>,
    pub unsaved: Option<String>,
    pub pinned: Option<String>,
    pub store_problem: Option<String>,
}

impl Generations {
    pub fn read(store: &Store) -> Result<Generations, Error> {
        Ok(Generations {
            current: store.current()?,
            newest: store.history(1)?.into_iter().next(),
            reports: store.reports()?,
            unsaved: store.unsaved()?,
            pinned: store.pinned()?.map(|p| p.to_string()),
            // Set by the caller: the daemon knows it from its last reconcile, the CLI checks.
            store_problem: None,
        })
    }
}

impl Status {
    /// A status when the state database could not be read: nothing but the reason.
    pub fn unread(gateway: &str, asn: u32, problem: String) -> Status {
        Status {
            gateway: gateway.to_string(),
            asn,
            generation: None,
            last_failure: None,
            frr_error: None,
            frr_version: None,
            unsaved: None,
            store_problem: Some(problem),
            pinned: None,
            peers: Vec::new(),
            clusters: Vec::new(),
            bgp_routes: BTreeMap::new(),
            kernel: None,
            liveness: Vec::new(),
        }
    }
}

/// Reads FRR. FRR being down is reported in the status, not as an error.
pub async fn collect(generations: Generations, vtysh: &Vtysh, gateway: &str, asn: u32) -> Status {
    let Generations {
        current,
        newest,
        reports,
        unsaved,
        pinned,
        store_problem,
    } = generations;
    let last_failure = newest
        .filter(|g| {
            g.outcome == Outcome::Failed && current.as_ref().is_none_or(|c| g.number > c.number)
        })
        .map(|g| GenerationBrief::from(&g));
    let mut status = Status {
        gateway: gateway.to_string(),
        asn,
        generation: current.as_ref().map(GenerationBrief::from),
        last_failure,
        frr_error: None,
        frr_version: None,
        unsaved,
        store_problem,
        pinned,
        peers: Vec::new(),
        clusters: Vec::new(),
        bgp_routes: BTreeMap::new(),
        kernel: None,
        liveness: Vec::new(),
    };
    let routes = match peers(vtysh).await {
        Ok((p, routes)) => {
            status.frr_version = vtysh.frr_version().await.ok().map(|v| v.to_string());
            status.peers = p;
            routes
        }
        Err(e) => {
            status.frr_error = Some(e.to_string());
            BTreeMap::new()
        }
    };
    status.clusters = reports
        .iter()
        .filter_map(|r| cluster_view(r, &routes))
        .collect();
    status
}

fn cluster_view(
    stored: &StoredReport,
    routes: &BTreeMap<String, Vec<String>>,
) -> Option<ClusterView> {
    let report: bgplb_proto::Report = serde_json::from_str(&stored.body).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some(ClusterView {
        name: stored.cluster.clone(),
        report_generation: stored.generation,
        report_received_at: stored.received_at.clone(),
        report_age_secs: (now - stored.received_unix).max(0),
        warnings: Vec::new(),
        nodes: report.nodes.iter().filter(|n| !n.deleting).count(),
        pools: report
            .pools
            .iter()
            .map(|p| PoolView {
                name: p.name.clone(),
                used: p.used,
                total: p.total,
                disabled: p.disabled,
            })
            .collect(),
        services: report
            .services
            .iter()
            .map(|s| ServiceView {
                name: format!("{}/{}", s.namespace, s.name),
                vips: s
                    .ips
                    .iter()
                    .map(|ip| {
                        let host = ip.split('/').next().unwrap_or(ip);
                        let key = if host.contains(':') {
                            format!("{host}/128")
                        } else {
                            format!("{host}/32")
                        };
                        VipView {
                            ip: ip.clone(),
                            routed_via: routes.get(&key).cloned().unwrap_or_default(),
                        }
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// Our sessions, and the next hops of every BGP best/multipath route by prefix.
async fn peers(vtysh: &Vtysh) -> Result<(Vec<Peer>, BTreeMap<String, Vec<String>>), Error> {
    let base = [
        "show bgp neighbors json".to_string(),
        "show bgp ipv4 unicast json".to_string(),
        "show bgp ipv6 unicast json".to_string(),
    ];
    let mut docs: Vec<serde_json::Value> = vtysh.show_json(&base).await?;
    let neighbors: show::Neighbors = from_value(&base[0], docs.remove(0))?;
    let tables: BTreeMap<Family, show::Table> = [
        (Family::V4, from_value(&base[1], docs.remove(0))?),
        (Family::V6, from_value(&base[2], docs.remove(0))?),
    ]
    .into();

    let ours: Vec<(&String, &show::NeighborDetail, &str, Family)> = neighbors
        .iter()
        .filter_map(|(addr, d)| {
            let group = d.peer_group.as_deref()?;
            let (cluster, family) = naming::parse_peer_group(group)?;
            Some((addr, d, cluster, family))
        })
        .collect();
    let received_cmds: Vec<String> = ours
        .iter()
        .map(|(addr, _, _, family)| {
            format!(
                "show bgp {} neighbors {} received-routes json",
                family.afi_safi(),
                addr
            )
        })
        .collect();
    let received: Vec<show::ReceivedRoutes> = vtysh.show_json(&received_cmds).await?;

    let mut peers = Vec::new();
    for ((addr, d, cluster, family), rcv) in ours.into_iter().zip(received) {
        let accepted_prefixes: BTreeSet<&String> = tables[&family]
            .routes
            .iter()
            .filter(|(_, paths)| paths.iter().any(|p| &p.peer_id == addr))
            .map(|(prefix, _)| prefix)
            .collect();
        let refused = rcv
            .received_routes
            .keys()
            .filter(|p| !accepted_prefixes.contains(p))
            .cloned()
            .collect();
        let af_key = match family {
            Family::V4 => "ipv4Unicast",
            Family::V6 => "ipv6Unicast",
        };
        peers.push(Peer {
            cluster: cluster.to_string(),
            node: d.nbr_desc.clone().unwrap_or_default(),
            family,
            address: addr.clone(),
            state: d.bgp_state.clone(),
            uptime_secs: if d.bgp_state == "Established" {
                d.bgp_timer_up_msec / 1000
            } else {
                0
            },
            received: rcv.received_routes.len() as u64,
            accepted: d
                .address_family_info
                .get(af_key)
                .map_or(0, |a| a.accepted_prefix_counter),
            refused,
            established: d.connections_established,
            dropped: d.connections_dropped,
            shutdown: d.bgp_state == "Idle"
                && d.last_reset_due_to.as_deref() == Some("Admin. shutdown"),
        });
    }
    peers.sort_by(|a, b| {
        (&a.cluster, &a.node, a.family, &a.address)
            .cmp(&(&b.cluster, &b.node, b.family, &b.address))
    });
    let mut routes = BTreeMap::new();
    for table in tables.values() {
        for (prefix, paths) in &table.routes {
            let mut via: Vec<String> = paths
                .iter()
                .filter(|p| p.valid && (p.bestpath || p.multipath))
                .flat_map(|p| p.nexthops.iter().map(|n| n.ip.clone()))
                .filter(|ip| !ip.starts_with("fe80"))
                .collect();
            via.sort();
            via.dedup();
            routes.insert(prefix.clone(), via);
        }
    }
    Ok((peers, routes))
}

fn from_value<T: serde::de::DeserializeOwned>(
    command: &str,
    v: serde_json::Value,
) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| {
        Error::Show(show::ParseError {
            command: command.to_string(),
            message: e.to_string(),
        })
    })
}

/// Human form: a header and a table of sessions.
pub fn render_table(s: &Status) -> String {
    let mut out = format!(
        "gateway {} (AS {}){}\n",
        s.gateway,
        s.asn,
        s.frr_version
            .as_deref()
            .map(|v| format!(", FRR {v}"))
            .unwrap_or_default()
    );
    match &s.generation {
        Some(g) => out.push_str(&format!(
            "generation {} applied {} from {} (config {})\n",
            g.number,
            g.created_at,
            g.source,
            &g.hash[..12.min(g.hash.len())]
        )),
        None => out.push_str("no generation applied yet (run `bgplb-agent apply`)\n"),
    }
    if let Some(f) = &s.last_failure {
        out.push_str(&format!(
            "last attempt FAILED: generation {} at {}: {}\n",
            f.number,
            f.created_at,
            f.error.as_deref().unwrap_or("unknown error")
        ));
    }
    if let Some(u) = &s.unsaved {
        out.push_str(&format!("NOT SAVED: {u}\n"));
    }
    if let Some(p) = &s.store_problem {
        out.push_str(&format!("STATE STORE: {p}\n"));
    }
    if let Some(p) = &s.pinned {
        out.push_str(&format!("PINNED: {p}\n"));
    }
    if let Some(e) = &s.frr_error {
        out.push_str(&format!("FRR: {e}\n"));
        return out;
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header([
        "CLUSTER", "NODE", "FAMILY", "NEIGHBOR", "STATE", "UP", "RECEIVED", "ACCEPTED", "RESETS",
    ]);
    for p in &s.peers {
        let state = if p.shutdown {
            "Shutdown".to_string()
        } else {
            p.state.clone()
        };
        table.add_row([
            p.cluster.clone(),
            p.node.clone(),
            p.family.to_string(),
            p.address.clone(),
            state,
            if p.state == "Established" {
                uptime(p.uptime_secs)
            } else {
                "-".to_string()
            },
            p.received.to_string(),
            p.accepted.to_string(),
            p.dropped.to_string(),
        ]);
    }
    if s.peers.is_empty() {
        out.push_str("no bgplb sessions in FRR\n");
    } else {
        out.push_str(&table.to_string());
        out.push('\n');
    }
    for c in &s.clusters {
        out.push_str(&format!(
            "\ncluster {}: report generation {} received {}s ago, {} node(s)\n",
            c.name, c.report_generation, c.report_age_secs, c.nodes
        ));
        if !c.pools.is_empty() {
            let pools: Vec<String> = c
                .pools
                .iter()
                .map(|p| {
                    format!(
                        "{} {}/{}{}",
                        p.name,
                        p.used,
                        p.total,
                        if p.disabled { " (disabled)" } else { "" }
                    )
                })
                .collect();
            out.push_str(&format!("  pools used: {}\n", pools.join(", ")));
        }
        for w in &c.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
        for svc in &c.services {
            for v in &svc.vips {
                let via = if v.routed_via.is_empty() {
                    "NOT ROUTED".to_string()
                } else {
                    format!("via {}", v.routed_via.join(", "))
                };
                out.push_str(&format!("  {} {} {}\n", svc.name, v.ip, via));
            }
        }
    }
    if !s.liveness.is_empty() {
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::NOTHING);
        table.set_header([
            "CLUSTER",
            "NODE",
            "LIVENESS",
            "SINCE",
            "PROBE RTT",
            "CHANGES",
            "REASON",
        ]);
        for n in &s.liveness {
            table.add_row([
                n.cluster.clone(),
                n.node.clone(),
                n.state.clone(),
                n.since.clone(),
                match (n.probe_rtt_ms, n.answered) {
                    (Some(ms), true) => format!("{ms:.2} ms"),
                    _ => "never answered".into(),
                },
                n.transitions.to_string(),
                n.reason.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&table.to_string());
        out.push('\n');
    }
    if let Some(k) = &s.kernel {
        out.push('\n');
        out.push_str(&crate::netcheck::render_validation(k));
    }
    for p in s.peers.iter().filter(|p| !p.refused.is_empty()) {
        out.push_str(&format!(
            "refused from {} ({}): {}\n",
            p.node,
            p.address,
            p.refused.join(", ")
        ));
    }
    out
}

pub fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}
