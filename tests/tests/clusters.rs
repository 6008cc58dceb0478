//! Many clusters: ten clusters' companions (each its own client certificate, as cert-manager
//! issues it) report concurrently to one `bgplb-agent run`; every cluster's last report reaches
//! FRR. Then one cluster's companion goes wild and floods the agent from four connections while
//! the nine others report changes: they are never throttled and still reach FRR, while the
//! flooder gets 429 with Retry-After beyond `agent.reports_per_minute` and its burst.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgplb_tests::client::{client_with, pki_dir, send};
use bgplb_tests::cmd::wait_for;
use bgplb_tests::lab::runs_neighbor;
use bgplb_tests::{Lab, LabSpec};

const CLUSTERS: usize = 10;

fn name(i: usize) -> String {
    format!("c{i}")
}

/// Node `n` of cluster `i`: 10.60.i.n.
fn node(i: usize, n: usize) -> String {
    format!("10.60.{i}.{n}")
}

/// Cluster `i`'s pool: 172.29.52.(10+20i) to (19+20i).
fn pool(i: usize) -> (String, String) {
    let first = 10 + 20 * i;
    (
        format!("p{i}"),
        format!("172.29.52.{first}-172.29.52.{}", first + 9),
    )
}

/// Cluster `i`'s report `generation`: its first node and node `extra` (so FRR shows which report
/// it runs), one service in its pool.
fn report(i: usize, generation: u64, extra: usize) -> Vec<u8> {
    let mut r: serde_json::Value =
        serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
    r["cluster"] = name(i).into();
    r["generation"] = generation.into();
    let n = |k: usize| {
        serde_json::json!({ "name": format!("{}-n{k}", name(i)), "ipv4": node(i, k),
            "ready": true, "unschedulable": false, "deleting": false })
    };
    r["nodes"] = serde_json::json!([n(11), n(extra)]);
    let (pool_name, block) = pool(i);
    r["pools"] = serde_json::json!([{ "name": pool_name, "blocks": [block], "disabled": false,
        "used": 1, "total": 10 }]);
    r["services"] = serde_json::json!([{ "namespace": "default", "name": "web",
        "ips": [format!("172.29.52.{}", 10 + 20 * i)], "ports": [{ "port": 80, "protocol": "TCP" }],
        "external_traffic_policy": "Cluster", "ready_nodes": [format!("{}-n11", name(i))],
        "sharing_key": null }]);
    serde_json::to_vec(&r).unwrap()
}

/// A client certificate for cluster `i`, issued from the test CA as cert-manager would.
fn identity(lab: &Lab, i: usize) -> (PathBuf, PathBuf) {
    let spec = serde_json::json!({
        "commonName": format!("bgplb-companion-{}", name(i)),
        "uris": [bgplb_proto::identity(&name(i))],
        "usages": ["client auth", "digital signature"],
        "privateKey": { "algorithm": "ECDSA", "size": 256 },
    });
    let (cert, key) = bgplb_tests::pki::issue_like_cert_manager(
        &spec,
        &std::fs::read_to_string(pki_dir().join("ca.crt")).unwrap(),
        &std::fs::read_to_string(pki_dir().join("ca.key")).unwrap(),
        time::OffsetDateTime::now_utc() + time::Duration::days(1),
    );
    let files = (
        lab.dir.path().join(format!("{}.crt", name(i))),
        lab.dir.path().join(format!("{}.key", name(i))),
    );
    std::fs::write(&files.0, cert).unwrap();
    std::fs::write(&files.1, key).unwrap();
    files
}

fn url(i: usize) -> String {
    format!("https://172.29.51.1:7443/v1/clusters/{}/report", name(i))
}

#[test]
fn ten_clusters_converge_and_a_flooding_one_cannot_starve_the_rest() {
    let (lab, _site) = Lab::start_with_daemon(
        LabSpec {
            nodes: 1,
            ipv6: false,
            ..LabSpec::default()
        },
        |site| {
            site.agent.reports_per_minute = 120;
            site.agent.report_burst = 20;
            let template = site.clusters[0].clone();
            site.clusters = (0..CLUSTERS)
                .map(|i| bgplb_site::Cluster {
                    name: name(i),
                    asn: 64600 + i as u32,
                    node_subnets: vec![format!("10.60.{i}.0/24").parse().unwrap()],
                    reserved: Vec::new(),
                    nodes: Vec::new(),
                    ..template.clone()
                })
                .collect();
            site.pools = (0..CLUSTERS)
                .map(|i| bgplb_site::Pool {
                    name: pool(i).0,
                    blocks: vec![pool(i).1],
                    disabled: false,
                    cluster: Some(name(i)),
                })
                .collect();
        },
    );
    let ns = lab.nodes[0].ns.clone();
    let ca = pki_dir().join("ca.crt");
    let ids: Vec<(PathBuf, PathBuf)> = (0..CLUSTERS).map(|i| identity(&lab, i)).collect();

    // Ten companions at once, ten reports each (a burst within the limit): all accepted.
    std::thread::scope(|s| {
        for (i, id) in ids.iter().enumerate() {
            let ns = ns.clone();
            let ca = ca.clone();
            s.spawn(move || {
                for g in 1..=10u64 {
                    let a = send(
                        &ns,
                        client_with(&ca, Some(id)),
                        "PUT",
                        &url(i),
                        Some(report(i, g, 20 + g as usize)),
                    );
                    assert_eq!(a.status(), Some(202), "cluster {i} report {g}: {a:?}");
                }
            });
        }
    });
    wait_for(
        "every cluster's last report in FRR",
        Duration::from_secs(90),
        || {
            let running = lab.running_config();
            (0..CLUSTERS)
                .all(|i| {
                    runs_neighbor(&running, &node(i, 30)) && !runs_neighbor(&running, &node(i, 29))
                })
                .then_some(())
        },
    );

    // Cluster c0 floods from four connections; the nine others report one change each.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let throttled = Arc::new(AtomicUsize::new(0));
    let retry_after_seen = Arc::new(AtomicBool::new(false));
    let mut figures = Vec::new();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (ns, ca, id) = (ns.clone(), ca.clone(), ids[0].clone());
            let (stop, sent, throttled) = (stop.clone(), sent.clone(), throttled.clone());
            let retry_after_seen = retry_after_seen.clone();
            s.spawn(move || {
                let client = client_with(&ca, Some(&id));
                let started = Instant::now();
                for k in 0..5000u64 {
                    if stop.load(Ordering::SeqCst) || started.elapsed() > Duration::from_secs(120) {
                        break;
                    }
                    let generation = 1000 + k * 4 + t;
                    let a = send(
                        &ns,
                        client.clone(),
                        "PUT",
                        &url(0),
                        Some(report(0, generation, 40 + (k % 100) as usize)),
                    );
                    sent.fetch_add(1, Ordering::SeqCst);
                    if a.status() == Some(429) {
                        throttled.fetch_add(1, Ordering::SeqCst);
                        if a.json()["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("retry in"))
                        {
                            retry_after_seen.store(true, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
        // Let the flood use up its burst first.
        std::thread::sleep(Duration::from_secs(2));
        for (i, id) in ids.iter().enumerate().skip(1) {
            let started = Instant::now();
            let a = send(
                &ns,
                client_with(&ca, Some(id)),
                "PUT",
                &url(i),
                Some(report(i, 100, 50)),
            );
            assert_eq!(a.status(), Some(202), "cluster {i} during the flood: {a:?}");
            let answered = started.elapsed();
            wait_for(
                &format!("cluster {i}'s change in FRR during the flood"),
                Duration::from_secs(60),
                || runs_neighbor(&lab.running_config(), &node(i, 50)).then_some(()),
            );
            figures.push((i, answered, started.elapsed()));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let sent = sent.load(Ordering::SeqCst);
    let throttled = throttled.load(Ordering::SeqCst);
    println!("flood: {sent} reports sent by c0, {throttled} answered 429");
    for (i, answered, in_frr) in &figures {
        println!("c{i} during the flood: answered in {answered:?}, in FRR after {in_frr:?}");
    }
    assert!(
        throttled > 0,
        "the flood of {sent} reports was never throttled"
    );
    assert!(
        retry_after_seen.load(Ordering::SeqCst),
        "no 429 said when to retry"
    );
    assert!(
        lab.agent_metric("bgplb_reports_total{cluster=\"c0\",result=\"throttled\"}") > 0.0,
        "the metric does not count the throttled reports"
    );
    for i in 1..CLUSTERS {
        let sample = format!(
            "bgplb_reports_total{{cluster=\"{}\",result=\"throttled\"}}",
            name(i)
        );
        assert!(
            !lab.agent_metric_text().contains(&sample),
            "cluster {i} was throttled though it sent 11 reports"
        );
    }
    // Every cluster's report is fresh in the operator's view of the status.
    let status = bgplb_tests::client::request(
        &ns,
        Some("operator"),
        "GET",
        "https://172.29.51.1:7443/v1/status",
        None,
    )
    .json();
    let clusters = status["clusters"].as_array().cloned().unwrap_or_default();
    assert_eq!(clusters.len(), CLUSTERS, "{status}");
    for c in &clusters {
        assert_eq!(c["stale"], false, "{c}");
    }
}
