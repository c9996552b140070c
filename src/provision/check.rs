//! What can be checked of a target before any call: that its place flags (`--region`,
//! `--project`, `--subscription`, `--profile`) mean something for its type, that a region has its cloud's
//! form, and that `--worker-api-url` is a URL the worker can use.
//!
//! A flag the type's clouds do not take used to be ignored (`--subscription` on an ECS pool)
//! and a URL that is not one was built into the worker's task definition: the cloud or the
//! worker would refuse it later, so the plan refuses it first. Blueprints are looked up once
//! per type and add-ons, so that a pools file of thousands of pools is checked in milliseconds.

use std::collections::HashMap;

use super::Target;
use crate::blueprint::Blueprint;
use crate::clouds::Scope;
use crate::clouds::aws::region::check_region;
use crate::error::{Error, Result};

/// How an input is spelled where the user wrote it: `--region` on the command line,
/// `` `region` `` in a pools file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// A command-line flag.
    Flag,
    /// A key of a pools file's `[[pool]]` table.
    Key,
}

impl Spelling {
    /// `name` (a flag's name without dashes, e.g. `worker-api-url`) as the user wrote it.
    pub fn of(self, name: &str) -> String {
        match self {
            Spelling::Flag => format!("--{name}"),
            Spelling::Key => format!("`{}`", name.replace('-', "_")),
        }
    }
}

/// A place flag: its name, the clouds that take it, and its value in a [`Scope`].
type PlaceFlag = (&'static str, &'static [&'static str], fn(&Scope) -> Option<&str>);

/// The place flags and the clouds that take each; Azure's location is `--region`'s alias
/// `--location`.
const PLACE_FLAGS: &[PlaceFlag] = &[
    ("region", &["aws", "gcp", "azure"], |s| s.region.as_deref()),
    ("project", &["gcp"], |s| s.project.as_deref()),
    ("subscription", &["azure"], |s| s.subscription.as_deref()),
    ("profile", &["aws"], |s| s.profile.as_deref()),
];

/// Checks targets, remembering each type's clouds: one blueprint lookup per type and add-ons.
#[derive(Default)]
pub struct TargetCheck {
    clouds: HashMap<(String, Vec<String>), Option<Vec<String>>>,
    provisioning: bool,
}

impl TargetCheck {
    /// A check for runs that provision infrastructure (`plan`, `apply --file`, `--provision-infra`),
    /// which also refuses a type pushpool cannot provision: a pools file of thousands of pools
    /// is refused at once rather than after reading each pool from Prefect.
    pub fn provisioning(provisioning: bool) -> Self {
        Self { provisioning, ..Self::default() }
    }

    /// Checks `target`, whose inputs are spelled as `spelling` says. A target without a type
    /// yet (`provision-infra`, a teardown) is checked for its URL only; its place flags are
    /// checked once the pool's type is read ([`check_place`]).
    pub fn check(&mut self, target: &Target, spelling: Spelling) -> Result<()> {
        if let Some(url) = target.request.options.get("worker-api-url") {
            check_worker_api_url(url, &spelling.of("worker-api-url"))?;
        }
        let request = &target.request;
        if request.pool_type.is_empty() {
            return Ok(());
        }
        let key = (request.pool_type.clone(), request.addons.clone());
        let clouds = match self.clouds.get(&key) {
            Some(clouds) => clouds.clone(),
            None => {
                let clouds = Blueprint::for_pool(&request.pool_type, &request.addons, &|_| true)?.map(|b| b.clouds);
                self.clouds.insert(key, clouds.clone());
                clouds
            }
        };
        match clouds {
            Some(clouds) => check_place(&request.pool_type, &clouds, target, spelling),
            None if self.provisioning => Err(cannot_provision(&request.pool_type)),
            // Only the pool is created (no --provision-infra): any type Prefect knows will do.
            None => Ok(()),
        }
    }
}

/// The error for a type no blueprint provisions, listing those that one does.
pub fn cannot_provision(pool_type: &str) -> Error {
    Error::usage(format!("work pool type '{pool_type}'"), "pushpool cannot provision infrastructure for it")
        .fix(format!("use one of: {}", Blueprint::supported_types().join(", ")))
}

/// Refuses a place flag of `target` that none of `clouds` (its type's) takes, naming the
/// flag and the types it serves; checks a region's form for AWS, whose SDK would report a
/// bad one as a transport failure (GCP's and Azure's are checked where they are resolved).
pub fn check_place(pool_type: &str, clouds: &[String], target: &Target, spelling: Spelling) -> Result<()> {
    for (flag, takers, value) in PLACE_FLAGS {
        let Some(value) = value(&target.scope) else { continue };
        if !clouds.iter().any(|c| takers.contains(&c.as_str())) {
            let served = Blueprint::types_using(takers)?;
            let shown = spelling.of(flag);
            return Err(Error::usage(format!("{shown} {value}"), format!("means nothing for {pool_type} pools (it chooses where {} resources go)", takers.join(", ")))
                .fix(format!("leave {shown} out; it serves {}", served.join(", "))));
        }
        if *flag == "region" && clouds.iter().any(|c| c == "aws") {
            check_region(value, &spelling.of(flag))?;
        }
    }
    Ok(())
}

/// A worker's Prefect API URL must be an http(s) URL with a host: the worker is started with
/// it, and one that is not a URL fails only once the task runs.
fn check_worker_api_url(url: &str, shown: &str) -> Result<()> {
    let fits = reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()));
    if fits {
        return Ok(());
    }
    Err(Error::usage(format!("{shown} '{}'", crate::redact::redact_urls(url)), "is not an http(s) URL with a host")
        .fix(format!("pass the Prefect API URL the worker's tasks reach, e.g. {shown} https://prefect.example.com/api")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{PoolMode, PoolRequest};

    fn target(pool_type: &str, scope: Scope) -> Target {
        Target { request: PoolRequest::new("p", pool_type, PoolMode::Ensure), names: Default::default(), scope }
    }

    #[test]
    fn place_flags_must_fit_the_type() {
        let mut check = TargetCheck::default();
        let subscription = Scope { subscription: Some("sub".into()), ..Scope::default() };
        let error = check.check(&target("ecs:push", subscription.clone()), Spelling::Flag).unwrap_err();
        assert_eq!(error.what, "--subscription sub");
        assert!(error.fix.as_deref().unwrap().contains("azure-container-instance:push"), "{error}");
        assert!(check.check(&target("azure-container-instance:push", subscription), Spelling::Flag).is_ok());
        let project = Scope { project: Some("my-project".into()), ..Scope::default() };
        let error = check.check(&target("ecs", project), Spelling::Key).unwrap_err();
        assert_eq!(error.what, "`project` my-project");
        let region = Scope { region: Some("us-east-1".into()), ..Scope::default() };
        let error = check.check(&target("modal:push", region.clone()), Spelling::Flag).unwrap_err();
        assert!(error.fix.as_deref().unwrap().contains("modal:push with --image-registry ecr"), "{error}");
        let mut ecr = target("modal:push", region);
        ecr.request.add_addons(["image-registry=ecr".to_owned()]);
        assert!(check.check(&ecr, Spelling::Flag).is_ok(), "the ECR add-on builds in AWS");
        let bad_region = Scope { region: Some("us-east-1x".into()), ..Scope::default() };
        assert!(check.check(&target("ecs:push", bad_region.clone()), Spelling::Flag).unwrap_err().what.contains("us-east-1x"));
        assert!(check.check(&target("cloud-run:push", Scope { region: Some("europe-west1".into()), ..Scope::default() }), Spelling::Flag).is_ok());
        assert!(check.check(&target("process", bad_region.clone()), Spelling::Flag).is_ok(), "without provisioning, any type Prefect knows");
        let error = TargetCheck::provisioning(true).check(&target("process", bad_region), Spelling::Flag).unwrap_err();
        assert!(error.fix.unwrap().contains("coiled:push"), "every type is listed");
    }

    #[test]
    fn a_worker_api_url_is_an_http_url_with_a_host() {
        let mut check = TargetCheck::default();
        for (url, fits) in [("https://prefect.example.com/api", true), ("http://10.0.0.5:4200/api", true), ("not-a-url", false), ("ftp://h/api", false), ("http://", false)]
        {
            let mut t = target("ecs", Scope::default());
            t.request = t.request.with_worker(true, None, Some(url));
            assert_eq!(check.check(&t, Spelling::Flag).is_ok(), fits, "{url}");
        }
    }
}
