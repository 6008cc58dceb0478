//! The kernel's state reduced to bgplb's own serializable types. [`crate::kernel`] fills them
//! from rtnetlink; everything that judges them (segment plan, FIB check, conflict scan) is pure.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelState {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub neighbours: Vec<Neighbour>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub alias: Option<String>,
    /// Administratively up.
    pub up: bool,
    /// `(VLAN id, parent index)` for a VLAN link.
    pub vlan: Option<(u16, u32)>,
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub index: u32,
    /// The address with its prefix length.
    pub net: IpNet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Unicast,
    Unreachable,
    Blackhole,
    Prohibit,
    Local,
    Other,
}

impl fmt::Display for RouteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RouteKind::Unicast => "unicast",
            RouteKind::Unreachable => "unreachable",
            RouteKind::Blackhole => "blackhole",
            RouteKind::Prohibit => "prohibit",
            RouteKind::Local => "local",
            RouteKind::Other => "other",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub table: u32,
    pub dst: IpNet,
    pub protocol: u8,
    pub kind: RouteKind,
    pub metric: u32,
    /// Gateways of the route (one, or several for a multipath route).
    pub nexthops: Vec<IpAddr>,
}

/// Route protocol numbers with a name (iproute2's rt_protos).
pub fn protocol_name(p: u8) -> String {
    match p {
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        11 => "zebra".into(),
        16 => "dhcp".into(),
        186 => "bgp".into(),
        188 => "ospf".into(),
        201 => "bgplb".into(),
        n => n.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbour {
    pub index: u32,
    pub ip: IpAddr,
    /// Link-layer address, when the entry has one.
    pub mac: Option<String>,
    /// REACHABLE, STALE, DELAY, PROBE, PERMANENT, NOARP, FAILED, INCOMPLETE.
    pub state: String,
}

impl KernelState {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    pub fn link_name(&self, index: u32) -> String {
        self.link_by_index(index)
            .map_or_else(|| format!("if{index}"), |l| l.name.clone())
    }
}
