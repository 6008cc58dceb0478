//! The segment plan, mode by mode, on hand-made kernel states.

use super::*;
use crate::kstate::{Address, Link, Route};

fn site(edit: impl FnOnce(&mut Site)) -> Site {
    let mut s = bgplb_site::parse(include_str!("../../../config/site.toml")).unwrap();
    edit(&mut s);
    s
}

fn link(index: u32, name: &str, alias: Option<&str>) -> Link {
    Link {
        index,
        name: name.into(),
        alias: alias.map(String::from),
        up: true,
        vlan: None,
        kind: None,
    }
}

fn ours(dst: &str) -> Route {
    Route {
        table: MAIN_TABLE,
        dst: dst.parse().unwrap(),
        protocol: ROUTE_PROTOCOL,
        kind: RouteKind::Unreachable,
        metric: 0,
        nexthops: vec![],
    }
}

fn base() -> KernelState {
    KernelState {
        links: vec![link(1, "lo", None), link(2, "br0", None)],
        addresses: vec![Address {
            index: 2,
            net: "172.29.51.1/24".parse().unwrap(),
        }],
        ..Default::default()
    }
}

#[test]
fn routed_mode_adds_one_unreachable_route_per_prefix_then_nothing() {
    let s = site(|_| {});
    let p = plan(&s, &base()).unwrap();
    assert_eq!(
        p.actions,
        [
            Action::AddUnreachable {
                dst: "172.29.52.0/24".parse().unwrap()
            },
            Action::AddUnreachable {
                dst: "fd47:25e1:2f96:52::/64".parse().unwrap()
            },
        ]
    );
    let mut k = base();
    k.routes = vec![ours("172.29.52.0/24"), ours("fd47:25e1:2f96:52::/64")];
    assert!(plan(&s, &k).unwrap().actions.is_empty());
}

#[test]
fn only_our_objects_are_ever_removed() {
    let s = site(|_| {});
    let mut k = base();
    k.routes = vec![
        ours("172.29.52.0/24"),
        ours("fd47:25e1:2f96:52::/64"),
        ours("10.52.0.0/24"), // stale, ours
        Route {
            protocol: 4,
            ..ours("10.53.0.0/24")
        }, // someone else's
    ];
    k.links.push(link(9, "br0.52", Some(LINK_ALIAS))); // stale, ours
    k.links.push(link(10, "br0.53", Some("made by hand")));
    let p = plan(&s, &k).unwrap();
    assert_eq!(
        p.actions,
        [
            Action::RemoveRoute {
                dst: "10.52.0.0/24".parse().unwrap(),
                table: MAIN_TABLE,
                kind: RouteKind::Unreachable
            },
            Action::DeleteLink {
                name: "br0.52".into()
            },
        ]
    );
    let t = teardown(&k);
    assert_eq!(
        t.actions.len(),
        4,
        "three routes and one link of ours: {t:?}"
    );
    assert!(!t
        .actions
        .iter()
        .any(|a| matches!(a, Action::DeleteLink { name } if name == "br0.53")));
}

#[test]
fn routed_mode_refuses_a_segment_already_on_an_interface() {
    let s = site(|_| {});
    let mut k = base();
    k.links.push(link(5, "br52", None));
    k.addresses.push(Address {
        index: 5,
        net: "172.29.52.1/24".parse().unwrap(),
    });
    let err = plan(&s, &k).unwrap_err();
    assert!(
        err.to_string()
            .contains("overlaps the address 172.29.52.1/24 already on br52"),
        "{err}"
    );
}

#[test]
fn vlan_mode_creates_addresses_and_brings_it_up() {
    let s = site(|s| {
        s.segment.mode = SegmentMode::Vlan;
        s.segment.parent = Some("br0".into());
        s.segment.gateway_addresses = vec![
            "172.29.52.1".parse().unwrap(),
            "fd47:25e1:2f96:52::1".parse().unwrap(),
        ];
    });
    let p = plan(&s, &base()).unwrap();
    assert_eq!(
        p.actions,
        [
            Action::CreateVlan {
                name: "br0.52".into(),
                vlan: 52,
                parent: "br0".into()
            },
            Action::AddAddress {
                link: "br0.52".into(),
                addr: "172.29.52.1/24".parse().unwrap()
            },
            Action::AddAddress {
                link: "br0.52".into(),
                addr: "fd47:25e1:2f96:52::1/64".parse().unwrap()
            },
            Action::LinkUp {
                name: "br0.52".into()
            },
        ]
    );
    // Done: nothing more to do.
    let mut k = base();
    k.links.push(Link {
        vlan: Some((52, 2)),
        ..link(8, "br0.52", Some(LINK_ALIAS))
    });
    k.addresses.push(Address {
        index: 8,
        net: "172.29.52.1/24".parse().unwrap(),
    });
    k.addresses.push(Address {
        index: 8,
        net: "fd47:25e1:2f96:52::1/64".parse().unwrap(),
    });
    k.addresses.push(Address {
        index: 8,
        net: "fe80::1/64".parse().unwrap(),
    });
    assert!(plan(&s, &k).unwrap().actions.is_empty());
    // A wrong VLAN id on our link: recreated.
    k.links.last_mut().unwrap().vlan = Some((53, 2));
    assert!(matches!(
        plan(&s, &k).unwrap().actions[0],
        Action::DeleteLink { .. }
    ));
}

#[test]
fn vlan_mode_refuses_a_missing_parent_or_a_foreign_link_with_the_name() {
    let s = site(|s| {
        s.segment.mode = SegmentMode::Vlan;
        s.segment.parent = Some("eth9".into());
        s.segment.gateway_addresses = vec!["172.29.52.1".parse().unwrap()];
    });
    assert_eq!(
        plan(&s, &base()).unwrap_err(),
        SegmentError::ParentMissing("eth9".into())
    );
    let s = site(|s| {
        s.segment.mode = SegmentMode::Vlan;
        s.segment.parent = Some("br0".into());
        s.segment.gateway_addresses = vec!["172.29.52.1".parse().unwrap()];
    });
    let mut k = base();
    k.links.push(link(8, "br0.52", None));
    assert_eq!(
        plan(&s, &k).unwrap_err(),
        SegmentError::NameTaken("br0.52".into())
    );
}

#[test]
fn adopt_mode_reports_differences_and_changes_nothing() {
    let s = site(|s| {
        s.segment.mode = SegmentMode::Adopt;
        s.segment.interface = Some("br52".into());
        s.segment.gateway_addresses = vec!["172.29.52.1".parse().unwrap()];
    });
    let mut k = base();
    k.links.push(Link {
        up: false,
        ..link(5, "br52", None)
    });
    k.addresses.push(Address {
        index: 5,
        net: "172.29.52.9/24".parse().unwrap(),
    });
    let p = plan(&s, &k).unwrap();
    assert!(p.actions.is_empty());
    let bad: Vec<&str> = p
        .findings
        .iter()
        .filter(|f| !f.ok)
        .map(|f| f.what.as_str())
        .collect();
    assert_eq!(
        bad,
        [
            "interface br52 is DOWN",
            "br52 lacks the address 172.29.52.1/24 (from segment.gateway_addresses)",
            "br52 carries 172.29.52.9/24, which the site file does not list"
        ]
    );
    let missing = plan(
        &site(|s| {
            s.segment.mode = SegmentMode::Adopt;
            s.segment.interface = Some("br99".into());
        }),
        &base(),
    )
    .unwrap();
    assert_eq!(missing.findings[0].what, "interface br99 does not exist");
}
