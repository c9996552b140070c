//! `prefect.docker_namespace`: the default Docker build namespace in the active profile, so
//! that `prefect deploy` pushes images to the new registry.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::prefect::profile::{BUILD_NAMESPACE_KEY, profile_value, set_profile_value};

/// The build namespace setting of the active profile.
pub struct DockerNamespace {
    /// Where the profile is.
    pub prefect: Arc<PrefectContext>,
    /// The wanted namespace, a reference such as "@repository.registry".
    pub registry: Value,
}

impl DockerNamespace {
    /// How the summary names this setting.
    pub fn display_name(prefect: &PrefectContext) -> String {
        format!("profile '{}'", prefect.settings.profile.active)
    }

    fn wanted(&self, known: &std::collections::BTreeMap<String, Attrs>) -> Result<String> {
        match resolve(&self.registry, known, Secrets::Refuse)? {
            Resolved::Known(Value::String(registry)) => Ok(registry),
            _ => Err(Error::remote("Docker build namespace", "the registry's address is not known")),
        }
    }
}

impl Node for DockerNamespace {
    fn label(&self) -> &'static str {
        "Docker namespace"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let wanted = self.wanted(&upstream.attrs_for(&self.registry).await?)?;
            let current = profile_value(&self.prefect.settings.profile, BUILD_NAMESPACE_KEY)?;
            let attrs = Attrs::new().with("namespace", wanted.as_str()).with("profile", self.prefect.settings.profile.path.display().to_string());
            Ok(match current {
                Some(current) if current == wanted => Observation::reuse("already set", attrs),
                Some(current) => Observation::update(format!("{BUILD_NAMESPACE_KEY} is '{current}', set it to '{wanted}'"), attrs),
                None => Observation::update(format!("set {BUILD_NAMESPACE_KEY} to '{wanted}'"), attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let wanted = self.wanted(inputs.all())?;
            let profile = self.prefect.settings.profile.clone();
            let namespace = wanted.clone();
            tokio::task::spawn_blocking(move || set_profile_value(&profile, BUILD_NAMESPACE_KEY, &namespace))
                .await
                .map_err(|e| Error::usage("Prefect profile", e.to_string()))??;
            Ok(Attrs::new().with("namespace", wanted))
        }
        .boxed()
    }

    /// The namespace is the account's registry host, which outlives any one repository and
    /// may serve other pools: a teardown reports it and leaves the profile as it is.
    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let registry = self.wanted(&upstream.attrs_for(&self.registry).await?)?;
            Ok(match profile_value(&self.prefect.settings.profile, BUILD_NAMESPACE_KEY)? {
                Some(current) if current == registry => {
                    Observation::keep(format!("{BUILD_NAMESPACE_KEY} stays: the registry outlives the repository"), Attrs::new())
                }
                _ => Observation::gone(format!("{BUILD_NAMESPACE_KEY} does not name this registry")),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { Err(Error::usage("Docker build namespace", "a teardown never changes the profile")) }.boxed()
    }
}
