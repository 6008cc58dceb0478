//! A gateway namespace running a real FRR instance, node namespaces running real GoBGP (the
//! speaker Cilium embeds), all on one bridge that stands for the node network (VLAN 51).
//!
//! ```text
//!  <id>gw:  br51 172.29.51.1/24 fd47:25e1:2f96:51::1/64 ── zebra + bgpd (FRR -N <id>gw)
//!            ├── n1 ═ veth ═ eth0 <id>n1: 172.29.51.11 fd47:25e1:2f96:51::11  gobgpd AS 64513
//!            ├── n2 ═ veth ═ eth0 <id>n2: 172.29.51.12 ...
//!            └── ...
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bgplb_site::Site;

use crate::cmd::{self, quiet, run, wait_for};

/// The reference site every lab starts from.
pub const REFERENCE_SITE: &str = include_str!("../../config/site.toml");

/// Prefix of every lab namespace; the creator's pid follows it.
const PREFIX: &str = "blt";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Node namespaces, named k8s-1, k8s-2, ...
    pub nodes: usize,
    /// Give nodes IPv6 addresses and IPv6 sessions.
    pub ipv6: bool,
    /// MD5 password on both sides.
    pub password: Option<String>,
    /// Graceful restart on the GoBGP side, with the N-bit, as Cilium sets it.
    pub graceful_restart: bool,
    /// A client namespace behind the gateway (192.168.100.2, fd47:ffff::2), for TCP to VIPs.
    pub client: bool,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            nodes: 1,
            ipv6: true,
            password: None,
            graceful_restart: true,
            client: false,
        }
    }
}

pub struct Lab {
    pub id: String,
    /// Name of the gateway namespace (also the FRR instance name).
    pub gw: String,
    pub nodes: Vec<Node>,
    pub spec: LabSpec,
    /// Holds the lab's files: FRR logs, the site file, the agent's data dir.
    pub dir: tempfile::TempDir,
    frr: Vec<Child>,
    daemon: Option<Child>,
    /// Other processes the lab started (the companion), stopped on drop.
    extra: Vec<Child>,
    /// Set on drop: stops the TCP services' threads.
    stop: Arc<AtomicBool>,
    namespaces: Vec<String>,
    /// The test changes FRR behind the daemon's back on purpose. Otherwise a daemon that found
    /// its configuration changed by someone else (the FRR watch misfiring on the agent's own
    /// writes) fails the test when the lab is dropped.
    pub frr_changes_expected: bool,
}

pub struct Node {
    pub name: String,
    pub ns: String,
    pub ipv4: String,
    pub ipv6: Option<String>,
    gobgpd: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

/// A route in the gateway's kernel table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub dst: String,
    pub protocol: String,
    pub nexthops: BTreeSet<String>,
}

fn frr_etc(ns: &str) -> PathBuf {
    Path::new("/etc/frr").join(ns)
}

fn frr_run(ns: &str) -> PathBuf {
    Path::new("/var/run/frr").join(ns)
}

impl Lab {
    /// Builds the lab and starts FRR and every node's GoBGP. Panics with the install step when a
    /// prerequisite is missing.
    pub fn start(spec: LabSpec) -> Lab {
        cmd::require("ip", "iproute2");
        let frr = crate::frr::build();
        if frr.is_system() {
            cmd::require("/usr/lib/frr/bgpd", "frr");
            cmd::require("vtysh", "frr");
        }
        cmd::require("gobgpd", "gobgpd");
        cmd::require("gobgp", "gobgpd");
        remove_stale_labs();

        let id = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let gw = format!("{id}gw");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .expect("temp dir");
        let mut lab = Lab {
            id: id.clone(),
            gw: gw.clone(),
            nodes: Vec::new(),
            spec: spec.clone(),
            dir,
            frr: Vec::new(),
            daemon: None,
            extra: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            namespaces: Vec::new(),
            frr_changes_expected: false,
        };

        lab.add_namespace(&gw);
        run(&["ip", "-n", &gw, "link", "add", "br51", "type", "bridge"]);
        run(&[
            "ip",
            "-n",
            &gw,
            "addr",
            "add",
            "172.29.51.1/24",
            "dev",
            "br51",
        ]);
        run(&[
            "ip",
            "-n",
            &gw,
            "addr",
            "add",
            "fd47:25e1:2f96:51::1/64",
            "dev",
            "br51",
            "nodad",
        ]);
        run(&["ip", "-n", &gw, "link", "set", "br51", "up"]);
        run(&[
            "ip",
            "netns",
            "exec",
            &gw,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            // Spread connections over the ECMP next hops by port, as a gateway serving one
            // client's many connections should (the kernel's default hashes addresses only).
            "net.ipv4.fib_multipath_hash_policy=1",
            "net.ipv6.fib_multipath_hash_policy=1",
        ]);

        for i in 1..=spec.nodes {
            lab.add_node(i);
        }
        if spec.client {
            let c = lab.client_ns();
            lab.add_namespace(&c);
            run(&[
                "ip", "-n", &gw, "link", "add", "c0", "type", "veth", "peer", "name", "eth0",
                "netns", &c,
            ]);
            run(&[
                "ip",
                "-n",
                &gw,
                "addr",
                "add",
                "192.168.100.1/24",
                "dev",
                "c0",
            ]);
            run(&[
                "ip",
                "-n",
                &gw,
                "addr",
                "add",
                "fd47:ffff::1/64",
                "dev",
                "c0",
                "nodad",
            ]);
            run(&["ip", "-n", &gw, "link", "set", "c0", "up"]);
            run(&[
                "ip",
                "-n",
                &c,
                "addr",
                "add",
                "192.168.100.2/24",
                "dev",
                "eth0",
            ]);
            run(&[
                "ip",
                "-n",
                &c,
                "addr",
                "add",
                "fd47:ffff::2/64",
                "dev",
                "eth0",
                "nodad",
            ]);
            run(&["ip", "-n", &c, "link", "set", "eth0", "up"]);
            run(&[
                "ip",
                "-n",
                &c,
                "route",
                "add",
                "default",
                "via",
                "192.168.100.1",
            ]);
            run(&[
                "ip",
                "-n",
                &c,
                "-6",
                "route",
                "add",
                "default",
                "via",
                "fd47:ffff::1",
            ]);
        }
        lab.start_frr();
        for node in &mut lab.nodes {
            node.start(&spec);
        }
        lab
    }

    fn add_namespace(&mut self, name: &str) {
        run(&["ip", "netns", "add", name]);
        self.namespaces.push(name.to_string());
        run(&["ip", "-n", name, "link", "set", "lo", "up"]);
    }

    /// Adds node `i` (k8s-i, 172.29.51.(10+i)) with its link to the gateway's bridge; its GoBGP
    /// is started by [`Lab::start`] or [`Lab::add_started_node`].
    fn add_node(&mut self, i: usize) -> usize {
        let ns = format!("{}n{i}", self.id);
        self.add_namespace(&ns);
        let port = format!("n{i}");
        run(&[
            "ip", "-n", &self.gw, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
            "netns", &ns,
        ]);
        run(&[
            "ip", "-n", &self.gw, "link", "set", &port, "master", "br51", "up",
        ]);
        let ipv4 = format!("172.29.51.{}", 10 + i);
        let ipv6 = self
            .spec
            .ipv6
            .then(|| format!("fd47:25e1:2f96:51::{}", 10 + i));
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ipv4}/24"),
            "dev",
            "eth0",
        ]);
        if let Some(v6) = &ipv6 {
            run(&[
                "ip",
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
        }
        // A link that goes down and up again (a flap) keeps its IPv6 addresses.
        run(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.keep_addr_on_down=1",
            "net.ipv6.conf.eth0.keep_addr_on_down=1",
            // Answer ARP only for addresses on the asking interface: a VIP on the loopback
            // (Cilium's datapath) is not an L2 announcement.
            "net.ipv4.conf.all.arp_ignore=1",
        ]);
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        add_default_routes(&ns, ipv6.is_some());
        self.nodes.push(Node {
            name: format!("k8s-{i}"),
            ns,
            ipv4,
            ipv6,
            gobgpd: None,
            config: self.dir.path().join(format!("gobgpd-{i}.toml")),
            log: self.dir.path().join(format!("gobgpd-{i}.log")),
        });
        self.nodes.len() - 1
    }

    /// Adds one more node namespace with GoBGP running; returns its index in `nodes`.
    pub fn add_started_node(&mut self) -> usize {
        let i = self.nodes.len() + 1;
        let index = self.add_node(i);
        let spec = self.spec.clone();
        self.nodes[index].start(&spec);
        index
    }

    /// Starts zebra and bgpd in the gateway namespace from /etc/frr/<gw>/frr.conf (written the
    /// first time; afterwards it holds what `write memory` saved).
    pub fn start_frr(&mut self) {
        let etc = frr_etc(&self.gw);
        let var = frr_run(&self.gw);
        fs::create_dir_all(&etc).expect("create /etc/frr/<lab>");
        fs::create_dir_all(&var).expect("create /var/run/frr/<lab>");
        let frr = crate::frr::build();
        // FRR 10 keeps per-instance state under /var/lib/frr/<instance>.
        let state = Path::new("/var/lib/frr").join(&self.gw);
        if frr.uses_mgmtd() {
            fs::create_dir_all(&state).expect("create /var/lib/frr/<lab>");
        }
        let conf = etc.join("frr.conf");
        if !conf.exists() {
            fs::write(
                &conf,
                format!(
                    "frr defaults traditional\nhostname {}\nlog file {}\nno zebra nexthop kernel enable\n!\n",
                    self.gw,
                    self.dir.path().join("frr.log").display()
                ),
            )
            .expect("write frr.conf");
            fs::write(etc.join("vtysh.conf"), "service integrated-vtysh-config\n")
                .expect("write vtysh.conf");
        }
        let mut owned = vec![etc.display().to_string(), var.display().to_string()];
        if frr.uses_mgmtd() {
            owned.push(state.display().to_string());
        }
        let mut chown = vec!["chown", "-R", "frr:frr"];
        chown.extend(owned.iter().map(String::as_str));
        run(&chown);
        quiet(&["chown", "frr:frr", &self.dir.path().display().to_string()]);
        for &daemon in frr.daemons() {
            let log =
                fs::File::create(self.dir.path().join(format!("{daemon}.out"))).expect("log file");
            let mut command = Command::new("ip");
            command
                .args(["netns", "exec", &self.gw])
                .arg(frr.daemon(daemon))
                .args(["-N", &self.gw, "-P", "0"]);
            if !frr.uses_mgmtd() {
                command.args(["-f", &conf.display().to_string()]);
            }
            let child = command
                .args([
                    "-i",
                    &var.join(format!("{daemon}.pid")).display().to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {daemon}: {e}"));
            self.frr.push(child);
            if daemon != "bgpd" {
                wait_for(
                    &format!("{daemon}'s vty socket"),
                    Duration::from_secs(10),
                    || var.join(format!("{daemon}.vty")).exists().then_some(()),
                );
            }
        }
        if frr.uses_mgmtd() {
            wait_for("bgpd's vty socket", Duration::from_secs(10), || {
                var.join("bgpd.vty").exists().then_some(())
            });
            // As FRR's own topotests do (FRRouting/frr#19183): zebra connected to mgmtd before
            // the configuration is loaded, and mgmtd done with its transactions after, so
            // nothing that follows races mgmtd's push of zebra's configuration.
            let mgmtd = |what: &str| {
                String::from_utf8_lossy(&cmd::output(&[vtysh(), "-N", &self.gw, "-c", what]).stdout)
                    .into_owned()
            };
            wait_for("zebra to connect to mgmtd", Duration::from_secs(10), || {
                mgmtd("show mgmt backend-adapter all")
                    .lines()
                    .any(|l| l.trim().strip_prefix("Client:").map(str::trim) == Some("zebra"))
                    .then_some(())
            });
            // The daemons start empty: load the integrated configuration as frrinit.sh does.
            let out = cmd::output(&[vtysh(), "-N", &self.gw, "-b"]);
            assert!(
                out.status.success(),
                "vtysh -b failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            wait_for(
                "mgmtd's transactions to end",
                Duration::from_secs(10),
                || {
                    let text = mgmtd("show mgmt transaction all");
                    (bgplb_frr::show::open_mgmt_transactions(&text) == Some(0)).then_some(())
                },
            );
        }
        wait_for("bgpd to answer vtysh", Duration::from_secs(15), || {
            let out = cmd::output(&[vtysh(), "-N", &self.gw, "-c", "show bgp summary json"]);
            out.status.success().then_some(())
        });
        // Until bgpd is zebra's client it refuses `bgp graceful-restart` ("% Invalid value"):
        // tests that configure FRR directly would race it (the agent waits for it itself).
        wait_for("bgpd to connect to zebra", Duration::from_secs(15), || {
            let out = cmd::output(&[vtysh(), "-N", &self.gw, "-c", "show zebra client summary"]);
            let text = String::from_utf8_lossy(&out.stdout);
            (bgplb_frr::show::bgpd_is_zebra_client(&text) == Some(true)).then_some(())
        });
    }

    /// Stops FRR (both daemons) as a crash would.
    pub fn stop_frr(&mut self) {
        for mut child in self.frr.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let var = frr_run(&self.gw);
        for f in [
            "zebra.vty",
            "bgpd.vty",
            "zserv.api",
            "mgmtd.vty",
            "mgmtd_fe.sock",
            "mgmtd_be.sock",
        ] {
            let _ = fs::remove_file(var.join(f));
        }
    }

    /// vtysh against the lab's FRR.
    pub fn vtysh(&self, command: &str) -> String {
        run(&[vtysh(), "-N", &self.gw, "-c", command])
    }

    /// Configuration lines through vtysh (`configure terminal` first).
    pub fn vtysh_config(&self, lines: &[&str]) -> String {
        let mut argv = vec![vtysh(), "-N", &self.gw, "-c", "configure terminal"];
        for l in lines {
            argv.push("-c");
            argv.push(l);
        }
        run(&argv)
    }

    pub fn vtysh_json(&self, command: &str) -> serde_json::Value {
        let out = self.vtysh(command);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("`{command}` is not JSON ({e}): {out}"))
    }

    /// The site file for this lab: the reference site with the lab's nodes, FRR instance, data dir.
    pub fn site(&self) -> Site {
        let mut site = bgplb_site::parse(REFERENCE_SITE).expect("reference site parses");
        site.agent.data_dir = self.dir.path().join("data");
        site.agent.frr.instance = Some(self.gw.clone());
        site.agent.frr.vtysh = crate::frr::build().vtysh().to_path_buf();
        site.clusters[0].nodes = self
            .nodes
            .iter()
            .map(|n| bgplb_site::StaticNode {
                name: n.name.clone(),
                ipv4: Some(n.ipv4.parse().expect("ipv4")),
                ipv6: n.ipv6.as_ref().map(|a| a.parse().expect("ipv6")),
            })
            .collect();
        if let Some(password) = &self.spec.password {
            let file = self.dir.path().join("bgp-password");
            fs::write(&file, password).expect("password file");
            site.bgp.password_file = Some(file);
        }
        site
    }

    /// The lab's site for the daemon: the mTLS API on the gateway's node-network address, health
    /// and metrics on 127.0.0.1:9478 (both inside the gateway namespace), and TLS files copied
    /// from the test PKI into the lab directory (so a test can rotate them).
    pub fn daemon_site(&self) -> Site {
        let mut site = self.site();
        site.agent.listen = "172.29.51.1:7443".parse().expect("addr");
        site.agent.metrics_listen = Some("127.0.0.1:9478".parse().expect("addr"));
        site.agent.drift_check_interval = 5;
        // Tests send reports in quick bursts; tests/tests/clusters.rs checks the real limits.
        site.agent.reports_per_minute = 60_000;
        site.agent.report_burst = 1000;
        let tls = self.dir.path().join("tls");
        fs::create_dir_all(&tls).expect("tls dir");
        for f in ["agent.crt", "agent.key", "ca.crt"] {
            fs::copy(crate::client::pki_dir().join(f), tls.join(f)).expect("copy pki");
        }
        site.agent.tls.cert = tls.join("agent.crt");
        site.agent.tls.key = tls.join("agent.key");
        site.agent.tls.client_ca = tls.join("ca.crt");
        site
    }

    /// A lab whose gateway runs the agent daemon with [`Lab::daemon_site`], changed by `edit`
    /// first; returns the site as written.
    pub fn start_with_daemon(spec: LabSpec, edit: impl FnOnce(&mut Site)) -> (Lab, Site) {
        let mut lab = Lab::start(spec);
        let mut site = lab.daemon_site();
        edit(&mut site);
        lab.write_site(&site);
        lab.start_daemon();
        (lab, site)
    }

    /// Starts `bgplb-agent run` in the gateway namespace with the lab's site file and waits until
    /// its health endpoint answers.
    pub fn start_daemon(&mut self) {
        let agent = crate::bins::path("bgplb-agent");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .expect("agent log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.gw])
            .arg(agent)
            .arg("--config")
            .arg(self.dir.path().join("site.toml"))
            .args(["-v", "run"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start bgplb-agent run");
        self.daemon = Some(child);
        let gw = self.gw.clone();
        wait_for(
            "bgplb-agent run to answer /healthz",
            Duration::from_secs(20),
            || {
                if let Some(c) = self.daemon.as_mut() {
                    if let Ok(Some(status)) = c.try_wait() {
                        panic!("bgplb-agent run exited ({status}):\n{}", self.daemon_log());
                    }
                }
                let gw = gw.clone();
                crate::netns::run_in(&gw, || {
                    std::net::TcpStream::connect_timeout(
                        &"127.0.0.1:9478".parse().expect("addr"),
                        Duration::from_millis(200),
                    )
                    .is_ok()
                })
                .then_some(())
            },
        );
    }

    /// Whether FRR runs `address` as a neighbour in one of bgplb's peer-groups (or any).
    pub fn has_neighbor(&self, address: &str) -> bool {
        runs_neighbor(&self.running_config(), address)
    }

    /// The daemon's pid (`ip netns exec` execs the agent in place).
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    /// Stops the daemon with SIGTERM (as systemd would) and waits for it.
    pub fn stop_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            quiet(&["kill", "-TERM", &child.id().to_string()]);
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The daemon's `/v1/status`, asked over mutual TLS from node `from`'s namespace.
    pub fn agent_status(&self, from: usize) -> serde_json::Value {
        crate::client::request(
            &self.nodes[from].ns,
            Some("companion-home"),
            "GET",
            "https://172.29.51.1:7443/v1/status",
            None,
        )
        .json()
    }

    /// A plain GET to the daemon's health and metrics listener (127.0.0.1:9478 in the gateway
    /// namespace): status code and body, or `None` when it does not answer.
    fn agent_plain(&self, path: &str) -> Option<(u16, String)> {
        let url = format!("http://127.0.0.1:9478{path}");
        let _ = rustls::crypto::ring::default_provider().install_default();
        crate::netns::block_on_in(&self.gw, move || async move {
            let resp = reqwest::Client::new()
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            let status = resp.status().as_u16();
            Some((status, resp.text().await.unwrap_or_default()))
        })
    }

    /// Whether the daemon's `/readyz` answers 200 (FRR answers and the last reconcile worked).
    pub fn agent_readyz(&self) -> bool {
        self.agent_plain("/readyz")
            .is_some_and(|(code, _)| code == 200)
    }

    /// The daemon's whole `/metrics` text.
    pub fn agent_metric_text(&self) -> String {
        self.agent_plain("/metrics")
            .expect("the daemon serves /metrics")
            .1
    }

    /// The value of one metric sample (name with labels, as exposed); panics when absent.
    pub fn agent_metric(&self, sample: &str) -> f64 {
        let (_, body) = self
            .agent_plain("/metrics")
            .expect("the daemon serves /metrics");
        body.lines()
            .find_map(|l| {
                l.strip_prefix(sample)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no sample `{sample}` in:\n{body}"))
    }

    pub fn daemon_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Writes `site` as the lab's site file and returns its path.
    pub fn write_site(&self, site: &Site) -> PathBuf {
        let path = self.dir.path().join("site.toml");
        fs::write(&path, toml::to_string(site).expect("site serializes")).expect("write site");
        path
    }

    /// Runs `bgplb-agent --config <lab site> ARGS` inside the gateway namespace.
    pub fn agent(&self, args: &[&str]) -> Output {
        let agent = crate::bins::path("bgplb-agent");
        let site = self.dir.path().join("site.toml");
        Command::new("ip")
            .args(["netns", "exec", &self.gw])
            .arg(agent)
            .arg("--config")
            .arg(site)
            .args(args)
            .output()
            .expect("run bgplb-agent")
    }

    /// Like [`Lab::agent`], panicking with the output unless it succeeds; returns stdout.
    pub fn agent_ok(&self, args: &[&str]) -> String {
        let out = self.agent(args);
        assert!(
            out.status.success(),
            "bgplb-agent {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// BGP state per neighbour address, from FRR.
    pub fn peer_states(&self) -> BTreeMap<String, String> {
        let v = self.vtysh_json("show bgp neighbors json");
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, d)| (k.clone(), d["bgpState"].as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// (connectionsEstablished, connectionsDropped) per neighbour: a session reset changes them.
    /// Panics when FRR's JSON lacks the keys, or an Established session counts no establishment:
    /// a comparison of zeros would prove nothing.
    pub fn session_counters(&self) -> BTreeMap<String, (u64, u64)> {
        let v = self.vtysh_json("show bgp neighbors json");
        let m = v
            .as_object()
            .unwrap_or_else(|| panic!("show bgp neighbors json is not an object: {v}"));
        m.iter()
            .map(|(k, d)| {
                let counter = |key: &str| {
                    d[key].as_u64().unwrap_or_else(|| {
                        panic!("neighbour {k}: no `{key}` in FRR's JSON (did FRR rename it?): {d}")
                    })
                };
                let counters = (
                    counter("connectionsEstablished"),
                    counter("connectionsDropped"),
                );
                if d["bgpState"] == "Established" {
                    assert!(
                        counters.0 > 0,
                        "neighbour {k} is Established but counts no establishment: {d}"
                    );
                }
                (k.clone(), counters)
            })
            .collect()
    }

    /// Waits until every listed neighbour is Established (at most 60 s).
    pub fn wait_established(&self, addresses: &[&str]) {
        wait_for(
            &format!("sessions {addresses:?} to be Established"),
            Duration::from_secs(60),
            || {
                let states = self.peer_states();
                addresses
                    .iter()
                    .all(|a| states.get(*a).map(String::as_str) == Some("Established"))
                    .then_some(())
            },
        );
    }

    /// Name of the client namespace (with `LabSpec::client`).
    pub fn client_ns(&self) -> String {
        format!("{}c", self.id)
    }

    /// Gives node `index` the VIP (on its loopback, as Cilium's datapath would answer for it) and
    /// runs a TCP service there that answers with the node's name.
    pub fn serve_vip(&self, index: usize, vip: &str, port: u16) {
        let node = &self.nodes[index];
        serve_vip_in(&node.ns, &node.name, vip, port, self.stop.clone());
    }

    /// Each node's name and namespace (for helpers running on their own threads).
    pub fn node_refs(&self) -> Vec<(String, String)> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.ns.clone()))
            .collect()
    }

    /// Set when the lab is dropped: threads serving for it stop.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// A TCP request from the client namespace to `vip:port`: the answering node's name.
    pub fn tcp_from_client(&self, vip: &str, port: u16) -> Result<String, String> {
        let addr: std::net::SocketAddr = if vip.contains(':') {
            format!("[{vip}]:{port}").parse().expect("addr")
        } else {
            format!("{vip}:{port}").parse().expect("addr")
        };
        crate::netns::run_in(&self.client_ns(), move || {
            use std::io::Read;
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
                .map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .map_err(|e| e.to_string())?;
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            Ok(out.trim().to_string())
        })
    }

    /// Starts `bgplb-companion run` in node `index`'s namespace, reporting to the daemon, with a
    /// Kubernetes API stand-in expected at 127.0.0.1:6443 in that namespace.
    pub fn start_companion(&mut self, index: usize, heartbeat: u64) {
        let pki = crate::client::pki_dir();
        self.start_companion_with_tls(
            index,
            heartbeat,
            [
                pki.join("ca.crt"),
                pki.join("companion-home.crt"),
                pki.join("companion-home.key"),
            ],
        );
    }

    /// [`Lab::start_companion`] with the CA, certificate and key at these paths.
    pub fn start_companion_with_tls(&mut self, index: usize, heartbeat: u64, tls: [PathBuf; 3]) {
        let dir = self.dir.path();
        fs::write(
            dir.join("kubeconfig"),
            crate::kubesim::kubeconfig("http://127.0.0.1:6443"),
        )
        .expect("kubeconfig");
        fs::write(
            dir.join("companion.toml"),
            format!(
                "cluster = \"home\"\nagents = [\"https://172.29.51.1:7443\"]\nheartbeat = {heartbeat}\ndebounce_ms = 200\n\n[tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\n[leader_election]\nlease_seconds = 6\n",
                ca = tls[0].display(),
                cert = tls[1].display(),
                key = tls[2].display(),
            ),
        )
        .expect("companion.toml");
        let log = fs::File::create(dir.join("companion.log")).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.nodes[index].ns])
            .arg(crate::bins::path("bgplb-companion"))
            .args(["-v", "run", "--config"])
            .arg(dir.join("companion.toml"))
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .args(["--identity", "companion-0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start bgplb-companion");
        self.extra.push(child);
    }

    pub fn companion_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("companion.log")).unwrap_or_default()
    }

    /// Writes `site`, applies it with the agent and waits until every node's sessions are up.
    pub fn apply_and_wait(&self, site: &Site) -> String {
        self.write_site(site);
        let out = self.agent_ok(&["apply"]);
        let addresses = self.all_node_addresses();
        self.wait_established(&addresses.iter().map(String::as_str).collect::<Vec<_>>());
        out
    }

    /// A vtysh stand-in: a shell script run instead of vtysh by the agent (set it as
    /// `agent.frr.vtysh`). `$VTYSH` in the body is the real vtysh, `$script` the file given
    /// with `-f` (empty for other calls).
    pub fn vtysh_wrapper(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        let script = r#"script=""; prev=""
for a in "$@"; do [ "$prev" = "-f" ] && script="$a"; prev="$a"; done"#;
        fs::write(
            &path,
            format!("#!/bin/sh\nVTYSH={}\n{script}\n{body}\n", vtysh()),
        )
        .expect("write wrapper");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod wrapper");
        path
    }

    /// A vtysh stand-in that appends `lines` (configuration text) to every apply script before
    /// running it (rollbacks are left alone), while the file `only_while` exists, or always.
    pub fn vtysh_appending_to_applies(
        &self,
        name: &str,
        lines: &str,
        only_while: Option<&Path>,
    ) -> PathBuf {
        let condition = only_while
            .map(|f| format!("[ -e {} ] && ", f.display()))
            .unwrap_or_default();
        let printf = lines.replace('\n', "\\n");
        self.vtysh_wrapper(
            name,
            &format!(
                r#"case "$script" in
  */apply.vtysh) {condition}printf '{printf}' >> "$script" ;;
esac
exec $VTYSH "$@""#
            ),
        )
    }

    /// The gateway's bgpd pid (for wrappers that simulate a crash).
    pub fn bgpd_pid_file(&self) -> PathBuf {
        frr_run(&self.gw).join("bgpd.pid")
    }

    /// Every address of every node (IPv4 and, when present, IPv6).
    pub fn all_node_addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .flat_map(|n| std::iter::once(n.ipv4.clone()).chain(n.ipv6.clone()))
            .collect()
    }

    /// Routes in the gateway's kernel table for one family (`-4` or `-6`).
    pub fn kernel_routes(&self, family: &str) -> Vec<KernelRoute> {
        let out = run(&["ip", "-n", &self.gw, family, "-j", "route", "show"]);
        let routes: Vec<serde_json::Value> = serde_json::from_str(&out).expect("ip -j route");
        routes
            .iter()
            .map(|r| {
                let mut nexthops = BTreeSet::new();
                if let Some(g) = r["gateway"].as_str() {
                    nexthops.insert(g.to_string());
                }
                for nh in r["nexthops"].as_array().into_iter().flatten() {
                    if let Some(g) = nh["gateway"].as_str() {
                        nexthops.insert(g.to_string());
                    }
                }
                KernelRoute {
                    dst: r["dst"].as_str().unwrap_or("").to_string(),
                    protocol: r["protocol"].as_str().unwrap_or("").to_string(),
                    nexthops,
                }
            })
            .collect()
    }

    /// The kernel route for `dst` if it is a BGP route.
    pub fn bgp_route(&self, dst: &str) -> Option<KernelRoute> {
        let family = if dst.contains(':') { "-6" } else { "-4" };
        let host = dst.split('/').next().unwrap_or(dst);
        self.kernel_routes(family)
            .into_iter()
            .find(|r| (r.dst == dst || r.dst == host) && r.protocol == "bgp")
    }

    /// Waits until the kernel has a BGP route for `dst` with exactly `nexthops`.
    pub fn wait_route(&self, dst: &str, nexthops: &[&str]) {
        let want: BTreeSet<String> = nexthops.iter().map(|s| s.to_string()).collect();
        wait_for(
            &format!("kernel route {dst} via {nexthops:?}"),
            Duration::from_secs(30),
            || {
                self.bgp_route(dst)
                    .filter(|r| r.nexthops == want)
                    .map(|_| ())
            },
        );
    }

    /// The prefixes FRR accepted from `neighbor` (in its BGP table).
    pub fn accepted_from(&self, neighbor: &str) -> BTreeSet<String> {
        self.neighbor_prefixes(neighbor, "routes", "routes")
    }

    /// The prefixes `neighbor` sent, before policy (soft-reconfiguration inbound).
    /// Read with the agent's own type, which knows each release's key for them.
    pub fn received_from(&self, neighbor: &str) -> BTreeSet<String> {
        let afi = if neighbor.contains(':') {
            "ipv6"
        } else {
            "ipv4"
        };
        let command = format!("show bgp {afi} unicast neighbors {neighbor} received-routes json");
        let routes: bgplb_frr::show::ReceivedRoutes =
            bgplb_frr::show::parse(&command, &self.vtysh(&command))
                .unwrap_or_else(|e| panic!("{e}"));
        routes.received_routes.into_keys().collect()
    }

    fn neighbor_prefixes(&self, neighbor: &str, which: &str, key: &str) -> BTreeSet<String> {
        let afi = if neighbor.contains(':') {
            "ipv6"
        } else {
            "ipv4"
        };
        let v = self.vtysh_json(&format!(
            "show bgp {afi} unicast neighbors {neighbor} {which} json"
        ));
        v[key]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Feeds a configuration file to this lab's FRR the way the agent would, and checks FRR's own
    /// verdict: vtysh's dry-run parser accepts every line, applying it prints no error, and the
    /// running config reads back identical in everything bgplb owns.
    pub fn check_config(&self, conf: &Path) -> Result<(), String> {
        let file = conf.display().to_string();
        let dry = cmd::output(&[vtysh(), "-N", &self.gw, "--dryrun", "-f", &file]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&dry.stdout),
            String::from_utf8_lossy(&dry.stderr)
        );
        if !dry.status.success() || text.contains("% ") {
            return Err(format!("vtysh --dryrun refused {file}: {}", text.trim()));
        }
        let out = cmd::output(&[vtysh(), "-N", &self.gw, "-f", &file]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || text.contains("% ") {
            return Err(format!("FRR refused {file}: {}", text.trim()));
        }
        let wanted = std::fs::read_to_string(conf).map_err(|e| e.to_string())?;
        let rest = bgplb_frr::plan::plan(
            &bgplb_frr::Owned::from_text(&wanted),
            &bgplb_frr::Owned::from_text(&self.running_config()),
        )
        .map_err(|e| e.to_string())?;
        if rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{file} does not read back identical:\n{rest}"))
        }
    }

    /// Asserts that zebra and bgpd both still run, bgpd as zebra's client, once FRR's route-map
    /// delay timer has run (FRR before 8.3 crashes there on route-map churn:
    /// [`bgplb_frr::churn`]).
    pub fn assert_frr_survived_its_delayed_processing(&self) {
        std::thread::sleep(bgplb_frr::churn::SETTLE);
        let out = cmd::output(&[vtysh(), "-N", &self.gw, "-c", "show zebra client summary"]);
        let clients = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            bgplb_frr::show::bgpd_is_zebra_client(&clients),
            Some(true),
            "zebra or bgpd did not survive:\n{clients}"
        );
    }

    /// The running configuration.
    pub fn running_config(&self) -> String {
        self.vtysh("show running-config")
    }
}

/// Puts `vip` on the loopback of namespace `ns` as a host address; already there is fine. An
/// IPv6 address is added without duplicate address detection: the kernel marks a new address
/// tentative until its DAD work runs, even on `lo`, and a loaded machine can delay that long
/// enough for a bind to fail with "Cannot assign requested address" (seen on CI).
pub fn put_on_loopback(ns: &str, vip: &str) {
    let v6 = vip.contains(':');
    let host = format!("{vip}/{}", if v6 { 128 } else { 32 });
    let mut argv = vec!["ip", "-n", ns, "addr", "add", &host, "dev", "lo"];
    if v6 {
        argv.push("nodad");
    }
    let _ = cmd::output(&argv);
}

/// Binds a listener to an address just added, retrying for a bounded time while the kernel
/// does not yet offer it.
pub fn bind_fresh(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let mut tries = 0;
    loop {
        match std::net::TcpListener::bind(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Gives the node in namespace `ns` the VIP on its loopback and runs a TCP service there that
/// answers with `name`, until `stop` is set.
pub fn serve_vip_in(ns: &str, name: &str, vip: &str, port: u16, stop: Arc<AtomicBool>) {
    put_on_loopback(ns, vip);
    let addr: std::net::SocketAddr = if vip.contains(':') {
        format!("[{vip}]:{port}").parse().expect("addr")
    } else {
        format!("{vip}:{port}").parse().expect("addr")
    };
    let name = name.to_string();
    let ns = ns.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        crate::netns::run_in(&ns, move || {
            let listener =
                bind_fresh(addr).unwrap_or_else(|e| panic!("bind the VIP service on {addr}: {e}"));
            listener.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        use std::io::Write;
                        let _ = conn.write_all(format!("{name}\n").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("VIP service started");
}

/// `gobgp ARGS` against the GoBGP of the node in namespace `ns`, whatever its exit status.
/// Whether the running configuration `running` has `address` as a member of a peer-group.
pub fn runs_neighbor(running: &str, address: &str) -> bool {
    running.contains(&format!("neighbor {address} peer-group"))
}

pub fn gobgp_in(ns: &str, args: &[&str]) -> Output {
    let mut argv = vec![
        "ip",
        "netns",
        "exec",
        ns,
        "gobgp",
        "-u",
        "127.0.0.1",
        "-p",
        "50051",
    ];
    argv.extend_from_slice(args);
    cmd::output(&argv)
}

/// The vtysh of the FRR the lab runs (see [`crate::frr`]).
pub fn vtysh() -> &'static str {
    crate::frr::build().vtysh().to_str().expect("a UTF-8 path")
}

/// The node's default routes through the gateway (gone whenever its link goes down).
fn add_default_routes(ns: &str, ipv6: bool) {
    run(&[
        "ip",
        "-n",
        ns,
        "route",
        "replace",
        "default",
        "via",
        "172.29.51.1",
    ]);
    if ipv6 {
        run(&[
            "ip",
            "-n",
            ns,
            "-6",
            "route",
            "replace",
            "default",
            "via",
            "fd47:25e1:2f96:51::1",
        ]);
    }
}

impl Lab {
    /// Node `index` loses power: its link goes down on its own side. The gateway sees no link
    /// change, no TCP reset and no BGP notification, exactly as behind a switch.
    pub fn cut_link(&self, index: usize) {
        run(&[
            "ip",
            "-n",
            &self.nodes[index].ns,
            "link",
            "set",
            "eth0",
            "down",
        ]);
    }

    /// Node `index` comes back: link up, default routes again.
    pub fn restore_link(&self, index: usize) {
        let node = &self.nodes[index];
        run(&["ip", "-n", &node.ns, "link", "set", "eth0", "up"]);
        add_default_routes(&node.ns, node.ipv6.is_some());
    }

    /// Restarts node `index`'s GoBGP (a cilium-agent restart: the node itself stays up). The
    /// caller announces its routes again.
    pub fn restart_bgp(&mut self, index: usize) {
        let spec = self.spec.clone();
        let node = &mut self.nodes[index];
        node.stop_bgp();
        node.start(&spec);
    }

    /// Drops `percent` % of the ICMP echo requests reaching node `index` (nftables in the node's
    /// namespace, `numgen random`: this kernel has no netem).
    pub fn drop_probes(&self, index: usize, percent: u32) {
        cmd::require("nft", "nftables");
        let ns = &self.nodes[index].ns;
        let rules = format!(
            "table inet bgplb_loss {{\n chain input {{\n  type filter hook input priority 0;\n  icmp type echo-request numgen random mod 100 < {percent} drop\n  icmpv6 type echo-request numgen random mod 100 < {percent} drop\n }}\n}}\n"
        );
        let file = self.dir.path().join(format!("loss-{index}.nft"));
        fs::write(&file, rules).expect("write nft rules");
        run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "nft",
            "-f",
            &file.display().to_string(),
        ]);
    }
}

impl Node {
    fn start(&mut self, spec: &LabSpec) {
        let mut conf = format!(
            "[global.config]\n  as = 64513\n  router-id = \"{}\"\n  port = -1\n",
            self.ipv4
        );
        let mut neighbor = |addr: &str, afi: &str| {
            conf.push_str(&format!(
                "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    peer-as = 64512\n"
            ));
            if let Some(p) = &spec.password {
                conf.push_str(&format!("    auth-password = \"{p}\"\n"));
            }
            conf.push_str(
                "  [neighbors.timers.config]\n    connect-retry = 1\n    hold-time = 9\n    keepalive-interval = 3\n    idle-hold-time-after-reset = 1\n",
            );
            if spec.graceful_restart {
                conf.push_str(
                    "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 120\n    notification-enabled = true\n",
                );
            }
            conf.push_str(&format!(
                "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{afi}\"\n"
            ));
            if spec.graceful_restart {
                conf.push_str(
                    "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n",
                );
            }
        };
        neighbor("172.29.51.1", "ipv4-unicast");
        if self.ipv6.is_some() {
            neighbor("fd47:25e1:2f96:51::1", "ipv6-unicast");
        }
        fs::write(&self.config, conf).expect("write gobgpd config");
        let log = fs::File::create(&self.log).expect("gobgpd log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "gobgpd", "-f"])
            .arg(&self.config)
            .args(["--api-hosts", "127.0.0.1:50051", "--log-plain"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start gobgpd");
        self.gobgpd = Some(child);
        wait_for(
            &format!("gobgpd API on {}", self.name),
            Duration::from_secs(15),
            || {
                self.gobgp_output(&["global"])
                    .status
                    .success()
                    .then_some(())
            },
        );
    }

    /// `gobgp ARGS` against this node's gobgpd, whatever its exit status.
    fn gobgp_output(&self, args: &[&str]) -> Output {
        gobgp_in(&self.ns, args)
    }

    fn gobgp(&self, args: &[&str]) -> String {
        let out = self.gobgp_output(args);
        assert!(
            out.status.success(),
            "gobgp {} on {} failed: {}",
            args.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Announces `prefix` (a /32 or /128, or anything else to test refusals) with `communities`.
    pub fn announce(&self, prefix: &str, communities: &[&str]) {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let mut args = vec!["global", "rib", "add", "-a", afi, prefix];
        if !communities.is_empty() {
            args.push("community");
            args.extend_from_slice(communities);
        }
        self.gobgp(&args);
    }

    pub fn withdraw(&self, prefix: &str) {
        let afi = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.gobgp(&["global", "rib", "del", "-a", afi, prefix]);
    }

    /// Stops this node's GoBGP (the process only: the namespace stays).
    pub fn stop_bgp(&mut self) {
        if let Some(mut c) = self.gobgpd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_bgp();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let misfired =
            !self.frr_changes_expected && self.daemon_log().contains("FRR changed by someone else");
        self.stop.store(true, Ordering::SeqCst);
        for mut c in self.extra.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stop_daemon();
        for node in &mut self.nodes {
            node.stop_bgp();
        }
        self.stop_frr();
        for ns in self.namespaces.iter().rev() {
            quiet(&["ip", "netns", "delete", ns]);
        }
        let _ = fs::remove_dir_all(frr_etc(&self.gw));
        let _ = fs::remove_dir_all(frr_run(&self.gw));
        let _ = fs::remove_dir_all(Path::new("/var/lib/frr").join(&self.gw));
        let fail = misfired && !std::thread::panicking();
        if std::thread::panicking() || fail {
            // Keep the logs of a failed test: print where they are.
            let keep = self.dir.path().to_path_buf();
            eprintln!("lab {}: logs in {}", self.id, keep.display());
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            let _ = dir.keep();
        }
        if fail {
            panic!(
                "lab {}: the daemon's FRR watch saw its own configuration changed by someone else \
                 (\"FRR changed by someone else\" in agent.log), yet nothing else touched FRR",
                self.id
            );
        }
    }
}

/// Removes labs whose creating test process is gone (a run killed before its drops ran): their
/// processes (found inside their namespaces only), namespaces and FRR directories.
fn remove_stale_labs() {
    let out = cmd::output(&["ip", "netns", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('x').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let pids = cmd::output(&["ip", "netns", "pids", name]);
        for p in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            quiet(&["kill", "-9", p]);
        }
        quiet(&["ip", "netns", "delete", name]);
        let _ = fs::remove_dir_all(frr_etc(name));
        let _ = fs::remove_dir_all(frr_run(name));
        let _ = fs::remove_dir_all(Path::new("/var/lib/frr").join(name));
    }
}
