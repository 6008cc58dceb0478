//! Cilium objects for a site (see issue 5).
