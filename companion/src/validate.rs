//! `bgplb-companion validate`: the cluster side checked against the site file (pure).
//!
//! The caller lists the objects (Services, Nodes, Cilium's pools and BGP objects, optionally the
//! agent's status); [`validate`] judges them and returns a [`Report`] of named checks, each
//! ok / warn / fail with detail lines naming the object concerned. No I/O, no clock.
//!
//! | check | what it proves |
//! |---|---|
//! | `l2-policies` | no CiliumL2AnnouncementPolicy is left (an L2 announcement still alive) |
//! | `service-ips` | every LoadBalancer IP is inside an enabled BGP pool of the site |
//! | `pools` | every site pool exists in the cluster with the same blocks and `disabled`; usage; no other pool on the node network |
//! | `bgp-objects` | the BGP objects peer with the gateway (ASNs, addresses, one family per session) and advertise LoadBalancer IPs with the community |
//! | `nodes-vs-agent` | every node has an Established session per family on the gateway, and the gateway has none for nodes that are gone |
//! | `cilium-version` | nothing the installed Cilium ignores, or an upgrade would silently break |
//! | `dns` | with `--dns-server`: external-dns's names of each LoadBalancer Service resolve to its VIPs (A and AAAA); a stale record from before the migration is named |
//!
//! [`render_table`] prints the report like `bgplb-agent validate`; [`render_markdown`] writes it
//! as a Markdown file; the report itself serializes for `--json`.

mod bgp;
mod dns;
mod l2;
pub(crate) mod nodes;
mod objects;
mod peering;
mod pools;
mod ranges;
mod render;
mod services;
mod version;
pub(crate) mod views;

use std::collections::BTreeSet;
use std::fmt;

use bgplb_cilium::session::Family;
use bgplb_proto::AgentStatus;
use bgplb_site::{Cluster, Site};
use k8s_openapi::api::core::v1::{Node, Service};
use serde::Serialize;
use serde_json::Value;

pub use dns::{dns_names, DnsResults};
pub use render::{render_markdown, render_table};

/// Everything `validate` judges.
#[derive(Debug, Clone)]
pub struct Input {
    pub site: Site,
    /// The site cluster these objects belong to.
    pub cluster: String,
    pub services: Vec<Service>,
    pub nodes: Vec<Node>,
    pub cilium: CiliumObjects,
    /// The installed Cilium, e.g. "1.18.2"; `None` when it could not be found.
    pub cilium_version: Option<String>,
    /// The agent's `GET /v1/status`, when the caller could reach it.
    pub agent: Option<AgentStatus>,
    /// Cilium's `cilium-config` ConfigMap (what the Helm values set), when it could be read.
    pub cilium_config: Option<Value>,
    /// The DNS server's answers for [`dns_names`]; `None` when no server was given.
    pub dns: Option<DnsResults>,
    /// The migration's backup (ConfigMap `bgplb/bgplb-migration-backup`), when there is one:
    /// the Services' addresses and the L2 pools from before the migration.
    pub backup: Option<crate::migrate::Backup>,
}

/// Cilium's objects as the API returns them (`apiVersion`, `kind`, `metadata`, `spec`,
/// `status`), each kind listed once, at the version the server served it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CiliumObjects {
    pub pools: Vec<Value>,
    pub cluster_configs: Vec<Value>,
    pub peer_configs: Vec<Value>,
    pub advertisements: Vec<Value>,
    pub peering_policies: Vec<Value>,
    pub l2_policies: Vec<Value>,
}

impl CiliumObjects {
    /// Sorts objects by `kind`; a `...List` (or `List`) contributes its `items`. Other kinds are
    /// ignored, and an object seen twice (same kind and name) is kept once.
    pub fn from_values<I: IntoIterator<Item = Value>>(values: I) -> CiliumObjects {
        let mut out = CiliumObjects::default();
        for v in values {
            out.add(v);
        }
        out
    }

    fn add(&mut self, v: Value) {
        if let Some(items) = v.get("items").and_then(Value::as_array) {
            for item in items {
                self.add(item.clone());
            }
            return;
        }
        let list = match objects::kind(&v) {
            "CiliumLoadBalancerIPPool" => &mut self.pools,
            "CiliumBGPClusterConfig" => &mut self.cluster_configs,
            "CiliumBGPPeerConfig" => &mut self.peer_configs,
            "CiliumBGPAdvertisement" => &mut self.advertisements,
            "CiliumBGPPeeringPolicy" => &mut self.peering_policies,
            "CiliumL2AnnouncementPolicy" => &mut self.l2_policies,
            _ => return,
        };
        if !list.iter().any(|o| objects::name(o) == objects::name(&v)) {
            list.push(v);
        }
    }

    /// The same objects, each (kind, name) once.
    fn deduplicated(&self) -> CiliumObjects {
        CiliumObjects::from_values(
            [
                &self.pools,
                &self.cluster_configs,
                &self.peer_configs,
                &self.advertisements,
                &self.peering_policies,
                &self.l2_policies,
            ]
            .into_iter()
            .flatten()
            .cloned(),
        )
    }
}

/// The verdict of one check, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    /// Problems first (failures, then warnings), then what was found in order; never empty.
    pub details: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// No check failed (warnings allowed).
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    /// The worst status of any check.
    pub fn status(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Runs every check.
pub fn validate(input: &Input) -> Report {
    let Some(cluster) = input.site.cluster(&input.cluster) else {
        let known: Vec<&str> = input
            .site
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        let mut f = Findings::new("site");
        f.fail(format!(
            "cluster {} is not in the site file (it has: {}): pass the cluster name the site uses",
            input.cluster,
            if known.is_empty() {
                "no clusters".to_string()
            } else {
                known.join(", ")
            }
        ));
        return report(vec![f.finish()]);
    };
    let ctx = Ctx::new(input, cluster);
    report(vec![
        l2::check(&ctx),
        services::check(&ctx),
        pools::check(&ctx),
        bgp::check(&ctx),
        nodes::check(&ctx),
        version::check(&ctx),
        dns::check(&ctx),
    ])
}

fn report(checks: Vec<Check>) -> Report {
    Report {
        ok: checks.iter().all(|c| c.status != Status::Fail),
        checks,
    }
}

/// What every check reads, parsed once.
struct Ctx<'a> {
    input: &'a Input,
    cluster: &'a Cluster,
    cilium: CiliumObjects,
    /// The site pools this cluster may use.
    site_pools: Vec<ranges::SitePool>,
    nodes: Vec<views::NodeView>,
    services: Vec<views::ServiceView>,
}

impl<'a> Ctx<'a> {
    fn new(input: &'a Input, cluster: &'a Cluster) -> Ctx<'a> {
        Ctx {
            input,
            cluster,
            cilium: input.cilium.deduplicated(),
            site_pools: ranges::site_pools(&input.site, &cluster.name),
            nodes: views::nodes(&input.nodes),
            services: views::lb_services(&input.services),
        }
    }

    fn site(&self) -> &Site {
        &self.input.site
    }

    /// Address families the cluster's nodes peer in: those of its node subnets.
    fn families(&self) -> BTreeSet<Family> {
        nodes::families(self.cluster)
    }
}

/// Lines of one check, each with its own severity; the check takes the worst.
struct Findings {
    name: &'static str,
    lines: Vec<(Status, String)>,
}

impl Findings {
    fn new(name: &'static str) -> Findings {
        Findings {
            name,
            lines: Vec::new(),
        }
    }

    fn fail(&mut self, line: impl Into<String>) {
        self.lines.push((Status::Fail, line.into()));
    }

    fn warn(&mut self, line: impl Into<String>) {
        self.lines.push((Status::Warn, line.into()));
    }

    /// What was found, without a verdict.
    fn info(&mut self, line: impl Into<String>) {
        self.lines.push((Status::Ok, line.into()));
    }

    fn status(&self) -> Status {
        self.lines
            .iter()
            .map(|(s, _)| *s)
            .max()
            .unwrap_or(Status::Ok)
    }

    fn finish(mut self) -> Check {
        let status = self.status();
        // Stable: within a severity, the order the check found them in.
        self.lines.sort_by_key(|l| std::cmp::Reverse(l.0));
        let mut details: Vec<String> = self.lines.into_iter().map(|(_, l)| l).collect();
        if details.is_empty() {
            details.push("nothing to check".into());
        }
        Check {
            name: self.name.to_string(),
            status,
            details,
        }
    }
}

#[cfg(test)]
mod tests;
