//! Kubernetes objects as JSON, for the migration: list/get/create-or-replace/delete by
//! apiVersion + kind. Every write goes through [`DynKube::write`], so a dry run provably writes
//! nothing.

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use kube::Client;
use serde_json::Value;

/// (kind → plural, namespaced) for the kinds the migration touches.
pub fn plural(kind: &str) -> Option<(&'static str, bool)> {
    Some(match kind {
        "Service" => ("services", true),
        "ConfigMap" => ("configmaps", true),
        "CiliumLoadBalancerIPPool" => ("ciliumloadbalancerippools", false),
        "CiliumBGPClusterConfig" => ("ciliumbgpclusterconfigs", false),
        "CiliumBGPPeerConfig" => ("ciliumbgppeerconfigs", false),
        "CiliumBGPAdvertisement" => ("ciliumbgpadvertisements", false),
        "CiliumBGPPeeringPolicy" => ("ciliumbgppeeringpolicies", false),
        "CiliumL2AnnouncementPolicy" => ("ciliuml2announcementpolicies", false),
        // Read only (verify-bgp-peering): Cilium's per-node BGP status.
        "CiliumBGPNodeConfig" => ("ciliumbgpnodeconfigs", false),
        _ => return None,
    })
}

/// Identifies one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn of(o: &Value) -> Option<ObjectRef> {
        let kind = o.get("kind")?.as_str()?.to_string();
        let (_, namespaced) = plural(&kind)?;
        Some(ObjectRef {
            api_version: o.get("apiVersion")?.as_str()?.to_string(),
            namespace: if namespaced {
                Some(
                    o.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("default")
                        .to_string(),
                )
            } else {
                None
            },
            kind,
            name: o.pointer("/metadata/name")?.as_str()?.to_string(),
        })
    }
}

impl ObjectRef {
    /// A cluster-scoped object (Cilium's pools and policies).
    pub fn cluster(api_version: &str, kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    /// A namespaced object.
    pub fn namespaced(api_version: &str, kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{op} {object}: {message}")]
pub struct KubeError {
    pub op: &'static str,
    pub object: String,
    pub message: String,
}

#[derive(Clone)]
pub struct DynKube {
    client: Client,
    pub dry_run: bool,
}

fn resource(api_version: &str, kind: &str) -> Option<(ApiResource, bool)> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let (plural, namespaced) = plural(kind)?;
    Some((
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural),
        namespaced,
    ))
}

impl DynKube {
    pub fn new(client: Client, dry_run: bool) -> DynKube {
        DynKube { client, dry_run }
    }

    fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Api<DynamicObject>, KubeError> {
        let (ar, namespaced) = resource(api_version, kind).ok_or_else(|| KubeError {
            op: "use",
            object: kind.to_string(),
            message: "a kind the migration does not handle".into(),
        })?;
        Ok(match (namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// All objects of a kind; a kind the server does not serve is an empty list.
    pub async fn list(&self, api_version: &str, kind: &str) -> Result<Vec<Value>, KubeError> {
        let api = self.api(api_version, kind, None)?;
        match api.list(&ListParams::default()).await {
            Ok(l) => Ok(l
                .items
                .into_iter()
                .map(|o| to_value(&o, api_version, kind))
                .collect()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
            Err(e) => Err(KubeError {
                op: "list",
                object: kind.into(),
                message: e.to_string(),
            }),
        }
    }

    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, KubeError> {
        let api = self.api(&r.api_version, &r.kind, r.namespace.as_deref())?;
        match api.get_opt(&r.name).await {
            Ok(o) => Ok(o.map(|o| to_value(&o, &r.api_version, &r.kind))),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(KubeError {
                op: "get",
                object: r.to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Creates `obj`, or replaces the existing object (keeping its resourceVersion, so a
    /// concurrent change is a conflict, not lost). Nothing is sent in a dry run.
    pub async fn write(&self, obj: &Value) -> Result<(), KubeError> {
        let r = ObjectRef::of(obj).ok_or_else(|| KubeError {
            op: "write",
            object: "object".into(),
            message: "without apiVersion/kind/name".into(),
        })?;
        if self.dry_run {
            return Ok(());
        }
        let api = self.api(&r.api_version, &r.kind, r.namespace.as_deref())?;
        let mut obj = obj.clone();
        strip_server_fields(&mut obj);
        let current = self.get(&r).await?;
        let result = match current {
            Some(cur) => {
                obj["metadata"]["resourceVersion"] = cur
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(Value::Null);
                let d: DynamicObject = serde_json::from_value(obj).map_err(|e| KubeError {
                    op: "replace",
                    object: r.to_string(),
                    message: e.to_string(),
                })?;
                api.replace(&r.name, &PostParams::default(), &d)
                    .await
                    .map(|_| ())
            }
            None => {
                let d: DynamicObject = serde_json::from_value(obj).map_err(|e| KubeError {
                    op: "create",
                    object: r.to_string(),
                    message: e.to_string(),
                })?;
                api.create(&PostParams::default(), &d).await.map(|_| ())
            }
        };
        result.map_err(|e| KubeError {
            op: "write",
            object: r.to_string(),
            message: e.to_string(),
        })
    }

    /// Deletes an object; gone already is fine. Nothing is sent in a dry run.
    pub async fn delete(&self, r: &ObjectRef) -> Result<(), KubeError> {
        if self.dry_run {
            return Ok(());
        }
        let api = self.api(&r.api_version, &r.kind, r.namespace.as_deref())?;
        match api.delete(&r.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(KubeError {
                op: "delete",
                object: r.to_string(),
                message: e.to_string(),
            }),
        }
    }
}

/// Removes what the server owns, so a backed-up object can be written back as it was.
pub fn strip_server_fields(o: &mut Value) {
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            m.remove(k);
        }
    }
}

fn to_value(o: &DynamicObject, api_version: &str, kind: &str) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    v["apiVersion"] = Value::String(api_version.into());
    v["kind"] = Value::String(kind.into());
    v
}
