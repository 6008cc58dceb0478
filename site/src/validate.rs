//! Every check on a site file, reporting all problems at once, each with its key path.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::blocks::Range;
use crate::model::{Cluster, SegmentMode, Site};
use crate::nodes::NodeSpec;

/// One thing wrong with the site file (or a report), and where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Key path, e.g. `pools[1].blocks[0]`.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Whether `asn` can be used for an eBGP session (not 0, not AS_TRANS 23456, not 4294967295).
pub fn asn_problem(asn: u32) -> Option<String> {
    match asn {
        0 => Some("ASN 0 is reserved (RFC 7607)".into()),
        23456 => Some("ASN 23456 is AS_TRANS (RFC 6793), not usable by a speaker".into()),
        u32::MAX => Some("ASN 4294967295 is reserved (RFC 7300)".into()),
        _ => None,
    }
}

/// Names used inside FRR object names: lower-case letters, digits and dashes.
fn name_problem(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    (!ok).then(|| {
        format!(
            "`{name}` must be 1-32 characters of a-z, 0-9 and '-' (it is used in FRR object names)"
        )
    })
}

impl Site {
    /// All problems with the site file; empty when it is valid. Pure: files are not opened here
    /// (see [`crate::load`] for the password file).
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        self.check_gateway(&mut p);
        self.check_clusters(&mut p);
        self.check_segment(&mut p);
        self.check_pools(&mut p);
        self.check_bgp(&mut p);
        self.check_liveness(&mut p);
        p
    }

    fn check_liveness(&self, p: &mut Vec<Problem>) {
        let l = &self.liveness;
        if !(10..=10_000).contains(&l.interval_ms) {
            p.push(Problem::new(
                "liveness.interval_ms",
                format!(
                    "{} must be between 10 and 10000 milliseconds",
                    l.interval_ms
                ),
            ));
        }
        if !(1..=1000).contains(&l.misses) {
            p.push(Problem::new(
                "liveness.misses",
                format!("{} must be between 1 and 1000", l.misses),
            ));
        }
        if l.hold_down > 3600 {
            p.push(Problem::new(
                "liveness.hold_down",
                format!("{} s is more than an hour", l.hold_down),
            ));
        }
        if l.flap_half_life == 0 {
            p.push(Problem::new(
                "liveness.flap_half_life",
                "must be at least 1 second",
            ));
        }
        if !(l.flap_reuse > 0.0 && l.flap_reuse < l.flap_suppress) {
            p.push(Problem::new(
                "liveness.flap_reuse",
                format!(
                    "{} must be above 0 and below flap_suppress ({})",
                    l.flap_reuse, l.flap_suppress
                ),
            ));
        }
        if l.method == crate::model::LivenessMethod::Tcp && l.tcp_port == 0 {
            p.push(Problem::new("liveness.tcp_port", "port 0 cannot be probed"));
        }
    }

    fn check_gateway(&self, p: &mut Vec<Problem>) {
        if let Some(m) = asn_problem(self.gateway.asn) {
            p.push(Problem::new("gateway.asn", m));
        }
        if let Some(id) = self.gateway.router_id.filter(|id| !id.is_ipv4()) {
            p.push(Problem::new(
                "gateway.router_id",
                format!(
                    "{id} is not an IPv4 address; a BGP router-id is 32 bits (use the gateway's IPv4 address)"
                ),
            ));
        }
    }

    fn check_clusters(&self, p: &mut Vec<Problem>) {
        if self.clusters.is_empty() {
            p.push(Problem::new(
                "clusters",
                "at least one [[clusters]] entry is required",
            ));
        }
        let mut names = BTreeSet::new();
        let mut subnets: Vec<(String, IpNet)> = Vec::new();
        let mut addresses: BTreeMap<IpAddr, String> = BTreeMap::new();
        for (ci, c) in self.clusters.iter().enumerate() {
            let key = format!("clusters[{ci}]");
            if let Some(m) = name_problem(&c.name) {
                p.push(Problem::new(format!("{key}.name"), m));
            }
            if !names.insert(c.name.clone()) {
                p.push(Problem::new(
                    format!("{key}.name"),
                    format!("duplicate cluster `{}`", c.name),
                ));
            }
            if let Some(m) = asn_problem(c.asn) {
                p.push(Problem::new(format!("{key}.asn"), m));
            } else if c.asn == self.gateway.asn {
                p.push(Problem::new(
                    format!("{key}.asn"),
                    format!(
                        "cluster ASN {} equals the gateway ASN; bgplb configures eBGP, use another ASN (e.g. 64513)",
                        c.asn
                    ),
                ));
            }
            if c.node_subnets.is_empty() {
                p.push(Problem::new(
                    format!("{key}.node_subnets"),
                    "at least one node subnet is required",
                ));
            }
            for (si, net) in c.node_subnets.iter().enumerate() {
                let skey = format!("{key}.node_subnets[{si}]");
                if net.addr() != net.network() {
                    p.push(Problem::new(
                        &skey,
                        format!("{net} has host bits set; did you mean {}?", net.trunc()),
                    ));
                }
                for seg in self.segment_prefixes() {
                    if net.contains(&seg.network()) || seg.contains(&net.network()) {
                        p.push(Problem::new(
                            &skey,
                            format!("node subnet {net} overlaps the LB segment {seg}; VIPs must not live on the node network (the ARP trap)"),
                        ));
                    }
                }
                for (other, onet) in &subnets {
                    if onet.contains(&net.network()) || net.contains(&onet.network()) {
                        p.push(Problem::new(
                            &skey,
                            format!("{net} overlaps node subnet {onet} of cluster `{other}`"),
                        ));
                    }
                }
            }
            for net in &c.node_subnets {
                subnets.push((c.name.clone(), *net));
            }
            for (ri, r) in c.reserved.iter().enumerate() {
                if !c.node_subnets.iter().any(|n| n.contains(r)) {
                    p.push(Problem::new(
                        format!("{key}.reserved[{ri}]"),
                        format!("{r} is not inside any node subnet of the cluster"),
                    ));
                }
            }
            if c.max_nodes == 0 || c.max_nodes > 1000 {
                p.push(Problem::new(
                    format!("{key}.max_nodes"),
                    "must be between 1 and 1000",
                ));
            }
            let nodes: Vec<NodeSpec> = c.nodes.iter().map(NodeSpec::from).collect();
            for problem in self.check_nodes(c, &nodes) {
                p.push(Problem::new(
                    format!("{key}.{}", problem.key),
                    problem.message,
                ));
            }
            for (ni, n) in c.nodes.iter().enumerate() {
                for a in n.ipv4.iter().chain(n.ipv6.iter()) {
                    if let Some(other) = addresses.insert(*a, c.name.clone()) {
                        if other != c.name {
                            p.push(Problem::new(
                                format!("{key}.nodes[{ni}]"),
                                format!("{a} is also a node of cluster `{other}`"),
                            ));
                        }
                    }
                }
            }
        }
    }

    /// Checks a node set for one cluster — from the site file or from a report. Keys are relative
    /// (`nodes[2].ipv4`).
    pub fn check_nodes(&self, cluster: &Cluster, nodes: &[NodeSpec]) -> Vec<Problem> {
        let mut p = Vec::new();
        if nodes.len() > cluster.max_nodes {
            p.push(Problem::new(
                "nodes",
                format!(
                    "{} nodes exceed max_nodes = {} of cluster `{}`",
                    nodes.len(),
                    cluster.max_nodes,
                    cluster.name
                ),
            ));
        }
        let mut names = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for (i, n) in nodes.iter().enumerate() {
            let key = format!("nodes[{i}]");
            if n.name.is_empty() || n.name.len() > 253 {
                p.push(Problem::new(
                    format!("{key}.name"),
                    "node name must be 1-253 characters",
                ));
            }
            if !names.insert(n.name.as_str()) {
                p.push(Problem::new(
                    format!("{key}.name"),
                    format!("duplicate node `{}`", n.name),
                ));
            }
            if n.ipv4.is_none() && n.ipv6.is_none() {
                p.push(Problem::new(
                    &key,
                    format!("node `{}` has no address", n.name),
                ));
            }
            for (field, addr, want_v4) in [("ipv4", n.ipv4, true), ("ipv6", n.ipv6, false)] {
                let Some(addr) = addr else { continue };
                let fkey = format!("{key}.{field}");
                if addr.is_ipv4() != want_v4 {
                    p.push(Problem::new(
                        &fkey,
                        format!(
                            "{addr} is not an {} address",
                            if want_v4 { "IPv4" } else { "IPv6" }
                        ),
                    ));
                    continue;
                }
                if !cluster.node_subnets.iter().any(|s| s.contains(&addr)) {
                    let subnets: Vec<String> =
                        cluster.node_subnets.iter().map(|s| s.to_string()).collect();
                    p.push(Problem::new(
                        &fkey,
                        format!(
                            "node `{}` address {addr} is outside the node subnets ({})",
                            n.name,
                            subnets.join(", ")
                        ),
                    ));
                }
                if cluster.reserved.contains(&addr) {
                    p.push(Problem::new(
                        &fkey,
                        format!("{addr} is reserved (e.g. the API VIP), not a node"),
                    ));
                }
                if self.gateway.addresses.contains(&addr) {
                    p.push(Problem::new(
                        &fkey,
                        format!("{addr} is the gateway's own address"),
                    ));
                }
                if !seen.insert(addr) {
                    p.push(Problem::new(&fkey, format!("{addr} is used by two nodes")));
                }
            }
        }
        p
    }

    fn check_segment(&self, p: &mut Vec<Problem>) {
        let s = &self.segment;
        if !(1..=4094).contains(&s.vlan) {
            p.push(Problem::new(
                "segment.vlan",
                format!("VLAN id {} is outside 1-4094", s.vlan),
            ));
        }
        if s.ipv4.is_none() && s.ipv6.is_none() {
            p.push(Problem::new(
                "segment",
                "set segment.ipv4 and/or segment.ipv6",
            ));
        }
        if let Some(net) = s.ipv4 {
            if !matches!(net, IpNet::V4(_)) {
                p.push(Problem::new(
                    "segment.ipv4",
                    format!("{net} is not an IPv4 prefix"),
                ));
            } else if net.addr() != net.network() {
                p.push(Problem::new(
                    "segment.ipv4",
                    format!("{net} has host bits set; did you mean {}?", net.trunc()),
                ));
            }
        }
        if let Some(net) = s.ipv6 {
            if !matches!(net, IpNet::V6(_)) {
                p.push(Problem::new(
                    "segment.ipv6",
                    format!("{net} is not an IPv6 prefix"),
                ));
            } else if net.addr() != net.network() {
                p.push(Problem::new(
                    "segment.ipv6",
                    format!("{net} has host bits set; did you mean {}?", net.trunc()),
                ));
            }
        }
        match s.mode {
            SegmentMode::Routed => {}
            SegmentMode::Vlan => {
                if s.parent.as_deref().unwrap_or("").is_empty() {
                    p.push(Problem::new(
                        "segment.parent",
                        "vlan mode needs the parent link the VLAN is created on",
                    ));
                }
                if s.gateway_addresses.is_empty() {
                    p.push(Problem::new(
                        "segment.gateway_addresses",
                        "vlan mode needs the gateway's addresses in the segment",
                    ));
                }
            }
            SegmentMode::Adopt => {
                if s.interface.as_deref().unwrap_or("").is_empty() {
                    p.push(Problem::new(
                        "segment.interface",
                        "adopt mode needs the existing interface's name (e.g. br52)",
                    ));
                }
            }
        }
        if let Some(name) = &s.interface {
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
                p.push(Problem::new(
                    "segment.interface",
                    format!("`{name}` is not a valid interface name (1-15 characters)"),
                ));
            }
        }
        for (i, a) in s.gateway_addresses.iter().enumerate() {
            if !self.segment_prefixes().iter().any(|n| n.contains(a)) {
                p.push(Problem::new(
                    format!("segment.gateway_addresses[{i}]"),
                    format!("{a} is outside the segment"),
                ));
            }
        }
    }

    fn check_pools(&self, p: &mut Vec<Problem>) {
        if self.pools.is_empty() {
            p.push(Problem::new(
                "pools",
                "at least one [[pools]] entry is required",
            ));
        }
        let segment = self.segment_prefixes();
        let mut names = BTreeSet::new();
        let mut seen: Vec<(String, Range)> = Vec::new();
        for (pi, pool) in self.pools.iter().enumerate() {
            let key = format!("pools[{pi}]");
            if let Some(m) = name_problem(&pool.name) {
                p.push(Problem::new(format!("{key}.name"), m));
            }
            if !names.insert(pool.name.as_str()) {
                p.push(Problem::new(
                    format!("{key}.name"),
                    format!("duplicate pool `{}`", pool.name),
                ));
            }
            if let Some(c) = &pool.cluster {
                if !self.clusters.iter().any(|k| &k.name == c) {
                    p.push(Problem::new(
                        format!("{key}.cluster"),
                        format!("no cluster named `{c}`"),
                    ));
                }
            }
            if pool.blocks.is_empty() {
                p.push(Problem::new(
                    format!("{key}.blocks"),
                    "a pool needs at least one block",
                ));
            }
            for (bi, block) in pool.blocks.iter().enumerate() {
                let bkey = format!("{key}.blocks[{bi}]");
                let range = match Range::parse(block) {
                    Ok(r) => r,
                    Err(e) => {
                        p.push(Problem::new(bkey, e.to_string()));
                        continue;
                    }
                };
                if !segment.iter().any(|net| range.within(net)) {
                    let segs: Vec<String> = segment.iter().map(|n| n.to_string()).collect();
                    p.push(Problem::new(
                        &bkey,
                        format!("{block} is outside the LB segment ({})", segs.join(", ")),
                    ));
                }
                for a in &self.segment.gateway_addresses {
                    if range.contains(*a) {
                        p.push(Problem::new(
                            &bkey,
                            format!("{block} contains the gateway's segment address {a}"),
                        ));
                    }
                }
                for (other, orange) in &seen {
                    if range.overlaps(orange) {
                        p.push(Problem::new(
                            &bkey,
                            format!("{block} overlaps pool `{other}` ({orange})"),
                        ));
                    }
                }
                seen.push((pool.name.clone(), range));
            }
        }
    }

    fn check_bgp(&self, p: &mut Vec<Problem>) {
        let b = &self.bgp;
        match b.community.split_once(':') {
            Some((a, v)) if a.parse::<u16>().is_ok() && v.parse::<u16>().is_ok() => {}
            _ => p.push(Problem::new(
                "bgp.community",
                format!("`{}` is not a standard community ASN:VALUE with both parts 0-65535 (e.g. 64512:100)", b.community),
            )),
        }
        if b.hold != 0 && b.hold < 3 {
            p.push(Problem::new(
                "bgp.hold",
                "hold time must be 0 (never expire) or at least 3 seconds (RFC 4271)",
            ));
        }
        if b.hold != 0 && (b.keepalive == 0 || u32::from(b.keepalive) * 3 > u32::from(b.hold)) {
            p.push(Problem::new(
                "bgp.keepalive",
                format!(
                    "keepalive {} must be between 1 and a third of hold ({})",
                    b.keepalive, b.hold
                ),
            ));
        }
        if b.connect_retry == 0 {
            p.push(Problem::new(
                "bgp.connect_retry",
                "must be at least 1 second",
            ));
        }
        if !(1..=4095).contains(&b.restart_time) {
            p.push(Problem::new(
                "bgp.restart_time",
                "must be 1-4095 seconds (FRR's range)",
            ));
        }
        if !(1..=4095).contains(&b.stalepath_time) {
            p.push(Problem::new(
                "bgp.stalepath_time",
                "must be 1-4095 seconds (FRR's range)",
            ));
        }
        if b.maximum_prefix == 0 {
            p.push(Problem::new("bgp.maximum_prefix", "must be at least 1"));
        }
        match b.ebgp_multihop {
            Some(0) => p.push(Problem::new(
                "bgp.ebgp_multihop",
                "must be 2-255 (leave it out for directly connected nodes)",
            )),
            // A TTL of 1 is eBGP without multihop; FRR never prints it, so the read-back would
            // differ on every apply and every apply would be rolled back.
            Some(1) => p.push(Problem::new(
                "bgp.ebgp_multihop",
                "1 is what eBGP does without multihop (FRR does not keep it); leave it out for directly connected nodes, or use 2 or more",
            )),
            _ => {}
        }
        if self.agent.report_stale_after == 0 {
            p.push(Problem::new(
                "agent.report_stale_after",
                "must be at least 1 second",
            ));
        }
        if self.agent.drift_check_interval == 0 {
            p.push(Problem::new(
                "agent.drift_check_interval",
                "must be at least 1 second",
            ));
        }
        if self.agent.reports_per_minute == 0 {
            p.push(Problem::new(
                "agent.reports_per_minute",
                "must be at least 1: a companion heartbeats every minute",
            ));
        }
        if let Some(u) = &self.agent.unifi {
            if !u.controller.starts_with("https://") {
                p.push(Problem::new(
                    "agent.unifi.controller",
                    format!(
                        "{} must be an https:// URL: the API key goes with every upload",
                        u.controller
                    ),
                ));
            }
            let loopback = u.controller.starts_with("https://127.0.0.1")
                || u.controller.starts_with("https://[::1]")
                || u.controller.starts_with("https://localhost");
            if u.insecure_loopback && !loopback {
                p.push(Problem::new(
                    "agent.unifi.insecure_loopback",
                    format!("only for a controller on the gateway itself (https://127.0.0.1), not {}; give its certificate as agent.unifi.ca", u.controller),
                ));
            }
            if u.min_interval == 0 {
                p.push(Problem::new(
                    "agent.unifi.min_interval",
                    "must be at least 1 second",
                ));
            }
            if u.site.is_empty()
                || !u
                    .site
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                p.push(Problem::new(
                    "agent.unifi.site",
                    format!("`{}` is not a UniFi site name", u.site),
                ));
            }
        }
        if self.agent.report_burst == 0 {
            p.push(Problem::new("agent.report_burst", "must be at least 1"));
        }
        let keep = &self.agent.retention;
        if keep.generations < 10 {
            p.push(Problem::new(
                "agent.retention.generations",
                "must keep at least 10 generations",
            ));
        }
        if keep.events < 100 {
            p.push(Problem::new(
                "agent.retention.events",
                "must keep at least 100 events",
            ));
        }
        if keep.max_age_days == 0 {
            p.push(Problem::new(
                "agent.retention.max_age_days",
                "must be at least 1 day",
            ));
        }
        let frr = &self.agent.frr;
        if (1..100).contains(&frr.watch_interval_ms) {
            p.push(Problem::new(
                "agent.frr.watch_interval_ms",
                "must be 0 (off) or at least 100 milliseconds",
            ));
        }
        if frr.fight_limit == 0 {
            p.push(Problem::new(
                "agent.frr.fight_limit",
                "must be at least 1 re-apply",
            ));
        }
        if frr.fight_window == 0 {
            p.push(Problem::new(
                "agent.frr.fight_window",
                "must be at least 1 second",
            ));
        }
        if let Some(0) | Some(65..) = b.maximum_paths {
            p.push(Problem::new("bgp.maximum_paths", "must be 1-64"));
        }
    }

    /// The segment's prefixes (IPv4 and/or IPv6).
    pub fn segment_prefixes(&self) -> Vec<IpNet> {
        self.segment
            .ipv4
            .iter()
            .chain(self.segment.ipv6.iter())
            .copied()
            .collect()
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }
}
