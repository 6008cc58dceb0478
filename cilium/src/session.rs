//! What every Cilium BGP session gets, whatever the API: the peers (one per gateway address and
//! address family) and the session settings from the site's BGP policy, checked against Cilium's
//! limits.

use std::net::IpAddr;

use bgplb_site::{Cluster, Site};

use crate::error::RenderError;
use crate::naming;

/// An address family: each gets its own sessions, so an IPv6 route never rides an IPv4 session
/// (it would get an IPv4-mapped next hop and break).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }

    /// Cilium's `afi` value, also used in object names.
    pub fn afi(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }
}

/// One peer of every node: a gateway address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub family: Family,
    pub address: IpAddr,
}

/// Session settings from the site's `[bgp]` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub local_asn: u32,
    pub peer_asn: u32,
    pub keepalive: u32,
    pub hold: u32,
    pub connect_retry: u32,
    pub graceful_restart: bool,
    pub restart_time: u32,
    pub ebgp_multihop: Option<u8>,
    /// The Secret named by `authSecretRef`, when the site has a password.
    pub auth_secret: Option<String>,
    pub community: String,
}

/// The gateway addresses the nodes peer with: those inside the cluster's node subnets; for a
/// family with none there, every gateway address of that family (multihop setups). Sorted by
/// family, then in site order.
pub fn peers(site: &Site, cluster: &Cluster) -> Result<Vec<Peer>, RenderError> {
    let mut peers = Vec::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        let of_family: Vec<IpAddr> = site
            .gateway
            .addresses
            .iter()
            .copied()
            .filter(|a| Family::of(a) == family)
            .collect();
        let on_node_net: Vec<IpAddr> = of_family
            .iter()
            .copied()
            .filter(|a| cluster.node_subnets.iter().any(|n| n.contains(a)))
            .collect();
        let chosen = if on_node_net.is_empty() {
            of_family
        } else {
            on_node_net
        };
        for (i, address) in chosen.into_iter().enumerate() {
            peers.push(Peer {
                name: naming::peer_name(&site.gateway.name, family.afi(), i),
                family,
                address,
            });
        }
    }
    if peers.is_empty() {
        let addresses = site
            .gateway
            .addresses
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(RenderError::NoPeerAddress {
            addresses: if addresses.is_empty() {
                "none configured".into()
            } else {
                addresses
            },
        });
    }
    Ok(peers)
}

/// The session settings, refusing what Cilium's CRDs cannot express.
pub fn session(
    site: &Site,
    cluster: &Cluster,
    password_secret: &str,
) -> Result<Session, RenderError> {
    let b = &site.bgp;
    let unsupported = |key: &str, message: String| RenderError::Unsupported {
        key: key.to_string(),
        message,
    };
    if b.hold < 3 {
        return Err(unsupported(
            "bgp.hold",
            format!(
                "hold time {} cannot be rendered for Cilium, whose holdTimeSeconds is 3-65535 \
                 (0, \"never expire\", is not available): set a hold time of at least 3",
                b.hold
            ),
        ));
    }
    if b.keepalive == 0 || b.keepalive > b.hold {
        return Err(unsupported(
            "bgp.keepalive",
            format!(
                "keepalive {} must be 1-{} (Cilium requires keepAliveTimeSeconds <= holdTimeSeconds)",
                b.keepalive, b.hold
            ),
        ));
    }
    if b.connect_retry == 0 {
        return Err(unsupported(
            "bgp.connect_retry",
            "connect retry 0 cannot be rendered: Cilium's connectRetryTimeSeconds is at least 1"
                .into(),
        ));
    }
    if b.graceful_restart && !(1..=4095).contains(&b.restart_time) {
        return Err(unsupported(
            "bgp.restart_time",
            format!(
                "restart time {} is outside Cilium's restartTimeSeconds range 1-4095",
                b.restart_time
            ),
        ));
    }
    if b.ebgp_multihop == Some(0) {
        return Err(unsupported(
            "bgp.ebgp_multihop",
            "a multihop TTL of 0 cannot be rendered: Cilium's ebgpMultihop is 1-255".into(),
        ));
    }
    if !crate::meta::is_dns_subdomain(password_secret) {
        return Err(RenderError::InvalidName {
            what: "the BGP password Secret name",
            value: password_secret.to_string(),
            why: "a Secret name is a DNS-1123 subdomain (lower-case letters, digits, '-', '.')",
        });
    }
    Ok(Session {
        local_asn: cluster.asn,
        peer_asn: site.gateway.asn,
        keepalive: u32::from(b.keepalive),
        hold: u32::from(b.hold),
        connect_retry: u32::from(b.connect_retry),
        graceful_restart: b.graceful_restart,
        restart_time: b.restart_time,
        ebgp_multihop: b.ebgp_multihop,
        auth_secret: b
            .password_file
            .as_ref()
            .map(|_| password_secret.to_string()),
        community: b.community.clone(),
    })
}
