//! What one pool resolves to before the run's graph is built: its type (read from the pool
//! or its record for `provision-infra` and a teardown), its add-ons and their settings (those
//! asked for, and those its record remembers), the `prefect` and `worker` contexts, its
//! blueprint and names, and the clouds the blueprint names, connected, and only those.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Target;
use super::check::{Spelling, cannot_provision, check_place};
use super::graph::PoolPlan;
use super::names;
use super::place::Place;
use super::teardown;
use crate::blueprint::{Blueprint, Kind, NodeSpec, addon_flag, kinds};
use crate::clouds::{CloudContext, Scope};
use crate::engine::Attrs;
use crate::error::{Error, Result};
use crate::prefect::client::WorkPool;
use crate::prefect::context::PrefectContext;
use crate::prefect::pool_record::{self, PoolRecord};
use crate::prefect::profile::DEFAULT_POOL_KEY;
use crate::prefect::settings::PrefectSettings;
use crate::request::{PoolMode, PoolRequest};

/// Reads what a target needs before its graph can be built: the pool's type for
/// `provision-infra` and a teardown, its record, the blueprint, the names, the pool's place,
/// and then the clouds the blueprint names, and only those, connected there.
pub(super) async fn resolve_pool(prefect: &PrefectContext, target: &Target, provision_infra: bool) -> Result<PoolPlan> {
    let mut request = target.request.clone();
    // A new or listed pool whose place nobody asked for connects where the shell's defaults
    // say while Prefect is read: the common case costs no round trip, and a record that says
    // otherwise connects again there. A flag waits for the record, which may refuse it.
    let speculate = matches!(request.mode, PoolMode::Create { .. } | PoolMode::Ensure) && provision_infra && target.scope == Scope::default();
    // Names a cloud would refuse stop the run before any cloud is read: those of the
    // blueprint asked for here, the whole one's (add-ons a record remembers) once it is known.
    // Its clouds are what a speculative connection may reach.
    let mut asked_clouds = Vec::new();
    if matches!(request.mode, PoolMode::Create { .. } | PoolMode::Ensure) {
        let blueprint = blueprint_for(&request, provision_infra, &present_in(&contexts(&prefect.settings, &request)))?;
        names::check(&request.name, &blueprint, &blueprint.names(&request.name, &target.names)?, &target.names)?;
        asked_clouds = blueprint.clouds;
    }
    let speculative = async {
        match speculate {
            true => connect_all(&asked_clouds, &request.name, &Scope::default()).await,
            false => Vec::new(),
        }
    };
    let ((pool, record), speculative) = futures::join!(known(prefect, &request, provision_infra), speculative);
    let (pool, record) = (pool?, record?);
    match request.mode {
        PoolMode::Deprovision => request.pool_type = teardown::pool_type(prefect, &request.name, &request.pool_type, pool.as_ref(), record.as_ref()).await?,
        PoolMode::ProvisionInfra => {
            let pool = pool.as_ref().ok_or_else(|| {
                Error::usage(format!("work pool '{}'", request.name), "does not exist")
                    .fix(format!("create it with `pushpool work-pool create {} --type TYPE --provision-infra`", request.name))
            })?;
            request.pool_type = pool.pool_type.clone();
        }
        PoolMode::Create { .. } | PoolMode::Ensure => {}
    }
    // The add-ons a pool was provisioned with stay: a run without the flag builds them too.
    let recorded = record.clone();
    let record = record.filter(|r| r.pool_type == request.pool_type);
    let mut added = Vec::new();
    if let Some(record) = &record {
        added = request.addons.iter().filter(|a| !record.addons.contains(a)).cloned().collect();
        request.add_addons(record.addons.clone());
        for (option, value) in &record.options {
            request.options.entry(option.clone()).or_insert(value.clone());
        }
    }
    request.check_options()?;
    let contexts = contexts(&prefect.settings, &request);
    let blueprint = blueprint_for(&request, provision_infra, &present_in(&contexts))?;
    // A type read from the pool: its place flags are checked now (others were, before any call).
    if matches!(request.mode, PoolMode::ProvisionInfra | PoolMode::Deprovision) {
        check_place(&request.pool_type, &blueprint.clouds, target, Spelling::Flag)?;
    }
    refuse_replacing_what_exists(&request, &blueprint, &added)?;
    let names = blueprint.names(&request.name, &target.names)?;
    if request.mode != PoolMode::Deprovision {
        names::check(&request.name, &blueprint, &names, &target.names)?;
    }
    // Where the pool lives: its record's place, else what the pool holds, else the flags and
    // the clouds' defaults.
    let place = match (&record, &pool) {
        _ if blueprint.clouds.is_empty() => None,
        (Some(record), _) if !record.places.is_empty() => Place::recorded(&record.places),
        (_, Some(pool)) => Place::held(prefect, pool).await?,
        _ => None,
    };
    let clouds = connect_in_place(&blueprint, &request.name, place.as_ref(), &target.scope, speculative).await?;
    let place_source = describe_source(place.as_ref(), pool.is_some() || record.is_some(), &blueprint);
    Ok(PoolPlan { request, blueprint, names, clouds, contexts, place_source, recorded })
}

/// Connects each cloud of `blueprint` for `pool` where it lives (`place`, else `asked`),
/// taking a `speculative` connection made where the defaults say when that is the place, and
/// refusing credentials of another account or tenant than the place's.
async fn connect_in_place(
    blueprint: &Blueprint,
    pool: &str,
    place: Option<&Place>,
    asked: &Scope,
    mut speculative: Vec<(String, Result<CloudContext>)>,
) -> Result<Vec<CloudContext>> {
    let scope = match place {
        Some(place) => place.scope(asked, pool)?,
        None => asked.clone(),
    };
    let mut clouds = Vec::new();
    for cloud in &blueprint.clouds {
        let guessed = speculative.iter().position(|(name, _)| name == cloud).map(|at| speculative.swap_remove(at).1);
        let connected = match (guessed, place) {
            // No place to keep to: what the defaults gave, failure included.
            (Some(result), None) => result,
            (Some(Ok(context)), Some(place)) if place.fits(&context) => Ok(context),
            _ => CloudContext::connect(cloud, pool, &scope).await,
        };
        let context = connected.map_err(|error| needed_by_addon(error, pool, cloud, blueprint))?;
        if let Some(place) = place {
            place.check(&context, pool)?;
        }
        clouds.push(context);
    }
    Ok(clouds)
}

/// What Prefect knows of the pool, read at once: the pool (read once per run, so the pool's
/// node does not read it again) and its record, which only a run that builds in a cloud, or
/// a type with add-ons, needs.
async fn known(prefect: &PrefectContext, request: &PoolRequest, provision_infra: bool) -> (Result<Option<WorkPool>>, Result<Option<PoolRecord>>) {
    let needs_record =
        provision_infra || !matches!(request.mode, PoolMode::Create { .. } | PoolMode::Ensure) || Blueprint::offers_addons(&request.pool_type).unwrap_or(false);
    let record = async {
        match needs_record {
            true => pool_record::read(prefect, &request.name).await,
            false => Ok(None),
        }
    };
    futures::join!(prefect.work_pool(&request.name), record)
}

/// Connects each of `clouds` for `pool` in `scope`, at once, keeping each outcome.
async fn connect_all(clouds: &[String], pool: &str, scope: &Scope) -> Vec<(String, Result<CloudContext>)> {
    let connects = clouds.iter().map(|cloud| async move { (cloud.clone(), CloudContext::connect(cloud, pool, scope).await) });
    futures::future::join_all(connects).await
}

/// Where the header says the pool's place came from: its record, what it holds, or, for a
/// pool that exists yet says nothing of it, the shell's defaults. Nothing for a new pool.
fn describe_source(place: Option<&Place>, exists: bool, blueprint: &Blueprint) -> Option<String> {
    match place {
        Some(place) => Some(format!("from {}", place.source)),
        None if exists && !blueprint.clouds.is_empty() => Some("from the flags and the defaults: the pool says nothing of where it lives".to_owned()),
        None => None,
    }
}

/// Why tasks in a VPC may not reach `url`: a loopback or private address (or no URL at all).
pub(super) fn unreachable_from_a_vpc(url: &str) -> Option<&'static str> {
    let Ok(parsed) = reqwest::Url::parse(url) else { return Some("not a URL") };
    let Some(host) = parsed.host_str() else { return Some("no host") };
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("a loopback address, which is the task's own");
    }
    let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() else { return None };
    let private = match ip {
        std::net::IpAddr::V4(ip) => ip.is_private() || ip.is_link_local(),
        std::net::IpAddr::V6(ip) => ip.is_unique_local() || ip.is_unicast_link_local(),
    };
    match (ip.is_loopback() || ip.is_unspecified(), private) {
        (true, _) => Some("a loopback address, which is the task's own"),
        (false, true) => Some("a private address, which tasks reach only where the VPC is connected to that network"),
        (false, false) => None,
    }
}

/// The image a worker pushpool runs starts from, unless `--worker-image` names another.
pub const WORKER_IMAGE: &str = "prefecthq/prefect:3-latest";

/// The `prefect` and `worker` contexts of a pool (see [`crate::blueprint::CONTEXTS`]): the
/// Prefect API (its key a secret, absent without auth) and the worker pushpool would run for
/// the pool (its image and API URL from the command line or the pool's record).
fn contexts(settings: &PrefectSettings, request: &PoolRequest) -> BTreeMap<String, Attrs> {
    let mut prefect = Attrs::new().with("api_url", settings.api_url.as_str());
    if let Some(key) = &settings.api_key {
        prefect.set_secret("api_key", key.clone());
    }
    let option = |name: &str| request.options.get(name).map(String::as_str);
    let worker = Attrs::new()
        .with("pool", request.name.as_str())
        .with("image", option("worker-image").unwrap_or(WORKER_IMAGE))
        .with("api_url", option("worker-api-url").unwrap_or(&settings.api_url));
    BTreeMap::from([("prefect".to_owned(), prefect), ("worker".to_owned(), worker)])
}

/// Whether `contexts` hold the attribute `context.attr` (`prefect.api_key`), for the nodes
/// `only_with` one.
fn present_in(contexts: &BTreeMap<String, Attrs>) -> impl Fn(&str) -> bool + '_ {
    |attr: &str| attr.split_once('.').is_some_and(|(context, attr)| contexts.get(context).is_some_and(|a| a.get(attr).is_some()))
}

/// Refuses an add-on that takes nodes out (`--worker` replaces the IAM user, its key and the
/// block) for a pool provisioned without it: what those nodes built would be left behind, in
/// no graph any teardown plans.
fn refuse_replacing_what_exists(request: &PoolRequest, blueprint: &Blueprint, added: &[String]) -> Result<()> {
    if request.mode == PoolMode::Deprovision {
        return Ok(());
    }
    let replacing = blueprint.addons.iter().find(|(addon, used)| added.contains(addon) && !used.removes.is_empty());
    let Some((addon, used)) = replacing else { return Ok(()) };
    let (name, flag) = (&request.name, addon_flag(addon));
    let cause = format!("was provisioned without {flag}, which replaces what it built for it ({}): that would be left behind", used.removes.join("; "));
    Err(Error::usage(format!("work pool '{name}'"), cause).fix(format!("tear it down first (`pushpool work-pool deprovision {name}`), then create it with {flag}")))
}

/// `error` connecting to `cloud`, saying which add-on needs the cloud when the pool type
/// alone would not: a Modal pool's user did not think of AWS, `--image-registry ecr` did.
fn needed_by_addon(mut error: Error, pool: &str, cloud: &str, blueprint: &Blueprint) -> Error {
    for (addon, used) in blueprint.addons.iter().filter(|(_, used)| used.clouds.iter().any(|c| c == cloud)) {
        error.cause.push_str(&format!("\n  work pool '{pool}' needs {cloud} for {} ({})", addon_flag(addon), used.says));
    }
    error
}

/// The blueprint for the request's type; without `--provision-infra`, only its pool node; with
/// `--set-as-default`, a node that makes the pool the profile's default.
fn blueprint_for(request: &PoolRequest, provision_infra: bool, present: &dyn Fn(&str) -> bool) -> Result<Blueprint> {
    let pool_type = &request.pool_type;
    let mut blueprint = Blueprint::for_pool(pool_type, &request.addons, present)?.ok_or_else(|| cannot_provision(pool_type))?;
    if !provision_infra {
        blueprint.nodes.retain(|n| matches!(n.kind, Kind::PrefectWorkPool(_)));
        for node in &mut blueprint.nodes {
            node.after.clear();
            node.kind = Kind::PrefectWorkPool(kinds::WorkPool::default());
        }
        blueprint.clouds.clear();
        blueprint.registry = None;
        blueprint.guides.clear();
    }
    if request.set_as_default {
        let pool = blueprint.nodes.iter().find(|n| matches!(n.kind, Kind::PrefectWorkPool(_))).map(|n| n.id.clone());
        blueprint.nodes.push(NodeSpec {
            id: "default_pool".into(),
            name: None,
            says: "Default work pool of the active Prefect profile (--set-as-default)".into(),
            after: pool.into_iter().collect(),
            kind: Kind::PrefectProfileSetting(kinds::ProfileSetting { key: DEFAULT_POOL_KEY.into(), value: Value::from(request.name.as_str()) }),
        });
    }
    Ok(blueprint)
}

#[cfg(test)]
mod tests {
    use super::unreachable_from_a_vpc;

    #[test]
    fn loopback_and_private_api_urls_are_named_and_public_ones_are_not() {
        for url in ["http://127.0.0.1:4200/api", "http://localhost:4200/api", "http://[::1]:4200/api", "http://0.0.0.0:4200/api"] {
            assert!(unreachable_from_a_vpc(url).unwrap().contains("loopback"), "{url}");
        }
        for url in ["http://10.0.0.5/api", "http://192.168.1.2:4200/api", "http://172.16.0.1/api", "http://[fd00::1]/api"] {
            assert!(unreachable_from_a_vpc(url).unwrap().contains("private"), "{url}");
        }
        for url in ["https://prefect.example.com/api", "http://54.1.2.3/api", "https://api.prefect.cloud/api/accounts/a/workspaces/w"] {
            assert_eq!(unreachable_from_a_vpc(url), None, "{url}");
        }
    }
}
