//! bgplb-companion: the cluster side of bgplb.
//!
//! [`watch`] keeps Kubernetes and Cilium objects, [`project`] turns them into the report
//! (pure), [`push`] delivers it to every agent over mutual TLS, [`leader`] makes sure only one
//! replica reports; [`run`] wires them together (see its module doc); [`serve`] answers the
//! Deployment's probes and Prometheus. The day-2 commands: [`validate`], [`bgp_peering`]
//! (`verify-bgp-peering`) and [`connectivity`] (`test-connectivity`).

pub mod agent;
pub mod bgp_peering;
pub mod cli;
pub mod config;
pub mod connectivity;
pub mod dns;
pub mod dynkube;
pub mod leader;
pub mod migrate;
pub mod project;
pub mod push;
pub mod run;
pub mod serve;
pub mod validate;
pub mod watch;
