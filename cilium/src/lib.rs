//! The Cilium side of a site (issue 5): the objects and Helm values that make Cilium allocate
//! LoadBalancer IPs from the site's pools and announce them to the gateway by BGP, rendered for
//! the Cilium version installed.
//!
//! Pure: no I/O, no Kubernetes client. [`render`] builds typed objects (serde structs with
//! Cilium's exact field names); [`Rendered::to_yaml`] and [`Rendered::files`] serialize them.
//! Every rendered object is checked in `tests/` against Cilium's published CRD schemas.
//!
//! # Version matrix
//!
//! | Cilium | pools | BGP | notes |
//! |---|---|---|---|
//! | 1.14 | `cilium.io/v2alpha1`, `spec.cidrs` (ranges as CIDR covers) | CiliumBGPPeeringPolicy v2alpha1 | no `allowFirstLastIPs` (edge addresses of each CIDR reserved), no per-neighbor `families`, no `advertisedPathAttributes` (no community) |
//! | 1.15 | v2alpha1, `spec.blocks` of CIDRs, `allowFirstLastIPs: "Yes"` | CiliumBGPPeeringPolicy with `families` and `advertisedPathAttributes` | ranges as CIDR covers: BGPv1's path-attribute policy parses every block's `cidr` |
//! | 1.16-1.17 | v2alpha1, `spec.blocks` with `start`/`stop` ranges | CiliumBGPClusterConfig + PeerConfig (one per family) + Advertisement, `cilium.io/v2alpha1` | the peering policy on request ([`RenderOptions::legacy_peering_policy`]) |
//! | 1.18 | `cilium.io/v2` | the same, `cilium.io/v2` | peering policy deprecated |
//! | ≥ 1.19 | v2 | v2 | peering policy removed: requesting it is an error |
//!
//! Facts behind it (from Cilium's changes and docs): `blocks`/ranges and `allowFirstLastIPs`
//! arrived in 1.15 (default `No`, `Yes` from 1.16), `cidrs` was removed in 1.16; the pool and the
//! BGP v2 resources were promoted to `cilium.io/v2` in 1.18 (BGP v2 dropped `transport.localPort`
//! and `peerConfigRef.group/kind`); the BGP v2 resources arrived in 1.16; CiliumBGPPeeringPolicy
//! was deprecated in 1.18 and removed in 1.19; BGPv1 neighbor `families` and
//! `advertisedPathAttributes` arrived in 1.15. A CiliumBGPAdvertisement with an empty selector
//! advertises nothing, so bgplb always renders a selector that matches every service without
//! the `bgplb.io/no-advertise` label.
//!
//! # What users label
//!
//! See [`naming`]: `bgplb.io/pool: NAME` on a Service picks a pool (unlabelled services get the
//! default pool of each family), `bgplb.io/no-advertise` keeps a Service out of BGP.

pub mod bgp_v1;
pub mod bgp_v2;
pub mod error;
pub mod helm;
pub mod meta;
pub mod naming;
pub mod pool;
mod render;
pub mod secret;
pub mod session;
pub mod version;

pub use error::RenderError;
pub use helm::Stage;
pub use render::{render, HelmStage, Object, RenderOptions, Rendered};
pub use version::CiliumVersion;
