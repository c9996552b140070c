//! A pool's resource names, and the pool name its clouds tag every resource with, held to each
//! cloud's rules ([`clouds::name_rule`], [`clouds::pool_tag_rule`]) before any cloud is read:
//! what a cloud would refuse halfway through an apply is refused by the plan, with the name,
//! the rule and how to pick another.

use std::collections::BTreeMap;

use crate::blueprint::Blueprint;
use crate::clouds;
use crate::error::{Error, Result};
use crate::names::shown;

/// Refuses the first name of `pool`'s `blueprint` (resolved as `names`, `overrides` being those
/// given with `--set`) that its cloud would refuse, and a pool name a cloud's tags cannot hold.
pub(super) fn check(pool: &str, blueprint: &Blueprint, names: &BTreeMap<String, String>, overrides: &BTreeMap<String, String>) -> Result<()> {
    let builds = |cloud: &str| blueprint.nodes.iter().any(|n| n.kind.system() == cloud);
    for cloud in blueprint.clouds.iter().filter(|c| builds(c)) {
        let Some(rule) = clouds::pool_tag_rule(cloud) else { continue };
        if let Some(why) = rule.broken_by(pool) {
            let cause = format!("every {cloud} resource of the pool is tagged prefect.work-pool=<pool name>: the name {}", rule.cause(&why));
            return Err(Error::usage(format!("work pool name {}", shown(pool)), cause)
                .fix(format!("choose a pool name of {} (a resource's name can be set, the pool's tag cannot)", rule.says)));
        }
    }
    for spec in &blueprint.nodes {
        let (Some(rule), Some(name)) = (clouds::name_rule(&spec.kind), names.get(&spec.id)) else { continue };
        let Some(why) = rule.broken_by(name) else { continue };
        let id = &spec.id;
        let derived = spec.name.as_deref().filter(|template| template.contains("{pool}") && !overrides.contains_key(id));
        let fix = match derived {
            Some(template) => format!("name it with --set {id}=<name> (`set` in a pools file), or choose a pool name that makes '{template}' fit"),
            None => format!("name it with --set {id}=<name> (`set` in a pools file)"),
        };
        return Err(Error::usage(format!("{} {} (resource '{id}')", rule.what, shown(name)), rule.cause(&why)).fix(fix));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_ecs(pool: &str, overrides: &[(&str, &str)]) -> Result<()> {
        let blueprint = Blueprint::for_type("ecs:push").unwrap().unwrap();
        let overrides: BTreeMap<String, String> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        check(pool, &blueprint, &blueprint.names(pool, &overrides).unwrap(), &overrides)
    }

    #[test]
    fn the_default_names_of_every_blueprint_fit_their_clouds() {
        for blueprint in Blueprint::all().unwrap() {
            let names = blueprint.names("my-pool", &BTreeMap::new()).unwrap();
            check("my-pool", &blueprint, &names, &BTreeMap::new()).unwrap_or_else(|e| panic!("{:?}: {e}", blueprint.types));
        }
    }

    #[test]
    fn a_pool_name_aws_tags_cannot_hold_is_refused_with_the_rule() {
        assert!(check_ecs(&"p".repeat(256), &[]).is_ok());
        let error = check_ecs(&"p".repeat(257), &[]).unwrap_err();
        assert!(error.what.contains("(257 characters)") && error.cause.contains("has 257 characters, and IAM tag values are 0 to 256"), "{error}");
        assert!(error.cause.contains("API_Tag.html") && error.fix.unwrap().contains("choose a pool name"));
        let error = check_ecs("team\npool", &[]).unwrap_err();
        assert!(error.what.contains("'team\\npool'") && error.cause.contains("contains '\\n'"), "{error}");
    }

    #[test]
    fn a_resource_name_is_refused_with_its_id_the_rule_and_the_flag() {
        let error = check_ecs("my-pool", &[("repository", "Prefect_Flows")]).unwrap_err();
        assert_eq!(error.what, "ECR repository name 'Prefect_Flows' (resource 'repository')");
        assert!(error.cause.starts_with("contains 'P', and ECR repository names are 2 to 256 lowercase"), "{error}");
        assert_eq!(error.fix.unwrap(), "name it with --set repository=<name> (`set` in a pools file)");
        for user in ["u".repeat(65), "a user".to_owned()] {
            let error = check_ecs("my-pool", &[("user", &user)]).unwrap_err();
            assert!(error.what.starts_with("IAM user name") && error.cause.contains("API_CreateUser.html"), "{error}");
        }
        assert!(check_ecs("my-pool", &[("user", &"u".repeat(64))]).is_ok());
    }

    #[test]
    fn a_name_made_from_the_pool_name_says_so() {
        let blueprint = Blueprint::for_pool("ecs", &["worker".to_owned()], &|_| true).unwrap().unwrap();
        let pool = "Team A";
        let error = check(pool, &blueprint, &blueprint.names(pool, &BTreeMap::new()).unwrap(), &BTreeMap::new()).unwrap_err();
        assert_eq!(error.what, "Secrets Manager secret name 'prefect-worker-Team A-api-key' (resource 'api_key')");
        assert!(error.fix.unwrap().contains("or choose a pool name that makes 'prefect-worker-{pool}"));
    }
}
