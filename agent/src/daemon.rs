//! `bgplb-agent run`: the agent as a service.
//!
//! ```text
//!            ┌──────────── mTLS listener (axum-server, rustls) ─────────────┐
//! companion ─┤ PUT /v1/clusters/{c}/report → App::accept ── check ── store  │
//!            │ GET /v1/status, /healthz, /readyz, /metrics                  │
//!            └───────────────────────────────┬──────────────────────────────┘
//!                                            │ notify (debounced)
//!   drift tick (drift_check_interval) ──▶ reconciler ──▶ Applier (plan, vtysh -f, verify, SQLite)
//!   FRR watch (bgpd vty, every second) ──▶ reconciler (someone else changed bgplb's part)
//!   probe rounds, report signals      ──▶ liveness ──▶ fast path (bgpd vty socket) ──▶ reconciler
//!   TLS files changed (polled)        ──▶ RustlsConfig::reload_from_config
//!   plain listener (metrics_listen)   ──▶ /healthz, /readyz, /metrics
//! ```
//!
//! Writes to FRR are serialized by one lock that also holds the liveness overlay FRR runs: the
//! reconciler applies generations (base + overlay), the liveness task writes only overlay changes
//! (the fast path). Reports only record state and wake them. Fail static: the reconciler always renders from the last accepted report of each
//! cluster, however old; nothing is removed because a report is late.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::error_handling::HandleErrorLayer;
use axum::http::StatusCode;
use bgplb_frr::overlay::Overlay;
use bgplb_proto::{AgentStatus, ClusterStatus, PeerStatus, Report, ReportAccepted};
use bgplb_site::{Cluster, Site};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::api::{self, ApiError, REQUEST_TIMEOUT};
use crate::apply::{Applied, Applier};
use crate::checks::{self, Ecmp};
use crate::error::Error;
use crate::kernel::Kernel;
use crate::liveness::{self, Liveness};
use crate::metrics::{ClusterLabel, Metrics, PoolLabels};
use crate::netcheck::{self, Check, Validation};
use crate::ownership::{Ownership, Verdict};
use crate::report::{self, Checked};
use crate::store::{SharedStore, Source, Store, StoredReport};
use crate::vtysh::Vtysh;
use crate::{desired, status, tls};

/// What kernel events can matter for: the segment, the node subnets, the pools.
fn interest(site: &Site) -> Vec<ipnet::IpNet> {
    let mut nets: Vec<ipnet::IpNet> = site
        .segment
        .ipv4
        .into_iter()
        .chain(site.segment.ipv6)
        .collect();
    nets.extend(
        site.clusters
            .iter()
            .flat_map(|c| c.node_subnets.iter().copied()),
    );
    nets.extend(netcheck::pool_ranges(site).iter().flat_map(|r| r.cidrs()));
    nets
}

/// A configuration that failed to apply, and when it may be tried again.
struct Backoff {
    hash: String,
    until: Instant,
    delay: Duration,
}

/// Retries of a configuration that failed: 10 s, doubling up to 10 minutes. Another desired
/// configuration (a report, a site edit) is applied at once.
const BACKOFF_FIRST: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// How old a status read may be for scrapes.
const STATUS_TTL: Duration = Duration::from_secs(5);

/// Refused requests written as events per cluster label and minute; the rest are only counted.
const REFUSALS_PER_MINUTE: u32 = 20;

/// Reports arriving within this window are applied together.
/// The status page: how many generations and events it lists, and how often it reloads.
const PAGE_GENERATIONS: usize = 10;
const PAGE_EVENTS: usize = 20;
const PAGE_REFRESH_SECS: u32 = 10;

const DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(Debug, Default, Clone)]
struct ClusterState {
    checked: Option<Checked>,
    report: Option<Report>,
    generation: Option<u64>,
    hash: Option<String>,
    /// When the report arrived on the monotonic clock: its age does not jump with the gateway's
    /// wall clock (an NTP step, a wrong RTC at boot). A report restored at start-up is placed
    /// by its wall-clock age once.
    received_mono: Option<Instant>,
    last_refusal: Option<String>,
}

impl ClusterState {
    /// Seconds since the report arrived.
    fn age(&self) -> Option<u64> {
        self.received_mono.map(|t| t.elapsed().as_secs())
    }
}

/// The monotonic instant a report received at `received_unix` (wall clock) arrived, as well as
/// the wall clock tells now.
fn mono_from_unix(received_unix: i64) -> Option<Instant> {
    let age = u64::try_from(now_unix() - received_unix).unwrap_or(0);
    Instant::now()
        .checked_sub(Duration::from_secs(age))
        .or_else(|| Some(Instant::now()))
}

/// State shared by the API handlers and the reconciler.
pub struct App {
    /// The site in force; replaced when the site file changes and the new one is valid.
    site: std::sync::RwLock<Arc<Site>>,
    /// The site file, and the fingerprint of what was loaded from it (and its password file).
    site_file: Option<(PathBuf, Mutex<String>)>,
    password: Mutex<Option<String>>,
    pub store: SharedStore,
    pub metrics: Metrics,
    vtysh: Vtysh,
    reconcile: Notify,
    clusters: Mutex<BTreeMap<String, ClusterState>>,
    last_apply: Mutex<Option<Result<(), String>>>,
    /// Why the state database cannot record an apply, checked after every reconcile.
    store_problem: Mutex<Option<String>>,
    /// The controller's copy (`[agent.unifi]`): what it took last, and the last failure.
    unifi: Mutex<crate::unifi::SyncState>,
    /// Woken after every apply, so the controller's copy follows without waiting.
    unifi_wake: Notify,
    /// Per cluster: the report token bucket (tokens, last refill).
    report_buckets: Mutex<BTreeMap<String, (f64, Instant)>>,
    /// The netlink side (None only when netlink cannot be opened; reported in status).
    kernel: Option<Kernel>,
    ecmp: Mutex<Option<Ecmp>>,
    /// FRR's side of the last full status read, for kernel checks between full reads.
    last_frr: Mutex<Option<status::Status>>,
    /// The last kernel checks (segment, ECMP, sessions, FIB, L2).
    pub validation: Mutex<Option<Result<Validation, String>>>,
    pub liveness: Liveness,
    /// Wakes the liveness task (a report changed a node's signals).
    liveness_wake: Notify,
    /// Held by whatever writes FRR's configuration; holds the overlay FRR was last given.
    frr_write: tokio::sync::Mutex<Overlay>,
    /// The generation FRR runs: what the fast path plans the overlay against.
    applied_base: Mutex<Option<String>>,
    /// Refusal events written per cluster label in the current minute.
    refusals: Mutex<BTreeMap<String, (Instant, u32)>>,
    /// The last read of FRR's status, and when.
    status_cache: Mutex<Option<(Instant, status::Status)>>,
    /// Reports are accepted one at a time.
    accepting: tokio::sync::Mutex<()>,
    /// Wakes the reconciler at once: the FRR watch found bgplb's configuration changed.
    frr_changed: Notify,
    /// Changes to FRR made by someone else, and whether the agent stopped fighting them.
    ownership: Mutex<Ownership>,
}

/// What the loaded site depends on: the site file's bytes and its password file's.
fn fingerprint(path: &Path, site: &Site) -> String {
    let mut h = Sha256::new();
    h.update(std::fs::read(path).unwrap_or_default());
    if let Some(pw) = &site.bgp.password_file {
        h.update(std::fs::read(pw).unwrap_or_default());
    }
    hex::encode(h.finalize())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl App {
    /// `site_path` is the file `site` was loaded from: the daemon follows its edits.
    pub fn new(
        site: Site,
        site_path: Option<PathBuf>,
        password: Option<String>,
        store: SharedStore,
        vtysh: Vtysh,
        kernel: Option<Kernel>,
    ) -> App {
        let (saved, overlay) = match liveness::load(&store.get()) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the stored node liveness; every node starts up");
                Default::default()
            }
        };
        let applied_base = store.get().current().ok().flatten().map(|g| g.config);
        let app = App {
            liveness: Liveness::restore(site.liveness.clone(), saved, overlay.clone()),
            liveness_wake: Notify::new(),
            frr_write: tokio::sync::Mutex::new(overlay),
            applied_base: Mutex::new(applied_base),
            refusals: Mutex::new(BTreeMap::new()),
            status_cache: Mutex::new(None),
            accepting: tokio::sync::Mutex::new(()),
            frr_changed: Notify::new(),
            ownership: Mutex::new(Ownership::new(
                site.agent.frr.fight_limit,
                Duration::from_secs(site.agent.frr.fight_window),
            )),
            site_file: site_path.map(|p| {
                let fingerprint = fingerprint(&p, &site);
                (p, Mutex::new(fingerprint))
            }),
            site: std::sync::RwLock::new(Arc::new(site)),
            password: Mutex::new(password),
            store,
            metrics: Metrics::new(),
            vtysh,
            reconcile: Notify::new(),
            clusters: Mutex::new(BTreeMap::new()),
            last_apply: Mutex::new(None),
            store_problem: Mutex::new(None),
            report_buckets: Mutex::new(BTreeMap::new()),
            unifi: Mutex::new(crate::unifi::SyncState::default()),
            unifi_wake: Notify::new(),
            kernel,
            ecmp: Mutex::new(None),
            last_frr: Mutex::new(None),
            validation: Mutex::new(None),
        };
        app.load_reports();
        app.refresh_liveness_nodes();
        app
    }

    /// Gives the liveness tracker the node set the gateway peers with and the companion's
    /// signals about those nodes.
    fn refresh_liveness_nodes(&self) {
        let now = now_ms();
        let clusters = self.clusters();
        let accepted = clusters
            .iter()
            .filter_map(|(name, s)| s.checked.as_ref().map(|c| (name.as_str(), c)));
        let inputs = report::inputs(&self.site(), None, true, accepted);
        let nodes: BTreeMap<(String, String), Vec<IpAddr>> = inputs
            .nodes
            .iter()
            .flat_map(|(cluster, nodes)| {
                nodes.iter().map(move |n| {
                    (
                        (cluster.clone(), n.name.clone()),
                        n.ipv4.into_iter().chain(n.ipv6).collect(),
                    )
                })
            })
            .collect();
        self.liveness.set_nodes(now, nodes);
        for (name, state) in clusters.iter() {
            if let Some(r) = &state.report {
                self.liveness.signals(now, name, &r.nodes);
            }
        }
    }

    /// The site in force.
    pub fn site(&self) -> Arc<Site> {
        self.site.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the site file when it (or its password file) changed. A valid new site replaces
    /// the old one (and the next reconcile applies it); an invalid one changes nothing and is
    /// reported once. Returns whether the site changed.
    pub fn reload_site(&self) -> bool {
        let Some((path, loaded)) = &self.site_file else {
            return false;
        };
        let current = self.site();
        let now = fingerprint(path, &current);
        let mut loaded = lock(loaded);
        if *loaded == now {
            return false;
        }
        *loaded = now;
        let result = bgplb_site::load(path)
            .map_err(|e| e.to_string())
            .and_then(|site| {
                let password = desired::site_inputs(&site)
                    .map_err(|e| e.to_string())?
                    .password;
                Ok((site, password))
            });
        match result {
            Ok((site, password)) => {
                tracing::info!(path = %path.display(), "site file reloaded");
                let _ = self.store.blocking(|s| {
                    s.event(
                        "site-reloaded",
                        &format!("{} changed and was reloaded", path.display()),
                    )
                });
                self.liveness.set_settings(site.liveness.clone());
                lock(&self.ownership).set_limits(
                    site.agent.frr.fight_limit,
                    Duration::from_secs(site.agent.frr.fight_window),
                );
                *lock(&self.password) = password;
                *self.site.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(site);
                self.recheck_reports();
                self.refresh_liveness_nodes();
                self.liveness_wake.notify_one();
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "the changed site file is not valid; keeping the previous one");
                let _ = self.store.blocking(|s| {
                    s.event(
                        "site-invalid",
                        &format!(
                            "{} changed but is not valid; the previous site stays in force: {e}",
                            path.display()
                        ),
                    )
                });
                false
            }
        }
    }

    /// Judges every stored report again against the (new) site.
    fn recheck_reports(&self) {
        lock(&self.clusters).clear();
        self.load_reports();
    }

    fn clusters(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ClusterState>> {
        self.clusters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Restores the last accepted report of every cluster from SQLite, checked against the
    /// current site file (which may have changed since).
    fn load_reports(&self) {
        let stored = match self.store.blocking(|s| s.reports()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read stored reports; starting from the site file");
                return;
            }
        };
        let site = self.site();
        let mut clusters = self.clusters();
        for r in stored {
            let Some(cluster) = site.cluster(&r.cluster) else {
                continue;
            };
            let parsed: Result<Report, String> =
                serde_json::from_str(&r.body).map_err(|e| e.to_string());
            let checked = parsed.clone().and_then(|rep| {
                report::check(&site, cluster, &rep, None).map_err(|p| {
                    format!(
                        "{} problem(s), first: {}: {}",
                        p.len(),
                        p[0].path,
                        p[0].message
                    )
                })
            });
            match checked {
                Ok(c) => {
                    tracing::info!(cluster = %r.cluster, generation = r.generation, "restored report");
                    clusters.insert(
                        r.cluster.clone(),
                        ClusterState {
                            checked: Some(c),
                            report: parsed.ok(),
                            generation: Some(r.generation),
                            hash: Some(r.hash),
                            received_mono: mono_from_unix(r.received_unix),
                            last_refusal: None,
                        },
                    );
                }
                Err(e) => {
                    let msg = format!(
                        "stored report of cluster {} no longer passes the site file ({e}); using the site's static nodes until the next report",
                        r.cluster
                    );
                    tracing::warn!(cluster = %r.cluster, "{msg}");
                    let _ = self
                        .store
                        .blocking(|s| s.event("stored-report-invalid", &msg));
                }
            }
        }
    }

    /// Accepts a report that passed TLS and parsing: generation, then content, then store.
    pub async fn accept(
        &self,
        cluster: &Cluster,
        report: Report,
        body: &[u8],
    ) -> Result<ReportAccepted, ApiError> {
        // One report at a time, waited for without holding a worker thread; the clusters' map
        // is locked only for moments, never across SQLite.
        let _serial = self.accepting.lock().await;
        let hash = hex::encode(Sha256::digest(body));
        let previous = self
            .clusters()
            .get(&cluster.name)
            .cloned()
            .unwrap_or_default();
        if let Some(have) = previous.generation {
            if report.generation == have && previous.hash.as_deref() == Some(hash.as_str()) {
                self.metrics.count_report(&cluster.name, "duplicate");
                return Ok(ReportAccepted {
                    cluster: cluster.name.clone(),
                    generation: report.generation,
                    duplicate: true,
                    warnings: previous
                        .checked
                        .as_ref()
                        .map(|c| c.warnings.clone())
                        .unwrap_or_default(),
                });
            }
            if report.generation <= have {
                return Err(ApiError::Stale {
                    cluster: cluster.name.clone(),
                    got: report.generation,
                    have,
                });
            }
        }
        let current: Vec<bgplb_site::NodeSpec> = match &previous.checked {
            Some(c) => c.nodes.clone(),
            None => cluster
                .nodes
                .iter()
                .map(bgplb_site::NodeSpec::from)
                .collect(),
        };
        let checked =
            report::check(&self.site(), cluster, &report, Some(&current)).map_err(|problems| {
                ApiError::Invalid {
                    cluster: cluster.name.clone(),
                    problems,
                }
            })?;
        let received_unix = now_unix();
        let stored = StoredReport {
            cluster: cluster.name.clone(),
            generation: report.generation,
            hash: hash.clone(),
            received_at: crate::store::now(),
            received_unix,
            body: String::from_utf8_lossy(body).into_owned(),
        };
        self.store
            .blocking(|s| s.save_report(&stored))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let warnings = checked.warnings.clone();
        // A heartbeat that changes nothing the gateway renders costs no apply.
        let changes_desired = previous.checked.as_ref() != Some(&checked);
        let generation = report.generation;
        self.clusters().insert(
            cluster.name.clone(),
            ClusterState {
                checked: Some(checked),
                generation: Some(generation),
                report: Some(report),
                hash: Some(hash),
                received_mono: Some(Instant::now()),
                last_refusal: None,
            },
        );
        self.metrics.count_report(&cluster.name, "accepted");
        tracing::info!(cluster = %cluster.name, generation, "report accepted");
        self.refresh_liveness_nodes();
        self.liveness_wake.notify_one();
        if changes_desired {
            self.reconcile.notify_one();
        }
        Ok(ReportAccepted {
            cluster: cluster.name.clone(),
            generation,
            duplicate: false,
            warnings,
        })
    }

    /// Takes one report from `cluster`'s token bucket (`agent.report_burst` deep, refilled at
    /// `agent.reports_per_minute`), or says when the next one would be admitted.
    pub fn admit_report(&self, cluster: &str) -> Result<(), ApiError> {
        let site = self.site();
        let rate = f64::from(site.agent.reports_per_minute.max(1)) / 60.0;
        let burst = f64::from(site.agent.report_burst.max(1));
        let now = Instant::now();
        let mut buckets = lock(&self.report_buckets);
        let (tokens, at) = buckets.entry(cluster.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::Throttled {
                cluster: cluster.to_string(),
                retry_after: Duration::from_secs_f64((1.0 - *tokens) / rate),
            })
        }
    }

    /// Records a refused request (nothing else changes).
    pub fn refused(&self, cluster: &str, error: &ApiError) {
        let message = match error {
            ApiError::Invalid { problems, .. } => format!(
                "{error}: {}",
                problems
                    .iter()
                    .map(|p| format!("{}: {}", p.path, p.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            _ => error.to_string(),
        };
        let known = self.site().cluster(cluster).is_some();
        let label = if known { cluster } else { "unknown" };
        let throttled = matches!(error, ApiError::Throttled { .. });
        self.metrics
            .count_report(label, if throttled { "throttled" } else { "refused" });
        if throttled {
            // Its last refusal stays what it was; one event a minute at most says it.
            tracing::debug!(%cluster, "report throttled");
            if lock(&self.refusals)
                .get(&format!("{label}/throttled"))
                .is_some_and(|(start, _)| start.elapsed() < Duration::from_secs(60))
            {
                self.metrics.events_suppressed.inc();
                return;
            }
            lock(&self.refusals).insert(format!("{label}/throttled"), (Instant::now(), 1));
            tracing::warn!(%cluster, %message, "reports throttled (logged once a minute)");
            let _ = self
                .store
                .get()
                .event("report-throttled", &format!("cluster {cluster}: {message}"));
            return;
        }
        tracing::warn!(%cluster, %message, "report refused");
        if known {
            self.clusters()
                .entry(cluster.to_string())
                .or_default()
                .last_refusal = Some(message.clone());
        }
        // What one client's refused requests can write is bounded: identical refusals are
        // counted on one event, and at most REFUSALS_PER_MINUTE events per cluster label.
        if self.refusal_budget(label) {
            let _ = self
                .store
                .get()
                .event("report-refused", &format!("cluster {cluster}: {message}"));
        } else {
            self.metrics.events_suppressed.inc();
        }
    }

    /// Whether a refusal of `label` may still be written this minute.
    fn refusal_budget(&self, label: &str) -> bool {
        let mut budget = lock(&self.refusals);
        let now = Instant::now();
        let (start, count) = budget.entry(label.to_string()).or_insert((now, 0));
        if now.duration_since(*start) >= Duration::from_secs(60) {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= REFUSALS_PER_MINUTE
    }

    /// The VIPs of cluster `cluster`'s last accepted report.
    pub fn reported_vips(&self, cluster: &str) -> std::collections::BTreeSet<IpAddr> {
        self.clusters()
            .get(cluster)
            .and_then(|s| s.report.as_ref())
            .map(|r| {
                r.services
                    .iter()
                    .flat_map(|s| s.ips.iter())
                    .filter_map(|ip| ip.split('/').next()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The desired FRR configuration from the site and the accepted reports, for the FRR
    /// release that runs.
    pub async fn desired(&self) -> String {
        let frr = self.vtysh.frr_version().await.unwrap_or_default();
        let clusters = self.clusters();
        let accepted = clusters
            .iter()
            .filter_map(|(name, s)| s.checked.as_ref().map(|c| (name.as_str(), c)));
        let ecmp = checks::ecmp_proven(lock(&self.ecmp).as_ref());
        let mut inputs = report::inputs(&self.site(), lock(&self.password).clone(), ecmp, accepted);
        inputs.frr = frr;
        desired::render(&self.site(), &inputs)
    }

    fn stale_after(&self) -> Duration {
        Duration::from_secs(self.site().agent.report_stale_after)
    }

    pub async fn status(&self) -> AgentStatus {
        let (generation, last_failure) = self.store.blocking(|store| {
            (
                store.current().ok().flatten().map(|g| g.number),
                store.history(1).ok().and_then(|h| h.into_iter().next()),
            )
        });
        let last_apply_error = match &*self.last_apply.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(Err(e)) => Some(e.clone()),
            _ => last_failure
                .filter(|g| {
                    g.outcome == crate::store::Outcome::Failed && Some(g.number) > generation
                })
                .and_then(|g| g.error),
        }
        .map(|e| crate::redact::redact(&e));
        let site = self.site();
        let clusters = site
            .clusters
            .iter()
            .map(|c| {
                let s = self.clusters().get(&c.name).cloned().unwrap_or_default();
                let age = s.age();
                ClusterStatus {
                    name: c.name.clone(),
                    report_generation: s.generation,
                    report_age_seconds: age,
                    stale: age.is_some_and(|a| a > self.stale_after().as_secs()),
                    last_refusal: s.last_refusal.clone(),
                    nodes: s.checked.as_ref().map_or(c.nodes.len(), |k| k.nodes.len()),
                    services: s.report.as_ref().map_or(0, |r| r.services.len()),
                    warnings: s
                        .checked
                        .as_ref()
                        .map(|k| k.warnings.clone())
                        .unwrap_or_default(),
                }
            })
            .collect();
        let (peers, frr_error, frr_version) = match self.cached_status().await {
            Ok(s) => (s.peers, s.frr_error, s.frr_version),
            Err(e) => (Vec::new(), Some(e.to_string()), None),
        };
        let kernel_checks = match &*lock(&self.validation) {
            Some(Ok(v)) => v
                .checks
                .iter()
                .map(|c| bgplb_proto::Check {
                    name: c.name.to_string(),
                    ok: c.ok,
                    warning: c.warning,
                    details: c.details.clone(),
                })
                .collect(),
            Some(Err(e)) => vec![bgplb_proto::Check {
                name: "kernel".into(),
                ok: false,
                warning: false,
                details: vec![e.clone()],
            }],
            None => Vec::new(),
        };
        let nodes = self
            .liveness
            .view()
            .into_iter()
            .map(|v| bgplb_proto::NodeLiveness {
                addresses: v.addresses.iter().map(|a| a.to_string()).collect(),
                since: Some(liveness::format_unix_ms(v.since_unix_ms)),
                probe_rtt_ms: v.rtt.map(|d| d.as_secs_f64() * 1000.0),
                state: v.state.as_str().into(),
                reason: v.reason,
                transitions: v.transitions,
                answered: v.answered,
                suppressed: v.suppressed,
                cluster: v.cluster,
                node: v.node,
            })
            .collect();
        let unsaved = self.store.blocking(|s| s.unsaved()).ok().flatten();
        let pinned = self
            .store
            .get()
            .pinned()
            .ok()
            .flatten()
            .map(|p| p.to_string());
        AgentStatus {
            pinned,
            unsaved,
            store_problem: lock(&self.store_problem).clone(),
            nodes,
            kernel_checks,
            gateway: self.site().gateway.name.clone(),
            asn: self.site().gateway.asn,
            generation,
            last_apply_error,
            frr_error,
            frr_version,
            clusters,
            peers: peers
                .iter()
                .map(|p| PeerStatus {
                    cluster: p.cluster.clone(),
                    node: p.node.clone(),
                    family: p.family.to_string(),
                    address: p.address.clone(),
                    state: p.state.clone(),
                    accepted: p.accepted,
                })
                .collect(),
        }
    }

    /// The status page: FRR's view (cached like scrapes), the reports' pools and VIPs, the last
    /// kernel checks, node liveness, the newest generations and events.
    pub async fn page(&self) -> String {
        let mut s = match self.cached_status().await {
            Ok(s) => s,
            Err(e) => {
                let site = self.site();
                status::Status::unread(&site.gateway.name, site.gateway.asn, e.to_string())
            }
        };
        if let Some(p) = lock(&self.store_problem).clone() {
            s.store_problem = Some(p);
        }
        s.liveness = self
            .liveness
            .view()
            .iter()
            .map(status::NodeView::from)
            .collect();
        if let Some(Ok(v)) = &*lock(&self.validation) {
            s.kernel = Some(v.clone());
        }
        let clusters = self.clusters();
        for view in &mut s.clusters {
            if let Some(c) = clusters.get(&view.name).and_then(|c| c.checked.as_ref()) {
                view.warnings = c.warnings.clone();
            }
        }
        let (generations, events) = self.store.blocking(|store| {
            (
                store.history(PAGE_GENERATIONS).unwrap_or_default(),
                store.events(PAGE_EVENTS).unwrap_or_default(),
            )
        });
        let page = crate::page::Page {
            status: &s,
            generations: &generations,
            events: &events,
            at: crate::store::now(),
        };
        crate::redact::redact(&crate::page::html(&page, Some(PAGE_REFRESH_SECS)))
    }

    /// A fresh read of FRR (several vtysh runs); also refreshes the cache scrapes use.
    async fn collect_status(&self) -> Result<status::Status, Error> {
        let mut generations = self.store.blocking(|s| status::Generations::read(s))?;
        generations.store_problem = lock(&self.store_problem).clone();
        let site = self.site();
        let s = status::collect(
            generations,
            &self.vtysh,
            &site.gateway.name,
            site.gateway.asn,
        )
        .await;
        *lock(&self.status_cache) = Some((Instant::now(), s.clone()));
        Ok(s)
    }

    /// FRR's status no older than STATUS_TTL: scrapes of `/metrics`, `/readyz` and
    /// `/v1/status` do not each cost a round of vtysh runs.
    async fn cached_status(&self) -> Result<status::Status, Error> {
        if let Some((at, s)) = lock(&self.status_cache).as_ref() {
            if at.elapsed() < STATUS_TTL {
                return Ok(s.clone());
            }
        }
        self.collect_status().await
    }

    /// Why the agent is not ready, if it is not: FRR must answer and the last reconcile succeed.
    pub async fn not_ready(&self) -> Option<String> {
        match self.cached_status().await {
            Err(e) => return Some(e.to_string()),
            Ok(s) => {
                if let Some(e) = s.frr_error {
                    return Some(e);
                }
            }
        }
        match &*self.last_apply.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Some("the first reconcile has not finished".into()),
            Some(Err(e)) => Some(format!("the last reconcile failed: {e}")),
            Some(Ok(())) => None,
        }
    }

    /// Refreshes the gauges that describe FRR and the reports.
    pub async fn refresh_metrics(&self) {
        match self.cached_status().await {
            Ok(s) if s.frr_error.is_none() => {
                self.metrics.frr_up.set(1);
                self.metrics.set_peers(&s.peers);
            }
            _ => {
                self.metrics.frr_up.set(0);
                self.metrics.set_peers(&[]);
            }
        }
        if let Ok(Some(g)) = self.store.blocking(|s| s.current()) {
            self.metrics.generation.set(g.number);
        }
        if let Ok(unsaved) = self.store.blocking(|s| s.unsaved()) {
            self.metrics
                .frr_config_saved
                .set(i64::from(unsaved.is_none()));
        }
        // A rollback is the CLI's (another process): the daemon sees only the pin it leaves.
        if let Ok(pinned) = self.store.blocking(|s| s.pinned()) {
            self.metrics
                .generation_pinned
                .set(i64::from(pinned.is_some()));
        }
        self.metrics.set_liveness(&self.liveness.view());
        self.metrics.pool_used.clear();
        self.metrics.pool_total.clear();
        for (name, s) in self.clusters().iter() {
            if let Some(age) = s.age() {
                let age = i64::try_from(age).unwrap_or(i64::MAX);
                let label = ClusterLabel {
                    cluster: name.clone(),
                };
                self.metrics
                    .report_age_seconds
                    .get_or_create(&label)
                    .set(age);
                self.metrics
                    .report_stale
                    .get_or_create(&label)
                    .set(i64::from(age as u64 > self.stale_after().as_secs()));
            }
            self.metrics
                .report_warnings
                .get_or_create(&ClusterLabel {
                    cluster: name.clone(),
                })
                .set(s.checked.as_ref().map_or(0, |c| c.warnings.len() as i64));
            for pool in s.report.iter().flat_map(|r| r.pools.iter()) {
                let labels = PoolLabels {
                    cluster: name.clone(),
                    pool: pool.name.clone(),
                };
                self.metrics
                    .pool_used
                    .get_or_create(&labels)
                    .set(pool.used as i64);
                self.metrics
                    .pool_total
                    .get_or_create(&labels)
                    .set(pool.total as i64);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl App {
    /// The kernel's side: the segment re-asserted, then every check run again (with FRR's side
    /// from the last full read unless `frr` brings a fresh one).
    async fn kernel_pass(&self, frr: Option<status::Status>) {
        if let Some(s) = frr {
            *lock(&self.last_frr) = Some(s);
        }
        let Some(kernel) = &self.kernel else { return };
        if let Err(e) = netcheck::reconcile_segment(kernel, &self.site(), false).await {
            tracing::error!(error = %e, "segment reconcile failed");
            let _ = self
                .store
                .blocking(|s| s.event("segment-failed", &e.to_string()));
        }
        let frr = lock(&self.last_frr).clone();
        let Some(frr) = frr else { return };
        let reports: Vec<Report> = self
            .clusters()
            .values()
            .filter_map(|s| s.report.clone())
            .collect();
        let ecmp = lock(&self.ecmp).clone();
        let facts = netcheck::LivenessFacts {
            nodes: self.liveness.view(),
            overlay: self.liveness.overlay(),
            probing: self.site().liveness.enabled,
        };
        let mut result = netcheck::validate(kernel, &self.site(), ecmp, &frr, &reports, &facts)
            .await
            .map_err(|e| e.to_string());
        if let Ok(v) = &mut result {
            let ownership = lock(&self.ownership).check(Instant::now());
            v.ok &= ownership.ok;
            v.checks.push(ownership);
            let store = match lock(&self.store_problem).clone() {
                Some(why) => Check::new("state-store", false, vec![why]),
                None => Check::new(
                    "state-store",
                    true,
                    vec!["the state database can record applies".into()],
                ),
            };
            v.ok &= store.ok;
            v.checks.push(store);
            if self.site().agent.unifi.is_some() {
                let current = self
                    .store
                    .blocking(|s| s.current())
                    .ok()
                    .flatten()
                    .map(|g| g.hash);
                let sync = lock(&self.unifi);
                let check = match (&sync.last_error, sync.in_sync(current.as_deref())) {
                    (_, true) => Check::new(
                        "unifi-copy",
                        true,
                        vec!["the controller's BGP configuration is the current generation's".into()],
                    ),
                    (Some(e), false) => Check::new(
                        "unifi-copy",
                        false,
                        vec![format!(
                            "the controller's BGP configuration is behind: the last upload failed: {e}; \
                             a re-provision would drop bgplb's part until the agent re-applies it"
                        )],
                    ),
                    (None, false) => Check::warn(
                        "unifi-copy",
                        vec!["the current generation is waiting for its upload (agent.unifi.min_interval)".into()],
                    ),
                };
                v.ok &= check.ok;
                v.checks.push(check);
            }
        }
        if let Ok(v) = &result {
            self.metrics.set_validation(v);
            for c in v.checks.iter().filter(|c| !c.ok) {
                tracing::warn!(check = c.name, details = ?c.details, "check failed");
            }
        }
        *lock(&self.validation) = Some(result);
    }
}

/// Applies whenever a report is accepted (debounced) and every `drift_check_interval`; re-runs
/// the kernel side when the kernel reports a change (links, addresses, routes, neighbours).
async fn reconciler(
    app: Arc<App>,
    mut applier: Applier,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick =
        tokio::time::interval(Duration::from_secs(app.site().agent.drift_check_interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events = match Kernel::events(interest(&app.site())) {
        Ok(rx) => Some(rx),
        Err(e) => {
            tracing::error!(error = %e, "cannot watch kernel events; checking on the drift interval only");
            None
        }
    };
    let ecmp = match &app.kernel {
        Some(kernel) => checks::ecmp_decision(&kernel.probe_ecmp().await),
        None => checks::ecmp_unknown("netlink could not be opened"),
    };
    if !ecmp.supported {
        tracing::warn!(reason = %ecmp.reason, "no multipath: FRR gets maximum-paths 1");
    }
    app.metrics.ecmp_supported.set(i64::from(ecmp.supported));
    *lock(&app.ecmp) = Some(ecmp);
    let mut backoff: Option<Backoff> = None;
    loop {
        let source = tokio::select! {
            _ = app.reconcile.notified() => {
                tokio::time::sleep(DEBOUNCE).await;
                Source::Report
            }
            _ = tick.tick() => Source::Daemon,
            _ = app.frr_changed.notified() => Source::Daemon,
            Some(()) = async { match events.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                // Let a burst of changes settle, then look at the kernel only.
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Some(rx) = events.as_mut() {
                    while rx.try_recv().is_ok() {}
                }
                app.metrics.kernel_passes.inc();
                app.kernel_pass(None).await;
                continue;
            }
            _ = shutdown.changed() => return,
        };
        // The operator's edits of the site file win over what the daemon read at start-up.
        app.reload_site();
        if let Some(kernel) = &app.kernel {
            if let Err(e) = netcheck::reconcile_segment(kernel, &app.site(), false).await {
                tracing::error!(error = %e, "segment reconcile failed");
            }
        }
        // A rollback pins its generation: keep it (re-assert it on drift) until unpinned.
        let pinned = app.store.blocking(|store| {
            store
                .pinned()
                .ok()
                .flatten()
                .and_then(|p| store.get(p.generation).ok().flatten())
        });
        let (text, restores) = match pinned {
            Some(g) => (g.config, Some(g.number)),
            None => (app.desired().await, None),
        };
        // Something keeps undoing bgplb's configuration: the agent stopped fighting it and
        // writes nothing until FRR runs bgplb's configuration again (`bgplb-agent apply`).
        if lock(&app.ownership).fighting() {
            tracing::debug!("not applying: stopped fighting whatever rewrites FRR");
            let frr = app.collect_status().await.ok();
            app.kernel_pass(frr).await;
            continue;
        }
        // The same configuration failed before: wait out the backoff (each failure records a
        // generation row and an event; retrying every tick would fill the disk).
        let hash = crate::apply::hash(&text);
        if let Some(b) = backoff.as_ref().filter(|b| b.hash == hash) {
            if Instant::now() < b.until {
                tracing::debug!(retry_in = ?b.until - Instant::now(), "the same configuration failed before: backing off");
                let frr = app.collect_status().await.ok();
                app.kernel_pass(frr).await;
                continue;
            }
        }
        let result = {
            // The overlay is read under the write lock, so the fast path never plans from an
            // overlay FRR was not given.
            let mut given = app.frr_write.lock().await;
            let overlay = app.liveness.overlay();
            let result = applier.apply(&text, &overlay, source, restores).await;
            // Applied, or rolled back to the current generation: either way with this overlay.
            *given = overlay;
            let base = app
                .store
                .blocking(|s| s.current())
                .ok()
                .flatten()
                .map(|g| g.config);
            *lock(&app.applied_base) = base;
            result
        };
        // Whether an apply could be recorded now (status, metrics, the `state-store` check).
        let store_problem = match &result {
            Err(e @ Error::StoreUnwritable { .. }) => Some(e.to_string()),
            _ => app
                .store
                .blocking(|s| s.writable(crate::apply::RECORD_RESERVE))
                .err()
                .map(|e| e.to_string()),
        };
        app.metrics
            .store_writable
            .set(i64::from(store_problem.is_none()));
        *lock(&app.store_problem) = store_problem;
        backoff = match (&result, backoff.take()) {
            (Ok(_), _) => None,
            // Nothing was recorded or applied: retry on every tick until the space is back.
            (Err(Error::StoreUnwritable { .. }), _) => None,
            (Err(_), Some(b)) if b.hash == hash => {
                let delay = (b.delay * 2).min(BACKOFF_MAX);
                Some(Backoff {
                    hash,
                    until: Instant::now() + delay,
                    delay,
                })
            }
            (Err(_), _) => Some(Backoff {
                hash,
                until: Instant::now() + BACKOFF_FIRST,
                delay: BACKOFF_FIRST,
            }),
        };
        let outcome = match &result {
            Ok(Applied::Unchanged { .. }) => {
                app.metrics.count_apply("unchanged");
                Ok(())
            }
            Ok(Applied::Applied {
                generation,
                changes,
                ..
            }) => {
                app.unifi_wake.notify_one();
                app.metrics.count_apply("applied");
                app.metrics.generation.set(*generation);
                tracing::info!(generation, changes, source = source.as_str(), "reconciled");
                Ok(())
            }
            Err(e) => {
                app.metrics.count_apply("failed");
                let e = crate::redact::redact(&e.to_string());
                tracing::error!(error = %e, "reconcile failed; keeping the last good generation");
                Err(e)
            }
        };
        *app.last_apply.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        let frr = app.collect_status().await.ok();
        if let Some(s) = &frr {
            app.flood_guard(s);
        }
        app.kernel_pass(frr).await;
    }
}

/// The controller's copy (`[agent.unifi]`): uploads the current generation's configuration when
/// it differs from what the controller took last, at most once per `min_interval`. Never the
/// overlay: a node failing over changes no generation and uploads nothing.
async fn unifi_sync(app: Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut uploader: Option<(bgplb_site::UnifiSettings, crate::unifi::Uploader)> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = app.unifi_wake.notified() => {}
            _ = shutdown.changed() => return,
        }
        let Some(settings) = app.site().agent.unifi.clone() else {
            uploader = None;
            app.metrics.unifi_in_sync.set(0);
            continue;
        };
        if uploader.as_ref().is_none_or(|(s, _)| *s != settings) {
            match crate::unifi::Uploader::new(&settings) {
                Ok(u) => uploader = Some((settings.clone(), u)),
                Err(e) => {
                    let mut sync = lock(&app.unifi);
                    if sync.last_error.as_deref() != Some(e.as_str()) {
                        tracing::error!(error = %e, "cannot upload to the UniFi controller");
                    }
                    sync.last_error = Some(e);
                    continue;
                }
            }
        }
        let Some((_, up)) = uploader.as_ref() else {
            continue;
        };
        let Some(current) = app.store.blocking(|s| s.current()).ok().flatten() else {
            continue;
        };
        let due = lock(&app.unifi).due(
            &current.hash,
            Duration::from_secs(settings.min_interval),
            Instant::now(),
        );
        if !due {
            let in_sync = lock(&app.unifi).in_sync(Some(&current.hash));
            app.metrics.unifi_in_sync.set(i64::from(in_sync));
            continue;
        }
        lock(&app.unifi).last_attempt = Some(Instant::now());
        let result = up.upload(&current.config).await;
        let mut sync = lock(&app.unifi);
        match result {
            Ok(()) => {
                sync.uploaded = Some(current.hash.clone());
                sync.last_error = None;
                drop(sync);
                app.metrics
                    .unifi_uploads
                    .get_or_create(&crate::metrics::ResultLabel {
                        result: "ok".into(),
                    })
                    .inc();
                app.metrics.unifi_in_sync.set(1);
                tracing::info!(
                    generation = current.number,
                    "uploaded to the UniFi controller's BGP configuration"
                );
                let _ = app.store.blocking(|s| {
                    s.event(
                        "unifi-uploaded",
                        &format!(
                            "generation {} uploaded as the UniFi controller's BGP configuration",
                            current.number
                        ),
                    )
                });
            }
            Err(e) => {
                let e = crate::redact::redact(&e);
                let repeated = sync.last_error.as_deref() == Some(e.as_str());
                sync.last_error = Some(e.clone());
                drop(sync);
                app.metrics
                    .unifi_uploads
                    .get_or_create(&crate::metrics::ResultLabel {
                        result: "failed".into(),
                    })
                    .inc();
                app.metrics.unifi_in_sync.set(0);
                tracing::warn!(error = %e, "upload to the UniFi controller failed; retrying after agent.unifi.min_interval");
                if !repeated {
                    let _ = app.store.blocking(|s| {
                        s.event(
                            "unifi-upload-failed",
                            &format!("generation {}: {e}", current.number),
                        )
                    });
                }
            }
        }
    }
}

/// What FRR was last given: the current generation with the overlay on top. None while a
/// writer holds the lock (it is changing FRR) or before the first apply.
fn given(app: &App) -> Option<(Overlay, String)> {
    let overlay = app.frr_write.try_lock().ok()?.clone();
    let base = lock(&app.applied_base).clone()?;
    Some((overlay, base))
}

/// The FRR watch: reads bgpd's running configuration from its vty socket every
/// `watch_interval_ms` (a few milliseconds, no vtysh process) and compares bgplb's part with
/// what the agent gave FRR. bgpd restarted from a file without it, a controller reloading FRR,
/// an edit by hand: the reconciler re-applies at once, up to the fight limit (see
/// [`crate::ownership`]). A generation applied by the CLI is adopted, not fought.
async fn frr_watch(app: Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut pid = app.vtysh.bgpd_pid();
    // The digest of the last running configuration found in order, and bgpd's pid then.
    let mut in_order: Option<([u8; 32], Option<u32>)> = None;
    loop {
        let every = app.site().agent.frr.watch_interval_ms;
        let wait = Duration::from_millis(if every == 0 { 5000 } else { every });
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if every == 0 {
            continue;
        }
        let Some(before) = given(&app) else { continue };
        // A CLI `apply` or `rollback` holds the agent's lock from its plan until its generation
        // is recorded, so FRR can run a generation the store does not list yet: look again once
        // it is done. Held until the comparison is over (the daemon's own applies wait for it).
        let _cli = match crate::files::try_lock(&app.site().agent.data_dir.join("agent.lock")) {
            Ok(Some(held)) => Some(held),
            Ok(None) => continue,
            // No lock to take (a read-only /data): nothing can apply, so compare.
            Err(_) => None,
        };
        let Ok(text) = app.vtysh.bgpd_running(Duration::from_secs(2)).await else {
            // bgpd is down (or busy): the reconciler and status say so; look again.
            continue;
        };
        let now_pid = app.vtysh.bgpd_pid();
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if in_order == Some((digest, now_pid)) {
            continue;
        }
        // A writer that finished while FRR was read makes the comparison meaningless.
        if given(&app).as_ref() != Some(&before) {
            continue;
        }
        let (overlay, base) = before;
        let rest = match bgplb_frr::plan::plan(
            &overlay.owned(&base),
            &bgplb_frr::Owned::from_text(&text),
        ) {
            Ok(rest) => rest,
            Err(e) => {
                tracing::warn!(error = %e, "FRR watch: cannot compare the running configuration");
                continue;
            }
        };
        let restarted = pid.is_some() && now_pid.is_some() && now_pid != pid;
        let old_pid = std::mem::replace(&mut pid, now_pid);
        if rest.is_empty() {
            in_order = Some((digest, now_pid));
            if lock(&app.ownership).restored() {
                tracing::info!("FRR runs bgplb's configuration again: re-applying resumes");
                app.metrics.frr_fight.set(0);
                let _ = app.store.blocking(|s| {
                    s.event(
                        "frr-fight-over",
                        "FRR runs bgplb's configuration again; the agent re-applies changes again",
                    )
                });
            }
            continue;
        }
        in_order = None;
        // The CLI (`bgplb-agent apply`, `rollback`) applied another generation: adopt it.
        let current = app
            .store
            .blocking(|s| s.current())
            .ok()
            .flatten()
            .map(|g| g.config);
        if current.as_ref().is_some_and(|c| *c != base) {
            tracing::info!("FRR watch: a generation applied outside the daemon; reconciling");
            *lock(&app.applied_base) = current;
            app.frr_changed.notify_one();
            continue;
        }
        let cause = if restarted {
            "bgpd-restarted"
        } else {
            "edited"
        };
        let shown: Vec<String> = rest.changes.iter().take(3).map(|c| c.to_string()).collect();
        let what = format!(
            "{} ({} line(s) differ: {})",
            if restarted {
                format!(
                    "bgpd restarted (pid {} to {}) without bgplb's configuration",
                    old_pid.unwrap_or(0),
                    now_pid.unwrap_or(0)
                )
            } else {
                "bgplb's part of FRR's running configuration was changed (a reload from a file \
                 without it, or an edit through vtysh)"
                    .to_string()
            },
            rest.changes.len(),
            shown.join(" | ")
        );
        app.metrics
            .frr_changed
            .get_or_create(&crate::metrics::CauseLabel {
                cause: cause.into(),
            })
            .inc();
        let verdict = lock(&app.ownership).changed(Instant::now(), &what);
        match verdict {
            Verdict::Reapply => {
                tracing::warn!(%what, "FRR changed by someone else: re-applying");
                let _ = app.store.blocking(|s| s.event("frr-changed", &what));
                app.frr_changed.notify_one();
            }
            Verdict::Fight(why) => {
                tracing::error!(%why, "stopped re-applying");
                app.metrics.frr_fight.set(1);
                let _ = app.store.blocking(|s| s.event("frr-fight", &why));
                app.frr_changed.notify_one();
            }
            Verdict::Fighting => {}
        }
    }
}

impl App {
    /// Shuts every node that sent more routes than `bgp.maximum_prefix`, refused ones included.
    fn flood_guard(&self, status: &status::Status) {
        let limit = self.site().bgp.maximum_prefix;
        let mut any = false;
        for p in status
            .peers
            .iter()
            .filter(|p| p.received > u64::from(limit))
        {
            tracing::warn!(cluster = %p.cluster, node = %p.node, neighbor = %p.address, received = p.received, limit, "too many routes: shutting the node's sessions");
            self.liveness.flooded(
                now_ms(),
                &p.cluster,
                &p.node,
                p.received,
                limit,
                u64::from(self.site().bgp.maximum_prefix_restart),
            );
            any = true;
        }
        if any {
            self.liveness_wake.notify_one();
        }
    }
}

/// Follows the site file: checked every two seconds and on SIGHUP; a valid change wakes the
/// reconciler (which checks again before every apply, so a CLI `apply` after an edit and the
/// daemon never disagree).
async fn site_watch(app: Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut poll = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = poll.tick() => {}
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                tracing::info!("SIGHUP: checking the site file");
            }
            _ = shutdown.changed() => return,
        }
        if app.reload_site() {
            app.reconcile.notify_one();
        }
    }
}

/// Probes the nodes every `interval_ms` and acts on what the probes and the reports say.
async fn liveness_task(app: Arc<App>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    // The prober for the settings in force; opened again when the site file changes them.
    let open = |settings: &bgplb_site::LivenessSettings| {
        if !settings.enabled {
            return None;
        }
        match liveness::probe::Prober::new(settings.method, settings.tcp_port) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "node liveness probing is off");
                let _ = app
                    .store
                    .blocking(|s| s.event("liveness-off", &e.to_string()));
                None
            }
        }
    };
    let mut settings = app.liveness.settings();
    let mut prober = open(&settings);
    // Besides every change, the liveness is persisted this often (for `status` outside the
    // daemon: round-trip times, last answers).
    const PERSIST_EVERY: Duration = Duration::from_secs(30);
    let mut persisted = Instant::now();
    loop {
        let now = app.liveness.settings();
        if (now.enabled, now.method, now.tcp_port)
            != (settings.enabled, settings.method, settings.tcp_port)
        {
            prober = open(&now);
        }
        settings = now;
        let interval = Duration::from_millis(settings.interval_ms);
        let targets = app.liveness.targets();
        let round = async {
            match prober.as_mut() {
                Some(p) => Some(p.round(&targets, interval).await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            answers = round => {
                let answers = answers.unwrap_or_default();
                let first = app.liveness.observe(now_ms(), &answers);
                let due = persisted.elapsed() >= PERSIST_EVERY;
                if first || due {
                    persisted = Instant::now();
                }
                app.liveness_changed(first || due).await;
            }
            _ = app.liveness_wake.notified() => app.liveness_changed(false).await,
            _ = shutdown.changed() => return,
        }
    }
}

impl App {
    /// Re-evaluates every node; on a change, gives FRR the new overlay through the fast path,
    /// records the transitions and persists the liveness (also when `persist` asks for it).
    async fn liveness_changed(&self, persist: bool) {
        let now = now_ms();
        let step = self.liveness.step(now);
        if let Some(step) = &step {
            for t in &step.transitions {
                tracing::warn!(cluster = %t.cluster, node = %t.node, to = t.to.as_str(), reason = %t.reason, "node liveness changed");
            }
            // FRR first: the events and SQLite (an fsync) wait until the routes have moved.
            if step.before != step.after {
                self.fast_path().await;
            }
            for t in &step.transitions {
                let message = format!(
                    "cluster {} node {}: {} -> {}{}",
                    t.cluster,
                    t.node,
                    t.from.as_str(),
                    t.to.as_str(),
                    if t.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", t.reason)
                    }
                );
                self.metrics
                    .count_transition(&t.cluster, &t.node, t.to.as_str());
                let _ = self
                    .store
                    .get()
                    .event(&format!("node-{}", t.to.as_str()), &message);
            }
        }
        if step.is_some() || persist {
            let snapshot = self.liveness.snapshot();
            let overlay = self.liveness.overlay();
            let store = self.store.clone();
            let saved = tokio::task::spawn_blocking(move || {
                liveness::save(&mut store.get(), &snapshot, &overlay)
            })
            .await;
            if let Ok(Err(e)) = saved {
                tracing::error!(error = %e, "cannot persist node liveness");
            }
        }
    }

    /// Gives FRR the tracker's overlay by writing only the changed lines to bgpd's vty socket.
    /// On failure the reconciler applies it the slow way; either way it then verifies that FRR
    /// runs the current generation with the overlay.
    async fn fast_path(&self) {
        let mut given = self.frr_write.lock().await;
        let want = self.liveness.overlay();
        if *given == want {
            return;
        }
        let started = Instant::now();
        let base = lock(&self.applied_base).clone();
        let result = match &base {
            None => Err("no generation applied yet".to_string()),
            Some(base) => match want.changes_from(&given, base) {
                Ok(plan) if plan.is_empty() => Ok(()),
                Ok(plan) => self
                    .vtysh
                    .bgpd_config(&plan.script())
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        let elapsed = started.elapsed();
        match &result {
            Ok(()) => {
                *given = want;
                self.metrics.observe_fast_path("ok", elapsed);
                tracing::info!(
                    ms = elapsed.as_secs_f64() * 1000.0,
                    "liveness overlay written to bgpd"
                );
            }
            Err(e) => {
                self.metrics.observe_fast_path("failed", elapsed);
                let e = crate::redact::redact(e);
                tracing::error!(error = %e, "liveness fast path failed; the reconciler applies the overlay");
                let _ = self
                    .store
                    .blocking(|s| s.event("liveness-fast-path-failed", &e));
            }
        }
        drop(given);
        self.reconcile.notify_one();
    }
}

/// Runs the daemon until SIGINT or SIGTERM, following edits of the site file at `site_path`.
pub async fn run(site: Site, site_path: PathBuf) -> Result<(), Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = site.agent.clone();
    crate::files::private_dir(&settings.data_dir)?;
    crate::files::private_dir(&settings.data_dir.join("frr"))?;
    let store = SharedStore::new(Store::open(&settings.data_dir.join("state.db"))?);
    let vtysh = Vtysh::new(&settings.frr);
    let password = desired::site_inputs(&site)?.password;
    let applier = Applier::with_store(
        &settings.data_dir,
        vtysh.clone(),
        settings.frr.save,
        Duration::from_secs(60),
        store.clone(),
    )
    .retaining(settings.retention.clone());
    let kernel = match Kernel::connect() {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::error!(error = %e, "no netlink: the LB segment is not managed");
            None
        }
    };
    let app = Arc::new(App::new(
        site,
        Some(site_path),
        password,
        store,
        vtysh,
        kernel,
    ));

    let tls_config = tls::server_config(&settings.tls)?;
    let rustls = axum_server::tls_rustls::RustlsConfig::from_config(tls_config);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    {
        let app = app.clone();
        tokio::spawn(tls::reload_loop(
            settings.tls.clone(),
            rustls.clone(),
            Duration::from_secs(5),
            move |r| match r {
                Ok(()) => {
                    app.metrics
                        .tls_reloads
                        .get_or_create(&crate::metrics::ResultLabel {
                            result: "ok".into(),
                        })
                        .inc();
                    tracing::info!("TLS files reloaded");
                }
                Err(e) => {
                    app.metrics
                        .tls_reloads
                        .get_or_create(&crate::metrics::ResultLabel {
                            result: "failed".into(),
                        })
                        .inc();
                    tracing::error!(error = %e, "TLS files changed but cannot be loaded; keeping the previous ones");
                    let _ = app
                        .store
                        .blocking(|s| s.event("tls-reload-failed", &e.to_string()));
                }
            },
        ));
    }
    let reconcile = tokio::spawn(reconciler(app.clone(), applier, stop_rx.clone()));
    tokio::spawn(frr_watch(app.clone(), stop_rx.clone()));
    tokio::spawn(unifi_sync(app.clone(), stop_rx.clone()));
    tokio::spawn(site_watch(app.clone(), stop_rx.clone()));
    tokio::spawn(liveness_task(app.clone(), stop_rx.clone()));

    if let Some(addr) = settings.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        let router = api::plain_router().with_state(app.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
        });
        tracing::info!(%addr, "health and metrics listening");
    }

    let router = api::tls_router(app.clone()).layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                StatusCode::REQUEST_TIMEOUT
            }))
            .timeout(REQUEST_TIMEOUT)
            .concurrency_limit(64),
    );
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
            handle.graceful_shutdown(Some(Duration::from_secs(5)));
        });
    }
    let listen = settings.listen;
    let listener = std::net::TcpListener::bind(listen).map_err(|source| Error::Listen {
        addr: listen,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
    tracing::info!(addr = %listen, "mTLS API listening");
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls)
        .handshake_timeout(Duration::from_secs(10));
    let mut server = axum_server::from_tcp(listener)
        .map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?
        .acceptor(acceptor)
        .handle(handle);
    server
        .http_builder()
        .http1()
        .header_read_timeout(Duration::from_secs(10));
    server
        .serve(router.into_make_service())
        .await
        .map_err(|source| Error::Listen {
            addr: listen,
            source,
        })?;
    let _ = reconcile.await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
