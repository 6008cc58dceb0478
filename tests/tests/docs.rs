//! Docs that cannot rot: every fenced block of README.md and docs/guide.md.
//!
//! - Every block says what it is: `sh` (commands), `console` (`$ command` lines, each followed by
//!   its output), `toml`, `yaml`, `json` or `text` (not run).
//! - Every `sh` command line is one this test knows, and it says where it runs: here (pure
//!   commands), in the lab below, or in the test named beside it (the gateway's install in the
//!   aarch64 VM, the cluster install with kubectl and kustomize, the test command itself).
//! - Every `console` command runs in one lab (FRR and the agent daemon on the gateway, three
//!   GoBGP nodes announcing VIPs, the companion reporting from the Kubernetes stand-in), in the
//!   directory holding the lab's `site.toml`, `companion.toml` and `kubeconfig`, and its output
//!   must be the block's, after normalising what changes from run to run (times, ages, uptimes,
//!   generation and report numbers, hashes, column widths). A `...` line in a block stands for
//!   any lines. `BGPLB_UPDATE_DOCS=1` writes the real outputs into the files instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use bgplb_tests::kubesim::{kubeconfig, objects, KubeSim};
use bgplb_tests::{Lab, LabSpec};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const DOCS: [&str; 2] = ["README.md", "docs/guide.md"];
const KINDS: [&str; 6] = ["sh", "console", "toml", "yaml", "json", "text"];

#[derive(Debug, Clone)]
struct Block {
    file: &'static str,
    /// Line of the opening fence (1-based).
    line: usize,
    kind: String,
    /// The lines between the fences.
    body: Vec<String>,
}

fn blocks(file: &'static str) -> Vec<Block> {
    let path = repo().join(file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        if let Some(info) = fence.strip_prefix("```") {
            match open.take() {
                Some(b) => out.push(b),
                None => {
                    open = Some(Block {
                        file,
                        line: i + 1,
                        kind: info.trim().to_string(),
                        body: Vec::new(),
                    })
                }
            }
        } else if let Some(b) = open.as_mut() {
            b.body.push(line.to_string());
        }
    }
    assert!(open.is_none(), "{file}: a code block is never closed");
    out
}

fn all_blocks() -> Vec<Block> {
    DOCS.iter().flat_map(|f| blocks(f)).collect()
}

#[test]
fn every_block_says_what_it_is() {
    let bad: Vec<String> = all_blocks()
        .iter()
        .filter(|b| !KINDS.contains(&b.kind.as_str()))
        .map(|b| format!("{}:{}: ```{}", b.file, b.line, b.kind))
        .collect();
    assert!(
        bad.is_empty(),
        "blocks without a known kind ({KINDS:?}):\n{}",
        bad.join("\n")
    );
    assert!(
        repo().join("docs/guide.md").exists(),
        "docs/guide.md is missing"
    );
}

/// Where a shell command of the docs runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    /// Here, now: a pure command (the repository's reference site as `site.toml`).
    Here,
    /// In the lab below, which must take it (exit 0, or 1 for a check's verdict).
    Lab,
    /// Run by the named test, which fails when the command does.
    Test(&'static str),
    /// Needs the real gateway or a real cluster; only recognised, with why.
    Recognised(&'static str),
}

/// The gateway's installed agent, as the docs write it; in the lab, the lab's agent.
const INSTALLED: &str = "/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml";

/// The shell commands the docs may show, by prefix, most specific first. A command no entry
/// covers fails the test: add it here with where it runs.
const KNOWN: &[(&str, Where)] = &[
    ("scripts/test", Where::Test(".ci/run (the test command itself)")),
    ("scripts/demo", Where::Test("scripts/demo runs tests/src/bin/bgplb-lab.rs, the lab every test uses")),
    ("scripts/setup", Where::Test("scripts/test (sources it first)")),
    ("cross/setup", Where::Test("scripts/test (runs it before the VM tests)")),
    ("cross/build-agent", Where::Test("scripts/test, for tests/tests/gateway_qemu.rs")),
    ("cross/build-image", Where::Test("tests/tests/image.rs and readme_cluster.rs")),
    ("cross/qemu-test", Where::Test("tests/tests/gateway_qemu.rs")),
    ("skopeo copy", Where::Test("tests/tests/readme_cluster.rs (to a second OCI layout)")),
    ("kubectl create namespace bgplb", Where::Test("tests/tests/readme_cluster.rs (client-side)")),
    ("kubectl -n bgplb create secret tls bgplb-ca", Where::Test("tests/tests/readme_cluster.rs (client-side)")),
    ("kubectl apply -f companion-tls.yaml", Where::Test("tests/tests/readme_cluster.rs (the file checked)")),
    ("kubectl apply -k config/kubernetes/example", Where::Test("tests/tests/readme_cluster.rs (kustomize build, schema checks)")),
    ("kubectl -n bgplb rollout status", Where::Recognised("needs a real cluster")),
    ("kubectl -n bgplb get lease", Where::Recognised("needs a real cluster")),
    ("kubectl -n bgplb logs", Where::Recognised("needs a real cluster")),
    ("kubectl delete", Where::Recognised("needs a real cluster")),
    ("helm upgrade cilium", Where::Recognised("needs a real cluster with Cilium's Helm release; the values files are checked by companion_cli.rs and manifests.rs")),
    ("mkdir -p /data/bgplb", Where::Test("tests/tests/gateway_qemu.rs (cross/vm.d/gateway.sh runs the README's install block)")),
    ("cp bgplb-agent /data/bgplb", Where::Test("tests/tests/gateway_qemu.rs (the README's install block)")),
    ("cp site.toml /data/bgplb", Where::Test("tests/tests/gateway_qemu.rs (the README's install block)")),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml check-config", Where::Test("tests/tests/gateway_qemu.rs (the README's install block)")),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml pki init", Where::Test("tests/tests/gateway_qemu.rs (the README's install block)")),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml pki issue --cluster", Where::Test("tests/tests/gateway_qemu.rs (the README's install block)")),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml pki issue --operator", Where::Lab),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml install", Where::Test("tests/tests/gateway_qemu.rs (the README's install block)")),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml uninstall", Where::Test("tests/tests/install.rs (uninstall --root, with and without --purge)")),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml segment teardown", Where::Test("tests/tests/segment.rs")),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml store reset", Where::Test("tests/tests/store.rs")),
    ("/data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml", Where::Lab),
    ("bgplb-agent --config /data/bgplb/site.toml pki issue --cluster home --secret", Where::Test("tests/tests/readme_cluster.rs")),
    ("/tmp/bgplb-agent --config /data/bgplb/site.toml install", Where::Recognised("on the gateway: the upgrade, a new binary installed over the old (install.rs and gateway_qemu.rs run install)")),
    ("bgplb-agent --config site.toml render", Where::Here),
    ("bgplb-agent --config site.toml check-config", Where::Here),
    ("bgplb-agent --config site.toml configure-udm-pro", Where::Here),
    ("bgplb-companion render", Where::Here),
    ("bgplb-companion rollback", Where::Test("tests/tests/migrate.rs and migrate_lab.rs (a rollback after a real migration; the docs lab is not migrated), taskfile.rs (the command)")),
    ("bgplb-companion migrate --site site.toml --config companion.toml --dry-run", Where::Lab),
    ("bgplb-companion migrate", Where::Recognised("a live migration of a real cluster; migrate_lab.rs runs the same code end to end in the lab")),
    ("bgplb-companion", Where::Lab),
    ("task --list", Where::Here),
    ("task bgp-loadbalancer:", Where::Test("tests/tests/taskfile.rs (every task against the lab)")),
    ("promtool ", Where::Here),
    ("UPDATE_GOLDEN=1 cargo test", Where::Test("site/tests/golden.rs")),
    ("cargo ", Where::Test("scripts/test (builds and runs with cargo)")),
    ("vtysh ", Where::Recognised("on the gateway (FRR's own vtysh)")),
    ("grep '^bgpd=' /etc/frr/daemons", Where::Recognised("on the gateway")),
    ("systemctl ", Where::Recognised("on the gateway (systemd); gateway_qemu.rs runs the agent under systemd")),
    ("journalctl ", Where::Recognised("on the gateway")),
    ("ssh ", Where::Recognised("from the operator's machine to the gateway")),
    ("scp ", Where::Recognised("from the operator's machine to the gateway")),
];

fn known(cmd: &str) -> Option<Where> {
    KNOWN
        .iter()
        .find(|(prefix, _)| cmd.starts_with(prefix))
        .map(|(_, w)| *w)
}

/// The command lines of `sh` blocks (comments and blank lines left out, a trailing comment cut).
fn sh_commands() -> Vec<(String, Block)> {
    let mut out = Vec::new();
    for b in all_blocks().into_iter().filter(|b| b.kind == "sh") {
        for line in &b.body {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let cmd = t.split("  #").next().unwrap_or(t).trim().to_string();
            out.push((cmd, b.clone()));
        }
    }
    out
}

#[test]
fn every_shell_command_is_known_and_the_pure_ones_run() {
    let mut unknown = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("config/site.toml"),
        dir.path().join("site.toml"),
    )
    .unwrap();
    let install_block = readme_install_block();
    let tasks = std::fs::read_to_string(repo().join("taskfiles/bgp-loadbalancer.yml")).unwrap();
    let mut agent_flags = std::collections::BTreeSet::new();
    flags("bgplb-agent", &mut Vec::new(), &mut agent_flags);
    let mut companion_flags = std::collections::BTreeSet::new();
    flags("bgplb-companion", &mut Vec::new(), &mut companion_flags);
    let console: Vec<(String, Block)> = console_commands()
        .into_iter()
        .map(|s| (s.command, s.block))
        .collect();
    for (cmd, b) in sh_commands().into_iter().chain(console.clone()) {
        // Our binaries' flags must exist, wherever the command runs.
        let words = shell_words(&cmd);
        let set = match words.first().map(String::as_str) {
            Some(p) if p.ends_with("bgplb-agent") => Some(&agent_flags),
            Some(p) if p.ends_with("bgplb-companion") => Some(&companion_flags),
            _ => None,
        };
        if let Some(set) = set {
            for w in words.iter().filter(|w| w.starts_with("--")) {
                let flag = w.split('=').next().unwrap_or(w);
                if !set.contains(flag) {
                    unknown.push(format!("{}:{}: `{cmd}`: no flag {flag}", b.file, b.line));
                }
            }
        }
        // A task must be one the Taskfile has.
        if let Some(name) = cmd.strip_prefix("task bgp-loadbalancer:") {
            let name = name.split_whitespace().next().unwrap_or("");
            if !tasks.contains(&format!("\n  {name}:\n")) {
                unknown.push(format!("{}:{}: `{cmd}`: no task {name}", b.file, b.line));
            }
        }
    }
    for (cmd, b) in sh_commands() {
        // What the VM runs is the README's install block: a line claimed for it must be in it.
        if matches!(known(&cmd), Some(Where::Test(t)) if t.contains("install block"))
            && !install_block.contains(&cmd)
        {
            unknown.push(format!(
                "{}:{}: `{cmd}` is not a line of the README's install block, which the VM runs",
                b.file, b.line
            ));
        }
        match known(&cmd) {
            None => unknown.push(format!("{}:{}: {cmd}", b.file, b.line)),
            Some(Where::Here) => {
                let out = run_here(&cmd, dir.path());
                assert!(
                    out.status.success(),
                    "{}:{}: `{cmd}` failed:\n{}",
                    b.file,
                    b.line,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Some(Where::Test(_) | Where::Recognised(_) | Where::Lab) => {}
        }
    }
    assert!(
        unknown.is_empty(),
        "commands in the docs this test does not know (add each to KNOWN with where it runs):\n{}",
        unknown.join("\n")
    );
}

/// The README's install block (what cross/qemu-test extracts and runs in the VM), one command a
/// line, comments cut.
fn readme_install_block() -> Vec<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "mkdir -p /data/bgplb/bin")
        .expect("the README's install block");
    lines[start..]
        .iter()
        .take_while(|l| !l.starts_with("```"))
        .map(|l| l.split("  #").next().unwrap_or(l).trim().to_string())
        .collect()
}

/// Runs a pure command with the repository's binaries and the `task` binary.
fn run_here(cmd: &str, dir: &Path) -> std::process::Output {
    let words = shell_words(cmd);
    let (prog, args) = words.split_first().expect("a command");
    let prog = match prog.as_str() {
        "bgplb-agent" | "bgplb-companion" => bgplb_tests::bins::path(prog),
        "task" => {
            let tools = std::env::var_os("BGPLB_K8S_TOOLS")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo().join(".cache/k8s-tools"));
            return Command::new(tools.join("venv/bin/task"))
                .arg("--dir")
                .arg(repo())
                .args(args)
                .output()
                .expect("run task");
        }
        "promtool" => {
            return Command::new("promtool")
                .args(args)
                .current_dir(repo())
                .output()
                .expect("run promtool (scripts/setup installs it)");
        }
        other => PathBuf::from(other),
    };
    let mut c = Command::new(prog);
    c.args(args).current_dir(dir);
    // A redirection in the docs (`> FILE`) writes into the scratch directory.
    if let Some(pos) = args.iter().position(|a| a == ">") {
        c = Command::new(bgplb_tests::bins::path(&words[0]));
        c.args(&args[..pos]).current_dir(dir);
        let out = c.output().expect("run");
        std::fs::write(dir.join(&args[pos + 1]), &out.stdout).unwrap();
        return out;
    }
    c.output().expect("run the command")
}

/// Splits a command line into words (single and double quotes group; no expansion).
fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

/// One `$ command` of a console block and the output the block shows for it.
#[derive(Debug, Clone)]
struct Shown {
    block: Block,
    /// Index of the command's line in the block's body.
    at: usize,
    command: String,
    output: Vec<String>,
}

fn console_commands() -> Vec<Shown> {
    let mut out = Vec::new();
    for b in all_blocks().into_iter().filter(|b| b.kind == "console") {
        let mut cur: Option<Shown> = None;
        for (i, line) in b.body.iter().enumerate() {
            if let Some(cmd) = line.strip_prefix("$ ") {
                if let Some(s) = cur.take() {
                    out.push(s);
                }
                cur = Some(Shown {
                    block: b.clone(),
                    at: i,
                    command: cmd.trim().to_string(),
                    output: Vec::new(),
                });
            } else if let Some(s) = cur.as_mut() {
                s.output.push(line.clone());
            } else {
                panic!(
                    "{}:{}: a console block must start with a `$ command` line",
                    b.file, b.line
                );
            }
        }
        out.extend(cur);
    }
    out
}

/// What changes from run to run, made equal.
fn normalise(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut l = String::new();
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                l.push(' ');
            }
            // Generation numbers depend on how many applies the run needed.
            let after_generation = i > 0
                && words[i - 1].eq_ignore_ascii_case("generation")
                && w.chars().all(|c| c.is_ascii_digit());
            // A measured time (`1.98 ms`, `(0.1 s)`); other decimals (versions) stay.
            let unit_follows = words
                .get(i + 1)
                .is_some_and(|n| n.starts_with("ms") || n.starts_with('s'));
            if after_generation {
                l.push_str("<gen>");
            } else {
                l.push_str(&normalise_word(w, unit_follows));
            }
        }
        out.push(l);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

fn normalise_word(w: &str, unit_follows: bool) -> String {
    let core = w.trim_matches(|c: char| ",;()[]".contains(c));
    let (pre, post) = w.split_at(w.find(core).unwrap_or(0));
    let post = &post[core.len()..];
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let is_time = core.len() >= 20
        && core.as_bytes()[4] == b'-'
        && core.as_bytes()[10] == b'T'
        && core.ends_with('Z');
    let is_uptime = core.len() == 8
        && core.as_bytes()[2] == b':'
        && core.as_bytes()[5] == b':'
        && digits(&core.replace(':', ""));
    let is_hash = core.len() == 12 && core.chars().all(|c| c.is_ascii_hexdigit()) && !digits(core);
    let is_age = core.ends_with("s") && digits(&core[..core.len() - 1]);
    // Round-trip times and other measured figures.
    let is_decimal = unit_follows
        && core
            .split_once('.')
            .is_some_and(|(a, b)| digits(a) && digits(b));
    let replaced = if is_time {
        "<time>".to_string()
    } else if is_uptime {
        "<uptime>".to_string()
    } else if is_hash {
        "<hash>".to_string()
    } else if is_age {
        "<n>s".to_string()
    } else if is_decimal {
        "<x>".to_string()
    } else if digits(core) && core.len() >= 10 {
        // Report generations (milliseconds since the epoch) and other big counters.
        "<big>".to_string()
    } else {
        core.to_string()
    };
    format!("{pre}{replaced}{post}")
}

/// The block's output matches the real one: equal after normalising, with `...` lines in the
/// block matching any run of lines.
fn matches(shown: &[String], real: &[String]) -> bool {
    fn go(s: &[String], r: &[String]) -> bool {
        match s.split_first() {
            None => r.is_empty(),
            Some((first, rest)) if first.trim() == "..." => {
                (0..=r.len()).any(|skip| go(rest, &r[skip..]))
            }
            Some((first, rest)) => r.first().is_some_and(|x| x == first) && go(rest, &r[1..]),
        }
    }
    let s = normalise(&shown.join("\n"));
    go(&s, real)
}

const ALL_SESSIONS: [&str; 6] = [
    "172.29.51.11",
    "172.29.51.12",
    "172.29.51.13",
    "fd47:25e1:2f96:51::11",
    "fd47:25e1:2f96:51::12",
    "fd47:25e1:2f96:51::13",
];

/// The lab the console commands run in.
struct DocLab {
    lab: Lab,
    _sim: KubeSim,
    dir: PathBuf,
    last_status: Option<i32>,
}

impl DocLab {
    fn start() -> DocLab {
        let (mut lab, _) = Lab::start_with_daemon(
            LabSpec {
                nodes: 3,
                client: true,
                ..LabSpec::default()
            },
            |_| {},
        );
        lab.wait_established(&ALL_SESSIONS);
        let sim = KubeSim::new();
        sim.serve_cilium();
        sim.apply(objects::cilium_daemonset("1.18.2"));
        for n in &lab.nodes {
            sim.apply(objects::node(&n.name, &n.ipv4, n.ipv6.as_deref(), true));
        }
        // Cilium's side as `bgplb-companion render` makes it (pools, BGP objects), applied.
        let site_file = lab.dir.path().join("site.toml");
        let rendered = Command::new(bgplb_tests::bins::path("bgplb-companion"))
            .args(["render", "--cilium-version", "1.18", "--site"])
            .arg(&site_file)
            .output()
            .expect("render");
        assert!(
            rendered.status.success(),
            "{}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        for doc in String::from_utf8_lossy(&rendered.stdout).split("\n---") {
            if doc.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_saphyr::from_str(doc).expect("rendered YAML");
            if v.get("apiVersion").is_some() {
                sim.apply(v);
            }
        }
        sim.apply(objects::service("web", "nginx", &["172.29.52.100"], 8080));
        sim.apply(objects::endpoint_slice("web", "nginx", &["k8s-2", "k8s-3"]));
        sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());
        lab.start_companion(0, 5);
        // externalTrafficPolicy Cluster: every Ready node announces it, as Cilium would.
        for i in 0..3 {
            lab.serve_vip(i, "172.29.52.100", 8080);
            lab.nodes[i].announce("172.29.52.100/32", &["64512:100"]);
        }
        lab.wait_route(
            "172.29.52.100",
            &["172.29.51.11", "172.29.51.12", "172.29.51.13"],
        );
        // The companion's report is in: the VIP is in the agent's status with its next hops.
        bgplb_tests::cmd::wait_for(
            "the companion's report with the VIP",
            std::time::Duration::from_secs(60),
            || {
                let s = lab.agent_status(0).to_string();
                (s.contains("report_generation") && s.contains("\"services\":1")).then_some(())
            },
        );
        let dir = lab.dir.path().to_path_buf();
        std::fs::write(dir.join("kubeconfig"), kubeconfig("http://127.0.0.1:6443")).unwrap();
        // The README's site file with three mistakes: an unknown key, a pool outside the
        // segment, a keepalive too long for the hold time.
        let mut broken = lab.daemon_site();
        broken.pools[1].blocks = vec!["172.29.53.1-172.29.53.20".into()];
        broken.bgp.keepalive = 5;
        broken.bgp.hold = 9;
        let text = toml::to_string(&broken).unwrap().replacen(
            "[gateway]\n",
            "[gateway]\ncolour = \"red\"\n",
            1,
        );
        std::fs::write(dir.join("broken-site.toml"), text).unwrap();
        // The CA's key beside its certificate, as `pki init` leaves it: `pki issue` works.
        std::fs::copy(
            bgplb_tests::client::pki_dir().join("ca.key"),
            dir.join("tls/ca.key"),
        )
        .unwrap();
        DocLab {
            lab,
            _sim: sim,
            dir,
            last_status: None,
        }
    }

    /// Runs a console command where it belongs; its output (stdout then stderr). Every session
    /// is up first: the docs show a lab at rest.
    fn run(&mut self, command: &str) -> String {
        self.lab.wait_established(&ALL_SESSIONS);
        if command == "echo $?" {
            return format!("{}\n", self.last_status.unwrap_or(0));
        }
        let command = match command.strip_prefix(INSTALLED) {
            Some(rest) => format!("bgplb-agent --config site.toml{rest}"),
            None => command.to_string(),
        };
        // Files the docs put in /tmp go to the lab's directory.
        let tmp = self.dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let command = command.replace(" /tmp/", &format!(" {}/", tmp.display()));
        let command = if command.ends_with(" /tmp") {
            format!("{}{}", &command[..command.len() - 4], tmp.display())
        } else {
            command
        };
        // A redirection writes into the lab's directory.
        let (command, into) = match command.split_once(" > ") {
            Some((c, f)) => (c.to_string(), Some(f.trim().to_string())),
            None => (command, None),
        };
        let words = shell_words(&command);
        let (prog, args) = words.split_first().expect("a command");
        let ns = match prog.as_str() {
            "bgplb-agent" => self.lab.gw.clone(),
            "bgplb-companion" => self.lab.nodes[0].ns.clone(),
            other => panic!("console commands run bgplb-agent or bgplb-companion, not `{other}`"),
        };
        let out = Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(bgplb_tests::bins::path(prog))
            .args(args)
            .current_dir(&self.dir)
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("NO_COLOR", "1")
            .output()
            .expect("run");
        self.last_status = out.status.code();
        if let Some(file) = into {
            std::fs::write(self.dir.join(file), &out.stdout).unwrap();
            return String::from_utf8_lossy(&out.stderr).into_owned();
        }
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

#[test]
fn every_console_block_shows_what_the_command_prints_and_lab_commands_run() {
    let shown = console_commands();
    let mut lab = DocLab::start();
    let update = std::env::var_os("BGPLB_UPDATE_DOCS").is_some();
    let mut failures = Vec::new();
    let mut updates: Vec<(Shown, Vec<String>)> = Vec::new();
    for s in shown {
        let real = lab.run(&s.command);
        let real_lines: Vec<String> = real.lines().map(str::to_string).collect();
        if !matches(&s.output, &normalise(&real)) {
            if update {
                updates.push((s, real_lines));
            } else {
                failures.push(format!(
                    "{}:{} `{}`: the block shows\n{}\nbut it prints\n{}",
                    s.block.file,
                    s.block.line + 1 + s.at,
                    s.command,
                    s.output.join("\n"),
                    real
                ));
            }
        }
    }
    // The shell commands that run in the lab: taken (exit 0, or 1 for a check's verdict), not
    // refused as bad input (64), a usage error (2) or an unreachable dependency (69).
    for (cmd, b) in sh_commands() {
        if known(&cmd) != Some(Where::Lab) {
            continue;
        }
        let out = lab.run(&cmd);
        let code = lab.last_status;
        // Exit 1 is a verdict only for the commands that judge; for the others it is an error.
        let judges = [
            "validate",
            "verify-bgp-peering",
            "test-connectivity",
            "troubleshoot",
        ]
        .iter()
        .any(|v| cmd.split_whitespace().any(|w| w == *v));
        let taken = code == Some(0) || (judges && code == Some(1));
        if !taken {
            failures.push(format!(
                "{}:{} `{cmd}` exited with {code:?}:\n{out}",
                b.file, b.line
            ));
        }
    }
    if update {
        write_updates(updates);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Replaces each command's shown output by the real one (BGPLB_UPDATE_DOCS=1).
fn write_updates(updates: Vec<(Shown, Vec<String>)>) {
    for file in DOCS {
        let mut mine: Vec<&(Shown, Vec<String>)> = updates
            .iter()
            .filter(|(s, _)| s.block.file == file)
            .collect();
        if mine.is_empty() {
            continue;
        }
        // From the bottom up, so earlier line numbers stay right.
        mine.sort_by_key(|(s, _)| std::cmp::Reverse(s.block.line + s.at));
        let path = repo().join(file);
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        for (s, real) in mine {
            let first = s.block.line + s.at + 1; // 0-based index of the first output line
            lines.splice(
                first..first + s.output.len(),
                real.iter().map(|l| l.trim_end().to_string()),
            );
        }
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
}

/// Every long flag of every (sub)command, from the binaries' own help.
fn flags(bin: &str, path: &mut Vec<String>, out: &mut std::collections::BTreeSet<String>) {
    let help = Command::new(bgplb_tests::bins::path(bin))
        .args(path.iter())
        .arg("--help")
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let mut commands = false;
    for line in text.lines() {
        if line.starts_with("Commands:") {
            commands = true;
            continue;
        }
        if line.starts_with("Options:") || line.trim().is_empty() {
            commands = false;
        }
        if commands {
            if let Some(sub) = line.split_whitespace().next() {
                if sub != "help" && path.len() < 3 {
                    path.push(sub.to_string());
                    flags(bin, path, out);
                    path.pop();
                }
            }
            continue;
        }
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some(flag) = word.strip_prefix("--") {
                let flag: String = flag
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !flag.is_empty() && flag != "help" && flag != "version" {
                    out.insert(format!("--{flag}"));
                }
            }
        }
    }
}

#[test]
fn every_flag_is_documented() {
    let docs: String = DOCS
        .iter()
        .map(|f| std::fs::read_to_string(repo().join(f)).unwrap_or_default())
        .collect();
    let mut all = std::collections::BTreeSet::new();
    for bin in ["bgplb-agent", "bgplb-companion"] {
        flags(bin, &mut Vec::new(), &mut all);
    }
    assert!(all.len() > 30, "too few flags found: {all:?}");
    // The flag as a word: `--out` is not satisfied by `--output`.
    let documented = |f: &str| {
        docs.match_indices(f).any(|(i, _)| {
            !docs[i + f.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    };
    let missing: Vec<&String> = all.iter().filter(|f| !documented(f)).collect();
    assert!(
        missing.is_empty(),
        "flags in neither README.md nor docs/guide.md: {missing:?}"
    );
}

#[test]
fn normalising_keeps_what_matters() {
    assert_eq!(
        normalise(
            "generation 3 applied 2026-12-03T11:08:04.2392Z from daemon (config 4920c521252b)"
        ),
        vec!["generation <gen> applied <time> from daemon (config <hash>)"]
    );
    assert_eq!(
        normalise(" home   k8s-1  ipv4  172.29.51.11  Established  00:00:07  2  2  0"),
        vec!["home k8s-1 ipv4 172.29.51.11 Established <uptime> 2 2 0"]
    );
    let shown = vec!["a".to_string(), "...".to_string(), "z".to_string()];
    assert!(matches(
        &shown,
        &["a".into(), "b".into(), "c".into(), "z".into()]
    ));
    assert!(!matches(&shown, &["a".into(), "b".into()]));
}
