//! The plan as a document: what `--output json` prints and `--out` saves, and what
//! `pushpool apply FILE` checks the live state against before it applies.
//!
//! The format is versioned (`format_version`) and described by `schemas/plan.v2.json`. It
//! holds no secret: attributes are the public ones and hints only (a secret is a separate kind
//! of attribute that cannot be serialized), and a token known at plan time is never one of them.
//! Version 2 has one target per cloud with that cloud's own scope, keeps each change's apply
//! hints apart from its public attributes, and records when the plan was made, so that `apply`
//! refuses a plan older than its `--max-age`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{Action, Plan};
use crate::error::{Error, Result};

/// The version of the document's format; readers refuse others.
pub const FORMAT_VERSION: u32 = 2;

/// A plan, as saved and printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDocument {
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The pushpool version that made it.
    pub pushpool_version: String,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
    /// The Prefect API URL (workspace) it was made against.
    pub workspace: String,
    /// The pools it covers, with what was asked of each.
    pub pools: Vec<PoolDoc>,
    /// The cloud scopes (account and region, workspace, ...) it was made against.
    pub targets: Vec<TargetDoc>,
    /// Counts of changes by action.
    pub summary: SummaryDoc,
    /// Every node, in the order apply follows.
    pub changes: Vec<ChangeDoc>,
}

/// One pool of the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The region asked for, if not the cloud's configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The Google Cloud project asked for, if not gcloud's configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The Azure subscription asked for, if not the Azure CLI's default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    /// The AWS profile asked for, if not the standard credential chain's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Whether a new pool is created paused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Whether the pool becomes the profile's default work pool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub set_as_default: bool,
    /// The base job template a new pool starts from, when not the type's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_job_template: Option<Value>,
    /// Add-ons of the pool type's graph ("image-registry=ecr", "worker").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addons: Vec<String>,
    /// The add-ons' settings ("worker-image").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// One cloud scope a plan was made against, with that cloud's own fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "cloud", rename_all = "lowercase", deny_unknown_fields)]
pub enum TargetDoc {
    /// An AWS account and region.
    Aws {
        /// The account id.
        account: String,
        /// The region.
        region: String,
        /// The AWS profile whose credentials reach the account, when one was named: a pool's
        /// record keeps it, so that later runs of the pool use it without `--profile`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
    },
    /// An Azure subscription (and its tenant) and location.
    Azure {
        /// The subscription id.
        subscription: String,
        /// Its display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subscription_name: Option<String>,
        /// The tenant.
        tenant: String,
        /// The location of new resources.
        location: String,
    },
    /// A Google Cloud project and region.
    Gcp {
        /// The project id.
        project: String,
        /// The region.
        region: String,
    },
    /// A Modal token, by its public id (the secret never appears), and its profile.
    Modal {
        /// The token id (`ak-...`).
        token_id: String,
        /// The profile of the Modal configuration file it came from; none from the environment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
    },
    /// A Coiled token's workspace.
    Coiled {
        /// The workspace the configuration names; none for the user's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace: Option<String>,
    },
}

impl TargetDoc {
    /// The target in words, for plan headers and differences: "AWS account 1234, region us-east-1".
    pub fn describe(&self) -> String {
        match self {
            TargetDoc::Aws { account, region, profile: None } => format!("AWS account {account}, region {region}"),
            TargetDoc::Aws { account, region, profile: Some(profile) } => format!("AWS account {account} (profile '{profile}'), region {region}"),
            TargetDoc::Gcp { project, region } => format!("Google Cloud project {project}, region {region}"),
            TargetDoc::Azure { subscription, subscription_name, tenant, location } => {
                let named = subscription_name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
                format!("Azure subscription {subscription}{named}, tenant {tenant}, location {location}")
            }
            TargetDoc::Modal { token_id, profile: Some(profile) } => format!("Modal token {token_id} (profile '{profile}')"),
            TargetDoc::Modal { token_id, profile: None } => format!("Modal token {token_id} (from the environment)"),
            TargetDoc::Coiled { workspace: Some(workspace) } => format!("Coiled workspace {workspace}"),
            TargetDoc::Coiled { workspace: None } => "Coiled, the token's default workspace".to_owned(),
        }
    }
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
    /// What the observation tells its apply ("the trust policy drifted"): not a public
    /// attribute, but compared by `apply FILE` like one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hints: BTreeMap<String, Value>,
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
                hints: c.observed.attrs.hints(),
            })
            .collect();
        Self {
            format_version: FORMAT_VERSION,
            pushpool_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
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
        std::fs::write(path, self.to_json()).map_err(|e| Error::usage(format!("plan file {}", path.display()), e.to_string()).fix(OUT_FIX))
    }

    /// Reads a document, refusing other format versions and plans older than `max_age`.
    pub fn load(path: &Path, max_age: Duration) -> Result<Self> {
        let what = || format!("plan file {}", path.display());
        let replan = "make the plan again with this pushpool (`pushpool plan ... --out FILE`), review it, and apply that";
        let text = std::fs::read_to_string(path).map_err(|e| Error::unreadable(what(), &e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::usage(what(), format!("not JSON: {e}")).fix(format!("pass a file saved by `pushpool plan ... --out FILE`; or {replan}")))?;
        let version = value.get("format_version").and_then(Value::as_u64);
        if version != Some(u64::from(FORMAT_VERSION)) {
            let shown = version.map_or("no format version".to_owned(), |v| format!("format version {v}"));
            return Err(Error::usage(what(), format!("has {shown}; this pushpool reads version {FORMAT_VERSION} only")).fix(replan));
        }
        let document: Self = serde_json::from_value(value).map_err(|e| Error::usage(what(), format!("not a pushpool plan: {e}")).fix(replan))?;
        let made = humantime::parse_rfc3339(&document.created_at)
            .map_err(|e| Error::usage(what(), format!("created_at '{}' is not an RFC 3339 time: {e}", document.created_at)).fix(replan))?;
        // A plan from the future can never grow older than --max-age: beyond clock skew
        // between machines, its clock or its file is wrong.
        if let Ok(ahead) = made.duration_since(SystemTime::now())
            && ahead > CLOCK_SKEW
        {
            return Err(Error::usage(what(), format!("was made {} in the future (created_at {}); nothing was applied", round(ahead), document.created_at))
                .fix(format!("check this machine's clock and the one the plan was made on; then {replan}")));
        }
        let age = SystemTime::now().duration_since(made).unwrap_or_default();
        if age > max_age {
            return Err(Error::usage(what(), format!("was made {} ago, more than --max-age {}; nothing was applied", round(age), round(max_age)))
                .fix(format!("{replan}, or pass a larger --max-age")));
        }
        Ok(document)
    }

    /// What differs between this saved plan and `now`, a plan of the same pools made just
    /// now: the workspace, the accounts, and each change's action and attributes.
    pub fn differences(&self, now: &PlanDocument) -> Vec<String> {
        let mut found = Vec::new();
        if self.workspace != now.workspace {
            found.push(format!("the plan was made against Prefect API {}, this run uses {}", self.workspace, now.workspace));
        }
        if self.targets != now.targets {
            let show = |t: &[TargetDoc]| t.iter().map(TargetDoc::describe).collect::<Vec<_>>().join("; ");
            found.push(format!("the plan was made against {}, this run uses {}", show(&self.targets), show(&now.targets)));
        }
        let current: BTreeMap<&str, &ChangeDoc> = now.changes.iter().map(|c| (c.id.as_str(), c)).collect();
        for saved in &self.changes {
            let Some(live) = current.get(saved.id.as_str()) else {
                found.push(format!("{} {}: no longer part of the plan", saved.resource, saved.name));
                continue;
            };
            if saved.action != live.action {
                found.push(format!("{} {}: planned {}, now {} ({})", saved.resource, saved.name, saved.action.as_str(), live.action.as_str(), live.reason));
            } else {
                let keys: std::collections::BTreeSet<&str> = [(&saved.attributes, &live.attributes), (&saved.hints, &live.hints)]
                    .into_iter()
                    .flat_map(|(saved, live)| saved.keys().chain(live.keys()).filter(|k| saved.get(*k) != live.get(*k)))
                    .map(String::as_str)
                    .collect();
                if !keys.is_empty() {
                    let keys: Vec<&str> = keys.into_iter().collect();
                    found.push(format!("{} {}: {} changed", saved.resource, saved.name, keys.join(", ")));
                }
            }
        }
        let saved: Vec<&str> = self.changes.iter().map(|c| c.id.as_str()).collect();
        for live in now.changes.iter().filter(|c| !saved.contains(&c.id.as_str())) {
            found.push(format!("{} {}: new in the plan", live.resource, live.name));
        }
        found
    }
}

/// A duration in the largest whole unit that fits: "3h", "2d 4h".
fn round(duration: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(duration.as_secs() / 60 * 60))
}

/// How far ahead of this machine's clock a plan's `created_at` may be: clocks of machines
/// kept by NTP differ by far less, and a plan made on another machine is still accepted.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// What to do when `--out` cannot be written.
pub const OUT_FIX: &str = "pass --out a path in an existing, writable directory";

/// Checks, before any read, that a plan can be saved at `path`: its directory exists and is
/// a directory, and `path` is not one. Found after every cloud read, the same problem would
/// cost the whole plan.
pub fn check_out_path(path: &Path) -> Result<()> {
    let what = || format!("--out {}", path.display());
    if path.is_dir() {
        return Err(Error::usage(what(), "is a directory").fix(format!("name a file in it, e.g. --out {}", path.join("plan.json").display())));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match dir.metadata() {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::usage(what(), format!("{} is not a directory", dir.display())).fix(OUT_FIX)),
        Err(e) => Err(Error::usage(what(), format!("its directory {}: {e}", dir.display())).fix(format!("create it first (`mkdir -p {}`), or {OUT_FIX}", dir.display()))),
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
        let mut attrs = Attrs::new().with("id", vpc).hint("drifted", true);
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
            scope: String::new(),
        };
        Plan { goal: crate::engine::Goal::Provision, changes: vec![Change { info, observed: Arc::new(observed) }] }
    }

    fn document(action: Action, vpc: &str, account: &str) -> PlanDocument {
        let target = TargetDoc::Aws { account: account.into(), region: "us-east-1".into(), profile: None };
        PlanDocument::new("http://prefect/api", vec![], vec![target], &plan(action, vpc))
    }

    #[test]
    fn secrets_never_reach_the_document() {
        let text = document(Action::Reuse, "vpc-1", "1").to_json();
        assert!(!text.contains("never-saved"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["changes"][0]["attributes"], json!({"id": "vpc-1"}));
        assert_eq!(parsed["changes"][0]["hints"], json!({"drifted": true}), "hints are kept apart from the attributes");
        assert_eq!(parsed["format_version"], 2);
        assert_eq!(parsed["targets"][0], json!({"cloud": "aws", "account": "1", "region": "us-east-1"}));
    }

    #[test]
    fn differences_name_what_changed_since_the_plan() {
        let saved = document(Action::Create, "vpc-1", "111");
        assert!(saved.differences(&saved.clone()).is_empty());
        let moved = document(Action::Reuse, "vpc-1", "111").differences(&saved);
        assert_eq!(moved, ["VPC prefect-ecs-vpc: planned reuse, now create (why)"]);
        let other_account = saved.differences(&document(Action::Create, "vpc-1", "222"));
        assert!(other_account[0].contains("AWS account 111, region us-east-1, this run uses AWS account 222"), "{other_account:?}");
        let attributes = document(Action::Reuse, "vpc-1", "111").differences(&document(Action::Reuse, "vpc-2", "111"));
        assert_eq!(attributes, ["VPC prefect-ecs-vpc: id changed"]);
    }

    #[test]
    fn other_format_versions_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let day = Duration::from_secs(86_400);
        std::fs::write(&path, r#"{"format_version": 1, "targets": []}"#).unwrap();
        let error = PlanDocument::load(&path, day).unwrap_err();
        assert!(error.cause.contains("has format version 1; this pushpool reads version 2 only"), "{error}");
        assert!(error.fix.unwrap().contains("make the plan again"));
        let saved = document(Action::Create, "vpc-1", "1");
        saved.save(&path).unwrap();
        assert_eq!(PlanDocument::load(&path, day).unwrap(), saved);
    }

    #[test]
    fn a_plan_older_than_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let mut old = document(Action::Create, "vpc-1", "1");
        old.created_at = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(3 * 3600)).to_string();
        old.save(&path).unwrap();
        let error = PlanDocument::load(&path, Duration::from_secs(3600)).unwrap_err();
        assert!(error.cause.contains("was made 3h ago, more than --max-age 1h"), "{error}");
        assert!(PlanDocument::load(&path, Duration::from_secs(4 * 3600)).is_ok());
    }

    #[test]
    fn a_plan_from_the_future_is_refused_beyond_clock_skew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let mut future = document(Action::Create, "vpc-1", "1");
        future.created_at = humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(30 * 86_400)).to_string();
        future.save(&path).unwrap();
        let error = PlanDocument::load(&path, Duration::from_secs(3600)).unwrap_err();
        assert!(error.cause.contains("in the future"), "{error}");
        assert!(error.fix.unwrap().contains("clock"));
        future.created_at = humantime::format_rfc3339_seconds(SystemTime::now() + CLOCK_SKEW / 2).to_string();
        future.save(&path).unwrap();
        assert!(PlanDocument::load(&path, Duration::from_secs(3600)).is_ok(), "skew within the allowance passes");
    }
}
