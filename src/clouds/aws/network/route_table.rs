//! `aws.route_table`: the route to the internet gateway, associated with the subnets.

use std::sync::Arc;

use aws_sdk_ec2::types::{ResourceType, RouteTable as Ec2RouteTable};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};

use super::{DONE_ALREADY, filter, follow_vpc, internet_route, is_default, tag_pairs};
use crate::clouds::aws::context::AwsContext;
use crate::clouds::aws::errors::{accept, aws_error};
use crate::clouds::aws::once::create_once;
use crate::engine::ownership::{NOT_OURS, owned};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::Result;

/// `aws.route_table`: sends 0.0.0.0/0 to the gateway, associated with every subnet.
pub struct RouteTable {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The table's `Name` tag.
    pub name: String,
    /// The VPC, gateway and subnets nodes.
    pub vpc: String,
    /// The internet gateway node.
    pub gateway: String,
    /// The subnets node.
    pub subnets: String,
}

impl RouteTable {
    fn what(&self) -> String {
        format!("route table {}", self.name)
    }

    async fn find(&self, vpc_id: &str) -> Result<Option<Ec2RouteTable>> {
        let found = self
            .aws
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", vpc_id))
            .filters(filter("tag:Name", &self.name))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| aws_error(&self.what(), "ec2:DescribeRouteTables", e))?;
        Ok(found.into_iter().next())
    }
}

impl Node for RouteTable {
    fn label(&self) -> &'static str {
        "route table"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            // The table is read as soon as the VPC is known, while the gateway and subnets
            // are still being observed.
            let vpc = upstream.get(&self.vpc).await?;
            let table = async {
                match vpc.attrs.str("id").filter(|_| !is_default(&vpc)) {
                    Some(vpc_id) => self.find(vpc_id).await,
                    None => Ok(None),
                }
            };
            let (table, gateway, subnets) = futures::join!(table, upstream.get(&self.gateway), upstream.get(&self.subnets));
            let (table, gateway, subnets) = (table?, gateway?, subnets?);
            if is_default(&vpc) {
                let id = vpc.attrs.str("route_table").unwrap_or_default();
                return Ok(Observation::reuse(format!("the default VPC's main table {id}"), Attrs::new().with("id", id)));
            }
            let Some(table) = table else {
                return Ok(Observation::create("missing", Attrs::new()));
            };
            let id = table.route_table_id().unwrap_or_default();
            let mut reasons = Vec::new();
            match (internet_route(&table), gateway.attrs.str("id")) {
                (Some(route), Some(gw)) if gateway.action == Action::Reuse && route == gw => {}
                _ => reasons.push("route 0.0.0.0/0 to the gateway".to_owned()),
            }
            let associated: Vec<&str> = table.associations().iter().filter_map(|a| a.subnet_id()).collect();
            let subnet_ids: Vec<String> = serde_json::from_value(subnets.attrs.value("ids").cloned().unwrap_or_default()).unwrap_or_default();
            if subnets.action != Action::Reuse || subnet_ids.iter().any(|s| !associated.contains(&s.as_str())) {
                reasons.push("associate the subnets".to_owned());
            }
            let attrs = Attrs::new().with("id", id);
            Ok(if reasons.is_empty() { Observation::reuse("routes the subnets to the gateway", attrs) } else { Observation::update(reasons.join("; "), attrs) })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let ec2 = &self.aws.ec2;
            let vpc_id = inputs.str(&self.vpc, "id")?;
            let gateway = inputs.str(&self.gateway, "id")?;
            let subnet_ids: Vec<String> = serde_json::from_value(inputs.node(&self.subnets)?.value("ids").cloned().unwrap_or_default()).unwrap_or_default();
            let existing = match observed.attrs.str("id") {
                Some(_) => self.find(vpc_id).await?,
                None => None,
            };
            let (id, route, associated) = match &existing {
                Some(table) => (
                    table.route_table_id().unwrap_or_default().to_owned(),
                    internet_route(table),
                    table.associations().iter().filter_map(|a| a.subnet_id().map(str::to_owned)).collect(),
                ),
                None => {
                    let create = || async {
                        let tags = self.aws.ec2_tags(ResourceType::RouteTable, &self.name);
                        let out = self.aws.once.ec2.create_route_table().vpc_id(vpc_id).tag_specifications(tags).send().await?;
                        Ok(out.route_table().and_then(|t| t.route_table_id()).map(str::to_owned))
                    };
                    let lookup = || async { Ok(self.find(vpc_id).await?.and_then(|t| t.route_table_id().map(str::to_owned))) };
                    (create_once(&what, "ec2:CreateRouteTable", create, lookup).await?, None, Vec::<String>::new())
                }
            };
            // The route and the associations only need the table: they are made at once.
            let route = async {
                match route.as_deref() {
                    Some(current) if current == gateway => Ok(()),
                    Some(_) => {
                        let replaced = ec2.replace_route().route_table_id(&id).destination_cidr_block("0.0.0.0/0").gateway_id(gateway).send().await;
                        replaced.map(drop).map_err(|e| aws_error(&what, "ec2:ReplaceRoute", e))
                    }
                    None => {
                        let created = ec2.create_route().route_table_id(&id).destination_cidr_block("0.0.0.0/0").gateway_id(gateway).send().await;
                        accept(created, DONE_ALREADY, &what, "ec2:CreateRoute")
                    }
                }
            };
            let (id, what) = (&id, &what);
            let associate = subnet_ids.iter().filter(|s| !associated.contains(s)).map(|subnet| async move {
                accept(ec2.associate_route_table().route_table_id(id).subnet_id(subnet).send().await, DONE_ALREADY, what, "ec2:AssociateRouteTable")
            });
            let (route, associated) = futures::join!(route, join_all(associate));
            route?;
            associated.into_iter().collect::<Result<Vec<_>>>()?;
            Ok(Attrs::new().with("id", id.as_str()))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let vpc_id = match follow_vpc(&*upstream.get(&self.vpc).await?, "the main route table") {
                Ok(vpc_id) => vpc_id,
                Err(observed) => return Ok(observed),
            };
            let Some(table) = self.find(&vpc_id).await? else { return Ok(Observation::gone("does not exist")) };
            let id = table.route_table_id().unwrap_or_default();
            let associations: Vec<&str> = table.associations().iter().filter(|a| a.main() != Some(true)).filter_map(|a| a.route_table_association_id()).collect();
            let attrs = Attrs::new().with("id", id).hint("associations", associations);
            Ok(if owned(tag_pairs(table.tags())) {
                Observation::delete(format!("{id}, created by pushpool"), attrs)
            } else {
                Observation::keep(format!("{id}: {NOT_OURS}"), attrs)
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let what = self.what();
            let id = observed.attrs.require_str(&self.name, "id")?;
            let associations = observed.attrs.strings("associations");
            let what = &what;
            let disassociate = associations.iter().map(|association| async move {
                let done = self.aws.ec2.disassociate_route_table().association_id(association).send().await;
                accept(done, &["InvalidAssociationID.NotFound"], what, "ec2:DisassociateRouteTable")
            });
            join_all(disassociate).await.into_iter().collect::<Result<Vec<_>>>()?;
            accept(self.aws.ec2.delete_route_table().route_table_id(id).send().await, &["InvalidRouteTableID.NotFound"], what, "ec2:DeleteRouteTable")
        }
        .boxed()
    }
}
