//! Pools as sets of addresses: the site's pools, a CiliumLoadBalancerIPPool's blocks, and the
//! comparisons between them (as merged address ranges, so `172.29.52.0/25` equals
//! `172.29.52.0-172.29.52.127` and a CIDR cover equals its range).

use std::net::IpAddr;

use bgplb_site::{Range, Site};
use ipnet::IpNet;
use serde_json::Value;

use super::objects::{array, str_at};

/// A site pool this cluster may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SitePool {
    pub name: String,
    /// Merged; blocks that do not parse are left out (the site file's own validation names them).
    pub ranges: Vec<Range>,
    pub disabled: bool,
}

impl SitePool {
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(addr))
    }
}

pub(super) fn site_pools(site: &Site, cluster: &str) -> Vec<SitePool> {
    bgplb_cilium::pool::usable_pools(site, cluster)
        .into_iter()
        .map(|p| SitePool {
            name: p.name.clone(),
            ranges: merge(p.blocks.iter().filter_map(|b| Range::parse(b).ok())),
            disabled: p.disabled,
        })
        .collect()
}

/// The addresses of a CiliumLoadBalancerIPPool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct PoolBlocks {
    /// Merged.
    pub ranges: Vec<Range>,
    /// Blocks that are not address ranges, as found.
    pub bad: Vec<String>,
    /// `spec.cidrs` (removed in Cilium 1.16) is used.
    pub uses_cidrs: bool,
    /// `spec.blocks` (from Cilium 1.15) is used.
    pub uses_blocks: bool,
}

/// Reads `spec.blocks` (`{cidr}` or `{start, stop}`; `stop` may be left out for one address)
/// and the older `spec.cidrs`.
pub(super) fn pool_blocks(pool: &Value) -> PoolBlocks {
    let mut out = PoolBlocks::default();
    let mut ranges = Vec::new();
    for key in ["blocks", "cidrs"] {
        for b in array(pool, &format!("/spec/{key}")) {
            if key == "cidrs" {
                out.uses_cidrs = true;
            } else {
                out.uses_blocks = true;
            }
            match block(b) {
                Some(r) => ranges.push(r),
                None => out.bad.push(b.to_string()),
            }
        }
    }
    out.ranges = merge(ranges);
    out
}

fn block(b: &Value) -> Option<Range> {
    if let Some(cidr) = str_at(b, "/cidr") {
        // Cilium accepts host bits in a block's CIDR; so does this check.
        let net: IpNet = cidr.trim().parse().ok()?;
        return Some(net_range(&net.trunc()));
    }
    let start: IpAddr = str_at(b, "/start")?.trim().parse().ok()?;
    let stop: IpAddr = match str_at(b, "/stop") {
        Some(s) => s.trim().parse().ok()?,
        None => start,
    };
    (start.is_ipv4() == stop.is_ipv4() && start <= stop).then_some(Range { start, end: stop })
}

pub(super) fn net_range(net: &IpNet) -> Range {
    Range {
        start: net.network(),
        end: net.broadcast(),
    }
}

/// Sorted, with overlapping and adjacent ranges of a family joined.
pub(super) fn merge(ranges: impl IntoIterator<Item = Range>) -> Vec<Range> {
    let mut v: Vec<Range> = ranges.into_iter().collect();
    v.sort();
    let mut out: Vec<Range> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last)
                if last.is_ipv4() == r.is_ipv4()
                    && num(r.start) <= num(last.end).saturating_add(1) =>
            {
                if r.end > last.end {
                    last.end = r.end;
                }
            }
            _ => out.push(r),
        }
    }
    out
}

fn num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Number of addresses, saturating.
pub(super) fn size(ranges: &[Range]) -> u128 {
    ranges.iter().fold(0u128, |n, r| n.saturating_add(r.size()))
}

/// Ranges as text, each exact CIDR as a CIDR: `172.29.52.100-172.29.52.199, fd47::/120`.
pub(super) fn describe(ranges: &[Range]) -> String {
    if ranges.is_empty() {
        return "no addresses".into();
    }
    ranges
        .iter()
        .map(|r| match r.cidrs().as_slice() {
            [one] => one.to_string(),
            _ => r.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An address, also written as a host prefix (`172.29.51.1/32`, as in BGPv1's `peerAddress`).
pub(super) fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    match s.split_once('/') {
        None => s.parse().ok(),
        Some((a, len)) => {
            let a: IpAddr = a.parse().ok()?;
            let host = if a.is_ipv4() { "32" } else { "128" };
            (len == host).then_some(a)
        }
    }
}
