//! `prefect.profile_setting`: one setting of the active Prefect profile, such as the default
//! Docker build namespace (so that `prefect deploy` pushes images to the new registry) or the
//! default work pool.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::prefect::profile::{profile_value, set_profile_value};

/// A setting of the active profile.
pub struct ProfileSetting {
    /// Where the profile is.
    pub prefect: Arc<PrefectContext>,
    /// The setting, e.g. `PREFECT_DEPLOYMENTS_DEFAULT_DOCKER_BUILD_NAMESPACE`.
    pub key: String,
    /// The wanted value: a reference such as "@repository.registry", or a literal.
    pub value: Value,
}

impl ProfileSetting {
    /// How the summary names a setting: the profile it is in.
    pub fn display_name(prefect: &PrefectContext) -> String {
        format!("profile '{}'", prefect.settings.profile.active)
    }

    fn wanted(&self, known: &BTreeMap<String, Attrs>) -> Result<String> {
        match resolve(&self.value, known, Secrets::Refuse)? {
            Resolved::Known(Value::String(value)) => Ok(value),
            _ => Err(Error::remote(format!("profile setting {}", self.key), "its value is not known")),
        }
    }

    fn current(&self) -> Result<Option<String>> {
        profile_value(&self.prefect.settings.profile, &self.key)
    }
}

impl Node for ProfileSetting {
    fn label(&self) -> &'static str {
        "profile setting"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let key = &self.key;
            // A value a node makes when applied (a new registry's host) is set after it.
            if let Resolved::Unknown(pending) = resolve(&self.value, &upstream.attrs_for(&self.value).await?, Secrets::Refuse)? {
                let attrs = Attrs::new().with("key", key.as_str()).with("profile", self.prefect.settings.profile.path.display().to_string());
                return Ok(Observation::update(format!("set {key} to {} (known after apply)", pending.join(", ")), attrs));
            }
            let wanted = self.wanted(&upstream.attrs_for(&self.value).await?)?;
            let attrs = Attrs::new().with("key", key.as_str()).with("value", wanted.as_str()).with("profile", self.prefect.settings.profile.path.display().to_string());
            Ok(match self.current()? {
                Some(current) if current == wanted => Observation::reuse(format!("{key} is already '{wanted}'"), attrs),
                Some(current) => Observation::update(format!("{key} is '{current}', set it to '{wanted}'"), attrs),
                None => Observation::update(format!("set {key} to '{wanted}'"), attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let wanted = self.wanted(inputs.all())?;
            let (profile, key, value) = (self.prefect.settings.profile.clone(), self.key.clone(), wanted.clone());
            tokio::task::spawn_blocking(move || set_profile_value(&profile, &key, &value)).await.map_err(|e| Error::usage("Prefect profile", e.to_string()))??;
            Ok(Attrs::new().with("value", wanted))
        }
        .boxed()
    }

    /// A teardown reports the setting and leaves it: a profile line is no cloud resource, the
    /// registry host it may name outlives any repository, and another pool may rely on it.
    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let key = &self.key;
            let Ok(wanted) = self.wanted(&upstream.attrs_for(&self.value).await?) else {
                return Ok(Observation::gone(format!("{key} names nothing that exists")));
            };
            Ok(match self.current()? {
                Some(current) if current == wanted => Observation::keep(format!("{key} stays: a teardown never edits the profile"), Attrs::new()),
                _ => Observation::gone(format!("{key} is not '{wanted}'")),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { Err(Error::usage(format!("profile setting {}", self.key), "a teardown never changes the profile")) }.boxed()
    }
}
