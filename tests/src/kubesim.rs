//! A Kubernetes API stand-in: enough of the API server for the companion's real kube-rs code —
//! list and watch (chunked JSON event stream with resourceVersions), get, and create/replace with
//! optimistic concurrency (for Leases) — over plain HTTP, with objects the test or demo puts in.
//!
//! Collections that are not served answer 404 like a missing CRD, so "Cilium not installed yet"
//! can be simulated by serving a CRD later. Objects are kept as JSON; every change gets the next
//! resourceVersion and is kept in an event log that watches replay from.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// A collection: group ("" for core), version, plural; and whether it is namespaced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Collection {
    pub group: String,
    pub version: String,
    pub plural: String,
}

impl Collection {
    pub fn new(group: &str, version: &str, plural: &str) -> Collection {
        Collection {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Kind → (plural, namespaced), for the kinds the companion reads.
fn plural(kind: &str) -> Option<(&'static str, bool)> {
    Some(match kind {
        "Node" => ("nodes", false),
        "Service" => ("services", true),
        "EndpointSlice" => ("endpointslices", true),
        "Lease" => ("leases", true),
        "DaemonSet" => ("daemonsets", true),
        "ConfigMap" => ("configmaps", true),
        "CiliumLoadBalancerIPPool" => ("ciliumloadbalancerippools", false),
        "CiliumBGPClusterConfig" => ("ciliumbgpclusterconfigs", false),
        "CiliumBGPPeerConfig" => ("ciliumbgppeerconfigs", false),
        "CiliumBGPAdvertisement" => ("ciliumbgpadvertisements", false),
        "CiliumBGPPeeringPolicy" => ("ciliumbgppeeringpolicies", false),
        "CiliumL2AnnouncementPolicy" => ("ciliuml2announcementpolicies", false),
        "CiliumBGPNodeConfig" => ("ciliumbgpnodeconfigs", false),
        _ => return None,
    })
}

#[derive(Debug, Clone)]
struct WatchEvent {
    rv: u64,
    collection: Collection,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    served: BTreeSet<Collection>,
    /// (collection, namespace, name) → object
    objects: BTreeMap<(Collection, String, String), Value>,
    log: Vec<WatchEvent>,
    /// Every request: "METHOD path?query" (for tests that check what the client did).
    requests: Vec<String>,
    /// Injected failures: (method, path fragment, remaining count).
    failures: Vec<(String, String, usize)>,
    /// Play Cilium's LB-IPAM (see [`crate::lbipam`]).
    lb_ipam: Option<crate::lbipam::LbIpam>,
    /// Creation order of every object (LB-IPAM tries pools in this order).
    created: BTreeMap<(Collection, String, String), u64>,
}

/// Handle to the stand-in's state; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct KubeSim {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<WatchEvent>,
}

impl Default for KubeSim {
    fn default() -> Self {
        KubeSim::new()
    }
}

impl KubeSim {
    /// A stand-in serving the core kinds the companion uses (no Cilium CRDs yet).
    pub fn new() -> KubeSim {
        let (events, _) = broadcast::channel(4096);
        let sim = KubeSim {
            inner: Arc::new(Mutex::new(Inner {
                rv: 1000,
                ..Default::default()
            })),
            events,
        };
        for c in [
            Collection::new("", "v1", "nodes"),
            Collection::new("", "v1", "services"),
            Collection::new("discovery.k8s.io", "v1", "endpointslices"),
            Collection::new("coordination.k8s.io", "v1", "leases"),
            Collection::new("apps", "v1", "daemonsets"),
            Collection::new("", "v1", "configmaps"),
        ] {
            sim.serve(c);
        }
        sim
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves a collection (installs a CRD version).
    pub fn serve(&self, c: Collection) {
        self.lock().served.insert(c);
    }

    /// Serves Cilium's CRDs in the versions of a Cilium ≥ 1.18.
    pub fn serve_cilium(&self) {
        for (plural, versions) in [
            ("ciliumloadbalancerippools", &["v2", "v2alpha1"][..]),
            ("ciliumbgpclusterconfigs", &["v2", "v2alpha1"]),
            ("ciliumbgppeerconfigs", &["v2", "v2alpha1"]),
            ("ciliumbgpadvertisements", &["v2", "v2alpha1"]),
            ("ciliuml2announcementpolicies", &["v2alpha1"]),
        ] {
            for v in versions {
                self.serve(Collection::new("cilium.io", v, plural));
            }
        }
    }

    fn collection_of(obj: &Value) -> Result<(Collection, bool), String> {
        let api_version = obj["apiVersion"]
            .as_str()
            .ok_or("object without apiVersion")?;
        let kind = obj["kind"].as_str().ok_or("object without kind")?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let (plural, namespaced) =
            plural(kind).ok_or_else(|| format!("kind {kind} unknown to the stand-in"))?;
        Ok((Collection::new(group, version, plural), namespaced))
    }

    /// Creates or replaces an object (as a controller would); returns its new resourceVersion.
    pub fn apply(&self, obj: Value) -> u64 {
        self.store(obj, true)
    }

    fn store(&self, mut obj: Value, react: bool) -> u64 {
        let (c, namespaced) = Self::collection_of(&obj).expect("a kind the stand-in knows");
        let name = obj["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_string();
        let ns = if namespaced {
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        let mut inner = self.lock();
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if obj["metadata"]["uid"].is_null() {
            obj["metadata"]["uid"] = json!(format!("uid-{rv}"));
        }
        let key = (c.clone(), ns, name);
        let kind = if inner.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        inner.created.entry(key.clone()).or_insert(rv);
        let ipam_relevant = matches!(
            obj["kind"].as_str(),
            Some("Service" | "CiliumLoadBalancerIPPool")
        );
        inner.objects.insert(key, obj.clone());
        let ev = WatchEvent {
            rv,
            collection: c,
            kind,
            object: obj,
        };
        inner.log.push(ev.clone());
        drop(inner);
        let _ = self.events.send(ev);
        if react && ipam_relevant {
            self.run_lb_ipam();
        }
        rv
    }

    /// Deletes an object; `false` when it did not exist.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let probe = json!({"apiVersion": api_version, "kind": kind});
        let (c, namespaced) = Self::collection_of(&probe).expect("known kind");
        let ns = if namespaced {
            namespace.to_string()
        } else {
            String::new()
        };
        let mut inner = self.lock();
        let Some(mut obj) = inner.objects.remove(&(c.clone(), ns, name.to_string())) else {
            return false;
        };
        let ipam_relevant = matches!(
            obj["kind"].as_str(),
            Some("Service" | "CiliumLoadBalancerIPPool")
        );
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ev = WatchEvent {
            rv,
            collection: c,
            kind: "DELETED",
            object: obj,
        };
        inner.log.push(ev.clone());
        drop(inner);
        let _ = self.events.send(ev);
        if ipam_relevant {
            self.run_lb_ipam();
        }
        true
    }

    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let (c, namespaced) =
            Self::collection_of(&json!({"apiVersion": api_version, "kind": kind})).ok()?;
        let ns = if namespaced {
            namespace.to_string()
        } else {
            String::new()
        };
        self.lock().objects.get(&(c, ns, name.to_string())).cloned()
    }

    /// Every object of `kind`.
    pub fn list(&self, kind: &str) -> Vec<Value> {
        self.lock()
            .objects
            .values()
            .filter(|o| o["kind"] == kind)
            .cloned()
            .collect()
    }

    /// A cluster running Cilium `version` with the reference site's BGP pools.
    pub fn with_cilium(version: &str) -> KubeSim {
        let sim = KubeSim::new();
        sim.serve_cilium();
        sim.apply(objects::cilium_daemonset(version));
        for p in objects::reference_pools() {
            sim.apply(p);
        }
        sim
    }

    /// The next `times` requests with `method` whose path contains `fragment` fail with 500.
    pub fn fail_next(&self, method: &str, fragment: &str, times: usize) {
        self.lock()
            .failures
            .push((method.to_string(), fragment.to_string(), times));
    }

    /// Plays Cilium's LB-IPAM from now on: after every change to a Service or a pool, the
    /// Services' status is what Cilium's rules give ([`crate::lbipam`]).
    pub fn simulate_lb_ipam(&self) {
        self.lock().lb_ipam = Some(crate::lbipam::LbIpam::default());
        self.run_lb_ipam();
    }

    /// One LB-IPAM pass; status changes are written like the operator's `/status` updates.
    fn run_lb_ipam(&self) {
        let mut inner = self.lock();
        let Some(mut ipam) = inner.lb_ipam.take() else {
            return;
        };
        let mut pools: Vec<(u64, Value)> = inner
            .objects
            .iter()
            .filter(|(_, o)| o["kind"] == "CiliumLoadBalancerIPPool")
            .map(|(k, o)| (inner.created.get(k).copied().unwrap_or(0), o.clone()))
            .collect();
        pools.sort_by_key(|(seq, _)| *seq);
        let pools: Vec<Value> = pools.into_iter().map(|(_, o)| o).collect();
        let keys: Vec<(Collection, String, String)> = inner
            .objects
            .iter()
            .filter(|(_, o)| o["kind"] == "Service")
            .map(|(k, _)| k.clone())
            .collect();
        let mut services: Vec<Value> = keys.iter().map(|k| inner.objects[k].clone()).collect();
        let changed = ipam.reconcile(&mut services, &pools);
        inner.lb_ipam = Some(ipam);
        drop(inner);
        for (key, svc) in keys.iter().zip(services) {
            if changed.contains(&(key.1.clone(), key.2.clone())) {
                self.store(svc, false);
            }
        }
    }

    /// Write requests (POST, PUT, PATCH, DELETE) seen so far.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| !r.starts_with("GET "))
            .collect()
    }

    /// Requests seen so far ("GET /api/v1/nodes?watch=true&…").
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Every request so far as the API server's authorizer sees it (verb, group, resource,
    /// namespace, name), for comparing with RBAC rules.
    pub fn accesses(&self) -> BTreeSet<Access> {
        self.requests()
            .iter()
            .filter_map(|r| Access::of_request(r))
            .collect()
    }

    /// The router answering the API.
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// Serves on a bound, non-blocking `listener` until the process ends.
    async fn serve_on(&self, listener: std::net::TcpListener) -> std::io::Result<()> {
        axum::serve(tokio::net::TcpListener::from_std(listener)?, self.router()).await
    }

    /// Starts the stand-in on a thread inside network namespace `ns` (on `addr` there) and
    /// returns once it listens, so a client started next finds it.
    pub fn spawn_in_namespace(&self, ns: &str, addr: SocketAddr) {
        let sim = self.clone();
        let inside = ns.to_string();
        let (bound, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            crate::netns::run_in(&inside, move || {
                let listener = match crate::lab::bind_fresh(addr)
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = bound.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = bound.send(Ok(()));
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(async move {
                        if let Err(e) = sim.serve_on(listener).await {
                            eprintln!("kubesim: serving on {addr} stopped: {e}");
                        }
                    })
            })
        });
        match listening.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("kubesim: cannot listen on {addr} in {ns}: {e}"),
            Err(_) => panic!("kubesim: no listener on {addr} in {ns} after 30 s"),
        }
    }
}

/// One request in RBAC's terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub verb: String,
    /// "" for the core group.
    pub group: String,
    /// The plural, with `/status` for the status subresource.
    pub resource: String,
    /// None for cluster-scoped objects and requests across all namespaces.
    pub namespace: Option<String>,
    /// The object's name, for requests on one object.
    pub name: Option<String>,
}

impl Access {
    /// From a logged request ("PUT /apis/…/name?…"), with the verbs the API server derives:
    /// GET on a collection is list (watch with `watch=true`), on an object get; POST create;
    /// PUT update; PATCH patch; DELETE delete (deletecollection on a collection).
    pub fn of_request(line: &str) -> Option<Access> {
        let (method, uri) = line.split_once(' ')?;
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let t = parse_path(path)?;
        let watching = query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1");
        let verb = match (method, t.name.is_some()) {
            ("GET", false) if watching => "watch",
            ("GET", false) => "list",
            ("GET", true) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => return None,
        };
        let resource = if t.status {
            format!("{}/status", t.collection.plural)
        } else {
            t.collection.plural.clone()
        };
        Some(Access {
            verb: verb.into(),
            group: t.collection.group,
            resource,
            namespace: t.namespace,
            name: t.name,
        })
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {group}/{}", self.verb, self.resource)?;
        if let Some(ns) = &self.namespace {
            write!(f, " in {ns}")?;
        }
        if let Some(n) = &self.name {
            write!(f, " named {n}")?;
        }
        Ok(())
    }
}

/// A kubeconfig pointing at the stand-in.
pub fn kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sim\n  cluster:\n    server: {server}\nusers:\n- name: sim\n  user:\n    token: sim\ncontexts:\n- name: sim\n  context:\n    cluster: sim\n    user: sim\ncurrent-context: sim\n"
    )
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    (
        code,
        axum::Json(json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "reason": reason, "code": code.as_u16(), "message": message
        })),
    )
        .into_response()
}

/// Parsed request path.
struct Target {
    collection: Collection,
    namespace: Option<String>,
    name: Option<String>,
    /// The `/status` subresource.
    status: bool,
}

fn parse_path(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, plural, name, status) = match rest {
        ["namespaces", ns, plural] => (Some(ns.to_string()), *plural, None, false),
        ["namespaces", ns, plural, name] => {
            (Some(ns.to_string()), *plural, Some(name.to_string()), false)
        }
        ["namespaces", ns, plural, name, "status"] => {
            (Some(ns.to_string()), *plural, Some(name.to_string()), true)
        }
        [plural] => (None, *plural, None, false),
        [plural, name] => (None, *plural, Some(name.to_string()), false),
        [plural, name, "status"] => (None, *plural, Some(name.to_string()), true),
        _ => return None,
    };
    Some(Target {
        collection: Collection::new(group, version, plural),
        namespace,
        name,
        status,
    })
}

async fn handle(
    State(sim): State<KubeSim>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    sim.lock().requests.push(format!("{method} {uri}"));
    {
        let mut inner = sim.lock();
        let hit = inner.failures.iter_mut().find(|(m, frag, n)| {
            *n > 0 && *m == method.as_str() && uri.path().contains(frag.as_str())
        });
        if let Some(f) = hit {
            f.2 -= 1;
            drop(inner);
            return status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("injected failure for {method} {}", uri.path()),
            );
        }
    }
    let Some(t) = parse_path(uri.path()) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "the server could not find the requested resource ({})",
                uri.path()
            ),
        );
    };
    if !sim.lock().served.contains(&t.collection) {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "the server could not find the requested resource ({})",
                uri.path()
            ),
        );
    }
    match (method, &t.name) {
        (Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            watch(sim, t, query).await
        }
        (Method::GET, None) => list(&sim, &t),
        (Method::GET, Some(name)) => {
            let key = (
                t.collection.clone(),
                t.namespace.clone().unwrap_or_default(),
                name.clone(),
            );
            match sim.lock().objects.get(&key) {
                Some(o) => axum::Json(o.clone()).into_response(),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} \"{name}\" not found", t.collection.plural),
                ),
            }
        }
        (Method::POST, None) | (Method::PUT, Some(_)) => write(&sim, &t, &body),
        (Method::DELETE, Some(name)) => {
            let key = (
                t.collection.clone(),
                t.namespace.clone().unwrap_or_default(),
                name.clone(),
            );
            let existing = sim.lock().objects.get(&key).cloned();
            match existing {
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} \"{name}\" not found", t.collection.plural),
                ),
                Some(obj) => {
                    let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
                    let kind = obj["kind"].as_str().unwrap_or_default().to_string();
                    sim.delete(&api_version, &kind, &key.1, name);
                    axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})).into_response()
                }
            }
        }
        (m, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{m} is not supported by the stand-in"),
        ),
    }
}

fn list(sim: &KubeSim, t: &Target) -> Response {
    let inner = sim.lock();
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((c, ns, _), _)| {
            *c == t.collection && t.namespace.as_ref().is_none_or(|n| n == ns)
        })
        .map(|(_, o)| o.clone())
        .collect();
    axum::Json(json!({
        "kind": "List", "apiVersion": t.collection.api_version(),
        "metadata": { "resourceVersion": inner.rv.to_string() },
        "items": items
    }))
    .into_response()
}

fn write(sim: &KubeSim, t: &Target, body: &[u8]) -> Response {
    let Ok(mut obj) = serde_json::from_slice::<Value>(body) else {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "body is not JSON".into(),
        );
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = t.namespace.clone().unwrap_or_default();
    if !ns.is_empty() {
        obj["metadata"]["namespace"] = json!(ns);
    }
    let key = (t.collection.clone(), ns, name.clone());
    {
        let inner = sim.lock();
        let existing = inner.objects.get(&key);
        match (t.name.is_some(), existing) {
            (false, Some(_)) => {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", t.collection.plural),
                )
            }
            (true, None) => {
                return status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{} \"{name}\" not found", t.collection.plural),
                )
            }
            (true, Some(cur)) => {
                if obj["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"] {
                    return status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", t.collection.plural),
                    );
                }
            }
            (false, None) => {}
        }
    }
    obj["apiVersion"] = json!(t.collection.api_version());
    if obj["kind"].is_null() {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "object without kind".into(),
        );
    }
    // Like the API server: a write to the main resource never changes the status (the
    // controller owns it: `/status`); a write to `/status` changes nothing else.
    let current = sim.lock().objects.get(&key).cloned();
    match (&current, t.status) {
        (Some(cur), true) => {
            let status = obj["status"].clone();
            obj = cur.clone();
            obj["status"] = status;
        }
        (Some(cur), false) => match cur.get("status") {
            Some(st) => obj["status"] = st.clone(),
            None => {
                if let Some(m) = obj.as_object_mut() {
                    m.remove("status");
                }
            }
        },
        (None, _) => {
            if let Some(m) = obj.as_object_mut() {
                m.remove("status");
            }
        }
    }
    sim.apply(obj);
    let stored = sim.lock().objects.get(&key).cloned().unwrap_or_default();
    let code = if t.name.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (code, axum::Json(stored)).into_response()
}

async fn watch(sim: KubeSim, t: Target, query: BTreeMap<String, String>) -> Response {
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(60)
        .min(60);
    let mut live = sim.events.subscribe();
    let matches = {
        let collection = t.collection.clone();
        let namespace = t.namespace.clone();
        move |e: &WatchEvent| {
            e.collection == collection
                && namespace
                    .as_ref()
                    .is_none_or(|n| e.object["metadata"]["namespace"].as_str() == Some(n))
        }
    };
    let backlog: Vec<WatchEvent> = sim
        .lock()
        .log
        .iter()
        .filter(|e| e.rv > from && matches(e))
        .cloned()
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        let line = |e: &WatchEvent| {
            Bytes::from(format!("{}\n", json!({"type": e.kind, "object": e.object})))
        };
        let mut last = from;
        for e in &backlog {
            last = e.rv;
            if tx.send(Ok(line(e))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        loop {
            match tokio::time::timeout_at(deadline, live.recv()).await {
                Ok(Ok(e)) if e.rv > last && matches(&e) => {
                    last = e.rv;
                    if tx.send(Ok(line(&e))).await.is_err() {
                        return;
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => return,
                Ok(Err(_)) | Err(_) => return,
            }
        }
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("response")
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Objects shaped like the API server's, for the stand-in.
pub mod objects {
    use serde_json::{json, Value};

    pub fn node(name: &str, ipv4: &str, ipv6: Option<&str>, ready: bool) -> Value {
        let mut addresses = vec![json!({"type": "InternalIP", "address": ipv4})];
        if let Some(v6) = ipv6 {
            addresses.push(json!({"type": "InternalIP", "address": v6}));
        }
        addresses.push(json!({"type": "Hostname", "address": name}));
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
            "spec": {},
            "status": {
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "reason": "KubeletReady"}],
                "addresses": addresses
            }
        })
    }

    /// A LoadBalancer service with its IPs already assigned (the stand-in plays LB-IPAM),
    /// externalTrafficPolicy Cluster (announced from every node).
    pub fn service(namespace: &str, name: &str, ips: &[&str], port: u16) -> Value {
        service_with_policy(namespace, name, ips, port, "Cluster")
    }

    /// Like [`service`] with externalTrafficPolicy `Local` or `Cluster`.
    pub fn service_with_policy(
        namespace: &str,
        name: &str,
        ips: &[&str],
        port: u16,
        policy: &str,
    ) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": policy,
                     "ports": [{"port": port, "protocol": "TCP", "targetPort": port}]},
            "status": {"loadBalancer": {"ingress": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>()}}
        })
    }

    pub fn endpoint_slice(namespace: &str, service: &str, nodes: &[&str]) -> Value {
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{service}-sim"), "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": nodes.iter().enumerate().map(|(i, n)| json!({
                "addresses": [format!("10.244.{i}.10")], "conditions": {"ready": true}, "nodeName": n
            })).collect::<Vec<_>>()
        })
    }

    /// A CiliumLoadBalancerIPPool (cilium.io/v2) with `blocks` as START-STOP or CIDR strings.
    pub fn pool(name: &str, blocks: &[&str], disabled: bool) -> Value {
        let blocks: Vec<Value> = blocks
            .iter()
            .map(|b| match b.split_once('-') {
                Some((start, stop)) => json!({"start": start, "stop": stop}),
                None => json!({"cidr": b}),
            })
            .collect();
        json!({
            "apiVersion": "cilium.io/v2", "kind": "CiliumLoadBalancerIPPool",
            "metadata": {"name": name},
            "spec": {"blocks": blocks, "disabled": disabled, "allowFirstLastIPs": "Yes"}
        })
    }

    pub fn bgp_cluster_config(name: &str) -> Value {
        json!({
            "apiVersion": "cilium.io/v2", "kind": "CiliumBGPClusterConfig",
            "metadata": {"name": name},
            "spec": {"bgpInstances": [{"name": "bgplb", "localASN": 64513, "peers": []}]}
        })
    }

    pub fn cilium_daemonset(version: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "cilium", "namespace": "kube-system"},
            "spec": {"selector": {"matchLabels": {"k8s-app": "cilium"}},
                     "template": {"metadata": {"labels": {"k8s-app": "cilium"}},
                                  "spec": {"containers": [{"name": "cilium-agent", "image": format!("quay.io/cilium/cilium:v{version}@sha256:0")}]}}}
        })
    }

    /// The reference site's pools, as Cilium objects.
    pub fn reference_pools() -> Vec<Value> {
        vec![
            pool("bgp-default", &["172.29.52.100-172.29.52.199"], false),
            pool("bgp-ingress", &["172.29.52.200-172.29.52.220"], false),
            pool("bgp-reserved", &["172.29.52.50-172.29.52.99"], true),
            pool("bgp-default-ipv6", &["fd47:25e1:2f96:52:100::/120"], false),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_become_the_verbs_the_authorizer_checks() {
        let a = |l: &str| Access::of_request(l).unwrap().to_string();
        assert_eq!(
            a("GET /api/v1/nodes?&watch=true&resourceVersion=1"),
            "watch core/nodes"
        );
        assert_eq!(a("GET /api/v1/services?"), "list core/services");
        assert_eq!(
            a("PUT /apis/coordination.k8s.io/v1/namespaces/bgplb/leases/x"),
            "update coordination.k8s.io/leases in bgplb named x"
        );
        assert_eq!(
            a("POST /apis/cilium.io/v2/ciliumloadbalancerippools?"),
            "create cilium.io/ciliumloadbalancerippools"
        );
        assert_eq!(
            a("PUT /api/v1/namespaces/web/services/api/status"),
            "update core/services/status in web named api"
        );
    }

    #[test]
    fn paths_parse() {
        let t = parse_path("/apis/coordination.k8s.io/v1/namespaces/bgplb/leases/x").unwrap();
        assert_eq!(
            t.collection,
            Collection::new("coordination.k8s.io", "v1", "leases")
        );
        assert_eq!(
            (t.namespace.as_deref(), t.name.as_deref()),
            (Some("bgplb"), Some("x"))
        );
        let t = parse_path("/api/v1/nodes").unwrap();
        assert_eq!((t.collection.plural.as_str(), t.name), ("nodes", None));
    }
}
