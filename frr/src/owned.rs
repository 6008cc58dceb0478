//! The part of an FRR configuration that bgplb owns.
//!
//! bgplb shares FRR with the operator: an uplink neighbour, static routes or OSPF must survive every
//! apply. A line is ours when
//!
//! * it defines or uses an object named `BGPLB-…` (prefix-list, community-list, route-map,
//!   peer-group), or configures a neighbour that is a member of one of our peer-groups;
//! * it is one of the few global `router bgp` settings the site file decides: `bgp router-id`
//!   (only when the site sets one), graceful restart with its timers and notification setting,
//!   `no bgp ebgp-requires-policy` (owned so that it is removed while bgplb is FRR's only BGP user:
//!   the policy requirement must stay on), and `maximum-paths` in the unicast address families.
//!   While the operator has peers of their own, the plan changes none of the globals that reset
//!   sessions and refuses instead (see [`crate::plan`]).
//!
//! Everything else is the operator's and is never touched: `no bgp default ipv4-unicast` included.
//! Its effect on our peer-groups is normalised instead: the IPv4 unicast activation of each of our
//! peer-groups is always present as a line (`neighbor G activate` or `no neighbor G activate`),
//! read from FRR's default when FRR prints none, so the same state compares equal whichever way
//! the default is set.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Family;
use crate::naming;
use crate::text::{self, Stanza};

/// The owned lines of one configuration, grouped by context, in the order they appeared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    /// ASN of the default-VRF `router bgp` these lines belong to.
    pub asn: Option<u32>,
    /// ASNs of other default-VRF `router bgp` instances found (there can be only one in FRR).
    pub other_router_bgp: Vec<u32>,
    /// Owned top-level single lines: prefix-list and community-list entries, route-map options.
    pub top: Vec<String>,
    /// Owned route-map entries: `route-map NAME ACTION SEQ` → its clauses.
    pub route_maps: Vec<(String, Vec<String>)>,
    /// Owned lines directly inside `router bgp`.
    pub bgp: Vec<String>,
    /// Owned lines inside `address-family ipv4|ipv6 unicast`.
    pub address_families: BTreeMap<Family, Vec<String>>,
    /// Our peer-groups.
    pub peer_groups: BTreeSet<String>,
    /// Our neighbours (members of our peer-groups) → their peer-group.
    pub neighbors: BTreeMap<String, String>,
    /// Neighbours and peer-groups configured by someone else, by name.
    pub foreign_neighbors: BTreeSet<String>,
    /// Lines of `router bgp` that are the operator's but that bgplb must know about (`no bgp
    /// default ipv4-unicast`, or `no bgp ebgp-requires-policy` while others have peers).
    pub operator_globals: Vec<String>,
}

impl Owned {
    /// Extracts the owned part of configuration text (rendered or `show running-config`).
    pub fn from_text(text: &str) -> Owned {
        Owned::from_stanzas(&text::parse(text))
    }

    pub fn from_stanzas(stanzas: &[Stanza]) -> Owned {
        let mut owned = Owned::default();
        // FRR merges a context entered twice (`router bgp 64512` or a route-map entry again
        // further down): so does this, the bodies of one `router bgp` read as one.
        let mut bgp_body: Vec<Stanza> = Vec::new();
        for s in stanzas {
            let words: Vec<&str> = s.line.split_whitespace().collect();
            match words.as_slice() {
                ["ip" | "ipv6", "prefix-list", name, ..]
                | ["bgp", "community-list", _, name, ..]
                | ["no", "route-map", name, "optimization"]
                    if naming::is_ours(name) =>
                {
                    owned.top.push(s.line.clone());
                }
                ["route-map", name, ..] if naming::is_ours(name) => {
                    let clauses = s.children.iter().map(|c| c.line.clone());
                    match owned.route_maps.iter_mut().find(|(h, _)| *h == s.line) {
                        Some((_, have)) => {
                            for c in clauses {
                                if !have.contains(&c) {
                                    have.push(c);
                                }
                            }
                        }
                        None => owned.route_maps.push((s.line.clone(), clauses.collect())),
                    }
                }
                ["router", "bgp", asn] => match asn.parse::<u32>() {
                    Ok(asn) if owned.asn.is_none() || owned.asn == Some(asn) => {
                        owned.asn = Some(asn);
                        bgp_body.extend(s.children.iter().cloned());
                    }
                    Ok(asn) => {
                        if !owned.other_router_bgp.contains(&asn) {
                            owned.other_router_bgp.push(asn);
                        }
                    }
                    Err(_) => {}
                },
                _ => {}
            }
        }
        if let Some(asn) = owned.asn {
            owned.read_router_bgp(asn, &bgp_body);
        }
        owned
    }

    fn read_router_bgp(&mut self, asn: u32, body: &[Stanza]) {
        self.asn = Some(asn);
        // First pass: who is ours. Peer-groups by name, neighbours by membership.
        let all = body
            .iter()
            .chain(body.iter().flat_map(|s| s.children.iter()));
        for s in all {
            let words: Vec<&str> = s.line.split_whitespace().collect();
            match words.as_slice() {
                ["neighbor", name, "peer-group"] if naming::is_ours(name) => {
                    self.peer_groups.insert(name.to_string());
                }
                ["neighbor", name, "peer-group", group] if naming::is_ours(group) => {
                    self.neighbors.insert(name.to_string(), group.to_string());
                }
                ["neighbor", name, ..] if !naming::is_ours(name) => {
                    self.foreign_neighbors.insert(name.to_string());
                }
                _ => {}
            }
        }
        for name in self.neighbors.keys() {
            self.foreign_neighbors.remove(name);
        }
        // Second pass: the owned lines.
        for s in body {
            if let Some(family) = unicast_family(&s.line) {
                let lines = s
                    .children
                    .iter()
                    .filter(|c| self.owns_af_line(&c.line))
                    .map(|c| c.line.clone())
                    .collect::<Vec<_>>();
                let have = self.address_families.entry(family).or_default();
                for line in lines {
                    if !have.contains(&line) {
                        have.push(line);
                    }
                }
            } else if self.owns_bgp_line(&s.line) {
                self.bgp.push(s.line.clone());
            } else if s.line == NO_DEFAULT_IPV4 {
                self.operator_globals.push(s.line.clone());
            }
        }
        // FRR prints a peer-group's IPv4 unicast activation only where it differs from the
        // default: fill in the implied one.
        let default_on = !self.operator_globals.iter().any(|l| l == NO_DEFAULT_IPV4);
        let v4 = self.address_families.entry(Family::V4).or_default();
        for group in &self.peer_groups {
            let on = format!("neighbor {group} activate");
            let off = format!("no neighbor {group} activate");
            if !v4.contains(&on) && !v4.contains(&off) {
                v4.insert(0, if default_on { on } else { off });
            }
        }
        self.address_families.retain(|_, lines| !lines.is_empty());
    }

    fn owns_neighbor(&self, name: &str) -> bool {
        naming::is_ours(name) || self.neighbors.contains_key(name)
    }

    fn owns_bgp_line(&self, line: &str) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["neighbor", name, ..] => self.owns_neighbor(name),
            ["bgp", "router-id", _]
            | ["bgp", "graceful-restart"]
            | ["no", "bgp", "graceful-restart", "notification"]
            | ["bgp", "graceful-restart", "notification"]
            | ["bgp", "graceful-restart", "restart-time", _]
            | ["bgp", "graceful-restart", "stalepath-time", _]
            | ["no", "bgp", "ebgp-requires-policy"] => true,
            _ => false,
        }
    }

    fn owns_af_line(&self, line: &str) -> bool {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["neighbor", name, ..] | ["no", "neighbor", name, "activate"] => {
                self.owns_neighbor(name)
            }
            ["maximum-paths", n] => n.parse::<u16>().is_ok(),
            _ => false,
        }
    }

    /// Whether nothing at all is owned.
    pub fn is_empty(&self) -> bool {
        self.top.is_empty()
            && self.route_maps.is_empty()
            && self.bgp.is_empty()
            && self.address_families.is_empty()
    }

    /// The line that opens our `router bgp` context.
    pub fn router_bgp_line(&self) -> Option<String> {
        self.asn.map(|asn| format!("router bgp {asn}"))
    }

    /// The owned lines as FRR configuration text (what a new history starts from when the state
    /// database is reset from FRR's running configuration): `from_text` of it gives these lines
    /// back. The operator's lines are not in it.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.top {
            out.push_str(line);
            out.push('\n');
        }
        for (header, clauses) in &self.route_maps {
            out.push_str(header);
            out.push('\n');
            for c in clauses {
                out.push_str(&format!(" {c}\n"));
            }
            out.push_str("exit\n");
        }
        if let Some(router) = self.router_bgp_line() {
            out.push_str(&router);
            out.push('\n');
            for line in &self.bgp {
                out.push_str(&format!(" {line}\n"));
            }
            for (family, lines) in &self.address_families {
                let name = match family {
                    Family::V4 => "ipv4",
                    Family::V6 => "ipv6",
                };
                out.push_str(&format!(" address-family {name} unicast\n"));
                for line in lines {
                    out.push_str(&format!("  {line}\n"));
                }
                out.push_str(" exit-address-family\n");
            }
            out.push_str("exit\n");
        }
        out
    }
}

/// The global that turns FRR's IPv4 unicast activation of new neighbours off.
pub const NO_DEFAULT_IPV4: &str = "no bgp default ipv4-unicast";

/// `address-family ipv4 unicast` → V4, `... ipv6 unicast` → V6, anything else → None.
pub fn unicast_family(line: &str) -> Option<Family> {
    match line {
        "address-family ipv4 unicast" | "address-family ipv4" => Some(Family::V4),
        "address-family ipv6 unicast" | "address-family ipv6" => Some(Family::V6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNNING: &str = "\
frr version 8.4.4
frr defaults traditional
hostname gw
ip route 0.0.0.0/0 192.0.2.1
!
router bgp 64512
 bgp router-id 172.29.51.1
 bgp log-neighbor-changes
 no bgp default ipv4-unicast
 bgp graceful-restart
 neighbor UPLINK peer-group
 neighbor 192.0.2.1 remote-as 65000
 neighbor BGPLB-home-V4 peer-group
 neighbor BGPLB-home-V4 remote-as 64513
 neighbor 172.29.51.11 peer-group BGPLB-home-V4
 neighbor 172.29.51.11 description k8s-1
 !
 address-family ipv4 unicast
  network 10.0.0.0/8
  neighbor 192.0.2.1 activate
  neighbor BGPLB-home-V4 activate
  neighbor BGPLB-home-V4 route-map BGPLB-home-IN-V4 in
  maximum-paths 3
 exit-address-family
exit
!
ip prefix-list BGPLB-home-POOLS-V4 seq 10 permit 172.29.52.100/30 ge 32
ip prefix-list UPLINK-OUT seq 5 permit 10.0.0.0/8
!
route-map BGPLB-home-IN-V4 permit 10
 match ip address prefix-list BGPLB-home-POOLS-V4
exit
!
route-map UPLINK-OUT permit 10
exit
!
end
";

    #[test]
    fn separates_ours_from_the_operators() {
        let o = Owned::from_text(RUNNING);
        assert_eq!(o.asn, Some(64512));
        assert_eq!(
            o.top,
            ["ip prefix-list BGPLB-home-POOLS-V4 seq 10 permit 172.29.52.100/30 ge 32"]
        );
        assert_eq!(o.route_maps.len(), 1);
        assert_eq!(
            o.bgp,
            [
                "bgp router-id 172.29.51.1",
                "bgp graceful-restart",
                "neighbor BGPLB-home-V4 peer-group",
                "neighbor BGPLB-home-V4 remote-as 64513",
                "neighbor 172.29.51.11 peer-group BGPLB-home-V4",
                "neighbor 172.29.51.11 description k8s-1",
            ]
        );
        assert_eq!(
            o.address_families[&Family::V4],
            [
                "neighbor BGPLB-home-V4 activate",
                "neighbor BGPLB-home-V4 route-map BGPLB-home-IN-V4 in",
                "maximum-paths 3"
            ]
        );
        assert_eq!(o.operator_globals, ["no bgp default ipv4-unicast"]);
        assert!(o.foreign_neighbors.contains("192.0.2.1"));
        assert!(o.foreign_neighbors.contains("UPLINK"));
        assert_eq!(o.neighbors["172.29.51.11"], "BGPLB-home-V4");
    }

    #[test]
    fn the_owned_text_reads_back_as_the_same_owned_lines_without_the_operators() {
        let o = Owned::from_text(RUNNING);
        let text = o.to_text();
        assert!(
            !text.contains("UPLINK") && !text.contains("192.0.2.1"),
            "{text}"
        );
        let back = Owned::from_text(&text);
        assert!(back.foreign_neighbors.is_empty());
        assert_eq!(
            Owned {
                foreign_neighbors: Default::default(),
                operator_globals: Vec::new(),
                ..o
            },
            back,
            "{text}"
        );
        assert!(Owned::default().to_text().is_empty());
    }
}
