//! Why a site cannot be rendered for Cilium: one enum, each variant naming what was wrong and
//! what to do about it.

use bgplb_site::Problem;

use crate::version::CiliumVersion;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("`{0}` is not a Cilium version (expected e.g. 1.16, 1.16.3 or v1.18.0)")]
    Version(String),

    #[error(
        "Cilium {0} is not supported: bgplb renders for Cilium 1.14 and later \
         (LB IPAM and the BGP control plane as bgplb uses them)"
    )]
    UnsupportedVersion(CiliumVersion),

    #[error(
        "Cilium {version} has no CiliumBGPPeeringPolicy: it was removed in Cilium 1.19 \
         (deprecated since 1.18). Render the v2 BGP resources instead \
         (CiliumBGPClusterConfig, CiliumBGPPeerConfig, CiliumBGPAdvertisement): \
         drop the legacy peering policy option"
    )]
    LegacyPeeringPolicyRemoved { version: CiliumVersion },

    #[error("the site file has {} problem(s):\n{}", .0.len(), list(.0))]
    InvalidSite(Vec<Problem>),

    #[error("the site has no cluster named `{0}`")]
    UnknownCluster(String),

    #[error("default pool `{0}` is not a pool cluster `{1}` may use")]
    UnknownDefaultPool(String, String),

    #[error(
        "none of the gateway's addresses ({addresses}) can be peered with: \
         add the gateway's address on the node network to gateway.addresses"
    )]
    NoPeerAddress { addresses: String },

    #[error("{key}: {message}")]
    Unsupported { key: String, message: String },

    #[error("`{value}` cannot be used as {what}: {why}")]
    InvalidName {
        what: &'static str,
        value: String,
        why: &'static str,
    },

    #[error("cannot serialize {what} as YAML: {message}")]
    Yaml { what: String, message: String },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
