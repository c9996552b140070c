//! Network node kinds: `aws.vpc`, `aws.internet_gateway`, `aws.subnets`, `aws.route_table`,
//! `aws.security_group`.
//!
//! The account's default VPC is used when its main route table sends 0.0.0.0/0 to an
//! internet gateway: its default subnets, gateway and route table are then reused and only
//! the security group is created. Otherwise pushpool finds or creates its own VPC (a /16 of
//! private space), gateway, one public subnet per availability zone and a route table.

use std::sync::Arc;

use aws_sdk_ec2::types::{Filter, ResourceType, RouteTable as Ec2RouteTable};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use serde_json::{Value, json};

use super::cidr::{Cidr, free_private_16, free_subnets};
use super::context::{AwsContext, NOT_OURS, decide, owned};
use super::errors::{accept, aws_error};
use super::once::create_once;
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};

/// The prefix length of each public subnet: four fit in the /16.
const SUBNET_PREFIX: u8 = 18;

/// What the region's VPCs say, read once per run.
#[derive(Debug, Clone)]
pub struct NetworkFacts {
    /// The default VPC, if the account has one and pushpool's own does not exist.
    default: Option<DefaultVpc>,
    /// The VPC tagged `Name=<vpc name>`, if any: pushpool's from an earlier run.
    named: Option<NamedVpc>,
    /// Every CIDR block of every VPC in the region.
    taken: Vec<Cidr>,
}

#[derive(Debug, Clone)]
struct NamedVpc {
    id: String,
    cidr: Cidr,
    /// Whether it carries pushpool's ownership tag.
    owned: bool,
}

#[derive(Debug, Clone)]
struct DefaultVpc {
    id: String,
    /// The internet gateway the main route table sends 0.0.0.0/0 to.
    gateway: Option<String>,
    route_table: Option<String>,
    /// Default subnets, sorted by availability zone.
    subnets: Vec<String>,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn internet_route(table: &Ec2RouteTable) -> Option<String> {
    table
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"))
        .and_then(|r| r.gateway_id())
        .filter(|g| g.starts_with("igw-"))
        .map(str::to_owned)
}

impl AwsContext {
    /// The region's VPC facts for a VPC named `name`, read once per run.
    async fn network(&self, name: &str) -> Result<NetworkFacts> {
        self.network.get_or_init(&name.to_owned(), || self.read_network(name)).await
    }

    async fn read_network(&self, name: &str) -> Result<NetworkFacts> {
        let what = format!("VPCs of region {}", self.region);
        let vpcs = self.ec2.describe_vpcs().send().await.map_err(|e| aws_error(&what, "ec2:DescribeVpcs", e))?;
        let vpcs = vpcs.vpcs();
        let taken = vpcs
            .iter()
            .flat_map(|v| v.cidr_block_association_set().iter().filter_map(|a| a.cidr_block()).chain(v.cidr_block()))
            .filter_map(|c| c.parse().ok())
            .collect();
        let named = vpcs
            .iter()
            .find(|v| v.tags().iter().any(|t| t.key() == Some("Name") && t.value() == Some(name)))
            .and_then(|v| {
                let owned = owned(v.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))));
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
            self.ec2.describe_route_tables().filters(filter("vpc-id", id)).send(),
            self.ec2.describe_subnets().filters(filter("vpc-id", id)).send()
        );
        let tables = tables.map_err(|e| aws_error(&what, "ec2:DescribeRouteTables", e))?;
        let main = tables.route_tables().iter().find(|t| t.associations().iter().any(|a| a.main() == Some(true)));
        let mut subnets: Vec<(String, String)> = subnets
            .map_err(|e| aws_error(&what, "ec2:DescribeSubnets", e))?
            .subnets()
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

/// Answers of idempotent follow-up calls (attach, associate, route) that mean the work is
/// done: after a retried or resumed create they count as success.
const DONE_ALREADY: &[&str] = &["Resource.AlreadyAssociated", "RouteAlreadyExists"];

/// True when the VPC node chose the account's default VPC.
fn is_default(vpc: &Observation) -> bool {
    vpc.attrs.value("default").and_then(Value::as_bool) == Some(true)
}

/// The teardown of what lives in a VPC (gateway, subnets, route table) follows the VPC's:
/// the VPC's id when it is deleted, else the observation to report.
fn follow_vpc(vpc: &Observation, what: &str) -> std::result::Result<String, Observation> {
    match (vpc.action, vpc.attrs.str("id")) {
        (Action::Delete, Some(id)) => Ok(id.to_owned()),
        (Action::Gone, _) | (_, None) => Err(Observation::gone("its VPC does not exist")),
        _ if is_default(vpc) => Err(Observation::keep(format!("{what} of the account's default VPC, which stays"), Attrs::new())),
        _ => Err(Observation::keep(format!("its VPC stays ({})", vpc.reason), Attrs::new())),
    }
}

/// Tags of an EC2 resource as (key, value) pairs.
fn tag_pairs(tags: &[aws_sdk_ec2::types::Tag]) -> impl Iterator<Item = (&str, &str)> {
    tags.iter().filter_map(|t| Some((t.key()?, t.value()?)))
}

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
            let facts = self.aws.network(&self.name).await?;
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
                let out = self.aws.ec2.describe_vpcs().filters(filter("tag:Name", &self.name)).send().await.map_err(|e| aws_error(&what, "ec2:DescribeVpcs", e))?;
                Ok(out.vpcs().first().and_then(|v| v.vpc_id()).map(str::to_owned))
            };
            let id = create_once(&what, "ec2:CreateVpc", create, lookup).await?;
            Ok(Attrs::new().with("id", id))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let facts = self.aws.network(&self.name).await?;
            if let Some(NamedVpc { id, owned, .. }) = &facts.named {
                let attrs = Attrs::new().with("id", id.as_str()).with("default", false);
                return Ok(decide(*owned, teardown.in_use([id.as_str()]), attrs, format!("{id}, created by pushpool, used by no other pool")));
            }
            // The default VPC is listed only where provisioning would have used it.
            Ok(match facts.default.as_ref().filter(|d| d.gateway.is_some() && !d.subnets.is_empty()) {
                Some(default) => Observation::keep(format!("the account's default VPC {}: {NOT_OURS}", default.id), Attrs::new().with("id", default.id.as_str()).with("default", true)),
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
                let request = self.aws.ec2.describe_internet_gateways().filters(filter(name, value)).send();
                async { request.await.map_err(|e| aws_error(&what, "ec2:DescribeInternetGateways", e)) }
            };
            // A VPC yet to be created has no gateway: a stray one from an interrupted run
            // exists only beside an existing VPC (the gateway is created after it).
            let Some(vpc_id) = vpc.attrs.str("id") else { return Ok(Observation::create("missing", Attrs::new())) };
            let attached = describe("attachment.vpc-id", vpc_id).await?;
            if let Some(id) = attached.internet_gateways().first().and_then(|g| g.internet_gateway_id()) {
                return Ok(Observation::reuse(format!("attached to {vpc_id}"), Attrs::new().with("id", id)));
            }
            let tagged = describe("tag:Name", &self.name).await?;
            let detached = tagged.internet_gateways().iter().find(|g| g.attachments().is_empty());
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
                        let out = ec2.describe_internet_gateways().filters(filter("tag:Name", &self.name)).send().await;
                        let out = out.map_err(|e| aws_error(&what, "ec2:DescribeInternetGateways", e))?;
                        Ok(out.internet_gateways().first().and_then(|g| g.internet_gateway_id()).map(str::to_owned))
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
            let out = request.send().await.map_err(|e| aws_error(&what, "ec2:DescribeInternetGateways", e))?;
            let Some(gateway) = out.internet_gateways().first() else { return Ok(Observation::gone("does not exist")) };
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
                let out = self.aws.ec2.describe_subnets().filters(filter("vpc-id", vpc_id)).send().await.map_err(|e| aws_error(&what, "ec2:DescribeSubnets", e))?;
                present = out
                    .subnets()
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
            let kept: Vec<Value> =
                zones.iter().filter_map(|z| present.iter().find(|(az, ..)| az == z)).map(|(az, id, _)| json!({"zone": az, "id": id})).collect();
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
                    let filters = [filter("vpc-id", vpc_id), filter("availability-zone", zone)];
                    let out = self.aws.ec2.describe_subnets().set_filters(Some(filters.to_vec())).send().await;
                    let out = out.map_err(|e| aws_error(&what, "ec2:DescribeSubnets", e))?;
                    Ok(out.subnets().first().and_then(|s| s.subnet_id()).map(str::to_owned))
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
            let out = self.aws.ec2.describe_subnets().filters(filter("vpc-id", &vpc_id)).send().await;
            let out = out.map_err(|e| aws_error(&format!("subnets {}", self.name), "ec2:DescribeSubnets", e))?;
            let (ours, others): (Vec<_>, Vec<_>) = out.subnets().iter().partition(|s| owned(tag_pairs(s.tags())));
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
        let out = self
            .aws
            .ec2
            .describe_route_tables()
            .filters(filter("vpc-id", vpc_id))
            .filters(filter("tag:Name", &self.name))
            .send()
            .await
            .map_err(|e| aws_error(&self.what(), "ec2:DescribeRouteTables", e))?;
        Ok(out.route_tables().first().cloned())
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
            let associations: Vec<&str> =
                table.associations().iter().filter(|a| a.main() != Some(true)).filter_map(|a| a.route_table_association_id()).collect();
            let attrs = Attrs::new().with("id", id).with("associations", associations);
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
            let associations: Vec<String> = serde_json::from_value(observed.attrs.value("associations").cloned().unwrap_or_default()).unwrap_or_default();
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

/// `aws.security_group`: the tasks' group; no inbound rules, AWS's default egress.
pub struct SecurityGroup {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The group's name.
    pub name: String,
    /// The VPC node.
    pub vpc: String,
}

impl Node for SecurityGroup {
    fn label(&self) -> &'static str {
        "security group"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let vpc = upstream.get(&self.vpc).await?;
            let Some(vpc_id) = vpc.attrs.str("id") else { return Ok(Observation::create("missing", Attrs::new())) };
            let out = self
                .aws
                .ec2
                .describe_security_groups()
                .filters(filter("vpc-id", vpc_id))
                .filters(filter("group-name", &self.name))
                .send()
                .await
                .map_err(|e| aws_error(&format!("security group {}", self.name), "ec2:DescribeSecurityGroups", e))?;
            Ok(match out.security_groups().first().and_then(|g| g.group_id()) {
                Some(id) => Observation::reuse(format!("exists in {vpc_id}"), Attrs::new().with("id", id)),
                None => Observation::create(format!("missing in {vpc_id}"), Attrs::new()),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = format!("security group {}", self.name);
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
            let lookup = || async {
                let filters = [filter("vpc-id", vpc_id), filter("group-name", &self.name)];
                let out = self.aws.ec2.describe_security_groups().set_filters(Some(filters.to_vec())).send().await;
                let out = out.map_err(|e| aws_error(&what, "ec2:DescribeSecurityGroups", e))?;
                Ok(out.security_groups().first().and_then(|g| g.group_id()).map(str::to_owned))
            };
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
            let out = self
                .aws
                .ec2
                .describe_security_groups()
                .filters(filter("vpc-id", vpc_id))
                .filters(filter("group-name", &self.name))
                .send()
                .await
                .map_err(|e| aws_error(&format!("security group {}", self.name), "ec2:DescribeSecurityGroups", e))?;
            let Some(group) = out.security_groups().first() else { return Ok(Observation::gone(format!("none in {vpc_id}"))) };
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
