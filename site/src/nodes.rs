//! The node set the gateway peers with: from the site file, later from the companion's reports.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::StaticNode;

/// One cluster node as the desired-state function sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    /// Sessions administratively down (a dead or departing node): its routes are flushed at once.
    #[serde(default)]
    pub shutdown: bool,
}

impl NodeSpec {
    pub fn new(name: &str, ipv4: Option<&str>, ipv6: Option<&str>) -> NodeSpec {
        NodeSpec {
            name: name.to_string(),
            ipv4: ipv4.map(|a| a.parse().expect("test literal")),
            ipv6: ipv6.map(|a| a.parse().expect("test literal")),
            shutdown: false,
        }
    }

    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.ipv4.iter().chain(self.ipv6.iter()).copied()
    }
}

impl From<&StaticNode> for NodeSpec {
    fn from(n: &StaticNode) -> NodeSpec {
        NodeSpec {
            name: n.name.clone(),
            ipv4: n.ipv4,
            ipv6: n.ipv6,
            shutdown: false,
        }
    }
}
