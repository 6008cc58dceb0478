//! `bgplb-companion test-connectivity`: every LoadBalancer Service's VIPs × TCP ports, reached
//! from where the command runs and from the gateway (the agent's `POST /v1/probe`), each failure
//! explained from the cluster's and the gateway's state.
//!
//! [`targets`] turns the Services into what is probed (pure); [`probe`] does the probing (I/O,
//! bounded); [`judge`] compares the outcomes and names the likely cause of each failure from the
//! other checks (pure): the Service's class and ready endpoints (the companion's own projection,
//! [`crate::project`]), the site's pools, and the agent's status: the sessions of the nodes that
//! announce the VIP, its `fib` check (the VIP not routed), its `nat` and `l2` checks.
//!
//! Which ports get an HTTP `GET /` besides the TCP connect ([`http_scheme`]): `appProtocol`
//! `http` or `https` when set (any other `appProtocol` means no HTTP); else a port named `http`
//! or `https`, or starting with `http-` / `https-`; else ports 80 and 8080 (http), 443 and 8443
//! (https). Any HTTP status counts as an answer (redirects are not followed); https certificates
//! are not verified (a reachability test). A port that connects but gives no HTTP answer is a
//! warning, not a failure: the guess from its name or number may be wrong.

pub mod probe;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bgplb_cilium::session::Family;
use bgplb_proto::AgentStatus;
use bgplb_site::Site;
use k8s_openapi::api::core::v1::{Node, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;

use crate::validate::views::{self, NodeView};
use crate::validate::Status;

/// The agent probes at most this many targets per request (`bgplb-agent`'s `MAX_PROBES`).
pub const GATEWAY_BATCH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// One VIP and TCP port of a Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub namespace: String,
    pub name: String,
    pub vip: IpAddr,
    pub port: u16,
    pub port_name: Option<String>,
    /// Also `GET /` over this scheme ([`http_scheme`]).
    pub http: Option<Scheme>,
}

impl Target {
    pub fn key(&self) -> (IpAddr, u16) {
        (self.vip, self.port)
    }

    pub fn service(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn address(&self) -> String {
        SocketAddr::new(self.vip, self.port).to_string()
    }
}

/// What one side saw of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// The TCP connection was made (and, for an HTTP port, what `GET /` gave).
    Reached {
        millis: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        http: Option<HttpAnswer>,
    },
    Failed {
        error: String,
        millis: u64,
    },
    /// Not probed: the time limit ran out, the agent refused the target, its probe failed.
    NotTested {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpAnswer {
    pub scheme: Scheme,
    /// The HTTP status, when an HTTP answer came.
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// Outcomes of one side by (VIP, port).
pub type Outcomes = BTreeMap<(IpAddr, u16), Outcome>;

/// Whether `port` also gets an HTTP `GET /`, and over which scheme (see the module doc).
pub fn http_scheme(port: &ServicePort) -> Option<Scheme> {
    if let Some(app) = port.app_protocol.as_deref().map(str::trim) {
        if !app.is_empty() {
            return match app.to_ascii_lowercase().as_str() {
                "http" => Some(Scheme::Http),
                "https" => Some(Scheme::Https),
                _ => None,
            };
        }
    }
    if let Some(name) = port.name.as_deref().map(str::to_ascii_lowercase) {
        if name == "https" || name.starts_with("https-") {
            return Some(Scheme::Https);
        }
        if name == "http" || name.starts_with("http-") {
            return Some(Scheme::Http);
        }
    }
    match port.port {
        80 | 8080 => Some(Scheme::Http),
        443 | 8443 => Some(Scheme::Https),
        _ => None,
    }
}

/// A line about the run, not about one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// `ok` for information (a UDP port skipped), `warn` for something not tested that should be.
    pub status: Status,
    pub message: String,
}

/// Every TCP port of every LoadBalancer Service with an address, sorted by service, VIP, port;
/// and notes for what is not tested (UDP and SCTP ports, services without an address).
pub fn targets(services: &[Service]) -> (Vec<Target>, Vec<Note>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut lb: Vec<&Service> = services
        .iter()
        .filter(|s| {
            s.spec.as_ref().and_then(|sp| sp.type_.as_deref()) == Some("LoadBalancer")
                && s.metadata.name.is_some()
        })
        .collect();
    lb.sort_by_key(|s| (s.metadata.namespace.clone(), s.metadata.name.clone()));
    for s in lb {
        let namespace = s
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = s.metadata.name.clone().unwrap_or_default();
        let svc = format!("{namespace}/{name}");
        let mut vips = Vec::new();
        for ip in crate::project::lb_ips(s) {
            match ip.split('/').next().unwrap_or(&ip).trim().parse::<IpAddr>() {
                Ok(v) => vips.push(v),
                Err(_) => notes.push(Note {
                    status: Status::Warn,
                    message: format!("{svc}: `{ip}` is not an IP address: not tested"),
                }),
            }
        }
        if vips.is_empty() {
            notes.push(Note {
                status: Status::Warn,
                message: format!(
                    "{svc}: no LoadBalancer address assigned yet (pending): not tested"
                ),
            });
            continue;
        }
        let ports: Vec<&ServicePort> = s
            .spec
            .as_ref()
            .and_then(|sp| sp.ports.as_ref())
            .into_iter()
            .flatten()
            .collect();
        if ports.is_empty() {
            notes.push(Note {
                status: Status::Warn,
                message: format!("{svc}: no ports: nothing to test"),
            });
        }
        for p in ports {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            if !protocol.eq_ignore_ascii_case("TCP") {
                notes.push(Note {
                    status: Status::Ok,
                    message: format!("{svc}: {protocol} port {port} skipped: only TCP is tested"),
                });
                continue;
            }
            for vip in &vips {
                out.push(Target {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    vip: *vip,
                    port,
                    port_name: p.name.clone(),
                    http: http_scheme(p),
                });
            }
        }
    }
    (out, notes)
}

/// What the diagnosis reads besides the outcomes.
#[derive(Debug, Clone)]
pub struct Context {
    pub site: Site,
    /// The site cluster the Services belong to.
    pub cluster: String,
    pub nodes: Vec<Node>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    /// The installed Cilium, e.g. "1.18.2" (1.19 announces `Local` services from every node).
    pub cilium_version: Option<String>,
    /// The agent's `GET /v1/status`, when it could be read.
    pub agent: Option<AgentStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// No target failed (warnings allowed).
    pub ok: bool,
    /// Which sides were probed.
    pub from_here: bool,
    pub from_gateway: bool,
    pub results: Vec<TargetResult>,
    pub notes: Vec<Note>,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetResult {
    /// `namespace/name`.
    pub service: String,
    pub vip: String,
    pub port: u16,
    pub port_name: Option<String>,
    /// `tcp`, `http` or `https`.
    pub check: String,
    /// `None` when that side was not probed at all (`--gateway-only`, `--from-here-only`).
    pub here: Option<Outcome>,
    pub gateway: Option<Outcome>,
    pub result: Status,
    /// For a failure: the likely causes, the likeliest first; for a warning: why.
    pub causes: Vec<String>,
}

/// Judges every target: `here` and `gateway` are `None` when that side was not probed.
pub fn judge(ctx: &Context, here: Option<&Outcomes>, gateway: Option<&Outcomes>) -> Report {
    let (targets, mut notes) = targets(&ctx.services);
    let facts = Facts::new(ctx);
    if ctx.agent.is_none() {
        notes.push(Note {
            status: Status::Warn,
            message:
                "the agent's status is unavailable: failures are not traced to routes and sessions"
                    .into(),
        });
    }
    let not_probed = || Outcome::NotTested {
        reason: "not probed".into(),
    };
    let mut results = Vec::new();
    for t in &targets {
        let h = here.map(|m| m.get(&t.key()).cloned().unwrap_or_else(not_probed));
        let g = gateway.map(|m| m.get(&t.key()).cloned().unwrap_or_else(not_probed));
        let sides = [h.as_ref(), g.as_ref()];
        let failed = sides
            .iter()
            .flatten()
            .any(|o| matches!(o, Outcome::Failed { .. }));
        let mut causes = Vec::new();
        let mut result = Status::Ok;
        if failed {
            result = Status::Fail;
            causes = diagnose(&facts, t, h.as_ref(), g.as_ref());
        } else {
            for (side, o) in [("from here", &h), ("from the gateway", &g)] {
                match o {
                    Some(Outcome::NotTested { reason }) => {
                        result = Status::Warn;
                        causes.push(format!("{side}: not tested: {reason}"));
                    }
                    Some(Outcome::Reached {
                        http: Some(a @ HttpAnswer { status: None, .. }),
                        ..
                    }) => {
                        result = Status::Warn;
                        causes.push(format!(
                            "{side}: TCP connects, but GET / over {} got no HTTP answer ({}): the port may not speak {}",
                            a.scheme,
                            a.error.as_deref().unwrap_or("no answer"),
                            a.scheme
                        ));
                    }
                    _ => {}
                }
            }
        }
        results.push(TargetResult {
            service: t.service(),
            vip: t.vip.to_string(),
            port: t.port,
            port_name: t.port_name.clone(),
            check: t.http.map_or_else(|| "tcp".to_string(), |s| s.to_string()),
            here: h,
            gateway: g,
            result,
            causes,
        });
    }
    let reached = results.iter().filter(|r| r.result == Status::Ok).count();
    let from = match (here.is_some(), gateway.is_some()) {
        (true, true) => "from here and from the gateway",
        (true, false) => "from here",
        (false, true) => "from the gateway",
        (false, false) => "from nowhere (nothing probed)",
    };
    let summary = if results.is_empty() {
        "no LoadBalancer service with an address and a TCP port: nothing to test".to_string()
    } else {
        format!(
            "{reached} of {} target(s) reachable {from}{}",
            results.len(),
            match results.iter().filter(|r| r.result == Status::Fail).count() {
                0 => String::new(),
                n => format!("; {n} failed"),
            }
        )
    };
    Report {
        ok: results.iter().all(|r| r.result != Status::Fail),
        from_here: here.is_some(),
        from_gateway: gateway.is_some(),
        results,
        notes,
        summary,
    }
}

/// The cluster's and the gateway's state, read once.
struct Facts<'a> {
    ctx: &'a Context,
    nodes: Vec<NodeView>,
    /// The companion's projection of the Services Cilium's BGP advertises (ready nodes).
    projected: BTreeMap<String, bgplb_proto::Service>,
    /// Whether Cilium announces `Local` services from every node (1.19).
    local_everywhere: bool,
}

impl<'a> Facts<'a> {
    fn new(ctx: &'a Context) -> Facts<'a> {
        let observed = crate::project::Observed {
            nodes: ctx.nodes.clone(),
            services: ctx.services.clone(),
            endpoint_slices: ctx.endpoint_slices.clone(),
            cilium_version: ctx.cilium_version.clone(),
            ..Default::default()
        };
        let report = crate::project::report(&ctx.cluster, 0, "", &observed);
        Facts {
            ctx,
            nodes: views::nodes(&ctx.nodes),
            projected: report
                .services
                .into_iter()
                .map(|s| (format!("{}/{}", s.namespace, s.name), s))
                .collect(),
            local_everywhere: report.cilium.advertises_local_services_everywhere(),
        }
    }

    fn service(&self, t: &Target) -> Option<&Service> {
        self.ctx.services.iter().find(|s| {
            s.metadata.name.as_deref() == Some(t.name.as_str())
                && s.metadata.namespace.as_deref().unwrap_or("default") == t.namespace
        })
    }

    /// Failing checks of the agent named `name`, the details mentioning `vip` first.
    fn kernel_problem(&self, name: &str, vip: IpAddr) -> Option<String> {
        let c = self
            .ctx
            .agent
            .as_ref()?
            .kernel_checks
            .iter()
            .find(|c| c.name == name && !c.ok && !c.warning)?;
        let mention = format!("{vip} ");
        let detail = c
            .details
            .iter()
            .find(|d| d.starts_with(&mention) || d.contains(&format!(" {vip} ")))
            .or(c.details.first())
            .cloned()
            .unwrap_or_default();
        Some(detail)
    }
}

fn family(ip: IpAddr) -> Family {
    Family::of(&ip)
}

/// The error's kind, for the wording of causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    Refused,
    NoRoute,
    TimedOut,
    Other,
}

fn kind(error: &str) -> ErrorKind {
    let e = error.to_ascii_lowercase();
    if e.contains("refused") || e.contains("reset by peer") {
        ErrorKind::Refused
    } else if e.contains("no route") || e.contains("unreachable") {
        ErrorKind::NoRoute
    } else if e.contains("timed out") || e.contains("timeout") {
        ErrorKind::TimedOut
    } else {
        ErrorKind::Other
    }
}

fn failure(o: Option<&Outcome>) -> Option<&str> {
    match o {
        Some(Outcome::Failed { error, .. }) => Some(error),
        _ => None,
    }
}

fn reached(o: Option<&Outcome>) -> bool {
    matches!(o, Some(Outcome::Reached { .. }))
}

/// The likely causes of a failed target, the likeliest first; never empty.
fn diagnose(f: &Facts, t: &Target, here: Option<&Outcome>, gw: Option<&Outcome>) -> Vec<String> {
    let ctx = f.ctx;
    let mut causes: Vec<String> = Vec::new();
    let errors: Vec<ErrorKind> = [failure(here), failure(gw)]
        .into_iter()
        .flatten()
        .map(kind)
        .collect();
    let afi = family(t.vip).afi();

    // The gateway reaches it: the cluster side works, the path from here does not.
    if reached(gw) && failure(here).is_some() {
        let segment = match family(t.vip) {
            Family::Ipv4 => ctx.site.segment.ipv4,
            Family::Ipv6 => ctx.site.segment.ipv6,
        };
        causes.push(format!(
            "the gateway reaches it but this machine doesn't: a firewall or a route between here and the gateway (this machine must route {} via the gateway)",
            segment.map_or_else(|| "the VIPs".to_string(), |s| s.to_string())
        ));
        for (check, what) in [("l2", "l2"), ("nat", "nat")] {
            if let Some(d) = f.kernel_problem(check, t.vip) {
                causes.push(format!("the agent's {what} check fails: {d}"));
            }
        }
        return causes;
    }

    // Nothing listens: the route works.
    if !errors.is_empty() && errors.iter().all(|k| *k == ErrorKind::Refused) {
        causes.push(format!(
            "the VIP answers with a refusal (TCP reset): the route works, but nothing accepts connections on port {} (the Service's targetPort, its pods, or a node firewall)",
            t.port
        ));
    }

    // The Service as Cilium's BGP sees it.
    let svc = f.service(t);
    if let Some(s) = svc.filter(|s| !crate::project::advertised_by_bgp(s)) {
        let class = s
            .spec
            .as_ref()
            .and_then(|sp| sp.load_balancer_class.clone());
        causes.push(format!(
            "Cilium's BGP does not advertise this service ({}): the gateway gets no route for its VIP",
            match class {
                Some(c) if c != crate::project::BGP_CLASS => format!("loadBalancerClass {c}"),
                _ => format!("label {}", bgplb_cilium::naming::NO_ADVERTISE_KEY),
            }
        ));
    }
    pool_cause(ctx, t.vip, &mut causes);
    let projected = f.projected.get(&t.service());
    if let Some(p) = projected {
        if p.ready_nodes.is_empty() {
            causes.push(
                "the service has no ready endpoints (no EndpointSlice names a ready pod on a node): Cilium has nowhere to send the traffic"
                    .to_string(),
            );
        }
    }

    // Routes and sessions on the gateway.
    if let (Some(agent), Some(p)) = (&ctx.agent, projected) {
        let local = p.external_traffic_policy == "Local" && !f.local_everywhere;
        let announcing: Vec<&NodeView> = f
            .nodes
            .iter()
            .filter(|n| !n.deleting)
            .filter(|n| {
                if local {
                    p.ready_nodes.contains(&n.name)
                } else {
                    n.ready
                }
            })
            .collect();
        let established = |n: &NodeView| {
            agent.peers.iter().any(|s| {
                s.cluster == ctx.cluster
                    && s.node == n.name
                    && crate::validate::nodes::family(s) == Some(family(t.vip))
                    && s.state.eq_ignore_ascii_case("Established")
            })
        };
        let names: Vec<&str> = announcing.iter().map(|n| n.name.as_str()).collect();
        if announcing.is_empty() {
            if !p.ready_nodes.is_empty() || !local {
                causes.push(format!(
                    "no Ready node announces it{}",
                    if local {
                        " (externalTrafficPolicy Local: only nodes with ready endpoints do)"
                    } else {
                        ""
                    }
                ));
            }
        } else if !announcing.iter().any(|n| established(n)) {
            causes.push(format!(
                "no Established {afi} session on the gateway for the nodes that announce it ({}{})",
                names.join(", "),
                if local {
                    ": the nodes with endpoints"
                } else {
                    ""
                }
            ));
        }
    }
    let fib = f
        .kernel_problem("fib", t.vip)
        .filter(|d| d.starts_with(&format!("{} ", t.vip)) || d.contains(&format!(" {} ", t.vip)));
    if let Some(d) = &fib {
        causes.push(format!("not routed: the agent's fib check says {d}"));
    }
    if let Some(e) = failure(gw).filter(|e| kind(e) == ErrorKind::NoRoute) {
        if fib.is_none() {
            causes.push(format!(
                "not routed: the gateway itself has no route to {} ({e})",
                t.vip
            ));
        }
    }

    // This machine reaches it, the gateway does not.
    if reached(here) && failure(gw).is_some() {
        causes.push(
            "this machine reaches it but the gateway doesn't: the VIP answers here without the gateway's route (an L2 announcement still alive on this network, or a path around the gateway)"
                .to_string(),
        );
    }
    for check in ["l2", "nat"] {
        if let Some(d) = f.kernel_problem(check, t.vip) {
            causes.push(format!("the agent's {check} check fails: {d}"));
        }
    }
    if causes.is_empty() {
        if ctx.agent.is_none() {
            causes.push("unknown: the agent's status is unavailable, so routes and sessions were not checked".to_string());
        } else if !errors.is_empty() && errors.iter().all(|k| *k == ErrorKind::TimedOut) {
            causes.push(
                "timed out with the route and the sessions in place: a firewall on the nodes (a Cilium host policy), or the pods do not answer"
                    .to_string(),
            );
        } else {
            causes.push(
                "no cause found in the cluster's or the gateway's state: check the Service's pods and any network policy"
                    .to_string(),
            );
        }
    }
    causes
}

/// The VIP against the site's pools for the cluster.
fn pool_cause(ctx: &Context, vip: IpAddr, causes: &mut Vec<String>) {
    let in_pool = |disabled: bool| {
        ctx.site.pools.iter().find(|p| {
            p.disabled == disabled
                && p.cluster.as_deref().is_none_or(|c| c == ctx.cluster)
                && p.blocks
                    .iter()
                    .filter_map(|b| bgplb_site::Range::parse(b).ok())
                    .any(|r| r.contains(vip))
        })
    };
    if in_pool(false).is_some() {
        return;
    }
    causes.push(match in_pool(true) {
        Some(p) => format!(
            "the VIP is in the site's disabled pool {}: the gateway accepts no route for it",
            p.name
        ),
        None => format!(
            "the VIP is outside the site's pools for cluster {}: the gateway accepts no route for it",
            ctx.cluster
        ),
    });
}

fn cell(o: &Option<Outcome>) -> String {
    match o {
        None => "-".into(),
        Some(Outcome::Reached { millis, http }) => match http {
            Some(HttpAnswer {
                status: Some(s), ..
            }) => format!("ok, HTTP {s} ({millis} ms)"),
            Some(HttpAnswer { status: None, .. }) => format!("TCP ok, no HTTP ({millis} ms)"),
            None => format!("ok ({millis} ms)"),
        },
        Some(Outcome::Failed { .. }) => "FAILED".into(),
        Some(Outcome::NotTested { .. }) => "not tested".into(),
    }
}

/// `SERVICE ADDRESS CHECK HERE GATEWAY RESULT`, then each failure (VIP, service, port, the side
/// that failed with its error, the likely cause), the notes and the summary.
pub fn render_table(r: &Report) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header(["SERVICE", "ADDRESS", "CHECK", "HERE", "GATEWAY", "RESULT"]);
    for t in &r.results {
        let addr = t
            .vip
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, t.port).to_string())
            .unwrap_or_else(|_| format!("{}:{}", t.vip, t.port));
        table.add_row([
            t.service.clone(),
            addr,
            t.check.clone(),
            cell(&t.here),
            cell(&t.gateway),
            t.result.to_string(),
        ]);
    }
    let mut out = format!("{table}\n");
    let problems: Vec<&TargetResult> = r
        .results
        .iter()
        .filter(|t| t.result != Status::Ok)
        .collect();
    if !problems.is_empty() {
        out.push('\n');
    }
    for t in problems {
        let addr = t
            .vip
            .parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, t.port).to_string())
            .unwrap_or_else(|_| format!("{}:{}", t.vip, t.port));
        let mut sides = Vec::new();
        for (side, o) in [("from here", &t.here), ("from the gateway", &t.gateway)] {
            match o {
                Some(Outcome::Failed { error, .. }) => sides.push(format!("{side}: {error}")),
                Some(Outcome::Reached { .. }) if t.result == Status::Fail => {
                    sides.push(format!("{side}: reached"))
                }
                _ => {}
            }
        }
        let port = match &t.port_name {
            Some(n) => format!("port {} ({n})", t.port),
            None => format!("port {}", t.port),
        };
        out.push_str(&format!(
            "{:<4}  {addr} ({}, {port}){}{}\n",
            t.result.to_string(),
            t.service,
            if sides.is_empty() { "" } else { ": " },
            sides.join("; ")
        ));
        for (i, c) in t.causes.iter().enumerate() {
            let label = match (t.result, i) {
                (Status::Fail, 0) => "likely cause: ",
                (Status::Fail, _) => "also: ",
                _ => "",
            };
            out.push_str(&format!("      {label}{c}\n"));
        }
    }
    if !r.notes.is_empty() {
        out.push('\n');
    }
    for n in &r.notes {
        let label = match n.status {
            Status::Ok => "note".to_string(),
            s => s.to_string(),
        };
        out.push_str(&format!("{label:<4}  {}\n", n.message));
    }
    out.push_str(&format!("\n{}\n", r.summary));
    out
}

/// Unique (VIP, port) pairs to probe, with the scheme of the first target naming one.
pub fn unique(targets: &[Target]) -> Vec<(IpAddr, u16, Option<Scheme>)> {
    let mut seen: BTreeMap<(IpAddr, u16), Option<Scheme>> = BTreeMap::new();
    for t in targets {
        let e = seen.entry(t.key()).or_insert(t.http);
        if e.is_none() {
            *e = t.http;
        }
    }
    seen.into_iter()
        .map(|((ip, port), s)| (ip, port, s))
        .collect()
}

/// The VIPs the gateway may be asked to probe: those inside a site pool the cluster may use or
/// the agent knows from the cluster's report (anything else makes the agent refuse the whole
/// request).
pub fn probeable(site: &Site, cluster: &str, vip: IpAddr) -> bool {
    site.pools
        .iter()
        .filter(|p| p.cluster.as_deref().is_none_or(|c| c == cluster))
        .flat_map(|p| p.blocks.iter())
        .filter_map(|b| bgplb_site::Range::parse(b).ok())
        .any(|r| r.contains(vip))
}

#[cfg(test)]
mod tests;
