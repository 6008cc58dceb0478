//! The HTTP API: the companion's report endpoint and status over mutual TLS, health and metrics.
//!
//! `ApiError` is the one place an error becomes an HTTP status and an [`ErrorBody`]. A refused
//! report changes nothing: it is recorded as an event and counted, and the reconciler is not woken.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use axum_server::tls::TlsInfo;
use bgplb_proto::{ErrorBody, Problem, Report, ReportAccepted};

use crate::daemon::App;

/// Largest report accepted (a report for 1000 nodes and services is far below this).
pub const MAX_BODY: usize = 1024 * 1024;

/// Upper bound for one request, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Every way a request fails.
#[derive(Debug)]
pub enum ApiError {
    UnknownCluster(String),
    NoClientCertificate,
    WrongIdentity {
        cluster: String,
        identities: Vec<String>,
    },
    TooLarge,
    BadBody(String),
    Malformed(String),
    WrongType(String),
    Stale {
        cluster: String,
        got: u64,
        have: u64,
    },
    Invalid {
        cluster: String,
        problems: Vec<Problem>,
    },
    /// The cluster sent more reports than `agent.reports_per_minute` allows.
    Throttled {
        cluster: String,
        retry_after: Duration,
    },
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::UnknownCluster(c) => (
                StatusCode::NOT_FOUND,
                "unknown-cluster",
                format!("cluster `{c}` is not in the gateway's site file"),
            ),
            ApiError::NoClientCertificate => (
                StatusCode::UNAUTHORIZED,
                "no-client-certificate",
                "a client certificate is required".into(),
            ),
            ApiError::WrongIdentity {
                cluster,
                identities,
            } => (
                StatusCode::FORBIDDEN,
                "wrong-identity",
                format!(
                    "the client certificate may not report for cluster `{cluster}`: it needs the URI SAN {} and carries [{}]",
                    bgplb_proto::identity(cluster),
                    identities.join(", ")
                ),
            ),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                format!("the report is larger than {MAX_BODY} bytes"),
            ),
            ApiError::BadBody(m) => (StatusCode::BAD_REQUEST, "bad-body", m.clone()),
            ApiError::Malformed(m) => (
                StatusCode::BAD_REQUEST,
                "malformed-json",
                format!("the report is not valid JSON: {m}"),
            ),
            ApiError::WrongType(m) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong-type",
                format!("the report does not have the expected shape: {m}"),
            ),
            ApiError::Stale { cluster, got, have } => (
                StatusCode::CONFLICT,
                "stale-generation",
                format!(
                    "report generation {got} for cluster `{cluster}` is older than the accepted {have}"
                ),
            ),
            ApiError::Invalid { cluster, problems } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-report",
                format!(
                    "the report for cluster `{cluster}` was refused with {} problem(s); nothing was changed",
                    problems.len()
                ),
            ),
            ApiError::Throttled {
                cluster,
                retry_after,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!(
                    "cluster `{cluster}` sends reports faster than agent.reports_per_minute allows; \
                     retry in {} s",
                    retry_after.as_secs().max(1)
                ),
            ),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m.clone()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, message) = self.parts();
        let accepted_generation = match &self {
            ApiError::Stale { have, .. } => Some(*have),
            _ => None,
        };
        let retry_after = match &self {
            ApiError::Throttled { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        let problems = match self {
            ApiError::Invalid { problems, .. } => problems,
            _ => Vec::new(),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: kind.into(),
                message,
                problems,
                accepted_generation,
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (_, kind, message) = self.parts();
        write!(f, "{kind}: {message}")
    }
}

/// The mutual-TLS router: reports and status, plus health and metrics.
pub fn tls_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/clusters/{cluster}/report", put(put_report))
        .route("/v1/status", get(get_status))
        .route(bgplb_proto::PROBE_PATH, axum::routing::post(post_probe))
        .merge(plain_router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// Health and metrics, also served without TLS on `metrics_listen`.
pub fn plain_router() -> Router<Arc<App>> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(page))
}

async fn put_report(
    State(app): State<Arc<App>>,
    Path(cluster): Path<String>,
    tls: Option<Extension<Arc<TlsInfo>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ReportAccepted>), ApiError> {
    let result = receive(&app, &cluster, tls, body).await;
    if let Err(e) = &result {
        app.refused(&cluster, e);
    }
    result.map(|a| (StatusCode::ACCEPTED, Json(a)))
}

async fn receive(
    app: &App,
    cluster: &str,
    tls: Option<Extension<Arc<TlsInfo>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<ReportAccepted, ApiError> {
    let site = app.site();
    let Some(site_cluster) = site.cluster(cluster) else {
        return Err(ApiError::UnknownCluster(cluster.to_string()));
    };
    let der = tls
        .as_ref()
        .and_then(|Extension(info)| info.peer_certificates.first().cloned())
        .ok_or(ApiError::NoClientCertificate)?;
    if !crate::tls::may_report_for(&der, cluster) {
        return Err(ApiError::WrongIdentity {
            cluster: cluster.to_string(),
            identities: crate::tls::identities(&der),
        });
    }
    // Before the report is parsed, checked or stored: a flooding companion costs the others
    // little more than its TLS and the body axum already buffered (at most MAX_BODY).
    app.admit_report(cluster)?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::BadBody(e.body_text())
        }
    })?;
    let report: Report = serde_json::from_slice(&body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::WrongType(e.to_string()),
        _ => ApiError::Malformed(e.to_string()),
    })?;
    app.accept(site_cluster, report, &body).await
}

/// Who is asking, from the client certificate's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// `spiffe://bgplb/operator`: every cluster.
    Operator,
    /// `spiffe://bgplb/cluster/<name>`: that cluster only.
    Cluster(String),
}

fn caller(tls: &Option<Extension<Arc<TlsInfo>>>) -> Result<Caller, ApiError> {
    let der = tls
        .as_ref()
        .and_then(|Extension(info)| info.peer_certificates.first().cloned())
        .ok_or(ApiError::NoClientCertificate)?;
    let ids = crate::tls::identities(&der);
    if ids.iter().any(|i| i == bgplb_proto::OPERATOR_IDENTITY) {
        return Ok(Caller::Operator);
    }
    ids.iter()
        .find_map(|i| i.strip_prefix(bgplb_proto::CLUSTER_IDENTITY_PREFIX))
        .map(|c| Caller::Cluster(c.to_string()))
        .ok_or(ApiError::WrongIdentity {
            cluster: "any".into(),
            identities: ids,
        })
}

async fn get_status(
    State(app): State<Arc<App>>,
    tls: Option<Extension<Arc<TlsInfo>>>,
) -> Result<Json<bgplb_proto::AgentStatus>, ApiError> {
    let caller = caller(&tls)?;
    let mut status = app.status().await;
    if let Caller::Cluster(c) = &caller {
        scope_status(&mut status, c);
    }
    Ok(Json(status))
}

/// Leaves what concerns cluster `mine` only: its report, sessions and nodes, and check details
/// that name no other cluster.
fn scope_status(status: &mut bgplb_proto::AgentStatus, mine: &str) {
    let others: Vec<String> = status
        .clusters
        .iter()
        .map(|c| c.name.clone())
        .filter(|n| n != mine)
        .collect();
    status.clusters.retain(|c| c.name == mine);
    status.peers.retain(|p| p.cluster == mine);
    status.nodes.retain(|n| n.cluster == mine);
    for check in &mut status.kernel_checks {
        check.details.retain(|d| {
            !others
                .iter()
                .any(|o| d.contains(&format!("({o}:")) || d.contains(&format!("{o}/")))
        });
    }
}

/// At most this many targets per probe request.
pub const MAX_PROBES: usize = 64;

/// TCP connections from the gateway to VIPs. Only addresses inside the site's pools are probed:
/// the API must not become a port scanner.
async fn post_probe(
    State(app): State<Arc<App>>,
    tls: Option<Extension<Arc<TlsInfo>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<bgplb_proto::ProbeResponse>, ApiError> {
    let caller = caller(&tls)?;
    let body = body.map_err(|e| ApiError::BadBody(e.body_text()))?;
    let req: bgplb_proto::ProbeRequest =
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::WrongType(e.to_string()),
            _ => ApiError::Malformed(e.to_string()),
        })?;
    // An operator may probe any pool address; a cluster its own VIPs (its last report) and
    // addresses of the pools only it may use.
    let site = app.site();
    let pools: Vec<bgplb_site::Range> = match &caller {
        Caller::Operator => crate::netcheck::pool_ranges(&site),
        Caller::Cluster(c) => site
            .pools
            .iter()
            .filter(|p| p.cluster.as_deref() == Some(c.as_str()))
            .flat_map(|p| {
                p.blocks
                    .iter()
                    .filter_map(|b| bgplb_site::Range::parse(b).ok())
            })
            .collect(),
    };
    let own: std::collections::BTreeSet<std::net::IpAddr> = match &caller {
        Caller::Operator => Default::default(),
        Caller::Cluster(c) => app.reported_vips(c),
    };
    let whose = match &caller {
        Caller::Operator => "a pool of the site".to_string(),
        Caller::Cluster(c) => {
            format!("a VIP of cluster `{c}` (its last report) or a pool only it uses")
        }
    };
    let mut problems = Vec::new();
    if req.targets.len() > MAX_PROBES {
        problems.push(Problem {
            path: "targets".into(),
            message: format!("at most {MAX_PROBES} targets per request"),
        });
    }
    let mut targets = Vec::new();
    for (i, t) in req.targets.iter().enumerate() {
        match t.ip.parse::<std::net::IpAddr>() {
            Ok(ip) if own.contains(&ip) || pools.iter().any(|r| r.contains(ip)) => {
                targets.push((ip, t.port))
            }
            Ok(ip) => problems.push(Problem {
                path: format!("targets[{i}].ip"),
                message: format!("{ip} is not {whose}"),
            }),
            Err(_) => problems.push(Problem {
                path: format!("targets[{i}].ip"),
                message: format!("`{}` is not an IP address", t.ip),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid {
            cluster: "probe".into(),
            problems,
        });
    }
    let probes = targets.into_iter().map(|(ip, port)| async move {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect((ip, port)),
        )
        .await;
        let (ok, error) = match result {
            Ok(Ok(_)) => (true, None),
            Ok(Err(e)) => (false, Some(e.to_string())),
            Err(_) => (false, Some("timed out after 3 s".into())),
        };
        bgplb_proto::ProbeOutcome {
            ip: ip.to_string(),
            port,
            ok,
            error,
            millis: started.elapsed().as_millis() as u64,
        }
    });
    let results = futures::future::join_all(probes).await;
    Ok(Json(bgplb_proto::ProbeResponse { results }))
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.not_ready().await {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// The status page: read-only, the same data as `bgplb-agent status`, reloading itself.
async fn page(State(app): State<Arc<App>>) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        app.page().await,
    )
        .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.refresh_metrics().await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}
