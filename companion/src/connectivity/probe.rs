//! The probing behind `test-connectivity`: TCP connects (and `GET /` on HTTP ports) from this
//! machine, and the agent's `POST /v1/probe` from the gateway. Bounded: at most `parallel`
//! connections at once from here, two probe requests of at most [`GATEWAY_BATCH`] targets at
//! once to the agent, and nothing started or awaited past the deadline (what is left is "not
//! tested").

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bgplb_proto::{ErrorBody, ProbeOutcome, ProbeRequest, ProbeResponse, ProbeTarget};
use futures::StreamExt;
use tokio::time::Instant;

use super::{unique, HttpAnswer, Outcome, Outcomes, Scheme, Target, GATEWAY_BATCH};
use crate::agent::HttpAgent;

/// How long and how wide the probing may go.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Per TCP connect from here (an HTTP `GET /` gets twice this).
    pub connect_timeout: Duration,
    /// Nothing is awaited past this instant.
    pub deadline: Instant,
    /// Connections from here at once.
    pub parallel: usize,
}

fn out_of_time() -> Outcome {
    Outcome::NotTested {
        reason: "the total time limit ran out".into(),
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

/// An error with its sources ("error sending request: ...: connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Every target from this machine.
pub async fn from_here(targets: &[Target], limits: Limits) -> Outcomes {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_danger_accept_invalid_certs(true)
        .tls_danger_accept_invalid_hostnames(true)
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.connect_timeout * 2)
        .build()
        .ok();
    let http = &http;
    futures::stream::iter(
        unique(targets)
            .into_iter()
            .map(|(ip, port, scheme)| async move {
                let outcome = tokio::time::timeout_at(
                    limits.deadline,
                    probe_one(ip, port, scheme, limits.connect_timeout, http.as_ref()),
                )
                .await
                .unwrap_or_else(|_| out_of_time());
                ((ip, port), outcome)
            }),
    )
    .buffer_unordered(limits.parallel.max(1))
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect()
}

async fn probe_one(
    ip: IpAddr,
    port: u16,
    scheme: Option<Scheme>,
    connect_timeout: Duration,
    http: Option<&reqwest::Client>,
) -> Outcome {
    let started = std::time::Instant::now();
    let addr = SocketAddr::new(ip, port);
    let millis = || started.elapsed().as_millis() as u64;
    match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => Outcome::Failed {
            error: format!("timed out after {}", secs(connect_timeout)),
            millis: millis(),
        },
        Ok(Err(e)) => Outcome::Failed {
            error: e.to_string(),
            millis: millis(),
        },
        Ok(Ok(stream)) => {
            drop(stream);
            let millis = millis();
            let http = match (scheme, http) {
                (Some(s), Some(c)) => Some(get(c, s, addr).await),
                _ => None,
            };
            Outcome::Reached { millis, http }
        }
    }
}

async fn get(client: &reqwest::Client, scheme: Scheme, addr: SocketAddr) -> HttpAnswer {
    match client.get(format!("{scheme}://{addr}/")).send().await {
        Ok(resp) => HttpAnswer {
            scheme,
            status: Some(resp.status().as_u16()),
            error: None,
        },
        Err(e) => HttpAnswer {
            scheme,
            status: None,
            error: Some(chain(&e)),
        },
    }
}

/// Why the gateway's side could not be probed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUnreachable(pub String);

/// Every target from the gateway, through the agent. Targets the agent refuses to probe (not
/// its cluster's, outside the pools) are "not tested" with its reason; the others are probed
/// again without them. `Err` when no request reached the agent.
pub async fn from_gateway(
    agent: &HttpAgent,
    targets: &[Target],
    limits: Limits,
) -> Result<Outcomes, AgentUnreachable> {
    let all: Vec<ProbeTarget> = unique(targets)
        .into_iter()
        .map(|(ip, port, _)| ProbeTarget {
            ip: ip.to_string(),
            port,
        })
        .collect();
    let batches: Vec<Vec<ProbeTarget>> = all.chunks(GATEWAY_BATCH).map(<[_]>::to_vec).collect();
    let answered: Vec<(Vec<ProbeTarget>, Result<Outcomes, String>)> =
        futures::stream::iter(batches.into_iter().map(|batch| async move {
            let result =
                tokio::time::timeout_at(limits.deadline, batch_with_refusals(agent, &batch))
                    .await
                    .unwrap_or_else(|_| {
                        Ok(batch.iter().map(|t| (key(t), out_of_time())).collect())
                    });
            (batch, result)
        }))
        .buffer_unordered(2)
        .collect()
        .await;
    if !answered.is_empty() && answered.iter().all(|(_, r)| r.is_err()) {
        let first = answered
            .into_iter()
            .find_map(|(_, r)| r.err())
            .unwrap_or_default();
        return Err(AgentUnreachable(first));
    }
    let mut out = Outcomes::new();
    for (batch, result) in answered {
        match result {
            Ok(o) => out.extend(o),
            Err(e) => out.extend(batch.iter().map(|t| {
                (
                    key(t),
                    Outcome::NotTested {
                        reason: format!("the agent's probe failed: {e}"),
                    },
                )
            })),
        }
    }
    Ok(out)
}

fn key(t: &ProbeTarget) -> (IpAddr, u16) {
    (
        t.ip.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        t.port,
    )
}

/// One batch; when the agent refuses some targets, the rest once more without them. `Err` only
/// when the agent could not be reached.
async fn batch_with_refusals(agent: &HttpAgent, batch: &[ProbeTarget]) -> Result<Outcomes, String> {
    let mut out = Outcomes::new();
    let mut todo: Vec<ProbeTarget> = batch.to_vec();
    for attempt in 0..2 {
        if todo.is_empty() {
            break;
        }
        match post(agent, &todo).await {
            Ok(results) => {
                for r in results {
                    let k = key(&ProbeTarget {
                        ip: r.ip.clone(),
                        port: r.port,
                    });
                    out.insert(k, outcome(r));
                }
                return Ok(out);
            }
            Err(Posted::Unreachable(e)) => return Err(e),
            Err(Posted::Refused(body)) => {
                let refused: Vec<(usize, String)> = body
                    .problems
                    .iter()
                    .filter_map(|p| {
                        let i = p
                            .path
                            .strip_prefix("targets[")?
                            .split(']')
                            .next()?
                            .parse()
                            .ok()?;
                        Some((i, p.message.clone()))
                    })
                    .collect();
                if refused.is_empty() || attempt == 1 {
                    let reason = format!("the agent refuses the probe: {}", body.message);
                    out.extend(todo.iter().map(|t| {
                        (
                            key(t),
                            Outcome::NotTested {
                                reason: reason.clone(),
                            },
                        )
                    }));
                    return Ok(out);
                }
                let mut keep = Vec::new();
                for (i, t) in todo.into_iter().enumerate() {
                    match refused.iter().find(|(j, _)| *j == i) {
                        Some((_, why)) => {
                            out.insert(
                                key(&t),
                                Outcome::NotTested {
                                    reason: format!("the agent refuses to probe it: {why}"),
                                },
                            );
                        }
                        None => keep.push(t),
                    }
                }
                todo = keep;
            }
            Err(Posted::Other(e)) => {
                out.extend(todo.iter().map(|t| {
                    (
                        key(t),
                        Outcome::NotTested {
                            reason: format!("the agent's probe failed: {e}"),
                        },
                    )
                }));
                return Ok(out);
            }
        }
    }
    Ok(out)
}

fn outcome(r: ProbeOutcome) -> Outcome {
    if r.ok {
        Outcome::Reached {
            millis: r.millis,
            http: None,
        }
    } else {
        Outcome::Failed {
            error: r.error.unwrap_or_else(|| "failed".into()),
            millis: r.millis,
        }
    }
}

enum Posted {
    /// No answer from the agent (connection, TLS).
    Unreachable(String),
    /// 4xx with the agent's reasons.
    Refused(ErrorBody),
    Other(String),
}

async fn post(agent: &HttpAgent, targets: &[ProbeTarget]) -> Result<Vec<ProbeOutcome>, Posted> {
    let url = format!(
        "{}{}",
        agent.base.trim_end_matches('/'),
        bgplb_proto::PROBE_PATH
    );
    let resp = agent
        .client
        .post(&url)
        .json(&ProbeRequest {
            targets: targets.to_vec(),
        })
        .send()
        .await
        .map_err(|e| Posted::Unreachable(format!("{url}: {}", chain(&e))))?;
    let status = resp.status();
    if status.is_success() {
        return resp
            .json::<ProbeResponse>()
            .await
            .map(|r| r.results)
            .map_err(|e| Posted::Other(format!("{url}: {e}")));
    }
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) if status.is_client_error() => Err(Posted::Refused(body)),
        _ => Err(Posted::Other(format!("{url}: {status}: {}", text.trim()))),
    }
}
