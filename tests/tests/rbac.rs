//! The companion's RBAC equals the calls it makes. Every request the Kubernetes API stand-in
//! sees is turned into the verb, resource, namespace and name the API server's authorizer checks,
//! then compared with the manifests under config/kubernetes:
//!
//! - `run` (two replicas, as the Deployment runs them: watches, leader election, the Cilium
//!   version) against the base's roles: every request allowed, every rule used;
//! - the migration (a full run, a second run, a dry run, rollback) and `validate` against the
//!   base plus the migration component: every request allowed, every rule of the component used.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bgplb_companion::migrate::{self, Options};
use bgplb_tests::fixtures::{l2_cluster, FakeAgent};
use bgplb_tests::kubesim::{kubeconfig, Access, Collection, KubeSim};
use bgplb_tests::netns::{block_on_in, Scratch};
use bgplb_tests::rbac::{grants, uncovered, unused, Grant};
use serde_json::{json, Value};

const ADDR: &str = "127.0.0.1:6443";

fn manifests(files: &[&str]) -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/kubernetes");
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let parsed: Vec<Value> =
            serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        docs.extend(parsed.into_iter().filter(|d| !d.is_null()));
    }
    docs
}

fn companion_grants(files: &[&str]) -> Vec<Grant> {
    grants(&manifests(files), "bgplb", "bgplb-companion")
}

fn report(what: &str, problems: &[String], accesses: &[Access]) -> String {
    let seen: Vec<String> = accesses.iter().map(|a| a.to_string()).collect();
    format!(
        "{what}:\n  {}\nrequests seen:\n  {}",
        problems.join("\n  "),
        seen.join("\n  ")
    )
}

fn write_config(dir: &Path) -> PathBuf {
    let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("pki");
    let kc = dir.join("kubeconfig");
    std::fs::write(&kc, kubeconfig(&format!("http://{ADDR}"))).unwrap();
    let config = dir.join("companion.toml");
    std::fs::write(
        &config,
        format!(
            "cluster = \"home\"\nagents = [\"https://127.0.0.1:7443\"]\nheartbeat = 1\n\
             [tls]\nca = \"{0}/ca.crt\"\ncert = \"{0}/companion-home.crt\"\nkey = \"{0}/companion-home.key\"\n\
             [leader_election]\nlease_seconds = 2\n",
            pki.display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn run_makes_exactly_the_calls_the_base_roles_allow() {
    let ns = Scratch::new("rb");
    let sim = l2_cluster();
    // Cilium 1.18 still installs the old peering policy's CRD.
    sim.serve(Collection::new(
        "cilium.io",
        "v2alpha1",
        "ciliumbgppeeringpolicies",
    ));
    sim.spawn_in_namespace(&ns.name, ADDR.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let bin = bgplb_tests::bins::path("bgplb-companion");
    let mut replicas: Vec<std::process::Child> = ["replica-a", "replica-b"]
        .iter()
        .map(|id| {
            std::process::Command::new("ip")
                .args(["netns", "exec", &ns.name])
                .arg(&bin)
                .args(["run", "--config"])
                .arg(&config)
                .arg("--kubeconfig")
                .arg(dir.path().join("kubeconfig"))
                .args(["--identity", id])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("companion starts")
        })
        .collect();
    // Until both replicas have read the Lease, the leader has renewed it, and every kind is
    // watched; then a little longer for anything periodic.
    let deadline = Instant::now() + Duration::from_secs(30);
    let watched = |a: &[Access]| {
        a.iter()
            .filter(|a| a.verb == "watch")
            .map(|a| a.resource.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    loop {
        let a: Vec<Access> = sim.accesses().into_iter().collect();
        let renewed = a
            .iter()
            .any(|a| a.resource == "leases" && a.verb == "update");
        if (renewed && watched(&a) >= 7) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    for r in &mut replicas {
        let _ = r.kill();
        let _ = r.wait();
    }
    let accesses: Vec<Access> = sim.accesses().into_iter().collect();
    assert!(
        accesses
            .iter()
            .any(|a| a.resource == "leases" && a.verb == "create")
            && accesses
                .iter()
                .any(|a| a.resource == "leases" && a.verb == "update")
            && watched(&accesses) >= 7,
        "{}",
        report("the replicas did not get going", &[], &accesses)
    );
    let g = companion_grants(&["base/rbac.yaml"]);
    let missing = uncovered(&g, &accesses);
    assert!(
        missing.is_empty(),
        "{}",
        report("requests the base roles do not allow", &missing, &accesses)
    );
    let extra = unused(&g, &accesses);
    assert!(
        extra.is_empty(),
        "{}",
        report(
            "rules `run` never used (least privilege)",
            &extra,
            &accesses
        )
    );
}

fn options(dry_run: bool, dir: &Path) -> Options {
    Options {
        site: bgplb_site::parse(bgplb_tests::lab::REFERENCE_SITE).unwrap(),
        cluster: "home".into(),
        cilium_version: "1.18.2".into(),
        cilium_namespace: "kube-system".into(),
        dry_run,
        backup_file: dir.join("backup.json"),
        peering_timeout: Duration::from_secs(2),
        service_timeout: Duration::from_secs(5),
    }
}

async fn dynkube(dry_run: bool) -> bgplb_companion::dynkube::DynKube {
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig(&format!("http://{ADDR}"))).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    bgplb_companion::dynkube::DynKube::new(kube::Client::try_from(config).unwrap(), dry_run)
}

/// Every request of a dry run, a migration, a second run, `validate` and rollback, on the L2
/// cluster; with `stale`, the cluster already holds BGP objects an older render made (the
/// migration updates them and rollback restores them, instead of creating and deleting).
fn migration_accesses(stale: bool) -> Vec<Access> {
    let ns = Scratch::new(if stale { "rs" } else { "rm" });
    let sim: KubeSim = l2_cluster();
    sim.serve(Collection::new(
        "cilium.io",
        "v2alpha1",
        "ciliumbgppeeringpolicies",
    ));
    if stale {
        let site = bgplb_site::parse(bgplb_tests::lab::REFERENCE_SITE).unwrap();
        let rendered = bgplb_cilium::render(
            &site,
            "home",
            bgplb_cilium::CiliumVersion::parse("1.18.2").unwrap(),
            &Default::default(),
        )
        .unwrap();
        let mut n = 0;
        for o in &rendered.objects {
            if o.kind().starts_with("CiliumBGP") {
                let mut v = o.to_json().unwrap();
                v["metadata"]["labels"]["rendered-by"] = json!("an older bgplb");
                sim.apply(v);
                n += 1;
            }
        }
        assert!(n >= 3);
    }
    sim.spawn_in_namespace(&ns.name, ADDR.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let path = dir.path().to_path_buf();
    let site = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/site.toml");
    let bin = bgplb_tests::bins::path("bgplb-companion");
    let netns = ns.name.clone();
    block_on_in(&ns.name, move || async move {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(ADDR).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let agent = FakeAgent::default();
        migrate::migrate(&dynkube(true).await, &agent, &options(true, &path))
            .await
            .expect("dry run");
        migrate::migrate(&dynkube(false).await, &agent, &options(false, &path))
            .await
            .expect("migration");
        migrate::migrate(&dynkube(false).await, &agent, &options(false, &path))
            .await
            .expect("second run");
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &netns])
            .arg(&bin)
            .args(["validate", "--no-agent", "--json", "--site"])
            .arg(&site)
            .arg("--config")
            .arg(&config)
            .arg("--kubeconfig")
            .arg(path.join("kubeconfig"))
            .output()
            .unwrap();
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "validate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        migrate::rollback(&dynkube(false).await, "kube-system", None)
            .await
            .expect("rollback");
    });
    sim.accesses().into_iter().collect()
}

#[test]
fn the_migration_and_validate_need_exactly_the_migration_component_on_top() {
    let mut accesses = migration_accesses(false);
    accesses.extend(migration_accesses(true));
    accesses.sort();
    accesses.dedup();
    let base = companion_grants(&["base/rbac.yaml"]);
    let migration = companion_grants(&["base/rbac.yaml", "components/migration/rbac.yaml"])
        .into_iter()
        .filter(|g| !base.iter().any(|b| b.role == g.role))
        .collect::<Vec<_>>();
    assert!(
        !migration.is_empty(),
        "the migration component grants nothing"
    );
    let all: Vec<Grant> = base.iter().chain(&migration).cloned().collect();
    let missing = uncovered(&all, &accesses);
    assert!(
        missing.is_empty(),
        "{}",
        report(
            "requests the base and the migration component do not allow",
            &missing,
            &accesses
        )
    );
    let extra = unused(&migration, &accesses);
    assert!(
        extra.is_empty(),
        "{}",
        report(
            "rules of the migration component never used",
            &extra,
            &accesses
        )
    );
}
