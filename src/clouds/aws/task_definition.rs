//! `aws.ecs_task_definition`: a task definition family of one Fargate container (a worker's).
//! A re-run compares the family's newest revision with what is wanted (image, command,
//! environment, secrets, roles, log group) and registers a new revision only when they differ.
//! A teardown deregisters every active revision of the family.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver, NetworkMode, TaskDefinitionField, TaskDefinitionStatus};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::context::AwsContext;
use super::errors::{accept, aws_error, code};
use super::propagation::until_roles_usable;
use crate::engine::ownership::{decide, owned};
use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};

/// The container's name in every revision.
const CONTAINER: &str = "worker";

/// A task definition family.
pub struct TaskDefinition {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The family's name.
    pub family: String,
    /// What is wanted, as compared: `image`, `command`, `environment`, `secrets`,
    /// `execution_role_arn`, `task_role_arn`, `log_group`, with `@node.attr` references.
    pub wanted: Value,
}

impl TaskDefinition {
    fn what(&self) -> String {
        format!("ECS task definition {}", self.family)
    }

    /// The family's newest active revision, with its tags.
    async fn newest(&self) -> Result<Option<(aws_sdk_ecs::types::TaskDefinition, Vec<aws_sdk_ecs::types::Tag>)>> {
        let out = self.aws.ecs.describe_task_definition().task_definition(&self.family).include(TaskDefinitionField::Tags).send().await;
        match out {
            Ok(out) => Ok(out.task_definition().filter(|t| t.status() == Some(&TaskDefinitionStatus::Active)).map(|t| (t.clone(), out.tags().to_vec()))),
            // ECS answers a family it does not know with a ClientException.
            Err(e) if code(&e).as_deref() == Some("ClientException") => Ok(None),
            Err(e) => Err(aws_error(&self.what(), "ecs:DescribeTaskDefinition", e)),
        }
    }

    /// A revision as compared with [`TaskDefinition::wanted`].
    fn shape(&self, revision: &aws_sdk_ecs::types::TaskDefinition) -> Value {
        let container = revision.container_definitions().iter().find(|c| c.name() == Some(CONTAINER));
        let pairs = |c: &ContainerDefinition| c.environment().iter().map(|p| (p.name().unwrap_or_default().to_owned(), json!(p.value()))).collect::<BTreeMap<_, _>>();
        let secrets = |c: &ContainerDefinition| c.secrets().iter().map(|s| (s.name().to_owned(), json!(s.value_from()))).collect::<BTreeMap<_, _>>();
        let log_group = container.and_then(|c| c.log_configuration()).and_then(|l| l.options()).and_then(|o| o.get("awslogs-group")).cloned();
        json!({
            "image": container.and_then(|c| c.image()),
            "command": container.map(|c| c.command().to_vec()),
            "environment": container.map(pairs),
            "secrets": container.map(secrets),
            "execution_role_arn": revision.execution_role_arn(),
            "task_role_arn": revision.task_role_arn(),
            "log_group": log_group,
        })
    }

    async fn active_revisions(&self) -> Result<Vec<String>> {
        let listed =
            self.aws.ecs.list_task_definitions().family_prefix(&self.family).status(TaskDefinitionStatus::Active).into_paginator().items().send().try_collect().await;
        let arns = listed.map_err(|e| aws_error(&self.what(), "ecs:ListTaskDefinitions", e))?;
        let ours = format!("task-definition/{}:", self.family);
        Ok(arns.into_iter().filter(|arn| arn.contains(&ours)).collect())
    }
}

impl Node for TaskDefinition {
    fn label(&self) -> &'static str {
        "ECS task definition"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (newest, known) = futures::join!(self.newest(), upstream.attrs_for(&self.wanted));
            let (newest, wanted) = (newest?, resolve(&self.wanted, &known?, Secrets::Refuse)?);
            let mut attrs = Attrs::new().with("family", self.family.as_str());
            // The environment (the worker's API URL) is public, and what a reviewer looks for.
            if let Resolved::Known(wanted) = &wanted {
                attrs.set("environment", wanted["environment"].clone());
            }
            let Some((revision, _)) = newest else { return Ok(Observation::create("missing", attrs)) };
            let live = self.shape(&revision);
            let attrs = attrs.with("arn", revision.task_definition_arn().unwrap_or_default());
            Ok(match wanted {
                Resolved::Unknown(pending) => Observation::update(format!("a new revision takes new values: {}", pending.join(", ")), attrs),
                Resolved::Known(wanted) => {
                    let differing: Vec<&String> =
                        wanted.as_object().into_iter().flatten().filter(|(key, value)| live.get(key.as_str()) != Some(value)).map(|(key, _)| key).collect();
                    match differing.is_empty() {
                        true => Observation::reuse(format!("revision {} is as wanted", revision.revision()), attrs),
                        false => {
                            let fields: Vec<&str> = differing.iter().map(|k| k.as_str()).collect();
                            Observation::update(format!("a new revision: {} differ(s) from revision {}", fields.join(", "), revision.revision()), attrs)
                        }
                    }
                }
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let Resolved::Known(wanted) = resolve(&self.wanted, inputs.all(), Secrets::Refuse)? else {
                return Err(Error::remote(what, "its settings are still unknown after its dependencies"));
            };
            let text = |key: &str| wanted[key].as_str().map(str::to_owned);
            let environment =
                wanted["environment"].as_object().into_iter().flatten().map(|(k, v)| KeyValuePair::builder().name(k).value(v.as_str().unwrap_or_default()).build());
            let secrets =
                wanted["secrets"].as_object().into_iter().flatten().filter_map(|(k, v)| aws_sdk_ecs::types::Secret::builder().name(k).value_from(v.as_str()?).build().ok());
            let logs = LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", text("log_group").unwrap_or_default())
                .options("awslogs-region", &self.aws.region)
                .options("awslogs-stream-prefix", CONTAINER)
                .build()
                .map_err(|e| Error::remote(&what, e.to_string()))?;
            let command = wanted["command"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned);
            let container = ContainerDefinition::builder()
                .name(CONTAINER)
                .set_image(text("image"))
                .set_command(Some(command.collect()))
                .set_environment(Some(environment.collect()))
                .set_secrets(Some(secrets.collect()))
                .log_configuration(logs)
                .essential(true)
                .build();
            let tags = self.aws.tags().into_iter().map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
            let register = self
                .aws
                .ecs
                .register_task_definition()
                .family(&self.family)
                .container_definitions(container)
                .cpu("256")
                .memory("512")
                .network_mode(NetworkMode::Awsvpc)
                .requires_compatibilities(Compatibility::Fargate)
                .set_execution_role_arn(text("execution_role_arn"))
                .set_task_role_arn(text("task_role_arn"))
                .set_tags(Some(tags.collect()));
            let roles: Vec<String> = ["execution_role_arn", "task_role_arn"].iter().filter_map(|key| Some(text(key)?.rsplit('/').next()?.to_owned())).collect();
            let roles = format!("role(s) {}", roles.join(" and "));
            let out = until_roles_usable(&what, "ecs:RegisterTaskDefinition", &roles, || register.clone().send()).await?;
            Ok(Attrs::new().with("arn", out.task_definition().and_then(|t| t.task_definition_arn()).unwrap_or_default()))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (newest, revisions) = futures::join!(self.newest(), self.active_revisions());
            let (Some((_, tags)), revisions) = (newest?, revisions?) else { return Ok(Observation::gone("has no active revision")) };
            let owned = owned(tags.iter().filter_map(|t| Some((t.key()?, t.value()?))));
            let why = format!("created by pushpool; its {} active revision(s) are deregistered", revisions.len());
            Ok(decide(owned, teardown.in_use(revisions.iter().map(String::as_str)), Attrs::new().with("revisions", revisions.clone()), why))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let what = self.what();
            for arn in observed.attrs.strings("revisions") {
                let deregistered = self.aws.ecs.deregister_task_definition().task_definition(&arn).send().await;
                accept(deregistered, &[], &what, "ecs:DeregisterTaskDefinition")?;
            }
            Ok(())
        }
        .boxed()
    }
}
