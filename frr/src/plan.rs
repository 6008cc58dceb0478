//! From (desired, running) to the minimal list of changes, and the vtysh script that applies them.
//!
//! The plan only touches owned lines (see [`crate::owned`]). It never resets a session it does not
//! have to: policy lives on peer-groups and prefix-lists, which FRR changes in place; a changed
//! value is written over the old one instead of being removed and re-added; a neighbour is deleted
//! only when it leaves the desired set (or moves to another peer-group).
//!
//! Order matters for safety. The script first creates or updates filters and route-maps, then
//! changes `router bgp` (neighbour removals first), and removes filters last, so no session ever
//! references a filter that does not exist yet.

use std::collections::BTreeSet;
use std::fmt;

use crate::model::Family;
use crate::owned::Owned;

/// Context a line lives in: the lines that open it, outermost first (`[]` is the top level).
pub type Path = Vec<String>;

/// One change to FRR's running configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Enter `path` (creating the contexts it names) and write `line` there.
    Add { path: Path, line: String },
    /// Enter `path` and negate `line` (`no LINE`, or `LINE` without its leading `no`).
    Remove { path: Path, line: String },
    /// Create the context `path` without clauses (a route-map entry such as deny-all).
    AddBlock { path: Path },
    /// Delete the top-level context opened by `head` (`no route-map NAME ACTION SEQ`).
    RemoveBlock { head: String },
    /// Inside `router_bgp`, delete a neighbour (`no neighbor X`) or one of our peer-groups
    /// (`no neighbor NAME peer-group`) with everything configured on it.
    RemoveNeighbor {
        router_bgp: String,
        name: String,
        peer_group: bool,
    },
}

/// The changes that turn running into desired, plus notes for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub warnings: Vec<String>,
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// FRR already runs `router bgp` with another ASN; FRR allows one per VRF.
    OtherRouterBgp { running: u32, desired: u32 },
    /// The desired configuration has no `router bgp`.
    NoRouterBgp,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::OtherRouterBgp { running, desired } => write!(
                f,
                "FRR already runs `router bgp {running}` but the site's gateway ASN is {desired}; \
                 FRR allows one BGP instance per VRF: change gateway.asn or remove the other instance"
            ),
            PlanError::NoRouterBgp => write!(f, "the desired configuration has no `router bgp`"),
        }
    }
}

impl std::error::Error for PlanError {}

/// FRR hides `maximum-paths` when it equals the compiled-in limit (64 on many builds, 256 on
/// Debian); bgplb renders at most this many, and a missing line is read as this value.
pub const MAXIMUM_PATHS_CAP: u16 = 64;

/// Computes the changes that make `running` match `desired` in everything bgplb owns.
pub fn plan(desired: &Owned, running: &Owned) -> Result<Plan, PlanError> {
    let asn = desired.asn.ok_or(PlanError::NoRouterBgp)?;
    if let Some(other) = running
        .asn
        .into_iter()
        .chain(running.other_router_bgp.iter().copied())
        .find(|a| *a != asn)
    {
        return Err(PlanError::OtherRouterBgp {
            running: other,
            desired: asn,
        });
    }
    let router_bgp = format!("router bgp {asn}");
    let mut plan = Plan::default();

    // Phase 1: filters and route-maps the new configuration needs. FRR silently ignores a
    // prefix-list entry whose content already exists under another sequence number, so an entry
    // that moves is removed from its old place first.
    let added_content: BTreeSet<String> = desired
        .top
        .iter()
        .filter(|l| !running.top.contains(l))
        .filter_map(|l| prefix_list_content(l))
        .collect();
    let mut moved: Vec<String> = Vec::new();
    for line in running.top.iter().filter(|l| !desired.top.contains(l)) {
        if prefix_list_content(line).is_some_and(|c| added_content.contains(&c)) {
            plan.changes.push(Change::Remove {
                path: Vec::new(),
                line: line.clone(),
            });
            moved.push(line.clone());
        }
    }
    diff_lines(
        &mut plan,
        &[],
        &desired.top,
        &running.top,
        &BTreeSet::new(),
        Side::Add,
    );
    for (head, clauses) in &desired.route_maps {
        let path = vec![head.clone()];
        match running.route_maps.iter().find(|(h, _)| h == head) {
            Some((_, have)) => diff_lines(
                &mut plan,
                &path,
                clauses,
                have,
                &BTreeSet::new(),
                Side::Both,
            ),
            None if clauses.is_empty() => plan.changes.push(Change::AddBlock { path }),
            None => diff_lines(&mut plan, &path, clauses, &[], &BTreeSet::new(), Side::Add),
        }
    }

    // Phase 2: router bgp. Neighbours leaving (or changing peer-group) go first.
    let mut removed: BTreeSet<String> = BTreeSet::new();
    for (name, group) in &desired.neighbors {
        if running.foreign_neighbors.contains(name) {
            plan.warnings.push(format!(
                "neighbor {name} is configured outside bgplb; it is replaced by bgplb's session \
                 (peer-group {group}), which resets that session once"
            ));
            removed.insert(name.clone());
        }
    }
    for (name, group) in &running.neighbors {
        if desired.neighbors.get(name) != Some(group) {
            removed.insert(name.clone());
        }
    }
    for name in &removed {
        plan.changes.push(Change::RemoveNeighbor {
            router_bgp: router_bgp.clone(),
            name: name.clone(),
            peer_group: false,
        });
    }
    for group in running.peer_groups.difference(&desired.peer_groups) {
        plan.changes.push(Change::RemoveNeighbor {
            router_bgp: router_bgp.clone(),
            name: group.clone(),
            peer_group: true,
        });
        removed.insert(group.clone());
    }
    let bgp_path = vec![router_bgp.clone()];
    diff_lines(
        &mut plan,
        &bgp_path,
        &desired.bgp,
        &running.bgp,
        &removed,
        Side::Both,
    );
    for family in Family::ALL {
        let want = desired
            .address_families
            .get(&family)
            .cloned()
            .unwrap_or_default();
        let mut have = running
            .address_families
            .get(&family)
            .cloned()
            .unwrap_or_default();
        let cap = format!("maximum-paths {MAXIMUM_PATHS_CAP}");
        if want.contains(&cap) && !have.iter().any(|l| l.starts_with("maximum-paths ")) {
            have.push(cap);
        }
        if want.is_empty() && have.is_empty() {
            continue;
        }
        let path = vec![
            router_bgp.clone(),
            format!("address-family {}", family.afi_safi()),
        ];
        diff_lines(&mut plan, &path, &want, &have, &removed, Side::Both);
    }

    // Phase 3: filters and route-maps nothing uses any more.
    let remaining: Vec<String> = running
        .top
        .iter()
        .filter(|l| !moved.contains(l))
        .cloned()
        .collect();
    // A route-map that goes away takes its options with it; negating `no route-map X
    // optimization` afterwards would create an empty route-map X again.
    let gone_maps: BTreeSet<&str> = running
        .route_maps
        .iter()
        .filter_map(|(h, _)| h.split_whitespace().nth(1))
        .filter(|name| {
            !desired
                .route_maps
                .iter()
                .any(|(h, _)| h.split_whitespace().nth(1) == Some(*name))
        })
        .collect();
    let remaining: Vec<String> = remaining
        .into_iter()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            !matches!(w.as_slice(), ["no", "route-map", name, "optimization"] if gone_maps.contains(name))
        })
        .collect();
    for (head, _) in &running.route_maps {
        if !desired.route_maps.iter().any(|(h, _)| h == head) {
            plan.changes
                .push(Change::RemoveBlock { head: head.clone() });
        }
    }
    diff_lines(
        &mut plan,
        &[],
        &desired.top,
        &remaining,
        &BTreeSet::new(),
        Side::Remove,
    );
    Ok(plan)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Add,
    Remove,
    Both,
}

/// Adds (desired order) then removes the lines of one context. A running line is not negated when
/// it belongs to a neighbour deleted as a whole, or when an added line overwrites it.
fn diff_lines(
    plan: &mut Plan,
    path: &[String],
    want: &[String],
    have: &[String],
    removed_neighbors: &BTreeSet<String>,
    side: Side,
) {
    // Lines of a neighbour deleted as a whole are gone once it is; re-add what is still wanted.
    let have: Vec<&String> = have
        .iter()
        .filter(|l| !neighbor_name(l).is_some_and(|n| removed_neighbors.contains(n)))
        .collect();
    let have_set: BTreeSet<&String> = have.iter().copied().collect();
    let want_set: BTreeSet<&String> = want.iter().collect();
    let added: Vec<&String> = want.iter().filter(|l| !have_set.contains(l)).collect();
    if side != Side::Remove {
        for line in &added {
            plan.changes.push(Change::Add {
                path: path.to_vec(),
                line: (*line).clone(),
            });
        }
    }
    if side != Side::Add {
        let overwritten: BTreeSet<String> = added.iter().filter_map(|l| replace_key(l)).collect();
        for line in have.iter().filter(|l| !want_set.contains(*l)) {
            if replace_key(line).is_some_and(|k| overwritten.contains(&k)) {
                continue;
            }
            plan.changes.push(Change::Remove {
                path: path.to_vec(),
                line: (*line).clone(),
            });
        }
    }
}

fn neighbor_name(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    (words.next() == Some("neighbor"))
        .then(|| words.next())
        .flatten()
}

/// For lines that FRR overwrites in place when written again with another value, the part that
/// identifies the setting (`neighbor X timers`); `None` for lines that must be negated first.
pub fn replace_key(line: &str) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    let key = match w.as_slice() {
        ["bgp", "router-id", _] => "bgp router-id".to_string(),
        ["bgp", "graceful-restart", timer @ ("restart-time" | "stalepath-time"), _] => {
            format!("bgp graceful-restart {timer}")
        }
        ["maximum-paths", _] => "maximum-paths".to_string(),
        ["neighbor", n, "timers", "connect", _] => format!("neighbor {n} timers connect"),
        ["neighbor", n, "timers", _, _] => format!("neighbor {n} timers"),
        ["neighbor", n, "route-map", _, dir] => format!("neighbor {n} route-map {dir}"),
        ["neighbor", n, what @ ("remote-as" | "password" | "description" | "ebgp-multihop" | "maximum-prefix"), ..] =>
        {
            format!("neighbor {n} {what}")
        }
        [ip @ ("ip" | "ipv6"), "prefix-list", name, "seq", seq, ..] => {
            format!("{ip} prefix-list {name} seq {seq}")
        }
        // Route-map clauses: one of each kind per entry; FRR replaces it, and negating the old
        // one after writing the new would delete the new one.
        ["match", ip @ ("ip" | "ipv6"), "address", "prefix-list", _] => {
            format!("match {ip} address prefix-list")
        }
        ["match", "community", ..] => "match community".to_string(),
        ["set", "community", ..] => "set community".to_string(),
        ["set", "local-preference", _] => "set local-preference".to_string(),
        ["bgp", "community-list", kind, name, "seq", seq, ..] => {
            format!("bgp community-list {kind} {name} seq {seq}")
        }
        _ => return None,
    };
    Some(key)
}

/// A prefix-list entry without its sequence number: what FRR considers a duplicate.
fn prefix_list_content(line: &str) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    match w.as_slice() {
        [ip @ ("ip" | "ipv6"), "prefix-list", name, "seq", _, rest @ ..] => {
            Some(format!("{ip} prefix-list {name} {}", rest.join(" ")))
        }
        _ => None,
    }
}

/// FRR's negation of a configuration line. Prefix-list entries are removed by sequence number
/// alone, which is what FRR does whatever follows it.
pub fn negate(line: &str) -> String {
    let w: Vec<&str> = line.split_whitespace().collect();
    if let [ip @ ("ip" | "ipv6"), "prefix-list", name, "seq", seq, ..] = w.as_slice() {
        return format!("no {ip} prefix-list {name} seq {seq}");
    }
    match line.strip_prefix("no ") {
        Some(positive) => positive.to_string(),
        None => format!("no {line}"),
    }
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The plan as `frr` can take it: an FRR that cannot write a prefix-list entry over
    /// another at the same sequence number (see
    /// [`Capability::PrefixListEntryReplace`](crate::Capability)) gets the old entry removed
    /// right before.
    pub fn for_frr(mut self, running: &Owned, frr: crate::FrrVersion) -> Plan {
        if frr.has(crate::Capability::PrefixListEntryReplace) {
            return self;
        }
        let mut changes = Vec::with_capacity(self.changes.len());
        for change in self.changes {
            if let Change::Add { path, line } = &change {
                if path.is_empty() && prefix_list_content(line).is_some() {
                    let key = replace_key(line);
                    let old = running
                        .top
                        .iter()
                        .find(|r| *r != line && replace_key(r) == key);
                    if let Some(old) = old {
                        let removal = Change::Remove {
                            path: Vec::new(),
                            line: old.clone(),
                        };
                        if !changes.contains(&removal) {
                            changes.push(removal);
                        }
                    }
                }
            }
            changes.push(change);
        }
        self.changes = changes;
        self
    }

    /// The vtysh script (for `vtysh -f`) applying every change in order.
    pub fn script(&self) -> String {
        let mut out = String::new();
        let mut current: Vec<String> = Vec::new();
        for change in &self.changes {
            let (path, line): (Vec<String>, Option<String>) = match change {
                Change::Add { path, line } => (path.clone(), Some(line.clone())),
                Change::Remove { path, line } => (path.clone(), Some(negate(line))),
                Change::AddBlock { path } => (path.clone(), None),
                Change::RemoveBlock { head } => (Vec::new(), Some(negate(head))),
                Change::RemoveNeighbor {
                    router_bgp,
                    name,
                    peer_group,
                } => {
                    let line = if *peer_group {
                        format!("no neighbor {name} peer-group")
                    } else {
                        format!("no neighbor {name}")
                    };
                    (vec![router_bgp.clone()], Some(line))
                }
            };
            let common = current
                .iter()
                .zip(&path)
                .take_while(|(a, b)| a == b)
                .count();
            // A context is re-entered when it is the target itself and we are inside it already
            // (AddBlock of the current block is a no-op).
            while current.len() > common {
                leave(&mut out, &mut current);
            }
            for head in &path[common..] {
                indent(&mut out, current.len());
                out.push_str(head);
                out.push('\n');
                current.push(head.clone());
            }
            if let Some(line) = line {
                indent(&mut out, current.len());
                out.push_str(&line);
                out.push('\n');
            }
        }
        while !current.is_empty() {
            leave(&mut out, &mut current);
        }
        out
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push(' ');
    }
}

fn leave(out: &mut String, current: &mut Vec<String>) {
    let head = current.pop().expect("inside a context");
    indent(out, current.len());
    if head.starts_with("address-family") {
        out.push_str("exit-address-family\n");
    } else {
        out.push_str("exit\n");
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ctx = |path: &Path| -> String {
            if path.is_empty() {
                String::new()
            } else {
                format!("[{}] ", path.join(" / "))
            }
        };
        match self {
            Change::Add { path, line } => write!(f, "+ {}{}", ctx(path), line),
            Change::Remove { path, line } => write!(f, "- {}{}", ctx(path), line),
            Change::AddBlock { path } => write!(f, "+ {}", path.join(" / ")),
            Change::RemoveBlock { head } => write!(f, "- {head}"),
            Change::RemoveNeighbor {
                router_bgp,
                name,
                peer_group,
            } => {
                let what = if *peer_group {
                    "peer-group"
                } else {
                    "neighbor"
                };
                write!(f, "- [{router_bgp}] {what} {name} (and all its settings)")
            }
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.warnings {
            writeln!(f, "! {w}")?;
        }
        for c in &self.changes {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_text(desired: &str, running: &str) -> Plan {
        plan(&Owned::from_text(desired), &Owned::from_text(running)).expect("plan")
    }

    const BASE: &str = "\
ip prefix-list BGPLB-c-POOLS-V4 seq 10 permit 172.29.52.100/30 ge 32
ip prefix-list BGPLB-c-POOLS-V4 seq 20 permit 172.29.52.200/29 ge 32
route-map BGPLB-c-IN-V4 permit 10
 match ip address prefix-list BGPLB-c-POOLS-V4
exit
router bgp 64512
 bgp router-id 172.29.51.1
 neighbor BGPLB-c-V4 peer-group
 neighbor BGPLB-c-V4 remote-as 64513
 neighbor BGPLB-c-V4 timers 3 9
 neighbor 172.29.51.11 peer-group BGPLB-c-V4
 neighbor 172.29.51.11 description k8s-1
 neighbor 172.29.51.12 peer-group BGPLB-c-V4
 neighbor 172.29.51.12 description k8s-2
 address-family ipv4 unicast
  neighbor BGPLB-c-V4 activate
  neighbor BGPLB-c-V4 route-map BGPLB-c-IN-V4 in
  maximum-paths 2
 exit-address-family
exit
";

    #[test]
    fn same_config_plans_nothing() {
        assert!(plan_text(BASE, BASE).is_empty());
    }

    #[test]
    fn removing_a_node_is_one_command() {
        let desired = BASE
            .replace(" neighbor 172.29.51.12 peer-group BGPLB-c-V4\n", "")
            .replace(" neighbor 172.29.51.12 description k8s-2\n", "");
        let p = plan_text(&desired, BASE);
        assert_eq!(
            p.changes,
            [Change::RemoveNeighbor {
                router_bgp: "router bgp 64512".into(),
                name: "172.29.51.12".into(),
                peer_group: false
            }]
        );
        assert_eq!(
            p.script(),
            "router bgp 64512\n no neighbor 172.29.51.12\nexit\n"
        );
    }

    #[test]
    fn changed_values_are_overwritten_not_negated() {
        let desired = BASE
            .replace("timers 3 9", "timers 5 15")
            .replace("maximum-paths 2", "maximum-paths 3");
        let p = plan_text(&desired, BASE);
        assert_eq!(
            p.script(),
            "router bgp 64512\n neighbor BGPLB-c-V4 timers 5 15\n address-family ipv4 unicast\n  maximum-paths 3\n exit-address-family\nexit\n"
        );
    }

    #[test]
    fn a_prefix_list_entry_that_moves_is_removed_from_its_old_place_first() {
        // A pool inserted before the second entry renumbers it: FRR would silently ignore the
        // entry at its new sequence number while the old one exists.
        let desired = BASE.replace(
            "ip prefix-list BGPLB-c-POOLS-V4 seq 20 permit 172.29.52.200/29 ge 32\n",
            "ip prefix-list BGPLB-c-POOLS-V4 seq 20 permit 172.29.52.150/31 ge 32\n\
             ip prefix-list BGPLB-c-POOLS-V4 seq 30 permit 172.29.52.200/29 ge 32\n",
        );
        let p = plan_text(&desired, BASE);
        assert_eq!(
            p.script(),
            "no ip prefix-list BGPLB-c-POOLS-V4 seq 20\n\
             ip prefix-list BGPLB-c-POOLS-V4 seq 20 permit 172.29.52.150/31 ge 32\n\
             ip prefix-list BGPLB-c-POOLS-V4 seq 30 permit 172.29.52.200/29 ge 32\n"
        );
    }

    #[test]
    fn frr_7_5_gets_an_entry_removed_before_another_takes_its_sequence_number() {
        // 8.0+ writes over seq 10 in place; 7.5.1 aborts on that (trie_install_fn).
        let desired = BASE.replace(
            "ip prefix-list BGPLB-c-POOLS-V4 seq 10 permit 172.29.52.100/30 ge 32\n",
            "ip prefix-list BGPLB-c-POOLS-V4 seq 10 permit 172.29.52.100/31 ge 32\n",
        );
        let p = plan_text(&desired, BASE);
        let in_place = "ip prefix-list BGPLB-c-POOLS-V4 seq 10 permit 172.29.52.100/31 ge 32\n";
        assert_eq!(
            p.clone()
                .for_frr(&Owned::from_text(BASE), crate::FrrVersion::new(8, 4))
                .script(),
            in_place
        );
        let old = p.for_frr(&Owned::from_text(BASE), crate::FrrVersion::new(7, 5));
        assert_eq!(
            old.script(),
            format!("no ip prefix-list BGPLB-c-POOLS-V4 seq 10\n{in_place}")
        );
        // A move already removes the old entry: not twice.
        let desired = BASE.replace(
            "ip prefix-list BGPLB-c-POOLS-V4 seq 20 permit 172.29.52.200/29 ge 32\n",
            "ip prefix-list BGPLB-c-POOLS-V4 seq 20 permit 172.29.52.150/31 ge 32\n\
             ip prefix-list BGPLB-c-POOLS-V4 seq 30 permit 172.29.52.200/29 ge 32\n",
        );
        let script = plan_text(&desired, BASE)
            .for_frr(&Owned::from_text(BASE), crate::FrrVersion::new(7, 5))
            .script();
        assert_eq!(
            script
                .matches("no ip prefix-list BGPLB-c-POOLS-V4 seq 20")
                .count(),
            1,
            "{script}"
        );
    }

    #[test]
    fn route_map_clause_change_replaces_without_negating() {
        let desired = BASE.replace(
            " match ip address prefix-list BGPLB-c-POOLS-V4",
            " match ip address prefix-list BGPLB-c-POOLS2-V4",
        );
        let p = plan_text(&desired, BASE);
        assert_eq!(
            p.script(),
            "route-map BGPLB-c-IN-V4 permit 10\n match ip address prefix-list BGPLB-c-POOLS2-V4\nexit\n"
        );
    }

    #[test]
    fn operator_configuration_is_never_touched() {
        let running = format!(
            "{BASE}ip prefix-list UPLINK seq 5 permit 10.0.0.0/8\nroute-map UPLINK permit 10\nexit\n"
        )
        .replace(
            " neighbor 172.29.51.11 peer-group",
            " neighbor 192.0.2.1 remote-as 65000\n neighbor 172.29.51.11 peer-group",
        );
        assert!(plan_text(BASE, &running).is_empty());
    }

    #[test]
    fn a_foreign_neighbour_on_a_node_address_is_taken_over_with_a_warning() {
        let running = BASE
            .replace(
                " neighbor 172.29.51.12 peer-group BGPLB-c-V4\n",
                " neighbor 172.29.51.12 remote-as 64513\n",
            )
            .replace(" neighbor 172.29.51.12 description k8s-2\n", "");
        let p = plan_text(BASE, &running);
        assert_eq!(p.warnings.len(), 1, "{p}");
        assert!(p.script().starts_with("router bgp 64512\n no neighbor 172.29.51.12\n neighbor 172.29.51.12 peer-group BGPLB-c-V4\n"), "{}", p.script());
    }

    #[test]
    fn another_bgp_instance_is_an_error() {
        let running = "router bgp 65000\n bgp router-id 10.0.0.1\nexit\n";
        let err = plan(&Owned::from_text(BASE), &Owned::from_text(running)).unwrap_err();
        assert_eq!(
            err,
            PlanError::OtherRouterBgp {
                running: 65000,
                desired: 64512
            }
        );
    }

    #[test]
    fn teardown_removes_everything_owned_in_safe_order() {
        let mut empty = Owned::from_text("router bgp 64512\nexit\n");
        empty.asn = Some(64512);
        let p = plan(&empty, &Owned::from_text(BASE)).unwrap();
        let script = p.script();
        // Sessions go before the filters they use.
        let neighbor = script.find("no neighbor 172.29.51.11").unwrap();
        let group = script.find("no neighbor BGPLB-c-V4 peer-group").unwrap();
        let route_map = script.find("no route-map BGPLB-c-IN-V4 permit 10").unwrap();
        let list = script
            .find("no ip prefix-list BGPLB-c-POOLS-V4 seq 10")
            .unwrap();
        assert!(
            neighbor < group && group < route_map && route_map < list,
            "{script}"
        );
        assert!(
            !script.contains("timers"),
            "lines of deleted objects are not negated one by one: {script}"
        );
    }
}
