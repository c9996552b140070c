//! `gcp.services`: the Google APIs a pool needs, enabled in the project. Read first (one
//! batch read), enabled in one batch, the operation polled to its end. A teardown never
//! disables an API: anything else in the project may use it.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::json;

use super::context::GcpContext;
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::Result;

/// The APIs of one project that must be enabled.
pub struct Services {
    /// The project.
    pub gcp: Arc<GcpContext>,
    /// Service names: `run.googleapis.com`.
    pub services: Vec<String>,
}

impl Services {
    fn what(&self) -> String {
        format!("Google APIs of project {}", self.gcp.project())
    }

    /// The services not yet enabled.
    async fn disabled(&self) -> Result<Vec<String>> {
        let project = self.gcp.project();
        let names: Vec<String> = self.services.iter().map(|s| format!("names=projects/{project}/services/{s}")).collect();
        let path = format!("v1/projects/{project}/services:batchGet?{}", names.join("&"));
        let found = self.gcp.service_usage.send(Method::GET, &path, None, &self.what()).await?;
        let enabled: Vec<&str> = found["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["state"] == "ENABLED")
            .filter_map(|s| s["config"]["name"].as_str().or_else(|| s["name"].as_str()?.rsplit('/').next()))
            .collect();
        Ok(self.services.iter().filter(|s| !enabled.contains(&s.as_str())).cloned().collect())
    }
}

impl Node for Services {
    fn label(&self) -> &'static str {
        "Google APIs"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let disabled = self.disabled().await?;
            let attrs = Attrs::new().with("services", self.services.clone());
            Ok(match &disabled[..] {
                [] => Observation::reuse(format!("enabled: {}", self.services.join(", ")), attrs),
                some => Observation::create(format!("enables {}", some.join(", ")), attrs.hint("enable", disabled.clone())),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, observed: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let what = self.what();
            let path = format!("v1/projects/{}/services:batchEnable", self.gcp.project());
            let operation = self.gcp.service_usage.send(Method::POST, &path, Some(json!({"serviceIds": observed.attrs.strings("enable")})), &what).await?;
            self.gcp.service_usage.finish(operation, &what).await?;
            Ok(Attrs::new().hint("enable", Vec::<String>::new()))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move { Ok(Observation::keep("pushpool never disables an API: other things in the project may use it", Attrs::new())) }.boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async { Ok(()) }.boxed()
    }
}
