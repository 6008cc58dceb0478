//! Source NAT in `validate`, against the kernel's real NAT: a service on a node sees the
//! client's address, until a masquerade rule in the gateway (iptables, then native nftables)
//! rewrites it. Each time, what the `nat` check says must be what the kernel did to a real
//! connection from the LAN (the client namespace) to the VIP, and a failure names the rule and
//! the fix. A rule with a match bgplb cannot judge (a packet mark) is a warning naming it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bgplb_tests::cmd::run;
use bgplb_tests::{Lab, LabSpec};

const VIP: &str = "172.29.52.100";
const PORT: u16 = 8080;

/// A service on node 0 at VIP:PORT that answers each connection with the address it came from.
fn serve_peer_address(lab: &Lab, stop: Arc<AtomicBool>) {
    let ns = lab.nodes[0].ns.clone();
    run(&[
        "ip",
        "-n",
        &ns,
        "addr",
        "add",
        &format!("{VIP}/32"),
        "dev",
        "lo",
    ]);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        bgplb_tests::netns::run_in(&ns, move || {
            let listener = std::net::TcpListener::bind((VIP, PORT)).expect("bind the VIP service");
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        use std::io::Write;
                        let _ = conn.write_all(format!("{}\n", peer.ip()).as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("service started");
}

/// `validate --json`: its exit code and the `nat` check.
fn nat_check(lab: &Lab) -> (i32, serde_json::Value) {
    let out = lab.agent(&["validate", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "validate --json: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let check = v["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "nat").cloned())
        .unwrap_or_else(|| panic!("no nat check: {v}"));
    (out.status.code().unwrap_or(-1), check)
}

fn details(check: &serde_json::Value) -> String {
    check["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn validate_says_what_the_kernel_does_to_the_clients_address() {
    let (lab, _) = Lab::start_with_daemon(
        LabSpec {
            nodes: 1,
            ipv6: false,
            client: true,
            ..LabSpec::default()
        },
        |_| {},
    );
    lab.wait_established(&["172.29.51.11"]);
    let stop = lab.stop_flag();
    serve_peer_address(&lab, stop.clone());
    lab.nodes[0].announce(&format!("{VIP}/32"), &["64512:100"]);
    lab.wait_route(VIP, &["172.29.51.11"]);
    // The gateway's interface towards the nodes, as the kernel names it.
    let addrs: serde_json::Value =
        serde_json::from_str(&run(&["ip", "-n", &lab.gw, "-j", "addr", "show"])).unwrap();
    let node_if = addrs
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["local"] == "172.29.51.1")
        })
        .and_then(|l| l["ifname"].as_str())
        .expect("the gateway's node interface")
        .to_string();
    let iptables = |args: &[&str]| {
        let mut cmd = vec!["ip", "netns", "exec", &lab.gw, "iptables", "-t", "nat"];
        cmd.extend_from_slice(args);
        run(&cmd);
    };

    // No NAT: the service sees the client, and validate says so.
    assert_eq!(lab.tcp_from_client(VIP, PORT).unwrap(), "192.168.100.2");
    let (code, check) = nat_check(&lab);
    assert_eq!(check["ok"], true, "{check}");
    assert!(details(&check).contains("192.168.100.0/24"), "{check}");
    assert_eq!(code, 0, "{check}");

    // A masquerade towards the node network: the kernel rewrites, validate fails naming it.
    iptables(&[
        "-A",
        "POSTROUTING",
        "-s",
        "192.168.100.0/24",
        "-o",
        &node_if,
        "-j",
        "MASQUERADE",
    ]);
    assert_eq!(lab.tcp_from_client(VIP, PORT).unwrap(), "172.29.51.1");
    let (code, check) = nat_check(&lab);
    let text = details(&check);
    assert_eq!((code, &check["ok"]), (1, &false.into()), "{check}");
    assert!(
        text.contains(&format!(
            "-A POSTROUTING -s 192.168.100.0/24 -o {node_if} -j MASQUERADE"
        )) && text.contains("pool bgp-default")
            && text.contains("segment.mode = \"adopt\"")
            && text.contains("iptables -t nat -I POSTROUTING -d 172.29.52.0/24 -j RETURN"),
        "{text}"
    );

    // The exemption the message gives, before it: the client's address is back, and the check
    // passes again.
    iptables(&["-I", "POSTROUTING", "-d", "172.29.52.0/24", "-j", "RETURN"]);
    assert_eq!(lab.tcp_from_client(VIP, PORT).unwrap(), "192.168.100.2");
    let (code, check) = nat_check(&lab);
    assert_eq!((code, &check["ok"]), (0, &true.into()), "{check}");

    // Native nftables, in a table of its own.
    iptables(&["-F", "POSTROUTING"]);
    let nft = |args: &[&str]| {
        let mut cmd = vec!["ip", "netns", "exec", &lab.gw, "nft"];
        cmd.extend_from_slice(args);
        run(&cmd);
    };
    nft(&["add", "table", "inet", "labnat"]);
    nft(&[
        "add",
        "chain",
        "inet",
        "labnat",
        "post",
        "{ type nat hook postrouting priority 100; }",
    ]);
    nft(&[
        "add",
        "rule",
        "inet",
        "labnat",
        "post",
        "ip",
        "saddr",
        "192.168.100.0/24",
        "oifname",
        &node_if,
        "masquerade",
    ]);
    assert_eq!(lab.tcp_from_client(VIP, PORT).unwrap(), "172.29.51.1");
    let (code, check) = nat_check(&lab);
    let text = details(&check);
    assert_eq!(code, 1, "{check}");
    assert!(
        text.contains("nft: table inet labnat chain post")
            && text.contains(&format!(
                "ip saddr 192.168.100.0/24 oifname {node_if} masquerade"
            )),
        "{text}"
    );
    nft(&["delete", "table", "inet", "labnat"]);

    // A native chain in iptables-nft's own `table ip nat` (iptables-nft-save cannot show it):
    // still judged, as nftables.
    nft(&[
        "add",
        "chain",
        "ip",
        "nat",
        "mypost",
        "{ type nat hook postrouting priority 110; }",
    ]);
    nft(&[
        "add",
        "rule",
        "ip",
        "nat",
        "mypost",
        "oifname",
        &node_if,
        "masquerade",
    ]);
    assert_eq!(lab.tcp_from_client(VIP, PORT).unwrap(), "172.29.51.1");
    let (code, check) = nat_check(&lab);
    let text = details(&check);
    assert_eq!(code, 1, "{check}");
    assert!(text.contains("nft: table ip nat chain mypost"), "{text}");
    assert!(
        text.contains("nft insert rule"),
        "the fix in nft's words: {text}"
    );
    nft(&["delete", "chain", "ip", "nat", "mypost"]);

    // A match bgplb cannot judge: a warning naming the rule, not a pass. (The kernel does not
    // masquerade here: nothing sets the mark.)
    iptables(&[
        "-A",
        "POSTROUTING",
        "-m",
        "mark",
        "--mark",
        "0x1",
        "-j",
        "MASQUERADE",
    ]);
    assert_eq!(lab.tcp_from_client(VIP, PORT).unwrap(), "192.168.100.2");
    let (code, check) = nat_check(&lab);
    let text = details(&check);
    assert_eq!(
        (code, &check["ok"], &check["warning"]),
        (0, &true.into(), &true.into()),
        "{check}"
    );
    assert!(
        text.contains("-m mark --mark 0x1 -j MASQUERADE") && text.contains("cannot judge"),
        "{text}"
    );
    stop.store(true, Ordering::SeqCst);
}
