//! The agent's mutual-TLS API against a running `bgplb-agent run`: who may report, and that every
//! bad report gets its own 4xx and changes nothing (FRR, kernel, generations).

use bgplb_tests::client::{pki_dir, request, request_with_ca, tls_session, Answer};
use bgplb_tests::{Lab, LabSpec};

const URL: &str = "https://172.29.51.1:7443/v1/clusters/home/report";

/// A valid report for the lab's nodes (k8s-1, k8s-2), generation `generation`.
fn report(generation: u64) -> serde_json::Value {
    let mut r: serde_json::Value =
        serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
    r["generation"] = generation.into();
    r["nodes"].as_array_mut().unwrap().truncate(2);
    r
}

fn body(v: &serde_json::Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(v).unwrap())
}

fn lab_with_daemon() -> Lab {
    Lab::start_with_daemon(
        LabSpec {
            nodes: 2,
            ..LabSpec::default()
        },
        |_| {},
    )
    .0
}

/// Sends a valid report of `generation` from node 1, as cluster home's companion.
fn report_ok(lab: &Lab, generation: u64) {
    let a = request(
        &lab.nodes[0].ns,
        Some("companion-home"),
        "PUT",
        URL,
        body(&report(generation)),
    );
    assert_eq!(a.status(), Some(202), "{a:?}");
}

/// What a refused report must leave alone, once the daemon has settled (FRR runs a report
/// before its generation is recorded; a cordoned node's drain follows the first apply).
fn settled(lab: &Lab) -> (String, String, String) {
    bgplb_tests::cmd::wait_stable(
        "FRR, the kernel and the history to settle",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(2),
        || snapshot(lab),
    )
}

/// What a refused report must leave alone.
fn snapshot(lab: &Lab) -> (String, String, String) {
    let running = lab.running_config();
    let owned = bgplb_frr::Owned::from_text(&running);
    let kernel = bgplb_tests::cmd::run(&["ip", "-n", &lab.gw, "route", "show"])
        + &bgplb_tests::cmd::run(&["ip", "-n", &lab.gw, "-6", "route", "show"]);
    let generations = lab.agent_ok(&["history", "--json"]);
    (format!("{owned:?}"), kernel, generations)
}

#[test]
fn only_the_right_client_certificate_may_report() {
    let lab = lab_with_daemon();
    let ns = lab.nodes[0].ns.clone();
    let ok = request(&ns, Some("companion-home"), "PUT", URL, body(&report(10)));
    assert_eq!(ok.status(), Some(202), "{ok:?}\n{}", lab.daemon_log());
    assert_eq!(ok.json()["generation"], 10);

    // Refused in the TLS handshake, each with the alert that names why: no certificate,
    // another CA, expired, a server certificate used as a client's.
    let agent: std::net::SocketAddr = "172.29.51.1:7443".parse().unwrap();
    let ca = pki_dir().join("ca.crt");
    assert!(tls_session(&ns, agent, &ca, Some("companion-home")).is_ok());
    for (identity, alert) in [
        (None, "CertificateRequired"),
        (Some("other-ca-home"), "UnknownCA"),
        (Some("expired-home"), "CertificateExpired"),
        (Some("server-as-client"), "UnsupportedCertificate"),
    ] {
        let a = request(&ns, identity, "PUT", URL, body(&report(11)));
        assert!(
            matches!(a, Answer::Failed(_)),
            "{identity:?} was not refused: {a:?}"
        );
        let refused = tls_session(&ns, agent, &ca, identity).unwrap_err();
        assert_eq!(
            refused,
            format!("received fatal alert: {alert}"),
            "{identity:?}"
        );
    }
    // A valid certificate for another cluster: refused by the identity check.
    let a = request(&ns, Some("companion-lab"), "PUT", URL, body(&report(12)));
    assert_eq!(a.status(), Some(403), "{a:?}");
    assert_eq!(a.json()["error"], "wrong-identity");
    assert!(a.json()["message"]
        .as_str()
        .unwrap()
        .contains("spiffe://bgplb/cluster/home"));
    // Status needs a client certificate too; the agent's own certificate checks out against the CA.
    let s = request(
        &ns,
        Some("companion-home"),
        "GET",
        "https://172.29.51.1:7443/v1/status",
        None,
    );
    assert_eq!(s.status(), Some(200), "{s:?}");
    assert_eq!(s.json()["clusters"][0]["report_generation"], 10);
    // A client that does not trust the agent's CA refuses the agent.
    let a = request_with_ca(
        &ns,
        &pki_dir().join("other-ca.crt"),
        Some("companion-home"),
        "GET",
        "https://172.29.51.1:7443/v1/status",
        None,
    );
    assert!(matches!(a, Answer::Failed(_)), "{a:?}");
}

/// (what, url, body, expected status, expected error kind)
type Case<'a> = (&'a str, &'a str, Option<Vec<u8>>, u16, &'a str);

#[test]
fn every_bad_report_gets_a_specific_4xx_and_changes_nothing() {
    let lab = lab_with_daemon();
    let ns = lab.nodes[0].ns.clone();
    let ok = request(&ns, Some("companion-home"), "PUT", URL, body(&report(100)));
    assert_eq!(ok.status(), Some(202), "{ok:?}");
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
    let before = settled(&lab);

    let mut outside_subnet = report(101);
    outside_subnet["nodes"][0]["ipv4"] = "172.29.50.11".into();
    let mut not_host = report(103);
    not_host["services"][1]["ips"][0] = "172.29.52.0/24".into();
    let mut wrong_type = report(104);
    wrong_type["nodes"] = "k8s-1".into();
    let mut no_nodes = report(107);
    no_nodes["nodes"] = serde_json::json!([]);
    let mut no_ipv6 = report(108);
    for n in no_ipv6["nodes"].as_array_mut().unwrap() {
        n["ipv6"] = serde_json::Value::Null;
    }
    let oversized = {
        let mut r = report(105);
        r["padding"] = "x".repeat(2 * 1024 * 1024).into();
        r
    };
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            URL,
            Some(b"{\"cluster\": \"home\", ".to_vec()),
            400,
            "malformed-json",
        ),
        ("wrong types", URL, body(&wrong_type), 422, "wrong-type"),
        ("oversized body", URL, body(&oversized), 413, "too-large"),
        (
            "node outside the node subnet",
            URL,
            body(&outside_subnet),
            422,
            "invalid-report",
        ),
        (
            "prefix that is not a host route",
            URL,
            body(&not_host),
            422,
            "invalid-report",
        ),
        (
            "unknown cluster",
            "https://172.29.51.1:7443/v1/clusters/nope/report",
            body(&report(106)),
            404,
            "unknown-cluster",
        ),
        (
            "older generation",
            URL,
            body(&report(99)),
            409,
            "stale-generation",
        ),
        (
            "no node at all",
            URL,
            body(&no_nodes),
            422,
            "invalid-report",
        ),
        (
            "no IPv6 address left",
            URL,
            body(&no_ipv6),
            422,
            "invalid-report",
        ),
    ];
    for (what, url, b, status, kind) in cases {
        let a = request(&ns, Some("companion-home"), "PUT", url, b);
        assert_eq!(a.status(), Some(status), "{what}: {a:?}");
        assert_eq!(a.json()["error"], kind, "{what}: {a:?}");
    }
    // The problems are named.
    let a = request(&ns, Some("companion-home"), "PUT", URL, body(&not_host));
    let problems = a.json()["problems"].to_string();
    assert!(
        problems.contains("services[1].ips[0]") && problems.contains("not a host route"),
        "{problems}"
    );
    let a = request(&ns, Some("companion-home"), "PUT", URL, body(&no_nodes));
    let problems = a.json()["problems"].to_string();
    assert!(
        problems.contains("would remove all 2 neighbour(s)")
            && problems.contains("allow_empty_reports"),
        "{problems}"
    );
    let a = request(&ns, Some("companion-home"), "PUT", URL, body(&no_ipv6));
    let problems = a.json()["problems"].to_string();
    assert!(problems.contains("IPv6 session(s)"), "{problems}");

    // Give the reconciler a chance to (wrongly) act, then compare.
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(
        snapshot(&lab),
        before,
        "a refused report changed FRR, the kernel or the generations"
    );
    // Every refusal of a known cluster's report is an event and a count; the unknown cluster's
    // under its own label.
    let events: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["history", "--events", "--json", "--limit", "100"]))
            .unwrap();
    let refused: Vec<&serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "report-refused")
        .collect();
    // Nine cases and three repeats to read the problems: twelve refusals, each an event.
    assert_eq!(refused.len(), 12, "{events:#}");
    assert!(refused.iter().any(|e| e["message"]
        .as_str()
        .unwrap()
        .starts_with("cluster nope: unknown-cluster")));
    assert_eq!(
        lab.agent_metric("bgplb_reports_total{cluster=\"home\",result=\"refused\"}"),
        11.0
    );
    assert_eq!(
        lab.agent_metric("bgplb_reports_total{cluster=\"unknown\",result=\"refused\"}"),
        1.0
    );
    assert_eq!(
        lab.agent_metric("bgplb_reports_total{cluster=\"home\",result=\"accepted\"}"),
        1.0
    );
    // The same report again is a harmless duplicate.
    let again = request(&ns, Some("companion-home"), "PUT", URL, body(&report(100)));
    assert_eq!(again.status(), Some(202));
    assert_eq!(again.json()["duplicate"], true);
}

#[test]
fn rotated_tls_files_are_picked_up_without_a_restart() {
    let lab = lab_with_daemon();
    let ns = lab.nodes[0].ns.clone();
    report_ok(&lab, 1);
    // Rotate the client CA to another one: the old client certificate stops working, a
    // certificate from the new CA starts working, with no restart.
    let tls = lab.dir.path().join("tls");
    std::fs::copy(pki_dir().join("other-ca.crt"), tls.join("ca.crt")).unwrap();
    bgplb_tests::cmd::wait_for(
        "the new client CA to be in force",
        std::time::Duration::from_secs(20),
        || {
            matches!(
                request(&ns, Some("companion-home"), "PUT", URL, body(&report(2))),
                Answer::Failed(_)
            )
            .then_some(())
        },
    );
    let a = request(&ns, Some("other-ca-home"), "PUT", URL, body(&report(3)));
    assert_eq!(a.status(), Some(202), "{a:?}");
    // A broken rotation (garbage CA) keeps the previous configuration.
    std::fs::write(tls.join("ca.crt"), "not a certificate").unwrap();
    bgplb_tests::cmd::wait_for(
        "the broken TLS files to be refused",
        std::time::Duration::from_secs(30),
        || {
            lab.daemon_log()
                .contains("TLS files changed but cannot be loaded")
                .then_some(())
        },
    );
    let a = request(&ns, Some("other-ca-home"), "PUT", URL, body(&report(4)));
    assert_eq!(a.status(), Some(202), "{a:?}");
}

#[test]
fn a_quiet_companion_never_removes_neighbours() {
    // Fail static: the last report stays in force however old; status and metrics say it is
    // stale. The report differs from the site file (k8s-2 gone, k8s-3 added), so falling back to
    // the site's static nodes would show.
    let mut lab = Lab::start(LabSpec {
        nodes: 3,
        ..LabSpec::default()
    });
    let mut site = lab.daemon_site();
    site.agent.report_stale_after = 2;
    site.clusters[0].nodes.truncate(2);
    lab.write_site(&site);
    lab.start_daemon();
    let ns = lab.nodes[0].ns.clone();
    let mut r = report(7);
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
    r["nodes"] = serde_json::json!([fixture["nodes"][0], fixture["nodes"][2]]);
    r["nodes"][1]["ready"] = true.into();
    assert_eq!(
        request(&ns, Some("companion-home"), "PUT", URL, body(&r)).status(),
        Some(202)
    );
    let reported = [
        "172.29.51.11",
        "172.29.51.13",
        "fd47:25e1:2f96:51::11",
        "fd47:25e1:2f96:51::13",
    ];
    // Every reported session up (IPv6 too) before the counters are taken.
    lab.wait_established(&reported);
    let neighbours = |lab: &Lab| lab.peer_states().into_keys().collect::<Vec<_>>();
    assert_eq!(
        neighbours(&lab),
        sorted(&reported),
        "the report replaced the site's nodes"
    );
    let (before, applied) = bgplb_tests::cmd::wait_stable(
        "the report's generation to be recorded and counted",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(2),
        || {
            (
                snapshot(&lab),
                lab.agent_metric("bgplb_applies_total{result=\"applied\"}"),
            )
        },
    );
    let counters = lab.session_counters();
    // Longer than report_stale_after and than the daemon's drift check (5 s in the lab).
    std::thread::sleep(std::time::Duration::from_secs(7));
    let status = request(
        &ns,
        Some("companion-home"),
        "GET",
        "https://172.29.51.1:7443/v1/status",
        None,
    )
    .json();
    assert_eq!(status["clusters"][0]["stale"], true, "{status:#}");
    assert_eq!(
        neighbours(&lab),
        sorted(&reported),
        "a stale report must stay in force, not fall back to the site file"
    );
    assert_eq!(snapshot(&lab), before, "a late report changed the gateway");
    assert_eq!(lab.session_counters(), counters);
    assert_eq!(
        lab.agent_metric("bgplb_report_stale{cluster=\"home\"}"),
        1.0
    );
    for n in ["172.29.51.11", "172.29.51.13"] {
        let sample = format!(
            "bgplb_peer_established{{cluster=\"home\",node=\"{}\",family=\"ipv4\",neighbor=\"{n}\"}}",
            if n.ends_with("11") { "k8s-1" } else { "k8s-3" }
        );
        assert_eq!(lab.agent_metric(&sample), 1.0, "{sample}");
    }
    // One or two generations before (the site's static nodes at start, unless the report came
    // first, then the report's); none while the report went stale.
    assert!((1.0..=2.0).contains(&applied), "{applied}");
    assert_eq!(
        lab.agent_metric("bgplb_applies_total{result=\"applied\"}"),
        applied
    );
}

fn sorted(a: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = a.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn each_cluster_sees_and_probes_only_its_own() {
    let lab = lab_with_daemon();
    let ns = lab.nodes[0].ns.clone();
    report_ok(&lab, 1);
    // Every session, IPv6 too: a state changing between two requests would differ below.
    lab.wait_established(&[
        "172.29.51.11",
        "172.29.51.12",
        "fd47:25e1:2f96:51::11",
        "fd47:25e1:2f96:51::12",
    ]);
    let status = |identity: &str| {
        request(
            &ns,
            Some(identity),
            "GET",
            "https://172.29.51.1:7443/v1/status",
            None,
        )
        .json()
    };
    let home = status("companion-home");
    assert_eq!(home["clusters"][0]["name"], "home");
    assert!(!home["peers"].as_array().unwrap().is_empty());
    // Another cluster's certificate sees nothing of cluster home.
    let other = status("companion-lab");
    for key in ["clusters", "peers", "nodes"] {
        assert_eq!(other[key], serde_json::json!([]), "{key}: {other}");
    }
    // An operator sees every cluster (the report's age ticks between the two requests).
    let operator = status("operator");
    let without_age = |v: &serde_json::Value| {
        let mut v = v.clone();
        for c in v.as_array_mut().into_iter().flatten() {
            c.as_object_mut().map(|o| o.remove("report_age_seconds"));
        }
        v
    };
    assert_eq!(
        without_age(&operator["clusters"]),
        without_age(&home["clusters"])
    );
    assert_eq!(operator["peers"], home["peers"]);

    // Probes: a cluster probes its own VIPs; not another cluster's, not unused pool addresses.
    let probe = |identity: &str, ip: &str| {
        request(
            &ns,
            Some(identity),
            "POST",
            "https://172.29.51.1:7443/v1/probe",
            body(&serde_json::json!({"targets": [{"ip": ip, "port": 80}]})),
        )
    };
    let own = "172.29.52.200"; // ingress/traefik in the report
    assert_eq!(probe("companion-home", own).status(), Some(200));
    let refused = probe("companion-lab", own);
    assert_eq!(refused.status(), Some(422), "{refused:?}");
    assert!(refused.json()["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("not a VIP of cluster `lab`"));
    assert_eq!(probe("companion-home", "172.29.52.170").status(), Some(422));
    assert_eq!(probe("operator", "172.29.52.170").status(), Some(200));
    assert_eq!(probe("operator", "192.0.2.1").status(), Some(422));
}

#[test]
fn a_locked_database_does_not_freeze_the_api() {
    // Someone holds the state database's write lock (a CLI apply, a backup): reports wait on
    // it, but the API keeps answering: SQLite runs off the async workers.
    let lab = lab_with_daemon();
    let ns = lab.nodes[0].ns.clone();
    report_ok(&lab, 1);
    let db = lab.dir.path().join("data/state.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    let waiting: Vec<_> = (2..5)
        .map(|g| {
            let ns = ns.clone();
            std::thread::spawn(move || {
                request(&ns, Some("companion-home"), "PUT", URL, body(&report(g)))
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(1));
    // Reports are stuck behind the lock, and yet a new TLS session is served.
    let agent: std::net::SocketAddr = "172.29.51.1:7443".parse().unwrap();
    let served = tls_session(
        &ns,
        agent,
        &pki_dir().join("ca.crt"),
        Some("companion-home"),
    );
    let still_waiting = waiting.iter().filter(|w| !w.is_finished()).count();
    conn.execute_batch("ROLLBACK").unwrap();
    let answers: Vec<Answer> = waiting.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(served.is_ok(), "{served:?}");
    assert!(
        still_waiting > 0,
        "the reports were not waiting on the lock: the test proves nothing"
    );
    for a in answers {
        assert!(
            matches!(a.status(), Some(202) | Some(409) | Some(500)),
            "{a:?}"
        );
    }
}

#[test]
fn refused_requests_write_a_bounded_number_of_events() {
    let lab = lab_with_daemon();
    let ns = lab.nodes[0].ns.clone();
    // Thirty different bad reports in a row: each refusal counts, at most twenty are written.
    for i in 0..30u64 {
        let mut r = report(1000 + i);
        r["nodes"][0]["ipv4"] = format!("172.29.50.{i}").into();
        let a = request(&ns, Some("companion-home"), "PUT", URL, body(&r));
        assert_eq!(a.status(), Some(422));
    }
    let events: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["history", "--events", "--json", "--limit", "100"]))
            .unwrap();
    let written = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "report-refused")
        .count();
    assert_eq!(written, 20);
    assert_eq!(lab.agent_metric("bgplb_events_suppressed_total"), 10.0);
    assert_eq!(
        lab.agent_metric("bgplb_reports_total{cluster=\"home\",result=\"refused\"}"),
        30.0
    );
}

#[test]
fn heartbeats_and_scrapes_cost_frr_little() {
    // A heartbeat that changes nothing the gateway renders runs no apply; scrapes of
    // /metrics and /readyz share one read of FRR per few seconds.
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        ..LabSpec::default()
    });
    let mut site = lab.daemon_site();
    site.agent.drift_check_interval = 3600;
    let log = lab.dir.path().join("vtysh.log");
    site.agent.frr.vtysh = lab.vtysh_wrapper(
        "vtysh-counting",
        &format!(
            r#"echo "$*" >> {}
exec $VTYSH "$@""#,
            log.display()
        ),
    );
    lab.write_site(&site);
    lab.start_daemon();
    let ns = lab.nodes[0].ns.clone();
    report_ok(&lab, 1);
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
    let reconciles = |lab: &Lab| {
        ["applied", "unchanged", "failed"]
            .iter()
            .map(|r| {
                let text = lab.agent_metric_text();
                let sample = format!("bgplb_applies_total{{result=\"{r}\"}} ");
                text.lines()
                    .find_map(|l| l.strip_prefix(&sample)?.trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
            })
            .sum::<f64>()
    };
    // The cordoned node's drain follows the first apply and wakes the reconciler once more.
    let before = bgplb_tests::cmd::wait_stable(
        "the reconciles after the first report to end",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(2),
        || reconciles(&lab),
    );
    for g in 2..7 {
        assert_eq!(
            request(&ns, Some("companion-home"), "PUT", URL, body(&report(g))).status(),
            Some(202)
        );
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(reconciles(&lab), before, "a heartbeat ran a reconcile");

    let reads = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("show bgp summary json"))
            .count()
    };
    let start = reads();
    for _ in 0..10 {
        lab.agent_metric_text();
        lab.agent_readyz();
    }
    assert!(
        reads() - start <= 2,
        "{} reads of FRR for 20 scrapes",
        reads() - start
    );
}

#[test]
fn what_lies_outside_the_site_is_ignored_with_a_warning() {
    // The old L2 pool and its services during a migration (or another controller's Service)
    // must not freeze the gateway: the rest of the report applies, the rest is said.
    let lab = lab_with_daemon();
    let ns = lab.nodes[0].ns.clone();
    report_ok(&lab, 1);
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
    let before = settled(&lab);
    let mut r = report(2);
    r["services"][0]["ips"][0] = "172.29.51.240".into();
    r["pools"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "l2-old", "blocks": ["172.29.51.200-172.29.51.250"]}));
    let a = request(&ns, Some("companion-home"), "PUT", URL, body(&r));
    assert_eq!(a.status(), Some(202), "{a:?}");
    let warnings = a.json()["warnings"].to_string();
    assert!(
        warnings.contains("172.29.51.240 is outside every pool"),
        "{warnings}"
    );
    assert!(warnings.contains("pool `l2-old`"), "{warnings}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    // Nothing outside the site reached FRR: the owned configuration is unchanged.
    assert_eq!(snapshot(&lab).0, before.0);
    let status = lab.agent_status(0);
    assert_eq!(
        status["clusters"][0]["warnings"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        lab.agent_metric("bgplb_report_warnings{cluster=\"home\"}"),
        2.0
    );
    assert!(lab
        .agent_ok(&["status"])
        .contains("warning: services[0].ips[0]"));
}
