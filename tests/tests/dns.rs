//! `validate --dns-server` against a real DNS server: Debian's dnsmasq in a namespace of the
//! test's own, serving the names of the L2 fixture cluster after a real migration (against the
//! API stand-in): one right name, one still on the service's old L2 address, one in the old L2
//! pool, a CNAME to a right name, a missing one (NXDOMAIN) and a dual-stack one (A and AAAA).
//! The stub client's own behaviour (TCP after a truncated answer, a wrong ID or question
//! ignored, a lost query retried, a timeout) is checked there too, against dnsmasq and a
//! hand-made server.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bgplb_companion::dns::{DnsError, RecordType, Resolver};
use bgplb_companion::migrate;
use bgplb_companion::validate::{self, CiliumObjects, DnsResults, Input, Status};
use bgplb_tests::fixtures::{l2_cluster, service_ips, FakeAgent};
use bgplb_tests::kubesim::{kubeconfig, KubeSim};
use bgplb_tests::netns::{block_on_in, Scratch};
use serde_json::{json, Value};

const API: &str = "127.0.0.1:6443";
const HOSTNAME: &str = "external-dns.alpha.kubernetes.io/hostname";

/// dnsmasq, started by the test inside its namespace; killed (its own pid) and reaped on drop.
struct Dnsmasq {
    child: Child,
    log: PathBuf,
}

impl Dnsmasq {
    /// Answers on 127.0.0.1:53 inside `ns`, only from `records` (dnsmasq options); every other
    /// name under example.org is NXDOMAIN.
    fn start(ns: &str, records: &[String], dir: &Path) -> Dnsmasq {
        bgplb_tests::cmd::require("dnsmasq", "dnsmasq-base");
        let log = dir.join("dnsmasq.log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "dnsmasq"])
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--port=53",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--local=/example.org/",
                "--log-queries",
            ])
            .args(records)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start dnsmasq");
        Dnsmasq { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn kube() -> bgplb_companion::dynkube::DynKube {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig(&format!("http://{API}"))).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    bgplb_companion::dynkube::DynKube::new(kube::Client::try_from(config).unwrap(), false)
}

fn annotate(sim: &KubeSim, ns: &str, name: &str, names: &str) {
    let mut s = sim.get("v1", "Service", ns, name).unwrap();
    s["metadata"]["annotations"][HOSTNAME] = json!(names);
    sim.apply(s);
}

fn first(ips: &[String], v4: bool) -> String {
    ips.iter()
        .find(|ip| ip.parse::<IpAddr>().unwrap().is_ipv4() == v4)
        .unwrap_or_else(|| panic!("no {} address in {ips:?}", if v4 { "IPv4" } else { "IPv6" }))
        .clone()
}

/// The fixture cluster migrated for real: the backup ConfigMap is what `migrate` writes.
fn migrated(ns: &str, dir: &Path) -> KubeSim {
    let sim = l2_cluster();
    // external-dns's names, there before the migration (traefik's home.example.org already).
    annotate(
        &sim,
        "ingress",
        "nginx",
        "nginx.example.org, WWW.example.org.",
    );
    annotate(&sim, "web", "api", "api.example.org");
    annotate(&sim, "web", "dual", "dual.example.org");
    annotate(&sim, "media", "jellyfin", "tv.example.org");
    sim.spawn_in_namespace(ns, API.parse().unwrap());
    let options = migrate::Options {
        site: bgplb_site::parse(bgplb_tests::lab::REFERENCE_SITE).unwrap(),
        cluster: "home".into(),
        cilium_version: "1.18.2".into(),
        cilium_namespace: "kube-system".into(),
        dry_run: false,
        backup_file: dir.join("backup.json"),
        peering_timeout: Duration::from_secs(2),
        service_timeout: Duration::from_secs(10),
    };
    block_on_in(ns, move || async move {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(API).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        migrate::migrate(&kube().await, &FakeAgent::default(), &options)
            .await
            .expect("migration");
    });
    sim
}

#[test]
fn stale_and_missing_dns_names_are_found_at_a_real_server() {
    let ns = Scratch::new("dns");
    let dir = tempfile::tempdir().unwrap();
    let sim = migrated(&ns.name, dir.path());
    // Where the migration put them.
    let traefik = service_ips(&sim, "ingress", "traefik");
    let nginx = service_ips(&sim, "ingress", "nginx");
    let api = service_ips(&sim, "web", "api");
    let dual = service_ips(&sim, "web", "dual");
    assert_eq!(traefik, ["172.29.52.200"]);
    assert_eq!(nginx, ["172.29.52.201"]);
    assert!(api[0].starts_with("172.29.52."), "{api:?}");
    let (dual4, dual6) = (first(&dual, true), first(&dual, false));

    let mut records = vec![
        // Right.
        format!("--host-record=nginx.example.org,{}", nginx[0]),
        format!("--host-record=dual.example.org,{dual4},{dual6}"),
        // A CNAME to a right name.
        "--cname=www.example.org,nginx.example.org".to_string(),
        // Never updated: traefik's address before the migration.
        "--host-record=home.example.org,172.29.51.200".to_string(),
        // In the old L2 pool (172.29.51.150-250), an address no service had.
        "--host-record=tv.example.org,172.29.51.180".to_string(),
        // api.example.org: missing.
    ];
    // More A records than a 512-byte UDP answer holds: truncated, then TCP.
    records.extend((1..=40).map(|i| format!("--host-record=big.example.org,10.0.0.{i}")));
    let dnsmasq = Dnsmasq::start(&ns.name, &records, dir.path());

    let names = validate::dns_names(
        &sim.list("Service")
            .into_iter()
            .map(|s| serde_json::from_value(s).unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        names,
        [
            "api.example.org",
            "dual.example.org",
            "home.example.org",
            "nginx.example.org",
            "tv.example.org",
            "www.example.org"
        ]
    );
    let asked = names.clone();
    let (lookups, big, big_aaaa) = block_on_in(&ns.name, move || async move {
        let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let resolver = Resolver::new(server);
        // dnsmasq is up when it answers.
        let quick = Resolver {
            timeout: Duration::from_millis(200),
            tries: 1,
            ..Resolver::new(server)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while quick
            .query("nginx.example.org", RecordType::A)
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "dnsmasq does not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut lookups = std::collections::BTreeMap::new();
        for n in &asked {
            lookups.insert(n.clone(), resolver.lookup(n).await);
        }
        let big = resolver.query("big.example.org", RecordType::A).await;
        let big_aaaa = resolver.query("Big.Example.Org.", RecordType::Aaaa).await;
        (lookups, big, big_aaaa)
    });
    let log = dnsmasq.log();
    // What the real server answered, as the client read it.
    let addrs = |n: &str, t: RecordType| -> Vec<String> {
        let r = lookups[n].get(t).as_ref();
        r.unwrap_or_else(|e| panic!("{n} {t}: {e}\n{log}"))
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(addrs("nginx.example.org", RecordType::A), nginx);
    assert!(addrs("nginx.example.org", RecordType::Aaaa).is_empty());
    assert_eq!(addrs("www.example.org", RecordType::A), nginx);
    assert_eq!(
        lookups["www.example.org"].a.as_ref().unwrap().cnames,
        ["nginx.example.org"]
    );
    assert_eq!(addrs("dual.example.org", RecordType::A), [dual4.as_str()]);
    assert_eq!(
        addrs("dual.example.org", RecordType::Aaaa),
        [dual6.as_str()]
    );
    assert_eq!(addrs("home.example.org", RecordType::A), ["172.29.51.200"]);
    assert_eq!(lookups["api.example.org"].a, Err(DnsError::NxDomain));
    assert_eq!(lookups["api.example.org"].aaaa, Err(DnsError::NxDomain));
    // All 40 (UDP carries 29 and sets TC), so the answer came over TCP.
    let big = big.unwrap_or_else(|e| panic!("big.example.org: {e}\n{}", dnsmasq.log()));
    assert_eq!(big.addresses.len(), 40, "{big:?}");
    assert_eq!(big_aaaa, Ok(Default::default()));

    // The pure check on those answers, with the backup the migration wrote.
    let backup_cm = sim
        .get("v1", "ConfigMap", "bgplb", "bgplb-migration-backup")
        .expect("the migration's backup");
    let backup: migrate::Backup =
        serde_json::from_str(backup_cm["data"]["backup"].as_str().unwrap()).unwrap();
    let input = Input {
        site: bgplb_site::parse(bgplb_tests::lab::REFERENCE_SITE).unwrap(),
        cluster: "home".into(),
        services: sim
            .list("Service")
            .into_iter()
            .map(|s| serde_json::from_value(s).unwrap())
            .collect(),
        nodes: vec![],
        cilium: CiliumObjects::default(),
        cilium_version: Some("1.18.2".into()),
        agent: None,
        cilium_config: None,
        dns: Some(DnsResults {
            server: "127.0.0.1:53".into(),
            lookups,
        }),
        backup: Some(backup),
    };
    let report = validate::validate(&input);
    let check = report.check("dns").unwrap();
    let text = check.details.join("\n");
    eprintln!("{text}");
    assert_eq!(check.status, Status::Fail, "{text}");
    let has = |needle: &str| {
        assert!(
            check.details.iter().any(|d| d.contains(needle)),
            "no {needle:?} in:\n{text}"
        )
    };
    has("ingress/traefik: home.example.org A: resolves to 172.29.51.200, it should be 172.29.52.200: stale record from before the migration (L2 address 172.29.51.200, this service's address then)");
    has("media/jellyfin: tv.example.org A: resolves to 172.29.51.180");
    has("stale record from before the migration (172.29.51.180 is inside the pre-migration L2 pool l2-pool)");
    has(&format!(
        "web/api: api.example.org does not exist at 127.0.0.1:53 (NXDOMAIN): it should resolve to {}",
        api[0]
    ));
    has(&format!(
        "ingress/nginx: www.example.org (via CNAME nginx.example.org) resolves to {}",
        nginx[0]
    ));
    has(&format!(
        "web/dual: dual.example.org resolves to {dual4}, {dual6}"
    ));
    has(
        "6 name(s) of 5 service(s) asked at 127.0.0.1:53: 3 resolve to their service's address(es)",
    );

    // The command, inside the namespace, against the stand-in and dnsmasq.
    let kc = dir.path().join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&format!("http://{API}"))).unwrap();
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/site.toml");
    let run = |extra: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(bgplb_tests::bins::path("bgplb-companion"))
            .args(["validate", "--no-agent", "--json", "--site"])
            .arg(&site)
            .arg("--config")
            .arg(dir.path().join("none.toml"))
            .arg("--kubeconfig")
            .arg(&kc)
            .args(extra)
            .output()
            .unwrap()
    };
    let checks = |out: &std::process::Output| -> Vec<Value> {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        v["checks"].as_array().unwrap().clone()
    };
    let out = run(&["--dns-server", "127.0.0.1"]);
    let all = checks(&out);
    let dns = all
        .iter()
        .find(|c| c["name"] == "dns")
        .expect("a dns check");
    let details = dns["details"].to_string();
    assert_eq!(dns["status"], "fail", "{details}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "home.example.org A: resolves to 172.29.51.200",
        "stale record from before the migration (L2 address 172.29.51.200, this service's address then)",
        "api.example.org does not exist at 127.0.0.1:53 (NXDOMAIN)",
        "3 resolve to their service's address(es)",
    ] {
        assert!(details.contains(needle), "no {needle:?} in {details}");
    }
    // The failure is DNS's: without the server the same cluster passes, the row says why it is
    // empty.
    let out = run(&[]);
    let all = checks(&out);
    let failed: Vec<&Value> = all.iter().filter(|c| c["status"] == "fail").collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(out.status.code(), Some(0));
    let dns = all.iter().find(|c| c["name"] == "dns").unwrap();
    assert_eq!(
        dns["details"][0],
        "not checked: no DNS server given (--dns-server)"
    );
    drop(dnsmasq);
}

/// The reply to `query` a server would send: its header and question, QR set, one A record.
fn reply(query: &[u8], addr: [u8; 4]) -> Vec<u8> {
    let mut r = query.to_vec();
    r[2] |= 0x80;
    r[7] = 1; // ANCOUNT
    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
    r.extend_from_slice(&addr);
    r
}

#[test]
fn the_client_ignores_foreign_answers_retries_and_times_out() {
    let ns = Scratch::new("dnc");
    block_on_in(&ns.name, || async {
        // Loses the first query; answers the second with a wrong ID, then the wrong question,
        // then right.
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:5300").await.unwrap();
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut seen = 0;
            loop {
                let (n, from) = sock.recv_from(&mut buf).await.unwrap();
                seen += 1;
                if seen == 1 {
                    continue;
                }
                let q = &buf[..n];
                let mut wrong_id = reply(q, [10, 9, 9, 9]);
                wrong_id[1] ^= 1;
                sock.send_to(&wrong_id, from).await.unwrap();
                let mut wrong_question = reply(q, [10, 9, 9, 8]);
                wrong_question[13] = b'z'; // app.example.org -> zpp.example.org
                sock.send_to(&wrong_question, from).await.unwrap();
                sock.send_to(&reply(q, [172, 29, 52, 7]), from)
                    .await
                    .unwrap();
                return seen;
            }
        });
        let resolver = Resolver {
            timeout: Duration::from_millis(400),
            tries: 2,
            ..Resolver::new("127.0.0.1:5300".parse().unwrap())
        };
        let started = Instant::now();
        let answer = resolver.query("app.example.org", RecordType::A).await;
        assert_eq!(
            answer.unwrap().addresses,
            ["172.29.52.7".parse::<IpAddr>().unwrap()]
        );
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(server.await.unwrap(), 2, "one retry");

        // Nobody answers: two tries of 400 ms, then a timeout.
        let _silent = tokio::net::UdpSocket::bind("127.0.0.1:5301").await.unwrap();
        let resolver = Resolver {
            server: "127.0.0.1:5301".parse().unwrap(),
            ..resolver
        };
        let started = Instant::now();
        assert_eq!(
            resolver.query("app.example.org", RecordType::Aaaa).await,
            Err(DnsError::Timeout {
                tries: 2,
                each: Duration::from_millis(400)
            })
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_secs(3),
            "{took:?}"
        );
    });
}
