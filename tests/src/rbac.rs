//! Kubernetes RBAC as the API server's authorizer applies it, to compare the companion's
//! manifests with the requests the API stand-in saw ([`crate::kubesim::Access`]).
//!
//! A ClusterRole bound by a ClusterRoleBinding grants in every namespace (and on cluster-scoped
//! objects); a Role, or a ClusterRole bound by a RoleBinding, only in the binding's namespace.
//! `resourceNames` restrict a rule to requests naming one of those objects: like the real
//! authorizer, such a rule never covers list, watch or create (their URLs name no object).

use serde_json::Value;

use crate::kubesim::Access;

/// One rule as granted to the subject, with where it applies.
#[derive(Debug, Clone)]
pub struct Grant {
    /// "ClusterRole/bgplb-companion" or "Role/kube-system/bgplb-companion-cilium".
    pub role: String,
    /// None: every namespace and cluster-scoped objects.
    pub namespace: Option<String>,
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    pub names: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// The grants the ServiceAccount `namespace/name` receives from the objects in `docs`.
pub fn grants(docs: &[Value], namespace: &str, name: &str) -> Vec<Grant> {
    let role = |kind: &str, ns: Option<&str>, role_name: &str| {
        docs.iter().find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"] == role_name
                && (kind == "ClusterRole" || d["metadata"]["namespace"].as_str() == ns)
        })
    };
    let mut out = Vec::new();
    for b in docs {
        let kind = b["kind"].as_str().unwrap_or_default();
        if kind != "ClusterRoleBinding" && kind != "RoleBinding" {
            continue;
        }
        let bound = b["subjects"].as_array().into_iter().flatten().any(|s| {
            s["kind"] == "ServiceAccount" && s["name"] == name && s["namespace"] == namespace
        });
        if !bound {
            continue;
        }
        let binding_ns = b["metadata"]["namespace"].as_str();
        let ref_kind = b["roleRef"]["kind"].as_str().unwrap_or_default();
        let ref_name = b["roleRef"]["name"].as_str().unwrap_or_default();
        let r = role(ref_kind, binding_ns, ref_name).unwrap_or_else(|| {
            panic!(
                "{kind} {} refers to {ref_kind} {ref_name}, which is not in the manifests",
                b["metadata"]["name"]
            )
        });
        let scope = if kind == "ClusterRoleBinding" {
            None
        } else {
            binding_ns.map(String::from)
        };
        let label = match ref_kind {
            "Role" => format!("Role/{}/{ref_name}", binding_ns.unwrap_or_default()),
            _ => format!("ClusterRole/{ref_name}"),
        };
        for rule in r["rules"].as_array().into_iter().flatten() {
            out.push(Grant {
                role: label.clone(),
                namespace: scope.clone(),
                groups: strings(&rule["apiGroups"]),
                resources: strings(&rule["resources"]),
                verbs: strings(&rule["verbs"]),
                names: strings(&rule["resourceNames"]),
            });
        }
    }
    out
}

impl Grant {
    pub fn covers(&self, a: &Access) -> bool {
        let any = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
        any(&self.groups, &a.group)
            && any(&self.resources, &a.resource)
            && any(&self.verbs, &a.verb)
            && match &self.namespace {
                None => true,
                Some(ns) => a.namespace.as_deref() == Some(ns),
            }
            && (self.names.is_empty() || a.name.as_ref().is_some_and(|n| self.names.contains(n)))
    }

    /// Every permission the rule spells out, one per (group, resource, verb, name), as text.
    fn parts(&self) -> Vec<(String, Grant)> {
        let mut out = Vec::new();
        let names: Vec<Option<&String>> = if self.names.is_empty() {
            vec![None]
        } else {
            self.names.iter().map(Some).collect()
        };
        for g in &self.groups {
            for r in &self.resources {
                for v in &self.verbs {
                    for n in &names {
                        let one = Grant {
                            role: self.role.clone(),
                            namespace: self.namespace.clone(),
                            groups: vec![g.clone()],
                            resources: vec![r.clone()],
                            verbs: vec![v.clone()],
                            names: n.map(|n| vec![n.clone()]).unwrap_or_default(),
                        };
                        let group = if g.is_empty() { "core" } else { g };
                        let mut text = format!("{}: {v} {group}/{r}", self.role);
                        if let Some(n) = n {
                            text.push_str(&format!(" named {n}"));
                        }
                        out.push((text, one));
                    }
                }
            }
        }
        out
    }
}

/// Requests no grant covers: what the manifests are missing.
pub fn uncovered(grants: &[Grant], accesses: &[Access]) -> Vec<String> {
    accesses
        .iter()
        .filter(|a| !grants.iter().any(|g| g.covers(a)))
        .map(|a| a.to_string())
        .collect()
}

/// Permissions of `grants` no request used: what the manifests grant in vain.
pub fn unused(grants: &[Grant], accesses: &[Access]) -> Vec<String> {
    grants
        .iter()
        .flat_map(Grant::parts)
        .filter(|(_, one)| !accesses.iter().any(|a| one.covers(a)))
        .map(|(text, _)| text)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docs() -> Vec<Value> {
        vec![
            json!({"kind": "ClusterRole", "metadata": {"name": "read"},
                   "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "read"},
                   "roleRef": {"kind": "ClusterRole", "name": "read"},
                   "subjects": [{"kind": "ServiceAccount", "name": "c", "namespace": "bgplb"}]}),
            json!({"kind": "Role", "metadata": {"name": "lease", "namespace": "bgplb"},
                   "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "update"], "resourceNames": ["c"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "lease", "namespace": "bgplb"},
                   "roleRef": {"kind": "Role", "name": "lease"},
                   "subjects": [{"kind": "ServiceAccount", "name": "c", "namespace": "bgplb"}]}),
        ]
    }

    fn access(line: &str) -> Access {
        Access::of_request(line).unwrap()
    }

    #[test]
    fn names_and_namespaces_limit_what_a_role_covers() {
        let g = grants(&docs(), "bgplb", "c");
        assert_eq!(g.len(), 2);
        let ok = [
            access("GET /api/v1/nodes?watch=true"),
            access("GET /api/v1/nodes"),
            access("GET /apis/coordination.k8s.io/v1/namespaces/bgplb/leases/c"),
            access("PUT /apis/coordination.k8s.io/v1/namespaces/bgplb/leases/c"),
        ];
        assert!(uncovered(&g, &ok).is_empty());
        assert!(unused(&g, &ok).is_empty());
        let missing = uncovered(
            &g,
            &[
                access("POST /apis/coordination.k8s.io/v1/namespaces/bgplb/leases"),
                access("GET /apis/coordination.k8s.io/v1/namespaces/other/leases/c"),
                access("GET /apis/coordination.k8s.io/v1/namespaces/bgplb/leases/d"),
                access("GET /api/v1/nodes/n1"),
            ],
        );
        assert_eq!(missing.len(), 4, "{missing:?}");
        assert_eq!(
            unused(&g, &ok[..2]),
            [
                "Role/bgplb/lease: get coordination.k8s.io/leases named c",
                "Role/bgplb/lease: update coordination.k8s.io/leases named c"
            ]
        );
        assert!(grants(&docs(), "bgplb", "someone-else").is_empty());
    }
}
