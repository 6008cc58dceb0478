//! bgplb-agent: the gateway side of bgplb.
//!
//! ```text
//! cli ──▶ site file (bgplb_site::load) ──▶ desired (site + nodes → FRR text)
//!                                              │
//!                                              ▼
//!                     apply::Applier ── plan (bgplb_frr, pure) ── vtysh (only FRR I/O)
//!                           │
//!                           └── store (only SQLite owner): generations, events
//! ```

pub mod api;
pub mod apply;
pub mod checks;
pub mod cli;
pub mod daemon;
pub mod desired;
pub mod error;
pub mod fault;
pub mod files;
pub mod install;
pub mod kernel;
pub mod kstate;
pub mod liveness;
pub mod metrics;
pub mod nat;
pub mod netcheck;
pub mod ownership;
pub mod page;
pub mod pki;
pub mod redact;
pub mod report;
pub mod segment;
pub mod status;
pub mod store;
pub mod tls;
pub mod troubleshoot;
pub mod udm;
pub mod unifi;
pub mod vtysh;

pub use error::Error;
