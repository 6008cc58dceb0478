//! Names of every FRR object bgplb creates. Nothing else in the code base builds these strings.
//!
//! Everything bgplb owns carries the [`PREFIX`]; the planner uses that to tell our objects from the
//! operator's, so other configuration in the same FRR survives every apply.

use crate::model::Family;

/// Prefix of every object name bgplb owns.
pub const PREFIX: &str = "BGPLB-";

/// Community list matching the LB community.
pub const COMMUNITY_LIST: &str = "BGPLB-COMMUNITY";

/// Outbound route-map denying everything: nothing is exported to the cluster.
pub const DENY_ALL: &str = "BGPLB-DENY-ALL";

/// Whether an FRR object name belongs to bgplb.
pub fn is_ours(name: &str) -> bool {
    name.starts_with(PREFIX)
}

fn suffix(family: Family) -> &'static str {
    match family {
        Family::V4 => "V4",
        Family::V6 => "V6",
    }
}

/// Peer-group holding one cluster's sessions of one address family.
pub fn peer_group(cluster: &str, family: Family) -> String {
    format!("{PREFIX}{cluster}-{}", suffix(family))
}

/// Prefix-list with the host routes a cluster may announce in one family.
pub fn pool_prefix_list(cluster: &str, family: Family) -> String {
    format!("{PREFIX}{cluster}-POOLS-{}", suffix(family))
}

/// Inbound route-map of one cluster and family.
pub fn route_map_in(cluster: &str, family: Family) -> String {
    format!("{PREFIX}{cluster}-IN-{}", suffix(family))
}

/// De-preferring inbound route-map of one cluster and family: the inbound policy plus a lower
/// local-preference, set on a draining node's neighbour (it overrides the peer-group's).
pub fn route_map_drain(cluster: &str, family: Family) -> String {
    format!("{PREFIX}{cluster}-DRAIN-{}", suffix(family))
}

/// The cluster and family of one of our peer-groups (`BGPLB-home-V4` → `("home", V4)`).
pub fn parse_peer_group(name: &str) -> Option<(&str, Family)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (cluster, family) = rest.rsplit_once('-')?;
    let family = match family {
        "V4" => Family::V4,
        "V6" => Family::V6,
        _ => return None,
    };
    (!cluster.is_empty()
        && !cluster.ends_with("-POOLS")
        && !cluster.ends_with("-IN")
        && !cluster.ends_with("-DRAIN"))
    .then_some((cluster, family))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_ours_and_distinct() {
        let names = [
            peer_group("home", Family::V4),
            peer_group("home", Family::V6),
            pool_prefix_list("home", Family::V4),
            route_map_in("home", Family::V6),
            route_map_drain("home", Family::V4),
            COMMUNITY_LIST.to_string(),
            DENY_ALL.to_string(),
        ];
        assert!(names.iter().all(|n| is_ours(n)));
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(!is_ours("UPLINK-IN"));
        assert_eq!(parse_peer_group(&names[1]), Some(("home", Family::V6)));
        assert_eq!(parse_peer_group(&names[2]), None);
        assert_eq!(parse_peer_group(&names[4]), None);
        assert_eq!(
            parse_peer_group("BGPLB-my-lab-V4"),
            Some(("my-lab", Family::V4))
        );
    }
}
