//! Reading Cilium objects as JSON: fields by pointer, labels, label selectors, conditions.
//! Every accessor tolerates missing or oddly typed fields (a validator must not panic on the
//! cluster it is judging).

use std::collections::BTreeMap;

use serde_json::Value;

pub(super) fn name(o: &Value) -> &str {
    str_at(o, "/metadata/name").unwrap_or("<unnamed>")
}

pub(super) fn kind(o: &Value) -> &str {
    str_at(o, "/kind").unwrap_or("")
}

pub(super) fn str_at<'a>(o: &'a Value, pointer: &str) -> Option<&'a str> {
    o.pointer(pointer).and_then(Value::as_str)
}

pub(super) fn u64_at(o: &Value, pointer: &str) -> Option<u64> {
    o.pointer(pointer).and_then(Value::as_u64)
}

pub(super) fn bool_at(o: &Value, pointer: &str) -> Option<bool> {
    o.pointer(pointer).and_then(Value::as_bool)
}

/// The elements of the array at `pointer`; none when it is missing or not an array.
pub(super) fn array<'a>(o: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The strings of the array at `pointer`.
pub(super) fn strings<'a>(o: &'a Value, pointer: &str) -> Vec<&'a str> {
    array(o, pointer).filter_map(Value::as_str).collect()
}

pub(super) fn labels(o: &Value) -> BTreeMap<String, String> {
    o.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// `status.conditions[]` with `status: "True"` whose type is one of `types`, as
/// `type: message`.
pub(super) fn true_conditions(o: &Value, types: &[&str]) -> Vec<String> {
    array(o, "/status/conditions")
        .filter(|c| str_at(c, "/status") == Some("True"))
        .filter_map(|c| {
            let t = str_at(c, "/type")?;
            types.contains(&t).then(|| {
                let msg = str_at(c, "/message").unwrap_or("").trim();
                if msg.is_empty() {
                    t.to_string()
                } else {
                    format!("{t}: {msg}")
                }
            })
        })
        .collect()
}

/// A `metav1.LabelSelector` that is absent, null or has no requirement.
pub(super) fn selector_is_empty(sel: Option<&Value>) -> bool {
    let Some(sel) = sel else { return true };
    let labels = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    let exprs = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    !labels && !exprs
}

/// Whether `labels` satisfy every requirement of `sel` (an empty selector matches everything;
/// callers decide what an empty selector means for their field). An operator this code does not
/// know matches nothing.
pub(super) fn selector_matches(sel: &Value, labels: &BTreeMap<String, String>) -> bool {
    let by_label = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    by_label
        && array(sel, "/matchExpressions").all(|e| {
            let Some(key) = str_at(e, "/key") else {
                return false;
            };
            let values = strings(e, "/values");
            let have = labels.get(key).map(String::as_str);
            match str_at(e, "/operator") {
                Some("In") => have.is_some_and(|h| values.contains(&h)),
                Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
                Some("Exists") => have.is_some(),
                Some("DoesNotExist") => have.is_none(),
                _ => false,
            }
        })
}

/// A selector in `kubectl`'s notation: `a=b,!c,d in (e,f)`.
pub(super) fn describe_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return "<none: selects nothing>".into();
    };
    if selector_is_empty(Some(sel)) {
        return "{} (selects everything)".into();
    }
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
        .collect();
    for e in array(sel, "/matchExpressions") {
        let key = str_at(e, "/key").unwrap_or("?");
        let values = strings(e, "/values").join(",");
        parts.push(match str_at(e, "/operator").unwrap_or("?") {
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            op => format!("{key} {op} ({values})"),
        });
    }
    parts.join(",")
}

/// `[a, b, c]` as `a, b, c`, or `none`.
pub(super) fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
