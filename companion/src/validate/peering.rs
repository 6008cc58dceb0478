//! The older BGP API, CiliumBGPPeeringPolicy (`cilium.io/v2alpha1`, removed in Cilium 1.19):
//! a virtual router with the cluster's ASN, a neighbor per gateway address and family with the
//! gateway's ASN, one family per neighbor (from 1.15), a service selector, and the community on
//! every enabled pool's routes (`advertisedPathAttributes`, from 1.15).

use bgplb_cilium::session::Family;
use serde_json::Value;

use super::bgp::{node_selection, show_asn, Expect};
use super::objects::{
    self, array, describe_selector, list, selector_is_empty, selector_matches, str_at, strings,
    u64_at,
};
use super::ranges::{parse_addr, pool_blocks};
use super::{Ctx, Findings};

pub(super) fn check(ctx: &Ctx, e: &Expect, f: &mut Findings) {
    let policies = &ctx.cilium.peering_policies;
    for n in ctx.nodes.iter().filter(|n| !n.deleting) {
        let selecting: Vec<&str> = policies
            .iter()
            .filter(|p| {
                let sel = p.pointer("/spec/nodeSelector");
                selector_is_empty(sel) || sel.is_some_and(|s| selector_matches(s, &n.labels))
            })
            .map(objects::name)
            .collect();
        if selecting.len() > 1 {
            f.fail(format!(
                "node {} is selected by several CiliumBGPPeeringPolicies ({}): Cilium applies none of them",
                n.name,
                list(&selecting)
            ));
        }
    }
    let mut routers: Vec<(&Value, &Value)> = Vec::new();
    for pol in policies {
        for vr in array(pol, "/spec/virtualRouters") {
            let asn = u64_at(vr, "/localASN");
            if e.asn_matches(asn, e.cluster_asn) {
                routers.push((pol, vr));
            } else {
                f.warn(format!(
                    "CiliumBGPPeeringPolicy {}: virtualRouter localASN {} is not cluster {}'s ASN {}: no session with this gateway",
                    objects::name(pol),
                    show_asn(asn),
                    ctx.cluster.name,
                    e.cluster_asn
                ));
            }
        }
    }
    if routers.is_empty() {
        f.fail(format!(
            "no CiliumBGPPeeringPolicy has a virtualRouter with localASN {} (cluster {}'s ASN in the site file)",
            e.cluster_asn, ctx.cluster.name
        ));
        return;
    }
    let mut pols: Vec<&Value> = routers.iter().map(|(p, _)| *p).collect();
    pols.dedup_by(|a, b| objects::name(a) == objects::name(b));
    node_selection(ctx, f, "CiliumBGPPeeringPolicy", &pols);
    for (pol, _) in routers
        .iter()
        .filter(|(_, vr)| vr.get("serviceSelector").is_none_or(Value::is_null))
    {
        f.fail(format!(
            "CiliumBGPPeeringPolicy {}: the virtualRouter with localASN {} has no serviceSelector: no LoadBalancer IP is announced",
            objects::name(pol),
            e.cluster_asn
        ));
    }
    let neighbors: Vec<(&Value, &Value)> = routers
        .iter()
        .flat_map(|(pol, vr)| array(vr, "/neighbors").map(move |n| (*pol, n)))
        .collect();
    let addr_of = |n: &Value| str_at(n, "/peerAddress").and_then(parse_addr);
    for fam in e.families_with(neighbors.iter().filter_map(|(_, n)| addr_of(n))) {
        let to_gateway: Vec<&(&Value, &Value)> = neighbors
            .iter()
            .filter(|(_, n)| addr_of(n).is_some_and(|a| Family::of(&a) == fam && e.is_gateway(a)))
            .collect();
        if to_gateway.is_empty() {
            f.fail(format!(
                "no neighbor at the gateway's {} address ({}) in a CiliumBGPPeeringPolicy virtualRouter with localASN {}",
                fam.afi(),
                list(&e.gateway_of(fam)),
                e.cluster_asn
            ));
        }
        for (pol, n) in to_gateway {
            neighbor(ctx, e, f, pol, n, fam);
        }
    }
}

fn neighbor(ctx: &Ctx, e: &Expect, f: &mut Findings, pol: &Value, n: &Value, fam: Family) {
    let who = format!(
        "CiliumBGPPeeringPolicy {} neighbor {}",
        objects::name(pol),
        str_at(n, "/peerAddress").unwrap_or("?")
    );
    let afi = fam.afi();
    let mut ok = true;
    let asn = u64_at(n, "/peerASN");
    if !e.asn_matches(asn, e.gateway_asn) {
        ok = false;
        f.fail(format!(
            "{who}: peerASN {}, but the gateway is AS {}",
            show_asn(asn),
            e.gateway_asn
        ));
    }
    let families: Vec<&str> = array(n, "/families")
        .filter_map(|x| str_at(x, "/afi"))
        .collect();
    if families.is_empty() {
        f.warn(format!(
            "{who}: no families: Cilium offers ipv4 and ipv6 unicast on this {afi} session \
             (from Cilium 1.15, list only {afi})"
        ));
    } else {
        for other in families.iter().filter(|a| **a != afi) {
            ok = false;
            f.fail(format!(
                "{who}: carries afi {other} on an {afi} session: {other} routes over it get a mapped next hop and break"
            ));
        }
        if !families.contains(&afi) {
            ok = false;
            f.fail(format!(
                "{who}: no {afi} family: the gateway gets no LoadBalancer routes"
            ));
        }
    }
    if let Some(c) = &e.community {
        if let Err(problem) = community(ctx, &who, n, fam, c) {
            ok = false;
            f.fail(problem);
        }
    }
    if ok {
        f.info(format!("{who}: AS {}, {afi}", e.gateway_asn));
    }
}

/// The community must be attached to the routes of every enabled site pool of the family.
fn community(ctx: &Ctx, who: &str, n: &Value, fam: Family, c: &str) -> Result<(), String> {
    let attrs: Vec<&Value> = array(n, "/advertisedPathAttributes")
        .filter(|a| str_at(a, "/selectorType") == Some("CiliumLoadBalancerIPPool"))
        .filter(|a| strings(a, "/communities/standard").contains(&c))
        .collect();
    if attrs.is_empty() {
        return Err(format!(
            "{who}: no advertisedPathAttributes for CiliumLoadBalancerIPPool with community {c}: the gateway \
             requires it and refuses the routes (Cilium before 1.15 cannot set it: there, set bgp.require_community = false)"
        ));
    }
    for sp in ctx.site_pools.iter().filter(|p| !p.disabled) {
        if !sp.ranges.iter().any(|r| Family::of(&r.start) == fam) {
            continue;
        }
        let Some(obj) = ctx
            .cilium
            .pools
            .iter()
            .find(|p| objects::name(p) == sp.name)
        else {
            continue; // the pools check names it
        };
        if pool_blocks(obj).ranges.is_empty() {
            continue;
        }
        let labels = objects::labels(obj);
        let selected = attrs.iter().any(|a| {
            let sel = a.get("selector");
            selector_is_empty(sel) || sel.is_some_and(|s| selector_matches(s, &labels))
        });
        if !selected {
            let sels: Vec<String> = attrs
                .iter()
                .map(|a| describe_selector(a.get("selector")))
                .collect();
            return Err(format!(
                "{who}: the community {c} goes only on pools selected by {}, not on pool {}: its routes are refused",
                list(&sels),
                sp.name
            ));
        }
    }
    Ok(())
}
