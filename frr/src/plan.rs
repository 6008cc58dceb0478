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

    // Phase 1: filters and route-maps the new configuration needs.
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
        &running.top,
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
        ["bgp", "community-list", kind, name, "seq", seq, ..] => {
            format!("bgp community-list {kind} {name} seq {seq}")
        }
        _ => return None,
    };
    Some(key)
}

/// FRR's negation of a configuration line.
pub fn negate(line: &str) -> String {
    match line.strip_prefix("no ") {
        Some(positive) => positive.to_string(),
        None => format!("no {line}"),
    }
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
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
