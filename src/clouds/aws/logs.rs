//! `aws.log_group`: a CloudWatch Logs log group (a worker's). It holds logs, so a teardown
//! deletes it only with `--force`, as it does a repository with images.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::context::AwsContext;
use super::errors::{accept, aws_error};
use crate::engine::ownership::{decide, owned};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::Result;

/// A log group, by name.
pub struct LogGroup {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The log group's name.
    pub name: String,
}

impl LogGroup {
    fn what(&self) -> String {
        format!("log group {}", self.name)
    }

    /// The group's ARN (without the `:*` of its streams), if it exists.
    async fn arn(&self) -> Result<Option<String>> {
        // A prefix: other groups whose names start with this one may fill the first pages.
        let groups = self.aws.logs.describe_log_groups().log_group_name_prefix(&self.name).into_paginator().items().send().try_collect().await;
        let groups = groups.map_err(|e| aws_error(&self.what(), "logs:DescribeLogGroups", e))?;
        let group = groups.iter().find(|g| g.log_group_name() == Some(self.name.as_str()));
        Ok(group.map(|g| g.log_group_arn().map_or_else(|| g.arn().unwrap_or_default().trim_end_matches(":*").to_owned(), str::to_owned)))
    }
}

impl Node for LogGroup {
    fn label(&self) -> &'static str {
        "log group"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let attrs = Attrs::new().with("name", self.name.as_str());
            Ok(match self.arn().await? {
                Some(arn) => Observation::reuse("exists", attrs.with("arn", arn)),
                None => Observation::create("missing", attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let tags = self.aws.tags().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            let created = self.aws.logs.create_log_group().log_group_name(&self.name).set_tags(Some(tags)).send().await;
            // A retried create whose first answer was lost finds the group made.
            accept(created, &["ResourceAlreadyExistsException"], &self.what(), "logs:CreateLogGroup")?;
            Ok(Attrs::new().with("arn", self.arn().await?.unwrap_or_default()))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(arn) = self.arn().await? else { return Ok(Observation::gone("does not exist")) };
            let tags = self.aws.logs.list_tags_for_resource().resource_arn(&arn).send().await;
            let tags = tags.map_err(|e| aws_error(&self.what(), "logs:ListTagsForResource", e))?;
            let owned = owned(tags.tags().into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str())));
            let decided = decide(
                owned,
                teardown.in_use([self.name.as_str(), arn.as_str()]),
                Attrs::new().with("arn", arn.as_str()),
                "created by pushpool; its logs go too (--force)",
            );
            Ok(match decided.action {
                Action::Delete if !teardown.force => Observation::keep("holds the worker's logs; --force deletes it", decided.attrs),
                _ => decided,
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let deleted = self.aws.logs.delete_log_group().log_group_name(&self.name).send().await;
            accept(deleted, &["ResourceNotFoundException"], &self.what(), "logs:DeleteLogGroup")
        }
        .boxed()
    }
}
