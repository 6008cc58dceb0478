//! `cilium-version`: objects the installed Cilium ignores, or that an upgrade would silently
//! break. The facts (see `bgplb_cilium`'s version matrix): pools have `spec.blocks` from 1.15 and
//! lost `spec.cidrs` in 1.16; pools and the BGP v2 resources moved to `cilium.io/v2` in 1.18
//! (v2alpha1 still served, deprecated); the BGP v2 resources exist from 1.16;
//! CiliumBGPPeeringPolicy was deprecated in 1.18 and removed in 1.19.

use bgplb_cilium::CiliumVersion;
use serde_json::Value;

use super::objects;
use super::ranges::pool_blocks;
use super::{Check, Ctx, Findings};

pub(super) fn check(ctx: &Ctx) -> Check {
    let mut f = Findings::new("cilium-version");
    let v = match ctx
        .input
        .cilium_version
        .as_deref()
        .map(CiliumVersion::parse)
    {
        None => {
            f.warn("Cilium version unknown: version-dependent checks skipped");
            return f.finish();
        }
        Some(Err(e)) => {
            f.warn(format!("{e}: version-dependent checks skipped"));
            return f.finish();
        }
        Some(Ok(v)) => v,
    };
    if v.check_supported().is_err() {
        f.warn(format!(
            "Cilium {v} is outside what bgplb knows (1.14 and later 1.x): checked as if it were the nearest known release"
        ));
    }
    f.info(format!(
        "Cilium {v}: pools {}, BGP {}",
        v.pool_api_version(),
        if v.has_bgp_v2() {
            format!("CiliumBGPClusterConfig {}", v.bgp_api_version())
        } else {
            "CiliumBGPPeeringPolicy".to_string()
        }
    ));
    let c = &ctx.cilium;
    for p in &c.peering_policies {
        peering_policy(&mut f, v, p);
    }
    for o in c
        .cluster_configs
        .iter()
        .chain(&c.peer_configs)
        .chain(&c.advertisements)
    {
        bgp_v2(&mut f, v, o);
    }
    for p in &c.pools {
        pool(&mut f, v, p);
    }
    f.finish()
}

/// `v` is 1.`minor` or later (any patch release).
fn at_least(v: CiliumVersion, minor: u32) -> bool {
    v >= CiliumVersion::new(1, minor)
}

fn what(o: &Value) -> String {
    format!("{} {}", objects::kind(o), objects::name(o))
}

fn peering_policy(f: &mut Findings, v: CiliumVersion, p: &Value) {
    let p = what(p);
    if at_least(v, 19) {
        f.fail(format!(
            "{p}: CiliumBGPPeeringPolicy was removed in Cilium 1.19: Cilium {v} ignores it; convert to CiliumBGPClusterConfig"
        ));
    } else if at_least(v, 18) {
        f.warn(format!(
            "{p}: CiliumBGPPeeringPolicy is deprecated in Cilium {v} and removed in 1.19: convert to CiliumBGPClusterConfig before upgrading"
        ));
    }
}

// The apiVersion of a listed object says which version the list asked for, not how the object
// was written: the API server converts between the versions a CRD serves. So it is not judged.
fn bgp_v2(f: &mut Findings, v: CiliumVersion, o: &Value) {
    let o = what(o);
    if !at_least(v, 16) {
        f.fail(format!(
            "{o}: the BGP v2 resources arrived in Cilium 1.16: Cilium {v} ignores it (use CiliumBGPPeeringPolicy)"
        ));
    }
}

fn pool(f: &mut Findings, v: CiliumVersion, p: &Value) {
    let blocks = pool_blocks(p);
    let p = what(p);
    if blocks.uses_cidrs {
        if at_least(v, 16) {
            f.fail(format!(
                "{p}: spec.cidrs was removed in Cilium 1.16: Cilium {v} allocates nothing from these addresses; use spec.blocks"
            ));
        } else {
            f.warn(format!(
                "{p}: spec.cidrs is removed in Cilium 1.16: an upgrade leaves the pool without addresses; use spec.blocks (from 1.15)"
            ));
        }
    }
    if blocks.uses_blocks && !at_least(v, 15) {
        f.fail(format!(
            "{p}: spec.blocks arrived in Cilium 1.15: Cilium {v} ignores it; use spec.cidrs"
        ));
    }
}
