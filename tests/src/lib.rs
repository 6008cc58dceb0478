//! The lab: network namespaces with a real FRR gateway and real GoBGP nodes, for end-to-end tests.
//!
//! Rules the lab keeps: every address lives only inside namespaces a test
//! created; no namespace is connected to the host's own namespace or given a route out; only
//! processes the lab started are stopped, by their handles; namespaces and FRR directories are
//! removed on drop, also when a test fails; a lab left behind by a killed test run is removed by
//! the next one (its creator's pid is in its name); every wait is bounded.

pub mod bins;
pub mod cilium;
pub mod client;
pub mod cmd;
pub mod fixtures;
pub mod frr;
pub mod kubesim;
pub mod lab;
pub mod lbipam;
pub mod netns;
pub mod pki;
pub mod rbac;
pub mod soak;
pub mod traffic;
pub mod unifi;
pub mod vm;

pub use lab::{Lab, LabSpec, Node};
