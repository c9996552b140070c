//! After a provisioning apply: Docker logs in to each pool's image registry with its cloud's
//! token (read while the apply runs), and the report names the repositories images go to.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Session;
use super::graph::PoolPlan;
use crate::clouds::{self, CloudContext, RegistryAuth};
use crate::docker::{self, Login};
use crate::document::TargetDoc;
use crate::engine::reference::{Resolved, Secrets, referenced_nodes, resolve};
use crate::engine::{self, Applied, Graph, Plan};
use crate::error::{Error, Result};
use crate::ui::Console;

/// A registry's Docker credentials, by the target (scope) of the cloud that issued them.
pub(super) type Tokens = Vec<(TargetDoc, Result<RegistryAuth>)>;

/// The cloud whose registry a pool pushes images to: the cloud of the node its registry
/// host names (`@repository.registry`).
fn registry_cloud(pool: &PoolPlan) -> Option<&CloudContext> {
    let registry = pool.blueprint.registry.as_ref()?;
    let node = referenced_nodes(&registry.host).into_iter().next()?;
    pool.cloud(pool.blueprint.node(&node)?.kind.system())
}

/// Whether an apply of `plan` logs Docker in: a provisioning of a pool that pushes images. An
/// apply that fails skips the login; the run that resumes it logs in (its plan still has what
/// failed to write), and the failure says so.
pub(super) fn logs_in(session: &Session, plan: &Plan) -> bool {
    plan.goal == engine::Goal::Provision && session.pools.iter().any(|pool| registry_cloud(pool).is_some())
}

/// The registry login of each cloud scope a provisioning plan pushes images to.
pub(super) async fn tokens(session: &Session, plan: &Plan) -> Tokens {
    if !logs_in(session, plan) {
        return Vec::new();
    }
    let clouds = clouds::distinct(session.pools.iter().filter_map(registry_cloud));
    let reads = clouds.into_iter().map(|cloud| async move { (cloud.target(), cloud.registry_login().await) });
    futures::future::join_all(reads).await
}

/// Logs Docker in to each pool's registry (once per host), with its cloud's token from
/// `tokens`, and returns the repositories the report tells how to push to (those of pools
/// without guides of their own).
pub(super) async fn log_in(session: &Session, plan: &Plan, applied: &Applied, tokens: Tokens, console: &Console) -> Vec<String> {
    let mut repositories = Vec::new();
    if plan.goal == engine::Goal::Teardown {
        return repositories;
    }
    let mut logged_in = Vec::new();
    for pool in &session.pools {
        let (Some(registry), Some(cloud)) = (&pool.blueprint.registry, registry_cloud(pool)) else { continue };
        let attrs = applied_attrs_of(&session.graph, applied, &pool.request.name);
        if let Some(host) = resolved_string(&registry.host, &attrs).filter(|h| !logged_in.contains(h)) {
            let target = cloud.target();
            let token = tokens.iter().find(|(scope, _)| *scope == target).map(|(_, token)| token);
            docker_login(&host, cloud, token, console).await;
            logged_in.push(host);
        }
        // A pool whose guides say how to build and push names no repository of its own.
        if pool.blueprint.guides.is_empty() {
            repositories.extend(resolved_string(&registry.repository, &attrs));
        }
    }
    repositories.dedup();
    repositories
}

/// The applied attributes of `pool`'s nodes, by their blueprint ids.
pub(super) fn applied_attrs_of(graph: &Graph, applied: &Applied, pool: &str) -> BTreeMap<String, engine::Attrs> {
    graph
        .entries()
        .iter()
        .filter(|e| e.info.pools.iter().any(|p| p == pool))
        .filter_map(|e| {
            let local = e.info.id.rsplit('/').next().unwrap_or(&e.info.id).to_owned();
            Some((local, applied.attrs.get(&e.info.id)?.clone()))
        })
        .collect()
}

/// A reference resolved against applied attributes, when it is a known string.
fn resolved_string(reference: &Value, attrs: &BTreeMap<String, engine::Attrs>) -> Option<String> {
    match resolve(reference, attrs, Secrets::Refuse) {
        Ok(Resolved::Known(Value::String(value))) => Some(value),
        _ => None,
    }
}

async fn docker_login(registry: &str, cloud: &CloudContext, token: Option<&Result<RegistryAuth>>, console: &Console) {
    let result = match token {
        Some(Ok(RegistryAuth::Password { user, password, lasts })) => docker::login(registry, user, password).await.map(|login| (login, format!("for {lasts}"))),
        Some(Ok(RegistryAuth::Helper(helper))) => docker::use_helper(registry, helper).map(|login| (login, format!("through docker-credential-{helper}"))),
        Some(Ok(RegistryAuth::Exchange)) => match cloud.exchanged_login(registry).await {
            Ok((user, password)) => docker::login(registry, &user, &password).await.map(|login| (login, "with a registry token, for 3 hours".to_owned())),
            Err(error) => Err(error),
        },
        Some(Err(error)) => Err(error.clone()),
        None => Err(Error::remote(format!("docker login to {registry}"), "no registry token was read for its cloud")),
    };
    match result {
        // A closed stdout is reported by the run's final report, after the lock is released.
        Ok((Login::Done, how)) => drop(console.line(&format!("Docker is logged in to {registry} ({how})."))),
        Ok((Login::NotInstalled, _)) => console.note(&format!(
            "Docker is not installed, so it was not logged in to {registry}; the rest of the provisioning stands. Later: `{}`",
            cloud.registry_login_hint(registry)
        )),
        Err(error) => console.note(&format!("{error}\n  the rest of the provisioning stands")),
    }
}
