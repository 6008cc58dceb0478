//! `service-ips`: every LoadBalancer IP lies inside an enabled BGP pool of the site, because the
//! gateway accepts host routes only there. A service still waiting for an address is a warning.

use std::net::IpAddr;

use super::{Check, Ctx, Findings};

/// Cilium's load-balancer classes: LB-IPAM serves all three, BGP announces only the first (and
/// services without a class).
const BGP_CLASS: &str = "io.cilium/bgp-control-plane";
const L2_CLASS: &str = "io.cilium/l2-announcer";

pub(super) fn check(ctx: &Ctx) -> Check {
    let mut f = Findings::new("service-ips");
    let (mut checked, mut addresses) = (0usize, 0usize);
    let local_advertised_everywhere = ctx
        .input
        .cilium_version
        .as_deref()
        .and_then(|v| bgplb_cilium::CiliumVersion::parse(v).ok())
        .is_some_and(|v| v.advertises_local_services_everywhere());
    for s in &ctx.services {
        match s.load_balancer_class.as_deref() {
            None | Some(BGP_CLASS) => {}
            Some(L2_CLASS) => f.warn(format!(
                "{s}: loadBalancerClass {L2_CLASS}: announced at L2 only, never by BGP; the class cannot be changed: recreate the Service without it"
            )),
            Some(other) => {
                f.info(format!(
                    "{s}: loadBalancerClass {other} belongs to another controller: not checked"
                ));
                continue;
            }
        }
        checked += 1;
        if s.external_traffic_policy == "Local" && local_advertised_everywhere {
            f.warn(format!(
                "{s}: externalTrafficPolicy Local: Cilium {} advertises it from every node, \
                 endpoint or not (cilium/cilium#44803), and nodes without one drop what the \
                 gateway sends them; use externalTrafficPolicy: Cluster on this version",
                ctx.input.cilium_version.as_deref().unwrap_or_default()
            ));
        }
        if s.ips.is_empty() {
            f.warn(format!(
                "{s}: pending: no LoadBalancer IP yet (does a pool select it, and has it free addresses?)"
            ));
            continue;
        }
        for ip in &s.ips {
            addresses += 1;
            let Ok(addr) = ip.trim().parse::<IpAddr>() else {
                f.fail(format!("{s}: `{ip}` is not an IP address"));
                continue;
            };
            match ctx.site_pools.iter().find(|p| p.contains(addr)) {
                None => f.fail(format!(
                    "{s}: {addr} is outside every BGP pool of the site: the gateway refuses its route \
                     (an address from an old L2 pool? move the service to a site pool)"
                )),
                Some(p) if p.disabled => f.fail(format!(
                    "{s}: {addr} is in pool {}, which the site disables: the gateway accepts no routes from it",
                    p.name
                )),
                Some(_) => {}
            }
        }
    }
    f.info(format!(
        "{checked} LoadBalancer service(s), {addresses} address(es) checked against the site's pools"
    ));
    f.finish()
}
