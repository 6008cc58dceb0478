//! `bgplb-companion migrate`: the L2 → BGP migration, in named phases, resumable and reversible.
//!
//! ```text
//! preflight → backup → apply-objects → wait-peering → move-services → dns → remove-l2 → verify → cleanup
//! ```
//!
//! * The plan is computed once and stored with the progress in the ConfigMap
//!   `bgplb/bgplb-migration`; a run that stops (error, Ctrl-C, crash) resumes at the first phase
//!   not recorded as done, with the same plan.
//! * Before anything is written, every object the migration will touch is saved — to a local file
//!   and to the ConfigMap `bgplb/bgplb-migration-backup` — together with the list of objects that
//!   did not exist. `rollback` writes the saved objects back exactly (spec, labels, annotations)
//!   and deletes the ones the migration created.
//! * `--dry-run` prints the plan and sends no write to the API server.

pub mod plan;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bgplb_proto::ProbeTarget;
use bgplb_site::Site;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::agent::AgentApi;
use crate::dynkube::{strip_server_fields, DynKube, KubeError, ObjectRef};
use plan::{Observed, Plan};

pub const NAMESPACE: &str = "bgplb";
pub const STATE_CONFIGMAP: &str = "bgplb-migration";
pub const BACKUP_CONFIGMAP: &str = "bgplb-migration-backup";

/// How long a rollback waits for LB-IPAM to give a service its original addresses back.
const ROLLBACK_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Preflight,
    Backup,
    ApplyObjects,
    WaitPeering,
    MoveServices,
    Dns,
    RemoveL2,
    Verify,
    Cleanup,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Preflight,
        Phase::Backup,
        Phase::ApplyObjects,
        Phase::WaitPeering,
        Phase::MoveServices,
        Phase::Dns,
        Phase::RemoveL2,
        Phase::Verify,
        Phase::Cleanup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Backup => "backup",
            Phase::ApplyObjects => "apply-objects",
            Phase::WaitPeering => "wait-peering",
            Phase::MoveServices => "move-services",
            Phase::Dns => "dns",
            Phase::RemoveL2 => "remove-l2",
            Phase::Verify => "verify",
            Phase::Cleanup => "cleanup",
        }
    }
}

/// Progress, stored in the state ConfigMap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub plan: Plan,
    pub done: Vec<Phase>,
}

/// Everything saved before the first write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    /// Objects as they were (server fields removed).
    pub objects: Vec<Value>,
    /// Objects the migration creates that did not exist.
    pub absent: Vec<ObjectRef>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("phase {phase}: {message}")]
    Phase {
        phase: &'static str,
        message: String,
    },
    #[error("{0}")]
    Kube(#[from] KubeError),
    #[error("nothing to roll back: {0}")]
    NoBackup(String),
}

fn fail(phase: Phase, message: impl Into<String>) -> MigrateError {
    MigrateError::Phase {
        phase: phase.name(),
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub site: Site,
    pub cluster: String,
    /// The Cilium version to render for (detected by the caller).
    pub cilium_version: String,
    /// Where Cilium runs (its `cilium-config` ConfigMap is read there).
    pub cilium_namespace: String,
    pub dry_run: bool,
    /// Local copy of the backup.
    pub backup_file: PathBuf,
    pub peering_timeout: Duration,
    pub service_timeout: Duration,
}

/// Where Cilium's own configuration is, as a live migration sees it (from `cilium-config`,
/// which the Helm values write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiliumStage {
    /// BGP control plane off: apply the stage-1 values first.
    BgpOff,
    /// BGP control plane on, L2 announcements on: the migration can run.
    BgpAndL2,
    /// BGP control plane on, L2 announcements off: the final state.
    BgpOnly,
}

impl CiliumStage {
    /// Reads `data` of `cilium-config` (missing: treated as everything off).
    pub fn of(config: Option<&Value>) -> CiliumStage {
        let on = |key: &str| {
            config
                .and_then(|c| c.pointer(&format!("/data/{key}")))
                .and_then(Value::as_str)
                == Some("true")
        };
        match (
            on("enable-bgp-control-plane"),
            on("enable-l2-announcements"),
        ) {
            (false, _) => CiliumStage::BgpOff,
            (true, true) => CiliumStage::BgpAndL2,
            (true, false) => CiliumStage::BgpOnly,
        }
    }

    /// One sentence: where the cluster is and what to apply (`version`: the installed Cilium).
    pub fn describe(self, namespace: &str, version: Option<&str>) -> String {
        let bgp = bgplb_cilium::Stage::Bgp.file_name();
        let last = bgplb_cilium::Stage::Final.file_name();
        let upgrade = |file: &str| helm_upgrade(namespace, version, file);
        match self {
            CiliumStage::BgpOff => format!(
                "Cilium configuration: BGP control plane off ({namespace}/cilium-config \
                 enable-bgp-control-plane is not \"true\"); apply stage 1 first: {} \
                 (`bgplb-companion render --out DIR` writes it; it keeps L2 announcements on), \
                 then run migrate again",
                upgrade(bgp)
            ),
            CiliumStage::BgpAndL2 => format!(
                "Cilium configuration: stage 1 (BGP control plane on, L2 announcements on), as \
                 the migration needs; after its remove-l2 phase apply stage 2: {}",
                upgrade(last)
            ),
            CiliumStage::BgpOnly => "Cilium configuration: stage 2 (BGP control plane on, L2 \
                 announcements off): Services still on L2 pools are not announced until they \
                 move"
                .to_string(),
        }
    }
}

/// Reads where Cilium's configuration is.
pub async fn cilium_stage(kube: &DynKube, namespace: &str) -> Result<CiliumStage, MigrateError> {
    let cfg = kube
        .get(&ObjectRef::namespaced(
            "v1",
            "ConfigMap",
            namespace,
            "cilium-config",
        ))
        .await?;
    Ok(CiliumStage::of(cfg.as_ref()))
}

/// Prints one line per step (the progress display).
fn progress(i: usize, phase: Phase, what: &str) {
    println!(
        "[{}/{}] {:<14} {what}",
        i + 1,
        Phase::ALL.len(),
        phase.name()
    );
}

fn configmap(name: &str, key: &str, content: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "bgplb"}},
        "data": {key: content}
    })
}

fn cm_ref(name: &str) -> ObjectRef {
    ObjectRef::namespaced("v1", "ConfigMap", NAMESPACE, name)
}

async fn read_cm<T: serde::de::DeserializeOwned>(
    kube: &DynKube,
    name: &str,
    key: &str,
) -> Result<Option<T>, MigrateError> {
    let Some(cm) = kube.get(&cm_ref(name)).await? else {
        return Ok(None);
    };
    let Some(text) = cm.pointer(&format!("/data/{key}")).and_then(Value::as_str) else {
        return Ok(None);
    };
    serde_json::from_str(text)
        .map(Some)
        .map_err(|e| MigrateError::Phase {
            phase: "resume",
            message: format!("ConfigMap {NAMESPACE}/{name} is not readable: {e}"),
        })
}

/// The migration's backup (ConfigMap `bgplb/bgplb-migration-backup`), if one was taken and not
/// rolled back.
pub async fn read_backup(kube: &DynKube) -> Result<Option<Backup>, MigrateError> {
    read_cm(kube, BACKUP_CONFIGMAP, "backup").await
}

/// What the cluster has now.
pub async fn observe(kube: &DynKube) -> Result<Observed, MigrateError> {
    let mut pools = kube
        .list("cilium.io/v2", "CiliumLoadBalancerIPPool")
        .await?;
    if pools.is_empty() {
        pools = kube
            .list("cilium.io/v2alpha1", "CiliumLoadBalancerIPPool")
            .await?;
    }
    Ok(Observed {
        services: kube.list("v1", "Service").await?,
        pools,
        l2_policies: kube
            .list("cilium.io/v2alpha1", "CiliumL2AnnouncementPolicy")
            .await?,
    })
}

/// Renders the Cilium objects for the site, as JSON.
pub fn rendered_objects(
    site: &Site,
    cluster: &str,
    version: &str,
) -> Result<(Vec<Value>, Vec<String>), String> {
    let v = bgplb_cilium::CiliumVersion::parse(version).map_err(|e| e.to_string())?;
    let r =
        bgplb_cilium::render(site, cluster, v, &Default::default()).map_err(|e| e.to_string())?;
    let objects = r
        .objects
        .iter()
        .map(|o| o.to_json())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok((objects, r.warnings))
}

/// The plan for the cluster as it is now (or as stored, when a run is under way).
pub async fn current_plan(
    kube: &DynKube,
    opts: &Options,
) -> Result<(Plan, Vec<Phase>), MigrateError> {
    if let Some(state) = read_cm::<State>(kube, STATE_CONFIGMAP, "state").await? {
        return Ok((state.plan, state.done));
    }
    let (objects, warnings) = rendered_objects(&opts.site, &opts.cluster, &opts.cilium_version)
        .map_err(|m| fail(Phase::Preflight, m))?;
    let observed = observe(kube).await?;
    let mut p = plan::plan(
        &opts.site,
        &opts.cluster,
        &opts.cilium_version,
        objects,
        &observed,
    );
    p.warnings.extend(warnings);
    Ok((p, Vec::new()))
}

/// Prints the plan.
pub fn print_plan(p: &Plan, done: &[Phase]) {
    println!(
        "migration plan for cluster {} (Cilium {})",
        p.cluster, p.cilium_version
    );
    for o in &p.objects {
        if let Some(r) = ObjectRef::of(o) {
            println!("  apply   {r}");
        }
    }
    for m in &p.moves {
        let how = if m.requested {
            format!("requests them with {}", m.ips_annotation)
        } else {
            "by selector: LB-IPAM gives the first free address, recorded after the move".into()
        };
        let labels: Vec<String> = m
            .add_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "  move    service {}/{}: {} -> {} (pool {}; {how}{})",
            m.namespace,
            m.name,
            m.old_ips.join(","),
            m.new_ips.join(","),
            m.pool,
            if labels.is_empty() {
                String::new()
            } else {
                format!("; adds label {}", labels.join(","))
            }
        );
        for d in &m.dns {
            println!(
                "  dns     {d}: {} -> {}",
                m.old_ips.join(","),
                m.new_ips.join(",")
            );
        }
    }
    for l in &p.l2_policies {
        println!("  remove  CiliumL2AnnouncementPolicy {l}");
    }
    for o in &p.old_pools {
        println!("  remove  CiliumLoadBalancerIPPool {o} (old L2 pool, at cleanup)");
    }
    for w in &p.warnings {
        println!("  warning {w}");
    }
    if !done.is_empty() {
        let names: Vec<&str> = done.iter().map(|d| d.name()).collect();
        println!("  done already: {}", names.join(", "));
    }
}

/// The `helm upgrade` line for a stage's values file, pinned to the installed Cilium when it is
/// known (without `--version`, `--reuse-values` would upgrade Cilium to the newest chart).
pub fn helm_upgrade(namespace: &str, version: Option<&str>, file: &str) -> String {
    match version.and_then(|v| v.parse::<bgplb_cilium::CiliumVersion>().ok()) {
        Some(v) => bgplb_cilium::helm::upgrade_line(namespace, &v, file),
        None => format!(
            "helm upgrade cilium cilium/cilium -n {namespace} --version <your Cilium version> --reuse-values -f {file}"
        ),
    }
}

/// Runs (or resumes) the migration. With `dry_run`, prints the plan and writes nothing.
pub async fn migrate(
    kube: &DynKube,
    agent: &impl AgentApi,
    opts: &Options,
) -> Result<Plan, MigrateError> {
    let (mut p, mut done) = current_plan(kube, opts).await?;
    if opts.dry_run {
        print_plan(&p, &done);
        println!(
            "  {}",
            cilium_stage(kube, &opts.cilium_namespace)
                .await?
                .describe(&opts.cilium_namespace, Some(&opts.cilium_version))
        );
        println!("dry run: nothing was changed");
        return Ok(p);
    }
    if done.len() == Phase::ALL.len() {
        println!(
            "the migration of cluster {} is complete; nothing to do",
            p.cluster
        );
        return Ok(p);
    }
    for (i, phase) in Phase::ALL.iter().enumerate() {
        if done.contains(phase) {
            progress(i, *phase, "done earlier");
            continue;
        }
        let started = Instant::now();
        let what = run_phase(*phase, kube, agent, opts, &mut p)
            .await
            .map_err(|e| match e {
                MigrateError::Phase { .. } => e,
                other => fail(*phase, other.to_string()),
            })?;
        done.push(*phase);
        let state = State {
            plan: p.clone(),
            done: done.clone(),
        };
        kube.write(&configmap(
            STATE_CONFIGMAP,
            "state",
            &serde_json::to_string(&state).expect("state serializes"),
        ))
        .await?;
        progress(
            i,
            *phase,
            &format!("{what} ({:.1} s)", started.elapsed().as_secs_f64()),
        );
    }
    if cilium_stage(kube, &opts.cilium_namespace).await? == CiliumStage::BgpAndL2 {
        println!(
            "left to do: Cilium still runs L2 announcements; apply stage 2 of the values: {}",
            helm_upgrade(
                &opts.cilium_namespace,
                Some(&opts.cilium_version),
                bgplb_cilium::Stage::Final.file_name()
            )
        );
    }
    Ok(p)
}

async fn run_phase(
    phase: Phase,
    kube: &DynKube,
    agent: &impl AgentApi,
    opts: &Options,
    p: &mut Plan,
) -> Result<String, MigrateError> {
    match phase {
        Phase::Preflight => preflight(kube, agent, opts, p).await,
        Phase::Backup => backup(kube, opts, p).await,
        Phase::ApplyObjects => {
            for o in &p.objects {
                kube.write(o)
                    .await
                    .map_err(|e| fail(phase, e.to_string()))?;
            }
            Ok(format!("{} Cilium object(s) applied", p.objects.len()))
        }
        Phase::WaitPeering => wait_peering(agent, opts).await,
        Phase::MoveServices => move_services(kube, opts, p).await,
        Phase::Dns => {
            let names: Vec<String> = p
                .moves
                .iter()
                .flat_map(|m| {
                    m.dns
                        .iter()
                        .map(move |d| format!("{d} -> {}", m.new_ips.join(",")))
                })
                .collect();
            for n in &names {
                println!("    update DNS: {n}");
            }
            Ok(format!("{} DNS name(s) change address", names.len()))
        }
        Phase::RemoveL2 => {
            for name in &p.l2_policies {
                let r =
                    ObjectRef::cluster("cilium.io/v2alpha1", "CiliumL2AnnouncementPolicy", name);
                kube.delete(&r)
                    .await
                    .map_err(|e| fail(phase, e.to_string()))?;
            }
            let stage = cilium_stage(kube, &opts.cilium_namespace).await?;
            Ok(format!(
                "{} L2 announcement polic(ies) removed{}",
                p.l2_policies.len(),
                if stage == CiliumStage::BgpAndL2 {
                    format!(
                        "; now apply stage 2 of the Cilium values: {}",
                        helm_upgrade(
                            &opts.cilium_namespace,
                            Some(&opts.cilium_version),
                            bgplb_cilium::Stage::Final.file_name()
                        )
                    )
                } else {
                    String::new()
                }
            ))
        }
        Phase::Verify => verify(agent, opts, p).await,
        Phase::Cleanup => {
            let version = pool_api_version(kube).await?;
            for name in &p.old_pools {
                let r = ObjectRef::cluster(&version, "CiliumLoadBalancerIPPool", name);
                kube.delete(&r)
                    .await
                    .map_err(|e| fail(phase, e.to_string()))?;
            }
            Ok(format!("{} old pool(s) removed", p.old_pools.len()))
        }
    }
}

async fn pool_api_version(kube: &DynKube) -> Result<String, MigrateError> {
    Ok(
        if kube
            .list("cilium.io/v2", "CiliumLoadBalancerIPPool")
            .await
            .map(|l| !l.is_empty())
            .unwrap_or(false)
        {
            "cilium.io/v2".into()
        } else {
            "cilium.io/v2alpha1".into()
        },
    )
}

async fn preflight(
    kube: &DynKube,
    agent: &impl AgentApi,
    opts: &Options,
    p: &Plan,
) -> Result<String, MigrateError> {
    let phase = Phase::Preflight;
    let v = bgplb_cilium::CiliumVersion::parse(&opts.cilium_version)
        .map_err(|e| fail(phase, e.to_string()))?;
    v.check_supported()
        .map_err(|e| fail(phase, e.to_string()))?;
    // Cilium's BGP control plane must be on (Helm bgpControlPlane.enabled → cilium-config),
    // with L2 announcements still on while Services move (stage 1 of the values).
    let stage = cilium_stage(kube, &opts.cilium_namespace).await?;
    if stage == CiliumStage::BgpOff {
        return Err(fail(
            phase,
            stage.describe(&opts.cilium_namespace, Some(&opts.cilium_version)),
        ));
    }
    println!(
        "    {}",
        stage.describe(&opts.cilium_namespace, Some(&opts.cilium_version))
    );
    let status = agent
        .status()
        .await
        .map_err(|e| fail(phase, format!("the agent is not reachable: {e}")))?;
    if status.frr_error.is_some() {
        return Err(fail(
            phase,
            format!(
                "the agent cannot read FRR: {}",
                status.frr_error.unwrap_or_default()
            ),
        ));
    }
    // The new pools must not overlap the old L2 pools' ranges or the node subnets.
    let observed = observe(kube).await?;
    let site_ranges: Vec<bgplb_site::Range> = opts
        .site
        .pools
        .iter()
        .flat_map(|p| {
            p.blocks
                .iter()
                .filter_map(|b| bgplb_site::Range::parse(b).ok())
        })
        .collect();
    for old in observed.pools.iter().filter(|o| {
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(|n| p.old_pools.iter().any(|x| x == n))
    }) {
        let name = old
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        for r in plan::pool_ranges(old) {
            if let Some(s) = site_ranges.iter().find(|s| s.overlaps(&r)) {
                return Err(fail(phase, format!("the old pool {name} ({r}) overlaps the BGP pool range {s}; the L2 range and the BGP pools must be distinct")));
            }
        }
    }
    Ok(format!(
        "Cilium {}, BGP control plane on, agent reachable ({} session(s)), {} service(s) to move",
        opts.cilium_version,
        status.peers.len(),
        p.moves.len()
    ))
}

async fn backup(kube: &DynKube, opts: &Options, p: &Plan) -> Result<String, MigrateError> {
    let phase = Phase::Backup;
    // An earlier, interrupted run may have made a backup: never overwrite it with later state.
    if let Some(existing) = read_cm::<Backup>(kube, BACKUP_CONFIGMAP, "backup").await? {
        write_backup_file(opts, &existing).map_err(|m| fail(phase, m))?;
        return Ok(format!(
            "kept the existing backup ({} object(s))",
            existing.objects.len()
        ));
    }
    let mut refs: Vec<ObjectRef> = p.objects.iter().filter_map(ObjectRef::of).collect();
    for m in &p.moves {
        refs.push(ObjectRef::namespaced(
            "v1",
            "Service",
            &m.namespace,
            &m.name,
        ));
    }
    for l in &p.l2_policies {
        refs.push(ObjectRef::cluster(
            "cilium.io/v2alpha1",
            "CiliumL2AnnouncementPolicy",
            l,
        ));
    }
    let version = pool_api_version(kube).await?;
    for o in &p.old_pools {
        refs.push(ObjectRef::cluster(&version, "CiliumLoadBalancerIPPool", o));
    }
    let mut b = Backup::default();
    for r in refs {
        match kube.get(&r).await? {
            Some(mut o) => {
                strip_server_fields(&mut o);
                b.objects.push(o);
            }
            None => b.absent.push(r),
        }
    }
    write_backup_file(opts, &b).map_err(|m| fail(phase, m))?;
    kube.write(&configmap(
        BACKUP_CONFIGMAP,
        "backup",
        &serde_json::to_string(&b).expect("backup serializes"),
    ))
    .await
    .map_err(|e| fail(phase, e.to_string()))?;
    Ok(format!(
        "{} object(s) saved to {} and ConfigMap {NAMESPACE}/{BACKUP_CONFIGMAP}",
        b.objects.len(),
        opts.backup_file.display()
    ))
}

fn write_backup_file(opts: &Options, b: &Backup) -> Result<(), String> {
    let text = serde_json::to_string_pretty(b).expect("backup serializes");
    let tmp = opts.backup_file.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &opts.backup_file))
        .map_err(|e| {
            format!(
                "cannot write the backup file {}: {e}",
                opts.backup_file.display()
            )
        })
}

async fn wait_peering(agent: &impl AgentApi, opts: &Options) -> Result<String, MigrateError> {
    let deadline = Instant::now() + opts.peering_timeout;
    let mut last: String;
    loop {
        match agent.status().await {
            Ok(s) => {
                // A node the gateway has shut (dead, NotReady) is not waited for.
                let shut: Vec<&str> = s
                    .nodes
                    .iter()
                    .filter(|n| n.cluster == opts.cluster && n.state == "down")
                    .map(|n| n.node.as_str())
                    .collect();
                let ours: Vec<_> = s
                    .peers
                    .iter()
                    .filter(|p| p.cluster == opts.cluster && !shut.contains(&p.node.as_str()))
                    .collect();
                let down: Vec<String> = ours
                    .iter()
                    .filter(|p| p.state != "Established")
                    .map(|p| format!("{} {} ({})", p.node, p.family, p.state))
                    .collect();
                if !ours.is_empty() && down.is_empty() {
                    return Ok(format!("{} session(s) Established", ours.len()));
                }
                last = if ours.is_empty() {
                    "the agent has no sessions for this cluster".into()
                } else {
                    format!("not Established: {}", down.join(", "))
                };
            }
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(fail(
                Phase::WaitPeering,
                format!("no full peering within {:?}: {last}", opts.peering_timeout),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The addresses in a Service's status.
fn status_ips(s: &Value) -> Vec<String> {
    s.pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("ip").and_then(Value::as_str).map(String::from))
        .collect()
}

/// Why LB-IPAM did not satisfy a Service, from its condition (e.g. `pool_selector_mismatch`).
fn ipam_condition(s: &Value) -> Option<String> {
    s.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "cilium.io/IPAMRequestSatisfied" && c["status"] == "False")
        .map(|c| {
            format!(
                "{}: {}",
                c["reason"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default()
            )
        })
}

async fn move_services(
    kube: &DynKube,
    opts: &Options,
    p: &mut Plan,
) -> Result<String, MigrateError> {
    let phase = Phase::MoveServices;
    for m in &p.moves {
        let r = ObjectRef::namespaced("v1", "Service", &m.namespace, &m.name);
        let current = kube
            .get(&r)
            .await?
            .ok_or_else(|| fail(phase, format!("service {}/{} is gone", m.namespace, m.name)))?;
        kube.write(&plan::moved_service(&current, m))
            .await
            .map_err(|e| fail(phase, e.to_string()))?;
    }
    // Services that never requested addresses move when the old pools stop selecting them.
    if p.moves.iter().any(|m| !m.requested) {
        let version = pool_api_version(kube).await?;
        for name in &p.old_pools {
            let r = ObjectRef::cluster(&version, "CiliumLoadBalancerIPPool", name);
            if let Some(pool) = kube.get(&r).await? {
                kube.write(&plan::old_pool_without_migrated(&pool))
                    .await
                    .map_err(|e| fail(phase, e.to_string()))?;
            }
        }
    }
    // Cilium's LB-IPAM assigns the addresses; wait until every service has its new ones (the
    // requested ones, or addresses of the BGP pools for those moved by selector) and none of
    // the old.
    let bgp: Vec<bgplb_site::Range> = p
        .objects
        .iter()
        .filter(|o| o["kind"] == "CiliumLoadBalancerIPPool")
        .flat_map(plan::pool_ranges)
        .collect();
    let in_bgp = |ip: &str| {
        ip.parse::<std::net::IpAddr>()
            .is_ok_and(|a| bgp.iter().any(|r| r.contains(a)))
    };
    let deadline = Instant::now() + opts.service_timeout;
    loop {
        let mut pending = Vec::new();
        for m in &mut p.moves {
            let r = ObjectRef::namespaced("v1", "Service", &m.namespace, &m.name);
            let svc = kube.get(&r).await?.unwrap_or(Value::Null);
            let ips = status_ips(&svc);
            let done = if m.requested {
                m.new_ips.iter().all(|ip| ips.contains(ip))
            } else {
                let (v4, v6) = plan::requested_families(&svc);
                let has = |fam: bool| {
                    ips.iter().any(|ip| {
                        ip.parse::<std::net::IpAddr>()
                            .is_ok_and(|a| a.is_ipv4() == fam)
                    })
                };
                !ips.is_empty()
                    && ips.iter().all(|ip| in_bgp(ip))
                    && (!v4 || has(true))
                    && (!v6 || has(false))
            };
            if done {
                if !m.requested {
                    // Record what LB-IPAM gave (the plan only predicted it).
                    m.new_ips = ips;
                }
                continue;
            }
            pending.push(format!(
                "{}/{} has {} (wants {}){}",
                m.namespace,
                m.name,
                if ips.is_empty() {
                    "none".into()
                } else {
                    ips.join(",")
                },
                m.new_ips.join(","),
                ipam_condition(&svc)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            ));
        }
        if pending.is_empty() {
            return Ok(format!(
                "{} service(s) on their new addresses",
                p.moves.len()
            ));
        }
        if Instant::now() >= deadline {
            return Err(fail(
                phase,
                format!(
                    "Cilium did not assign the new addresses within {:?}: {}",
                    opts.service_timeout,
                    pending.join("; ")
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// TCP from the gateway to every moved, advertised VIP, through the agent's `/v1/probe`. Retried
/// until `opts.service_timeout`: the routes (Cilium announcing, the gateway installing) and the
/// companion's report of the new addresses (the agent probes only a cluster's own VIPs) follow
/// the move by a few seconds.
async fn verify(agent: &impl AgentApi, opts: &Options, p: &Plan) -> Result<String, MigrateError> {
    let targets: Vec<ProbeTarget> = p
        .moves
        .iter()
        .filter_map(|m| m.tcp_port.map(|port| (m, port)))
        .flat_map(|(m, port)| {
            m.new_ips.iter().map(move |ip| ProbeTarget {
                ip: ip.clone(),
                port,
            })
        })
        .collect();
    if targets.is_empty() {
        return Ok("no TCP service to probe".into());
    }
    let deadline = Instant::now() + opts.service_timeout;
    loop {
        let last = match agent.probe(targets.clone()).await {
            Err(e) => format!("the agent cannot probe: {e}"),
            Ok(results) => {
                let failed: Vec<String> = results
                    .iter()
                    .filter(|r| !r.ok)
                    .map(|r| {
                        format!(
                            "{}:{} ({})",
                            r.ip,
                            r.port,
                            r.error.as_deref().unwrap_or("failed")
                        )
                    })
                    .collect();
                if failed.is_empty() {
                    return Ok(format!(
                        "{} VIP(s) answer TCP from the gateway",
                        results.len()
                    ));
                }
                format!("not reachable from the gateway: {}", failed.join(", "))
            }
        };
        if Instant::now() >= deadline {
            return Err(fail(Phase::Verify, last));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Restores the backup exactly and deletes what the migration created; forgets the progress.
/// Undoes a migration: restores the backup, asks LB-IPAM for the original addresses, removes
/// what the migration created. `cilium_namespace` is where `cilium-config` says whether the
/// restored L2 policies will announce anything; `cilium_version`, when known, pins the
/// `helm upgrade` line that turns them back on.
pub async fn rollback(
    kube: &DynKube,
    cilium_namespace: &str,
    cilium_version: Option<&str>,
) -> Result<usize, MigrateError> {
    let Some(b) = read_cm::<Backup>(kube, BACKUP_CONFIGMAP, "backup").await? else {
        // Stopped before the backup: nothing was changed yet; forget the progress.
        if kube.get(&cm_ref(STATE_CONFIGMAP)).await?.is_some() {
            kube.delete(&cm_ref(STATE_CONFIGMAP)).await?;
            println!("the migration stopped before changing anything; its progress is forgotten");
            return Ok(0);
        }
        return Err(MigrateError::NoBackup(format!(
            "ConfigMap {NAMESPACE}/{BACKUP_CONFIGMAP} does not exist"
        )));
    };
    let mut n = 0;
    // Spec and metadata as they were (a real API server ignores the status of a write).
    for o in &b.objects {
        kube.write(o).await?;
        n += 1;
        if let Some(r) = ObjectRef::of(o) {
            println!("restored {r}");
        }
    }
    // A moved service keeps its BGP address while a BGP pool still selects it: ask LB-IPAM for
    // the original addresses explicitly, check it granted them, then take the request away
    // again from a service that never had one.
    let services: Vec<&Value> = b
        .objects
        .iter()
        .filter(|o| o["kind"] == "Service")
        .collect();
    let mut pinned = Vec::new();
    for o in &services {
        let original = status_ips(o);
        let Some(r) = ObjectRef::of(o) else { continue };
        let Some(current) = kube.get(&r).await? else {
            continue;
        };
        if original.is_empty() || status_ips(&current) == original {
            continue;
        }
        if plan::requested_ips(o).is_empty() {
            let mut req = current.clone();
            req["metadata"]["annotations"][plan::IPS_ANNOTATION] =
                Value::String(original.join(","));
            // Cilium 1.14 reads only the older name; harmless on later versions.
            req["metadata"]["annotations"][plan::LEGACY_IPS_ANNOTATION] =
                Value::String(original.join(","));
            kube.write(&req).await?;
            pinned.push((r.clone(), original.clone(), true));
        } else {
            pinned.push((r.clone(), original.clone(), false));
        }
    }
    let deadline = Instant::now() + ROLLBACK_WAIT;
    for (r, original, unpin) in &pinned {
        loop {
            let current = kube.get(r).await?.unwrap_or(Value::Null);
            let ips = status_ips(&current);
            if original.iter().all(|ip| ips.contains(ip)) {
                if *unpin {
                    let mut back = current.clone();
                    if let Some(a) = back["metadata"]["annotations"].as_object_mut() {
                        a.remove(plan::IPS_ANNOTATION);
                        a.remove(plan::LEGACY_IPS_ANNOTATION);
                    }
                    kube.write(&back).await?;
                    println!(
                        "restored {r} on {} (requested for the restore, then the request removed: it had none)",
                        original.join(",")
                    );
                } else {
                    println!("restored {r} on {}", original.join(","));
                }
                break;
            }
            if Instant::now() >= deadline {
                return Err(MigrateError::Phase {
                    phase: "rollback",
                    message: format!(
                        "{r} did not get its original address(es) {} back within {ROLLBACK_WAIT:?} (it has {}){}",
                        original.join(","),
                        ips.join(","),
                        ipam_condition(&current)
                            .map(|c| format!(": {c}"))
                            .unwrap_or_default()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for r in &b.absent {
        kube.delete(r).await?;
        println!("removed  {r} (created by the migration)");
        n += 1;
    }
    kube.delete(&cm_ref(STATE_CONFIGMAP)).await?;
    // The cluster is as it was: the next migration takes a fresh backup.
    kube.delete(&cm_ref(BACKUP_CONFIGMAP)).await?;
    let restored_l2 = b
        .objects
        .iter()
        .any(|o| o["kind"] == "CiliumL2AnnouncementPolicy");
    if restored_l2 && cilium_stage(kube, cilium_namespace).await? != CiliumStage::BgpAndL2 {
        println!(
            "left to do: Cilium's L2 announcements are off, so the restored L2 policies announce \
             nothing yet; apply stage 1 of the values again: {}",
            helm_upgrade(
                cilium_namespace,
                cilium_version,
                bgplb_cilium::Stage::Bgp.file_name()
            )
        );
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cilium_stage_is_read_from_cilium_config() {
        let cfg = |bgp: &str, l2: &str| json!({"data": {"enable-bgp-control-plane": bgp, "enable-l2-announcements": l2}});
        assert_eq!(CiliumStage::of(None), CiliumStage::BgpOff);
        assert_eq!(
            CiliumStage::of(Some(&json!({"data": {}}))),
            CiliumStage::BgpOff
        );
        assert_eq!(
            CiliumStage::of(Some(&cfg("false", "true"))),
            CiliumStage::BgpOff
        );
        assert_eq!(
            CiliumStage::of(Some(&cfg("true", "true"))),
            CiliumStage::BgpAndL2
        );
        assert_eq!(
            CiliumStage::of(Some(&cfg("true", "false"))),
            CiliumStage::BgpOnly
        );
        let text = CiliumStage::BgpAndL2.describe("kube-system", Some("1.18.2"));
        assert!(
            text.contains(
                "-n kube-system --version 1.18.2 --reuse-values -f cilium-values-2-final.yaml"
            ),
            "{text}"
        );
        assert!(helm_upgrade("kube-system", Some("1.18"), "x.yaml").contains("--version 1.18.x "));
    }
}
