//! `gcp.artifact_repository`: the Artifact Registry Docker repository flow images are pushed
//! to, in the run's region, labelled as pushpool's. Its `registry` (`<region>-docker.pkg.dev`)
//! and `uri` (`<registry>/<project>/<name>`) are known before it exists.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::GoogleError;
use super::context::GcpContext;
use crate::engine::ownership::{ImageStore, decide, decide_image_store, owned};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::retry::{ATTEMPTS, backoff};

/// How many times a create is tried while a just-enabled API still answers SERVICE_DISABLED
/// (about a minute and a half with the backoff).
const PROPAGATION_ATTEMPTS: u32 = 20;

/// A Docker repository of Artifact Registry.
pub struct Repository {
    /// The project and region.
    pub gcp: Arc<GcpContext>,
    /// The repository id.
    pub name: String,
    /// Names of resources (the service account) whose other users also push images here: a
    /// teardown keeps the repository while another pool uses them.
    pub in_use_with: Vec<String>,
}

/// What a read of the repository found.
enum Found {
    Repository(Value),
    Missing,
    /// The Artifact Registry API is not enabled: no repository can be read (nor exist in use).
    ApiDisabled,
}

impl Repository {
    fn what(&self) -> String {
        format!("Artifact Registry repository {}", self.name)
    }

    fn parent(&self) -> String {
        format!("v1/projects/{}/locations/{}", self.gcp.project(), self.gcp.region())
    }

    fn path(&self) -> String {
        format!("{}/repositories/{}", self.parent(), self.name)
    }

    fn attrs(&self) -> Attrs {
        let registry = self.gcp.registry_host();
        let uri = format!("{registry}/{}/{}", self.gcp.project(), self.name);
        Attrs::new().with("name", self.name.as_str()).with("registry", registry).with("uri", uri)
    }

    async fn read(&self) -> Result<Found> {
        let path = self.path();
        let answer = self.gcp.artifact_registry.call(Method::GET, &path, None).await?;
        match answer.status {
            status if status.is_success() => Ok(Found::Repository(answer.body)),
            StatusCode::NOT_FOUND => Ok(Found::Missing),
            StatusCode::FORBIDDEN if GoogleError::of(&answer).reason.as_deref() == Some("SERVICE_DISABLED") => Ok(Found::ApiDisabled),
            _ => Err(self.gcp.artifact_registry.refused(&Method::GET, &path, &answer, &self.what())),
        }
    }

    /// A repository of another format cannot hold images.
    fn check_format(&self, repository: &Value) -> Result<()> {
        match repository["format"].as_str() {
            Some("DOCKER") | None => Ok(()),
            Some(other) => Err(Error::usage(self.what(), format!("exists in {} but holds {other} packages, not Docker images", self.gcp.region()))
                .fix("name another repository with --set repository=<name>, then run again")),
        }
    }

    /// Creates the repository: a 409 (a create that raced, or was retried) adopts it; a
    /// SERVICE_DISABLED answer right after the API was enabled is waited out.
    async fn create(&self) -> Result<()> {
        let what = self.what();
        let path = format!("{}/repositories?repositoryId={}", self.parent(), self.name);
        let body = json!({"format": "DOCKER", "description": "Flow images of Prefect work pools (pushpool)", "labels": self.gcp.labels()});
        let api = &self.gcp.artifact_registry;
        let mut attempt = 1;
        loop {
            let answer = api.call(Method::POST, &path, Some(body.clone())).await?;
            match answer.status {
                status if status.is_success() => return api.finish(answer.body, &what).await.map(drop),
                StatusCode::CONFLICT => return Ok(()),
                StatusCode::FORBIDDEN if GoogleError::of(&answer).reason.as_deref() == Some("SERVICE_DISABLED") && attempt < PROPAGATION_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt.min(ATTEMPTS))).await;
                    attempt += 1;
                }
                _ => return Err(api.refused(&Method::POST, &path, &answer, &what)),
            }
        }
    }
}

impl Node for Repository {
    fn label(&self) -> &'static str {
        "Artifact Registry repository"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            Ok(match self.read().await? {
                Found::Repository(repository) => {
                    self.check_format(&repository)?;
                    Observation::reuse("exists", self.attrs())
                }
                Found::Missing => Observation::create("missing", self.attrs()),
                Found::ApiDisabled => Observation::create("missing (the Artifact Registry API is not enabled yet)", self.attrs()),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            self.create().await?;
            Ok(Attrs::new())
        }
        .boxed()
    }

    /// Kept while another pool uses what it serves (`in_use_with`), or while it holds images
    /// (unless `--force`).
    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let repository = match self.read().await? {
                Found::Repository(repository) => repository,
                Found::Missing | Found::ApiDisabled => {
                    let mut gone = Observation::gone("does not exist");
                    gone.attrs = self.attrs();
                    return Ok(gone);
                }
            };
            let what = self.what();
            let images_path = format!("{}/dockerImages?pageSize=1", self.path());
            let images = self.gcp.artifact_registry.list(&images_path, "dockerImages", &what, 1).await?.len();
            let labels: Vec<(&str, &str)> = repository["labels"].as_object().into_iter().flatten().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))).collect();
            let attrs = self.attrs();
            let uri = attrs.value("uri").and_then(Value::as_str).unwrap_or_default().to_owned();
            let in_use = teardown.in_use([self.name.as_str(), uri.as_str()]);
            let decided = decide(owned(labels), in_use, attrs, "created by pushpool, empty, used by no other pool");
            // One image listed says there are some: the count is not read.
            let contents = (images > 0).then(|| "images".to_owned());
            Ok(decide_image_store(decided, teardown, ImageStore { in_use_with: &self.in_use_with, serving: "push flow images here", contents }))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let what = self.what();
            let deleted = self.gcp.artifact_registry.delete(&self.path(), &what).await?;
            if let Some(operation) = deleted.filter(|o| o.get("name").is_some()) {
                self.gcp.artifact_registry.finish(operation, &what).await?;
            }
            Ok(())
        }
        .boxed()
    }
}
