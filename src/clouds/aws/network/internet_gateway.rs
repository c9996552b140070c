//! `aws.internet_gateway`: the VPC's way out.

use std::sync::Arc;

use aws_sdk_ec2::types::ResourceType;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{DONE_ALREADY, filter, follow_vpc, is_default, tag_pairs};
use crate::clouds::aws::context::AwsContext;
use crate::clouds::aws::errors::{accept, aws_error};
use crate::clouds::aws::once::create_once;
use crate::engine::ownership::{NOT_OURS, owned};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::Result;

/// `aws.internet_gateway`: the VPC's way out, attached to it.
pub struct InternetGateway {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The gateway's `Name` tag.
    pub name: String,
    /// The VPC node.
    pub vpc: String,
}

impl Node for InternetGateway {
    fn label(&self) -> &'static str {
        "internet gateway"
    }

    /// One read at most in the usual cases: none before the VPC exists, the gateway attached
    /// to it after. Only a VPC without a gateway also looks for a detached one left by an
    /// interrupted run.
    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let what = format!("internet gateway {}", self.name);
            let vpc = upstream.get(&self.vpc).await?;
            if is_default(&vpc) {
                let id = vpc.attrs.str("gateway").unwrap_or_default();
                return Ok(Observation::reuse(format!("the default VPC's gateway {id}"), Attrs::new().with("id", id)));
            }
            let describe = |name: &str, value: &str| {
                let request = self.aws.ec2.describe_internet_gateways().filters(filter(name, value)).into_paginator().items().send().try_collect();
                async { request.await.map_err(|e| aws_error(&what, "ec2:DescribeInternetGateways", e)) }
            };
            // A VPC yet to be created has no gateway: a stray one from an interrupted run
            // exists only beside an existing VPC (the gateway is created after it).
            let Some(vpc_id) = vpc.attrs.str("id") else { return Ok(Observation::create("missing", Attrs::new())) };
            let attached = describe("attachment.vpc-id", vpc_id).await?;
            if let Some(id) = attached.first().and_then(|g| g.internet_gateway_id()) {
                return Ok(Observation::reuse(format!("attached to {vpc_id}"), Attrs::new().with("id", id)));
            }
            let tagged = describe("tag:Name", &self.name).await?;
            let detached = tagged.iter().find(|g| g.attachments().is_empty());
            Ok(match detached.and_then(|g| g.internet_gateway_id()) {
                Some(id) => Observation::update(format!("{id} exists but is not attached to the VPC"), Attrs::new().with("id", id)),
                None => Observation::create("missing", Attrs::new()),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = format!("internet gateway {}", self.name);
            let ec2 = &self.aws.ec2;
            let id = match observed.attrs.str("id") {
                Some(id) => id.to_owned(),
                None => {
                    let create = || async {
                        let tags = self.aws.ec2_tags(ResourceType::InternetGateway, &self.name);
                        let out = self.aws.once.ec2.create_internet_gateway().tag_specifications(tags).send().await?;
                        Ok(out.internet_gateway().and_then(|g| g.internet_gateway_id()).map(str::to_owned))
                    };
                    let lookup = || async {
                        let found = ec2.describe_internet_gateways().filters(filter("tag:Name", &self.name)).into_paginator().items().send().try_collect().await;
                        let found = found.map_err(|e| aws_error(&what, "ec2:DescribeInternetGateways", e))?;
                        Ok(found.first().and_then(|g| g.internet_gateway_id()).map(str::to_owned))
                    };
                    create_once(&what, "ec2:CreateInternetGateway", create, lookup).await?
                }
            };
            let vpc_id = inputs.str(&self.vpc, "id")?;
            let attached = ec2.attach_internet_gateway().internet_gateway_id(&id).vpc_id(vpc_id).send().await;
            accept(attached, DONE_ALREADY, &what, "ec2:AttachInternetGateway")?;
            Ok(Attrs::new().with("id", id))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let what = format!("internet gateway {}", self.name);
            let vpc = upstream.get(&self.vpc).await?;
            let request = self.aws.ec2.describe_internet_gateways();
            // A gateway left detached by an interrupted run is found by its name.
            let request = match follow_vpc(&vpc, "the gateway") {
                Ok(vpc_id) => request.filters(filter("attachment.vpc-id", &vpc_id)),
                Err(observed) if observed.action == Action::Gone => request.filters(filter("tag:Name", &self.name)),
                Err(observed) => return Ok(observed),
            };
            let found = request.into_paginator().items().send().try_collect().await;
            let found = found.map_err(|e| aws_error(&what, "ec2:DescribeInternetGateways", e))?;
            let Some(gateway) = found.first() else { return Ok(Observation::gone("does not exist")) };
            let id = gateway.internet_gateway_id().unwrap_or_default();
            let attached: Vec<&str> = gateway.attachments().iter().filter_map(|a| a.vpc_id()).collect();
            let attrs = Attrs::new().with("id", id).with("attached_to", attached.clone());
            Ok(if !owned(tag_pairs(gateway.tags())) {
                Observation::keep(format!("{id}: {NOT_OURS}"), attrs)
            } else if vpc.action != Action::Delete && !attached.is_empty() {
                Observation::keep(format!("{id} is attached to {}", attached.join(", ")), attrs)
            } else {
                Observation::delete(format!("{id}, created by pushpool"), attrs)
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let what = format!("internet gateway {}", self.name);
            let id = observed.attrs.require_str(&self.name, "id")?;
            let attached: Vec<String> = serde_json::from_value(observed.attrs.value("attached_to").cloned().unwrap_or_default()).unwrap_or_default();
            const GONE: &[&str] = &["InvalidInternetGatewayID.NotFound", "Gateway.NotAttached"];
            for vpc_id in &attached {
                let detached = self.aws.ec2.detach_internet_gateway().internet_gateway_id(id).vpc_id(vpc_id).send().await;
                accept(detached, GONE, &what, "ec2:DetachInternetGateway")?;
            }
            accept(self.aws.ec2.delete_internet_gateway().internet_gateway_id(id).send().await, GONE, &what, "ec2:DeleteInternetGateway")
        }
        .boxed()
    }
}
