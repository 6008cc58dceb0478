//! The Kubernetes pieces every object shares: metadata and label selectors (Cilium's "slim"
//! LabelSelector has the same shape as Kubernetes' own).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The part of `metadata` bgplb sets. All Cilium objects rendered here are cluster-scoped, so
/// there is no namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `metav1.LabelSelector`: the requirements are ANDed; an empty selector's meaning depends on the
/// field (several Cilium fields select nothing when empty), so bgplb never renders one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Non-empty for In/NotIn, empty (and so not rendered) for Exists/DoesNotExist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    /// `key: value`.
    pub fn label(key: &str, value: &str) -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::from([(key.to_string(), value.to_string())]),
            match_expressions: Vec::new(),
        }
    }

    /// Objects without the label `key` (so, by default, every object).
    pub fn without(key: &str) -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: key.to_string(),
                operator: Operator::DoesNotExist,
                values: Vec::new(),
            }],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Kubernetes' matching rules, for tests and for the companion's own checks.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator {
                    Operator::In => value.is_some_and(|v| r.values.contains(v)),
                    Operator::NotIn => !value.is_some_and(|v| r.values.contains(v)),
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                }
            })
    }
}

/// Whether `s` is a DNS-1123 subdomain (the rule for a cluster-scoped object's name).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Whether `s` is a valid label value (at most 63 characters, alphanumeric at both ends,
/// `-_.` inside).
pub fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let none = labels(&[]);
        let pool = labels(&[("bgplb.io/pool", "bgp-ingress")]);
        assert!(LabelSelector::without("bgplb.io/pool").matches(&none));
        assert!(!LabelSelector::without("bgplb.io/pool").matches(&pool));
        assert!(LabelSelector::label("bgplb.io/pool", "bgp-ingress").matches(&pool));
        assert!(!LabelSelector::label("bgplb.io/pool", "bgp-default").matches(&pool));
        assert!(!LabelSelector::label("bgplb.io/pool", "bgp-ingress").matches(&none));
        // The empty selector matches everything by Kubernetes' rules; Cilium's BGP
        // advertisements treat it as "nothing", which is why bgplb never renders one.
        assert!(LabelSelector::default().matches(&pool));
        assert!(LabelSelector::default().is_empty());
    }

    #[test]
    fn names() {
        assert!(is_dns_subdomain("bgp-default"));
        assert!(is_dns_subdomain("bgplb-home.v4"));
        assert!(!is_dns_subdomain("Bgp"));
        assert!(!is_dns_subdomain("-a"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(is_label_value("bgp-default-ipv6"));
        assert!(is_label_value(""));
        assert!(!is_label_value("-x"));
        assert!(!is_label_value(&"a".repeat(64)));
    }
}
