//! The Taskfile (`Taskfile.yml` including `taskfiles/bgp-loadbalancer.yml`) with the real `task`
//! binary (PyPI go-task-bin, fetched by scripts/k8s-tools): `task --list` shows every task the
//! home-lab operators use with a description, the GATEWAY variable turns the agent's commands
//! into SSH commands, and every task runs against a lab (the agent in the gateway namespace,
//! the companion in a node namespace against the Kubernetes stand-in). A task's exit code and
//! output must be those of the bgplb command it stands for, run directly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bgplb_tests::fixtures;
use bgplb_tests::kubesim::{kubeconfig, objects};
use bgplb_tests::{Lab, LabSpec};

/// The task names the Taskfile must have, exactly.
const TASKS: [&str; 9] = [
    "configure-udm-pro",
    "generate-report",
    "migrate",
    "rollback",
    "status",
    "test-connectivity",
    "troubleshoot",
    "validate",
    "verify-bgp-peering",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn task_bin() -> PathBuf {
    let dir = std::env::var_os("BGPLB_K8S_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/k8s-tools"));
    let bin = dir.join("venv/bin/task");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/k8s-tools (it installs PyPI go-task-bin)",
        bin.display()
    );
    bin
}

fn task(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(task_bin());
    // Plain text whatever the caller's environment asks for (a CI runner may force colour).
    cmd.env("NO_COLOR", "1")
        .env_remove("FORCE_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .arg("--color=false")
        .arg("--dir")
        .arg(repo())
        .args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run task")
}

fn text(o: &Output) -> String {
    strip_ansi(&format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    ))
}

/// `s` without ANSI SGR sequences (`ESC [ ... m`), should a colour still get through.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn task_list_shows_every_task_with_a_description() {
    let out = task(&["--list"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let list = strip_ansi(&String::from_utf8_lossy(&out.stdout));
    let mut names = Vec::new();
    for line in list.lines().filter(|l| l.starts_with("* ")) {
        let (name, desc) = line[2..].split_once(':').map_or(("", ""), |(a, b)| (a, b));
        let (task, desc) = match desc.split_once(':') {
            Some((t, d)) => (format!("{name}:{t}"), d.trim().to_string()),
            None => (name.to_string(), desc.trim().to_string()),
        };
        assert!(desc.len() > 20, "no description for {task}: {line}");
        names.push(task);
    }
    let mut want: Vec<String> = TASKS
        .iter()
        .map(|t| format!("bgp-loadbalancer:{t}"))
        .collect();
    want.sort();
    names.sort();
    assert_eq!(names, want, "{list}");

    // GATEWAY=user@host: the agent's commands go over SSH to the installed agent and site file.
    let dry = task(
        &[
            "--dry",
            "bgp-loadbalancer:status",
            "GATEWAY=root@192.168.1.1",
        ],
        &[],
    );
    assert!(
        text(&dry).contains(
            "ssh root@192.168.1.1 /data/bgplb/bin/bgplb-agent --config /data/bgplb/site.toml status"
        ),
        "{}",
        text(&dry)
    );
    let dry = task(
        &[
            "--dry",
            "bgp-loadbalancer:generate-report",
            "GATEWAY=root@gw",
            "OUT_DIR=/tmp/r",
        ],
        &[],
    );
    assert!(
        text(&dry).contains(
            "scp -q root@gw:/tmp/bgplb-report.html root@gw:/tmp/bgplb-report.md /tmp/r/ \
             && ssh root@gw rm -f /tmp/bgplb-report.html /tmp/bgplb-report.md"
        ),
        "{}",
        text(&dry)
    );
    // A site file path with a space survives both shells, this one and the gateway's.
    let dry = task(
        &[
            "--dry",
            "bgp-loadbalancer:status",
            "GATEWAY=root@gw",
            "GATEWAY_SITE=/data/my site.toml",
        ],
        &[],
    );
    assert!(
        text(&dry).contains(r#"--config "'/data/my site.toml'" status"#),
        "{}",
        text(&dry)
    );
    // KUBE_CONTEXT reaches the companion.
    let dry = task(
        &[
            "--dry",
            "bgp-loadbalancer:verify-bgp-peering",
            "KUBE_CONTEXT=admin@home",
        ],
        &[],
    );
    assert!(
        text(&dry).contains("--context admin@home"),
        "{}",
        text(&dry)
    );
}

/// Runs `bgplb-loadbalancer:NAME` with the lab's wrappers, and the command it stands for directly,
/// and returns both.
struct Runner<'a> {
    lab: &'a Lab,
    vars: Vec<String>,
    kubeconfig: PathBuf,
    out: PathBuf,
}

impl Runner<'_> {
    fn task(&self, name: &str, extra: &[&str]) -> Output {
        let mut args: Vec<&str> = vec![name];
        args.extend(self.vars.iter().map(String::as_str));
        if !extra.is_empty() {
            args.push("--");
            args.extend_from_slice(extra);
        }
        let full = format!("bgp-loadbalancer:{name}");
        args[0] = &full;
        task(&args, &[("KUBECONFIG", &self.kubeconfig)])
    }

    fn agent(&self, args: &[&str]) -> Output {
        self.lab.agent(args)
    }

    fn companion(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.lab.nodes[0].ns])
            .arg(bgplb_tests::bins::path("bgplb-companion"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("run bgplb-companion")
    }
}

#[test]
fn every_task_runs_against_the_lab() {
    let (mut lab, _) = Lab::start_with_daemon(
        LabSpec {
            nodes: 2,
            ipv6: false,
            ..LabSpec::default()
        },
        |_| {},
    );
    lab.wait_established(&["172.29.51.11", "172.29.51.12"]);
    // The home cluster, still on L2 announcements, behind the Kubernetes stand-in in node 1's
    // namespace; the companion reports from there.
    let sim = fixtures::l2_cluster();
    for n in &lab.nodes {
        sim.apply(objects::node(&n.name, &n.ipv4, n.ipv6.as_deref(), true));
    }
    sim.spawn_in_namespace(&lab.nodes[0].ns, "127.0.0.1:6443".parse().unwrap());
    lab.start_companion(0, 5);
    let dir = lab.dir.path().to_path_buf();
    // Paths with spaces, as a home directory may have: the Taskfile quotes what it passes on.
    let spaced = dir.join("my lab");
    std::fs::create_dir(&spaced).unwrap();
    let site = spaced.join("site file.toml");
    std::fs::copy(dir.join("site.toml"), &site).unwrap();
    let companion_config = spaced.join("companion config.toml");
    std::fs::copy(dir.join("companion.toml"), &companion_config).unwrap();
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, kubeconfig("http://127.0.0.1:6443")).unwrap();
    let out = tempfile::Builder::new()
        .prefix("bgplb task out ")
        .tempdir()
        .unwrap();
    let agent_bin = format!(
        "ip netns exec {} {}",
        lab.gw,
        bgplb_tests::bins::path("bgplb-agent").display()
    );
    let companion_bin = format!(
        "ip netns exec {} {}",
        lab.nodes[0].ns,
        bgplb_tests::bins::path("bgplb-companion").display()
    );
    let r = Runner {
        lab: &lab,
        vars: vec![
            format!("SITE={}", site.display()),
            format!("AGENT_BIN={agent_bin}"),
            format!("COMPANION_BIN={companion_bin}"),
            format!("COMPANION_CONFIG={}", companion_config.display()),
            format!("OUT_DIR={}", out.path().display()),
        ],
        kubeconfig: kc.clone(),
        out: out.path().to_path_buf(),
    };
    let site_s = site.display().to_string();
    let config_s = companion_config.display().to_string();

    // status: the agent's status, nothing more.
    let t = r.task("status", &[]);
    let d = r.agent(&["status"]);
    assert!(t.status.success(), "{}", text(&t));
    assert!(
        String::from_utf8_lossy(&t.stdout).contains("172.29.51.11"),
        "{}",
        text(&t)
    );
    assert_eq!(t.status.code(), d.status.code());

    // configure-udm-pro: the same steps as the command.
    let t = r.task("configure-udm-pro", &[]);
    let d = r.agent(&["configure-udm-pro"]);
    assert!(t.status.success(), "{}", text(&t));
    assert_eq!(t.stdout, d.stdout);

    // validate: the gateway, then the cluster side; the cluster still has its L2 policy, so the
    // cluster side fails, and so does the task.
    let t = r.task("validate", &[]);
    let gw = r.agent(&["validate"]);
    let cl = r.companion(&["validate", "--site", &site_s, "--config", &config_s]);
    let want_ok = gw.status.success() && cl.status.success();
    assert_eq!(t.status.success(), want_ok, "{}", text(&t));
    assert!(
        !cl.status.success(),
        "the L2 cluster passed validate:\n{}",
        text(&cl)
    );
    let t_out = text(&t);
    assert!(t_out.contains("l2-policies"), "{t_out}");

    // generate-report: both files in OUT_DIR.
    let t = r.task("generate-report", &[]);
    assert!(t.status.success(), "{}", text(&t));
    let html = std::fs::read_to_string(r.out.join("bgplb-report.html")).expect("report");
    assert!(html.contains("172.29.51.11"));
    assert!(r.out.join("bgplb-report.md").exists());

    // migrate -- --dry-run: the plan, as the command prints it.
    let t = r.task("migrate", &["--dry-run"]);
    let backup = r.out.join("bgplb-migration-backup.json");
    let d = r.companion(&[
        "migrate",
        "--site",
        &site_s,
        "--config",
        &config_s,
        "--backup-file",
        &backup.display().to_string(),
        "--dry-run",
    ]);
    assert_eq!(
        t.status.code().map(|c| c != 0),
        d.status.code().map(|c| c != 0)
    );
    assert!(t.status.success(), "{}", text(&t));
    assert_eq!(t.stdout, d.stdout);
    // A dry run needs no companion configuration: the same plan without --config.
    let bare = r.companion(&[
        "migrate",
        "--site",
        &site_s,
        "--config",
        "/nonexistent/companion.toml",
        "--backup-file",
        &backup.display().to_string(),
        "--dry-run",
    ]);
    assert!(bare.status.success(), "{}", text(&bare));
    assert_eq!(bare.stdout, d.stdout);

    // rollback: nothing was migrated; the task says what the command says.
    let t = r.task("rollback", &[]);
    let d = r.companion(&["rollback", "--config", &config_s]);
    assert_eq!(
        t.status.success(),
        d.status.success(),
        "{}\n{}",
        text(&t),
        text(&d)
    );

    // troubleshoot: a bundle in OUT_DIR whatever the checks say.
    let t = r.task("troubleshoot", &[]);
    let bundles: Vec<_> = std::fs::read_dir(&r.out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("bgplb-support-")
        })
        .collect();
    assert_eq!(bundles.len(), 1, "{}", text(&t));
    assert!(text(&t).contains("support bundle:"), "{}", text(&t));

    // verify-bgp-peering and test-connectivity: the command's verdict.
    for (name, args) in [
        (
            "verify-bgp-peering",
            vec![
                "verify-bgp-peering",
                "--site",
                &site_s,
                "--config",
                &config_s,
            ],
        ),
        (
            "test-connectivity",
            vec![
                "test-connectivity",
                "--site",
                &site_s,
                "--config",
                &config_s,
            ],
        ),
    ] {
        let t = r.task(name, &[]);
        let d = r.companion(&args);
        assert_eq!(
            t.status.success(),
            d.status.success(),
            "{name}:\n{}\n{}",
            text(&t),
            text(&d)
        );
        assert!(
            !text(&d).contains("unrecognized subcommand"),
            "{name}: {}",
            text(&d)
        );
    }
    drop(sim);
}
