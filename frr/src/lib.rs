//! The FRR side of bgplb, as values.
//!
//! * [`model`]: a typed subset of FRR's configuration (router bgp, peer-groups, neighbours,
//!   prefix-lists, community-lists, route-maps), rendered by [`render`] into FRR's own syntax,
//!   deterministically and in the canonical form FRR reads back.
//! * [`naming`]: the one place object names come from; everything bgplb owns starts with `BGPLB-`.
//! * [`text`] parses configuration text (ours or `show running-config`) into stanzas, [`owned`]
//!   extracts the part bgplb owns, and [`plan`] turns (desired, running) into the minimal list of
//!   changes and the vtysh script that applies them.
//! * [`overlay`]: liveness state (shut neighbours, drained neighbours) applied on top of a
//!   generation without becoming one.
//! * [`show`]: serde types for the `show ... json` outputs the agent reads back.
//! * [`version`]: which FRR runs, and the one table of lines only some releases understand.
//! * [`churn`]: the route-map deletions FRR before 8.3 must be given time to settle.
//!
//! Nothing here performs I/O: the agent's executor is the only code that talks to FRR.

pub mod churn;
pub mod model;
pub mod naming;
pub mod overlay;
pub mod owned;
pub mod plan;
pub mod render;
pub mod show;
pub mod text;
pub mod version;

pub use model::{Config, Family};
pub use owned::Owned;
pub use plan::{Change, Plan};
pub use version::{Capability, FrrVersion};
