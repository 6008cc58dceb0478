//! The LB segment, as a pure plan: (site, what the kernel has) → actions, plus findings.
//!
//! Modes (README "The LB segment"):
//! * `routed`: no address in the segment on any interface; an unreachable route per segment
//!   prefix, so traffic to an unallocated VIP is refused at the gateway instead of following the
//!   default route out; BGP host routes are longer and win.
//! * `vlan`: the agent creates and owns a VLAN link with the gateway's segment addresses.
//! * `adopt`: an interface made by someone else (the UniFi controller's br52) is checked — exists,
//!   up, expected addresses — and never changed.
//!
//! Ownership: links the agent creates carry the ifalias [`LINK_ALIAS`]; routes carry the protocol
//! number [`ROUTE_PROTOCOL`]. Only those are ever changed or deleted; a stale one left by an
//! earlier configuration is removed, and anything else is left alone whatever its name.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use bgplb_site::{SegmentMode, Site};
use ipnet::IpNet;
use serde::Serialize;

use crate::kstate::{KernelState, RouteKind};

/// ifalias of every link bgplb creates.
pub const LINK_ALIAS: &str = "bgplb:segment";

/// Route protocol number of every route bgplb installs (not among iproute2's reserved ones;
/// `ip route` shows it as 201 unless rt_protos names it).
pub const ROUTE_PROTOCOL: u8 = 201;

/// The main routing table.
pub const MAIN_TABLE: u32 = 254;

/// One change to the kernel, for the executor in [`crate::kernel`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Create the VLAN link `name` (id `vlan` on `parent`), marked with [`LINK_ALIAS`], down.
    CreateVlan {
        name: String,
        vlan: u16,
        parent: String,
    },
    /// Bring our link `name` up.
    LinkUp { name: String },
    /// Add `addr` (address with the segment's prefix length) to our link `link`.
    AddAddress { link: String, addr: IpNet },
    /// Remove `addr` from our link `link`.
    RemoveAddress { link: String, addr: IpNet },
    /// Install an unreachable route for `dst` in the main table, protocol [`ROUTE_PROTOCOL`].
    AddUnreachable { dst: IpNet },
    /// Delete our route for `dst` in `table` (protocol [`ROUTE_PROTOCOL`] only).
    RemoveRoute {
        dst: IpNet,
        table: u32,
        kind: RouteKind,
    },
    /// Delete our link `name` (ifalias [`LINK_ALIAS`] only).
    DeleteLink { name: String },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateVlan { name, vlan, parent } => {
                write!(f, "+ link {name} (VLAN {vlan} on {parent})")
            }
            Action::LinkUp { name } => write!(f, "~ link {name} up"),
            Action::AddAddress { link, addr } => write!(f, "+ address {addr} on {link}"),
            Action::RemoveAddress { link, addr } => write!(f, "- address {addr} on {link}"),
            Action::AddUnreachable { dst } => {
                write!(f, "+ route unreachable {dst} proto {ROUTE_PROTOCOL}")
            }
            Action::RemoveRoute { dst, table, kind } => write!(
                f,
                "- route {kind} {dst} table {table} proto {ROUTE_PROTOCOL}"
            ),
            Action::DeleteLink { name } => write!(f, "- link {name}"),
        }
    }
}

/// Something about the segment the operator should know (adopt-mode differences).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub ok: bool,
    pub what: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SegmentPlan {
    pub actions: Vec<Action>,
    pub findings: Vec<Finding>,
}

/// Input the segment cannot be built from; nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error(
        "segment.parent: the link `{0}` does not exist on this gateway (ip link shows the names)"
    )]
    ParentMissing(String),
    #[error("segment {prefix} overlaps the address {addr} already on {link}; in {mode} mode the segment must not be on an interface of the gateway (use mode = \"adopt\" with interface = \"{link}\" if that interface is the LB segment)")]
    PrefixOnInterface {
        prefix: IpNet,
        addr: IpNet,
        link: String,
        mode: &'static str,
    },
    #[error("segment.interface: a link named `{0}` exists and was not made by bgplb; choose another name or mode = \"adopt\"")]
    NameTaken(String),
    #[error("segment.vlan: {0} is outside 1-4094")]
    BadVlan(u16),
}

/// The link name in vlan mode.
pub fn vlan_link_name(site: &Site) -> String {
    let s = &site.segment;
    s.interface.clone().unwrap_or_else(|| {
        let name = format!("{}.{}", s.parent.as_deref().unwrap_or("eth0"), s.vlan);
        name.chars().take(15).collect()
    })
}

/// The gateway's segment addresses with the segment's prefix lengths.
fn gateway_segment_addresses(site: &Site) -> Vec<IpNet> {
    site.segment
        .gateway_addresses
        .iter()
        .filter_map(|a| {
            let net = site
                .segment_prefixes()
                .into_iter()
                .find(|n| n.contains(a))?;
            IpNet::new(*a, net.prefix_len()).ok()
        })
        .collect()
}

/// What to do so the kernel matches the site's segment.
pub fn plan(site: &Site, k: &KernelState) -> Result<SegmentPlan, SegmentError> {
    let seg = &site.segment;
    if !(1..=4094).contains(&seg.vlan) {
        return Err(SegmentError::BadVlan(seg.vlan));
    }
    let prefixes = site.segment_prefixes();
    let ours_link = |name: &str| {
        k.link(name)
            .is_some_and(|l| l.alias.as_deref() == Some(LINK_ALIAS))
    };
    let mut p = SegmentPlan::default();

    // The one interface that may carry segment addresses, if any.
    let segment_link: Option<String> = match seg.mode {
        SegmentMode::Routed => None,
        SegmentMode::Vlan => Some(vlan_link_name(site)),
        SegmentMode::Adopt => seg.interface.clone(),
    };
    for a in &k.addresses {
        let Some(link) = k.link_by_index(a.index) else {
            continue;
        };
        if Some(&link.name) == segment_link.as_ref() || link.alias.as_deref() == Some(LINK_ALIAS) {
            continue;
        }
        if let Some(prefix) = prefixes
            .iter()
            .find(|n| n.contains(&a.net.addr()) || a.net.contains(&n.network()))
        {
            if is_link_local(&a.net.addr()) {
                continue;
            }
            return Err(SegmentError::PrefixOnInterface {
                prefix: *prefix,
                addr: a.net,
                link: link.name.clone(),
                mode: mode_name(seg.mode),
            });
        }
    }

    // Routes: unreachable per prefix in routed mode, none of ours otherwise.
    let wanted_routes: BTreeSet<IpNet> = match seg.mode {
        SegmentMode::Routed => prefixes.iter().copied().collect(),
        _ => BTreeSet::new(),
    };
    let ours: Vec<_> = k
        .routes
        .iter()
        .filter(|r| r.protocol == ROUTE_PROTOCOL)
        .collect();
    for dst in &wanted_routes {
        let present = ours
            .iter()
            .any(|r| r.dst == *dst && r.table == MAIN_TABLE && r.kind == RouteKind::Unreachable);
        if !present {
            p.actions.push(Action::AddUnreachable { dst: *dst });
        }
    }
    for r in &ours {
        if !(wanted_routes.contains(&r.dst)
            && r.table == MAIN_TABLE
            && r.kind == RouteKind::Unreachable)
        {
            p.actions.push(Action::RemoveRoute {
                dst: r.dst,
                table: r.table,
                kind: r.kind,
            });
        }
    }

    // Links: ours only in vlan mode, exactly one, matching.
    let wanted_link = (seg.mode == SegmentMode::Vlan).then(|| vlan_link_name(site));
    for l in k
        .links
        .iter()
        .filter(|l| l.alias.as_deref() == Some(LINK_ALIAS))
    {
        if Some(&l.name) != wanted_link.as_ref() {
            p.actions.push(Action::DeleteLink {
                name: l.name.clone(),
            });
        }
    }
    match seg.mode {
        SegmentMode::Vlan => {
            let name = wanted_link.expect("vlan mode has a link name");
            let parent = seg.parent.clone().unwrap_or_default();
            let Some(parent_link) = k.link(&parent) else {
                return Err(SegmentError::ParentMissing(parent));
            };
            let existing = k.link(&name);
            let recreate = match existing {
                Some(l) if !ours_link(&name) => {
                    return Err(SegmentError::NameTaken(l.name.clone()))
                }
                Some(l) => l.vlan != Some((seg.vlan, parent_link.index)),
                None => true,
            };
            if recreate {
                if existing.is_some() {
                    p.actions.push(Action::DeleteLink { name: name.clone() });
                }
                p.actions.push(Action::CreateVlan {
                    name: name.clone(),
                    vlan: seg.vlan,
                    parent,
                });
            }
            let have: BTreeSet<IpNet> = match (existing, recreate) {
                (Some(l), false) => k
                    .addresses
                    .iter()
                    .filter(|a| a.index == l.index)
                    .map(|a| a.net)
                    .collect(),
                _ => BTreeSet::new(),
            };
            let want: BTreeSet<IpNet> = gateway_segment_addresses(site).into_iter().collect();
            for a in want.difference(&have) {
                p.actions.push(Action::AddAddress {
                    link: name.clone(),
                    addr: *a,
                });
            }
            for a in have.difference(&want).filter(|a| !is_link_local(&a.addr())) {
                p.actions.push(Action::RemoveAddress {
                    link: name.clone(),
                    addr: *a,
                });
            }
            if recreate || !existing.is_some_and(|l| l.up) {
                p.actions.push(Action::LinkUp { name });
            }
        }
        SegmentMode::Adopt => p.findings = adopt_findings(site, k),
        SegmentMode::Routed => {}
    }
    Ok(p)
}

/// Adopt mode: how the interface differs from the site file (never changed by bgplb).
pub fn adopt_findings(site: &Site, k: &KernelState) -> Vec<Finding> {
    let name = site.segment.interface.clone().unwrap_or_default();
    let Some(link) = k.link(&name) else {
        return vec![Finding {
            ok: false,
            what: format!("interface {name} does not exist"),
        }];
    };
    let mut f = vec![Finding {
        ok: link.up,
        what: format!(
            "interface {name} is {}",
            if link.up { "up" } else { "DOWN" }
        ),
    }];
    let have: BTreeSet<IpNet> = k
        .addresses
        .iter()
        .filter(|a| a.index == link.index && !is_link_local(&a.net.addr()))
        .map(|a| a.net)
        .collect();
    let want: BTreeSet<IpNet> = gateway_segment_addresses(site).into_iter().collect();
    for a in want.difference(&have) {
        f.push(Finding {
            ok: false,
            what: format!("{name} lacks the address {a} (from segment.gateway_addresses)"),
        });
    }
    for a in have.difference(&want) {
        f.push(Finding {
            ok: false,
            what: format!("{name} carries {a}, which the site file does not list"),
        });
    }
    if want.is_subset(&have) && !want.is_empty() {
        f.push(Finding {
            ok: true,
            what: format!("{name} carries the expected addresses"),
        });
    }
    f
}

/// Everything bgplb created, removed (`segment teardown`).
pub fn teardown(k: &KernelState) -> SegmentPlan {
    let mut p = SegmentPlan::default();
    for r in k.routes.iter().filter(|r| r.protocol == ROUTE_PROTOCOL) {
        p.actions.push(Action::RemoveRoute {
            dst: r.dst,
            table: r.table,
            kind: r.kind,
        });
    }
    for l in k
        .links
        .iter()
        .filter(|l| l.alias.as_deref() == Some(LINK_ALIAS))
    {
        p.actions.push(Action::DeleteLink {
            name: l.name.clone(),
        });
    }
    p
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn mode_name(m: SegmentMode) -> &'static str {
    match m {
        SegmentMode::Routed => "routed",
        SegmentMode::Vlan => "vlan",
        SegmentMode::Adopt => "adopt",
    }
}

#[cfg(test)]
mod tests;
