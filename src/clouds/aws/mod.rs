//! AWS: the client setup and the node kinds of an ECS pool.

mod access_key;
pub mod cidr;
mod containers;
mod context;
mod errors;
mod iam;
mod network;
mod once;
mod ownership;
mod policy_doc;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

pub use context::AwsContext;

use crate::blueprint::{Blueprint, NodeSpec};
use crate::engine::NodeRef;
use crate::error::{Error, Result};
use crate::policies;
use crate::prefect::context::PrefectContext;

/// The AWS accounts named by the ARNs anywhere in `value` (`arn:aws:iam::123456789012:...`):
/// what tells which account a work pool's job variables are about.
pub fn accounts_in(value: &Value) -> BTreeSet<String> {
    match value {
        Value::String(text) => text.strip_prefix("arn:").and_then(|arn| arn.split(':').nth(3)).filter(|a| !a.is_empty()).map(str::to_owned).into_iter().collect(),
        Value::Array(items) => items.iter().flat_map(accounts_in).collect(),
        Value::Object(fields) => fields.values().flat_map(accounts_in).collect(),
        _ => BTreeSet::new(),
    }
}

/// Builds the AWS node of `spec`, returning its display name and implementation.
/// `names` holds every node's resolved name, for nodes that name another (a policy's user).
pub fn build(
    spec: &NodeSpec,
    blueprint: &Blueprint,
    names: &BTreeMap<String, String>,
    aws: &Arc<AwsContext>,
    prefect: &Arc<PrefectContext>,
) -> Result<(String, NodeRef)> {
    let params = Params { spec, names };
    let aws = aws.clone();
    let node: (String, NodeRef) = match spec.kind.as_str() {
        "aws.iam_role" => {
            let name = params.name()?;
            let inline_policy = match spec.params.get("inline_policy") {
                Some(inline) => Some(iam::InlinePolicy {
                    name: inline["name"].as_str().ok_or_else(|| params.missing("inline_policy.name"))?.to_owned(),
                    document: params.document(inline["document"].as_str().ok_or_else(|| params.missing("inline_policy.document"))?)?,
                }),
                None => None,
            };
            let managed_policies = params.strings("managed_policies");
            let trust_policy = params.document(params.str("trust_policy")?)?;
            (name.clone(), Arc::new(iam::Role { aws, name, trust_policy, managed_policies, inline_policy }))
        }
        "aws.iam_user" => {
            let name = params.name()?;
            (name.clone(), Arc::new(iam::User { aws, name }))
        }
        "aws.iam_policy" => {
            let name = params.name()?;
            let user_node = params.str("attach_to")?;
            let node = iam::Policy {
                aws,
                name: name.clone(),
                document: params.document(params.str("document")?)?,
                pass_role: spec.params.get("pass_role").and_then(Value::as_str).map(str::to_owned),
                attach_to: params.name_of(user_node)?,
                user_node: user_node.to_owned(),
            };
            (name, Arc::new(node))
        }
        "aws.iam_access_key" => {
            let user = params.name_of(params.str("user")?)?;
            let block_node = params.str("block")?;
            let block_spec = blueprint.nodes.iter().find(|n| n.id == block_node).ok_or_else(|| params.missing("block"))?;
            let block_slug = block_spec.params.get("block_type").and_then(Value::as_str).ok_or_else(|| params.missing("block.block_type"))?;
            let node = access_key::AccessKey {
                aws,
                prefect: prefect.clone(),
                user: user.clone(),
                user_node: params.str("user")?.to_owned(),
                block_slug: block_slug.to_owned(),
                block_name: params.name_of(block_node)?,
            };
            (user, Arc::new(node))
        }
        "aws.ecs_cluster" => {
            let name = params.name()?;
            (name.clone(), Arc::new(containers::Cluster { aws, name }))
        }
        "aws.ecr_repository" => {
            let name = params.name()?;
            let in_use_with = params.strings("in_use_with").iter().map(|id| params.name_of(id)).collect::<Result<_>>()?;
            (name.clone(), Arc::new(containers::Repository { aws, name, in_use_with }))
        }
        "aws.vpc" => {
            let name = params.name()?;
            (name.clone(), Arc::new(network::Vpc { aws, name }))
        }
        "aws.internet_gateway" => {
            let name = params.name()?;
            (name.clone(), Arc::new(network::InternetGateway { aws, name, vpc: params.str("vpc")?.to_owned() }))
        }
        "aws.subnets" => {
            let name = params.name()?;
            let count = spec.params.get("count").and_then(Value::as_u64).unwrap_or(3) as usize;
            (name.clone(), Arc::new(network::Subnets { aws, name, vpc: params.str("vpc")?.to_owned(), count }))
        }
        "aws.route_table" => {
            let name = params.name()?;
            let node = network::RouteTable {
                aws,
                name: name.clone(),
                vpc: params.str("vpc")?.to_owned(),
                gateway: params.str("internet_gateway")?.to_owned(),
                subnets: params.str("subnets")?.to_owned(),
            };
            (name, Arc::new(node))
        }
        "aws.security_group" => {
            let name = params.name()?;
            (name.clone(), Arc::new(network::SecurityGroup { aws, name, vpc: params.str("vpc")?.to_owned() }))
        }
        other => return Err(Error::usage(format!("node '{}'", spec.id), format!("unknown kind '{other}'"))),
    };
    Ok(node)
}

/// Typed access to a node's settings, with errors that name the node and the setting.
struct Params<'a> {
    spec: &'a NodeSpec,
    names: &'a BTreeMap<String, String>,
}

impl<'a> Params<'a> {
    fn missing(&self, key: &str) -> Error {
        Error::usage(format!("blueprint node '{}'", self.spec.id), format!("needs `{key}`"))
    }

    fn str(&self, key: &str) -> Result<&'a str> {
        self.spec.params.get(key).and_then(Value::as_str).ok_or_else(|| self.missing(key))
    }

    fn strings(&self, key: &str) -> Vec<String> {
        serde_json::from_value(self.spec.params.get(key).cloned().unwrap_or_default()).unwrap_or_default()
    }

    fn name(&self) -> Result<String> {
        self.name_of(&self.spec.id)
    }

    fn name_of(&self, id: &str) -> Result<String> {
        self.names.get(id).cloned().ok_or_else(|| self.missing(&format!("name of node '{id}'")))
    }

    fn document(&self, file: &str) -> Result<Value> {
        policy_doc::parse_own(file, policies::document("aws", file)?)
    }
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
