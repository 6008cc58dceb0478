//! Which FRR runs, and what its configuration language has: the one table of version-dependent
//! lines.
//!
//! bgplb renders for the FRR it talks to: the agent reads the version from the running
//! configuration's `frr version X.Y.Z` line (or `show version`), `render --frr-version X.Y`
//! names it for an upload where nothing can be asked. Every line that not every supported FRR
//! understands is a [`Capability`] here, with the release that introduced it; the renderer asks
//! [`FrrVersion::has`] and nothing else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An FRR release, `major.minor` (the patch level changes no syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FrrVersion {
    pub major: u16,
    pub minor: u16,
}

/// Lines that only some supported FRR releases understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    /// `no route-map NAME optimization` at the top level (FRRouting/frr#8389), rendered to work
    /// around 8.x's route-map prefix index, which lost a prefix when a pool change renumbered a
    /// list (seen with 8.4). 7.5 has no such line (and no index). On 10.3 the line is harmful:
    /// with optimization off, bgpd's inbound route-map matched nothing (the pool prefix-list
    /// showed refcount 0 and every VIP was filtered; turning optimization back on accepted
    /// them), so from 10.0 bgplb leaves FRR's default on.
    RouteMapOptimizationOff,
    /// `[no] bgp graceful-restart notification` (RFC 8538's N-bit, FRRouting/frr#11147). Before
    /// it FRR negotiates no N-bit, so a hold-timer expiry is an ordinary session loss already.
    GracefulRestartNotification,
    /// Writing a prefix-list entry over an existing sequence number with another prefix
    /// (FRRouting/frr#8008, "fix a crash in plist update"). FRR 7.5.1's bgpd and zebra abort on
    /// it (`trie_install_fn: Assertion ... failed`, seen here when a pool change renumbered a
    /// list), so for 7.5 the old entry is removed first.
    PrefixListEntryReplace,
}

impl Capability {
    pub const ALL: [Capability; 3] = [
        Capability::RouteMapOptimizationOff,
        Capability::GracefulRestartNotification,
        Capability::PrefixListEntryReplace,
    ];

    /// The first release with the line.
    pub fn since(self) -> FrrVersion {
        match self {
            Capability::RouteMapOptimizationOff => FrrVersion::new(8, 0),
            Capability::GracefulRestartNotification => FrrVersion::new(8, 3),
            Capability::PrefixListEntryReplace => FrrVersion::new(8, 0),
        }
    }

    /// The first release where bgplb must not use it any more, if any.
    pub fn until(self) -> Option<FrrVersion> {
        match self {
            Capability::RouteMapOptimizationOff => Some(FrrVersion::new(10, 0)),
            _ => None,
        }
    }

    /// The line, for messages.
    pub fn line(self) -> &'static str {
        match self {
            Capability::RouteMapOptimizationOff => "no route-map NAME optimization",
            Capability::GracefulRestartNotification => "no bgp graceful-restart notification",
            Capability::PrefixListEntryReplace => "ip prefix-list NAME seq N (over another prefix)",
        }
    }
}

impl FrrVersion {
    pub const fn new(major: u16, minor: u16) -> FrrVersion {
        FrrVersion { major, minor }
    }

    /// What bgplb renders for when nobody says otherwise: the release its tests run by default.
    pub const REFERENCE: FrrVersion = FrrVersion::new(8, 4);

    /// The releases bgplb's tests run against (Debian bullseye's, bookworm's and trixie's FRR).
    pub const TESTED: [FrrVersion; 3] = [
        FrrVersion::new(7, 5),
        FrrVersion::new(8, 4),
        FrrVersion::new(10, 3),
    ];

    /// The oldest release bgplb renders for.
    pub const OLDEST: FrrVersion = FrrVersion::new(7, 5);

    /// Whether bgplb uses `capability` on this release: introduced, and not yet retired.
    pub fn has(self, capability: Capability) -> bool {
        self >= capability.since() && capability.until().is_none_or(|u| self < u)
    }

    /// Whether a route-map deleted by name may be created or deleted again at once: from 8.3
    /// (FRRouting/frr#10708; before it zebra and bgpd crash, see [`crate::churn`]).
    pub fn survives_route_map_churn(self) -> bool {
        self >= FrrVersion::new(8, 3)
    }

    pub fn is_tested(self) -> bool {
        FrrVersion::TESTED.contains(&self)
    }

    /// The version in FRR's own output: the running configuration's `frr version 8.4.4` line or
    /// `show version`'s `FRRouting 8.4.4 (host) on Linux...`.
    pub fn from_output(text: &str) -> Option<FrrVersion> {
        text.lines().find_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["frr", "version", v, ..] | ["FRRouting", v, ..] => v.parse().ok(),
                _ => None,
            }
        })
    }
}

impl Default for FrrVersion {
    fn default() -> FrrVersion {
        FrrVersion::REFERENCE
    }
}

impl FromStr for FrrVersion {
    type Err = String;

    /// `8.4`, `8.4.4`, `7.5.1-1.1+deb11u2`, `10.3-dev`.
    fn from_str(s: &str) -> Result<FrrVersion, String> {
        let bad = || format!("`{s}` is not an FRR version (expected e.g. 8.4 or 7.5.1)");
        let mut parts = s.trim().trim_start_matches(['v', 'V']).split('.');
        let number = |p: Option<&str>| -> Result<u16, String> {
            let digits: String = p
                .ok_or_else(bad)?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().map_err(|_| bad())
        };
        let v = FrrVersion {
            major: number(parts.next())?,
            minor: number(parts.next())?,
        };
        if v < FrrVersion::OLDEST {
            return Err(format!(
                "FRR {v} is older than {}, the oldest release bgplb renders for",
                FrrVersion::OLDEST
            ));
        }
        Ok(v)
    }
}

impl fmt::Display for FrrVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_what_frr_prints() {
        assert_eq!("8.4".parse(), Ok(FrrVersion::new(8, 4)));
        assert_eq!("7.5.1-1.1+deb11u2".parse(), Ok(FrrVersion::new(7, 5)));
        assert_eq!("10.3-dev".parse(), Ok(FrrVersion::new(10, 3)));
        assert!("8".parse::<FrrVersion>().is_err());
        assert!("latest".parse::<FrrVersion>().is_err());
        assert!("7.2".parse::<FrrVersion>().unwrap_err().contains("older"));
        let running = "Building configuration...\n\nCurrent configuration:\n!\nfrr version 7.5.1\nfrr defaults traditional\n";
        assert_eq!(
            FrrVersion::from_output(running),
            Some(FrrVersion::new(7, 5))
        );
        let show = "\nFRRouting 10.3 (gw) on Linux(6.1.0-28-amd64).\nCopyright 1996-2005 Kunihiro Ishiguro, et al.\n";
        assert_eq!(FrrVersion::from_output(show), Some(FrrVersion::new(10, 3)));
        assert_eq!(FrrVersion::from_output("hostname gw\n"), None);
    }

    #[test]
    fn the_capability_table_follows_the_releases() {
        let v75 = FrrVersion::new(7, 5);
        let v84 = FrrVersion::new(8, 4);
        for c in Capability::ALL {
            assert!(!v75.has(c), "7.5 rejects {}", c.line());
            assert!(v84.has(c), "8.4 has {}", c.line());
        }
        let v103 = FrrVersion::new(10, 3);
        assert!(v103.has(Capability::GracefulRestartNotification));
        assert!(v103.has(Capability::PrefixListEntryReplace));
        assert!(
            !v103.has(Capability::RouteMapOptimizationOff),
            "10.3 matches nothing with optimization off"
        );
        assert!(!FrrVersion::new(8, 2).has(Capability::GracefulRestartNotification));
        assert!(FrrVersion::new(8, 2).has(Capability::RouteMapOptimizationOff));
        assert!(FrrVersion::REFERENCE.is_tested());
        assert!(!FrrVersion::new(9, 1).is_tested());
    }
}
