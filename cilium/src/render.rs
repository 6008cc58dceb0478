//! `render`: site + cluster + Cilium version → the Cilium objects and Helm values, and their YAML.

use std::collections::{BTreeMap, BTreeSet};

use bgplb_site::{Range, Site};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::bgp_v1::{self, BgpPeeringPolicy};
use crate::bgp_v2::{self, BgpAdvertisement, BgpClusterConfig, BgpPeerConfig};
use crate::error::RenderError;
use crate::helm::{self, ApiServer, HelmValues, Stage};
use crate::meta::{is_dns_subdomain, is_label_value, ObjectMeta};
use crate::naming;
use crate::pool::{self, LbIpPool};
use crate::session::{self, Family};
use crate::version::CiliumVersion;

/// Choices the site file does not make.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderOptions {
    /// Render the legacy CiliumBGPPeeringPolicy instead of the v2 BGP resources. Below Cilium
    /// 1.16 the policy is the only BGP API and is rendered regardless; from 1.19 (which removed
    /// it) asking for it is an error.
    pub legacy_peering_policy: bool,
    /// The Secret named by `authSecretRef` when the site has a BGP password (default
    /// `bgplb-bgp-password`).
    pub password_secret: Option<String>,
    /// Pools that take services without a `bgplb.io/pool` label (default: the first enabled pool
    /// of each address family).
    pub default_pools: Option<Vec<String>>,
    /// The cluster's pod CIDRs (one per family), for `ipv4NativeRoutingCIDR` /
    /// `ipv6NativeRoutingCIDR`.
    pub pod_cidrs: Vec<IpNet>,
    /// The API server for the kube-proxy replacement (`k8sServiceHost`; default Talos'
    /// KubePrism, `localhost`).
    pub k8s_service_host: Option<String>,
    /// `k8sServicePort` (default KubePrism's 7445).
    pub k8s_service_port: Option<u16>,
    /// The namespace Cilium runs in, for the `helm upgrade` line (default `kube-system`).
    pub cilium_namespace: Option<String>,
}

/// One stage's Helm values overlay and the comment block above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmStage {
    pub stage: Stage,
    /// Comment lines (with `# `).
    pub header: String,
    pub values: HelmValues,
}

/// A rendered Cilium object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Object {
    Pool(LbIpPool),
    ClusterConfig(BgpClusterConfig),
    PeerConfig(BgpPeerConfig),
    Advertisement(BgpAdvertisement),
    PeeringPolicy(BgpPeeringPolicy),
}

impl Object {
    fn parts(&self) -> (&str, &str, &ObjectMeta) {
        match self {
            Object::Pool(o) => (&o.api_version, &o.kind, &o.metadata),
            Object::ClusterConfig(o) => (&o.api_version, &o.kind, &o.metadata),
            Object::PeerConfig(o) => (&o.api_version, &o.kind, &o.metadata),
            Object::Advertisement(o) => (&o.api_version, &o.kind, &o.metadata),
            Object::PeeringPolicy(o) => (&o.api_version, &o.kind, &o.metadata),
        }
    }

    pub fn api_version(&self) -> &str {
        self.parts().0
    }

    pub fn kind(&self) -> &str {
        self.parts().1
    }

    pub fn name(&self) -> &str {
        &self.parts().2.name
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.parts().2.labels
    }

    /// The object's file in `--out DIR`.
    pub fn file_name(&self) -> String {
        naming::file_name(self.kind(), self.name())
    }

    /// The object as JSON (what `kubectl` would send).
    pub fn to_json(&self) -> Result<serde_json::Value, RenderError> {
        serde_json::to_value(self).map_err(|e| RenderError::Yaml {
            what: format!("{} {}", self.kind(), self.name()),
            message: e.to_string(),
        })
    }

    /// One YAML document, without the `---` separator.
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        yaml(self, &format!("{} {}", self.kind(), self.name()))
    }
}

fn yaml<T: Serialize>(value: &T, what: &str) -> Result<String, RenderError> {
    serde_saphyr::to_string(value).map_err(|e| RenderError::Yaml {
        what: what.to_string(),
        message: e.to_string(),
    })
}

/// Everything rendered for one cluster and Cilium version. Deterministic: pools in site order,
/// then the BGP objects (cluster config, peer configs IPv4 then IPv6, advertisement — or the
/// peering policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub version: CiliumVersion,
    pub cluster: String,
    pub objects: Vec<Object>,
    /// The Helm values overlays, in [`Stage::ALL`] order.
    pub helm: Vec<HelmStage>,
    /// What the user must act on: the render is usable, but something will not work as the
    /// site file says until they do (each one sentence, with the fix).
    pub warnings: Vec<String>,
}

impl Rendered {
    /// All objects as one multi-document stream for `kubectl apply -f -`, warnings as comments.
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        let mut out = format!(
            "# Cilium objects rendered by bgplb for cluster {}, Cilium {}.\n",
            self.cluster, self.version
        );
        for w in &self.warnings {
            out.push_str(&format!("# WARNING: {w}\n"));
        }
        for o in &self.objects {
            out.push_str("---\n");
            out.push_str(&o.to_yaml()?);
        }
        Ok(out)
    }

    /// One stage's Helm values.
    pub fn helm_values(&self, stage: Stage) -> &HelmValues {
        &self
            .helm
            .iter()
            .find(|h| h.stage == stage)
            .expect("every stage is rendered")
            .values
    }

    /// One stage's values file: the header comments, then the values.
    pub fn helm_values_yaml(&self, stage: Stage) -> Result<String, RenderError> {
        let h = self
            .helm
            .iter()
            .find(|h| h.stage == stage)
            .expect("every stage is rendered");
        Ok(format!(
            "{}{}",
            h.header,
            yaml(&h.values, "the Helm values")?
        ))
    }

    /// File name → content, for `--out DIR`: one file per object plus one values overlay per
    /// stage.
    pub fn files(&self) -> Result<BTreeMap<String, String>, RenderError> {
        let mut files = BTreeMap::new();
        for o in &self.objects {
            files.insert(o.file_name(), o.to_yaml()?);
        }
        for stage in Stage::ALL {
            files.insert(stage.file_name().to_string(), self.helm_values_yaml(stage)?);
        }
        Ok(files)
    }
}

/// Renders the Cilium side of `site` for `cluster` on Cilium `version`. Pure: reads no files
/// (the password file is only checked for presence; the Secret is created by the user).
pub fn render(
    site: &Site,
    cluster: &str,
    version: CiliumVersion,
    options: &RenderOptions,
) -> Result<Rendered, RenderError> {
    version.check_supported()?;
    let problems = site.validate();
    if !problems.is_empty() {
        return Err(RenderError::InvalidSite(problems));
    }
    let cl = site
        .cluster(cluster)
        .ok_or_else(|| RenderError::UnknownCluster(cluster.to_string()))?;
    if !is_label_value(cluster) || !is_dns_subdomain(&naming::bgp_name(cluster)) {
        return Err(RenderError::InvalidName {
            what: "a cluster name",
            value: cluster.to_string(),
            why: "it becomes a label value and part of object names: lower-case letters, digits \
                  and '-', not ending in '-'",
        });
    }
    if site.gateway.name.is_empty() || site.gateway.name.len() > 200 {
        return Err(RenderError::InvalidName {
            what: "the gateway name",
            value: site.gateway.name.clone(),
            why: "it names the BGP peers, which Cilium limits to 255 characters: use 1-200",
        });
    }
    if options.legacy_peering_policy && !version.has_peering_policy() {
        return Err(RenderError::LegacyPeeringPolicyRemoved { version });
    }
    let legacy = options.legacy_peering_policy || !version.has_bgp_v2();
    let mut warnings = Vec::new();

    let usable = pool::usable_pools(site, cluster);
    let defaults = pool::default_pools(&usable, cluster, options.default_pools.as_deref())?;
    let mut objects = Vec::new();
    let mut pool_families = BTreeSet::new();
    for p in &usable {
        if !p.disabled {
            pool_families.extend(
                p.blocks
                    .iter()
                    .filter_map(|b| Range::parse(b).ok())
                    .map(|r| Family::of(&r.start)),
            );
        }
        let rendered = pool::pool(
            p,
            cluster,
            version,
            defaults.contains(&p.name),
            &mut warnings,
        )?;
        objects.push(Object::Pool(rendered));
    }

    let secret = options
        .password_secret
        .as_deref()
        .unwrap_or(naming::DEFAULT_PASSWORD_SECRET);
    let session = session::session(site, cl, secret)?;
    let peers = session::peers(site, cl)?;
    let peer_families: BTreeSet<Family> = peers.iter().map(|p| p.family).collect();
    for f in pool_families.difference(&peer_families) {
        warnings.push(format!(
            "the cluster has {0} pools but the gateway has no {0} address to peer with: their \
             addresses are allocated but not advertised; add the gateway's {0} address on the \
             node network to gateway.addresses",
            f.afi()
        ));
    }

    if legacy {
        legacy_warnings(site, version, &mut warnings);
        objects.push(Object::PeeringPolicy(bgp_v1::peering_policy(
            cluster, version, &session, &peers,
        )));
    } else {
        objects.push(Object::ClusterConfig(bgp_v2::cluster_config(
            cluster, version, &session, &peers,
        )));
        for f in &peer_families {
            objects.push(Object::PeerConfig(bgp_v2::peer_config(
                cluster, version, &session, *f,
            )));
        }
        objects.push(Object::Advertisement(bgp_v2::advertisement(
            cluster, version, &session,
        )));
    }

    let ipv6 = pool_families.contains(&Family::Ipv6);
    let api_server = ApiServer {
        host: options
            .k8s_service_host
            .clone()
            .unwrap_or_else(|| helm::KUBEPRISM_HOST.to_string()),
        port: options.k8s_service_port.unwrap_or(helm::KUBEPRISM_PORT),
    };
    let cilium_namespace = options
        .cilium_namespace
        .as_deref()
        .unwrap_or(naming::CILIUM_NAMESPACE);
    let helm: Vec<HelmStage> = Stage::ALL
        .iter()
        .map(|&stage| HelmStage {
            stage,
            header: helm::header(&session, &api_server, cilium_namespace, &version, stage),
            values: helm::values(&session, &options.pod_cidrs, ipv6, &api_server, stage),
        })
        .collect();
    if options.pod_cidrs.iter().all(|n| !n.addr().is_ipv4()) {
        warnings.push(
            "the Helm values have no ipv4NativeRoutingCIDR: native routing with masquerading \
             needs the pod CIDR (the Cilium agent refuses to start without it); pass the \
             cluster's pod CIDRs with --pod-cidr (e.g. --pod-cidr 10.244.0.0/16)"
                .to_string(),
        );
    }
    if ipv6 && options.pod_cidrs.iter().all(|n| !n.addr().is_ipv6()) {
        warnings.push(
            "the Helm values have no ipv6NativeRoutingCIDR: pass the cluster's IPv6 pod CIDR \
             with --pod-cidr"
                .to_string(),
        );
    }
    if !legacy && version.advertises_local_services_everywhere() {
        warnings.push(format!(
            "Cilium {version} advertises externalTrafficPolicy: Local Services from every node, \
             endpoint or not (cilium/cilium#44803, 1.19): the gateway spreads their traffic over \
             all nodes and a node without an endpoint drops it; give BGP-announced Services \
             externalTrafficPolicy: Cluster on this version, or stay on 1.18"
        ));
    }
    if let Some(secret) = &session.auth_secret {
        warnings.push(format!(
            "the BGP sessions use a password: create Secret {secret} with key `password` in {ns} \
             (kubectl -n {ns} create secret generic {secret} --from-file=password=PASSWORD_FILE)",
            ns = naming::SECRETS_NAMESPACE
        ));
    }
    Ok(Rendered {
        version,
        cluster: cluster.to_string(),
        objects,
        helm,
        warnings,
    })
}

fn legacy_warnings(site: &Site, version: CiliumVersion, warnings: &mut Vec<String>) {
    if !version.peering_policy_has_path_attributes() {
        let consequence = if site.bgp.require_community {
            "the gateway requires it (bgp.require_community) and will refuse every route: set \
             bgp.require_community = false so the gateway adds the community itself, or upgrade \
             Cilium"
        } else {
            "the gateway adds it (bgp.require_community = false)"
        };
        warnings.push(format!(
            "Cilium {version} cannot attach BGP communities (advertisedPathAttributes arrived in \
             1.15), so routes arrive without {}: {consequence}",
            site.bgp.community
        ));
    } else if !version.has_bgp_v2() {
        warnings.push(format!(
            "Cilium {version}: the community is attached by advertisedPathAttributes selecting \
             bgplb's pools; 1.15 patch releases without cilium/cilium#32694 only read a pool's \
             deprecated `cidrs` field there, so if routes reach the gateway without {}, use the \
             latest 1.15 patch release or Cilium 1.16+",
            site.bgp.community
        ));
    }
    if version.has_bgp_v2() {
        warnings.push(format!(
            "CiliumBGPPeeringPolicy is superseded by the v2 BGP resources (Cilium 1.16), \
             deprecated in 1.18 and removed in 1.19; Cilium {version} has the v2 resources: \
             render without the legacy option to use them"
        ));
    }
    if !version.peering_policy_has_families() {
        warnings.push(format!(
            "Cilium {version} offers IPv4 and IPv6 unicast on every neighbor (per-neighbor \
             families arrived in 1.15); the gateway activates only the neighbor's own family, so \
             each session still carries one family"
        ));
    }
}
