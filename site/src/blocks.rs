//! Pool blocks: `START-STOP` ranges and CIDRs, and their exact cover by CIDRs.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};

/// An inclusive address range of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    pub start: IpAddr,
    pub end: IpAddr,
}

/// Why a block string is not a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    Syntax(String),
    MixedFamilies(String),
    Reversed { start: IpAddr, end: IpAddr },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Syntax(s) => write!(
                f,
                "`{s}` is neither a CIDR (172.29.52.0/26) nor a range (172.29.52.100-172.29.52.199)"
            ),
            BlockError::MixedFamilies(s) => {
                write!(f, "range `{s}` mixes an IPv4 and an IPv6 address")
            }
            BlockError::Reversed { start, end } => {
                write!(f, "range start {start} is after its end {end}")
            }
        }
    }
}

impl Range {
    /// Parses `START-STOP` or a CIDR (whose network and broadcast addresses are included, as in
    /// Cilium with `allowFirstLastIPs`).
    pub fn parse(s: &str) -> Result<Range, BlockError> {
        let s = s.trim();
        if let Some((a, b)) = s.split_once('-') {
            let start: IpAddr = a.trim().parse().map_err(|_| BlockError::Syntax(s.into()))?;
            let end: IpAddr = b.trim().parse().map_err(|_| BlockError::Syntax(s.into()))?;
            if start.is_ipv4() != end.is_ipv4() {
                return Err(BlockError::MixedFamilies(s.into()));
            }
            if start > end {
                return Err(BlockError::Reversed { start, end });
            }
            return Ok(Range { start, end });
        }
        let net: IpNet = s.parse().map_err(|_| BlockError::Syntax(s.into()))?;
        if net.network() != net.addr() {
            return Err(BlockError::Syntax(format!(
                "{s} (host bits set; did you mean {}?)",
                net.trunc()
            )));
        }
        Ok(Range {
            start: net.network(),
            end: net.broadcast(),
        })
    }

    pub fn is_ipv4(&self) -> bool {
        self.start.is_ipv4()
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.is_ipv4() && self.start <= addr && addr <= self.end
    }

    pub fn overlaps(&self, other: &Range) -> bool {
        self.is_ipv4() == other.is_ipv4() && self.start <= other.end && other.start <= self.end
    }

    /// Whether the whole range lies inside `net`.
    pub fn within(&self, net: &IpNet) -> bool {
        net.contains(&self.start) && net.contains(&self.end)
    }

    /// Number of addresses (saturating at u128::MAX).
    pub fn size(&self) -> u128 {
        match (self.start, self.end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => u128::from(u32::from(b) - u32::from(a)) + 1,
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(b) - u128::from(a)).saturating_add(1),
            _ => 0,
        }
    }

    /// The smallest set of CIDRs covering exactly this range, in address order.
    pub fn cidrs(&self) -> Vec<IpNet> {
        match (self.start, self.end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect(),
            (IpAddr::V6(a), IpAddr::V6(b)) => Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_pools_expand_exactly() {
        let r = Range::parse("172.29.52.100-172.29.52.199").unwrap();
        assert_eq!(r.size(), 100);
        let cidrs: Vec<String> = r.cidrs().iter().map(|c| c.to_string()).collect();
        assert_eq!(
            cidrs,
            [
                "172.29.52.100/30",
                "172.29.52.104/29",
                "172.29.52.112/28",
                "172.29.52.128/26",
                "172.29.52.192/29"
            ]
        );
        let total: u128 = r
            .cidrs()
            .iter()
            .map(|c| 1u128 << (32 - c.prefix_len()))
            .sum();
        assert_eq!(total, 100);
        let v6 = Range::parse("fd47:25e1:2f96:52:100::/120").unwrap();
        assert_eq!(v6.size(), 256);
        assert_eq!(v6.cidrs().len(), 1);
    }

    #[test]
    fn bad_blocks_are_named() {
        assert!(matches!(
            Range::parse("172.29.52.199-172.29.52.100"),
            Err(BlockError::Reversed { .. })
        ));
        assert!(matches!(
            Range::parse("172.29.52.1-fd47::1"),
            Err(BlockError::MixedFamilies(_))
        ));
        assert!(matches!(Range::parse("pool"), Err(BlockError::Syntax(_))));
        assert!(Range::parse("172.29.52.5/24")
            .unwrap_err()
            .to_string()
            .contains("172.29.52.0/24"));
    }
}
