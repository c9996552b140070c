//! AWS: the client setup and the node kinds of an ECS pool (and of the worker pushpool runs for
//! a hybrid one), and of the ECR side of a Modal pool.

mod access_key;
pub mod cidr;
mod containers;
mod context;
mod errors;
mod http;
mod iam;
mod iam_inventory;
mod logs;
pub mod names;
mod network;
mod once;
mod policy_doc;
mod profile;
mod propagation;
pub mod region;
mod role_policy;
mod secrets;
mod service;
mod task_definition;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

pub use access_key::LIMIT as KEYS_PER_USER;
pub use context::AwsContext;
use iam_inventory::Entity;

use crate::blueprint::{Blueprint, Kind, NodeId, NodeSpec};
use crate::engine::NodeRef;
use crate::error::{Error, Result};
use crate::minted::MintedSecret;
use crate::policies;
use crate::prefect::context::PrefectContext;

/// The AWS accounts named by the ARNs anywhere in `value` (`arn:aws:iam::123456789012:...`):
/// what tells which account a work pool's job variables are about.
pub fn accounts_in(value: &Value) -> BTreeSet<String> {
    arn_fields(value, 3)
}

/// The regions named anywhere in `value` by regional ARNs (`arn:aws:ecs:<region>:…`; IAM's
/// name none): what tells where a pool Prefect's own CLI made has its resources.
pub fn regions_in(value: &Value) -> BTreeSet<String> {
    arn_fields(value, 2)
}

/// Field `nth` (after `arn:`; 0 is the partition) of every ARN anywhere in `value`, where set.
fn arn_fields(value: &Value, nth: usize) -> BTreeSet<String> {
    match value {
        Value::String(text) => text.strip_prefix("arn:").and_then(|arn| arn.split(':').nth(nth)).filter(|f| !f.is_empty()).map(str::to_owned).into_iter().collect(),
        Value::Array(items) => items.iter().flat_map(|item| arn_fields(item, nth)).collect(),
        Value::Object(fields) => fields.values().flat_map(|field| arn_fields(field, nth)).collect(),
        _ => BTreeSet::new(),
    }
}

/// Builds the AWS node of `spec`, returning its display name and implementation.
/// `names` holds every node's resolved name, for nodes that name another (a policy's user).
pub fn build(spec: &NodeSpec, blueprint: &Blueprint, names: &BTreeMap<String, String>, aws: &Arc<AwsContext>, prefect: &Arc<PrefectContext>) -> Result<(String, NodeRef)> {
    let name_of = |id: &str| names.get(id).cloned().ok_or_else(|| Error::usage(format!("blueprint node '{}'", spec.id), format!("node '{id}' has no name")));
    let name = || name_of(&spec.id);
    let node_id = |id: &NodeId| id.as_str().to_owned();
    let document = |file: &str| policy_doc::parse_own(file, policies::document("aws", file)?);
    let aws = aws.clone();
    // What each IAM node reads when it observes, for the account's inventory.
    let want = |entity| aws.iam_inventory.want(&aws.pool, entity);
    let node: (String, NodeRef) = match &spec.kind {
        Kind::AwsIamRole(role) => {
            let name = name()?;
            let inline_policy = match &role.inline_policy {
                Some(inline) => Some(iam::InlinePolicy { name: inline.name.clone(), document: document(&inline.document)? }),
                None => None,
            };
            want(Entity::Role);
            let node = iam::Role { aws, name: name.clone(), trust_policy: document(&role.trust_policy)?, managed_policies: role.managed_policies.clone(), inline_policy };
            (name, Arc::new(node))
        }
        Kind::AwsIamUser(_) => {
            let name = name()?;
            want(Entity::User);
            (name.clone(), Arc::new(iam::User { aws, name }))
        }
        Kind::AwsIamPolicy(policy) => {
            let name = name()?;
            let attach_to = match blueprint.node(policy.attach_to.as_str()).map(|n| &n.kind) {
                Some(Kind::AwsIamRole(_)) => iam::Principal::Role(name_of(policy.attach_to.as_str())?),
                _ => iam::Principal::User(name_of(policy.attach_to.as_str())?),
            };
            // A policy reads its principal's attachments too.
            want(Entity::Policy);
            want(attach_to.entity());
            let node = iam::Policy {
                aws,
                name: name.clone(),
                description: format!("{} (pushpool)", spec.says),
                document: document(&policy.document)?,
                attach_to,
                principal_node: node_id(&policy.attach_to),
            };
            (name, Arc::new(node))
        }
        Kind::AwsIamAccessKey(key) => {
            let user = name_of(key.user.as_str())?;
            let minter = access_key::AccessKeys { aws, user: user.clone() };
            (user, Arc::new(MintedSecret::for_block(minter, prefect.clone(), blueprint, names, &spec.id, key.block.as_str(), key.user.as_str())?))
        }
        Kind::AwsEcsCluster(_) => {
            let name = name()?;
            // The services the pool runs in it go before it in a teardown: they do not keep it.
            let services = blueprint.nodes.iter().filter(|n| matches!(&n.kind, Kind::AwsEcsService(s) if s.cluster.as_str() == spec.id));
            let own_services = services.map(|n| name_of(&n.id)).collect::<Result<_>>()?;
            (name.clone(), Arc::new(containers::Cluster { aws, name, own_services }))
        }
        Kind::AwsIamRolePolicy(policy) => {
            let name = name()?;
            want(Entity::Role);
            let node = role_policy::RolePolicy {
                aws,
                name: name.clone(),
                role: name_of(policy.role.as_str())?,
                role_node: node_id(&policy.role),
                document: document(&policy.document)?,
            };
            (name, Arc::new(node))
        }
        Kind::AwsSecret(secret) => {
            let name = name()?;
            let node = secrets::Secret { aws, name: name.clone(), description: format!("{} (pushpool)", spec.says), value: secret.value.clone() };
            (name, Arc::new(node))
        }
        Kind::AwsLogGroup(_) => {
            let name = name()?;
            (name.clone(), Arc::new(logs::LogGroup { aws, name }))
        }
        Kind::AwsEcsTaskDefinition(task) => {
            let family = name()?;
            let wanted = json!({
                "image": task.image,
                "command": task.command,
                "environment": task.environment,
                "secrets": task.secrets,
                "execution_role_arn": format!("@{}.arn", task.execution_role.as_str()),
                "task_role_arn": format!("@{}.arn", task.task_role.as_str()),
                "log_group": format!("@{}.name", task.log_group.as_str()),
            });
            (family.clone(), Arc::new(task_definition::TaskDefinition { aws, family, wanted }))
        }
        Kind::AwsEcsService(service) => {
            let name = name()?;
            let node = service::Service {
                aws,
                name: name.clone(),
                cluster: name_of(service.cluster.as_str())?,
                cluster_node: node_id(&service.cluster),
                task_definition: node_id(&service.task_definition),
                subnets: node_id(&service.subnets),
                security_group: node_id(&service.security_group),
            };
            (name, Arc::new(node))
        }
        Kind::AwsEcrRepository(repository) => {
            let name = name()?;
            let in_use_with = repository.in_use_with.iter().map(|id| name_of(id.as_str())).collect::<Result<_>>()?;
            (name.clone(), Arc::new(containers::Repository { aws, name, in_use_with }))
        }
        Kind::AwsVpc(_) => {
            let name = name()?;
            (name.clone(), Arc::new(network::Vpc { aws, name }))
        }
        Kind::AwsInternetGateway(gateway) => {
            let name = name()?;
            (name.clone(), Arc::new(network::InternetGateway { aws, name, vpc: node_id(&gateway.vpc) }))
        }
        Kind::AwsSubnets(subnets) => {
            let name = name()?;
            (name.clone(), Arc::new(network::Subnets { aws, name, vpc: node_id(&subnets.vpc), count: subnets.count }))
        }
        Kind::AwsRouteTable(table) => {
            let name = name()?;
            let node =
                network::RouteTable { aws, name: name.clone(), vpc: node_id(&table.vpc), gateway: node_id(&table.internet_gateway), subnets: node_id(&table.subnets) };
            (name, Arc::new(node))
        }
        Kind::AwsSecurityGroup(group) => {
            let name = name()?;
            (name.clone(), Arc::new(network::SecurityGroup { aws, name, vpc: node_id(&group.vpc) }))
        }
        other => return Err(Error::usage(format!("node '{}'", spec.id), format!("{} is not an AWS kind", other.name()))),
    };
    Ok(node)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn accounts_come_from_arns_at_any_depth() {
        let defaults = json!({"execution_role_arn": {"default": "arn:aws:iam::111122223333:role/r"}, "cluster": {"default": "c"},
            "network": {"default": {"subnets": ["arn:aws:ec2:us-east-1:444455556666:subnet/s"]}}});
        assert_eq!(accounts_in(&defaults), BTreeSet::from(["111122223333".to_owned(), "444455556666".to_owned()]));
        assert!(accounts_in(&json!({"cluster": "arn-like-name", "image": "arn:aws:s3:::bucket"})).is_empty());
    }
}
