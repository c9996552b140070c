//! `aws.vpc`: the default VPC when it can serve, else pushpool's own.

use std::sync::Arc;

use aws_sdk_ec2::types::ResourceType;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::facts::NamedVpc;
use super::filter;
use crate::clouds::aws::cidr::free_private_16;
use crate::clouds::aws::context::AwsContext;
use crate::clouds::aws::errors::{accept, aws_error};
use crate::clouds::aws::once::create_once;
use crate::engine::ownership::{NOT_OURS, decide};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};

/// `aws.vpc`: the network of the flow runs.
pub struct Vpc {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The name of pushpool's own VPC.
    pub name: String,
}

impl Node for Vpc {
    fn label(&self) -> &'static str {
        "VPC"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let facts = self.aws.network.facts(&self.name).await?;
            if let Some(default) = facts.default.as_ref().filter(|d| d.gateway.is_some() && !d.subnets.is_empty()) {
                let attrs = Attrs::new()
                    .with("id", default.id.as_str())
                    .with("default", true)
                    .with("gateway", default.gateway.clone())
                    .with("route_table", default.route_table.clone())
                    .with("subnets", default.subnets.clone());
                let reason = format!("default VPC {} routes 0.0.0.0/0 to {}", default.id, default.gateway.as_deref().unwrap_or("?"));
                return Ok(Observation::reuse(reason, attrs));
            }
            if let Some(NamedVpc { id, cidr, .. }) = &facts.named {
                let attrs = Attrs::new().with("id", id.as_str()).with("default", false).with("cidr", cidr.to_string());
                return Ok(Observation::reuse("exists", attrs));
            }
            let cidr = free_private_16(&facts.taken).ok_or_else(|| {
                Error::usage(format!("VPC {}", self.name), "every /16 of private address space (10/8, 172.16/12, 192.168/16) overlaps an existing VPC")
                    .fix("delete an unused VPC, or give the account's default VPC an internet gateway so that it is used")
            })?;
            let reason = match &facts.default {
                Some(d) if d.gateway.is_none() => format!("default VPC {} has no route to an internet gateway", d.id),
                Some(d) => format!("default VPC {} has no default subnets", d.id),
                None => "the account has no default VPC".to_owned(),
            };
            Ok(Observation::create(format!("{reason}; new VPC {cidr}"), Attrs::new().with("default", false).with("cidr", cidr.to_string())))
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let cidr = observed.attrs.require_str(&self.name, "cidr")?;
            let what = format!("VPC {}", self.name);
            let create = || async {
                let out = self.aws.once.ec2.create_vpc().cidr_block(cidr).tag_specifications(self.aws.ec2_tags(ResourceType::Vpc, &self.name)).send().await?;
                Ok(out.vpc().and_then(|v| v.vpc_id()).map(str::to_owned))
            };
            let lookup = || async {
                let found = self.aws.ec2.describe_vpcs().filters(filter("tag:Name", &self.name)).into_paginator().items().send().try_collect().await;
                let found = found.map_err(|e| aws_error(&what, "ec2:DescribeVpcs", e))?;
                Ok(found.first().and_then(|v| v.vpc_id()).map(str::to_owned))
            };
            let id = create_once(&what, "ec2:CreateVpc", create, lookup).await?;
            Ok(Attrs::new().with("id", id))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let facts = self.aws.network.facts(&self.name).await?;
            if let Some(NamedVpc { id, owned, .. }) = &facts.named {
                let attrs = Attrs::new().with("id", id.as_str()).with("default", false);
                return Ok(decide(*owned, teardown.in_use([id.as_str()]), attrs, format!("{id}, created by pushpool, used by no other pool")));
            }
            // The default VPC is listed only where provisioning would have used it.
            Ok(match facts.default.as_ref().filter(|d| d.gateway.is_some() && !d.subnets.is_empty()) {
                Some(default) => {
                    Observation::keep(format!("the account's default VPC {}: {NOT_OURS}", default.id), Attrs::new().with("id", default.id.as_str()).with("default", true))
                }
                None => Observation::gone("does not exist"),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let id = observed.attrs.require_str(&self.name, "id")?;
            let deleted = self.aws.ec2.delete_vpc().vpc_id(id).send().await;
            accept(deleted, &["InvalidVpcID.NotFound"], &format!("VPC {}", self.name), "ec2:DeleteVpc")
        }
        .boxed()
    }
}
