//! Renders the [`Config`] model into FRR configuration text.
//!
//! The output is canonical: every line is written the way FRR 8.x prints it back in
//! `show running-config` (keyword order, `ge` before `le`, defaults left out), so applying a
//! rendered config and reading it back yields the same owned lines. Objects are sorted by name and
//! sequence number, so the same model always gives the same bytes.

use std::fmt::Write;

use crate::model::{
    Action, Config, Family, GracefulRestart, Match, PeerGroup, PrefixListEntry, RouteMapEntry,
    RouterBgp, Set,
};

/// The complete configuration text, ready for `vtysh -f` or the UniFi BGP upload.
pub fn render(config: &Config) -> String {
    let mut out = String::new();

    let mut prefix_lists: Vec<_> = config.prefix_lists.iter().collect();
    prefix_lists.sort_by(|a, b| (a.family, &a.name).cmp(&(b.family, &b.name)));
    for list in prefix_lists {
        let mut entries: Vec<_> = list.entries.iter().collect();
        entries.sort_by_key(|e| e.seq);
        for entry in entries {
            out.push_str(&prefix_list_line(list.family, &list.name, entry));
            out.push('\n');
        }
        out.push_str("!\n");
    }

    let mut community_lists: Vec<_> = config.community_lists.iter().collect();
    community_lists.sort_by(|a, b| a.name.cmp(&b.name));
    for list in community_lists {
        let mut entries: Vec<_> = list.entries.iter().collect();
        entries.sort_by_key(|e| e.seq);
        for e in entries {
            let _ = writeln!(
                out,
                "bgp community-list standard {} seq {} {} {}",
                list.name,
                e.seq,
                e.action.keyword(),
                e.community
            );
        }
        out.push_str("!\n");
    }

    let mut route_maps: Vec<_> = config.route_maps.iter().collect();
    route_maps.sort_by(|a, b| a.name.cmp(&b.name));
    for map in route_maps {
        let mut entries: Vec<_> = map.entries.iter().collect();
        entries.sort_by_key(|e| e.seq);
        for entry in entries {
            render_route_map_entry(&mut out, &map.name, entry);
        }
        if map.optimization_disabled {
            let _ = writeln!(out, "no route-map {} optimization\n!", map.name);
        }
    }

    render_bgp(&mut out, &config.bgp);
    out
}

/// One prefix-list line, exactly as FRR prints it.
pub fn prefix_list_line(family: Family, name: &str, e: &PrefixListEntry) -> String {
    let mut line = format!(
        "{} prefix-list {} seq {} {} ",
        family.ip_keyword(),
        name,
        e.seq,
        e.action.keyword()
    );
    match e.prefix {
        Some(p) => line.push_str(&p.to_string()),
        None => line.push_str("any"),
    }
    if let Some(ge) = e.ge {
        let _ = write!(line, " ge {ge}");
    }
    if let Some(le) = e.le {
        let _ = write!(line, " le {le}");
    }
    line
}

fn render_route_map_entry(out: &mut String, name: &str, entry: &RouteMapEntry) {
    let _ = writeln!(
        out,
        "route-map {} {} {}",
        name,
        entry.action.keyword(),
        entry.seq
    );
    // FRR prints `match community` before `match ip address`.
    let mut matches = entry.matches.clone();
    matches.sort_by_key(|m| match m {
        Match::Community(_) => 0,
        Match::PrefixList { .. } => 1,
    });
    for m in &matches {
        match m {
            Match::Community(list) => {
                let _ = writeln!(out, " match community {list}");
            }
            Match::PrefixList { family, name } => {
                let _ = writeln!(
                    out,
                    " match {} address prefix-list {}",
                    family.ip_keyword(),
                    name
                );
            }
        }
    }
    // FRR prints `set community` before `set local-preference`.
    let mut sets = entry.sets.clone();
    sets.sort();
    for s in &sets {
        match s {
            Set::CommunityAdditive(c) => {
                let _ = writeln!(out, " set community {c} additive");
            }
            Set::LocalPreference(n) => {
                let _ = writeln!(out, " set local-preference {n}");
            }
        }
    }
    out.push_str("exit\n!\n");
}

fn render_bgp(out: &mut String, bgp: &RouterBgp) {
    let _ = writeln!(out, "router bgp {}", bgp.asn);
    if let Some(id) = bgp.router_id {
        let _ = writeln!(out, " bgp router-id {id}");
    }
    if let Some(gr) = bgp.graceful_restart {
        // FRR prints the notification setting first.
        if gr.notification == Some(false) {
            out.push_str(" no bgp graceful-restart notification\n");
        }
        if gr.restart_time != GracefulRestart::FRR_DEFAULT_RESTART_TIME {
            let _ = writeln!(
                out,
                " bgp graceful-restart restart-time {}",
                gr.restart_time
            );
        }
        if gr.stalepath_time != GracefulRestart::FRR_DEFAULT_STALEPATH_TIME {
            let _ = writeln!(
                out,
                " bgp graceful-restart stalepath-time {}",
                gr.stalepath_time
            );
        }
        out.push_str(" bgp graceful-restart\n");
    }

    let mut groups: Vec<&PeerGroup> = bgp.peer_groups.iter().collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    for pg in &groups {
        let _ = writeln!(out, " neighbor {} peer-group", pg.name);
        let _ = writeln!(out, " neighbor {} remote-as {}", pg.name, pg.remote_as);
        if let Some(hops) = pg.ebgp_multihop {
            let _ = writeln!(out, " neighbor {} ebgp-multihop {}", pg.name, hops);
        }
        if let Some(password) = &pg.password {
            let _ = writeln!(out, " neighbor {} password {}", pg.name, password);
        }
        let _ = writeln!(
            out,
            " neighbor {} timers {} {}",
            pg.name, pg.keepalive, pg.hold
        );
        let _ = writeln!(
            out,
            " neighbor {} timers connect {}",
            pg.name, pg.connect_retry
        );
    }

    let mut neighbors: Vec<_> = bgp.neighbors.iter().collect();
    neighbors.sort_by_key(|n| n.address);
    for n in &neighbors {
        let _ = writeln!(out, " neighbor {} peer-group {}", n.address, n.peer_group);
        if let Some(d) = &n.description {
            let _ = writeln!(out, " neighbor {} description {}", n.address, d);
        }
        if n.shutdown {
            let _ = writeln!(out, " neighbor {} shutdown", n.address);
        }
    }

    // FRR activates every new neighbour in IPv4 unicast unless the operator's configuration says
    // `no bgp default ipv4-unicast`, a global bgplb leaves alone (an uplink may rely on it). So
    // activation in IPv4 unicast is written out either way: the IPv4 peer-groups activated, the
    // IPv6 ones deactivated (an IPv6 session carries no IPv4 routes). FRR prints whichever of the
    // two differs from its default; `Owned` reads the other one back from the default.
    let v6_groups: Vec<&&PeerGroup> = groups.iter().filter(|g| g.family == Family::V6).collect();
    for family in Family::ALL {
        let family_groups: Vec<&&PeerGroup> =
            groups.iter().filter(|g| g.family == family).collect();
        let maximum_paths = match family {
            Family::V4 => bgp.maximum_paths_v4,
            Family::V6 => bgp.maximum_paths_v6,
        };
        let deactivate: &[&&PeerGroup] = match family {
            Family::V4 => &v6_groups,
            Family::V6 => &[],
        };
        if family_groups.is_empty() && maximum_paths.is_none() && deactivate.is_empty() {
            continue;
        }
        out.push_str(" !\n");
        let _ = writeln!(out, " address-family {}", family.afi_safi());
        for pg in deactivate {
            let _ = writeln!(out, "  no neighbor {} activate", pg.name);
        }
        for pg in family_groups {
            let _ = writeln!(out, "  neighbor {} activate", pg.name);
            if pg.soft_reconfiguration {
                let _ = writeln!(out, "  neighbor {} soft-reconfiguration inbound", pg.name);
            }
            if let Some(mp) = pg.maximum_prefix {
                let _ = write!(out, "  neighbor {} maximum-prefix {}", pg.name, mp.limit);
                if let Some(minutes) = mp.restart_minutes {
                    let _ = write!(out, " restart {minutes}");
                }
                if mp.force {
                    out.push_str(" force");
                }
                out.push('\n');
            }
            let _ = writeln!(
                out,
                "  neighbor {} route-map {} in",
                pg.name, pg.route_map_in
            );
            let _ = writeln!(
                out,
                "  neighbor {} route-map {} out",
                pg.name, pg.route_map_out
            );
        }
        if let Some(n) = maximum_paths {
            let _ = writeln!(out, "  maximum-paths {n}");
        }
        out.push_str(" exit-address-family\n");
    }
    out.push_str("exit\n!\n");
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keyword())
    }
}
