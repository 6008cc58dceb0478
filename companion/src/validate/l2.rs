//! `l2-policies`: no CiliumL2AnnouncementPolicy may be left. While one exists, nodes still answer
//! ARP/NDP for the addresses it selects: the L2 announcement this project replaces.

use super::objects::{self, describe_selector};
use super::{Check, Ctx, Findings};

pub(super) fn check(ctx: &Ctx) -> Check {
    let mut f = Findings::new("l2-policies");
    for p in &ctx.cilium.l2_policies {
        let what = match (
            objects::bool_at(p, "/spec/loadBalancerIPs").unwrap_or(false),
            objects::bool_at(p, "/spec/externalIPs").unwrap_or(false),
        ) {
            (true, true) => "LoadBalancer and external IPs",
            (true, false) => "LoadBalancer IPs",
            (false, true) => "external IPs",
            (false, false) => "no address kind (loadBalancerIPs and externalIPs are off)",
        };
        f.fail(format!(
            "CiliumL2AnnouncementPolicy {} still exists (announces {what} of services {}): \
             nodes answer ARP for them on the node network; delete it once BGP carries the services",
            objects::name(p),
            describe_selector(p.pointer("/spec/serviceSelector")),
        ));
    }
    if f.lines.is_empty() {
        f.info("no CiliumL2AnnouncementPolicy");
        if crate::migrate::CiliumStage::of(ctx.input.cilium_config.as_ref())
            == crate::migrate::CiliumStage::BgpAndL2
        {
            f.warn(format!(
                "Cilium still runs L2 announcements (cilium-config enable-l2-announcements is \
                 \"true\"): nothing selects a Service now, but apply stage 2 of the Helm values \
                 ({}) so a new policy cannot bring the ARP conflict back",
                bgplb_cilium::Stage::Final.file_name()
            ));
        }
    }
    f.finish()
}
