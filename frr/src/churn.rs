//! Route-map churn FRR before 8.3 does not survive.
//!
//! FRR processes a route-map change after a delay (`bgp route-map delay-timer` and zebra's
//! `zebra route-map delay-timer`, 5 s by default) and keeps a deleted route-map in its table
//! until then. Before 8.3, creating the same name again adds a second entry the table cannot
//! tell from the first; deleting it once more and growing the table corrupts it, and zebra and
//! bgpd crash in their delayed processing (FRRouting/frr#10708, fixed in 8.3 by "lib: Fix
//! corruption when routemap delete/add sequence happens"). Reproduced with Debian's 7.5.1, the
//! release UniFi OS 4 runs: three rounds of create, delete and create of one cluster's
//! route-maps within a second killed both daemons with SIGSEGV in `route_map_walk_update_list`,
//! and the same rounds 6 s apart did not.
//!
//! So on those releases a script that touches a route-map bgplb deleted by name less than
//! [`SETTLE`] ago waits first. The deletions are recorded by wall-clock time, so that one-shot
//! commands and the daemon share them through a file.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a route-map deleted by name is left alone: FRR's default delay of 5 s, and a second
/// for the timer to have run.
pub const SETTLE: Duration = Duration::from_secs(6);

/// The route-maps `script` deletes by name (`no route-map NAME`).
pub fn route_maps_deleted(script: &str) -> BTreeSet<String> {
    script
        .lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            ["no", "route-map", name] => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

/// The route-maps `script` creates, changes or deletes (top-level `[no] route-map NAME ...`).
pub fn route_maps_touched(script: &str) -> BTreeSet<String> {
    script
        .lines()
        .filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
            ["route-map", name, ..] | ["no", "route-map", name, ..] => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

/// When bgplb last deleted each route-map by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteMapDeletions(BTreeMap<String, SystemTime>);

impl RouteMapDeletions {
    /// The record as [`RouteMapDeletions::to_text`] wrote it (`NAME MILLISECONDS` lines); lines
    /// that do not read are skipped: the record only ever makes a script wait.
    pub fn from_text(text: &str) -> RouteMapDeletions {
        RouteMapDeletions(
            text.lines()
                .filter_map(|l| {
                    let (name, ms) = l.split_once(' ')?;
                    let ms: u64 = ms.trim().parse().ok()?;
                    Some((name.to_string(), UNIX_EPOCH + Duration::from_millis(ms)))
                })
                .collect(),
        )
    }

    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|(name, at)| {
                let ms = at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                format!("{name} {ms}\n")
            })
            .collect()
    }

    /// How long `script` must wait at `now`, and for which route-map: the longest remaining
    /// settle time of a route-map it touches. A deletion recorded in the future (the clock was
    /// set back) waits at most [`SETTLE`].
    pub fn wait_before(&self, script: &str, now: SystemTime) -> Option<(Duration, String)> {
        route_maps_touched(script)
            .into_iter()
            .filter_map(|name| {
                let at = self.0.get(&name)?;
                let since = now.duration_since(*at).unwrap_or(Duration::ZERO);
                let left = SETTLE.saturating_sub(since);
                (!left.is_zero()).then_some((left, name))
            })
            .max()
    }

    /// Records the route-maps `script` deleted by name at `now`, and forgets deletions that
    /// have settled.
    pub fn record(&mut self, script: &str, now: SystemTime) {
        self.0
            .retain(|_, at| now.duration_since(*at).map_or(true, |since| since < SETTLE));
        for name in route_maps_deleted(script) {
            self.0.insert(name, now);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELETE: &str = "router bgp 64512\n no neighbor BGPLB-lab-V4\nexit\n\
                          no route-map BGPLB-lab-IN-V4\nno route-map BGPLB-lab-DRAIN-V4\n\
                          no route-map BGPLB-home-IN-V4 permit 20\n";
    const CREATE: &str = "route-map BGPLB-lab-IN-V4 permit 10\n match ip address prefix-list \
                          BGPLB-lab-POOLS-V4\nexit\n";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn only_deletions_by_name_are_deletions() {
        assert_eq!(
            route_maps_deleted(DELETE),
            ["BGPLB-lab-DRAIN-V4", "BGPLB-lab-IN-V4"]
                .map(String::from)
                .into()
        );
        assert_eq!(
            route_maps_touched(DELETE),
            ["BGPLB-home-IN-V4", "BGPLB-lab-DRAIN-V4", "BGPLB-lab-IN-V4"]
                .map(String::from)
                .into()
        );
        // A neighbour's reference to a route-map is not the route-map.
        assert!(route_maps_touched(" neighbor X route-map BGPLB-lab-IN-V4 in\n").is_empty());
    }

    #[test]
    fn a_recreation_waits_until_the_deletion_settled() {
        let mut record = RouteMapDeletions::default();
        record.record(DELETE, at(0));
        assert_eq!(
            record.wait_before(CREATE, at(2)),
            Some((Duration::from_secs(4), "BGPLB-lab-IN-V4".to_string()))
        );
        assert_eq!(record.wait_before(CREATE, at(6)), None);
        assert_eq!(
            record.wait_before("route-map BGPLB-other-IN-V4 permit 10\n", at(1)),
            None
        );
        // The clock set back: the wait is bounded.
        assert_eq!(
            record.wait_before(CREATE, at(0) - Duration::from_secs(60)),
            Some((SETTLE, "BGPLB-lab-IN-V4".to_string()))
        );
        // It survives the file, and settled deletions are forgotten.
        let read = RouteMapDeletions::from_text(&record.to_text());
        assert_eq!(read, record);
        let mut later = read;
        later.record("", at(7));
        assert!(later.is_empty());
        assert!(RouteMapDeletions::from_text("garbage\nX notanumber\n").is_empty());
    }
}
