//! Golden renders: `tests/golden/<case>/{site.toml,inputs.json}` → `frr.conf` (for the reference
//! FRR, 8.4), `frr-7.5.conf` (the oldest FRR bgplb renders for, whose language lacks some lines)
//! and `frr-10.3.conf` (route-map optimization left on): see `bgplb_frr::version`.
//! `UPDATE_GOLDEN=1 cargo test -p bgplb-site --test golden` rewrites the files; review the diff.
//! The tests crate feeds every `frr.conf` to real FRR (`golden_frr.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bgplb_site::{gateway_config, FrrVersion, GatewayInputs, NodeSpec, Range};
use serde::Deserialize;

/// What a case supplies besides the site file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Inputs {
    nodes: BTreeMap<String, Vec<NodeSpec>>,
    password: Option<String>,
    ecmp: Option<bool>,
    narrow: BTreeMap<String, Vec<String>>,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The FRR releases whose renders differ, and the file each goes to.
const RELEASES: [(FrrVersion, &str); 3] = [
    (FrrVersion::REFERENCE, "frr.conf"),
    (FrrVersion::OLDEST, "frr-7.5.conf"),
    (FrrVersion::new(10, 3), "frr-10.3.conf"),
];

fn render_case(dir: &Path, frr: FrrVersion) -> String {
    let site = bgplb_site::parse(&std::fs::read_to_string(dir.join("site.toml")).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let problems = site.validate();
    assert!(problems.is_empty(), "{}: {problems:?}", dir.display());
    let inputs: Inputs =
        serde_json::from_str(&std::fs::read_to_string(dir.join("inputs.json")).unwrap()).unwrap();
    let mut gw = GatewayInputs::from_site(&site, inputs.password);
    for (cluster, nodes) in inputs.nodes {
        let c = site.cluster(&cluster).expect("cluster exists");
        let problems = site.check_nodes(c, &nodes);
        assert!(problems.is_empty(), "{}: {problems:?}", dir.display());
        gw.nodes.insert(cluster, nodes);
    }
    gw.ecmp = inputs.ecmp.unwrap_or(true);
    gw.frr = frr;
    for (cluster, ranges) in inputs.narrow {
        gw.narrow.insert(
            cluster,
            ranges.iter().map(|r| Range::parse(r).unwrap()).collect(),
        );
    }
    bgplb_frr::render::render(&gateway_config(&site, &gw))
}

#[test]
fn golden_renders() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("site.toml").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "golden cases missing: {cases:?}");
    let mut stale = Vec::new();
    for dir in &cases {
        for (frr, name) in RELEASES {
            let rendered = render_case(dir, frr);
            // Deterministic: rendering twice gives the same bytes.
            assert_eq!(
                rendered,
                render_case(dir, frr),
                "{}: render is not deterministic",
                dir.display()
            );
            let file = dir.join(name);
            if update {
                std::fs::write(&file, &rendered).unwrap();
                continue;
            }
            let expected = std::fs::read_to_string(&file).unwrap_or_default();
            if expected != rendered {
                stale.push(format!(
                    "{}:\n{}",
                    file.display(),
                    diff(&expected, &rendered)
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "golden files differ (UPDATE_GOLDEN=1 to rewrite):\n{}",
        stale.join("\n")
    );
}

fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let mut out = String::new();
    for l in e.iter().filter(|l| !a.contains(l)) {
        out.push_str(&format!("- {l}\n"));
    }
    for l in a.iter().filter(|l| !e.contains(l)) {
        out.push_str(&format!("+ {l}\n"));
    }
    out
}

#[test]
fn renders_for_frr_7_5_leave_out_what_it_rejects_and_nothing_else() {
    for case in ["reference-dual-stack", "password", "two-clusters"] {
        let dir = golden_dir().join(case);
        let new = std::fs::read_to_string(dir.join("frr.conf")).unwrap();
        let old = std::fs::read_to_string(dir.join("frr-7.5.conf")).unwrap();
        assert!(new.contains(" optimization") && new.contains("graceful-restart notification"));
        // (Separators `!` aside: one follows each route-map option line.)
        let kept: Vec<&str> = new
            .lines()
            .filter(|l| *l != "!")
            .filter(|l| {
                !l.ends_with(" optimization") && !l.contains("graceful-restart notification")
            })
            .collect();
        let rendered: Vec<&str> = old.lines().filter(|l| *l != "!").collect();
        assert_eq!(
            kept, rendered,
            "{case}: 7.5 differs only by the two capabilities"
        );
    }
}

#[test]
fn golden_cases_say_what_they_claim() {
    let read =
        |case: &str| std::fs::read_to_string(golden_dir().join(case).join("frr.conf")).unwrap();
    // Single stack: no IPv6 objects at all.
    assert!(!read("single-stack").contains("ipv6"));
    // Password on both peer-groups.
    assert_eq!(
        read("password")
            .matches("password Lab-Secret.64512")
            .count(),
        2
    );
    // 50 nodes: 100 sessions, ECMP over 50.
    let fifty = read("fifty-nodes");
    assert_eq!(fifty.matches(" peer-group BGPLB-home-V").count(), 100);
    assert!(fifty.contains("maximum-paths 50"));
    // Without a required community the gateway sets it and keeps no community-list.
    let nc = read("no-community");
    assert!(nc.contains("set community 64512:100 additive") && !nc.contains("community-list"));
    // No kernel multipath: one path.
    assert_eq!(read("no-ecmp").matches("maximum-paths 1\n").count(), 2);
    // Narrowed: only the overlap of reported ranges and site pools (.100-.149, .210-.220).
    let narrowed = read("narrowed");
    assert!(
        narrowed.contains("permit 172.29.52.100/30 ge 32")
            && narrowed.contains("permit 172.29.52.220/32")
    );
    assert!(!narrowed.contains("172.29.52.160") && !narrowed.contains("172.29.52.230"));
    // Two clusters: separate peer-groups, and a pool restricted to one cluster.
    let two = read("two-clusters");
    assert!(two.contains("neighbor BGPLB-lab-V4 remote-as 64514"));
    assert!(two.contains("ip prefix-list BGPLB-lab-POOLS-V4") && !two.contains("BGPLB-lab-V6"));
    let lab_list: Vec<&str> = two
        .lines()
        .filter(|l| l.contains("BGPLB-lab-POOLS-V4 seq"))
        .collect();
    assert!(
        lab_list.iter().all(|l| !l.contains("172.29.52.200")),
        "{lab_list:?}"
    );
}
