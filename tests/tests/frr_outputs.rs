//! The `show ... json` outputs bgplb reads, from the FRR the lab runs (`BGPLB_FRR`), parsed with
//! the agent's own types: a session summary, the neighbours' details, the BGP table, and the
//! routes a neighbour sent (an accepted VIP and a refused default route), and the two text
//! outputs an apply waits on (zebra's clients, mgmtd's transactions). With
//! `CAPTURE_FRR_FIXTURES=1` the outputs are written to `frr/tests/fixtures/<release>/`, where the
//! frr crate's unit tests read them offline.

use std::path::Path;

use bgplb_frr::show::{self, NeighborDetail, ReceivedRoutes, Summary, Table};
use bgplb_tests::{Lab, LabSpec};

const COMMUNITY: &[&str] = &["64512:100"];

#[test]
fn every_output_bgplb_reads_parses_on_this_frr() {
    let lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        ..LabSpec::default()
    });
    lab.apply_and_wait(&lab.site());
    let node = &lab.nodes[0];
    node.announce("0.0.0.0/0", COMMUNITY);
    node.announce("172.29.52.101/32", COMMUNITY);
    lab.wait_route("172.29.52.101", &["172.29.51.11"]);

    let commands = [
        ("summary", "show bgp summary json".to_string()),
        ("neighbors", "show bgp neighbors json".to_string()),
        ("table", "show bgp ipv4 unicast json".to_string()),
        (
            "received-routes",
            format!(
                "show bgp ipv4 unicast neighbors {} received-routes json",
                node.ipv4
            ),
        ),
    ];
    let version = bgplb_tests::frr::build().version;
    let capture = std::env::var_os("CAPTURE_FRR_FIXTURES").is_some_and(|v| v == "1");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../frr/tests/fixtures")
        .join(version.to_string());
    let mut outputs = std::collections::BTreeMap::new();
    for (name, command) in &commands {
        let text = lab.vtysh(command);
        if capture {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.json")), &text).unwrap();
        }
        outputs.insert(*name, (command.clone(), text));
    }
    if capture {
        std::fs::write(dir.join("running-config.txt"), lab.running_config()).unwrap();
    }

    let (command, text) = &outputs["summary"];
    let summary: Summary = show::parse(command, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let v4 = summary
        .ipv4_unicast
        .as_ref()
        .unwrap_or_else(|| panic!("no ipv4Unicast in {text}"));
    let peer = v4
        .peers
        .get(&node.ipv4)
        .unwrap_or_else(|| panic!("no peer {} in {text}", node.ipv4));
    assert_eq!(peer.state, "Established", "{text}");
    assert_eq!(
        peer.pfx_rcd, 1,
        "the VIP accepted, the default refused: {text}"
    );

    let (command, text) = &outputs["neighbors"];
    let neighbors: std::collections::BTreeMap<String, NeighborDetail> =
        show::parse(command, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let n = &neighbors[&node.ipv4];
    assert_eq!(n.bgp_state, "Established", "{text}");
    assert!(n.connections_established >= 1, "{text}");

    let (command, text) = &outputs["table"];
    let table: Table = show::parse(command, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(table.routes.contains_key("172.29.52.101/32"), "{text}");
    assert!(!table.routes.contains_key("0.0.0.0/0"), "{text}");

    let (command, text) = &outputs["received-routes"];
    let received: ReceivedRoutes =
        show::parse(command, text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let prefixes: Vec<&String> = received.received_routes.keys().collect();
    assert!(
        received.received_routes.contains_key("0.0.0.0/0")
            && received.received_routes.contains_key("172.29.52.101/32"),
        "soft-reconfiguration keeps what was sent, refused or not: {prefixes:?}\n{text}"
    );

    // The text outputs the agent waits on before an apply: bgpd connected to zebra (else it
    // refuses `bgp graceful-restart`), and, with mgmtd, no transaction open.
    let text = lab.vtysh("show zebra client summary");
    assert_eq!(show::bgpd_is_zebra_client(&text), Some(true), "{text}");
    if bgplb_tests::frr::build().uses_mgmtd() {
        let text = lab.vtysh("show mgmt transaction all");
        assert_eq!(show::open_mgmt_transactions(&text), Some(0), "{text}");
    }

    // status names the release, validate judges it against the tested ones.
    let status = lab.agent_ok(&["status"]);
    assert!(
        status
            .lines()
            .next()
            .unwrap_or("")
            .ends_with(&format!(", FRR {version}")),
        "{status}"
    );
    let out = lab.agent(&["validate", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let check = v["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "frr-version"))
        .unwrap_or_else(|| panic!("no frr-version check: {v}"));
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(
        check["details"][0],
        format!("FRR {version} (tested)"),
        "{check}"
    );
}
