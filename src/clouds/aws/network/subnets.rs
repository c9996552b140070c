//! `aws.subnets`: one public subnet per availability zone.

use std::sync::Arc;

use aws_sdk_ec2::types::{Filter, ResourceType, Subnet};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use serde_json::{Value, json};

use super::{filter, follow_vpc, is_default, tag_pairs};
use crate::clouds::aws::cidr::{Cidr, free_subnets};
use crate::clouds::aws::context::AwsContext;
use crate::clouds::aws::errors::{accept, aws_error};
use crate::clouds::aws::once::create_once;
use crate::engine::ownership::{NOT_OURS, owned};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};

/// The prefix length of each public subnet: four fit in the /16.
const SUBNET_PREFIX: u8 = 18;

/// `aws.subnets`: one public subnet per availability zone, up to `count`.
pub struct Subnets {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The prefix of each subnet's `Name` tag (the zone is appended).
    pub name: String,
    /// The VPC node.
    pub vpc: String,
    /// How many zones to cover (fewer when the region has fewer).
    pub count: usize,
}

impl Subnets {
    /// Every subnet `filters` select, all pages read.
    async fn describe(&self, filters: Vec<Filter>, what: &str) -> Result<Vec<Subnet>> {
        let found = self.aws.ec2.describe_subnets().set_filters(Some(filters)).into_paginator().items().send().try_collect().await;
        found.map_err(|e| aws_error(what, "ec2:DescribeSubnets", e))
    }
}

impl Node for Subnets {
    fn label(&self) -> &'static str {
        "subnets"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let what = format!("subnets {}", self.name);
            let vpc = upstream.get(&self.vpc).await?;
            if is_default(&vpc) {
                let ids: Vec<String> = serde_json::from_value(vpc.attrs.value("subnets").cloned().unwrap_or_default()).unwrap_or_default();
                let ids: Vec<String> = ids.into_iter().take(self.count).collect();
                return Ok(Observation::reuse(format!("the default VPC's subnets {}", ids.join(", ")), Attrs::new().with("ids", ids)));
            }
            let mut present: Vec<(String, String, Cidr)> = Vec::new();
            if let Some(vpc_id) = vpc.attrs.str("id") {
                present = self
                    .describe(vec![filter("vpc-id", vpc_id)], &what)
                    .await?
                    .iter()
                    .filter_map(|s| Some((s.availability_zone()?.to_owned(), s.subnet_id()?.to_owned(), s.cidr_block()?.parse().ok()?)))
                    .collect();
            }
            // Subnets in enough zones are all a re-run needs to know; the region's zones are
            // read only to place the missing ones.
            let mut present_zones: Vec<String> = present.iter().map(|(zone, ..)| zone.clone()).collect();
            present_zones.sort();
            present_zones.dedup();
            let zones: Vec<String> = if present_zones.len() >= self.count {
                present_zones.into_iter().take(self.count).collect()
            } else {
                self.aws.zones().await?.into_iter().take(self.count).collect()
            };
            if zones.is_empty() {
                return Err(Error::usage(format!("region {}", self.aws.region), "has no available availability zone"));
            }
            let vpc_cidr: Cidr = vpc.attrs.require_str(&self.vpc, "cidr")?.parse().map_err(|e: String| Error::remote(&what, e))?;
            let missing: Vec<&String> = zones.iter().filter(|z| !present.iter().any(|(az, ..)| az == *z)).collect();
            let taken: Vec<Cidr> = present.iter().map(|(.., c)| *c).collect();
            let cidrs = free_subnets(vpc_cidr, SUBNET_PREFIX, &taken, missing.len());
            if cidrs.len() < missing.len() {
                return Err(Error::usage(format!("VPC {}", vpc_cidr), "has no room for another /18 subnet"));
            }
            let planned: Vec<Value> = missing.iter().zip(&cidrs).map(|(az, c)| json!({"zone": az, "cidr": c.to_string()})).collect();
            let kept: Vec<Value> = zones.iter().filter_map(|z| present.iter().find(|(az, ..)| az == z)).map(|(az, id, _)| json!({"zone": az, "id": id})).collect();
            let mut attrs = Attrs::new().with("planned", planned.clone()).with("present", kept.clone());
            Ok(if missing.is_empty() {
                let ids: Vec<Value> = kept.iter().map(|k| k["id"].clone()).collect();
                attrs.set("ids", ids);
                Observation::reuse("one in each zone", attrs)
            } else {
                let list = planned.iter().map(|p| format!("{} in {}", p["cidr"].as_str().unwrap_or("?"), p["zone"].as_str().unwrap_or("?"))).collect::<Vec<_>>().join(", ");
                if kept.is_empty() { Observation::create(list, attrs) } else { Observation::update(format!("add {list}"), attrs) }
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let vpc_id = inputs.str(&self.vpc, "id")?;
            let planned = observed.attrs.value("planned").and_then(Value::as_array).cloned().unwrap_or_default();
            let create = planned.iter().map(|p| async move {
                let zone = p["zone"].as_str().unwrap_or_default();
                let name = format!("{}-{zone}", self.name);
                let what = format!("subnet {name}");
                let create = || async {
                    let out = self
                        .aws
                        .once
                        .ec2
                        .create_subnet()
                        .vpc_id(vpc_id)
                        .availability_zone(zone)
                        .cidr_block(p["cidr"].as_str().unwrap_or_default())
                        .tag_specifications(self.aws.ec2_tags(ResourceType::Subnet, &name))
                        .send()
                        .await?;
                    Ok(out.subnet().and_then(|s| s.subnet_id()).map(str::to_owned))
                };
                let lookup = || async {
                    let found = self.describe(vec![filter("vpc-id", vpc_id), filter("availability-zone", zone)], &what).await?;
                    Ok(found.first().and_then(|s| s.subnet_id()).map(str::to_owned))
                };
                let id = create_once(&what, "ec2:CreateSubnet", create, lookup).await?;
                Ok::<_, Error>(json!({"zone": zone, "id": id}))
            });
            let created = join_all(create).await.into_iter().collect::<Result<Vec<_>>>()?;
            let mut all: Vec<Value> = observed.attrs.value("present").and_then(Value::as_array).cloned().unwrap_or_default();
            all.extend(created);
            all.sort_by(|a, b| a["zone"].as_str().cmp(&b["zone"].as_str()));
            let ids: Vec<Value> = all.iter().map(|s| s["id"].clone()).collect();
            Ok(Attrs::new().with("ids", ids).with("present", all).with("planned", Vec::<Value>::new()))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let vpc_id = match follow_vpc(&*upstream.get(&self.vpc).await?, "the default subnets") {
                Ok(vpc_id) => vpc_id,
                Err(observed) => return Ok(observed),
            };
            let found = self.describe(vec![filter("vpc-id", &vpc_id)], &format!("subnets {}", self.name)).await?;
            let (ours, others): (Vec<_>, Vec<_>) = found.iter().partition(|s| owned(tag_pairs(s.tags())));
            let ids: Vec<&str> = ours.iter().filter_map(|s| s.subnet_id()).collect();
            let attrs = Attrs::new().with("ids", ids.clone());
            Ok(match (ids.is_empty(), others.is_empty()) {
                (true, true) => Observation::gone("none in the VPC"),
                (_, true) => Observation::delete(ids.join(", "), attrs),
                (_, false) => {
                    let others: Vec<&str> = others.iter().filter_map(|s| s.subnet_id()).collect();
                    Observation::keep(format!("{} in the VPC: {NOT_OURS}; delete them, then run again", others.join(", ")), attrs)
                }
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let ids: Vec<String> = serde_json::from_value(observed.attrs.value("ids").cloned().unwrap_or_default()).unwrap_or_default();
            let delete = ids.iter().map(|id| async move {
                let deleted = self.aws.ec2.delete_subnet().subnet_id(id).send().await;
                accept(deleted, &["InvalidSubnetID.NotFound"], &format!("subnet {id}"), "ec2:DeleteSubnet")
            });
            join_all(delete).await.into_iter().collect()
        }
        .boxed()
    }
}
