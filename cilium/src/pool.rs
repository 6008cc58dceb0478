//! CiliumLoadBalancerIPPool: one per site pool the cluster may use.
//!
//! | Cilium | apiVersion | addresses | first/last IP of a CIDR |
//! |---|---|---|---|
//! | 1.14 | v2alpha1 | `cidrs` (ranges as their CIDR cover) | reserved (no field yet) |
//! | 1.15 | v2alpha1 | `blocks`, CIDR entries only (see [`CiliumVersion::pool_ranges_allowed`]) | `allowFirstLastIPs: "Yes"` |
//! | 1.16-1.17 | v2alpha1 | `blocks` with `cidr` or `start`/`stop` | `allowFirstLastIPs: "Yes"` |
//! | ≥ 1.18 | v2 | as 1.16 | as 1.16 |

use std::collections::BTreeSet;
use std::net::IpAddr;

use bgplb_site::{Pool, Range, Site};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::RenderError;
use crate::meta::{is_dns_subdomain, is_label_value, LabelSelector, ObjectMeta};
use crate::naming;
use crate::version::CiliumVersion;

pub const KIND: &str = "CiliumLoadBalancerIPPool";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LbIpPool {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: LbIpPoolSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LbIpPoolSpec {
    /// Absent below 1.15. Rendered explicitly from 1.15 on: its default was `No` in 1.15 and
    /// became `Yes` in 1.16, and a site block's addresses are all meant to be usable.
    #[serde(
        rename = "allowFirstLastIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_first_last_ips: Option<YesNo>,
    /// From 1.15 on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    /// Below 1.15 only (deprecated in 1.15, removed in 1.16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<CidrBlock>,
    pub disabled: bool,
    pub service_selector: LabelSelector,
}

/// The CRD's string enum `"Yes"` / `"No"` (not a boolean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum YesNo {
    Yes,
    No,
}

/// One entry of `blocks`: a CIDR, or a `start`/`stop` range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<IpNet>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<IpAddr>,
}

/// One entry of the pre-1.15 `cidrs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CidrBlock {
    pub cidr: IpNet,
}

/// One site block, parsed, remembering whether it was written as a range.
struct SiteBlock {
    range: Range,
    as_range: bool,
}

/// The site pools cluster `cluster` may use, in site order.
pub fn usable_pools<'a>(site: &'a Site, cluster: &str) -> Vec<&'a Pool> {
    site.pools
        .iter()
        .filter(|p| p.cluster.as_deref().is_none_or(|c| c == cluster))
        .collect()
}

/// The pools that select services without a `bgplb.io/pool` label: the named ones, or by
/// default the first enabled pool of each address family.
pub fn default_pools(
    pools: &[&Pool],
    cluster: &str,
    named: Option<&[String]>,
) -> Result<BTreeSet<String>, RenderError> {
    if let Some(named) = named {
        for n in named {
            if !pools.iter().any(|p| &p.name == n) {
                return Err(RenderError::UnknownDefaultPool(
                    n.clone(),
                    cluster.to_string(),
                ));
            }
        }
        return Ok(named.iter().cloned().collect());
    }
    let mut defaults = BTreeSet::new();
    for v4 in [true, false] {
        let first = pools.iter().find(|p| {
            !p.disabled
                && p.blocks
                    .iter()
                    .any(|b| Range::parse(b).is_ok_and(|r| r.is_ipv4() == v4))
        });
        if let Some(p) = first {
            defaults.insert(p.name.clone());
        }
    }
    Ok(defaults)
}

/// Renders one pool. `warnings` collects what the user must know (e.g. addresses 1.14 cannot
/// allocate).
pub fn pool(
    p: &Pool,
    cluster: &str,
    version: CiliumVersion,
    is_default: bool,
    warnings: &mut Vec<String>,
) -> Result<LbIpPool, RenderError> {
    if !is_dns_subdomain(&p.name) || !is_label_value(&p.name) {
        return Err(RenderError::InvalidName {
            what: "a pool name",
            value: p.name.clone(),
            why: "Kubernetes object names and label values are lower-case letters, digits and '-', at most 63 characters",
        });
    }
    let mut blocks = Vec::new();
    for (i, text) in p.blocks.iter().enumerate() {
        let range = Range::parse(text).map_err(|e| RenderError::Unsupported {
            key: format!("pool {} block {i}", p.name),
            message: e.to_string(),
        })?;
        blocks.push(SiteBlock {
            range,
            as_range: text.contains('-'),
        });
    }
    let mut spec = LbIpPoolSpec {
        allow_first_last_ips: None,
        blocks: Vec::new(),
        cidrs: Vec::new(),
        disabled: p.disabled,
        service_selector: if is_default {
            LabelSelector::without(naming::POOL_KEY)
        } else {
            LabelSelector::label(naming::POOL_KEY, &p.name)
        },
    };
    if version.pool_has_blocks() {
        spec.allow_first_last_ips = Some(YesNo::Yes);
        for b in &blocks {
            if b.as_range && version.pool_ranges_allowed() {
                spec.blocks.push(Block {
                    cidr: None,
                    start: Some(b.range.start),
                    stop: Some(b.range.end),
                });
            } else {
                spec.blocks
                    .extend(b.range.cidrs().into_iter().map(|c| Block {
                        cidr: Some(c),
                        start: None,
                        stop: None,
                    }));
            }
        }
    } else {
        for b in &blocks {
            spec.cidrs
                .extend(b.range.cidrs().into_iter().map(|cidr| CidrBlock { cidr }));
        }
        let cidrs: Vec<String> = spec.cidrs.iter().map(|c| c.cidr.to_string()).collect();
        warnings.push(format!(
            "pool {}: Cilium {version} reserves the first and last address of every CIDR \
             (allowFirstLastIPs arrived in 1.15), so the edge addresses of {} are not allocatable \
             (the pool never allocates outside {})",
            p.name,
            cidrs.join(", "),
            p.blocks.join(", ")
        ));
    }
    Ok(LbIpPool {
        api_version: version.pool_api_version().to_string(),
        kind: KIND.to_string(),
        metadata: ObjectMeta {
            name: p.name.clone(),
            labels: naming::labels(cluster),
        },
        spec,
    })
}
