//! Health and metrics over plain HTTP, for the Deployment's probes and a ServiceMonitor.
//!
//! - `/healthz` (liveness): the main loop has run within three heartbeats. A replica that stops
//!   looping is stuck and should be restarted; one that cannot reach an agent is not.
//! - `/readyz` (readiness): the first list of nodes and services has arrived. Standby replicas
//!   are ready too: they watch the same objects and take over as soon as they win the Lease.
//! - `/metrics`: leadership, reports built, deliveries per agent and result, the last accepted
//!   report's time per agent, TLS reloads, and what the watchers hold.
//!
//! Off unless `listen` is set in the configuration (the shipped ConfigMap sets it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub agent: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabel {
    pub agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabel {
    pub version: String,
}

/// What the replica tells its probes and Prometheus; shared by the loop, the senders and the
/// server.
pub struct Telemetry {
    registry: Registry,
    heartbeat: Duration,
    last_loop: Mutex<Instant>,
    synced: AtomicBool,
    pub leading: Gauge,
    pub reports_built: Counter,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub last_accepted_seconds: Family<AgentLabel, Gauge>,
    pub last_generation: Gauge<u64, AtomicU64>,
    pub tls_reloads: Counter,
    pub nodes: Gauge,
    pub services: Gauge,
}

impl Telemetry {
    pub fn new(heartbeat: Duration) -> Arc<Telemetry> {
        let mut registry = Registry::with_prefix("bgplb_companion");
        let t = Telemetry {
            registry: Registry::default(),
            heartbeat,
            last_loop: Mutex::new(Instant::now()),
            synced: AtomicBool::new(false),
            leading: Gauge::default(),
            reports_built: Counter::default(),
            deliveries: Family::default(),
            last_accepted_seconds: Family::default(),
            last_generation: Gauge::default(),
            tls_reloads: Counter::default(),
            nodes: Gauge::default(),
            services: Gauge::default(),
        };
        let info: Family<VersionLabel, Gauge> = Family::default();
        info.get_or_create(&VersionLabel {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .set(1);
        registry.register("build_info", "The companion's version", info);
        registry.register(
            "leader",
            "1 while this replica holds the Lease and reports",
            t.leading.clone(),
        );
        registry.register(
            "reports_built",
            "Reports built from the watched objects (changes and heartbeats)",
            t.reports_built.clone(),
        );
        registry.register(
            "deliveries",
            "Report deliveries per agent and result (accepted, refused, stale, failed)",
            t.deliveries.clone(),
        );
        registry.register(
            "last_accepted_timestamp_seconds",
            "When the agent last accepted a report (Unix time)",
            t.last_accepted_seconds.clone(),
        );
        registry.register(
            "report_generation",
            "The generation of the newest report built",
            t.last_generation.clone(),
        );
        registry.register(
            "tls_reloads",
            "Times the client certificate was reloaded after its files changed",
            t.tls_reloads.clone(),
        );
        registry.register("watched_nodes", "Nodes the watchers hold", t.nodes.clone());
        registry.register(
            "watched_services",
            "Services the watchers hold",
            t.services.clone(),
        );
        Arc::new(Telemetry { registry, ..t })
    }

    /// The main loop came round once more.
    pub fn tick(&self) {
        *self.last_loop.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::SeqCst);
    }

    pub fn delivered(&self, agent: &str, result: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                agent: agent.to_string(),
                result: result.to_string(),
            })
            .inc();
        if result == "accepted" {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            self.last_accepted_seconds
                .get_or_create(&AgentLabel {
                    agent: agent.to_string(),
                })
                .set(now);
        }
    }

    /// Alive: the loop ran within three heartbeats (it wakes at least once per heartbeat).
    pub fn alive(&self) -> Result<(), String> {
        let since = self
            .last_loop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        let limit = self.heartbeat * 3 + Duration::from_secs(5);
        if since > limit {
            return Err(format!(
                "the main loop has not run for {} s (limit {} s)",
                since.as_secs(),
                limit.as_secs()
            ));
        }
        Ok(())
    }

    pub fn ready(&self) -> Result<(), String> {
        if !self.synced.load(Ordering::SeqCst) {
            return Err("waiting for the first list of nodes and services".into());
        }
        Ok(())
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

fn verdict(r: Result<(), String>) -> Response {
    match r {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

pub fn router(t: Arc<Telemetry>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|State(t): State<Arc<Telemetry>>| async move { verdict(t.alive()) }),
        )
        .route(
            "/readyz",
            get(|State(t): State<Arc<Telemetry>>| async move { verdict(t.ready()) }),
        )
        .route(
            "/metrics",
            get(|State(t): State<Arc<Telemetry>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    t.encode(),
                )
            }),
        )
        .with_state(t)
}

/// Binds `addr` (so a taken port fails the start, with its name) and serves in the background.
pub async fn spawn(addr: SocketAddr, t: Arc<Telemetry>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(t)).await {
            tracing::error!(error = %e, "the health and metrics server stopped");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_waits_for_the_first_list_and_liveness_for_a_stuck_loop() {
        let t = Telemetry::new(Duration::from_secs(1));
        assert!(t.ready().is_err());
        t.set_synced();
        assert!(t.ready().is_ok());
        assert!(t.alive().is_ok());
        *t.last_loop.lock().unwrap() = Instant::now() - Duration::from_secs(9);
        let why = t.alive().unwrap_err();
        assert!(why.contains("has not run for 9 s (limit 8 s)"), "{why}");
    }

    #[test]
    fn deliveries_and_the_last_accepted_time_are_exported_per_agent() {
        let t = Telemetry::new(Duration::from_secs(30));
        t.delivered("https://172.29.51.1:7443", "accepted");
        t.delivered("https://172.29.51.1:7443", "failed");
        t.delivered("https://172.29.51.1:7443", "failed");
        let text = t.encode();
        assert!(text.contains(
            "bgplb_companion_deliveries_total{agent=\"https://172.29.51.1:7443\",result=\"failed\"} 2"
        ), "{text}");
        assert!(text.contains("bgplb_companion_last_accepted_timestamp_seconds{agent=\"https://172.29.51.1:7443\"} 1"), "{text}");
        assert!(
            text.contains("bgplb_companion_build_info{version="),
            "{text}"
        );
    }
}
