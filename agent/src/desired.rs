//! The desired FRR configuration text for a site: the site file and the node set, rendered.

use bgplb_site::{gateway_config, GatewayInputs, Site};

use crate::error::Error;

/// Renders the complete desired configuration. The header is part of the stored generation, so it
/// holds nothing that changes between runs.
pub fn render(site: &Site, inputs: &GatewayInputs) -> String {
    let config = gateway_config(site, inputs);
    let mut out = format!(
        "! bgplb: BGP for the LoadBalancer segment of gateway {} (AS {})\n\
         ! Rendered from the site file; bgplb owns the BGPLB-* objects and the router bgp settings it sets.\n!\n",
        site.gateway.name, site.gateway.asn
    );
    out.push_str(&bgplb_frr::render::render(&config));
    out
}

/// Inputs from the site file alone (static nodes), with the password file read.
pub fn site_inputs(site: &Site) -> Result<GatewayInputs, Error> {
    let password = bgplb_site::read_password(site).map_err(|p| {
        Error::Site(bgplb_site::LoadError::Invalid {
            path: "site file".into(),
            problems: vec![p],
        })
    })?;
    Ok(GatewayInputs::from_site(site, password))
}

/// Inputs from the site file and the clusters' stored reports (each checked again against the
/// current site file; one that no longer passes is left out, so its cluster uses static nodes).
pub fn inputs_from_store(
    site: &Site,
    store: &crate::store::Store,
    ecmp: bool,
) -> Result<GatewayInputs, Error> {
    let password = site_inputs(site)?.password;
    let mut checked = Vec::new();
    for stored in store.reports()? {
        let Some(cluster) = site.cluster(&stored.cluster) else {
            continue;
        };
        let Ok(report) = serde_json::from_str::<bgplb_proto::Report>(&stored.body) else {
            continue;
        };
        if let Ok(c) = crate::report::check(site, cluster, &report) {
            checked.push((stored.cluster.clone(), c));
        }
    }
    Ok(crate::report::inputs(
        site,
        password,
        ecmp,
        checked.iter().map(|(n, c)| (n.as_str(), c)),
    ))
}

/// The accepted reports, parsed (for status and the FIB check).
pub fn stored_reports(store: &crate::store::Store) -> Result<Vec<bgplb_proto::Report>, Error> {
    Ok(store
        .reports()?
        .iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect())
}
