//! A typed model of the part of FRR's configuration bgplb writes.
//!
//! The model holds only what bgplb renders; [`crate::render`] turns it into FRR syntax. Collections
//! are kept sorted by the builder (the desired-state function), and the renderer sorts again where
//! order is not semantic, so equal models always render to equal bytes.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Address family of a session, prefix-list or route-map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub fn of_net(net: &IpNet) -> Family {
        match net {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }

    /// Prefix length of a host route in this family (32 or 128).
    pub fn host_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// FRR's name of the unicast address family (`ipv4 unicast`).
    pub fn afi_safi(self) -> &'static str {
        match self {
            Family::V4 => "ipv4 unicast",
            Family::V6 => "ipv6 unicast",
        }
    }

    /// FRR's keyword for prefix-lists and `match ... address` (`ip` / `ipv6`).
    pub fn ip_keyword(self) -> &'static str {
        match self {
            Family::V4 => "ip",
            Family::V6 => "ipv6",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        })
    }
}

/// Permit or deny, in prefix-lists, community-lists and route-maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Permit,
    Deny,
}

impl Action {
    pub fn keyword(self) -> &'static str {
        match self {
            Action::Permit => "permit",
            Action::Deny => "deny",
        }
    }
}

/// Everything bgplb configures in one FRR instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub prefix_lists: Vec<PrefixList>,
    pub community_lists: Vec<CommunityList>,
    pub route_maps: Vec<RouteMap>,
    pub bgp: RouterBgp,
}

/// `ip prefix-list NAME ...` / `ipv6 prefix-list NAME ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixList {
    pub name: String,
    pub family: Family,
    pub entries: Vec<PrefixListEntry>,
}

/// One `seq N permit|deny PREFIX [ge G] [le L]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixListEntry {
    pub seq: u32,
    pub action: Action,
    /// `None` renders as `any`.
    pub prefix: Option<IpNet>,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

/// `bgp community-list standard NAME seq N permit COMMUNITY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityList {
    pub name: String,
    pub entries: Vec<CommunityListEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommunityListEntry {
    pub seq: u32,
    pub action: Action,
    /// A standard community, `ASN:VALUE`.
    pub community: String,
}

/// All entries of one route-map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteMap {
    pub name: String,
    pub entries: Vec<RouteMapEntry>,
    /// `no route-map NAME optimization` (an FRR that has the line: see
    /// [`crate::version::Capability::RouteMapOptimizationOff`]). FRR 8.x indexes route-map entries by the prefixes of the
    /// prefix-lists they match, and that index loses a prefix when an entry with the same prefix
    /// is removed and re-added under another sequence number (seen with FRR 8.4 when a pool
    /// change renumbers the list: the VIP was refused although the list permitted it). bgplb's
    /// route-maps have one entry, so the index buys nothing.
    pub optimization_disabled: bool,
}

/// `route-map NAME permit|deny SEQ` with its match and set clauses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteMapEntry {
    pub action: Action,
    pub seq: u32,
    pub matches: Vec<Match>,
    pub sets: Vec<Set>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Match {
    /// `match ip|ipv6 address prefix-list NAME`
    PrefixList { family: Family, name: String },
    /// `match community NAME`
    Community(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Set {
    /// `set community COMMUNITY additive`
    CommunityAdditive(String),
    /// `set local-preference N`
    LocalPreference(u32),
}

/// `router bgp ASN` in the default VRF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterBgp {
    pub asn: u32,
    /// `bgp router-id`; `None` leaves FRR's (or the operator's) router-id alone.
    pub router_id: Option<Ipv4Addr>,
    pub graceful_restart: Option<GracefulRestart>,
    pub peer_groups: Vec<PeerGroup>,
    pub neighbors: Vec<Neighbor>,
    /// `maximum-paths` per address family (`None`: FRR's default).
    pub maximum_paths_v4: Option<u16>,
    pub maximum_paths_v6: Option<u16>,
}

/// `bgp graceful-restart` and its timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GracefulRestart {
    pub restart_time: u32,
    pub stalepath_time: u32,
    /// `no bgp graceful-restart notification` when `Some(false)`: the N-bit (RFC 8538) is not
    /// negotiated, so a hold-timer expiry is an ordinary session loss (routes flushed) while a
    /// speaker that restarts still gets graceful restart. FRR 8.3 and later negotiate it by
    /// default; `None` for an FRR without the line (before 8.3 there is no N-bit to negotiate).
    pub notification: Option<bool>,
}

impl GracefulRestart {
    /// FRR's built-in values; FRR does not print these, so neither do we.
    pub const FRR_DEFAULT_RESTART_TIME: u32 = 120;
    pub const FRR_DEFAULT_STALEPATH_TIME: u32 = 360;
}

/// A peer-group: every policy and timer of a cluster's sessions of one family lives here, so a
/// neighbour is two lines (`peer-group`, `description`) and adding one touches nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerGroup {
    pub name: String,
    pub family: Family,
    pub remote_as: u32,
    pub password: Option<String>,
    pub keepalive: u16,
    pub hold: u16,
    pub connect_retry: u16,
    pub ebgp_multihop: Option<u8>,
    pub route_map_in: String,
    pub route_map_out: String,
    /// `soft-reconfiguration inbound`: FRR keeps what the peer sent before policy, so status can
    /// show received vs accepted and which routes were refused.
    pub soft_reconfiguration: bool,
    pub maximum_prefix: Option<MaximumPrefix>,
}

/// `neighbor X maximum-prefix LIMIT [restart MINUTES] [force]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaximumPrefix {
    pub limit: u32,
    /// Minutes after which FRR re-establishes a session it tore down; `None` keeps it down.
    pub restart_minutes: Option<u16>,
    /// Count every received prefix, refused ones included (needs soft-reconfiguration). Broken
    /// before FRR 10.5 (it counts other peers' refused routes), so bgplb does not render it.
    pub force: bool,
}

/// One BGP session: a node address in a peer-group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    pub address: IpAddr,
    pub peer_group: String,
    /// Rendered as `description`; restricted to `[A-Za-z0-9._-]` by the builder.
    pub description: Option<String>,
    /// `neighbor X shutdown`: session administratively down, routes flushed.
    pub shutdown: bool,
}
