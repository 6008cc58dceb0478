//! Leader election on a coordination.k8s.io/v1 Lease, so two companion replicas never both
//! report.
//!
//! The algorithm is client-go's: read the Lease; create it if missing; renew it while we hold it;
//! take it over only when its holder let it expire (renewTime + leaseDurationSeconds in the past).
//! Every write carries the resourceVersion it read, so of two replicas racing for an expired lease
//! exactly one write succeeds and the other gets 409 Conflict. A leader that cannot renew steps
//! down before the lease can expire, so leadership never overlaps.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use kube::Client;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    /// This replica (the pod name).
    pub identity: String,
    pub lease_seconds: u32,
}

fn now() -> MicroTime {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    MicroTime(k8s_openapi::jiff::Timestamp::from_millisecond(ms).unwrap_or_default())
}

fn expired(spec: &LeaseSpec, at: &MicroTime) -> bool {
    let Some(renew) = &spec.renew_time else {
        return true;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15)) * 1000;
    renew.0.as_millisecond() + duration < at.0.as_millisecond()
}

/// One round: tries to hold the lease; `Ok(true)` when we hold it now.
pub async fn try_hold(api: &Api<Lease>, cfg: &LeaderConfig) -> Result<bool, kube::Error> {
    let at = now();
    let ours = |transitions: i32, acquire: Option<MicroTime>| LeaseSpec {
        holder_identity: Some(cfg.identity.clone()),
        lease_duration_seconds: Some(cfg.lease_seconds as i32),
        acquire_time: acquire.or_else(|| Some(at.clone())),
        renew_time: Some(at.clone()),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    match api.get_opt(&cfg.lease_name).await? {
        None => {
            let mut lease = Lease::default();
            lease.metadata.name = Some(cfg.lease_name.clone());
            lease.metadata.namespace = Some(cfg.namespace.clone());
            lease.spec = Some(ours(0, None));
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.clone().unwrap_or_default();
            let holder = spec.holder_identity.clone().unwrap_or_default();
            let transitions = spec.lease_transitions.unwrap_or(0);
            let new_spec = if holder == cfg.identity {
                ours(transitions, spec.acquire_time.clone())
            } else if holder.is_empty() || expired(&spec, &at) {
                ours(transitions + 1, None)
            } else {
                return Ok(false);
            };
            lease.spec = Some(new_spec);
            // `replace` sends the resourceVersion we read: a concurrent writer makes this a 409.
            match api
                .replace(&cfg.lease_name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// Gives the lease up (on shutdown) so another replica takes over at once.
pub async fn release(api: &Api<Lease>, cfg: &LeaderConfig) {
    if let Ok(Some(mut lease)) = api.get_opt(&cfg.lease_name).await {
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() == Some(cfg.identity.as_str()) {
            spec.holder_identity = None;
            spec.renew_time = None;
            let _ = api
                .replace(&cfg.lease_name, &PostParams::default(), &lease)
                .await;
        }
    }
}

/// Runs the election forever, publishing whether we lead.
pub async fn run(client: Client, cfg: LeaderConfig, leading: watch::Sender<bool>) {
    let api: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let period = Duration::from_millis(u64::from(cfg.lease_seconds) * 1000 / 3)
        .max(Duration::from_millis(300));
    // Step down this long after the last successful renewal: before the lease expires for others.
    let keep_for = Duration::from_millis(u64::from(cfg.lease_seconds) * 1000 * 2 / 3);
    let mut last_renewed: Option<Instant> = None;
    loop {
        match try_hold(&api, &cfg).await {
            Ok(true) => last_renewed = Some(Instant::now()),
            Ok(false) => last_renewed = None,
            Err(e) => tracing::warn!(error = %e, lease = %cfg.lease_name, "cannot reach the lease"),
        }
        let lead = last_renewed.is_some_and(|t| t.elapsed() < keep_for);
        if *leading.borrow() != lead {
            tracing::info!(identity = %cfg.identity, leading = lead, "leadership changed");
        }
        leading.send_replace(lead);
        if leading.is_closed() {
            if lead {
                release(&api, &cfg).await;
            }
            return;
        }
        tokio::time::sleep(period + Duration::from_millis(fastrand::u64(0..100))).await;
    }
}
