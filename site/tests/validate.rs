//! The reference site is valid; every kind of bad site file is refused with its key path.

use bgplb_site::{load, load_keeping, parse, LoadError};

const REFERENCE: &str = include_str!("../../config/site.toml");

fn problems(toml: &str) -> Vec<String> {
    parse(toml)
        .expect("parses")
        .validate()
        .iter()
        .map(|p| p.to_string())
        .collect()
}

/// The reference site with one line replaced.
fn edit(from: &str, to: &str) -> String {
    assert!(REFERENCE.contains(from), "reference site has no `{from}`");
    REFERENCE.replacen(from, to, 1)
}

#[test]
fn reference_site_is_valid() {
    assert_eq!(problems(REFERENCE), Vec::<String>::new());
}

#[test]
fn each_bad_site_names_its_problem() {
    let cases: &[(&str, String, &str)] = &[
        (
            "pool outside the segment",
            edit("172.29.52.200-172.29.52.220", "172.29.53.1-172.29.53.20"),
            "pools[1].blocks[0]: 172.29.53.1-172.29.53.20 is outside the LB segment",
        ),
        (
            "overlapping pools",
            edit("172.29.52.200-172.29.52.220", "172.29.52.150-172.29.52.220"),
            "pools[1].blocks[0]: 172.29.52.150-172.29.52.220 overlaps pool `bgp-default`",
        ),
        (
            "node subnet overlapping the segment",
            edit(r#"node_subnets = ["172.29.51.0/24""#, r#"node_subnets = ["172.29.0.0/16""#),
            "clusters[0].node_subnets[0]: node subnet 172.29.0.0/16 overlaps the LB segment",
        ),
        (
            "bad ASN",
            edit("asn = 64513", "asn = 23456"),
            "clusters[0].asn: ASN 23456 is AS_TRANS",
        ),
        (
            "cluster ASN equal to the gateway's",
            edit("asn = 64513", "asn = 64512"),
            "clusters[0].asn: cluster ASN 64512 equals the gateway ASN",
        ),
        (
            "range start after end",
            edit("172.29.52.100-172.29.52.199", "172.29.52.199-172.29.52.100"),
            "pools[0].blocks[0]: range start 172.29.52.199 is after its end 172.29.52.100",
        ),
        (
            "router-id not IPv4",
            edit(r#"router_id = "172.29.51.1""#, r#"router_id = "fd47:25e1:2f96:51::1""#),
            "gateway.router_id: fd47:25e1:2f96:51::1 is not an IPv4 address",
        ),
        (
            "UniFi upload over plain HTTP",
            edit("report_burst = 20", "report_burst = 20\n\n[agent.unifi]\ncontroller = \"http://192.168.1.1\""),
            "agent.unifi.controller: http://192.168.1.1 must be an https:// URL",
        ),
        (
            "unchecked certificate of a remote controller",
            edit("report_burst = 20", "report_burst = 20\n\n[agent.unifi]\ncontroller = \"https://192.168.1.1\"\ninsecure_loopback = true"),
            "agent.unifi.insecure_loopback: only for a controller on the gateway itself",
        ),
        (
            "no report budget",
            edit("reports_per_minute = 120", "reports_per_minute = 0"),
            "agent.reports_per_minute: must be at least 1",
        ),
        (
            "VLAN id out of range",
            edit("vlan = 52", "vlan = 4095"),
            "segment.vlan: VLAN id 4095 is outside 1-4094",
        ),
        (
            "static node outside the node subnet",
            edit(r#"ipv4 = "172.29.51.12""#, r#"ipv4 = "172.29.50.12""#),
            "clusters[0].nodes[1].ipv4: node `k8s-2` address 172.29.50.12 is outside the node subnets",
        ),
        (
            "static node on the API VIP",
            edit(r#"ipv4 = "172.29.51.13""#, r#"ipv4 = "172.29.51.10""#),
            "clusters[0].nodes[2].ipv4: 172.29.51.10 is reserved",
        ),
        (
            "keepalive too long for hold",
            edit("keepalive = 3", "keepalive = 5"),
            "bgp.keepalive: keepalive 5 must be between 1 and a third of hold (9)",
        ),
        (
            "hold below 3",
            edit("hold = 9", "hold = 2"),
            "bgp.hold: hold time must be 0 (never expire) or at least 3 seconds",
        ),
        (
            "bad community",
            edit(r#"community = "64512:100""#, r#"community = "64512:70000""#),
            "bgp.community: `64512:70000` is not a standard community",
        ),
        (
            "multihop of one hop",
            edit("# ebgp_multihop = 2", "ebgp_multihop = 1"),
            "bgp.ebgp_multihop: 1 is what eBGP does without multihop",
        ),
        (
            "vlan mode without parent",
            edit(r#"mode = "routed""#, r#"mode = "vlan""#),
            "segment.parent: vlan mode needs the parent link",
        ),
        (
            "cluster name unusable in FRR names",
            edit(r#"name = "home""#, r#"name = "Home Lab""#),
            "clusters[0].name: `Home Lab` must be 1-32 characters",
        ),
        (
            "pool block that is not a block",
            edit(r#"blocks = ["fd47:25e1:2f96:52:100::/120"]"#, r#"blocks = ["fd47:25e1:2f96:52:100::/120", "lots"]"#),
            "pools[3].blocks[1]: `lots` is neither a CIDR",
        ),
    ];
    for (what, toml, expected) in cases {
        let found = problems(toml);
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{what}: expected a problem starting with\n  {expected}\ngot\n  {found:#?}"
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let toml = edit("vlan = 52", "vlan = 0").replace("hold = 9", "hold = 1");
    let found = problems(&toml);
    assert!(
        found.iter().any(|p| p.starts_with("segment.vlan")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.starts_with("bgp.hold")), "{found:?}");
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let err = parse(&edit("hold = 9", "hold = 9\nhodl = 9")).unwrap_err();
    assert!(err.contains("hodl"), "{err}");
}

#[test]
fn missing_password_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        edit(
            r#"# password_file = "/data/bgplb/bgp-password""#,
            r#"password_file = "/nonexistent/bgp-password""#,
        ),
    )
    .unwrap();
    match load(&path) {
        Err(LoadError::Invalid { problems, .. }) => {
            assert!(
                problems.iter().any(|p| p.key == "bgp.password_file"
                    && p.message.contains("/nonexistent/bgp-password")),
                "{problems:?}"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    let password = dir.path().join("pw");
    std::fs::write(&password, "s3cret\n").unwrap();
    std::fs::write(
        &path,
        edit(
            r#"# password_file = "/data/bgplb/bgp-password""#,
            &format!("password_file = {:?}", password.display().to_string()),
        ),
    )
    .unwrap();
    let site = load(&path).expect("valid with a readable password file");
    assert_eq!(
        bgplb_site::read_password(&site).unwrap().as_deref(),
        Some("s3cret")
    );
}

/// Unknown keys, wrong types and what validation finds are reported together, each with its
/// path: one run of `check-config` lists them all.
#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("site.toml");
    let text = edit("asn = 64512\n", "asn = 64512\ncolour = \"red\"\n")
        .replacen("vlan = 52", "vlan = 5200", 1)
        .replacen(
            "name = \"bgp-default\"",
            "name = \"bgp-default\"\nshape = \"round\"",
            1,
        )
        .replacen("max_nodes = 64", "max_nodes = \"many\"", 1);
    std::fs::write(&file, text).unwrap();
    let Err(LoadError::Invalid { problems, .. }) = load(&file) else {
        panic!("accepted");
    };
    let got: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    for want in [
        "gateway.colour: unknown key `colour` (expected one of `name`, `asn`, `router_id`, `addresses`)",
        "pools[0].shape: unknown key `shape`",
        "clusters[0].max_nodes: invalid type: string \"many\", expected usize",
        "segment.vlan: VLAN id 5200 is outside 1-4094",
    ] {
        assert!(
            got.iter().any(|g| g.starts_with(want)),
            "`{want}` missing from {got:#?}"
        );
    }
    assert_eq!(got.len(), 4, "{got:#?}");

    // A required key missing is said with its path, beside the others.
    std::fs::write(
        &file,
        "[gateway]\nasn = 64512\nfoo = 1\n[agent]\nreport_burst = \"x\"\n",
    )
    .unwrap();
    let Err(LoadError::Invalid { problems, .. }) = load(&file) else {
        panic!("accepted");
    };
    let got: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        got.iter()
            .any(|g| g.starts_with("gateway.foo: unknown key")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|g| g.starts_with("agent.report_burst: invalid type")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|g| g.ends_with(": required, but missing")),
        "{got:#?}"
    );

    // What a refused file still says, for `troubleshoot`: the shape problems taken out, the
    // rest as written; nothing without the required keys.
    std::fs::write(
        &file,
        edit("asn = 64512\n", "asn = 64512\ncolour = \"red\"\n").replacen(
            "vlan = 52",
            "vlan = 5200",
            1,
        ),
    )
    .unwrap();
    let Err((LoadError::Invalid { problems, .. }, Some(kept))) = load_keeping(&file) else {
        panic!("accepted, or nothing kept");
    };
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_eq!(kept.segment.vlan, 5200);
    assert_eq!(kept.gateway.asn, 64512);
    std::fs::write(&file, "[gateway]\nasn = 64512\n").unwrap();
    assert!(matches!(
        load_keeping(&file),
        Err((LoadError::Invalid { .. }, None))
    ));

    // TOML that does not parse keeps its line and column.
    std::fs::write(&file, "[gateway\nasn = 1\n").unwrap();
    let Err(LoadError::Parse { message, .. }) = load(&file) else {
        panic!("accepted");
    };
    assert!(message.contains("line 1"), "{message}");
}
