//! Inputs nobody planned for, as property tests: FRR configuration text of any shape never makes
//! the parser or the planner panic; what bgplb owns reads back the same from its own text; and a
//! plan from a configuration to itself is empty. (That a plan from any running configuration
//! reaches the desired one is checked against the real FRR: tests/tests/plan_prop.rs.)

use bgplb_frr::plan::{plan, Change};
use bgplb_frr::{text, Owned};
use proptest::prelude::*;

/// Lines as FRR prints them, bgplb's and an operator's, at their usual indentation; the
/// generator strings them together in any order, so contexts open and close anywhere.
const LINES: &[&str] = &[
    "frr version 8.4.4",
    "frr defaults traditional",
    "hostname gw",
    "!",
    "end",
    "exit",
    "router bgp 64512",
    "router bgp 65000",
    "router bgp 64512 vrf blue",
    " bgp router-id 172.29.51.1",
    " no bgp default ipv4-unicast",
    " bgp graceful-restart",
    " no bgp graceful-restart notification",
    " bgp graceful-restart restart-time 120",
    " no bgp ebgp-requires-policy",
    " bgp log-neighbor-changes",
    " neighbor BGPLB-home-V4 peer-group",
    " neighbor BGPLB-home-V4 remote-as 64513",
    " neighbor BGPLB-home-V4 timers 3 9",
    " neighbor BGPLB-home-V6 peer-group",
    " neighbor 172.29.51.11 peer-group BGPLB-home-V4",
    " neighbor 172.29.51.11 description k8s-1",
    " neighbor 172.29.51.11 shutdown",
    " neighbor fd47:25e1:2f96:51::11 peer-group BGPLB-home-V6",
    " neighbor 192.0.2.1 remote-as 65000",
    " neighbor UPLINK peer-group",
    " neighbor 192.0.2.1 peer-group UPLINK",
    " !",
    " address-family ipv4 unicast",
    " address-family ipv6 unicast",
    " address-family l2vpn evpn",
    "  neighbor BGPLB-home-V4 activate",
    "  neighbor BGPLB-home-V4 route-map BGPLB-home-IN-V4 in",
    "  neighbor BGPLB-home-V4 route-map BGPLB-home-OUT out",
    "  neighbor BGPLB-home-V4 maximum-prefix 100 restart 1",
    "  neighbor BGPLB-home-V6 activate",
    "  no neighbor BGPLB-home-V6 activate",
    "  neighbor 192.0.2.1 activate",
    "  network 10.0.0.0/8",
    "  maximum-paths 8",
    " exit-address-family",
    "exit-vrf",
    "ip prefix-list BGPLB-home-POOLS-V4 seq 10 permit 172.29.52.100/30 ge 32",
    "ip prefix-list BGPLB-home-POOLS-V4 seq 10 permit 172.29.52.200/29 ge 32",
    "ip prefix-list BGPLB-home-POOLS-V4 seq 20 deny any",
    "ipv6 prefix-list BGPLB-home-POOLS-V6 seq 10 permit fd47:25e1:2f96:52:100::/120 ge 128",
    "ip prefix-list UPLINK-OUT seq 5 permit 10.0.0.0/8",
    "bgp community-list standard BGPLB-home-COMMUNITY seq 5 permit 64512:100",
    "route-map BGPLB-home-IN-V4 permit 10",
    "route-map BGPLB-home-IN-V4 deny 100",
    "route-map BGPLB-home-OUT deny 10",
    "route-map UPLINK-OUT permit 10",
    " match ip address prefix-list BGPLB-home-POOLS-V4",
    " match community BGPLB-home-COMMUNITY",
    " set local-preference 200",
    "no route-map BGPLB-home-IN-V4 optimization",
    "ip route 0.0.0.0/0 192.0.2.1",
];

fn frr_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(LINES), 0..80).prop_map(|l| l.join("\n"))
}

/// The owned lines without what `to_text` leaves out on purpose: the operator's neighbours, their
/// globals and other `router bgp` instances.
fn comparable(o: Owned) -> Owned {
    Owned {
        foreign_neighbors: Default::default(),
        other_router_bgp: Vec::new(),
        operator_globals: Vec::new(),
        ..o
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_at_all_parses_and_plans_without_panicking(s in any::<String>(), t in "[ -~\n]{0,400}") {
        let _ = text::parse(&s);
        let a = Owned::from_text(&s);
        let b = Owned::from_text(&t);
        if let Ok(p) = plan(&a, &b) {
            let _ = p.script();
        }
        if let Ok(p) = plan(&b, &a) {
            let _ = p.script();
        }
    }

    #[test]
    fn frr_shaped_text_reads_back_and_plans_consistently(a in frr_text(), b in frr_text()) {
        let owned = Owned::from_text(&a);
        let again = Owned::from_text(&owned.to_text());
        prop_assert_eq!(comparable(owned.clone()), comparable(again.clone()));
        // From its own text, the same text comes out: a fixed point.
        prop_assert_eq!(again.to_text(), owned.to_text());
        if let Ok(p) = plan(&owned, &owned) {
            prop_assert!(p.is_empty(), "a plan from a configuration to itself: {}", p);
        }
        let running = Owned::from_text(&b);
        if let Ok(p) = plan(&owned, &running) {
            // Nothing of the operator's running configuration is ever removed: every removal is
            // of a line inside one of bgplb's objects, or of a line bgplb owns.
            let operator = |l: &str| {
                ["UPLINK", "192.0.2.1", "10.0.0.0/8", "65000", "log-neighbor-changes", "ip route",
                 "default ipv4-unicast"]
                    .iter()
                    .any(|t| l.contains(t))
            };
            for change in &p.changes {
                let (inside, line) = match change {
                    Change::Remove { path, line } => (path.first().cloned(), line.clone()),
                    Change::RemoveBlock { head } => (None, head.clone()),
                    Change::RemoveNeighbor { name, .. } => (None, format!("neighbor {name}")),
                    _ => continue,
                };
                let in_ours = inside.as_deref().is_some_and(|h| h.starts_with("route-map BGPLB-"));
                prop_assert!(
                    in_ours || !operator(&line),
                    "the plan removes the operator's configuration: {:?}\n{}", change, p.script()
                );
            }
        }
    }
}
