//! The desired FRR configuration text for a site: the site file and the node set, rendered.

use bgplb_site::{GatewayInputs, Site};

use crate::error::Error;

/// Renders the complete desired configuration (see [`bgplb_site::gateway::render_text`]).
pub fn render(site: &Site, inputs: &GatewayInputs) -> String {
    bgplb_site::gateway::render_text(site, inputs)
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
    frr: bgplb_frr::FrrVersion,
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
        if let Ok(c) = crate::report::check(site, cluster, &report, None) {
            checked.push((stored.cluster.clone(), c));
        }
    }
    let mut inputs = crate::report::inputs(
        site,
        password,
        ecmp,
        checked.iter().map(|(n, c)| (n.as_str(), c)),
    );
    inputs.frr = frr;
    Ok(inputs)
}

/// The accepted reports, parsed (for status and the FIB check).
pub fn stored_reports(store: &crate::store::Store) -> Result<Vec<bgplb_proto::Report>, Error> {
    Ok(store
        .reports()?
        .iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect())
}
