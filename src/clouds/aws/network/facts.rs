//! The region's VPC facts: pushpool's own VPC (by its `Name` tag), the account's default VPC
//! and the address space taken, read once per run and shared by every network node.
//!
//! [`AwsContext`](crate::clouds::aws::AwsContext) holds a [`RegionNetwork`], built from its
//! EC2 client and region; this module imports nothing of the context, so the dependency
//! points one way (context -> facts).

use super::{filter, internet_route, tag_pairs};
use crate::clouds::aws::cidr::Cidr;
use crate::clouds::aws::errors::aws_error;
use crate::engine::memo::Memo;
use crate::engine::ownership::owned;
use crate::error::Result;

/// The reader of one region's VPCs, which keeps what it read for the rest of the run.
pub struct RegionNetwork {
    ec2: aws_sdk_ec2::Client,
    region: String,
    /// The facts per VPC name.
    memo: Memo<String, Result<NetworkFacts>>,
}

/// What the region's VPCs say, read once per run.
#[derive(Debug, Clone)]
pub struct NetworkFacts {
    /// The default VPC, if the account has one and pushpool's own does not exist.
    pub(super) default: Option<DefaultVpc>,
    /// The VPC tagged `Name=<vpc name>`, if any: pushpool's from an earlier run.
    pub(super) named: Option<NamedVpc>,
    /// Every CIDR block of every VPC in the region.
    pub(super) taken: Vec<Cidr>,
}

/// pushpool's own VPC, found by its `Name` tag.
#[derive(Debug, Clone)]
pub(super) struct NamedVpc {
    pub(super) id: String,
    pub(super) cidr: Cidr,
    /// Whether it carries pushpool's ownership tag.
    pub(super) owned: bool,
}

/// The account's default VPC, with what decides whether it can serve.
#[derive(Debug, Clone)]
pub(super) struct DefaultVpc {
    pub(super) id: String,
    /// The internet gateway the main route table sends 0.0.0.0/0 to.
    pub(super) gateway: Option<String>,
    /// Its main route table.
    pub(super) route_table: Option<String>,
    /// Default subnets, sorted by availability zone.
    pub(super) subnets: Vec<String>,
}

impl RegionNetwork {
    /// The facts of `region`, to be read with `ec2` when first asked for.
    pub fn new(ec2: aws_sdk_ec2::Client, region: String) -> Self {
        Self { ec2, region, memo: Memo::default() }
    }

    /// The region's VPC facts for a VPC named `name`, read once per run.
    pub async fn facts(&self, name: &str) -> Result<NetworkFacts> {
        self.memo.get_or_init(&name.to_owned(), || self.read(name)).await
    }

    async fn read(&self, name: &str) -> Result<NetworkFacts> {
        let what = format!("VPCs of region {}", self.region);
        let vpcs = self.ec2.describe_vpcs().into_paginator().items().send().try_collect().await;
        let vpcs = vpcs.map_err(|e| aws_error(&what, "ec2:DescribeVpcs", e))?;
        let taken =
            vpcs.iter().flat_map(|v| v.cidr_block_association_set().iter().filter_map(|a| a.cidr_block()).chain(v.cidr_block())).filter_map(|c| c.parse().ok()).collect();
        let named = vpcs.iter().find(|v| v.tags().iter().any(|t| t.key() == Some("Name") && t.value() == Some(name))).and_then(|v| {
            let owned = owned(tag_pairs(v.tags()));
            Some(NamedVpc { id: v.vpc_id()?.to_owned(), cidr: v.cidr_block()?.parse().ok()?, owned })
        });
        // pushpool's own VPC, once it exists, stays the pool's network: the default VPC's
        // routes and subnets are read only when there is a choice to make.
        let default = match vpcs.iter().find(|v| v.is_default() == Some(true)).and_then(|v| v.vpc_id()) {
            Some(id) if named.is_none() => Some(self.read_default_vpc(id).await?),
            _ => None,
        };
        Ok(NetworkFacts { default, named, taken })
    }

    async fn read_default_vpc(&self, id: &str) -> Result<DefaultVpc> {
        let what = format!("default VPC {id}");
        let (tables, subnets) = futures::join!(
            self.ec2.describe_route_tables().filters(filter("vpc-id", id)).into_paginator().items().send().try_collect(),
            self.ec2.describe_subnets().filters(filter("vpc-id", id)).into_paginator().items().send().try_collect()
        );
        let tables = tables.map_err(|e| aws_error(&what, "ec2:DescribeRouteTables", e))?;
        let main = tables.iter().find(|t| t.associations().iter().any(|a| a.main() == Some(true)));
        let mut subnets: Vec<(String, String)> = subnets
            .map_err(|e| aws_error(&what, "ec2:DescribeSubnets", e))?
            .iter()
            .filter(|s| s.default_for_az() == Some(true))
            .filter_map(|s| Some((s.availability_zone()?.to_owned(), s.subnet_id()?.to_owned())))
            .collect();
        subnets.sort();
        Ok(DefaultVpc {
            id: id.to_owned(),
            gateway: main.and_then(internet_route),
            route_table: main.and_then(|t| t.route_table_id()).map(str::to_owned),
            subnets: subnets.into_iter().map(|(_, id)| id).collect(),
        })
    }
}
