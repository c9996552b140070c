//! Network node kinds: `aws.vpc`, `aws.internet_gateway`, `aws.subnets`, `aws.route_table`,
//! `aws.security_group`, one file each, and the helpers they share.
//!
//! The account's default VPC is used when its main route table sends 0.0.0.0/0 to an
//! internet gateway: its default subnets, gateway and route table are then reused and only
//! the security group is created. Otherwise pushpool finds or creates its own VPC (a /16 of
//! private space), gateway, one public subnet per availability zone and a route table.
//!
//! Dependencies point one way: the node kinds import the [`AwsContext`](super::AwsContext)
//! and read the VPC facts through the [`RegionNetwork`](facts::RegionNetwork) it holds;
//! [`facts`] imports nothing of the context, and nothing outside this folder imports a node
//! kind's file (`clouds::aws` names them through the re-exports below).

pub(super) mod facts;
mod internet_gateway;
mod route_table;
mod security_group;
mod subnets;
mod vpc;

use aws_sdk_ec2::types::{Filter, RouteTable as Ec2RouteTable};
use serde_json::Value;

pub use internet_gateway::InternetGateway;
pub use route_table::RouteTable;
pub use security_group::SecurityGroup;
pub use subnets::Subnets;
pub use vpc::Vpc;

use crate::engine::{Action, Attrs, Observation};

/// An EC2 describe filter with one value.
fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The internet gateway a route table sends 0.0.0.0/0 to, if any.
fn internet_route(table: &Ec2RouteTable) -> Option<String> {
    table.routes().iter().find(|r| r.destination_cidr_block() == Some("0.0.0.0/0")).and_then(|r| r.gateway_id()).filter(|g| g.starts_with("igw-")).map(str::to_owned)
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
