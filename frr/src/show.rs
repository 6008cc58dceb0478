//! Serde types for the `show ... json` outputs the agent reads back from FRR (7.5, 8.4, 10.3: the
//! unit tests read each release's captured outputs in `tests/fixtures/<release>/`).
//!
//! Only the fields bgplb uses are declared; everything else FRR prints is ignored, and every field
//! has a default, so a field FRR drops or renames degrades a status column instead of failing the
//! whole read-back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `show bgp summary json`: one entry per address family FRR has peers in.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Summary {
    #[serde(rename = "ipv4Unicast", default)]
    pub ipv4_unicast: Option<AfSummary>,
    #[serde(rename = "ipv6Unicast", default)]
    pub ipv6_unicast: Option<AfSummary>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct AfSummary {
    pub router_id: String,
    #[serde(rename = "as")]
    pub asn: u32,
    pub peers: BTreeMap<String, PeerSummary>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct PeerSummary {
    pub remote_as: u32,
    pub state: String,
    pub peer_state: String,
    pub peer_uptime_msec: u64,
    /// Prefixes received and accepted by the inbound policy.
    pub pfx_rcd: u64,
    pub pfx_snt: u64,
    pub connections_established: u64,
    pub connections_dropped: u64,
    pub desc: Option<String>,
}

/// `show bgp neighbors json`: neighbour address → details.
pub type Neighbors = BTreeMap<String, NeighborDetail>;

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct NeighborDetail {
    pub remote_as: u32,
    pub local_as: u32,
    pub nbr_desc: Option<String>,
    pub peer_group: Option<String>,
    pub bgp_state: String,
    pub bgp_timer_up_msec: u64,
    pub bgp_timer_hold_time_msecs: u64,
    pub bgp_timer_keep_alive_interval_msecs: u64,
    pub connections_established: u64,
    pub connections_dropped: u64,
    pub last_reset_due_to: Option<String>,
    pub address_family_info: BTreeMap<String, NeighborAf>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct NeighborAf {
    pub peer_group_member: Option<String>,
    pub inbound_path_policy_config: Option<bool>,
    pub accepted_prefix_counter: u64,
    pub sent_prefix_counter: u64,
}

/// `show bgp ipv4|ipv6 unicast json`: the BGP table after inbound policy.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Table {
    pub router_id: String,
    #[serde(rename = "localAS")]
    pub local_as: u32,
    pub routes: BTreeMap<String, Vec<Path>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Path {
    pub valid: bool,
    pub bestpath: bool,
    pub multipath: bool,
    pub peer_id: String,
    pub path: String,
    pub nexthops: Vec<Nexthop>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default)]
pub struct Nexthop {
    pub ip: String,
    pub afi: String,
    pub used: bool,
}

/// `show bgp ipv4|ipv6 unicast neighbors X received-routes json` (needs soft-reconfiguration).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct ReceivedRoutes {
    /// FRR 7.5 prints these under `advertisedRoutes` (the key of the advertised-routes view).
    #[serde(alias = "advertisedRoutes")]
    pub received_routes: BTreeMap<String, serde_json::Value>,
    pub total_prefix_counter: u64,
    pub filtered_prefix_counter: u64,
    /// Set instead of the above when FRR has no such neighbour.
    pub warning: Option<String>,
}

/// Parses one of the outputs above, naming the command in the error.
pub fn parse<T: serde::de::DeserializeOwned>(command: &str, json: &str) -> Result<T, ParseError> {
    serde_json::from_str(json).map_err(|source| ParseError {
        command: command.to_string(),
        message: source.to_string(),
    })
}

/// FRR printed something the parser could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub command: String,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read the output of `{}`: {}",
            self.command, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// The count of open configuration transactions in mgmtd's `show mgmt transaction all` (FRR 9
/// and later, `mgmt_txn_status_write`: a `Total: N` line); `None` for an answer without it.
pub fn open_mgmt_transactions(text: &str) -> Option<usize> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Total:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Whether zebra's `show zebra client summary` lists bgpd (`bgp`, or `bgp[instance:session]`
/// from FRR 8 on); `None` for an answer without the table's header.
pub fn bgpd_is_zebra_client(text: &str) -> Option<bool> {
    let mut lines = text.lines();
    lines.find(|l| l.trim_start().starts_with("Name") && l.contains("Connect Time"))?;
    Some(lines.any(|l| {
        let name = l.split_whitespace().next().unwrap_or("");
        name == "bgp" || name.starts_with("bgp[")
    }))
}

#[cfg(test)]
mod tests {
    use super::{bgpd_is_zebra_client, open_mgmt_transactions};

    /// `show mgmt transaction all` as FRR 10.3 prints it (mgmt_txn_status_write): idle, and
    /// with the configuration push to a daemon that has just connected.
    #[test]
    fn mgmtd_transactions_are_counted() {
        assert_eq!(
            open_mgmt_transactions("MGMTD Transactions\n  Total: 0\n"),
            Some(0)
        );
        let busy = "MGMTD Transactions\n  Txn: \t\t\t0x0x55d1c3a0\n    Txn-Id: \t\t\t1\n    \
                    Session-Id: \t\t0\n    Type: \t\t\tCONFIG\n    Ref-Count: \t\t\t1\n  Total: 1\n";
        assert_eq!(open_mgmt_transactions(busy), Some(1));
        assert_eq!(
            open_mgmt_transactions("% Unknown command: show mgmt transaction all"),
            None
        );
    }

    /// `show zebra client summary` in FRR 7.5's and 10.3's formats (zebra_show_client_brief):
    /// bgpd connected, only staticd, and an answer from something else.
    #[test]
    fn bgpd_among_zebras_clients() {
        let v75 = "Name    Connect Time    Last Read  Last Write  IPv4 Routes       IPv6 Routes    \n\
                   --------------------------------------------------------------------------------\n\
                   bgp           00:00:05     00:00:05    00:00:05       0/0              0/0       \n\
                   Routes column shows (added+updated)/deleted\n";
        assert_eq!(bgpd_is_zebra_client(v75), Some(true));
        let v103 = "Name      Connect Time    Last Read  Last Write      IPv4 Routes           IPv6 Routes\n\
                    ------------------------------------------------------------------------------------------\n\
                    staticd       00:00:03     00:00:03    00:00:03          0/0                 0/0       \n\
                    Routes column shows (added+updated)/deleted\n";
        assert_eq!(bgpd_is_zebra_client(v103), Some(false));
        let instance = v103.replace("staticd   ", "bgp[1:0]  ");
        assert_eq!(bgpd_is_zebra_client(&instance), Some(true));
        assert_eq!(bgpd_is_zebra_client("zebra is not running"), None);
    }

    use super::*;

    #[test]
    fn reads_summary_fixture() {
        let s: Summary = parse(
            "show bgp summary json",
            include_str!("../tests/fixtures/summary.json"),
        )
        .unwrap();
        let v4 = s.ipv4_unicast.unwrap();
        assert_eq!(v4.asn, 64512);
        let p = &v4.peers["172.29.51.11"];
        assert_eq!(p.state, "Established");
        assert_eq!(p.pfx_rcd, 1);
        assert_eq!(p.connections_established, 1);
        let v6 = s.ipv6_unicast.unwrap();
        assert_eq!(v6.peers["fd47:25e1:2f96:51::11"].state, "Established");
    }

    #[test]
    fn reads_neighbors_fixture() {
        let n: Neighbors = parse(
            "show bgp neighbors json",
            include_str!("../tests/fixtures/neighbors.json"),
        )
        .unwrap();
        let d = &n["172.29.51.11"];
        assert_eq!(d.bgp_state, "Established");
        assert_eq!(d.peer_group.as_deref(), Some("BGPLB-home-V4"));
        assert_eq!(
            d.address_family_info["ipv4Unicast"].accepted_prefix_counter,
            1
        );
    }

    #[test]
    fn reads_table_fixture() {
        let t: Table = parse(
            "show bgp ipv4 unicast json",
            include_str!("../tests/fixtures/table-v4.json"),
        )
        .unwrap();
        let paths = &t.routes["172.29.52.100/32"];
        assert_eq!(paths[0].nexthops[0].ip, "172.29.51.11");
        assert!(paths[0].bestpath);
    }

    #[test]
    fn names_the_command_on_garbage() {
        let e = parse::<Summary>("show bgp summary json", "% bgpd is not running").unwrap_err();
        assert!(e.to_string().contains("show bgp summary json"));
    }

    /// Each release's outputs, captured from the real FRR by the lab test `frr_outputs`
    /// (`CAPTURE_FRR_FIXTURES=1`): one session, one VIP accepted, a default route refused.
    fn release(dir: &str) -> [(&'static str, String); 5] {
        let read = |name: &str| {
            let path = format!("{}/tests/fixtures/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        [
            ("summary", read("summary.json")),
            ("neighbors", read("neighbors.json")),
            ("table", read("table.json")),
            ("received-routes", read("received-routes.json")),
            ("running-config", read("running-config.txt")),
        ]
    }

    #[test]
    fn every_release_reads_the_same() {
        for dir in ["7.5", "8.4", "10.3"] {
            let [(_, summary), (_, neighbors), (_, table), (_, received), (_, running)] =
                release(dir);
            let s: Summary = parse("show bgp summary json", &summary).unwrap();
            let p = &s.ipv4_unicast.unwrap().peers["172.29.51.11"];
            assert_eq!((p.state.as_str(), p.pfx_rcd), ("Established", 1), "{dir}");
            assert!(p.connections_established >= 1, "{dir}");
            let n: Neighbors = parse("show bgp neighbors json", &neighbors).unwrap();
            let d = &n["172.29.51.11"];
            assert_eq!(d.bgp_state, "Established", "{dir}");
            assert_eq!(d.peer_group.as_deref(), Some("BGPLB-home-V4"), "{dir}");
            assert_eq!(
                d.address_family_info["ipv4Unicast"].accepted_prefix_counter, 1,
                "{dir}"
            );
            let t: Table = parse("show bgp ipv4 unicast json", &table).unwrap();
            let vip = &t.routes["172.29.52.101/32"][0];
            assert!(vip.valid && vip.bestpath, "{dir}");
            assert_eq!(vip.nexthops[0].ip, "172.29.51.11", "{dir}");
            let r: ReceivedRoutes = parse("received-routes", &received).unwrap();
            assert!(
                r.received_routes.contains_key("0.0.0.0/0")
                    && r.received_routes.contains_key("172.29.52.101/32"),
                "{dir}: {:?}",
                r.received_routes.keys().collect::<Vec<_>>()
            );
            assert_eq!(
                (r.total_prefix_counter, r.filtered_prefix_counter),
                (2, 1),
                "{dir}"
            );
            assert_eq!(
                crate::FrrVersion::from_output(&running).map(|v| v.to_string()),
                Some(dir.to_string())
            );
            let owned = crate::Owned::from_text(&running);
            assert_eq!(owned.asn, Some(64512), "{dir}");
            assert_eq!(
                owned.neighbors.get("172.29.51.11").map(String::as_str),
                Some("BGPLB-home-V4"),
                "{dir}"
            );
        }
    }
}
