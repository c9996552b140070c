//! The permission documents of `policies/`, embedded in the binary.

use crate::error::{Error, Result};

/// Every document under `policies/`, by path relative to it.
const DOCUMENTS: &[(&str, &str)] = &[
    ("aws/ecs-tasks-trust.json", include_str!("../policies/aws/ecs-tasks-trust.json")),
    ("aws/ecs-execution-logs.json", include_str!("../policies/aws/ecs-execution-logs.json")),
    ("aws/ecs-user-policy.json", include_str!("../policies/aws/ecs-user-policy.json")),
    ("aws/ecr-pull-policy.json", include_str!("../policies/aws/ecr-pull-policy.json")),
    ("aws/worker-api-key-read.json", include_str!("../policies/aws/worker-api-key-read.json")),
    ("gcp/cloud-run-pool-roles.json", include_str!("../policies/gcp/cloud-run-pool-roles.json")),
    ("azure/roles.json", include_str!("../policies/azure/roles.json")),
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

/// The id of Azure built-in role `name`, from `policies/azure/roles.json`.
pub fn azure_role(name: &str) -> Result<String> {
    let text = document("azure", "roles.json")?;
    let parsed: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::usage("policies/azure/roles.json", e.to_string()))?;
    parsed["roles"][name].as_str().map(str::to_owned).ok_or_else(|| Error::usage(format!("Azure role '{name}'"), "is not in policies/azure/roles.json"))
}

/// The roles listed by the document at `policies/<cloud>/<file>` (`{"roles": [...]}`).
pub fn roles(cloud: &str, file: &str) -> Result<Vec<String>> {
    let text = document(cloud, file)?;
    let parsed: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::usage(format!("policies/{cloud}/{file}"), e.to_string()))?;
    let roles: Vec<String> = parsed["roles"].as_array().into_iter().flatten().filter_map(|r| r.as_str().map(str::to_owned)).collect();
    match roles.is_empty() {
        true => Err(Error::usage(format!("policies/{cloud}/{file}"), "lists no roles")),
        false => Ok(roles),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_document_is_valid_json_with_statements_or_roles() {
        for (path, text) in super::DOCUMENTS {
            let value: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
            match path.split_once('/') {
                Some(("aws", _)) => assert!(value["Statement"].is_array(), "{path} has statements"),
                Some(("azure", _)) => assert!(!super::azure_role("Contributor").unwrap().is_empty() && !super::azure_role("AcrPull").unwrap().is_empty()),
                _ => assert!(!super::roles("gcp", path.split_once('/').unwrap().1).unwrap().is_empty(), "{path} lists roles"),
            }
        }
    }
}
