//! kube-rs watchers feeding the projection.
//!
//! Every watched kind keeps its objects in a [`Shared`] map (namespace/name → object), replaced
//! atomically when a watch (re)starts and updated per event, and pokes a [`Notify`] on every change.
//! Core kinds are typed; Cilium's CRDs are `DynamicObject`s tried in order of API version, because
//! they may be missing (Cilium not installed yet, an older Cilium): a missing CRD is an empty set,
//! probed again every [`CRD_RETRY`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::project::{BgpObjects, Observed};

/// How often a missing CRD is looked for again.
pub const CRD_RETRY: Duration = Duration::from_secs(30);

/// Objects of one kind, by namespace/name, and whether a full list has been seen.
pub struct Shared<K>(
    Arc<RwLock<BTreeMap<String, K>>>,
    Arc<std::sync::atomic::AtomicBool>,
);

impl<K> Clone for Shared<K> {
    fn clone(&self) -> Self {
        Shared(self.0.clone(), self.1.clone())
    }
}

impl<K> Default for Shared<K> {
    fn default() -> Self {
        Shared(Arc::new(RwLock::new(BTreeMap::new())), Default::default())
    }
}

impl<K: Clone> Shared<K> {
    /// Whether the watcher has listed everything at least once (before that, an empty map means
    /// "not known yet", not "none").
    pub fn synced(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn items(&self) -> Vec<K> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn replace(&self, map: BTreeMap<String, K>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = map;
        self.1.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn insert(&self, key: String, obj: K) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, obj);
    }

    fn remove(&self, key: &str) {
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

fn key<K: Resource>(obj: &K) -> String {
    let m = obj.meta();
    format!(
        "{}/{}",
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or("")
    )
}

/// The outcome of one watch run.
enum Ended {
    /// The resource does not exist on the server (404 on list): a CRD that is not installed.
    Missing,
    /// The stream ended (it does not, normally).
    Closed,
}

/// Runs a watcher on `api` into `into` until the resource turns out to be missing.
async fn run_watch<K>(api: Api<K>, into: Shared<K>, notify: Arc<Notify>, what: &str) -> Ended
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut buffer: Option<BTreeMap<String, K>> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => buffer = Some(BTreeMap::new()),
            Ok(Event::InitApply(o)) => {
                buffer.get_or_insert_with(BTreeMap::new).insert(key(&o), o);
            }
            Ok(Event::InitDone) => {
                into.replace(buffer.take().unwrap_or_default());
                tracing::debug!(kind = what, objects = into.len(), "listed");
                notify.notify_one();
            }
            Ok(Event::Apply(o)) => {
                into.insert(key(&o), o);
                notify.notify_one();
            }
            Ok(Event::Delete(o)) => {
                into.remove(&key(&o));
                notify.notify_one();
            }
            Err(watcher::Error::InitialListFailed(kube::Error::Api(s))) if s.code == 404 => {
                return Ended::Missing;
            }
            Err(e) => {
                // The backoff in the stream paces the retries.
                tracing::warn!(kind = what, error = %e, "watch failed; retrying");
            }
        }
    }
    Ended::Closed
}

/// Watches a core kind forever.
pub fn spawn_typed<K>(api: Api<K>, into: Shared<K>, notify: Arc<Notify>, what: &'static str)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            match run_watch(api.clone(), into.clone(), notify.clone(), what).await {
                Ended::Missing => {
                    tracing::warn!(kind = what, "the API server does not serve this kind");
                    tokio::time::sleep(CRD_RETRY).await;
                }
                Ended::Closed => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    });
}

/// A CRD kind in the versions to try, newest first.
pub fn cilium_kind(kind: &str, plural: &str, versions: &[&str]) -> Vec<ApiResource> {
    versions
        .iter()
        .map(|v| {
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("cilium.io", v, kind), plural)
        })
        .collect()
}

/// Watches a CRD that may be missing, trying `versions` in order; the map holds the objects of
/// the first version the server serves, and is empty while none is.
pub fn spawn_dynamic(
    client: Client,
    versions: Vec<ApiResource>,
    into: Shared<DynamicObject>,
    notify: Arc<Notify>,
    what: &'static str,
    retry: Duration,
) {
    tokio::spawn(async move {
        loop {
            let mut served = false;
            for ar in &versions {
                let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
                match run_watch(api, into.clone(), notify.clone(), what).await {
                    Ended::Missing => continue,
                    Ended::Closed => {
                        served = true;
                        break;
                    }
                }
            }
            if !served {
                if !into.is_empty() {
                    into.replace(BTreeMap::new());
                    notify.notify_one();
                }
                tracing::debug!(kind = what, "CRD not installed; looking again later");
                tokio::time::sleep(retry).await;
            }
        }
    });
}

/// Everything watched, readable as an [`Observed`] snapshot.
#[derive(Clone, Default)]
pub struct Watched {
    pub nodes: Shared<Node>,
    pub services: Shared<Service>,
    pub endpoint_slices: Shared<EndpointSlice>,
    pub pools: Shared<DynamicObject>,
    pub cluster_configs_v2: Shared<DynamicObject>,
    pub cluster_configs_v2alpha1: Shared<DynamicObject>,
    pub peering_policies: Shared<DynamicObject>,
    pub l2_policies: Shared<DynamicObject>,
    pub cilium_version: Arc<RwLock<Option<String>>>,
}

impl Watched {
    /// Starts every watcher; `notify` fires on any change.
    pub fn start(
        client: Client,
        cilium_namespace: &str,
        cilium_daemonset: &str,
        notify: Arc<Notify>,
    ) -> Watched {
        Watched::start_with(
            client,
            cilium_namespace,
            cilium_daemonset,
            notify,
            CRD_RETRY,
        )
    }

    /// Like [`Watched::start`], probing for missing CRDs every `crd_retry`.
    pub fn start_with(
        client: Client,
        cilium_namespace: &str,
        cilium_daemonset: &str,
        notify: Arc<Notify>,
        crd_retry: Duration,
    ) -> Watched {
        let w = Watched::default();
        spawn_typed(
            Api::<Node>::all(client.clone()),
            w.nodes.clone(),
            notify.clone(),
            "Node",
        );
        spawn_typed(
            Api::<Service>::all(client.clone()),
            w.services.clone(),
            notify.clone(),
            "Service",
        );
        spawn_typed(
            Api::<EndpointSlice>::all(client.clone()),
            w.endpoint_slices.clone(),
            notify.clone(),
            "EndpointSlice",
        );
        let crd = |kind, plural, versions: &[&str], into: &Shared<DynamicObject>, what| {
            spawn_dynamic(
                client.clone(),
                cilium_kind(kind, plural, versions),
                into.clone(),
                notify.clone(),
                what,
                crd_retry,
            );
        };
        crd(
            "CiliumLoadBalancerIPPool",
            "ciliumloadbalancerippools",
            &["v2", "v2alpha1"],
            &w.pools,
            "CiliumLoadBalancerIPPool",
        );
        crd(
            "CiliumBGPClusterConfig",
            "ciliumbgpclusterconfigs",
            &["v2"],
            &w.cluster_configs_v2,
            "CiliumBGPClusterConfig v2",
        );
        crd(
            "CiliumBGPClusterConfig",
            "ciliumbgpclusterconfigs",
            &["v2alpha1"],
            &w.cluster_configs_v2alpha1,
            "CiliumBGPClusterConfig v2alpha1",
        );
        crd(
            "CiliumBGPPeeringPolicy",
            "ciliumbgppeeringpolicies",
            &["v2alpha1"],
            &w.peering_policies,
            "CiliumBGPPeeringPolicy",
        );
        crd(
            "CiliumL2AnnouncementPolicy",
            "ciliuml2announcementpolicies",
            &["v2alpha1"],
            &w.l2_policies,
            "CiliumL2AnnouncementPolicy",
        );
        spawn_cilium_version(
            client,
            cilium_namespace.into(),
            cilium_daemonset.into(),
            w.cilium_version.clone(),
            notify,
        );
        w
    }

    /// Whether the core kinds have been listed once: reporting before that would report a
    /// cluster without nodes.
    pub fn synced(&self) -> bool {
        self.nodes.synced() && self.services.synced() && self.endpoint_slices.synced()
    }

    pub fn observed(&self) -> Observed {
        Observed {
            nodes: self.nodes.items(),
            services: self.services.items(),
            endpoint_slices: self.endpoint_slices.items(),
            pools: self.pools.items(),
            bgp: BgpObjects {
                cluster_configs_v2: self.cluster_configs_v2.len(),
                cluster_configs_v2alpha1: self.cluster_configs_v2alpha1.len(),
                peering_policies: self.peering_policies.len(),
            },
            l2_policies: self.l2_policies.items(),
            cilium_version: self
                .cilium_version
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// The Cilium version from the agent DaemonSet's image tag (`quay.io/cilium/cilium:v1.18.2@sha…`).
pub fn version_from_image(image: &str) -> Option<String> {
    let without_digest = image.split('@').next()?;
    let tag = without_digest.rsplit_once(':')?.1;
    if tag.contains('/') {
        return None;
    }
    Some(tag.trim_start_matches('v').to_string())
}

fn spawn_cilium_version(
    client: Client,
    namespace: String,
    name: String,
    into: Arc<RwLock<Option<String>>>,
    notify: Arc<Notify>,
) {
    tokio::spawn(async move {
        let api: Api<DaemonSet> = Api::namespaced(client, &namespace);
        loop {
            let version = match api.get_opt(&name).await {
                Ok(Some(ds)) => ds
                    .spec
                    .and_then(|s| s.template.spec)
                    .and_then(|p| p.containers.into_iter().next())
                    .and_then(|c| c.image)
                    .and_then(|i| version_from_image(&i)),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read the Cilium DaemonSet");
                    None
                }
            };
            let changed = {
                let mut v = into.write().unwrap_or_else(|p| p.into_inner());
                let changed = *v != version;
                *v = version;
                changed
            };
            if changed {
                notify.notify_one();
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cilium_version_from_image() {
        assert_eq!(
            version_from_image("quay.io/cilium/cilium:v1.18.2@sha256:abc").as_deref(),
            Some("1.18.2")
        );
        assert_eq!(
            version_from_image("quay.io/cilium/cilium:v1.16.0").as_deref(),
            Some("1.16.0")
        );
        assert_eq!(version_from_image("localhost:5000/cilium"), None);
    }
}
