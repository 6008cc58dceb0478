//! Every name and label bgplb puts on Cilium objects, in one place.
//!
//! Users steer services with two labels on the Service:
//! - `bgplb.io/pool: NAME` picks a pool; services without it get the default pool(s).
//! - `bgplb.io/no-advertise: ""` (any value) keeps a service's address out of BGP.

use std::collections::BTreeMap;

/// Marks every object bgplb renders (the standard Kubernetes "managed by" label).
pub const MANAGED_BY_KEY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "bgplb";
/// The site cluster an object was rendered for.
pub const CLUSTER_KEY: &str = "bgplb.io/cluster";
/// On a Service: the pool it wants an address from.
pub const POOL_KEY: &str = "bgplb.io/pool";
/// On a Service: do not advertise it.
pub const NO_ADVERTISE_KEY: &str = "bgplb.io/no-advertise";
/// On the CiliumBGPAdvertisement: what the peer configs' `families[].advertisements` select.
pub const ADVERTISE_KEY: &str = "bgplb.io/advertise";
pub const ADVERTISE_SERVICES: &str = "lb-services";

/// The Secret (key `password`) a PeerConfig's `authSecretRef` names by default; Cilium reads it
/// from the BGP secrets namespace (Helm `bgpControlPlane.secretsNamespace.name`).
pub const DEFAULT_PASSWORD_SECRET: &str = "bgplb-bgp-password";
/// Cilium's default BGP secrets namespace.
pub const SECRETS_NAMESPACE: &str = "kube-system";
/// Where Cilium runs unless the companion's configuration says otherwise.
pub const CILIUM_NAMESPACE: &str = "kube-system";

/// Labels on every rendered object.
pub fn labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_KEY.to_string(), MANAGED_BY.to_string()),
        (CLUSTER_KEY.to_string(), cluster.to_string()),
    ])
}

/// The CiliumBGPClusterConfig, its BGP instance, and the CiliumBGPPeeringPolicy.
pub fn bgp_name(cluster: &str) -> String {
    format!("bgplb-{cluster}")
}

/// The CiliumBGPPeerConfig of one address family (`ipv4` / `ipv6`).
pub fn peer_config_name(cluster: &str, family: &str) -> String {
    format!("bgplb-{cluster}-{family}")
}

/// The CiliumBGPAdvertisement for LoadBalancer services.
pub fn advertisement_name(cluster: &str) -> String {
    format!("bgplb-{cluster}-lb-services")
}

/// A peer in the cluster config: `udm-pro-ipv4`, then `udm-pro-ipv4-2` for a second address of
/// the same family.
pub fn peer_name(gateway: &str, family: &str, index: usize) -> String {
    if index == 0 {
        format!("{gateway}-{family}")
    } else {
        format!("{gateway}-{family}-{}", index + 1)
    }
}

/// File name of an object in `--out DIR`: `<kind lower-case>-<name>.yaml`, unique because every
/// object is cluster-scoped.
pub fn file_name(kind: &str, name: &str) -> String {
    format!("{}-{name}.yaml", kind.to_ascii_lowercase())
}

/// The Helm values overlays in `--out DIR`, one per stage of a live migration.
pub const HELM_VALUES_BGP_FILE: &str = "cilium-values-1-bgp.yaml";
pub const HELM_VALUES_FINAL_FILE: &str = "cilium-values-2-final.yaml";
