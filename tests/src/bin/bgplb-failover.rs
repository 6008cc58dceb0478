//! `bgplb-failover`: what a node dying silently costs, measured in the lab (root, real FRR and
//! GoBGP). Three nodes announce one VIP with graceful restart and the N-bit, as Cilium does
//! (restart time 120 s); routes are installed as on the UDM's 4.19 kernel (`no zebra nexthop
//! kernel enable`); a client opens a new TCP connection every 50 ms; node 1 loses power (its link
//! goes down on its own side: no TCP reset, no BGP notification).
//!
//! Setups:
//! * `a`  the reference render as it was (graceful-restart N-bit negotiated), no probing;
//! * `a'` the reference render now (`no bgp graceful-restart notification`), no probing;
//! * `b`  hold 9 s without graceful restart anywhere, no probing;
//! * `c`  bgplb: the agent daemon probing node liveness (defaults).
//!
//! Plus, with the daemon: a speaker restart on a live node (must cost nothing), the time from the
//! agent's decision to the kernel route changing, and minutes of 30% probe loss.
//!
//! `bgplb-failover [--runs N] [--only a,a',b,c] [--loss-minutes M]`; medians over the runs.
//! Wall-clock figures from a shared machine.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bgplb_tests::cmd::wait_for;
use bgplb_tests::traffic::{Outcome, Traffic};
use bgplb_tests::{Lab, LabSpec};

const VIP: &str = "172.29.52.100";
const PORT: u16 = 8080;
const ALL: [&str; 3] = ["172.29.51.11", "172.29.51.12", "172.29.51.13"];

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    NBit,
    Floor,
    NoGr,
    Probing,
}

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::NBit => "a",
            Setup::Floor => "a'",
            Setup::NoGr => "b",
            Setup::Probing => "c",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Setup::NBit => "reference render with the N-bit negotiated, no probing",
            Setup::Floor => "reference render (no graceful-restart notification), no probing",
            Setup::NoGr => "hold 9 s, no graceful restart anywhere, no probing",
            Setup::Probing => "bgplb: the agent probes node liveness (defaults)",
        }
    }
}

struct Run {
    window: Duration,
    failed: usize,
    total: usize,
    decision_to_fib: Option<Duration>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = value("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    let only = value("--only");
    let loss_minutes: u64 = value("--loss-minutes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let wanted = |s: Setup| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|n| n == s.name()))
    };

    println!("silent node death, {runs} run(s) per setup; loss window = node cut to the start of the last failed request");
    println!(
        "{:<4} {:<66} {:>10} {:>14} {:>16}",
        "", "setup", "window", "failed", "decision→FIB"
    );
    for setup in [Setup::NBit, Setup::Floor, Setup::NoGr, Setup::Probing] {
        if !wanted(setup) {
            continue;
        }
        let mut results: Vec<Run> = (0..runs).map(|_| silent_death(setup)).collect();
        results.sort_by_key(|r| r.window);
        let median = &results[results.len() / 2];
        let windows: Vec<String> = results
            .iter()
            .map(|r| format!("{:.2}", r.window.as_secs_f64()))
            .collect();
        let decisions: Vec<Duration> = results.iter().filter_map(|r| r.decision_to_fib).collect();
        println!(
            "{:<4} {:<66} {:>9.2}s {:>6} of {:<5} {:>16}   (windows: {})",
            setup.name(),
            setup.describe(),
            median.window.as_secs_f64(),
            median.failed,
            median.total,
            median_ms(&decisions),
            windows.join(", ")
        );
    }
    if wanted(Setup::Probing) {
        speaker_restart(runs);
        probe_loss(loss_minutes);
    }
}

fn median_ms(d: &[Duration]) -> String {
    if d.is_empty() {
        return "-".into();
    }
    let mut d = d.to_vec();
    d.sort();
    format!("{:.1} ms", d[d.len() / 2].as_secs_f64() * 1000.0)
}

fn lab_for(setup: Setup) -> Lab {
    let mut lab = Lab::start(LabSpec {
        nodes: 3,
        ipv6: false,
        client: true,
        graceful_restart: setup != Setup::NoGr,
        ..LabSpec::default()
    });
    let mut site = lab.daemon_site();
    site.liveness.enabled = setup == Setup::Probing;
    site.bgp.graceful_restart = setup != Setup::NoGr;
    lab.write_site(&site);
    if setup == Setup::Probing {
        lab.start_daemon();
    } else {
        lab.agent_ok(&["apply"]);
    }
    if setup == Setup::NBit {
        lab.vtysh_config(&["router bgp 64512", "bgp graceful-restart notification"]);
        lab.vtysh("clear bgp *");
    }
    lab.wait_established(&ALL);
    for i in 0..3 {
        lab.serve_vip(i, VIP, PORT);
        lab.nodes[i].announce(&format!("{VIP}/32"), &["64512:100"]);
    }
    lab.wait_route(VIP, &ALL);
    if setup == Setup::Probing {
        wait_for(
            "every node to answer a probe",
            Duration::from_secs(20),
            || {
                let s = lab.agent_status(1);
                let n = s["nodes"].as_array()?.clone();
                (n.len() == 3 && n.iter().all(|n| n["answered"] == true)).then_some(())
            },
        );
    }
    lab
}

fn traffic(lab: &Lab) -> Traffic {
    let addr: SocketAddr = format!("{VIP}:{PORT}").parse().expect("addr");
    Traffic::start(
        &lab.client_ns(),
        addr,
        Duration::from_millis(50),
        Duration::from_secs(1),
    )
}

fn silent_death(setup: Setup) -> Run {
    let lab = lab_for(setup);
    let monitor = RouteMonitor::start(&lab);
    let t = traffic(&lab);
    std::thread::sleep(Duration::from_secs(2));
    let cut = Instant::now();
    lab.cut_link(0);
    wait_for(
        "the dead node's route to leave the FIB",
        Duration::from_secs(300),
        || {
            let r = lab.bgp_route(VIP)?;
            (!r.nexthops.contains("172.29.51.11")).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let outcome: Outcome = t.stop();
    let after = outcome.after(cut);
    let decision_to_fib = (setup == Setup::Probing)
        .then(|| monitor.decision_to_fib(&lab.daemon_log()))
        .flatten();
    Run {
        window: outcome.loss_window(cut),
        failed: after.failed().len(),
        total: after.samples.len(),
        decision_to_fib,
    }
}

/// `ip -ts monitor route` in the gateway namespace: when the VIP's route changed.
struct RouteMonitor {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RouteMonitor {
    fn start(lab: &Lab) -> RouteMonitor {
        let mut child = Command::new("ip")
            .args(["-n", &lab.gw, "-ts", "monitor", "route"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ip monitor");
        let stdout = child.stdout.take().expect("stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                l.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        RouteMonitor { child, lines }
    }

    /// From the agent's "node liveness changed ... to=down" log line to the first change of the
    /// VIP's kernel route after it (both wall-clock, microseconds).
    fn decision_to_fib(&self, agent_log: &str) -> Option<Duration> {
        let decided = agent_log
            .lines()
            .find(|l| l.contains("node liveness changed") && l.contains("to=\"down\""))?;
        let decided = parse_rfc3339(decided.split_whitespace().next()?)?;
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone();
        // `ip -ts` prints "[2026-12-02T13:48:53.701423] ..." before each message.
        lines
            .iter()
            .filter(|l| l.contains(VIP))
            .filter_map(|l| {
                let ts = l.strip_prefix('[')?.split(']').next()?;
                parse_local(ts)
            })
            .find(|t| *t >= decided)
            .map(|t| t - decided)
    }
}

impl Drop for RouteMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Microseconds since the epoch of `2026-12-02T13:48:53.697930Z`.
fn parse_rfc3339(s: &str) -> Option<Duration> {
    parse_local(s.trim_end_matches('Z'))
}

/// `2026-12-02T13:48:53.697930` (UTC: the machines here run on UTC) as time since the epoch.
fn parse_local(s: &str) -> Option<Duration> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let micros: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + min * 60 + sec;
    Some(Duration::from_micros((secs * 1_000_000 + micros) as u64))
}

fn speaker_restart(runs: usize) {
    let mut failed = Vec::new();
    for _ in 0..runs {
        let mut lab = lab_for(Setup::Probing);
        let t = traffic(&lab);
        std::thread::sleep(Duration::from_secs(1));
        lab.restart_bgp(0);
        lab.nodes[0].announce(&format!("{VIP}/32"), &["64512:100"]);
        lab.wait_established(&ALL);
        lab.wait_route(VIP, &ALL);
        std::thread::sleep(Duration::from_secs(1));
        let o = t.stop();
        failed.push(format!("{} of {}", o.failed().len(), o.samples.len()));
    }
    println!(
        "speaker restart on a live node (graceful restart keeps its routes): failed requests per run: {}",
        failed.join(", ")
    );
}

fn probe_loss(minutes: u64) {
    let lab = lab_for(Setup::Probing);
    lab.drop_probes(0, 30);
    std::thread::sleep(Duration::from_secs(minutes * 60));
    let n = lab.agent_status(1)["nodes"][0].clone();
    println!(
        "30% probe loss on k8s-1 for {minutes} min: state {}, {} transition(s)",
        n["state"], n["transitions"]
    );
}
