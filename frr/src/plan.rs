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

use crate::model::{Family, GracefulRestart};
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
    /// Inside `router_bgp`, delete a neighbour or one of our peer-groups (`no neighbor NAME`
    /// either way) with everything configured on it.
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
    /// The operator has BGP peers of their own, and the plan would change a global FRR applies to
    /// every peer: the router-id (every session resets at once) or graceful restart (every peer
    /// negotiates the new setting from its next session on; verified on FRR 8.4: no reset).
    SharedGlobals {
        /// The operator's neighbours and peer-groups.
        peers: Vec<String>,
        /// (running, desired) per setting, `None` where the line is absent.
        changes: Vec<(Option<String>, Option<String>)>,
    },
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
            PlanError::SharedGlobals { peers, changes } => {
                let shown: Vec<String> = changes
                    .iter()
                    .map(|(have, want)| match (have, want) {
                        (Some(h), Some(w)) => format!("`{h}` → `{w}`"),
                        (None, Some(w)) => format!("add `{w}`"),
                        (Some(h), None) => format!("remove `{h}`"),
                        (None, None) => String::new(),
                    })
                    .collect();
                write!(
                    f,
                    "FRR's BGP also serves the operator's own peers ({}), and this plan would change \
                     {}: FRR applies these to every peer, theirs included (a new router-id resets \
                     every session at once; graceful restart changes what every peer negotiates \
                     from its next session on), so bgplb refuses. Make the site file match what \
                     FRR runs ({}), or change FRR yourself in a maintenance window",
                    peers.join(", "),
                    shown.join(", "),
                    fixes(changes).join("; ")
                )
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// The site-file settings that make the desired side of `changes` equal to the running side.
fn fixes(changes: &[(Option<String>, Option<String>)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |fix: String| {
        if !out.contains(&fix) {
            out.push(fix);
        }
    };
    for (have, want) in changes {
        let line = have.as_deref().or(want.as_deref()).unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        match (words.as_slice(), have) {
            (["bgp", "router-id", id], Some(_)) => push(format!(
                "gateway.router_id = \"{id}\" or leave gateway.router_id out"
            )),
            (["bgp", "router-id", _], None) => {
                push("leave gateway.router_id out (FRR chose its router-id itself)".to_string())
            }
            (["bgp", "graceful-restart"], Some(_)) => push("bgp.graceful_restart = true".into()),
            (["bgp", "graceful-restart"], None) => push("bgp.graceful_restart = false".into()),
            (["bgp", "graceful-restart", "restart-time", n], Some(_)) => {
                push(format!("bgp.restart_time = {n}"))
            }
            (["bgp", "graceful-restart", "stalepath-time", n], Some(_)) => {
                push(format!("bgp.stalepath_time = {n}"))
            }
            (["bgp", "graceful-restart", timer, _], None) => push(format!(
                "bgp.{} = {}",
                timer.replace('-', "_"),
                match *timer {
                    "restart-time" => GracefulRestart::FRR_DEFAULT_RESTART_TIME,
                    _ => GracefulRestart::FRR_DEFAULT_STALEPATH_TIME,
                }
            )),
            _ => {}
        }
    }
    out
}

/// Globals of `router bgp` that FRR applies to every peer: the router-id by resetting every
/// session, graceful restart and its timers at each peer's next session. (`no bgp graceful-restart
/// notification` too, but it only narrows what a helper keeps, and bgplb's fast failover needs
/// it; it is changed.)
fn applies_to_every_peer(line: &str) -> bool {
    let w: Vec<&str> = line.split_whitespace().collect();
    matches!(
        w.as_slice(),
        ["bgp", "router-id", _]
            | ["bgp", "graceful-restart"]
            | [
                "bgp",
                "graceful-restart",
                "restart-time" | "stalepath-time",
                _
            ]
    )
}

/// What `setting` is: the line without its value (`bgp router-id`), to pair a running line with
/// the desired one that replaces it.
fn setting(line: &str) -> String {
    let w: Vec<&str> = line.split_whitespace().collect();
    match w.as_slice() {
        ["bgp", "router-id", _] => "bgp router-id".into(),
        ["bgp", "graceful-restart", timer, _] => format!("bgp graceful-restart {timer}"),
        _ => line.to_string(),
    }
}

/// Refuses a plan that changes a global of every peer's session while the operator has peers of
/// their own; leaves `no bgp ebgp-requires-policy` to them (their peers may rely on it, ours have
/// policies). Returns `running`'s global lines the plan must not touch.
fn shared_globals(
    desired: &Owned,
    running: &Owned,
    plan: &mut Plan,
) -> Result<Vec<String>, PlanError> {
    let peers: Vec<String> = running
        .foreign_neighbors
        .iter()
        .filter(|n| !desired.neighbors.contains_key(*n))
        .cloned()
        .collect();
    let mut keep = Vec::new();
    // Without a router-id in the site file, FRR's (or the operator's) stays.
    if !desired.bgp.iter().any(|l| l.starts_with("bgp router-id ")) {
        keep.extend(
            running
                .bgp
                .iter()
                .filter(|l| l.starts_with("bgp router-id "))
                .cloned(),
        );
    }
    if peers.is_empty() {
        return Ok(keep);
    }
    const NO_POLICY: &str = "no bgp ebgp-requires-policy";
    if running.bgp.iter().any(|l| l == NO_POLICY) && !desired.bgp.iter().any(|l| l == NO_POLICY) {
        plan.warnings.push(format!(
            "FRR runs `{NO_POLICY}`, which lets the operator's peers ({}) exchange routes without \
             policies; bgplb leaves it (its own sessions have route-maps both ways)",
            peers.join(", ")
        ));
        keep.push(NO_POLICY.to_string());
    }
    let want: Vec<&String> = desired
        .bgp
        .iter()
        .filter(|l| applies_to_every_peer(l))
        .collect();
    let have: Vec<&String> = running
        .bgp
        .iter()
        .filter(|l| applies_to_every_peer(l) && !keep.contains(l))
        .collect();
    let mut changes: Vec<(Option<String>, Option<String>)> = Vec::new();
    for w in want.iter().filter(|w| !have.contains(w)) {
        let old = have
            .iter()
            .find(|h| setting(h) == setting(w))
            .map(|h| h.to_string());
        changes.push((old, Some(w.to_string())));
    }
    for h in have.iter().filter(|h| !want.contains(h)) {
        if !want.iter().any(|w| setting(w) == setting(h)) {
            changes.push((Some(h.to_string()), None));
        }
    }
    if changes.is_empty() {
        Ok(keep)
    } else {
        Err(PlanError::SharedGlobals { peers, changes })
    }
}

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
    let keep = shared_globals(desired, running, &mut plan)?;
    let running_bgp: Vec<String> = running
        .bgp
        .iter()
        .filter(|l| !keep.contains(l))
        .cloned()
        .collect();

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
        &running_bgp,
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
    // A route-map that goes away entirely is deleted by name (`no route-map X`): deleting its
    // entries one by one leaves FRR 8 and 10 holding an empty map for `no route-map X
    // optimization`, and negating that line would create an empty route-map X again.
    let map_name = |line: &str| -> Option<String> {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["route-map", name, ..] | ["no", "route-map", name, "optimization"] => {
                Some(name.to_string())
            }
            _ => None,
        }
    };
    let desired_maps: BTreeSet<String> = desired
        .route_maps
        .iter()
        .filter_map(|(h, _)| map_name(h))
        .chain(desired.top.iter().filter_map(|l| map_name(l)))
        .collect();
    let gone_maps: BTreeSet<String> = running
        .route_maps
        .iter()
        .filter_map(|(h, _)| map_name(h))
        .chain(running.top.iter().filter_map(|l| map_name(l)))
        .filter(|name| !desired_maps.contains(name))
        .collect();
    let remaining: Vec<String> = remaining
        .into_iter()
        .filter(|l| map_name(l).is_none_or(|name| !gone_maps.contains(&name)))
        .collect();
    for (head, _) in &running.route_maps {
        let gone = map_name(head).is_some_and(|name| gone_maps.contains(&name));
        if !gone && !desired.route_maps.iter().any(|(h, _)| h == head) {
            plan.changes
                .push(Change::RemoveBlock { head: head.clone() });
        }
    }
    for name in &gone_maps {
        plan.changes.push(Change::RemoveBlock {
            head: format!("route-map {name}"),
        });
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
    let line = line.strip_prefix("no ").unwrap_or(line);
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
        ["neighbor", n, "activate"] | ["no", "neighbor", n, "activate"] => {
            format!("neighbor {n} activate")
        }
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
                    peer_group: _,
                } => {
                    // A peer-group is deleted by its name alone: FRR 7.5 (UniFi OS 4) finds
                    // `no neighbor NAME peer-group` ambiguous; 7.5, 8.4 and 10.3 all delete the
                    // group, with its address-family lines, on `no neighbor NAME`.
                    (
                        vec![router_bgp.clone()],
                        Some(format!("no neighbor {name}")),
                    )
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

    const DESIRED_DUAL: &str = "\
router bgp 64512
 bgp router-id 172.29.51.1
 bgp graceful-restart
 neighbor BGPLB-c-V4 peer-group
 neighbor BGPLB-c-V6 peer-group
 neighbor 172.29.51.11 peer-group BGPLB-c-V4
 neighbor fd47::11 peer-group BGPLB-c-V6
 address-family ipv4 unicast
  no neighbor BGPLB-c-V6 activate
  neighbor BGPLB-c-V4 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor BGPLB-c-V6 activate
 exit-address-family
exit
";

    #[test]
    fn ipv4_activation_compares_equal_whichever_way_the_operator_set_the_default() {
        // What FRR prints for the same state with its default, and with the default off.
        let default_on = DESIRED_DUAL.replace("  neighbor BGPLB-c-V4 activate\n", "");
        let default_off = DESIRED_DUAL
            .replace(
                " bgp graceful-restart\n",
                " no bgp default ipv4-unicast\n bgp graceful-restart\n",
            )
            .replace("  no neighbor BGPLB-c-V6 activate\n", "");
        for running in [&default_on, &default_off] {
            let p = plan_text(DESIRED_DUAL, running);
            assert!(p.is_empty(), "{running}\n{p}");
        }
        // Deactivated where it should be active: one line, written over the other.
        let wrong = DESIRED_DUAL.replace(
            "  neighbor BGPLB-c-V4 activate",
            "  no neighbor BGPLB-c-V4 activate",
        );
        assert_eq!(plan_text(DESIRED_DUAL, &wrong).script(), "router bgp 64512\n address-family ipv4 unicast\n  neighbor BGPLB-c-V4 activate\n exit-address-family\nexit\n");
        // The operator's global is never touched, and a removed peer-group takes its line along.
        let gone = plan_text("router bgp 64512\nexit\n", &default_off);
        assert!(!gone.script().contains("default ipv4-unicast"), "{gone}");
        assert!(!gone.script().contains("activate"), "{gone}");
    }

    #[test]
    fn with_the_operators_own_peers_a_global_that_resets_sessions_is_refused() {
        let running = "\
router bgp 64512
 bgp router-id 10.255.0.1
 no bgp ebgp-requires-policy
 neighbor 192.0.2.1 remote-as 65000
exit
";
        let err = plan(&Owned::from_text(DESIRED_DUAL), &Owned::from_text(running)).unwrap_err();
        let text = err.to_string();
        for want in [
            "192.0.2.1",
            "`bgp router-id 10.255.0.1` → `bgp router-id 172.29.51.1`",
            "add `bgp graceful-restart`",
            "gateway.router_id = \"10.255.0.1\"",
            "bgp.graceful_restart = false",
        ] {
            assert!(text.contains(want), "{want} not in: {text}");
        }
        // Matching the site file to FRR: nothing global changes, the operator's
        // `no bgp ebgp-requires-policy` stays (with a warning), their peer is not touched.
        let matching = DESIRED_DUAL
            .replace(" bgp router-id 172.29.51.1\n", "")
            .replace(" bgp graceful-restart\n", "");
        let p = plan_text(&matching, running);
        let script = p.script();
        for untouched in [
            "router-id",
            "graceful-restart",
            "ebgp-requires-policy",
            "192.0.2.1",
            "default ipv4",
        ] {
            assert!(!script.contains(untouched), "{untouched}: {script}");
        }
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("ebgp-requires-policy")),
            "{:?}",
            p.warnings
        );
        // Alone on FRR, bgplb owns them again.
        let alone = running.replace(" neighbor 192.0.2.1 remote-as 65000\n", "");
        let script = plan_text(DESIRED_DUAL, &alone).script();
        assert!(
            script.contains(" bgp router-id 172.29.51.1\n")
                && script.contains("\n bgp ebgp-requires-policy\n")
                && script.contains(" bgp graceful-restart\n"),
            "{script}"
        );
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
    fn a_route_map_that_goes_is_deleted_by_name_with_its_optimization_setting() {
        let running = "\
route-map BGPLB-c-IN-V4 permit 10
exit
route-map BGPLB-c-IN-V4 deny 100
exit
no route-map BGPLB-c-IN-V4 optimization
no route-map BGPLB-old-IN-V4 optimization
route-map BGPLB-c-DRAIN-V4 permit 10
exit
route-map BGPLB-c-DRAIN-V4 permit 20
exit
router bgp 64512
exit
";
        let desired = "\
route-map BGPLB-c-DRAIN-V4 permit 10
exit
router bgp 64512
exit
";
        let script = plan_text(desired, running).script();
        assert_eq!(
            script,
            "no route-map BGPLB-c-DRAIN-V4 permit 20\nno route-map BGPLB-c-IN-V4\nno route-map BGPLB-old-IN-V4\n",
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
        let group = script.find("no neighbor BGPLB-c-V4\n").unwrap();
        // A route-map that goes entirely is deleted by name (its optimization setting too).
        let route_map = script.find("no route-map BGPLB-c-IN-V4\n").unwrap();
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
