//! `bgplb-agent troubleshoot`: a lab whose sessions carry a BGP password, with `[agent.unifi]`
//! configured (an API key file, no controller listening), a private key pasted into the site
//! file as a comment and into a log given with `--log`. The support bundle must hold every file,
//! FRR's and the kernel's real state, and not one byte of the password, the API key or a private
//! key, in any file. With FRR stopped the bundle is still written, says why in FRR's files, and
//! the exit code is 1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bgplb_tests::cmd::wait_for;
use bgplb_tests::{Lab, LabSpec};

const PASSWORD: &str = "Tr0uble-Pa55word";
const API_KEY: &str = "bgplb-troubleshoot-api-key-5be1c0de";
/// An RSA block in the traditional format, as someone might paste from an old file.
const RSA_BLOCK: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtroubleshootRsaBodyLineOne0123456789abcdefghijklmn\nopqrstuvwxyzTroubleshootRsaBodyLineTwo0123456789ABCDEFGHIJKLMNOPQR\n-----END RSA PRIVATE KEY-----\n";

/// What the bundle must hold, under its top-level directory.
const FILES: &[&str] = &[
    "README.txt",
    "versions.txt",
    "site.toml",
    "status.json",
    "validate.json",
    "frr/running-config.txt",
    "frr/show-bgp-summary.json",
    "frr/show-bgp-neighbors.json",
    "frr/show-bgp-ipv4.json",
    "frr/show-bgp-ipv6.json",
    "kernel/routes.json",
    "kernel/neighbours.json",
    "kernel/links.json",
    "kernel/nat.txt",
    "generations.json",
    "generation-current.conf",
    "events.json",
    "logs/journal-bgplb-agent.txt",
];

fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Unpacks `bundle` into a new directory inside `dir`; returns that directory.
fn unpack(bundle: &Path, dir: &Path) -> PathBuf {
    let into = dir.join(format!(
        "unpacked-{}",
        bundle.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&into).unwrap();
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(bundle)
        .arg("-C")
        .arg(&into)
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar -xzf: {}", text(&out));
    into
}

/// Every file under `dir`, as paths relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                found.push(
                    path.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found.sort();
    found
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn json(dir: &Path, file: &str) -> serde_json::Value {
    serde_json::from_str(&read(dir, file)).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"))
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// No file under `dir` holds any of `secrets` (byte search, every file).
fn assert_no_secret(dir: &Path, secrets: &[&str]) {
    for file in walk(dir) {
        let bytes = std::fs::read(dir.join(&file)).unwrap();
        for s in secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "{file} in the bundle holds `{s}`:\n{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn the_support_bundle_holds_every_file_and_no_secret() {
    let mut lab = Lab::start(LabSpec {
        nodes: 2,
        password: Some(PASSWORD.into()),
        ..LabSpec::default()
    });
    let key_file = lab.dir.path().join("unifi-api-key");
    std::fs::write(&key_file, format!("{API_KEY}\n")).unwrap();
    let mut site = lab.daemon_site();
    // No controller listens there: the daemon's uploads fail, nothing else may.
    site.agent.unifi = Some(bgplb_site::UnifiSettings {
        controller: "https://127.0.0.1:8443".into(),
        api_key_file: key_file.clone(),
        insecure_loopback: true,
        ..bgplb_site::UnifiSettings::default()
    });
    let site_file = lab.write_site(&site);
    // A real private key (PKCS#8), pasted into the site file as a comment by mistake.
    let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
    let pem_body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!pem_body.is_empty());
    let commented: String = pem.lines().map(|l| format!("# {l}\n")).collect();
    let toml = std::fs::read_to_string(&site_file).unwrap();
    std::fs::write(
        &site_file,
        format!("# pasted by mistake:\n{commented}{toml}"),
    )
    .unwrap();
    lab.start_daemon();
    lab.wait_established(&[
        "172.29.51.11",
        "172.29.51.12",
        "fd47:25e1:2f96:51::11",
        "fd47:25e1:2f96:51::12",
    ]);
    // The daemon has applied, saved and set up the segment: every check passes.
    wait_for("validate to pass", Duration::from_secs(60), || {
        lab.agent(&["validate"]).status.success().then_some(())
    });
    // An operator's log with the secrets in unexpected places, and both kinds of key.
    let operator_log = lab.dir.path().join("operator.log");
    std::fs::write(
        &operator_log,
        format!(
            "12:00:01 vtysh: neighbor 172.29.51.11 password {PASSWORD}\n\
             12:00:02 curl -H 'X-API-KEY: {API_KEY}' https://127.0.0.1/proxy/network\n\
             12:00:03 pasted:\n{pem}{RSA_BLOCK}\
             12:00:04 the password again, in passing: {PASSWORD}.\n\
             12:00:05 the end\n"
        ),
    )
    .unwrap();
    let password_file = lab.dir.path().join("bgp-password");

    let bundle = lab.dir.path().join("case-1.tar.gz");
    let out = lab.agent(&[
        "troubleshoot",
        "--json",
        "--out",
        &bundle.display().to_string(),
        "--log",
        &lab.dir.path().join("agent.log").display().to_string(),
        "--log",
        &operator_log.display().to_string(),
        "--log",
        &password_file.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    for secret in [PASSWORD, API_KEY] {
        assert!(!stdout.contains(secret), "{stdout}");
    }
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["bundle"], bundle.display().to_string(), "{report}");
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{report}"
    );
    assert_eq!(mode(&bundle), 0o600, "the bundle must be private");
    if let Ok(keep) = std::env::var("BGPLB_KEEP_BUNDLE") {
        std::fs::copy(&bundle, Path::new(&keep).join("case-1.tar.gz")).unwrap();
    }

    // One top-level directory named like the bundle; every listed file there, none other.
    let dir = unpack(&bundle, lab.dir.path());
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(entries.len(), 1, "one top-level directory");
    let top = dir.join("case-1");
    let listed: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f.as_str()
                .unwrap()
                .strip_prefix("case-1/")
                .unwrap_or_else(|| panic!("{f} is not in case-1/"))
                .to_string()
        })
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(walk(&top), sorted, "the files listed are the files packed");
    for file in FILES
        .iter()
        .chain(&["logs/agent.log", "logs/operator.log", "logs/bgp-password"])
    {
        assert!(listed.iter().any(|l| l == file), "{file} is not listed");
    }
    for file in &listed {
        let path = top.join(file);
        assert!(
            std::fs::metadata(&path).unwrap().len() > 0,
            "{file} is empty"
        );
        assert_eq!(mode(&path), 0o600, "{file}");
    }

    // What FRR runs, the password redacted.
    let running = read(&top, "frr/running-config.txt");
    assert!(running.contains("neighbor 172.29.51.11"), "{running}");
    assert!(running.contains("password <redacted>"), "{running}");
    let current = read(&top, "generation-current.conf");
    assert!(current.contains("password <redacted>"), "{current}");
    // status.json is what `status --json` prints: the four sessions.
    let status = json(&top, "status.json");
    let peers = status["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 4, "{status}");
    for addr in ["172.29.51.11", "172.29.51.12"] {
        let p = peers.iter().find(|p| p["address"] == addr).unwrap();
        assert_eq!(p["state"], "Established", "{p}");
    }
    let validate = json(&top, "validate.json");
    assert_eq!(validate["ok"], true, "{validate}");
    let names: Vec<&str> = validate["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in ["segment", "sessions", "fib", "l2", "nat", "state-store"] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    assert!(json(&top, "frr/show-bgp-neighbors.json")["172.29.51.12"].is_object());
    assert!(json(&top, "frr/show-bgp-summary.json")["ipv4Unicast"].is_object());
    let versions = read(&top, "versions.txt");
    assert!(
        versions.contains("bgplb-agent ") && versions.contains("FRRouting"),
        "{versions}"
    );
    // The kernel: the segment's unreachable route, the nodes' ARP entries, the bridge.
    let routes = json(&top, "kernel/routes.json");
    assert!(
        routes["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dst"] == "172.29.52.0/24" && r["kind"] == "unreachable"),
        "{routes}"
    );
    let neighbours = read(&top, "kernel/neighbours.json");
    assert!(neighbours.contains("172.29.51.11"), "{neighbours}");
    let links = read(&top, "kernel/links.json");
    assert!(links.contains("172.29.51.1/24"), "{links}");
    let generations = json(&top, "generations.json");
    let first = &generations.as_array().unwrap()[0];
    assert_eq!(first["outcome"], "applied", "{first}");
    assert!(first.get("config").is_none(), "no configurations: {first}");
    assert!(json(&top, "events.json").is_array());

    // The secrets: redacted where they were, the rest of the text kept.
    let operator = read(&top, "logs/operator.log");
    assert!(
        operator.contains("X-API-KEY: <redacted>")
            && operator.contains("in passing: <redacted>.")
            && operator.contains("<redacted private key>")
            && operator.contains("12:00:05 the end"),
        "{operator}"
    );
    let site_copy = read(&top, "site.toml");
    assert!(
        site_copy.contains("# <redacted private key>") && site_copy.contains("[agent.unifi]"),
        "{site_copy}"
    );
    let refused = read(&top, "logs/bgp-password");
    assert!(refused.contains("not included"), "{refused}");
    let readme = read(&top, "README.txt");
    assert!(
        readme.contains("the BGP password")
            && readme.contains("the UniFi API key")
            && readme.contains("the word after `password` in FRR's `neighbor` lines")
            && readme.contains("not included (the BGP password file)"),
        "{readme}"
    );
    let mut secrets = vec![PASSWORD, API_KEY, "PRIVATE KEY-----"];
    secrets.extend(&pem_body);
    secrets.extend(
        RSA_BLOCK
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>(),
    );
    assert_no_secret(&top, &secrets);

    // The human form: the default name in a directory, the same privacy.
    let out_dir = lab.dir.path().join("bundles");
    std::fs::create_dir(&out_dir).unwrap();
    let out = lab.agent(&["troubleshoot", "--out", &out_dir.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("wrote "), "{human}");
    let made: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(made.len(), 1, "{made:?}");
    let name = made[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("bgplb-support-{}-", site.gateway.name))
            && name.ends_with("Z.tar.gz"),
        "{name}"
    );
    assert!(human.contains(&name), "{human}");
    assert_eq!(mode(&made[0]), 0o600);
    let dir = unpack(&made[0], lab.dir.path());
    assert_no_secret(&dir, &secrets);

    // The missing controller broke nothing: the daemon still runs and answers.
    assert!(lab.agent_readyz(), "{}", lab.daemon_log());
    assert!(
        !lab.daemon_log().contains("panicked"),
        "{}",
        lab.daemon_log()
    );
}

#[test]
fn with_frr_stopped_the_bundle_is_still_written_and_says_why() {
    let mut lab = Lab::start(LabSpec {
        nodes: 1,
        ipv6: false,
        password: Some(PASSWORD.into()),
        ..LabSpec::default()
    });
    lab.write_site(&lab.site());
    lab.agent_ok(&["apply"]);

    // Bad input and an unwritable destination fail before anything runs.
    let nowhere = lab.dir.path().join("no-such.log");
    let out = lab.agent(&[
        "troubleshoot",
        "--out",
        &lab.dir.path().display().to_string(),
        "--log",
        &nowhere.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("no-such.log"), "{}", text(&out));
    let out = lab.agent(&["troubleshoot", "--out", "/nonexistent/dir/x.tar.gz"]);
    assert_eq!(out.status.code(), Some(74), "{}", text(&out));
    let bundles = std::fs::read_dir(lab.dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".tar.gz")
        })
        .count();
    assert_eq!(bundles, 0, "nothing written");

    lab.stop_frr();
    let (bundle, out) = troubleshoot_json(&lab, "frr-down");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let frr = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "frr")
        .cloned()
        .unwrap_or_else(|| panic!("no frr check: {report}"));
    assert_eq!(frr["ok"], false, "{frr}");
    assert_eq!(mode(&bundle), 0o600);

    let top = unpack(&bundle, lab.dir.path()).join("frr-down");
    for file in FILES {
        assert!(
            std::fs::metadata(top.join(file)).unwrap().len() > 0,
            "{file} is missing or empty"
        );
    }
    let running = read(&top, "frr/running-config.txt");
    assert!(
        running.starts_with("error:") && running.contains("FRR is not answering"),
        "{running}"
    );
    for file in [
        "frr/show-bgp-summary.json",
        "frr/show-bgp-neighbors.json",
        "frr/show-bgp-ipv4.json",
        "frr/show-bgp-ipv6.json",
    ] {
        let v = json(&top, file);
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("FRR is not answering")),
            "{file}: {v}"
        );
    }
    let status = json(&top, "status.json");
    assert!(status["frr_error"].is_string(), "{status}");
    assert_eq!(json(&top, "validate.json")["ok"], false);
    assert!(
        read(&top, "versions.txt").contains("not available"),
        "FRR's version says why it is missing"
    );
    // The store still answers: the generation is there, its password redacted.
    let current = read(&top, "generation-current.conf");
    assert!(current.contains("password <redacted>"), "{current}");
    assert_no_secret(&top, &[PASSWORD, "PRIVATE KEY-----"]);

    // A site file that does not validate (a misspelt key, a VLAN id out of range) still gets
    // its bundle, made with what could be read, and the first check says what is wrong.
    let site_file = lab.dir.path().join("site.toml");
    let good = std::fs::read_to_string(&site_file).unwrap();
    let bad = good
        .replacen("[segment]\n", "[segment]\nvlna = 52\n", 1)
        .replacen("vlan = 52", "vlan = 5200", 1);
    assert_ne!(bad, good);
    std::fs::write(&site_file, &bad).unwrap();
    let (bundle, out) = troubleshoot_json(&lab, "bad-site");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("2 problem(s)") && stderr.contains("what could be read"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &report["checks"][0];
    assert_eq!(first["name"], "site-file", "{report}");
    assert_eq!(first["ok"], false, "{first}");
    let details = first["details"].to_string();
    assert!(
        details.contains("segment.vlna: unknown key") && details.contains("5200"),
        "{details}"
    );
    let top = unpack(&bundle, lab.dir.path()).join("bad-site");
    assert!(read(&top, "site.toml").contains("vlna = 52"));
    assert_eq!(
        json(&top, "validate.json")["checks"][0]["name"],
        "site-file"
    );
    assert_no_secret(&top, &[PASSWORD, "PRIVATE KEY-----"]);

    // One that does not even parse: nothing to go on, refused as before, nothing written.
    std::fs::write(&site_file, "[gateway\n").unwrap();
    let bundle = lab.dir.path().join("unparsable.tar.gz");
    let out = lab.agent(&["troubleshoot", "--out", &bundle.display().to_string()]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(!bundle.exists());
    std::fs::write(&site_file, &good).unwrap();
}

/// `troubleshoot --json` into `<lab>/NAME.tar.gz`: the bundle's path and the command's output.
fn troubleshoot_json(lab: &Lab, name: &str) -> (PathBuf, std::process::Output) {
    let bundle = lab.dir.path().join(format!("{name}.tar.gz"));
    let out = lab.agent(&[
        "troubleshoot",
        "--json",
        "--out",
        &bundle.display().to_string(),
    ]);
    (bundle, out)
}
