//! The Cilium version the render targets, and every version-dependent choice in one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::RenderError;

/// A Cilium release: `1.16`, `1.16.3` or `v1.18.0`. Ordered by (major, minor, patch), a missing
/// patch sorting before every patch of the same minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CiliumVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: Option<u32>,
}

/// The Kubernetes API version string of a Cilium CRD version.
pub const V2: &str = "cilium.io/v2";
pub const V2ALPHA1: &str = "cilium.io/v2alpha1";

impl CiliumVersion {
    pub const fn new(major: u32, minor: u32) -> CiliumVersion {
        CiliumVersion {
            major,
            minor,
            patch: None,
        }
    }

    /// Parses `1.16`, `1.16.3`, `v1.18.0`; a pre-release or build suffix (`1.19.0-rc.1`) is
    /// ignored, so a release candidate is treated as its release.
    pub fn parse(s: &str) -> Result<CiliumVersion, RenderError> {
        let bad = || RenderError::Version(s.to_string());
        let t = s.trim();
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let core = t.split(['-', '+']).next().unwrap_or("");
        let mut parts = core.split('.');
        let mut num = |required: bool| -> Result<Option<u32>, RenderError> {
            match parts.next() {
                None if !required => Ok(None),
                None => Err(bad()),
                Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                    p.parse().map(Some).map_err(|_| bad())
                }
                Some(_) => Err(bad()),
            }
        };
        let major = num(true)?.ok_or_else(bad)?;
        let minor = num(true)?.ok_or_else(bad)?;
        let patch = num(false)?;
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(CiliumVersion {
            major,
            minor,
            patch,
        })
    }

    /// `major.minor`, for comparisons that ignore the patch release.
    fn minor_of(self) -> (u32, u32) {
        (self.major, self.minor)
    }

    fn at_least(self, major: u32, minor: u32) -> bool {
        self.minor_of() >= (major, minor)
    }

    /// The oldest release this renderer knows: LB IPAM and the BGP control plane both exist, and
    /// L2 announcements (which we switch off) were introduced.
    pub const OLDEST: CiliumVersion = CiliumVersion::new(1, 14);

    /// Refuses releases older than [`Self::OLDEST`] (and major versions other than 1, which do
    /// not exist yet: their API is unknown).
    pub fn check_supported(self) -> Result<(), RenderError> {
        if self.major != 1 || !self.at_least(1, 14) {
            return Err(RenderError::UnsupportedVersion(self));
        }
        Ok(())
    }

    /// CiliumLoadBalancerIPPool: promoted to `cilium.io/v2` in 1.18 (v2alpha1 deprecated).
    pub fn pool_api_version(self) -> &'static str {
        if self.at_least(1, 18) {
            V2
        } else {
            V2ALPHA1
        }
    }

    /// `spec.blocks` (with `start`/`stop` ranges) and `allowFirstLastIPs` arrived in 1.15; 1.14
    /// only has `spec.cidrs`, and reserves the first and last address of every CIDR.
    pub fn pool_has_blocks(self) -> bool {
        self.at_least(1, 15)
    }

    /// Whether pool blocks may be `start`/`stop` ranges for this render. With the legacy peering
    /// policy the community is attached through `advertisedPathAttributes` selecting pools, and
    /// the BGPv1 route-policy reconciler parses every block's `cidr` (a range block fails the
    /// whole reconciliation), so below 1.16 ranges are rendered as their exact CIDR cover.
    pub fn pool_ranges_allowed(self) -> bool {
        self.has_bgp_v2()
    }

    /// CiliumBGPClusterConfig / PeerConfig / Advertisement exist from 1.16.
    pub fn has_bgp_v2(self) -> bool {
        self.at_least(1, 16)
    }

    /// API version of the BGP v2 resources: v2alpha1 in 1.16-1.17, `cilium.io/v2` from 1.18.
    pub fn bgp_api_version(self) -> &'static str {
        if self.at_least(1, 18) {
            V2
        } else {
            V2ALPHA1
        }
    }

    /// CiliumBGPPeeringPolicy (BGPv1) was removed in 1.19.
    pub fn has_peering_policy(self) -> bool {
        !self.at_least(1, 19)
    }

    /// Cilium 1.19's BGP v2 control plane advertises `externalTrafficPolicy: Local` Services
    /// from every node, with or without a local endpoint (cilium/cilium#44803: 1.18 honours the
    /// policy, 1.19.1 does not; open, no fixed release yet).
    pub fn advertises_local_services_everywhere(self) -> bool {
        self.at_least(1, 19) && !self.at_least(1, 20)
    }

    /// BGPv1 `neighbors[].families` arrived in 1.15.
    pub fn peering_policy_has_families(self) -> bool {
        self.at_least(1, 15)
    }

    /// BGPv1 `neighbors[].advertisedPathAttributes` (communities) arrived in 1.15.
    pub fn peering_policy_has_path_attributes(self) -> bool {
        self.at_least(1, 15)
    }
}

impl fmt::Display for CiliumVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patch {
            Some(p) => write!(f, "{}.{}.{}", self.major, self.minor, p),
            None => write!(f, "{}.{}", self.major, self.minor),
        }
    }
}

impl FromStr for CiliumVersion {
    type Err = RenderError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CiliumVersion::parse(s)
    }
}

impl TryFrom<String> for CiliumVersion {
    type Error = RenderError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CiliumVersion::parse(&s)
    }
}

impl From<CiliumVersion> for String {
    fn from(v: CiliumVersion) -> String {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        assert_eq!(
            CiliumVersion::parse("1.16").unwrap(),
            CiliumVersion::new(1, 16)
        );
        let v = CiliumVersion::parse("1.16.3").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 16, Some(3)));
        assert_eq!(
            CiliumVersion::parse("v1.18.0").unwrap().to_string(),
            "1.18.0"
        );
        assert_eq!(
            CiliumVersion::parse(" V1.19.0-rc.2 ").unwrap().to_string(),
            "1.19.0"
        );
        for bad in [
            "", "1", "1.", ".16", "1.16.", "1.16.3.4", "one.two", "1.x", "v", "1.-1", "1.16a",
        ] {
            assert!(CiliumVersion::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn orders_by_numbers_not_text() {
        let v = |s| CiliumVersion::parse(s).unwrap();
        assert!(v("1.9") < v("1.10"));
        assert!(v("1.16") < v("1.16.0"));
        assert!(v("1.16.9") < v("1.16.10"));
        assert!(v("1.17.12") < v("1.18"));
        assert_eq!(v("v1.18.0"), v("1.18.0"));
    }

    #[test]
    fn version_matrix() {
        let v = |s| CiliumVersion::parse(s).unwrap();
        assert!(v("1.13.9").check_supported().is_err());
        assert!(v("2.0").check_supported().is_err());
        assert!(v("1.14").check_supported().is_ok());
        assert!(!v("1.14.9").pool_has_blocks());
        assert!(v("1.15.0").pool_has_blocks());
        assert!(!v("1.15.19").pool_ranges_allowed());
        assert!(v("1.16").pool_ranges_allowed());
        assert_eq!(v("1.17.99").pool_api_version(), V2ALPHA1);
        assert_eq!(v("1.18").pool_api_version(), V2);
        assert!(!v("1.15.7").has_bgp_v2());
        assert_eq!(v("1.16").bgp_api_version(), V2ALPHA1);
        assert_eq!(v("1.18.2").bgp_api_version(), V2);
        assert!(v("1.18.9").has_peering_policy());
        assert!(!v("1.19").has_peering_policy());
    }
}
