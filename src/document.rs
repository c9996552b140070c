//! The plan as a document: what `--output json` prints and `--out` saves, and what
//! `pushpool apply FILE` checks the live state against before it applies.
//!
//! The format is versioned (`format_version`) and described by `schemas/plan.v1.json`. It
//! holds no secret: attributes are the public ones only (a secret is a separate kind of
//! attribute that cannot be serialized), and secrets do not exist before apply anyway.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{Action, Plan};
use crate::error::{Error, Result};

/// The version of the document's format; readers refuse others.
pub const FORMAT_VERSION: u32 = 1;

/// A plan, as saved and printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDocument {
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The pushpool version that made it.
    pub pushpool_version: String,
    /// The Prefect API URL (workspace) it was made against.
    pub workspace: String,
    /// The pools it covers, with what was asked of each.
    pub pools: Vec<PoolDoc>,
    /// The cloud accounts and regions it was made against.
    pub targets: Vec<TargetDoc>,
    /// Counts of changes by action.
    pub summary: SummaryDoc,
    /// Every node, in the order apply follows.
    pub changes: Vec<ChangeDoc>,
}

/// One pool of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolDoc {
    /// The pool's name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub pool_type: String,
    /// `create`, `create-overwrite`, `provision-infra`, `ensure` or `deprovision`.
    pub mode: String,
    /// Resource name overrides, node id → name.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// The region asked for, if not the AWS chain's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A cloud account and region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetDoc {
    /// "aws".
    pub cloud: String,
    /// The account id.
    pub account: String,
    /// The region.
    pub region: String,
}

/// How many changes of each action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryDoc {
    /// Resources to create.
    pub create: usize,
    /// Resources to update.
    pub update: usize,
    /// Resources used as they are.
    pub reuse: usize,
    /// Teardown: resources to delete.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delete: usize,
    /// Teardown: resources that stay.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub keep: usize,
    /// Teardown: resources already gone.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gone: usize,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// One node's planned change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeDoc {
    /// The node's id in the plan.
    pub id: String,
    /// The pools that use it.
    pub pools: Vec<String>,
    /// The node kind, e.g. "aws.iam_role".
    pub kind: String,
    /// The kind in words, e.g. "IAM role".
    pub resource: String,
    /// The resource's name.
    pub name: String,
    /// What apply does with it.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// What was observed or is known in advance (never a secret).
    pub attributes: BTreeMap<String, Value>,
}

impl PlanDocument {
    /// The document of `plan`.
    pub fn new(workspace: &str, pools: Vec<PoolDoc>, mut targets: Vec<TargetDoc>, plan: &Plan) -> Self {
        targets.sort();
        targets.dedup();
        let changes = plan
            .changes
            .iter()
            .map(|c| ChangeDoc {
                id: c.info.id.clone(),
                pools: c.info.pools.clone(),
                kind: c.info.kind.clone(),
                resource: c.info.label.clone(),
                name: c.info.name.clone(),
                action: c.observed.action,
                reason: c.observed.reason.clone(),
                attributes: c.observed.attrs.public(),
            })
            .collect();
        Self {
            format_version: FORMAT_VERSION,
            pushpool_version: env!("CARGO_PKG_VERSION").to_owned(),
            workspace: workspace.to_owned(),
            pools,
            targets,
            summary: SummaryDoc {
                create: plan.count(Action::Create),
                update: plan.count(Action::Update),
                reuse: plan.count(Action::Reuse),
                delete: plan.count(Action::Delete),
                keep: plan.count(Action::Keep),
                gone: plan.count(Action::Gone),
            },
            changes,
        }
    }

    /// The document as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan document serializes") + "\n"
    }

    /// Writes the document to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()).map_err(|e| Error::usage(format!("plan file {}", path.display()), e.to_string()))
    }

    /// Reads a document, refusing other format versions.
    pub fn load(path: &Path) -> Result<Self> {
        let what = || format!("plan file {}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| Error::usage(what(), e.to_string()))?;
        let value: Value = serde_json::from_str(&text).map_err(|e| Error::usage(what(), format!("not JSON: {e}")))?;
        let version = value.get("format_version").and_then(Value::as_u64);
        if version != Some(u64::from(FORMAT_VERSION)) {
            return Err(Error::usage(what(), format!("has format version {version:?}; this pushpool reads version {FORMAT_VERSION}"))
                .fix("make the plan again with this pushpool: `pushpool plan ... --out FILE`"));
        }
        serde_json::from_value(value).map_err(|e| Error::usage(what(), format!("not a pushpool plan: {e}")))
    }

    /// What differs between this saved plan and `now`, a plan of the same pools made just
    /// now: the workspace, the accounts, and each change's action and attributes.
    pub fn differences(&self, now: &PlanDocument) -> Vec<String> {
        let mut found = Vec::new();
        if self.workspace != now.workspace {
            found.push(format!("the plan was made against Prefect API {}, this run uses {}", self.workspace, now.workspace));
        }
        if self.targets != now.targets {
            let show = |t: &[TargetDoc]| t.iter().map(|t| format!("{} account {} in {}", t.cloud, t.account, t.region)).collect::<Vec<_>>().join(", ");
            found.push(format!("the plan was made against {}, this run uses {}", show(&self.targets), show(&now.targets)));
        }
        let current: BTreeMap<&str, &ChangeDoc> = now.changes.iter().map(|c| (c.id.as_str(), c)).collect();
        for saved in &self.changes {
            let Some(live) = current.get(saved.id.as_str()) else {
                found.push(format!("{} {}: no longer part of the plan", saved.resource, saved.name));
                continue;
            };
            if saved.action != live.action {
                found.push(format!(
                    "{} {}: planned {}, now {} ({})",
                    saved.resource,
                    saved.name,
                    saved.action.as_str(),
                    live.action.as_str(),
                    live.reason
                ));
            } else if saved.attributes != live.attributes {
                let keys: Vec<&String> = saved
                    .attributes
                    .keys()
                    .chain(live.attributes.keys())
                    .filter(|k| saved.attributes.get(*k) != live.attributes.get(*k))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let keys: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
                found.push(format!("{} {}: {} changed", saved.resource, saved.name, keys.join(", ")));
            }
        }
        let saved: Vec<&str> = self.changes.iter().map(|c| c.id.as_str()).collect();
        for live in now.changes.iter().filter(|c| !saved.contains(&c.id.as_str())) {
            found.push(format!("{} {}: new in the plan", live.resource, live.name));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::engine::{Attrs, Change, NodeInfo, Observation};
    use crate::secret::Secret;

    fn plan(action: Action, vpc: &str) -> Plan {
        let mut attrs = Attrs::new().with("id", vpc);
        attrs.set_secret("secret", Secret::new("never-saved"));
        let observed = Observation { action, reason: "why".into(), attrs };
        let info = NodeInfo {
            id: "vpc".into(),
            kind: "aws.vpc".into(),
            label: "VPC".into(),
            name: "prefect-ecs-vpc".into(),
            says: String::new(),
            after: vec![],
            pools: vec!["p".into()],
        };
        Plan { goal: crate::engine::Goal::Provision, changes: vec![Change { info, observed: Arc::new(observed) }] }
    }

    fn document(action: Action, vpc: &str, account: &str) -> PlanDocument {
        let target = TargetDoc { cloud: "aws".into(), account: account.into(), region: "us-east-1".into() };
        PlanDocument::new("http://prefect/api", vec![], vec![target], &plan(action, vpc))
    }

    #[test]
    fn secrets_never_reach_the_document() {
        let text = document(Action::Reuse, "vpc-1", "1").to_json();
        assert!(!text.contains("never-saved"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["changes"][0]["attributes"], json!({"id": "vpc-1"}));
        assert_eq!(parsed["format_version"], 1);
    }

    #[test]
    fn differences_name_what_changed_since_the_plan() {
        let saved = document(Action::Create, "vpc-1", "111");
        assert!(saved.differences(&saved.clone()).is_empty());
        let moved = document(Action::Reuse, "vpc-1", "111").differences(&saved);
        assert_eq!(moved, ["VPC prefect-ecs-vpc: planned reuse, now create (why)"]);
        let other_account = saved.differences(&document(Action::Create, "vpc-1", "222"));
        assert!(other_account[0].contains("aws account 111 in us-east-1, this run uses aws account 222"), "{other_account:?}");
        let attributes = document(Action::Reuse, "vpc-1", "111").differences(&document(Action::Reuse, "vpc-2", "111"));
        assert_eq!(attributes, ["VPC prefect-ecs-vpc: id changed"]);
    }

    #[test]
    fn other_format_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, r#"{"format_version": 99}"#).unwrap();
        let error = PlanDocument::load(&path).unwrap_err();
        assert!(error.cause.contains("format version Some(99)"), "{error}");
        let saved = document(Action::Create, "vpc-1", "1");
        saved.save(&path).unwrap();
        assert_eq!(PlanDocument::load(&path).unwrap(), saved);
    }
}
