//! The status page (`GET /status` on the metrics listener) in a real browser, and
//! `generate-report`: headless Chromium (Debian's `chromium`) loads the page from a lab whose
//! nodes announce VIPs with a BGP password set; the rendered DOM must show the lab's sessions,
//! pools and VIPs with their next hops, reload itself, carry no script and no external resource,
//! and never the password. The report files hold the same data.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bgplb_tests::client::request;
use bgplb_tests::{Lab, LabSpec};

const PASSWORD: &str = "s3cret-Pa55word";
const URL: &str = "https://172.29.51.1:7443/v1/clusters/home/report";
const PAGE: &str = "http://127.0.0.1:9478/status";

/// Chromium as the machine's probe runs it (root, no network beyond the lab namespace).
fn chromium(ns: &str, profile: &Path, args: &[&str]) -> std::process::Output {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("Debian's chromium is not installed: run scripts/setup");
    let out = Command::new("timeout")
        .args(["60", "ip", "netns", "exec", ns, chromium])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The text of the table with id `id` in `dom`, tags removed, one row per line.
fn table(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table #{id} in the page:\n{dom}"));
    let end = start + dom[start..].find("</table>").expect("table ends");
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom[start..end]
        .replace("</tr>", "\n")
        .replace("</td>", " ")
        .chars()
    {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[test]
fn the_status_page_shows_sessions_pools_and_vips_in_a_real_browser() {
    let (lab, site) = Lab::start_with_daemon(
        LabSpec {
            nodes: 2,
            password: Some(PASSWORD.into()),
            ..LabSpec::default()
        },
        |_| {},
    );
    lab.wait_established(&[
        "172.29.51.11",
        "172.29.51.12",
        "fd47:25e1:2f96:51::11",
        "fd47:25e1:2f96:51::12",
    ]);
    let mut report: serde_json::Value =
        serde_json::from_str(include_str!("../../proto/fixtures/report-home.json")).unwrap();
    report["nodes"].as_array_mut().unwrap().truncate(2);
    // The fixture's k8s-2 is cordoned, which drains it (its routes de-preferred): not here.
    report["nodes"][1]["unschedulable"] = false.into();
    let a = request(
        &lab.nodes[0].ns,
        Some("companion-home"),
        "PUT",
        URL,
        Some(serde_json::to_vec(&report).unwrap()),
    );
    assert_eq!(a.status(), Some(202), "{a:?}");
    // As Cilium would: traefik (policy Cluster) from both nodes, jellyfin (Local) from k8s-2,
    // where its endpoint is.
    for node in &lab.nodes {
        node.announce("172.29.52.200/32", &["64512:100"]);
        node.announce("fd47:25e1:2f96:52:100::1/128", &["64512:100"]);
    }
    lab.nodes[1].announce("172.29.52.100/32", &["64512:100"]);
    lab.wait_route("172.29.52.200", &["172.29.51.11", "172.29.51.12"]);
    lab.wait_route("172.29.52.100", &["172.29.51.12"]);
    // The page shows the daemon's status, cached for a few seconds, and the kernel checks run
    // after a kernel event: load it until it shows what the lab has, or for 60 s, and let the
    // assertions below say what is missing.
    let profile = tempfile::tempdir().unwrap();
    let shows_the_lab = |dom: &str| {
        // The first line of table `id` that `is_it`, as the assertions below find it.
        let line_of = |id: &str, is_it: &dyn Fn(&str) -> bool| {
            dom.contains(&format!("<table id=\"{id}\""))
                .then(|| table(dom, id))
                .and_then(|t| t.lines().find(|l| is_it(l)).map(str::to_string))
                .unwrap_or_default()
        };
        let vip = |v: &str| line_of("vips", &|l| l.contains(&format!("{v} ")));
        let check = |c: &str| line_of("checks", &|l| l.starts_with(&format!("{c} ")));
        dom.contains("4 of 4 sessions established")
            && vip("172.29.52.100").contains("172.29.51.12")
            && vip("172.29.52.200").contains("172.29.51.11")
            && vip("172.29.52.200").contains("172.29.51.12")
            && check("sessions").contains(" ok ")
            && check("fib").contains(" ok ")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let dom = loop {
        let out = chromium(&lab.gw, profile.path(), &["--dump-dom", PAGE]);
        let dom = String::from_utf8_lossy(&out.stdout).into_owned();
        if shows_the_lab(&dom) || std::time::Instant::now() > deadline {
            break dom;
        }
        std::thread::sleep(Duration::from_millis(500));
    };

    // Sessions per node and family, established.
    let sessions = table(&dom, "sessions");
    for (node, addr) in [("k8s-1", "172.29.51.11"), ("k8s-2", "172.29.51.12")] {
        let row = sessions
            .lines()
            .find(|l| l.contains(addr))
            .unwrap_or_else(|| panic!("no session row for {addr}:\n{sessions}"));
        assert!(
            row.contains(node) && row.contains("ipv4") && row.contains("Established"),
            "{row}"
        );
    }
    assert_eq!(sessions.matches("Established").count(), 4, "{sessions}");
    assert!(
        dom.contains("4 of 4 sessions established"),
        "no session summary"
    );
    // Pools with their utilisation, as reported.
    let pools = table(&dom, "pools");
    assert!(
        pools.contains("bgp-default") && pools.contains("2 / 100"),
        "{pools}"
    );
    assert!(
        pools.contains("bgp-ingress") && pools.contains("1 / 21"),
        "{pools}"
    );
    assert!(dom.contains("aria-label=\"2% used\""), "no utilisation bar");
    // Each VIP with the next hops the gateway's BGP chose.
    let vips = table(&dom, "vips");
    let row = |vip: &str| {
        vips.lines()
            .find(|l| l.contains(&format!("{vip} ")))
            .unwrap_or_else(|| panic!("no VIP row for {vip}:\n{vips}"))
            .to_string()
    };
    let jellyfin = row("172.29.52.100");
    assert!(
        jellyfin.contains("media/jellyfin")
            && jellyfin.contains("172.29.51.12")
            && !jellyfin.contains("172.29.51.11"),
        "{jellyfin}"
    );
    let traefik = row("172.29.52.200");
    assert!(
        traefik.contains("ingress/traefik")
            && traefik.contains("172.29.51.11")
            && traefik.contains("172.29.51.12"),
        "{traefik}"
    );
    let traefik6 = row("fd47:25e1:2f96:52:100::1");
    assert!(traefik6.contains("fd47:25e1:2f96:51::11"), "{traefik6}");
    // Checks, generations, events.
    let checks = table(&dom, "checks");
    for name in ["sessions", "fib"] {
        let line = checks
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no check {name}:\n{checks}"));
        assert!(line.contains(" ok "), "{line}");
    }
    let generations = table(&dom, "generations");
    assert!(generations.contains("applied"), "{generations}");
    assert!(dom.contains("id=\"generation\""));
    // Reloads itself, needs no script, loads nothing from elsewhere, never shows the password.
    assert!(dom.contains("http-equiv=\"refresh\""), "no reload");
    assert!(!dom.contains("<script"), "the page carries a script");
    for external in ["src=\"http", "href=\"http", "url(http"] {
        assert!(!dom.contains(external), "the page loads {external}…");
    }
    assert!(!dom.contains(PASSWORD), "the page shows the BGP password");

    // A screenshot, as a person would see it.
    let shot = lab.dir.path().join("status-page.png");
    chromium(
        &lab.gw,
        profile.path(),
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1600",
            "--hide-scrollbars",
            PAGE,
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Ok(dir) = std::env::var("BGPLB_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, Path::new(&dir).join("status-page.png")).unwrap();
    }

    // generate-report: the same data in one self-contained HTML file and in Markdown.
    let html = lab.dir.path().join("report.html");
    let md = lab.dir.path().join("report.md");
    let out = lab.agent_ok(&[
        "generate-report",
        "--out",
        &html.display().to_string(),
        "--markdown",
        &md.display().to_string(),
    ]);
    assert!(out.contains("wrote"), "{out}");
    let html = std::fs::read_to_string(&html).unwrap();
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        !html.contains("http-equiv=\"refresh\""),
        "a report file must not reload"
    );
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    let report_vips = table(&html, "vips");
    assert!(report_vips.contains("172.29.52.100") && report_vips.contains("172.29.51.12"));
    assert!(
        html.contains("aria-label=\"2% used\""),
        "no utilisation chart in the report"
    );
    assert!(
        md.contains("| home | media/jellyfin | `172.29.52.100` | 172.29.51.12 |"),
        "{md}"
    );
    assert!(md.contains("| home | bgp-default | 2 / 100 | 2% |"), "{md}");
    assert!(md.contains("## Recent changes"), "{md}");
    for text in [&html, &md] {
        assert!(
            !text.contains(PASSWORD),
            "the report shows the BGP password"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&lab.agent_ok(&["generate-report", "--out", "/dev/null", "--json"]))
            .unwrap();
    assert_eq!(
        json["status"]["peers"].as_array().unwrap().len(),
        4,
        "{json}"
    );
    assert!(!json.to_string().contains(PASSWORD));
    drop(site);
}
