//! The permission documents of `policies/`, embedded in the binary.

use crate::error::{Error, Result};

/// Every document under `policies/`, by path relative to it.
const DOCUMENTS: &[(&str, &str)] = &[
    ("aws/ecs-tasks-trust.json", include_str!("../policies/aws/ecs-tasks-trust.json")),
    ("aws/ecs-execution-logs.json", include_str!("../policies/aws/ecs-execution-logs.json")),
    ("aws/ecs-user-policy.json", include_str!("../policies/aws/ecs-user-policy.json")),
];

/// The document at `policies/<cloud>/<file>`.
pub fn document(cloud: &str, file: &str) -> Result<&'static str> {
    let path = format!("{cloud}/{file}");
    DOCUMENTS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .ok_or_else(|| Error::usage(format!("policy document policies/{path}"), "is not embedded in this build"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_document_is_valid_json_with_statements() {
        for (path, text) in super::DOCUMENTS {
            let value: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(value["Statement"].is_array(), "{path} has statements");
        }
    }
}
