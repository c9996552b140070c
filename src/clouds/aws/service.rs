//! `aws.ecs_service`: a Fargate service running one task (a worker) in the pool's subnets and
//! security group. A re-run updates it only when its task definition revision, task count or
//! network differ. A teardown scales it to zero, then deletes it.

use std::sync::Arc;

use aws_sdk_ecs::types::{AssignPublicIp, AwsVpcConfiguration, LaunchType, NetworkConfiguration, ServiceField};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::context::AwsContext;
use super::errors::{accept, aws_error};
use super::propagation::until_roles_usable;
use crate::engine::ownership::{decide, owned};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};

/// Tasks the service keeps running.
const TASKS: i32 = 1;

/// The roles a service's tasks run with, as a wait for them names them.
const ROLES: &str = "the task definition's roles";

/// A service, by cluster and name.
pub struct Service {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The service's name.
    pub name: String,
    /// The cluster's name.
    pub cluster: String,
    /// The cluster's node.
    pub cluster_node: String,
    /// The task definition's node (`arn`).
    pub task_definition: String,
    /// The subnets' node (`ids`).
    pub subnets: String,
    /// The security group's node (`id`).
    pub security_group: String,
}

impl Service {
    fn what(&self) -> String {
        format!("ECS service {} in cluster {}", self.name, self.cluster)
    }

    /// The active service, with its tags.
    async fn describe(&self) -> Result<Option<aws_sdk_ecs::types::Service>> {
        let out = self.aws.ecs.describe_services().cluster(&self.cluster).services(&self.name).include(ServiceField::Tags).send().await;
        let out = match out {
            Ok(out) => out,
            Err(e) if super::errors::code(&e).as_deref() == Some("ClusterNotFoundException") => return Ok(None),
            Err(e) => return Err(aws_error(&self.what(), "ecs:DescribeServices", e)),
        };
        Ok(out.services().iter().find(|s| s.service_name() == Some(self.name.as_str()) && s.status() == Some("ACTIVE")).cloned())
    }

    /// The network as compared: subnets and security groups, sorted.
    fn network(subnets: &[String], groups: &[String]) -> Value {
        let (mut subnets, mut groups) = (subnets.to_vec(), groups.to_vec());
        subnets.sort();
        groups.sort();
        json!({"subnets": subnets, "security_groups": groups})
    }

    fn network_configuration(subnets: Vec<String>, group: &str) -> Result<NetworkConfiguration> {
        let vpc = AwsVpcConfiguration::builder()
            .set_subnets(Some(subnets))
            .security_groups(group)
            .assign_public_ip(AssignPublicIp::Enabled)
            .build()
            .map_err(|e| Error::remote("ECS service network", e.to_string()))?;
        Ok(NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
    }
}

impl Node for Service {
    fn label(&self) -> &'static str {
        "ECS service"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let attrs = Attrs::new().with("name", self.name.as_str());
            if upstream.get(&self.cluster_node).await?.action == Action::Create {
                return Ok(Observation::create(format!("cluster {} is created too", self.cluster), attrs));
            }
            let (live, task, subnets, group) =
                futures::join!(self.describe(), upstream.get(&self.task_definition), upstream.get(&self.subnets), upstream.get(&self.security_group));
            let (live, task, subnets, group) = (live?, task?, subnets?, group?);
            let Some(live) = live else { return Ok(Observation::create("missing", attrs)) };
            let attrs = attrs.with("arn", live.service_arn().unwrap_or_default());
            let mut reasons = Vec::new();
            if task.action.writes() {
                reasons.push("runs the task definition's new revision".to_owned());
            } else if live.task_definition() != task.attrs.str("arn") {
                reasons.push(format!("runs {}", live.task_definition().unwrap_or("another task definition")));
            }
            if live.desired_count() != TASKS {
                reasons.push(format!("wants {} task(s), not {TASKS}", live.desired_count()));
            }
            let vpc = live.network_configuration().and_then(|n| n.awsvpc_configuration());
            let live_network = Self::network(vpc.map(|v| v.subnets()).unwrap_or_default(), vpc.map(|v| v.security_groups()).unwrap_or_default());
            let wanted_network = Self::network(&subnets.attrs.strings("ids"), &group.attrs.str("id").map(str::to_owned).into_iter().collect::<Vec<_>>());
            if subnets.action.writes() || group.action.writes() || live_network != wanted_network {
                reasons.push("its network differs from the pool's subnets and security group".to_owned());
            }
            Ok(match reasons.is_empty() {
                true => Observation::reuse(format!("runs {TASKS} task of the wanted revision"), attrs),
                false => Observation::update(reasons.join("; "), attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let task = inputs.str(&self.task_definition, "arn")?;
            let network = Self::network_configuration(inputs.node(&self.subnets)?.strings("ids"), inputs.str(&self.security_group, "id")?)?;
            if observed.action == Action::Create {
                let tags = self.aws.tags().into_iter().map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
                // The SDK's client token makes a retried create the same create.
                let create = self
                    .aws
                    .ecs
                    .create_service()
                    .cluster(&self.cluster)
                    .service_name(&self.name)
                    .task_definition(task)
                    .desired_count(TASKS)
                    .launch_type(LaunchType::Fargate)
                    .network_configuration(network)
                    .set_tags(Some(tags.collect()));
                let out = until_roles_usable(&what, "ecs:CreateService", ROLES, || create.clone().send()).await?;
                return Ok(Attrs::new().with("arn", out.service().and_then(|s| s.service_arn()).unwrap_or_default()));
            }
            let update = self.aws.ecs.update_service().cluster(&self.cluster).service(&self.name).task_definition(task).desired_count(TASKS).network_configuration(network);
            until_roles_usable(&what, "ecs:UpdateService", ROLES, || update.clone().send()).await?;
            Ok(Attrs::new())
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(live) = self.describe().await? else { return Ok(Observation::gone("does not exist")) };
            let arn = live.service_arn().unwrap_or_default();
            let owned = owned(live.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))));
            Ok(decide(owned, teardown.in_use([arn]), Attrs::new().with("arn", arn), "created by pushpool: scaled to zero, then deleted"))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let (what, ecs) = (self.what(), &self.aws.ecs);
            let gone = ["ServiceNotFoundException", "ServiceNotActiveException", "ClusterNotFoundException"];
            let scaled = ecs.update_service().cluster(&self.cluster).service(&self.name).desired_count(0).send().await;
            accept(scaled, &gone, &what, "ecs:UpdateService")?;
            let deleted = ecs.delete_service().cluster(&self.cluster).service(&self.name).force(true).send().await;
            accept(deleted, &gone, &what, "ecs:DeleteService")
        }
        .boxed()
    }
}
