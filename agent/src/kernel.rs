//! The only code that talks to the kernel: rtnetlink (links, addresses, routes, neighbours),
//! reduced to [`KernelState`], and the executor of [`segment::Action`]s.
//!
//! Notes from probing rtnetlink 0.24 / netlink-packet-route 0.34 on real kernels: a dump on a
//! plain connection ignores the table asked for (we filter ourselves); tables above 255 carry
//! their id in RTA_TABLE; `RouteMessageBuilder` defaults to protocol static and type unicast, so
//! every message we build sets both; a missing link is an error (ENODEV), not an empty answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{
    InfoData, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use netlink_packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVlan, RouteMessageBuilder, RouteNextHopBuilder};

use crate::checks::ProbeResult;
use crate::kstate::{Address, KernelState, Link, Neighbour, Route, RouteKind};
use crate::segment::{Action, LINK_ALIAS, MAIN_TABLE, ROUTE_PROTOCOL};

/// Private table for the ECMP probe (removed right after).
const PROBE_TABLE: u32 = 46_769;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open a netlink socket: {0}")]
    Connect(std::io::Error),
    #[error("netlink {what} failed: {message}")]
    Request {
        what: String,
        errno: i32,
        message: String,
    },
    #[error("{0}")]
    Refused(String),
}

fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> KernelError {
    let what = what.into();
    move |e| {
        let (errno, message) = match &e {
            rtnetlink::Error::NetlinkError(m) => (-m.raw_code(), m.to_io().to_string()),
            other => (0, other.to_string()),
        };
        KernelError::Request {
            what,
            errno,
            message,
        }
    }
}

/// A netlink connection (its task runs on the current tokio runtime).
#[derive(Clone)]
pub struct Kernel {
    handle: Handle,
}

impl Kernel {
    pub fn connect() -> Result<Kernel, KernelError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(KernelError::Connect)?;
        tokio::spawn(conn);
        Ok(Kernel { handle })
    }

    /// Everything the segment and the checks look at.
    pub async fn read(&self) -> Result<KernelState, KernelError> {
        let mut state = KernelState::default();
        let mut links = self.handle.link().get().execute();
        while let Some(m) = links.try_next().await.map_err(request("link dump"))? {
            state.links.push(link(&m));
        }
        let mut addrs = self.handle.address().get().execute();
        while let Some(a) = addrs.try_next().await.map_err(request("address dump"))? {
            let ip = a.attributes.iter().find_map(|at| match at {
                AddressAttribute::Local(ip) => Some(*ip),
                _ => None,
            });
            let ip = ip.or_else(|| {
                a.attributes.iter().find_map(|at| match at {
                    AddressAttribute::Address(ip) => Some(*ip),
                    _ => None,
                })
            });
            if let Some(ip) = ip {
                if let Ok(net) = IpNet::new(ip, a.header.prefix_len) {
                    state.addresses.push(Address {
                        index: a.header.index,
                        net,
                    });
                }
            }
        }
        for family in [false, true] {
            let query = if family {
                RouteMessageBuilder::<Ipv6Addr>::new()
                    .protocol(RouteProtocol::Unspec)
                    .kind(RouteType::Unspec)
                    .build()
            } else {
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .protocol(RouteProtocol::Unspec)
                    .kind(RouteType::Unspec)
                    .build()
            };
            let mut routes = self.handle.route().get(query).execute();
            while let Some(r) = routes.try_next().await.map_err(request("route dump"))? {
                if let Some(route) = route(&r) {
                    state.routes.push(route);
                }
            }
        }
        let mut neigh = self.handle.neighbours().get().execute();
        while let Some(n) = neigh.try_next().await.map_err(request("neighbour dump"))? {
            if !matches!(n.header.family, AddressFamily::Inet | AddressFamily::Inet6) {
                continue;
            }
            let ip = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                    Some(IpAddr::V4(*v4))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                    Some(IpAddr::V6(*v6))
                }
                _ => None,
            });
            let mac = n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(b) if !b.is_empty() => Some(
                    b.iter()
                        .map(|x| format!("{x:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                ),
                _ => None,
            });
            if let Some(ip) = ip {
                state.neighbours.push(Neighbour {
                    index: n.header.ifindex,
                    ip,
                    mac,
                    state: format!("{:?}", n.header.state).to_uppercase(),
                });
            }
        }
        Ok(state)
    }

    async fn link_index(&self, name: &str) -> Result<u32, KernelError> {
        let m = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await
            .map_err(request(format!("link {name}")))?
            .ok_or_else(|| KernelError::Refused(format!("link {name} does not exist")))?;
        Ok(m.header.index)
    }

    /// Carries out one action. Before deleting a link it checks again that it is ours.
    pub async fn execute(&self, action: &Action) -> Result<(), KernelError> {
        let what = action.to_string();
        match action {
            Action::CreateVlan { name, vlan, parent } => {
                let parent_index = self.link_index(parent).await?;
                let mut msg = LinkVlan::new(name, parent_index, *vlan).build();
                msg.attributes
                    .push(LinkAttribute::IfAlias(LINK_ALIAS.to_string()));
                self.handle
                    .link()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(request(&what))?;
                // Mark it even if the kernel ignored the alias in the creation message.
                let index = self.link_index(name).await?;
                self.handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).alias(LINK_ALIAS).build())
                    .execute()
                    .await
                    .map_err(request(&what))?;
            }
            Action::LinkUp { name } => {
                let index = self.link_index(name).await?;
                self.handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).up().build())
                    .execute()
                    .await
                    .map_err(request(&what))?;
            }
            Action::AddAddress { link, addr } => {
                let index = self.link_index(link).await?;
                let mut req = self
                    .handle
                    .address()
                    .add(index, addr.addr(), addr.prefix_len());
                if addr.addr().is_ipv6() {
                    req.message_mut()
                        .attributes
                        .push(AddressAttribute::Flags(AddressFlags::Nodad));
                }
                req.execute().await.map_err(request(&what))?;
            }
            Action::RemoveAddress { link, addr } => {
                let index = self.link_index(link).await?;
                let mut addrs = self
                    .handle
                    .address()
                    .get()
                    .set_link_index_filter(index)
                    .execute();
                while let Some(a) = addrs.try_next().await.map_err(request(&what))? {
                    let matches = a.header.prefix_len == addr.prefix_len()
                        && a.attributes.iter().any(|at| matches!(at, AddressAttribute::Address(ip) | AddressAttribute::Local(ip) if *ip == addr.addr()));
                    if matches {
                        self.handle
                            .address()
                            .del(a)
                            .execute()
                            .await
                            .map_err(request(&what))?;
                    }
                }
            }
            Action::AddUnreachable { dst } => {
                let msg = route_message(*dst, MAIN_TABLE, RouteType::Unreachable);
                self.handle
                    .route()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(request(&what))?;
            }
            Action::RemoveRoute { dst, table, kind } => {
                let msg = route_message(*dst, *table, route_type(*kind));
                self.handle
                    .route()
                    .del(msg)
                    .execute()
                    .await
                    .map_err(request(&what))?;
            }
            Action::DeleteLink { name } => {
                let m = self
                    .handle
                    .link()
                    .get()
                    .match_name(name.clone())
                    .execute()
                    .try_next()
                    .await
                    .map_err(request(&what))?;
                let Some(m) = m else { return Ok(()) };
                if link(&m).alias.as_deref() != Some(LINK_ALIAS) {
                    return Err(KernelError::Refused(format!(
                        "refusing to delete {name}: bgplb did not create it"
                    )));
                }
                self.handle
                    .link()
                    .del(m.header.index)
                    .execute()
                    .await
                    .map_err(request(&what))?;
            }
        }
        Ok(())
    }

    /// Tries a route with two next hops in a private table and removes it: the only proof that
    /// the kernel does multipath. The next hops are on-link gateways on an existing interface.
    pub async fn probe_ecmp(&self) -> ProbeResult {
        let state = match self.read().await {
            Ok(s) => s,
            Err(e) => {
                return ProbeResult::Refused {
                    errno: 0,
                    message: e.to_string(),
                }
            }
        };
        let Some(dev) = state
            .links
            .iter()
            .find(|l| l.up && l.name != "lo")
            .or_else(|| state.link("lo"))
        else {
            return ProbeResult::Refused {
                errno: 0,
                message: "no interface to probe on".into(),
            };
        };
        let nh = |gw: Ipv4Addr| {
            RouteNextHopBuilder::new_ipv4()
                .interface(dev.index)
                .via(IpAddr::V4(gw))
                .map(|b| b.onlink().build())
        };
        let (Ok(a), Ok(b)) = (
            nh(Ipv4Addr::new(192, 0, 2, 1)),
            nh(Ipv4Addr::new(192, 0, 2, 2)),
        ) else {
            return ProbeResult::Refused {
                errno: 0,
                message: "cannot build the probe".into(),
            };
        };
        let msg = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(Ipv4Addr::new(192, 0, 2, 255), 32)
            .table_id(PROBE_TABLE)
            .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
            .kind(RouteType::Unicast)
            .multipath(vec![a, b])
            .build();
        match self.handle.route().add(msg.clone()).execute().await {
            Ok(()) => {
                let mut del = msg;
                del.attributes
                    .retain(|a| !matches!(a, RouteAttribute::MultiPath(_)));
                let _ = self.handle.route().del(del).execute().await;
                ProbeResult::Accepted
            }
            Err(rtnetlink::Error::NetlinkError(m)) => ProbeResult::Refused {
                errno: -m.raw_code(),
                message: m.to_io().to_string(),
            },
            Err(e) => ProbeResult::Refused {
                errno: 0,
                message: e.to_string(),
            },
        }
    }

    /// A stream of kernel change notifications (links, addresses, routes, neighbours); each item
    /// only says "something changed". Route and neighbour events count only when they touch
    /// `interest` (the segment, the node subnets, the pools): a LAN's ARP traffic and the WAN's
    /// routes do not start a pass.
    pub fn events(interest: Vec<IpNet>) -> Result<tokio::sync::mpsc::Receiver<()>, KernelError> {
        use futures::StreamExt;
        use rtnetlink::MulticastGroup;
        let (conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
            MulticastGroup::Ipv4Route,
            MulticastGroup::Ipv6Route,
            MulticastGroup::Neigh,
        ])
        .map_err(KernelError::Connect)?;
        tokio::spawn(conn);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            while let Some((msg, _)) = messages.next().await {
                tracing::trace!(?msg, "netlink event");
                if !matters(&msg, &interest) {
                    continue;
                }
                // A full channel already holds a pending "changed": coalesce.
                if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(()) {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

/// Whether a netlink event can change what the agent checks or owns.
fn matters(
    msg: &rtnetlink::packet_core::NetlinkMessage<netlink_packet_route::RouteNetlinkMessage>,
    interest: &[IpNet],
) -> bool {
    use netlink_packet_route::RouteNetlinkMessage as M;
    use rtnetlink::packet_core::NetlinkPayload;
    let NetlinkPayload::InnerMessage(m) = &msg.payload else {
        return false;
    };
    let touches = |net: IpNet| interest.iter().any(|i| i.contains(&net) || net.contains(i));
    match m {
        M::NewNeighbour(n) | M::DelNeighbour(n) => n.attributes.iter().any(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                touches(IpNet::from(IpAddr::V4(*v4)))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                touches(IpNet::from(IpAddr::V6(*v6)))
            }
            _ => false,
        }),
        M::NewRoute(r) | M::DelRoute(r) => route(r).is_some_and(|r| touches(r.dst)),
        _ => true,
    }
}

fn route_type(kind: RouteKind) -> RouteType {
    match kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Blackhole => RouteType::BlackHole,
        RouteKind::Prohibit => RouteType::Prohibit,
        RouteKind::Local => RouteType::Local,
        RouteKind::Other => RouteType::Unspec,
    }
}

fn route_message(dst: IpNet, table: u32, kind: RouteType) -> RouteMessage {
    match dst {
        IpNet::V4(n) => RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(n.network(), n.prefix_len())
            .table_id(table)
            .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
            .kind(kind)
            .build(),
        IpNet::V6(n) => RouteMessageBuilder::<Ipv6Addr>::new()
            .destination_prefix(n.network(), n.prefix_len())
            .table_id(table)
            .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
            .kind(kind)
            .build(),
    }
}

fn link(m: &LinkMessage) -> Link {
    let mut l = Link {
        index: m.header.index,
        name: String::new(),
        alias: None,
        up: m.header.flags.contains(LinkFlags::Up),
        vlan: None,
        kind: None,
    };
    let mut parent = None;
    let mut vlan_id = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => l.name = n.clone(),
            LinkAttribute::IfAlias(s) if !s.is_empty() => l.alias = Some(s.clone()),
            LinkAttribute::Link(p) => parent = Some(*p),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => l.kind = Some(format!("{k:?}").to_lowercase()),
                        LinkInfo::Data(InfoData::Vlan(v)) => {
                            for x in v {
                                if let InfoVlan::Id(id) = x {
                                    vlan_id = Some(*id);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let (Some(id), Some(p)) = (vlan_id, parent) {
        l.vlan = Some((id, p));
    }
    l
}

fn route(r: &RouteMessage) -> Option<Route> {
    let table = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table));
    let plen = r.header.destination_prefix_length;
    let dst = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(v4)) => {
            IpNet::new(IpAddr::V4(*v4), plen).ok()
        }
        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => {
            IpNet::new(IpAddr::V6(*v6), plen).ok()
        }
        _ => None,
    });
    let dst = match (dst, r.header.address_family) {
        (Some(d), _) => d,
        (None, AddressFamily::Inet) => IpNet::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0).ok()?,
        (None, AddressFamily::Inet6) => IpNet::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0).ok()?,
        _ => return None,
    };
    let gateway = |a: &RouteAttribute| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Gateway(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    };
    let mut nexthops: Vec<IpAddr> = r.attributes.iter().filter_map(gateway).collect();
    for a in &r.attributes {
        if let RouteAttribute::MultiPath(nhs) = a {
            for nh in nhs {
                nexthops.extend(nh.attributes.iter().filter_map(gateway));
            }
        }
    }
    let metric = r
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Priority(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(0);
    let protocol = match r.header.protocol {
        RouteProtocol::Kernel => 2,
        RouteProtocol::Boot => 3,
        RouteProtocol::Static => 4,
        RouteProtocol::Zebra => 11,
        RouteProtocol::Dhcp => 16,
        RouteProtocol::Bgp => 186,
        RouteProtocol::Ospf => 188,
        RouteProtocol::Other(n) => n,
        other => u8::from(other),
    };
    let kind = match r.header.kind {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Prohibit => RouteKind::Prohibit,
        RouteType::Local => RouteKind::Local,
        _ => RouteKind::Other,
    };
    Some(Route {
        table,
        dst,
        protocol,
        kind,
        metric,
        nexthops,
    })
}
