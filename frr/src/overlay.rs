//! Per-neighbour state bgplb puts on top of a generation without recording a new one.
//!
//! Node liveness changes far more often than the site or the cluster: a node that dies has its
//! sessions shut (`neighbor X shutdown`: the session goes down and its routes, graceful-restart
//! stale ones included, are flushed), a node being drained has its routes de-preferred
//! (`neighbor X route-map BGPLB-<cluster>-DRAIN-<family> in` overrides the peer-group's inbound
//! route-map; FRR re-runs the inbound policy from the soft-reconfiguration table, no reset).
//! Generations hold the configuration without the overlay; the overlay is applied on top of
//! whatever generation runs, so a rollback keeps dead nodes shut and a flap records no
//! generation.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::naming;
use crate::owned::Owned;
use crate::plan::{plan, Plan, PlanError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    /// Neighbours whose sessions are shut down.
    pub shutdown: BTreeSet<IpAddr>,
    /// Neighbours whose routes are de-preferred.
    pub drained: BTreeSet<IpAddr>,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.shutdown.is_empty() && self.drained.is_empty()
    }

    /// Adds the overlay's lines to `owned` for every neighbour of ours it names; neighbours the
    /// configuration does not have are ignored.
    pub fn apply(&self, owned: &mut Owned) {
        let neighbors: Vec<(String, String)> = owned
            .neighbors
            .iter()
            .map(|(n, g)| (n.clone(), g.clone()))
            .collect();
        for (name, group) in neighbors {
            let Ok(address) = name.parse::<IpAddr>() else {
                continue;
            };
            if self.shutdown.contains(&address) {
                push_once(&mut owned.bgp, format!("neighbor {name} shutdown"));
            }
            if self.drained.contains(&address) {
                if let Some((cluster, family)) = naming::parse_peer_group(&group) {
                    let lines = owned.address_families.entry(family).or_default();
                    push_once(
                        lines,
                        format!(
                            "neighbor {name} route-map {} in",
                            naming::route_map_drain(cluster, family)
                        ),
                    );
                }
            }
        }
    }

    /// The configuration text `text` with this overlay, as owned lines.
    pub fn owned(&self, text: &str) -> Owned {
        let mut owned = Owned::from_text(text);
        self.apply(&mut owned);
        owned
    }

    /// The changes that take FRR from `base` with `from` on top to `base` with `self` on top:
    /// only `neighbor ... shutdown` and drain route-map lines.
    pub fn changes_from(&self, from: &Overlay, base: &str) -> Result<Plan, PlanError> {
        plan(&self.owned(base), &from.owned(base))
    }
}

fn push_once(lines: &mut Vec<String>, line: String) {
    if !lines.contains(&line) {
        lines.push(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Family;

    const BASE: &str = "\
router bgp 64512
 neighbor BGPLB-home-V4 peer-group
 neighbor BGPLB-home-V6 peer-group
 neighbor 172.29.51.11 peer-group BGPLB-home-V4
 neighbor 172.29.51.12 peer-group BGPLB-home-V4
 neighbor fd47:25e1:2f96:51::11 peer-group BGPLB-home-V6
 !
 address-family ipv4 unicast
  neighbor BGPLB-home-V4 activate
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor BGPLB-home-V6 activate
 exit-address-family
exit
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn shuts_and_drains_only_our_neighbours() {
        let overlay = Overlay {
            shutdown: [ip("172.29.51.11"), ip("192.0.2.1")].into(),
            drained: [ip("fd47:25e1:2f96:51::11")].into(),
        };
        let owned = overlay.owned(BASE);
        assert!(owned
            .bgp
            .contains(&"neighbor 172.29.51.11 shutdown".to_string()));
        assert!(!owned.bgp.iter().any(|l| l.contains("192.0.2.1")));
        assert_eq!(
            owned.address_families[&Family::V6],
            [
                "neighbor BGPLB-home-V6 activate",
                "neighbor fd47:25e1:2f96:51::11 route-map BGPLB-home-DRAIN-V6 in"
            ]
        );
    }

    #[test]
    fn the_fast_path_script_touches_only_the_overlay() {
        let before = Overlay::default();
        let after = Overlay {
            shutdown: [ip("172.29.51.12")].into(),
            drained: [ip("172.29.51.11")].into(),
        };
        let script = after.changes_from(&before, BASE).unwrap().script();
        assert_eq!(
            script,
            "router bgp 64512\n neighbor 172.29.51.12 shutdown\n address-family ipv4 unicast\n  neighbor 172.29.51.11 route-map BGPLB-home-DRAIN-V4 in\n exit-address-family\nexit\n"
        );
        let back = before.changes_from(&after, BASE).unwrap().script();
        assert_eq!(
            back,
            "router bgp 64512\n no neighbor 172.29.51.12 shutdown\n address-family ipv4 unicast\n  no neighbor 172.29.51.11 route-map BGPLB-home-DRAIN-V4 in\n exit-address-family\nexit\n"
        );
    }
}
