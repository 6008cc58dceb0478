//! The day-2 commands in the lab, run as an operator would from a machine behind the gateway (the
//! client namespace): real FRR and `bgplb-agent run` on the gateway, GoBGP nodes, the companion
//! reporting a simulated cluster (the Kubernetes API stand-in, served in k8s-1's namespace for the
//! companion and in the client namespace for the commands: one state, two listeners).
//!
//! * `verify-bgp-peering`: CiliumBGPNodeConfig objects whose peer status is what the nodes'
//!   GoBGP really reports (`gobgp neighbor ADDR -j`, as Cilium fills it in) agree with the agent's
//!   sessions; a node whose status says idle, a node whose GoBGP is stopped, a peer address that is
//!   not the gateway's are each named; without node configs only the gateway's end is judged.
//! * `test-connectivity`: a VIP served and announced by two nodes is reached from the client and
//!   from the gateway (TCP, and `GET /` on its HTTP port); a VIP nobody announces fails from both,
//!   with "not routed" as the cause.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bgplb_tests::cmd::wait_for;
use bgplb_tests::kubesim::{objects, Collection, KubeSim};
use bgplb_tests::lab::gobgp_in;
use bgplb_tests::{Lab, LabSpec};
use serde_json::{json, Value};

const COMMUNITY: &[&str] = &["64512:100"];
const API: &str = "127.0.0.1:6443";

/// A lab with the daemon, `nodes` GoBGP nodes with every session Established, the simulated
/// cluster (Cilium 1.18 serving CiliumBGPNodeConfig) and the companion reporting it.
fn start(nodes: usize) -> (Lab, KubeSim) {
    let (mut lab, _) = Lab::start_with_daemon(
        LabSpec {
            nodes,
            client: true,
            ..LabSpec::default()
        },
        |_| {},
    );
    let sim = KubeSim::with_cilium("1.18.2");
    for v in ["v2", "v2alpha1"] {
        sim.serve(Collection::new("cilium.io", v, "ciliumbgpnodeconfigs"));
    }
    sim.apply(objects::bgp_cluster_config("bgplb-home"));
    for n in &lab.nodes {
        sim.apply(objects::node(&n.name, &n.ipv4, n.ipv6.as_deref(), true));
    }
    sim.spawn_in_namespace(&lab.nodes[0].ns, API.parse().unwrap());
    sim.spawn_in_namespace(&lab.client_ns(), API.parse().unwrap());
    lab.start_companion(0, 2);
    let addresses = lab.all_node_addresses();
    lab.wait_established(&addresses.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for(
        "the companion's report of every node",
        Duration::from_secs(30),
        || (lab.agent_status(1)["clusters"][0]["nodes"] == nodes).then_some(()),
    );
    (lab, sim)
}

/// `bgplb-companion COMMAND ARGS` in the client namespace, with the lab's site, the companion's
/// configuration (agent URL, client certificate) and a kubeconfig for the stand-in.
fn companion(lab: &Lab, command: &str, args: &[&str]) -> Output {
    let dir: PathBuf = lab.dir.path().to_path_buf();
    Command::new("ip")
        .args(["netns", "exec", &lab.client_ns()])
        .arg(bgplb_tests::bins::path("bgplb-companion"))
        .arg(command)
        .arg("--site")
        .arg(dir.join("site.toml"))
        .arg("--config")
        .arg(dir.join("companion.toml"))
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .args(args)
        .output()
        .expect("run bgplb-companion")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(out)))
}

/// Cilium's name for GoBGP's session state (`pkg/bgpv1/types`: the same order as GoBGP's enum).
fn cilium_state(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_ascii_lowercase();
    }
    match v.as_u64() {
        Some(1) => "idle",
        Some(2) => "connect",
        Some(3) => "active",
        Some(4) => "open_sent",
        Some(5) => "open_confirm",
        Some(6) => "established",
        _ => "unknown",
    }
    .to_string()
}

/// Node `index`'s CiliumBGPNodeConfig as Cilium writes it, its status read from the node's GoBGP
/// (per neighbour, with the advertised counts).
fn node_config_from_gobgp(lab: &Lab, index: usize) -> Value {
    let node = &lab.nodes[index];
    let list = gobgp_in(&node.ns, &["neighbor", "-j"]);
    assert!(list.status.success(), "gobgp neighbor: {}", text(&list));
    let neighbors: Vec<Value> = serde_json::from_slice(&list.stdout).expect("gobgp neighbor -j");
    let mut spec_peers = Vec::new();
    let mut status_peers = Vec::new();
    for n in &neighbors {
        let addr = n["conf"]["neighbor_address"]
            .as_str()
            .expect("neighbor_address")
            .to_string();
        // The detail has the advertised counts (the list leaves them out).
        let detail = gobgp_in(&node.ns, &["neighbor", &addr, "-j"]);
        assert!(
            detail.status.success(),
            "gobgp neighbor {addr}: {}",
            text(&detail)
        );
        let d: Value = serde_json::from_slice(&detail.stdout).expect("gobgp neighbor ADDR -j");
        let d = if d.is_array() { d[0].clone() } else { d };
        let afi = if addr.contains(':') { "ipv6" } else { "ipv4" };
        let count = |key: &str| -> u64 {
            d["afi_safis"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["state"][key].as_u64())
                .sum()
        };
        let name = format!("udm-pro-{afi}");
        let asn = d["conf"]["peer_asn"].as_u64().expect("peer_asn");
        spec_peers.push(json!({"name": name, "peerAddress": addr, "peerASN": asn,
                               "peerConfigRef": {"name": format!("bgplb-home-{afi}")}}));
        let state = cilium_state(&d["state"]["session_state"]);
        let mut peer = json!({
            "name": name, "peerAddress": addr, "peerASN": asn, "peeringState": state,
            "routeCount": [{"afi": afi, "safi": "unicast",
                            "advertised": count("advertised"), "received": count("received")}],
            "timers": {"appliedHoldTimeSeconds": 9, "appliedKeepaliveSeconds": 3}
        });
        if state == "established" {
            peer["establishedTime"] = json!("2026-11-25T12:00:00Z");
        }
        status_peers.push(peer);
    }
    json!({
        "apiVersion": "cilium.io/v2", "kind": "CiliumBGPNodeConfig",
        "metadata": {"name": node.name},
        "spec": {"bgpInstances": [{"name": "bgplb", "localASN": 64513, "peers": spec_peers}]},
        "status": {"bgpInstances": [{"name": "bgplb", "localASN": 64513, "peers": status_peers}]}
    })
}

/// Sets every peer of a node config's status to `state`.
fn with_state(mut config: Value, state: &str) -> Value {
    for p in config["status"]["bgpInstances"][0]["peers"]
        .as_array_mut()
        .unwrap()
    {
        p["peeringState"] = json!(state);
        p.as_object_mut().unwrap().remove("establishedTime");
        if state != "established" {
            // GoBGP counts nothing on a session that is not up.
            p["routeCount"][0]["advertised"] = json!(0);
            p["routeCount"][0]["received"] = json!(0);
        }
    }
    config
}

/// Runs `verify-bgp-peering ARGS` until `done` accepts its output (at most `secs` seconds);
/// panics with the last output.
fn verify_until(
    lab: &Lab,
    args: &[&str],
    what: &str,
    secs: u64,
    done: impl Fn(&Output) -> bool,
) -> Output {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let out = companion(lab, "verify-bgp-peering", args);
        if done(&out) {
            return out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}; the last output:\n{}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn findings(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f["status"].as_str().unwrap(),
                f["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn verify_bgp_peering_compares_the_gateway_with_cilium() {
    let (mut lab, sim) = start(3);
    // A service announced from k8s-1 and k8s-2: each advertises one IPv4 route.
    sim.apply(objects::service("web", "nginx", &["172.29.52.150"], 8080));
    sim.apply(objects::endpoint_slice("web", "nginx", &["k8s-1", "k8s-2"]));
    for i in [0, 1] {
        lab.nodes[i].announce("172.29.52.150/32", COMMUNITY);
    }
    lab.wait_route("172.29.52.150", &["172.29.51.11", "172.29.51.12"]);

    // Cilium's status as the speakers report it: both ends agree.
    let configs: Vec<Value> = (0..3).map(|i| node_config_from_gobgp(&lab, i)).collect();
    for c in &configs {
        sim.apply(c.clone());
    }
    let ok = verify_until(&lab, &["--json"], "verify-bgp-peering to pass", 30, |out| {
        out.status.code() == Some(0)
    });
    let v = json_of(&ok);
    assert_eq!(v["cilium_view"], true);
    assert_eq!(v["sessions"].as_array().unwrap().len(), 6, "{v:#}");
    assert!(findings(&v).is_empty(), "{:#?}", findings(&v));
    let k1 = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["node"] == "k8s-1" && s["family"] == "ipv4")
        .unwrap();
    assert_eq!(k1["gateway"]["state"], "Established");
    assert_eq!(k1["gateway"]["accepted"], 1);
    assert_eq!(k1["cilium"]["state"], "established");
    // GoBGP v3 counts the End-of-RIB marker of a graceful-restart session as advertised.
    assert_eq!(k1["cilium"]["advertised"], 2);
    let table = companion(&lab, "verify-bgp-peering", &[]);
    println!("==> verify-bgp-peering, both ends agree\n{}", text(&table));
    assert_eq!(table.status.code(), Some(0), "{}", text(&table));
    assert!(
        String::from_utf8_lossy(&table.stdout).contains(
            "6 of 6 session(s) Established on both ends (udm-pro and Cilium) for cluster home"
        ),
        "{}",
        text(&table)
    );

    // k8s-3 advertises a route the gateway refuses (outside the pools): the counts differ.
    lab.nodes[2].announce("10.99.0.1/32", COMMUNITY);
    let counted = wait_for(
        "k8s-3's GoBGP to count the new route",
        Duration::from_secs(10),
        || {
            let c = node_config_from_gobgp(&lab, 2);
            let advertised = c["status"]["bgpInstances"][0]["peers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["peerAddress"] == "172.29.51.1")
                .map(|p| p["routeCount"][0]["advertised"].clone());
            (advertised == Some(json!(2))).then_some(c)
        },
    );
    sim.apply(counted);
    let out = verify_until(&lab, &["--json"], "the route counts to differ", 30, |out| {
        out.status.code() == Some(1)
    });
    let f = findings(&json_of(&out));
    assert_eq!(
        f,
        ["fail: k8s-3 ipv4: Cilium advertises 2 routes, the gateway accepted 0 (it refuses routes \
          outside the site's pools or without the community: `bgplb-agent status` lists them)"],
        "{}",
        text(&out)
    );
    let table = companion(&lab, "verify-bgp-peering", &[]);
    println!(
        "==> verify-bgp-peering, k8s-3 advertises a route the gateway refuses\n{}",
        text(&table)
    );
    lab.nodes[2].withdraw("10.99.0.1/32");
    sim.apply(configs[2].clone());

    // k8s-2's Cilium says idle while the gateway's sessions are up: the mismatch is named.
    sim.apply(with_state(configs[1].clone(), "idle"));
    let out = companion(&lab, "verify-bgp-peering", &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let f = findings(&json_of(&out));
    for family in ["ipv4", "ipv6"] {
        let line = format!("fail: k8s-2 {family}: gateway Established, Cilium says idle");
        assert!(f.contains(&line), "no {line:?} in {f:#?}");
    }

    // k8s-2's BGP stops: the gateway's sessions go down too, and the down sessions are named.
    lab.nodes[1].stop_bgp();
    let down = verify_until(
        &lab,
        &["--json"],
        "the gateway to see k8s-2's sessions down",
        40,
        |out| {
            findings(&json_of(out))
                .iter()
                .any(|l| l.starts_with("fail: k8s-2 ipv4: session down: gateway "))
        },
    );
    assert_eq!(down.status.code(), Some(1), "{}", text(&down));
    let f = findings(&json_of(&down));
    assert!(
        f.iter().any(
            |l| l.starts_with("fail: k8s-2 ipv4: session down: gateway ")
                && l.ends_with(", Cilium says idle")
        ),
        "{f:#?}"
    );
    let table = companion(&lab, "verify-bgp-peering", &[]);
    println!(
        "==> verify-bgp-peering, k8s-2's BGP stopped\n{}",
        text(&table)
    );

    // k8s-3's Cilium peers with an address that is not the gateway's.
    let mut wrong = configs[2].clone();
    for section in ["spec", "status"] {
        for p in wrong[section]["bgpInstances"][0]["peers"]
            .as_array_mut()
            .unwrap()
        {
            if p["peerAddress"] == "fd47:25e1:2f96:51::1" {
                p["peerAddress"] = json!("fd47:25e1:2f96:51::2");
            }
        }
    }
    sim.apply(wrong);
    let out = companion(&lab, "verify-bgp-peering", &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let f = findings(&json_of(&out));
    assert!(
        f.contains(
            &"fail: k8s-3 ipv6: Cilium peers with fd47:25e1:2f96:51::2, the gateway is fd47:25e1:2f96:51::1"
                .to_string()
        ),
        "{f:#?}"
    );
    let table = companion(&lab, "verify-bgp-peering", &[]);
    println!(
        "==> verify-bgp-peering, k8s-3's peer address wrong\n{}",
        text(&table)
    );

    // An older Cilium (no CiliumBGPNodeConfig): only the gateway's end, and it is healthy again.
    lab.restart_bgp(1);
    lab.nodes[1].announce("172.29.52.150/32", COMMUNITY);
    lab.wait_established(&["172.29.51.12", "fd47:25e1:2f96:51::12"]);
    for n in ["k8s-1", "k8s-2", "k8s-3"] {
        assert!(sim.delete("cilium.io/v2", "CiliumBGPNodeConfig", "", n));
    }
    let out = verify_until(
        &lab,
        &[],
        "verify-bgp-peering to pass on the gateway's end alone",
        30,
        |out| out.status.code() == Some(0),
    );
    let t = String::from_utf8_lossy(&out.stdout);
    println!(
        "==> verify-bgp-peering, no CiliumBGPNodeConfig\n{}",
        text(&out)
    );
    assert!(t.contains("warn  Cilium's view is unavailable"), "{t}");
    assert!(
        t.contains("6 of 6 session(s) Established on udm-pro"),
        "{t}"
    );
}

/// Answers every connection on `vip:port` in namespace `ns` with an HTTP 200 after reading the
/// request, until `stop` is set (the VIP must be on the namespace's loopback already).
fn serve_http(ns: &str, vip: &str, port: u16, stop: Arc<AtomicBool>) {
    let addr = SocketAddr::new(vip.parse().unwrap(), port);
    let ns = ns.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        bgplb_tests::netns::run_in(&ns, move || {
            let listener = bgplb_tests::lab::bind_fresh(addr).expect("bind the HTTP service");
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = conn.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("HTTP service started");
}

fn result<'a>(v: &'a Value, vip: &str, port: u16) -> &'a Value {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["vip"] == vip && r["port"] == port)
        .unwrap_or_else(|| panic!("no result for {vip}:{port}: {v:#}"))
}

#[test]
fn test_connectivity_reaches_announced_vips_and_explains_the_rest() {
    let (lab, sim) = start(3);
    // web/nginx: served on k8s-2 and k8s-3, announced by both; 8080 speaks HTTP, 9000 plain TCP.
    let mut nginx = objects::service("web", "nginx", &["172.29.52.150"], 8080);
    nginx["spec"]["ports"] = json!([
        {"name": "http", "port": 8080, "protocol": "TCP", "targetPort": 8080},
        {"name": "raw", "port": 9000, "protocol": "TCP", "targetPort": 9000},
        {"name": "syslog", "port": 514, "protocol": "UDP", "targetPort": 514}
    ]);
    sim.apply(nginx);
    sim.apply(objects::endpoint_slice("web", "nginx", &["k8s-2", "k8s-3"]));
    for i in [1, 2] {
        lab.serve_vip(i, "172.29.52.150", 9000);
        serve_http(&lab.nodes[i].ns, "172.29.52.150", 8080, lab.stop_flag());
        lab.nodes[i].announce("172.29.52.150/32", COMMUNITY);
    }
    // web/ghost: an endpoint on k8s-1, but nobody announces its VIP.
    sim.apply(objects::service("web", "ghost", &["172.29.52.151"], 9000));
    sim.apply(objects::endpoint_slice("web", "ghost", &["k8s-1"]));
    lab.wait_route("172.29.52.150", &["172.29.51.12", "172.29.51.13"]);
    // The agent probes only its cluster's VIPs (from the last report) and names the missing
    // route in its fib check. Its status is cached for a few seconds: the causes below come
    // from it, so it must also show every session up (the route can be in before it does).
    wait_for(
        "the agent to know both services, every session up and ghost's route missing",
        Duration::from_secs(40),
        || {
            let st = lab.agent_status(1);
            let check = |name: &str| {
                st["kernel_checks"]
                    .as_array()?
                    .iter()
                    .find(|c| c["name"] == name)
                    .cloned()
            };
            let fib = check("fib")?.to_string();
            (st["clusters"][0]["services"] == 2
                && check("sessions")?["ok"] == true
                && fib.contains("172.29.52.151"))
            .then_some(())
        },
    );

    let out = companion(&lab, "test-connectivity", &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = json_of(&out);
    assert_eq!(
        (v["from_here"].clone(), v["from_gateway"].clone()),
        (json!(true), json!(true))
    );
    // Reached from the client and from the gateway; GET / answered on the HTTP port.
    for port in [8080, 9000] {
        let r = result(&v, "172.29.52.150", port);
        assert_eq!(r["result"], "ok", "{r:#}");
        assert_eq!(r["here"]["outcome"], "reached", "{r:#}");
        assert_eq!(r["gateway"]["outcome"], "reached", "{r:#}");
    }
    let http = result(&v, "172.29.52.150", 8080);
    assert_eq!(http["check"], "http");
    assert_eq!(http["here"]["http"]["status"], 200, "{http:#}");
    assert_eq!(result(&v, "172.29.52.150", 9000)["check"], "tcp");
    // The unannounced VIP fails from both sides, and the cause says it is not routed.
    let ghost = result(&v, "172.29.52.151", 9000);
    assert_eq!(ghost["result"], "fail", "{ghost:#}");
    assert_eq!(ghost["service"], "web/ghost");
    assert_eq!(ghost["here"]["outcome"], "failed", "{ghost:#}");
    assert_eq!(ghost["gateway"]["outcome"], "failed", "{ghost:#}");
    let cause = ghost["causes"][0].as_str().unwrap();
    assert!(
        cause.starts_with("not routed: the agent's fib check says 172.29.52.151"),
        "{ghost:#}"
    );
    // UDP is skipped with a note.
    assert!(
        v["notes"]
            .to_string()
            .contains("web/nginx: UDP port 514 skipped"),
        "{v:#}"
    );
    let table = companion(&lab, "test-connectivity", &[]);
    println!("==> test-connectivity\n{}", text(&table));
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("FAIL  172.29.52.151:9000 (web/ghost, port 9000): from here: ")
            && t.contains("      likely cause: not routed"),
        "{t}"
    );

    // One side at a time.
    let here = companion(&lab, "test-connectivity", &["--from-here-only", "--json"]);
    assert_eq!(here.status.code(), Some(1), "{}", text(&here));
    let h = json_of(&here);
    assert_eq!(h["from_gateway"], false);
    assert!(result(&h, "172.29.52.151", 9000)["gateway"].is_null());
    assert!(result(&h, "172.29.52.151", 9000)["causes"][0]
        .as_str()
        .unwrap()
        .starts_with("not routed"));
    let gw = companion(&lab, "test-connectivity", &["--gateway-only"]);
    assert_eq!(gw.status.code(), Some(1), "{}", text(&gw));
    println!("==> test-connectivity --gateway-only\n{}", text(&gw));
    let both = companion(
        &lab,
        "test-connectivity",
        &["--gateway-only", "--from-here-only"],
    );
    assert_eq!(both.status.code(), Some(64), "{}", text(&both));

    // Without the ghost every target is reached.
    assert!(sim.delete("v1", "Service", "web", "ghost"));
    let out = companion(&lab, "test-connectivity", &[]);
    println!("==> test-connectivity, ghost deleted\n{}", text(&out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("2 of 2 target(s) reachable from here and from the gateway"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unreachable_agent_or_api_is_exit_69() {
    // No lab: the commands alone, against nothing. The configuration names an agent nobody
    // serves and the kubeconfig an API nobody serves (a private namespace with loopback only).
    let ns = bgplb_tests::netns::Scratch::new("d2");
    let dir = tempfile::tempdir().unwrap();
    let pki = bgplb_tests::client::pki_dir();
    std::fs::write(
        dir.path().join("companion.toml"),
        format!(
            "cluster = \"home\"\nagents = [\"https://127.0.0.1:7443\"]\n[tls]\nca = \"{0}/ca.crt\"\ncert = \"{0}/companion-home.crt\"\nkey = \"{0}/companion-home.key\"\n",
            pki.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kubeconfig"),
        bgplb_tests::kubesim::kubeconfig(&format!("http://{API}")),
    )
    .unwrap();
    let site = format!("{}/../config/site.toml", env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(bgplb_tests::bins::path("bgplb-companion"))
            .args(args)
            .arg("--site")
            .arg(&site)
            .arg("--config")
            .arg(dir.path().join("companion.toml"))
            .arg("--kubeconfig")
            .arg(dir.path().join("kubeconfig"))
            .output()
            .unwrap()
    };
    // The API is down.
    for cmd in ["verify-bgp-peering", "test-connectivity"] {
        let out = run(&[cmd]);
        assert_eq!(out.status.code(), Some(69), "{cmd}: {}", text(&out));
    }
    // The API answers, the agent does not.
    let sim = KubeSim::with_cilium("1.18.2");
    sim.apply(objects::node("k8s-1", "172.29.51.11", None, true));
    sim.apply(objects::service("web", "nginx", &["172.29.52.150"], 8080));
    sim.spawn_in_namespace(&ns.name, API.parse().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let out = run(&["verify-bgp-peering"]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    assert!(
        text(&out).contains("the agent is not reachable"),
        "{}",
        text(&out)
    );
    let out = run(&["test-connectivity", "--connect-timeout", "1"]);
    assert_eq!(out.status.code(), Some(69), "{}", text(&out));
    // Only from here: the agent is not needed; the VIP is not reachable in this namespace.
    let out = run(&[
        "test-connectivity",
        "--from-here-only",
        "--connect-timeout",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A bad site file is bad input.
    let out = Command::new(bgplb_tests::bins::path("bgplb-companion"))
        .args(["verify-bgp-peering", "--site", "/nonexistent/site.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
}
