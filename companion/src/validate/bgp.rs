//! `bgp-objects`: Cilium's BGP objects peer with the gateway and advertise the LoadBalancer IPs
//! the way the gateway accepts them. The BGP v2 API (CiliumBGPClusterConfig → PeerConfig →
//! Advertisement, `cilium.io/v2alpha1` or `v2`) is checked here, the older
//! CiliumBGPPeeringPolicy in [`super::peering`].
//!
//! What the gateway needs, per address family the cluster's node subnets have: a peer at a
//! gateway address of that family with the gateway's ASN, from a BGP instance with the
//! cluster's ASN; a peer config carrying only that family (an IPv6 route over an IPv4 session
//! gets an IPv4-mapped next hop and breaks); an advertisement of Service LoadBalancerIP, with
//! the site's community when the gateway requires it.

use std::collections::BTreeSet;
use std::net::IpAddr;

use bgplb_cilium::session::Family;
use serde_json::Value;

use super::objects::{
    self, array, describe_selector, list, selector_is_empty, selector_matches, str_at, strings,
    true_conditions, u64_at,
};
use super::ranges::parse_addr;
use super::{Check, Ctx, Findings};

/// What the site expects of the cluster's BGP objects.
pub(super) struct Expect {
    pub gateway_asn: u32,
    pub cluster_asn: u32,
    pub gateway: Vec<IpAddr>,
    /// The families the cluster's node subnets have.
    pub families: BTreeSet<Family>,
    /// The community LB routes must carry, when the gateway requires one.
    pub community: Option<String>,
}

impl Expect {
    fn new(ctx: &Ctx) -> Expect {
        let site = ctx.site();
        Expect {
            gateway_asn: site.gateway.asn,
            cluster_asn: ctx.cluster.asn,
            gateway: site.gateway.addresses.clone(),
            families: ctx.families(),
            community: site
                .bgp
                .require_community
                .then(|| site.bgp.community.clone()),
        }
    }

    pub fn gateway_of(&self, family: Family) -> Vec<IpAddr> {
        self.gateway
            .iter()
            .copied()
            .filter(|a| Family::of(a) == family)
            .collect()
    }

    pub fn is_gateway(&self, addr: IpAddr) -> bool {
        self.gateway.contains(&addr)
    }

    /// The required families, plus those of any gateway address peered with.
    pub fn families_with(&self, peered: impl IntoIterator<Item = IpAddr>) -> BTreeSet<Family> {
        let mut f = self.families.clone();
        f.extend(
            peered
                .into_iter()
                .filter(|a| self.is_gateway(*a))
                .map(|a| Family::of(&a)),
        );
        f
    }

    pub fn asn_matches(&self, asn: Option<u64>, expected: u32) -> bool {
        asn == Some(u64::from(expected))
    }
}

pub(super) fn show_asn(asn: Option<u64>) -> String {
    asn.map_or_else(|| "missing".to_string(), |a| a.to_string())
}

pub(super) fn check(ctx: &Ctx) -> Check {
    let mut f = Findings::new("bgp-objects");
    let e = Expect::new(ctx);
    if ctx.input.cilium_config.is_some()
        && crate::migrate::CiliumStage::of(ctx.input.cilium_config.as_ref())
            == crate::migrate::CiliumStage::BgpOff
    {
        f.fail(format!(
            "Cilium's BGP control plane is off (cilium-config enable-bgp-control-plane is not \
             \"true\"): no object below does anything; apply stage 1 of the Helm values ({})",
            bgplb_cilium::Stage::Bgp.file_name()
        ));
    }
    for fam in &e.families {
        if e.gateway_of(*fam).is_empty() {
            f.fail(format!(
                "cluster {} has {} node subnets, but the site names no {} gateway address to peer with",
                ctx.cluster.name,
                fam.afi(),
                fam.afi()
            ));
        }
    }
    let v2 = !ctx.cilium.cluster_configs.is_empty();
    let v1 = !ctx.cilium.peering_policies.is_empty();
    match (v2, v1) {
        (false, false) => f.fail(
            "no CiliumBGPClusterConfig and no CiliumBGPPeeringPolicy: Cilium announces nothing; \
             render and apply the BGP objects",
        ),
        (true, true) => f.warn(
            "both CiliumBGPClusterConfig and CiliumBGPPeeringPolicy exist: Cilium's two BGP APIs \
             must not both select a node; delete the one no longer in use",
        ),
        _ => {}
    }
    if v2 {
        cluster_configs(ctx, &e, &mut f);
    }
    if v1 {
        super::peering::check(ctx, &e, &mut f);
    }
    f.finish()
}

/// Nodes the objects' node selectors leave out (an absent or empty selector takes every node):
/// a node without BGP has no session with the gateway.
pub(super) fn node_selection(ctx: &Ctx, f: &mut Findings, kind: &str, objs: &[&Value]) {
    let live: Vec<_> = ctx.nodes.iter().filter(|n| !n.deleting).collect();
    let left_out: Vec<&str> = live
        .iter()
        .filter(|n| {
            !objs.iter().any(|o| {
                let sel = o.pointer("/spec/nodeSelector");
                selector_is_empty(sel) || sel.is_some_and(|s| selector_matches(s, &n.labels))
            })
        })
        .map(|n| n.name.as_str())
        .collect();
    let names: Vec<&str> = objs.iter().map(|o| objects::name(o)).collect();
    if !live.is_empty() && left_out.len() == live.len() {
        f.fail(format!(
            "the nodeSelector of {kind} {} selects none of the cluster's {} node(s): no node peers with the gateway",
            list(&names),
            live.len()
        ));
    } else if !left_out.is_empty() {
        f.warn(format!(
            "{kind} {} leaves out node(s) {}: they do not peer with the gateway",
            list(&names),
            list(&left_out)
        ));
    }
}

fn cluster_configs(ctx: &Ctx, e: &Expect, f: &mut Findings) {
    let mut matching: Vec<(&Value, &Value)> = Vec::new();
    for cfg in &ctx.cilium.cluster_configs {
        let cname = objects::name(cfg);
        for c in true_conditions(
            cfg,
            &[
                "cilium.io/NoMatchingNode",
                "cilium.io/MissingPeerConfigs",
                "cilium.io/ConflictingClusterConfigs",
            ],
        ) {
            f.fail(format!(
                "CiliumBGPClusterConfig {cname}: Cilium reports {c}"
            ));
        }
        for inst in array(cfg, "/spec/bgpInstances") {
            let asn = u64_at(inst, "/localASN");
            if e.asn_matches(asn, e.cluster_asn) {
                matching.push((cfg, inst));
            } else {
                f.warn(format!(
                    "CiliumBGPClusterConfig {cname} instance {}: localASN {} is not cluster {}'s ASN {}: no session with this gateway",
                    str_at(inst, "/name").unwrap_or("<unnamed>"),
                    show_asn(asn),
                    ctx.cluster.name,
                    e.cluster_asn
                ));
            }
        }
    }
    if matching.is_empty() {
        f.fail(format!(
            "no CiliumBGPClusterConfig has a bgpInstance with localASN {} (cluster {}'s ASN in the site file)",
            e.cluster_asn, ctx.cluster.name
        ));
        return;
    }
    let mut cfgs: Vec<&Value> = matching.iter().map(|(c, _)| *c).collect();
    cfgs.dedup_by(|a, b| objects::name(a) == objects::name(b));
    node_selection(ctx, f, "CiliumBGPClusterConfig", &cfgs);

    let peers: Vec<(&Value, &Value)> = matching
        .iter()
        .flat_map(|(cfg, inst)| array(inst, "/peers").map(move |p| (*cfg, p)))
        .collect();
    for (cfg, p) in &peers {
        let who = peer_name(cfg, p);
        match str_at(p, "/peerAddress").map(|a| (a, parse_addr(a))) {
            None => f.info(format!(
                "{who}: no peerAddress (auto-discovery): not checked"
            )),
            Some((a, None)) => f.fail(format!("{who}: peerAddress `{a}` is not an IP address")),
            Some((_, Some(addr))) if !e.is_gateway(addr) => {
                f.info(format!("{who} ({addr}) is not the gateway: not checked"))
            }
            Some(_) => {}
        }
    }
    let addr_of = |p: &Value| str_at(p, "/peerAddress").and_then(parse_addr);
    for fam in e.families_with(peers.iter().filter_map(|(_, p)| addr_of(p))) {
        let to_gateway: Vec<&(&Value, &Value)> = peers
            .iter()
            .filter(|(_, p)| addr_of(p).is_some_and(|a| Family::of(&a) == fam && e.is_gateway(a)))
            .collect();
        if to_gateway.is_empty() {
            f.fail(format!(
                "no peer at the gateway's {} address ({}) in a bgpInstance with localASN {}: no {} session",
                fam.afi(),
                list(&e.gateway_of(fam)),
                e.cluster_asn,
                fam.afi()
            ));
        }
        for (cfg, p) in to_gateway {
            peer(ctx, e, f, cfg, p, fam);
        }
    }
}

fn peer_name(cfg: &Value, p: &Value) -> String {
    format!(
        "CiliumBGPClusterConfig {} peer {}",
        objects::name(cfg),
        str_at(p, "/name").unwrap_or("<unnamed>")
    )
}

/// One peer at a gateway address, of family `fam`.
fn peer(ctx: &Ctx, e: &Expect, f: &mut Findings, cfg: &Value, p: &Value, fam: Family) {
    let who = format!(
        "{} ({})",
        peer_name(cfg, p),
        str_at(p, "/peerAddress").unwrap_or("?")
    );
    let mut ok = true;
    let asn = u64_at(p, "/peerASN");
    if !e.asn_matches(asn, e.gateway_asn) {
        ok = false;
        f.fail(format!(
            "{who}: peerASN {}, but the gateway is AS {}",
            show_asn(asn),
            e.gateway_asn
        ));
    }
    let Some(ref_name) = str_at(p, "/peerConfigRef/name") else {
        f.fail(format!(
            "{who}: no peerConfigRef: Cilium's default peer config advertises nothing"
        ));
        return;
    };
    let Some(pc) = ctx
        .cilium
        .peer_configs
        .iter()
        .find(|c| objects::name(c) == ref_name)
    else {
        f.fail(format!(
            "{who}: its CiliumBGPPeerConfig {ref_name} does not exist"
        ));
        return;
    };
    for c in true_conditions(pc, &["cilium.io/MissingAuthSecret"]) {
        ok = false;
        f.fail(format!(
            "CiliumBGPPeerConfig {ref_name}: Cilium reports {c}"
        ));
    }
    let families: Vec<&Value> = array(pc, "/spec/families").collect();
    if families.is_empty() {
        f.fail(format!(
            "CiliumBGPPeerConfig {ref_name} (of {who}) has no families: Cilium's default families advertise nothing"
        ));
        return;
    }
    let afi = fam.afi();
    for other in families
        .iter()
        .filter_map(|x| str_at(x, "/afi"))
        .filter(|a| *a != afi)
    {
        ok = false;
        f.fail(format!(
            "CiliumBGPPeerConfig {ref_name} carries afi {other} on {who}, an {afi} session: \
             {other} routes over it get a mapped next hop and break; one family per peer config"
        ));
    }
    let own: Vec<&Value> = families
        .iter()
        .copied()
        .filter(|x| str_at(x, "/afi") == Some(afi))
        .filter(|x| str_at(x, "/safi").is_none_or(|s| s == "unicast"))
        .collect();
    if own.is_empty() {
        f.fail(format!(
            "CiliumBGPPeerConfig {ref_name} (of {who}) carries no {afi} unicast family: the gateway gets no LoadBalancer routes"
        ));
        return;
    }
    let mut advertised = Vec::new();
    for family in own {
        match advertisements(ctx, e, ref_name, family) {
            Ok(names) => advertised.extend(names),
            Err(problem) => {
                ok = false;
                f.fail(problem);
            }
        }
    }
    if ok {
        advertised.sort();
        advertised.dedup();
        f.info(format!(
            "{who}: AS {}, CiliumBGPPeerConfig {ref_name} ({afi}), advertisement(s) {}",
            e.gateway_asn,
            list(&advertised)
        ));
    }
}

/// The advertisements one peer-config family selects must advertise Service LoadBalancerIP
/// (for some services), with the community when required. Their names, or the problem.
fn advertisements<'a>(
    ctx: &'a Ctx,
    e: &Expect,
    pc: &str,
    family: &Value,
) -> Result<Vec<&'a str>, String> {
    let afi = str_at(family, "/afi").unwrap_or("?");
    // Cilium reads selectors with LabelSelectorAsSelector: a missing one selects nothing, an
    // empty one (`{}`) selects everything.
    let sel = family.get("advertisements");
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Err(format!(
            "CiliumBGPPeerConfig {pc} family {afi}: no advertisements selector: Cilium advertises nothing"
        ));
    };
    let selected: Vec<&Value> = ctx
        .cilium
        .advertisements
        .iter()
        .filter(|a| selector_matches(sel, &objects::labels(a)))
        .collect();
    let names: Vec<&str> = selected.iter().map(|a| objects::name(a)).collect();
    if selected.is_empty() {
        return Err(format!(
            "CiliumBGPPeerConfig {pc} family {afi}: advertisements selector {} matches no CiliumBGPAdvertisement",
            describe_selector(Some(sel))
        ));
    }
    let lb: Vec<&Value> = selected
        .iter()
        .flat_map(|a| array(a, "/spec/advertisements"))
        .filter(|x| str_at(x, "/advertisementType") == Some("Service"))
        .filter(|x| strings(x, "/service/addresses").contains(&"LoadBalancerIP"))
        .collect();
    if lb.is_empty() {
        return Err(format!(
            "CiliumBGPAdvertisement {} (selected by CiliumBGPPeerConfig {pc}) advertise no Service LoadBalancerIP",
            list(&names)
        ));
    }
    let lb: Vec<&Value> = lb
        .into_iter()
        .filter(|x| x.get("selector").is_some_and(|s| !s.is_null()))
        .collect();
    if lb.is_empty() {
        return Err(format!(
            "CiliumBGPAdvertisement {}: the LoadBalancerIP advertisement has no service selector: Cilium advertises no service",
            list(&names)
        ));
    }
    if let Some(c) = &e.community {
        if !lb
            .iter()
            .any(|x| strings(x, "/attributes/communities/standard").contains(&c.as_str()))
        {
            return Err(format!(
                "CiliumBGPAdvertisement {} (selected by CiliumBGPPeerConfig {pc}) advertise LoadBalancerIP \
                 without community {c}: the gateway requires it and refuses the routes",
                list(&names)
            ));
        }
    }
    Ok(names)
}
