//! Container node kinds: `aws.ecs_cluster` and `aws.ecr_repository`.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::context::AwsContext;
use super::errors::{aws_error, code};
use super::once::create_once;
use crate::engine::{Attrs, Inputs, Node, Observation, Upstream};
use crate::error::Result;

/// `aws.ecs_cluster`: the cluster the flow runs start in.
pub struct Cluster {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The cluster's name.
    pub name: String,
}

impl Node for Cluster {
    fn label(&self) -> &'static str {
        "ECS cluster"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let out = self
                .aws
                .ecs
                .describe_clusters()
                .clusters(&self.name)
                .send()
                .await
                .map_err(|e| aws_error(&format!("ECS cluster {}", self.name), "ecs:DescribeClusters", e))?;
            let attrs = Attrs::new().with("name", self.name.as_str());
            Ok(match out.clusters().iter().find(|c| c.cluster_name() == Some(self.name.as_str())) {
                Some(c) if c.status() == Some("ACTIVE") => {
                    Observation::reuse("active", attrs.with("arn", c.cluster_arn().unwrap_or_default()))
                }
                Some(c) => Observation::create(format!("status is {}", c.status().unwrap_or("unknown")), attrs),
                None => Observation::create("missing", attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let tags = self.aws.tags().into_iter().map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build());
            let out = self
                .aws
                .ecs
                .create_cluster()
                .cluster_name(&self.name)
                .set_tags(Some(tags.collect()))
                .send()
                .await
                .map_err(|e| aws_error(&format!("ECS cluster {}", self.name), "ecs:CreateCluster", e))?;
            Ok(Attrs::new().with("arn", out.cluster().and_then(|c| c.cluster_arn()).unwrap_or_default()))
        }
        .boxed()
    }
}

/// `aws.ecr_repository`: where flow images are pushed. Its `registry` attribute (the
/// account's registry host) is known before it exists.
pub struct Repository {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The repository's name.
    pub name: String,
}

impl Node for Repository {
    fn label(&self) -> &'static str {
        "ECR repository"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let attrs = Attrs::new().with("name", self.name.as_str()).with("registry", self.aws.registry());
            match self.aws.ecr.describe_repositories().repository_names(&self.name).send().await {
                Ok(out) => {
                    let uri = out.repositories().first().and_then(|r| r.repository_uri()).unwrap_or_default();
                    Ok(Observation::reuse("exists", attrs.with("uri", uri)))
                }
                Err(e) if code(&e).as_deref() == Some("RepositoryNotFoundException") => Ok(Observation::create("missing", attrs)),
                Err(e) => Err(aws_error(&format!("ECR repository {}", self.name), "ecr:DescribeRepositories", e)),
            }
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = format!("ECR repository {}", self.name);
            let tags = self
                .aws
                .tags()
                .into_iter()
                .filter_map(|(k, v)| aws_sdk_ecr::types::Tag::builder().key(k).value(v).build().ok());
            let tags: Vec<_> = tags.collect();
            let create = || async {
                let out = self.aws.once.ecr.create_repository().repository_name(&self.name).set_tags(Some(tags.clone())).send().await?;
                Ok(out.repository().and_then(|r| r.repository_uri()).map(str::to_owned))
            };
            let lookup = || async {
                match self.aws.ecr.describe_repositories().repository_names(&self.name).send().await {
                    Ok(out) => Ok(out.repositories().first().and_then(|r| r.repository_uri()).map(str::to_owned)),
                    Err(e) if code(&e).as_deref() == Some("RepositoryNotFoundException") => Ok(None),
                    Err(e) => Err(aws_error(&what, "ecr:DescribeRepositories", e)),
                }
            };
            let uri = create_once(&what, "ecr:CreateRepository", create, lookup).await?;
            Ok(Attrs::new().with("uri", uri))
        }
        .boxed()
    }
}
