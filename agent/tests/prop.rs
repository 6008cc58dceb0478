//! Inputs nobody planned for, as property tests: the site file parser with any text, and reports
//! with any names, addresses, pools and VIPs. Nothing panics, and whatever a report holds, the
//! configuration rendered from it has no line outside bgplb's own objects (a node name cannot
//! smuggle a line into FRR).

use std::collections::BTreeSet;
use std::path::Path;

use bgplb_frr::Owned;
use proptest::prelude::*;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)).unwrap()
}

/// Strings a hostile or broken companion might send: mostly names as Kubernetes makes them, and
/// now and then FRR syntax, newlines, quotes or very long ones.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        40 => "[a-z][a-z0-9-]{0,19}",
        1 => "[ -~\n\t]{0,40}",
        1 => Just("k8s-1\n router bgp 1\n neighbor 6.6.6.6 remote-as 6".to_string()),
        1 => Just("x\nip prefix-list EVIL seq 1 permit 0.0.0.0/0".to_string()),
        1 => Just("k8s-1 remote-as 6".to_string()),
        1 => "[a-z]{300}",
    ]
}

/// Addresses of one family: mostly where they belong, sometimes anywhere or not an address.
fn v4(prefix: &'static str) -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        10 => (1u8..=254).prop_map(move |h| serde_json::json!(format!("{prefix}{h}"))),
        1 => any::<u32>().prop_map(|a| serde_json::json!(std::net::Ipv4Addr::from(a).to_string())),
        1 => nasty().prop_map(serde_json::Value::from),
    ]
}

fn v6(prefix: &'static str) -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        10 => (1u16..0xff).prop_map(move |h| serde_json::json!(format!("{prefix}{h:x}"))),
        1 => any::<u128>().prop_map(|a| serde_json::json!(std::net::Ipv6Addr::from(a).to_string())),
        1 => nasty().prop_map(serde_json::Value::from),
    ]
}

fn vip() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![v4("172.29.52."), v6("fd47:25e1:2f96:52:100::")]
}

fn report() -> impl Strategy<Value = serde_json::Value> {
    let base: serde_json::Value =
        serde_json::from_str(&repo_file("proto/fixtures/report-home.json")).unwrap();
    let node = (
        nasty(),
        v4("172.29.51."),
        v6("fd47:25e1:2f96:51::"),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    );
    let pool = (
        nasty(),
        prop::collection::vec(nasty(), 0..3),
        any::<bool>(),
        any::<u32>(),
        any::<u32>(),
    );
    let service = (
        nasty(),
        prop::collection::vec(vip(), 0..4),
        prop::collection::vec(nasty(), 0..3),
    );
    (
        prop::collection::vec(node, 1..6),
        prop::collection::vec(pool, 0..4),
        prop::collection::vec(service, 0..6),
        any::<bool>(),
    )
        .prop_map(move |(nodes, pools, services, keep_pools)| {
            let mut r = base.clone();
            r["nodes"] = nodes
                .into_iter()
                .map(|(name, v4, v6, ready, unschedulable, deleting)| {
                    serde_json::json!({"name": name, "ipv4": v4, "ipv6": v6, "ready": ready,
                        "unschedulable": unschedulable, "deleting": deleting})
                })
                .collect();
            if !keep_pools {
                r["pools"] = pools
                    .into_iter()
                    .map(|(name, blocks, disabled, used, total)| {
                        serde_json::json!({"name": name, "blocks": blocks, "disabled": disabled,
                            "used": used, "total": total})
                    })
                    .collect();
            }
            r["services"] = services
                .into_iter()
                .map(|(name, ips, ready)| {
                    serde_json::json!({"namespace": "default", "name": name, "ips": ips,
                        "ports": [{"port": 80, "protocol": "TCP"}],
                        "external_traffic_policy": "Cluster", "ready_nodes": ready,
                        "sharing_key": null})
                })
                .collect();
            r
        })
}

/// The configuration lines of `text` (no separators, comments or context ends), trimmed.
fn lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('!') && !l.starts_with("exit"))
        .map(String::from)
        .collect()
}

fn site() -> bgplb_site::Site {
    bgplb_site::parse(&repo_file("config/site.toml")).unwrap()
}

/// The report's check result when `value` is a report the agent accepts.
fn accepted(
    site: &bgplb_site::Site,
    value: serde_json::Value,
) -> Option<bgplb_agent::report::Checked> {
    let report = serde_json::from_value::<bgplb_proto::Report>(value).ok()?;
    let cluster = site.cluster("home")?;
    bgplb_agent::report::check(site, cluster, &report, None).ok()
}

/// The generator is worth something only if many of its reports pass the checks.
#[test]
fn the_report_generator_makes_many_acceptable_reports() {
    use proptest::strategy::ValueTree;
    let site = site();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let with_nodes = (0..400)
        .filter_map(|_| accepted(&site, report().new_tree(&mut runner).unwrap().current()))
        .filter(|c| !c.nodes.is_empty())
        .count();
    assert!(
        with_nodes >= 40,
        "only {with_nodes} of 400 accepted with a node"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_site_text_is_parsed_or_refused_without_panicking(
        text in any::<String>(),
        cut in 0usize..4000,
        insert in "[ -~\n]{0,60}",
    ) {
        let _ = bgplb_site::parse(&text);
        // The reference site with a piece replaced: a parse or problems, never a panic.
        let reference = repo_file("config/site.toml");
        let at = reference.floor_char_boundary(cut.min(reference.len()));
        let end = reference.floor_char_boundary((at + 40).min(reference.len()));
        let _ = bgplb_site::parse(&format!("{}{}{}", &reference[..at], insert, &reference[end..]));
    }

    #[test]
    fn no_report_renders_a_line_outside_bgplbs_objects(value in report()) {
        let site = site();
        let Some(checked) = accepted(&site, value) else {
            return Ok(());
        };
        let inputs = bgplb_agent::report::inputs(&site, None, true, [("home", &checked)]);
        let text = bgplb_agent::desired::render(&site, &inputs);
        let owned = Owned::from_text(&text);
        prop_assert!(owned.foreign_neighbors.is_empty(), "{:?}\n{}", owned.foreign_neighbors, text);
        prop_assert!(owned.other_router_bgp.is_empty(), "{}", text);
        let ours = lines(&owned.to_text());
        let outside: Vec<String> = lines(&text)
            .into_iter()
            .filter(|l| !ours.contains(l) && !l.starts_with("address-family"))
            .collect();
        prop_assert!(outside.is_empty(), "lines outside bgplb's objects: {:?}\n{}", outside, text);
    }
}
