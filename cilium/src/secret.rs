//! The Secret a peer config's `authSecretRef` names (key `password`, in Cilium's BGP secrets
//! namespace), when the site sets a BGP password: either the Secret itself, or an
//! ExternalSecret that makes it from the operator's secret store (home-ops repositories keep no
//! plain Secrets in Git).

use serde_json::{json, Value};

use crate::naming;

/// Where the password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The password itself (read from the site's `bgp.password_file`).
    Plain(String),
    /// An External Secrets Operator reference.
    External(ExternalRef),
}

/// `--external-secret [SecretStore/]STORE:KEY[#PROPERTY]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRef {
    /// `ClusterSecretStore` unless the reference starts with `SecretStore/`.
    pub store_kind: String,
    pub store: String,
    pub key: String,
    pub property: Option<String>,
}

impl std::str::FromStr for ExternalRef {
    type Err = String;

    fn from_str(s: &str) -> Result<ExternalRef, String> {
        let usage = "expected [SecretStore/]STORE:KEY[#PROPERTY], e.g. vault:bgplb/bgp-password \
                     (STORE is a ClusterSecretStore unless prefixed with SecretStore/)";
        let (store, rest) = s.split_once(':').ok_or_else(|| format!("`{s}`: {usage}"))?;
        let (store_kind, store) = match store.split_once('/') {
            Some(("SecretStore", name)) => ("SecretStore", name),
            Some(("ClusterSecretStore", name)) => ("ClusterSecretStore", name),
            Some((kind, _)) => {
                return Err(format!(
                    "`{s}`: the store kind `{kind}` is neither SecretStore nor ClusterSecretStore"
                ))
            }
            None => ("ClusterSecretStore", store),
        };
        let (key, property) = match rest.split_once('#') {
            Some((k, p)) => (k, Some(p.to_string())),
            None => (rest, None),
        };
        if !crate::meta::is_dns_subdomain(store) {
            return Err(format!(
                "`{s}`: the store name `{store}` is not a valid object name"
            ));
        }
        if key.is_empty() || property.as_deref() == Some("") {
            return Err(format!("`{s}`: {usage}"));
        }
        Ok(ExternalRef {
            store_kind: store_kind.to_string(),
            store: store.to_string(),
            key: key.to_string(),
            property,
        })
    }
}

/// The object that provides Secret `name` (key `password`) in [`naming::SECRETS_NAMESPACE`].
pub fn password_object(cluster: &str, name: &str, source: &PasswordSource) -> Value {
    let metadata = json!({
        "name": name,
        "namespace": naming::SECRETS_NAMESPACE,
        "labels": naming::labels(cluster),
    });
    match source {
        PasswordSource::Plain(password) => json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": metadata,
            "type": "Opaque",
            "stringData": {"password": password},
        }),
        PasswordSource::External(r) => {
            let mut remote = json!({"key": r.key});
            if let Some(p) = &r.property {
                remote["property"] = json!(p);
            }
            json!({
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": metadata,
                "spec": {
                    "refreshInterval": "1h",
                    "secretStoreRef": {"kind": r.store_kind, "name": r.store},
                    "target": {"name": name, "creationPolicy": "Owner"},
                    "data": [{"secretKey": "password", "remoteRef": remote}],
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_references_parse_with_their_store_kind_and_property() {
        let r: ExternalRef = "vault:bgplb/bgp-password".parse().unwrap();
        assert_eq!(
            (
                r.store_kind.as_str(),
                r.store.as_str(),
                r.key.as_str(),
                r.property
            ),
            ("ClusterSecretStore", "vault", "bgplb/bgp-password", None)
        );
        let r: ExternalRef = "SecretStore/onepassword:bgplb#password".parse().unwrap();
        assert_eq!(r.store_kind, "SecretStore");
        assert_eq!(r.property.as_deref(), Some("password"));
        for bad in [
            "vault",
            "vault:",
            "Vault_Store:key",
            "Other/x:key",
            "x:key#",
        ] {
            assert!(bad.parse::<ExternalRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_secret_or_the_external_secret_provides_the_key_cilium_reads() {
        let s = password_object(
            "home",
            naming::DEFAULT_PASSWORD_SECRET,
            &PasswordSource::Plain("s3cret".into()),
        );
        assert_eq!(s["kind"], "Secret");
        assert_eq!(s["metadata"]["namespace"], "kube-system");
        assert_eq!(s["stringData"]["password"], "s3cret");
        let e = password_object(
            "home",
            naming::DEFAULT_PASSWORD_SECRET,
            &PasswordSource::External("vault:bgplb/bgp".parse().unwrap()),
        );
        assert_eq!(e["spec"]["target"]["name"], "bgplb-bgp-password");
        assert_eq!(e["spec"]["data"][0]["secretKey"], "password");
        assert_eq!(e["spec"]["data"][0]["remoteRef"]["key"], "bgplb/bgp");
        assert!(e.to_string().find("s3cret").is_none());
    }
}
