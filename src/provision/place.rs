//! Where a pool lives, which every later run of it works in, whatever the shell's defaults
//! say now: the place its record keeps, else what the pool itself holds (a pool Prefect's own
//! CLI made has no record), else, for a new pool, the flags and the clouds' defaults.
//!
//! A pool created with `--region eu-west-1` from a shell whose region is us-east-1 must be
//! re-run and torn down in eu-west-1: run in us-east-1, a teardown finds nothing and a re-run
//! builds a second copy there. So a flag that contradicts the pool's place is refused before
//! any read of the cloud, naming both places (moving a pool is a teardown and a create), and
//! credentials for another AWS account or Azure tenant are refused once connected.

use serde_json::Value;

use crate::clouds::{CloudContext, Scope, aws, azure, gcp};
use crate::document::TargetDoc;
use crate::error::{Error, Result};
use crate::prefect::client::WorkPool;
use crate::prefect::context::PrefectContext;
use crate::prefect::nodes::job_variable_defaults;

/// Where a pool's resources are, as far as it is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The AWS account.
    pub account: Option<String>,
    /// The AWS or Google Cloud region, the Azure location.
    pub region: Option<String>,
    /// The Google Cloud project.
    pub project: Option<String>,
    /// The Azure subscription id.
    pub subscription: Option<String>,
    /// The Azure subscription's name, which `--subscription` may give instead of the id.
    pub subscription_name: Option<String>,
    /// The Azure tenant.
    pub tenant: Option<String>,
    /// The AWS profile the pool was provisioned with, which later runs use without `--profile`.
    pub profile: Option<String>,
    /// Where the place came from, in words: "the pool's record".
    pub source: &'static str,
}

/// The source of a place kept in the pool's record.
pub const FROM_RECORD: &str = "the pool's record";
/// The source of a place read from the pool's job variables and credentials block.
pub const FROM_POOL: &str = "the pool's job variables";

impl Place {
    /// The place a record keeps; None for a record written before places were.
    pub fn recorded(targets: &[TargetDoc]) -> Option<Self> {
        let mut place = Self { source: FROM_RECORD, ..Self::default() };
        for target in targets {
            match target {
                TargetDoc::Aws { account, region, profile } => {
                    place.account = Some(account.clone());
                    place.region = Some(region.clone());
                    place.profile = profile.clone();
                }
                TargetDoc::Gcp { project, region } => {
                    place.project = Some(project.clone());
                    place.region = Some(region.clone());
                }
                TargetDoc::Azure { subscription, subscription_name, tenant, location } => {
                    place.subscription = Some(subscription.clone());
                    place.subscription_name = subscription_name.clone();
                    place.tenant = Some(tenant.clone()).filter(|t| !t.is_empty());
                    place.region = Some(location.clone());
                }
                TargetDoc::Modal { .. } | TargetDoc::Coiled { .. } => {}
            }
        }
        (place != Self { source: FROM_RECORD, ..Self::default() }).then_some(place)
    }

    /// What `pool` itself says of where its resources are: the ARNs, project, subscription and
    /// region among its job variable defaults, and the region or tenant of the credentials
    /// blocks they reference. None when it says nothing, or was never provisioned.
    pub async fn held(prefect: &PrefectContext, pool: &WorkPool) -> Result<Option<Self>> {
        let defaults = job_variable_defaults(&pool.base_job_template);
        let ids = block_ids(&defaults);
        // A pool that references no credentials block was never provisioned: its defaults are
        // its type's (Cloud Run's template says us-central1), which tell nothing of a place.
        if ids.is_empty() {
            return Ok(None);
        }
        let mut place = Self::from_defaults(&defaults);
        let blocks = ids.into_iter().map(|id| async move { prefect.client.block_document_by_id(&id).await });
        for block in futures::future::try_join_all(blocks).await?.into_iter().flatten() {
            let field = |name: &str| block.data[name].as_str().filter(|v| !v.is_empty()).map(str::to_owned);
            place.region = place.region.or_else(|| field("region_name"));
            place.tenant = place.tenant.or_else(|| field("tenant_id"));
            place.project = place.project.or_else(|| field("project"));
        }
        Ok((place != Self { source: FROM_POOL, ..Self::default() }).then_some(place))
    }

    /// The place job variable defaults name, blocks aside.
    fn from_defaults(defaults: &Value) -> Self {
        let only = |found: Vec<String>| match found.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        let text = |name: &str| defaults[name].as_str().filter(|v| !v.is_empty()).map(str::to_owned);
        let mut projects = gcp::projects_in(defaults);
        projects.dedup();
        let mut subscriptions = azure::subscriptions_in(defaults);
        subscriptions.extend(text("subscription_id"));
        subscriptions.sort();
        subscriptions.dedup();
        Self {
            account: only(aws::accounts_in(defaults).into_iter().collect()),
            region: only(aws::regions_in(defaults).into_iter().collect()).or_else(|| text("region")),
            project: only(projects),
            subscription: only(subscriptions),
            source: FROM_POOL,
            ..Self::default()
        }
    }

    /// The place in words: "account 123456789012, region eu-west-1".
    pub fn describe(&self) -> String {
        let fields = [
            ("AWS account", &self.account),
            ("project", &self.project),
            ("subscription", &self.subscription),
            ("tenant", &self.tenant),
            ("region", &self.region),
            ("profile", &self.profile),
        ];
        let known: Vec<String> = fields.iter().filter_map(|(name, value)| value.as_ref().map(|v| format!("{name} {v}"))).collect();
        known.join(", ")
    }

    /// The scope `pool`'s run connects with: this place, completed by what was asked where the
    /// place says nothing. A flag that names another place is refused, naming both: moving a
    /// pool is a teardown and a create. A `--profile` other than the recorded one is taken (the
    /// same account may be reached through another profile): the account it reaches is checked
    /// once connected ([`Place::check`]).
    pub fn scope(&self, asked: &Scope, pool: &str) -> Result<Scope> {
        let same_subscription = |asked: &str| {
            self.subscription.as_deref().is_none_or(|id| id.eq_ignore_ascii_case(asked))
                || self.subscription_name.as_deref().is_some_and(|name| name.eq_ignore_ascii_case(asked))
        };
        let checks = [
            ("--region", asked.region.as_deref(), self.region.as_deref().is_none_or(|r| same_region(r, asked.region.as_deref().unwrap_or(r)))),
            ("--project", asked.project.as_deref(), self.project.as_deref().is_none_or(|p| Some(p) == asked.project.as_deref() || asked.project.is_none())),
            ("--subscription", asked.subscription.as_deref(), asked.subscription.as_deref().is_none_or(same_subscription)),
        ];
        if let Some((flag, Some(value), _)) = checks.into_iter().find(|(_, _, fits)| !fits) {
            return Err(Error::usage(
                format!("work pool '{pool}'"),
                format!("lives in {} (from {}); {flag} {value} names another place", self.describe(), self.source),
            )
            .fix(format!(
                "leave {flag} out: every run of a pool works where it was provisioned. To move the pool, tear it down (`pushpool work-pool deprovision {pool}`) and create it again with {flag} {value}"
            )));
        }
        Ok(Scope {
            region: self.region.clone().or_else(|| asked.region.clone()),
            project: self.project.clone().or_else(|| asked.project.clone()),
            subscription: self.subscription.clone().or_else(|| asked.subscription.clone()),
            profile: asked.profile.clone().or_else(|| self.profile.clone()),
        })
    }

    /// Whether `cloud`, connected where the shell's defaults say, is already this place: then
    /// the run needs no second connection.
    pub fn fits(&self, cloud: &CloudContext) -> bool {
        let same = |known: &Option<String>, actual: &str| known.as_deref().is_none_or(|k| same_region(k, actual));
        match cloud {
            CloudContext::Aws(aws) => same(&self.region, &aws.region) && self.profile.as_ref().is_none_or(|p| aws.profile.as_ref() == Some(p)),
            CloudContext::Gcp(gcp) => same(&self.region, gcp.region()) && self.project.as_deref().is_none_or(|p| p == gcp.project()),
            CloudContext::Azure(azure) => same(&self.region, azure.location()) && self.subscription.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(azure.subscription())),
            CloudContext::Modal(_) | CloudContext::Coiled(_) => true,
        }
    }

    /// Refuses credentials for another AWS account or Azure tenant than the pool's: its
    /// resources are not there, and a run there would build a second copy.
    pub fn check(&self, cloud: &CloudContext, pool: &str) -> Result<()> {
        let (what, actual, expected, fix) = match cloud {
            CloudContext::Aws(aws) => {
                let what = aws.profile.as_ref().map_or("AWS credentials".to_owned(), |p| format!("AWS credentials of profile '{p}'"));
                (what, aws.account_id.as_str(), &self.account, "--profile or AWS_PROFILE naming a profile of that account, or its keys")
            }
            CloudContext::Azure(azure) => ("Azure credentials".to_owned(), azure.tenant.as_str(), &self.tenant, "`az login --tenant <tenant>`, or AZURE_TENANT_ID"),
            _ => return Ok(()),
        };
        match expected {
            Some(expected) if !actual.is_empty() && !expected.eq_ignore_ascii_case(actual) => {
                let noun = if matches!(cloud, CloudContext::Aws(_)) { "account" } else { "tenant" };
                Err(Error::usage(what, format!("are for {noun} {actual}, but work pool '{pool}' lives in {noun} {expected} (from {})", self.source))
                    .fix(format!("use credentials for {noun} {expected} ({fix}), then run again; to move the pool, tear it down with those and create it anew")))
            }
            _ => Ok(()),
        }
    }
}

/// Azure writes locations as "East US" or "eastus"; the rest compare as they are.
fn same_region(a: &str, b: &str) -> bool {
    let squeeze = |s: &str| s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect::<String>();
    squeeze(a) == squeeze(b)
}

/// The ids of the block documents job variable defaults reference (`{"$ref": {"block_document_id": …}}`).
fn block_ids(value: &Value) -> Vec<String> {
    match value {
        Value::Object(fields) => match fields.get("$ref").and_then(|r| r["block_document_id"].as_str()) {
            Some(id) => vec![id.to_owned()],
            None => fields.values().flat_map(block_ids).collect(),
        },
        Value::Array(items) => items.iter().flat_map(block_ids).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn aws(account: &str, region: &str) -> Place {
        Place::recorded(&[TargetDoc::Aws { account: account.into(), region: region.into(), profile: None }]).unwrap()
    }

    #[test]
    fn a_recorded_place_is_used_and_a_contradicting_flag_is_refused_naming_both() {
        let place = aws("111111111111", "eu-west-1");
        assert_eq!(place.scope(&Scope::default(), "p").unwrap().region.as_deref(), Some("eu-west-1"));
        let same = Scope { region: Some("eu-west-1".into()), ..Scope::default() };
        assert_eq!(place.scope(&same, "p").unwrap().region.as_deref(), Some("eu-west-1"));
        let error = place.scope(&Scope { region: Some("us-west-2".into()), ..Scope::default() }, "p").unwrap_err().to_string();
        assert!(error.contains("AWS account 111111111111, region eu-west-1 (from the pool's record)"), "{error}");
        assert!(error.contains("--region us-west-2 names another place"), "{error}");
        assert!(error.contains("pushpool work-pool deprovision p"), "{error}");
        assert_eq!(Place::recorded(&[]), None);
    }

    #[test]
    fn an_azure_subscription_may_be_asked_by_name_and_locations_compare_as_azure_writes_them() {
        let place = Place::recorded(&[TargetDoc::Azure {
            subscription: "00000000-0000-0000-0000-00000000000a".into(),
            subscription_name: Some("Prod".into()),
            tenant: "t".into(),
            location: "westeurope".into(),
        }])
        .unwrap();
        let by_name = Scope { subscription: Some("prod".into()), region: Some("West Europe".into()), ..Scope::default() };
        let scope = place.scope(&by_name, "p").unwrap();
        assert_eq!(scope.subscription.as_deref(), Some("00000000-0000-0000-0000-00000000000a"), "the id, not the name");
        let other = Scope { subscription: Some("Dev".into()), ..Scope::default() };
        assert!(place.scope(&other, "p").unwrap_err().to_string().contains("--subscription Dev"));
    }

    #[test]
    fn a_pool_without_a_record_tells_its_place_by_its_job_variables() {
        let defaults = json!({
            "execution_role_arn": "arn:aws:iam::222222222222:role/PrefectEcsTaskExecutionRole",
            "cluster": "arn:aws:ecs:eu-west-1:222222222222:cluster/prefect-ecs-cluster",
            "aws_credentials": {"$ref": {"block_document_id": "b-1"}},
        });
        let place = Place::from_defaults(&defaults);
        assert_eq!((place.account.as_deref(), place.region.as_deref()), (Some("222222222222"), Some("eu-west-1")));
        assert_eq!(block_ids(&defaults), ["b-1"]);
        let aci = Place::from_defaults(&json!({"subscription_id": "S1", "resource_group_name": "rg"}));
        assert_eq!(aci.subscription.as_deref(), Some("S1"));
        let run = Place::from_defaults(&json!({"region": "europe-west1", "service_account_name": "sa@proj-a.iam.gserviceaccount.com"}));
        assert_eq!((run.project.as_deref(), run.region.as_deref()), (Some("proj-a"), Some("europe-west1")));
        let two = Place::from_defaults(&json!({"a": "arn:aws:iam::1:role/r", "b": "arn:aws:iam::2:role/r"}));
        assert_eq!(two.account, None, "two accounts tell nothing");
    }
}
