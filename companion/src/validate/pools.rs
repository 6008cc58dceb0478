//! `pools`: every site pool exists in the cluster as a CiliumLoadBalancerIPPool with the same
//! addresses and `disabled` flag, with its usage; a cluster pool the site does not know is a
//! warning, one on the node network (the old L2 pool) or overlapping a site pool a failure.

use std::collections::BTreeSet;
use std::net::IpAddr;

use bgplb_site::Range;
use serde_json::Value;

use super::objects::{self, array, str_at};
use super::ranges::{self, describe, net_range, pool_blocks, PoolBlocks, SitePool};
use super::{Check, Ctx, Findings};

pub(super) fn check(ctx: &Ctx) -> Check {
    let mut f = Findings::new("pools");
    let node_nets: Vec<(String, Range)> = ctx
        .cluster
        .node_subnets
        .iter()
        .map(|n| (n.to_string(), net_range(n)))
        .collect();
    for sp in &ctx.site_pools {
        match ctx.cilium.pools.iter().find(|p| objects::name(p) == sp.name) {
            None => f.fail(format!(
                "{}: no CiliumLoadBalancerIPPool {} in the cluster (site: {}): render and apply the Cilium objects",
                sp.name,
                sp.name,
                describe(&sp.ranges)
            )),
            Some(p) => site_pool(ctx, &mut f, sp, p),
        }
    }
    for p in &ctx.cilium.pools {
        let name = objects::name(p);
        let blocks = pool_blocks(p);
        for b in &blocks.bad {
            f.fail(format!("{name}: block {b} is not an address range"));
        }
        let mut on_node_net = false;
        for (net, range) in &node_nets {
            if blocks.ranges.iter().any(|r| r.overlaps(range)) {
                on_node_net = true;
                f.fail(format!(
                    "{name} ({}) overlaps the node subnet {net}: its addresses can only be reached by \
                     L2 announcements; move its services to a BGP pool and delete it",
                    describe(&blocks.ranges)
                ));
            }
        }
        if on_node_net || ctx.site_pools.iter().any(|sp| sp.name == name) {
            continue;
        }
        let overlapping: Vec<&str> = ctx
            .site_pools
            .iter()
            .filter(|sp| overlaps(&sp.ranges, &blocks.ranges))
            .map(|sp| sp.name.as_str())
            .collect();
        if !overlapping.is_empty() {
            f.fail(format!(
                "{name} ({}) is not in the site file and overlaps site pool(s) {}: Cilium marks \
                 overlapping pools as conflicting",
                describe(&blocks.ranges),
                overlapping.join(", ")
            ));
        } else {
            f.warn(format!(
                "{name} ({}) is not in the site file: the gateway refuses routes for its addresses",
                describe(&blocks.ranges)
            ));
        }
    }
    f.finish()
}

fn overlaps(a: &[Range], b: &[Range]) -> bool {
    a.iter().any(|x| b.iter().any(|y| x.overlaps(y)))
}

/// A site pool and its cluster object.
fn site_pool(ctx: &Ctx, f: &mut Findings, sp: &SitePool, p: &Value) {
    let blocks = pool_blocks(p);
    let name = &sp.name;
    if blocks.ranges != sp.ranges {
        f.fail(format!(
            "{name}: blocks differ: the cluster has {}, the site {}",
            describe(&blocks.ranges),
            describe(&sp.ranges)
        ));
    }
    let disabled = objects::bool_at(p, "/spec/disabled").unwrap_or(false);
    match (disabled, sp.disabled) {
        (false, true) => f.fail(format!(
            "{name}: enabled in the cluster but disabled in the site: Cilium hands out addresses \
             whose routes the gateway refuses"
        )),
        (true, false) => f.warn(format!(
            "{name}: disabled in the cluster but enabled in the site: Cilium allocates nothing new from it"
        )),
        _ => {}
    }
    for c in objects::true_conditions(p, &["cilium.io/PoolConflict"]) {
        f.fail(format!("{name}: Cilium reports {c}"));
    }
    usage(ctx, f, name, &blocks, p, disabled);
}

fn usage(ctx: &Ctx, f: &mut Findings, name: &str, blocks: &PoolBlocks, p: &Value, disabled: bool) {
    let counted = || -> u128 {
        let ips: BTreeSet<IpAddr> = ctx
            .services
            .iter()
            .flat_map(|s| s.ips.iter())
            .filter_map(|ip| ip.trim().parse().ok())
            .filter(|ip| blocks.ranges.iter().any(|r| r.contains(*ip)))
            .collect();
        ips.len() as u128
    };
    let from_status = (
        condition_number(p, "cilium.io/IPsTotal"),
        condition_number(p, "cilium.io/IPsUsed"),
    );
    let (total, used, source) = match from_status {
        (Some(t), Some(u)) => (t, u, "Cilium's pool status"),
        _ => (
            ranges::size(&blocks.ranges),
            counted(),
            "counted from services",
        ),
    };
    let free = condition_number(p, "cilium.io/IPsAvailable").unwrap_or(total.saturating_sub(used));
    let line = format!(
        "{name}: {used} of {total} address(es) used, {free} free ({source}){}",
        if disabled { ", disabled" } else { "" }
    );
    if free == 0 && total > 0 && !disabled {
        f.warn(format!("{line}: exhausted, new services stay pending"));
    } else {
        f.info(line);
    }
}

/// The number in the `message` of a pool condition (`cilium.io/IPsTotal` etc.).
fn condition_number(p: &Value, t: &str) -> Option<u128> {
    array(p, "/status/conditions")
        .find(|c| str_at(c, "/type") == Some(t))
        .and_then(|c| str_at(c, "/message"))
        .and_then(|m| m.trim().parse().ok())
}
