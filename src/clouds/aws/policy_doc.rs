//! IAM policy documents: decoding what IAM returns, comparing by meaning, describing drift.

use std::collections::BTreeSet;

use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::engine::reference::Resolved;
use crate::error::{Error, Result};

/// Parses a document as IAM returns it (URL-encoded JSON, or plain JSON from some emulators).
pub fn parse_live(text: &str) -> Result<Value> {
    let decoded = percent_decode_str(text).decode_utf8_lossy();
    let candidate = if text.trim_start().starts_with('{') { text } else { decoded.as_ref() };
    serde_json::from_str(candidate).map_err(|e| Error::remote("IAM policy document", format!("not JSON: {e}")))
}

/// Parses one of pushpool's own documents.
pub fn parse_own(file: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::usage(format!("policies/{file}"), format!("not JSON: {e}")))
}

/// A canonical form: single strings become one-element lists, lists are sorted, and the
/// statements are sorted, so that documents equal in meaning compare equal.
pub fn canonical(document: &Value) -> Value {
    fn normalize(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = match (k.as_str(), v) {
                            ("Action" | "NotAction" | "Resource" | "NotResource", Value::String(s)) => json!([s]),
                            _ => v.clone(),
                        };
                        (k.clone(), normalize(&v))
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                let mut items: Vec<Value> = items.iter().map(normalize).collect();
                items.sort_by_key(|v| v.to_string());
                Value::Array(items)
            }
            other => other.clone(),
        }
    }
    normalize(document)
}

/// True when the two documents grant the same.
pub fn same(live: &Value, wanted: &Value) -> bool {
    canonical(live) == canonical(wanted)
}

/// Why the `live` document is not the `wanted` one (its references resolved as far as known),
/// or None when they mean the same: the drift, or the values it takes after apply.
pub fn drift(live: &Value, wanted: &Resolved) -> Option<String> {
    match wanted {
        Resolved::Known(wanted) => (!same(live, wanted)).then(|| describe_drift(live, wanted)),
        Resolved::Unknown(pending) => Some(format!("takes new values: {}", pending.join(", "))),
    }
}

/// What a reviewer needs to see of a drifted document: the actions it lacks and has extra.
pub fn describe_drift(live: &Value, wanted: &Value) -> String {
    let actions = |doc: &Value| -> BTreeSet<String> {
        canonical(doc)["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
    let (live, wanted) = (actions(live), actions(wanted));
    let missing: Vec<&String> = wanted.difference(&live).collect();
    let extra: Vec<&String> = live.difference(&wanted).collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("lacks {}", join(&missing)));
    }
    if !extra.is_empty() {
        parts.push(format!("also grants {}", join(&extra)));
    }
    if parts.is_empty() {
        parts.push("statements differ (resources or conditions)".into());
    }
    format!("document drifted: {}", parts.join("; "))
}

fn join(items: &[&String]) -> String {
    items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoded_and_reordered_documents_compare_equal() {
        let wanted = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["b:B", "a:A"], "Resource": "*"}]});
        let live = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%5B%22a%3AA%22%2C%22b%3AB%22%5D%2C%22Resource%22%3A%5B%22%2A%22%5D%7D%5D%7D";
        assert!(same(&parse_live(live).unwrap(), &wanted));
    }

    #[test]
    fn drift_names_the_missing_and_extra_actions() {
        let wanted = json!({"Statement": [{"Effect": "Allow", "Action": ["logs:CreateLogGroup", "ecs:RunTask"], "Resource": "*"}]});
        let live = json!({"Statement": [{"Effect": "Allow", "Action": ["ecs:RunTask", "s3:*"], "Resource": "*"}]});
        assert!(!same(&live, &wanted));
        assert_eq!(describe_drift(&live, &wanted), "document drifted: lacks logs:CreateLogGroup; also grants s3:*");
    }
}
