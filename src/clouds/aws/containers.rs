//! Container node kinds: `aws.ecs_cluster` and `aws.ecr_repository`.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::context::AwsContext;
use super::errors::{accept, aws_error, code};
use super::once::create_once;
use crate::engine::ownership::{ImageStore, decide, decide_image_store, owned};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::Result;

/// `aws.ecs_cluster`: the cluster the flow runs start in.
pub struct Cluster {
    /// The account.
    pub aws: Arc<AwsContext>,
    /// The cluster's name.
    pub name: String,
    /// The services of this graph that run in it (a worker): a teardown deletes them first, so
    /// they and their tasks do not keep it.
    pub own_services: Vec<String>,
}

impl Cluster {
    /// Of what runs in the cluster, (tasks, services) that are not [`Cluster::own_services`]'.
    async fn others_running(&self, cluster: &aws_sdk_ecs::types::Cluster) -> Result<(i32, i32)> {
        let tasks = cluster.running_tasks_count() + cluster.pending_tasks_count();
        let services = cluster.active_services_count();
        if self.own_services.is_empty() || (tasks, services) == (0, 0) {
            return Ok((tasks, services));
        }
        let what = format!("ECS cluster {}", self.name);
        let listed = self.aws.ecs.list_services().cluster(&self.name).into_paginator().items().send().try_collect().await;
        let listed = listed.map_err(|e| aws_error(&what, "ecs:ListServices", e))?;
        let is_own = |arn: &String| arn.rsplit('/').next().is_some_and(|name| self.own_services.iter().any(|own| own == name));
        let own = listed.iter().filter(|arn| is_own(arn)).count() as i32;
        let mut own_tasks = 0;
        for service in &self.own_services {
            let listed = self.aws.ecs.list_tasks().cluster(&self.name).service_name(service).into_paginator().items().send().try_collect().await;
            own_tasks += listed.map_err(|e| aws_error(&what, "ecs:ListTasks", e))?.len() as i32;
        }
        Ok(((tasks - own_tasks).max(0), (services - own).max(0)))
    }
    /// The cluster with its tags, in whatever status, if ECS knows it.
    async fn describe(&self) -> Result<Option<aws_sdk_ecs::types::Cluster>> {
        let out = self
            .aws
            .ecs
            .describe_clusters()
            .clusters(&self.name)
            .include(aws_sdk_ecs::types::ClusterField::Tags)
            .send()
            .await
            .map_err(|e| aws_error(&format!("ECS cluster {}", self.name), "ecs:DescribeClusters", e))?;
        Ok(out.clusters().iter().find(|c| c.cluster_name() == Some(self.name.as_str())).cloned())
    }
}

impl Node for Cluster {
    fn label(&self) -> &'static str {
        "ECS cluster"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let attrs = Attrs::new().with("name", self.name.as_str());
            Ok(match self.describe().await? {
                Some(c) if c.status() == Some("ACTIVE") => Observation::reuse("active", attrs.with("arn", c.cluster_arn().unwrap_or_default())),
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

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(cluster) = self.describe().await?.filter(|c| c.status() == Some("ACTIVE")) else {
                return Ok(Observation::gone("does not exist"));
            };
            let arn = cluster.cluster_arn().unwrap_or_default();
            let owned = owned(cluster.tags().iter().filter_map(|t| Some((t.key()?, t.value()?))));
            let decided =
                decide(owned, teardown.in_use([self.name.as_str(), arn]), Attrs::new().with("arn", arn), "created by pushpool, used by no other pool, runs nothing");
            if decided.action != Action::Delete {
                return Ok(decided);
            }
            Ok(match self.others_running(&cluster).await? {
                (0, 0) => decided,
                (tasks, services) => Observation::keep(format!("runs {tasks} task(s) and {services} service(s); stop them, then run again"), decided.attrs),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let deleted = self.aws.ecs.delete_cluster().cluster(&self.name).send().await;
            accept(deleted, &["ClusterNotFoundException"], &format!("ECS cluster {}", self.name), "ecs:DeleteCluster")
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
    /// Names of resources (the cluster) whose other users also push images here.
    pub in_use_with: Vec<String>,
}

const NOT_FOUND: &str = "RepositoryNotFoundException";

impl Repository {
    fn what(&self) -> String {
        format!("ECR repository {}", self.name)
    }
}

impl Node for Repository {
    fn label(&self) -> &'static str {
        "ECR repository"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let attrs = Attrs::new().with("name", self.name.as_str()).with("registry", self.aws.registry()).with("arn", self.aws.repository_arn(&self.name));
            match self.aws.ecr.describe_repositories().repository_names(&self.name).send().await {
                Ok(out) => {
                    let uri = out.repositories().first().and_then(|r| r.repository_uri()).unwrap_or_default();
                    Ok(Observation::reuse("exists", attrs.with("uri", uri)))
                }
                Err(e) if code(&e).as_deref() == Some(NOT_FOUND) => Ok(Observation::create("missing", attrs)),
                Err(e) => Err(aws_error(&self.what(), "ecr:DescribeRepositories", e)),
            }
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let tags = self.aws.tags().into_iter().filter_map(|(k, v)| aws_sdk_ecr::types::Tag::builder().key(k).value(v).build().ok());
            let tags: Vec<_> = tags.collect();
            let create = || async {
                let out = self.aws.once.ecr.create_repository().repository_name(&self.name).set_tags(Some(tags.clone())).send().await?;
                Ok(out.repository().and_then(|r| r.repository_uri()).map(str::to_owned))
            };
            let lookup = || async {
                match self.aws.ecr.describe_repositories().repository_names(&self.name).send().await {
                    Ok(out) => Ok(out.repositories().first().and_then(|r| r.repository_uri()).map(str::to_owned)),
                    Err(e) if code(&e).as_deref() == Some(NOT_FOUND) => Ok(None),
                    Err(e) => Err(aws_error(&what, "ecr:DescribeRepositories", e)),
                }
            };
            let uri = create_once(&what, "ecr:CreateRepository", create, lookup).await?;
            Ok(Attrs::new().with("uri", uri))
        }
        .boxed()
    }

    /// The repository is named in no job variable; it counts as in use while another pool
    /// uses the cluster it serves (`in_use_with`), whose flows push their images here.
    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let what = self.what();
            let repository = match self.aws.ecr.describe_repositories().repository_names(&self.name).send().await {
                Ok(out) => out.repositories().first().cloned(),
                Err(e) if code(&e).as_deref() == Some(NOT_FOUND) => None,
                Err(e) => return Err(aws_error(&what, "ecr:DescribeRepositories", e)),
            };
            let Some(repository) = repository else {
                // The registry host is the account's: the build namespace node still names it.
                let mut gone = Observation::gone("does not exist");
                gone.attrs.set("registry", self.aws.registry());
                return Ok(gone);
            };
            let arn = repository.repository_arn().unwrap_or_default();
            let (tags, images) = futures::join!(
                self.aws.ecr.list_tags_for_resource().resource_arn(arn).send(),
                self.aws.ecr.list_images().repository_name(&self.name).into_paginator().items().send().try_collect()
            );
            let tags = tags.map_err(|e| aws_error(&what, "ecr:ListTagsForResource", e))?;
            let images = images.map_err(|e| aws_error(&what, "ecr:ListImages", e))?.len();
            let attrs = Attrs::new().with("uri", repository.repository_uri().unwrap_or_default()).with("registry", self.aws.registry()).with("images", images);
            let owned = owned(tags.tags().iter().map(|t| (t.key(), t.value())));
            let in_use = teardown.in_use([self.name.as_str(), repository.repository_uri().unwrap_or_default()]);
            let decided = decide(owned, in_use, attrs, "created by pushpool, empty, used by no other pool");
            let contents = (images > 0).then(|| format!("{images} image(s)"));
            Ok(decide_image_store(decided, teardown, ImageStore { in_use_with: &self.in_use_with, serving: "push flow images here", contents }))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let force = observed.attrs.flag("force", false);
            let deleted = self.aws.ecr.delete_repository().repository_name(&self.name).force(force).send().await;
            accept(deleted, &[NOT_FOUND], &self.what(), "ecr:DeleteRepository")
        }
        .boxed()
    }
}
