//! `aws.security_group`: the flow-run tasks' group.

use std::sync::Arc;

use aws_sdk_ec2::types::ResourceType;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{filter, tag_pairs};
use crate::clouds::aws::context::AwsContext;
use crate::clouds::aws::errors::{accept, aws_error};
use crate::clouds::aws::once::create_once;
use crate::engine::ownership::{decide, owned};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::Result;

/// `aws.security_group`: the tasks' group; no inbound rules, AWS's default egress.
pub struct SecurityGroup {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The group's name.
    pub name: String,
    /// The VPC node.
    pub vpc: String,
}

impl SecurityGroup {
    fn what(&self) -> String {
        format!("security group {}", self.name)
    }

    /// The group of this name in `vpc_id`, if any.
    async fn find(&self, vpc_id: &str) -> Result<Option<aws_sdk_ec2::types::SecurityGroup>> {
        let filters = [filter("vpc-id", vpc_id), filter("group-name", &self.name)];
        let found = self.aws.ec2.describe_security_groups().set_filters(Some(filters.to_vec())).into_paginator().items().send().try_collect().await;
        let found = found.map_err(|e| aws_error(&self.what(), "ec2:DescribeSecurityGroups", e))?;
        Ok(found.into_iter().next())
    }
}

impl Node for SecurityGroup {
    fn label(&self) -> &'static str {
        "security group"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let vpc = upstream.get(&self.vpc).await?;
            let Some(vpc_id) = vpc.attrs.str("id") else { return Ok(Observation::create("missing", Attrs::new())) };
            Ok(match self.find(vpc_id).await?.as_ref().and_then(|g| g.group_id()) {
                Some(id) => Observation::reuse(format!("exists in {vpc_id}"), Attrs::new().with("id", id)),
                None => Observation::create(format!("missing in {vpc_id}"), Attrs::new()),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let vpc_id = inputs.str(&self.vpc, "id")?;
            let create = || async {
                let out = self
                    .aws
                    .once
                    .ec2
                    .create_security_group()
                    .group_name(&self.name)
                    .description("Prefect flow runs (pushpool): no inbound rules")
                    .vpc_id(vpc_id)
                    .tag_specifications(self.aws.ec2_tags(ResourceType::SecurityGroup, &self.name))
                    .send()
                    .await?;
                Ok(out.group_id().map(str::to_owned))
            };
            let lookup = || async { Ok(self.find(vpc_id).await?.and_then(|g| g.group_id().map(str::to_owned))) };
            let id = create_once(&what, "ec2:CreateSecurityGroup", create, lookup).await?;
            Ok(Attrs::new().with("id", id))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let vpc = upstream.get(&self.vpc).await?;
            let Some(vpc_id) = vpc.attrs.str("id").filter(|_| vpc.action != Action::Gone) else {
                return Ok(Observation::gone("its VPC does not exist"));
            };
            let Some(group) = self.find(vpc_id).await? else { return Ok(Observation::gone(format!("none in {vpc_id}"))) };
            let id = group.group_id().unwrap_or_default();
            let attrs = Attrs::new().with("id", id);
            Ok(decide(owned(tag_pairs(group.tags())), teardown.in_use([id]), attrs, format!("{id}, created by pushpool, used by no other pool")))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let id = observed.attrs.require_str(&self.name, "id")?;
            let deleted = self.aws.ec2.delete_security_group().group_id(id).send().await;
            accept(deleted, &["InvalidGroup.NotFound"], &format!("security group {}", self.name), "ec2:DeleteSecurityGroup")
        }
        .boxed()
    }
}
