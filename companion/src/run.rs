//! `bgplb-companion run`: watch the cluster, report to every agent.
//!
//! ```text
//!  watchers (Nodes, Services, EndpointSlices, Cilium CRDs, Cilium DaemonSet)
//!      │ notify
//!      ▼
//!  reporter ── debounce, heartbeat, only while leading ──▶ latest report (watch channel)
//!      ▲                                                        │
//!  leader election (Lease) ─ leading ─┘                          ├─▶ sender → agent 1 (mTLS)
//!                                                               └─▶ sender → agent 2
//! ```
//!
//! Nothing is reported before the core kinds have been listed once, and never a cluster without
//! nodes: an empty list at startup is "not known yet", and the agent would drop every session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgplb_proto::Report;
use kube::Client;
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::leader::{self, LeaderConfig};
use crate::project;
use crate::push;
use crate::serve::Telemetry;
use crate::watch::Watched;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot connect to Kubernetes: {0}")]
    Kube(String),
    #[error("{0}")]
    Push(#[from] push::PushError),
    #[error("{0}")]
    Listen(String),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Generations are milliseconds since the epoch, so they keep growing across restarts; `floor`
/// (raised by an agent that holds a newer one) and the last one sent keep them monotonic.
pub fn next_generation(last: u64, floor: u64) -> u64 {
    now_ms().max(last + 1).max(floor + 1)
}

pub async fn run(config: Config, client: Client, identity: String) -> Result<(), RunError> {
    // Fail early on unreadable TLS files; each sender keeps its own rotating client.
    push::client(&config.tls)?;
    let telemetry = Telemetry::new(Duration::from_secs(config.heartbeat));
    if let Some(addr) = config.listen_addr().map_err(RunError::Listen)? {
        let bound = crate::serve::spawn(addr, telemetry.clone())
            .await
            .map_err(|e| RunError::Listen(format!("cannot listen on {addr}: {e}")))?;
        tracing::info!(%bound, "health and metrics served");
    }
    let notify = Arc::new(Notify::new());
    let watched = Watched::start(
        client.clone(),
        &config.cilium.namespace,
        &config.cilium.daemonset,
        notify.clone(),
    );

    let (leading_tx, mut leading) = watch::channel(!config.leader_election.enabled);
    if config.leader_election.enabled {
        let cfg = LeaderConfig {
            namespace: config.leader_election.namespace.clone(),
            lease_name: config.leader_election.lease_name.clone(),
            identity: identity.clone(),
            lease_seconds: config.leader_election.lease_seconds,
        };
        tokio::spawn(leader::run(client.clone(), cfg, leading_tx));
    } else {
        // Keep the sender alive: a single replica always leads.
        std::mem::forget(leading_tx);
    }

    let (latest_tx, latest_rx) = watch::channel::<Option<Arc<Report>>>(None);
    let floor = Arc::new(AtomicU64::new(0));
    for agent in &config.agents {
        tokio::spawn(push::sender(
            push::RotatingClient::new(&config.tls)?,
            agent.clone(),
            latest_rx.clone(),
            floor.clone(),
            telemetry.clone(),
        ));
    }

    let mut heartbeat = tokio::time::interval(Duration::from_secs(config.heartbeat));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let debounce = Duration::from_millis(config.debounce_ms);
    let mut last_generation = 0u64;
    let mut waited_for_sync = false;
    loop {
        tokio::select! {
            _ = notify.notified() => tokio::time::sleep(debounce).await,
            _ = heartbeat.tick() => {}
            r = leading.changed() => {
                if r.is_err() { return Ok(()); }
            }
            _ = shutdown() => {
                tracing::info!("shutting down");
                return Ok(());
            }
        }
        telemetry.tick();
        let leads = *leading.borrow();
        telemetry.leading.set(i64::from(leads));
        // Standby replicas watch too, and are ready as soon as they have listed once.
        if !watched.synced() {
            if !waited_for_sync {
                tracing::info!("waiting for the first list of nodes and services");
                waited_for_sync = true;
            }
            continue;
        }
        telemetry.set_synced();
        let observed = watched.observed();
        telemetry.nodes.set(observed.nodes.len() as i64);
        telemetry.services.set(observed.services.len() as i64);
        if !leads {
            continue;
        }
        if observed.nodes.is_empty() {
            tracing::warn!(
                "the cluster lists no nodes; not reporting (the agent would drop every session)"
            );
            continue;
        }
        let generation = next_generation(last_generation, floor.load(Ordering::SeqCst));
        last_generation = generation;
        let report = project::report(&config.cluster, generation, &rfc3339_now(), &observed);
        telemetry.reports_built.inc();
        telemetry.last_generation.set(generation);
        tracing::debug!(
            generation,
            nodes = report.nodes.len(),
            services = report.services.len(),
            "report built"
        );
        latest_tx.send_replace(Some(Arc::new(report)));
    }
}

async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => std::future::pending().await,
    }
}

/// A Kubernetes client from a kubeconfig file, or inferred (in-cluster, or $KUBECONFIG).
pub async fn kube_client(kubeconfig: Option<&std::path::Path>) -> Result<Client, RunError> {
    kube_client_in(kubeconfig, None).await
}

/// [`kube_client`] with a kubeconfig context other than the current one.
pub async fn kube_client_in(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<Client, RunError> {
    if let Some(context) = context {
        let kc = match kubeconfig {
            Some(path) => kube::config::Kubeconfig::read_from(path)
                .map_err(|e| RunError::Kube(format!("{}: {e}", path.display())))?,
            None => kube::config::Kubeconfig::read().map_err(|e| RunError::Kube(e.to_string()))?,
        };
        let options = kube::config::KubeConfigOptions {
            context: Some(context.to_string()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| RunError::Kube(format!("context `{context}`: {e}")))?;
        return Client::try_from(config).map_err(|e| RunError::Kube(e.to_string()));
    }
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| RunError::Kube(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| RunError::Kube(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| RunError::Kube(e.to_string()))?,
    };
    Client::try_from(config).map_err(|e| RunError::Kube(e.to_string()))
}
